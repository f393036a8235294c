// The broker session (nodes/include/ion/node/session.h) stepped without sockets or threads
// against the real broker core (broker/src/core.h): what the session sends goes through a
// LoopLink into BrokerCore::on_message, what the core sends comes back through on_frame, and
// both read one ManualClock the test advances. Each test quotes the promise it checks
// (DESIGN.md, docs/cli.md, docs/timing.md).
#include <gtest/gtest.h>

#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core.h"
#include "ion/core/clock.h"
#include "ion/node/session.h"
#include "ion/v1/ion.pb.h"
#include "recording_outbox.h"

namespace ion {
namespace {

using namespace std::chrono_literals;
using broker_impl::BrokerCore;
using broker_impl::RecordingOutbox;

constexpr int64_t kStart = 1'000'000'000'000;  // network time at the start, ns
constexpr int64_t kOffset = 2'500'000'000;     // the participant's clock reads 2.5 s ahead
constexpr char kRid[] = "r-node";              // the participant's routing id at the broker

// The session's connection, looped back into a stepped broker core by the fixture.
class LoopLink final : public SessionLink {
 public:
  bool open() noexcept override {
    ++opens;
    open_ = !fail_open;
    return open_;
  }
  void close() noexcept override {
    open_ = false;
    to_broker.clear();  // what was queued on a closed socket is gone
  }
  [[nodiscard]] bool is_open() const noexcept override { return open_; }
  bool send(const std::string& frame) noexcept override {
    if (!open_ || !up) return false;
    to_broker.push_back(frame);
    return true;
  }
  [[nodiscard]] bool connected_now() const noexcept override { return up; }
  std::optional<HandshakeFailure> poll_handshake(bool& succeeded) noexcept override {
    succeeded = false;
    return std::exchange(failure, std::nullopt);
  }
  uint32_t take_disconnects() noexcept override { return std::exchange(disconnects, 0); }
  [[nodiscard]] std::optional<std::string> peer_mechanism() noexcept override {
    ++mechanism_asked;
    return mechanism;
  }

  bool up = true;         // a connection is made (a broker listens)
  bool fail_open = false;  // making a socket fails
  std::optional<HandshakeFailure> failure;
  uint32_t disconnects = 0;
  std::deque<std::string> to_broker;
  int opens = 0;
  std::optional<std::string> mechanism;  // what the broker's greeting names, if it can be read
  int mechanism_asked = 0;

 private:
  bool open_ = false;
};

class RecordingOwner final : public SessionOwner {
 public:
  void fill_hello(v1::Hello& h) noexcept override {
    h.set_node_name(name);
    h.set_input_ports(8);
    h.set_epoch(7);
    ++hellos;
  }
  void fill_heartbeat(v1::Heartbeat& /*hb*/, int64_t /*now*/) noexcept override { ++heartbeats; }
  void on_registered(const v1::Welcome& w, bool restarted) noexcept override {
    ++registrations;
    restarts += restarted ? 1 : 0;
    last_welcome = w;
  }
  void on_unregistered() noexcept override { ++unregistrations; }
  void on_synced() noexcept override { ++syncs; }
  void on_refused(const Refusal& r) noexcept override { refusals.push_back(r); }

  std::string name = "sink";
  int hellos = 0, heartbeats = 0, registrations = 0, restarts = 0, unregistrations = 0, syncs = 0;
  v1::Welcome last_welcome;
  std::vector<Refusal> refusals;
};

BrokerOptions broker_options() {
  BrokerOptions o;
  o.topology.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 8}};
  o.topology.connections = {connect_whole("gen", "sink", 20'000'000, "test")};
  o.heartbeat_interval = 100ms;
  o.heartbeat_timeout = 1000ms;
  o.stats_interval = 0ms;
  o.control_rate_hz = 1000;
  o.control_burst = 1000;
  return o;
}

SessionOptions session_options() {
  SessionOptions o;
  o.broker = "tcp://broker.test:5555";
  o.who = "node 'sink'";
  o.heartbeat_interval = 100ms;
  o.broker_timeout = 1000ms;
  o.reconnect_min = 100ms;
  o.reconnect_max = 2000ms;
  o.probe_burst = 8;
  o.resync_interval = 10s;
  o.seed = 42;
  return o;
}

