#include "ion/broker/status_text.h"
#include "ion/core/device_description.h"

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <map>
#include <sstream>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "ion/core/histogram.h"
#include "ion/core/json.h"
#include "ion/v1/ion.pb.h"

namespace ion {

namespace {

const char* b(bool v) { return v ? "true" : "false"; }

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Prometheus label values: backslash, quote and newline escaped.
std::string label(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string prom_num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

class Metrics {
 public:
  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const std::string& labels, double v, const char* suffix = "") {
    out_ << name_ << suffix;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << prom_num(v) << '\n';
  }
  [[nodiscard]] std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::string name_;
};

std::string node_label(const v1::NodeStatus& n) { return "node=\"" + label(n.name()) + "\""; }

namespace pb = google::protobuf;

// The scalar fields of a status message that declare how they are shown (ion.proto's `shown`
// option), in declaration order: the one place a counter's key, family and help are written.
template <class F>
void for_each_shown(const pb::Descriptor* d, F f) {
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* field = d->field(i);
    if (field->is_repeated() || !field->options().HasExtension(v1::shown)) continue;
    f(field, field->options().GetExtension(v1::shown));
  }
}

double number(const pb::Message& m, const pb::FieldDescriptor* f) {
  const pb::Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? 1.0 : 0.0;
    case pb::FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64: return static_cast<double>(r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32: return r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_FLOAT: return r->GetFloat(m, f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(m, f);
    default: return std::nan("");
  }
}

// `"key":value` for each shown field of `m`, each preceded by a comma but the first if `first`.
void shown_json(std::ostringstream& j, const pb::Message& m, bool first) {
  const pb::Reflection* r = m.GetReflection();
  for_each_shown(m.GetDescriptor(), [&](const pb::FieldDescriptor* f, const v1::Shown& how) {
    j << (first ? "" : ",") << '"' << json_escape(how.json()) << "\":";
    first = false;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_BOOL: j << b(r->GetBool(m, f)); break;
      case pb::FieldDescriptor::CPPTYPE_INT64: j << r->GetInt64(m, f); break;
      case pb::FieldDescriptor::CPPTYPE_UINT64: j << r->GetUInt64(m, f); break;
      case pb::FieldDescriptor::CPPTYPE_INT32: j << r->GetInt32(m, f); break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: j << r->GetUInt32(m, f); break;
      case pb::FieldDescriptor::CPPTYPE_STRING: j << '"' << json_escape(r->GetString(m, f)) << '"'; break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: j << '"' << r->GetEnum(m, f)->name() << '"'; break;
      default: j << num(number(m, f)); break;
    }
  });
}

// One family per shown field with a metric, one sample per message `each` yields (with its
// labels); absent messages (a node that has not reported its health) yield none.
template <class Each>
void shown_metrics(Metrics& out, const pb::Descriptor* d, Each each) {
  for_each_shown(d, [&](const pb::FieldDescriptor* f, const v1::Shown& how) {
    if (how.metric().empty()) return;
    out.family(how.metric().c_str(), how.gauge() ? "gauge" : "counter", how.help().c_str());
    const double scale = how.scale() != 0 ? how.scale() : 1.0;
    each([&](const std::string& labels, const pb::Message& m) {
      out.sample(labels, number(m, f) * scale);
    });
  });
}

}  // namespace

