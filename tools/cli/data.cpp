#include "cli/data.h"
#include "cli/command.h"
#include "cli/status.h"
#include "ion/broker/topology.h"
#include "ion/core/config.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "ion/core/record.h"
#include "ion/core/dataset.h"
#include "ion/core/device_description.h"
#include "ion/interchange/export.h"
#include "ion/interchange/import.h"
#include "ion/interchange/inspect.h"
#include "ion/node/node.h"
#include "ion/node/node_thread.h"
#include "ion/replay/replay_driver.h"
#include "ion/v1/ion.pb.h"

namespace ion {

int run_import(const ImportCommand& c, std::ostream& out) {
  if (c.sample_rate_hz < 0 || !std::isfinite(c.sample_rate_hz)) {
    throw std::runtime_error("ion import: --sample-rate must be a rate in Hz > 0");
  }
  interchange::ImportOptions o;
  o.source_name = c.name;
  o.sample_rate_hz = c.sample_rate_hz;
  int64_t session_start_utc_ns = 0;
  if (!c.session_start.empty()) {
    try {
      session_start_utc_ns = interchange::parse_session_start(c.session_start);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(std::string("ion import: ") + e.what());
    }
  }
  interchange::ImportResult r = interchange::import_file(c.format, c.input, o);
  if (session_start_utc_ns != 0) {
    // The file's time 0 (the recording's anchor) happened then.
    r.data.header.set_anchor_utc_ns(session_start_utc_ns);
  } else if (r.data.header.anchor_utc_ns() == 0) {
    r.notes.push_back("the file says not when it was recorded: exports start the session on 1970-01-01 "
                      "(--session-start says when)");
  }
  ion::write_recording(c.out, r.data);
  const auto& s = r.data.sources.front();
  out << "ion import: " << s.size() << " events on " << s.desc.channels() << " channels of '"
      << s.desc.name() << "' from " << c.input << " into " << c.out << "\n";
  for (const auto& n : r.notes) out << "  " << n << "\n";
  return 0;
}

namespace {

// Where each source channel's events went, from the topology the recording kept (none for an
// import): the exporters make stimulations of electrode arrays from it.
std::vector<interchange::ExportRoute> routes_of(const std::string& topology_yaml, std::string& note) {
  std::vector<interchange::ExportRoute> out;
  if (topology_yaml.empty()) return out;
  try {
    const RoutingTable rt = RoutingTable::compile(load_topology(ConfigNode::parse(topology_yaml, "the recording's topology")));
    for (uint32_t n = 0; n < rt.node_count(); ++n) {
      const NodeSpec& from = rt.node(n);
      for (uint32_t ch = 0; ch < from.channels; ++ch) {
        for (const Route& r : rt.routes(n, ch)) {
          const NodeSpec& to = rt.node(r.target_node);
          out.push_back({from.name, ch, to.name, to.kind, r.port, r.delay_ns, r.connection});
        }
      }
    }
  } catch (const std::exception& e) {
    note = std::string("the recording's topology could not be read (") + e.what() +
           "): stimulations are exported as their senders' events only";
    out.clear();
  }
  return out;
}

// How each `delay: auto` connection's delay moved during the recording, from its status records.
std::map<uint32_t, interchange::DelayTimeline> delays_of(const std::string& file) {
  std::map<uint32_t, interchange::DelayTimeline> out;
  record::Reader rd(file);
  record::Record r;
  while (rd.next(r)) {
    if (r.type != record::RecordType::status) continue;
    v1::RecordStatus st;
    if (!st.ParseFromArray(r.body.data(), static_cast<int>(r.body.size()))) continue;
    for (const auto& c : st.status().connections()) {
      if (!c.auto_delay()) continue;
      auto& tl = out[c.index()];
      if (tl.empty() || tl.back().second != c.delay_ns()) tl.emplace_back(st.network_ns(), c.delay_ns());
    }
  }
  return out;
}

}  // namespace

int run_export(const ExportCommand& c, std::ostream& out) {
  if (c.sample_rate_hz < 0 || !std::isfinite(c.sample_rate_hz)) {
    throw std::runtime_error("ion export: --sample-rate must be a rate in Hz > 0");
  }
  ion::LoadStats st;
  const ion::Dataset d = ion::load_recording(c.file, &st);
  if (st.torn) out << "ion export: " << c.file << " has a torn tail (" << st.tail_reason << "); exporting what precedes it\n";
  interchange::ExportOptions o;
  o.source = c.source;
  o.sample_rate_hz = c.sample_rate_hz;
  o.nwb_schema_dirs = c.nwb_schema;
  std::string routing_note;
  o.routes = routes_of(d.header.topology_yaml(), routing_note);
  if (!o.routes.empty()) o.delays = delays_of(c.file);
  const interchange::ExportResult r = interchange::export_file(c.format, d, c.out, o);
  out << "ion export: " << r.events << " spikes of " << r.units << " units";
  if (r.series > 0) out << " and " << r.series_events << " other events in " << r.series << " series";
  out << " to " << c.out << " (" << c.format << ")\n";
  for (const auto& n : r.notes) out << "  " << n << "\n";
  if (!routing_note.empty()) out << "  " << routing_note << "\n";
  return 0;
}

int run_inspect(const InspectCommand& c, std::ostream& out) {
  if (c.repair) {
    const uint64_t cut = record::repair(c.file);
    out << "ion inspect: " << (cut == 0 ? std::string("nothing to repair") : "cut a torn tail of " + std::to_string(cut) + " bytes")
        << " in " << c.file << "\n";
  }
  const interchange::Inspection x = interchange::inspect(c.file);
  if (c.json) {
    interchange::print_json(x, out);
  } else {
    interchange::print_text(x, out);
  }
  return 0;
}

namespace {

std::string fmt_number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// FROM:TO pairs; FROM is a recorded channel's number or its name, TO a number.
std::vector<std::pair<std::string, uint32_t>> parse_remap(const std::string& s) {
  std::vector<std::pair<std::string, uint32_t>> m;
  size_t i = 0;
  while (i < s.size()) {
    const size_t comma = s.find(',', i);
    const std::string pair = s.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    const size_t colon = pair.rfind(':');
    try {
      if (colon == std::string::npos || colon == 0) throw std::invalid_argument(pair);
      size_t used_to = 0;
      const std::string b = pair.substr(colon + 1);
      const unsigned long t = std::stoul(b, &used_to);
      if (used_to != b.size() || b.front() == '-' || t > UINT32_MAX - 1) throw std::invalid_argument(pair);
      m.emplace_back(pair.substr(0, colon), static_cast<uint32_t>(t));
    } catch (const std::exception&) {
      throw std::runtime_error("--remap: expected FROM:TO[,FROM:TO...] (FROM a recorded channel's number or name, "
                               "TO a channel number), got '" + pair + "'");
    }
    if (comma == std::string::npos) break;
    i = comma + 1;
  }
  return m;
}

// The remap for one source: names are looked up among its channels' names.
std::map<uint32_t, uint32_t> resolve_remap(const std::vector<std::pair<std::string, uint32_t>>& spec,
                                           const ion::SourceData& s) {
  std::map<uint32_t, uint32_t> m;
  for (const auto& [from_text, to] : spec) {
    uint32_t from = 0;
    const bool number = from_text.find_first_not_of("0123456789") == std::string::npos && from_text.size() <= 9;
    if (number) {
      from = static_cast<uint32_t>(std::stoul(from_text));
    } else {
      bool found = false;
      std::string some;
      for (const auto& ci : s.desc.channel_info()) {
        if (ci.name() == from_text) {
          from = ci.id();
          found = true;
          break;
        }
        if (some.size() < 80) some += (some.empty() ? "" : ", ") + ci.name();
      }
      if (!found) {
        throw std::runtime_error("--remap: '" + from_text + "' is not a channel name of '" + s.desc.name() + "'" +
                                 (some.empty() ? std::string(" (it has no channel names)") : " (its names: " + some + ", ...)"));
      }
    }
    if (!m.emplace(from, to).second) {
      const std::string name = s.channel_name(from);
      throw std::runtime_error("--remap: channel " + std::to_string(from) +
                               (name == std::to_string(from) ? "" : " (" + name + ")") + " is mapped twice");
    }
  }
  return m;
}

// A remap must name channels the source has, and must not merge two channels into one (their
// spikes would become one unit's) unless the user asked for it.
void check_remap(const std::map<uint32_t, uint32_t>& remap, const ion::SourceData& s,
                 bool allow_merge) {
  if (remap.empty()) return;
  std::vector<uint8_t> present(s.desc.channels(), 0);
  for (const uint32_t ch : s.channels) {
    if (ch < present.size()) present[ch] = 1;
  }
  std::map<uint32_t, uint32_t> target_of;  // emitted channel -> recorded channel feeding it
  for (uint32_t ch = 0; ch < present.size(); ++ch) {
    if (present[ch] != 0 && !remap.contains(ch)) target_of[ch] = ch;
  }
  for (const auto& [from, to] : remap) {
    if (from >= s.desc.channels()) {
      throw std::runtime_error("--remap: channel " + std::to_string(from) + " is not a channel of '" +
                               s.desc.name() + "' (0-" + std::to_string(s.desc.channels() - 1) + ")");
    }
    if (present[from] == 0) continue;
    const auto [it, fresh] = target_of.emplace(to, from);
    if (!fresh && !allow_merge) {
      throw std::runtime_error("--remap: channels " + std::to_string(it->second) + " and " +
                               std::to_string(from) + " of '" + s.desc.name() +
                               "' would both become channel " + std::to_string(to) +
                               " (give --merge to merge them)");
    }
  }
}

}  // namespace

namespace {

// What a replay standing in for a lab received, as a recording: one source per sender and kind,
// channel = the port it arrived on, time = its deadline.
void write_received(const ReplayCommand& c, const replay::ReplayDriver& driver, const std::string& as,
                    const v1::RecordHeader& network, std::ostream& out) {
  ion::Dataset o;
  o.header = network;
  o.header.set_session_id(network.broker_epoch());
  o.header.set_origin("ion replay " + c.file + ": what '" + as + "' received");
  std::map<std::pair<std::string, EventKind>, size_t> index;
  const uint32_t ports = driver.describe().input_ports;
  for (const replay::ReceivedInput& r : driver.received_inputs()) {
    auto [it, fresh] = index.emplace(std::pair{r.source, r.kind}, o.sources.size());
    if (fresh) {
      ion::SourceData sd;
      sd.desc.set_name(r.source + " -> " + as);
      sd.desc.set_kind("delivered");
      sd.desc.set_channels(ports);
      sd.kind = r.kind;
      o.sources.push_back(std::move(sd));
    }
    ion::SourceData& sd = o.sources[it->second];
    sd.channels.push_back(r.port);
    sd.times_ns.push_back(r.deadline_ns);
    if (r.has_payload) sd.payload.push_back(r.payload);
  }
  uint64_t n = 0;
  for (auto& sd : o.sources) {
    // All or none carry a payload within one sender's kind; keep columns consistent if not.
    if (!sd.payload.empty() && sd.payload.size() != sd.times_ns.size()) sd.payload.clear();
    sd.sort_by_time();
    *o.header.add_sources() = sd.desc;
    n += sd.size();
  }
  ion::write_recording(c.record_inputs, o);
  out << "ion replay: " << n << " events '" << as << "' received, from " << o.sources.size()
      << " source(s), into " << c.record_inputs << "\n";
}

}  // namespace

int run_replay(const ReplayCommand& c, const std::atomic<bool>& stop, std::ostream& out) {
  if (c.broker.empty() == c.to.empty()) throw std::runtime_error("ion replay: give exactly one of --broker or --to");
  if (!(c.speed >= 0.001 && c.speed <= 1000)) {
    throw std::runtime_error("ion replay: --speed must be within 0.001-1000, got " + fmt_number(c.speed));
  }
  if (!(c.start_s >= 0) || !std::isfinite(c.start_s)) {
    throw std::runtime_error("ion replay: --start must be a number of seconds >= 0");
  }
  if (!(c.end_s >= 0) || !std::isfinite(c.end_s)) {
    throw std::runtime_error("ion replay: --end must be a number of seconds >= 0 (0: to the end)");
  }
  replay::ReplayOptions base;
  base.speed = c.speed;
  base.from_ns = static_cast<int64_t>(std::llround(c.start_s * 1e9));
  if (c.end_s > 0) base.to_ns = static_cast<int64_t>(std::llround(c.end_s * 1e9));
  if (base.to_ns <= base.from_ns) throw std::runtime_error("ion replay: --end must come after --start");
  base.loop = c.loop;
  const auto remap_spec = parse_remap(c.remap);
  ion::LoadStats st;
  ion::Dataset d = ion::load_recording(c.file, &st, c.source);
  if (st.torn) out << "ion replay: " << c.file << " has a torn tail (" << st.tail_reason << "); replaying what precedes it\n";
  std::vector<ion::SourceData*> sources;
  for (auto& s : d.sources) {
    if (s.kind == EventKind::spike && s.size() > 0) sources.push_back(&s);
  }
  if (sources.empty()) throw std::runtime_error(c.file + ": nothing to replay" + (c.source.empty() ? "" : " from '" + c.source + "'"));
  if (!c.as.empty() && sources.size() != 1) throw std::runtime_error("ion replay: --as needs exactly one source (use --source)");
  if (!c.record_inputs.empty() && (c.broker.empty() || sources.size() != 1)) {
    throw std::runtime_error("ion replay: --record-inputs is for a live replay of one source (use --source)");
  }
  int64_t span_ns = 0;
  std::vector<std::map<uint32_t, uint32_t>> remaps;  // one per source
  for (const auto* s : sources) {
    remaps.push_back(resolve_remap(remap_spec, *s));
    check_remap(remaps.back(), *s, c.merge);
    span_ns = std::max(span_ns, s->times_ns.back() - s->times_ns.front());
  }
  if (base.from_ns > span_ns) {
    throw std::runtime_error("ion replay: --start " + fmt_number(c.start_s) + " s is beyond the end of " +
                             c.file + " (its events span " + fmt_number(static_cast<double>(span_ns) / 1e9) + " s)");
  }

  if (!c.to.empty()) {
    if (c.loop) throw std::runtime_error("ion replay: --loop has no end; it cannot go --to a file");
    ion::Dataset o;
    o.header = d.header;
    o.header.set_origin("ion replay " + c.file);
    o.header.clear_sources();
    for (size_t k = 0; k < sources.size(); ++k) {
      const ion::SourceData* s = sources[k];
      const auto& remap = remaps[k];
      const int64_t first = s->times_ns.front();
      ion::SourceData r = *s;
      r.channels.clear();
      r.times_ns.clear();
      r.payload.clear();
      // Same stamps as a live replay started at the recording's first event.
      const auto& ev = s->times_ns;
      for (size_t i = 0; i < ev.size(); ++i) {
        const int64_t rel = ev[i] - first;
        if (rel < base.from_ns || rel >= base.to_ns) continue;
        uint32_t ch = s->channels[i];
        if (auto it = remap.find(ch); it != remap.end()) ch = it->second;
        r.channels.push_back(ch);
        r.times_ns.push_back(first + static_cast<int64_t>(std::llround(static_cast<double>(rel - base.from_ns) / c.speed)));
        if (!s->payload.empty()) r.payload.push_back(s->payload[i]);
      }
      uint32_t top = remap.empty() ? s->desc.channels() : 0;
      for (const uint32_t ch : r.channels) top = std::max(top, ch + 1);
      r.desc.set_channels(top);
      // Names and positions follow their channels to their new numbers (merged: the first's).
      r.desc.clear_channel_info();
      for (const ChannelDescription& ci : replay::remap_channel_info(from_proto(s->desc.channel_info()), remap)) {
        to_proto(ci, *r.desc.add_channel_info());
      }
      if (!c.as.empty()) r.desc.set_name(c.as);
      *o.header.add_sources() = r.desc;
      o.sources.push_back(std::move(r));
    }
    ion::write_recording(c.to, o);
    uint64_t n = 0;
    for (const auto& s : o.sources) n += s.size();
    out << "ion replay: " << n << " events of " << o.sources.size() << " sources into " << c.to << "\n";
    return 0;
  }

  // Live: one node per source, all starting their first event at the same network time.
  struct Player {
    replay::ReplayDriver* driver;
    std::unique_ptr<NodeThread> thread;
    Node* node;
    std::string name;
  };
  std::vector<Player> players;
  // Standing in for a lab: declare what the broker's topology gives that node.
  std::string why;
  const std::optional<v1::StatusReply> topology =
      c.ports < 0 || !c.record_inputs.empty() ? fetch_status(c.broker, c.curve, std::chrono::seconds(3), why)
                                              : std::nullopt;
  for (size_t k = 0; k < sources.size(); ++k) {
    const ion::SourceData* s = sources[k];
    replay::ReplayOptions ro = base;
    ro.remap = remaps[k];
    ro.keep_inputs = !c.record_inputs.empty();
    const std::string name = c.as.empty() ? s->desc.name() : c.as;
    if (c.ports >= 0) ro.ports = static_cast<uint32_t>(c.ports);
    if (topology) {
      for (const auto& n : topology->nodes()) {
        if (c.ports >= 0 || n.name() != name || n.topology_channels() == 0) continue;
        ro.ports = n.topology_ports();
        ro.channels = n.topology_channels();
        out << "ion replay: '" << name << "' stands in for the topology's " << n.kind_name() << " node: "
            << ro.channels << " channels, " << ro.ports << " ports\n";
      }
    }
    replay::ReplayEvents e{s->channels, s->times_ns, s->payload, s->kind, s->desc.channels(),
                           from_proto(s->desc.channel_info())};
    std::unique_ptr<replay::ReplayDriver> drv;
    try {
      drv = std::make_unique<replay::ReplayDriver>(ro, std::move(e));
    } catch (const std::invalid_argument& ex) {
      throw std::runtime_error("ion replay: '" + name + "': " + ex.what() + ", e.g. --remap " +
                               s->channel_name(s->channels.front()) + ":0");
    }
    NodeOptions no;
    no.name = name;
    no.broker = c.broker;
    no.curve = c.curve;
    Player p{drv.get(), nullptr, nullptr, no.name};
    p.thread = std::make_unique<NodeThread>(no, std::move(drv));  // waits for its start time
    p.node = &p.thread->node();
    players.push_back(std::move(p));
  }
  auto stop_all = [&] {
    for (auto& p : players) p.node->stop();
    for (auto& p : players) p.thread->stop();
  };
  for (auto& p : players) {
    Refusal refusal;
    const Registration r = p.node->wait_registration(1, std::chrono::seconds(10), &refusal);
    if (r != Registration::registered) {
      out << "ion replay: node '" << p.name << "': "
          << (r == Registration::refused ? refusal.reason
                                         : "no answer from " + c.broker + " within 10 s (is the broker running there?)")
          << "\n";
      stop_all();
      return 2;
    }
  }
  const int64_t start = players.front().node->clock_estimate(SteadyClock::instance().now_ns()).offset_ns +
                        SteadyClock::instance().now_ns() + 300'000'000;
  // Each node's driver maps this network time through its own clock estimate.
  for (auto& p : players) p.driver->set_start_network_ns(start);
  out << "ion replay: " << players.size() << " source(s) from " << c.file << " into " << c.broker
      << " at speed " << c.speed << (c.loop ? ", looping" : "") << "\n";
  out.flush();
  while (!stop.load()) {
    bool all = true;
    for (auto& p : players) all = all && p.driver->finished();
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Let the nodes hand what they emitted to the broker before saying goodbye.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    bool sent = true;
    for (auto& p : players) {
      const NodeStats s = p.node->stats();
      sent = sent && s.sent_batches + s.dropped_batches >= s.emitted_batches;
    }
    if (sent) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop_all();
  for (auto& p : players) {
    const NodeStats s = p.node->stats();
    out << "  " << std::left << std::setw(20) << p.name << std::right << " emitted " << p.driver->emitted()
        << " of " << p.driver->size() << " events; worst emission lag "
        << std::fixed << std::setprecision(3) << static_cast<double>(p.driver->max_emit_lag_ns()) / 1e6
        << " ms; dropped " << s.dropped_events;
    if (p.driver->describe().input_ports > 0) out << "; received " << p.driver->inputs_received();
    out << "\n";
  }
  if (!c.record_inputs.empty()) {
    // Stamped in the live network's time: its anchor is the broker's, not the replayed file's.
    v1::RecordHeader h;
    if (topology) {
      h.set_broker_epoch(topology->broker_epoch());
      h.set_anchor_network_ns(topology->anchor_network_ns());
      h.set_anchor_utc_ns(topology->anchor_utc_ns());
    }
    write_received(c, *players.front().driver, players.front().name, h, out);
  }
  return 0;
}

}  // namespace ion

namespace ion::cli {
namespace {

class ReplayCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& ctx) override {
    CLI::App* c = parent.add_subcommand(
        "replay", "re-emit a recording with its original relative timing, into a broker (one node "
                  "per recorded source) or into a file");
    c->add_option("file", o_.file, "recording")->required();
    c->add_option("--broker", o_.broker, "join this broker");
    c->add_option("--to", o_.to, "write the replayed events into this recording instead");
    c->add_option("--source", o_.source, "replay only this source");
    c->add_option("--as", o_.as, "node name for the replayed source");
    c->add_option("--speed", o_.speed, "2 = twice as fast (0.001-1000)")->capture_default_str();
    c->add_option("--start", o_.start_s, "seconds into the recording to start from");
    c->add_option("--end", o_.end_s, "seconds into the recording to stop at");
    c->add_flag("--loop", o_.loop, "start again after the last event (until Ctrl-C)");
    c->add_option("--remap", o_.remap,
                  "recorded:emitted channel pairs; recorded by number or name, e.g. 3:0,ch_22_unit_0:55");
    c->add_flag("--merge", o_.merge, "let --remap send two recorded channels to one");
    c->add_option("--ports", o_.ports,
                  "input ports to declare (default: those the broker's topology gives the node, "
                  "with its channel count: the replay stands in for that lab)");
    c->add_option("--record-inputs", o_.record_inputs,
                  "write what the replayed node received (stimulations, spikes) into this recording");
    ctx.add_client_keys(c);
    ctx.add_force(c);
    return c;
  }
  int run(Context& ctx) override {
    if (!o_.to.empty()) ctx.check_output(o_.to, {o_.file}, "--to");
    if (!o_.record_inputs.empty()) ctx.check_output(o_.record_inputs, {o_.file}, "--record-inputs");
    o_.curve = ctx.client_keys();
    ctx.catch_signals();
    return run_replay(o_, ctx.stop, ctx.out);
  }

