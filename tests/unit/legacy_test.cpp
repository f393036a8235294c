// What the 2017 hub's 8-byte packets mean (docs/devices/chip.md, "Legacy 8-byte packets"),
// stepped without sockets: the hub (arc1_pyqt, ProgPanels/UDPmod.py) read Zurich's timestamps as
// intervals it summed into its clock, Padova's as delays from the stimulus, and sent its own
// packets with that clock and the weight byte, id and time masked to 20 bits.
#include <gtest/gtest.h>

#include "ion/chip/legacy.h"

namespace ion::chip {
namespace {

constexpr int64_t kTick = LegacyBridge::kTickNs;  // 50 µs
constexpr int64_t kT0 = 5'000'000'000;             // some network time, ns

std::array<uint8_t, 8> packet(uint8_t code, uint32_t id, uint8_t field, uint32_t ticks) {
  return encode_legacy({code, id, field, ticks});
}

LegacyPacket decoded(const LegacyBridge::Out& out) {
  LegacyPacket p;
  EXPECT_TRUE(out.bytes.has_value()) << out.refused;
  if (out.bytes) {
    EXPECT_EQ(decode_legacy(*out.bytes, p), DecodeError::none);
  }
  return p;
}

TEST(LegacyBridge, AZurichPeersIntervalsAreSummedIntoItsClock) {
  // IoN plays the hub for a 2017 Zurich peer: each 'A' packet carries the ticks since Zurich's
  // previous event. Read as absolute counters (the first version), these four spikes would
  // have been at ticks 100, 272, 1, 1728: two of them backwards.
  LegacyBridge b(LegacyOptions::preset_named("zurich2017"), 256);
  const std::array<uint32_t, 4> intervals = {100, 272, 1, 1728};
  const int64_t latency = 2'000'000;  // the same for every packet: the fit is exact
  int64_t sum = 0;
  std::vector<int64_t> times;
  for (size_t i = 0; i < intervals.size(); ++i) {
    sum += intervals[i];
    const auto r = b.on_packet(packet('A', static_cast<uint32_t>(i), 0, intervals[i]),
                               kT0 + sum * kTick + latency);
    ASSERT_TRUE(r.event) << r.refused;
    EXPECT_EQ(r.event->channel, i);
    times.push_back(r.event->time_ns);
  }
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(times[i] - times[i - 1]), intervals[i] * kTick, 1.0) << i;
  }
  EXPECT_FALSE(b.emits_payload());  // Zurich's field was unused

  // Our packets to it are the hub's: 'S', the synapse's weight byte, and the hub's clock (the
  // sum of Zurich's intervals) at the input's deadline, masked to 20 bits.
  const int64_t deadline = times.back() + 40 * kTick;
  const LegacyPacket p = decoded(b.on_input(7, 0.5F, deadline - 1'000'000, deadline));
  EXPECT_EQ(p.code, 'S');
  EXPECT_EQ(p.id, 7U);
  EXPECT_EQ(p.field, 128);  // 255 × 0.5, rounded
  EXPECT_EQ(p.ticks, static_cast<uint32_t>(sum + 40) & 0xFFFFF);
  EXPECT_EQ(b.on_input(1U << 20, 1.0F, deadline, deadline).refused, "input_id_too_wide");
  EXPECT_EQ(b.on_packet(packet('D', 1, 0, 5), deadline).refused, "packet_unknown_sender_code");
}

