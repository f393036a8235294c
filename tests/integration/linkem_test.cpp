// Through the userspace link emulator: real delay, loss, duplication and reordering between a
// node and the broker. Promise 1 must hold exactly: received + lost = emitted, nothing twice.
#include <algorithm>
#include <mutex>

#include "harness.h"
#include "ion/linkem/link_emulator.h"

namespace ion::test {
namespace {

using linkem::LinkEmulator;
using linkem::LinkProfile;

TEST(Linkem, ImpairedDownlinkKeepsAccountingExact) {
  Topology t;
  t.nodes = {{"gen", "generator", 8, 0}, {"sink", "sink", 0, 8}};
  t.connections = {connect_all("gen", "sink", 500ms)};
  BrokerRunner broker(broker_options(t));

  LinkProfile p;
  p.down.delay.base_ns = 2'000'000;
  p.down.delay.jitter_sd_ns = 500'000;
  p.down.loss = 0.03;
  p.down.loss_drops = true;
  p.down.duplicate = 0.03;
  p.down.reorder = 0.03;
  LinkEmulator link(p, "127.0.0.1:0", broker.endpoint(), 11);

  NodeRunner<SinkDriver> snk(node_options("sink", link.endpoint()), sink(8));
  ASSERT_TRUE(snk.node().wait_registered(1, 15s));
  constexpr uint64_t kEvents = 10000;
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()),
                                  generator(8, 1000.0, kEvents));
  ASSERT_TRUE(eventually([&] { return gen.driver().finished(); }, 30s));
  // A drop among the very last batches has no later batch to reveal it; so the exact identity is
  // checked against what the sink can know: every event up to the last batch it saw.
  (void)eventually([&] {
    const auto s = snk.stats();
    return s.received_events + s.lost_events >= kEvents;
  }, 10s);
  ASSERT_TRUE(eventually([&] {
    const auto s = snk.stats();
    return s.received_events + s.lost_events == s.source_index_seen;
  }, 10s));

  const auto ls = link.stats();
  const NodeStats s = snk.stats();
  EXPECT_GT(ls.down.dropped, 0U);
  EXPECT_GT(ls.down.duplicated, 0U);
  EXPECT_GT(ls.down.reordered, 0U);
  EXPECT_EQ(s.received_events + s.lost_events, s.source_index_seen);  // exact, despite everything
  EXPECT_LE(s.source_index_seen, kEvents);
  EXPECT_GE(s.source_index_seen + 200, kEvents) << "at most the last few batches unseen";
  EXPECT_GT(s.lost_events, 0U);
  EXPECT_GT(s.lost_batches, 0U);
  EXPECT_GT(s.duplicate_or_reordered, 0U);               // seen and not delivered
  EXPECT_EQ(snk.driver().out_of_order(), 0U);
  EXPECT_EQ(snk.driver().early(), 0U);
}

TEST(Linkem, DelayIsAppliedAndCompensated) {
  // 20 ms one way with jitter on both directions; a 100 ms connection delay absorbs it, so every
  // event is released at source time + 100 ms, none late, none early.
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}};
  t.connections = {connect_all("gen", "sink", 100ms)};
  BrokerRunner broker(broker_options(t));
  LinkEmulator gen_link(*LinkProfile::preset("wan-20ms-5ms"), "127.0.0.1:0",
                        broker.endpoint(), 1);
  LinkEmulator sink_link(*LinkProfile::preset("wan-20ms-5ms"), "127.0.0.1:0",
                         broker.endpoint(), 2);
  NodeOptions so = node_options("sink", sink_link.endpoint());
  so.broker_timeout = 3s;
  NodeOptions go = node_options("gen", gen_link.endpoint());
  go.broker_timeout = 3s;
  NodeRunner<SinkDriver> snk(so, sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 15s));
  constexpr uint64_t kEvents = 3000;
  NodeRunner<GeneratorDriver> gen(go, generator(4, 500.0, kEvents));
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events >= kEvents; }, 30s));
  const NodeStats s = snk.stats();
  EXPECT_EQ(s.received_events, kEvents);
  EXPECT_EQ(s.late_events, 0U);
  EXPECT_EQ(snk.driver().early(), 0U);
  // Network latency went through two emulated 15-25+ ms hops.
  EXPECT_GE(s.latency_p50_ns, 30'000'000);
  EXPECT_GE(gen_link.stats().up.delay_p50_ns, 15'000'000);
}

