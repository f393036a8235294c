#include "ion/broker/broker.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "ion/core/counter.h"
#include "ion/core/frame_ring.h"
#include "ion/core/histogram.h"
#include "ion/core/log.h"
#include "ion/core/names.h"
#include "ion/core/sequence.h"
#include "ion/core/transport.h"
#include "ion/v1/ion.pb.h"

namespace ion {

namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// A sustained rate with a burst allowance.
struct TokenBucket {
  double tokens = -1;  // < 0: not started (full)
  int64_t last_ns = 0;
  bool take(int64_t now_ns, double rate_hz, double burst) noexcept {
    if (tokens < 0) {
      tokens = burst;
    } else {
      tokens = std::min(burst, tokens + static_cast<double>(now_ns - last_ns) * 1e-9 * rate_hz);
    }
    last_ns = now_ns;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

struct StreamState {
  uint32_t stream = 0;
  SequenceTracker seq;
};

struct RouteGroup {
  int64_t delay_ns = 0;
  LatePolicy late_policy = LatePolicy::deliver_flagged;
  EventBatch events;
};

// One per topology node, created at start and never moved (counters are read by other threads).
NodeHealthStats health_stats(bool reported, const v1::NodeHealth& h) {
  NodeHealthStats x;
  x.reported = reported;
  x.clock_synced = h.clock_synced();
  x.clock_offset_ns = h.clock_offset_ns();
  x.clock_uncertainty_ns = h.clock_uncertainty_ns();
  x.clock_drift_ppb = h.clock_drift_ppb();
  x.received_events = h.received_events();
  x.lost_events = h.lost_events();
  x.late_events = h.late_events();
  x.late_dropped = h.late_dropped();
  x.emitted_events = h.emitted_events();
  x.dropped_events = h.dropped_events();
  x.playout_overrun = h.playout_overrun();
  x.device_trouble = h.device_trouble();
  x.driver_counters.insert(h.driver_counters().begin(), h.driver_counters().end());
  x.trouble_counters.assign(h.trouble_counters().begin(), h.trouble_counters().end());
  return x;
}

struct NodeSlot {
  NodeSlot(uint32_t node_id, const NodeSpec& spec, size_t ring_frames, size_t ring_bytes)
      : id(node_id),
        name(spec.name),
        kind(spec.kind),
        ring(ring_frames, ring_bytes),
        // A synapse board reports each synapse's weight on channel S + k (S synapses).
        weights(spec.kind == "synapse" ? spec.channels / 2 : 0) {
    for (auto& w : weights) w.store(std::numeric_limits<float>::quiet_NaN());
  }

  const uint32_t id;
  const std::string name;
  const std::string kind;

  // Broker-loop state.
  bool registered = false;
  std::string routing_id;
  uint64_t epoch = 0;
  std::string peer;                // the holder's address, for the one-holder refusal
  int64_t registered_ns = 0;       // broker clock, when the holder registered
  uint32_t declared_channels = 0;
  uint32_t declared_ports = 0;
  int64_t last_seen_ns = 0;
  uint64_t next_link_sequence = 0;
  std::vector<StreamState> streams;
  FrameRing ring;
  std::vector<RouteGroup> groups;  // per-delay builders for the batch being routed
  size_t groups_used = 0;
  bool split = false;              // current batch was cut into several frames
  TokenBucket control;             // control messages of the registered node

  // Counters, readable from any thread.
  std::atomic<bool> connected{false};
  Counter registrations, batches_in, events_in, batches_out, events_out, dropped_batches,
      dropped_events, lost_upstream_batches, reordered_batches, source_restarts,
      rejected_batches, timeouts;
  Histogram ingress_latency;  // source -> broker, per event
  // The node's own report (its latest heartbeat's health), readable from any thread.
  mutable std::mutex health_mu;
  bool health_reported = false;  // guarded by health_mu
  v1::NodeHealth health;         // guarded by health_mu
  std::vector<std::atomic<float>> weights;  // latest reported, readable from any thread
  // End-to-end latency of the links into this node, as it reports them (heartbeats).
  struct LinkTotals {
    uint32_t source = 0;
    std::vector<uint64_t> le;
    uint64_t count = 0;
    int64_t sum_ns = 0;
  };
  mutable std::mutex links_mu;
  std::vector<LinkTotals> links;  // at most one per source node

  void drop(uint64_t frames, uint64_t events) noexcept {
    dropped_batches.add(frames);
    dropped_events.add(events);
  }
};

// A recorder: not in the topology; gets a copy of every accepted batch from its sources.
struct TapSlot {
  TapSlot(size_t ring_frames, size_t ring_bytes) : ring(ring_frames, ring_bytes) {}
  bool in_use = false;
  bool registered = false;
  std::string name;        // written under taps_mu_
  std::string routing_id;
  uint64_t epoch = 0;            // the holder's process
  std::string peer;
  int64_t registered_ns = 0;
  std::vector<uint8_t> sources;  // per node id; empty: every node
  int64_t last_seen_ns = 0;
  uint64_t next_link_sequence = 0;
  FrameRing ring;
  TokenBucket control;
  std::atomic<bool> connected{false};
  Counter batches_out, events_out, dropped_batches, dropped_events;
};

}  // namespace

BrokerOptions BrokerOptions::from_config(const ConfigNode& root) {
  root.only_keys({"broker"});
  const ConfigNode b = root.child("broker");
  b.only_keys({"listen", "http", "topology", "heartbeat_interval", "heartbeat_timeout", "startup_grace", "max_nodes",
               "max_streams_per_node", "ring_frames", "ring_bytes", "send_hwm", "socket_send_buffer",
               "max_message_bytes", "max_events_per_batch", "max_past", "max_future",
               "stats_interval", "max_taps", "tap_ring_frames", "tap_ring_bytes", "secret_key",
               "allowlist", "max_channels_per_node", "max_routes", "control_rate",
               "control_burst"});
  BrokerOptions o;
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  o.listen = b.string("listen", o.listen);
  o.http = b.string("http", "");
  o.heartbeat_interval = std::chrono::duration_cast<milliseconds>(
      b.duration("heartbeat_interval", o.heartbeat_interval, milliseconds(10), seconds(60)));
  o.heartbeat_timeout = std::chrono::duration_cast<milliseconds>(
      b.duration("heartbeat_timeout", o.heartbeat_timeout, milliseconds(50), seconds(600)));
  if (o.heartbeat_timeout <= o.heartbeat_interval) {
    b.fail("heartbeat_timeout", "a duration longer than heartbeat_interval");
  }
  o.max_nodes = static_cast<uint32_t>(b.integer("max_nodes", o.max_nodes, 1, 65536));
  o.max_streams_per_node =
      static_cast<uint32_t>(b.integer("max_streams_per_node", o.max_streams_per_node, 1, 1024));
  o.ring_frames = static_cast<size_t>(b.integer("ring_frames", 4096, 1, 1 << 24));
  o.ring_bytes = static_cast<size_t>(b.integer("ring_bytes", 16 << 20, 1024, int64_t{1} << 34));
  o.send_hwm = static_cast<int>(b.integer("send_hwm", o.send_hwm, 1, 1 << 20));
  o.socket_send_buffer =
      static_cast<int>(b.integer("socket_send_buffer", 0, 0, int64_t{1} << 30));
  o.limits.max_message_bytes =
      static_cast<size_t>(b.integer("max_message_bytes", 1 << 20, 256, 64 << 20));
  o.limits.max_events_per_batch = static_cast<uint32_t>(
      b.integer("max_events_per_batch", o.limits.max_events_per_batch, 1, 1 << 22));
  o.max_past = b.duration("max_past", o.max_past, milliseconds(1), std::chrono::hours(24));
  o.max_future = b.duration("max_future", o.max_future, milliseconds(1), std::chrono::hours(24));
  o.stats_interval = std::chrono::duration_cast<milliseconds>(
      b.duration("stats_interval", o.stats_interval, milliseconds(0), std::chrono::hours(1)));
  o.startup_grace = std::chrono::duration_cast<milliseconds>(
      b.duration("startup_grace", o.startup_grace, milliseconds(0), seconds(600)));
  o.max_taps = static_cast<uint32_t>(b.integer("max_taps", o.max_taps, 0, 64));
  o.tap_ring_frames = static_cast<size_t>(b.integer("tap_ring_frames", 16384, 1, 1 << 24));
  o.tap_ring_bytes =
      static_cast<size_t>(b.integer("tap_ring_bytes", 64 << 20, 1024, int64_t{1} << 34));
  o.max_channels_per_node = static_cast<uint32_t>(
      b.integer("max_channels_per_node", o.max_channels_per_node, 1, 1 << 24));
  o.max_routes = static_cast<size_t>(
      b.integer("max_routes", static_cast<int64_t>(o.max_routes), 1, int64_t{1} << 30));
  o.control_rate_hz = b.number("control_rate", o.control_rate_hz, 1, 1e6);
  o.control_burst = b.number("control_burst", o.control_burst, 1, 1e6);
  if (b.has("secret_key") != b.has("allowlist")) {
    b.fail(b.has("secret_key") ? "allowlist" : "secret_key",
           "both secret_key and allowlist (CURVE needs the broker's key and the nodes' keys)");
  }
  if (b.has("secret_key")) {
    try {
      o.security = BrokerSecurity::load(b.resolve_path(b.string("secret_key")),
                                        b.resolve_path(b.string("allowlist")));
    } catch (const SecurityError& e) {
      throw ConfigError(b.where("secret_key") + ": " + e.what());
    }
  }
  o.topology = load_topology_file(b.resolve_path(b.string("topology")));
  return o;
}

BrokerSecurity BrokerSecurity::load(const std::string& secret_key_file,
                                    const std::string& allowlist_file) {
  BrokerSecurity s;
  s.key = load_secret_key(secret_key_file);
  s.allowlist = Allowlist::load_file(allowlist_file);
  s.allowlist_file = allowlist_file;
  return s;
}

BrokerOptions BrokerOptions::from_file(const std::string& path) {
  return from_config(ConfigNode::load_file(path));
}

class Broker::Impl {
 public:
  Impl(BrokerOptions options, const Clock& clock)
      : opts_(std::move(options)),
        clock_(clock),
        table_(RoutingTable::compile(opts_.topology)),
        codec_(opts_.limits),
        epoch_(random_epoch()),
        live_(table_.node_count(), 2048) {
    if (table_.node_count() > opts_.max_nodes) {
      throw ConfigError("topology has " + std::to_string(table_.node_count()) +
                        " nodes, more than max_nodes = " + std::to_string(opts_.max_nodes));
    }
    for (const NodeSpec& n : opts_.topology.nodes) {
      if (std::max(n.channels, n.ports) > opts_.max_channels_per_node) {
        throw ConfigError("topology node '" + n.name + "' has " +
                          std::to_string(std::max(n.channels, n.ports)) +
                          " channels or ports, more than max_channels_per_node = " +
                          std::to_string(opts_.max_channels_per_node));
      }
    }
    if (table_.route_count() > opts_.max_routes) {
      throw ConfigError("topology compiles to " + std::to_string(table_.route_count()) +
                        " routes, more than max_routes = " + std::to_string(opts_.max_routes));
    }
    const auto& conns = opts_.topology.connections;
    conn_delay_ns_ = std::vector<std::atomic<int64_t>>(conns.size());
    conn_raises_ = std::vector<Counter>(conns.size());
    conn_lowers_ = std::vector<Counter>(conns.size());
    for (size_t c = 0; c < conns.size(); ++c) {
      conn_delay_ns_[c].store(conns[c].delay_ns, std::memory_order_relaxed);
      auto_.emplace_back(conns[c].auto_delay ? std::optional<AutoDelay>(conns[c].auto_options)
                                             : std::nullopt);
      conn_source_.push_back(static_cast<uint32_t>(table_.find_node(conns[c].from.node)));
      std::vector<uint32_t> targets;
      for (const auto& t : conns[c].to) targets.push_back(static_cast<uint32_t>(table_.find_node(t.node)));
      conn_targets_.push_back(std::move(targets));
    }
    for (size_t i = 0; i < table_.node_count(); ++i) {
      const auto id = static_cast<uint32_t>(i);
      slots_.push_back(
          std::make_unique<NodeSlot>(id, table_.node(id), opts_.ring_frames, opts_.ring_bytes));
    }
    for (uint32_t i = 0; i < opts_.max_taps; ++i) {
      taps_.push_back(std::make_unique<TapSlot>(opts_.tap_ring_frames, opts_.tap_ring_bytes));
    }
    topology_yaml_ = to_yaml(opts_.topology);
    for (uint32_t i = 0; i < table_.node_count(); ++i) whole_.push_back(whole_routes(table_, i));
  }

