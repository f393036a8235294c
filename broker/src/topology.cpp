#include "ion/broker/topology.h"

#include <algorithm>
#include <charconv>
#include <map>

namespace ion {

namespace {

bool parse_u32(std::string_view s, uint32_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace

EndpointRef parse_endpoint(std::string_view text, const std::string& where) {
  const auto bad = [&](const char* why) {
    throw ConfigError(where + ": '" + std::string(text) + "': " + why +
                      " (expected node:*, node:N or node:A-B)");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) bad("missing ':'");
  EndpointRef e;
  e.node = std::string(text.substr(0, colon));
  if (!valid_name(e.node)) bad("bad node name");
  const std::string_view sel = text.substr(colon + 1);
  if (sel == "*") {
    e.wildcard = true;
    return e;
  }
  const size_t dash = sel.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_u32(sel, e.first)) bad("bad channel number");
    e.last = e.first;
  } else {
    if (!parse_u32(sel.substr(0, dash), e.first) || !parse_u32(sel.substr(dash + 1), e.last)) {
      bad("bad channel range");
    }
    if (e.last < e.first) bad("range end before start");
  }
  return e;
}

Topology load_topology(const ConfigNode& root) {
  root.only_keys({"nodes", "connections"});
  Topology t;
  const ConfigNode nodes = root.child("nodes");
  for (const auto& kv : nodes.yaml()) {
    const std::string name = kv.first.Scalar();
    const ConfigNode n = nodes.child(name);
    if (!valid_name(name)) n.fail("", "a node name of letters, digits, '_', '-', '.'");
    n.only_keys({"kind", "channels", "ports"});
    NodeSpec s;
    s.name = name;
    s.kind = n.string("kind", "generic");
    s.channels = static_cast<uint32_t>(n.integer("channels", 0, 0, 1 << 20));
    s.ports = static_cast<uint32_t>(n.integer("ports", 0, 0, 1 << 20));
    t.nodes.push_back(std::move(s));
  }
  if (t.nodes.empty()) root.fail("nodes", "at least one node");
  if (!root.has("connections")) return t;
  const YAML::Node conns = root.yaml()["connections"];
  if (!conns.IsSequence()) root.fail("connections", "a list of connections");
  for (size_t i = 0; i < conns.size(); ++i) {
    const ConfigNode c(conns[i], std::make_shared<const std::string>(root.file()),
                       "connections[" + std::to_string(i) + "]");
    if (!conns[i].IsMap()) c.fail("", "a mapping with from, to and delay");
    c.only_keys({"from", "to", "delay", "late", "auto_margin", "auto_initial", "auto_min",
                 "auto_max"});
    ConnectionSpec spec;
    spec.where = c.where();
    spec.from = parse_endpoint(c.string("from"), c.where("from"));
    // A missing key reads as an invalid node, which throws on any question but IsDefined().
    if (!c.has("to")) c.fail("to", "a target like node:3 or a list of them");
    const YAML::Node to = conns[i]["to"];
    if (to.IsScalar()) {
      spec.to.push_back(parse_endpoint(to.Scalar(), c.where("to")));
    } else if (to.IsSequence() && to.size() > 0) {
      for (const auto& x : to) {
        if (!x.IsScalar()) c.fail("to", "a target like node:3 or a list of them");
        spec.to.push_back(parse_endpoint(x.Scalar(), c.where("to")));
      }
    } else {
      c.fail("to", "a target like node:3 or a list of them");
    }
    if (!c.has("delay")) {
      c.fail("delay", "a duration like 20ms, or auto (every connection has a delay)");
    }
    using std::chrono::nanoseconds;
    using std::chrono::seconds;
    if (c.yaml()["delay"].IsScalar() && c.yaml()["delay"].Scalar() == "auto") {
      spec.auto_delay = true;
      AutoDelayOptions& a = spec.auto_options;
      a.margin_ns = c.duration("auto_margin", nanoseconds(a.margin_ns), nanoseconds(0), seconds(10))
                        .count();
      a.min_ns = c.duration("auto_min", nanoseconds(a.min_ns), nanoseconds(0), seconds(10)).count();
      a.max_ns = c.duration("auto_max", nanoseconds(a.max_ns), nanoseconds(a.min_ns), seconds(10))
                     .count();
      a.initial_ns = c.duration("auto_initial", nanoseconds(a.initial_ns), nanoseconds(a.min_ns),
                                nanoseconds(a.max_ns))
                         .count();
      spec.delay_ns = a.initial_ns;
    } else {
      for (const char* k : {"auto_margin", "auto_initial", "auto_min", "auto_max"}) {
        if (c.has(k)) c.fail(k, "nothing: it only applies with delay: auto");
      }
      spec.delay_ns = c.duration("delay", {}, nanoseconds(0), seconds(10)).count();
    }
    const std::string late = c.string("late", "deliver_flagged");
    if (late == "drop") {
      spec.late_policy = LatePolicy::drop;
    } else if (late != "deliver_flagged") {
      c.fail("late", "deliver_flagged or drop");
    }
    t.connections.push_back(std::move(spec));
  }
  return t;
}

Topology load_topology_file(const std::string& path) {
  return load_topology(ConfigNode::load_file(path));
}

int64_t RoutingTable::find_node(std::string_view name) const noexcept {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].name == name) return static_cast<int64_t>(i);
  }
  return -1;
}

