// `delay: auto` (issue 3): a high percentile of measured latency plus a margin, changed only with
// hysteresis, each change counted.
#include <gtest/gtest.h>

#include "ion/broker/auto_delay.h"

namespace ion {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

AutoDelayOptions opts() {
  AutoDelayOptions o;
  o.initial_ns = 100 * kMs;
  o.margin_ns = 2 * kMs;
  o.lower_after_ns = 30 * kS;
  return o;
}

TEST(AutoDelay, RaisesAtOnceWhenLatencyNeedsIt) {
  AutoDelay a(opts());
  EXPECT_EQ(a.observe(120 * kMs, 0), AutoDelay::Change::raised);
  EXPECT_EQ(a.delay_ns(), 124 * kMs);  // 120 + margin, plus a margin of headroom
  EXPECT_EQ(a.raises(), 1U);
  EXPECT_EQ(a.observe(122 * kMs, kS), AutoDelay::Change::none);  // the headroom absorbs it
  EXPECT_EQ(a.observe(123 * kMs, 2 * kS), AutoDelay::Change::raised);
  EXPECT_EQ(a.delay_ns(), 127 * kMs);
}

TEST(AutoDelay, LowersOnlyAfterSustainedLowLatency) {
  AutoDelay a(opts());
  for (int64_t t = 0; t < 30 * kS; t += kS) {
    ASSERT_EQ(a.observe(10 * kMs, t), AutoDelay::Change::none) << t;
  }
  EXPECT_EQ(a.observe(12 * kMs, 30 * kS), AutoDelay::Change::lowered);
  EXPECT_EQ(a.delay_ns(), 14 * kMs);  // the most the window needed: 12 + 2 ms
  EXPECT_EQ(a.lowers(), 1U);
}

TEST(AutoDelay, ADeadBandReportRestartsTheWait) {
  AutoDelay a(opts());
  (void)a.observe(10 * kMs, 0);
  (void)a.observe(10 * kMs, 20 * kS);
  (void)a.observe(90 * kMs, 25 * kS);  // 92 ms needed: above 80 % of 100 ms, not above it
  EXPECT_EQ(a.observe(10 * kMs, 40 * kS), AutoDelay::Change::none);
  EXPECT_EQ(a.delay_ns(), 100 * kMs);
  EXPECT_EQ(a.observe(10 * kMs, 70 * kS), AutoDelay::Change::lowered);
}

TEST(AutoDelay, StaysWithinItsBounds) {
  AutoDelayOptions o = opts();
  o.min_ns = 5 * kMs;
  o.max_ns = 200 * kMs;
  AutoDelay a(o);
  (void)a.observe(10 * kS, 0);
  EXPECT_EQ(a.delay_ns(), 200 * kMs);
  for (int64_t t = 0; t <= 100 * kS; t += kS) (void)a.observe(0, t);
  EXPECT_EQ(a.delay_ns(), 5 * kMs);
}

}  // namespace
}  // namespace ion