 private:
  ion::ReplayCommand o_;
};

class ImportCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& ctx) override {
    CLI::App* c = parent.add_subcommand(
        "import", "convert sjemea HDF5, Axion spike-list CSV or plain CSV (channel,time_s) into a recording");
    c->add_option("format", o_.format, "sjemea | axion-csv | csv")->required()
        ->check(CLI::IsMember({"sjemea", "axion-csv", "csv"}));
    c->add_option("input", o_.input, "input file")->required();
    c->add_option("-o,--out", o_.out, "recording to write")->required();
    c->add_option("--name", o_.name, "source name (default: the input's stem)");
    c->add_option("--session-start", o_.session_start,
                  "when the file's time 0 was, ISO 8601 with zone (2017-05-02T14:03:00Z); exports "
                  "use it as the session start");
    c->add_option("--sample-rate", o_.sample_rate_hz, "Hz; default: the file's own or detected")
        ->check(CLI::PositiveNumber);
    ctx.add_force(c);
    return c;
  }
  int run(Context& ctx) override {
    ctx.check_output(o_.out, {o_.input}, "-o");
    return run_import(o_, ctx.out);
  }

 private:
  ion::ImportCommand o_;
};

class ExportCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& ctx) override {
    CLI::App* c = parent.add_subcommand(
        "export", "write a recording's spikes as CSV, phy/Kilosort .npy files or NWB");
    c->add_option("file", o_.file, "recording")->required();
    c->add_option("--format", o_.format, "csv | npy | nwb")->required()
        ->check(CLI::IsMember({"csv", "npy", "nwb"}));
    c->add_option("-o,--out", o_.out, "output file (npy: a folder)")->required();
    c->add_option("--source", o_.source, "only this source");
    c->add_option("--sample-rate", o_.sample_rate_hz,
                  "npy: samples per second when the recording has no grid")
        ->check(CLI::PositiveNumber);
    c->add_option("--nwb-schema", o_.nwb_schema,
                  "nwb: a folder holding the NWB schema to cache in the file (an installed pynwb's "
                  "nwb-schema); default: $ION_NWB_SCHEMA, then pynwb under $VIRTUAL_ENV, ~/.local, /usr");
    ctx.add_force(c);
    return c;
  }
  int run(Context& ctx) override {
    ctx.check_output(o_.out, {o_.file}, "-o");
    return run_export(o_, ctx.out);
  }

 private:
  ion::ExportCommand o_;
};

class InspectCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "inspect", "streams, channel counts, span, rates, gaps, losses, clock quality of a recording");
    c->add_option("file", o_.file, "recording")->required();
    c->add_flag("--json", o_.json, "print one JSON object");
    c->add_flag("--repair", o_.repair, "cut a torn tail (a crash mid-write) first");
    return c;
  }
  int run(Context& ctx) override { return run_inspect(o_, ctx.out); }

 private:
  ion::InspectCommand o_;
};

}  // namespace

std::unique_ptr<Command> make_replay_command() { return std::make_unique<ReplayCommand>(); }
std::unique_ptr<Command> make_import_command() { return std::make_unique<ImportCommand>(); }
std::unique_ptr<Command> make_export_command() { return std::make_unique<ExportCommand>(); }
std::unique_ptr<Command> make_inspect_command() { return std::make_unique<InspectCommand>(); }

}  // namespace ion::cli
