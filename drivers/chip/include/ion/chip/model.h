#pragma once
// An emulated mixed-signal neuromorphic chip: cores of adaptive exponential integrate-and-fire
// (AdEx) neurons, four synapse types with exponentially decaying currents, per-neuron parameter
// mismatch (seeded) and a per-neuron bias current. Integration is forward Euler on a fixed grid
// of network time (step k covers [k·dt, (k+1)·dt)); inputs take effect at their own time (the
// synaptic current is exact, the membrane sees it from the step that contains it); output spikes
// are stamped where the membrane crossed the peak, interpolated within the step.
// Equations, parameters and sources: docs/devices/chip.md.
#include <array>
#include <functional>
#include <map>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ion::chip {

enum class SynapseType : uint8_t { fast_exc = 0, slow_exc = 1, fast_inh = 2, slow_inh = 3 };
inline constexpr uint32_t kSynapseTypes = 4;
[[nodiscard]] std::string_view to_string(SynapseType t) noexcept;

// Nominal neuron parameters (Brette & Gerstner 2005, tonic spiking with adaptation).
struct NeuronParams {
  double c_pf = 281;           // membrane capacitance
  double g_l_ns = 30;          // leak conductance
  double e_l_mv = -70.6;       // leak reversal
  double v_t_mv = -50.4;       // threshold of the exponential term
  double delta_t_mv = 2;       // slope factor
  double v_reset_mv = -70.6;
  double v_peak_mv = -40.4;    // a spike is counted when V crosses it (V_T + 5 Δ_T)
  double tau_w_ms = 144;       // adaptation time constant
  double a_ns = 4;             // subthreshold adaptation
  double b_pa = 80.5;          // spike-triggered adaptation
  double refractory_ms = 2;    // V held at reset
  double bias_pa = 0;          // constant input current
};

// An iontronic neuron (Robin, Kavokine, Bocquet 2021): a capacitor between two nanofluidic
// channels, each with its own battery and a conductance that relaxes towards a quasi-static law
// of the voltage with its own memory time (tau_na << tau_k), like Hodgkin and Huxley's sodium
// and potassium conductances. docs/devices/iontronic-neuron.md.
//   C dV/dt = I - g_na (V - E_na) - g_k (V - E_k)
//   dg_x/dt = (g0 + g1_x |V/v0|^alpha - g_x) / tau_x
// Values are in the node's declared units (TimeBase): physical (ms, mV, pF, nS, pA) or the
// authors' molecular-dynamics scale (us; voltages in field units k_BT/(e A); C = 1).
struct IontronicParams {
  double c = 1;          // capacitance
  double e_na = 100;     // battery of the fast channel (rising phase)
  double e_k = -100;     // battery of the slow channel (repolarisation)
  double v0 = 100;       // voltage scale of the channels' law
  double alpha = 2;
  double g0 = 0.01;      // conductance at V = 0 (both channels)
  double g1_na = 20;
  double g1_k = 5;
  double tau_na = 0.1;   // memory times, in the time unit
  double tau_k = 5;
  double bias = 0;       // constant injected current
  double v_spike = 50;   // a spike is V rising through this ...
  double v_rearm = 0;    // ... after it last fell below this
};

// What a chip's device time and values mean. Spikes are stamped in network time; the model runs
// in device time = network time / time_scale.
struct TimeBase {
  std::string name = "physical";   // "physical" or "md" (the authors' molecular-dynamics scale)
  std::string time_unit = "ms";    // the unit of the model's times (tau_*, and 1/rates)
  double unit_s = 1e-3;            // seconds per time unit
  double time_scale = 1;           // network seconds per device second (1000: 1 us runs as 1 ms)
  std::string voltage_unit = "mV";
  std::string current_unit = "pA";
  [[nodiscard]] bool simulation_scaled() const noexcept { return name == "md"; }
};

enum class NeuronModelKind : uint8_t { adex, iontronic };

struct SynapseParams {
  double tau_ms;
  double gain_pa;  // current jump of a weight-1 event (sign from the type)
};

struct ChipOptions {
  uint32_t chip_id = 0;            // address: (chip, core, neuron)
  uint32_t cores = 4;
  uint32_t neurons_per_core = 256;
  double step_ms = 0.1;
  NeuronParams neuron;
  std::array<SynapseParams, kSynapseTypes> synapses{{{5, 200}, {100, 10}, {10, 200}, {100, 10}}};
  double mismatch_cv = 0.10;       // relative spread of every analog parameter, per neuron
  float max_weight = 1000;         // larger weights are clamped (counted)
  uint64_t seed = 1;
  // Neurons whose bias is set exactly (after mismatch), as an experimenter tunes single neurons.
  std::map<uint32_t, double> bias_overrides_pa;
  NeuronModelKind neuron_model = NeuronModelKind::adex;
  IontronicParams iontronic;  // with neuron_model iontronic (its bias overrides in its current unit)
  TimeBase time_base;         // AdEx: physical, ms, mV, pA, time_scale 1

  // Named iontronic parameter sets: "iontronic-ms" (physical units, the normalised model with
  // 1 ms, 100 mV, 1 pF, 1 nS as units: ~25 Hz) and "robin2021-md" (the authors' MD scale: us and
  // k_BT/(e A), time unit fitted to their 87.7 us inter-spike interval, run 1000x slower).
  // Sets neuron_model, iontronic, time_base and the synapse gains; throws listing the names.
  void apply_iontronic_preset(std::string_view name);