  std::string bind() {
    SocketOptions so;
    so.send_hwm = opts_.send_hwm;
    so.recv_hwm = opts_.send_hwm;
    so.send_buffer_bytes = opts_.socket_send_buffer;
    so.max_message_bytes = static_cast<int64_t>(opts_.limits.max_message_bytes);
    so.heartbeat_interval_ms = static_cast<int>(opts_.heartbeat_interval.count());
    so.heartbeat_timeout_ms = static_cast<int>(opts_.heartbeat_timeout.count());
    const BrokerSecurity& sec = opts_.security;
    if (sec.key) {
      require_curve("ion-broker");
      if (sec.allowlist.size() == 0) {
        throw SecurityError("the allowlist" +
                            (sec.allowlist_file.empty() ? "" : " '" + sec.allowlist_file + "'") +
                            " lists no node keys: no node could connect. Add the lines of the "
                            "nodes' NAME.pub files (`ion keygen NAME` makes them)");
      }
      so.curve_server_secret_z85 = sec.key->secret_z85;
    } else if (!local_only_endpoint(opts_.listen) && !sec.insecure) {
      throw SecurityError(
          "refusing to listen on '" + opts_.listen +
          "' without encryption: other machines can reach it, and an unauthenticated message "
          "must never reach a lab. Give the broker a key (broker.secret_key and "
          "broker.allowlist; `ion keygen` makes keys, see docs/security.md), listen on a "
          "loopback address, or pass --insecure to accept anyone");
    }
    socket_ = std::make_unique<Socket>(ctx_, Socket::Type::router, so);
    if (sec.key) {  // installed before the socket binds: no handshake without it
      auth_ = std::make_unique<ZapAuthenticator>(ctx_, socket_->raw(), sec.allowlist,
                                                 sec.allowlist_file);
    }
    endpoint_ = socket_->bind(opts_.listen);
    if (insecure()) {
      spdlog::warn("INSECURE: listening on {} WITHOUT encryption or authentication (--insecure): "
                   "anyone who can reach this port can register as any node and send events",
                   endpoint_);
    }
    anchor_network_ns_ = clock_.now_ns();
    anchor_utc_ns_ = utc_now_ns();
    spdlog::info("broker listening on {} (epoch {:016x}, {} nodes, {} routes, {})", endpoint_,
                 epoch_, table_.node_count(), table_.route_count(),
                 sec.key ? "CURVE, " + std::to_string(sec.allowlist.size()) + " node keys"
                         : std::string("plaintext"));
    return endpoint_;
  }

