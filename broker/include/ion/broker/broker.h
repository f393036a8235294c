#pragma once
// ion-broker: registers nodes, answers clock probes, routes spike batches through the compiled
// topology with per-connection delays, and never blocks on a slow node (bounded per-node rings,
// drop-oldest, counted).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ion/broker/topology.h"
#include "ion/core/clock.h"
#include "ion/core/codec.h"
#include "ion/core/reject.h"
#include "ion/core/security.h"
#include "ion/core/status_counters.h"

namespace ion {

namespace v1 {
class StatusReply;
}

// How nodes are admitted (docs/security.md).
struct BrokerSecurity {
  std::optional<CurveKeyPair> key;  // the broker's own pair; none: plaintext links
  Allowlist allowlist;              // the node keys admitted, by name
  std::string allowlist_file;       // read again on reload_allowlist() (SIGHUP); empty: fixed
  // Plaintext on an endpoint that other machines can reach. Refused unless set explicitly.
  bool insecure = false;

  // The broker's key file and the allowlist file. Throws SecurityError.
  static BrokerSecurity load(const std::string& secret_key_file, const std::string& allowlist_file);
};

struct BrokerOptions {
  std::string listen = "tcp://127.0.0.1:5555";
  std::string http;  // HOST:PORT of the dashboard, /metrics and /api/status; empty: none
  BrokerSecurity security;
  Topology topology;
  std::chrono::milliseconds heartbeat_interval{500};  // application heartbeats and ZMTP PINGs
  std::chrono::milliseconds heartbeat_timeout{3000};  // silent this long -> node is gone
  // For this long after start, traffic for topology nodes that have not registered yet is held
  // in their rings (not dropped), and a copy of everything accepted is kept for recorders that
  // register in that time: after a broker restart, what the nodes kept during the outage reaches
  // targets and recorders that come back later than its sources. 0: off. docs/timing.md.
  std::chrono::milliseconds startup_grace{10000};
  uint32_t max_nodes = 256;
  uint32_t max_streams_per_node = 16;
  uint32_t max_channels_per_node = 1u << 16;  // channels or ports a topology node may declare
  size_t max_routes = 1u << 22;               // compiled routes (memory of the routing table)
  // Control messages (Hello, heartbeats, clock probes, status) per authenticated name, or from
  // all plaintext peers together: a sustained rate and a burst. Beyond: dropped, counted.
  double control_rate_hz = 200;
  double control_burst = 400;
  size_t ring_frames = 4096;         // per target node
  size_t ring_bytes = 16u << 20;     // per target node
  int send_hwm = 1000;               // zmq frames queued per peer before the ring holds them
  int socket_send_buffer = 0;        // kernel bytes per peer connection; 0 = system default
  CodecLimits limits;
  std::chrono::nanoseconds max_past{std::chrono::seconds(60)};    // event time window
  std::chrono::nanoseconds max_future{std::chrono::seconds(10)};
  std::chrono::milliseconds stats_interval{10000};  // periodic counter log line; 0 = off
  uint32_t max_taps = 4;             // recorders receiving a copy of every accepted batch
  size_t tap_ring_frames = 16384;    // per tap (drop-oldest, counted)
  size_t tap_ring_bytes = 64u << 20;

