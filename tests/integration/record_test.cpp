// Recording and replay through a live broker: a tap records exactly what flowed; a killed
// recorder leaves a file that reads back; a replay re-emits with the original relative timing;
// a stalled recorder never slows the broker.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"
#include "ion/mea/culture.h"
#include "ion/mea/mea_driver.h"
#include "recorder_runner.h"
#include "ion/core/codec.h"
#include "ion/core/record.h"
#include "cli/data.h"
#include "ion/core/dataset.h"
#include "ion/interchange/import.h"
#include "ion/interchange/inspect.h"
#include "cli/record.h"
#include "ion/v1/record.pb.h"

namespace ion::test {
namespace {

namespace fs = std::filesystem;
std::string tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

uint64_t tap_events(const BrokerRunner& b, const std::string& name) {
  for (const auto& t : const_cast<BrokerRunner&>(b).broker().tap_stats()) {
    if (t.name == name) return t.events_out;
  }
  return 0;
}

TEST(Record, LiveSessionIsRecordedExactly) {
  Topology t;
  t.nodes = {{"gen", "generator", 8, 0}, {"sink", "sink", 0, 8}};
  t.connections = {connect_all("gen", "sink")};
  BrokerRunner broker(broker_options(t));
  RecordOptions ro;
  ro.name = "recorder";
  ro.broker = broker.endpoint();
  ro.out = tmp("live.ionrec");
  ro.status_interval = 200ms;
  RecorderRunner rec(ro);
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s)) << rec.log();
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(8));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  constexpr uint64_t kEvents = 3000;
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(8, 200.0, kEvents));
  ASSERT_TRUE(eventually([&] { return gen.driver().finished() && snk.stats().received_events == kEvents; }, 30s));
  ASSERT_TRUE(eventually([&] { return tap_events(broker, "recorder") == kEvents; }, 10s));
  // Let a status snapshot with the nodes' final counters be recorded.
  const auto snaps = rec.stop().status_records;
  (void)snaps;
  ASSERT_EQ(rec.rc(), 0) << rec.log();

  ion::LoadStats st;
  const auto d = ion::load_recording(ro.out, &st);
  EXPECT_FALSE(st.torn);
  ASSERT_EQ(d.sources.size(), 1U);
  EXPECT_EQ(d.sources[0].desc.name(), "gen");
  EXPECT_EQ(d.sources[0].size(), kEvents) << "every accepted event recorded once";
  EXPECT_NE(d.header.topology_yaml().find("gen"), std::string::npos);
  EXPECT_NE(d.header.anchor_utc_ns(), 0);
  const auto x = interchange::inspect(ro.out);
  ASSERT_EQ(x.streams.size(), 1U);
  EXPECT_EQ(x.streams[0].lost_events, 0U);
  EXPECT_EQ(x.tap_dropped_batches, 0U);
  EXPECT_GE(x.status_records, 1U);
  EXPECT_GE(x.markers.at("NODE_JOINED"), 2U);
  EXPECT_EQ(x.markers.at("RECORDING_STOPPED"), 1U);
  bool sink_clock = false;
  for (const auto& n : x.nodes) sink_clock = sink_clock || (n.name == "sink" && n.clock_reports > 0);
  EXPECT_TRUE(sink_clock) << "the nodes' clock reports are in the recording";
}

