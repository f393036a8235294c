// Neuromodulator streams are a class of their own (issue 21): "slow (1-10 samples/s) but must not
// be thinned, dropped under a flood of spikes, or reordered ... never thinned for live views,
// never evicted by spike traffic in the broker's rings, delivered at their deadlines like spikes".
#include "harness.h"

namespace ion::test {
namespace {

// Emits `count` neuromodulator samples on channel 0, one batch each, stamped `period` apart
// from its start (a sensor's sampling grid); sample k carries the value k + 1 so order and
// completeness can be checked.
class ModulatorSource final : public Driver {
 public:
  ModulatorSource(uint32_t count, std::chrono::milliseconds period) : count_(count), period_(period) {}
  DriverInfo describe() const override { return {"modulator", 8, 1, 0}; }
  void start(Emitter& e) override {
    const int64_t t0 = e.network_now_ns();
    for (uint32_t k = 0; k < count_; ++k) {
      EventBatch b;
      b.kind = EventKind::neuromodulator;
      b.push(0, t0 + k * std::chrono::duration_cast<std::chrono::nanoseconds>(period_).count(),
             static_cast<float>(k + 1));
      (void)e.emit(b);
    }
    done_.store(true);
  }
  void stop() noexcept override {}
  void deliver(const BatchHeader&, const EventBatch&, const Delivery&) noexcept override {}
  bool done() const { return done_.load(); }

 private:
  uint32_t count_;
  std::chrono::milliseconds period_;
  std::atomic<bool> done_{false};
};

// Keeps what reaches port 4 (the samples), in arrival order.
class SampleSink final : public Driver {
 public:
  DriverInfo describe() const override { return {"sink", 2, 0, 5}; }
  void start(Emitter&) override {}
  void stop() noexcept override {}
  void deliver(const BatchHeader&, const EventBatch& e, const Delivery&) noexcept override {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < e.size(); ++i) {
      if (e.channels[i] == 4 && e.kind == EventKind::neuromodulator) {
        values_.push_back(e.payload[i]);
      } else {
        ++spikes_;
      }
    }
  }
  std::vector<float> values() const {
    std::lock_guard lock(mu_);
    return values_;
  }
  uint64_t spikes() const {
    std::lock_guard lock(mu_);
    return spikes_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<float> values_;
  uint64_t spikes_ = 0;
};

// The sink is away while a spike flood and a sample stream head for it: the broker holds its
// traffic in its ring (startup grace), far more than the ring's 64 frames. Spike frames are
// dropped (counted); every sample (30 frames: they fit the ring, as 1-10 samples/s fit the
// default 4096 frames for minutes) survives and arrives, in order, when the sink comes.
TEST(Neuromodulators, SamplesSurviveASpikeFloodThatFillsTheBrokersRing) {
  Topology t;
  t.nodes = {{"gen", "generator", 4, 0}, {"dopamine", "chemical", 1, 0}, {"sink", "sink", 0, 5}};
  t.connections = {connect_all("gen", "sink", 200ms)};
  ConnectionSpec c;
  c.from = {"dopamine", false, 0, 0};
  c.to = {{"sink", false, 4, 4}};
  c.delay_ns = 200'000'000;
  c.where = "test";
  t.connections.push_back(c);
  BrokerOptions bo = broker_options(t);
  bo.ring_frames = 64;
  bo.startup_grace = 60s;  // hold the sink's traffic in its ring until it registers
  BrokerRunner broker(bo);
  NodeRunner<ModulatorSource> mod(node_options("dopamine", broker.endpoint()),
                                  std::make_unique<ModulatorSource>(30, 20ms));
  NodeRunner<GeneratorDriver> gen(node_options("gen", broker.endpoint()), generator(4, 2000.0, 8000));
  ASSERT_TRUE(eventually([&] {
    return mod.driver().done() && gen.stats().emitted_events >= 8000 &&
           broker.stats("gen").events_in >= 8000 && broker.stats("dopamine").events_in >= 30;
  }, 30s)) << "emitted " << gen.stats().emitted_events;
  const uint64_t dropped = broker.stats("sink").dropped_events;
  EXPECT_GT(dropped, 0u) << "the flood overflowed the ring";

  NodeRunner<SampleSink> sink(node_options("sink", broker.endpoint()), std::make_unique<SampleSink>());
  ASSERT_TRUE(eventually([&] { return sink.driver().values().size() >= 30; }, 30s))
      << sink.driver().values().size() << " of 30 samples";
  ASSERT_TRUE(eventually([&] { return broker.stats("sink").events_out + broker.stats("sink").dropped_events >= 8030; }, 30s));
  const std::vector<float> v = sink.driver().values();
  ASSERT_EQ(v.size(), 30u);
  for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(v[k], static_cast<float>(k + 1)) << "in order, none lost";
  EXPECT_EQ(broker.stats("sink").dropped_events, dropped) << "nothing dropped after the sink came";
  EXPECT_EQ(sink.driver().spikes() + dropped, 8000u) << "every spike delivered or counted dropped";
}

// "Never thinned for live views": the live feed thins spikes to its capacity, never samples.
TEST(Neuromodulators, TheLiveFeedThinsSpikesButNeverSamples) {
  LiveFeed feed(1, 10);
  EventBatch spikes;
  for (int i = 0; i < 1000; ++i) spikes.push(0, i);
  feed.offer(0, spikes);
  EventBatch samples;
  samples.kind = EventKind::neuromodulator;
  for (int i = 0; i < 500; ++i) samples.push(2, 1000 + i, static_cast<float>(i));
  feed.offer(0, samples);
  std::vector<std::vector<LiveEvent>> ev;
  std::vector<std::vector<LiveSample>> sm;
  feed.take(ev, sm);
  EXPECT_EQ(ev[0].size(), 10u);
  EXPECT_EQ(feed.thinned(), 990u);
  ASSERT_EQ(sm[0].size(), 500u);
  for (size_t i = 0; i < 500; ++i) EXPECT_EQ(sm[0][i].value, static_cast<float>(i));
  EXPECT_EQ(feed.dropped_samples(), 0u);
}

}  // namespace
}  // namespace ion::test
