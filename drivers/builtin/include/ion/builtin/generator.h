#pragma once
// `generator`: Poisson spike trains on N channels at a set rate, seeded and reproducible. Used for
// demos, load tests and as a stand-in lab.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>

#include "ion/core/config.h"
#include "ion/core/driver.h"

namespace ion {

struct GeneratorOptions {
  uint32_t channels = 16;
  double rate_hz = 10.0;  // per channel
  uint64_t seed = 1;
  std::chrono::microseconds batch_interval{1000};  // one batch per interval
  uint64_t max_events = 0;  // stop after this many events; 0 = run until stopped
  uint32_t stream = 0;

  static GeneratorOptions from_config(const ConfigNode& driver);
};

// The merged Poisson process of all channels: exponential gaps at channels * rate_hz, each event
// on a uniformly drawn channel. Deterministic for a seed and a start time.
class PoissonSource {
 public:
  PoissonSource(uint32_t channels, double rate_hz, uint64_t seed, int64_t start_ns);
  // Appends every event with time <= until_ns to `out` (at most `limit` events).
  size_t generate_until(int64_t until_ns, EventBatch& out, size_t limit);
  [[nodiscard]] int64_t next_time_ns() const noexcept { return next_ns_; }

 private:
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_s_;
  std::uniform_int_distribution<uint32_t> channel_;
  double next_exact_ns_;
  int64_t next_ns_;
};

class GeneratorDriver final : public Driver {
 public:
  explicit GeneratorDriver(GeneratorOptions options);
  ~GeneratorDriver() override;

  [[nodiscard]] DriverInfo describe() const override;
  void start(Emitter& emitter) override;
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;

  [[nodiscard]] uint64_t emitted() const noexcept { return emitted_.load(); }
  // True once max_events have been emitted (never, when max_events is 0).
  [[nodiscard]] bool finished() const noexcept { return finished_.load(); }

 private:
  void loop(Emitter& emitter);

  GeneratorOptions opts_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;
  std::atomic<uint64_t> emitted_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<bool> finished_{false};
};

}  // namespace ion