  void run() {
    if (!socket_) bind();
    pthread_setname_np(pthread_self(), "ion-broker");  // visible in top -H and perf
    next_stats_ns_ = clock_.now_ns() + ms_to_ns(opts_.stats_interval);
    if (opts_.startup_grace.count() > 0) {
      in_grace_ = true;
      grace_end_ns_ = clock_.now_ns() + ms_to_ns(opts_.startup_grace);
      if (opts_.max_taps > 0) held_for_taps_ = FrameRing(opts_.tap_ring_frames, opts_.tap_ring_bytes);
    }
    while (!stop_.load(std::memory_order_acquire)) {
      const int ready = poll_readable(*socket_, wakeup_.fd(), any_pending_ ? 1 : 20);
      if ((ready & 2) != 0) wakeup_.drain();
      // Drain what is readable first, answering clock probes as they are read, so a probe never
      // waits behind the routing of batches that arrived before it. The rest is handled after.
      size_t deferred = 0;
      for (int i = 0; i < kDrainMax; ++i) {  // bounded, so rings flush and timers run under flood
        Pending& m = pending_[deferred];
        if (socket_->recv(m.id) != IoStatus::ok) break;
        m.t_recv = clock_.now_ns();
        if (!m.id.more() || socket_->recv(m.body) != IoStatus::ok) {
          rejects_.add(Reject::malformed);
          continue;
        }
        m.user = {};
        if (auth_) {  // the name ZAP gave this connection's key
          if (const char* u = zmq_msg_gets(m.body.handle(), "User-Id")) m.user = u;
        }
        if (m.body.more()) {  // our protocol is one frame per message
          while (m.body.more() && socket_->recv(m.body) == IoStatus::ok) {
          }
          rejects_.add(Reject::malformed);
          continue;
        }
        if (peek_body(bytes_of(m.body)) == Body::time_request) {
          handle(m);
          continue;
        }
        ++deferred;
      }
      for (size_t i = 0; i < deferred; ++i) handle(pending_[i]);
      flush();
      timers(clock_.now_ns());
    }
    say_goodbye();
    socket_->close();
  }

  void stop() noexcept {
    stop_.store(true, std::memory_order_release);
    wakeup_.notify();
  }

  [[nodiscard]] std::vector<BrokerNodeStats> node_stats() const {
    std::vector<BrokerNodeStats> out;
    for (const auto& s : slots_) {
      BrokerNodeStats n;
      n.name = s->name;
      n.kind = s->kind;
      n.connected = s->connected.load(std::memory_order_relaxed);
      n.registrations = s->registrations.get();
      n.batches_in = s->batches_in.get();
      n.events_in = s->events_in.get();
      n.batches_out = s->batches_out.get();
      n.events_out = s->events_out.get();
      n.dropped_batches = s->dropped_batches.get();
      n.dropped_events = s->dropped_events.get();
      n.lost_upstream_batches = s->lost_upstream_batches.get();
      n.reordered_batches = s->reordered_batches.get();
      n.source_restarts = s->source_restarts.get();
      n.rejected_batches = s->rejected_batches.get();
      n.timeouts = s->timeouts.get();
      n.ingress_latency_p50_ns = s->ingress_latency.quantile_ns(0.5);
      n.ingress_latency_p99_ns = s->ingress_latency.quantile_ns(0.99);
      n.ingress_latency_max_ns = s->ingress_latency.max_ns();
      n.ingress_latency_count = s->ingress_latency.count();
      n.ingress_latency_sum_ns = s->ingress_latency.sum_ns();
      const auto le = s->ingress_latency.counts_at_bounds();
      n.ingress_latency_le.assign(le.begin(), le.end());
      for (const auto& w : s->weights) n.weights.push_back(w.load(std::memory_order_relaxed));
      {
        std::lock_guard lock(s->health_mu);
        n.health = health_stats(s->health_reported, s->health);
      }
      out.push_back(std::move(n));
    }
    return out;
  }

  [[nodiscard]] std::vector<TapStats> tap_stats() const {
    std::vector<TapStats> out;
    std::lock_guard lock(taps_mu_);
    for (const auto& t : taps_) {
      if (!t->in_use) continue;
      TapStats x;
      x.name = t->name;
      x.connected = t->connected.load(std::memory_order_relaxed);
      x.batches_out = t->batches_out.get();
      x.events_out = t->events_out.get();
      x.dropped_batches = t->dropped_batches.get();
      x.dropped_events = t->dropped_events.get();
      out.push_back(std::move(x));
    }
    return out;
  }

  [[nodiscard]] std::vector<ConnectionStats> connection_stats() const {
    std::vector<ConnectionStats> out;
    const auto& conns = opts_.topology.connections;
    for (size_t c = 0; c < conns.size(); ++c) {
      ConnectionStats s;
      s.index = static_cast<uint32_t>(c);
      const auto& f = conns[c].from;
      s.from = f.node + ":" +
               (f.wildcard ? std::string("*")
                           : std::to_string(f.first) +
                                 (f.last != f.first ? "-" + std::to_string(f.last) : ""));
      s.delay_ns = conn_delay_ns_[c].load(std::memory_order_relaxed);
      s.auto_delay = conns[c].auto_delay;
      s.raises = conn_raises_[c].get();
      s.lowers = conn_lowers_[c].get();
      out.push_back(std::move(s));
    }
    return out;
  }

  [[nodiscard]] bool insecure() const noexcept {
    return !auth_ && !local_only_endpoint(endpoint_);
  }
  [[nodiscard]] AuthStats auth_stats() const noexcept { return auth_ ? auth_->stats() : AuthStats{}; }
  void reload_allowlist() noexcept {
    if (auth_) auth_->request_reload();
  }

  const BrokerOptions opts_;
  const Clock& clock_;
  const RoutingTable table_;
  Codec codec_;
  Codec status_codec_{{.max_message_bytes = 64u << 20, .max_events_per_batch = 1}};  // big replies
  const uint64_t epoch_;
  std::string endpoint_;
  RejectCounters rejects_;
  LiveFeed live_;

 private:
  static int64_t ms_to_ns(std::chrono::milliseconds d) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

  NodeSlot* find_slot(std::string_view rid) noexcept {
    const auto it = by_routing_id_.find(rid);
    return it == by_routing_id_.end() ? nullptr : slots_[it->second].get();
  }

  struct Pending {
    Frame id;
    Frame body;
    int64_t t_recv = 0;
    std::string_view user;  // authenticated name (CURVE), valid while `body` lives
  };

  void handle(const Pending& m) noexcept {
    const std::string_view rid = m.id.to_string_view();
    const Frame& frame = m.body;
    const int64_t t_recv = m.t_recv;
    const Decoded d = codec_.decode(bytes_of(frame));
    NodeSlot* slot = find_slot(rid);
    TapSlot* tap = slot == nullptr ? find_tap(rid) : nullptr;
    if (slot != nullptr && auth_ && m.user != slot->name) {
      // Another connection reusing a routing id this node had: never its messages.
      reject(Reject::impersonation, nullptr);
      return;
    }
    if (!d.ok()) {
      reject(d.reject, slot);
      if (d.reject == Reject::version_mismatch) {
        reply_error(rid, v1::Error::VERSION_MISMATCH,
                    "this broker speaks IoN protocol " + std::to_string(kProtocolVersion) +
                        "; the message is protocol " + std::to_string(d.version));
      }
      return;
    }
    if (d.body != Body::spike_batch && !control_allowed(slot, tap, m.user, t_recv)) {
      reject(Reject::rate_limited, slot);
      return;
    }
    if (d.body == Body::hello) {
      // Looked up only here: metadata reads are not free, and only a Hello needs the address.
      const char* peer = zmq_msg_gets(m.body.handle(), "Peer-Address");
      on_hello(rid, m.user, peer != nullptr ? peer : "an unknown address", t_recv);
      return;
    }
    if (d.body == Body::status_request) {
      on_status(rid);
      return;
    }
    if (slot == nullptr) {
      if (tap != nullptr) {
        if (auth_ && m.user != tap->name) {
          reject(Reject::impersonation, nullptr);
          return;
        }
        on_tap_message(*tap, rid, d.body, t_recv);
        return;
      }
      reject(Reject::unknown_node, nullptr);
      reply_error(rid, v1::Error::UNKNOWN_NODE, "not registered: send Hello first");
      return;
    }
    slot->last_seen_ns = t_recv;
    switch (d.body) {
      case Body::spike_batch: on_batch(*slot, bytes_of(frame), t_recv); break;
      case Body::heartbeat:
        on_latency_reports(*slot, t_recv);
        on_health(*slot);
        echo_heartbeat(rid);
        break;
      case Body::time_request: answer_probe(rid, t_recv); break;
      case Body::goodbye:
        spdlog::info("node '{}' left: {}", slot->name, codec_.goodbye().reason());
        unregister(*slot);
        break;
      case Body::error:
        spdlog::warn("node '{}' reports error {}: {}", slot->name,
                     static_cast<int>(codec_.error().code()), codec_.error().message());
        break;
      default: reject(Reject::unexpected_type, slot); break;
    }
  }

