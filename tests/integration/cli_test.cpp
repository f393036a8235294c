// The daemons and the `ion` tool as a user runs them: exit codes, one-line config errors,
// clean shutdown on SIGTERM, and `ion demo --json`.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "harness.h"
#include "ion/synapse/synapse_driver.h"

namespace ion::test {
namespace {

std::string tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

// `node`'s entry in the broker's status, from one request (empty when no answer).
std::optional<v1::NodeStatus> status_of(RawPeer& peer, const std::string& node) {
  Codec codec;
  v1::StatusRequest r;
  r.set_request_id(1);
  std::string f;
  if (!codec.encode(r, f)) return std::nullopt;
  peer.send(f);
  if (peer.recv_body(codec, Body::status_reply, 1s) != Body::status_reply) return std::nullopt;
  for (const auto& n : codec.status_reply().nodes()) {
    if (n.name() == node) return n;
  }
  return std::nullopt;
}

// What the broker has sent `node` so far (0 when no answer).
uint64_t events_out_of(RawPeer& peer, const std::string& node) {
  const auto n = status_of(peer, node);
  return n ? n->events_out() : 0;
}

TEST(Cli, IonHelpListsDemo) {
  Child c({ION_TOOL_BIN, "--help"}, tmp("help.log"));
  EXPECT_EQ(c.wait(), 0);
  EXPECT_NE(c.output().find("demo"), std::string::npos) << c.output();
}

TEST(Cli, DemoJsonAccountsForEveryEvent) {
  Child c({ION_TOOL_BIN, "demo", "--topology", "minimal", "--duration", "1.5", "--json"}, tmp("demo.log"));
  ASSERT_EQ(c.wait(), 0) << c.output();
  const std::string all = c.output();
  // The interface promise: the last line printed is the JSON object.
  const size_t end = all.find_last_not_of('\n');
  ASSERT_NE(end, std::string::npos);
  const std::string out = all.substr(all.rfind('\n', end) + 1, end - all.rfind('\n', end));
  ASSERT_EQ(out.front(), '{') << all;
  ASSERT_EQ(out.back(), '}') << all;
  std::smatch m;
  const std::regex gen(R"re(\{"name":"gen","kind":"generator","emitted":(\d+),"received":0,"lost":0,"late":\d+,"dropped":(\d+)\})re");
  const std::regex snk(R"re(\{"name":"sink","kind":"sink","emitted":0,"received":(\d+),"lost":(\d+),"late":\d+,"dropped":0\})re");
  ASSERT_TRUE(std::regex_search(out, m, gen)) << out;
  const uint64_t emitted = std::stoull(m[1]);
  ASSERT_TRUE(std::regex_search(out, m, snk)) << out;
  const uint64_t received = std::stoull(m[1]);
  const uint64_t lost = std::stoull(m[2]);
  EXPECT_GT(emitted, 500U);  // 16 channels x 50 Hz x 1.5 s = 1200 expected
  EXPECT_EQ(received + lost, emitted);
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos);
}

TEST(Cli, BrokerConfigErrorIsOneLineNamingFileAndKey) {
  write_file(tmp("bad-broker.yaml"), "broker:\n  topology: nowhere.yaml\n  ring_frames: lots\n");
  Child c({ION_BROKER_BIN, "--config", tmp("bad-broker.yaml")}, tmp("bad-broker.log"));
  EXPECT_EQ(c.wait(), 2);
  const std::string out = c.output();
  EXPECT_NE(out.find("bad-broker.yaml:3: key 'broker.ring_frames': expected an integer"),
            std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(Cli, StatusWithoutABrokerSaysSoAndFails) {
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(free_port());
  Child c({ION_TOOL_BIN, "status", "--broker", ep, "--timeout-ms", "300"}, tmp("status-none.log"));
  EXPECT_EQ(c.wait(), 2);
  EXPECT_NE(c.output().find("no answer from " + ep), std::string::npos) << c.output();
}

TEST(Cli, NodeConfigErrorNamesTheDriverKind) {
  write_file(tmp("bad-node.yaml"), "node:\n  name: x\ndriver:\n  kind: toaster\n");
  Child c({ION_NODE_BIN, "--config", tmp("bad-node.yaml")}, tmp("bad-node.log"));
  EXPECT_EQ(c.wait(), 2);
  EXPECT_NE(c.output().find("key 'driver.kind': expected one of: generator, sink, mea, chip, synapse, replay, chemical, got 'toaster'"),
            std::string::npos)
      << c.output();
}

TEST(Cli, DaemonsFromTheShippedConfigsExchangeSpikesAndStopCleanly) {
  // The shipped configs, with the endpoint overridden to a free port.
  const std::string configs = std::string(ION_SOURCE_DIR) + "/configs/";
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(free_port());
  Child broker({ION_BROKER_BIN, "--config", configs + "generator-sink-broker.yaml", "--listen", ep},
               tmp("cli-broker.log"));
  Child snk({ION_NODE_BIN, "--config", configs + "sink.yaml", "--broker", ep}, tmp("cli-sink.log"));
  Child gen({ION_NODE_BIN, "--config", configs + "generator.yaml", "--broker", ep},
            tmp("cli-gen.log"));
  ASSERT_TRUE(broker.started() && snk.started() && gen.started());

  // Ask the broker for its counters until the sink has been sent spikes.
  RawPeer status(ep);
  uint64_t delivered = 0;
  ASSERT_TRUE(eventually([&] { return (delivered = events_out_of(status, "sink")) > 500; }, 30s))
      << broker.output() << snk.output() << gen.output();

  // `ion status` shows the same counters to a person and as JSON.
  Child table({ION_TOOL_BIN, "status", "--broker", ep}, tmp("cli-status.log"));
  EXPECT_EQ(table.wait(), 0) << table.output();
  EXPECT_TRUE(std::regex_search(table.output(), std::regex("\n  sink +sink +yes +0 +[1-9][0-9]* ")))
      << table.output();
  Child js({ION_TOOL_BIN, "status", "--broker", ep, "--json"}, tmp("cli-status-json.log"));
  EXPECT_EQ(js.wait(), 0) << js.output();
  EXPECT_TRUE(std::regex_search(js.output(), std::regex(R"(\{"name":"gen","kind":"generator","connected":true,[^}]*"events_in":[1-9])")))
      << js.output();

  // --watch: a fresh line per interval until interrupted.
  Child watch({ION_TOOL_BIN, "status", "--broker", ep, "--json", "--watch", "--interval", "0.1"},
              tmp("cli-status-watch.log"));
  const auto lines = [&] {
    const std::string o = watch.output();
    return std::count(o.begin(), o.end(), '\n');
  };
  ASSERT_TRUE(eventually([&] { return lines() >= 3; }, 20s)) << watch.output();
  watch.signal(SIGINT);
  EXPECT_EQ(watch.wait(), 0) << watch.output();
  const std::string w = watch.output();
  EXPECT_EQ(w.rfind("{\"broker_epoch\":", 0), 0u) << w;

  gen.signal(SIGTERM);
  EXPECT_EQ(gen.wait(), 0) << gen.output();
  snk.signal(SIGTERM);
  EXPECT_EQ(snk.wait(), 0) << snk.output();
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.wait(), 0) << broker.output();
  std::smatch m;
  const std::string out = snk.output();
  // Everything the broker had sent the sink by then was delivered, or counted at stop.
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(received=(\d+).* abandoned=(\d+))"))) << out;
  EXPECT_GE(std::stoull(m[1]) + std::stoull(m[2]), delivered);
}

TEST(Cli, SynapseDaemonFromTheShippedConfigTransmitsAndLearns) {
  // Done when: "ion-node --config configs/southampton-synapse.yaml transmits and learns through
  // the broker". A generator stands in for the other labs (channel 0: bio, 1: si0, 2: si1, all
  // at 50 Hz, so the rate rule potentiates); the sink receives the weighted events.
  const std::string configs = std::string(ION_SOURCE_DIR) + "/configs/";
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(free_port());
  write_file(tmp("syn-topology.yaml"),
             "nodes:\n  gen: {kind: generator, channels: 16}\n"
             "  southampton: {kind: synapse, channels: 4, ports: 3}\n"
             "  sink: {kind: sink, ports: 16}\n"
             "connections:\n"
             "  - {from: \"gen:0-2\", to: [\"southampton:0-2\"], delay: 50ms}\n"
             "  - {from: \"southampton:0-1\", to: [\"sink:0-1\"], delay: 50ms}\n");
  write_file(tmp("syn-broker.yaml"), "broker:\n  topology: syn-topology.yaml\n");
  Child broker({ION_BROKER_BIN, "--config", tmp("syn-broker.yaml"), "--listen", ep},
               tmp("syn-broker.log"));
  Child snk({ION_NODE_BIN, "--config", configs + "sink.yaml", "--broker", ep}, tmp("syn-sink.log"));
  Child hub({ION_NODE_BIN, "--config", configs + "southampton-synapse.yaml", "--broker", ep},
            tmp("syn-hub.log"));
  Child gen({ION_NODE_BIN, "--config", configs + "generator.yaml", "--broker", ep},
            tmp("syn-gen.log"));
  ASSERT_TRUE(broker.started() && snk.started() && hub.started() && gen.started());
  RawPeer status(ep);
  uint64_t delivered = 0;
  ASSERT_TRUE(eventually([&] { return (delivered = events_out_of(status, "sink")) > 200; }, 30s))
      << broker.output() << hub.output();
  // 200 transmitted bio spikes at 50 Hz: 4 s, in which every si0 spike (50 Hz) was evaluated
  // and many updates went through the 15 ms instrument. Stop and read the hub's counters.
  hub.signal(SIGTERM);
  EXPECT_EQ(hub.wait(), 0) << hub.output();
  const std::string out = hub.output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(pulses_done=(\d+))"))) << out;
  EXPECT_GT(std::stoull(m[1]), 0U) << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"( transmitted=(\d+))"))) << out;
  EXPECT_GT(std::stoull(m[1]), 200U) << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(plasticity_ltp=(\d+))"))) << out;
  EXPECT_GT(std::stoull(m[1]), 0U) << out;
  gen.signal(SIGTERM);
  snk.signal(SIGTERM);
  broker.signal(SIGTERM);
  EXPECT_EQ(gen.wait(), 0);
  EXPECT_EQ(snk.wait(), 0);
  EXPECT_EQ(broker.wait(), 0);
}

