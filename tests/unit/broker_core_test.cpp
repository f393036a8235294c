// The broker's core stepped without sockets or threads: messages go in with the time they were
// received, timers tick at times the test chooses (ManualClock), and what the broker sends is
// read back from a recording Outbox. Each test quotes the promise it checks (DESIGN.md,
// docs/cli.md, docs/timing.md).
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <limits>
#include <set>
#include <string>

#include "core.h"
#include "recording_outbox.h"
#include "ion/broker/topology.h"
#include "ion/core/clock.h"
#include "ion/v1/ion.pb.h"

namespace ion::broker_impl {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kStart = 1'000'000'000'000;  // network time at the start of each test, ns

// gen (4 channels) -> sink (4 ports), whole, 20 ms; a second source `gen2` -> sink for fan-in.
BrokerOptions options(std::chrono::milliseconds grace = 0ms) {
  BrokerOptions o;
  o.topology.nodes = {{"gen", "generator", 4, 0}, {"gen2", "generator", 4, 0}, {"sink", "sink", 0, 8}};
  o.topology.connections = {connect_whole("gen", "sink", 20'000'000, "test")};
  ConnectionSpec c2 = connect_whole("gen2", "sink", 5'000'000, "test");
  c2.to[0].wildcard = false;
  c2.to[0].first = 4;  // gen2's channel c -> sink port 4 + c
  c2.to[0].last = 7;
  o.topology.connections.push_back(c2);
  o.heartbeat_interval = 100ms;
  o.heartbeat_timeout = 1000ms;
  o.startup_grace = grace;
  o.stats_interval = 0ms;
  o.control_rate_hz = 10;
  o.control_burst = 20;
  o.ring_frames = 4;
  return o;
}

class Core : public ::testing::Test {
 protected:
  explicit Core(std::chrono::milliseconds grace = 0ms)
      : clock_(kStart), core_(options(grace), clock_, out_, 0xb0b0) {
    core_.on_bound(nullptr, false, clock_.now_ns());
    core_.start(clock_.now_ns());
  }

  void deliver(const std::string& rid, const std::string& frame, std::string_view peer = "10.0.0.9") {
    Message m;
    m.routing_id = rid;
    m.body = {reinterpret_cast<const uint8_t*>(frame.data()), frame.size()};
    m.peer = peer;
    m.t_recv_ns = clock_.now_ns();
    core_.on_message(m);
  }
  std::string hello(const std::string& name, uint64_t epoch, uint32_t channels, uint32_t ports,
                    bool replace = false, bool tap = false) {
    v1::Hello h;
    h.set_node_name(name);
    h.set_protocol_version(kProtocolVersion);
    h.set_output_channels(channels);
    h.set_input_ports(ports);
    h.set_epoch(epoch);
    h.set_replace(replace);
    h.set_tap(tap);
    std::string f;
    EXPECT_TRUE(codec_.encode(h, f));
    return f;
  }
  std::string batch(uint64_t epoch, uint64_t sequence, std::vector<uint32_t> channels,
                    int64_t offset_ns = 0) {
    BatchHeader h;
    h.epoch = epoch;
    h.sequence = sequence;
    EventBatch e;
    for (uint32_t c : channels) e.push(c, clock_.now_ns() + offset_ns);
    std::string f;
    EXPECT_TRUE(codec_.encode_batch(h, e, f));
    return f;
  }
  std::string heartbeat() {
    v1::Heartbeat hb;
    hb.set_sent_ns(clock_.now_ns());
    std::string f;
    EXPECT_TRUE(codec_.encode(hb, f));
    return f;
  }
  // The kinds of what `rid` was sent, decoded; the last Error/Welcome/batch stays readable.
  std::vector<Body> kinds_sent_to(const std::string& rid) {
    std::vector<Body> out;
    for (const auto& s : out_.take(rid)) {
      const Decoded d = reader_.decode({reinterpret_cast<const uint8_t*>(s.frame.data()), s.frame.size()});
      EXPECT_TRUE(d.ok());
      out.push_back(d.body);
      if (d.body == Body::error) last_error_ = reader_.error();
      if (d.body == Body::welcome) last_welcome_ = reader_.welcome();
      if (d.body == Body::time_reply) last_reply_ = reader_.time_reply();
      if (d.body == Body::spike_batch) {
        BatchHeader h;
        EventBatch e;
        EXPECT_EQ(reader_.take_batch({}, h, e), Reject::none);
        batches_.push_back({h, e});
      }
    }
    return out;
  }
  BrokerNodeStats stats(const std::string& name) {
    for (auto& n : core_.node_stats()) {
      if (n.name == name) return n;
    }
    ADD_FAILURE() << name;
    return {};
  }
  void register_node(const std::string& rid, const std::string& name, uint64_t epoch, uint32_t ch,
                     uint32_t ports) {
    deliver(rid, hello(name, epoch, ch, ports));
    ASSERT_EQ(kinds_sent_to(rid), std::vector<Body>{Body::welcome}) << last_error_.message();
  }