class Session : public ::testing::Test {
 protected:
  Session()
      : clock_(kStart),
        local_(clock_, kOffset, 0.0),
        session_(session_options(), link_, owner_, local_) {
    restart_broker(0xb0b0);
  }

  void restart_broker(uint64_t epoch) {
    broker_.reset();
    out_.sent.clear();
    broker_ = std::make_unique<BrokerCore>(broker_options(), clock_, out_, epoch);
    broker_->on_bound(nullptr, false, clock_.now_ns());
    broker_->start(clock_.now_ns());
  }

  // One turn of both loops with zero latency: the session ticks, what it sent reaches the
  // broker, the broker ticks and flushes, and what it sent to the participant comes back.
  void turn() {
    session_.check_stall(local_.now_ns());
    session_.tick(local_.now_ns());
    for (int round = 0; round < 16 && !link_.to_broker.empty(); ++round) {
      std::deque<std::string> frames;
      frames.swap(link_.to_broker);
      for (const std::string& f : frames) {
        broker_impl::Message m;
        m.routing_id = kRid;
        m.body = {reinterpret_cast<const uint8_t*>(f.data()), f.size()};
        m.peer = "10.0.0.9";
        m.t_recv_ns = clock_.now_ns();
        if (broker_alive_) broker_->on_message(m);
      }
      if (broker_alive_) {
        broker_->flush();
        broker_->tick(clock_.now_ns());
      }
      for (const auto& s : out_.take(kRid)) {
        if (!link_.is_open() || !broker_answers_) continue;
        const Decoded d = codec_.decode({reinterpret_cast<const uint8_t*>(s.frame.data()), s.frame.size()});
        ASSERT_TRUE(d.ok());
        (void)session_.on_frame(d.body, codec_, local_.now_ns());
      }
      session_.tick(local_.now_ns());
    }
    if (broker_alive_) broker_->tick(clock_.now_ns());
  }

  // Steps both sides for `d` in `step` increments.
  void run_for(std::chrono::milliseconds d, std::chrono::milliseconds step = 10ms) {
    for (auto t = 0ms; t < d; t += step) {
      clock_.advance(step);
      turn();
    }
  }

  // A frame from the broker, as if it had been sent (an Error, a Goodbye).
  void from_broker(const std::string& frame) {
    const Decoded d = codec_.decode({reinterpret_cast<const uint8_t*>(frame.data()), frame.size()});
    ASSERT_TRUE(d.ok());
    (void)session_.on_frame(d.body, codec_, local_.now_ns());
  }

  ManualClock clock_;     // network time (the broker's clock)
  SkewedClock local_;     // the participant's clock
  RecordingOutbox out_;
  std::unique_ptr<BrokerCore> broker_;
  bool broker_alive_ = true;    // the broker process runs
  bool broker_answers_ = true;  // what it sends reaches the participant
  LoopLink link_;
  RecordingOwner owner_;
  BrokerSession session_;
  Codec codec_;
};

