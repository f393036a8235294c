#include "ion/core/clock_sync.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ion {

ClockSync::ClockSync(ClockSyncOptions options) : opts_(options) {
  opts_.window_bursts = std::clamp<size_t>(opts_.window_bursts, 1, kMaxWindow);
}

bool ClockSync::add(const TimeSample& s) noexcept {
  std::lock_guard lock(mu_);
  if (s.rtt_ns() < 0 || s.t3_ns < s.t0_ns) {
    ++rejected_;
    return false;
  }
  if (burst_size_ < kMaxBurst) burst_[burst_size_++] = s;
  return true;
}

ClockSync::Point ClockSync::burst_point_locked() const noexcept {
  // Remove drift inside the burst with the current fit, then bound θ at the first probe's time.
  const double b = count_ > 0 ? b_ : 0.0;
  const double b_err = count_ > 0 ? b_err_ : opts_.max_drift_ppm * 1e-6;
  const int64_t ref = burst_[0].local_mid_ns();
  std::array<double, kMaxBurst> up{};    // t1 - t0 = θ + up delay:   θ <= min of these
  std::array<double, kMaxBurst> down{};  // t3 - t2 = down delay - θ: θ >= -min of these
  int64_t span = 0;
  for (size_t i = 0; i < burst_size_; ++i) {
    const TimeSample& x = burst_[i];
    const int64_t dt = x.local_mid_ns() - ref;
    const double trend = b * static_cast<double>(dt);
    up[i] = static_cast<double>(x.t1_ns - x.t0_ns) - trend;
    down[i] = static_cast<double>(x.t3_ns - x.t2_ns) + trend;
    // Probe legs span the probe's own duration too.
    span = std::max<int64_t>(
        {span, std::llabs(dt), std::llabs(x.t0_ns - ref), std::llabs(x.t3_ns - ref)});
  }
  const size_t n = burst_size_;
  const auto k = static_cast<size_t>(opts_.centre_quantile * static_cast<double>(n - 1));
  std::nth_element(up.begin(), up.begin() + static_cast<std::ptrdiff_t>(k), up.begin() + static_cast<std::ptrdiff_t>(n));
  std::nth_element(down.begin(), down.begin() + static_cast<std::ptrdiff_t>(k), down.begin() + static_cast<std::ptrdiff_t>(n));
  const double up_q = up[k];
  const double down_q = down[k];
  const double up_min = *std::min_element(up.begin(), up.begin() + static_cast<std::ptrdiff_t>(n));
  const double down_min =
      *std::min_element(down.begin(), down.begin() + static_cast<std::ptrdiff_t>(n));
  const double lo = -down_min;
  const double hi = up_min;
  const double centre = std::clamp((up_q - down_q) / 2, lo, hi);
  // Half-width measured from the chosen centre, so the interval stays exactly [lo, hi].
  const double half =
      std::max(centre - lo, hi - centre) + b_err * static_cast<double>(span);
  return {ref, static_cast<int64_t>(std::llround(centre)),
          static_cast<int64_t>(std::ceil(std::max(half, 0.0))) + 1};
}

void ClockSync::end_burst() noexcept {
  std::lock_guard lock(mu_);
  if (burst_size_ == 0) return;
  const Point point = burst_point_locked();
  burst_size_ = 0;
  // A burst that contradicts the model beyond every bound means the model is wrong (e.g. a drift
  // far outside max_drift): start over from this burst rather than average it in.
  if (count_ > 0) {
    const ClockEstimate e = estimate_locked(point.local_ns);
    const int64_t miss = std::llabs(point.offset_ns - e.offset_ns);
    if (miss > e.uncertainty_ns + point.half_rtt_ns) {
      ++rejected_;
      count_ = 0;
      next_ = 0;
    }
  }
  window_[next_] = point;
  next_ = (next_ + 1) % opts_.window_bursts;
  count_ = std::min(count_ + 1, opts_.window_bursts);
  refit_locked();
}

void ClockSync::reset() noexcept {
  std::lock_guard lock(mu_);
  count_ = 0;
  next_ = 0;
  burst_size_ = 0;
  a_ns_ = 0;
  b_ = 0;
  b_err_ = 0;
}

