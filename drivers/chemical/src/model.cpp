#include "ion/chemical/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ion::chemical {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

constexpr double kLn10 = 2.302585092994046;

}  // namespace

void ChemicalParams::validate() const {
  require(sensor.sensitivity_ua_per_cm2_per_mm > 0 && sensor.area_cm2 > 0, "sensor sensitivity and area must be > 0");
  require(sensor.background_na >= 0 && sensor.noise_na >= 0, "sensor background_na and noise_na must be >= 0");
  require(sensor.t90_s > 0, "sensor t90 must be > 0");
  require(sensor.lod_um > 0 && sensor.linear_max_um > sensor.lod_um, "sensor range: 0 < lod_um < linear_max_um");
  require(sensor.saturation_um > 0, "sensor saturation_um must be > 0");
  require(memristor.v_per_na > 0 && memristor.v_th > 0 && memristor.v0 > 0, "memristor v_per_na, v_th and v0 must be > 0");
  require(memristor.tau_set_s > 0 && memristor.tau_stm_s > 0 && memristor.tau_ltm_s > 0, "memristor time constants must be > 0");
  require(memristor.x_c > 0 && memristor.x_c < 1, "memristor x_c must be in (0, 1)");
  require(memristor.hold_fraction > 0 && memristor.hold_fraction <= 1, "memristor hold_fraction must be in (0, 1]");
  require(memristor.eta >= 0 && memristor.eta <= 1 && memristor.kappa >= 0 && memristor.kappa < 1,
          "memristor eta must be in [0, 1], kappa in [0, 1)");
  require(memristor.noise_tau_s > 0, "memristor noise_tau must be > 0");
  require(memristor.g_on_s > memristor.g_off_s && memristor.g_off_s > 0, "memristor g_on_s must be above g_off_s > 0");
  require(release.v_app >= 0 && release.r_heater_ohm > 0 && release.r_th_k_per_w > 0 && release.tau_th_s > 0,
          "heater v_app >= 0, r_heater_ohm, r_th_k_per_w and tau_th must be > 0");
  require(release.t_max_c > release.t_on_c, "release t_max_c must be above t_on_c");
  require(release.k_max_per_s >= 0 && release.load_nmol >= 0, "release k_max and load must be >= 0");
  require(release.command_heat_s >= 0 && release.command_power_w >= 0, "command heat and power must be >= 0");
  require(dish.volume_ml > 0 && dish.tau_clear_s > 0, "dish volume and tau_clear must be > 0");
  require(dish.baseline_um >= 0 && dish.pc12_release_nmol >= 0, "dish baseline and PC12 release must be >= 0");
  require(dish.pc12_rate_max_hz >= 0 && dish.pc12_ec50_um > 0, "PC12 rate >= 0, ec50 > 0");
  require(step_ms >= 0.01 && step_ms <= 100, "step_ms must be within 0.01..100");
}

double ChemicalNeuron::sensor_current_na(const SensorParams& s, double um) noexcept {
  // Linear over the published range; above it the response saturates smoothly (same slope at
  // the end of the range), so a reading beyond it is flagged, never extrapolated.
  const double c = std::max(0.0, um);
  double f = c;
  if (c > s.linear_max_um) f = s.linear_max_um + s.saturation_um * -std::expm1(-(c - s.linear_max_um) / s.saturation_um);
  return s.slope_na_per_um() * f + s.background_na;
}

Reading ChemicalNeuron::classify(const SensorParams& s, double estimate_um) noexcept {
  if (estimate_um < s.lod_um) return Reading::below_range;
  if (estimate_um > s.linear_max_um) return Reading::saturated;
  return Reading::in_range;
}

double ChemicalNeuron::release_rate_per_s(const ReleaseParams& r, double t) noexcept {
  if (t < r.t_on_c) return 0;
  if (t >= r.t_max_c) return r.k_max_per_s;
  return r.k_max_per_s * (t - r.t_on_c) / (r.t_max_c - r.t_on_c);
}

