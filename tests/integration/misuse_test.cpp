// Mistakes a lab makes every week, and what each must end in: a clear message and a non-zero
// exit for the one who made it, nothing lost or hidden for everyone else.
// DESIGN promises: "a participant's identity is what it authenticated as"; "loss is part of the
// API, never hidden". Issue-level promises: one holder per name; refusals explained to the
// refused; an output never destroys an input; arguments are checked.
#include <algorithm>
#include <csignal>
#include <filesystem>

#include "harness.h"
#include "recorder_runner.h"
#include "ion/core/dataset.h"
#include "cli/record.h"

namespace ion::test {
namespace {

std::string tmp(const std::string& name) { return ::testing::TempDir() + "/misuse-" + name; }

std::string hello_with_epoch(const std::string& name, uint32_t channels, uint64_t epoch,
                             bool replace = false) {
  v1::Hello h;
  h.set_node_name(name);
  h.set_protocol_version(kProtocolVersion);
  h.set_output_channels(channels);
  h.set_epoch(epoch);
  h.set_replace(replace);
  Codec c;
  std::string out;
  EXPECT_TRUE(c.encode(h, out));
  return out;
}

// The next Welcome or Error a raw peer gets: "welcome", or the error's message.
std::string answer(RawPeer& p, Codec& codec, std::chrono::milliseconds timeout = 3s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const auto m = p.recv(100ms);
    if (!m) continue;
    const Decoded d = codec.decode({reinterpret_cast<const uint8_t*>(m->data()), m->size()});
    if (d.body == Body::welcome) return "welcome";
    if (d.body == Body::error) return codec.error().message();
  }
  return "<no answer>";
}

Topology gen_sink() {
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}};
  t.connections = {connect_all("gen", "sink")};
  return t;
}

uint64_t tap_events(BrokerRunner& b, const std::string& name) {
  for (const auto& t : b.broker().tap_stats()) {
    if (t.name == name) return t.events_out;
  }
  return 0;
}

// --- 1. One holder per identity ---

TEST(Identity, ALiveNameIsRefusedToASecondProcessAndItsHolderLosesNothing) {
  BrokerRunner broker(broker_options(gen_sink()));
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  constexpr uint64_t kEvents = 2000;
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()),
                                  generator(4, 200.0, kEvents, 1));
  ASSERT_TRUE(gen.node().wait_registered(1, 10s));

  NodeOptions io = node_options("gen", broker.endpoint());
  io.exit_on_refusal = true;
  NodeRunner<GeneratorDriver> intruder(io, generator(4, 500.0, 0, 2));
  Refusal why;
  ASSERT_EQ(intruder.node().wait_registration(1, 10s, &why), Registration::refused);
  EXPECT_EQ(why.kind, RefusalKind::name_in_use);
  EXPECT_NE(why.reason.find("'gen' is held by a live connection from 127.0.0.1"), std::string::npos)
      << why.reason;
  EXPECT_NE(why.reason.find("--replace"), std::string::npos) << why.reason;

  ASSERT_TRUE(eventually([&] {
    return gen.driver().finished() && snk.stats().received_events == kEvents;
  }, 30s)) << snk.stats().received_events;
  EXPECT_EQ(snk.stats().lost_events, 0u);
  EXPECT_EQ(broker.stats("gen").registrations, 1u) << "the holder was never displaced";
  EXPECT_EQ(broker.stats("gen").events_in, kEvents) << "nothing of the intruder's was merged in";
  EXPECT_GE(broker.broker().rejects().get(Reject::name_in_use), 1u);
  EXPECT_FALSE(intruder.stats().registered);
}

