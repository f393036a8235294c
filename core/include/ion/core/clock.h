#pragma once
// Clock seam: everything that reads time takes a Clock, so timing logic is testable with
// ManualClock and deterministic.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace ion {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic nanoseconds on this clock's own axis.
  [[nodiscard]] virtual int64_t now_ns() const noexcept = 0;
};

// The host's monotonic clock (CLOCK_MONOTONIC through std::chrono::steady_clock).
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] int64_t now_ns() const noexcept override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static const SteadyClock& instance() noexcept {
    static const SteadyClock clock;
    return clock;
  }
};

// A clock that moves only when told to; safe to read from other threads.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 0) noexcept : now_ns_(start_ns) {}
  [[nodiscard]] int64_t now_ns() const noexcept override {
    return now_ns_.load(std::memory_order_acquire);
  }
  void set_ns(int64_t t_ns) noexcept { now_ns_.store(t_ns, std::memory_order_release); }
  void advance(std::chrono::nanoseconds d) noexcept {
    now_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<int64_t> now_ns_;
};

// Another clock seen through an offset and a rate error: local = base + offset + (base - t0)·ppm.
// Lets tests and benchmarks give a node a clock seconds away and tens of ppm fast, with the truth
// known exactly.
class SkewedClock final : public Clock {
 public:
  SkewedClock(const Clock& base, int64_t offset_ns, double skew_ppm) noexcept
      : base_(base), offset_ns_(offset_ns), skew_(skew_ppm * 1e-6), t0_ns_(base.now_ns()) {}
  [[nodiscard]] int64_t now_ns() const noexcept override { return local_at(base_.now_ns()); }
  // This clock's reading when the base clock reads `base_ns`.
  [[nodiscard]] int64_t local_at(int64_t base_ns) const noexcept {
    const auto drift = static_cast<int64_t>(static_cast<double>(base_ns - t0_ns_) * skew_);
    return base_ns + offset_ns_ + drift;
  }

 private:
  const Clock& base_;
  int64_t offset_ns_;
  double skew_;
  int64_t t0_ns_;
};

// Wall-clock UTC in ns since the Unix epoch; only for anchoring, never for intervals.
[[nodiscard]] inline int64_t utc_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ion