RoutingTable RoutingTable::compile(const Topology& topology) {
  RoutingTable rt;
  rt.nodes_ = topology.nodes;
  for (const auto& c : topology.connections) rt.connection_auto_.push_back(c.auto_delay ? 1 : 0);
  std::map<std::string, uint32_t, std::less<>> ids;
  for (uint32_t i = 0; i < rt.nodes_.size(); ++i) {
    if (!ids.emplace(rt.nodes_[i].name, i).second) {
      throw ConfigError("topology: node '" + rt.nodes_[i].name + "' is declared twice");
    }
  }
  const auto lookup = [&](const EndpointRef& e, const std::string& where) {
    const auto it = ids.find(e.node);
    if (it == ids.end()) {
      std::string known;
      for (const auto& [n, id] : ids) known += (known.empty() ? "" : ", ") + n;
      throw ConfigError(where + ": unknown node '" + e.node + "' (known: " + known + ")");
    }
    return it->second;
  };

  // Expand every connection into (source, channel) -> Route, then lay them out flat.
  struct Entry {
    uint32_t source;
    uint32_t channel;
    Route route;
  };
  std::vector<Entry> entries;
  for (uint32_t ci = 0; ci < topology.connections.size(); ++ci) {
    const ConnectionSpec& c = topology.connections[ci];
    const uint32_t src = lookup(c.from, c.where);
    const NodeSpec& s = rt.nodes_[src];
    uint32_t first = c.from.first;
    uint32_t last = c.from.last;
    if (c.from.wildcard) {
      if (s.channels == 0) {
        throw ConfigError(c.where + ": '" + s.name + ":*' but '" + s.name + "' has no channels");
      }
      first = 0;
      last = s.channels - 1;
    }
    if (last >= s.channels) {
      throw ConfigError(c.where + ": channel " + std::to_string(last) + " of '" + s.name +
                        "' is outside its " + std::to_string(s.channels) + " channels");
    }
    const uint32_t n_src = last - first + 1;
    for (const auto& to : c.to) {
      const uint32_t tgt = lookup(to, c.where);
      const NodeSpec& t = rt.nodes_[tgt];
      uint32_t tfirst = to.first;
      uint32_t tlast = to.last;
      if (to.wildcard) {  // same index as the source channel
        tfirst = first;
        tlast = last;
      }
      if (tlast >= t.ports) {
        throw ConfigError(c.where + ": port " + std::to_string(tlast) + " of '" + t.name +
                          "' is outside its " + std::to_string(t.ports) + " ports");
      }
      const uint32_t n_tgt = tlast - tfirst + 1;
      for (uint32_t ch = first; ch <= last; ++ch) {
        if (n_tgt == 1) {  // fan-in to one port
          entries.push_back({src, ch, {tgt, tfirst, c.delay_ns, c.late_policy, ci}});
        } else if (n_src == 1) {  // fan-out of one channel to a range of ports
          for (uint32_t p = tfirst; p <= tlast; ++p) {
            entries.push_back({src, ch, {tgt, p, c.delay_ns, c.late_policy, ci}});
          }
        } else if (n_src == n_tgt) {  // element-wise
          entries.push_back({src, ch, {tgt, tfirst + (ch - first), c.delay_ns, c.late_policy, ci}});
        } else {
          throw ConfigError(c.where + ": " + std::to_string(n_src) + " source channels cannot map onto " +
                            std::to_string(n_tgt) + " target ports (use one port, or equal ranges)");
        }
      }
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.source != b.source ? a.source < b.source : a.channel < b.channel;
  });

  size_t total_channels = 0;
  for (const auto& n : rt.nodes_) {
    rt.channel_base_.push_back(total_channels);
    total_channels += n.channels;
  }
  rt.route_begin_.assign(total_channels + 1, 0);
  for (const auto& e : entries) ++rt.route_begin_[rt.channel_base_[e.source] + e.channel + 1];
  for (size_t i = 1; i < rt.route_begin_.size(); ++i) rt.route_begin_[i] += rt.route_begin_[i - 1];
  rt.routes_.reserve(entries.size());
  for (const auto& e : entries) rt.routes_.push_back(e.route);

  // complete(source, target): every channel has exactly one route to target, one shared delay.
  const size_t nn = rt.nodes_.size();
  rt.complete_.assign(nn * nn, 0);
  for (uint32_t s = 0; s < nn; ++s) {
    for (uint32_t t = 0; t < nn; ++t) {
      bool ok = rt.nodes_[s].channels > 0;
      int64_t delay = 0;
      bool have_key = false;
      LatePolicy policy = LatePolicy::deliver_flagged;
      for (uint32_t ch = 0; ok && ch < rt.nodes_[s].channels; ++ch) {
        int hits = 0;
        for (const Route& r : rt.routes(s, ch)) {
          if (r.target_node != t) continue;
          ++hits;
          // An auto delay moves on its own: only routes of that one connection share it.
          const int64_t key = rt.connection_auto_[r.connection] != 0
                                  ? -1 - static_cast<int64_t>(r.connection)
                                  : r.delay_ns;
          if (!have_key) {
            delay = key;
            policy = r.late_policy;
            have_key = true;
          }
          ok = ok && key == delay && r.late_policy == policy;
        }
        ok = ok && hits == 1;
      }
      rt.complete_[s * nn + t] = ok ? 1 : 0;
    }
  }
  return rt;
}