TEST(Identity, ReplaceTakesTheNameOverAndTheHolderIsToldAndStops) {
  BrokerRunner broker(broker_options(gen_sink()));
  NodeOptions ho = node_options("gen", broker.endpoint());
  ho.exit_on_refusal = true;
  NodeRunner<GeneratorDriver> holder(ho, generator(4, 100.0, 0, 1));
  ASSERT_TRUE(holder.node().wait_registered(1, 10s));
  NodeOptions co = node_options("gen", broker.endpoint());
  co.replace = true;
  NodeRunner<GeneratorDriver> claimant(co, generator(4, 100.0, 0, 2));
  ASSERT_TRUE(claimant.node().wait_registered(1, 10s));
  ASSERT_TRUE(eventually([&] { return holder.node().last_refusal().kind == RefusalKind::name_in_use; }, 10s));
  EXPECT_NE(holder.node().last_refusal().reason.find("taken over by a connection from 127.0.0.1"),
            std::string::npos)
      << holder.node().last_refusal().reason;
  // The claimant keeps the name: the displaced holder does not come back and fight for it.
  const uint64_t regs = broker.stats("gen").registrations;
  ASSERT_TRUE(eventually([&] { return claimant.stats().emitted_events > 200; }, 10s));
  EXPECT_EQ(broker.stats("gen").registrations, regs);
  EXPECT_TRUE(claimant.stats().registered);
}

TEST(Identity, TheSameProcessOnANewConnectionKeepsItsNameAndASilentHolderIsReleased) {
  BrokerRunner broker(broker_options(gen_sink()));  // heartbeat_timeout 2 s
  Codec codec;
  RawPeer first(broker.endpoint());
  first.send(hello_with_epoch("gen", 4, 777));
  ASSERT_EQ(answer(first, codec), "welcome");
  RawPeer again(broker.endpoint());  // same process (epoch), new connection: a reconnect
  again.send(hello_with_epoch("gen", 4, 777));
  ASSERT_EQ(answer(again, codec), "welcome");
  RawPeer other(broker.endpoint());  // another process
  other.send(hello_with_epoch("gen", 4, 888));
  const std::string refused = answer(other, codec);
  EXPECT_NE(refused.find("held by a live connection"), std::string::npos) << refused;
  // The holder goes silent: after heartbeat_timeout it is declared gone and the name is free.
  ASSERT_TRUE(eventually([&] {
    other.send(hello_with_epoch("gen", 4, 888));
    return answer(other, codec, 300ms) == "welcome";
  }, 10s));
  EXPECT_EQ(broker.stats("gen").timeouts, 1u);
}

TEST(Identity, ANodeRestartedRightAfterItDiedWaitsForItsOldSelfToBeReleased) {
  BrokerRunner broker(broker_options(gen_sink()));  // heartbeat_timeout 2 s
  Codec codec;
  {
    RawPeer dead(broker.endpoint());  // registers, then dies without a goodbye (kill -9)
    dead.send(hello_with_epoch("gen", 4, 4242));
    ASSERT_EQ(answer(dead, codec), "welcome");
  }
  NodeOptions o = node_options("gen", broker.endpoint());
  o.exit_on_refusal = true;
  NodeRunner<GeneratorDriver> restarted(o, generator(4, 100.0, 0));
  Refusal why;
  EXPECT_EQ(restarted.node().wait_registration(1, 10s, &why), Registration::registered) << why.reason;
  EXPECT_EQ(broker.stats("gen").timeouts, 1u) << "the old holder was released by its silence";
}

