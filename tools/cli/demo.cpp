#include "cli/demo.h"
#include "cli/command.h"
#include "cli/network.h"

#include <spdlog/spdlog.h>

#include <iomanip>
#include <ostream>
#include <sstream>
#include <thread>

#include "ion/broker/broker.h"
#include "ion/core/json.h"
#include "ion/builtin/generator.h"
#include "ion/builtin/sink.h"
#include "ion/node/node.h"

namespace ion {

int run_lab_demo(const DemoOptions& o, std::ostream& out);  // demo_labs.cpp

namespace {

struct Row {
  std::string name;
  std::string kind;
  uint64_t emitted = 0;
  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t late = 0;
  uint64_t dropped = 0;
};

// `dropped` is everything this node dropped itself: its send queue, late events under the drop
// policy, and playout overflow.
Row row_of(const std::string& name, const std::string& kind, const NodeStats& s) {
  return {name, kind, s.emitted_events, s.received_events, s.lost_events,
          s.late_events + s.playout_overrun,  // every delivery flagged late
          s.dropped_events + s.late_dropped + s.playout_overflow + s.playout_abandoned};
}

}  // namespace

int run_minimal_demo(const DemoOptions& o, std::ostream& out) {
  Topology topo;
  topo.nodes.push_back({"gen", "generator", o.channels, 0});
  topo.nodes.push_back({"sink", "sink", 0, o.channels});
  topo.connections.push_back(connect_whole(
      "gen", "sink", std::chrono::duration_cast<std::chrono::nanoseconds>(o.delay).count(), "demo"));

  BrokerOptions bo;
  bo.listen = "tcp://127.0.0.1:*";
  bo.topology = topo;
  bo.stats_interval = std::chrono::milliseconds(0);
  InProcessNetwork net(bo);
  Broker& broker = net.broker();
  const std::string endpoint = net.endpoint();

  GeneratorOptions go;
  go.channels = o.channels;
  go.rate_hz = o.rate_hz;
  go.seed = o.seed;
  NodeOptions gen_opts;
  gen_opts.name = "gen";
  NodeOptions sink_opts = gen_opts;
  sink_opts.name = "sink";
  auto gen_driver = std::make_unique<GeneratorDriver>(go);
  auto sink_driver = std::make_unique<SinkDriver>(SinkOptions{o.channels});
  GeneratorDriver* gen = gen_driver.get();
  SinkDriver* sink = sink_driver.get();
  // The sink checks order and earliness itself: no audit around these two.
  InProcessNetwork::NodeSetup kNoAudit;
  kNoAudit.audit = std::nullopt;
  Node& sink_node = net.add_node(sink_opts, std::move(sink_driver), kNoAudit);
  Node* gen_node_ptr = nullptr;
  const auto shutdown = [&] { net.stop(); };

  out << "ion demo: broker on " << endpoint << ", generator 'gen' (" << o.channels
      << " channels at " << o.rate_hz << " Hz each) -> sink 'sink', delay "
      << o.delay.count() << " ms, for " << o.duration_s << " s\n";
  // The generator starts once the sink is registered: the broker drops (and counts) what it
  // routes to a node that has not joined yet, and the sink cannot count what it never saw, so
  // the sink-side accounting below would have a hole at the start.
  bool registered = sink_node.wait_registered(1, std::chrono::seconds(10));
  if (registered) {
    gen_node_ptr = &net.add_node(gen_opts, std::move(gen_driver), kNoAudit);
    registered = gen_node_ptr->wait_registered(1, std::chrono::seconds(10));
  }
  if (!registered) {
    out << "ion demo: nodes did not register with the broker within 10 s\n";
    shutdown();
    return 2;
  }

  Node& gen_node = *gen_node_ptr;
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + std::chrono::duration<double>(o.duration_s);
  auto next_line = t0 + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_until(std::min<std::chrono::steady_clock::time_point>(
        next_line, std::chrono::time_point_cast<std::chrono::steady_clock::duration>(end)));
    if (std::chrono::steady_clock::now() >= next_line) {
      const auto g = gen_node.stats();
      const auto s = sink_node.stats();
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      out << std::fixed << std::setprecision(1) << "  t=" << t << "s  gen emitted "
          << g.emitted_events << "  sink received " << s.received_events << "  lost "
          << s.lost_events << "  late " << s.late_events + s.playout_overrun << "  latency p99 "
          << std::setprecision(3) << static_cast<double>(s.latency_p99_ns) / 1e6
          << " ms  delivery error p99 " << static_cast<double>(s.delivery_error_p99_ns) / 1e3
          << " us  clock offset " << s.clock_offset_ns / 1000 << " us +/- "
          << s.clock_uncertainty_ns / 1000 << " us\n";
      next_line += std::chrono::seconds(1);
    }
  }