  ManualClock clock_;
  RecordingOutbox out_;
  BrokerCore core_;
  Codec codec_;   // the nodes' side
  Codec reader_;  // reads what the broker sent
  v1::Error last_error_;
  v1::Welcome last_welcome_;
  v1::TimeReply last_reply_;
  std::vector<std::pair<BatchHeader, EventBatch>> batches_;
};

// --- Registration and refusal (docs/cli.md "Refusals are said once") ---

TEST_F(Core, AHelloIsWelcomedWithTheNodesIdAndTheBrokersTerms) {
  deliver("r-sink", hello("sink", 7, 0, 8));
  ASSERT_EQ(kinds_sent_to("r-sink"), std::vector<Body>{Body::welcome});
  EXPECT_EQ(last_welcome_.node_id(), 2u);
  EXPECT_EQ(last_welcome_.broker_epoch(), 0xb0b0u);
  EXPECT_EQ(last_welcome_.anchor_network_ns(), kStart);
  EXPECT_EQ(last_welcome_.heartbeat_timeout_ms(), 1000u);
  EXPECT_TRUE(stats("sink").connected);
  EXPECT_EQ(stats("sink").registrations, 1u);
}

TEST_F(Core, AnUnknownNameIsRefusedWithTheClosestTopologyName) {
  deliver("r", hello("snik", 7, 0, 8));
  ASSERT_EQ(kinds_sent_to("r"), std::vector<Body>{Body::error});
  EXPECT_EQ(last_error_.code(), v1::Error::NOT_IN_TOPOLOGY);
  EXPECT_NE(last_error_.message().find("did you mean 'sink'?"), std::string::npos) << last_error_.message();
  EXPECT_EQ(core_.rejects().get(Reject::unknown_node), 1u);
}

TEST_F(Core, DeclaringMoreChannelsOrFewerPortsThanTheTopologyIsRefused) {
  deliver("r", hello("gen", 7, 5, 0));
  ASSERT_EQ(kinds_sent_to("r"), std::vector<Body>{Body::error});
  EXPECT_EQ(last_error_.code(), v1::Error::REJECTED);
  deliver("r", hello("sink", 7, 0, 7));
  ASSERT_EQ(kinds_sent_to("r"), std::vector<Body>{Body::error});
  EXPECT_EQ(core_.rejects().get(Reject::declared_too_large), 2u);
  EXPECT_FALSE(stats("sink").connected);
}

// "The live holder keeps its name ... a dead holder is released by its silence" (docs/cli.md).
TEST_F(Core, TheLiveHolderKeepsItsNameUntilItsSilenceReleasesIt) {
  register_node("r-a", "sink", 1, 0, 8);
  clock_.advance(400ms);
  deliver("r-b", hello("sink", 2, 0, 8));  // another process
  ASSERT_EQ(kinds_sent_to("r-b"), std::vector<Body>{Body::error});
  EXPECT_EQ(last_error_.code(), v1::Error::NAME_IN_USE);
  EXPECT_NE(last_error_.message().find("held by a live connection from 10.0.0.9 (registered 0.4 s ago"),
            std::string::npos)
      << last_error_.message();
  EXPECT_EQ(last_error_.retry_after_ms(), 600u) << "until the holder's silence reaches the timeout";
  EXPECT_TRUE(out_.take("r-a").empty()) << "the holder is not disturbed";

  clock_.advance(601ms);
  core_.tick(clock_.now_ns());
  EXPECT_FALSE(stats("sink").connected);
  EXPECT_EQ(stats("sink").timeouts, 1u);
  deliver("r-b", hello("sink", 2, 0, 8));
  EXPECT_EQ(kinds_sent_to("r-b"), std::vector<Body>{Body::welcome});
}

TEST_F(Core, ASameProcessReconnectKeepsItsNameAndReplaceTakesItOver) {
  register_node("r-a", "sink", 1, 0, 8);
  register_node("r-a2", "sink", 1, 0, 8);  // same epoch, new connection
  deliver("r-c", hello("sink", 3, 0, 8, /*replace=*/true));
  EXPECT_EQ(kinds_sent_to("r-c"), std::vector<Body>{Body::welcome});
  ASSERT_EQ(kinds_sent_to("r-a2"), std::vector<Body>{Body::error}) << "the holder is told";
  EXPECT_NE(last_error_.message().find("taken over"), std::string::npos);
  EXPECT_EQ(stats("sink").registrations, 3u);
}

// --- Liveness and death ---

TEST_F(Core, HeartbeatsKeepANodeAliveAndSilenceUnregistersItDroppingItsQueue) {
  register_node("r-sink", "sink", 1, 0, 8);
  register_node("r-gen", "gen", 2, 4, 0);
  for (int i = 0; i < 5; ++i) {
    clock_.advance(500ms);
    deliver("r-sink", heartbeat());
    deliver("r-gen", heartbeat());
    core_.tick(clock_.now_ns());
  }
  EXPECT_TRUE(stats("sink").connected);
  EXPECT_EQ(kinds_sent_to("r-sink").size(), 5u) << "each heartbeat echoed";
  out_.blocked.insert("r-sink");  // the sink stalls: its batches wait in its ring
  deliver("r-gen", batch(2, 0, {0, 1}));
  deliver("r-gen", batch(2, 1, {2}));
  core_.flush();
  EXPECT_TRUE(core_.pending());
  clock_.advance(1001ms);
  deliver("r-gen", heartbeat());
  core_.tick(clock_.now_ns());
  const auto s = stats("sink");
  EXPECT_FALSE(s.connected);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.dropped_batches, 2u) << "what waited for it is dropped and counted";
  EXPECT_EQ(s.dropped_events, 3u);
  EXPECT_TRUE(stats("gen").connected);
}

