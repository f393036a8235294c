#pragma once
// Memristor device models behind one interface: apply a voltage pulse (amplitude, width) at a
// time, read the resistance. Equations, parameters and sources: docs/devices/memristor.md.
//   TiOx      bipolar non-volatile cell: bounded in [r_on, r_off], no change below a threshold,
//             above it a change that grows with amplitude and width and shrinks as the state
//             nears its voltage-dependent bound (a saturating staircase under identical pulses);
//             device-to-device and cycle-to-cycle variability; read noise; retains its state.
//   volatile  a threshold-switching layer (conductance that decays in milliseconds) in parallel
//             with a TiOx-like non-volatile layer of higher threshold: short-term and long-term
//             plasticity in one cell.
//   nanofluidic  a 2-D nanofluidic channel (Robin, Kavokine, Bocquet 2021; Robin et al. 2023):
//             its conductance relaxes with one memory time towards a quasi-static law of the
//             voltage across it, dG/dt = (G_qs(V) - G)/tau; unipolar, bipolar or mixed law; no
//             threshold, and no state that outlives tau (a volatile synapse).
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>

namespace ion::synapse {

using Rng = std::mt19937_64;

struct TiOxParams {
  double r_on_ohm = 3000;    // hard bounds of the resistive state
  double r_off_ohm = 12000;
  double v_th_pos = 1.2;     // |V| below these: no change (reads at 0.2 V never disturb)
  double v_th_neg = 1.2;
  double a_pos = 9.5e-4;     // switching-rate prefactors, 1/(ohm*s)
  double a_neg = 9.5e-4;
  double t_pos = 0.5;        // V: how steeply the rate grows above threshold
  double t_neg = 0.5;
  double r_pos0_ohm = 7000;  // positive pulses drive R up towards r_pos0 + r_pos1*V
  double r_pos1_ohm_per_v = 500;
  double r_neg0_ohm = 6000;  // negative pulses drive R down towards r_neg0 + r_neg1*V (V < 0)
  double r_neg1_ohm_per_v = 500;
  double r_init_ohm = 6500;  // as-formed state (median)
  double r_init_spread = 0.05;  // relative sd of the as-formed state across devices
  double d2d_sigma = 0.15;   // log-normal sigma of the rate prefactors across devices
  double c2c_sigma = 0.05;   // log-normal sigma of each pulse's change
  double read_noise = 0.002;  // relative sd of a resistance reading

  void validate() const;  // throws std::invalid_argument naming the parameter
};

struct VolatileParams {
  TiOxParams nonvolatile = [] {
    TiOxParams p;
    p.v_th_pos = 2.0;  // the long-term layer needs stronger pulses than the volatile one
    p.v_th_neg = 2.0;
    p.a_pos = 4e-3;
    p.a_neg = 4e-3;
    return p;
  }();
  double v_th = 0.8;          // threshold of the volatile (threshold-switching) layer, either polarity
  double g_max_s = 1.0e-4;    // saturation conductance of the volatile layer (S)
  double rate_per_v_s = 2e4;  // set rate above threshold: 1/tau_set = rate * (|V| - v_th)
  double tau_ms = 20;         // relaxation time constant of the volatile conductance

  void validate() const;
};

// The quasi-static conductance law of a nanofluidic channel (Robin et al. 2023, SM Eqs. S38-S43).
enum class NanofluidicLaw : uint8_t {
  unipolar,  // g0 + g1 |V/v0|^alpha: the Wien effect, same for both polarities
  bipolar,   // g_minus + (g_plus - g_minus) / (1 + exp(-V/v_s)): rectification, G+ for V > 0
  mixed,     // g_uni (1 + a (V/v0)^2) + g_bi (1 + b V/v0), never below g_floor_s
};

struct NanofluidicParams {
  NanofluidicLaw law = NanofluidicLaw::unipolar;
  double tau_s = 5e-3;   // memory time of the channel (the kernel's tau)
  double v0 = 1.0;       // V: the voltage scale of the unipolar and mixed laws
  double g0_s = 1e-10;   // unipolar
  double g1_s = 1e-9;
  double alpha = 2;
  double g_plus_s = 2e-9;   // bipolar
  double g_minus_s = 1e-9;
  double v_s = 0.05;        // V: width of the rectifying step
  double g_uni_s = 5e-10;   // mixed
  double a = 0.12;
  double g_bi_s = 5e-10;
  double b = 0.12;
  double g_floor_s = 1e-12;  // the mixed law's lower bound (its linear term can go negative)
  double d2d_sigma = 0.1;    // log-normal sigma across devices of the conductance scale and of tau
  double c2c_sigma = 0.02;   // log-normal sigma of each pulse's quasi-static target
  double read_noise = 0.002;