std::string status_json(const v1::StatusReply& r) {
  std::ostringstream j;
  j << "{\"broker_epoch\":" << r.broker_epoch() << ",\"network_ns\":" << r.network_ns()
    << ",\"anchor_network_ns\":" << r.anchor_network_ns() << ",\"anchor_utc_ns\":" << r.anchor_utc_ns()
    << ",\"latency_bounds_ns\":[";
  for (size_t i = 0; i < kLatencyBoundsNs.size(); ++i) j << (i ? "," : "") << kLatencyBoundsNs[i];
  j << "],\"nodes\":[";
  for (int i = 0; i < r.nodes_size(); ++i) {
    const auto& n = r.nodes(i);
    j << (i == 0 ? "" : ",") << "{";
    shown_json(j, n, true);
    j << ",\"ingress_latency_le\":[";
    for (int k = 0; k < n.ingress_latency_le_size(); ++k) j << (k ? "," : "") << n.ingress_latency_le(k);
    j << "],\"weights\":[";
    for (int k = 0; k < n.weights_size(); ++k) j << (k ? "," : "") << num(n.weights(k));
    j << "]";
    if (n.has_health()) {
      const auto& h = n.health();
      shown_json(j, h, false);
      j << ",\"trouble_counters\":[";
      for (int k = 0; k < h.trouble_counters_size(); ++k) {
        j << (k ? "," : "") << '"' << json_escape(h.trouble_counters(k)) << '"';
      }
      j << "],\"driver_counters\":{";
      // Sorted by name: the same order in every reply (protobuf maps have none).
      const std::map<std::string, int64_t> dc(h.driver_counters().begin(), h.driver_counters().end());
      bool first_counter = true;
      for (const auto& [k, v] : dc) {
        j << (first_counter ? "" : ",") << '"' << json_escape(k) << "\":" << v;
        first_counter = false;
      }
      j << "}";
    }
    if (n.has_device()) {
      const auto& d = n.device();
      j << ",\"device\":{\"model\":\"" << json_escape(d.model()) << "\",\"time_base\":\""
        << json_escape(d.time_base()) << "\",\"time_unit\":\"" << json_escape(d.time_unit())
        << "\",\"time_scale\":" << num(d.time_scale()) << ",\"voltage_unit\":\""
        << json_escape(d.voltage_unit()) << "\",\"current_unit\":\"" << json_escape(d.current_unit())
        << "\",\"simulation_scaled\":" << (d.simulation_scaled() ? "true" : "false") << "}";
    }
    j << "}";
  }
  j << "],\"taps\":[";
  for (int i = 0; i < r.taps_size(); ++i) {
    const auto& t = r.taps(i);
    j << (i == 0 ? "" : ",") << "{";
    shown_json(j, t, true);
    j << "}";
  }
  j << "],\"links\":[";
  for (int i = 0; i < r.links_size(); ++i) {
    const auto& l = r.links(i);
    j << (i == 0 ? "" : ",") << "{\"from\":\"" << json_escape(l.from()) << "\",\"to\":\""
      << json_escape(l.to()) << "\",\"count\":" << l.count() << ",\"sum_ns\":" << l.sum_ns()
      << ",\"le\":[";
    for (int k = 0; k < l.le_size(); ++k) j << (k ? "," : "") << l.le(k);
    j << "]}";
  }
  j << "],\"connections\":[";
  for (int i = 0; i < r.connections_size(); ++i) {
    const auto& c = r.connections(i);
    j << (i == 0 ? "" : ",") << "{\"index\":" << c.index() << ",\"from\":\"" << json_escape(c.from())
      << "\",\"delay_ns\":" << c.delay_ns() << ",\"auto_delay\":" << b(c.auto_delay())
      << ",\"raises\":" << c.raises() << ",\"lowers\":" << c.lowers() << "}";
  }
  j << "],\"rejects\":{";
  bool first = true;
  for (const auto& [why, count] : r.rejects()) {
    j << (first ? "" : ",") << "\"" << json_escape(why) << "\":" << count;
    first = false;
  }
  const auto& sec = r.security();
  j << "},\"security\":{\"curve\":" << b(sec.curve()) << ",\"insecure\":" << b(sec.insecure())
    << ",\"allowed_keys\":" << sec.allowed_keys() << ",\"accepted\":" << sec.accepted()
    << ",\"disconnects\":" << sec.disconnects() << ",\"refused\":{";
  first = true;
  for (const auto& [why, count] : sec.refused()) {
    j << (first ? "" : ",") << "\"" << json_escape(why) << "\":" << count;
    first = false;
  }
  j << "}}}";
  return j.str();
}

