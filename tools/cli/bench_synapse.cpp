#include "cli/bench_synapse.h"
#include "cli/command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <random>
#include <thread>
#include <vector>

#include "ion/core/clock.h"
#include "ion/synapse/synapse_driver.h"

namespace ion {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Takes what the driver emits and counts it (the node's queue and codec are measured by the
// codec and broker benchmarks).
class CountingEmitter final : public Emitter {
 public:
  EmitStatus emit(const EventBatch& b) noexcept override {
    events_.fetch_add(b.size(), std::memory_order_relaxed);
    return EmitStatus::queued;
  }
  [[nodiscard]] int64_t local_now_ns() const noexcept override { return SteadyClock::instance().now_ns(); }
  [[nodiscard]] int64_t to_network_ns(int64_t local_ns) const noexcept override { return local_ns; }
  [[nodiscard]] uint64_t events() const noexcept { return events_.load(); }

 private:
  std::atomic<uint64_t> events_{0};
};

struct Transmission {
  double events_per_s = 0;
  uint64_t events = 0;
  double seconds = 0;
  int64_t inbox_full = 0;
};

// A 32x32 board, synapse k: neuron k -> neuron 1024 + k (rate rule); batches of 256 presynaptic
// spikes spread over the 1024 presynaptic neurons, handed to deliver() back to back.
Transmission bench_transmission(double seconds, synapse::DeviceModel model = synapse::DeviceModel::tiox) {
  synapse::SynapseDriverOptions o;
  o.crossbar.device.model = model;
  o.neurons = 2048;
  for (uint32_t k = 0; k < 1024; ++k) o.synapses.push_back({k, 1024 + k, {k / 32, k % 32}});
  o.timing.read_time = std::chrono::microseconds(0);
  o.timing.pulse_time = std::chrono::microseconds(0);
  o.timing.queue_capacity = 4096;
  synapse::SynapseDriver d(o);
  CountingEmitter e;
  d.start(e);
  while (d.counters().at("reads_done") < 1024) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const uint64_t reports = e.events();  // weight reports of the initial reads
  EventBatch in;
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint32_t> pre(0, 1023);
  BatchHeader h;
  h.delay_ns = 10'000'000;
  const Delivery delivery;
  int64_t t = SteadyClock::instance().now_ns();
  std::vector<EventBatch> batches(64);
  for (auto& b : batches) {
    for (int i = 0; i < 256; ++i) b.push(pre(rng), t += 1000);
  }
  const auto t0 = Clock::now();
  uint64_t calls = 0;
  while (seconds_since(t0) < seconds) {
    for (int r = 0; r < 16; ++r) d.deliver(h, batches[calls++ % batches.size()], delivery);
  }
  Transmission x;
  x.seconds = seconds_since(t0);
  x.events = e.events() - reports;
  x.events_per_s = static_cast<double>(x.events) / x.seconds;
  x.inbox_full = d.counters().at("plasticity_inbox_full");
  d.stop();
  return x;
}

struct CellDrives {
  double drives_per_s = 0;
  double firings_per_s = 0;      // of wall time
  double realtime_factor = 0;    // simulated network time / wall time
  uint64_t drives = 0;
  uint64_t firings = 0;
};

// A 32x32 board of TS-PCM cells (docs/devices/ts-pcm.md), synapse k: neuron k -> its cell; 1024
// presynaptic neurons at 10 Hz (Poisson), each spike a 100 ms drive of 10 uA (enough for an
// amorphous cell to fire), handed to deliver() in time order in batches of 256.
CellDrives bench_cells(double sim_seconds) {
  synapse::SynapseDriverOptions o;
  o.crossbar.device.model = synapse::DeviceModel::ts_pcm;
  o.crossbar.device.ts_pcm.cell.drive_a = 10e-6;
  o.neurons = 2048;
  for (uint32_t k = 0; k < 1024; ++k) o.synapses.push_back({k, 1024 + k, {k / 32, k % 32}, synapse::RuleKind::none});
  o.timing.read_time = std::chrono::microseconds(0);
  o.timing.pulse_time = std::chrono::microseconds(0);
  synapse::SynapseDriver d(o);
  CountingEmitter e;
  d.start(e);
  while (d.counters().at("reads_done") < 1024) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::vector<std::pair<int64_t, uint32_t>> spikes;
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> gap(10.0);
  const int64_t t0_ns = SteadyClock::instance().now_ns();
  for (uint32_t n = 0; n < 1024; ++n) {
    for (double at = gap(rng); at < sim_seconds; at += gap(rng)) {
      spikes.emplace_back(t0_ns + static_cast<int64_t>(at * 1e9), n);
    }
  }
  std::sort(spikes.begin(), spikes.end());
  std::vector<EventBatch> batches;
  for (size_t i = 0; i < spikes.size(); i += 256) {
    EventBatch b;
    for (size_t j = i; j < std::min(spikes.size(), i + 256); ++j) b.push(spikes[j].second, spikes[j].first);
    batches.push_back(std::move(b));
  }
  const auto start = Clock::now();
  for (const auto& b : batches) d.deliver(BatchHeader{}, b, Delivery{});
  const double wall = seconds_since(start);
  CellDrives x;
  x.drives = static_cast<uint64_t>(d.counters().at("cell_drives"));
  x.firings = static_cast<uint64_t>(d.counters().at("cell_firings"));
  x.drives_per_s = static_cast<double>(x.drives) / wall;
  x.firings_per_s = static_cast<double>(x.firings) / wall;
  x.realtime_factor = sim_seconds / wall;
  d.stop();
  return x;
}

struct Evaluations {
  double per_s = 0;
  uint64_t evaluations = 0;
  uint64_t pulses = 0;
  double seconds = 0;
};

// 1024 synapses (rate rule or STDP), presynaptic neurons at 20 Hz and postsynaptic at 5 Hz
// (Poisson), fed in time order and committed every simulated millisecond.
Evaluations bench_plasticity(synapse::RuleKind rule, double sim_seconds) {
  std::vector<synapse::PlasticSynapse> syn;
  for (uint32_t k = 0; k < 1024; ++k) syn.push_back({k, 1024 + (k % 256), rule});
  std::mt19937_64 rng(2);
  std::vector<std::pair<int64_t, uint32_t>> spikes;
  for (uint32_t n = 0; n < 1280; ++n) {
    std::exponential_distribution<double> gap(n < 1024 ? 20.0 : 5.0);
    for (double at = gap(rng); at < sim_seconds; at += gap(rng)) spikes.emplace_back(static_cast<int64_t>(at * 1e9), n);
  }
  std::sort(spikes.begin(), spikes.end());
  synapse::RuleSet rules;
  synapse::PlasticityEngine e(1280, syn, rules);
  std::vector<synapse::Pulse> out;
  const auto t0 = Clock::now();
  int64_t next_commit = 1'000'000;
  for (const auto& [t, n] : spikes) {
    while (t >= next_commit) {
      e.commit(next_commit, out);
      out.clear();
      next_commit += 1'000'000;
    }
    e.add_spike(n, t);
  }
  e.commit_all(out);
  Evaluations x;
  x.seconds = seconds_since(t0);
  x.evaluations = e.counters().evaluations;
  x.pulses = e.counters().ltp + e.counters().ltd;
  x.per_s = static_cast<double>(x.evaluations) / x.seconds;
  return x;
}

}  // namespace

int run_bench_synapse(const SynapseBenchOptions& o, std::ostream& out) {
  const double tx_s = o.quick ? 0.5 : 3.0;
  const double sim_s = o.quick ? 20.0 : 200.0;
  const Transmission tx = bench_transmission(tx_s);
  const Evaluations rate = bench_plasticity(synapse::RuleKind::rate, sim_s);
  const Evaluations stdp = bench_plasticity(synapse::RuleKind::stdp, sim_s);
  const Transmission nano = bench_transmission(tx_s, synapse::DeviceModel::nanofluidic);
  const CellDrives cells = bench_cells(o.quick ? 2.0 : 10.0);
  char line[256];
  out << "ion bench synapse" << (o.quick ? " (quick)" : "") << "\n";
  std::snprintf(line, sizeof line,
                "  transmission: %.2f M events/s (%llu events in %.2f s, 32x32 board, batches of 256; "
                "plasticity inbox full: %lld)\n",
                tx.events_per_s / 1e6, static_cast<unsigned long long>(tx.events), tx.seconds,
                static_cast<long long>(tx.inbox_full));
  out << line;
  std::snprintf(line, sizeof line,
                "  rate rule:    %.2f M evaluations/s (%llu evaluations, %llu pulses, %.0f s of "
                "network activity in %.3f s)\n",
                rate.per_s / 1e6, static_cast<unsigned long long>(rate.evaluations),
                static_cast<unsigned long long>(rate.pulses), sim_s, rate.seconds);
  out << line;
  std::snprintf(line, sizeof line,
                "  STDP:         %.2f M evaluations/s (%llu evaluations, %llu pulses)\n",
                stdp.per_s / 1e6, static_cast<unsigned long long>(stdp.evaluations),
                static_cast<unsigned long long>(stdp.pulses));
  out << line;
  std::snprintf(line, sizeof line,
                "  nanofluidic cells: transmission %.2f M events/s (same board and batches)\n",
                nano.events_per_s / 1e6);
  out << line;
  std::snprintf(line, sizeof line,
                "  TS-PCM cells: %.2f M drives/s, %.2f M firings/s: %.1fx real time for 1024 cells "
                "driven at 10 Hz (%llu drives, %llu firings)\n",
                cells.drives_per_s / 1e6, cells.firings_per_s / 1e6, cells.realtime_factor,
                static_cast<unsigned long long>(cells.drives), static_cast<unsigned long long>(cells.firings));
  out << line;
  const bool ok = tx.events > 0 && rate.evaluations > 0 && stdp.evaluations > 0 && nano.events > 0 &&
                  cells.firings > 0;
  if (o.json) {
    char json[512];
    std::snprintf(json, sizeof json,
                  "{\"transmitted_events_per_s\":%.0f,\"plasticity_evaluations_per_s\":%.0f,"
                  "\"stdp_evaluations_per_s\":%.0f,\"plasticity_inbox_full\":%lld,"
                  "\"nanofluidic_transmitted_events_per_s\":%.0f,\"tspcm_drives_per_s\":%.0f,"
                  "\"tspcm_realtime_factor_1024_at_10hz\":%.2f,\"quick\":%s}",
                  tx.events_per_s, rate.per_s, stdp.per_s, static_cast<long long>(tx.inbox_full),
                  nano.events_per_s, cells.drives_per_s, cells.realtime_factor, o.quick ? "true" : "false");
    out << json << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace ion

namespace ion::cli {
namespace {

class BenchSynapseCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "synapse", "transmitted synaptic events/s and plasticity evaluations/s of the synapse board");
    c->add_flag("--quick", o_.quick, "short runs (noisier figures)");
    c->add_flag("--json", o_.json, "end with one JSON line");
    return c;
  }
  int run(Context& ctx) override { return run_bench_synapse(o_, ctx.out); }

 private:
  SynapseBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_synapse_command() { return std::make_unique<BenchSynapseCommand>(); }

}  // namespace ion::cli