  // Named parameter sets: "robin2021" (the 2021 theory: unipolar, memory of a few ms) and
  // "robin2023" (the 2023 experimental channels: mixed law, memory of 100 s). Throws
  // std::invalid_argument listing the names.
  static NanofluidicParams preset(std::string_view name);
  [[nodiscard]] double g_qs_s(double volts) const noexcept;  // the quasi-static law
  [[nodiscard]] double g_rest_s() const noexcept { return g_qs_s(0.0); }
  void validate() const;
};

// A TS-PCM neuro-synaptic cell (tspcm.h, docs/devices/ts-pcm.md).
struct PcmParams {
  // aihwkit PCMPresetDevice (ExpStepDevice), src/aihwkit/simulator/presets/devices.py.
  double w_min = 0;
  double w_max = 2;
  double dw_min = 0.01;
  double a = -1;
  double b = 0;
  double gamma_up = 2.5;
  double a_up = -27.235;
  double dw_min_dtod = 0.2;  // device-to-device spread of dw_min (relative sd)
  double dw_min_std = 0.6;   // cycle-to-cycle spread of each step (relative sd)
  double reset = 0.01;       // the state a RESET leaves
  double reset_dtod = 0.02;  // its device-to-device spread (absolute sd)
  // Weight to conductance: w_max is aihwkit's noise-model reference g_max = 25 uS; g_min is the
  // amorphous (RESET) floor (stand-in).
  double g_max_s = 25e-6;
  double g_min_s = 0.1e-6;
  // Drift, aihwkit PCMLikeNoiseModel: t0 = 20 s; nu's mean and sd as functions of g/g_max.
  double t0_s = 20;
  bool drift = true;
  // Instrument pulses: at or above set_v a SET step, at or below reset_v a RESET (stand-ins).
  double set_v = 1.0;
  double reset_v = -1.0;
  double read_noise = 0.002;  // relative (stand-in; aihwkit's 1/f read noise is not modelled)
};

struct ThresholdSwitchParams {  // stand-ins: an OTS-like selector (docs/devices/ts-pcm.md)
  double v_th = 1.0;
  double v_hold = 0.5;
  double r_on_ohm = 1e4;
  double r_off_ohm = 1e6;
};

struct CellOscillatorParams {  // stand-ins
  double c_f = 100e-9;         // membrane capacitor
  double r_leak_ohm = 10e6;
  double drive_a = 2e-6;       // the current a drive (an input spike, a training pulse) injects ...
  double drive_width_s = 0.1;  // ... for this long
  double feedback = 0.5;       // each firing: this fraction of a SET step (0: no feedback)
  uint32_t max_firings_per_drive = 10000;
};

struct TsPcmParams {
  PcmParams pcm;
  ThresholdSwitchParams ts;
  CellOscillatorParams cell;
  void validate() const;  // throws std::invalid_argument naming the parameter
};

enum class DeviceModel : uint8_t { tiox, volatile_cell, nanofluidic, ts_pcm };

struct DeviceOptions {
  DeviceModel model = DeviceModel::tiox;
  TiOxParams tiox;
  VolatileParams volatile_cell;
  NanofluidicParams nanofluidic;
  TsPcmParams ts_pcm;
  uint64_t seed = 1;
  void validate() const;  // the chosen model's parameters
};

class Memristor {
 public:
  virtual ~Memristor() = default;
  // A rectangular pulse of `volts` for `width_s`, ending at network time t_ns. Cycle-to-cycle
  // variability draws from `rng` (one stream per cell, so the order of other cells' operations
  // never changes this cell's history).
  virtual void pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept = 0;
  // The true (noise-free) resistance at t_ns.
  [[nodiscard]] virtual double resistance_ohm(int64_t t_ns) const noexcept = 0;
  // What an instrument reads at t_ns: the true value with relative Gaussian read noise.
  [[nodiscard]] double read_ohm(int64_t t_ns, Rng& rng) const noexcept;
  [[nodiscard]] virtual double read_noise() const noexcept = 0;
};

// One device, with its device-to-device variation drawn from (seed, cell).
[[nodiscard]] std::unique_ptr<Memristor> make_device(const DeviceOptions& options, uint32_t cell);

// The non-volatile bipolar cell on its own (also the long-term layer of the volatile cell).
class TiOxDevice final : public Memristor {
 public:
  // `a_scale_pos/neg`: this device's rate prefactors relative to the nominal ones (d2d).
  TiOxDevice(const TiOxParams& p, double r_init_ohm, double a_scale_pos, double a_scale_neg);
  void pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept override;
  [[nodiscard]] double resistance_ohm(int64_t /*t_ns*/) const noexcept override { return r_ohm_; }
  [[nodiscard]] double read_noise() const noexcept override { return p_.read_noise; }
  // The exact solution of the rate equation over one pulse (no variability).
  [[nodiscard]] static double step(const TiOxParams& p, double r_ohm, double volts,
                                   double width_s, double a_scale) noexcept;
  [[nodiscard]] double a_scale_pos() const noexcept { return a_pos_; }