void ClockSync::refit_locked() noexcept {
  // Weighted least squares of offset against local time, weights 1/half_rtt².
  ref_ns_ = window_[(next_ + opts_.window_bursts - 1) % opts_.window_bursts].local_ns;
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < count_; ++i) {
    const Point& p = window_[i];
    const double h = static_cast<double>(std::max<int64_t>(p.half_rtt_ns, 1));
    const double w = 1.0 / (h * h);
    const double x = static_cast<double>(p.local_ns - ref_ns_);
    const double y = static_cast<double>(p.offset_ns);
    sw += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    sxy += w * x * y;
  }
  const double den = sw * sxx - sx * sx;
  const double span = count_ > 1 ? sxx / sw - (sx / sw) * (sx / sw) : 0;  // weighted variance of x
  if (count_ < 2 || den <= 0 || span < 1e16) {  // spread under ~100 ms: no drift to speak of
    b_ = 0;
    a_ns_ = sy / sw;
    b_err_ = opts_.max_drift_ppm * 1e-6;
    return;
  }
  b_ = (sw * sxy - sx * sy) / den;
  a_ns_ = (sy - b_ * sx) / sw;
  // Drift error bound: the worst slope two intervals allow, i.e. the half-widths of the two
  // extreme points over their distance, floored; never beyond the physical maximum.
  const Point* first = &window_[0];
  const Point* last = &window_[0];
  for (size_t i = 1; i < count_; ++i) {
    if (window_[i].local_ns < first->local_ns) first = &window_[i];
    if (window_[i].local_ns > last->local_ns) last = &window_[i];
  }
  // Under a linear offset, the true slope is within (h_first + h_last) / dx of the slope through
  // the two extreme points; the fitted slope is |b - s2p| further away at most.
  const double dx = static_cast<double>(last->local_ns - first->local_ns);
  const double s2p = static_cast<double>(last->offset_ns - first->offset_ns) / dx;
  const double slope_bound = static_cast<double>(first->half_rtt_ns + last->half_rtt_ns) / dx;
  b_err_ = std::clamp(std::abs(b_ - s2p) + slope_bound, opts_.drift_error_floor_ppm * 1e-6,
                      opts_.max_drift_ppm * 1e-6);
  if (std::abs(b_) > opts_.max_drift_ppm * 1e-6) {  // not physical: fall back to no drift
    b_ = 0;
    a_ns_ = sy / sw;
  }
}

ClockEstimate ClockSync::estimate_locked(int64_t t) const noexcept {
  ClockEstimate e;
  const bool have_window = count_ > 0;
  if (!have_window && burst_size_ == 0) return e;
  e.valid = true;
  // Intersect every burst's interval carried to t.
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  int64_t min_rtt = INT64_MAX;
  const auto take = [&](const Point& p, double slope, double slope_err) {
    const double dt = static_cast<double>(t - p.local_ns);
    const double centre = static_cast<double>(p.offset_ns) + slope * dt;
    const double half = static_cast<double>(p.half_rtt_ns) + slope_err * std::abs(dt);
    lo = std::max(lo, centre - half);
    hi = std::min(hi, centre + half);
    min_rtt = std::min(min_rtt, 2 * p.half_rtt_ns);
  };
  double line = 0;
  if (have_window) {
    for (size_t i = 0; i < count_; ++i) take(window_[i], b_, b_err_);
    line = a_ns_ + b_ * static_cast<double>(t - ref_ns_);
    e.drift_ppm = b_ * 1e6;
  } else {
    const Point open = burst_point_locked();  // first burst still open
    take(open, 0, opts_.max_drift_ppm * 1e-6);
    line = static_cast<double>(open.offset_ns);
  }
  if (lo > hi) {
    // Inconsistent (a bound was too optimistic): trust only the newest burst.
    const Point p = have_window ? window_[(next_ + opts_.window_bursts - 1) % opts_.window_bursts]
                                : burst_point_locked();
    lo = -std::numeric_limits<double>::infinity();
    hi = std::numeric_limits<double>::infinity();
    take(p, b_, opts_.max_drift_ppm * 1e-6);
  }
  const double est = std::clamp(line, lo, hi);
  e.offset_ns = static_cast<int64_t>(std::llround(est));
  e.uncertainty_ns = static_cast<int64_t>(std::ceil(std::max(est - lo, hi - est))) + 1;
  e.min_rtt_ns = min_rtt;
  return e;
}

ClockEstimate ClockSync::estimate(int64_t local_ns) const noexcept {
  std::lock_guard lock(mu_);
  return estimate_locked(local_ns);
}

bool ClockSync::synced() const noexcept {
  std::lock_guard lock(mu_);
  return count_ > 0 || burst_size_ > 0;
}

int64_t ClockSync::to_network(int64_t local_ns) const noexcept {
  return local_ns + estimate(local_ns).offset_ns;
}

int64_t ClockSync::to_local(int64_t network_ns) const noexcept {
  // offset changes by ~drift * offset over the mapping: two fixed-point steps are exact to < 1 ns.
  int64_t local = network_ns - estimate(network_ns).offset_ns;
  local = network_ns - estimate(local).offset_ns;
  return network_ns - estimate(local).offset_ns;
}

size_t ClockSync::bursts() const noexcept {
  std::lock_guard lock(mu_);
  return count_;
}

uint64_t ClockSync::rejected_samples() const noexcept {
  std::lock_guard lock(mu_);
  return rejected_;
}

}  // namespace ion