// --- Clock probes ---

TEST_F(Core, AProbeIsAnsweredWithItsReceiveAndSendTimesAndTheBrokersEpoch) {
  register_node("r-gen", "gen", 2, 4, 0);
  v1::TimeRequest q;
  q.set_probe_id(42);
  q.set_t0_ns(123);
  std::string f;
  ASSERT_TRUE(codec_.encode(q, f));
  const int64_t t1 = clock_.now_ns();
  deliver("r-gen", f);
  ASSERT_EQ(kinds_sent_to("r-gen"), std::vector<Body>{Body::time_reply});
  EXPECT_EQ(last_reply_.probe_id(), 42u);
  EXPECT_EQ(last_reply_.t0_ns(), 123);
  EXPECT_EQ(last_reply_.t1_ns(), t1);
  EXPECT_EQ(last_reply_.t2_ns(), t1);  // the manual clock did not move
  EXPECT_EQ(last_reply_.broker_epoch(), 0xb0b0u);
}

// --- Routing and drops (DESIGN: "delivered at exactly source time + delay") ---

TEST_F(Core, ABatchReachesItsTargetWithTheConnectionsDelayAndItsSourceTimes) {
  register_node("r-sink", "sink", 1, 0, 8);
  register_node("r-gen", "gen", 2, 4, 0);
  register_node("r-gen2", "gen2", 3, 4, 0);
  const int64_t t = clock_.now_ns();
  deliver("r-gen", batch(2, 0, {0, 3}));
  deliver("r-gen2", batch(3, 0, {1}, -1000));
  core_.flush();
  ASSERT_EQ(kinds_sent_to("r-sink"), (std::vector<Body>{Body::spike_batch, Body::spike_batch}));
  const auto& [h1, e1] = batches_[0];
  EXPECT_EQ(h1.source_node, "gen");
  EXPECT_EQ(h1.delay_ns, 20'000'000);
  EXPECT_EQ(h1.link_sequence, 0u);
  EXPECT_EQ(e1.channels, (std::vector<uint32_t>{0, 3}));
  EXPECT_EQ(e1.times_ns, (std::vector<int64_t>{t, t}));
  const auto& [h2, e2] = batches_[1];
  EXPECT_EQ(h2.source_node, "gen2");
  EXPECT_EQ(h2.delay_ns, 5'000'000);
  EXPECT_EQ(h2.link_sequence, 1u) << "one sequence per target link";
  EXPECT_EQ(e2.channels, std::vector<uint32_t>{5}) << "gen2's channel 1 is the sink's port 5";
  EXPECT_EQ(e2.times_ns, std::vector<int64_t>{t - 1000});
  EXPECT_EQ(stats("sink").events_out, 3u);
  EXPECT_EQ(stats("gen").events_in, 2u);
}