  // Control messages cost a token: a registered node's own bucket, else its key name's (CURVE:
  // bounded by the allowlist), else one shared by all unregistered plaintext peers.
  bool control_allowed(NodeSlot* slot, TapSlot* tap, std::string_view user, int64_t now) noexcept {
    const double rate = opts_.control_rate_hz;
    const double burst = opts_.control_burst;
    if (slot != nullptr) return slot->control.take(now, rate, burst);
    if (tap != nullptr) return tap->control.take(now, rate, burst);
    if (!auth_) return unregistered_control_.take(now, rate * 4, burst * 4);
    auto it = control_by_user_.find(user);
    if (it == control_by_user_.end()) {
      if (control_by_user_.size() >= 4096) return unregistered_control_.take(now, rate, burst);
      it = control_by_user_.emplace(std::string(user), TokenBucket{}).first;
    }
    return it->second.take(now, rate, burst);
  }

  void answer_probe(std::string_view rid, int64_t t_recv) noexcept {
    v1::TimeReply r;
    r.set_probe_id(codec_.time_request().probe_id());
    r.set_t0_ns(codec_.time_request().t0_ns());
    r.set_t1_ns(t_recv);
    r.set_broker_epoch(epoch_);
    r.set_t2_ns(clock_.now_ns());  // as late as possible before the send
    if (codec_.encode(r, scratch_)) send_direct(rid, scratch_);
  }

  void send_welcome(std::string_view rid, uint32_t node_id) noexcept {
    v1::Welcome w;
    w.set_node_id(node_id);
    w.set_broker_epoch(epoch_);
    w.set_anchor_network_ns(anchor_network_ns_);
    w.set_anchor_utc_ns(anchor_utc_ns_);
    w.set_heartbeat_interval_ms(static_cast<uint32_t>(opts_.heartbeat_interval.count()));
    w.set_heartbeat_timeout_ms(static_cast<uint32_t>(opts_.heartbeat_timeout.count()));
    w.set_max_events_per_batch(opts_.limits.max_events_per_batch);
    w.set_max_message_bytes(static_cast<uint32_t>(opts_.limits.max_message_bytes));
    if (codec_.encode(w, scratch_)) send_direct(rid, scratch_);
  }

  void echo_heartbeat(std::string_view rid) noexcept {
    v1::Heartbeat hb;
    hb.set_sent_ns(codec_.heartbeat().sent_ns());
    hb.set_broker_epoch(epoch_);
    if (codec_.encode(hb, scratch_)) send_direct(rid, scratch_);
  }

  void on_health(NodeSlot& s) noexcept {
    if (!codec_.heartbeat().has_health()) return;
    std::lock_guard lock(s.health_mu);
    s.health = codec_.heartbeat().health();  // as reported: one copy, no field-by-field relay
    s.health_reported = true;
  }

  // --- Taps (recorders) ---

  TapSlot* find_tap(std::string_view rid) noexcept {
    for (auto& t : taps_) {
      if (t->in_use && t->registered && t->routing_id == rid) return t.get();
    }
    return nullptr;
  }

  void on_tap_message(TapSlot& tap, std::string_view rid, Body body, int64_t t_recv) noexcept {
    tap.last_seen_ns = t_recv;
    switch (body) {
      case Body::heartbeat: echo_heartbeat(rid); break;
      case Body::time_request: answer_probe(rid, t_recv); break;
      case Body::goodbye:
        spdlog::info("tap '{}' left: {}", tap.name, codec_.goodbye().reason());
        unregister_tap(tap);
        break;
      default: reject(Reject::unexpected_type, nullptr); break;
    }
  }

  void on_tap_hello(std::string_view rid, std::string_view peer, int64_t t_recv) {
    const v1::Hello& h = codec_.hello();
    std::vector<uint8_t> sources;
    if (h.tap_sources_size() > 0) {
      sources.assign(table_.node_count(), 0);
      for (const auto& name : h.tap_sources()) {
        const int64_t id = table_.find_node(name);
        if (id < 0) {
          std::vector<std::string> known;
          for (size_t i = 0; i < table_.node_count(); ++i) {
            known.push_back(table_.node(static_cast<uint32_t>(i)).name);
          }
          refuse_hello(rid, peer, h.node_name(), Reject::unknown_node, v1::Error::NOT_IN_TOPOLOGY,
                       "tap '" + h.node_name() + "' selects node '" + name +
                           "', which is not in this broker's topology" + closest_names(name, known));
          return;
        }
        sources[static_cast<size_t>(id)] = 1;
      }
    }
    // The same name again takes its slot back if may_hold allows; else the first free slot.
    TapSlot* slot = nullptr;
    for (auto& t : taps_) {
      if (t->in_use && t->name == h.node_name()) slot = t.get();
    }
    if (slot != nullptr && !may_hold(*slot, "recorder", rid, peer, h, t_recv)) return;
    bool fresh = false;  // a slot not used since this broker started
    for (auto& t : taps_) {
      if (slot == nullptr && !t->in_use) {
        slot = t.get();
        fresh = true;
      }
    }
    if (slot == nullptr) {
      refuse_hello(rid, peer, h.node_name(), Reject::too_many_nodes, v1::Error::TOO_MANY_NODES,
                   "this broker takes at most " + std::to_string(opts_.max_taps) + " taps");
      return;
    }
    {
      std::lock_guard lock(taps_mu_);
      slot->name = h.node_name();
      slot->in_use = true;
    }
    if (slot->registered && slot->routing_id != rid) {
      const auto dropped = slot->ring.clear();
      slot->dropped_batches.add(dropped.dropped_frames);
      slot->dropped_events.add(dropped.dropped_events);
    }
    if (!slot->registered || slot->routing_id != rid) slot->registered_ns = t_recv;
    slot->registered = true;
    slot->routing_id = std::string(rid);
    slot->epoch = h.epoch();
    slot->peer = std::string(peer);
    slot->sources = std::move(sources);
    slot->last_seen_ns = t_recv;
    slot->connected.store(true, std::memory_order_relaxed);
    send_welcome(rid, UINT32_MAX);  // taps have no node id
    if (fresh && in_grace_) replay_held(*slot);
    spdlog::info("tap '{}' ({}) registered: {} sources", slot->name, h.software(),
                 slot->sources.empty() ? std::string("all")
                                       : std::to_string(h.tap_sources_size()));
  }

  void unregister_tap(TapSlot& t) noexcept {
    t.registered = false;
    t.connected.store(false, std::memory_order_relaxed);
    const auto dropped = t.ring.clear();
    t.dropped_batches.add(dropped.dropped_frames);
    t.dropped_events.add(dropped.dropped_events);
  }

  // A copy of the accepted batch for every tap that follows its source: the whole batch as it
  // came (its bytes and a routing header, like a whole route), stamped with the broker's receive
  // time, never waiting for the tap (its ring drops the oldest).
  void copy_to_taps(const NodeSlot& src, std::span<const uint8_t> frame, int64_t t_recv) noexcept {
    if (in_grace_) hold_for_taps(src.id, frame, t_recv);
    const auto n = static_cast<uint32_t>(in_events_.size());
    for (auto& tp : taps_) {
      TapSlot& t = *tp;
      if (t.registered) copy_to_tap(t, src.id, frame, t_recv, n);
    }
  }

  void copy_to_tap(TapSlot& t, uint32_t src, std::span<const uint8_t> frame, int64_t t_recv,
                   uint32_t events) noexcept {
    if (!t.sources.empty() && t.sources[src] == 0) return;
    BatchHeader h;
    h.source_node_id = src;
    h.source_node = slots_[src]->name;
    h.broker_epoch = epoch_;
    h.link_sequence = t.next_link_sequence++;
    h.broker_time_ns = t_recv;
    h.complete = true;
    if (!codec_.reroute_batch(frame, h, scratch_)) {
      t.dropped_batches.add();
      t.dropped_events.add(events);
      return;
    }
    const auto pr = t.ring.push(scratch_, events);
    t.dropped_batches.add(pr.dropped_frames);
    t.dropped_events.add(pr.dropped_events);
    any_pending_ = true;
  }

