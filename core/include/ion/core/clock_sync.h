#pragma once
// Host monotonic time -> network time (the broker's monotonic clock), from NTP-style probes:
// t0 node send, t1 broker receive, t2 broker send, t3 node receive;
// offset = ((t1 - t0) + (t2 - t3)) / 2, rtt = (t3 - t0) - (t2 - t1).
//
// Why the bound holds: with true offset θ and one-way delays up, down >= 0, t1 - t0 = θ + up >= θ
// and t3 - t2 = down - θ >= -θ, so θ lies in [-min(t3 - t2), min(t1 - t0)] over a burst, whatever
// the asymmetry. Taking each direction's minimum separately gives an interval inside the one of
// the minimum-RTT sample (|offset - θ| <= rtt/2), and its centre converges as each direction
// separately nears its floor. Drift inside a burst is removed with the current estimate and
// covered by its error bound. Offset and drift are fitted over a sliding window
// of bursts (weighted least squares, weight 1/rtt²). At a query time t each burst i gives an
// interval [o_i - rtt_i/2, o_i + rtt_i/2] carried forward with the fitted drift, widened by the
// drift's own error bound times |t - τ_i|; the estimate lies in the intersection of these
// intervals and the uncertainty is the distance to the far end. No probe-based method can see path
// asymmetry: the bound, not the estimate, is what is guaranteed.
#include <array>
#include <cstdint>
#include <mutex>

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
  [[nodiscard]] int64_t local_mid_ns() const noexcept { return t0_ns + (t3_ns - t0_ns) / 2; }
};

struct ClockEstimate {
  bool valid = false;
  int64_t offset_ns = 0;       // network - local at the query time
  int64_t uncertainty_ns = 0;  // |true offset - offset_ns| <= this (given |drift| <= max_drift)
  double drift_ppm = 0;        // d(offset)/d(local time), in parts per million
  int64_t min_rtt_ns = 0;      // best round trip in the window
};

struct ClockSyncOptions {
  size_t window_bursts = 32;          // bursts kept for the fit (~160 s at one burst per 5 s)
  double max_drift_ppm = 500;         // crystals are within ±100 ppm; more means a bad sample
  double drift_error_floor_ppm = 1.0; // the drift error bound never goes below this
  // Where inside its proven interval a burst's estimate sits: the difference of this quantile of
  // each direction's one-way terms (0 = the minima). A low quantile is steadier than the minimum
  // when delays have a soft floor; the bound is always from the minima, so it stays proven.
  double centre_quantile = 0.25;
};

class ClockSync {
 public:
  static constexpr size_t kMaxWindow = 64;
  explicit ClockSync(ClockSyncOptions options = {});

  // Takes a probe result into the current burst; false (ignored) if inconsistent (negative RTT).
  bool add(const TimeSample& s) noexcept;
  // Closes the current burst: its minimum-RTT sample joins the window and the fit is redone.
  // Before the first burst closes, the best sample so far is used on its own.
  void end_burst() noexcept;
  // Forgets everything (the broker restarted: a new network time axis).
  void reset() noexcept;

  [[nodiscard]] ClockEstimate estimate(int64_t local_ns) const noexcept;
  [[nodiscard]] bool synced() const noexcept;
  [[nodiscard]] int64_t to_network(int64_t local_ns) const noexcept;
  [[nodiscard]] int64_t to_local(int64_t network_ns) const noexcept;
  [[nodiscard]] size_t bursts() const noexcept;
  [[nodiscard]] uint64_t rejected_samples() const noexcept;

 private:
  struct Point {
    int64_t local_ns;   // local mid-time of the probe
    int64_t offset_ns;
    int64_t half_rtt_ns;
  };
  void refit_locked() noexcept;
  [[nodiscard]] ClockEstimate estimate_locked(int64_t local_ns) const noexcept;

  ClockSyncOptions opts_;
  mutable std::mutex mu_;
  std::array<Point, kMaxWindow> window_{};
  size_t count_ = 0;  // points in the window
  size_t next_ = 0;   // ring position
  static constexpr size_t kMaxBurst = 256;
  [[nodiscard]] Point burst_point_locked() const noexcept;
  std::array<TimeSample, kMaxBurst> burst_{};
  size_t burst_size_ = 0;
  uint64_t rejected_ = 0;
  // Fitted model: offset(t) = a_ns + b * (t - ref_ns); b_err bounds |b - true drift|.
  int64_t ref_ns_ = 0;
  double a_ns_ = 0;
  double b_ = 0;
  double b_err_ = 0;
};

}  // namespace ion