TEST(Linkem, CutLinkIsSurvived) {
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}};
  t.connections = {connect_all("gen", "sink", 50ms)};
  BrokerRunner broker(broker_options(t));
  LinkEmulator link(*LinkProfile::preset("loopback"), "127.0.0.1:0",
                    broker.endpoint(), 3);
  NodeRunner<SinkDriver> snk(node_options("sink", link.endpoint()), sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 15s));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(4, 500.0, 0));
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events > 500; }));
  link.cut();
  ASSERT_TRUE(eventually([&] { return link.stats().connections >= 2; }, 15s))
      << "the node should reconnect through the link";
  const uint64_t before = snk.stats().received_events;
  ASSERT_TRUE(eventually([&] { return snk.stats().received_events > before + 500; }));
  gen.driver().stop();
  const uint64_t emitted = gen.stats().emitted_events;
  ASSERT_TRUE(eventually([&] {
    const auto s = snk.stats();
    return s.received_events + s.lost_events >= emitted;
  }));
  EXPECT_EQ(snk.stats().received_events + snk.stats().lost_events, emitted);
}

// Records, in true network time (the broker's steady clock), when each on-time event reached it.
class TruthSink final : public Driver {
 public:
  [[nodiscard]] DriverInfo describe() const override { return {"sink", 2, 0, 4}; }
  void start(Emitter& /*emitter*/) override {}
  void stop() noexcept override {}
  void deliver(const BatchHeader& h, const EventBatch& e, const Delivery& d) noexcept override {
    const int64_t now = SteadyClock::instance().now_ns();
    std::lock_guard lock(mu);
    if (d.late) return;
    for (size_t i = 0; i < e.size(); ++i) errors.push_back(now - (e.times_ns[i] + h.delay_ns));
  }
  std::mutex mu;
  std::vector<int64_t> errors;  // true release - deadline
};

TEST(Linkem, SkewedNodeClockConvergesAndDeliveryLandsAtSourceTimePlusDelay) {
  // Issue 3: "with a node whose clock is deliberately offset by seconds and skewed by 50 ppm
  // (through the clock seam), the estimated offset converges and the compensated delivery times
  // match t_source + delay." Truth: network time is the broker's steady clock.
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}};
  // 100 ms: the path's latency plus a shared machine's scheduling stalls (tens of ms) stay
  // within it, so every event is judged on its release time, not dropped from the sample as late.
  t.connections = {connect_all("gen", "sink", 100ms)};
  BrokerRunner broker(broker_options(t));
  LinkEmulator link(*LinkProfile::preset("padova-zurich"), "127.0.0.1:0",
                    broker.endpoint(), 9);
  const SkewedClock skewed(SteadyClock::instance(), 2'500'000'000, 50.0);
  NodeOptions so = node_options("sink", link.endpoint());
  so.broker_timeout = 3s;
  NodeRunner<TruthSink> sink_runner(so, std::make_unique<TruthSink>(), skewed);
  Node& sink_node = sink_runner.node();
  TruthSink* truth = &sink_runner.driver();
  ASSERT_TRUE(sink_node.wait_registered(1, 15s));
  // Until drift is known the bound grows at the 500 ppm worst case; the initial bursts (1 s
  // apart) tighten it to about half the path's minimum round trip (a few ms here).
  ASSERT_TRUE(eventually([&] {
    return sink_node.clock_estimate(skewed.now_ns()).uncertainty_ns < 10'000'000;
  }, 20s));
  // The bound must hold at every moment; the error converges to well under a millisecond. A
  // probe whose one direction was stalled by the scheduler can leave a few ms of asymmetry until
  // a cleaner probe replaces it, so convergence is awaited, not sampled once.
  int64_t last_error_ns = 0;
  const bool converged = eventually([&] {
    const int64_t truth_ns = SteadyClock::instance().now_ns();
    const int64_t local = skewed.local_at(truth_ns);
    const ClockEstimate e = sink_node.clock_estimate(local);
    last_error_ns = local + e.offset_ns - truth_ns;
    EXPECT_LE(std::llabs(last_error_ns), e.uncertainty_ns) << "the bound must hold";
    return std::llabs(last_error_ns) < 1'000'000;
  }, 20s);
  ASSERT_TRUE(converged) << "converged to well under a millisecond; last error " << last_error_ns << " ns";
  for (int i = 0; i < 50; ++i) {
    const int64_t truth_ns = SteadyClock::instance().now_ns();
    const int64_t local = skewed.local_at(truth_ns);
    const ClockEstimate e = sink_node.clock_estimate(local);
    ASSERT_LE(std::llabs(local + e.offset_ns - truth_ns), e.uncertainty_ns) << "the bound must hold";
  }
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()),
                                  generator(4, 500.0, 4000));
  // Every event is accounted for: released on time, released flagged late (arrived late:
  // late_events; arrived in time but handed over beyond the playout's precision because its
  // thread was held up: playout_overrun), or lost.
  const auto on_time = [&] {
    std::lock_guard lock(truth->mu);
    return truth->errors.size();
  };
  ASSERT_TRUE(eventually([&] {
    const auto s = sink_node.stats();
    return gen.stats().emitted_events == 4000 && s.received_events + s.lost_events >= 4000 &&
           on_time() + s.late_events + s.playout_overrun >= s.received_events;
  }, 60s)) << "on time " << on_time() << ", received " << sink_node.stats().received_events
           << ", late " << sink_node.stats().late_events << ", overrun "
           << sink_node.stats().playout_overrun << ", lost " << sink_node.stats().lost_events
           << ", emitted " << gen.stats().emitted_events;
  EXPECT_EQ(sink_node.stats().lost_events, 0U);
  // Flagged late means the sink's path or playout was held up beyond the 100 ms delay or the
  // playout's precision: counted, and rare.
  EXPECT_LE(sink_node.stats().late_events + sink_node.stats().playout_overrun, 40U);
  sink_runner.stop();
  std::vector<int64_t> errors;
  {
    std::lock_guard lock(truth->mu);
    errors = truth->errors;
  }
  std::sort(errors.begin(), errors.end());
  const int64_t p01 = errors[errors.size() / 100];
  const int64_t p99 = errors[errors.size() * 99 / 100];
  // Without compensation the error would be the network latency (milliseconds) or, with a wrong
  // clock mapping, the 2.5 s offset. Generous bounds: this machine is shared and noisy.
  EXPECT_GT(p01, -2'000'000) << "released well before the true deadline";
  EXPECT_LT(p99, 5'000'000) << "released well after the true deadline";
}