  // --- Startup grace: after a (re)start, nothing is dropped only because its target or a
  // recorder has not registered yet; bounded by the rings, counted when it ends.

  [[nodiscard]] bool holding(const NodeSlot& t) const noexcept {
    return in_grace_ && t.registrations.get() == 0;  // never registered with this broker yet
  }

  // A copy of an accepted batch, kept for recorders that register during the grace period:
  // [source id (4 bytes) | broker receive time (8 bytes) | the batch as it came].
  void hold_for_taps(uint32_t src, std::span<const uint8_t> frame, int64_t t_recv) noexcept {
    held_scratch_.resize(12 + frame.size());
    std::memcpy(held_scratch_.data(), &src, 4);
    std::memcpy(held_scratch_.data() + 4, &t_recv, 8);
    std::memcpy(held_scratch_.data() + 12, frame.data(), frame.size());
    const auto pr = held_for_taps_.push(held_scratch_, static_cast<uint32_t>(in_events_.size()));
    held_for_taps_dropped_ += pr.dropped_events;
  }

  // A recorder that registers during the grace period gets what was accepted before it came.
  void replay_held(TapSlot& t) noexcept {
    uint64_t events = 0;
    held_for_taps_.for_each([&](std::string_view held, uint32_t n) {
      uint32_t src = 0;
      int64_t t_recv = 0;
      std::memcpy(&src, held.data(), 4);
      std::memcpy(&t_recv, held.data() + 4, 8);
      const auto* bytes = reinterpret_cast<const uint8_t*>(held.data() + 12);
      copy_to_tap(t, src, {bytes, held.size() - 12}, t_recv, n);
      events += n;
    });
    if (events > 0) {
      spdlog::info("tap '{}': {} events accepted before it registered were held for it "
                   "(startup grace)", t.name, events);
    }
  }

  void end_grace() noexcept {
    in_grace_ = false;
    uint64_t dropped = 0;
    for (auto& sp : slots_) {
      if (sp->registered) continue;
      const auto d = sp->ring.clear();
      sp->drop(d.dropped_frames, d.dropped_events);
      dropped += d.dropped_events;
    }
    held_for_taps_.clear();
    spdlog::info("startup grace over: {} events held for nodes that did not come were dropped "
                 "(counted); {} events held for recorders did not fit the ring",
                 dropped, held_for_taps_dropped_);
  }

  // `delay: auto`: a target's latency reports drive the connections that feed it.
  void on_latency_reports(NodeSlot& target, int64_t now) noexcept {
    for (const auto& rep : codec_.heartbeat().latency()) {
      if (rep.source_node_id() < slots_.size() &&
          rep.total_le_size() == static_cast<int>(kLatencyBoundsNs.size())) {
        std::lock_guard lock(target.links_mu);
        NodeSlot::LinkTotals* l = nullptr;
        for (auto& x : target.links) {
          if (x.source == rep.source_node_id()) l = &x;
        }
        if (l == nullptr) l = &target.links.emplace_back(NodeSlot::LinkTotals{rep.source_node_id(), {}, 0, 0});
        l->le.assign(rep.total_le().begin(), rep.total_le().end());
        l->count = rep.total_count();
        l->sum_ns = rep.total_sum_ns();
      }
      if (rep.count() == 0) continue;
      for (size_t c = 0; c < auto_.size(); ++c) {
        if (!auto_[c] || conn_source_[c] != rep.source_node_id()) continue;
        bool feeds = false;
        for (uint32_t t : conn_targets_[c]) feeds = feeds || t == target.id;
        if (!feeds) continue;
        const int64_t before = auto_[c]->delay_ns();
        const AutoDelay::Change change = auto_[c]->observe(rep.p999_ns(), now);
        if (change == AutoDelay::Change::none) continue;
        conn_delay_ns_[c].store(auto_[c]->delay_ns(), std::memory_order_relaxed);
        (change == AutoDelay::Change::raised ? conn_raises_[c] : conn_lowers_[c]).add();
        spdlog::info("connection {} ({} -> {}): delay auto {} from {:.3f} ms to {:.3f} ms "
                     "(p99.9 latency {:.3f} ms over {} events)",
                     c, slots_[conn_source_[c]]->name, target.name,
                     change == AutoDelay::Change::raised ? "raised" : "lowered",
                     static_cast<double>(before) / 1e6,
                     static_cast<double>(auto_[c]->delay_ns()) / 1e6,
                     static_cast<double>(rep.p999_ns()) / 1e6, rep.count());
      }
    }
  }

  void reject(Reject why, NodeSlot* slot) noexcept {
    rejects_.add(why);
    if (slot != nullptr) slot->rejected_batches.add();
    uint64_t suppressed = 0;
    if (reject_log_[static_cast<size_t>(why)].allow(clock_.now_ns(), suppressed)) {
      spdlog::warn("rejected a message from {}: {} ({} more like it since the last line)",
                   slot != nullptr ? "'" + slot->name + "'" : std::string("an unregistered peer"),
                   to_string(why), suppressed);
    }
  }

  void reply_error(std::string_view rid, v1::Error::Code code, const std::string& msg,
                   uint32_t retry_after_ms = 0) noexcept {
    // Bounded: at most one error reply per peer message, and at most 200 per second overall.
    const int64_t now = clock_.now_ns();
    if (now - error_window_start_ns_ > 1'000'000'000) {
      error_window_start_ns_ = now;
      errors_in_window_ = 0;
    }
    if (++errors_in_window_ > 200) return;
    v1::Error e;
    e.set_code(code);
    e.set_message(msg);
    e.set_retry_after_ms(retry_after_ms);
    if (codec_.encode(e, scratch_)) send_direct(rid, scratch_);
  }

  void send_direct(std::string_view rid, const std::string& frame) noexcept {
    if (socket_->send_to(rid, frame) != IoStatus::ok) ++control_send_failures_;
  }

  // A refused Hello: counted, logged (rate-limited, naming the peer and the name it claimed)
  // and answered with the reason, so the refused process can say what went wrong.
  void refuse_hello(std::string_view rid, std::string_view peer, std::string_view name, Reject why,
                    v1::Error::Code code, const std::string& reason,
                    uint32_t retry_after_ms = 0) noexcept {
    rejects_.add(why);
    uint64_t suppressed = 0;
    if (hello_log_.allow(clock_.now_ns(), suppressed)) {
      spdlog::warn("refused a Hello as '{}' from {}: {} ({} more refused Hellos since the last line)",
                   name, peer, reason, suppressed);
    }
    reply_error(rid, code, reason, retry_after_ms);
  }

  // One holder per name, for nodes and taps alike: the live holder keeps it; the same process
  // (same epoch) on a new connection takes it back; another process only with `replace`, and
  // the holder is then told it was replaced. A holder is live until it says goodbye or stays
  // silent beyond heartbeat_timeout. Returns whether the claimant may take the name.
  template <class Slot>
  bool may_hold(Slot& s, const char* what, std::string_view rid, std::string_view peer,
                const v1::Hello& h, int64_t now) noexcept {
    if (!s.registered || s.routing_id == rid || s.epoch == h.epoch()) return true;
    // Messages are handled after a drain, so a holder's last message may be stamped after this.
    const auto secs = [](int64_t ns) {
      return fmt::format("{:.1f} s", static_cast<double>(std::max<int64_t>(ns, 0)) / 1e9);
    };
    if (!h.replace()) {
      refuse_hello(rid, peer, h.node_name(), Reject::name_in_use, v1::Error::NAME_IN_USE,
                   fmt::format("{} '{}' is held by a live connection from {} (registered {} ago, "
                               "last heard {} ago); stop that process, or start this one with "
                               "--replace (a holder silent for {} ms is released)",
                               what, h.node_name(), s.peer, secs(now - s.registered_ns),
                               secs(now - s.last_seen_ns), opts_.heartbeat_timeout.count()),
                   static_cast<uint32_t>(std::clamp<int64_t>(
                       (ms_to_ns(opts_.heartbeat_timeout) - (now - s.last_seen_ns)) / 1'000'000, 1,
                       opts_.heartbeat_timeout.count())));
      return false;
    }
    spdlog::warn("{} '{}' replaced: the connection from {} took it over from {} (--replace)", what,
                 h.node_name(), peer, s.peer);
    reply_error(s.routing_id, v1::Error::NAME_IN_USE,
                fmt::format("{} '{}' was taken over by a connection from {} started with --replace",
                            what, h.node_name(), peer));
    return true;
  }

