#pragma once
// A driver decorator that checks promise 2 from outside the node: every event handed to the
// device is due (time + delay) no later than it is handed over, unless it is flagged late; none
// is handed over early; deadlines never go backwards within a stream. It sees only what the
// node hands over and the node's own clock mapping, so it catches a node that would lose track.
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
  uint64_t out_of_order = 0;    // a deadline before the previous one of its stream
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
  void start(Emitter& emitter) override {
    emitter_.store(&emitter);
    inner_->start(emitter);
  }
  void deliver(const BatchHeader& h, const EventBatch& ev, const Delivery& d) noexcept override {
    Emitter* e = emitter_.load();
    const int64_t now = e != nullptr ? e->network_now_ns() : d.release_network_ns;
    {
      std::lock_guard lock(mu_);
      int64_t& last = last_deadline_[(uint64_t{h.source_node_id} << 32) | ev.stream];
      for (size_t i = 0; i < ev.size(); ++i) {
        const int64_t deadline = ev.times_ns[i] + h.delay_ns;
        ++c_.delivered;
        if (deadline < last) ++c_.out_of_order;
        last = std::max(last, deadline);
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
  std::map<uint64_t, int64_t> last_deadline_;
  Histogram errors_;
};

}  // namespace ion