TEST(Identity, RecordersNeverContendByDefaultAndAnExplicitDuplicateIsRefused) {
  BrokerRunner broker(broker_options(gen_sink()));
  std::vector<std::unique_ptr<RecorderRunner>> runs;  // each stops on any exit from the test
  const auto start = [&](const std::string& name, const std::string& file) {
    RecordOptions ro;
    ro.broker = broker.endpoint();
    ro.out = tmp(file);
    std::filesystem::remove(ro.out);
    ro.name = name;
    ro.status_interval = 200ms;
    runs.push_back(std::make_unique<RecorderRunner>(ro));
    return runs.back().get();
  };
  RecorderRunner* a = start("", "a.ionrec");  // default names: recorder-HOST-PID... twice in one process
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s));
  RecorderRunner* b = start("", "b.ionrec");
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 2; }, 10s));
  RecorderRunner* named = start("lab-recorder", "named.ionrec");
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 3; }, 10s));
  RecorderRunner* dup = start("lab-recorder", "dup.ionrec");
  EXPECT_EQ(dup->wait(), 2);  // a refused recorder ends at once
  EXPECT_NE(dup->log().find("'lab-recorder' is held by a live connection"), std::string::npos)
      << dup->log();

  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  constexpr uint64_t kEvents = 1500;
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(4, 200.0, kEvents));
  ASSERT_TRUE(eventually([&] { return gen.driver().finished() && snk.stats().received_events == kEvents; }, 30s));
  ASSERT_TRUE(eventually([&] { return tap_events(broker, "lab-recorder") == kEvents; }, 10s));
  std::vector<std::string> names;
  for (const auto& t : broker.broker().tap_stats()) names.push_back(t.name);
  for (const auto& n : names) {
    ASSERT_TRUE(eventually([&] { return tap_events(broker, n) == kEvents; }, 10s)) << n;
  }
  for (RecorderRunner* r : {a, b, named}) {
    const RecordSummary sum = r->stop();
    EXPECT_EQ(r->rc(), 0) << r->log();
    EXPECT_EQ(sum.events, kEvents) << r->log();
    EXPECT_EQ(sum.tap_gap_batches, 0u);
  }
  EXPECT_NE(names[0], names[1]);
  EXPECT_EQ(names[0].rfind("recorder-", 0), 0u) << names[0];
}

// --- 3. Refusals explained to the refused (the daemons as a user runs them) ---

std::string node_yaml(const std::string& name, const std::string& broker, const std::string& extra = "") {
  return "node:\n  name: " + name + "\n  broker: " + broker + "\n" + extra +
         "driver:\n  kind: generator\n  channels: 4\n  rate_hz: 50\n";
}

size_t count_lines_with(const std::string& text, const std::string& needle) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos ? 1 : 0;
  return n;
}

TEST(Refusals, ASecondDaemonUnderALiveNameExitsTwoNamingTheHolder) {
  BrokerRunner broker(broker_options(gen_sink()));
  write_file(tmp("gen.yaml"), node_yaml("gen", broker.endpoint()));
  Child holder({ION_NODE_BIN, "--config", tmp("gen.yaml")}, tmp("holder.log"));
  ASSERT_TRUE(eventually([&] { return broker.stats("gen").registrations == 1; }, 10s));
  Child second({ION_NODE_BIN, "--config", tmp("gen.yaml")}, tmp("second.log"));
  EXPECT_EQ(second.wait(), 2) << second.output();
  EXPECT_EQ(count_lines_with(second.output(), "held by a live connection from 127.0.0.1"), 1u)
      << second.output();
  EXPECT_FALSE(holder.try_wait().has_value()) << "the holder keeps running";
  EXPECT_EQ(broker.stats("gen").registrations, 1u);
  holder.signal(SIGTERM);
  EXPECT_EQ(holder.wait(), 0) << holder.output();
}

TEST(Refusals, AMistypedNameExitsTwoWithTheClosestNamesAndTheBrokerLogsThePeer) {
  const int port = free_port();
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(port);
  write_file(tmp("topo.yaml"),
             "nodes:\n  gen: {kind: generator, channels: 4}\n  sink: {kind: sink, ports: 4}\n"
             "connections:\n  - {from: \"gen:*\", to: [\"sink:*\"], delay: 20ms}\n");
  write_file(tmp("broker.yaml"), "broker:\n  listen: " + ep + "\n  topology: " + tmp("topo.yaml") + "\n");
  Child b({ION_BROKER_BIN, "--config", tmp("broker.yaml")}, tmp("broker.log"));
  write_file(tmp("gne.yaml"), node_yaml("gne", ep));
  Child n({ION_NODE_BIN, "--config", tmp("gne.yaml")}, tmp("gne.log"));
  EXPECT_EQ(n.wait(), 2) << n.output();
  EXPECT_EQ(count_lines_with(n.output(), "did you mean 'gen'?"), 1u) << n.output();
  EXPECT_NE(n.output().find("is not in this broker's topology"), std::string::npos) << n.output();
  ASSERT_TRUE(eventually([&] { return b.output().find("refused a Hello as 'gne' from 127.0.0.1") != std::string::npos; }, 5s))
      << b.output();
}

