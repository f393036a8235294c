// Clock mapping from four-timestamp probes: offset from the minimum-RTT sample, uncertainty of
// rtt/2 (the most that can be claimed without knowing path asymmetry).
#include <gtest/gtest.h>

#include "ion/core/clock.h"
#include "ion/core/clock_sync.h"

namespace ion {
namespace {

// A probe through a path with the given one-way delays, to a broker whose clock is
// local + true_offset, which holds the request for `hold` ns.
TimeSample probe(int64_t t0, int64_t true_offset, int64_t up, int64_t down, int64_t hold) {
  TimeSample s;
  s.t0_ns = t0;
  s.t1_ns = t0 + up + true_offset;
  s.t2_ns = s.t1_ns + hold;
  s.t3_ns = s.t2_ns - true_offset + down;
  return s;
}

TEST(ClockSync, SymmetricPathRecoversTheOffsetExactly) {
  ClockSync cs;
  ASSERT_TRUE(cs.add(probe(1'000'000, 5'000'000'000, 40'000, 40'000, 3'000)));
  EXPECT_EQ(cs.offset_ns(), 5'000'000'000);
  EXPECT_EQ(cs.to_network(10), 5'000'000'010);
  EXPECT_EQ(cs.to_local(cs.to_network(12345)), 12345);
}

TEST(ClockSync, KeepsTheMinimumRttSampleAndBoundsTheError) {
  ClockSync cs;
  const int64_t truth = -123'456'789;
  // Queued probes with asymmetric extra delay, then one clean probe.
  ASSERT_TRUE(cs.add(probe(0, truth, 900'000, 50'000, 1'000)));
  ASSERT_TRUE(cs.add(probe(10'000'000, truth, 50'000, 700'000, 1'000)));
  ASSERT_TRUE(cs.add(probe(20'000'000, truth, 60'000, 40'000, 1'000)));
  ASSERT_TRUE(cs.add(probe(30'000'000, truth, 400'000, 400'000, 1'000)));
  // Error of the chosen sample is (up - down) / 2 = 10 us, within the claimed bound rtt/2 = 50 us.
  EXPECT_EQ(cs.offset_ns(), truth + 10'000);
  EXPECT_LE(std::abs(cs.offset_ns() - truth), cs.uncertainty_ns());
  EXPECT_EQ(cs.uncertainty_ns(), 50'001);
}

TEST(ClockSync, RejectsInconsistentSamplesAndResets) {
  ClockSync cs;
  TimeSample bad{0, 10, 1000, 5};  // broker held it longer than the round trip
  EXPECT_FALSE(cs.add(bad));
  EXPECT_FALSE(cs.synced());
  ASSERT_TRUE(cs.add(probe(0, 7, 10, 10, 0)));
  EXPECT_TRUE(cs.synced());
  cs.reset();
  EXPECT_FALSE(cs.synced());
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