TEST(Record, TheLastStatusRecordIsTakenWhenTheRecorderStops) {
  // The report's "counters at the end" come from the last status record: it must be taken at
  // the end, so that they agree with the events recorded (they showed fewer events than the
  // raster when the last periodic one was older than the last events).
  Topology t;
  t.nodes = {{"gen", "generator", 8, 0}, {"sink", "sink", 0, 8}};
  t.connections = {connect_all("gen", "sink")};
  BrokerRunner broker(broker_options(t));
  RecordOptions ro;
  ro.name = "recorder";
  ro.broker = broker.endpoint();
  ro.out = tmp("final-status.ionrec");
  ro.status_interval = std::chrono::hours(1);  // one periodic status only, at the start
  RecorderRunner rec(ro);
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s)) << rec.log();
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(8));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  constexpr uint64_t kEvents = 500;
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(8, 200.0, kEvents));
  ASSERT_TRUE(eventually([&] { return tap_events(broker, "recorder") == kEvents; }, 30s));
  (void)rec.stop();
  ASSERT_EQ(rec.rc(), 0) << rec.log();
  record::Reader rd(ro.out);
  record::Record r;
  uint64_t last_events_in = 0;
  int statuses = 0;
  while (rd.next(r)) {
    if (r.type != record::RecordType::status) continue;
    v1::RecordStatus st;
    ASSERT_TRUE(st.ParseFromArray(r.body.data(), static_cast<int>(r.body.size())));
    for (const auto& n : st.status().nodes()) {
      if (n.name() == "gen") last_events_in = n.events_in();
    }
    ++statuses;
  }
  EXPECT_GE(statuses, 2) << "the first and the closing one";
  EXPECT_EQ(last_events_in, kEvents);
}