TEST(Refusals, NothingListeningIsSaidOnceThenRetriedQuietly) {
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(free_port());
  write_file(tmp("alone.yaml"),
             node_yaml("gen", ep, "  broker_timeout: 200ms\n  reconnect_min: 10ms\n  reconnect_max: 40ms\n"));
  Child n({ION_NODE_BIN, "--config", tmp("alone.yaml"), "--log-level", "debug"}, tmp("alone.log"));
  ASSERT_TRUE(eventually([&] { return count_lines_with(n.output(), "(retrying") >= 4; }, 15s))
      << n.output();
  const std::string out = n.output();
  EXPECT_EQ(count_lines_with(out, "retrying quietly"), 1u) << out;
  EXPECT_NE(out.find("nothing answers at " + ep + " (no broker listening there"), std::string::npos) << out;
  n.signal(SIGTERM);
  EXPECT_EQ(n.wait(), 0) << "stopped by the user, never refused: " << n.output();
}

TEST(Refusals, AnEndpointWithoutASchemeIsAOneLineError) {
  write_file(tmp("noscheme.yaml"), node_yaml("gen", "127.0.0.1:5555"));
  Child n({ION_NODE_BIN, "--config", tmp("noscheme.yaml")}, tmp("noscheme.log"));
  EXPECT_EQ(n.wait(), 2);
  EXPECT_NE(n.output().find("'127.0.0.1:5555' has no scheme: write tcp://127.0.0.1:5555"),
            std::string::npos)
      << n.output();
  Child s({ION_TOOL_BIN, "status", "--broker", "localhost:5555"}, tmp("noscheme-status.log"));
  EXPECT_EQ(s.wait(), 2);
  EXPECT_NE(s.output().find("has no scheme"), std::string::npos) << s.output();
}

// --- 5. An output never destroys an input ---

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class Outputs : public ::testing::Test {
 protected:
  void SetUp() override {
    // One folder per test: ctest runs these tests in parallel processes.
    dir_ = tmp(std::string("outputs-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/sub");
    std::string csv = "channel,time_s\n";
    for (int i = 0; i < 40; ++i) csv += std::to_string(i % 4) + "," + std::to_string(0.01 * i) + "\n";
    write_file(dir_ + "/spikes.csv", csv);
    Child c({ION_TOOL_BIN, "import", "csv", dir_ + "/spikes.csv", "-o", dir_ + "/rec.ionrec"},
            dir_ + "/import.log");
    ASSERT_EQ(c.wait(), 0) << c.output();
    before_ = read_all(dir_ + "/rec.ionrec");
    ASSERT_FALSE(before_.empty());
  }
  int run(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), ION_TOOL_BIN);
    Child c(args, dir_ + "/cmd.log");
    const int rc = c.wait();
    if (out != nullptr) *out = c.output();
    return rc;
  }
  std::string dir_;
  std::string before_;
};

TEST_F(Outputs, ReplayIntoItsOwnInputIsRefusedWhateverTheSpelling) {
  const std::string rec = dir_ + "/rec.ionrec";
  for (const std::string& to : {rec, dir_ + "/sub/../rec.ionrec", dir_ + "/./rec.ionrec"}) {
    std::string out;
    EXPECT_EQ(run({"replay", rec, "--to", to}, &out), 2) << to;
    EXPECT_NE(out.find("is this command's input"), std::string::npos) << out;
    EXPECT_EQ(read_all(rec), before_) << "the input recording changed";
  }
  std::string out;
  EXPECT_EQ(run({"replay", rec, "--to", rec, "--force"}, &out), 2) << "--force never replaces an input";
  std::filesystem::create_hard_link(rec, dir_ + "/link.ionrec");
  EXPECT_EQ(run({"replay", rec, "--to", dir_ + "/link.ionrec", "--force"}, &out), 2) << out;
  EXPECT_EQ(read_all(rec), before_);
}

