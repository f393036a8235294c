// Promise 1: "every loss is counted" — the receiver tells gaps (lost), duplicates/reorders and
// source restarts (new epoch) apart. Promise 4: rings are bounded in frames and bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// Issue 21: neuromodulator streams are "never evicted by spike traffic in the broker's rings".
// Kept frames survive a flood of ordinary ones, in order; an ordinary frame that finds only kept
// ones is dropped itself; kept frames go only to make room for kept frames (counted).
TEST(FrameRing, KeptFramesAreNeverEvictedByOrdinaryOnes) {
  FrameRing r(4, 1 << 20);
  (void)r.push("s1", 10);
  (void)r.push("m1", 1, true);
  (void)r.push("s2", 10);
  (void)r.push("m2", 1, true);
  uint64_t dropped_spikes = 0;
  for (int k = 0; k < 100; ++k) {
    const auto d = r.push("s" + std::to_string(3 + k), 10);
    EXPECT_EQ(d.dropped_kept_frames, 0U);
    dropped_spikes += d.dropped_events;
  }
  EXPECT_EQ(dropped_spikes, 100U * 10U) << "room made by dropping spike frames only";
  std::vector<std::string> order;
  r.for_each([&](std::string_view f, uint32_t) { order.emplace_back(f); });
  EXPECT_EQ(order, (std::vector<std::string>{"m1", "m2", "s101", "s102"})) << "order kept";
  // Full of kept frames: an ordinary one is dropped, a kept one displaces the oldest kept.
  FrameRing k(2, 1 << 20);
  (void)k.push("m1", 1, true);
  (void)k.push("m2", 1, true);
  const auto spike = k.push("s", 10);
  EXPECT_EQ(spike.dropped_events, 10U);
  EXPECT_EQ(spike.dropped_kept_frames, 0U);
  const auto m3 = k.push("m3", 1, true);
  EXPECT_EQ(m3.dropped_kept_frames, 1U);
  EXPECT_EQ(k.front(), "m2");
  // Bounded in bytes the same way.
  FrameRing b(100, 10);
  (void)b.push("mmmm", 1, true);
  (void)b.push("ssss", 4);
  (void)b.push("tttt", 4);  // 12 > 10: "ssss" goes, not the kept "mmmm"
  EXPECT_EQ(b.front(), "mmmm");
  EXPECT_EQ(b.bytes(), 8U);
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
