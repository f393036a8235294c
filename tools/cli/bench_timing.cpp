#include "cli/bench_timing.h"
#include "cli/network.h"
#include "cli/command.h"

#include <spdlog/spdlog.h>

#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "ion/broker/broker.h"
#include "ion/core/histogram.h"
#include "ion/builtin/generator.h"
#include "ion/builtin/sink.h"
#include "ion/linkem/link_emulator.h"
#include "ion/node/node.h"

namespace ion {

namespace {

using namespace std::chrono_literals;
using linkem::LinkEmulator;
using linkem::LinkProfile;

// Truth: network time is the broker's steady clock, and every node clock here is a SkewedClock of
// the same steady clock, so the true network time of any local reading is known exactly.
const Clock& steady() { return SteadyClock::instance(); }

// Nodes stop before the link emulators in front of them go (declared after them).
struct StopNodesFirst {
  InProcessNetwork& net;
  ~StopNodesFirst() { net.stop_nodes(); }
};

BrokerOptions broker_options(Topology t) {
  BrokerOptions o;
  o.listen = "tcp://127.0.0.1:*";
  o.topology = std::move(t);
  o.stats_interval = 0ms;
  return o;
}

struct ClockResult {
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
  int64_t max_ns = 0;
  int64_t uncertainty_p50_ns = 0;
  uint64_t samples = 0;
  uint64_t bound_violations = 0;  // |error| > reported uncertainty
};

ClockResult measure_clock(const std::optional<LinkProfile>& link, std::chrono::seconds duration,
                          uint32_t probe_burst, std::chrono::milliseconds resync) {
  Topology t;
  t.nodes = {{"probe", "sink", 0, 1}};
  InProcessNetwork broker(broker_options(t));
  std::unique_ptr<LinkEmulator> em;
  std::string ep = broker.endpoint();
  if (link) {
    em = std::make_unique<LinkEmulator>(*link, "127.0.0.1:0", ep, 7);
    ep = em->endpoint();
  }
  const SkewedClock clock(steady(), 3'700'000'000, 50.0);  // 3.7 s ahead, 50 ppm fast
  NodeOptions no;
  no.name = "probe";
  no.broker = ep;
  no.probe_burst = probe_burst;
  no.resync_interval = resync;
  const StopNodesFirst guard{broker};
  Node& n = broker.add_node(no, std::make_unique<SinkDriver>(SinkOptions{1}),
                            {.audit = std::nullopt, .via = no.broker, .clock = &clock});
  ClockResult r;
  if (!n.wait_registered(1, 20s)) return r;
  std::this_thread::sleep_for(3500ms);  // the three initial bursts, 1 s apart
  Histogram err;
  Histogram unc;
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    const int64_t truth = steady().now_ns();
    const int64_t local = clock.local_at(truth);
    const ClockEstimate e = n.clock_estimate(local);
    const int64_t error = std::llabs(local + e.offset_ns - truth);
    err.record(error);
    unc.record(e.uncertainty_ns);
    r.bound_violations += error > e.uncertainty_ns ? 1 : 0;
    std::this_thread::sleep_for(20ms);
  }
  r.p50_ns = err.quantile_ns(0.5);
  r.p99_ns = err.quantile_ns(0.99);
  r.max_ns = err.max_ns();
  r.uncertainty_p50_ns = unc.quantile_ns(0.5);
  r.samples = err.count();
  return r;
}

// Records when each event really reached the device, against its deadline in true network time.
class TruthSink final : public Driver {
 public:
  [[nodiscard]] DriverInfo describe() const override { return {"sink", 2, 0, 16}; }
  void start(Emitter& /*emitter*/) override {}
  void stop() noexcept override {}
  void deliver(const BatchHeader& h, const EventBatch& e, const Delivery& d) noexcept override {
    const int64_t now = steady().now_ns();
    if (d.late) {
      late_ += e.size();
      return;
    }
    for (size_t i = 0; i < e.size(); ++i) {
      const int64_t error = now - (e.times_ns[i] + h.delay_ns);
      if (error < 0) ++early_;
      error_.record(error < 0 ? -error : error);
    }
  }
  Histogram error_;
  std::atomic<uint64_t> late_{0};
  std::atomic<uint64_t> early_{0};
};

struct DeliveryResult {
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
  int64_t max_ns = 0;
  uint64_t delivered = 0;
  uint64_t late = 0;
  uint64_t early = 0;
  int64_t latency_max_ns = 0;
  int64_t own_p99_ns = 0;  // release - deadline as the node itself measures it
  uint64_t received = 0;   // every event that reached the sink node, on time or late
  uint64_t late_after_warmup = 0;  // the same, from 5 s after the source started
  uint64_t received_after_warmup = 0;
  int64_t final_delay_ns = 0;
  uint64_t raises = 0;
  uint64_t lowers = 0;
};

DeliveryResult measure_delivery(const std::optional<LinkProfile>& link,
                                std::chrono::milliseconds delay, std::chrono::seconds duration,
                                bool auto_delay = false) {
  Topology t;
  t.nodes = {{"gen", "generator", 16, 0}, {"sink", "sink", 0, 16}};
  t.connections = {connect_whole(
      "gen", "sink", std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count(), "bench")};
  if (auto_delay) {  // from the default start value, like a user who writes `delay: auto`
    t.connections[0].auto_delay = true;
    t.connections[0].delay_ns = t.connections[0].auto_options.initial_ns;
  }
  InProcessNetwork broker(broker_options(t));
  std::unique_ptr<LinkEmulator> gen_link;
  std::unique_ptr<LinkEmulator> sink_link;
  if (link) {
    gen_link = std::make_unique<LinkEmulator>(*link, "127.0.0.1:0", broker.endpoint(), 21);
    sink_link = std::make_unique<LinkEmulator>(*link, "127.0.0.1:0", broker.endpoint(), 22);
  }
  const SkewedClock gen_clock(steady(), -1'200'000'000, -30.0);
  const SkewedClock sink_clock(steady(), 3'700'000'000, 50.0);
  NodeOptions so;
  so.name = "sink";
  so.broker = link ? sink_link->endpoint() : broker.endpoint();
  so.probe_burst = link ? 32 : 8;
  so.resync_interval = link ? 1000ms : 2000ms;
  NodeOptions go = so;
  go.name = "gen";
  go.broker = link ? gen_link->endpoint() : broker.endpoint();
  auto truth = std::make_unique<TruthSink>();
  TruthSink* sink = truth.get();
  const StopNodesFirst guard{broker};
  Node& s = broker.add_node(so, std::move(truth),
                            {.audit = std::nullopt, .via = so.broker, .clock = &sink_clock});
  DeliveryResult r;
  if (!s.wait_registered(1, 20s)) return r;
  GeneratorOptions g;
  g.channels = 16;
  g.rate_hz = 100;
  auto gd = std::make_unique<GeneratorDriver>(g);
  GeneratorDriver* gen = gd.get();
  Node& gn = broker.add_node(go, std::move(gd),
                             {.audit = std::nullopt, .via = go.broker, .clock = &gen_clock});
  if (!gn.wait_registered(1, 20s)) return r;
  constexpr auto kWarmup = 5s;
  std::this_thread::sleep_for(kWarmup);
  const NodeStats warm = s.stats();
  std::this_thread::sleep_for(duration > kWarmup ? duration - kWarmup : 1s);
  gen->stop();
  std::this_thread::sleep_for(delay + 500ms);  // drain the last deadlines
  const NodeStats st = s.stats();
  r.p50_ns = sink->error_.quantile_ns(0.5);
  r.p99_ns = sink->error_.quantile_ns(0.99);
  r.max_ns = sink->error_.max_ns();
  r.delivered = sink->error_.count();
  r.late = st.late_events;
  r.early = sink->early_.load();
  r.latency_max_ns = st.latency_max_ns;
  r.own_p99_ns = st.delivery_error_p99_ns;
  r.received = st.received_events + st.late_dropped;
  r.late_after_warmup = st.late_events - warm.late_events;
  r.received_after_warmup = r.received - (warm.received_events + warm.late_dropped);
  r.final_delay_ns = broker.broker().connection_stats()[0].delay_ns;
  r.raises = broker.broker().connection_stats()[0].raises;
  r.lowers = broker.broker().connection_stats()[0].lowers;
  return r;
}

double us(int64_t ns) { return static_cast<double>(ns) / 1e3; }

}  // namespace

int run_bench_timing(const TimingBenchOptions& o, std::ostream& out) {
  const auto span = o.quick ? 5s : 30s;
  out << std::fixed << std::setprecision(1);
  out << "ion bench timing" << (o.quick ? " --quick" : "")
      << ": node clocks 3.7 s ahead and 50 ppm fast (truth known through the clock seam)\n";

  const ClockResult lo = measure_clock(std::nullopt, span, 8, 2000ms);
  out << "  clock offset error, loopback:            p50 " << us(lo.p50_ns) << " us, p99 "
      << us(lo.p99_ns) << " us, max " << us(lo.max_ns) << " us (bound p50 "
      << us(lo.uncertainty_p50_ns) << " us, violations " << lo.bound_violations << "/"
      << lo.samples << ")\n";
  const auto wan = LinkProfile::preset("wan-20ms-5ms");
  // Over a jittery path the error falls as 1/sqrt(probes): 32 probes a second (~2 kB/s).
  const ClockResult wn = measure_clock(wan, span, 32, 1000ms);
  out << "  clock offset error, 20 ms +/- 5 ms WAN:   p50 " << us(wn.p50_ns) << " us, p99 "
      << us(wn.p99_ns) << " us, max " << us(wn.max_ns) << " us (bound p50 "
      << us(wn.uncertainty_p50_ns) << " us, violations " << wn.bound_violations << "/"
      << wn.samples << ")\n";

  // Scheduler precision: loopback, so the sink's clock error (a few us) barely adds to it.
  const DeliveryResult dl = measure_delivery(std::nullopt, 20ms, span);
  out << "  playout delivery error (true time), loopback, delay 20 ms: p50 " << us(dl.p50_ns)
      << " us, p99 " << us(dl.p99_ns) << " us, max " << us(dl.max_ns) << " us over "
      << dl.delivered << " events (node's own view p99 " << us(dl.own_p99_ns) << " us); late "
      << dl.late << ", early in true time " << dl.early << "\n";
  // Compensation: two 20 ms +/- 5 ms hops (worst case well under 100 ms) with a 100 ms delay.
  const DeliveryResult dw = measure_delivery(wan, 100ms, span);
  out << "  through two 20 ms +/- 5 ms links, delay 100 ms: " << dw.delivered
      << " events on time, late " << dw.late << " (worst network latency "
      << us(dw.latency_max_ns) / 1e3 << " ms); true delivery error p99 " << us(dw.p99_ns)
      << " us, i.e. the sink's clock error over that link\n";
  // delay: auto over two Southampton-Padova hops (TCP-style loss included), default start.
  const DeliveryResult da =
      measure_delivery(*LinkProfile::preset("southampton-padova"), 20ms, span, true);
  const auto fraction = [](uint64_t late, uint64_t all) {
    return all > 0 ? static_cast<double>(late) / static_cast<double>(all) : 1.0;
  };
  const double late_fraction_auto = fraction(da.late, da.received);
  const double late_fraction_steady = fraction(da.late_after_warmup, da.received_after_warmup);
  out << std::setprecision(4) << "  delay auto over two southampton-padova links: late "
      << da.late << " of " << da.received << " (" << late_fraction_auto * 100
      << " %), after the first 5 s " << da.late_after_warmup << " of " << da.received_after_warmup
      << " (" << late_fraction_steady * 100 << " %); delay settled at "
      << static_cast<double>(da.final_delay_ns) / 1e6 << " ms after " << da.raises
      << " raises and " << da.lowers << " lowers (worst network latency "
      << static_cast<double>(da.latency_max_ns) / 1e6 << " ms)\n"
      << std::setprecision(1);

  if (o.json) {
    std::ostringstream j;
    j << std::fixed << std::setprecision(1);
    const auto clock_json = [&](const ClockResult& c) {
      j << "{\"p50\":" << us(c.p50_ns) << ",\"p99\":" << us(c.p99_ns) << ",\"max\":"
        << us(c.max_ns) << ",\"bound_p50\":" << us(c.uncertainty_p50_ns)
        << ",\"bound_violations\":" << c.bound_violations << ",\"samples\":" << c.samples << "}";
    };
    j << "{\"clock_offset_error_us\":{\"loopback\":";
    clock_json(lo);
    j << ",\"wan\":";
    clock_json(wn);
    j << "},\"delivery_error_us\":{\"p50\":" << us(dl.p50_ns) << ",\"p99\":" << us(dl.p99_ns)
      << ",\"max\":" << us(dl.max_ns) << "},\"delivered_events\":" << dl.delivered
      << ",\"wan_delivery_error_us\":{\"p50\":" << us(dw.p50_ns) << ",\"p99\":" << us(dw.p99_ns)
      << "},\"wan_worst_latency_ms\":" << us(dw.latency_max_ns) / 1e3
      << ",\"late_events_fixed_delay\":" << dw.late
      << ",\"late_fraction_auto\":" << std::setprecision(6) << late_fraction_auto
      << ",\"late_fraction_auto_after_warmup\":" << late_fraction_steady
      << ",\"auto_delay_ms\":" << static_cast<double>(da.final_delay_ns) / 1e6
      << ",\"quick\":" << (o.quick ? "true" : "false") << "}";
    out << j.str() << "\n";
  }
  const bool ok = lo.samples > 0 && wn.samples > 0 && dl.delivered > 0 && dw.delivered > 0 &&
                  da.received > 0 &&
                  lo.bound_violations == 0 && wn.bound_violations == 0;
  return ok ? 0 : 1;
}

}  // namespace ion

namespace ion::cli {
namespace {

class BenchTimingCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "timing", "clock offset error, playout delivery error and late events, on loopback and "
        "through the link emulator");
    c->add_flag("--quick", o_.quick, "short runs (noisier figures)");
    c->add_flag("--json", o_.json, "end with one JSON line");
    return c;
  }
  int run(Context& ctx) override { return run_bench_timing(o_, ctx.out); }

 private:
  TimingBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_timing_command() { return std::make_unique<BenchTimingCommand>(); }

}  // namespace ion::cli
