#include "ion/core/device_clock.h"

#include <algorithm>
#include <cmath>

namespace ion {

DeviceClock::DeviceClock(DeviceClockOptions options)
    : opts_(options),
      mask_(options.counter_bits >= 64 ? ~uint64_t{0}
                                       : (uint64_t{1} << options.counter_bits) - 1),
      ns_per_tick_(1e9 / options.tick_hz) {
  opts_.window = std::clamp<size_t>(opts_.window, 2, kMaxWindow);
}

int64_t DeviceClock::unwrap(uint64_t raw) const noexcept {
  raw &= mask_;
  if (!started_) return static_cast<int64_t>(raw);
  const uint64_t forward = (raw - last_raw_) & mask_;
  const uint64_t half = mask_ / 2 + 1;
  if (forward < half) return last_ticks_ + static_cast<int64_t>(forward);
  return last_ticks_ - static_cast<int64_t>((last_raw_ - raw) & mask_);  // a late reading
}

void DeviceClock::observe(uint64_t raw, int64_t host_ns) noexcept {
  const int64_t ticks = unwrap(raw);
  if (!started_ || ticks > last_ticks_) {
    last_raw_ = raw & mask_;
    last_ticks_ = ticks;
    started_ = true;
  }
  pairs_[next_] = {ticks, host_ns};
  next_ = (next_ + 1) % opts_.window;
  count_ = std::min(count_ + 1, opts_.window);
  refit();
}

void DeviceClock::refit() noexcept {
  // Least squares of host time on ticks, relative to the newest pair for precision.
  const Pair& newest = pairs_[(next_ + opts_.window - 1) % opts_.window];
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < count_; ++i) {
    const double x = static_cast<double>(pairs_[i].ticks - newest.ticks);
    const double y = static_cast<double>(pairs_[i].host_ns - newest.host_ns);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const auto n = static_cast<double>(count_);
  const double den = n * sxx - sx * sx;
  const double nominal = 1e9 / opts_.tick_hz;
  double slope = nominal;
  // A rate from too short a span is noise: need at least 1000 ticks of spread.
  if (count_ >= 2 && den > 0 && (sxx / n - (sx / n) * (sx / n)) > 1e6) {
    slope = (n * sxy - sx * sy) / den;
    if (std::abs(slope / nominal - 1) > 1e-3) slope = nominal;  // > 1000 ppm: not a crystal
  }
  ns_per_tick_ = slope;
  ref_ticks_ = newest.ticks;
  ref_host_ns_ = static_cast<double>(newest.host_ns) + (sy - slope * sx) / n;
}

int64_t DeviceClock::to_host_ns(uint64_t raw) const noexcept {
  const double dt = static_cast<double>(unwrap(raw) - ref_ticks_);
  return static_cast<int64_t>(std::llround(ref_host_ns_ + dt * ns_per_tick_));
}

uint64_t DeviceClock::to_raw(int64_t host_ns) const noexcept {
  const double ticks = static_cast<double>(ref_ticks_) +
                       (static_cast<double>(host_ns) - ref_host_ns_) / ns_per_tick_;
  return static_cast<uint64_t>(std::llround(ticks)) & mask_;
}

double DeviceClock::drift_ppm() const noexcept {
  // The device runs fast when fewer host ns pass per tick than nominal.
  return (1e9 / opts_.tick_hz / ns_per_tick_ - 1) * 1e6;
}

}  // namespace ion
