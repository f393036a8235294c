#include "ion/builtin/sink.h"

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
                         const Delivery& delivery) noexcept {
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
  if (delivery.late) {
    late_.fetch_add(events.size());
  } else {
    int64_t worst = release_error_max_ns_.load();
    uint64_t early = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      const int64_t error = delivery.release_network_ns - (events.times_ns[i] + header.delay_ns);
      early += error < 0 ? 1 : 0;
      worst = error > worst ? error : worst;
    }
    early_.fetch_add(early);
    release_error_max_ns_.store(worst);
  }
  received_.fetch_add(events.size());
}

std::vector<uint64_t> SinkDriver::per_port() const {
  std::lock_guard lock(mu_);
  return per_port_;
}

std::map<std::string, int64_t> SinkDriver::counters() const {
  return {{"received", static_cast<int64_t>(received_.load())},
          {"out_of_order", static_cast<int64_t>(out_of_order_.load())},
          {"late", static_cast<int64_t>(late_.load())},
          {"early", static_cast<int64_t>(early_.load())}};
}

std::vector<std::string> SinkDriver::trouble_counters() const {
  return {"late", "early", "out_of_order"};
}

}  // namespace ion