  void on_hello(std::string_view rid, std::string_view user, std::string_view peer, int64_t t_recv) {
    const v1::Hello& h = codec_.hello();
    if (h.protocol_version() != kProtocolVersion) {
      refuse_hello(rid, peer, h.node_name(), Reject::version_mismatch, v1::Error::VERSION_MISMATCH,
                   "this broker speaks IoN protocol " + std::to_string(kProtocolVersion) +
                       "; node '" + h.node_name() + "' speaks " +
                       std::to_string(h.protocol_version()));
      return;
    }
    if (auth_ && !auth_->name_allowed(std::string(user))) {
      refuse_hello(rid, peer, h.node_name(), Reject::revoked, v1::Error::NOT_AUTHORIZED,
                   "the key of '" + std::string(user) + "' is no longer on the allowlist");
      return;
    }
    if (auth_ && h.node_name() != user) {
      // The identity is the key's name on the allowlist, never the name a payload claims.
      refuse_hello(rid, peer, h.node_name(), Reject::impersonation, v1::Error::NOT_AUTHORIZED,
                   "this connection's key is listed as '" + std::string(user) +
                       "'; it cannot register as '" + h.node_name() + "'");
      return;
    }
    if (h.tap()) {
      on_tap_hello(rid, peer, t_recv);
      return;
    }
    const int64_t id = table_.find_node(h.node_name());
    if (id < 0) {
      std::vector<std::string> known;
      for (size_t i = 0; i < table_.node_count(); ++i) {
        known.push_back(table_.node(static_cast<uint32_t>(i)).name);
      }
      refuse_hello(rid, peer, h.node_name(), Reject::unknown_node, v1::Error::NOT_IN_TOPOLOGY,
                   "node '" + h.node_name() + "' is not in this broker's topology" +
                       closest_names(h.node_name(), known));
      return;
    }
    const NodeSpec& spec = table_.node(static_cast<uint32_t>(id));
    NodeSlot& slot = *slots_[static_cast<size_t>(id)];
    // A name held by another live process is refused as such first, whatever else is wrong.
    if (!may_hold(slot, "node", rid, peer, h, t_recv)) return;
    if (h.output_channels() > spec.channels || h.input_ports() < spec.ports) {
      slot.rejected_batches.add();
      refuse_hello(rid, peer, h.node_name(), Reject::declared_too_large, v1::Error::REJECTED,
                   "node '" + spec.name + "' declares " + std::to_string(h.output_channels()) +
                       " output channels and " + std::to_string(h.input_ports()) +
                       " input ports; the topology needs at most " +
                       std::to_string(spec.channels) + " channels and at least " +
                       std::to_string(spec.ports) + " ports");
      return;
    }
    if (slot.registered && slot.routing_id != rid) {
      spdlog::info("node '{}' registered again from a new connection ({}); the old one is dropped",
                   slot.name, peer);
      by_routing_id_.erase(slot.routing_id);
    }
    if (slot.epoch != 0 && slot.epoch != h.epoch()) {
      spdlog::info("node '{}' restarted (epoch {:016x} -> {:016x})", slot.name, slot.epoch,
                   h.epoch());
    }
    if (!slot.registered || slot.routing_id != rid) slot.registered_ns = t_recv;
    slot.routing_id = std::string(rid);
    slot.peer = std::string(peer);
    by_routing_id_[slot.routing_id] = static_cast<uint32_t>(id);
    slot.registered = true;
    slot.connected.store(true, std::memory_order_relaxed);
    slot.registrations.add();
    slot.epoch = h.epoch();
    slot.declared_channels = h.output_channels();
    slot.declared_ports = h.input_ports();
    slot.last_seen_ns = t_recv;

    send_welcome(rid, static_cast<uint32_t>(id));
    spdlog::info("node '{}' ({}) registered from {}: {} channels, {} ports", slot.name,
                 h.software(), peer, h.output_channels(), h.input_ports());
  }

  void on_status(std::string_view rid) {
    v1::StatusReply r;
    fill_status(r, codec_.status_request().include_topology());
    r.set_request_id(codec_.status_request().request_id());
    if (status_codec_.encode(r, scratch_)) send_direct(rid, scratch_);
  }

 public:
  void fill_status(v1::StatusReply& r, bool include_topology) const {
    r.set_broker_epoch(epoch_);
    r.set_network_ns(clock_.now_ns());
    r.set_anchor_network_ns(anchor_network_ns_);
    r.set_anchor_utc_ns(anchor_utc_ns_);
    if (include_topology) r.set_topology_yaml(topology_yaml_);
    v1::SecurityStatus* sec = r.mutable_security();
    sec->set_curve(auth_ != nullptr);
    sec->set_insecure(insecure());
    if (auth_) {
      const AuthStats a = auth_->stats();
      sec->set_allowed_keys(a.allowed_keys);
      sec->set_accepted(a.accepted);
      auto& refused = *sec->mutable_refused();
      refused["unknown_key"] = a.unknown_key;
      refused["plaintext"] = a.plaintext_refused;
      refused["crypto_failed"] = a.crypto_failed;
      refused["other"] = a.other_failed;
      sec->set_disconnects(a.disconnects);
      sec->set_reloads(a.reloads);
      sec->set_reload_failures(a.reload_failures);
    }
    for (const auto& t : tap_stats()) {
      v1::TapStatus* x = r.add_taps();
      x->set_name(t.name);
      x->set_connected(t.connected);
      x->set_batches_out(t.batches_out);
      x->set_events_out(t.events_out);
      x->set_dropped_batches(t.dropped_batches);
      x->set_dropped_events(t.dropped_events);
    }
    for (const auto& n : node_stats()) {
      v1::NodeStatus* s = r.add_nodes();
      s->set_name(n.name);
      s->set_kind_name(n.kind);
      {
        const NodeSlot& slot = *slots_[static_cast<size_t>(table_.find_node(n.name))];
        std::lock_guard lock(slot.health_mu);
        if (slot.health_reported) *s->mutable_health() = slot.health;
      }
      s->set_connected(n.connected);
      s->set_batches_in(n.batches_in);
      s->set_events_in(n.events_in);
      s->set_batches_out(n.batches_out);
      s->set_events_out(n.events_out);
      s->set_dropped_batches(n.dropped_batches);
      s->set_dropped_events(n.dropped_events);
      s->set_lost_upstream_batches(n.lost_upstream_batches);
      s->set_reordered_batches(n.reordered_batches);
      s->set_source_restarts(n.source_restarts);
      s->set_registrations(n.registrations);
      s->set_rejected_batches(n.rejected_batches);
      s->set_ingress_latency_p50_ns(n.ingress_latency_p50_ns);
      s->set_ingress_latency_p99_ns(n.ingress_latency_p99_ns);
      s->set_ingress_latency_max_ns(n.ingress_latency_max_ns);
      for (const uint64_t c : n.ingress_latency_le) s->add_ingress_latency_le(c);
      s->set_ingress_latency_count(n.ingress_latency_count);
      s->set_ingress_latency_sum_ns(static_cast<int64_t>(n.ingress_latency_sum_ns));
      for (const float w : n.weights) s->add_weights(w);
      s->set_timeouts(n.timeouts);
    }
    for (const auto& sp : slots_) {
      std::lock_guard lock(sp->links_mu);
      for (const auto& l : sp->links) {
        v1::LinkLatencyStatus* x = r.add_links();
        x->set_from(slots_[l.source]->name);
        x->set_to(sp->name);
        for (const uint64_t c : l.le) x->add_le(c);
        x->set_count(l.count);
        x->set_sum_ns(l.sum_ns);
      }
    }
    for (const auto& c : connection_stats()) {
      v1::ConnectionStatus* cs = r.add_connections();
      cs->set_index(c.index);
      cs->set_from(c.from);
      cs->set_delay_ns(c.delay_ns);
      cs->set_auto_delay(c.auto_delay);
      cs->set_raises(c.raises);
      cs->set_lowers(c.lowers);
    }
    for (size_t i = 1; i < kRejectCount; ++i) {
      const auto why = static_cast<Reject>(i);
      if (rejects_.get(why) > 0) (*r.mutable_rejects())[std::string(to_string(why))] = rejects_.get(why);
    }
  }

