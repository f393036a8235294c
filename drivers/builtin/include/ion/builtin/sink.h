#pragma once
// `sink`: receives routed events, counts them and checks that each source stream arrives in time
// order. Used for demos and tests, and as a stand-in lab.
#include <atomic>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "ion/core/config.h"
#include "ion/core/driver.h"

namespace ion {

struct SinkOptions {
  uint32_t ports = 16;
  static SinkOptions from_config(const ConfigNode& driver);
};

class SinkDriver final : public Driver {
 public:
  explicit SinkDriver(SinkOptions options) : opts_(options), per_port_(options.ports) {}

  [[nodiscard]] DriverInfo describe() const override;
  void start(Emitter& /*emitter*/) override {}
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override {}
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] std::vector<std::string> trouble_counters() const override;

  [[nodiscard]] uint64_t received() const noexcept { return received_.load(); }
  // Events whose time is earlier than the previous event of the same source stream.
  [[nodiscard]] uint64_t out_of_order() const noexcept { return out_of_order_.load(); }
  [[nodiscard]] std::vector<uint64_t> per_port() const;
  // Delivered flagged late.
  [[nodiscard]] uint64_t late() const noexcept { return late_.load(); }
  // On-time events handed over before their deadline (promise 2 says: never).
  [[nodiscard]] uint64_t early() const noexcept { return early_.load(); }
  // Release - deadline of on-time events, ns (the playout's precision as the device sees it).
  [[nodiscard]] int64_t release_error_max_ns() const noexcept { return release_error_max_ns_.load(); }

 private:
  SinkOptions opts_;
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> out_of_order_{0};
  std::atomic<uint64_t> late_{0};
  std::atomic<uint64_t> early_{0};
  std::atomic<int64_t> release_error_max_ns_{0};
  mutable std::mutex mu_;
  std::vector<uint64_t> per_port_;
  std::map<std::pair<uint32_t, uint32_t>, int64_t> last_time_;  // (source, stream) -> time
};

}  // namespace ion