namespace {
std::string endpoint_text(const EndpointRef& e) {
  if (e.wildcard) return e.node + ":*";
  return e.node + ":" + std::to_string(e.first) + (e.last != e.first ? "-" + std::to_string(e.last) : "");
}
std::string duration_text(int64_t ns) {
  if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  if (ns % 1000 == 0) return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}
}  // namespace

std::string to_yaml(const Topology& t) {
  std::string y = t.nodes.empty() ? "nodes: {}\n" : "nodes:\n";
  for (const auto& n : t.nodes) {
    y += "  \"" + n.name + "\": {kind: \"" + n.kind + "\", channels: " + std::to_string(n.channels) +
         ", ports: " + std::to_string(n.ports) + "}\n";
  }
  // An empty list written as such: "connections:" alone reads back as null, which is refused.
  y += t.connections.empty() ? "connections: []\n" : "connections:\n";
  for (const auto& c : t.connections) {
    y += "  - {from: \"" + endpoint_text(c.from) + "\", to: [";
    for (size_t i = 0; i < c.to.size(); ++i) y += (i == 0 ? "\"" : ", \"") + endpoint_text(c.to[i]) + "\"";
    y += "], delay: " + (c.auto_delay ? std::string("auto") : duration_text(c.delay_ns));
    if (c.auto_delay) {
      y += ", auto_initial: " + duration_text(c.auto_options.initial_ns) +
           ", auto_min: " + duration_text(c.auto_options.min_ns) +
           ", auto_max: " + duration_text(c.auto_options.max_ns) +
           ", auto_margin: " + duration_text(c.auto_options.margin_ns);
    }
    y += std::string(", late: ") + (c.late_policy == LatePolicy::drop ? "drop" : "deliver_flagged") + "}\n";
  }
  return y;
}

}  // namespace ion
