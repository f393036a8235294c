// The iontronic neuron on the chip node (`chip.neuron_model: iontronic`): the regression targets
// of docs/devices/iontronic-neuron.md, from a converged integration of the same equations
// (LSODA, rtol 1e-10) and from the authors' molecular-dynamics output.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ion/chip/chip_driver.h"
#include "ion/chip/model.h"
#include "ion/core/config.h"

namespace ion::chip {
namespace {

constexpr int64_t kMs = 1'000'000;

ChipOptions one_neuron(const char* preset, double bias) {
  ChipOptions o;
  o.apply_iontronic_preset(preset);
  o.cores = 1;
  o.neurons_per_core = 1;
  o.mismatch_cv = 0;
  o.iontronic.bias = bias;
  return o;
}

std::vector<int64_t> spike_times(ChipModel& m, int64_t until_ns) {
  std::vector<ChipSpike> out;
  m.advance(until_ns, out);
  std::vector<int64_t> t;
  for (const auto& s : out) t.push_back(s.time_ns);
  return t;
}

double last_isi_ms(const std::vector<int64_t>& t) {
  return t.size() < 2 ? 0 : static_cast<double>(t.back() - t[t.size() - 2]) / kMs;
}

// The normalised model (E = +-1, g0 0.01, g1 20 and 5, tau 0.1 and 5) integrated to convergence
// gives ISIs of 54.246, 40.613 and 33.254 time units at I = 0.005, 0.02 and 0.05. In the physical
// preset a time unit is 1 ms and a current unit 100 pA.
TEST(Iontronic, InterSpikeIntervalsMatchAConvergedIntegrationOfTheSameEquations) {
  for (const auto& [current, isi] : {std::pair{0.005, 54.246}, std::pair{0.02, 40.613}, std::pair{0.05, 33.254}}) {
    ChipModel m(one_neuron("iontronic-ms", current * 100));
    const auto t = spike_times(m, 1500 * kMs);
    ASSERT_GE(t.size(), 10u) << "I = " << current;
    EXPECT_NEAR(last_isi_ms(t), isi, 0.01 * isi) << "I = " << current;
  }
}

// "rheobase > 0; f rises with I; block at high I" and the spike's shape: peak 0.96 E_na,
// undershoot -0.24 |E_k| (converged: 0.961 and -0.237 at I = 0.02).
TEST(Iontronic, RestsFiresFasterWithCurrentAndBlocksAtLargeCurrents) {
  {
    ChipModel m(one_neuron("iontronic-ms", 0));
    EXPECT_TRUE(spike_times(m, 2000 * kMs).empty()) << "rest without input";
    EXPECT_NEAR(m.membrane_mv(0), 0.0, 1e-6);
  }
  double previous_isi = 1e9;
  for (const double pa : {0.5, 1.0, 2.0, 5.0}) {
    ChipModel m(one_neuron("iontronic-ms", pa));
    const double isi = last_isi_ms(spike_times(m, 1500 * kMs));
    EXPECT_GT(isi, 0) << pa << " pA";
    EXPECT_LT(isi, previous_isi) << "f rises with I (" << pa << " pA)";
    previous_isi = isi;
  }
  {
    ChipModel m(one_neuron("iontronic-ms", 10));  // I = 0.1: depolarisation block
    const auto t = spike_times(m, 1000 * kMs);
    EXPECT_LE(t.size(), 2u);
    EXPECT_NEAR(m.membrane_mv(0), 60.9, 1.0) << "V settles at 0.61 E_na";
  }
  ChipModel m(one_neuron("iontronic-ms", 2));
  std::vector<ChipSpike> out;
  double peak = -1e9, trough = 1e9;
  for (int64_t t = 0; t < 1000 * kMs; t += m.step_ns()) {
    m.advance(t + m.step_ns(), out);
    if (t > 500 * kMs) {
      peak = std::max(peak, m.membrane_mv(0));
      trough = std::min(trough, m.membrane_mv(0));
    }
  }
  EXPECT_NEAR(peak, 96.1, 2.0);
  EXPECT_NEAR(trough, -23.7, 2.0);
}

// The authors' MD output: ISI 87.7 us (neuron/Efield.txt, 13 spikes). The md preset runs 1 us of
// device time as 1 ms of network time and says its voltages are simulation-scaled.
TEST(Iontronic, MdPresetGivesTheAuthorsIntervalInDeviceTimeAndSaysItsUnits) {
  ChipOptions preset;
  preset.apply_iontronic_preset("robin2021-md");
  ChipOptions o = one_neuron("robin2021-md", preset.iontronic.bias);
  EXPECT_EQ(o.time_base.name, "md");
  EXPECT_TRUE(o.time_base.simulation_scaled());
  EXPECT_EQ(o.time_base.time_unit, "us");
  EXPECT_EQ(o.time_base.time_scale, 1000);
  EXPECT_NE(o.time_base.voltage_unit.find("not a membrane potential"), std::string::npos);
  ChipModel m(o);
  const auto t = spike_times(m, 2000 * kMs);
  ASSERT_GE(t.size(), 10u);
  const double isi_network_ms = last_isi_ms(t);
  EXPECT_NEAR(isi_network_ms / o.time_base.time_scale * 1e3, 87.7, 0.9) << "us of device time";
}

// A weight-1 fast excitatory input (twice the charge that lifts a resting neuron to v_spike: the
// presets' stand-in gain) evokes one spike, not a train; an inhibitory one evokes none. (The
// model's threshold for a kick is tiny: near rest dV/dt ~ g1_na V^2/E - 2 g0 V, unstable above
// V = 2 g0 E / g1_na, 0.1 mV in the physical preset: it is excitable, all or none.)
TEST(Iontronic, AnExcitatoryInputEvokesOneSpikeAnInhibitoryOneNone) {
  for (const auto& [type, spikes] : {std::pair{SynapseType::fast_exc, 1u}, std::pair{SynapseType::fast_inh, 0u}}) {
    ChipModel m(one_neuron("iontronic-ms", 0));
    ASSERT_EQ(m.inject(0, type, 1.0F, 10 * kMs), InputResult::queued);
    EXPECT_EQ(spike_times(m, 300 * kMs).size(), spikes) << to_string(type);
  }
}

TEST(Iontronic, ConfigTakesThePresetAndRefusesWhatCannotBeRight) {
  const auto driver = [](const std::string& chip) {
    return ChipDriverOptions::from_config(ConfigNode::parse("kind: chip\nchip: " + chip, "test"));
  };
  const ChipDriverOptions o = driver("{neuron_model: iontronic, iontronic: {preset: robin2021-md, bias: 0.01}}");
  EXPECT_EQ(o.chip.neuron_model, NeuronModelKind::iontronic);
  EXPECT_EQ(o.chip.time_base.name, "md");
  EXPECT_EQ(o.chip.iontronic.bias, 0.01);
  EXPECT_EQ(o.chip.neurons(), 16u) << "the preset's size";
  EXPECT_EQ(driver("{neuron_model: iontronic, cores: 2}").chip.neurons(), 32u) << "keys override the preset";
  auto refused = [&](const std::string& chip, const std::string& says) {
    try {
      (void)driver(chip);
      ADD_FAILURE() << chip << " accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused("{neuron_model: iontronic, step_ms: 0.1}", "above tau_na/4");
  refused("{neuron_model: iontronic, iontronic: {preset: hh1952}}", "iontronic-ms, robin2021-md");
  refused("{neuron_model: iontronic, neuron: {c_pf: 1}}", "an iontronic chip takes `iontronic:`");
  refused("{neuron_model: hodgkin}", "one of: adex, iontronic");
  refused("{iontronic: {bias: 1}}", "neuron_model: iontronic");
}

}  // namespace
}  // namespace ion::chip
