// The chaos run (label `chaos`, opt-in, about 10 minutes): three labs through the emulated WAN
// while the broker is killed (-9) and restarted every minute, one lab's process is frozen and
// continued, an intruder claims a live lab's name, and a second recorder comes and goes. At the
// end, from the counters and the recording: received + lost = emitted for every stream, every
// late delivery was flagged and counted, and the intruder changed nothing.
//   ION_CHAOS_SECONDS (default 600) and ION_CHAOS_PERIOD_S (default 60) shorten it.
// Figures: docs/security.md, "Chaos run".
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <regex>

#include "../integration/harness.h"
#include "../integration/recorder_runner.h"
#include "cli/audit.h"
#include "ion/linkem/link_emulator.h"
#include "cli/record.h"

namespace ion::test {
namespace {

std::string tmp(const std::string& name) { return ::testing::TempDir() + "/chaos-" + name; }

double env_or(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtod(v, nullptr) : fallback;
}

// A lab that both emits (Poisson spikes on its channels) and receives (on its ports), like a
// culture that fires and is stimulated: the generator and the sink in one device.
class LabDriver final : public Driver {
 public:
  LabDriver(uint32_t channels, double rate_hz, uint32_t ports, uint64_t seed)
      : gen_(GeneratorOptions{.channels = channels, .rate_hz = rate_hz, .seed = seed, .batch_interval = std::chrono::microseconds(1000), .max_events = 0, .stream = 0}),
        sink_(SinkOptions{ports}) {}
  DriverInfo describe() const override {
    DriverInfo i = gen_.describe();
    i.input_ports = sink_.describe().input_ports;
    return i;
  }
  void start(Emitter& e) override { gen_.start(e); }
  void stop() noexcept override { gen_.stop(); }
  void deliver(const BatchHeader& h, const EventBatch& e, const Delivery& d) noexcept override {
    sink_.deliver(h, e, d);
  }
  std::map<std::string, int64_t> counters() const override {
    auto c = gen_.counters();
    for (const auto& [k, v] : sink_.counters()) c["in_" + k] = v;
    return c;
  }
  void stop_emitting() { gen_.stop(); }
  const SinkDriver& sink() const { return sink_; }

