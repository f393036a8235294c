// Device tick counters -> host time (issue 3): wrap-around, late readings, fitted drift.
#include <gtest/gtest.h>

#include <random>

#include "ion/core/device_clock.h"

namespace ion {
namespace {

// A device whose crystal runs `ppm` fast, ticking at `hz` nominal, counter of `bits`.
struct Device {
  double hz;
  double ppm;
  uint32_t bits;
  int64_t host0_ns;
  [[nodiscard]] uint64_t raw_at(int64_t host_ns) const {
    const double ticks = static_cast<double>(host_ns - host0_ns) * 1e-9 * hz * (1 + ppm * 1e-6);
    const auto t = static_cast<uint64_t>(ticks);
    return bits >= 64 ? t : t & ((uint64_t{1} << bits) - 1);
  }
};

TEST(DeviceClock, TwentyFourBitFiftyMicrosecondTicksAcrossThreeWraps) {
  // The 2017 hub's format: 24-bit timestamps in 50 us ticks wrap every 838.9 s.
  const Device dev{20'000.0, 30.0, 24, 1'000'000'000};
  DeviceClock dc({24, 20'000.0, 64});
  std::mt19937_64 rng(1);
  std::normal_distribution<double> arrival_jitter(0, 20'000);  // 20 us of host-side jitter
  int64_t worst = 0;
  for (int64_t host = dev.host0_ns; host < dev.host0_ns + 2'600'000'000'000; host += 5'000'000'000) {
    const uint64_t raw = dev.raw_at(host);
    dc.observe(raw, host + static_cast<int64_t>(arrival_jitter(rng)));
    // A reading 1.2 s later maps to host time within a tick (50 us).
    const int64_t later = host + 1'200'000'000;
    if (host > dev.host0_ns + 10'000'000'000) {  // once a rate has been fitted
      worst = std::max<int64_t>(worst, std::llabs(dc.to_host_ns(dev.raw_at(later)) - later));
    }
  }
  EXPECT_LT(worst, 60'000);
  EXPECT_NEAR(dc.drift_ppm(), 30.0, 2.0);
  // 2600 s spans three wraps of the 24-bit counter: the unwrapped count kept growing.
  EXPECT_GT(dc.unwrap(dev.raw_at(dev.host0_ns + 2'595'000'000'000)), int64_t{1} << 24);
}

TEST(DeviceClock, ThirtyTwoBitMicrosecondCounterWrapsAfter71Minutes) {
  const Device dev{1e6, -50.0, 32, 0};
  DeviceClock dc({32, 1e6, 32});
  int64_t worst = 0;
  for (int64_t host = 0; host < 5'000'000'000'000; host += 60'000'000'000) {  // 83 min
    dc.observe(dev.raw_at(host), host);
    const int64_t later = host + 30'000'000'000;
    if (host >= 120'000'000'000) {  // once a rate has been fitted
      worst = std::max<int64_t>(worst, std::llabs(dc.to_host_ns(dev.raw_at(later)) - later));
    }
  }
  EXPECT_LT(worst, 2'000);  // within 2 us, 30 s ahead of the last pair
  EXPECT_NEAR(dc.drift_ppm(), -50.0, 0.5);
}

TEST(DeviceClock, ALateReadingIsNotAWrap) {
  DeviceClock dc({16, 1000.0, 8});
  dc.observe(65530, 0);
  dc.observe(4, 10'000'000);            // wrapped: 10 ticks later
  EXPECT_EQ(dc.unwrap(4), 65540);
  EXPECT_EQ(dc.unwrap(65534), 65534);   // a reading from just before the wrap, arriving late
  EXPECT_EQ(dc.unwrap(10), 65546);
}

TEST(DeviceClock, AnImplausibleRateFallsBackToNominal) {
  DeviceClock dc({32, 1e6, 8});
  dc.observe(0, 0);
  dc.observe(1'000'000, 2'000'000'000);  // 1 s of ticks over 2 s of host time: 50 % off
  EXPECT_NEAR(dc.drift_ppm(), 0.0, 1e-9);
}

}  // namespace
}  // namespace ion