ChemicalNeuron::ChemicalNeuron(const ChemicalParams& p)
    : p_(p), dt_ns_(std::llround(p.step_ms * 1e6)), rng_(p.seed) {
  p_.validate();
  s_.bath_um = p.dish.baseline_um;
  s_.seen_um = s_.bath_um;
  s_.temperature_c = p.release.t_ambient_c;
  s_.current_na = sensor_current_na(p.sensor, s_.seen_um);
}

void ChemicalNeuron::command_release(int64_t t_ns) noexcept { pending_.push_back({t_ns, 0, 0}); }
void ChemicalNeuron::stimulate_pc12(int64_t t_ns) noexcept { pending_.push_back({t_ns, 1, 0}); }
void ChemicalNeuron::add_dopamine(double nmol, int64_t t_ns) noexcept {
  if (std::isfinite(nmol) && nmol > 0) pending_.push_back({t_ns, 2, nmol});
}

double ChemicalNeuron::threshold_v() const noexcept {
  return p_.memristor.v_th * (1.0 - p_.memristor.kappa * s_.x_ltm);
}

double ChemicalNeuron::threshold_um() const noexcept {
  const double i = threshold_v() / p_.memristor.v_per_na - p_.sensor.background_na;
  return std::max(0.0, i / p_.sensor.slope_na_per_um());
}

void ChemicalNeuron::advance(int64_t until_ns, std::vector<ChemicalEvent>& out) noexcept {
  while (t_ns_ + dt_ns_ <= until_ns) step(out);
}

void ChemicalNeuron::step(std::vector<ChemicalEvent>& out) noexcept {
  const double dt = static_cast<double>(dt_ns_) * 1e-9;
  const int64_t end = t_ns_ + dt_ns_;
  // Inputs due by the end of this step.
  for (size_t i = 0; i < pending_.size();) {
    const Pending& q = pending_[i];
    if (q.t_ns >= end) {
      ++i;
      continue;
    }
    if (q.what == 0) {
      heat_until_ns_ = std::max<int64_t>(heat_until_ns_, std::max(q.t_ns, t_ns_) + std::llround(p_.release.command_heat_s * 1e9));
      ++c_.commands;
    } else if (q.what == 1) {
      s_.bath_um += p_.dish.pc12_release_nmol / p_.dish.volume_ml;
      ++c_.stimulations;
    } else {
      s_.bath_um += q.nmol / p_.dish.volume_ml;
    }
    pending_[i] = pending_.back();
    pending_.pop_back();
  }

  // Sensor: the electrode follows the bath with a first-order lag (t90), plus correlated noise.
  const SensorParams& sp = p_.sensor;
  s_.seen_um += (s_.bath_um - s_.seen_um) * -std::expm1(-dt * kLn10 / sp.t90_s);
  const MemristorParams& mp = p_.memristor;
  if (sp.noise_na > 0) {
    const double a = std::exp(-dt / mp.noise_tau_s);
    std::normal_distribution<double> n(0.0, sp.noise_na * std::sqrt(1 - a * a));
    noise_na_ = noise_na_ * a + n(rng_);
  }
  s_.current_na = sensor_current_na(sp, s_.seen_um) + noise_na_;
  s_.estimate_um = (s_.current_na - sp.background_na) / sp.slope_na_per_um();
  s_.reading = classify(sp, s_.estimate_um);

  // Memristor: switches above its threshold (in tau_set), dissolves below it (tau_stm); every
  // switch consolidates a little, which lowers the threshold; consolidation fades (tau_ltm).
  const double v = mp.v_per_na * std::max(0.0, s_.current_na);
  const double vth = threshold_v();
  const double before = s_.x;
  // Threshold switching with hysteresis: a filament that is on holds down to hold_fraction of the
  // threshold, so noise around the threshold does not make it chatter.
  const bool on = s_.x >= mp.x_c;
  if (v > vth) {
    const double rate = std::exp(std::min(50.0, (v - vth) / mp.v0)) / mp.tau_set_s;
    s_.x = 1.0 - (1.0 - s_.x) * std::exp(-dt * rate);
  } else if (!on || v < mp.hold_fraction * vth) {
    s_.x *= std::exp(-dt / mp.tau_stm_s);
  }
  s_.x_ltm *= std::exp(-dt / mp.tau_ltm_s);
  if (before < mp.x_c && s_.x >= mp.x_c) {
    out.push_back({ChemicalEvent::Kind::firing, t_ns_ + dt_ns_ / 2});
    ++c_.firings;
    s_.x_ltm += mp.eta * (1.0 - s_.x_ltm);
  }

  // Heater in series with the memristor (or driven by a command), and the dish's temperature.
  const ReleaseParams& rp = p_.release;
  const double g = mp.g_off_s + (mp.g_on_s - mp.g_off_s) * s_.x;
  const double r_total = rp.r_heater_ohm + 1.0 / g;
  s_.heater_w = rp.v_app * rp.v_app * rp.r_heater_ohm / (r_total * r_total);
  if (end <= heat_until_ns_ + dt_ns_) s_.heater_w = std::max(s_.heater_w, rp.command_power_w);
  const double t_eq = rp.t_ambient_c + s_.heater_w * rp.r_th_k_per_w;
  s_.temperature_c = t_eq + (s_.temperature_c - t_eq) * std::exp(-dt / rp.tau_th_s);

  // Hydrogel release into the bath; the bath clears towards its baseline.
  const double k = release_rate_per_s(rp, s_.temperature_c);
  const double left = rp.load_nmol - s_.released_nmol;
  const double released = left * -std::expm1(-k * dt);
  s_.released_nmol += released;
  const DishParams& dp = p_.dish;
  s_.bath_um = dp.baseline_um + (s_.bath_um - dp.baseline_um) * std::exp(-dt / dp.tau_clear_s) +
               released / dp.volume_ml;

  // PC12-like cells respond to dopamine: activity rising with the concentration.
  const double rate = dp.pc12_rate_max_hz * s_.bath_um / (s_.bath_um + dp.pc12_ec50_um);
  if (rate > 0) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (u(rng_) < rate * dt) {
      out.push_back({ChemicalEvent::Kind::pc12_spike, t_ns_ + dt_ns_ / 2});
      ++c_.pc12_spikes;
    }
  }
  t_ns_ = end;
  ++c_.steps;
}

