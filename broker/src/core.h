#pragma once
// The broker's logic without sockets or threads (private to broker/src). It takes each message
// with the time it was received, and timer ticks with an explicit time; what it sends goes to an
// Outbox. broker.cpp is the shell around it: the ZeroMQ socket, the CURVE authenticator, the
// loop and its thread. Unit tests drive a core with a ManualClock and a recording Outbox.
//
// Its parts, one file each:
//   core.cpp      dispatch of a message by kind, control-message rate limits, clock probes,
//                 heartbeats, refusals and error replies, timers (liveness, grace, stats)
//   registry.cpp  who holds which name: Hello, the one-holder rule, unregister, the allowlist
//   router.cpp    batch ingress (validation, sequence), routing through the compiled table,
//                 whole-batch routes, per-target rings and their flush
//   taps.cpp      recorders: their Hello, a copy of every accepted batch, the startup grace
//   delays.cpp    per-connection delays, `delay: auto` fed by the targets' latency reports
//   status.cpp    the counters as stats and as the StatusReply (`ion status`, dashboard), the
//                 live feed
// Threads: every method runs on the broker's loop thread except the const stats readers
// (node_stats, tap_stats, connection_stats, fill_status) and live(), which any thread may call.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ion/broker/auto_delay.h"
#include "ion/broker/broker.h"
#include "ion/core/clock.h"
#include "ion/core/codec.h"
#include "ion/core/log.h"
#include "ion/core/security.h"
#include "ion/core/transport.h"
#include "slots.h"

namespace ion::broker_impl {

// Where the core's frames go: the shell's ROUTER socket, or a test's recorder.
class Outbox {
 public:
  virtual ~Outbox() = default;
  // One frame to the peer with this routing id. Not ok: the frame stays in its ring (routed
  // traffic) or is counted as a failed control send (replies).
  [[nodiscard]] virtual IoStatus send_to(std::string_view routing_id,
                                         std::string_view frame) noexcept = 0;
};

// The CURVE allowlist as the core sees it (the shell's ZapAuthenticator); none in plaintext.
class Authority {
 public:
  virtual ~Authority() = default;
  [[nodiscard]] virtual bool name_allowed(const std::string& name) const = 0;
  // Increments each time a reload took effect.
  [[nodiscard]] virtual uint64_t generation() const noexcept = 0;
  [[nodiscard]] virtual AuthStats stats() const noexcept = 0;
};

// One message as received: valid for the duration of on_message.
struct Message {
  std::string_view routing_id;
  std::span<const uint8_t> body;
  std::string_view user;  // the name CURVE authenticated this connection as; empty in plaintext
  std::string_view peer;  // the peer's address (needed for a Hello only)
  int64_t t_recv_ns = 0;
};

class BrokerCore {
 public:
  // Throws ConfigError when the topology exceeds the options' bounds.
  BrokerCore(BrokerOptions options, const Clock& clock, Outbox& out, uint64_t epoch);
  BrokerCore(const BrokerCore&) = delete;
  BrokerCore& operator=(const BrokerCore&) = delete;

  // Before the first message: the allowlist (nullptr: plaintext), whether the listening address
  // is reachable without encryption, and the network time's anchor.
  void on_bound(const Authority* authority, bool insecure, int64_t now_ns) noexcept;
  // When the loop starts: the stats timer and the startup grace begin.
  void start(int64_t now_ns) noexcept;

  void on_message(const Message& m) noexcept;
  // A message the shell could not take apart (not [routing id, one frame]): counted.
  void on_malformed() noexcept { rejects_.add(Reject::malformed); }
  // Sends what the rings hold until a peer would block; pending() says whether any is left.
  void flush() noexcept;
  [[nodiscard]] bool pending() const noexcept { return any_pending_; }
  // Liveness, the startup grace, allowlist reloads, the stats line.
  void tick(int64_t now) noexcept;
  // Tells every registered node and recorder that the broker is going away.
  void say_goodbye() noexcept;

  [[nodiscard]] const BrokerOptions& options() const noexcept { return opts_; }
  [[nodiscard]] uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] const RoutingTable& routing() const noexcept { return table_; }
  [[nodiscard]] const RejectCounters& rejects() const noexcept { return rejects_; }
  [[nodiscard]] LiveFeed& live() noexcept { return live_; }
  [[nodiscard]] std::vector<BrokerNodeStats> node_stats() const;
  [[nodiscard]] std::vector<TapStats> tap_stats() const;
  [[nodiscard]] std::vector<ConnectionStats> connection_stats() const;
  void fill_status(v1::StatusReply& r, bool include_topology, bool include_channels = false,
                   const std::set<std::string>& channels_of = {}) const;