TEST_F(Outputs, AnExistingFileIsReplacedOnlyWithForce) {
  const std::string rec = dir_ + "/rec.ionrec";
  write_file(dir_ + "/old.csv", "keep me\n");
  std::string out;
  EXPECT_EQ(run({"export", rec, "--format", "csv", "-o", dir_ + "/old.csv"}, &out), 2);
  EXPECT_NE(out.find("exists: choose another name, or give --force"), std::string::npos) << out;
  EXPECT_EQ(read_all(dir_ + "/old.csv"), "keep me\n");
  EXPECT_EQ(run({"export", rec, "--format", "csv", "-o", dir_ + "/old.csv", "--force"}, &out), 0) << out;
  EXPECT_NE(read_all(dir_ + "/old.csv"), "keep me\n");
  EXPECT_EQ(run({"export", rec, "--format", "csv", "-o", rec, "--force"}), 2);
  EXPECT_EQ(run({"import", "csv", dir_ + "/spikes.csv", "-o", dir_ + "/spikes.csv", "--force"}), 2);
  EXPECT_EQ(run({"import", "csv", dir_ + "/spikes.csv", "-o", rec}), 2);
  EXPECT_EQ(run({"report", rec, "-o", rec, "--force"}), 2);
  EXPECT_EQ(run({"record", "--broker", "tcp://127.0.0.1:1", "-o", rec}, &out), 2);
  EXPECT_NE(out.find("exists"), std::string::npos) << out;
  EXPECT_EQ(read_all(rec), before_);
}

TEST_F(Outputs, AMissingFolderIsMadeAndAFileInTheWayIsAOneLineError) {
  // README: `ion record ... -o recordings/session.ionrec` on a fresh clone.
  const std::string rec = dir_ + "/rec.ionrec";
  std::string out;
  EXPECT_EQ(run({"export", rec, "--format", "csv", "-o", dir_ + "/new/sub/x.csv"}, &out), 0) << out;
  EXPECT_TRUE(std::filesystem::is_regular_file(dir_ + "/new/sub/x.csv"));
  write_file(dir_ + "/plain", "a file\n");
  EXPECT_EQ(run({"export", rec, "--format", "csv", "-o", dir_ + "/plain/x.csv"}, &out), 2);
  EXPECT_NE(out.find("cannot make the folder '" + dir_ + "/plain'"), std::string::npos) << out;
  EXPECT_EQ(count_lines_with(out, "ion"), 1u) << out;
  EXPECT_EQ(read_all(dir_ + "/plain"), "a file\n");
}