 private:

  void on_batch(NodeSlot& slot, std::span<const uint8_t> frame, int64_t now) noexcept {
    BatchChecks checks;
    checks.channel_limit = slot.declared_channels;
    checks.check_time_window = true;
    checks.window_lo_ns = now - opts_.max_past.count();
    checks.window_hi_ns = now + opts_.max_future.count();
    const Reject r = codec_.take_batch(checks, in_header_, in_events_);
    if (r != Reject::none) {
      reject(r, &slot);
      return;
    }
    StreamState* st = nullptr;
    for (auto& s : slot.streams) {
      if (s.stream == in_events_.stream) st = &s;
    }
    if (st == nullptr) {
      if (slot.streams.size() >= opts_.max_streams_per_node) {
        reject(Reject::too_many_streams, &slot);
        return;
      }
      slot.streams.push_back({in_events_.stream, {}});
      st = &slot.streams.back();
    }
    switch (st->seq.observe(in_header_.epoch, in_header_.sequence)) {
      case SequenceTracker::Verdict::duplicate_or_reordered:
        // Promise 1: never duplicated, in order per stream. An old sequence is not forwarded.
        slot.reordered_batches.add();
        reject(Reject::duplicate_or_reordered, &slot);
        return;
      case SequenceTracker::Verdict::gap: slot.lost_upstream_batches.add(st->seq.last_gap()); break;
      case SequenceTracker::Verdict::restarted: slot.source_restarts.add(); break;
      default: break;
    }
    slot.batches_in.add();
    slot.events_in.add(in_events_.size());
    for (const int64_t t : in_events_.times_ns) slot.ingress_latency.record(now - t);
    if (in_events_.stream == 0) {
      if (live_.watched()) live_.offer(slot.id, in_events_);
    } else if (!slot.weights.empty() && in_events_.has_payload()) {
      const auto s = static_cast<uint32_t>(slot.weights.size());
      for (size_t i = 0; i < in_events_.size(); ++i) {
        const uint32_t c = in_events_.channels[i];
        if (c >= s && c - s < s) slot.weights[c - s].store(in_events_.payload[i], std::memory_order_relaxed);
      }
    }
    if (whole_[slot.id].empty()) {
      route(slot.id);
    } else {
      route_whole(slot.id, frame, now);
    }
    copy_to_taps(slot, frame, now);
  }

  // One outbound batch per (target, delay, late policy) for the batch being routed.
  RouteGroup& group_for(NodeSlot& t, const Route& r) {
    const int64_t delay_ns = conn_delay_ns_[r.connection].load(std::memory_order_relaxed);
    for (size_t g = 0; g < t.groups_used; ++g) {
      if (t.groups[g].delay_ns == delay_ns && t.groups[g].late_policy == r.late_policy) {
        return t.groups[g];
      }
    }
    if (t.groups_used == 0) touched_.push_back(r.target_node);
    if (t.groups_used == t.groups.size()) t.groups.emplace_back();
    RouteGroup& g = t.groups[t.groups_used++];
    g.delay_ns = delay_ns;
    g.late_policy = r.late_policy;
    g.events.clear();
    return g;
  }

  // A source routed whole, channel c to port c, to each of its targets: the frame goes on with
  // the source's bytes unchanged and a routing header per target; no per-event work.
  struct WholeRoute {
    uint32_t target;
    uint32_t connection;
    LatePolicy late_policy;
  };
  static std::vector<WholeRoute> whole_routes(const RoutingTable& table, uint32_t src) {
    const uint32_t channels = table.node(src).channels;
    std::vector<WholeRoute> first;
    for (uint32_t c = 0; c < channels; ++c) {
      const auto routes = table.routes(src, c);
      std::vector<WholeRoute> here;
      for (const Route& r : routes) {
        if (r.port != c) return {};
        for (const auto& w : here) {
          if (w.target == r.target_node) return {};  // twice to one target: not whole
        }
        here.push_back({r.target_node, r.connection, r.late_policy});
      }
      if (c == 0) {
        first = here;
      } else if (here.size() != first.size() ||
                 !std::equal(here.begin(), here.end(), first.begin(), [](const WholeRoute& a, const WholeRoute& b) {
                   return a.target == b.target && a.connection == b.connection && a.late_policy == b.late_policy;
                 })) {
        return {};
      }
    }
    return first;
  }

  void route_whole(uint32_t src, std::span<const uint8_t> frame, int64_t now) noexcept {
    const auto n = static_cast<uint32_t>(in_events_.size());
    for (const WholeRoute& w : whole_[src]) {
      NodeSlot& t = *slots_[w.target];
      if (!t.registered && !holding(t)) {
        t.drop(1, n);
        continue;
      }
      BatchHeader h;
      h.source_node_id = src;
      h.source_node = slots_[src]->name;
      h.broker_epoch = epoch_;
      h.link_sequence = t.next_link_sequence++;
      h.delay_ns = conn_delay_ns_[w.connection].load(std::memory_order_relaxed);
      h.late_policy = w.late_policy;
      h.broker_time_ns = now;
      h.complete = true;
      if (!codec_.reroute_batch(frame, h, scratch_)) {
        t.drop(1, n);
        rejects_.add(Reject::encode_failed);
        continue;
      }
      const auto pr = t.ring.push(scratch_, n);
      t.drop(pr.dropped_frames, pr.dropped_events);
      any_pending_ = true;
    }
  }

  void route(uint32_t src) noexcept {
    const EventBatch& ev = in_events_;
    const size_t n = ev.size();
    const bool with_payload = ev.has_payload();
    const uint32_t limit = opts_.limits.max_events_per_batch;
    touched_.clear();
    for (size_t i = 0; i < n; ++i) {
      for (const Route& r : table_.routes(src, ev.channels[i])) {
        NodeSlot& t = *slots_[r.target_node];
        RouteGroup& g = group_for(t, r);
        if (with_payload) {
          g.events.push(r.port, ev.times_ns[i], ev.payload[i]);
        } else {
          g.events.push(r.port, ev.times_ns[i]);
        }
        if (g.events.size() >= limit) {  // fan-out grew it past the limit: send a piece now
          t.split = true;
          enqueue(src, t, g, false);
        }
      }
    }
    for (const uint32_t tid : touched_) {
      NodeSlot& t = *slots_[tid];
      const bool complete = !t.split && t.groups_used == 1 && table_.complete(src, tid);
      for (size_t g = 0; g < t.groups_used; ++g) {
        if (!t.groups[g].events.empty()) enqueue(src, t, t.groups[g], complete);
      }
      t.groups_used = 0;
      t.split = false;
    }
  }

  void enqueue(uint32_t src, NodeSlot& t, RouteGroup& g, bool complete) noexcept {
    const auto n = static_cast<uint32_t>(g.events.size());
    if (!t.registered && !holding(t)) {  // nobody to deliver to: counted, not queued
      t.drop(1, n);
      g.events.clear();
      return;
    }
    g.events.stream = in_events_.stream;
    g.events.kind = in_events_.kind;
    BatchHeader h;
    h.epoch = in_header_.epoch;
    h.sequence = in_header_.sequence;
    h.first_index = in_header_.first_index;
    h.source_node_id = src;
    h.source_node = slots_[src]->name;
    h.broker_epoch = epoch_;
    h.link_sequence = t.next_link_sequence++;
    h.delay_ns = g.delay_ns;
    h.late_policy = g.late_policy;
    h.broker_time_ns = clock_.now_ns();
    h.complete = complete;
    if (!codec_.encode_batch(h, g.events, scratch_)) {
      t.drop(1, n);
      rejects_.add(Reject::encode_failed);
    } else {
      const auto pr = t.ring.push(scratch_, n);
      t.drop(pr.dropped_frames, pr.dropped_events);
      any_pending_ = true;
    }
    g.events.clear();
  }

