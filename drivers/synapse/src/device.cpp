#include "ion/synapse/device.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "ion/synapse/tspcm.h"

namespace ion::synapse {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

// Multiplicative log-normal factor with median-preserving sigma (mean of the log is 0).
double lognormal(Rng& rng, double sigma) {
  if (sigma <= 0) return 1.0;
  std::normal_distribution<double> n(0.0, sigma);
  return std::exp(n(rng));
}

uint64_t mix(uint64_t x) {  // splitmix64: independent seeds per cell from one board seed
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void TiOxParams::validate() const {
  require(r_on_ohm > 0 && r_off_ohm > r_on_ohm, "r_on_ohm must be > 0 and below r_off_ohm");
  require(v_th_pos > 0 && v_th_neg > 0, "thresholds v_th_pos and v_th_neg must be > 0");
  require(a_pos >= 0 && a_neg >= 0, "rate prefactors a_pos and a_neg must be >= 0");
  require(t_pos > 0 && t_neg > 0, "t_pos and t_neg must be > 0");
  require(r_init_ohm >= r_on_ohm && r_init_ohm <= r_off_ohm, "r_init_ohm must lie in [r_on_ohm, r_off_ohm]");
  require(r_init_spread >= 0 && r_init_spread < 1, "r_init_spread must be in [0, 1)");
  require(d2d_sigma >= 0 && d2d_sigma <= 2, "d2d_sigma must be in [0, 2]");
  require(c2c_sigma >= 0 && c2c_sigma <= 2, "c2c_sigma must be in [0, 2]");
  require(read_noise >= 0 && read_noise < 0.5, "read_noise must be in [0, 0.5)");
}

void VolatileParams::validate() const {
  nonvolatile.validate();
  require(v_th > 0, "volatile v_th must be > 0");
  require(g_max_s > 0, "g_max_s must be > 0");
  require(rate_per_v_s >= 0, "rate_per_v_s must be >= 0");
  require(tau_ms > 0, "tau_ms must be > 0");
}

NanofluidicParams NanofluidicParams::preset(std::string_view name) {
  NanofluidicParams p;
  if (name == "robin2021") {
    // The 2021 theory (Robin, Kavokine, Bocquet, Science 373:687): unipolar Wien-effect law with
    // alpha = 2 (SM Eq. S8 "typically ~2"), memory of "a few milliseconds" (cluster formation).
    // Stand-ins: tau = 5 ms within "a few ms"; g0 = 0.1 nS, g1 = 1 nS (only g0 << g1 is published).
    p.law = NanofluidicLaw::unipolar;
    p.tau_s = 5e-3;
    p.v0 = 1.0;
    p.g0_s = 1e-10;
    p.g1_s = 1e-9;
    p.alpha = 2;
    return p;
  }
  if (name == "robin2023") {
    // The 2023 experimental channels (Robin et al., Science 379:161): memory times of 50-400 s
    // (SM Figs. S12, S15); tau = 100 s is a choice within that range. Mixed law (SM Eq. S43) with
    // a = b g_bi/g_uni so that an erase (-1 V) drives back to the rest value, as 30 writes then 30
    // erases return G to its start (Fig. 4C); b = 0.12 gives the 12 % span read off Fig. 4C's
    // axis. Stand-ins: g_uni = g_bi = 0.5 nS (absolute conductances not read).
    p.law = NanofluidicLaw::mixed;
    p.tau_s = 100;
    p.v0 = 1.0;
    p.g_uni_s = 5e-10;
    p.g_bi_s = 5e-10;
    p.b = 0.12;
    p.a = p.b * p.g_bi_s / p.g_uni_s;
    return p;
  }
  throw std::invalid_argument("unknown nanofluidic preset '" + std::string(name) +
                              "'; presets: robin2021, robin2023");
}

double NanofluidicParams::g_qs_s(double v) const noexcept {
  switch (law) {
    case NanofluidicLaw::unipolar:
      return g0_s + g1_s * std::pow(std::fabs(v / v0), alpha);
    case NanofluidicLaw::bipolar:
      return g_minus_s + (g_plus_s - g_minus_s) / (1.0 + std::exp(-v / v_s));
    case NanofluidicLaw::mixed: {
      const double x = v / v0;
      return std::max(g_floor_s, g_uni_s * (1.0 + a * x * x) + g_bi_s * (1.0 + b * x));
    }
  }
  return g0_s;
}

void NanofluidicParams::validate() const {
  require(tau_s > 0, "nanofluidic tau_s must be > 0");
  require(v0 > 0, "nanofluidic v0 must be > 0");
  require(g0_s > 0 && g1_s >= 0, "nanofluidic g0_s must be > 0 and g1_s >= 0");
  require(alpha >= 1 && alpha <= 4, "nanofluidic alpha must be in [1, 4]");
  require(g_minus_s > 0 && g_plus_s > 0, "nanofluidic g_plus_s and g_minus_s must be > 0");
  require(v_s > 0, "nanofluidic v_s must be > 0");
  require(g_uni_s >= 0 && g_bi_s >= 0 && g_uni_s + g_bi_s > 0, "nanofluidic g_uni_s and g_bi_s must be >= 0, not both 0");
  require(g_floor_s > 0, "nanofluidic g_floor_s must be > 0");
  require(std::isfinite(a) && std::isfinite(b), "nanofluidic a and b must be finite");
  require(d2d_sigma >= 0 && d2d_sigma <= 2, "d2d_sigma must be in [0, 2]");
  require(c2c_sigma >= 0 && c2c_sigma <= 2, "c2c_sigma must be in [0, 2]");
  require(read_noise >= 0 && read_noise < 0.5, "read_noise must be in [0, 0.5)");
  require(g_rest_s() > 0, "nanofluidic rest conductance G_qs(0) must be > 0");
}

void DeviceOptions::validate() const {
  switch (model) {
    case DeviceModel::tiox: tiox.validate(); break;
    case DeviceModel::volatile_cell: volatile_cell.validate(); break;
    case DeviceModel::nanofluidic: nanofluidic.validate(); break;
    case DeviceModel::ts_pcm: ts_pcm.validate(); break;
  }
}

double Memristor::read_ohm(int64_t t_ns, Rng& rng) const noexcept {
  const double r = resistance_ohm(t_ns);
  const double sd = read_noise();
  if (sd <= 0) return r;
  std::normal_distribution<double> n(0.0, sd);
  return r * (1.0 + n(rng));
}

TiOxDevice::TiOxDevice(const TiOxParams& p, double r_init_ohm, double a_scale_pos,
                       double a_scale_neg)
    : p_(p),
      r_ohm_(std::clamp(r_init_ohm, p.r_on_ohm, p.r_off_ohm)),
      a_pos_(a_scale_pos),
      a_neg_(a_scale_neg) {}

double TiOxDevice::step(const TiOxParams& p, double r, double v, double w, double a_scale) noexcept {
  // dR/dt = s(V) (r_b(V) - R)^2 towards the bound r_b(V); over a pulse of width w the exact
  // solution is r_b - (r_b - R) / (1 + s w |r_b - R|): monotone, never past the bound.
  if (!(w > 0) || !std::isfinite(v)) return r;
  if (v > p.v_th_pos) {
    const double bound = std::min(p.r_off_ohm, p.r_pos0_ohm + p.r_pos1_ohm_per_v * v);
    if (r >= bound) return r;
    const double s = a_scale * p.a_pos * std::expm1((v - p.v_th_pos) / p.t_pos);
    const double u = bound - r;
    return bound - u / (1.0 + s * w * u);
  }
  if (-v > p.v_th_neg) {
    const double bound = std::max(p.r_on_ohm, p.r_neg0_ohm + p.r_neg1_ohm_per_v * v);
    if (r <= bound) return r;
    const double s = a_scale * p.a_neg * std::expm1((-v - p.v_th_neg) / p.t_neg);
    const double u = r - bound;
    return bound + u / (1.0 + s * w * u);
  }
  return r;
}

void TiOxDevice::pulse(double volts, double width_s, int64_t /*t_ns*/, Rng& rng) noexcept {
  const bool pos = volts > 0;
  if (std::fabs(volts) <= (pos ? p_.v_th_pos : p_.v_th_neg)) return;  // below threshold: no draw
  const double c2c = lognormal(rng, p_.c2c_sigma);
  r_ohm_ = std::clamp(step(p_, r_ohm_, volts, width_s, (pos ? a_pos_ : a_neg_) * c2c), p_.r_on_ohm,
                      p_.r_off_ohm);
}

VolatileCellDevice::VolatileCellDevice(const VolatileParams& p, double r_init_ohm,
                                       double a_scale_pos, double a_scale_neg)
    : p_(p), nv_(p.nonvolatile, r_init_ohm, a_scale_pos, a_scale_neg) {}

double VolatileCellDevice::volatile_conductance_s(int64_t t_ns) const noexcept {
  if (g_v_s_ <= 0) return 0;
  const double dt_ms = static_cast<double>(std::max<int64_t>(0, t_ns - t_ref_ns_)) * 1e-6;
  return g_v_s_ * std::exp(-dt_ms / p_.tau_ms);
}

void VolatileCellDevice::pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept {
  const double over = std::fabs(volts) - p_.v_th;
  if (over > 0 && width_s > 0) {
    // Above its threshold the volatile layer charges towards g_max: dg/dt = (g_max - g) / tau_set.
    const double g = volatile_conductance_s(t_ns);
    const double k = 1.0 - std::exp(-p_.rate_per_v_s * over * width_s);
    g_v_s_ = g + (p_.g_max_s - g) * k;
    t_ref_ns_ = std::max(t_ref_ns_, t_ns);
  }
  nv_.pulse(volts, width_s, t_ns, rng);
}

double VolatileCellDevice::resistance_ohm(int64_t t_ns) const noexcept {
  return 1.0 / (1.0 / nv_.resistance_ohm(t_ns) + volatile_conductance_s(t_ns));
}

NanofluidicDevice::NanofluidicDevice(const NanofluidicParams& p, double g_scale, double tau_scale)
    : p_(p), g_scale_(g_scale), tau_s_(p.tau_s * tau_scale), g_s_(g_scale * p.g_rest_s()) {}

double NanofluidicDevice::conductance_s(int64_t t_ns) const noexcept {
  if (t_ref_ns_ == INT64_MIN || t_ns <= t_ref_ns_) return g_s_;  // never pulsed: at rest
  const double rest = g_scale_ * p_.g_rest_s();
  const double dt_s = static_cast<double>(t_ns - t_ref_ns_) * 1e-9;
  return rest + (g_s_ - rest) * std::exp(-dt_s / tau_s_);
}

void NanofluidicDevice::pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept {
  if (!(width_s > 0) || !std::isfinite(volts)) return;
  // At rest (V = 0) until the pulse starts, then the pulse's voltage for its width; a pulse that
  // overlaps the previous one starts where that one ended.
  const auto width_ns = static_cast<int64_t>(width_s * 1e9);
  const int64_t start_ns = t_ref_ns_ == INT64_MIN ? t_ns - width_ns : std::max(t_ref_ns_, t_ns - width_ns);
  const double g = conductance_s(start_ns);
  const double target = g_scale_ * p_.g_qs_s(volts) * lognormal(rng, p_.c2c_sigma);
  const double held_s = static_cast<double>(std::max<int64_t>(0, t_ns - start_ns)) * 1e-9;
  g_s_ = target + (g - target) * std::exp(-held_s / tau_s_);
  t_ref_ns_ = std::max(start_ns, t_ns);
}

double NanofluidicDevice::resistance_ohm(int64_t t_ns) const noexcept {
  return 1.0 / conductance_s(t_ns);
}

std::unique_ptr<Memristor> make_device(const DeviceOptions& o, uint32_t cell) {
  Rng rng(mix(o.seed ^ (static_cast<uint64_t>(cell) * 0x100000001b3ULL)));
  if (o.model == DeviceModel::ts_pcm) {
    const PcmParams& p = o.ts_pcm.pcm;
    std::normal_distribution<double> n(0.0, 1.0);
    const double dw_scale = std::max(0.05, 1.0 + p.dw_min_dtod * n(rng));
    const double reset_w = p.reset + p.reset_dtod * n(rng);
    return std::make_unique<TsPcmCell>(o.ts_pcm, dw_scale, reset_w);
  }
  if (o.model == DeviceModel::nanofluidic) {
    const double g_scale = lognormal(rng, o.nanofluidic.d2d_sigma);
    const double tau_scale = lognormal(rng, o.nanofluidic.d2d_sigma);
    return std::make_unique<NanofluidicDevice>(o.nanofluidic, g_scale, tau_scale);
  }
  const TiOxParams& base = o.model == DeviceModel::tiox ? o.tiox : o.volatile_cell.nonvolatile;
  const double a_pos = lognormal(rng, base.d2d_sigma);
  const double a_neg = lognormal(rng, base.d2d_sigma);
  std::normal_distribution<double> init(0.0, base.r_init_spread);
  const double r0 = base.r_init_ohm * (1.0 + init(rng));
  if (o.model == DeviceModel::tiox) return std::make_unique<TiOxDevice>(o.tiox, r0, a_pos, a_neg);
  return std::make_unique<VolatileCellDevice>(o.volatile_cell, r0, a_pos, a_neg);
}

}  // namespace ion::synapse
