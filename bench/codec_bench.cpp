// Codec cost per event for single-spike and batched frames.
// Target (issue 2): a packed batch <= 16 bytes and <= 20 ns per event to encode or decode.
// Baseline in the same run: copying the same columns with memcpy (the floor for any codec).
// Run: build/release/bench/codec_bench
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include "ion/core/codec.h"

namespace {

// Spikes from a 60-electrode array: times advancing by tens of microseconds, channels random.
ion::EventBatch make_batch(size_t n, bool payload) {
  std::mt19937_64 rng(1);
  std::exponential_distribution<double> gap_us(1.0 / 25.0);  // ~40 k spikes/s
  std::uniform_int_distribution<uint32_t> ch(0, 59);
  ion::EventBatch b;
  int64_t t = 1'700'000'000'000'000'000;
  for (size_t i = 0; i < n; ++i) {
    t += static_cast<int64_t>(gap_us(rng) * 1000.0);
    if (payload) {
      b.push(ch(rng), t, static_cast<float>(i % 255));
    } else {
      b.push(ch(rng), t);
    }
  }
  return b;
}

void set_counters(benchmark::State& state, size_t n, size_t frame_bytes) {
  const auto events = static_cast<double>(n);
  // Seconds per event, printed with an SI prefix: "3.1n" is 3.1 ns.
  state.counters["sec_per_event"] = benchmark::Counter(
      events, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_event"] = static_cast<double>(frame_bytes) / events;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

void BM_Encode(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  const ion::EventBatch batch = make_batch(n, state.range(1) != 0);
  ion::Codec codec;
  ion::BatchHeader h;
  h.epoch = 42;
  std::string frame;
  for (auto _ : state) {
    ++h.sequence;
    benchmark::DoNotOptimize(codec.encode_batch(h, batch, frame));
    benchmark::DoNotOptimize(frame.data());
  }
  set_counters(state, n, frame.size());
}

void BM_Decode(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  const ion::EventBatch batch = make_batch(n, state.range(1) != 0);
  ion::Codec codec;
  std::string frame;
  if (!codec.encode_batch({}, batch, frame)) state.SkipWithError("encode failed");
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(frame.data()),
                                       frame.size());
  ion::BatchHeader h;
  ion::EventBatch out;
  ion::BatchChecks checks;
  checks.channel_limit = 60;
  for (auto _ : state) {
    const ion::Decoded d = codec.decode(bytes);
    benchmark::DoNotOptimize(d);
    benchmark::DoNotOptimize(codec.take_batch(checks, h, out));
  }
  if (out.times_ns != batch.times_ns) state.SkipWithError("round trip mismatch");
  set_counters(state, n, frame.size());
}

// The floor: copy the columns, no encoding at all.
void BM_BaselineMemcpyColumns(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  const ion::EventBatch batch = make_batch(n, state.range(1) != 0);
  std::string out;
  const size_t bytes = n * (sizeof(uint32_t) + sizeof(int64_t)) + batch.payload.size() * 4;
  out.resize(bytes);
  for (auto _ : state) {
    char* p = out.data();
    std::memcpy(p, batch.channels.data(), n * sizeof(uint32_t));
    p += n * sizeof(uint32_t);
    std::memcpy(p, batch.times_ns.data(), n * sizeof(int64_t));
    p += n * sizeof(int64_t);
    if (!batch.payload.empty()) std::memcpy(p, batch.payload.data(), n * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, bytes);
}

// Args: events per frame, payload (0/1). One event per frame is the single-spike slow path.
void args(benchmark::internal::Benchmark* b) {
  for (int payload : {0, 1}) {
    for (int n : {1, 16, 256, 1024, 4096}) b->Args({n, payload});
  }
  b->ArgNames({"events", "payload"});
}

BENCHMARK(BM_Encode)->Apply(args);
BENCHMARK(BM_Decode)->Apply(args);
BENCHMARK(BM_BaselineMemcpyColumns)->Apply(args);

}  // namespace

BENCHMARK_MAIN();
