#include "api_driver.h"

#include <algorithm>

#include "ion/v1/ion.pb.h"

namespace ion::capi {

ApiDriverOptions ApiDriverOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "channels", "ports", "node_kind", "receive_queue_events", "receive_spin"});
  ApiDriverOptions o;
  o.channels = static_cast<uint32_t>(d.integer("channels", 0, 0, 1 << 20));
  o.ports = static_cast<uint32_t>(d.integer("ports", 0, 0, 1 << 20));
  if (o.channels == 0 && o.ports == 0) d.fail("channels", "channels or ports (or both) above 0");
  o.kind_name = d.string("node_kind", "external");
  static constexpr std::pair<const char*, int> kKinds[] = {
      {"external", v1::NODE_KIND_EXTERNAL}, {"generator", v1::NODE_KIND_GENERATOR},
      {"sink", v1::NODE_KIND_SINK},         {"mea", v1::NODE_KIND_MEA},
      {"chip", v1::NODE_KIND_CHIP},         {"synapse", v1::NODE_KIND_SYNAPSE},
      {"replay", v1::NODE_KIND_REPLAY},     {"chemical", v1::NODE_KIND_CHEMICAL}};
  bool known = false;
  for (const auto& [name, value] : kKinds) {
    if (o.kind_name == name) {
      o.node_kind = value;
      known = true;
    }
  }
  if (!known) d.fail("node_kind", "one of: external, generator, sink, mea, chip, synapse, replay, chemical");
  o.receive_queue_events = static_cast<size_t>(
      d.integer("receive_queue_events", 1 << 20, 1, int64_t{1} << 30));
  o.receive_spin = std::chrono::duration_cast<std::chrono::microseconds>(
      d.duration("receive_spin", o.receive_spin, std::chrono::microseconds(0),
                 std::chrono::milliseconds(10)));
  return o;
}

DriverInfo ApiDriver::describe() const {
  return {"api:" + opts_.kind_name, opts_.node_kind, opts_.channels, opts_.ports};
}

void fill_delivery(const BatchHeader& h, const EventBatch& e, const Delivery& d,
                   ion_delivery& out) noexcept {
  out.count = e.size();
  out.ports = e.channels.data();
  out.times_ns = e.times_ns.data();
  out.payload = e.has_payload() ? e.payload.data() : nullptr;
  out.delay_ns = h.delay_ns;
  out.release_ns = d.release_network_ns;
  out.kind = static_cast<int>(e.kind);
  out.late = d.late ? 1 : 0;
  out.stream = e.stream;
  out.source_node_id = h.source_node_id;
  out.source_node = h.source_node.c_str();
}

void ApiDriver::deliver(const BatchHeader& header, const EventBatch& events,
                        const Delivery& delivery) noexcept {
  if (has_callback_.load(std::memory_order_acquire)) {
    std::lock_guard lock(callback_mu_);
    if (callback_ != nullptr) {
      ion_delivery d{};
      fill_delivery(header, events, delivery, d);
      callback_(&d, callback_user_);
      return;
    }
  }
  const size_t n = events.size();
  {
    std::lock_guard lock(mu_);
    if (stopped_.load() || queued_events_ + n > opts_.receive_queue_events) {
      overflow_.fetch_add(n);  // promise 1: counted, never silently gone
      return;
    }
    try {
      queue_.push_back(QueuedDelivery{header, events, delivery});
    } catch (...) {
      overflow_.fetch_add(n);
      return;
    }
    queued_events_ += n;
    queued_.store(queue_.size(), std::memory_order_release);
  }
  cv_.notify_one();
}

namespace {
constexpr int64_t kSpinPastNs = 20'000;
}  // namespace

bool ApiDriver::next(QueuedDelivery& out, int64_t timeout_ms) noexcept {
  using Clock = std::chrono::steady_clock;
  const auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  };
  const int64_t end_ns = timeout_ms < 0 ? INT64_MAX : now_ns() + timeout_ms * 1'000'000;
  const int64_t spin_ns = static_cast<int64_t>(opts_.receive_spin.count()) * 1000;
  std::unique_lock lock(mu_);
  while (queue_.empty() && !stopped_.load()) {
    const int64_t now = now_ns();
    if (now >= end_ns) return false;
    const int64_t deadline = spin_ns > 0 && deadline_hint_ ? deadline_hint_() : INT64_MAX;
    if (deadline != INT64_MAX && now < deadline + kSpinPastNs && deadline - now <= spin_ns) {
      // Stay awake until the playout thread hands the batch over, but never long past its
      // deadline: a playout thread held up needs the CPU more than this spin does.
      lock.unlock();
      const int64_t give_up = std::min(end_ns, deadline + kSpinPastNs);
      while (queued_.load(std::memory_order_acquire) == 0 && !stopped_.load() && now_ns() < give_up) {
      }
      lock.lock();
      continue;
    }
    if (deadline != INT64_MAX && now >= deadline) {
      cv_.wait_for(lock, std::chrono::milliseconds(1));  // the playout is behind: just wait
      continue;
    }
    // Sleep until the spin window of the next known deadline, at most 5 ms: a batch arriving
    // meanwhile may bring an earlier deadline (deliver() also wakes this wait).
    const int64_t wake = std::min({end_ns, now + 5'000'000,
                                   deadline == INT64_MAX ? INT64_MAX : deadline - spin_ns});
    cv_.wait_for(lock, std::chrono::nanoseconds(std::max<int64_t>(wake - now, 0)));
  }
  if (queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  queued_events_ -= out.events.size();
  queued_.store(queue_.size(), std::memory_order_release);
  return true;
}

void ApiDriver::set_callback(ion_delivery_fn fn, void* user) noexcept {
  std::lock_guard lock(callback_mu_);  // waits for a callback in progress
  callback_ = fn;
  callback_user_ = user;
  has_callback_.store(fn != nullptr, std::memory_order_release);
}

void ApiDriver::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stopped_.store(true);
  }
  cv_.notify_all();
}

std::map<std::string, int64_t> ApiDriver::counters() const {
  std::lock_guard lock(mu_);
  return {{"receive_overflow", static_cast<int64_t>(overflow_.load())},
          {"receive_queued", static_cast<int64_t>(queued_events_)}};
}

std::vector<std::string> ApiDriver::trouble_counters() const {
  return {"receive_overflow"};
}

}  // namespace ion::capi
