#pragma once
// Plasticity on source times. Every spike the board sees is stamped with its time at the
// synapse in network time (source time + connection delay), never its arrival time; each
// evaluation (a post-synaptic spike for the rate rule and STDP potentiation, a pre-synaptic spike
// for STDP depression) is committed only once network time has passed its time plus a horizon,
// in the order of the spikes' times. A spike arriving out of order within the horizon is thus
// counted where it belongs, and the pulses do not depend on network latency or arrival order.
// A spike older than the committed time is too late for plasticity: counted, not used.
#include <cstddef>
#include <cstdint>
#include <queue>
#include <vector>

namespace ion::synapse {

enum class RuleKind : uint8_t { none, rate, stdp, reward };

// The firing-rate rule of the 2017 Southampton hub: on a post-synaptic spike, count the
// presynaptic spikes in the last window (at most max_count); more than ltp_above: potentiating
// pulse; fewer than ltd_below: depressing pulse; else none. The device is re-read afterwards.
struct RateRule {
  int64_t window_ns = 1'000'000'000;
  uint32_t max_count = 100;
  uint32_t ltp_above = 20;
  uint32_t ltd_below = 5;
  double ltp_volts = 4.0;
  double ltd_volts = -4.0;
  double width_s = 100e-6;
};

// Pair-based STDP, nearest neighbour: on a post spike, the latest earlier pre spike within the
// window gives a potentiating pulse of amplitude v_min + (v_max - v_min) exp(-dt / tau_plus); on
// a pre spike, the latest earlier post spike within the window a depressing one.
struct StdpRule {
  int64_t window_ns = 100'000'000;
  int64_t tau_plus_ns = 20'000'000;
  int64_t tau_minus_ns = 20'000'000;
  double ltp_v_min = 1.5;
  double ltp_v_max = 4.0;
  double ltd_v_min = -1.5;
  double ltd_v_max = -4.0;
  double width_s = 100e-6;
};

// Reward-modulated STDP, a third factor (Izhikevich, Cerebral Cortex 17:2443, 2007): each
// synapse keeps an eligibility trace c, raised by pre-before-post pairings (a_plus exp(-dt/tau_plus))
// and lowered by post-before-pre ones (a_minus exp(-dt/tau_minus)), decaying with tau_c; the
// neuromodulator concentration d on the board's modulator port turns it into weight change,
// ds/dt = c d. Every `quantum` of accumulated s is one pulse (ltp_volts, or ltd_volts for a
// negative quantum). Everything on times at the board (source time + delay), so the pulses do not
// depend on network latency.
//   modulator `level`: each sample is the concentration until the next (zero-order hold), minus
//             `baseline` (never below 0): what a sensor streams;
//   modulator `bolus`: each sample adds its value to d, which decays with tau_d: Izhikevich's
//             DA(t) rewards.
enum class ModulatorMode : uint8_t { level, bolus };
struct RewardRule {
  int64_t window_ns = 100'000'000;
  int64_t tau_plus_ns = 20'000'000;
  int64_t tau_minus_ns = 20'000'000;
  double a_plus = 1.0;
  double a_minus = 1.5;
  int64_t tau_c_ns = 1'000'000'000;
  ModulatorMode mode = ModulatorMode::level;
  int64_t tau_d_ns = 200'000'000;  // bolus mode
  double baseline = 0;             // level mode
  double quantum = 0.01;           // accumulated c d (per second) per pulse
  double ltp_volts = 4.0;
  double ltd_volts = -4.0;
  double width_s = 100e-6;
  uint32_t port = UINT32_MAX;      // the board's input port that carries the neuromodulator
};

struct RuleSet {
  RateRule rate;
  StdpRule stdp;
  RewardRule reward;
  int64_t horizon_ns = 200'000'000;
  uint32_t history_per_neuron = 4096;  // spike times kept per neuron (oldest dropped, counted)
};

struct PlasticSynapse {
  uint32_t pre = 0;
  uint32_t post = 0;
  RuleKind rule = RuleKind::rate;
};

struct Pulse {
  uint32_t synapse = 0;
  double volts = 0;
  double width_s = 0;
  int64_t t_ns = 0;  // the spike time that triggered it
};

struct PlasticityCounters {
  uint64_t spikes = 0;
  uint64_t too_late = 0;           // older than the committed time
  uint64_t evaluations = 0;        // (trigger, synapse) pairs evaluated
  uint64_t ltp = 0;
  uint64_t ltd = 0;
  uint64_t history_dropped = 0;
  uint64_t rejected_neuron = 0;
  uint64_t modulator_samples = 0;  // neuromodulator samples used by the reward rule
};

class PlasticityEngine {
 public:
  PlasticityEngine(uint32_t neurons, std::vector<PlasticSynapse> synapses, RuleSet rules);