  void validate() const;  // throws std::invalid_argument naming the setting
  [[nodiscard]] uint32_t neurons() const noexcept { return cores * neurons_per_core; }
};

struct ChipSpike {
  uint32_t neuron;  // global index: core * neurons_per_core + neuron in core
  int64_t time_ns;  // network time of the crossing
};

enum class InputResult : uint8_t { queued, clamped, bad_neuron, bad_weight };

struct ChipCounters {
  uint64_t steps = 0;
  uint64_t spikes = 0;
  uint64_t inputs_applied = 0;
  uint64_t inputs_late = 0;  // their step was already integrated: current exact, membrane missed it
};

class ChipModel {
 public:
  explicit ChipModel(const ChipOptions& options);

  [[nodiscard]] const ChipOptions& options() const noexcept { return opts_; }
  [[nodiscard]] uint32_t neurons() const noexcept { return n_; }
  [[nodiscard]] int64_t step_ns() const noexcept { return dt_ns_; }
  // Start of the next step to integrate (network time).
  [[nodiscard]] int64_t now_ns() const noexcept { return next_step_ * dt_ns_; }
  // Puts the step grid at the step containing t_ns. Only before the first advance.
  void start_at(int64_t t_ns) noexcept;
  // Jumps the grid forward to the step containing t_ns without integrating (a host that stalled
  // for long does not replay the gap); returns the steps skipped.
  int64_t skip_to(int64_t t_ns) noexcept;

  // Queues a synaptic input of `weight` (≥ 0, in units of the type's gain) at network time t_ns.
  InputResult inject(uint32_t neuron, SynapseType type, float weight, int64_t t_ns) noexcept;
  // Integrates every step that ends at or before until_ns; appends output spikes in time order.
  void advance(int64_t until_ns, std::vector<ChipSpike>& out) noexcept;

  // Effective parameters of one neuron (nominal × its mismatch), in the units of NeuronParams.
  [[nodiscard]] NeuronParams neuron_params(uint32_t neuron) const noexcept;
  [[nodiscard]] IontronicParams iontronic_params(uint32_t neuron) const noexcept;
  [[nodiscard]] SynapseParams synapse_params(uint32_t neuron, SynapseType t) const noexcept;
  void set_bias(uint32_t neuron, double bias_pa) noexcept;
  // The membrane potential (AdEx: mV; iontronic: in its time base's voltage unit).
  [[nodiscard]] double membrane_mv(uint32_t neuron) const noexcept;
  [[nodiscard]] const ChipCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] size_t pending_inputs() const noexcept { return pending_.size() - head_; }

 private:
  struct Input {
    int64_t t_ns;
    uint32_t neuron;
    uint8_t type;
    float weight;
  };
  void apply_input(const Input& in, int64_t step_start_ns) noexcept;
  void run_block(int64_t first_step, int64_t steps, std::vector<ChipSpike>& out) noexcept;

  ChipOptions opts_;
  uint32_t n_;
  int64_t dt_ns_;
  int64_t next_step_ = 0;
  bool started_ = false;
  // Per neuron, structure of arrays (the step loop vectorises over neurons), stored chunk-major:
  // each chunk of kChunk neurons holds its hot fields back to back, so a chunk stays in L1
  // without its arrays fighting over the same cache sets. The step uses coefficients with dt
  // folded in: dV = k_exp·e^((V−V_T)/Δ_T) − k_leak·(V−E_L) + k_in·(I−w), dw = k_a·(V−E_L) − k_w·w.
  enum Field : uint32_t {
    kV, kW, kRefr, kCrossed, kLeak, kExp, kIn, kVt, kA, kKw, kBias, kS0, kS1, kS2, kS3, kD0, kD1,
    kD2, kD3, kFields
  };
  // A chip runs one neuron model: the iontronic neuron keeps its state and coefficients in the
  // AdEx slots it does not use (same layout, same chunking, same input path).
  static constexpr Field kGna = kW, kGk = kA, kArmed = kRefr, kDecayNa = kLeak, kDecayK = kKw,
                         kG1Na = kExp, kG1K = kVt, kDtOverC = kIn;
  void init_iontronic(const std::function<double()>& factor);
  static constexpr uint32_t kChunk = 256;
  [[nodiscard]] float* field(uint32_t chunk, Field f) noexcept {
    return hot_.data() + (static_cast<size_t>(chunk) * kFields + f) * kChunk;
  }
  [[nodiscard]] float& at(Field f, uint32_t i) noexcept { return field(i / kChunk, f)[i % kChunk]; }
  [[nodiscard]] float at(Field f, uint32_t i) const noexcept {
    return hot_[(static_cast<size_t>(i / kChunk) * kFields + f) * kChunk + i % kChunk];
  }
  std::vector<float> hot_;
  std::vector<float> b_, refr_steps_;  // used on spikes only
  std::array<std::vector<float>, kSynapseTypes> gain_, tau_ms_;  // used on inputs only
  std::vector<NeuronParams> effective_;  // nominal × mismatch, for export
  std::vector<IontronicParams> effective_ion_;  // idem, iontronic chips
  struct BlockInput {
    Input input;
    int32_t step;  // within the block
  };
  std::vector<BlockInput> block_inputs_;  // scratch for run_block
  std::vector<size_t> chunk_begin_, chunk_fill_;
  // Inputs not yet applied, in time order from head_ (appends are almost always in order).
  std::vector<Input> pending_;
  size_t head_ = 0;
  bool sorted_ = true;
  ChipCounters counters_;
};

}  // namespace ion::chip
