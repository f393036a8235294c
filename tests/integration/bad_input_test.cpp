// Hostile and broken input to a live broker: every case is dropped and counted by reason, the
// sender gets a clear Error where one is due, and the broker keeps serving good nodes.
// Promise 4: "a flood or garbage costs counters, not memory or crashes."
#include "harness.h"

namespace ion::test {
namespace {

class BadInput : public ::testing::Test {
 protected:
  BadInput() : broker_(make_options()) {}

  static BrokerOptions make_options() {
    Topology t;
    t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}, {"rogue", "generator", 4, 0}};
    t.connections = {connect_all("gen", "sink"), connect_all("rogue", "sink")};
    BrokerOptions o = broker_options(t);
    o.limits.max_message_bytes = 64 * 1024;
    return o;
  }

  uint64_t rejects(Reject r) { return broker_.broker().rejects().get(r); }

  std::string error_message(RawPeer& peer, v1::Error::Code* code = nullptr) {
    if (peer.recv_body(codec_, Body::error) != Body::error) return "<no error reply>";
    if (code != nullptr) *code = codec_.error().code();
    return codec_.error().message();
  }

  std::string batch_frame(std::vector<uint32_t> channels, int64_t t_ns, uint64_t seq) {
    EventBatch b;
    for (auto c : channels) b.push(c, t_ns);
    BatchHeader h;
    h.epoch = 12345;
    h.sequence = seq;
    std::string out;
    EXPECT_TRUE(codec_.encode_batch(h, b, out));
    return out;
  }

  // The broker still routes a real generator to a real sink, exactly.
  void expect_good_nodes_served() {
    NodeRunner<SinkDriver> snk(node_options("sink", broker_.endpoint()), sink(4));
    ASSERT_TRUE(snk.node().wait_registered(1, 10s));
    NodeRunner<GeneratorDriver> gen(node_options("gen", broker_.endpoint()),
                                    generator(4, 1000.0, 2000));
    ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= 2000; }, 30s));
    EXPECT_EQ(snk.stats().received_events, 2000U);
    EXPECT_EQ(snk.stats().lost_events, 0U);
  }

  BrokerRunner broker_;
  Codec codec_;
};

TEST_F(BadInput, GarbageBytesAreCountedAsMalformed) {
  RawPeer peer(broker_.endpoint());
  peer.send(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12));
  peer.send("definitely not protobuf");
  ASSERT_TRUE(eventually([&] { return rejects(Reject::malformed) >= 2; }));
  expect_good_nodes_served();
}

TEST_F(BadInput, MultipartMessagesAreMalformed) {
  RawPeer peer(broker_.endpoint());
  (void)peer.socket().send(zmq::str_buffer("part one"), zmq::send_flags::sndmore);
  (void)peer.socket().send(zmq::str_buffer("part two"), zmq::send_flags::none);
  ASSERT_TRUE(eventually([&] { return rejects(Reject::malformed) >= 1; }));
}

TEST_F(BadInput, VersionMismatchGetsAClearError) {
  RawPeer peer(broker_.endpoint());
  peer.send(hello_frame("gen", 4, 0, 2));
  v1::Error::Code code{};
  const std::string msg = error_message(peer, &code);
  EXPECT_EQ(code, v1::Error::VERSION_MISMATCH);
  EXPECT_NE(msg.find("speaks IoN protocol 1"), std::string::npos) << msg;
  EXPECT_GE(rejects(Reject::version_mismatch), 1U);
}

TEST_F(BadInput, UnknownMessageTypeIsCounted) {
  RawPeer peer(broker_.endpoint());
  peer.send(std::string("\x08\x01\x9a\x06\x02\x08\x01", 7));
  ASSERT_TRUE(eventually([&] { return rejects(Reject::unknown_type) >= 1; }));
}

TEST_F(BadInput, UnknownNodeNamesAreRefusedWithTheKnownOnes) {
  RawPeer peer(broker_.endpoint());
  peer.send(hello_frame("mallory", 4, 0));
  v1::Error::Code code{};
  const std::string msg = error_message(peer, &code);
  EXPECT_EQ(code, v1::Error::NOT_IN_TOPOLOGY);
  EXPECT_NE(msg.find("'mallory' is not in this broker's topology (known: gen, sink, rogue)"),
            std::string::npos)
      << msg;
}

TEST_F(BadInput, DataBeforeHelloIsRefused) {
  RawPeer peer(broker_.endpoint());
  peer.send(batch_frame({0}, 0, 0));
  v1::Error::Code code{};
  (void)error_message(peer, &code);
  EXPECT_EQ(code, v1::Error::UNKNOWN_NODE);
  EXPECT_GE(rejects(Reject::unknown_node), 1U);
}

TEST_F(BadInput, DeclaringMoreChannelsThanTheTopologyIsRefused) {
  RawPeer peer(broker_.endpoint());
  peer.send(hello_frame("rogue", 64, 0));
  v1::Error::Code code{};
  const std::string msg = error_message(peer, &code);
  EXPECT_EQ(code, v1::Error::REJECTED);
  EXPECT_NE(msg.find("declares 64 output channels"), std::string::npos) << msg;
}

TEST_F(BadInput, RegisteredNodeSendingBadBatchesIsCountedByReason) {
  RawPeer peer(broker_.endpoint());
  peer.send(hello_frame("rogue", 4, 0));
  ASSERT_EQ(peer.recv_body(codec_, Body::welcome), Body::welcome);
  const int64_t now = SteadyClock::instance().now_ns();

  peer.send(batch_frame({4}, now, 0));  // channel 4 of a node that declared 4 (0..3)
  ASSERT_TRUE(eventually([&] { return rejects(Reject::channel_out_of_range) >= 1; }));

  peer.send(batch_frame({1}, now - 3'600'000'000'000, 1));  // an hour ago
  ASSERT_TRUE(eventually([&] { return rejects(Reject::time_out_of_window) >= 1; }));

  peer.send(batch_frame({1}, now, 5));
  peer.send(batch_frame({1}, now, 5));  // the same sequence again
  peer.send(batch_frame({1}, now, 3));  // an older one
  ASSERT_TRUE(eventually([&] { return rejects(Reject::duplicate_or_reordered) >= 2; }));

  const std::string huge(70 * 1024, 'x');  // over max_message_bytes: zmq drops the connection
  peer.send(huge);

  EXPECT_EQ(broker_.stats("rogue").events_in, 1U);  // only the one good batch
  EXPECT_EQ(broker_.stats("rogue").rejected_batches, 4U);
  expect_good_nodes_served();
  // The one good rogue event found no sink registered yet: counted as dropped, not hidden.
  EXPECT_EQ(broker_.stats("sink").dropped_events, 1U);
  EXPECT_EQ(broker_.stats("sink").events_out, 2000U);
}

TEST_F(BadInput, FloodOfGarbageCostsCountersNotService) {
  RawPeer peer(broker_.endpoint());
  constexpr int kFlood = 20000;
  for (int i = 0; i < kFlood; ++i) peer.send("garbage " + std::to_string(i));
  ASSERT_TRUE(eventually([&] { return rejects(Reject::malformed) >= kFlood; }, 60s))
      << rejects(Reject::malformed);
  expect_good_nodes_served();
}

}  // namespace
}  // namespace ion::test
