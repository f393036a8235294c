#include "ion/drivers/sink.h"

#include "ion/v1/ion.pb.h"

namespace ion {

SinkOptions SinkOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "ports"});
  SinkOptions o;
  o.ports = static_cast<uint32_t>(d.integer("ports", o.ports, 1, 1 << 20));
  return o;
}

DriverInfo SinkDriver::describe() const { return {"sink", v1::NODE_KIND_SINK, 0, opts_.ports}; }

void SinkDriver::deliver(const BatchHeader& header, const EventBatch& events,
                         int64_t arrival_network_ns) noexcept {
  std::lock_guard lock(mu_);
  // Keyed by the source's name-independent id and stream; a new epoch is a new timeline.
  auto [it, inserted] =
      last_time_.try_emplace({header.source_node_id, events.stream}, INT64_MIN);
  int64_t& last = it->second;
  uint64_t disorder = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    disorder += events.times_ns[i] < last ? 1 : 0;
    last = events.times_ns[i];
    if (events.channels[i] < per_port_.size()) ++per_port_[events.channels[i]];
  }
  out_of_order_.fetch_add(disorder);
  if (arrival_network_ns != 0) {
    int64_t max_ns = latency_max_ns_.load();
    int64_t sum_ns = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      const int64_t l = arrival_network_ns - events.times_ns[i];
      sum_ns += l;
      max_ns = l > max_ns ? l : max_ns;
    }
    latency_max_ns_.store(max_ns);
    latency_sum_ns_.fetch_add(sum_ns);
    latency_count_.fetch_add(events.size());
  }
  received_.fetch_add(events.size());
}

std::vector<uint64_t> SinkDriver::per_port() const {
  std::lock_guard lock(mu_);
  return per_port_;
}

double SinkDriver::latency_mean_ns() const noexcept {
  const uint64_t n = latency_count_.load();
  return n == 0 ? 0.0 : static_cast<double>(latency_sum_ns_.load()) / static_cast<double>(n);
}

std::map<std::string, int64_t> SinkDriver::counters() const {
  return {{"received", static_cast<int64_t>(received_.load())},
          {"out_of_order", static_cast<int64_t>(out_of_order_.load())}};
}

}  // namespace ion