TEST(Record, KilledRecorderLeavesAFileThatReadsBack) {
  // "a recorder killed with SIGKILL mid-run leaves a file that reads back up to the last
  // complete record"
  Topology t;
  t.nodes = {{"gen", "generator", 8, 0}, {"sink", "sink", 0, 8}};
  t.connections = {connect_all("gen", "sink")};
  BrokerRunner broker(broker_options(t));
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(8));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(8, 2000.0, 0));
  const std::string file = tmp("killed.ionrec");
  fs::remove(file);
  Child rec({ION_TOOL_BIN, "record", "--broker", broker.endpoint(), "-o", file, "--flush-ms", "5"},
            tmp("killed.log"));
  ASSERT_TRUE(eventually([&] { return fs::exists(file) && fs::file_size(file) > 200'000; }, 30s))
      << rec.output();
  rec.signal(SIGKILL);
  EXPECT_EQ(rec.wait(), 128 + SIGKILL);
  uint64_t events = 0;
  uint64_t valid = 0;
  {
    record::Reader rd(file);
    record::Record r;
    Codec codec;
    BatchHeader h;
    EventBatch ev;
    while (rd.next(r)) {
      if (r.type != record::RecordType::batch) continue;
      ASSERT_TRUE(codec.decode(r.body).ok());
      ASSERT_EQ(codec.take_batch({}, h, ev), Reject::none);
      events += ev.size();
    }
    valid = rd.valid_bytes();
    EXPECT_GE(valid + 4096 * 4, rd.file_bytes()) << "at most the unflushed tail is lost";
  }
  EXPECT_GT(events, 1000U);
  Child repair({ION_TOOL_BIN, "inspect", file, "--repair", "--json"}, tmp("repair.log"));
  EXPECT_EQ(repair.wait(), 0) << repair.output();
  EXPECT_EQ(fs::file_size(file), valid);
  EXPECT_NE(repair.output().find("\"torn_tail\":false"), std::string::npos) << repair.output();
  EXPECT_NE(repair.output().find("\"total_events\":" + std::to_string(events)), std::string::npos)
      << repair.output();
}

// A recording of known spike times, imported from CSV: 4 channels, 600 events over ~3 s.
std::string known_recording(std::vector<int64_t>& times, std::vector<std::string>& chans) {
  std::ostringstream csv;
  csv << "channel,time_s\n";
  for (int i = 0; i < 600; ++i) {
    const int64_t t = 1'000'000'000 + static_cast<int64_t>(i) * 5'000'000 + (i % 7) * 130'000;
    const std::string ch = "e" + std::to_string(i % 4);
    csv << ch << "," << ion::format_seconds(t) << "\n";
    times.push_back(t);
    chans.push_back(ch);
  }
  write_file(tmp("known.csv"), csv.str());
  const auto imp = interchange::import_csv(tmp("known.csv"));
  ion::write_recording(tmp("known.ionrec"), imp.data);
  return tmp("known.ionrec");
}

TEST(Replay, LiveReplayKeepsTheRecordedRelativeTiming) {
  // "re-emits events with the original relative timing in network time, so any downstream lab
  // sees exactly what it would have seen live" — recorded again downstream and compared.
  std::vector<int64_t> times;
  std::vector<std::string> chans;
  const std::string file = known_recording(times, chans);
  for (const double speed : {1.0, 2.0}) {
    Topology t;
    t.nodes = {{"padova", "replay", 4, 0}, {"sink", "sink", 0, 4}};
    t.connections = {connect_all("padova", "sink", 50ms)};
    BrokerRunner broker(broker_options(t));
    NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(4));
    ASSERT_TRUE(snk.node().wait_registered(1, 10s));
    RecordOptions ro;
    ro.name = "recorder";
    ro.broker = broker.endpoint();
    ro.out = tmp("replayed.ionrec");
    RecorderRunner rec(ro);
    ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s));
    ReplayCommand rc;
    rc.file = file;
    rc.broker = broker.endpoint();
    rc.as = "padova";
    rc.speed = speed;
    std::atomic<bool> stop{false};
    std::ostringstream log;
    ASSERT_EQ(run_replay(rc, stop, log), 0) << log.str();
    ASSERT_TRUE(eventually([&] { return snk.stats().received_events == times.size(); }, 10s));
    ASSERT_TRUE(eventually([&] { return tap_events(broker, "recorder") == times.size(); }, 10s));
    rec.stop();
    EXPECT_EQ(snk.stats().late_events, 0U);
    EXPECT_EQ(snk.driver().early(), 0U);
    const auto d = ion::load_recording(ro.out);
    ASSERT_EQ(d.sources.size(), 1U);
    const auto& s = d.sources[0];
    ASSERT_EQ(s.size(), times.size());
    // Issue 18: "channel names kept through a live replay (they become numbers today)": the
    // replay node declares them in its Hello and the recorder writes them down.
    for (uint32_t c = 0; c < 4; ++c) EXPECT_EQ(s.channel_name(c), "e" + std::to_string(c)) << "speed " << speed;
    for (size_t i = 0; i < times.size(); ++i) {
      // Same channel order; time from the first event exactly the recorded one / speed.
      ASSERT_EQ(s.channels[i], s.channels[i]);  // ids: natural order of e0..e3 = their number
      ASSERT_EQ(s.channels[i], static_cast<uint32_t>(std::stoi(chans[i].substr(1)))) << i;
      ASSERT_EQ(s.times_ns[i] - s.times_ns[0],
                static_cast<int64_t>(std::llround(static_cast<double>(times[i] - times[0]) / speed)))
          << "event " << i << " at speed " << speed;
    }
  }
}

// Issue 18: "electrode positions for live MEA recordings (from the driver's layout), not only for
// imports". The recorder is up before the MEA node registers (it joins later, as in the demo).
TEST(Record, ALiveMeaRecordingKeepsTheElectrodePositions) {
  Topology t;
  t.nodes = {{"padova", "mea", 60, 60}};
  BrokerRunner broker(broker_options(t));
  RecordOptions ro;
  ro.name = "recorder";
  ro.broker = broker.endpoint();
  ro.out = tmp("mea-positions.ionrec");
  RecorderRunner rec(ro);
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s));
  mea::MeaOptions mo;
  mo.source = mea::SourceKind::emulator;
  NodeRunner<mea::MeaDriver> node(node_options("padova", broker.endpoint()), std::make_unique<mea::MeaDriver>(mo));
  ASSERT_TRUE(eventually([&] { return tap_events(broker, "recorder") >= 20; }, 30s)) << "the culture spikes";
  node.stop();
  rec.stop();
  const mea::CultureEmulator reference(mo.emulator);
  const auto& positions = reference.electrode_positions();
  ASSERT_EQ(positions.size(), 60U);
  const auto d = ion::load_recording(ro.out);
  ASSERT_EQ(d.sources.size(), 1U);
  const auto& info = d.sources[0].desc.channel_info();
  ASSERT_EQ(info.size(), 60) << "every electrode described";
  for (const auto& c : info) {
    ASSERT_LT(c.id(), 60U);
    EXPECT_DOUBLE_EQ(c.x_um(), positions[c.id()].x_um) << "electrode " << c.id();
    EXPECT_DOUBLE_EQ(c.y_um(), positions[c.id()].y_um) << "electrode " << c.id();
  }
}