  // A spike of `neuron` at its time at the synapse. Never blocks; false if not used.
  bool add_spike(uint32_t neuron, int64_t t_ns) noexcept;
  // A neuromodulator sample (the reward rule's third factor) at its time at the board.
  bool add_modulator(int64_t t_ns, double value) noexcept;
  // Evaluates, in time order, every trigger with time <= now_ns - horizon; appends pulses.
  // Returns the number of evaluations made.
  size_t commit(int64_t now_ns, std::vector<Pulse>& out) noexcept;
  // Evaluates everything pending regardless of the horizon (end of a session).
  size_t commit_all(std::vector<Pulse>& out) noexcept;

  [[nodiscard]] const PlasticityCounters& counters() const noexcept { return c_; }
  // Pulses decided per synapse.
  [[nodiscard]] uint64_t ltp_of(uint32_t synapse) const noexcept { return synapse < ltp_.size() ? ltp_[synapse] : 0; }
  [[nodiscard]] uint64_t ltd_of(uint32_t synapse) const noexcept { return synapse < ltd_.size() ? ltd_[synapse] : 0; }
  [[nodiscard]] int64_t committed_ns() const noexcept { return committed_ns_; }
  [[nodiscard]] size_t pending() const noexcept { return triggers_.size(); }
  [[nodiscard]] const RuleSet& rules() const noexcept { return rules_; }
  // Reward rule: a synapse's eligibility and accumulated weight change (c d integrated), as of the
  // last committed evaluation; the modulator's value then.
  [[nodiscard]] double eligibility_of(uint32_t synapse) const noexcept;
  [[nodiscard]] double reward_change_of(uint32_t synapse) const noexcept;
  [[nodiscard]] double modulator() const noexcept { return d_; }

 private:
  static constexpr uint32_t kModulator = UINT32_MAX;  // a trigger that is a modulator sample
  struct Trigger {
    int64_t t_ns;
    uint32_t neuron;
    double value = 0;  // modulator samples
    bool operator>(const Trigger& o) const noexcept {
      return t_ns != o.t_ns ? t_ns > o.t_ns : neuron > o.neuron;
    }
  };
  struct RewardState {
    double c = 0;          // eligibility at t_ns
    int64_t t_ns = INT64_MIN;
    double s = 0;          // c d integrated, not yet turned into pulses
    double total = 0;      // c d integrated since the start
  };
  // Brings a reward synapse's trace and accumulated change to t (d as it was since its last
  // update), and turns whole quanta into pulses at t.
  void settle(uint32_t synapse, int64_t t_ns, std::vector<Pulse>& out) noexcept;
  void on_modulator(const Trigger& t, std::vector<Pulse>& out) noexcept;
  size_t commit_until(int64_t until_ns, std::vector<Pulse>& out) noexcept;
  void evaluate(const Trigger& t, std::vector<Pulse>& out) noexcept;
  // Spikes of `neuron` in [from, to) (times sorted); count and latest.
  [[nodiscard]] size_t count_in(uint32_t neuron, int64_t from_ns, int64_t to_ns) const noexcept;
  [[nodiscard]] int64_t latest_before(uint32_t neuron, int64_t before_ns) const noexcept;
  void trim(int64_t keep_from_ns) noexcept;

  RuleSet rules_;
  std::vector<PlasticSynapse> synapses_;
  std::vector<std::vector<uint32_t>> by_post_;      // rate and STDP synapses per post neuron
  std::vector<std::vector<uint32_t>> stdp_by_pre_;  // STDP synapses per pre neuron
  std::vector<std::vector<uint32_t>> reward_by_post_, reward_by_pre_;
  std::vector<uint32_t> reward_synapses_;
  std::vector<RewardState> reward_;                   // per synapse (used by reward synapses)
  double d_ = 0;                                      // the modulator, as of d_t_ns_
  int64_t d_t_ns_ = INT64_MIN;
  std::vector<std::vector<int64_t>> history_;       // sorted spike times per neuron
  std::priority_queue<Trigger, std::vector<Trigger>, std::greater<>> triggers_;
  int64_t committed_ns_ = INT64_MIN;
  int64_t lookback_ns_ = 0;
  PlasticityCounters c_;
  std::vector<uint64_t> ltp_;
  std::vector<uint64_t> ltd_;
};

}  // namespace ion::synapse
