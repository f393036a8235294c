#include "ion/synapse/tspcm.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace ion::synapse {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

struct OffState {  // the oscillator while the switch is OFF, at PCM resistance r_p
  double threshold_v;
  double r_eff_ohm;
};

OffState off_state(const TsPcmParams& p, double g_s) noexcept {
  const double r_p = 1.0 / g_s;
  const double r_cell = p.ts.r_off_ohm + r_p;
  return {p.ts.v_th * (1.0 + r_p / p.ts.r_off_ohm), 1.0 / (1.0 / p.cell.r_leak_ohm + 1.0 / r_cell)};
}

// Time for the capacitor to charge from v to the threshold under current i (s); < 0: never.
double time_to_threshold(const TsPcmParams& p, const OffState& s, double v, double i) noexcept {
  if (v >= s.threshold_v) return 0;
  const double v_ss = i * s.r_eff_ohm;
  if (v_ss <= s.threshold_v) return -1;
  return p.cell.c_f * s.r_eff_ohm * std::log((v_ss - v) / (v_ss - s.threshold_v));
}

// The ON discharge from the threshold to v_hold through r_on and the PCM (s).
double discharge_time(const TsPcmParams& p, const OffState& s, double g_s) noexcept {
  return p.cell.c_f * (p.ts.r_on_ohm + 1.0 / g_s) * std::log(s.threshold_v / p.ts.v_hold);
}

}  // namespace

void TsPcmParams::validate() const {
  require(pcm.w_max > pcm.w_min, "ts-pcm w_max must be above w_min");
  require(pcm.dw_min > 0, "ts-pcm dw_min must be > 0");
  require(pcm.dw_min_dtod >= 0 && pcm.dw_min_std >= 0, "ts-pcm dw_min_dtod and dw_min_std must be >= 0");
  require(pcm.reset >= pcm.w_min && pcm.reset <= pcm.w_max, "ts-pcm reset must lie in [w_min, w_max]");
  require(pcm.g_max_s > pcm.g_min_s && pcm.g_min_s > 0, "ts-pcm g_min_s must be > 0 and below g_max_s");
  require(pcm.t0_s > 0, "ts-pcm t0_s must be > 0");
  require(pcm.set_v > 0 && pcm.reset_v < 0, "ts-pcm set_v must be > 0 and reset_v < 0");
  require(pcm.read_noise >= 0 && pcm.read_noise < 0.5, "read_noise must be in [0, 0.5)");
  require(ts.v_th > ts.v_hold && ts.v_hold > 0, "ts-pcm v_th must be above v_hold, v_hold > 0");
  require(ts.r_off_ohm > ts.r_on_ohm && ts.r_on_ohm > 0, "ts-pcm r_off_ohm must be above r_on_ohm > 0");
  require(cell.c_f > 0 && cell.r_leak_ohm > 0, "ts-pcm c_f and r_leak_ohm must be > 0");
  require(cell.drive_a >= 0 && cell.drive_width_s > 0, "ts-pcm drive_a must be >= 0, drive_width_s > 0");
  require(cell.feedback >= 0 && cell.feedback <= 10, "ts-pcm feedback must be in [0, 10]");
  require(cell.max_firings_per_drive > 0, "ts-pcm max_firings_per_drive must be > 0");
}

TsPcmCell::TsPcmCell(const TsPcmParams& p, double dw_scale, double reset_w)
    : p_(p), dw_scale_(dw_scale), reset_w_(std::clamp(reset_w, p.pcm.w_min, p.pcm.w_max)), w_prog_(reset_w_) {}

double TsPcmCell::conductance_of(const PcmParams& p, double w) noexcept {
  const double x = std::clamp((w - p.w_min) / (p.w_max - p.w_min), 0.0, 1.0);
  return p.g_min_s + x * (p.g_max_s - p.g_min_s);
}

double TsPcmCell::set_step(const PcmParams& p, double w) noexcept {
  // aihwkit ExpStepDevice: z = 2 a w / (w_max - w_min) + b, y = 1 - A_up exp(gamma_up z).
  const double z = 2 * p.a * w / (p.w_max - p.w_min) + p.b;
  const double y = 1 - p.a_up * std::exp(p.gamma_up * z);
  return std::max(y, 0.0) * p.dw_min;
}

double TsPcmCell::drift_nu_mean(const PcmParams& p, double g_s) noexcept {
  const double r = std::max(g_s / p.g_max_s, 1e-12);
  return std::clamp(-0.0155 * std::log(r) + 0.0244, 0.049, 0.1);
}

double TsPcmCell::drift_nu_sd(const PcmParams& p, double g_s) noexcept {
  const double r = std::max(g_s / p.g_max_s, 1e-12);
  return std::clamp(-0.0125 * std::log(r) - 0.0059, 0.008, 0.045);
}

