// The generator's Poisson source: reproducible for a seed, and with the rate it was asked for.
#include <gtest/gtest.h>

#include <cmath>

#include "ion/builtin/generator.h"

namespace ion {
namespace {

TEST(PoissonSource, SameSeedSameSpikes) {
  PoissonSource a(16, 50.0, 42, 1'000);
  PoissonSource b(16, 50.0, 42, 1'000);
  PoissonSource c(16, 50.0, 43, 1'000);
  EventBatch ea;
  EventBatch eb;
  EventBatch ec;
  a.generate_until(2'000'000'000, ea, 1 << 20);
  b.generate_until(2'000'000'000, eb, 1 << 20);
  c.generate_until(2'000'000'000, ec, 1 << 20);
  EXPECT_EQ(ea.channels, eb.channels);
  EXPECT_EQ(ea.times_ns, eb.times_ns);
  EXPECT_NE(ea.times_ns, ec.times_ns);
}

TEST(PoissonSource, RateAndChannelSpreadMatchTheRequest) {
  // 8 channels x 1 kHz for 100 s: 800k events expected; Poisson sd ~ 894, so 1% is > 8 sd.
  PoissonSource s(8, 1000.0, 7, 0);
  EventBatch e;
  const int64_t horizon = 100'000'000'000;
  s.generate_until(horizon, e, 1 << 22);
  const double expected = 8 * 1000.0 * 100.0;
  EXPECT_NEAR(static_cast<double>(e.size()), expected, 0.01 * expected);
  std::vector<size_t> per(8, 0);
  for (size_t i = 0; i < e.size(); ++i) {
    ASSERT_LT(e.channels[i], 8U);
    ++per[e.channels[i]];
    if (i > 0) {
      ASSERT_GE(e.times_ns[i], e.times_ns[i - 1]);
    }
  }
  for (size_t n : per) EXPECT_NEAR(static_cast<double>(n), expected / 8, 0.03 * expected / 8);
  EXPECT_LE(e.times_ns.back(), horizon);
}

TEST(PoissonSource, RespectsTheLimitAndResumesWhereItStopped) {
  PoissonSource whole(4, 100.0, 3, 0);
  PoissonSource parts(4, 100.0, 3, 0);
  EventBatch w;
  EventBatch p;
  whole.generate_until(10'000'000'000, w, 1 << 20);
  while (parts.generate_until(10'000'000'000, p, 7) == 7) {
  }
  EXPECT_EQ(w.times_ns, p.times_ns);
}

}  // namespace
}  // namespace ion