 private:
  GeneratorDriver gen_;
  SinkDriver sink_;
};

struct Lab {
  std::string name;
  std::unique_ptr<linkem::LinkEmulator> link;  // null: on the broker's own machine
  LabDriver* lab = nullptr;
  AuditDriver* audit = nullptr;
  std::unique_ptr<NodeRunner<AuditDriver>> node;
};

TEST(Chaos, ThreeLabsThroughBrokerKillsAFrozenLabAnIntruderAndASecondRecorder) {
  const double total_s = env_or("ION_CHAOS_SECONDS", 600);
  const double period_s = env_or("ION_CHAOS_PERIOD_S", 60);
  const int port = free_port();
  const std::string broker_ep = "tcp://127.0.0.1:" + std::to_string(port);
  write_file(tmp("topo.yaml"),
             "nodes:\n"
             "  padova: {kind: mea, channels: 60, ports: 4}\n"
             "  zurich: {kind: chip, channels: 16, ports: 60}\n"
             "  southampton: {kind: synapse, channels: 4, ports: 16}\n"
             "  bristol: {kind: generator, channels: 8}\n"
             "  bristol-sink: {kind: sink, ports: 8}\n"
             "connections:\n"
             "  - {from: 'padova:*', to: 'zurich:*', delay: 100ms}\n"
             "  - {from: 'zurich:*', to: 'southampton:*', delay: 100ms}\n"
             "  - {from: 'southampton:*', to: 'padova:*', delay: 100ms}\n"
             "  - {from: 'bristol:*', to: 'bristol-sink:*', delay: 100ms}\n");
  write_file(tmp("broker.yaml"), "broker:\n  topology: " + tmp("topo.yaml") +
                                     "\n  heartbeat_interval: 200ms\n  heartbeat_timeout: 2s\n"
                                     "  stats_interval: 0s\n  startup_grace: 10s\n");
  int restarts = 0;
  auto start_broker = [&] {
    return std::make_unique<Child>(
        std::vector<std::string>{ION_BROKER_BIN, "--config", tmp("broker.yaml"), "--listen", broker_ep},
        tmp("broker-" + std::to_string(restarts) + ".log"));
  };
  auto broker = start_broker();

  // The labs: Padova and Zurich behind their sites' emulated WAN links, Southampton at the hub.
  std::vector<Lab> labs;
  const struct {
    const char* name;
    uint32_t channels;
    double rate_hz;
    uint32_t ports;
    const char* preset;
  } specs[] = {{"padova", 60, 5.0, 4, "southampton-padova"},
               {"zurich", 16, 20.0, 60, "southampton-zurich"},
               {"southampton", 4, 50.0, 16, nullptr}};
  uint64_t seed = 1;
  for (const auto& sp : specs) {
    Lab l;
    l.name = sp.name;
    std::string ep = broker_ep;
    if (sp.preset != nullptr) {
      l.link = std::make_unique<linkem::LinkEmulator>(*linkem::LinkProfile::preset(sp.preset),
                                                       "127.0.0.1:0", broker_ep, seed);
      ep = l.link->endpoint();
    }
    auto lab = std::make_unique<LabDriver>(sp.channels, sp.rate_hz, sp.ports, seed++);
    l.lab = lab.get();
    // The demo's tolerances: twice the playout's 5 ms precision (the node checks the clock
    // before it hands over, the audit after), and 1 ms for clock-estimate steps.
    auto audit = std::make_unique<AuditDriver>(std::move(lab), 10'000'000, 1'000'000);
    l.audit = audit.get();
    NodeOptions o = node_options(sp.name, ep);
    o.exit_on_refusal = true;
    o.send_queue_frames = 1 << 16;  // the outages' backlog fits (~3 s per minute)
    l.node = std::make_unique<NodeRunner<AuditDriver>>(o, std::move(audit));
    labs.push_back(std::move(l));
  }
  // Bristol: a lab whose process is frozen (SIGSTOP) and continued; its sink at the hub.
  NodeRunner<SinkDriver> bristol_sink(node_options("bristol-sink", broker_ep), sink(8));
  write_file(tmp("bristol.yaml"), "node:\n  name: bristol\n  broker: " + broker_ep +
                                      "\n  send_queue_frames: 65536\ndriver:\n  kind: generator\n"
                                      "  channels: 8\n  rate_hz: 25\n  seed: 9\n");
  Child bristol({ION_NODE_BIN, "--config", tmp("bristol.yaml")}, tmp("bristol.log"));
  for (auto& l : labs) ASSERT_TRUE(l.node->node().wait_registered(1, 20s)) << l.name;
  ASSERT_TRUE(bristol_sink.node().wait_registered(1, 20s));

  RecordOptions ro;
  ro.broker = broker_ep;
  ro.out = tmp("session.ionrec");
  std::filesystem::remove(ro.out);
  ro.name = "recorder";
  ro.status_interval = 1000ms;
  RecorderRunner rec(ro);

  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const auto emitted_total = [&] {
    uint64_t n = 0;
    for (auto& l : labs) n += l.node->stats().emitted_events;
    return n;
  };
  bool froze = false;
  bool intruded = false;
  bool second_recorded = false;
  int intruder_rc = -1;
  std::string intruder_out;
  int second_rc = -1;
  RecordSummary second_sum;
  double next_kill = period_s;
  while (elapsed() < total_s) {
    const double now = elapsed();
    if (now >= next_kill) {  // kill -9, an outage of about 2 s of traffic, restart
      broker->signal(SIGKILL);
      (void)broker->wait();
      const uint64_t at_kill = emitted_total();
      ASSERT_TRUE(eventually([&] { return emitted_total() > at_kill + 300; }, 20s));
      ++restarts;
      broker = start_broker();
      next_kill += period_s;
      continue;
    }
    const double phase = now - (next_kill - period_s);  // seconds since the last (re)start
    if (!froze && now > 0.25 * period_s && phase > 15) {  // freeze Bristol 5 s, then continue it
      froze = true;
      bristol.signal(SIGSTOP);
      const uint64_t at = emitted_total();
      ASSERT_TRUE(eventually([&] { return emitted_total() > at + 500; }, 20s));  // ~5 s
      bristol.signal(SIGCONT);
      continue;
    }
    if (!intruded && froze && phase > 20 && labs[0].node->stats().registered) {
      intruded = true;  // another process claims the live 'padova'
      write_file(tmp("intruder.yaml"), "node:\n  name: padova\n  broker: " + broker_ep +
                                           "\ndriver:\n  kind: generator\n  channels: 60\n  rate_hz: 500\n");
      Child intruder({ION_NODE_BIN, "--config", tmp("intruder.yaml")}, tmp("intruder.log"));
      intruder_rc = intruder.wait();
      intruder_out = intruder.output();
      continue;
    }
    if (!second_recorded && intruded && phase > 25) {
      second_recorded = true;  // a second recorder (default name) comes and goes
      RecordOptions r2 = ro;
      r2.name.clear();
      r2.out = tmp("second.ionrec");
      std::filesystem::remove(r2.out);
      RecorderRunner second(r2);
      const uint64_t at = emitted_total();
      (void)eventually([&] { return emitted_total() > at + 1000; }, 30s);
      second_sum = second.stop();
      second_rc = second.rc();
      continue;
    }
    std::this_thread::sleep_for(100ms);  // the scenario's clock, not a wait for an event
  }

  // Stop every source, let everything in flight arrive, then account.
  for (auto& l : labs) l.lab->stop_emitting();
  bristol.signal(SIGTERM);
  ASSERT_EQ(bristol.wait(), 0) << bristol.output();
  std::smatch m;
  const std::string bout = bristol.output();
  ASSERT_TRUE(std::regex_search(bout, m, std::regex(R"(node stopped: emitted=(\d+))"))) << bout;
  const uint64_t bristol_emitted = std::stoull(m[1]);
  struct Stream {
    std::string from, to;
    uint64_t emitted;
    std::function<NodeStats()> target;
  };
  const std::vector<Stream> streams = {
      {"padova", "zurich", labs[0].node->stats().emitted_events, [&] { return labs[1].node->stats(); }},
      {"zurich", "southampton", labs[1].node->stats().emitted_events, [&] { return labs[2].node->stats(); }},
      {"southampton", "padova", labs[2].node->stats().emitted_events, [&] { return labs[0].node->stats(); }},
      {"bristol", "bristol-sink", bristol_emitted, [&] { return bristol_sink.stats(); }},
  };
  for (const auto& s : streams) {
    (void)eventually([&] {
      const NodeStats t = s.target();
      return t.received_events + t.lost_events >= s.emitted;
    }, 30s);
  }
  const RecordSummary rec_sum = rec.stop();

  uint64_t emitted_all = 0;
  uint64_t lost_all = 0;
  uint64_t late_all = 0;
  for (const auto& s : streams) {
    const NodeStats t = s.target();
    emitted_all += s.emitted;
    lost_all += t.lost_events;
    late_all += t.late_events + t.playout_overrun;
    std::printf("FIGURES chaos stream %s -> %s: emitted %llu, received %llu, lost %llu, late %llu "
                "(overrun %llu), late dropped %llu\n",
                s.from.c_str(), s.to.c_str(), static_cast<unsigned long long>(s.emitted),
                static_cast<unsigned long long>(t.received_events), static_cast<unsigned long long>(t.lost_events),
                static_cast<unsigned long long>(t.late_events), static_cast<unsigned long long>(t.playout_overrun),
                static_cast<unsigned long long>(t.late_dropped));
    EXPECT_EQ(t.received_events + t.lost_events, s.emitted) << s.from << " -> " << s.to;
    EXPECT_EQ(t.duplicate_or_reordered, 0u) << s.to;
  }
  for (auto& l : labs) {
    const AuditCounts a = l.audit->counts();
    EXPECT_EQ(a.late_uncounted, 0u) << l.name << ": handed over late without the flag";
    EXPECT_EQ(a.early, 0u) << l.name;
    EXPECT_EQ(a.out_of_order, 0u) << l.name;
    const NodeStats s = l.node->stats();
    EXPECT_EQ(a.flagged_late, s.late_events - s.late_dropped + s.playout_overrun)
        << l.name << ": every flagged delivery is in a counter";
    EXPECT_EQ(s.source_restarts, 0u) << l.name << ": no foreign stream merged into a source";
  }
  EXPECT_EQ(bristol_sink.driver().early(), 0u);
  EXPECT_TRUE(froze && intruded && second_recorded) << "the run was too short for every scene";
  EXPECT_EQ(intruder_rc, 2) << intruder_out;
  EXPECT_NE(intruder_out.find("held by a live connection"), std::string::npos) << intruder_out;
  EXPECT_EQ(second_rc, 0);
  EXPECT_GT(second_sum.events, 0u);
  EXPECT_EQ(rec.rc(), 0) << rec.log();
  const uint64_t recordable = emitted_all;
  std::printf("FIGURES chaos run %.0f s, %d broker kills: emitted %llu, lost %llu (%.4f %%), late %llu; "
              "recorded %llu (%.3f %% of emitted); second recorder %llu events; intruder exit %d\n",
              elapsed(), restarts, static_cast<unsigned long long>(emitted_all),
              static_cast<unsigned long long>(lost_all), 100.0 * static_cast<double>(lost_all) / static_cast<double>(emitted_all),
              static_cast<unsigned long long>(late_all), static_cast<unsigned long long>(rec_sum.events),
              100.0 * static_cast<double>(rec_sum.events) / static_cast<double>(recordable),
              static_cast<unsigned long long>(second_sum.events), intruder_rc);
  broker->signal(SIGTERM);
  EXPECT_EQ(broker->wait(), 0);
}

}  // namespace
}  // namespace ion::test
