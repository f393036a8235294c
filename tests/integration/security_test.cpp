// Encrypted, authenticated links (docs/security.md). DESIGN §5: "an unauthenticated packet must
// never reach a culture"; promise 4: "a flood or garbage costs counters, not memory or crashes".
#include <csignal>

#include "harness.h"
#include "ion/core/security.h"
#include "cli/status.h"

namespace ion::test {
namespace {

struct Keys {
  CurveKeyPair broker = generate_keypair("broker");
  CurveKeyPair gen = generate_keypair("gen");
  CurveKeyPair sink = generate_keypair("sink");
  CurveKeyPair zurich = generate_keypair("zurich");
  CurveKeyPair stranger = generate_keypair("stranger");  // never on the allowlist

  [[nodiscard]] CurveClientKeys client(const CurveKeyPair& p) const {
    return {p.public_z85, p.secret_z85, broker.public_z85, p.name};
  }
};

BrokerOptions curve_broker(const Keys& k) {
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}, {"zurich", "chip", 4, 4},
             {"padova", "mea", 4, 4}};
  // 100 ms, as the other end-to-end tests: with refused peers reconnecting beside it, the
  // legitimate pair sees rare stalls of up to ~7 ms beyond a 20 ms delay on a loaded 2-core
  // debug run (counted as late; see the issue note).
  t.connections = {connect_all("gen", "sink", 100ms)};
  BrokerOptions o = broker_options(t);
  o.security.key = k.broker;
  for (const auto* p : {&k.gen, &k.sink, &k.zurich}) o.security.allowlist.add(p->name, p->public_z85);
  return o;
}

NodeOptions curve_node(const Keys& k, const CurveKeyPair& who, const std::string& endpoint) {
  NodeOptions o = node_options(who.name, endpoint);
  o.curve = k.client(who);
  return o;
}

bool got_reply(RawPeer& peer, std::chrono::milliseconds wait) { return peer.recv(wait).has_value(); }

TEST(Curve, OnlyListedKeysGetInAndALegitimateNodeIsUndisturbed) {
  const Keys k;
  BrokerRunner broker(curve_broker(k));
  NodeRunner<SinkDriver> snk(curve_node(k, k.sink, broker.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  NodeRunner<GeneratorDriver> gen(curve_node(k, k.gen, broker.endpoint()),
                                  generator(4, 500.0, 4000));

  // While the legitimate pair runs: an unknown key, a client that has the wrong broker key, and
  // a plaintext client all try to register.
  CurveClientKeys wrong_server = k.client(k.gen);
  wrong_server.server_public_z85 = k.stranger.public_z85;
  RawPeer unknown(broker.endpoint(), 1000, 0, k.client(k.stranger));
  RawPeer misdirected(broker.endpoint(), 1000, 0, wrong_server);
  RawPeer plaintext(broker.endpoint());
  for (RawPeer* p : {&unknown, &misdirected, &plaintext}) p->try_send(hello_frame("sink", 0, 4));

  ASSERT_TRUE(eventually([&] {
    const AuthStats a = broker.broker().auth_stats();
    // A plaintext peer is refused at the mechanism mismatch, or fails earlier when the broker's
    // refusal races its own greeting (no detail then).
    return a.unknown_key >= 1 && a.crypto_failed >= 1 && a.plaintext_refused + a.other_failed >= 1;
  })) << "unknown " << broker.broker().auth_stats().unknown_key << ", crypto "
      << broker.broker().auth_stats().crypto_failed << ", plaintext "
      << broker.broker().auth_stats().plaintext_refused << ", other "
      << broker.broker().auth_stats().other_failed;
  for (RawPeer* p : {&unknown, &misdirected, &plaintext}) {
    EXPECT_FALSE(got_reply(*p, 200ms)) << "a refused peer was answered";
  }
  // Nothing they sent reached the broker's decoder (no refusal of any message is counted).
  EXPECT_EQ(broker.broker().rejects().total(), 0U);

  ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= 4000; }, 30s))
      << snk.stats().received_events << " received, " << snk.stats().lost_events << " lost";
  EXPECT_EQ(snk.stats().received_events, 4000U);
  EXPECT_EQ(snk.stats().lost_events, 0U);
#if !defined(__SANITIZE_THREAD__)  // ~10x slower: the delay is too short there (counted)
  EXPECT_EQ(snk.stats().late_events, 0U)
      << "lateness p99 " << snk.stats().lateness_p99_ns << " ns, max " << snk.stats().lateness_max_ns;