std::string prometheus_metrics(const v1::StatusReply& r, const HttpFigures* http) {
  Metrics m;
  m.family("ion_node_info", "gauge", "Topology nodes (value 1), with their kind.");
  for (const auto& n : r.nodes()) {
    m.sample(node_label(n) + ",kind=\"" + label(n.kind_name()) + "\"", 1);
  }
  shown_metrics(m, v1::NodeStatus::descriptor(), [&](auto sample) {
    for (const auto& n : r.nodes()) sample(node_label(n), n);
  });
  shown_metrics(m, v1::NodeHealth::descriptor(), [&](auto sample) {
    for (const auto& n : r.nodes()) {
      if (n.has_health()) sample(node_label(n), n.health());
    }
  });
  m.family("ion_driver_counter", "gauge", "The driver's own counters (docs/devices/), by name.");
  for (const auto& n : r.nodes()) {
    if (!n.has_health()) continue;
    const auto& dc = n.health().driver_counters();
    const std::map<std::string, int64_t> sorted(dc.begin(), dc.end());
    for (const auto& [k, v] : sorted) {
      bool trouble = false;
      for (const auto& t : n.health().trouble_counters()) trouble = trouble || t == k;
      m.sample(node_label(n) + ",counter=\"" + label(k) + "\",trouble=\"" + (trouble ? "1" : "0") + "\"",
               static_cast<double>(v));
    }
  }
  m.family("ion_driver_gauge", "gauge", "The driver's gauges (docs/devices/), by name and index.");
  for (const auto& n : r.nodes()) {
    if (!n.has_health()) continue;
    for (const auto& g : n.health().gauges()) {
      for (int k = 0; k < g.values_size(); ++k) {
        if (!std::isfinite(g.values(k))) continue;  // not known yet
        m.sample(node_label(n) + ",gauge=\"" + label(g.name()) + "\",index=\"" + std::to_string(k) + "\"",
                 g.values(k));
      }
    }
  }

  m.family("ion_ingress_latency_seconds", "histogram",
           "Broker receive time minus source time of the node's events (the node-to-broker link).");
  for (const auto& n : r.nodes()) {
    if (n.ingress_latency_le_size() != static_cast<int>(kLatencyBoundsNs.size())) continue;
    for (size_t k = 0; k < kLatencyBoundsNs.size(); ++k) {
      m.sample(node_label(n) + ",le=\"" + prom_num(static_cast<double>(kLatencyBoundsNs[k]) * 1e-9) + "\"",
               static_cast<double>(n.ingress_latency_le(static_cast<int>(k))), "_bucket");
    }
    m.sample(node_label(n) + ",le=\"+Inf\"", static_cast<double>(n.ingress_latency_count()), "_bucket");
    m.sample(node_label(n), static_cast<double>(n.ingress_latency_sum_ns()) * 1e-9, "_sum");
    m.sample(node_label(n), static_cast<double>(n.ingress_latency_count()), "_count");
  }

  m.family("ion_link_latency_seconds", "histogram",
           "End to end, per link: arrival at the target minus source time (the target's measure).");
  for (const auto& l : r.links()) {
    if (l.le_size() != static_cast<int>(kLatencyBoundsNs.size())) continue;
    const std::string lab = "from=\"" + label(l.from()) + "\",to=\"" + label(l.to()) + "\"";
    for (size_t k = 0; k < kLatencyBoundsNs.size(); ++k) {
      m.sample(lab + ",le=\"" + prom_num(static_cast<double>(kLatencyBoundsNs[k]) * 1e-9) + "\"",
               static_cast<double>(l.le(static_cast<int>(k))), "_bucket");
    }
    m.sample(lab + ",le=\"+Inf\"", static_cast<double>(l.count()), "_bucket");
    m.sample(lab, static_cast<double>(l.sum_ns()) * 1e-9, "_sum");
    m.sample(lab, static_cast<double>(l.count()), "_count");
  }

  m.family("ion_synapse_weight", "gauge", "Latest reported weight of each synapse (the \"weight\" gauge).");
  for (const auto& n : r.nodes()) {
    for (int k = 0; k < n.weights_size(); ++k) {
      if (std::isfinite(n.weights(k))) {
        m.sample(node_label(n) + ",synapse=\"" + std::to_string(k) + "\"", n.weights(k));
      }
    }
  }
  m.family("ion_connection_delay_seconds", "gauge", "Each topology connection's current delay.");
  for (const auto& c : r.connections()) {
    m.sample("connection=\"" + std::to_string(c.index()) + "\",from=\"" + label(c.from()) + "\"",
             static_cast<double>(c.delay_ns()) * 1e-9);
  }
  shown_metrics(m, v1::TapStatus::descriptor(), [&](auto sample) {
    for (const auto& t : r.taps()) sample("tap=\"" + label(t.name()) + "\"", t);
  });
  m.family("ion_rejected_messages_total", "counter", "Messages refused by the broker, by reason.");
  for (const auto& [why, count] : r.rejects()) m.sample("reason=\"" + label(why) + "\"", static_cast<double>(count));

  const auto& sec = r.security();
  m.family("ion_curve", "gauge", "1 when links are encrypted and authenticated (CurveZMQ).");
  m.sample("", sec.curve() ? 1 : 0);
  m.family("ion_insecure", "gauge", "1 when the broker accepts plaintext nodes from other machines.");
  m.sample("", sec.insecure() ? 1 : 0);
  m.family("ion_handshakes_total", "counter", "CURVE handshakes, by result.");
  m.sample("result=\"accepted\"", static_cast<double>(sec.accepted()));
  for (const auto& [why, count] : sec.refused()) m.sample("result=\"" + label(why) + "\"", static_cast<double>(count));
  m.family("ion_broker_uptime_seconds", "gauge", "Network time since the broker started.");
  m.sample("", static_cast<double>(r.network_ns() - r.anchor_network_ns()) * 1e-9);
  if (http != nullptr) {
    m.family("ion_http_clients", "gauge", "HTTP clients connected now.");
    m.sample("", static_cast<double>(http->clients));
    m.family("ion_http_live_clients", "gauge", "Live dashboard streams connected now.");
    m.sample("", static_cast<double>(http->live_clients));
    m.family("ion_http_requests_total", "counter", "HTTP requests served.");
    m.sample("", static_cast<double>(http->requests));
    m.family("ion_http_refused_total", "counter", "HTTP requests refused (malformed, too many clients, too slow).");
    m.sample("", static_cast<double>(http->refused));
    m.family("ion_live_frames_skipped_total", "counter", "Live frames not sent to a slow client.");
    m.sample("", static_cast<double>(http->frames_skipped));
    m.family("ion_live_events_thinned_total", "counter", "Spike events left out of live frames.");
    m.sample("", static_cast<double>(http->events_thinned));
  }
  return m.str();
}