TEST(LegacyBridge, IonAsZurichAgainstTheHubMapsTheHubsClockBackExactly) {
  // IoN plays Zurich: its spikes leave as intervals; the hub sums them into `tabs` and answers
  // each with 'S' packets stamped tabs & 0xFFFFF. Those map back to the spike that caused them,
  // exactly, across the 20-bit wrap (52.4 s).
  LegacyBridge b(LegacyOptions::preset_named("hub2017-zurich"), 4096);
  EXPECT_EQ(b.on_packet(packet('S', 3, 10, 0), kT0).refused, "packet_before_any_interval_sent");
  const std::array<int64_t, 5> spikes = {kT0, kT0 + 272 * kTick, kT0 + 273 * kTick,
                                         kT0 + 1'048'000 * kTick, kT0 + 1'049'000 * kTick};
  uint32_t tabs = 0;  // the hub's clock, as its code keeps it
  for (size_t i = 0; i < spikes.size(); ++i) {
    const LegacyPacket a = decoded(b.on_input(static_cast<uint32_t>(i), 1.0F, spikes[i] - 7, spikes[i]));
    EXPECT_EQ(a.code, 'A');
    EXPECT_EQ(a.id, i);
    tabs += a.ticks;
    const uint8_t weight_byte = 51;
    const auto r = b.on_packet(packet('S', 9, weight_byte, tabs & 0xFFFFF), spikes[i] + 3'000'000);
    ASSERT_TRUE(r.event) << r.refused;
    EXPECT_EQ(r.event->time_ns, spikes[i]) << i;  // the hub's time is the spike's deadline
    EXPECT_EQ(r.event->channel, 9U);
    EXPECT_FLOAT_EQ(r.event->payload, 0.2F);  // 51 / 255 of full scale
  }
  EXPECT_GT(tabs, 1U << 20);  // the hub's masked clock wrapped
  EXPECT_TRUE(b.emits_weights());
  // An input before the previous one cannot be an interval.
  EXPECT_EQ(b.on_input(0, 1.0F, kT0, kT0).refused, "input_time_backwards");
}

TEST(LegacyBridge, APadovaPeersDelaysCountFromTheStimulusThatCausedThem) {
  // IoN plays the hub for a 2017 Padova peer: 'D' packets carry the delay since the stimulus.
  LegacyBridge b(LegacyOptions::preset_named("padova2017"), 60);
  EXPECT_EQ(b.on_packet(packet('D', 5, 0, 40), kT0).refused, "packet_before_any_stimulus");
  const int64_t s1 = kT0;
  const int64_t s2 = kT0 + 10'000'000;
  const LegacyPacket p1 = decoded(b.on_input(55, 1.0F, s1 - 100'000'000, s1));
  EXPECT_EQ(p1.code, 'S');
  EXPECT_EQ(p1.field, 255);
  // No counter of the peer's: the hub's own clock, network time in ticks, 20 bits.
  EXPECT_EQ(p1.ticks, static_cast<uint32_t>(s1 / kTick) & 0xFFFFF);
  auto r = b.on_packet(packet('D', 5, 0, 40), s1 + 5'000'000);  // 2 ms after stimulus 1
  ASSERT_TRUE(r.event) << r.refused;
  EXPECT_EQ(r.event->time_ns, s1 + 40 * kTick);
  (void)decoded(b.on_input(55, 1.0F, s2 - 100'000'000, s2));
  // 15 ms after a stimulus, arriving 6 ms after the second: it answers the first one.
  r = b.on_packet(packet('D', 6, 0, 300), s2 + 6'000'000);
  ASSERT_TRUE(r.event) << r.refused;
  EXPECT_EQ(r.event->time_ns, s1 + 300 * kTick);
  r = b.on_packet(packet('D', 7, 0, 20), s2 + 2'000'000);  // 1 ms after the second
  ASSERT_TRUE(r.event) << r.refused;
  EXPECT_EQ(r.event->time_ns, s2 + 20 * kTick);
  EXPECT_EQ(b.on_packet(packet('D', 60, 0, 1), s2 + 2'000'000).refused, "event_unknown_address");
}