TEST(Linkem, AutoDelayRisesUntilNothingArrivesLate) {
  // `delay: auto` starting at 1 ms behind a 20 ms +/- 5 ms link: the first events are late (and
  // counted); the sink's latency reports raise the delay above the path's p99.9, and then nothing
  // is late any more.
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"sink", "sink", 0, 4}};
  ConnectionSpec c = connect_all("gen", "sink", 1ms);
  c.auto_delay = true;
  c.auto_options.initial_ns = 1'000'000;
  c.auto_options.margin_ns = 5'000'000;
  t.connections = {c};
  BrokerRunner broker(broker_options(t));
  LinkEmulator link(*LinkProfile::preset("wan-20ms-5ms"), "127.0.0.1:0",
                    broker.endpoint(), 5);
  NodeOptions so = node_options("sink", link.endpoint());
  so.broker_timeout = 3s;
  NodeRunner<SinkDriver> snk(so, sink(4));
  ASSERT_TRUE(snk.node().wait_registered(1, 15s));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()),
                                  generator(4, 500.0, 0));
  ASSERT_TRUE(eventually([&] { return broker.broker().connection_stats()[0].raises >= 1; }, 20s));
  ASSERT_TRUE(eventually(
      [&] { return broker.broker().connection_stats()[0].delay_ns >= 20'000'000; }, 20s));
  // Settled: 3000 events in a row with no raise and none late (events routed before a raise
  // still carry the old delay). On a shared machine, scheduling stalls are part of the path's
  // latency and may take a few raises more. Then, over 3000 more events, nothing may be late.
  const auto wait_events = [&](uint64_t n) {
    const uint64_t from = snk.stats().received_events;
    return eventually([&] { return snk.stats().received_events >= from + n; });
  };
  ASSERT_TRUE(eventually(
      [&] {
        const uint64_t raises = broker.broker().connection_stats()[0].raises;
        const uint64_t late = snk.stats().late_events;
        return wait_events(3000) && broker.broker().connection_stats()[0].raises == raises &&
               snk.stats().late_events == late;
      },
      40s))
      << "the delay never settled";
  const uint64_t late_before = snk.stats().late_events;
  ASSERT_TRUE(wait_events(3000));
  const auto cs = broker.broker().connection_stats()[0];
  EXPECT_TRUE(cs.auto_delay);
  EXPECT_GE(cs.delay_ns, 20'000'000);
  EXPECT_LE(cs.delay_ns, 150'000'000) << "p99.9 of a 20 +/- 5 ms path plus 5 ms (and stalls), not runaway";
  EXPECT_GT(late_before, 0U) << "the 1 ms start must have been too small";
  EXPECT_EQ(snk.stats().late_events, late_before) << "late while the delay stayed put";
  EXPECT_EQ(snk.driver().out_of_order(), 0U);
}

}  // namespace
}  // namespace ion::test
