// Nanofluidic memristor (synapse board, `device.model: nanofluidic`): the checks the published
// model allows (Robin et al., Science 379:161, 2023, SM sec. 3.3; docs/devices/nanofluidic.md).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "../eventually.h"
#include "recording_emitter.h"
#include "ion/core/config.h"
#include "ion/synapse/device.h"
#include "ion/synapse/synapse_driver.h"

namespace ion::synapse {
namespace {

constexpr double kPi = std::numbers::pi;

NanofluidicParams exact(NanofluidicParams p) {
  p.d2d_sigma = 0;
  p.c2c_sigma = 0;
  p.read_noise = 0;
  return p;
}

struct Loop {
  std::vector<double> v, g;  // at the end of each step of the last period
};

// V(t) = amplitude sin(w t) as piecewise-constant pulses (the mid-step value), `periods` periods
// of `steps` pulses each; the last period is returned.
Loop drive_sine(NanofluidicDevice& d, double amplitude, double omega, int periods, int steps) {
  Rng rng(1);
  const double period_s = 2 * kPi / omega;
  const double dt_s = period_s / steps;
  Loop out;
  for (int k = 0; k < periods * steps; ++k) {
    const double t_mid = (k + 0.5) * dt_s;
    const double t_end = (k + 1) * dt_s;
    d.pulse(amplitude * std::sin(omega * t_mid), dt_s, std::llround(t_end * 1e9), rng);
    if (k >= (periods - 1) * steps) {
      out.v.push_back(amplitude * std::sin(omega * t_end));
      out.g.push_back(d.conductance_s(std::llround(t_end * 1e9)));
    }
  }
  return out;
}

// The area of the V > 0 lobe of the I-V loop, |integral of I dV| over the positive half period.
double positive_lobe_area(const Loop& l) {
  double a = 0;
  const size_t half = l.v.size() / 2;
  for (size_t k = 1; k <= half; ++k) {
    const double i0 = l.g[k - 1] * l.v[k - 1];
    const double i1 = l.g[k] * l.v[k];
    a += 0.5 * (i0 + i1) * (l.v[k] - l.v[k - 1]);
  }
  return std::fabs(a);
}

// "Normalised loop area vs frequency: A*(w) = K w tau_m / (1 + w^2 tau_m^2)" (SM Eq. S40). For the
// unipolar law with alpha = 2 the drive acts at 2w (V^2), so for the kernel's tau the lobe area is
// (pi V^2 g1 / 8) x 2w tau / (1 + (2 w tau)^2) exactly: tau_m = 2 tau, the peak at w = 1/(2 tau).
TEST(Nanofluidic, LobeAreaFollowsTheLorentzianOfTheMemoryTime) {
  NanofluidicParams p = exact(NanofluidicParams::preset("robin2021"));
  ASSERT_EQ(p.alpha, 2);
  p.tau_s = 10;  // the law scales with w tau; a long tau keeps the steps far above 1 ns
  const double tau = p.tau_s;
  const double amplitude = p.v0;
  std::vector<std::pair<double, double>> area;  // (w tau, area)
  for (const double wt : {0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 1.0, 2.0, 10.0, 50.0}) {
    NanofluidicDevice d(p, 1.0, 1.0);
    // Settled: the mean conductance relaxes with tau too, so run at least 12 tau first.
    const int periods = 2 + static_cast<int>(std::ceil(12 * wt / (2 * kPi)));
    const Loop l = drive_sine(d, amplitude, wt / tau, std::max(periods, 6), 4000);
    const double expected = kPi * amplitude * amplitude * p.g1_s / 8 * (2 * wt) / (1 + 4 * wt * wt);
    const double got = positive_lobe_area(l);
    EXPECT_NEAR(got / expected, 1.0, 0.01) << "w tau = " << wt;
    area.emplace_back(wt, got);
  }
  const auto peak = std::max_element(area.begin(), area.end(),
                                     [](const auto& x, const auto& y) { return x.second < y.second; });
  EXPECT_EQ(peak->first, 0.5) << "the lobe area peaks at w = 1/(2 tau)";
  EXPECT_LT(area.front().second, 0.1 * peak->second) << "the loop closes at low frequency";
  EXPECT_LT(area.back().second, 0.1 * peak->second) << "and at high frequency";
}

// The same for the rectifying (bipolar) term of the mixed law, G_qs = g_bi (1 + b V/v0): the
// drive acts at w itself, and the lobe area is (2/3) g_bi b V^3/v0 x w tau / (1 + (w tau)^2)
// exactly: "the loop area against frequency peaks at w = 1/tau with the shape
// w tau / (1 + w^2 tau^2)" (SM Eq. S40 with tau_m = tau).
TEST(Nanofluidic, RectifyingLobeAreaPeaksAtTheInverseMemoryTime) {
  NanofluidicParams p = exact(NanofluidicParams::preset("robin2023"));
  p.g_uni_s = 0;  // the bipolar term alone
  p.a = 0;
  p.b = 0.5;
  p.tau_s = 10;
  std::vector<std::pair<double, double>> area;
  for (const double wt : {0.05, 0.2, 0.5, 0.8, 1.0, 1.25, 2.0, 5.0, 20.0}) {
    NanofluidicDevice d(p, 1.0, 1.0);
    const int periods = 2 + static_cast<int>(std::ceil(12 * wt / (2 * kPi)));
    const Loop l = drive_sine(d, p.v0, wt / p.tau_s, std::max(periods, 6), 4000);
    const double expected = 2.0 / 3.0 * p.g_bi_s * p.b * p.v0 * p.v0 * wt / (1 + wt * wt);
    EXPECT_NEAR(positive_lobe_area(l) / expected, 1.0, 0.01) << "w tau = " << wt;
    area.emplace_back(wt, positive_lobe_area(l));
  }
  const auto peak = std::max_element(area.begin(), area.end(),
                                     [](const auto& x, const auto& y) { return x.second < y.second; });
  EXPECT_EQ(peak->first, 1.0) << "the lobe area peaks at w = 1/tau";
}

// "Quasistatic exponent alpha in [2, 3]" and "I = 0 when V = 0": at w tau = 1e-3 the conductance
// follows G_qs(V); the exponent fitted from the sweep is the configured one.
TEST(Nanofluidic, SlowSweepFollowsTheQuasiStaticLawAndItsExponent) {
  for (const double alpha : {2.0, 2.5, 3.0}) {
    NanofluidicParams p = exact(NanofluidicParams::preset("robin2021"));
    p.alpha = alpha;
    NanofluidicDevice d(p, 1.0, 1.0);
    const Loop l = drive_sine(d, 2 * p.v0, 1e-3 / p.tau_s, 2, 4000);
    // Least squares of log(G - g0) on log|V| over |V| in [0.5, 2] v0.
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int n = 0;
    for (size_t k = 0; k < l.v.size(); ++k) {
      const double x = std::fabs(l.v[k]) / p.v0;
      if (x < 0.5) continue;
      const double lx = std::log(x), ly = std::log(l.g[k] - p.g0_s);
      sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly, ++n;
      EXPECT_NEAR(l.g[k] / p.g_qs_s(l.v[k]), 1.0, 0.01);
    }
    const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    EXPECT_NEAR(slope, alpha, 0.05);
    for (size_t k = 0; k < l.v.size(); ++k) {
      if (l.v[k] == 0.0) {
        EXPECT_EQ(l.g[k] * l.v[k], 0.0) << "pinched at the origin";
      }
    }
  }
}

// "Unipolar vs bipolar" and "rectification ratio beta = G(V>0)/G(V<0) = 1-5": under the same slow
// +-1 V sweep, a unipolar channel conducts alike in both polarities, a bipolar one rectifies.
TEST(Nanofluidic, UnipolarIsEvenBipolarRectifies) {
  NanofluidicParams uni = exact(NanofluidicParams::preset("robin2021"));
  NanofluidicParams bi = exact(NanofluidicParams::preset("robin2021"));
  bi.law = NanofluidicLaw::bipolar;
  bi.g_plus_s = 3e-9;
  bi.g_minus_s = 1e-9;
  for (const auto& [p, beta] : {std::pair{uni, 1.0}, std::pair{bi, 3.0}}) {
    NanofluidicDevice d(p, 1.0, 1.0);
    const Loop l = drive_sine(d, 1.0, 1e-3 / p.tau_s, 2, 4000);
    const size_t quarter = l.v.size() / 4;  // V = +1 at a quarter period, -1 at three quarters
    EXPECT_NEAR(l.g[quarter - 1] / l.g[3 * quarter - 1], beta, 0.02 * beta);
  }
}

// The 2023 channels' write/erase protocol (Fig. 4: write +1 V / 10 s, read, erase -1 V / 10 s; 30
// writes then 30 erases return G to its start, over a 12 % span): memory of 100 s makes a
// staircase up and back.
TEST(Nanofluidic, Robin2023WritesStepUpAndErasesReturnToTheStart) {
  const NanofluidicParams p = exact(NanofluidicParams::preset("robin2023"));
  NanofluidicDevice d(p, 1.0, 1.0);
  Rng rng(1);
  int64_t t = 0;
  const double start = d.conductance_s(0);
  std::vector<double> after;
  for (int k = 0; k < 60; ++k) {
    t += 10 * 1'000'000'000LL;
    d.pulse(k < 30 ? 1.0 : -1.0, 10.0, t, rng);
    t += 5 * 1'000'000'000LL;  // the read's 5 s (a read does not move G here)
    after.push_back(d.conductance_s(t) / start);
  }
  for (int k = 1; k < 30; ++k) EXPECT_GT(after[k], after[k - 1]) << "write " << k;
  for (int k = 31; k < 60; ++k) EXPECT_LT(after[k], after[k - 1]) << "erase " << k;
  EXPECT_GT(after[29], 1.05);
  EXPECT_LT(after[29], 1.12) << "within the 12 % span";
  EXPECT_NEAR(after[59], 1.0, 0.01) << "30 erases return G to its start";
}

// Memory fades with the device's tau: after a pulse, G - G_rest falls by e every tau.
TEST(Nanofluidic, AfterAPulseTheStateFadesWithTau) {
  const NanofluidicParams p = exact(NanofluidicParams::preset("robin2021"));
  NanofluidicDevice d(p, 1.0, 1.0);
  Rng rng(1);
  const int64_t t0 = 1'000'000'000;
  d.pulse(1.5, 0.02, t0, rng);
  const double rest = p.g_rest_s();
  const double g0 = d.conductance_s(t0) - rest;
  ASSERT_GT(g0, 0);
  const auto tau_ns = static_cast<int64_t>(p.tau_s * 1e9);
  EXPECT_NEAR((d.conductance_s(t0 + tau_ns) - rest) / g0, std::exp(-1.0), 1e-9);
  EXPECT_NEAR((d.conductance_s(t0 + 3 * tau_ns) - rest) / g0, std::exp(-3.0), 1e-9);
  EXPECT_DOUBLE_EQ(d.resistance_ohm(t0), 1.0 / d.conductance_s(t0));
}

TEST(Nanofluidic, BadParametersAndPresetsAreRefusedByName) {
  EXPECT_THROW(NanofluidicParams::preset("robin2099"), std::invalid_argument);
  NanofluidicParams p;
  p.tau_s = 0;
  EXPECT_THROW(p.validate(), std::invalid_argument);
  const auto cfg = ConfigNode::parse(R"(
kind: synapse
neurons: 2
synapses: [{pre: 0, post: 1, cell: [0, 0]}]
device: {model: nanofluidic, preset: robin2099}
)", "test");
  try {
    (void)SynapseDriverOptions::from_config(cfg);
    ADD_FAILURE() << "an unknown preset accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("robin2021, robin2023"), std::string::npos) << e.what();
  }
}

// "It sits in the crossbar beside the existing models, with the same instrument, transmission and
// plasticity paths": a board of nanofluidic cells transmits at once, its rate rule's pulses raise
// the conductance read back, and the weight falls back to rest within a few tau.
TEST(Nanofluidic, OnTheBoardPulsesRaiseTheWeightAndItFades) {
  const auto cfg = ConfigNode::parse(R"(
kind: synapse
neurons: {pre: 0, post: 1}
synapses: [{pre: pre, post: post, cell: [0, 0], rule: stdp}]
crossbar: {wordlines: 1, bitlines: 1}
device: {model: nanofluidic, preset: robin2021, d2d_sigma: 0, c2c_sigma: 0, read_noise: 0}
instrument: {pulse_time: 100us, read_time: 100us}
plasticity: {horizon: 10ms, stdp: {ltp_v_min: 1.5, ltp_v_max: 2, ltd_v_min: -1.5, ltd_v_max: -2, width: 1ms}}
refresh_interval: 5ms
)", "test");
  SynapseDriverOptions o = SynapseDriverOptions::from_config(cfg);
  EXPECT_EQ(o.weight.map, WeightMap::conductance) << "a channel's weight is its conductance";
  EXPECT_NEAR(1.0 / o.weight.r_max_ohm, o.crossbar.device.nanofluidic.g_rest_s(), 1e-18);
  SynapseDriver d(o);
  test::RecordingEmitter em;
  d.start(em);
  ASSERT_TRUE(test::eventually([&] { return d.counters().at("reads_done") >= 1; }, std::chrono::seconds(10)));
  EXPECT_NEAR(d.weights()[0], 0.0, 1e-6) << "at rest";
  const int64_t now = em.network_now_ns();
  BatchHeader h;
  for (int k = 0; k < 3; ++k) {  // pre 5 ms before post: STDP potentiation pulses
    EventBatch pre, post;
    pre.push(0, now + k * 20'000'000);
    post.push(1, now + k * 20'000'000 + 5'000'000);
    d.deliver(h, pre, {});
    d.deliver(h, post, {});
  }
  ASSERT_TRUE(test::eventually([&] { return d.counters().at("pulses_done") >= 3; }, std::chrono::seconds(10)));
  EXPECT_EQ(d.counters().at("transmitted"), 3) << "every pre spike transmitted";
  float peak = 0;
  ASSERT_TRUE(test::eventually([&] {
    peak = std::max(peak, d.weights()[0]);
    return peak > 0.2F;
  }, std::chrono::seconds(10))) << "a read after the pulses sees the raised conductance";
  EXPECT_TRUE(test::eventually([&] { return d.weights()[0] < 0.02F; }, std::chrono::seconds(10)))
      << "and the refresh reads see it fade (tau 5 ms)";
  d.stop();
}

}  // namespace
}  // namespace ion::synapse
