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
#include <cstdint>
#include <memory>
#include <random>

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

enum class DeviceModel : uint8_t { tiox, volatile_cell };

struct DeviceOptions {
  DeviceModel model = DeviceModel::tiox;
  TiOxParams tiox;
  VolatileParams volatile_cell;
  uint64_t seed = 1;
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

}  // namespace ion::synapse