 private:
  static int64_t ms_to_ns(std::chrono::milliseconds d) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }
  [[nodiscard]] bool insecure() const noexcept { return insecure_; }

  // core.cpp
  bool control_allowed(NodeSlot* slot, TapSlot* tap, std::string_view user, int64_t now) noexcept;
  void answer_probe(std::string_view rid, int64_t t_recv) noexcept;
  void send_welcome(std::string_view rid, uint32_t node_id) noexcept;
  void echo_heartbeat(std::string_view rid) noexcept;
  void reject(Reject why, NodeSlot* slot) noexcept;
  void reply_error(std::string_view rid, v1::Error::Code code, const std::string& msg,
                   uint32_t retry_after_ms = 0) noexcept;
  void send_direct(std::string_view rid, const std::string& frame) noexcept;

  // registry.cpp
  NodeSlot* find_slot(std::string_view rid) noexcept;
  void on_health(NodeSlot& s) noexcept;
  void refuse_hello(std::string_view rid, std::string_view peer, std::string_view name, Reject why,
                    v1::Error::Code code, const std::string& reason,
                    uint32_t retry_after_ms = 0) noexcept;
  bool may_hold(Holder& s, const char* what, std::string_view rid, std::string_view peer,
                const v1::Hello& h, int64_t now) noexcept;
  void on_hello(std::string_view rid, std::string_view user, std::string_view peer, int64_t t_recv);
  void unregister(NodeSlot& slot) noexcept;
  void enforce_allowlist() noexcept;

  // taps.cpp
  TapSlot* find_tap(std::string_view rid) noexcept;
  void on_tap_message(TapSlot& tap, std::string_view rid, Body body, int64_t t_recv) noexcept;
  void on_tap_hello(std::string_view rid, std::string_view peer, int64_t t_recv);
  void unregister_tap(TapSlot& t) noexcept;
  void copy_to_taps(const NodeSlot& src, std::span<const uint8_t> frame, int64_t t_recv) noexcept;
  void copy_to_tap(TapSlot& t, uint32_t src, std::span<const uint8_t> frame, int64_t t_recv,
                   uint32_t events) noexcept;
  [[nodiscard]] bool holding(const NodeSlot& t) const noexcept;
  void hold_for_taps(uint32_t src, std::span<const uint8_t> frame, int64_t t_recv) noexcept;
  void replay_held(TapSlot& t) noexcept;
  void end_grace() noexcept;

  // router.cpp
  // A source routed whole, channel c to port c, to each of its targets: the frame goes on with
  // the source's bytes unchanged and a routing header per target; no per-event work.
  struct WholeRoute {
    uint32_t target;
    uint32_t connection;
    LatePolicy late_policy;
  };
  void on_batch(NodeSlot& slot, std::span<const uint8_t> frame, int64_t now) noexcept;
  RouteGroup& group_for(NodeSlot& t, const Route& r);
  static std::vector<WholeRoute> whole_routes(const RoutingTable& table, uint32_t src);
  void route_whole(uint32_t src, std::span<const uint8_t> frame, int64_t now) noexcept;
  void route(uint32_t src) noexcept;
  void enqueue(uint32_t src, NodeSlot& t, RouteGroup& g, bool complete) noexcept;

  // delays.cpp
  void on_latency_reports(NodeSlot& target, int64_t now) noexcept;

  // status.cpp
  void on_status(std::string_view rid);

  const BrokerOptions opts_;
  const Clock& clock_;
  Outbox& out_;
  const RoutingTable table_;
  Codec codec_;
  Codec status_codec_{{.max_message_bytes = 64u << 20, .max_events_per_batch = 1}};  // big replies
  const uint64_t epoch_;
  RejectCounters rejects_;
  LiveFeed live_;
  const Authority* auth_ = nullptr;  // CURVE only
  bool insecure_ = false;
  uint64_t auth_generation_ = 0;
  TokenBucket unregistered_control_;
  std::unordered_map<std::string, TokenBucket, StringHash, std::equal_to<>> control_by_user_;
  std::vector<std::unique_ptr<NodeSlot>> slots_;
  std::vector<std::unique_ptr<TapSlot>> taps_;  // max_taps, made at start (never reallocated)
  std::vector<std::vector<WholeRoute>>
      whole_;                   // per source node: its whole routes, if it has only those
  mutable std::mutex taps_mu_;  // tap names, for readers on other threads
  std::string topology_yaml_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> by_routing_id_;
  std::vector<uint32_t> touched_;
  // Per topology connection: current delay (readable from any thread), auto controllers.
  std::vector<std::atomic<int64_t>> conn_delay_ns_;
  std::vector<Counter> conn_raises_;
  std::vector<Counter> conn_lowers_;
  std::vector<std::optional<AutoDelay>> auto_;
  std::vector<uint32_t> conn_source_;
  std::vector<std::vector<uint32_t>> conn_targets_;
  BatchHeader in_header_;
  EventBatch in_events_;
  std::string scratch_;
  bool any_pending_ = false;
  int64_t anchor_network_ns_ = 0;
  int64_t anchor_utc_ns_ = 0;
  int64_t next_stats_ns_ = 0;
  int64_t error_window_start_ns_ = 0;
  uint32_t errors_in_window_ = 0;
  uint64_t control_send_failures_ = 0;
  std::array<LogLimiter, kRejectCount> reject_log_{};
  bool in_grace_ = false;  // startup grace
  int64_t grace_end_ns_ = 0;
  FrameRing held_for_taps_{1, 0};  // sized at start from tap_ring_frames, tap_ring_bytes
  std::string held_scratch_;
  uint64_t held_for_taps_dropped_ = 0;
  LogLimiter hello_log_;
};

}  // namespace ion::broker_impl
