// Lateness and device trouble are visible everywhere while the network runs, not only in the log
// when a node stops. DESIGN: "late is counted, never passed off as on time"; docs/timing.md:
// "an event handed over beyond the playout's precision is flagged late and counted
// (playout_overrun)". A device that cannot keep up says so through its driver's trouble counters.
#include <filesystem>
#include <fstream>
#include <set>
#include <regex>

#include "harness.h"
#include "recorder_runner.h"
#include "ion/broker/status_text.h"
#include "ion/core/config.h"
#include "ion/core/record.h"
#include "ion/drivers/registry.h"
#include "cli/record.h"
#include "cli/report.h"

namespace ion::test {
namespace {

std::string tmp(const std::string& name) { return ::testing::TempDir() + "/visibility-" + name; }

// A device slower than its input: each delivery holds the node's release thread for 15 ms, so
// what is due meanwhile is handed over beyond the playout's 5 ms precision. It counts its own
// slow deliveries as trouble, as a real driver counts a full device queue.
class SlowDevice final : public Driver {
 public:
  DriverInfo describe() const override { return {"slow", 2, 0, 4}; }
  void start(Emitter&) override {}
  void stop() noexcept override {}
  void deliver(const BatchHeader&, const EventBatch& e, const Delivery&) noexcept override {
    delivered_.fetch_add(e.size());
    slow_.fetch_add(1);
    std::this_thread::sleep_for(15ms);
  }
  std::map<std::string, int64_t> counters() const override {
    return {{"delivered", static_cast<int64_t>(delivered_.load())},
            {"slow_deliveries", static_cast<int64_t>(slow_.load())}};
  }
  std::vector<std::string> trouble_counters() const override { return {"slow_deliveries"}; }

 private:
  std::atomic<uint64_t> delivered_{0}, slow_{0};
};

TEST(Visibility, OverrunsAndDeviceTroubleReachStatusMetricsRecordingAndReportWhileRunning) {
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"slow", "sink", 0, 4}};
  t.connections = {connect_all("gen", "slow")};
  BrokerRunner broker(broker_options(t));
  RecordOptions ro;
  ro.broker = broker.endpoint();
  ro.out = tmp("run.ionrec");
  std::filesystem::remove(ro.out);
  ro.name = "recorder";
  ro.status_interval = 200ms;
  RecorderRunner rec(ro);
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s));

  NodeRunner<SlowDevice> slow(node_options("slow", broker.endpoint()), std::make_unique<SlowDevice>());
  ASSERT_TRUE(slow.node().wait_registered(1, 10s));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(4, 100.0, 0));

  // While both run: the broker knows what the node knows, from its heartbeats.
  ASSERT_TRUE(eventually([&] {
    const auto h = broker.stats("slow").health;
    return h.playout_overrun > 0 && h.device_trouble > 0;
  }, 20s)) << "overrun " << slow.stats().playout_overrun;
  const NodeHealthStats h = broker.stats("slow").health;
  EXPECT_EQ(h.trouble_counters, std::vector<std::string>{"slow_deliveries"});
  EXPECT_EQ(h.device_trouble, static_cast<uint64_t>(h.driver_counters.at("slow_deliveries")));
  EXPECT_GT(h.driver_counters.at("delivered"), 0);

  v1::StatusReply r;
  broker.broker().status(r);
  // /api/status and `ion status --json`.
  const std::string json = status_json(r);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(json, m, std::regex(R"re("name":"slow".*?"playout_overrun":(\d+),"device_trouble":(\d+),"trouble_counters":\["slow_deliveries"\])re")))
      << json;
  EXPECT_GT(std::stoull(m[1]), 0u);
  EXPECT_GT(std::stoull(m[2]), 0u);
  // /metrics.
  const std::string metrics = prometheus_metrics(r, nullptr);
  EXPECT_TRUE(std::regex_search(metrics, std::regex(R"(ion_node_playout_overrun_total\{node="slow"\} [1-9])"))) << metrics;
  EXPECT_TRUE(std::regex_search(metrics, std::regex(R"(ion_node_device_trouble_total\{node="slow"\} [1-9])"))) << metrics;
  EXPECT_TRUE(std::regex_search(metrics, std::regex(R"(ion_driver_counter\{node="slow",counter="slow_deliveries",trouble="1"\} [1-9])")))
      << metrics;
  // `ion status`: late counts every delivery flagged late; trouble is named.
  const std::string table = status_table(r, broker.endpoint());
  EXPECT_NE(table.find("device trouble: slow_deliveries="), std::string::npos) << table;
  // The same through the ion tool, as a user runs it.
  Child cli({ION_TOOL_BIN, "status", "--broker", broker.endpoint(), "--json"}, tmp("status.log"));
  EXPECT_EQ(cli.wait(), 0) << cli.output();
  EXPECT_TRUE(std::regex_search(cli.output(), std::regex(R"("playout_overrun":[1-9])"))) << cli.output();

  // The recording's status records carry it, and so does the report made from them.
  ASSERT_TRUE(eventually([&] {
    v1::StatusReply mid;
    broker.broker().status(mid);
    return mid.taps_size() == 1 && mid.taps(0).events_out() > 100;
  }, 10s));
  uint64_t recorded_overrun = 0;
  uint64_t recorded_trouble = 0;
  const auto scan = [&] {  // the recording as written so far (a torn tail is not read)
    record::Reader reader(ro.out);
    for (record::Record x; reader.next(x);) {
      if (x.type != record::RecordType::status) continue;
      v1::RecordStatus s;
      if (!s.ParseFromArray(x.body.data(), static_cast<int>(x.body.size()))) continue;
      for (const auto& n : s.status().nodes()) {
        if (n.name() != "slow") continue;
        recorded_overrun = std::max(recorded_overrun, n.health().playout_overrun());
        recorded_trouble = std::max(recorded_trouble, n.health().device_trouble());
      }
    }
    return recorded_overrun > 0 && recorded_trouble > 0;
  };
  // The recorder asks for the status every 200 ms: wait for a record written after the broker knew.
  EXPECT_TRUE(eventually(scan, 10s)) << "overrun " << recorded_overrun << " trouble " << recorded_trouble;
  gen.stop();
  slow.stop();
  (void)rec.stop();
  ASSERT_EQ(rec.rc(), 0) << rec.log();
  EXPECT_TRUE(scan()) << "the whole recording carries them";
  const std::string html_path = tmp("report.html");
  std::filesystem::remove(html_path);
  (void)write_report(ro.out, html_path, ReportOptions{});
  std::ifstream f(html_path);
  std::stringstream html;
  html << f.rdbuf();
  EXPECT_TRUE(std::regex_search(html.str(), std::regex(R"(<td class='bad'>[1-9][0-9]* \(slow_deliveries [1-9])")))
      << "the report's counters table names the trouble";
}

