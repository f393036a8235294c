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

enum class RuleKind : uint8_t { none, rate, stdp };

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

struct RuleSet {
  RateRule rate;
  StdpRule stdp;
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
};

class PlasticityEngine {
 public:
  PlasticityEngine(uint32_t neurons, std::vector<PlasticSynapse> synapses, RuleSet rules);

  // A spike of `neuron` at its time at the synapse. Never blocks; false if not used.
  bool add_spike(uint32_t neuron, int64_t t_ns) noexcept;
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

 private:
  struct Trigger {
    int64_t t_ns;
    uint32_t neuron;
    bool operator>(const Trigger& o) const noexcept {
      return t_ns != o.t_ns ? t_ns > o.t_ns : neuron > o.neuron;
    }
  };
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
  std::vector<std::vector<int64_t>> history_;       // sorted spike times per neuron
  std::priority_queue<Trigger, std::vector<Trigger>, std::greater<>> triggers_;
  int64_t committed_ns_ = INT64_MIN;
  int64_t lookback_ns_ = 0;
  PlasticityCounters c_;
  std::vector<uint64_t> ltp_;
  std::vector<uint64_t> ltd_;
};

}  // namespace ion::synapse
