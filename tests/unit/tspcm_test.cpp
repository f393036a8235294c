// TS-PCM neuro-synaptic cells (`device.model: ts-pcm`): the checks of docs/devices/ts-pcm.md.
// Device parameters are aihwkit's PCMPresetDevice and PCMLikeNoiseModel (open implementation of
// Nandakumar et al. 2020) and stand-ins for the switch and the oscillator (the paper's numbers
// could not be read); the tests check the model's laws, not the paper's figures.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "../eventually.h"
#include "recording_emitter.h"
#include "ion/core/config.h"
#include "ion/synapse/synapse_driver.h"
#include "ion/synapse/tspcm.h"

namespace ion::synapse {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

TsPcmParams exact() {
  TsPcmParams p;
  p.pcm.dw_min_std = 0;
  p.pcm.dw_min_dtod = 0;
  p.pcm.reset_dtod = 0;
  p.pcm.drift = false;
  p.cell.feedback = 0;
  return p;
}

// "The cell threshold follows V_th,TS (1 + R_PCM / R_off,TS)": from rest under a constant drive
// the capacitor follows V_ss (1 - exp(-t / (C R_eff))), so the first firing comes at
// C R_eff ln(V_ss / (V_ss - V_th,cell)); a drive whose V_ss sits just below V_th,cell never fires.
TEST(TsPcm, TheCellFiresAtTheDividerThresholdOfTheSwitchAndThePcm) {
  const TsPcmParams p = exact();
  Rng rng(1);
  for (const double w : {0.2, 0.6, 1.0, 1.6, 2.0}) {
    TsPcmCell cell(p, 1.0, 0.0);
    cell.set_weight(w, 0, rng);
    const double r_p = 1.0 / TsPcmCell::conductance_of(p.pcm, w);
    const double v_cell = p.ts.v_th * (1 + r_p / p.ts.r_off_ohm);
    EXPECT_NEAR(cell.cell_threshold_v(0), v_cell, 1e-9 * v_cell) << "w " << w;
    const double r_eff = 1.0 / (1.0 / p.cell.r_leak_ohm + 1.0 / (p.ts.r_off_ohm + r_p));
    const double i = 1.5 * v_cell / r_eff;  // V_ss = 1.5 V_th,cell
    std::vector<int64_t> fired;
    ASSERT_TRUE(cell.drive(i, 1 * kS, 2 * kS, rng, fired));
    ASSERT_FALSE(fired.empty()) << "w " << w;
    const double expected_s = p.cell.c_f * r_eff * std::log(1.5 / 0.5);
    EXPECT_NEAR(static_cast<double>(fired[0] - 1 * kS) * 1e-9, expected_s, 1e-6) << "w " << w;

    TsPcmCell below(p, 1.0, 0.0);
    below.set_weight(w, 0, rng);
    fired.clear();
    ASSERT_TRUE(below.drive(0.999 * v_cell / r_eff, 1 * kS, 100 * kS, rng, fired));
    EXPECT_TRUE(fired.empty()) << "V_ss below V_th,cell: no firing (w " << w << ")";
  }
}

// "Firing frequency rises monotonically with PCM conductance at fixed input" (intrinsic
// plasticity); the simulated rate equals the closed form.
TEST(TsPcm, FiringRateRisesWithPcmConductanceAtAFixedDrive) {
  const TsPcmParams p = exact();
  Rng rng(1);
  double previous = 0;
  for (const double w : {0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6, 2.0}) {
    TsPcmCell cell(p, 1.0, 0.0);
    cell.set_weight(w, 0, rng);
    std::vector<int64_t> fired;
    ASSERT_TRUE(cell.drive(p.cell.drive_a, 0, 20 * kS, rng, fired));
    ASSERT_GE(fired.size(), 3u) << "w " << w;
    const double rate = static_cast<double>(fired.size() - 1) / (static_cast<double>(fired.back() - fired.front()) * 1e-9);
    EXPECT_NEAR(rate, TsPcmCell::firing_rate_hz(p, TsPcmCell::conductance_of(p.pcm, w), p.cell.drive_a),
                0.01 * rate);
    EXPECT_GT(rate, previous) << "w " << w;
    previous = rate;
  }
  EXPECT_EQ(TsPcmCell::firing_rate_hz(p, p.pcm.g_min_s, p.cell.drive_a), 0.0) << "the amorphous cell is silent";
}

// aihwkit ExpStepDevice with PCMPresetDevice's parameters: a SET step from w is
// dw_min (1 + 27.235 exp(-2.5 w)) (a = -1, b = 0, w_max - w_min = 2); from the reset state 0.01
// that is 0.275626; the steps shrink as w grows; a RESET is abrupt.
TEST(TsPcm, SetStepsFollowTheExponentialStepLawAndResetIsAbrupt) {
  TsPcmParams p = exact();
  p.pcm.reset = 0.01;
  TsPcmCell cell(p, 1.0, p.pcm.reset);
  Rng rng(1);
  EXPECT_NEAR(TsPcmCell::set_step(p.pcm, 0.01), 0.01 * (1 + 27.235 * std::exp(-2.5 * 0.01)), 1e-12);
  EXPECT_NEAR(TsPcmCell::set_step(p.pcm, 0.01), 0.275626, 1e-6);
  double w = cell.weight(0);
  double last_step = 1e9;
  for (int k = 1; k <= 40; ++k) {
    cell.pulse(p.pcm.set_v, 1e-6, k * kMs, rng);
    const double step = cell.weight(k * kMs) - w;
    EXPECT_NEAR(step, std::min(TsPcmCell::set_step(p.pcm, w), p.pcm.w_max - w), 1e-12) << "pulse " << k;
    EXPECT_LE(step, last_step);
    last_step = step;
    w = cell.weight(k * kMs);
  }
  EXPECT_GT(w, 1.4) << "40 pulses take it most of the way to w_max = 2";
  EXPECT_LE(w, p.pcm.w_max);
  cell.pulse(0.5 * p.pcm.set_v, 1e-6, 50 * kMs, rng);
  EXPECT_EQ(cell.weight(50 * kMs), w) << "below the SET amplitude: nothing";
  cell.pulse(p.pcm.reset_v, 1e-6, 51 * kMs, rng);
  EXPECT_EQ(cell.weight(51 * kMs), 0.01) << "one RESET pulse returns the amorphous state";
}

// aihwkit PCMLikeNoiseModel: g(t) = g_prog ((t + t0)/t0)^-nu, t0 = 20 s, nu ~ N(mu(g), sd(g)) with
// mu = clamp(-0.0155 ln(g/g_max) + 0.0244, 0.049, 0.1). "Drift exponent within 0.049-0.1": the
// exponent read from each cell's conductance at 10 s and 1000 s is its own nu, and their mean over
// 400 cells is mu(g), inside the range.
TEST(TsPcm, DriftFollowsThePowerLawWithAihwkitsExponent) {
  TsPcmParams p;
  p.cell.feedback = 0;
  for (const double w : {0.1, 1.0}) {
    const double g = TsPcmCell::conductance_of(p.pcm, w);
    double sum = 0;
    const int cells = 400;
    for (int c = 0; c < cells; ++c) {
      TsPcmCell cell(p, 1.0, 0.0);
      Rng rng(1000 + static_cast<uint64_t>(c));
      cell.set_weight(w, 0, rng);
      EXPECT_DOUBLE_EQ(cell.conductance_s(0), g);
      const double g1 = cell.conductance_s(10 * kS);
      const double g2 = cell.conductance_s(1000 * kS);
      const double nu = -std::log(g2 / g1) / std::log((1000.0 + p.pcm.t0_s) / (10.0 + p.pcm.t0_s));
      EXPECT_NEAR(nu, cell.drift_nu(), 1e-9);
      sum += nu;
    }
    const double mean = sum / cells;
    const double mu = TsPcmCell::drift_nu_mean(p.pcm, g);
    EXPECT_NEAR(mu, std::clamp(-0.0155 * std::log(g / 25e-6) + 0.0244, 0.049, 0.1), 1e-12);
    EXPECT_GE(mu, 0.049);
    EXPECT_LE(mu, 0.1);
    EXPECT_NEAR(mean, mu, 4 * TsPcmCell::drift_nu_sd(p.pcm, g) / std::sqrt(cells)) << "w " << w;
  }
}

// "Relearning a forgotten pattern takes fewer pulses than learning it the first time", through
// the positive feedback: the residual crystalline fraction a partial RESET leaves makes the cell
// fire from the first pulse, and each firing crystallises it further. Eight boards (seeds).
TEST(TsPcm, RelearningAForgottenPatternTakesFewerPulses) {
  TsPcmParams p;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    LearningProtocol proto;
    proto.seed = seed;
    const LearningResult r = learn_forget_relearn(p, proto);
    ASSERT_TRUE(r.learned && r.relearned) << "seed " << seed;
    EXPECT_LT(r.relearn_pulses, r.learn_pulses) << "seed " << seed;
    // The map: learned pixels fire, the others stay silent; forgetting lowers the active ones.
    for (size_t i = 0; i < proto.pattern.size(); ++i) {
      if (proto.pattern[i] == '#') {
        EXPECT_LT(r.map_forgotten[i], r.map_learned[i]) << "pixel " << i;
        EXPECT_LT(r.w_forgotten[i], r.w_learned[i]) << "pixel " << i;
        EXPECT_GE(r.w_relearned[i], 0.97 * proto.w_target) << "pixel " << i << " (drifted since)";
        for (size_t j = 0; j < proto.pattern.size(); ++j) {  // the pattern shows in the firing map
          if (proto.pattern[j] == '.') {
            EXPECT_GT(r.map_learned[i], 4 * r.map_learned[j]) << i << " vs " << j;
          }
        }
      }
    }
  }
  TsPcmParams off = p;
  off.cell.feedback = 0;
  LearningProtocol proto;
  EXPECT_LT(learn_forget_relearn(p, proto).learn_pulses, learn_forget_relearn(off, proto).learn_pulses)
      << "firing that crystallises speeds learning";
}