#endif
  EXPECT_GE(broker.broker().auth_stats().accepted, 2U);
}

TEST(Curve, AKeyCannotRegisterUnderAnotherName) {
  const Keys k;
  BrokerRunner broker(curve_broker(k));
  RawPeer mallory(broker.endpoint(), 1000, 0, k.client(k.zurich));
  mallory.send(hello_frame("padova", 4, 4));
  Codec codec;
  ASSERT_EQ(mallory.recv_body(codec, Body::error), Body::error);
  EXPECT_EQ(codec.error().code(), v1::Error::NOT_AUTHORIZED);
  EXPECT_NE(codec.error().message().find("listed as 'zurich'"), std::string::npos)
      << codec.error().message();
  EXPECT_EQ(broker.broker().rejects().get(Reject::impersonation), 1U);
  EXPECT_FALSE(broker.stats("padova").connected);
  EXPECT_EQ(broker.stats("padova").registrations, 0U);

  // Under its own name the same connection is welcome.
  mallory.send(hello_frame("zurich", 4, 4));
  ASSERT_EQ(mallory.recv_body(codec, Body::welcome), Body::welcome);
  EXPECT_TRUE(broker.stats("zurich").connected);
}

TEST(Curve, ANameTakenOffTheAllowlistIsCutOffOnReload) {
  const Keys k;
  const std::string path = ::testing::TempDir() + "/allow-" + std::to_string(::getpid()) + ".txt";
  write_file(path, allowlist_line(k.sink) + "\n" + allowlist_line(k.zurich) + "\n");
  BrokerOptions o = curve_broker(k);
  o.security.allowlist = Allowlist::load_file(path);
  o.security.allowlist_file = path;
  BrokerRunner broker(std::move(o));
  RawPeer z(broker.endpoint(), 1000, 0, k.client(k.zurich));
  Codec codec;
  z.send(hello_frame("zurich", 4, 4));
  ASSERT_EQ(z.recv_body(codec, Body::welcome), Body::welcome);

  write_file(path, "# zurich revoked\n" + allowlist_line(k.sink) + "\n");
  broker.broker().reload_allowlist();
  ASSERT_TRUE(eventually([&] { return !broker.stats("zurich").connected; }, 10s));
  EXPECT_EQ(broker.broker().auth_stats().reloads, 1U);
  EXPECT_GE(broker.broker().rejects().get(Reject::revoked), 1U);
  // Its connection stays open, but a new Hello on it is refused.
  z.send(hello_frame("zurich", 4, 4));
  ASSERT_EQ(z.recv_body(codec, Body::error), Body::error);
  EXPECT_EQ(codec.error().code(), v1::Error::NOT_AUTHORIZED);

  // A damaged file is not taken: the list in force stays.
  write_file(path, "sink not-a-key\n");
  broker.broker().reload_allowlist();
  ASSERT_TRUE(eventually([&] { return broker.broker().auth_stats().reload_failures == 1; }, 10s));
  EXPECT_EQ(broker.broker().auth_stats().allowed_keys, 1U);
}

TEST(Curve, ControlFloodsAreRateLimitedPerNode) {
  const Keys k;
  BrokerOptions o = curve_broker(k);
  o.control_rate_hz = 50;
  o.control_burst = 20;
  BrokerRunner broker(std::move(o));
  RawPeer z(broker.endpoint(), 100000, 0, k.client(k.zurich));
  Codec codec;
  z.send(hello_frame("zurich", 4, 4));
  ASSERT_EQ(z.recv_body(codec, Body::welcome), Body::welcome);
  v1::Heartbeat hb;
  std::string frame;
  ASSERT_TRUE(codec.encode(hb, frame));
  for (int i = 0; i < 2000; ++i) z.send(frame);
  // Allowed: the burst plus what the rate refilled meanwhile; the rest dropped and counted.
  ASSERT_TRUE(eventually([&] { return broker.broker().rejects().get(Reject::rate_limited) >= 1500; }))
      << broker.broker().rejects().get(Reject::rate_limited);
  EXPECT_TRUE(broker.stats("zurich").connected);
}