// --- 7. Untrusted files: a corrupt HDF5 file found by tests/fuzz/fuzz_hdf5.cpp makes libhdf5
// 1.10 itself crash (SIGSEGV in its global-heap reader). `ion import` contains it: one line,
// status 2, no output file, never a crash of `ion` (docs/security.md, Fuzzing).
TEST(Untrusted, AnHdf5FileThatCrashesTheLibraryIsAOneLineError) {
  const std::string out = tmp("segfault.ionrec");
  std::filesystem::remove(out);
  Child c({ION_TOOL_BIN, "import", "sjemea", std::string(ION_SOURCE_DIR) + "/tests/data/libhdf5-segfault.h5",
           "-o", out},
          tmp("segfault.log"));
  EXPECT_EQ(c.wait(), 2) << c.output();
  const std::string text = c.output();
  EXPECT_EQ(count_lines_with(text, "libhdf5-segfault.h5"), 1u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_FALSE(std::filesystem::exists(out));
}

// --- 6. Arguments are checked ---

TEST_F(Outputs, ReplayArgumentsAreCheckedWithOneLineErrors) {
  const std::string rec = dir_ + "/rec.ionrec";
  const std::string to = dir_ + "/out.ionrec";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--speed", "0"}, "--speed must be within 0.001-1000"},
      {{"--speed", "5000"}, "--speed must be within 0.001-1000"},
      {{"--start", "1000"}, "--start 1000 s is beyond the end of"},
      {{"--start", "-1"}, "--start must be a number of seconds >= 0"},
      {{"--remap", "0:1,1:1"}, "would both become channel 1"},
      {{"--remap", "0:2"}, "channels 2 and 0 of 'spikes' would both become channel 2"},
      {{"--remap", "0:1,0:2"}, "channel 0 is mapped twice"},
      {{"--remap", "9:0"}, "channel 9 is not a channel of 'spikes' (0-3)"},
      {{"--remap", "a:b"}, "expected FROM:TO"},
  };
  for (const auto& [args, msg] : cases) {
    std::vector<std::string> a = {"replay", rec, "--to", to};
    a.insert(a.end(), args.begin(), args.end());
    std::string out;
    EXPECT_EQ(run(a, &out), 2) << args[0] << " " << args[1];
    EXPECT_NE(out.find(msg), std::string::npos) << out;
    EXPECT_EQ(count_lines_with(out, "ion"), 1u) << out;
    EXPECT_FALSE(std::filesystem::exists(to));
  }
  std::string out;
  EXPECT_EQ(run({"replay", rec, "--to", to, "--remap", "0:1,1:0"}, &out), 0) << "a swap merges nothing: " << out;
  EXPECT_EQ(run({"replay", rec, "--to", dir_ + "/merged.ionrec", "--remap", "0:1", "--merge"}, &out), 0) << out;
  EXPECT_EQ(run({"import", "csv", dir_ + "/spikes.csv", "-o", dir_ + "/x.ionrec", "--sample-rate", "0"}, &out), 2);
  EXPECT_EQ(run({"replay"}, &out), 2) << "a usage error is status 2: " << out;
  // The link emulator and the benchmarks check theirs before they start (these used to run).
  EXPECT_EQ(run({"linkem", "--connect", "127.0.0.1:99999"}, &out), 2) << out;
  EXPECT_NE(out.find("is not a number from 1 to 65535"), std::string::npos) << out;
  EXPECT_EQ(run({"linkem", "--listen", "127.0.0.1:http"}, &out), 2) << out;
  EXPECT_EQ(run({"linkem", "--connect", "127.0.0.1:0"}, &out), 2) << out;
  EXPECT_EQ(run({"bench", "broker", "--dashboard-clients", "-3"}, &out), 2) << out;
  EXPECT_EQ(run({"bench", "broker", "--dashboard-clients", "65"}, &out), 2) << out;
}

TEST(Arguments, VersionOnEveryProgramAndLogLevelAfterTheSubcommand) {
  for (const char* bin : {ION_TOOL_BIN, ION_BROKER_BIN, ION_NODE_BIN}) {
    Child c({bin, "--version"}, tmp("version.log"));
    EXPECT_EQ(c.wait(), 0) << bin;
    EXPECT_NE(c.output().find(ION_VERSION), std::string::npos) << c.output();
  }
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(free_port());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{ION_TOOL_BIN, "--log-level", "error", "status", "--broker", ep, "--timeout-ms", "200"},
        std::vector<std::string>{ION_TOOL_BIN, "status", "--broker", ep, "--timeout-ms", "200", "--log-level", "error"}}) {
    Child c(args, tmp("loglevel.log"));
    EXPECT_EQ(c.wait(), 2) << c.output();
    EXPECT_NE(c.output().find("no answer from " + ep), std::string::npos)
        << "a connection error, not a usage error: " << c.output();
  }
}

}  // namespace
}  // namespace ion::test