// docs/devices/*.md: "The driver's counters travel in every heartbeat ... Its trouble counters —
// `a`, `b` — add up to the node's device_trouble". True only if what the driver declares as
// trouble is in that sentence and reported, and every counter it reports is named in its page.
TEST(Visibility, EachDevicePageNamesEveryCounterAndTroubleCounterItsDriverReports) {
  const std::string root = ION_SOURCE_DIR;
  const std::pair<const char*, const char*> pages[] = {{"configs/padova-mea.yaml", "docs/devices/mea.md"},
                                                       {"configs/zurich-chip.yaml", "docs/devices/chip.md"},
                                                       {"configs/southampton-synapse.yaml", "docs/devices/memristor.md"},
                                                       {"configs/chemical/chemical-neuron.yaml", "docs/devices/chemical.md"}};
  for (const auto& [config, page] : pages) {
    SCOPED_TRACE(page);
    std::ifstream in(root + "/" + page);
    ASSERT_TRUE(in.good());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::set<std::string> named;  // every `word` in backticks
    const std::regex tick("`([a-z_0-9]+)`");
    for (std::sregex_iterator it(text.begin(), text.end(), tick), end; it != end; ++it) named.insert((*it)[1]);
    std::set<std::string> documented_trouble;
    const auto at = text.find("**trouble counters**");
    ASSERT_NE(at, std::string::npos) << "no trouble counters sentence";
    const std::string sentence = text.substr(at, text.find("add up to", at) - at);
    for (std::sregex_iterator it(sentence.begin(), sentence.end(), tick), end; it != end; ++it) {
      documented_trouble.insert((*it)[1]);
    }

    const auto driver = make_driver(ConfigNode::load_file(root + "/" + config));
    const auto counters = driver->counters();
    const auto trouble = driver->trouble_counters();
    // The page lists every backend's trouble counters; this config's backend declares its own.
    for (const auto& t : trouble) {
      EXPECT_TRUE(documented_trouble.contains(t)) << t << " is trouble but not in the page's sentence";
      EXPECT_TRUE(counters.contains(t)) << t << " is declared trouble but not reported";
    }
    EXPECT_FALSE(trouble.empty());
    for (const auto& [name, value] : counters) {
      EXPECT_TRUE(named.contains(name)) << name << " is reported by the driver but not named in " << page;
    }
  }
}

}  // namespace
}  // namespace ion::test
