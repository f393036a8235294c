// Promise 1: "every loss is counted" — the receiver tells gaps (lost), duplicates/reorders and
// source restarts (new epoch) apart. Promise 4: rings are bounded in frames and bytes.
#include <gtest/gtest.h>

#include "ion/core/frame_ring.h"
#include "ion/core/sequence.h"

namespace ion {
namespace {

using V = SequenceTracker::Verdict;

TEST(SequenceTracker, CountsGapsDuplicatesAndRestartsSeparately) {
  SequenceTracker t;
  EXPECT_EQ(t.observe(1, 0), V::first);
  EXPECT_EQ(t.observe(1, 1), V::in_order);
  EXPECT_EQ(t.observe(1, 5), V::gap);
  EXPECT_EQ(t.last_gap(), 3U);
  EXPECT_EQ(t.observe(1, 5), V::duplicate_or_reordered);
  EXPECT_EQ(t.observe(1, 2), V::duplicate_or_reordered);
  EXPECT_EQ(t.observe(2, 0), V::restarted);
  EXPECT_EQ(t.observe(2, 1), V::in_order);
  EXPECT_EQ(t.counts().lost, 3U);
  EXPECT_EQ(t.counts().duplicate_or_reordered, 2U);
  EXPECT_EQ(t.counts().restarts, 1U);
  EXPECT_EQ(t.counts().accepted, 5U);
}

TEST(SequenceTracker, FirstFrameMayStartAnywhere) {
  SequenceTracker t;
  EXPECT_EQ(t.observe(9, 1000), V::first);
  EXPECT_EQ(t.observe(9, 1001), V::in_order);
  EXPECT_EQ(t.counts().lost, 0U);
}

TEST(FrameRing, DropsOldestWhenFullAndCountsEvents) {
  FrameRing r(3, 1 << 20);
  EXPECT_EQ(r.push("a", 1).dropped_frames, 0U);
  (void)r.push("b", 2);
  (void)r.push("c", 3);
  const auto d = r.push("d", 4);
  EXPECT_EQ(d.dropped_frames, 1U);
  EXPECT_EQ(d.dropped_events, 1U);
  EXPECT_EQ(r.front(), "b");
  EXPECT_EQ(r.size(), 3U);
}

TEST(FrameRing, BoundedInBytes) {
  FrameRing r(100, 10);
  (void)r.push("12345", 5);
  (void)r.push("678", 3);
  const auto d = r.push("abcd", 4);  // 5+3+4 > 10: the oldest goes
  EXPECT_EQ(d.dropped_events, 5U);
  EXPECT_EQ(r.bytes(), 7U);
  const auto huge = r.push(std::string(11, 'x'), 11);  // can never fit: dropped itself
  EXPECT_EQ(huge.dropped_events, 11U);
  EXPECT_EQ(r.size(), 2U);
  EXPECT_EQ(r.front(), "678");
}

TEST(FrameRing, ClearReportsWhatItDropped) {
  FrameRing r(4, 100);
  (void)r.push("a", 2);
  (void)r.push("b", 3);
  const auto d = r.clear();
  EXPECT_EQ(d.dropped_frames, 2U);
  EXPECT_EQ(d.dropped_events, 5U);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.bytes(), 0U);
}

}  // namespace
}  // namespace ion