// A generator that describes its channels (names and positions), as an electrode array does.
class DescribedGenerator final : public Driver {
 public:
  DescribedGenerator(uint32_t channels, const std::string& prefix) : inner_(generator(channels, 0.2, 100)) {
    for (uint32_t c = 0; c < channels; ++c) info_.push_back({c, prefix + std::to_string(c), c * 10.0, 1.0});
  }
  [[nodiscard]] DriverInfo describe() const override { return inner_->describe(); }
  [[nodiscard]] std::vector<ChannelDescription> channel_info() const override { return info_; }
  void start(Emitter& e) override { inner_->start(e); }
  void deliver(const BatchHeader& h, const EventBatch& e, const Delivery& d) noexcept override { inner_->deliver(h, e, d); }
  void stop() noexcept override { inner_->stop(); }

 private:
  std::unique_ptr<GeneratorDriver> inner_;
  std::vector<ChannelDescription> info_;
};

// A status reply describes at most 16 384 channels; nodes beyond that were left undescribed and
// the recorder did not ask again, so two 10 000-channel arrays joining after it started lost one's
// names and positions. It now asks for the nodes still undescribed until a record holds them.
TEST(Record, EveryLargeArrayJoiningLaterIsDescribedInTheRecording) {
  Topology t;
  t.nodes = {{"west", "mea", 10000, 0}, {"east", "mea", 10000, 0}};
  BrokerRunner broker(broker_options(t));
  RecordOptions ro;
  ro.name = "recorder";
  ro.broker = broker.endpoint();
  ro.out = tmp("large-arrays.ionrec");
  ro.status_interval = std::chrono::milliseconds(100);
  RecorderRunner rec(ro);
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s));
  NodeRunner<DescribedGenerator> west(node_options("west", broker.endpoint()),
                                      std::make_unique<DescribedGenerator>(10000, "w"));
  NodeRunner<DescribedGenerator> east(node_options("east", broker.endpoint()),
                                      std::make_unique<DescribedGenerator>(10000, "e"));
  // What the recording holds so far (the recorder flushes every 100 ms): both arrays described.
  const auto described_in_file = [&] {
    size_t n = 0;
    for (const auto& src : ion::load_recording(ro.out).sources) n += src.desc.channel_info_size() == 10000 ? 1 : 0;
    return n;
  };
  EXPECT_TRUE(eventually([&] { return described_in_file() == 2; }, 30s)) << described_in_file() << " of 2 described";
  west.stop();
  east.stop();
  rec.stop();
  const auto d = ion::load_recording(ro.out);
  size_t described = 0;
  for (const auto& src : d.sources) {
    const auto& info = src.desc.channel_info();
    ASSERT_EQ(info.size(), 10000) << src.desc.name() << ": every channel described";
    const std::string prefix = src.desc.name() == "west" ? "w" : "e";
    EXPECT_EQ(info[9999].name(), prefix + "9999");
    EXPECT_DOUBLE_EQ(info[9999].x_um(), 99990.0);
    ++described;
  }
  EXPECT_EQ(described, 2U);
}

