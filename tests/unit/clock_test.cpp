// Clock mapping from four-timestamp probes (issue 3): offset and drift converge for a known offset,
// drift and asymmetric jitter, and the reported uncertainty always contains the true error.
#include <gtest/gtest.h>

#include <random>

#include "ion/core/clock.h"
#include "ion/core/clock_sync.h"

namespace ion {
namespace {

// A node whose local clock runs at (1 + skew) of network time, plus an offset, probing a broker
// through a path with the given one-way delay generators (ns).
class Simulated {
 public:
  Simulated(int64_t offset0_ns, double skew_ppm, uint64_t seed)
      : offset0_(offset0_ns), skew_(skew_ppm * 1e-6), rng_(seed) {}

  // Local clock reading at network time T.
  [[nodiscard]] int64_t local_at(double network_ns) const {
    return static_cast<int64_t>(std::llround(static_cast<double>(offset0_) + (1 + skew_) * network_ns));
  }
  // True offset (network - local) at a local reading.
  [[nodiscard]] double true_offset(int64_t local_ns) const {
    const double network = (static_cast<double>(local_ns) - static_cast<double>(offset0_)) / (1 + skew_);
    return network - static_cast<double>(local_ns);
  }

  template <class Up, class Down>
  TimeSample probe(double network_ns, Up up, Down down) {
    TimeSample s;
    s.t0_ns = local_at(network_ns);
    const double t1 = network_ns + up(rng_);
    const double t2 = t1 + 2'000;  // broker turnaround
    const double t3 = t2 + down(rng_);
    s.t1_ns = static_cast<int64_t>(t1);
    s.t2_ns = static_cast<int64_t>(t2);
    s.t3_ns = local_at(t3);
    return s;
  }