// Issue 22, copy: "ion connectome infer RECORDING -o map.csv ... ion connectome score map.csv
// truth.csv prints ROC AUC, precision and recall, sign accuracy and delay error", and bad input
// (a recording without the node, channels without spikes, a map whose channels the wiring does
// not know) gets a clear one-line error.
TEST(Cli, ConnectomeCopiesAnEmulatedCulturesWiringAndRefusesBadInput) {
  const std::string rec = tmp("culture.ionrec");
  const std::string truth = tmp("culture-truth.csv");
  const std::string map = tmp("culture-map.csv");
  std::remove(rec.c_str());
  std::remove(truth.c_str());
  std::remove(map.c_str());
  Child sim({ION_TOOL_BIN, "connectome", "simulate", "-o", rec, "--truth", truth, "--neurons", "40",
             "--minutes", "3", "--seed", "4"},
            tmp("connectome-sim.log"));
  ASSERT_EQ(sim.wait(), 0) << sim.output();
  Child inf({ION_TOOL_BIN, "connectome", "infer", rec, "-o", map}, tmp("connectome-infer.log"));
  ASSERT_EQ(inf.wait(), 0) << inf.output();
  EXPECT_NE(inf.output().find("node 'culture': 40 channels"), std::string::npos) << inf.output();
  Child sc({ION_TOOL_BIN, "connectome", "score", map, truth, "--json"}, tmp("connectome-score.log"));
  ASSERT_EQ(sc.wait(), 0) << sc.output();
  const std::regex auc("\"auc_excitatory\":([0-9.]+)");
  std::smatch m;
  const std::string out = sc.output();
  ASSERT_TRUE(std::regex_search(out, m, auc)) << out;
  EXPECT_GE(std::stod(m[1]), 0.85) << out;
  // Bad input: one line, exit 2.
  Child no_node({ION_TOOL_BIN, "connectome", "infer", rec, "-o", tmp("x.csv"), "--node", "padova"},
                tmp("connectome-nonode.log"));
  EXPECT_EQ(no_node.wait(), 2);
  EXPECT_NE(no_node.output().find("holds no spike events of node 'padova'"), std::string::npos) << no_node.output();
  Child quiet({ION_TOOL_BIN, "connectome", "infer", rec, "-o", tmp("y.csv"), "--min-spikes", "100000000"},
              tmp("connectome-quiet.log"));
  EXPECT_EQ(quiet.wait(), 2);
  EXPECT_NE(quiet.output().find("inference needs two"), std::string::npos) << quiet.output();
  write_file(tmp("other-truth.csv"), "pre,post,weight,delay_ms,sign\nE1,E2,1,2,1\n");
  Child foreign({ION_TOOL_BIN, "connectome", "score", map, tmp("other-truth.csv")}, tmp("connectome-foreign.log"));
  EXPECT_EQ(foreign.wait(), 2);
  EXPECT_NE(foreign.output().find("names none of the map's channels"), std::string::npos) << foreign.output();
  Child over({ION_TOOL_BIN, "connectome", "infer", rec, "-o", rec}, tmp("connectome-over.log"));
  EXPECT_EQ(over.wait(), 2) << "an output never overwrites an input";

  // Paste: "signed weights become conductances (differential pairs, one device at its minimum),
  // quantised ... programmed with write-verify ... a programming report (target, reached and
  // error per cell); the largest networks that do not fit one crossbar are split across several,
  // or refused with a clear message."
  const std::string dir = tmp("pasted");
  std::filesystem::remove_all(dir);
  Child small({ION_TOOL_BIN, "connectome", "paste", map, "-o", dir, "--crossbar", "4x4"}, tmp("paste-small.log"));
  EXPECT_EQ(small.wait(), 2);
  EXPECT_NE(small.output().find("cells (a differential pair each); 1 crossbar(s) of 4x4 hold 16: give --crossbars"),
            std::string::npos) << small.output();
  Child paste({ION_TOOL_BIN, "connectome", "paste", map, "-o", dir, "--crossbar", "8x8", "--crossbars", "16"},
              tmp("paste.log"));
  ASSERT_EQ(paste.wait(), 0) << paste.output();
  std::ifstream report(dir + "/program-report.csv");
  std::string line;
  size_t cells = 0;
  size_t at_minimum = 0;
  std::set<std::string> bars;
  while (std::getline(report, line)) {
    if (line.empty() || line[0] == '#' || line.starts_with("crossbar,")) continue;
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    ASSERT_GE(f.size(), 12U) << line;
    ++cells;
    bars.insert(f[0]);
    EXPECT_EQ(f[11], "1") << "every cell programmed: " << line;
    const double target = std::stod(f[6]);
    at_minimum += target == 4000 ? 1 : 0;
    // 100 ohm tolerance (2 % of 4-9 kOhm) on the reading; the true state within 4 sd of the
    // 0.2 % read noise more.
    EXPECT_LE(std::fabs(std::stod(f[7]) - target), 100.0) << line;
    EXPECT_LE(std::fabs(std::stod(f[8]) - target), 100.0 + 4 * 0.002 * target) << line;
  }
  EXPECT_GT(cells, 64U) << "more than one 8x8 crossbar's worth";
  EXPECT_GE(2 * at_minimum, cells) << "one device of each differential pair at its minimum";
  // Each crossbar comes with a board the node can run: its config loads, and every cell it
  // holds has the target the board will program at start.
  const ConfigNode board = ConfigNode::load_file(dir + "/board-1.yaml");
  const auto bo = synapse::SynapseDriverOptions::from_config(board.child("driver"));
  EXPECT_EQ(bo.neurons, 40U);
  ASSERT_FALSE(bo.synapses.empty());
  for (const auto& syn : bo.synapses) EXPECT_GE(syn.target_ohm, 4000) << "every cell has its target";
  EXPECT_GT(bars.size(), 1U) << "split across crossbars";

  // "A topology for a network that reproduces the copied wiring on the emulated silicon neurons",
  // run by separate daemons from the files paste wrote: every board programs its cells and
  // transmits to the chip, and the chip takes every pasted event (no refused weight).
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(free_port());
  Child broker({ION_BROKER_BIN, "--config", dir + "/broker.yaml", "--listen", ep}, tmp("pasted-broker.log"));
  Child chip({ION_NODE_BIN, "--config", dir + "/chip.yaml", "--broker", ep}, tmp("pasted-chip.log"));
  std::vector<std::unique_ptr<Child>> boards;
  for (const std::string& b : bars) {
    boards.push_back(std::make_unique<Child>(
        std::vector<std::string>{ION_NODE_BIN, "--config", dir + "/board-" + b + ".yaml", "--broker", ep},
        tmp("pasted-board-" + b + ".log")));
  }
  Child drive({ION_NODE_BIN, "--config", dir + "/drive.yaml", "--broker", ep}, tmp("pasted-drive.log"));
  RawPeer status(ep);
  for (const std::string& b : bars) {
    EXPECT_TRUE(eventually([&] {
      const auto n = status_of(status, "board" + b);
      return n && n->events_in() > 0;
    }, 60s)) << "board" << b << " transmitted nothing to the chip: " << chip.output() << boards[0]->output();
  }
  for (Child* c : std::initializer_list<Child*>{&drive, &chip}) c->signal(SIGTERM);
  for (auto& b : boards) b->signal(SIGTERM);
  EXPECT_EQ(drive.wait(), 0) << drive.output();
  EXPECT_EQ(chip.wait(), 0) << chip.output();
  EXPECT_EQ(chip.output().find("input_bad_weight"), std::string::npos) << chip.output();
  EXPECT_EQ(chip.output().find("input_unknown_address"), std::string::npos) << chip.output();
  for (auto& b : boards) {
    EXPECT_EQ(b->wait(), 0) << b->output();
    EXPECT_NE(b->output().find(" cells_program_failed=0 "), std::string::npos) << b->output();
  }
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.wait(), 0) << broker.output();
}

