// Reward-modulated plasticity at the synapse board (rule `reward`, a third factor): the distal
// reward result of Izhikevich (Cerebral Cortex 17:2443, 2007), on times at the board.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "ion/core/config.h"
#include "ion/synapse/plasticity.h"
#include "ion/synapse/synapse_driver.h"

namespace ion::synapse {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;
constexpr uint32_t kSynapses = 20;

// Izhikevich 2007: eligibility decays with tau_c = 1 s, dopamine with tau_d = 0.2 s, STDP
// A+ = 1.0 and A- = 1.5 with tau = 20 ms, each reward adds 0.5 uM of dopamine.
RuleSet izhikevich() {
  RuleSet r;
  r.reward.mode = ModulatorMode::bolus;
  r.reward.tau_c_ns = 1 * kS;
  r.reward.tau_d_ns = 200 * kMs;
  r.reward.a_plus = 1.0;
  r.reward.a_minus = 1.5;
  r.reward.quantum = 0.01;
  return r;
}

struct Event {
  int64_t t_ns;
  uint32_t neuron;  // UINT32_MAX: a reward
};

// Synapse k: neuron k -> neuron kSynapses + k. Every neuron fires at 1 Hz (Poisson); every 2-6 s a
// pairing (pre, then post 5 ms later) of one synapse: synapse 0 (S*) a quarter of the time, one of
// the others otherwise. Each pairing of S*, and only those, is followed by a reward 1-3 s later.
std::vector<Event> protocol(uint64_t seed, double seconds) {
  std::mt19937_64 rng(seed);
  std::vector<Event> ev;
  std::exponential_distribution<double> background(1.0);
  for (uint32_t n = 0; n < 2 * kSynapses; ++n) {
    for (double t = background(rng); t < seconds; t += background(rng)) {
      ev.push_back({static_cast<int64_t>(t * 1e9), n});
    }
  }
  std::uniform_real_distribution<double> gap(2.0, 6.0), delay(1.0, 3.0), u(0.0, 1.0);
  std::uniform_int_distribution<uint32_t> other(1, kSynapses - 1);
  for (double t = 1.0; t < seconds - 4; t += gap(rng)) {
    const uint32_t k = u(rng) < 0.25 ? 0 : other(rng);
    const auto pre = static_cast<int64_t>(t * 1e9);
    ev.push_back({pre, k});
    ev.push_back({pre + 5 * kMs, kSynapses + k});
    if (k == 0) ev.push_back({pre + static_cast<int64_t>(delay(rng) * 1e9), UINT32_MAX});
  }
  std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) { return a.t_ns < b.t_ns; });
  return ev;
}

struct Outcome {
  std::vector<double> change;  // c d integrated per synapse
  std::vector<Pulse> pulses;
};

