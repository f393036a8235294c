#pragma once
// The distal-reward experiment of Izhikevich (Cerebral Cortex 17:2443, 2007) on the reward rule
// (plasticity.h): synapse k joins neuron k to neuron n + k; every neuron fires at
// `background_hz` (Poisson); every 2-6 s one synapse's pre and post fire 5 ms apart, synapse 0
// (S*) with probability `rewarded_share`, another one otherwise; each pairing of S*, and only
// those, is followed 1-3 s later by a reward (a bolus of `reward_um`). With `wan`, every spike and
// reward reaches the engine 20-60 ms after its time (out of order), as over an emulated WAN.
#include <cstdint>
#include <vector>

#include "ion/synapse/plasticity.h"

namespace ion::synapse {

struct DistalRewardProtocol {
  uint32_t synapses = 20;
  double seconds = 1200;
  double background_hz = 1.0;
  double rewarded_share = 0.25;
  double reward_um = 0.5;
  uint64_t seed = 1;
  bool wan = false;
  RuleSet rules = izhikevich_rules();
  // tau_c 1 s, tau_d 0.2 s (bolus), A+ 1.0, A- 1.5, tau+- 20 ms, quantum 0.01.
  static RuleSet izhikevich_rules();
};

struct DistalRewardResult {
  std::vector<double> change;  // c d integrated, per synapse
  std::vector<Pulse> pulses;   // in the order the engine decided them
  uint32_t rewards = 0;
  uint32_t pairings = 0;
  uint64_t too_late = 0;
};

[[nodiscard]] DistalRewardResult run_distal_reward(const DistalRewardProtocol& p);

}  // namespace ion::synapse