// "Cells emit spikes on the board's output channels, so a TS-PCM array is a node whose neurons
// are its memory cells": a presynaptic spike drives its cell; the amorphous cell stays silent;
// STDP pairings send SET pulses through the instrument; then the same drive makes it fire on its
// synapse's channel, within the drive.
TEST(TsPcm, OnTheBoardACrystallisedCellFiresOnItsChannelWhenDriven) {
  const auto cfg = ConfigNode::parse(R"(
kind: synapse
neurons: {in: 0, out: 1}
synapses: [{pre: in, post: out, cell: [0, 0], rule: stdp}]
crossbar: {wordlines: 1, bitlines: 1}
device: {model: ts-pcm, pcm: {dw_min_std: 0, dw_min_dtod: 0, reset_dtod: 0}, cell: {drive_width: 500ms, feedback: 0}}
instrument: {pulse_time: 100us, read_time: 100us}
plasticity: {horizon: 10ms}
)", "test");
  SynapseDriver d(SynapseDriverOptions::from_config(cfg));
  test::RecordingEmitter em;
  d.start(em);
  ASSERT_TRUE(test::eventually([&] { return d.counters().at("reads_done") >= 1; }, std::chrono::seconds(10)));
  auto fired = [&] {
    std::lock_guard lock(em.mu);
    return em.transmitted;
  };
  const int64_t t0 = em.network_now_ns();
  EventBatch pre;
  pre.push(0, t0);
  d.deliver(BatchHeader{}, pre, {});
  EXPECT_TRUE(fired().empty()) << "an amorphous cell does not fire";
  EXPECT_EQ(d.counters().at("cell_drives"), 1);

  // Pre 5 ms before post: LTP pulses (STDP, >= set_v); pairs 300 ms apart, beyond the STDP
  // window, so no post-before-pre depression (a PCM depresses by an abrupt RESET).
  for (int k = 0; k < 10; ++k) {
    EventBatch a, b;
    a.push(0, t0 + (k + 1) * 300 * kMs);
    b.push(1, t0 + (k + 1) * 300 * kMs + 5 * kMs);
    d.deliver(BatchHeader{}, a, {});
    d.deliver(BatchHeader{}, b, {});
  }
  ASSERT_TRUE(test::eventually([&] { return d.counters().at("reads_done") >= 11; }, std::chrono::seconds(30)))
      << d.counters().at("pulses_done") << " pulses done";
  EXPECT_GT(d.weights()[0], 0.0F) << "crystallised: the PCM conducts more";
  const size_t before = fired().size();
  const int64_t t1 = t0 + 4 * kS;
  EventBatch drive;
  drive.push(0, t1);
  d.deliver(BatchHeader{}, drive, {});
  const auto out = fired();
  ASSERT_GT(out.size(), before) << "the crystallised cell fires when driven";
  for (size_t i = before; i < out.size(); ++i) {
    EXPECT_EQ(out[i].first, 0u) << "on its synapse's channel";
    EXPECT_GE(out[i].second, t1);
    EXPECT_LE(out[i].second, t1 + 500 * kMs) << "within the drive";
  }
  EXPECT_EQ(d.counters().at("cell_firings"), static_cast<int64_t>(out.size()));
  d.stop();
}

}  // namespace
}  // namespace ion::synapse