TEST(LegacyBridge, IonAsPadovaAnswersWithTheDelayFromTheHubsStimulus) {
  // IoN plays Padova: the hub's 'S' packets are stimuli (weight byte, hub clock on 20 bits); the
  // culture's spikes go back as 'D' with their delay, at the source, from the latest stimulus.
  LegacyBridge b(LegacyOptions::preset_named("hub2017-padova"), 60);
  EXPECT_EQ(b.on_input(3, 1.0F, kT0, kT0).refused, "input_before_any_stimulus");
  auto r = b.on_packet(packet('S', 55, 255, 1000), kT0);
  ASSERT_TRUE(r.event) << r.refused;
  EXPECT_EQ(r.event->channel, 55U);
  EXPECT_FLOAT_EQ(r.event->payload, 1.0F);
  const int64_t stim = r.event->time_ns;
  EXPECT_EQ(stim, kT0);  // one packet: its arrival
  const LegacyPacket d = decoded(b.on_input(3, 1.0F, stim + 12 * kTick, stim + 12 * kTick + 50'000'000));
  EXPECT_EQ(d.code, 'D');
  EXPECT_EQ(d.id, 3U);
  EXPECT_EQ(d.ticks, 12U);
  EXPECT_EQ(d.field, 0);
  // The hub's clock goes on (another 'S' 2000 ticks later); a spike between the two answers the
  // first.
  r = b.on_packet(packet('S', 55, 255, 3000), kT0 + 2000 * kTick);
  ASSERT_TRUE(r.event) << r.refused;
  EXPECT_NEAR(static_cast<double>(r.event->time_ns), static_cast<double>(kT0 + 2000 * kTick), 2.0);
  EXPECT_EQ(decoded(b.on_input(4, 1.0F, kT0 + 1500 * kTick, kT0 + 1500 * kTick)).ticks, 1500U);
  EXPECT_EQ(decoded(b.on_input(4, 1.0F, kT0 + 2001 * kTick, kT0 + 2001 * kTick)).ticks, 1U);
}

TEST(LegacyBridge, AnAbsoluteCounterThatRestartsIsFollowedAfterARunOfBackwardsPackets) {
  LegacyBridge b(LegacyOptions{}, 16);  // IoN's first reading: absolute 24-bit counters
  ASSERT_TRUE(b.on_packet(packet('P', 1, 2, 0x800000), kT0).event);
  ASSERT_TRUE(b.on_packet(packet('P', 1, 2, 0x800100), kT0 + 256 * kTick).event);
  int refused = 0;
  bool restarted = false;
  for (int i = 0; i < LegacyBridge::kRestartAfterBackwards && !restarted; ++i) {
    const auto r = b.on_packet(packet('P', 1, 2, 0x400000 + i), kT0 + (300 + i) * kTick);
    EXPECT_EQ(r.refused, "event_time_backwards");
    restarted = r.restarted;
    ++refused;
  }
  EXPECT_TRUE(restarted);
  EXPECT_EQ(refused, LegacyBridge::kRestartAfterBackwards);
  EXPECT_TRUE(b.on_packet(packet('P', 1, 2, 0x400100), kT0 + 400 * kTick).event);
  EXPECT_EQ(b.on_packet(packet('P', 1, 3, 0x400101), kT0 + 401 * kTick).refused,
            "packet_unknown_event_type");
}

TEST(LegacyBridge, AnIntervalLongerThanItsFieldIsClampedAndTheNextOnesStayRight) {
  LegacyOptions o = LegacyOptions::preset_named("hub2017-zurich");
  o.out.time_bits = 8;  // 255 ticks at most
  LegacyBridge b(o, 16);
  EXPECT_EQ(decoded(b.on_input(0, 1, kT0, kT0)).ticks, 0U);
  const auto longer = b.on_input(0, 1, kT0 + 300 * kTick, kT0 + 300 * kTick);
  EXPECT_TRUE(longer.interval_clamped);
  EXPECT_EQ(decoded(longer).ticks, 255U);
  EXPECT_EQ(decoded(b.on_input(0, 1, kT0 + 310 * kTick, kT0 + 310 * kTick)).ticks, 10U);
}

TEST(LegacyOptions, PresetsAndWidthsAreChecked) {
  EXPECT_THROW((void)LegacyOptions::preset_named("hub2018"), std::invalid_argument);
  try {
    (void)LegacyOptions::preset_named("hub2018");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("hub2017-zurich"), std::string::npos) << e.what();
  }
  LegacyOptions o;
  o.in.id_bits = 25;
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o = LegacyOptions::preset_named("padova2017");
  o.out.time = LegacyTime::since_stimulus;
  EXPECT_THROW(o.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace ion::chip