double TsPcmCell::conductance_s(int64_t t_ns) const noexcept {
  const double g = conductance_of(p_.pcm, w_prog_);
  if (!p_.pcm.drift || t_ns <= t_prog_ns_) return g;
  const double since_s = static_cast<double>(t_ns - t_prog_ns_) * 1e-9;
  return g * std::pow((since_s + p_.pcm.t0_s) / p_.pcm.t0_s, -nu_);
}

double TsPcmCell::weight(int64_t t_ns) const noexcept {
  const PcmParams& p = p_.pcm;
  const double x = (conductance_s(t_ns) - p.g_min_s) / (p.g_max_s - p.g_min_s);
  return std::clamp(p.w_min + x * (p.w_max - p.w_min), p.w_min, p.w_max);
}

double TsPcmCell::resistance_ohm(int64_t t_ns) const noexcept { return 1.0 / conductance_s(t_ns); }

double TsPcmCell::cell_threshold_v(int64_t t_ns) const noexcept {
  return off_state(p_, conductance_s(t_ns)).threshold_v;
}

void TsPcmCell::program(double w, int64_t t_ns, Rng& rng) noexcept {
  w_prog_ = std::clamp(w, p_.pcm.w_min, p_.pcm.w_max);
  t_prog_ns_ = t_ns;
  const double g = conductance_of(p_.pcm, w_prog_);
  std::normal_distribution<double> n(drift_nu_mean(p_.pcm, g), drift_nu_sd(p_.pcm, g));
  nu_ = p_.pcm.drift ? std::max(0.0, n(rng)) : 0.0;
}

void TsPcmCell::step_up(double fraction, int64_t t_ns, Rng& rng) noexcept {
  const double w = weight(t_ns);
  std::normal_distribution<double> c2c(0.0, 1.0);
  const double noise = p_.pcm.dw_min_std > 0 ? 1.0 + p_.pcm.dw_min_std * c2c(rng) : 1.0;
  const double dw = std::max(0.0, set_step(p_.pcm, w) * dw_scale_ * fraction * noise);
  program(w + dw, t_ns, rng);
}

void TsPcmCell::set_weight(double w, int64_t t_ns, Rng& rng) noexcept { program(w, t_ns, rng); }

void TsPcmCell::reset(int64_t t_ns, Rng& rng) noexcept { program(reset_w_, t_ns, rng); }

void TsPcmCell::pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept {
  if (!(width_s > 0) || !std::isfinite(volts)) return;
  if (volts >= p_.pcm.set_v) {
    step_up(1.0, t_ns, rng);
  } else if (volts <= p_.pcm.reset_v) {
    reset(t_ns, rng);
  }
}

bool TsPcmCell::drive(double current_a, int64_t t_start_ns, int64_t t_end_ns, Rng& rng,
                      std::vector<int64_t>& spikes) noexcept {
  if (t_v_ns_ == INT64_MIN) {
    v_ = 0;
    t_v_ns_ = t_start_ns;
  }
  // Undriven since the last event: the capacitor leaks through r_leak and the OFF cell.
  if (t_start_ns > t_v_ns_) {
    const OffState s = off_state(p_, conductance_s(t_v_ns_));
    v_ *= std::exp(-static_cast<double>(t_start_ns - t_v_ns_) * 1e-9 / (p_.cell.c_f * s.r_eff_ohm));
    t_v_ns_ = t_start_ns;
  }
  int64_t t = t_v_ns_;  // a discharge may reach past the drive's start
  uint32_t firings = 0;
  while (t < t_end_ns) {
    const double g = conductance_s(t);
    const OffState s = off_state(p_, g);
    const double cross_s = time_to_threshold(p_, s, v_, current_a);
    const auto cross_ns = static_cast<int64_t>(std::ceil(cross_s * 1e9));
    if (cross_s < 0 || t + cross_ns > t_end_ns) {
      const double v_ss = current_a * s.r_eff_ohm;
      v_ = v_ss + (v_ - v_ss) * std::exp(-static_cast<double>(t_end_ns - t) * 1e-9 / (p_.cell.c_f * s.r_eff_ohm));
      t = t_end_ns;
      break;
    }
    const int64_t fire_ns = t + cross_ns;
    spikes.push_back(fire_ns);
    // The ON current crystallises the PCM a little; the capacitor discharges to v_hold.
    if (p_.cell.feedback > 0) step_up(p_.cell.feedback, fire_ns, rng);
    const auto on_ns = std::max<int64_t>(1, std::llround(discharge_time(p_, s, g) * 1e9));
    v_ = p_.ts.v_hold;
    t = fire_ns + on_ns;
    if (++firings >= p_.cell.max_firings_per_drive) {
      t_v_ns_ = t;
      return false;
    }
  }
  t_v_ns_ = std::max(t_v_ns_, t);
  return true;
}

