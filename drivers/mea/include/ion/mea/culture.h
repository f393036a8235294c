#pragma once
// An emulated dissociated culture on a multi-electrode array: a seeded network of Izhikevich
// neurons (80 % regular-spiking excitatory with short-term synaptic depression, 20 % fast-spiking
// inhibitory, sparse random connections with delays) that fires in spontaneous network bursts,
// seen through a grid of electrodes as int16 voltage frames: each electrode sums the extracellular
// waveforms of nearby neurons (amplitude falling with distance), Gaussian noise and a DC offset.
// Stimulation on an electrode writes an artifact and evokes spikes in nearby neurons. The ground
// truth (which neuron fired when, and how large it looks on each electrode) is kept for validation.
// Equations, parameters and sources: docs/devices/mea.md.
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "ion/mea/signal_source.h"

namespace ion::mea {

struct CultureOptions {
  // Array.
  uint32_t rows = 8;
  uint32_t cols = 8;
  bool drop_corners = true;       // MCS 8x8 layout: 60 electrodes
  double pitch_um = 200;
  double sample_rate_hz = 25000;
  double uv_per_bit = 0.195;
  double noise_uv_rms = 6.0;
  double dc_offset_uv = 0;        // mean DC offset
  double dc_offset_spread_uv = 150;  // per-electrode offsets, uniform ± spread
  // Network.
  uint32_t neurons = 1000;
  double excitatory_fraction = 0.8;
  double connection_probability = 0.1;
  double delay_min_ms = 1.0;
  double delay_max_ms = 5.0;
  double weight_exc = 2.2;        // peak synaptic current of a fully recovered excitatory synapse
  double weight_inh = 8.0;
  double tau_exc_ms = 10.0;
  double tau_inh_ms = 8.0;
  double depression_u = 0.1;      // fraction of resources used per spike (Tsodyks–Markram)
  double depression_tau_ms = 6000;
  double noise_current = 2.2;     // sigma of the white noise current (Izhikevich units, per ms)
  double step_ms = 0.1;           // integration step (rounded to whole samples)
  // Extracellular waveform.
  double spike_amplitude_uv = 100;  // median trough of a neuron right on an electrode
  double amplitude_spread = 0.3;    // log-normal sigma of per-neuron amplitude
  double distance_scale_um = 30;    // amplitude ∝ 1 / (1 + (d / scale)^2)
  double cell_height_um = 15;       // soma above the electrode plane
  double pickup_radius_um = 150;
  // Stimulation.
  double stim_threshold_mv = 500;   // amplitude evoking a spike with p = 0.5 at distance 0, 200 µs
  double stim_slope_mv = 80;
  double stim_radius_um = 60;       // effective amplitude ∝ 1 / (1 + (d / radius)^2)
  double stim_latency_min_ms = 2.0;
  double stim_latency_max_ms = 6.0;
  double artifact_uv_per_mv = 8.0;  // artifact peak on the stimulated electrode
  double artifact_tau_ms = 0.3;
  // Validation.
  bool ground_truth = false;
  size_t ground_truth_limit = 20'000'000;
  uint64_t seed = 1;

  // Throws std::invalid_argument naming the field.
  void validate() const;
};

struct Position {
  double x_um = 0;
  double y_um = 0;
};

struct TruthSpike {
  uint32_t neuron = 0;
  uint64_t sample = 0;  // sample of the waveform's trough
  bool evoked = false;
};

// One synapse of the culture's true wiring.
struct TrueSynapse {
  uint32_t pre = 0;
  uint32_t post = 0;
  float weight = 0;     // peak synaptic current of the recovered synapse (Izhikevich units)
  float delay_ms = 0;
  bool excitatory = true;
};

// A neuron as one electrode sees it.
struct Pickup {
  uint32_t neuron = 0;
  float amplitude_uv = 0;  // trough depth (positive)
};

class CultureEmulator final : public SignalSource {
 public:
  explicit CultureEmulator(CultureOptions options);

  [[nodiscard]] SignalFormat format() const override;
  [[nodiscard]] bool paced() const noexcept override { return true; }
  ReadResult read(std::span<int16_t> out, std::chrono::milliseconds timeout) noexcept override;
  StimResult stimulate(const StimCommand& command) noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;