// A real ion-broker process, so that its memory can be read from /proc.
class CurveDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/curve-daemon-" + std::to_string(::getpid());
    ASSERT_EQ(std::system(("rm -rf '" + dir_ + "' && mkdir -p '" + dir_ + "'").c_str()), 0);
    for (const auto* p : {&k_.broker, &k_.gen, &k_.sink, &k_.zurich}) write_keypair(*p, dir_);
    write_file(dir_ + "/allow.txt", allowlist_line(k_.gen) + "\n" + allowlist_line(k_.sink) +
                                        "\n" + allowlist_line(k_.zurich) + "\n");
    write_file(dir_ + "/topo.yaml",
               "nodes:\n  gen: {kind: generator, channels: 4}\n  sink: {kind: sink, ports: 4}\n"
               "  zurich: {kind: chip, channels: 4, ports: 4}\n"
               // 200 ms: a flood saturates this machine's cores, and the node's events must still
               // be on time; a broker starved by the flood would fall seconds behind.
               "connections:\n  - {from: 'gen:*', to: ['sink:*'], delay: 200ms}\n");
    port_ = free_port();
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(port_);
    write_file(dir_ + "/broker.yaml",
               "broker:\n  listen: " + endpoint_ +
                   "\n  topology: topo.yaml\n  secret_key: broker.key\n  allowlist: allow.txt\n"
                   "  max_message_bytes: 65536\n  heartbeat_interval: 100ms\n"
                   "  heartbeat_timeout: 2s\n  stats_interval: 0s\n");
  }

  static int64_t rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
  }

  Keys k_;
  std::string dir_;
  int port_ = 0;
  std::string endpoint_;
};

TEST_F(CurveDaemon, AuthenticatedFloodOfBadFramesCostsCountersNotMemoryOrLoss) {
  Child broker({ION_BROKER_BIN, "--config", dir_ + "/broker.yaml", "--log-level", "error"},
               dir_ + "/broker.log");
  ASSERT_TRUE(broker.started());
  NodeRunner<SinkDriver> snk(curve_node(k_, k_.sink, endpoint_), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s)) << broker.output();

  // The flooder is authenticated and registered: it may send, but only garbage.
  Codec codec;
  auto flooder = std::make_unique<RawPeer>(endpoint_, 1000, 0, k_.client(k_.zurich));
  flooder->send(hello_frame("zurich", 4, 4));
  ASSERT_EQ(flooder->recv_body(codec, Body::welcome), Body::welcome);
  const int64_t rss_before = rss_kib(broker.pid());
  ASSERT_GT(rss_before, 0);

  constexpr uint64_t kEvents = 10 * 4 * 100;  // 10 s of 4 channels at 100 Hz
  NodeRunner<GeneratorDriver> gen(curve_node(k_, k_.gen, endpoint_), generator(4, 100.0, kEvents));
  EventBatch b;
  for (uint32_t i = 0; i < 64; ++i) b.push(i % 4, 1);
  BatchHeader h;
  std::string batch;
  ASSERT_TRUE(codec.encode_batch(h, b, batch));
  const std::string truncated = batch.substr(0, batch.size() / 2);
  const std::string oversized(200 * 1024, 'x');  // beyond max_message_bytes: zmq drops the link
  uint64_t sent = 0;
  int64_t rss_peak = rss_before;
  int64_t rss_after_1s = -1;
  const auto begin = std::chrono::steady_clock::now();
  const auto end = begin + 10s;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 200; ++i, ++sent) {
      switch (sent % 3) {
        case 0: flooder->send("garbage " + std::to_string(sent)); break;
        case 1: flooder->send(truncated); break;
        default: flooder->send(batch.substr(0, 7) + std::string(5000, '\xff')); break;
      }
    }
    if (sent % 20000 == 0) flooder->send(oversized);  // the broker cuts this connection
    rss_peak = std::max(rss_peak, rss_kib(broker.pid()));
    if (rss_after_1s < 0 && std::chrono::steady_clock::now() > begin + 1s) rss_after_1s = rss_kib(broker.pid());
  }
  const int64_t rss_end = rss_kib(broker.pid());
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= kEvents; }, 30s))
      << snk.stats().received_events;
  const int64_t growth_kib = rss_peak - rss_before;
  std::printf("flood: %llu bad frames in 10 s; broker RSS %lld KiB -> %lld KiB after 1 s -> %lld KiB "
              "at the end, peak %lld KiB (+%lld KiB); good node: %llu of %llu events, %llu lost\n",
              static_cast<unsigned long long>(sent), static_cast<long long>(rss_before),
              static_cast<long long>(rss_after_1s), static_cast<long long>(rss_end),
              static_cast<long long>(rss_peak), static_cast<long long>(growth_kib),
              static_cast<unsigned long long>(snk.stats().received_events),
              static_cast<unsigned long long>(kEvents),
              static_cast<unsigned long long>(snk.stats().lost_events));
  EXPECT_EQ(snk.stats().received_events, kEvents);
  EXPECT_EQ(snk.stats().lost_events, 0U);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizers keep freed memory in quarantine on purpose, so RSS says nothing there; and their
  // slowdown (TSan: ~10x) makes a 200 ms delay too short under a flood (late events are counted).
  (void)growth_kib;
