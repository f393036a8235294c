#include "cli/bench_record.h"
#include "cli/command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <random>
#include <thread>

#include "ion/core/clock.h"
#include "ion/core/codec.h"
#include "ion/core/record.h"
#include "ion/core/dataset.h"
#include "ion/interchange/export.h"
#include "ion/replay/replay_driver.h"

namespace ion {
namespace {

using Wall = std::chrono::steady_clock;
double since(Wall::time_point t0) { return std::chrono::duration<double>(Wall::now() - t0).count(); }

// Stamps and lateness of what a replay emits, on the real clock.
class TimingEmitter final : public Emitter {
 public:
  EmitStatus emit(const EventBatch& b) noexcept override {
    const int64_t now = local_now_ns();
    events_ += b.size();
    last_lag_ns_ = now - b.times_ns.back();
    max_lag_ns_ = std::max(max_lag_ns_, now - b.times_ns.front());
    return EmitStatus::queued;
  }
  [[nodiscard]] int64_t local_now_ns() const noexcept override { return SteadyClock::instance().now_ns(); }
  [[nodiscard]] int64_t to_network_ns(int64_t local_ns) const noexcept override { return local_ns; }
  uint64_t events_ = 0;
  int64_t last_lag_ns_ = 0;
  int64_t max_lag_ns_ = 0;
};

}  // namespace

int run_bench_record(const RecordBenchOptions& o, std::ostream& out) {
  const std::string dir = std::filesystem::temp_directory_path().string() + "/ion-bench-record-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/bench.ionrec";
  char line[512];

  // 1. Write: batches of 256 spikes on 4096 channels, as a tap receives them.
  const uint64_t batches = o.quick ? 4000 : 40000;
  Codec codec;
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint32_t> ch(0, 4095);
  std::vector<std::string> frames(64);
  int64_t t = 1'000'000'000;
  for (auto& f : frames) {
    EventBatch b;
    for (int i = 0; i < 256; ++i) b.push(ch(rng), t += 40'000);
    BatchHeader h;
    h.source_node = "mea";
    (void)codec.encode_batch(h, b, f);
  }
  v1::RecordHeader hdr;
  hdr.set_origin("ion bench record");
  const auto t0 = Wall::now();
  {
    record::Writer w(file, hdr);
    for (uint64_t i = 0; i < batches; ++i) {
      const std::string& f = frames[i % frames.size()];
      (void)w.batch(0, {reinterpret_cast<const uint8_t*>(f.data()), f.size()}, 256, t);
      if (i % 4096 == 0) (void)w.flush();
    }
    w.close();
  }
  const double write_s = since(t0);
  const double write_eps = static_cast<double>(batches * 256) / write_s;
  const auto bytes = std::filesystem::file_size(file);

  // 2. Read back every event (decode included), then export to CSV.
  const auto t1 = Wall::now();
  ion::LoadStats st;
  const ion::Dataset d = ion::load_recording(file, &st);
  const double read_s = since(t1);
  const double read_eps = static_cast<double>(st.events) / read_s;
  const auto t2 = Wall::now();
  const auto ex = interchange::export_csv(d, dir + "/bench.csv");
  const double csv_eps = static_cast<double>(ex.events) / since(t2);

  // 3. Replay an hour of data (a 26-channel culture at ~8 Hz per channel) sped up, and compare
  //    the last event's emission with its schedule.
  const double speed = o.quick ? 900 : 60;
  replay::ReplayEvents ev;
  std::exponential_distribution<double> gap(200.0);
  for (double s = 0; s < 3600; s += gap(rng)) {
    ev.channels.push_back(static_cast<uint32_t>(ev.channels.size() % 26));
    ev.times_ns.push_back(static_cast<int64_t>(std::llround(s * 20000)) * 50'000);  // 20 kHz grid
  }
  ev.channel_count = 26;
  replay::ReplayOptions ro;
  ro.speed = speed;
  replay::ReplayDriver rep(ro, ev);
  TimingEmitter em;
  rep.start(em);
  while (!rep.finished()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  rep.stop();

  out << "ion bench record" << (o.quick ? " (quick)" : "") << "\n";
  std::snprintf(line, sizeof line, "  write:   %.2f M events/s (%llu events, %.1f MB, %.2f B/event)\n", write_eps / 1e6,
                static_cast<unsigned long long>(batches * 256), static_cast<double>(bytes) / 1e6,
                static_cast<double>(bytes) / static_cast<double>(batches * 256));
  out << line;
  std::snprintf(line, sizeof line, "  read:    %.2f M events/s (decoded into memory)\n  export:  %.2f M events/s (CSV)\n",
                read_eps / 1e6, csv_eps / 1e6);
  out << line;
  std::snprintf(line, sizeof line,
                "  replay:  1 h of data (%zu events) at %.0fx: last event emitted %.3f ms after its stamp, worst %.3f ms\n",
                ev.times_ns.size(), speed, static_cast<double>(em.last_lag_ns_) / 1e6,
                static_cast<double>(em.max_lag_ns_) / 1e6);
  out << line;
  if (o.json) {
    std::snprintf(line, sizeof line,
                  "{\"write_events_per_s\":%.0f,\"read_events_per_s\":%.0f,\"export_csv_events_per_s\":%.0f,"
                  "\"bytes_per_event\":%.3f,\"replay_hour_events\":%zu,\"replay_speed\":%.0f,"
                  "\"replay_last_lag_ms\":%.3f,\"replay_max_lag_ms\":%.3f,\"quick\":%s}",
                  write_eps, read_eps, csv_eps, static_cast<double>(bytes) / static_cast<double>(batches * 256),
                  ev.times_ns.size(), speed, static_cast<double>(em.last_lag_ns_) / 1e6,
                  static_cast<double>(em.max_lag_ns_) / 1e6, o.quick ? "true" : "false");
    out << line << "\n";
  }
  std::filesystem::remove_all(dir);
  return st.events == batches * 256 && em.events_ == ev.times_ns.size() ? 0 : 1;
}

}  // namespace ion

namespace ion::cli {
namespace {

class BenchRecordCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "record", "recording write/read/export throughput and replay timing over an hour of data");
    c->add_flag("--quick", o_.quick, "short runs (noisier figures)");
    c->add_flag("--json", o_.json, "end with one JSON line");
    return c;
  }
  int run(Context& ctx) override { return run_bench_record(o_, ctx.out); }

 private:
  RecordBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_record_command() { return std::make_unique<BenchRecordCommand>(); }

}  // namespace ion::cli