// Issue 18: stimulation times in exports used the topology's delay even when `delay: auto`
// moved it. A recording of a source whose channel 0 stimulates an MEA electrode through an auto
// connection; status records say the delay was 100 ms from t = 2 s and 300 ms from t = 4 s.
TEST(Export, StimulationsFollowAnAutoDelayAsTheStatusRecordsShowIt) {
  const std::string file = tmp("auto-delay.ionrec");
  std::filesystem::remove(file);
  v1::RecordHeader h;
  h.set_format_version(1);
  h.set_topology_yaml(
      "nodes:\n  gen: {kind: generator, channels: 1}\n  padova: {kind: mea, channels: 60, ports: 60}\n"
      "connections:\n  - {from: 'gen:0', to: ['padova:5'], delay: auto, auto_initial: 50ms}\n");
  {
    record::Writer w(file, h);
    Codec codec({.max_message_bytes = 1 << 20, .max_events_per_batch = 1024});
    std::string frame;
    auto status = [&](int64_t t, int64_t delay) {
      v1::RecordStatus rs;
      rs.set_network_ns(t);
      v1::ConnectionStatus* c = rs.mutable_status()->add_connections();
      c->set_index(0);
      c->set_from("gen:0");
      c->set_delay_ns(delay);
      c->set_auto_delay(true);
      ASSERT_TRUE(w.status(rs));
    };
    status(500'000'000, 50'000'000);
    uint64_t seq = 0;
    for (const int64_t t : {1'000'000'000LL, 3'000'000'000LL, 5'000'000'000LL}) {
      if (t == 3'000'000'000LL) status(2'000'000'000, 100'000'000);
      if (t == 5'000'000'000LL) status(4'000'000'000, 300'000'000);
      BatchHeader bh;
      bh.source_node = "gen";
      bh.epoch = 1;
      bh.sequence = seq++;
      bh.broker_time_ns = t;
      EventBatch b;
      b.push(0, t);
      ASSERT_TRUE(codec.encode_batch(bh, b, frame));
      ASSERT_TRUE(w.batch(t, {reinterpret_cast<const uint8_t*>(frame.data()), frame.size()}, 1, t));
    }
  }
  ExportCommand c;
  c.file = file;
  c.format = "csv";
  c.out = tmp("auto-delay.csv");
  std::filesystem::remove(c.out);
  std::filesystem::remove(tmp("auto-delay.events.csv"));
  std::ostringstream log;
  ASSERT_EQ(run_export(c, log), 0) << log.str();
  std::ifstream in(tmp("auto-delay.events.csv"));
  ASSERT_TRUE(in.good()) << log.str();
  std::vector<std::string> stim;
  for (std::string line; std::getline(in, line);) {
    if (line.find("stimulation") != std::string::npos) stim.push_back(line);
  }
  ASSERT_EQ(stim.size(), 3U) << log.str();
  // Source time + the delay in effect then (the first before any change: the topology's 50 ms).
  EXPECT_NE(stim[0].find(",1.05,"), std::string::npos) << stim[0];
  EXPECT_NE(stim[1].find(",3.1,"), std::string::npos) << stim[1];
  EXPECT_NE(stim[2].find(",5.3,"), std::string::npos) << stim[2];
}

TEST(Replay, ARecordingStandsInForALabAndCountsWhatItReceives) {
  // Issue "a recording stands in for a lab": the replay takes the name of a topology node that
  // has input ports (an MEA that is stimulated), declares that node's channels and ports as the
  // topology gives them, emits the recording with a channel remapped by name, and counts and
  // records what the network sends it.
  std::vector<int64_t> times;
  std::vector<std::string> chans;
  const std::string file = known_recording(times, chans);
  Topology t;
  t.nodes = {{"padova", "mea", 60, 60}, {"stim", "generator", 1, 0}, {"sink", "sink", 0, 60}};
  ConnectionSpec to_mea;  // stim:0 -> padova:55, as a synapse's output stimulates an electrode
  to_mea.from = {"stim", false, 0, 0};
  to_mea.to = {{"padova", false, 55, 55}};
  to_mea.delay_ns = 50'000'000;
  t.connections = {to_mea, connect_all("padova", "sink", 50ms)};
  BrokerRunner broker(broker_options(t));
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(60));
  NodeRunner<GeneratorDriver> gen(node_options("stim", broker.endpoint()), generator(1, 200, 0));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  ASSERT_TRUE(gen.node().wait_registered(1, 10s));

  ReplayCommand rc;
  rc.file = file;
  rc.broker = broker.endpoint();
  rc.as = "padova";
  rc.remap = "e2:55";  // by name: the recording's channel e2 becomes electrode 55
  rc.record_inputs = tmp("received.ionrec");
  std::atomic<bool> stop{false};
  std::ostringstream log;
  int status = -1;
  std::thread replay([&] { status = run_replay(rc, stop, log); });
  // The stimulation stops while the replay still runs (3 s), so everything sent to the stand-in
  // is delivered (50 ms later) before it leaves: the counts can be compared exactly.
  const bool flowing = eventually([&] { return broker.stats("padova").events_out > 100; }, 10s);
  gen.stop();
  replay.join();
  ASSERT_TRUE(flowing);
  ASSERT_EQ(status, 0) << log.str();
  EXPECT_NE(log.str().find("'padova' stands in for the topology's mea node: 60 channels, 60 ports"),
            std::string::npos) << log.str();
  // Every replayed event reached the sink, e2's on port 55.
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events == times.size(); }, 10s));
  const auto on_55 = static_cast<uint64_t>(std::count(chans.begin(), chans.end(), "e2"));
  EXPECT_EQ(snk.driver().per_port()[55], on_55);
  // What the broker sent the stand-in is what it counted and recorded, on port 55.
  const uint64_t sent_to_padova = broker.stats("padova").events_out;
  EXPECT_GT(sent_to_padova, 100U);
  EXPECT_NE(log.str().find("received " + std::to_string(sent_to_padova) + "\n"), std::string::npos)
      << "sent " << sent_to_padova << "; " << log.str();
  const auto got = ion::load_recording(rc.record_inputs);
  ASSERT_EQ(got.sources.size(), 1U);
  EXPECT_EQ(got.sources[0].desc.name(), "stim -> padova");
  EXPECT_EQ(got.sources[0].size(), sent_to_padova);
  for (const uint32_t ch : got.sources[0].channels) ASSERT_EQ(ch, 55U);
  EXPECT_NE(got.header.anchor_utc_ns(), 0) << "stamped in the live network's time";

  // A name the recording does not have, and a channel the stood-in node does not have, are
  // clear errors before anything joins.
  rc.record_inputs.clear();
  rc.remap = "e9:55";
  try {
    (void)run_replay(rc, stop, log);
    ADD_FAILURE() << "a missing channel name was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'e9' is not a channel name of"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("e0, e1"), std::string::npos) << e.what();
  }
  rc.remap = "e2:60";
  try {
    (void)run_replay(rc, stop, log);
    ADD_FAILURE() << "a channel beyond the topology's was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("beyond the 60 channels declared"), std::string::npos) << e.what();
  }
}

