#pragma once
// The driver behind libion: it hands the node's deliveries to the C API (a bounded queue that
// ion_receive drains, or the caller's callback) and gives the API the node's Emitter.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "ion/core/config.h"
#include "ion/core/driver.h"
#include "ion/ion.h"

namespace ion::capi {

struct ApiDriverOptions {
  uint32_t channels = 0;
  uint32_t ports = 0;
  int node_kind = 8;  // v1::NODE_KIND_EXTERNAL
  std::string kind_name = "external";
  size_t receive_queue_events = 1u << 20;
  // A receiver waiting in next() spins (awake, on its CPU) from this long before the next known
  // deadline, so it is not woken late by the scheduler. Off by default: on a machine with few
  // cores the spin competes with the playout thread it waits for.
  std::chrono::microseconds receive_spin{0};
  static ApiDriverOptions from_config(const ConfigNode& driver);
};

// One delivery as queued for ion_receive.
struct QueuedDelivery {
  BatchHeader header;
  EventBatch events;
  Delivery delivery;
};

class ApiDriver final : public Driver {
 public:
  explicit ApiDriver(ApiDriverOptions options) : opts_(std::move(options)) {}

  [[nodiscard]] DriverInfo describe() const override;
  void start(Emitter& emitter) override { emitter_.store(&emitter, std::memory_order_release); }
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] std::vector<std::string> trouble_counters() const override;

  // Null until the node first has network time.
  [[nodiscard]] Emitter* emitter() const noexcept { return emitter_.load(std::memory_order_acquire); }
  // Waits for the next queued delivery; false on timeout (< 0: forever) or after stop().
  bool next(QueuedDelivery& out, int64_t timeout_ms) noexcept;
  void set_callback(ion_delivery_fn fn, void* user) noexcept;
  // Where next() learns the next deadline (local clock ns, INT64_MAX: none); set before use.
  void set_deadline_hint(std::function<int64_t()> hint) { deadline_hint_ = std::move(hint); }
  [[nodiscard]] bool stopped() const noexcept { return stopped_.load(); }
  [[nodiscard]] uint64_t receive_overflow() const noexcept { return overflow_.load(); }
  [[nodiscard]] const ApiDriverOptions& options() const noexcept { return opts_; }

 private:
  ApiDriverOptions opts_;
  std::atomic<Emitter*> emitter_{nullptr};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<QueuedDelivery> queue_;  // mu_
  size_t queued_events_ = 0;          // mu_
  ion_delivery_fn callback_ = nullptr;  // mu_ (read under callback_mu_ for the call)
  void* callback_user_ = nullptr;
  std::mutex callback_mu_;  // held during a callback: set_callback waits for it to finish
  std::atomic<bool> has_callback_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> overflow_{0};
  std::atomic<size_t> queued_{0};  // queue_.size(), readable without mu_ while spinning
  std::function<int64_t()> deadline_hint_;
};

// The C view of a batch (arrays point into `header`/`events`).
void fill_delivery(const BatchHeader& header, const EventBatch& events, const Delivery& delivery,
                   ion_delivery& out) noexcept;

}  // namespace ion::capi