std::string status_table(const v1::StatusReply& r, const std::string& broker) {
  std::ostringstream out;
  const auto& sec = r.security();
  out << "broker " << broker << " (epoch " << std::hex << r.broker_epoch() << std::dec << ", "
      << (sec.curve() ? "CURVE, " + std::to_string(sec.allowed_keys()) + " node keys"
                      : sec.insecure() ? std::string("INSECURE: plaintext, unauthenticated")
                                       : std::string("plaintext, this machine only"))
      << ", up " << std::fixed << std::setprecision(0)
      << static_cast<double>(r.network_ns() - r.anchor_network_ns()) * 1e-9 << " s)\n";
  out << "  " << std::left << std::setw(14) << "node" << std::setw(10) << "kind" << std::setw(4)
      << "up" << std::right << std::setw(11) << "from node" << std::setw(11) << "to node"
      << std::setw(9) << "dropped" << std::setw(7) << "gaps" << std::setw(9) << "rejected"
      << std::setw(12) << "in p99 ms" << std::setw(8) << "late" << std::setw(8) << "lost"
      << std::setw(9) << "trouble" << std::setw(22) << "clock offset us" << "\n";
  for (const auto& n : r.nodes()) {
    out << "  " << std::left << std::setw(14) << n.name() << std::setw(10) << n.kind_name()
        << std::setw(4) << (n.connected() ? "yes" : "no") << std::right << std::setw(11)
        << n.events_in() << std::setw(11) << n.events_out() << std::setw(9) << n.dropped_events()
        << std::setw(7) << n.lost_upstream_batches() << std::setw(9) << n.rejected_batches()
        << std::setw(12) << std::fixed << std::setprecision(3)
        << static_cast<double>(n.ingress_latency_p99_ns()) / 1e6;
    if (n.has_health()) {
      const auto& h = n.health();
      std::ostringstream clock;
      if (h.clock_synced()) {
        clock << std::fixed << std::setprecision(1) << static_cast<double>(h.clock_offset_ns()) / 1e3
              << " +/- " << static_cast<double>(h.clock_uncertainty_ns()) / 1e3;
      } else {
        clock << "not synced";
      }
      // Every delivery flagged late: arrived after the deadline, or handed over beyond precision.
      out << std::setw(8) << h.late_events() + h.playout_overrun() << std::setw(8)
          << h.lost_events() << std::setw(9) << h.device_trouble() << std::setw(22) << clock.str();
    }
    out << "\n";
    if (n.has_health() && n.health().device_trouble() > 0) {
      out << "      device trouble:";
      for (const auto& t : n.health().trouble_counters()) {
        const auto it = n.health().driver_counters().find(t);
        if (it != n.health().driver_counters().end() && it->second > 0) out << ' ' << t << '=' << it->second;
      }
      out << "\n";
    }
    if (n.has_device()) out << "      " << device_line(n.device()) << "\n";
    if (n.weights_size() > 0) {
      out << "      weights:";
      for (int k = 0; k < n.weights_size(); ++k) {
        out << ' ' << k << '=' << (std::isfinite(n.weights(k)) ? num(n.weights(k)) : std::string("-"));
      }
      out << "\n";
    }
  }
  for (const auto& t : r.taps()) {
    out << "  recorder " << t.name() << (t.connected() ? "" : " (gone)") << ": " << t.events_out()
        << " events sent, " << t.dropped_events() << " dropped (its ring was full)\n";
  }
  for (const auto& l : r.links()) {
    // The bucket bound holding the 99th percentile: an upper bound within the bucket resolution.
    std::string p99 = "> 10 s";
    for (int k = 0; k < l.le_size(); ++k) {
      if (static_cast<double>(l.le(k)) >= 0.99 * static_cast<double>(l.count())) {
        p99 = "<= " + num(static_cast<double>(kLatencyBoundsNs[static_cast<size_t>(k)]) / 1e6) + " ms";
        break;
      }
    }
    out << "  link " << l.from() << " -> " << l.to() << ": " << l.count()
        << " events, end-to-end latency mean "
        << (l.count() > 0 ? num(static_cast<double>(l.sum_ns()) / static_cast<double>(l.count()) / 1e6) : "-")
        << " ms, p99 " << p99 << "\n";
  }
  for (const auto& c : r.connections()) {
    out << "  connection " << c.index() << " from " << c.from() << ": delay " << std::setprecision(3)
        << static_cast<double>(c.delay_ns()) / 1e6 << " ms"
        << (c.auto_delay() ? " (auto, " + std::to_string(c.raises()) + " raises, " +
                                 std::to_string(c.lowers()) + " lowers)"
                           : "")
        << "\n";
  }
  for (const auto& [why, count] : r.rejects()) out << "  rejected " << why << ": " << count << "\n";
  for (const auto& [why, count] : sec.refused()) {
    if (count > 0) out << "  connections refused, " << why << ": " << count << "\n";
  }
  // The same words as the dashboard and the report.
  out << "  from node: events the node sent, accepted by the broker; to node: events the broker sent\n"
         "  it; dropped: at the broker for it (ring full, node away); gaps: batches missing from it;\n"
         "  in p99: its events' source-to-broker latency; late, lost: as the node reports them\n";
  return out.str();
}

}  // namespace ion