Calibration calibrate(const ChemicalParams& params, const std::vector<double>& levels_um) {
  ChemicalParams p = params;
  p.dish.tau_clear_s = 1e9;      // what is added stays
  p.dish.pc12_rate_max_hz = 0;
  p.memristor.v_th = 1e9;        // no firing, no heating
  Calibration c;
  c.levels_um = levels_um;
  const auto settle_ns = static_cast<int64_t>(5 * p.sensor.t90_s * 1e9);
  for (const double level : levels_um) {
    ChemicalNeuron m(p);
    m.add_dopamine(level * p.dish.volume_ml, 0);
    std::vector<ChemicalEvent> ev;
    m.advance(settle_ns, ev);
    double sum = 0;
    int n = 0;
    for (int64_t t = settle_ns; t < settle_ns + 1'000'000'000; t += 10'000'000, ++n) {
      m.advance(t, ev);
      sum += m.state().current_na;
    }
    c.mean_current_na.push_back(sum / n);
  }
  const double n = static_cast<double>(levels_um.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < levels_um.size(); ++i) {
    mx += levels_um[i] / n;
    my += c.mean_current_na[i] / n;
  }
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < levels_um.size(); ++i) {
    sxx += (levels_um[i] - mx) * (levels_um[i] - mx);
    sxy += (levels_um[i] - mx) * (c.mean_current_na[i] - my);
    syy += (c.mean_current_na[i] - my) * (c.mean_current_na[i] - my);
  }
  c.slope_na_per_um = sxx > 0 ? sxy / sxx : 0;
  c.r2 = sxx > 0 && syy > 0 ? sxy * sxy / (sxx * syy) : 0;
  return c;
}

double dose_to_fire(const ChemicalNeuron& from, double step_um, double max_um) {
  for (double dose = step_um; dose < max_um; dose += step_um) {
    ChemicalNeuron m = from;
    m.add_dopamine(dose * m.params().dish.volume_ml, m.now_ns());
    std::vector<ChemicalEvent> ev;
    m.advance(m.now_ns() + 20'000'000'000, ev);
    if (m.counters().firings > from.counters().firings) return dose;
  }
  return -1;
}

}  // namespace ion::chemical