  // Stop producing, then wait until everything emitted is accounted for at the sink.
  gen->stop();
  const uint64_t emitted = gen_node.stats().emitted_events;
  const auto drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < drain_deadline) {
    const auto s = sink_node.stats();
    if (s.received_events + s.lost_events + s.late_dropped + s.playout_overflow >= emitted) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  shutdown();

  const NodeStats g = gen_node.stats();
  const NodeStats s = sink_node.stats();
  const auto bstats = broker.node_stats();
  uint64_t broker_dropped = 0;
  for (const auto& b : bstats) broker_dropped += b.dropped_events;
  const std::vector<Row> rows = {row_of("gen", "generator", g), row_of("sink", "sink", s)};

  const bool accounted =
      s.received_events + s.lost_events + s.late_dropped + s.playout_overflow == g.emitted_events;
  const bool ordered = sink->out_of_order() == 0 && s.duplicate_or_reordered == 0 &&
                       sink->early() == 0;
  const bool ok = accounted && ordered;

  out << "\n  " << std::left << std::setw(8) << "node" << std::setw(11) << "kind" << std::right
      << std::setw(10) << "emitted" << std::setw(10) << "received" << std::setw(8) << "lost"
      << std::setw(8) << "late" << std::setw(9) << "dropped" << "\n";
  for (const auto& r : rows) {
    out << "  " << std::left << std::setw(8) << r.name << std::setw(11) << r.kind << std::right
        << std::setw(10) << r.emitted << std::setw(10) << r.received << std::setw(8) << r.lost
        << std::setw(8) << r.late << std::setw(9) << r.dropped << "\n";
  }
  out << std::fixed << std::setprecision(3) << "  broker dropped " << broker_dropped
      << " events; network latency p50 " << static_cast<double>(s.latency_p50_ns) / 1e6
      << " ms, p99 " << static_cast<double>(s.latency_p99_ns) / 1e6 << " ms, max "
      << static_cast<double>(s.latency_max_ns) / 1e6 << " ms\n"
      << "  delivered at source time + " << o.delay.count() << " ms: error p50 "
      << static_cast<double>(s.delivery_error_p50_ns) / 1e3 << " us, p99 "
      << static_cast<double>(s.delivery_error_p99_ns) / 1e3 << " us, max "
      << static_cast<double>(s.delivery_error_max_ns) / 1e3 << " us; early "
      << sink->early() << "; out of order " << sink->out_of_order() << "\n";
  out << (ok ? "  OK: every emitted event was delivered (never early) or counted, in order, once\n"
             : "  BROKEN PROMISE: events unaccounted for, duplicated, out of order or early\n");

  if (o.json) {
    std::ostringstream j;
    j << "{\"ok\":" << (ok ? "true" : "false") << ",\"duration_s\":" << o.duration_s
      << ",\"broker\":{\"endpoint\":\"" << json_escape(endpoint) << "\",\"dropped\":"
      << broker_dropped << "},\"nodes\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      j << (i == 0 ? "" : ",") << "{\"name\":\"" << json_escape(r.name) << "\",\"kind\":\""
        << r.kind << "\",\"emitted\":" << r.emitted << ",\"received\":" << r.received
        << ",\"lost\":" << r.lost << ",\"late\":" << r.late << ",\"dropped\":" << r.dropped
        << "}";
    }
    j << "]}";
    out << j.str() << "\n";
  }
  out.flush();
  return ok ? 0 : 1;
}

int run_demo(const DemoOptions& o, std::ostream& out) {
  if (o.topology == "minimal") return run_minimal_demo(o, out);
  return run_lab_demo(o, out);
}

}  // namespace ion

namespace ion::cli {
namespace {

class DemoCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "demo", "emulate the three-lab network (MEA culture, silicon neurons, memristive synapses) "
                "on this machine over emulated WAN links; record it and write a report");
    c->add_option("--duration", o_.duration_s, "seconds to run")
        ->check(CLI::Range(0.1, 86400.0))->capture_default_str();
    c->add_option("--topology", o_.topology,
                  "three-lab, large (60 electrodes, 256 neurons, 32x32 crossbar), iontronic (a "
                  "culture driving iontronic neurons through nanofluidic synapses), chemical (dopamine from a "
                  "chemical neuron modulating the synapses' plasticity), minimal "
                  "(generator -> sink) or a folder with broker.yaml and lab configs")
        ->capture_default_str();
    c->add_option("--out", o_.out_dir, "folder for the recording and report.html "
                                       "(default ./ion-demo-DATE-TIME)");
    c->add_option("--configs", o_.configs_dir, "where the shipped configs are");
    c->add_flag("--no-emulated-wan", no_wan_, "connect the labs to the broker directly");
    c->add_option("--http", o_.http,
                  "serve the live dashboard, /metrics and /api/status on HOST:PORT, e.g. 127.0.0.1:8080");
    c->add_flag("--plaintext", o_.plaintext,
                "links without CURVE encryption (by default every lab and the recorder get "
                "a key pair made for the run)");
    c->add_option("--channels", o_.channels, "minimal: generator channels")
        ->check(CLI::Range(1, 4096))->capture_default_str();
    c->add_option("--rate", o_.rate_hz, "minimal: spike rate per channel, Hz")
        ->check(CLI::Range(0.0, 100000.0))->capture_default_str();
    c->add_option("--seed", o_.seed, "minimal: generator seed")->capture_default_str();
    c->add_option("--delay-ms", delay_ms_, "minimal: connection delay, ms")
        ->check(CLI::Range(0.0, 10000.0))->capture_default_str();
    c->add_flag("--json", o_.json, "end with one JSON line: {ok, nodes: [...], synapses: [...]}");
    return c;
  }
  int run(Context& ctx) override {
    o_.delay = std::chrono::milliseconds(static_cast<int64_t>(delay_ms_));
    o_.emulated_wan = !no_wan_;
    return run_demo(o_, ctx.out);
  }

 private:
  DemoOptions o_;
  double delay_ms_ = 20;
  bool no_wan_ = false;
};

}  // namespace

std::unique_ptr<Command> make_demo_command() { return std::make_unique<DemoCommand>(); }

}  // namespace ion::cli
