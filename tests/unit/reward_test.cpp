// Reward-modulated plasticity at the synapse board (rule `reward`, a third factor): the distal
// reward result of Izhikevich (Cerebral Cortex 17:2443, 2007), on times at the board.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "ion/core/config.h"
#include "ion/synapse/distal_reward.h"
#include "ion/synapse/plasticity.h"
#include "ion/synapse/synapse_driver.h"

namespace ion::synapse {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

RuleSet izhikevich() { return DistalRewardProtocol::izhikevich_rules(); }

// "The synapse whose pairing is followed by reward 1-3 s later is potentiated, while the others
// are not ... the same weights with and without an emulated WAN."
TEST(RewardRule, DistalRewardPotentiatesOnlyTheRewardedSynapseWithAndWithoutTheWan) {
  for (const uint64_t seed : {1u, 2u, 3u}) {
    DistalRewardProtocol p;
    p.seed = seed;
    const DistalRewardResult direct = run_distal_reward(p);
    p.wan = true;
    const DistalRewardResult wan = run_distal_reward(p);
    EXPECT_EQ(direct.too_late, 0u);
    EXPECT_EQ(wan.too_late, 0u) << "every arrival within the horizon";
    double others_max = -1e9;
    for (uint32_t k = 1; k < p.synapses; ++k) others_max = std::max(others_max, direct.change[k]);
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
    for (uint32_t k = 0; k < p.synapses; ++k) EXPECT_DOUBLE_EQ(direct.change[k], wan.change[k]);
    double net0 = 0;  // LTP minus LTD pulses of S*
    for (const Pulse& x : direct.pulses) net0 += x.synapse == 0 ? (x.volts > 0 ? 1 : -1) : 0;
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
