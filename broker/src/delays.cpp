// Per-connection delays: each connection's current delay (readable from any thread) and, for
// `delay: auto`, the controller that the targets' latency reports move (docs/timing.md).
#include <spdlog/spdlog.h>

#include "core.h"

namespace ion::broker_impl {

// `delay: auto`: a target's latency reports drive the connections that feed it.
void BrokerCore::on_latency_reports(NodeSlot& target, int64_t now) noexcept {
  for (const auto& rep : codec_.heartbeat().latency()) {
    if (rep.source_node_id() < slots_.size() &&
        rep.total_le_size() == static_cast<int>(kLatencyBoundsNs.size())) {
      std::lock_guard lock(target.links_mu);
      NodeSlot::LinkTotals* l = nullptr;
      for (auto& x : target.links) {
        if (x.source == rep.source_node_id()) l = &x;
      }
      if (l == nullptr)
        l = &target.links.emplace_back(NodeSlot::LinkTotals{rep.source_node_id(), {}, 0, 0});
      l->le.assign(rep.total_le().begin(), rep.total_le().end());
      l->count = rep.total_count();
      l->sum_ns = rep.total_sum_ns();
    }
    if (rep.count() == 0) continue;
    for (size_t c = 0; c < auto_.size(); ++c) {
      if (!auto_[c] || conn_source_[c] != rep.source_node_id()) continue;
      bool feeds = false;
      for (uint32_t t : conn_targets_[c]) feeds = feeds || t == target.id;
      if (!feeds) continue;
      const int64_t before = auto_[c]->delay_ns();
      const AutoDelay::Change change = auto_[c]->observe(rep.p999_ns(), now);
      if (change == AutoDelay::Change::none) continue;
      conn_delay_ns_[c].store(auto_[c]->delay_ns(), std::memory_order_relaxed);
      (change == AutoDelay::Change::raised ? conn_raises_[c] : conn_lowers_[c]).add();
      spdlog::info(
          "connection {} ({} -> {}): delay auto {} from {:.3f} ms to {:.3f} ms "
          "(p99.9 latency {:.3f} ms over {} events)",
          c, slots_[conn_source_[c]]->name, target.name,
          change == AutoDelay::Change::raised ? "raised" : "lowered",
          static_cast<double>(before) / 1e6, static_cast<double>(auto_[c]->delay_ns()) / 1e6,
          static_cast<double>(rep.p999_ns()) / 1e6, rep.count());
    }
  }
}

std::vector<ConnectionStats> BrokerCore::connection_stats() const {
  std::vector<ConnectionStats> out;
  const auto& conns = opts_.topology.connections;
  for (size_t c = 0; c < conns.size(); ++c) {
    ConnectionStats s;
    s.index = static_cast<uint32_t>(c);
    const auto& f = conns[c].from;
    s.from = f.node + ":" +
             (f.wildcard ? std::string("*")
                         : std::to_string(f.first) +
                               (f.last != f.first ? "-" + std::to_string(f.last) : ""));
    s.delay_ns = conn_delay_ns_[c].load(std::memory_order_relaxed);
    s.auto_delay = conns[c].auto_delay;
    s.raises = conn_raises_[c].get();
    s.lowers = conn_lowers_[c].get();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ion::broker_impl