  void flush() noexcept {
    any_pending_ = false;
    for (auto& sp : slots_) {
      NodeSlot& t = *sp;
      if (!t.registered) continue;
      while (!t.ring.empty()) {
        const IoStatus s = socket_->send_to(t.routing_id, t.ring.front());
        if (s != IoStatus::ok) break;  // would_block: stalled peer; unreachable: gone for now
        t.batches_out.add();
        t.events_out.add(t.ring.front_events());
        t.ring.pop();
      }
      any_pending_ = any_pending_ || !t.ring.empty();
    }
    for (auto& tp : taps_) {
      TapSlot& t = *tp;
      if (!t.registered) continue;
      while (!t.ring.empty()) {
        if (socket_->send_to(t.routing_id, t.ring.front()) != IoStatus::ok) break;
        t.batches_out.add();
        t.events_out.add(t.ring.front_events());
        t.ring.pop();
      }
      any_pending_ = any_pending_ || !t.ring.empty();
    }
  }

  void unregister(NodeSlot& slot) noexcept {
    by_routing_id_.erase(slot.routing_id);
    slot.registered = false;
    slot.connected.store(false, std::memory_order_relaxed);
    const auto dropped = slot.ring.clear();
    slot.drop(dropped.dropped_frames, dropped.dropped_events);
  }

  // After an allowlist reload: nodes and taps whose name is no longer listed are cut off, and
  // their Hello is refused from then on.
  void enforce_allowlist() noexcept {
    if (!auth_ || auth_->generation() == auth_generation_) return;
    auth_generation_ = auth_->generation();
    for (auto& sp : slots_) {
      if (!sp->registered || auth_->name_allowed(sp->name)) continue;
      spdlog::warn("node '{}' is no longer on the allowlist: cut off", sp->name);
      rejects_.add(Reject::revoked);
      reply_error(sp->routing_id, v1::Error::NOT_AUTHORIZED, "your key left the allowlist");
      unregister(*sp);
    }
    for (auto& tp : taps_) {
      if (!tp->registered || auth_->name_allowed(tp->name)) continue;
      spdlog::warn("tap '{}' is no longer on the allowlist: cut off", tp->name);
      rejects_.add(Reject::revoked);
      unregister_tap(*tp);
    }
  }

  void timers(int64_t now) noexcept {
    enforce_allowlist();
    if (in_grace_ && now >= grace_end_ns_) end_grace();
    const int64_t timeout = ms_to_ns(opts_.heartbeat_timeout);
    for (auto& sp : slots_) {
      NodeSlot& s = *sp;
      if (s.registered && now - s.last_seen_ns > timeout) {
        spdlog::warn("node '{}' silent for more than {} ms: unregistered, {} queued batches dropped",
                     s.name, opts_.heartbeat_timeout.count(), s.ring.size());
        s.timeouts.add();
        unregister(s);
      }
    }
    for (auto& tp : taps_) {
      if (tp->registered && now - tp->last_seen_ns > timeout) {
        spdlog::warn("tap '{}' silent for more than {} ms: unregistered", tp->name,
                     opts_.heartbeat_timeout.count());
        unregister_tap(*tp);
      }
    }
    if (opts_.stats_interval.count() > 0 && now >= next_stats_ns_) {
      next_stats_ns_ = now + ms_to_ns(opts_.stats_interval);
      for (const auto& n : node_stats()) {
        if (n.registrations == 0) continue;
        spdlog::info("{}: {} in={} out={} dropped={} lost_upstream_batches={} rejected={}", n.name,
                     n.connected ? "up" : "down", n.events_in, n.events_out, n.dropped_events,
                     n.lost_upstream_batches, n.rejected_batches);
      }
    }
  }

  void say_goodbye() noexcept {
    v1::Goodbye g;
    g.set_reason("broker shutting down");
    if (!codec_.encode(g, scratch_)) return;
    for (auto& s : slots_) {
      if (s->registered) send_direct(s->routing_id, scratch_);
    }
    for (auto& t : taps_) {
      if (t->registered) send_direct(t->routing_id, scratch_);
    }
  }

  zmq::context_t ctx_{1};
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<ZapAuthenticator> auth_;  // CURVE only; destroyed before the socket and context
  uint64_t auth_generation_ = 0;
  TokenBucket unregistered_control_;
  std::unordered_map<std::string, TokenBucket, StringHash, std::equal_to<>> control_by_user_;
  Wakeup wakeup_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<NodeSlot>> slots_;
  std::vector<std::unique_ptr<TapSlot>> taps_;  // max_taps, made at start (never reallocated)
  std::vector<std::vector<WholeRoute>> whole_;  // per source node: its whole routes, if it has only those
  mutable std::mutex taps_mu_;                  // tap names, for readers on other threads
  std::string topology_yaml_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> by_routing_id_;
  static constexpr int kDrainMax = 1024;
  std::vector<Pending> pending_ = std::vector<Pending>(kDrainMax);
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
  bool in_grace_ = false;   // startup grace (broker loop only)
  int64_t grace_end_ns_ = 0;
  FrameRing held_for_taps_{1, 0};  // sized at start from tap_ring_frames, tap_ring_bytes
  std::string held_scratch_;
  uint64_t held_for_taps_dropped_ = 0;
  LogLimiter hello_log_;
};

Broker::Broker(BrokerOptions options, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}
Broker::~Broker() = default;
std::string Broker::bind() { return impl_->bind(); }
void Broker::run() { impl_->run(); }
void Broker::stop() noexcept { impl_->stop(); }
uint64_t Broker::epoch() const noexcept { return impl_->epoch_; }
std::string Broker::endpoint() const { return impl_->endpoint_; }
std::vector<BrokerNodeStats> Broker::node_stats() const { return impl_->node_stats(); }
std::vector<ConnectionStats> Broker::connection_stats() const {
  return impl_->connection_stats();
}
std::vector<TapStats> Broker::tap_stats() const { return impl_->tap_stats(); }
const RejectCounters& Broker::rejects() const noexcept { return impl_->rejects_; }
AuthStats Broker::auth_stats() const noexcept { return impl_->auth_stats(); }
void Broker::reload_allowlist() noexcept { impl_->reload_allowlist(); }
void Broker::status(v1::StatusReply& out, bool include_topology) const {
  impl_->fill_status(out, include_topology);
}
LiveFeed& Broker::live() noexcept { return impl_->live_; }
int64_t Broker::network_now_ns() const noexcept { return impl_->clock_.now_ns(); }

LiveFeed::LiveFeed(size_t nodes, size_t cap_per_node) : buf_(nodes), cap_(cap_per_node) {
  for (auto& b : buf_) b.reserve(cap_);
}

void LiveFeed::watch(bool on) noexcept { watchers_.fetch_add(on ? 1 : -1, std::memory_order_relaxed); }

void LiveFeed::offer(uint32_t node, const EventBatch& ev) noexcept {
  const size_t n = ev.size();
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || node >= buf_.size()) {  // a reader is swapping: skip, never wait
    thinned_.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  auto& b = buf_[node];
  const size_t room = cap_ - std::min(cap_, b.size());
  // Evenly spaced over the batch when it does not fit, so the raster stays representative.
  const size_t stride = room == 0 ? 0 : (n + room - 1) / room;
  size_t kept = 0;
  for (size_t i = 0; stride != 0 && i < n; i += stride, ++kept) b.push_back({ev.times_ns[i], ev.channels[i]});
  thinned_.fetch_add(n - kept, std::memory_order_relaxed);
}

void LiveFeed::take(std::vector<std::vector<LiveEvent>>& out) {
  out.resize(buf_.size());
  for (auto& o : out) o.clear();
  std::lock_guard lock(mu_);
  buf_.swap(out);
  for (auto& b : buf_) b.reserve(cap_);
}
const RoutingTable& Broker::routing() const noexcept { return impl_->table_; }

}  // namespace ion