// Issue 22, end to end: "record an emulated culture, infer its wiring, paste it into the chip and
// crossbar, run the pasted network, and compare the two networks' functional connectivity. Print
// the correlation between the matrices, and report it in the HTML report." The pasted network
// must carry the culture's structure: its FC correlates with the culture's at the issue's 0.5 and
// far better than the same silicon network without the pasted synapses.
TEST(Cli, CopyPasteCarriesTheCulturesFunctionalConnectivityIntoSilicon) {
  const std::string dir = tmp("copy-paste");
  std::filesystem::remove_all(dir);
  Child cp({ION_TOOL_BIN, "connectome", "copy-paste", "--minutes", "5", "--seconds", "15", "--control", "--json",
            "-o", dir},
           tmp("copy-paste.log"));
  ASSERT_EQ(cp.wait(), 0) << cp.output();
  const std::string out = cp.output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"cells_failed\":([0-9]+)"))) << out;
  EXPECT_EQ(m[1], "0") << "every cell programmed by its board";
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"fc_correlation_copy_paste\":(-?[0-9.e-]+)"))) << out;
  const double pasted = std::stod(m[1]);
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"fc_correlation_unwired\":(-?[0-9.e-]+)"))) << out;
  const double unwired = std::stod(m[1]);
  // Issue 22's target is 0.5 (the benchmark's 60 s of pasted activity gives more); 15 s of it
  // here is noisier: the culture's own first 20 s against its rest correlate at about 0.6.
  EXPECT_GE(pasted, 0.5) << out;
  EXPECT_GT(pasted, unwired + 0.4) << out;

  // The pairs written out give the same correlation when recomputed here.
  std::ifstream in(dir + "/fc.csv");
  std::vector<double> a, b;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line.starts_with("a,")) continue;
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    ASSERT_GE(f.size(), 4U) << line;
    if (f[2].empty() || f[3].empty()) continue;
    a.push_back(std::stod(f[2]));
    b.push_back(std::stod(f[3]));
  }
  ASSERT_GT(a.size(), 1000U) << "60 neurons: 1770 pairs";
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(a.size());
  mb /= static_cast<double>(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  EXPECT_NEAR(sab / std::sqrt(saa * sbb), pasted, 1e-4);
  // The report of the pasted network opens with the comparison and its figure.
  std::ifstream page(dir + "/report.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("<h2>Functional connectivity: culture (copied) against pasted network</h2>"), std::string::npos);
  char figure[32];
  std::snprintf(figure, sizeof figure, "<b class='fc'>%.3f</b>", pasted);
  EXPECT_NE(html.find(figure), std::string::npos) << figure;
  EXPECT_NE(html.find("aria-label='raster chip'"), std::string::npos) << "the pasted network's recording is in it";
  EXPECT_TRUE(std::filesystem::exists(dir + "/culture.ionrec"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/map.csv"));
}

}  // namespace
}  // namespace ion::test