  // Reads the `broker:` mapping of a config file; the topology file path is relative to it.
  static BrokerOptions from_config(const ConfigNode& root);
  static BrokerOptions from_file(const std::string& path);
};

// What a node last reported about itself in its heartbeats.
struct NodeHealthStats {
  bool reported = false;
  bool clock_synced = false;
  int64_t clock_offset_ns = 0;
  int64_t clock_uncertainty_ns = 0;
  int64_t clock_drift_ppb = 0;
#define ION_STATS_FIELD(name) uint64_t name = 0;
  ION_NODE_HEALTH_COUNTERS(ION_STATS_FIELD)  // status_counters.h
  uint64_t device_trouble = 0;   // sum of the driver's trouble counters
  std::map<std::string, int64_t> driver_counters;
  std::vector<std::string> trouble_counters;  // names among driver_counters
  std::map<std::string, std::vector<float>> gauges;  // the driver's gauges (e.g. "weight")
};

// A snapshot of one node's counters (safe to take from any thread).
struct BrokerNodeStats {
  std::string name;
  std::string kind;
  bool connected = false;
  ION_BROKER_NODE_COUNTERS(ION_STATS_FIELD)  // status_counters.h
  int64_t ingress_latency_p50_ns = 0;  // broker receive - source time of this node's events
  int64_t ingress_latency_p99_ns = 0;
  int64_t ingress_latency_max_ns = 0;
  std::vector<uint64_t> ingress_latency_le;  // cumulative, at kLatencyBoundsNs
  uint64_t ingress_latency_count = 0;
  uint64_t ingress_latency_sum_ns = 0;
  std::vector<float> weights;  // the driver's "weight" gauge (a synapse board): per synapse, NaN: not read yet
  NodeHealthStats health;
};

// A thinned copy of the spike events the broker accepts, for live views (the dashboard). Costs
// the routing loop one relaxed load while nobody watches; while someone does, at most `cap`
// events per node are kept between two take()s (the rest are counted), and the routing loop never
// waits for a reader (it skips, counted, when the reader holds the buffer).
struct LiveEvent {
  int64_t time_ns;
  uint32_t channel;
};

// A neuromodulator sample for live views: never thinned (slow streams, each sample matters).
struct LiveSample {
  int64_t time_ns;
  uint32_t channel;
  float value;
};

class LiveFeed {
 public:
  LiveFeed(size_t nodes, size_t cap_per_node);
  void watch(bool on) noexcept;
  [[nodiscard]] bool watched() const noexcept {
    return watchers_.load(std::memory_order_relaxed) > 0;
  }
  // The routing thread: the events (stream 0) of an accepted batch. Spikes are thinned to the
  // feed's capacity; neuromodulator samples are all kept (up to kMaxSamples per node per frame,
  // beyond which they are counted in dropped_samples()).
  void offer(uint32_t node, const EventBatch& events) noexcept;
  // Swaps what was kept since the last take into `out` and `samples` (one vector per node,
  // cleared first).
  void take(std::vector<std::vector<LiveEvent>>& out, std::vector<std::vector<LiveSample>>& samples);
  [[nodiscard]] uint64_t thinned() const noexcept { return thinned_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t dropped_samples() const noexcept { return dropped_samples_.load(std::memory_order_relaxed); }
  static constexpr size_t kMaxSamples = 1u << 16;

 private:
  std::atomic<int> watchers_{0};
  std::mutex mu_;
  std::vector<std::vector<LiveEvent>> buf_;
  std::vector<std::vector<LiveSample>> samples_;
  size_t cap_;
  std::atomic<uint64_t> thinned_{0};
  std::atomic<uint64_t> dropped_samples_{0};
};

struct TapStats {
  std::string name;
  bool connected = false;
  ION_BROKER_TAP_COUNTERS(ION_STATS_FIELD)  // status_counters.h
#undef ION_STATS_FIELD
};

struct ConnectionStats {
  uint32_t index = 0;
  std::string from;
  int64_t delay_ns = 0;
  bool auto_delay = false;
  uint64_t raises = 0;
  uint64_t lowers = 0;
};

class Broker {
 public:
  explicit Broker(BrokerOptions options, const Clock& clock = SteadyClock::instance());
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Binds the listening socket and returns the resolved endpoint. Throws on failure.
  std::string bind();
  // Serves until stop(); call from one thread.
  void run();
  // Thread- and async-signal-safe.
  void stop() noexcept;

  [[nodiscard]] uint64_t epoch() const noexcept;
  [[nodiscard]] std::string endpoint() const;
  [[nodiscard]] std::vector<BrokerNodeStats> node_stats() const;
  [[nodiscard]] std::vector<ConnectionStats> connection_stats() const;
  [[nodiscard]] std::vector<TapStats> tap_stats() const;
  [[nodiscard]] const RejectCounters& rejects() const noexcept;
  // Handshake counters; all zero for a plaintext broker.
  [[nodiscard]] AuthStats auth_stats() const noexcept;
  // Async-signal-safe: the allowlist file is read again; nodes whose name left it are cut off.
  void reload_allowlist() noexcept;
  // Everything `ion status` and the dashboard show (safe from any thread).
  void status(v1::StatusReply& out, bool include_topology = false) const;
  [[nodiscard]] LiveFeed& live() noexcept;
  [[nodiscard]] int64_t network_now_ns() const noexcept;
  [[nodiscard]] const RoutingTable& routing() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A broker serving on its own thread, for the demos, the benchmarks and the tests: bound at
// construction (throws as bind() does), stopped and joined by stop() or the destructor.
class BrokerThread {
 public:
  explicit BrokerThread(BrokerOptions options, const Clock& clock = SteadyClock::instance());
  ~BrokerThread();
  BrokerThread(const BrokerThread&) = delete;
  BrokerThread& operator=(const BrokerThread&) = delete;
  // Idempotent.
  void stop() noexcept;
  [[nodiscard]] Broker& broker() noexcept { return broker_; }
  [[nodiscard]] const std::string& endpoint() const noexcept { return endpoint_; }

 private:
  Broker broker_;
  std::string endpoint_;
  std::thread thread_;
};

}  // namespace ion
