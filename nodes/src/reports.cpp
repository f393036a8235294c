// What the node's heartbeats carry: its health (clock, delivery and device counters) and each
// incoming link's latency, which the broker publishes and `delay: auto` follows.
#include <spdlog/spdlog.h>

#include "ion/core/status_counters.h"
#include "node_impl.h"

namespace ion {

// What the node knows and the broker cannot: its clock mapping and its receive-side counts.
void Node::Impl::add_health(v1::NodeHealth& h) const noexcept {
  const NodeStats s = stats();
  h.set_clock_synced(s.clock_synced);
  h.set_clock_offset_ns(s.clock_offset_ns);
  h.set_clock_uncertainty_ns(s.clock_uncertainty_ns);
  h.set_clock_drift_ppb(static_cast<int64_t>(s.clock_drift_ppm * 1000.0));
#define ION_TO_HEALTH(name) h.set_##name(s.name);
  ION_NODE_HEALTH_COUNTERS(ION_TO_HEALTH)  // ion/core/status_counters.h
#undef ION_TO_HEALTH
  // The driver's trouble travels in every heartbeat, not only in the log at stop.
  if (!driver_started_) return;
  const std::map<std::string, int64_t> c = driver_->counters();
  uint64_t trouble = 0;
  for (const std::string& name : driver_->trouble_counters()) {
    const auto it = c.find(name);
    if (it == c.end()) continue;
    h.add_trouble_counters(name);
    trouble += static_cast<uint64_t>(std::max<int64_t>(it->second, 0));
  }
  h.set_device_trouble(trouble);
  h.mutable_driver_counters()->insert(c.begin(), c.end());
  for (const auto& [name, values] : driver_->gauges()) {
    v1::Gauge* g = h.add_gauges();
    g->set_name(name);
    g->mutable_values()->Add(values.begin(), values.end());
  }
}

void Node::Impl::add_latency_reports(v1::Heartbeat& hb, int64_t now) noexcept {
  const bool rotate = now >= next_window_ns_;
  if (rotate) next_window_ns_ = now + kLatencyWindowNs;
  for (auto& [source, w] : latency_windows_) {
    const uint64_t count = w.current.count() + w.previous_count;
    if (count > 0) {
      v1::LatencyReport* r = hb.add_latency();
      r->set_source_node_id(source);
      r->set_count(count);
      r->set_p999_ns(std::max(w.current.quantile_ns(0.999), w.previous_p999_ns));
      r->set_max_ns(std::max(w.current.max_ns(), w.previous_max_ns));
      for (const uint64_t c : w.total.counts_at_bounds()) r->add_total_le(c);
      r->set_total_count(w.total.count());
      r->set_total_sum_ns(static_cast<int64_t>(w.total.sum_ns()));
    }
    if (rotate) {
      w.previous_count = w.current.count();
      w.previous_p999_ns = w.current.quantile_ns(0.999);
      w.previous_max_ns = w.current.max_ns();
      w.current.clear();
    }
  }
}

}  // namespace ion
