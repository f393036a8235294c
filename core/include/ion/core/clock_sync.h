#pragma once
// Host monotonic time -> network time (the broker's monotonic clock), from NTP-style probes:
// t0 node send, t1 broker receive, t2 broker send, t3 node receive;
// offset = ((t1 - t0) + (t2 - t3)) / 2, rtt = (t3 - t0) - (t2 - t1).
// The estimate uses the minimum-RTT sample of a sliding window; its uncertainty is rtt/2 of that
// sample (no probe can see path asymmetry, so this bound is all that can be claimed).
#include <array>
#include <atomic>
#include <cstdint>

namespace ion {

struct TimeSample {
  int64_t t0_ns = 0;
  int64_t t1_ns = 0;
  int64_t t2_ns = 0;
  int64_t t3_ns = 0;
  [[nodiscard]] int64_t rtt_ns() const noexcept { return (t3_ns - t0_ns) - (t2_ns - t1_ns); }
  [[nodiscard]] int64_t offset_ns() const noexcept {
    return ((t1_ns - t0_ns) + (t2_ns - t3_ns)) / 2;
  }
};

class ClockSync {
 public:
  static constexpr size_t kWindow = 32;

  // Takes a sample; returns false (and ignores it) if it is inconsistent (negative RTT).
  bool add(const TimeSample& s) noexcept {
    if (s.rtt_ns() < 0) return false;
    window_[next_ % kWindow] = s;
    ++next_;
    const size_t n = next_ < kWindow ? next_ : kWindow;
    const TimeSample* best = &window_[0];
    for (size_t i = 1; i < n; ++i) {
      if (window_[i].rtt_ns() < best->rtt_ns()) best = &window_[i];
    }
    offset_ns_.store(best->offset_ns(), std::memory_order_release);
    uncertainty_ns_.store(best->rtt_ns() / 2 + 1, std::memory_order_release);
    synced_.store(true, std::memory_order_release);
    return true;
  }
  // Forget everything (the broker restarted: a new network time axis).
  void reset() noexcept {
    next_ = 0;
    synced_.store(false, std::memory_order_release);
  }

  [[nodiscard]] bool synced() const noexcept { return synced_.load(std::memory_order_acquire); }
  [[nodiscard]] int64_t offset_ns() const noexcept {
    return offset_ns_.load(std::memory_order_acquire);
  }
  [[nodiscard]] int64_t uncertainty_ns() const noexcept {
    return uncertainty_ns_.load(std::memory_order_acquire);
  }
  [[nodiscard]] int64_t to_network(int64_t local_ns) const noexcept {
    return local_ns + offset_ns();
  }
  [[nodiscard]] int64_t to_local(int64_t network_ns) const noexcept {
    return network_ns - offset_ns();
  }
  [[nodiscard]] size_t samples() const noexcept { return next_; }

 private:
  std::array<TimeSample, kWindow> window_{};
  size_t next_ = 0;
  std::atomic<int64_t> offset_ns_{0};
  std::atomic<int64_t> uncertainty_ns_{0};
  std::atomic<bool> synced_{false};
};

}  // namespace ion