 private:
  TiOxParams p_;
  double r_ohm_;
  double a_pos_;
  double a_neg_;
};

class VolatileCellDevice final : public Memristor {
 public:
  VolatileCellDevice(const VolatileParams& p, double r_init_ohm, double a_scale_pos,
                     double a_scale_neg);
  void pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept override;
  [[nodiscard]] double resistance_ohm(int64_t t_ns) const noexcept override;
  [[nodiscard]] double read_noise() const noexcept override { return p_.nonvolatile.read_noise; }
  [[nodiscard]] double volatile_conductance_s(int64_t t_ns) const noexcept;
  [[nodiscard]] double nonvolatile_ohm() const noexcept { return nv_.resistance_ohm(0); }

 private:
  VolatileParams p_;
  TiOxDevice nv_;
  double g_v_s_ = 0;     // volatile conductance at t_ref_ns_
  int64_t t_ref_ns_ = 0;
};

// A nanofluidic channel. Its conductance follows dG/dt = (G_qs(V) - G)/tau, solved exactly over
// each constant-voltage piece: V = 0 between pulses (relaxing to the rest value G_qs(0)), the
// pulse's voltage during it. A read measures G without moving it (a real read at V_r for t_r
// moves it by (G_qs(V_r) - G)(1 - exp(-t_r/tau)); docs/devices/nanofluidic.md).
class NanofluidicDevice final : public Memristor {
 public:
  // `g_scale`, `tau_scale`: this device's conductance scale and memory time relative to nominal.
  NanofluidicDevice(const NanofluidicParams& p, double g_scale, double tau_scale);
  void pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept override;
  [[nodiscard]] double resistance_ohm(int64_t t_ns) const noexcept override;
  [[nodiscard]] double read_noise() const noexcept override { return p_.read_noise; }
  [[nodiscard]] double conductance_s(int64_t t_ns) const noexcept;
  [[nodiscard]] double tau_s() const noexcept { return tau_s_; }

 private:
  NanofluidicParams p_;
  double g_scale_;
  double tau_s_;
  double g_s_;          // conductance at t_ref_ns_
  int64_t t_ref_ns_ = INT64_MIN;  // end of the last pulse (none yet: at rest)
};

}  // namespace ion::synapse