 private:
  int64_t offset0_;
  double skew_;
  std::mt19937_64 rng_;
};

struct Delay {
  double base_ns;
  double mean_extra_ns;
  double operator()(std::mt19937_64& rng) const {
    return base_ns + std::exponential_distribution<double>(1.0 / mean_extra_ns)(rng);
  }
};

// Runs bursts of 8 probes every 5 s for `seconds`, checking the bound at many times in between.
template <class Up, class Down>
void run_and_check(Simulated& sim, ClockSync& cs, Up up, Down down, int seconds,
                   double* final_error_ns, double* final_uncertainty_ns) {
  double worst_ratio = 0;
  for (int burst = 0; burst * 5 < seconds; ++burst) {
    const double start = 1e9 * 5 * burst + 1e9;
    for (int k = 0; k < 8; ++k) cs.add(sim.probe(start + k * 2e6, up, down));
    cs.end_burst();
    for (int q = 0; q <= 10; ++q) {  // query across the next 5 s, before the next burst
      const int64_t local = sim.local_at(start + 20e6 + q * 0.5e9);
      const ClockEstimate e = cs.estimate(local);
      ASSERT_TRUE(e.valid);
      const double err = std::abs(static_cast<double>(e.offset_ns) - sim.true_offset(local));
      ASSERT_LE(err, static_cast<double>(e.uncertainty_ns))
          << "burst " << burst << " query " << q << ": the bound must contain the true error";
      worst_ratio = std::max(worst_ratio, err / static_cast<double>(e.uncertainty_ns));
      *final_error_ns = err;
      *final_uncertainty_ns = static_cast<double>(e.uncertainty_ns);
    }
  }
  EXPECT_LE(worst_ratio, 1.0);
}

TEST(ClockSync, ConvergesWithOffsetDriftAndAsymmetricJitterAndTheBoundHolds) {
  // Offset of 3.2 s, node clock 50 ppm fast, uplink quiet, downlink with a heavy queueing tail.
  Simulated sim(3'200'000'000, 50.0, 1);
  ClockSync cs;
  double err = 0;
  double unc = 0;
  run_and_check(sim, cs, Delay{80'000, 20'000}, Delay{80'000, 300'000}, 120, &err, &unc);
  const ClockEstimate e = cs.estimate(sim.local_at(121e9));
  EXPECT_NEAR(e.drift_ppm, -50.0, 1.0);  // offset shrinks as the fast local clock runs ahead
  EXPECT_LT(err, 100'000) << "converged offset error, ns";
  EXPECT_LT(unc, 400'000) << "converged uncertainty, ns";
}

TEST(ClockSync, SymmetricLoopbackIsAccurateToMicroseconds) {
  Simulated sim(-42'000'000'000, -20.0, 2);
  ClockSync cs;
  double err = 0;
  double unc = 0;
  run_and_check(sim, cs, Delay{15'000, 3'000}, Delay{15'000, 3'000}, 60, &err, &unc);
  EXPECT_LT(err, 5'000);
  EXPECT_EQ(cs.bursts(), 12U);
}

TEST(ClockSync, WanJitterTwentyMillisecondsPlusMinusFive) {
  // 20 ms one-way with symmetric jitter: the min-RTT sample of each burst carries the estimate.
  Simulated sim(1'000'000'000, 10.0, 3);
  ClockSync cs;
  double err = 0;
  double unc = 0;
  std::normal_distribution<double> jitter(0, 5e6 / 2);
  const auto wan = [&](std::mt19937_64& rng) { return std::max(15e6, 20e6 + jitter(rng)); };
  run_and_check(sim, cs, wan, wan, 120, &err, &unc);
  EXPECT_LT(err, 1'000'000);
}

TEST(ClockSync, ConstantAsymmetryIsInvisibleButInsideATightBound) {
  // Uplink 100 us, downlink 500 us, no jitter: every probe is off by (100 - 500) / 2 = -200 us and
  // no probe can tell. The bound (rtt/2 = 300 us plus turnaround) must still contain it, tightly.
  Simulated sim(7'000'000'000, 25.0, 5);
  ClockSync cs;
  double err = 0;
  double unc = 0;
  const auto up = [](std::mt19937_64&) { return 100'000.0; };
  const auto down = [](std::mt19937_64&) { return 500'000.0; };
  run_and_check(sim, cs, up, down, 60, &err, &unc);
  EXPECT_NEAR(err, 200'000, 2'000);
  EXPECT_LT(unc, 1.5 * 301'000) << "the bound should be close to rtt/2, not vague";
}

TEST(ClockSync, FirstBurstAloneGivesAHalfRttBound) {
  ClockSync cs;
  EXPECT_FALSE(cs.synced());
  EXPECT_FALSE(cs.estimate(0).valid);
  // True offset 1000; up 100, down 300 -> sample offset 1000 + (100 - 300) / 2 = 900, rtt 400.
  ASSERT_TRUE(cs.add({0, 1100, 1100, 400}));
  EXPECT_TRUE(cs.synced());
  const ClockEstimate e = cs.estimate(200);
  EXPECT_EQ(e.offset_ns, 900);
  EXPECT_GE(e.uncertainty_ns, 200);
  EXPECT_LE(std::abs(e.offset_ns - 1000), e.uncertainty_ns);
}

TEST(ClockSync, RejectsInconsistentSamplesAndResets) {
  ClockSync cs;
  EXPECT_FALSE(cs.add({0, 10, 1000, 5}));  // broker held it longer than the round trip
  EXPECT_EQ(cs.rejected_samples(), 1U);
  EXPECT_FALSE(cs.synced());
  ASSERT_TRUE(cs.add({0, 17, 17, 20}));
  cs.end_burst();
  EXPECT_TRUE(cs.synced());
  cs.reset();
  EXPECT_FALSE(cs.synced());
  EXPECT_EQ(cs.bursts(), 0U);
}

TEST(ClockSync, AContradictingBurstRestartsTheWindow) {
  ClockSync cs;
  for (int i = 0; i < 4; ++i) {
    const int64_t t = i * 5'000'000'000LL;
    ASSERT_TRUE(cs.add({t, t + 1000 + 10, t + 1000 + 12, t + 22}));  // offset 1000
    cs.end_burst();
  }
  EXPECT_EQ(cs.bursts(), 4U);
  const int64_t t = 20'000'000'000LL;
  ASSERT_TRUE(cs.add({t, t + 900'000'010, t + 900'000'012, t + 22}));  // a 0.9 s jump
  cs.end_burst();
  EXPECT_EQ(cs.bursts(), 1U);
  EXPECT_NEAR(static_cast<double>(cs.estimate(t).offset_ns), 900'000'000.0, 100.0);
}

TEST(ClockSync, ToLocalInvertsToNetwork) {
  Simulated sim(5'000'000'000, 80.0, 4);
  ClockSync cs;
  double err = 0;
  double unc = 0;
  run_and_check(sim, cs, Delay{10'000, 1'000}, Delay{10'000, 1'000}, 30, &err, &unc);
  for (int64_t local : {sim.local_at(31e9), sim.local_at(40e9)}) {
    EXPECT_NEAR(static_cast<double>(cs.to_local(cs.to_network(local))), static_cast<double>(local), 1.0);
  }
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock c(100);
  EXPECT_EQ(c.now_ns(), 100);
  c.advance(std::chrono::microseconds(3));
  EXPECT_EQ(c.now_ns(), 3100);
  c.set_ns(-5);
  EXPECT_EQ(c.now_ns(), -5);
}

}  // namespace
}  // namespace ion
