#pragma once
// A device's sample or tick counter -> host monotonic time (and on to network time through the
// node's ClockSync). Counters wrap (a 24-bit counter of 50 us ticks every 839 s, a 32-bit us
// counter every 71.6 min) and run at their own crystal's rate, so readings are unwrapped to 64 bits
// and the tick period is fitted from (ticks, host time) pairs seen together.
#include <array>
#include <cstddef>
#include <cstdint>

namespace ion {

struct DeviceClockOptions {
  uint32_t counter_bits = 32;   // 1..64
  double tick_hz = 1e6;         // nominal rate
  size_t window = 64;           // (ticks, host) pairs kept for the fit
};

class DeviceClock {
 public:
  static constexpr size_t kMaxWindow = 256;
  explicit DeviceClock(DeviceClockOptions options);

  // Extends a raw reading to 64 bits against the latest one. A reading less than half the counter
  // range behind the latest is taken as late (reordered), not as a wrap; further back, as a wrap.
  [[nodiscard]] int64_t unwrap(uint64_t raw) const noexcept;
  // A counter reading and the host time it was taken at (e.g. a frame's sample index and its
  // arrival); advances the unwrap reference and refits the rate.
  void observe(uint64_t raw, int64_t host_ns) noexcept;
  // Host time of a raw reading near the latest observed one. Valid after one observe().
  [[nodiscard]] int64_t to_host_ns(uint64_t raw) const noexcept;
  // The inverse: the raw (wrapped) counter value the device shows at a host time. Valid after one
  // observe().
  [[nodiscard]] uint64_t to_raw(int64_t host_ns) const noexcept;
  // Measured rate error of the device's crystal against the host clock, ppm.
  [[nodiscard]] double drift_ppm() const noexcept;
  [[nodiscard]] bool valid() const noexcept { return count_ > 0; }

 private:
  struct Pair {
    int64_t ticks;
    int64_t host_ns;
  };
  void refit() noexcept;

  DeviceClockOptions opts_;
  uint64_t mask_;
  bool started_ = false;
  uint64_t last_raw_ = 0;
  int64_t last_ticks_ = 0;  // unwrapped
  std::array<Pair, kMaxWindow> pairs_{};
  size_t count_ = 0;
  size_t next_ = 0;
  double ns_per_tick_;      // fitted
  int64_t ref_ticks_ = 0;   // fit: host = ref_host + (ticks - ref_ticks) * ns_per_tick
  double ref_host_ns_ = 0;
};

}  // namespace ion
