#pragma once
// The controller behind `delay: auto`: a connection's delay follows a high quantile of the
// measured path latency plus a margin. It rises at once when latency needs it (late events are the
// failure to avoid), to the need plus one more margin of headroom, and falls only after latency has
// stayed well below it for a while (hysteresis), so it does not flap. Pure logic with explicit times: tested deterministically.
#include <algorithm>
#include <cstdint>

namespace ion {

struct AutoDelayOptions {
  int64_t initial_ns = 100'000'000;  // before any measurement
  int64_t margin_ns = 2'000'000;     // added to the measured quantile
  int64_t min_ns = 1'000'000;
  int64_t max_ns = 10'000'000'000;
  double lower_fraction = 0.8;       // falls only when need < fraction * current ...
  int64_t lower_after_ns = 30'000'000'000;  // ... continuously for this long
};

class AutoDelay {
 public:
  explicit AutoDelay(AutoDelayOptions o = {}) : o_(o), delay_ns_(clamp(o.initial_ns)) {}

  enum class Change : uint8_t { none, raised, lowered };

  // A latency report: the path's high quantile (e.g. p99.9) over the reporting window, at `now`.
  Change observe(int64_t latency_quantile_ns, int64_t now_ns) noexcept {
    const int64_t need = clamp(latency_quantile_ns + o_.margin_ns);
    if (need > delay_ns_) {
      // One more margin of headroom, so a creeping quantile does not raise it every report.
      delay_ns_ = clamp(need + o_.margin_ns);
      below_since_ns_ = -1;
      ++raises_;
      return Change::raised;
    }
    if (static_cast<double>(need) < o_.lower_fraction * static_cast<double>(delay_ns_)) {
      if (below_since_ns_ < 0) below_since_ns_ = now_ns;
      if (now_ns - below_since_ns_ >= o_.lower_after_ns) {
        // Lower to the most the window asked for, not to the last report alone.
        delay_ns_ = clamp(std::max(need, max_need_below_ns_));
        below_since_ns_ = -1;
        max_need_below_ns_ = 0;
        ++lowers_;
        return Change::lowered;
      }
      max_need_below_ns_ = std::max(max_need_below_ns_, need);
      return Change::none;
    }
    below_since_ns_ = -1;  // back in the dead band: the wait starts over
    max_need_below_ns_ = 0;
    return Change::none;
  }

  [[nodiscard]] int64_t delay_ns() const noexcept { return delay_ns_; }
  [[nodiscard]] uint64_t raises() const noexcept { return raises_; }
  [[nodiscard]] uint64_t lowers() const noexcept { return lowers_; }

 private:
  [[nodiscard]] int64_t clamp(int64_t v) const noexcept {
    return v < o_.min_ns ? o_.min_ns : (v > o_.max_ns ? o_.max_ns : v);
  }
  AutoDelayOptions o_;
  int64_t delay_ns_;
  int64_t below_since_ns_ = -1;
  int64_t max_need_below_ns_ = 0;
  uint64_t raises_ = 0;
  uint64_t lowers_ = 0;
};

}  // namespace ion