#else
  EXPECT_LT(growth_kib, 64 * 1024) << "the broker's memory grew with the flood";
  EXPECT_EQ(snk.stats().late_events, 0U);
#endif

  // The broker counted the flood; ask it as an authenticated status client.
  StatusOptions so;
  so.broker = endpoint_;
  so.json = true;
  so.curve = k_.client(k_.sink);
  std::ostringstream out;
  ASSERT_EQ(run_status(so, out), 0) << out.str();
  EXPECT_NE(out.str().find("\"malformed\""), std::string::npos) << out.str();
  // The oversized frames cost the flooder its connection each time (zmq's MAXMSGSIZE).
  EXPECT_EQ(out.str().find("\"disconnects\":0,"), std::string::npos) << out.str();
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.wait(), 0) << broker.output();
}

TEST_F(CurveDaemon, PlaintextBrokerOnAReachableAddressExitsWithTheReasonUnlessInsecure) {
  write_file(dir_ + "/plain.yaml", "broker:\n  topology: topo.yaml\n");
  const std::string listen = "tcp://0.0.0.0:" + std::to_string(port_);
  Child refused({ION_BROKER_BIN, "--config", dir_ + "/plain.yaml", "--listen", listen},
                dir_ + "/refused.log");
  std::optional<int> rc;
  ASSERT_TRUE(eventually([&] { return (rc = refused.try_wait()).has_value(); }, 5s))
      << "ion-broker kept running on " << listen << " without CURVE";
  EXPECT_NE(*rc, 0);
  EXPECT_NE(refused.output().find("refusing to listen"), std::string::npos) << refused.output();

  Child insecure({ION_BROKER_BIN, "--config", dir_ + "/plain.yaml", "--listen", listen,
                  "--insecure"},
                 dir_ + "/insecure.log");
  ASSERT_TRUE(eventually([&] { return insecure.output().find("INSECURE") != std::string::npos; }, 5s))
      << insecure.output();
  EXPECT_FALSE(insecure.try_wait().has_value());
  StatusOptions so;
  so.broker = "tcp://127.0.0.1:" + std::to_string(port_);
  so.json = true;
  std::ostringstream out;
  ASSERT_EQ(run_status(so, out), 0) << out.str();
  EXPECT_NE(out.str().find("\"insecure\":true"), std::string::npos) << out.str();
  insecure.signal(SIGTERM);
  EXPECT_EQ(insecure.wait(), 0);
}

TEST_F(CurveDaemon, NodeDaemonWithKeysJoinsAndWithoutKeysRefusesARemoteBroker) {
  Child broker({ION_BROKER_BIN, "--config", dir_ + "/broker.yaml"}, dir_ + "/broker.log");
  write_file(dir_ + "/sink.yaml", "node:\n  name: sink\n  broker: " + endpoint_ +
                                      "\n  secret_key: sink.key\n  broker_key: broker.pub\n"
                                      "driver:\n  kind: sink\n  ports: 4\n");
  Child node({ION_NODE_BIN, "--config", dir_ + "/sink.yaml"}, dir_ + "/sink.log");
  ASSERT_TRUE(eventually([&] { return node.output().find("registered as id") != std::string::npos; }, 15s))
      << node.output() << broker.output();
  node.signal(SIGTERM);
  EXPECT_EQ(node.wait(), 0);

  write_file(dir_ + "/remote.yaml",
             "node:\n  name: sink\n  broker: tcp://192.0.2.1:5555\ndriver:\n  kind: sink\n  ports: 4\n");
  Child remote({ION_NODE_BIN, "--config", dir_ + "/remote.yaml"}, dir_ + "/remote.log");
  std::optional<int> rc;
  ASSERT_TRUE(eventually([&] { return (rc = remote.try_wait()).has_value(); }, 5s));
  EXPECT_NE(*rc, 0);
  EXPECT_NE(remote.output().find("without encryption"), std::string::npos) << remote.output();
  // Key material never reaches a log.
  for (const std::string& log : {broker.output(), node.output()}) {
    for (const auto* p : {&k_.broker, &k_.sink}) {
      EXPECT_EQ(log.find(p->secret_z85), std::string::npos);
      EXPECT_EQ(log.find(p->public_z85), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace ion::test
