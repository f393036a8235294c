#include "ion/builtin/generator.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "ion/v1/ion.pb.h"

namespace ion {

GeneratorOptions GeneratorOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "channels", "rate_hz", "seed", "batch_interval", "max_events", "stream"});
  GeneratorOptions o;
  o.channels = static_cast<uint32_t>(d.integer("channels", o.channels, 1, 1 << 20));
  o.rate_hz = d.number("rate_hz", o.rate_hz, 0.0, 1e6);
  o.seed = static_cast<uint64_t>(d.integer("seed", 1, 0, INT64_MAX));
  o.batch_interval = std::chrono::duration_cast<std::chrono::microseconds>(
      d.duration("batch_interval", o.batch_interval, std::chrono::microseconds(50),
                 std::chrono::seconds(1)));
  o.max_events = static_cast<uint64_t>(d.integer("max_events", 0, 0, INT64_MAX));
  o.stream = static_cast<uint32_t>(d.integer("stream", 0, 0, UINT32_MAX));
  return o;
}

PoissonSource::PoissonSource(uint32_t channels, double rate_hz, uint64_t seed, int64_t start_ns)
    : rng_(seed),
      gap_s_(rate_hz * channels > 0 ? rate_hz * channels : 1e-300),
      channel_(0, channels == 0 ? 0 : channels - 1),
      next_exact_ns_(static_cast<double>(start_ns)),
      next_ns_(start_ns) {
  next_exact_ns_ += gap_s_(rng_) * 1e9;
  next_ns_ = static_cast<int64_t>(std::llround(next_exact_ns_));
}

size_t PoissonSource::generate_until(int64_t until_ns, EventBatch& out, size_t limit) {
  size_t n = 0;
  while (next_ns_ <= until_ns && n < limit) {
    out.push(channel_(rng_), next_ns_);
    ++n;
    // Accumulate in double so rounding does not bias the rate over hours.
    next_exact_ns_ += gap_s_(rng_) * 1e9;
    next_ns_ = static_cast<int64_t>(std::llround(next_exact_ns_));
  }
  return n;
}

GeneratorDriver::GeneratorDriver(GeneratorOptions options) : opts_(options) {}

GeneratorDriver::~GeneratorDriver() { stop(); }

DriverInfo GeneratorDriver::describe() const {
  return {"generator", v1::NODE_KIND_GENERATOR, opts_.channels, 0};
}

void GeneratorDriver::start(Emitter& emitter) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, &emitter] { loop(emitter); });
}

void GeneratorDriver::loop(Emitter& emitter) {
  PoissonSource source(opts_.channels, opts_.rate_hz, opts_.seed, emitter.network_now_ns());
  EventBatch batch;
  batch.stream = opts_.stream;
  batch.kind = EventKind::spike;
  // Emission keeps pace with real time; events carry their own Poisson times.
  auto next_tick = std::chrono::steady_clock::now();
  constexpr size_t kMaxPerBatch = 16384;
  while (true) {
    next_tick += opts_.batch_interval;
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, next_tick, [&] { return stop_requested_; })) return;
    }
    const uint64_t done = emitted_.load();
    size_t limit = kMaxPerBatch;
    if (opts_.max_events > 0) {
      if (done >= opts_.max_events) {
        finished_.store(true);
        return;
      }
      limit = std::min<uint64_t>(limit, opts_.max_events - done);
    }
    batch.clear();
    source.generate_until(emitter.network_now_ns(), batch, limit);
    if (batch.empty()) continue;
    if (emitter.emit(batch) == EmitStatus::rejected) rejected_.fetch_add(batch.size());
    emitted_.fetch_add(batch.size());
  }
}

void GeneratorDriver::deliver(const BatchHeader& /*header*/, const EventBatch& /*events*/,
                              const Delivery& /*delivery*/) noexcept {}

void GeneratorDriver::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::map<std::string, int64_t> GeneratorDriver::counters() const {
  return {{"emitted", static_cast<int64_t>(emitted_.load())},
          {"rejected", static_cast<int64_t>(rejected_.load())}};
}

}  // namespace ion