  // Model facts for validation.
  [[nodiscard]] uint32_t electrodes() const noexcept { return static_cast<uint32_t>(electrodes_.size()); }
  [[nodiscard]] const std::vector<Position>& electrode_positions() const noexcept { return electrodes_; }
  [[nodiscard]] const std::vector<Position>& neuron_positions() const noexcept { return neurons_; }
  [[nodiscard]] bool excitatory(uint32_t neuron) const noexcept { return neuron < n_exc_; }
  // Neurons each electrode picks up, largest first.
  [[nodiscard]] const std::vector<std::vector<Pickup>>& pickups() const noexcept { return pickups_; }
  // The culture's wiring (every synapse, pre before post).
  [[nodiscard]] std::vector<TrueSynapse> wiring() const;
  // The wiring as the electrodes see it: each neuron on its home electrode, one entry per
  // ordered pair of distinct electrodes with any synapse between their neurons: weight the
  // summed signed weight's magnitude, excitatory by its sign, delay weight-averaged. Neurons
  // no electrode picks up, and synapses within one electrode, drop out.
  [[nodiscard]] std::vector<TrueSynapse> electrode_wiring() const;
  // Writes the wiring as CSV `pre,post,weight,delay_ms,sign` (what `ion connectome score`
  // reads): neurons named n0.., electrodes by number (the MEA node's channels). Throws
  // std::runtime_error naming the file on an I/O error.
  void write_wiring(const std::string& path, bool electrodes) const;
  // The electrode that sees `neuron` largest, or -1 if none picks it up.
  [[nodiscard]] int32_t home_electrode(uint32_t neuron) const noexcept;
  // Steps the network alone for `samples` without drawing the signal (spike trains for
  // connectivity work, fast); ground truth is kept as by read(). Not with pending stimulation.
  void run_network(uint64_t samples);
  // Ground-truth spikes so far (options.ground_truth), in time order; moved out.
  std::vector<TruthSpike> take_ground_truth();
  [[nodiscard]] uint64_t total_spikes() const noexcept { return total_spikes_; }
  [[nodiscard]] uint64_t next_sample() const noexcept { return next_sample_; }
  // Offset of each waveform's trough from the spike sample the model integrates to.
  [[nodiscard]] uint32_t trough_offset_samples() const noexcept { return trough_; }
  // The unit-trough extracellular waveform every neuron's spike is drawn with.
  [[nodiscard]] const std::vector<float>& spike_template() const noexcept { return template_; }

 private:
  struct Synapse {
    uint32_t target;
    uint16_t delay_steps;
    float weight;
  };
  struct Active {
    uint32_t neuron;
    uint64_t start_sample;  // first sample of the waveform template
  };
  struct Artifact {
    uint32_t electrode;
    uint64_t sample;
    uint32_t phase_samples;
    float peak_uv;
  };
  void build();
  void step_network(uint64_t step_sample);
  void fire(uint32_t neuron, uint64_t step, uint64_t step_sample, bool evoked);
  void apply_stimulus(const StimCommand& s);
  float gauss() noexcept;

  CultureOptions opts_;
  std::mt19937_64 rng_;
  uint64_t xs_;  // xorshift state for noise
  std::vector<float> gauss_table_;
  std::vector<Position> electrodes_;
  std::vector<Position> neurons_;
  uint32_t n_exc_ = 0;
  // Izhikevich state and parameters.
  std::vector<float> v_, u_, a_, b_, c_, d_, ge_, gi_;
  std::vector<float> resources_;     // depression, excitatory neurons
  std::vector<uint64_t> last_spike_step_;
  std::vector<uint32_t> syn_begin_;  // CSR of outgoing synapses
  std::vector<Synapse> synapses_;
  std::vector<float> ring_exc_, ring_inh_;  // delayed input, slots × neurons
  uint32_t ring_slots_ = 0;
  uint64_t step_ = 0;
  uint32_t step_samples_ = 1;
  float dt_ms_ = 0.1F;
  float decay_exc_ = 0, decay_inh_ = 0, noise_scale_ = 0;
  std::vector<std::vector<uint32_t>> forced_;  // evoked spikes per future step slot
  // Signal.
  std::vector<float> template_;      // unit trough, samples
  uint32_t trough_ = 0;
  std::vector<std::vector<Pickup>> pickups_;
  std::vector<std::vector<std::pair<uint32_t, float>>> neuron_to_electrodes_;
  std::vector<float> dc_uv_;
  std::deque<Active> active_;
  std::vector<Artifact> artifacts_;
  std::vector<float> accum_;
  uint64_t next_sample_ = 0;
  // Stimulation arrives from another thread.
  std::mutex stim_mu_;
  std::vector<StimCommand> stim_queue_;
  std::vector<StimCommand> pending_stims_;  // taken from the queue, sorted by sample
  std::vector<uint32_t> fired_;
  std::vector<TruthSpike> truth_;
  // Read by counters() from other threads.
  std::atomic<uint64_t> total_spikes_{0};
  std::atomic<uint64_t> evoked_spikes_{0};
  std::atomic<uint64_t> stimulations_{0};
  std::atomic<uint64_t> stim_late_{0};
  std::atomic<uint64_t> truth_dropped_{0};
  std::atomic<uint64_t> clipped_samples_{0};
};

}  // namespace ion::mea