// DESIGN.md: "a node connects out to the broker, registers, and keeps a clock mapping to network
// time". With a zero-latency link the mapping is exact.
TEST_F(Session, RegistersAndMapsItsClockOntoNetworkTime) {
  run_for(50ms);
  ASSERT_TRUE(session_.registered());
  EXPECT_EQ(owner_.registrations, 1);
  EXPECT_EQ(owner_.restarts, 0);
  EXPECT_EQ(session_.broker_epoch(), 0xb0b0u);
  EXPECT_EQ(session_.broker_timeout_ns(), 1'000'000'000);  // the broker's terms, from the Welcome
  EXPECT_EQ(owner_.syncs, 1);
  const ClockEstimate e = session_.clock_sync().estimate(local_.now_ns());
  ASSERT_TRUE(e.valid);
  EXPECT_EQ(e.offset_ns, -kOffset);
  EXPECT_EQ(session_.clock_sync().to_network(local_.now_ns()), clock_.now_ns());
}

// docs/timing.md: "a burst of probes at registration, then bursts 1 s apart until drift is
// known (three), then one per resync interval".
TEST_F(Session, ProbesComeInBurstsOneSecondApartThenAtTheResyncInterval) {
  run_for(500ms);
  EXPECT_EQ(session_.probes_sent(), 8u);
  run_for(1000ms);  // 1.5 s
  EXPECT_EQ(session_.probes_sent(), 16u);
  run_for(2000ms);  // 3.5 s: bursts at 0, 1, 2, 3 s
  EXPECT_EQ(session_.probes_sent(), 32u);
  run_for(9000ms, 50ms);  // 12.5 s: the next is due at 3 s + 10 s
  EXPECT_EQ(session_.probes_sent(), 32u);
  run_for(1000ms, 50ms);
  EXPECT_EQ(session_.probes_sent(), 40u);
  EXPECT_TRUE(session_.registered()) << "heartbeats kept it alive for 13.5 s";
  EXPECT_GT(owner_.heartbeats, 100);
}

// docs/cli.md: "a refusal is said once, with the broker's reason, and retried slowly".
TEST_F(Session, ARefusalCarriesTheBrokersWordsAndIsRetriedSlowly) {
  owner_.name = "snik";
  run_for(20ms);
  ASSERT_EQ(owner_.refusals.size(), 1u);
  EXPECT_EQ(owner_.refusals[0].kind, RefusalKind::not_in_topology);
  EXPECT_NE(owner_.refusals[0].reason.find("refused node 'sink'"), std::string::npos);
  EXPECT_NE(owner_.refusals[0].reason.find("did you mean 'sink'?"), std::string::npos)
      << owner_.refusals[0].reason;
  EXPECT_FALSE(link_.is_open());
  // Retried at the slowest pace (jittered between half and all of reconnect_max), not at once.
  EXPECT_GE(session_.reconnect_at_ns() - local_.now_ns(), 1'000'000'000 - 20'000'000);
  EXPECT_LE(session_.reconnect_at_ns() - local_.now_ns(), 2'000'000'000);
  const int opens = link_.opens;
  run_for(900ms);
  EXPECT_EQ(link_.opens, opens);
  run_for(1200ms);
  EXPECT_EQ(link_.opens, opens + 1);
  EXPECT_EQ(owner_.registrations, 0);
}

// A handshake the broker cannot answer in words (CURVE against plaintext) is a refusal too.
TEST_F(Session, AFailedHandshakeIsARefusalThatSaysWhatToFix) {
  link_.failure = HandshakeFailure{HandshakeFailure::Kind::mechanism_mismatch, 0};
  broker_answers_ = false;
  run_for(20ms);
  ASSERT_EQ(owner_.refusals.size(), 1u);
  EXPECT_EQ(owner_.refusals[0].kind, RefusalKind::encryption_mismatch);
  EXPECT_NE(owner_.refusals[0].reason.find("requires CURVE encryption"), std::string::npos);
}

// A CURVE broker may reset a plaintext client's connection before the client has read the
// broker's greeting: the link then shows a reset without a reason, again and again. The broker's
// greeting, asked once per connection, names the mismatch ("a refusal the user can act on",
// never "nothing answers").
TEST_F(Session, AHandshakeResetWithoutAReasonIsExplainedByTheBrokersGreeting) {
  broker_answers_ = false;
  link_.up = false;  // the reset dropped the connection
  link_.failure = HandshakeFailure{HandshakeFailure::Kind::other, ECONNRESET};
  run_for(20ms);
  EXPECT_EQ(link_.mechanism_asked, 1);
  EXPECT_TRUE(owner_.refusals.empty()) << "an unreadable greeting is not a diagnosis";
  link_.failure = HandshakeFailure{HandshakeFailure::Kind::other, ECONNRESET};
  run_for(20ms);
  EXPECT_EQ(link_.mechanism_asked, 1) << "asked once per connection, not at every reset";
  run_for(1500ms);  // no Welcome: the session says why and opens a new connection
  ASSERT_TRUE(owner_.refusals.empty());
  link_.mechanism = "CURVE";
  link_.failure = HandshakeFailure{HandshakeFailure::Kind::other, ECONNRESET};
  run_for(20ms);
  EXPECT_EQ(link_.mechanism_asked, 2);
  ASSERT_EQ(owner_.refusals.size(), 1u);
  EXPECT_EQ(owner_.refusals[0].kind, RefusalKind::encryption_mismatch);
  EXPECT_NE(owner_.refusals[0].reason.find("requires CURVE encryption"), std::string::npos);
}

// Liveness, both ways: "a broker silent beyond the timeout is given up and reconnected to".
TEST_F(Session, ASilentBrokerIsGivenUpAndTheSessionComesBackWhenItAnswers) {
  run_for(50ms);
  ASSERT_TRUE(session_.registered());
  const int opens = link_.opens;
  broker_answers_ = false;
  run_for(1100ms);
  EXPECT_FALSE(session_.registered());
  EXPECT_EQ(owner_.unregistrations, 1);
  broker_answers_ = true;
  run_for(500ms);
  EXPECT_GT(link_.opens, opens) << "reconnected after a backoff";
  ASSERT_TRUE(session_.registered());
  EXPECT_EQ(owner_.registrations, 2);
  EXPECT_EQ(owner_.restarts, 0) << "the same broker";
}

// DESIGN.md: "survives broker restarts without manual action"; "a new broker is a new network
// time axis": the clock mapping is reset and made again.
TEST_F(Session, ABrokerRestartTheLinkSawIsARegistrationAtTheNewBrokerAndANewClockMapping) {
  run_for(50ms);
  ASSERT_TRUE(session_.registered());
  restart_broker(0xc0c0);
  link_.disconnects = 1;
  run_for(50ms);
  ASSERT_TRUE(session_.registered());
  EXPECT_EQ(session_.broker_epoch(), 0xc0c0u);
  EXPECT_EQ(owner_.restarts, 1);
  EXPECT_EQ(session_.broker_restarts(), 1u);
  EXPECT_EQ(owner_.syncs, 2) << "synced again on the new axis";
  EXPECT_EQ(owner_.unregistrations, 1) << "nothing is sent between the drop and the Welcome";
}

// The restart the link did not notice (a proxy kept the TCP connection): the new broker does not
// know the participant and says so; the session registers again.
TEST_F(Session, ABrokerRestartTheLinkMissedIsFoundByTheBrokersUnknownNodeAnswer) {
  run_for(50ms);
  ASSERT_TRUE(session_.registered());
  restart_broker(0xd0d0);
  run_for(200ms);  // a heartbeat goes out, the new broker answers UNKNOWN_NODE
  ASSERT_TRUE(session_.registered());
  EXPECT_EQ(session_.broker_epoch(), 0xd0d0u);
  EXPECT_EQ(owner_.restarts, 1);
}

TEST_F(Session, AGoodbyeFromTheBrokerIsAReconnection) {
  run_for(50ms);
  broker_->say_goodbye();
  for (const auto& s : out_.take(kRid)) from_broker(s.frame);
  EXPECT_FALSE(session_.registered());
  EXPECT_FALSE(link_.is_open());
  restart_broker(0xe0e0);
  run_for(300ms);
  EXPECT_TRUE(session_.registered());
  EXPECT_EQ(owner_.restarts, 1);
}

// docs/cli.md: "the live holder keeps its name ... a dead holder is released by its silence";
// a participant whose previous life holds the name waits for that release instead of failing.
TEST_F(Session, ANameHeldByASilentPreviousLifeIsWaitedForThenTaken) {
  v1::Hello h;
  h.set_node_name("sink");
  h.set_protocol_version(kProtocolVersion);
  h.set_input_ports(8);
  h.set_epoch(1);
  std::string f;
  ASSERT_TRUE(codec_.encode(h, f));
  broker_impl::Message m;
  m.routing_id = "r-old";
  m.body = {reinterpret_cast<const uint8_t*>(f.data()), f.size()};
  m.peer = "10.0.0.9";
  m.t_recv_ns = clock_.now_ns();
  broker_->on_message(m);  // the previous life registered, then went silent (killed)
  (void)out_.take("r-old");
  run_for(200ms);
  EXPECT_FALSE(session_.registered());
  EXPECT_TRUE(owner_.refusals.empty()) << owner_.refusals[0].reason;
  run_for(1500ms);  // the broker releases the silent holder after its heartbeat timeout
  EXPECT_TRUE(session_.registered());
  EXPECT_TRUE(owner_.refusals.empty());
}

TEST_F(Session, ANameHeldByALiveConnectionIsARefusalAfterTheWait) {
  auto deliver_as_holder = [&](const std::string& f) {
    broker_impl::Message m;
    m.routing_id = "r-holder";
    m.body = {reinterpret_cast<const uint8_t*>(f.data()), f.size()};
    m.peer = "10.0.0.7";
    m.t_recv_ns = clock_.now_ns();
    broker_->on_message(m);
    (void)out_.take("r-holder");
  };
  v1::Hello h;
  h.set_node_name("sink");
  h.set_protocol_version(kProtocolVersion);
  h.set_input_ports(8);
  h.set_epoch(1);
  std::string f;
  ASSERT_TRUE(codec_.encode(h, f));
  deliver_as_holder(f);
  v1::Heartbeat hb;
  std::string beat;
  for (int i = 0; i < 40 && owner_.refusals.empty(); ++i) {  // the holder stays alive
    hb.set_sent_ns(clock_.now_ns());
    ASSERT_TRUE(codec_.encode(hb, beat));
    deliver_as_holder(beat);
    run_for(100ms);
  }
  ASSERT_EQ(owner_.refusals.size(), 1u);
  EXPECT_EQ(owner_.refusals[0].kind, RefusalKind::name_in_use);
  EXPECT_NE(owner_.refusals[0].reason.find("held by a live connection from 10.0.0.7"), std::string::npos)
      << owner_.refusals[0].reason;
  EXPECT_EQ(owner_.registrations, 0);
}

// Restart.AFrozenNodeRegistersAgainBeforeSendingWhatItKept, without the frozen process: a loop
// that did not turn for longer than the broker's timeout registers again before sending.
TEST_F(Session, AStalledLoopRegistersAgainBeforeSending) {
  run_for(50ms);
  ASSERT_TRUE(session_.registered());
  clock_.advance(1500ms);  // SIGSTOP: neither the session nor its heartbeats ran
  broker_->tick(clock_.now_ns());  // meanwhile the broker let the participant go
  session_.check_stall(local_.now_ns());
  EXPECT_FALSE(session_.registered()) << "nothing may be sent before the broker knows it again";
  EXPECT_EQ(owner_.unregistrations, 1);
  run_for(20ms);
  EXPECT_TRUE(session_.registered());
  EXPECT_EQ(owner_.registrations, 2);
}

// "Nothing answers": no Welcome within the timeout closes the link and retries with a backoff
// that grows (jittered between half and all of min << attempt) up to reconnect_max.
TEST_F(Session, NoAnswerRetriesWithAGrowingBackoff) {
  link_.up = false;
  std::vector<int64_t> gaps;
  int64_t last_open = local_.now_ns();
  int opens = 0;
  for (int i = 0; i < 1200 && gaps.size() < 6; ++i) {
    clock_.advance(10ms);
    turn();
    if (link_.opens != opens) {
      if (opens > 0) gaps.push_back(local_.now_ns() - last_open);
      opens = link_.opens;
      last_open = local_.now_ns();
    }
  }
  ASSERT_EQ(gaps.size(), 6u);
  // Each gap is the 1 s timeout plus the backoff: min(100 ms << attempt, 2 s) times a jitter
  // in [0.5, 1], to within the 10 ms steps.
  const int64_t backoff_ms[] = {100, 200, 400, 800, 1600, 2000};
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], 1'000'000'000 + backoff_ms[i] * 500'000) << i;
    EXPECT_LE(gaps[i], 1'000'000'000 + backoff_ms[i] * 1'000'000 + 20'000'000) << i;
  }
  EXPECT_GT(gaps[4], gaps[0]) << "the backoff grows";
  EXPECT_EQ(owner_.registrations, 0);
}

}  // namespace
}  // namespace ion
