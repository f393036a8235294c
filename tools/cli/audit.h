#pragma once
// A driver decorator that checks promises 1 and 2 from outside the node: every event handed to
// the device is due (time + delay) no later than it is handed over, unless it is flagged late;
// none is handed over early; a stream's batches arrive in their emission order (sequence), never
// going back. (Event times within a stream may go back: the wire allows any order.) It sees only
// what the node hands over and the node's own clock mapping, so it catches a node that loses
// track.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ion/core/driver.h"
#include "ion/core/histogram.h"

namespace ion {

struct AuditCounts {
  uint64_t delivered = 0;
  uint64_t flagged_late = 0;
  uint64_t late_uncounted = 0;  // handed over after deadline + tolerance, not flagged late
  uint64_t early = 0;           // handed over before deadline - tolerance
  uint64_t out_of_order = 0;    // a batch older (sequence) than one already delivered
  int64_t error_p50_ns = 0;     // release - deadline of on-time events
  int64_t error_p99_ns = 0;
  int64_t error_max_ns = 0;
};

class AuditDriver final : public Driver {
 public:
  // `late_tolerance_ns`: the scheduler's stated worst-case precision on a shared machine.
  AuditDriver(std::unique_ptr<Driver> inner, int64_t late_tolerance_ns, int64_t early_tolerance_ns)
      : inner_(std::move(inner)), late_tol_(late_tolerance_ns), early_tol_(early_tolerance_ns) {}

  [[nodiscard]] DriverInfo describe() const override { return inner_->describe(); }
  [[nodiscard]] DeviceDescription device() const override { return inner_->device(); }
  void start(Emitter& emitter) override {
    emitter_.store(&emitter);
    inner_->start(emitter);
  }
  void deliver(const BatchHeader& h, const EventBatch& ev, const Delivery& d) noexcept override {
    Emitter* e = emitter_.load();
    const int64_t now = e != nullptr ? e->network_now_ns() : d.release_network_ns;
    {
      std::lock_guard lock(mu_);
      // A batch may be handed over in pieces (its events fall due at different times), so the
      // same sequence may repeat; an older one may not.
      auto& [epoch, sequence] = last_batch_[(uint64_t{h.source_node_id} << 32) | ev.stream];
      // Pieces released from the playout's queue carry the source fields only (sequence 0: they
      // go by deadline); the batch order is checked on what carries its sequence.
      const bool sequenced = h.sequence != 0 || h.link_sequence != 0;
      if (sequenced && epoch == h.epoch && h.sequence < sequence) ++c_.out_of_order;
      if (sequenced && (epoch != h.epoch || h.sequence > sequence)) {
        epoch = h.epoch;
        sequence = h.sequence;
      }
      for (size_t i = 0; i < ev.size(); ++i) {
        const int64_t deadline = ev.times_ns[i] + h.delay_ns;
        ++c_.delivered;
        if (d.late) {
          ++c_.flagged_late;
          continue;
        }
        const int64_t err = now - deadline;
        if (err > late_tol_) ++c_.late_uncounted;
        if (err < -early_tol_) ++c_.early;
        errors_.record(err < 0 ? 0 : err);
      }
    }
    inner_->deliver(h, ev, d);
  }
  void stop() noexcept override { inner_->stop(); }
  [[nodiscard]] std::map<std::string, int64_t> counters() const override { return inner_->counters(); }
  [[nodiscard]] std::vector<std::string> trouble_counters() const override {
    return inner_->trouble_counters();
  }
  [[nodiscard]] std::map<std::string, std::vector<float>> gauges() const override {
    return inner_->gauges();
  }

  [[nodiscard]] Driver& inner() noexcept { return *inner_; }
  [[nodiscard]] AuditCounts counts() const {
    std::lock_guard lock(mu_);
    AuditCounts c = c_;
    c.error_p50_ns = errors_.quantile_ns(0.5);
    c.error_p99_ns = errors_.quantile_ns(0.99);
    c.error_max_ns = errors_.max_ns();
    return c;
  }

 private:
  std::unique_ptr<Driver> inner_;
  int64_t late_tol_;
  int64_t early_tol_;
  std::atomic<Emitter*> emitter_{nullptr};
  mutable std::mutex mu_;
  AuditCounts c_;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> last_batch_;  // (epoch, sequence) per stream
  Histogram errors_;
};

}  // namespace ion
