// The MEA node end to end: emulated culture -> detection -> broker -> sink, stimulation back in;
// the live TCP frame stream with a refused and an accepted acquisition computer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "harness.h"
#include "ion/mea/frame_stream.h"
#include "ion/mea/mea_driver.h"

namespace ion::test {
namespace {

using mea::MeaDriver;
using mea::MeaOptions;

TEST(MeaNode, StreamsDetectedSpikesIntoTheBrokerAndAnswersStimulation) {
  // "ion-node --config configs/padova-mea.yaml streams detected spikes from the emulated culture
  // into the broker and answers stimulation."
  Topology t;
  t.nodes = {{"padova", "mea", 60, 60}, {"sink", "sink", 0, 60}, {"stim", "generator", 60, 0}};
  t.connections = {connect_all("padova", "sink"), connect_all("stim", "padova")};
  BrokerRunner broker(broker_options(t));
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(60));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  MeaOptions o;
  NodeRunner<MeaDriver> mea(node_options("padova", broker.endpoint()), std::make_unique<MeaDriver>(o));
  NodeRunner<GeneratorDriver> stim(node_options("stim", broker.endpoint()), generator(60, 0.5, 20));
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= 200; }, 60s))
      << "received " << snk.stats().received_events;
  ASSERT_TRUE(eventually([&] { return mea.driver().counters().at("stim_scheduled") >= 5; }, 60s));
  const auto c = mea.driver().counters();
  EXPECT_EQ(c.at("stim_rejected_electrode"), 0);
  EXPECT_GT(c.at("samples"), 25000);
  EXPECT_EQ(snk.stats().lost_events, 0U);
  EXPECT_EQ(snk.driver().early(), 0U);
  // Spikes leave stamped in network time at their threshold crossing: their end-to-end latency
  // is the detection delay (block + peak window) plus transport, never negative.
  EXPECT_GT(snk.stats().latency_p50_ns, 0);
  // An emulator slower than real time stamps late (counted as processing_behind): say so.
  EXPECT_LT(snk.stats().latency_p50_ns, 200'000'000)
      << "processing_behind " << c.at("processing_behind");
}

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const void* p, size_t n) {
  return ::send(fd, p, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n);
}

TEST(MeaTcp, WrongChannelCountIsRefusedAndAGoodStreamArrivesIntact) {
  // Bad input: "a wrong channel count on the TCP stream: a clear error or a counted rejection."
  mea::TcpStreamOptions o;
  o.channels = 4;
  o.sample_rate_hz = 15000;
  mea::TcpStreamSource src(o);
  {
    const int fd = connect_to(src.port());
    ASSERT_GE(fd, 0);
    mea::StreamHeader h;
    h.channels = 5;
    h.sample_rate_hz = 15000;
    const auto hb = mea::encode_stream_header(h);
    ASSERT_TRUE(send_all(fd, hb.data(), hb.size()));
    char reply[256] = {};
    size_t got = 0;
    while (got < sizeof reply) {
      const ssize_t k = ::recv(fd, reply + got, sizeof reply - got, 0);
      if (k <= 0) break;  // the node closes after its refusal
      got += static_cast<size_t>(k);
    }
    ::close(fd);
    ASSERT_GE(got, 8U);
    EXPECT_EQ(std::string(reply, 4), "IONE");
    EXPECT_NE(std::string(reply + 8, got - 8).find("5 channels"), std::string::npos);
  }
  ASSERT_TRUE(eventually([&] { return src.counters().at("tcp_refused") == 1; }));

  const int fd = connect_to(src.port());
  ASSERT_GE(fd, 0);
  mea::StreamHeader h;
  h.channels = 4;
  h.sample_rate_hz = 15000;
  h.uv_per_bit = 0.5;
  h.offset_bits = 2057;
  const auto hb = mea::encode_stream_header(h);
  ASSERT_TRUE(send_all(fd, hb.data(), hb.size()));
  std::vector<int16_t> sent;
  for (uint64_t chunk = 0; chunk < 3; ++chunk) {
    std::vector<int16_t> frames(4 * 100);
    for (size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<int16_t>(chunk * 1000 + i);
    const auto ch = mea::encode_chunk_header({100, 1000 + chunk * 100});
    ASSERT_TRUE(send_all(fd, ch.data(), ch.size()));
    ASSERT_TRUE(send_all(fd, frames.data(), frames.size() * 2));
    sent.insert(sent.end(), frames.begin(), frames.end());
  }
  std::vector<int16_t> got;
  std::vector<int16_t> buf(4 * 64);
  uint64_t expect_sample = 1000;
  while (got.size() < sent.size()) {
    const mea::ReadResult r = src.read(buf, std::chrono::milliseconds(5000));
    ASSERT_GT(r.frames, 0U);
    EXPECT_EQ(r.first_sample, expect_sample);
    expect_sample += r.frames;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(r.frames * 4));
  }
  EXPECT_EQ(got, sent);
  EXPECT_EQ(src.format().uv_per_bit, 0.5);
  EXPECT_EQ(src.format().offset_bits, 2057);
  // Stimulation goes back to the acquisition computer on the same connection.
  EXPECT_EQ(src.stimulate({7, 0, 100.F, 200}), mea::StimResult::out_of_range);
  ASSERT_EQ(src.stimulate({2, 1234, 650.F, 150}), mea::StimResult::applied);
  std::array<char, mea::kStimBytes> sb{};
  size_t n = 0;
  while (n < sb.size()) {
    const ssize_t k = ::recv(fd, sb.data() + n, sb.size() - n, 0);
    ASSERT_GT(k, 0);
    n += static_cast<size_t>(k);
  }
  mea::StimCommand s;
  ASSERT_EQ(mea::decode_stim(sb.data(), s), "");
  EXPECT_EQ(s.electrode, 2U);
  EXPECT_EQ(s.sample, 1234U);
  EXPECT_EQ(s.amplitude_mv, 650.F);
  EXPECT_EQ(s.width_us, 150U);
  // A chunk that goes backwards is malformed: counted, connection closed.
  const auto back = mea::encode_chunk_header({1, 10});
  ASSERT_TRUE(send_all(fd, back.data(), back.size()));
  ASSERT_TRUE(eventually([&] { return src.counters().at("tcp_malformed") == 1; }));
  ::close(fd);
  src.stop();
}

}  // namespace
}  // namespace ion::test
