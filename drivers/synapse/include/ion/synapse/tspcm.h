#pragma once
// A TS-PCM neuro-synaptic cell (Sung et al., Nat. Commun. 13:2811, 2022): a volatile threshold
// switch (the neuron's excitability) in series with a phase-change memory layer (the synapse's
// weight). Equations, parameters and which are stand-ins: docs/devices/ts-pcm.md.
//   PCM   the update law of IBM aihwkit's PCMPresetDevice (an exponential-step device: large
//         steps near the amorphous state, small near saturation; an abrupt RESET) and the drift
//         of its PCM noise model, g(t) = g_prog ((t - t_prog + t0)/t0)^-nu, nu drawn per
//         programming from a law of g;
//   TS    OFF (r_off) until its own voltage reaches v_th, then ON (r_on) until the cell's voltage
//         falls below v_hold. In series with the PCM, the cell fires at
//         V_th,cell = v_th (1 + R_pcm / r_off): crystallising the PCM lowers it;
//   cell  an integrate-and-fire oscillator: a capacitor charged by the drive current, leaking
//         through r_leak and the OFF cell, discharged through the ON cell. Each firing passes ON
//         current through the PCM and crystallises it a little (`feedback` of a SET step): the
//         positive feedback between excitability and weight.
// Between events the drive is constant, so the oscillator is solved in closed form.
#include <cstdint>
#include <string>
#include <vector>

#include "ion/synapse/device.h"

namespace ion::synapse {

// The parameter structs (PcmParams, ThresholdSwitchParams, CellOscillatorParams, TsPcmParams)
// are in device.h, beside the other models'.
class TsPcmCell final : public Memristor {
 public:
  // `dw_scale`: this device's dw_min relative to nominal; `reset_w`: the state its RESET leaves.
  TsPcmCell(const TsPcmParams& p, double dw_scale, double reset_w);

  // Memristor: an instrument pulse programs the PCM (SET step, RESET, or nothing in between);
  // the resistance is the PCM layer's (drifted) one.
  void pulse(double volts, double width_s, int64_t t_ns, Rng& rng) noexcept override;
  [[nodiscard]] double resistance_ohm(int64_t t_ns) const noexcept override;
  [[nodiscard]] double read_noise() const noexcept override { return p_.pcm.read_noise; }

  // The neuron: a constant drive of `current_a` over [t_start_ns, t_end_ns]; firing times are
  // appended to `spikes`. Returns false if it stopped at max_firings_per_drive.
  bool drive(double current_a, int64_t t_start_ns, int64_t t_end_ns, Rng& rng,
             std::vector<int64_t>& spikes) noexcept;

  [[nodiscard]] double weight(int64_t t_ns) const noexcept;          // PCM state w (drifted)
  [[nodiscard]] double conductance_s(int64_t t_ns) const noexcept;   // PCM layer
  [[nodiscard]] double cell_threshold_v(int64_t t_ns) const noexcept;
  [[nodiscard]] double membrane_v() const noexcept { return v_; }
  [[nodiscard]] double drift_nu() const noexcept { return nu_; }
  // Programs the PCM to w at t (a SET/RESET sequence's outcome; for experiments and tests).
  void set_weight(double w, int64_t t_ns, Rng& rng) noexcept;
  void reset(int64_t t_ns, Rng& rng) noexcept;

  // Steady firing rate of a cell whose PCM conducts g_s under a constant drive (no feedback).
  [[nodiscard]] static double firing_rate_hz(const TsPcmParams& p, double g_s, double current_a) noexcept;
  [[nodiscard]] static double conductance_of(const PcmParams& p, double w) noexcept;
  // One SET step's size from state w (no variability): aihwkit's exponential step.
  [[nodiscard]] static double set_step(const PcmParams& p, double w) noexcept;
  // The drift exponent's mean and sd at conductance g (aihwkit PCMLikeNoiseModel).
  [[nodiscard]] static double drift_nu_mean(const PcmParams& p, double g_s) noexcept;
  [[nodiscard]] static double drift_nu_sd(const PcmParams& p, double g_s) noexcept;

 private:
  void program(double w, int64_t t_ns, Rng& rng) noexcept;  // w becomes the state at t; new nu
  void step_up(double fraction, int64_t t_ns, Rng& rng) noexcept;
  TsPcmParams p_;
  double dw_scale_;
  double reset_w_;
  double w_prog_;
  int64_t t_prog_ns_ = 0;
  double nu_ = 0;
  double v_ = 0;             // capacitor voltage at t_v_ns_
  int64_t t_v_ns_ = INT64_MIN;
};

// The learn-forget-relearn experiment on a TS-PCM array (docs/devices/ts-pcm.md): every epoch
// gives each active pixel below w_target one training pulse (a SET pulse, then a drive during
// which it fires and, through the feedback, potentiates itself), until all have reached it;
// forgetting is a partial RESET (a residual crystalline fraction survives) and drift; then the
// same training again. Stand-in protocol: the paper's pulses and patterns were not read.
struct LearningProtocol {
  uint32_t rows = 4;
  uint32_t cols = 4;
  std::string pattern = "#..#.##..##.#..#";  // row-major, '#' active: an X
  double w_target = 1.0;
  uint32_t max_epochs = 500;
  double epoch_s = 1.0;
  double residual = 0.5;   // fraction of (w - reset) a partial RESET leaves
  double forget_s = 3600;  // drift after it
  double probe_s = 1.0;    // the firing maps: firings under a drive this long (feedback off)
  uint64_t seed = 1;
  void validate() const;
};

struct LearningResult {
  double learn_pulses = 0;    // training pulses per active pixel until each reached w_target
  double relearn_pulses = 0;
  bool learned = false;
  bool relearned = false;
  // Per pixel, row-major: firings under a probe drive of probe_s (no feedback), and the PCM state.
  std::vector<uint32_t> map_learned, map_forgotten, map_relearned;
  std::vector<double> w_learned, w_forgotten, w_relearned;
};

[[nodiscard]] LearningResult learn_forget_relearn(const TsPcmParams& p, const LearningProtocol& protocol);

}  // namespace ion::synapse