TEST_F(Core, ATargetThatIsNotThereAndAFullRingDropCountedNeverSilently) {
  register_node("r-gen", "gen", 2, 4, 0);
  deliver("r-gen", batch(2, 0, {0, 1, 2}));  // no sink, no grace
  EXPECT_EQ(stats("sink").dropped_events, 3u);
  register_node("r-sink", "sink", 1, 0, 8);
  out_.blocked.insert("r-sink");
  for (uint64_t s = 1; s <= 6; ++s) deliver("r-gen", batch(2, s, {0}));
  core_.flush();
  EXPECT_EQ(stats("sink").dropped_events, 3u + 2u) << "a ring of 4 frames keeps the newest 4";
  out_.blocked.clear();
  core_.flush();
  ASSERT_EQ(kinds_sent_to("r-sink").size(), 4u);
  EXPECT_EQ(batches_.front().second.size(), 1u);
  EXPECT_FALSE(core_.pending());
  const auto s = stats("sink");
  EXPECT_EQ(stats("gen").events_in, s.events_out + s.dropped_events) << "every event accounted for";
}

// --- Late and lost accounting (DESIGN: "loss is part of the API, never hidden") ---

TEST_F(Core, SequenceGapsAreCountedLostAndDuplicatesAreRefused) {
  register_node("r-sink", "sink", 1, 0, 8);
  register_node("r-gen", "gen", 2, 4, 0);
  deliver("r-gen", batch(2, 0, {0}));
  deliver("r-gen", batch(2, 3, {0}));  // 1 and 2 lost upstream
  deliver("r-gen", batch(2, 2, {0}));  // late duplicate: never forwarded
  deliver("r-gen", batch(9, 0, {0}));  // the node restarted (new epoch)
  core_.flush();
  const auto g = stats("gen");
  EXPECT_EQ(g.lost_upstream_batches, 2u);
  EXPECT_EQ(g.reordered_batches, 1u);
  EXPECT_EQ(g.source_restarts, 1u);
  EXPECT_EQ(kinds_sent_to("r-sink").size(), 3u);
}

