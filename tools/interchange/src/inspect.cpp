#include "ion/interchange/inspect.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <tuple>

#include "ion/core/codec.h"
#include "ion/core/device_description.h"
#include "ion/core/json.h"
#include "ion/core/record.h"
#include "ion/core/dataset.h"
#include "ion/v1/ion.pb.h"

namespace ion::interchange {
namespace {

}  // namespace

// Over the recording's span, so rates compare across channels and streams (over a channel's own
// first-to-last span, a channel with 2 spikes 0.64 ms apart showed 3125/s).
double span_rate_hz(const Inspection& x, uint64_t events) noexcept {
  if (x.last_ns <= x.first_ns) return 0.0;
  return static_cast<double>(events) / (static_cast<double>(x.last_ns - x.first_ns) * 1e-9);
}

Inspection inspect(const std::string& path) {
  record::Reader rd(path);
  Inspection x;
  x.file = path;
  const auto& h = rd.header();
  x.format_version = h.format_version();
  x.session_id = h.session_id();
  x.origin = h.origin();
  x.anchor_network_ns = h.anchor_network_ns();
  x.anchor_utc_ns = h.anchor_utc_ns();
  Codec codec({.max_message_bytes = record::kMaxRecordBytes, .max_events_per_batch = 1u << 22});
  struct StreamState {
    size_t summary;
    uint64_t epoch = 0;
    uint64_t next_index = 0;
    bool seen = false;
    int64_t last_t = INT64_MIN;
  };
  std::map<std::tuple<std::string, uint32_t, uint8_t>, StreamState> streams;
  std::map<std::pair<std::string, uint32_t>, size_t> channels;
  std::map<std::string, size_t> nodes;
  std::map<std::string, uint64_t> last_tap_link;
  std::map<std::pair<std::string, uint32_t>, std::string> late_names;  // from status records
  // A source's declared time base and units, from the header or (joined later) a status record.
  auto note_device = [&x](const std::string& name, const v1::DeviceDescription& d) {
    for (const auto& [n, line] : x.devices) {
      if (n == name) return;
    }
    x.devices.emplace_back(name, device_line(d));
  };
  for (const auto& src : h.sources()) {
    if (src.has_device()) note_device(src.name(), src.device());
  }
  BatchHeader bh;
  EventBatch ev;
  record::Record r;
  bool any = false;
  while (rd.next(r)) {
    switch (r.type) {
      case record::RecordType::batch: {
        const Decoded d = codec.decode(r.body);
        if (!d.ok() || d.body != Body::spike_batch || codec.take_batch({}, bh, ev) != Reject::none) {
          ++x.bad_batches;
          break;
        }
        ++x.batches;
        x.total_events += ev.size();
        const auto key = std::make_tuple(bh.source_node, ev.stream, static_cast<uint8_t>(ev.kind));
        auto it = streams.find(key);
        if (it == streams.end()) {
          StreamSummary s;
          s.source = bh.source_node;
          s.stream = ev.stream;
          s.kind = to_string(ev.kind);
          x.streams.push_back(s);
          it = streams.emplace(key, StreamState{x.streams.size() - 1}).first;
        }
        StreamState& st = it->second;
        StreamSummary& s = x.streams[st.summary];
        if (st.seen && bh.epoch != st.epoch) {
          ++s.restarts;
        } else if (st.seen && bh.first_index > st.next_index) {
          s.lost_events += bh.first_index - st.next_index;
        }
        st.seen = true;
        st.epoch = bh.epoch;
        st.next_index = std::max(st.next_index, bh.first_index + ev.size());
        if (bh.epoch != st.epoch) st.next_index = bh.first_index + ev.size();
        ++s.batches;
        s.events += ev.size();
        for (size_t i = 0; i < ev.size(); ++i) {
          const int64_t t = ev.times_ns[i];
          if (s.events == ev.size() && i == 0) s.first_ns = t;
          s.first_ns = std::min(s.first_ns, t);
          s.last_ns = std::max(s.last_ns == 0 && s.events == ev.size() && i == 0 ? t : s.last_ns, t);
          if (st.last_t != INT64_MIN && t > st.last_t) s.longest_gap_ns = std::max(s.longest_gap_ns, t - st.last_t);
          st.last_t = std::max(st.last_t, t);
          if (!any) {
            x.first_ns = x.last_ns = t;
            any = true;
          }
          x.first_ns = std::min(x.first_ns, t);
          x.last_ns = std::max(x.last_ns, t);
          auto [c, fresh] = channels.try_emplace({bh.source_node + "\x1f" + std::to_string(ev.stream), ev.channels[i]},
                                                 x.channels.size());
          if (fresh) {
            ChannelSummary cs;
            cs.source = bh.source_node;
            cs.id = ev.channels[i];
            cs.name = std::to_string(ev.channels[i]);
            for (const auto& src : h.sources()) {
              if (src.name() != bh.source_node) continue;
              for (const auto& ci : src.channel_info()) {
                if (ci.id() == ev.channels[i] && !ci.name().empty()) cs.name = ci.name();
              }
            }
            cs.first_ns = cs.last_ns = t;
            x.channels.push_back(cs);
          }
          ChannelSummary& cs = x.channels[c->second];
          ++cs.count;
          cs.first_ns = std::min(cs.first_ns, t);
          cs.last_ns = std::max(cs.last_ns, t);
        }
        // The broker numbers this recorder's copies: a jump is what it dropped for the tap.
        if (bh.broker_epoch != 0) {
          const std::string tap_key = std::to_string(bh.broker_epoch);
          auto lt = last_tap_link.find(tap_key);
          if (lt != last_tap_link.end() && bh.link_sequence > lt->second + 1) {
            x.tap_dropped_batches += bh.link_sequence - lt->second - 1;
          }
          last_tap_link[tap_key] = bh.link_sequence;
        }
        break;
      }
      case record::RecordType::status: {
        ++x.status_records;
        v1::RecordStatus s;
        if (!s.ParseFromArray(r.body.data(), static_cast<int>(r.body.size()))) break;
        for (const auto& n : s.status().nodes()) {
          auto [it, fresh] = nodes.try_emplace(n.name(), x.nodes.size());
          if (fresh) {
            NodeSummary ns;
            ns.name = n.name();
            x.nodes.push_back(ns);
          }
          NodeSummary& ns = x.nodes[it->second];
          if (n.has_device()) note_device(n.name(), n.device());
          for (const auto& c : n.channel_info()) {
            if (!c.name().empty()) late_names.try_emplace({n.name(), c.id()}, c.name());
          }
          if (!n.has_health()) continue;
          const auto& hl = n.health();
          ns.late_events = hl.late_events();
          ns.lost_events = hl.lost_events();
          ns.received_events = hl.received_events();
          if (hl.clock_synced()) {
            if (ns.clock_reports == 0) ns.clock_offset_min_ns = ns.clock_offset_max_ns = hl.clock_offset_ns();
            ++ns.clock_reports;
            ns.clock_offset_ns = hl.clock_offset_ns();
            ns.clock_offset_min_ns = std::min(ns.clock_offset_min_ns, hl.clock_offset_ns());
            ns.clock_offset_max_ns = std::max(ns.clock_offset_max_ns, hl.clock_offset_ns());
            ns.clock_uncertainty_max_ns = std::max(ns.clock_uncertainty_max_ns, hl.clock_uncertainty_ns());
          }
        }
        break;
      }
      case record::RecordType::marker: {
        v1::RecordMarker m;
        if (m.ParseFromArray(r.body.data(), static_cast<int>(r.body.size()))) {
          ++x.markers[v1::RecordMarker::Kind_Name(m.kind())];
        }
        break;
      }
      case record::RecordType::index: ++x.index_records; break;
      case record::RecordType::header: break;
    }
  }
  for (auto& c : x.channels) {  // names declared by a node that joined after the header
    const auto it = late_names.find({c.source, c.id});
    if (it != late_names.end() && c.name == std::to_string(c.id)) c.name = it->second;
  }
  std::stable_sort(x.channels.begin(), x.channels.end(), [](const ChannelSummary& a, const ChannelSummary& b) {
    return a.source != b.source ? a.source < b.source : a.id < b.id;
  });
  x.torn = rd.torn();
  x.tail_reason = rd.tail_reason();
  x.valid_bytes = rd.valid_bytes();
  x.file_bytes = rd.file_bytes();
  return x;
}

void print_text(const Inspection& x, std::ostream& out) {
  char line[512];
  out << x.file << ": IoN recording, format " << x.format_version << ", " << x.origin << "\n";
  std::snprintf(line, sizeof line, "  %llu events in %llu batches, %.3f s from %s s to %s s (network time from the anchor)\n",
                static_cast<unsigned long long>(x.total_events), static_cast<unsigned long long>(x.batches),
                static_cast<double>(x.last_ns - x.first_ns) * 1e-9,
                format_seconds(x.first_ns - x.anchor_network_ns).c_str(),
                format_seconds(x.last_ns - x.anchor_network_ns).c_str());
  out << line;
  if (x.torn) {
    out << "  TORN TAIL: " << x.tail_reason << "; " << (x.file_bytes - x.valid_bytes)
        << " bytes after the last good record (ion inspect --repair cuts them)\n";
  }
  if (x.bad_batches > 0) out << "  " << x.bad_batches << " batch records did not decode (skipped)\n";
  if (x.tap_dropped_batches > 0) out << "  the broker dropped " << x.tap_dropped_batches << " batches for the recorder\n";
  out << "\n  source               stream kind            events     rate/s   lost  restarts  longest gap\n";
  for (const auto& s : x.streams) {
    std::snprintf(line, sizeof line, "  %-20s %6u %-14s %8llu %10.2f %6llu %9llu %10.3f s\n", s.source.c_str(), s.stream,
                  s.kind.c_str(), static_cast<unsigned long long>(s.events), span_rate_hz(x, s.events),
                  static_cast<unsigned long long>(s.lost_events), static_cast<unsigned long long>(s.restarts),
                  static_cast<double>(s.longest_gap_ns) * 1e-9);
    out << line;
  }
  out << "\n  channel                        count     rate/s      first s       last s\n";
  for (const auto& c : x.channels) {
    const std::string name = x.streams.size() > 1 ? c.source + "/" + c.name : c.name;
    std::snprintf(line, sizeof line, "  %-28s %8llu %10.3f %12.6f %12.6f\n", name.c_str(),
                  static_cast<unsigned long long>(c.count), span_rate_hz(x, c.count),
                  static_cast<double>(c.first_ns - x.anchor_network_ns) * 1e-9,
                  static_cast<double>(c.last_ns - x.anchor_network_ns) * 1e-9);
    out << line;
  }
  if (!x.nodes.empty()) {
    out << "\n  node (as reported)   received     lost     late   clock offset (min..max)      worst bound\n";
    for (const auto& n : x.nodes) {
      std::snprintf(line, sizeof line, "  %-20s %8llu %8llu %8llu   %9.1f us (%.1f..%.1f)   %9.1f us\n", n.name.c_str(),
                    static_cast<unsigned long long>(n.received_events), static_cast<unsigned long long>(n.lost_events),
                    static_cast<unsigned long long>(n.late_events), static_cast<double>(n.clock_offset_ns) / 1e3,
                    static_cast<double>(n.clock_offset_min_ns) / 1e3, static_cast<double>(n.clock_offset_max_ns) / 1e3,
                    static_cast<double>(n.clock_uncertainty_max_ns) / 1e3);
      out << line;
    }
  }
  for (const auto& [name, line_text] : x.devices) out << "\n  " << name << ": " << line_text << "\n";
  if (!x.markers.empty()) {
    out << "\n  markers:";
    for (const auto& [k, v] : x.markers) out << " " << k << "=" << v;
    out << "\n";
  }
}

void print_json(const Inspection& x, std::ostream& out) {
  out << "{\"file\":" << json_string(x.file) << ",\"format_version\":" << x.format_version
      << ",\"session_id\":" << x.session_id << ",\"origin\":" << json_string(x.origin)
      << ",\"anchor_network_ns\":" << x.anchor_network_ns << ",\"anchor_utc_ns\":" << x.anchor_utc_ns
      << ",\"file_bytes\":" << x.file_bytes << ",\"valid_bytes\":" << x.valid_bytes
      << ",\"torn_tail\":" << (x.torn ? "true" : "false") << ",\"tail_reason\":" << json_string(x.tail_reason)
      << ",\"total_events\":" << x.total_events << ",\"batches\":" << x.batches
      << ",\"bad_batches\":" << x.bad_batches << ",\"tap_dropped_batches\":" << x.tap_dropped_batches
      << ",\"first_ns\":" << x.first_ns << ",\"last_ns\":" << x.last_ns << ",\"streams\":[";
  for (size_t i = 0; i < x.streams.size(); ++i) {
    const auto& s = x.streams[i];
    out << (i ? "," : "") << "{\"source\":" << json_string(s.source) << ",\"stream\":" << s.stream
        << ",\"kind\":" << json_string(s.kind) << ",\"events\":" << s.events << ",\"batches\":" << s.batches
        << ",\"first_ns\":" << s.first_ns << ",\"last_ns\":" << s.last_ns
        << ",\"rate_hz\":" << span_rate_hz(x, s.events) << ",\"lost_events\":" << s.lost_events
        << ",\"restarts\":" << s.restarts << ",\"longest_gap_ns\":" << s.longest_gap_ns << "}";
  }
  out << "],\"channels\":[";
  for (size_t i = 0; i < x.channels.size(); ++i) {
    const auto& c = x.channels[i];
    out << (i ? "," : "") << "{\"source\":" << json_string(c.source) << ",\"name\":" << json_string(c.name)
        << ",\"id\":" << c.id << ",\"count\":" << c.count << ",\"first_ns\":" << c.first_ns
        << ",\"last_ns\":" << c.last_ns << ",\"rate_hz\":" << span_rate_hz(x, c.count) << "}";
  }
  out << "],\"nodes\":[";
  for (size_t i = 0; i < x.nodes.size(); ++i) {
    const auto& n = x.nodes[i];
    out << (i ? "," : "") << "{\"name\":" << json_string(n.name) << ",\"received_events\":" << n.received_events
        << ",\"lost_events\":" << n.lost_events << ",\"late_events\":" << n.late_events
        << ",\"clock_offset_ns\":" << n.clock_offset_ns << ",\"clock_offset_min_ns\":" << n.clock_offset_min_ns
        << ",\"clock_offset_max_ns\":" << n.clock_offset_max_ns
        << ",\"clock_uncertainty_max_ns\":" << n.clock_uncertainty_max_ns << ",\"clock_reports\":" << n.clock_reports << "}";
  }
  out << "],\"devices\":{";
  for (size_t k = 0; k < x.devices.size(); ++k) {
    out << (k ? "," : "") << json_string(x.devices[k].first) << ":" << json_string(x.devices[k].second);
  }
  out << "},\"markers\":{";
  size_t i = 0;
  for (const auto& [k, v] : x.markers) out << (i++ ? "," : "") << json_string(k) << ":" << v;
  out << "}}\n";
}

}  // namespace ion::interchange