// Feeds the events in their arrival order: with `wan`, each arrives 20-60 ms after its time (an
// emulated network's latency and jitter, so arrivals reorder), and the engine commits as network
// time passes the arrivals.
Outcome run(const std::vector<Event>& events, bool wan) {
  std::vector<PlasticSynapse> syn;
  for (uint32_t k = 0; k < kSynapses; ++k) syn.push_back({k, kSynapses + k, RuleKind::reward});
  PlasticityEngine e(2 * kSynapses, syn, izhikevich());
  std::vector<std::pair<int64_t, Event>> arrivals;
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int64_t> latency(20 * kMs, 60 * kMs);
  for (const Event& x : events) arrivals.emplace_back(x.t_ns + (wan ? latency(rng) : 0), x);
  std::stable_sort(arrivals.begin(), arrivals.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Outcome o;
  for (const auto& [arrival, x] : arrivals) {
    e.commit(arrival, o.pulses);
    if (x.neuron == UINT32_MAX) {
      EXPECT_TRUE(e.add_modulator(x.t_ns, 0.5));
    } else {
      EXPECT_TRUE(e.add_spike(x.neuron, x.t_ns));
    }
  }
  e.commit_all(o.pulses);
  for (uint32_t k = 0; k < kSynapses; ++k) o.change.push_back(e.reward_change_of(k));
  EXPECT_EQ(e.counters().too_late, 0u) << "every arrival within the horizon";
  return o;
}

// "The synapse whose pairing is followed by reward 1-3 s later is potentiated, while the others
// are not ... the same weights with and without an emulated WAN."
TEST(RewardRule, DistalRewardPotentiatesOnlyTheRewardedSynapseWithAndWithoutTheWan) {
  for (const uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<Event> events = protocol(seed, 1200);
    const Outcome direct = run(events, false);
    const Outcome wan = run(events, true);
    double others_max = -1e9;
    for (uint32_t k = 1; k < kSynapses; ++k) others_max = std::max(others_max, direct.change[k]);
    EXPECT_GT(direct.change[0], 0.2) << "seed " << seed;
    EXPECT_GT(direct.change[0], 3 * std::max(others_max, 0.0)) << "seed " << seed << ": S* " << direct.change[0]
                                                                << ", best other " << others_max;
    // Source times only: the same pulses, in the same order, whatever the network did.
    ASSERT_EQ(direct.pulses.size(), wan.pulses.size()) << "seed " << seed;
    for (size_t i = 0; i < direct.pulses.size(); ++i) {
      EXPECT_EQ(direct.pulses[i].synapse, wan.pulses[i].synapse);
      EXPECT_EQ(direct.pulses[i].t_ns, wan.pulses[i].t_ns);
      EXPECT_EQ(direct.pulses[i].volts, wan.pulses[i].volts);
    }
    for (uint32_t k = 0; k < kSynapses; ++k) EXPECT_DOUBLE_EQ(direct.change[k], wan.change[k]);
    double net0 = 0;  // LTP minus LTD pulses of S*
    for (const Pulse& p : direct.pulses) net0 += p.synapse == 0 ? (p.volts > 0 ? 1 : -1) : 0;
    EXPECT_NEAR(net0, direct.change[0] / 0.01, 1.0) << "one pulse per quantum of change";
  }
}

// The integral itself: one pairing (eligibility a_plus e^{-5/20}), then a level of d from t1 on:
// the change by t2 is c(t1) d tau_c (1 - e^{-(t2 - t1)/tau_c}); no modulator, no change.
TEST(RewardRule, ChangeIsTheIntegralOfEligibilityTimesModulator) {
  RuleSet r = izhikevich();
  r.reward.mode = ModulatorMode::level;
  r.reward.quantum = 1e9;  // no pulses: only the integral
  PlasticityEngine e(2, {{0, 1, RuleKind::reward}}, r);
  std::vector<Pulse> out;
  ASSERT_TRUE(e.add_spike(0, 1 * kS));
  ASSERT_TRUE(e.add_spike(1, 1 * kS + 5 * kMs));
  ASSERT_TRUE(e.add_modulator(2 * kS, 2.0));  // 2 uM from t1 = 2 s
  ASSERT_TRUE(e.add_modulator(3 * kS, 0.0));  // until t2 = 3 s
  e.commit_all(out);
  const double c0 = std::exp(-5.0 / 20.0);
  const double c1 = c0 * std::exp(-(2.0 - 1.005));
  EXPECT_NEAR(e.reward_change_of(0), c1 * 2.0 * (1 - std::exp(-1.0)), 1e-9);
  EXPECT_TRUE(out.empty());

  PlasticityEngine quiet(2, {{0, 1, RuleKind::reward}}, r);
  ASSERT_TRUE(quiet.add_spike(0, 1 * kS));
  ASSERT_TRUE(quiet.add_spike(1, 1 * kS + 5 * kMs));
  quiet.commit_all(out);
  EXPECT_EQ(quiet.reward_change_of(0), 0.0) << "no third factor, no change";
  EXPECT_NEAR(quiet.eligibility_of(0), c0, 1e-12);
}

TEST(RewardRule, ConfigNamesTheModulatorPortAndRefusesWhatIsMissing) {
  const auto board = [](const std::string& extra) {
    return SynapseDriverOptions::from_config(ConfigNode::parse(
        "kind: synapse\nneurons: {pre: 0, post: 1, dopamine: 2}\n"
        "synapses: [{pre: pre, post: post, cell: [0, 0], rule: reward}]\n" + extra, "test"));
  };
  const SynapseDriverOptions o =
      board("plasticity: {reward: {port: dopamine, modulator: bolus, tau_d: 200ms, quantum: 0.05, ltp_volts: 2, ltd_volts: -2}}\n");
  EXPECT_EQ(o.rules.reward.port, 2u);
  EXPECT_EQ(o.rules.reward.mode, ModulatorMode::bolus);
  EXPECT_EQ(o.rules.reward.quantum, 0.05);
  auto refused = [&](const std::string& extra, const std::string& says) {
    try {
      (void)board(extra);
      ADD_FAILURE() << extra << " accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused("", "need plasticity.reward.port");
  refused("plasticity: {reward: {port: serotonin}}\n", "carrying the neuromodulator");
  refused("plasticity: {reward: {port: 2, modulator: pulse}}\n", "one of: level, bolus");
}

}  // namespace
}  // namespace ion::synapse
