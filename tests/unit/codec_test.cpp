// Codec: round trips and every rejection path.
// Promise 4: "a flood or garbage costs counters, not memory or crashes" — every malformed input
// below yields a named Reject, never an exception or a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ion/core/codec.h"
#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

EventBatch sample_batch(size_t n, bool payload) {
  EventBatch b;
  b.stream = 3;
  b.kind = payload ? EventKind::synaptic_input : EventKind::spike;
  int64_t t = 1'000'000'000'000;
  for (size_t i = 0; i < n; ++i) {
    t += static_cast<int64_t>((i * 7919) % 50'000);
    if (payload) {
      b.push(static_cast<uint32_t>(i % 60), t, static_cast<float>(i) * 0.25F);
    } else {
      b.push(static_cast<uint32_t>(i % 60), t);
    }
  }
  return b;
}

// Wraps a hand-built SpikeBatch in an envelope the way a foreign encoder would.
std::string envelope_with(const v1::SpikeBatch& b, uint32_t version = kProtocolVersion) {
  v1::Envelope e;
  e.set_protocol_version(version);
  *e.mutable_spike_batch() = b;
  return e.SerializeAsString();
}

TEST(Codec, BatchRoundTripKeepsEveryColumnAndHeaderField) {
  Codec codec;
  for (const bool payload : {false, true}) {
    const EventBatch in = sample_batch(1000, payload);
    BatchHeader h;
    h.epoch = 0xfeedbeefcafe1234;
    h.sequence = 77;
    h.first_index = 123456;
    h.source_node_id = 5;
    h.source_node = "padova";
    h.broker_epoch = 99;
    h.link_sequence = 42;
    h.delay_ns = 20'000'000;
    h.complete = true;
    std::string frame;
    ASSERT_TRUE(codec.encode_batch(h, in, frame));
    const Decoded d = codec.decode(bytes(frame));
    ASSERT_TRUE(d.ok()) << to_string(d.reject);
    ASSERT_EQ(d.body, Body::spike_batch);
    BatchHeader oh;
    EventBatch out;
    ASSERT_EQ(codec.take_batch({}, oh, out), Reject::none);
    EXPECT_EQ(out.channels, in.channels);
    EXPECT_EQ(out.times_ns, in.times_ns);
    EXPECT_EQ(out.payload, in.payload);
    EXPECT_EQ(out.stream, in.stream);
    EXPECT_EQ(out.kind, in.kind);
    EXPECT_EQ(oh.epoch, h.epoch);
    EXPECT_EQ(oh.sequence, h.sequence);
    EXPECT_EQ(oh.first_index, h.first_index);
    EXPECT_EQ(oh.source_node_id, h.source_node_id);
    EXPECT_EQ(oh.source_node, h.source_node);
    EXPECT_EQ(oh.broker_epoch, h.broker_epoch);
    EXPECT_EQ(oh.link_sequence, h.link_sequence);
    EXPECT_EQ(oh.delay_ns, h.delay_ns);
    EXPECT_EQ(oh.complete, h.complete);
  }
}

TEST(Codec, UnsortedAndExtremeTimesRoundTrip) {
  Codec codec;
  EventBatch in;
  constexpr int64_t kBig = int64_t{1} << 62;
  in.push(1, 5'000);
  in.push(2, -7'000'000'000);  // before the base
  in.push(3, kBig);
  in.push(4, -kBig);
  in.push(5, 0);
  std::string frame;
  ASSERT_TRUE(codec.encode_batch({}, in, frame));
  ASSERT_TRUE(codec.decode(bytes(frame)).ok());
  BatchHeader h;
  EventBatch out;
  ASSERT_EQ(codec.take_batch({}, h, out), Reject::none);
  EXPECT_EQ(out.times_ns, in.times_ns);
}

TEST(Codec, StepsBeyondInt64AreRefusedAtEncode) {
  Codec codec;
  EventBatch in;
  in.push(1, std::numeric_limits<int64_t>::max());
  in.push(2, std::numeric_limits<int64_t>::min());
  std::string frame;
  EXPECT_FALSE(codec.encode_batch({}, in, frame));
}

TEST(Codec, FramesAreStandardProtobufEnvelopes) {
  // The hand-written envelope header must be plain protobuf, so any client library can read it.
  Codec codec;
  const EventBatch in = sample_batch(10, true);
  BatchHeader h;
  h.sequence = 9;
  std::string frame;
  ASSERT_TRUE(codec.encode_batch(h, in, frame));
  v1::Envelope e;
  ASSERT_TRUE(e.ParseFromString(frame));
  EXPECT_EQ(e.protocol_version(), kProtocolVersion);
  ASSERT_TRUE(e.has_spike_batch());
  EXPECT_EQ(e.spike_batch().sequence(), 9U);
  EXPECT_EQ(e.spike_batch().channels_size(), 10);
  EXPECT_EQ(e.spike_batch().base_time_ns(), in.times_ns[0]);
}

TEST(Codec, PackedBatchCostsAtMostSixteenBytesPerEvent) {
  // Target from the issue: a packed batch <= 16 bytes per event. Spikes on 60 electrodes at
  // realistic spacing (tens of microseconds apart) with and without a float payload.
  Codec codec;
  for (const bool payload : {false, true}) {
    const EventBatch in = sample_batch(1024, payload);
    std::string frame;
    ASSERT_TRUE(codec.encode_batch({}, in, frame));
    const double per_event = static_cast<double>(frame.size()) / 1024.0;
    EXPECT_LE(per_event, 16.0) << "payload=" << payload;
  }
}

TEST(Codec, ControlMessagesRoundTrip) {
  Codec codec;
  std::string frame;
  v1::Hello hello;
  hello.set_node_name("zurich");
  hello.set_kind(v1::NODE_KIND_CHIP);
  hello.set_protocol_version(kProtocolVersion);
  hello.set_output_channels(256);
  hello.set_input_ports(256);
  hello.set_epoch(17);
  ASSERT_TRUE(codec.encode(hello, frame));
  Decoded d = codec.decode(bytes(frame));
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d.body, Body::hello);
  EXPECT_EQ(codec.hello().node_name(), "zurich");
  EXPECT_EQ(codec.hello().output_channels(), 256U);

  v1::TimeReply tr;
  tr.set_probe_id(4);
  tr.set_t0_ns(1);
  tr.set_t1_ns(2);
  tr.set_t2_ns(3);
  ASSERT_TRUE(codec.encode(tr, frame));
  d = codec.decode(bytes(frame));
  ASSERT_EQ(d.body, Body::time_reply);
  EXPECT_EQ(codec.time_reply().t2_ns(), 3);

  v1::Error err;
  err.set_code(v1::Error::UNKNOWN_NODE);
  err.set_message("who?");
  ASSERT_TRUE(codec.encode(err, frame));
  d = codec.decode(bytes(frame));
  ASSERT_EQ(d.body, Body::error);
  EXPECT_EQ(codec.error().message(), "who?");

  const std::string built = make_error_frame(v1::Error::MALFORMED, "bad");
  d = codec.decode(bytes(built));
  ASSERT_EQ(d.body, Body::error);
  EXPECT_EQ(codec.error().code(), v1::Error::MALFORMED);
}

TEST(Codec, RerouteKeepsTheSourceBytesAndOverridesEveryRoutingField) {
  // A batch routed whole goes on with the source's bytes; the routing header is the broker's,
  // whatever the sender wrote there (a forged source id or delay, even where the broker's value
  // is the protobuf default that a serializer would omit).
  Codec c;
  const EventBatch b = sample_batch(100, true);
  BatchHeader src;
  src.epoch = 77;
  src.sequence = 5;
  src.first_index = 500;
  src.source_node_id = 9;    // forged by the sender
  src.source_node = "padova";
  src.delay_ns = 99'000'000;
  src.complete = true;
  src.late_policy = LatePolicy::drop;
  src.broker_time_ns = 123;
  std::string in;
  ASSERT_TRUE(c.encode_batch(src, b, in));
  BatchHeader routing;  // all defaults but the name and sequence
  routing.source_node = "zurich";
  routing.link_sequence = 42;
  routing.broker_epoch = 0xfeedULL;
  std::string out;
  ASSERT_TRUE(c.reroute_batch(bytes(in), routing, out));
  ASSERT_TRUE(c.decode(bytes(out)).ok());
  BatchHeader h;
  EventBatch e;
  ASSERT_EQ(c.take_batch({}, h, e), Reject::none);
  EXPECT_EQ(e.channels, b.channels);
  EXPECT_EQ(e.times_ns, b.times_ns);
  EXPECT_EQ(e.payload, b.payload);
  EXPECT_EQ(h.epoch, 77U);
  EXPECT_EQ(h.sequence, 5U);
  EXPECT_EQ(h.first_index, 500U);
  EXPECT_EQ(h.source_node_id, 0U);
  EXPECT_EQ(h.source_node, "zurich");
  EXPECT_EQ(h.broker_epoch, 0xfeedULL);
  EXPECT_EQ(h.link_sequence, 42U);
  EXPECT_EQ(h.delay_ns, 0);
  EXPECT_FALSE(h.complete);
  EXPECT_EQ(h.late_policy, LatePolicy::deliver_flagged);
  EXPECT_EQ(h.broker_time_ns, 0);
  // Not a batch: refused.
  v1::Goodbye g;
  ASSERT_TRUE(c.encode(g, in));
  EXPECT_FALSE(c.reroute_batch(bytes(in), routing, out));
}

TEST(Codec, PeekBodyFindsTheKindWithoutParsing) {
  Codec codec;
  std::string frame;
  v1::TimeRequest r;
  r.set_t0_ns(5);
  ASSERT_TRUE(codec.encode(r, frame));
  EXPECT_EQ(peek_body(bytes(frame)), Body::time_request);
  ASSERT_TRUE(codec.encode_batch({}, sample_batch(10, false), frame));
  EXPECT_EQ(peek_body(bytes(frame)), Body::spike_batch);
  EXPECT_EQ(peek_body(bytes(std::string("\xff\xff", 2))), Body::none);
  EXPECT_EQ(peek_body(bytes(frame.substr(0, frame.size() - 1))), Body::none);
}

TEST(CodecReject, OversizedFrame) {
  Codec codec({.max_message_bytes = 64, .max_events_per_batch = 1000});
  const std::string big(65, '\0');
  EXPECT_EQ(codec.decode(bytes(big)).reject, Reject::oversized);
}

TEST(CodecReject, EncodeRefusesFramesOverTheLimitAndMismatchedColumns) {
  Codec codec({.max_message_bytes = 64, .max_events_per_batch = 1000});
  std::string frame;
  EXPECT_FALSE(codec.encode_batch({}, sample_batch(100, false), frame));
  EventBatch bad = sample_batch(3, false);
  bad.times_ns.pop_back();
  Codec roomy;
  EXPECT_FALSE(roomy.encode_batch({}, bad, frame));
}

TEST(CodecReject, GarbageAndTruncatedFramesAreMalformed) {
  Codec codec;
  EXPECT_EQ(codec.decode(bytes(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11)))
                .reject,
            Reject::malformed);
  std::string frame;
  ASSERT_TRUE(codec.encode_batch({}, sample_batch(50, true), frame));
  for (size_t cut : {frame.size() - 1, frame.size() / 2, size_t{3}}) {
    const std::string t = frame.substr(0, cut);
    EXPECT_EQ(codec.decode(bytes(t)).reject, Reject::malformed) << "cut at " << cut;
  }
  // A group wire type is not part of the schema.
  EXPECT_EQ(codec.decode(bytes(std::string("\x0b", 1))).reject, Reject::malformed);
}

TEST(CodecReject, VersionMismatchStillNamesTheBody) {
  v1::Envelope e;
  e.set_protocol_version(2);
  e.mutable_hello()->set_node_name("future");
  Codec codec;
  const Decoded d = codec.decode(bytes(e.SerializeAsString()));
  EXPECT_EQ(d.reject, Reject::version_mismatch);
  EXPECT_EQ(d.version, 2U);
  EXPECT_EQ(d.body, Body::hello);
  EXPECT_EQ(codec.hello().node_name(), "future");
}

TEST(CodecReject, UnknownBodyType) {
  // Field 99, length-delimited: a message type from a newer schema.
  std::string frame("\x08\x01\x9a\x06\x02\x08\x01", 7);
  Codec codec;
  EXPECT_EQ(codec.decode(bytes(frame)).reject, Reject::unknown_type);
  // An envelope with a version and no body at all.
  EXPECT_EQ(codec.decode(bytes(std::string("\x08\x01", 2))).reject, Reject::unknown_type);
}

class BatchReject : public ::testing::Test {
 protected:
  Reject take(const v1::SpikeBatch& b, const BatchChecks& checks = {},
              CodecLimits limits = {}) {
    Codec codec(limits);
    const std::string frame = envelope_with(b);
    const Decoded d = codec.decode(bytes(frame));
    EXPECT_TRUE(d.ok());
    BatchHeader h;
    EventBatch e;
    return codec.take_batch(checks, h, e);
  }
  static v1::SpikeBatch good(int n) {
    v1::SpikeBatch b;
    b.set_base_time_ns(1'000'000);
    for (int i = 0; i < n; ++i) {
      b.add_channels(static_cast<uint32_t>(i));
      b.add_time_deltas_ns(1000);
    }
    return b;
  }
};

TEST_F(BatchReject, GoodBatchPasses) { EXPECT_EQ(take(good(4)), Reject::none); }

TEST_F(BatchReject, EmptyBatch) { EXPECT_EQ(take(good(0)), Reject::empty_batch); }

TEST_F(BatchReject, TooManyEvents) {
  EXPECT_EQ(take(good(11), {}, {.max_message_bytes = 1 << 20, .max_events_per_batch = 10}),
            Reject::too_many_events);
}

TEST_F(BatchReject, ColumnMismatch) {
  v1::SpikeBatch b = good(4);
  b.add_time_deltas_ns(5);
  EXPECT_EQ(take(b), Reject::column_mismatch);
  v1::SpikeBatch p = good(4);
  p.add_payload(1.0F);
  EXPECT_EQ(take(p), Reject::column_mismatch);
}

TEST_F(BatchReject, ChannelOutOfRange) {
  BatchChecks c;
  c.channel_limit = 3;  // channels 0..3 present
  EXPECT_EQ(take(good(4), c), Reject::channel_out_of_range);
  c.channel_limit = 4;
  EXPECT_EQ(take(good(4), c), Reject::none);
}

TEST_F(BatchReject, TimeOverflow) {
  v1::SpikeBatch b = good(2);
  b.set_base_time_ns(std::numeric_limits<int64_t>::max() - 10);
  EXPECT_EQ(take(b), Reject::time_overflow);
}

TEST_F(BatchReject, TimeOutsideWindow) {
  BatchChecks c;
  c.check_time_window = true;
  c.window_lo_ns = 0;
  c.window_hi_ns = 1'002'000;  // events at 1'001'000 .. 1'004'000
  EXPECT_EQ(take(good(4), c), Reject::time_out_of_window);
  c.window_hi_ns = 1'004'000;
  EXPECT_EQ(take(good(4), c), Reject::none);
  c.window_lo_ns = 1'001'001;
  EXPECT_EQ(take(good(4), c), Reject::time_out_of_window);
}

TEST_F(BatchReject, UnknownEventKind) {
  v1::SpikeBatch b = good(2);
  b.set_kind(static_cast<v1::EventKind>(9));
  EXPECT_EQ(take(b), Reject::bad_kind);
}

TEST_F(BatchReject, NonFinitePayload) {
  v1::SpikeBatch b = good(2);
  b.add_payload(1.0F);
  b.add_payload(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(take(b), Reject::non_finite_payload);
  b.set_payload(1, std::numeric_limits<float>::infinity());
  EXPECT_EQ(take(b), Reject::non_finite_payload);
}

}  // namespace
}  // namespace ion