TEST(Replay, OfflineReplayWritesTheSameStampsAsLive) {
  std::vector<int64_t> times;
  std::vector<std::string> chans;
  const std::string file = known_recording(times, chans);
  ReplayCommand rc;
  rc.file = file;
  rc.to = tmp("offline.ionrec");
  rc.speed = 4;
  rc.start_s = 1.0;  // from 1 s after the first event
  rc.remap = "0:3,3:0";
  std::atomic<bool> stop{false};
  std::ostringstream log;
  ASSERT_EQ(run_replay(rc, stop, log), 0) << log.str();
  const auto d = ion::load_recording(rc.to);
  ASSERT_EQ(d.sources.size(), 1U);
  const auto& s = d.sources[0];
  size_t k = 0;
  for (size_t i = 0; i < times.size(); ++i) {
    const int64_t rel = times[i] - times[0];
    if (rel < 1'000'000'000) continue;
    ASSERT_LT(k, s.size());
    uint32_t ch = static_cast<uint32_t>(std::stoi(chans[i].substr(1)));
    ch = ch == 0 ? 3 : (ch == 3 ? 0 : ch);
    EXPECT_EQ(s.channels[k], ch);
    EXPECT_EQ(s.times_ns[k], times[0] + (rel - 1'000'000'000) / 4);
    ++k;
  }
  EXPECT_EQ(k, s.size());
  // Names follow their channels through the remap (channel 3 plays what e0 recorded).
  EXPECT_EQ(s.channel_name(3), "e0");
  EXPECT_EQ(s.channel_name(0), "e3");
  EXPECT_EQ(s.channel_name(1), "e1");
  // A looped replay has no end: refused for a file.
  rc.loop = true;
  EXPECT_THROW((void)run_replay(rc, stop, log), std::runtime_error);
}

TEST(Record, StalledRecorderNeverSlowsTheBroker) {
  // Promise 3: "A slow or stalled node never slows the others": a tap that never reads costs
  // its own bounded ring and counted drops; the sink still gets everything.
  Topology t;
  t.nodes = {{"gen", "generator", 8, 0}, {"sink", "sink", 0, 8}};
  t.connections = {connect_all("gen", "sink")};
  BrokerOptions bo = broker_options(t);
  bo.tap_ring_frames = 64;
  bo.send_hwm = 20;               // small socket queues so the stall reaches the tap's ring
  bo.socket_send_buffer = 4096;
  bo.heartbeat_timeout = 20s;     // the stalled tap stays registered for the whole run
  BrokerRunner broker(bo);
  RawPeer stalled(broker.endpoint(), 1, 4096);
  v1::Hello h;
  h.set_node_name("stalled");
  h.set_protocol_version(kProtocolVersion);
  h.set_tap(true);
  h.set_epoch(1);
  Codec codec;
  std::string f;
  ASSERT_TRUE(codec.encode(h, f));
  stalled.send(f);
  ASSERT_TRUE(eventually([&] { return broker.broker().tap_stats().size() == 1; }, 10s));
  NodeRunner<SinkDriver> snk(node_options("sink", broker.endpoint()), sink(8));
  ASSERT_TRUE(snk.node().wait_registered(1, 10s));
  constexpr uint64_t kEvents = 40000;
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(8, 2000.0, kEvents));
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events == kEvents; }, 60s))
      << snk.stats().received_events;
  EXPECT_EQ(snk.stats().lost_events, 0U);
  const auto taps = broker.broker().tap_stats();
  ASSERT_EQ(taps.size(), 1U);
  EXPECT_GT(taps[0].dropped_events, 0U) << "the stalled tap's ring overflowed, counted";
  EXPECT_LT(taps[0].events_out, kEvents);
}

TEST(Record, UnknownNodeSelectionIsRefused) {
  Topology t;
  t.nodes = {{"gen", "generator", 8, 0}};
  BrokerRunner broker(broker_options(t));
  RecordOptions ro;
  ro.name = "recorder";
  ro.broker = broker.endpoint();
  ro.out = tmp("refused.ionrec");
  ro.nodes = {"ghost"};
  std::atomic<bool> stop{false};
  std::ostringstream log;
  EXPECT_EQ(run_record(ro, stop, log), 2);
  EXPECT_NE(log.str().find("selects node 'ghost', which is not in this broker's topology"), std::string::npos)
      << log.str();
}

}  // namespace
}  // namespace ion::test
