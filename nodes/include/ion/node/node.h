#pragma once
// ion-node: hosts one driver, connects out to the broker (labs sit behind firewalls), registers,
// keeps a clock mapping to network time, forwards what the driver emits, and hands routed events
// to the driver. Survives broker restarts without manual action.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ion/core/clock.h"
#include "ion/core/clock_sync.h"
#include "ion/core/codec.h"
#include "ion/core/config.h"
#include "ion/core/driver.h"
#include "ion/core/security.h"
#include "ion/node/session.h"

namespace ion {

struct NodeOptions {
  std::string name;
  std::string broker = "tcp://127.0.0.1:5555";
  // CURVE: this node's key pair and the broker's public key (docs/security.md). Without them a
  // node connects only to a loopback broker, unless `insecure`.
  std::optional<CurveClientKeys> curve;
  bool insecure = false;
  // Take this name over from a live holder (another process registered under it), which the
  // broker then cuts off. Without it, a live holder keeps its name and this node is refused.
  bool replace = false;
  // A refusal (a name not in the topology or held by another process, sizes, key, encryption,
  // version) stops run(): the caller reports last_refusal() and exits non-zero. Else the node
  // keeps retrying quietly with the longest backoff, for an operator to fix the broker's side.
  bool exit_on_refusal = false;
  std::chrono::milliseconds heartbeat_interval{500};  // until the broker's Welcome says otherwise
  std::chrono::milliseconds broker_timeout{3000};     // broker silent this long -> reconnect
  std::chrono::milliseconds reconnect_min{100};       // backoff: min * 2^attempt, capped, with
  std::chrono::milliseconds reconnect_max{5000};      // jitter uniformly in [50%, 100%]
  size_t send_queue_frames = 4096;  // batches held while the broker is slow or away (drop-oldest)
  size_t send_queue_bytes = 16u << 20;
  uint32_t probe_burst = 8;                          // clock probes per burst
  std::chrono::milliseconds resync_interval{5000};   // between bursts
  CodecLimits limits;
  uint32_t max_source_streams = 1024;  // distinct (source node, stream) pairs tracked
  size_t playout_capacity = 1u << 20;  // events waiting for their deadline (overflow: counted)
  // The playout thread sleeps until this long before a deadline, then spins: less is cheaper on
  // the CPU, more is more precise (sleep wake-ups on Linux are late by ~50-100 us).
  std::chrono::microseconds playout_spin{200};
  // The playout's stated precision: an event handed over later than this after its deadline
  // (the release thread was held up) goes flagged late and is counted (playout_overrun).
  std::chrono::microseconds playout_precision{5000};
  // Adaptive batching of what the driver emits, per stream: an emission finding the stream idle
  // (nothing sent for a budget) goes at once; later ones within the budget are coalesced and go
  // when the budget since the first of them is up or batch_max_events are pending. So batching
  // adds at most the budget (plus the node loop's 1 ms timer resolution) to latency. 0: off.
  std::chrono::microseconds batch_budget{1000};
  uint32_t batch_max_events = 4096;

  // Reads the `node:` mapping of a config file.
  static NodeOptions from_config(const ConfigNode& root);
};

// A snapshot of the node's counters. Event counts unless named otherwise.
struct NodeStats {
  bool registered = false;
  uint64_t registrations = 0;
  uint64_t broker_restarts = 0;      // Welcome from a broker with a new epoch
  uint64_t emitted_events = 0;       // taken from the driver
  uint64_t emitted_batches = 0;
  uint64_t sent_batches = 0;
  uint64_t dropped_events = 0;       // dropped here: send queue full (drop-oldest) or invalid
  uint64_t dropped_batches = 0;
  uint64_t received_events = 0;      // handed to the driver
  uint64_t received_batches = 0;
  uint64_t lost_events = 0;          // exact: first_index gaps on streams routed here whole
  uint64_t lost_batches = 0;         // link sequence gaps: dropped at or after the broker
  // Events spanned by the batches seen on streams routed here whole, from the first batch seen to
  // the last: received + lost equals this exactly. A loss after the last batch seen cannot be
  // known until a later batch comes.
  uint64_t source_index_seen = 0;
  uint64_t duplicate_or_reordered = 0;  // batches not delivered because already seen
  uint64_t source_restarts = 0;      // a source stream came back with a new epoch
  uint64_t late_events = 0;          // arrived after their deadline (time + delay)
  uint64_t late_dropped = 0;         // ... and dropped by the connection's policy
  uint64_t on_time_events = 0;       // released at their deadline
  uint64_t playout_overflow = 0;     // dropped: playout queue full
  uint64_t playout_abandoned = 0;    // still waiting for their deadline when the node stopped
  uint64_t playout_overrun = 0;      // arrived in time, handed over beyond the precision: flagged late
  int64_t delivery_error_p50_ns = 0;  // release - deadline of on-time events
  int64_t delivery_error_p99_ns = 0;
  int64_t delivery_error_max_ns = 0;
  int64_t lateness_p99_ns = 0;        // arrival - deadline of late events
  int64_t lateness_max_ns = 0;
  int64_t link_latency_p50_ns = 0;    // arrival - broker queue time: broker -> this node
  int64_t link_latency_p99_ns = 0;
  int64_t link_latency_max_ns = 0;
  int64_t latency_p50_ns = 0;         // arrival - source time (network time): end to end
  int64_t latency_p99_ns = 0;
  int64_t latency_max_ns = 0;
  uint64_t rejected_frames = 0;      // frames from the broker that failed validation
  int64_t clock_offset_ns = 0;       // network - local
  int64_t clock_uncertainty_ns = 0;  // |true offset - clock_offset_ns| <= this
  double clock_drift_ppm = 0;
  bool clock_synced = false;
};

enum class Registration : uint8_t { registered, refused, timed_out };

class Node {
 public:
  Node(NodeOptions options, std::unique_ptr<Driver> driver,
       const Clock& clock = SteadyClock::instance());
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Runs until stop(). Throws only if the driver fails to start.
  void run();
  // Thread- and async-signal-safe.
  void stop() noexcept;

  [[nodiscard]] NodeStats stats() const;
  // The node's mapping to network time at a reading of its own clock.
  [[nodiscard]] ClockEstimate clock_estimate(int64_t local_ns) const;
  [[nodiscard]] Driver& driver() noexcept;
  [[nodiscard]] const NodeOptions& options() const noexcept;
  [[nodiscard]] uint64_t epoch() const noexcept;

  // Blocks until the node has registered at least `count` times (counting re-registrations after
  // broker restarts) and has network time, or the timeout passes.
  bool wait_registered(uint64_t count, std::chrono::milliseconds timeout) const;
  // The same, but returns `refused` as soon as the broker (or the handshake) refused the node's
  // latest attempt; `refusal` (if given) then says why. The node keeps retrying with backoff.
  Registration wait_registration(uint64_t count, std::chrono::milliseconds timeout,
                                 Refusal* refusal = nullptr) const;
  // The local-clock time of the earliest deadline waiting in the playout (INT64_MAX: none, or
  // no network time). Lets a consumer of deliveries be awake when the next one comes.
  [[nodiscard]] int64_t next_deadline_local_ns() const noexcept;
  // The refusal of the latest attempt to register; kind `none` once registered.
  [[nodiscard]] Refusal last_refusal() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ion