TEST_F(Core, EventsOutsideTheTimeWindowOrBeyondTheDeclaredChannelsAreRejected) {
  register_node("r-sink", "sink", 1, 0, 8);
  register_node("r-gen", "gen", 2, 2, 0);  // declares 2 of its 4 channels
  deliver("r-gen", batch(2, 0, {3}));
  deliver("r-gen", batch(2, 1, {0}, -61'000'000'000));  // max_past is 60 s
  deliver("r-gen", batch(2, 2, {0}, 11'000'000'000));   // max_future is 10 s
  core_.flush();
  EXPECT_EQ(core_.rejects().get(Reject::channel_out_of_range), 1u);
  EXPECT_EQ(core_.rejects().get(Reject::time_out_of_window), 2u);
  EXPECT_EQ(stats("gen").rejected_batches, 3u);
  EXPECT_TRUE(kinds_sent_to("r-sink").empty());
}

// --- Rate limits ---

TEST_F(Core, ControlMessagesBeyondTheAllowanceAreRefusedAndTheAllowanceRefills) {
  register_node("r-gen", "gen", 2, 4, 0);  // a Hello is paid from the unregistered peers' allowance
  for (int i = 0; i < 30; ++i) deliver("r-gen", heartbeat());
  EXPECT_EQ(kinds_sent_to("r-gen").size(), 20u) << "the burst";
  EXPECT_EQ(core_.rejects().get(Reject::rate_limited), 10u);
  for (int i = 0; i < 10; ++i) deliver("r-gen", batch(2, static_cast<uint64_t>(i), {0}));
  EXPECT_EQ(core_.rejects().get(Reject::rate_limited), 10u) << "batches are not control messages";
  clock_.advance(1s);  // 10 per second
  for (int i = 0; i < 15; ++i) deliver("r-gen", heartbeat());
  EXPECT_EQ(kinds_sent_to("r-gen").size(), 10u);
}

// --- Gauges: the broker shows what a driver reports, without knowing the device ---

TEST_F(Core, ANodesGaugesAreShownWhateverItsKind) {
  register_node("r-gen", "gen", 2, 4, 0);  // kind "generator": nothing the broker recognises
  v1::Heartbeat hb;
  hb.set_sent_ns(clock_.now_ns());
  v1::Gauge* g = hb.mutable_health()->add_gauges();
  g->set_name("weight");
  g->add_values(0.25f);
  g->add_values(std::numeric_limits<float>::quiet_NaN());
  std::string f;
  ASSERT_TRUE(codec_.encode(hb, f));
  deliver("r-gen", f);
  const auto s = stats("gen");
  ASSERT_EQ(s.weights.size(), 2u);
  EXPECT_EQ(s.weights[0], 0.25f);
  EXPECT_TRUE(std::isnan(s.weights[1]));
  EXPECT_EQ(s.health.gauges.at("weight").size(), 2u);
  EXPECT_TRUE(stats("sink").weights.empty());
}

// --- A broker restart and resync (docs/timing.md, startup grace) ---

class CoreWithGrace : public Core {
 protected:
  CoreWithGrace() : Core(5000ms) {}
};

TEST_F(CoreWithGrace, TrafficForANodeThatHasNotComeBackIsHeldAndDeliveredWhenItDoes) {
  // A restarted broker: the generator is back first and its sequence continues from before.
  register_node("r-gen", "gen", 2, 4, 0);
  deliver("r-gen", batch(2, 57, {0}));
  deliver("r-gen", batch(2, 58, {1, 2}));
  EXPECT_EQ(stats("gen").lost_upstream_batches, 0u) << "a first sequence is not a gap";
  EXPECT_EQ(stats("sink").dropped_events, 0u);
  clock_.advance(2s);
  register_node("r-sink", "sink", 1, 0, 8);
  core_.flush();
  ASSERT_EQ(kinds_sent_to("r-sink").size(), 2u);
  EXPECT_EQ(batches_[1].second.size(), 2u);
  EXPECT_EQ(stats("sink").events_out, 3u);
}

TEST_F(CoreWithGrace, WhatIsHeldForANodeThatNeverComesIsDroppedCountedWhenTheGraceEnds) {
  register_node("r-gen", "gen", 2, 4, 0);
  deliver("r-gen", batch(2, 0, {0, 1}));
  for (int i = 0; i < 9; ++i) {  // 4.5 s, the generator heard twice a second
    clock_.advance(500ms);
    deliver("r-gen", heartbeat());
    core_.tick(clock_.now_ns());
  }
  clock_.advance(499ms);
  core_.tick(clock_.now_ns());
  EXPECT_EQ(stats("sink").dropped_events, 0u);
  clock_.advance(1ms);
  core_.tick(clock_.now_ns());
  EXPECT_EQ(stats("sink").dropped_events, 2u);
  deliver("r-gen", batch(2, 1, {0}));
  EXPECT_EQ(stats("sink").dropped_events, 3u) << "after the grace a missing target drops at once";
}

TEST_F(CoreWithGrace, ARecorderThatRegistersDuringTheGraceGetsWhatWasAcceptedBeforeIt) {
  register_node("r-gen", "gen", 2, 4, 0);
  deliver("r-gen", batch(2, 0, {0, 1}));
  deliver("r-gen", batch(2, 1, {2}));
  deliver("r-rec", hello("recorder-1", 5, 0, 0, false, /*tap=*/true));
  core_.flush();
  const auto kinds = kinds_sent_to("r-rec");
  ASSERT_EQ(kinds, (std::vector<Body>{Body::welcome, Body::spike_batch, Body::spike_batch}));
  EXPECT_EQ(batches_[0].first.source_node, "gen");
  EXPECT_EQ(batches_[0].second.size() + batches_[1].second.size(), 3u);
  const auto taps = core_.tap_stats();
  ASSERT_EQ(taps.size(), 1u);
  EXPECT_EQ(taps[0].events_out, 3u);
}

}  // namespace
}  // namespace ion::broker_impl