double TsPcmCell::firing_rate_hz(const TsPcmParams& p, double g_s, double current_a) noexcept {
  const OffState s = off_state(p, g_s);
  const double cross = time_to_threshold(p, s, p.ts.v_hold, current_a);
  if (cross < 0) return 0;
  return 1.0 / (cross + discharge_time(p, s, g_s));
}

void LearningProtocol::validate() const {
  require(rows > 0 && cols > 0 && rows * cols <= 4096, "array of 1..4096 pixels");
  require(pattern.size() == static_cast<size_t>(rows) * cols, "the pattern has one character per pixel");
  require(pattern.find_first_not_of("#.") == std::string::npos, "the pattern holds only '#' and '.'");
  require(pattern.find('#') != std::string::npos, "the pattern has no active pixel");
  require(max_epochs > 0, "max_epochs must be > 0");
  require(epoch_s > 0 && forget_s >= 0, "epoch_s must be > 0 and forget_s >= 0");
  require(residual >= 0 && residual <= 1, "residual must be in [0, 1]");
}

LearningResult learn_forget_relearn(const TsPcmParams& p, const LearningProtocol& proto) {
  p.validate();
  proto.validate();
  const size_t n = proto.pattern.size();
  DeviceOptions o;
  o.model = DeviceModel::ts_pcm;
  o.ts_pcm = p;
  o.seed = proto.seed;
  std::vector<std::unique_ptr<Memristor>> owned;
  std::vector<TsPcmCell*> cells;
  std::vector<Rng> rngs;
  for (uint32_t i = 0; i < n; ++i) {
    owned.push_back(make_device(o, i));
    cells.push_back(static_cast<TsPcmCell*>(owned.back().get()));
    rngs.emplace_back(proto.seed * 0x9e3779b97f4a7c15ULL + i + 1);
  }
  const auto epoch_ns = static_cast<int64_t>(std::llround(proto.epoch_s * 1e9));
  const auto drive_ns = static_cast<int64_t>(std::llround(p.cell.drive_width_s * 1e9));
  const auto probe_ns = static_cast<int64_t>(std::llround(proto.probe_s * 1e9));
  int64_t t = 0;
  std::vector<int64_t> fired;
  // One epoch: each active pixel below the target gets a SET pulse, then a drive (firing feeds
  // back); a pixel at the target gets no more. Counts pulses per active pixel (their mean).
  size_t active = 0;
  for (const char c : proto.pattern) active += c == '#' ? 1 : 0;
  auto train = [&](double& pulses_per_pixel) {
    uint64_t pulses = 0;
    bool done = false;
    for (uint32_t epoch = 0; epoch < proto.max_epochs && !done; ++epoch) {
      done = true;
      for (size_t i = 0; i < n; ++i) {
        if (proto.pattern[i] != '#' || cells[i]->weight(t) >= proto.w_target) continue;
        done = false;
        ++pulses;
        cells[i]->pulse(p.pcm.set_v, 1e-6, t, rngs[i]);
        fired.clear();
        (void)cells[i]->drive(p.cell.drive_a, t, t + drive_ns, rngs[i], fired);
      }
      t += epoch_ns;
    }
    pulses_per_pixel = static_cast<double>(pulses) / static_cast<double>(active);
    return done;
  };
  // The firing map: one probe drive per pixel on a copy with feedback off (the probe leaves no
  // trace), and the states.
  auto probe = [&](std::vector<uint32_t>& map, std::vector<double>& w) {
    map.assign(n, 0);
    w.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      TsPcmParams quiet = p;
      quiet.cell.feedback = 0;
      TsPcmCell probe_cell(quiet, 1.0, 0.0);
      Rng r(1);
      probe_cell.set_weight(cells[i]->weight(t), t, r);
      fired.clear();
      (void)probe_cell.drive(p.cell.drive_a, t, t + probe_ns, r, fired);
      map[i] = static_cast<uint32_t>(fired.size());
      w[i] = cells[i]->weight(t);
    }
  };
  LearningResult r;
  r.learned = train(r.learn_pulses);
  probe(r.map_learned, r.w_learned);
  for (size_t i = 0; i < n; ++i) {  // partial RESET: a residual crystalline fraction survives
    const double w = cells[i]->weight(t);
    cells[i]->reset(t, rngs[i]);
    const double floor = cells[i]->weight(t);
    cells[i]->set_weight(floor + proto.residual * std::max(0.0, w - floor), t, rngs[i]);
  }
  t += static_cast<int64_t>(std::llround(proto.forget_s * 1e9));
  probe(r.map_forgotten, r.w_forgotten);
  r.relearned = train(r.relearn_pulses);
  probe(r.map_relearned, r.w_relearned);
  return r;
}

}  // namespace ion::synapse
