#include "ion/node/node.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "ion/core/clock_sync.h"
#include "ion/core/counter.h"
#include "ion/core/frame_ring.h"
#include "ion/core/histogram.h"
#include "ion/core/log.h"
#include "ion/core/sequence.h"
#include "ion/core/transport.h"
#include "ion/node/playout.h"
#include "ion/v1/ion.pb.h"

namespace ion {

namespace {

int64_t ns(std::chrono::nanoseconds d) noexcept { return d.count(); }

// Receiver-side state of one source stream seen at this node.
struct SourceStream {
  SequenceTracker seq;
  bool index_known = false;
  uint64_t next_index = 0;
  uint64_t counted_to = 0;  // events of this epoch already in index_seen_
};

enum class State : uint8_t { waiting, hello_pending, registered };

}  // namespace

const char* to_string(RefusalKind kind) noexcept {
  switch (kind) {
    case RefusalKind::none: return "none";
    case RefusalKind::not_in_topology: return "not_in_topology";
    case RefusalKind::declared_sizes: return "declared_sizes";
    case RefusalKind::not_authorized: return "not_authorized";
    case RefusalKind::version: return "version";
    case RefusalKind::too_many_nodes: return "too_many_nodes";
    case RefusalKind::encryption_mismatch: return "encryption_mismatch";
    case RefusalKind::key_refused: return "key_refused";
    case RefusalKind::handshake_failed: return "handshake_failed";
    case RefusalKind::name_in_use: return "name_in_use";
    case RefusalKind::other: return "other";
  }
  return "other";
}

NodeOptions NodeOptions::from_config(const ConfigNode& root) {
  const ConfigNode n = root.child("node");
  n.only_keys({"name", "broker", "heartbeat_interval", "broker_timeout", "reconnect_min",
               "reconnect_max", "send_queue_frames", "send_queue_bytes", "probe_burst",
               "resync_interval", "max_events_per_batch", "max_message_bytes", "playout_capacity",
               "playout_spin", "playout_precision", "batch_budget", "batch_max_events",
               "secret_key", "broker_key", "insecure", "on_refusal", "replace"});
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  const auto ms = [](std::chrono::nanoseconds d) {
    return std::chrono::duration_cast<milliseconds>(d);
  };
  NodeOptions o;
  o.name = n.string("name");
  if (o.name.empty() || o.name.size() > 64) n.fail("name", "a node name of 1 to 64 characters");
  o.broker = n.string("broker", o.broker);
  if (const std::string why = endpoint_problem(o.broker); !why.empty()) n.fail("broker", why);
  const std::string on_refusal = n.string("on_refusal", "exit");
  if (on_refusal != "exit" && on_refusal != "retry") n.fail("on_refusal", "exit or retry");
  o.exit_on_refusal = on_refusal == "exit";
  o.replace = n.boolean("replace", false);
  if (n.has("secret_key") != n.has("broker_key")) {
    n.fail(n.has("secret_key") ? "broker_key" : "secret_key",
           "both secret_key and broker_key (CURVE needs this node's key and the broker's)");
  }
  if (n.has("secret_key")) {
    try {
      const std::string bk = n.string("broker_key");
      o.curve = load_client_keys(n.resolve_path(n.string("secret_key")),
                                 valid_z85_key(bk) ? bk : n.resolve_path(bk));
      if (o.curve->name != o.name) {
        spdlog::warn("node '{}': its key file is named '{}'; the broker will know it by the name "
                     "its allowlist gives the key",
                     o.name, o.curve->name);
      }
    } catch (const SecurityError& e) {
      throw ConfigError(n.where("secret_key") + ": " + e.what());
    }
  }
  o.insecure = n.boolean("insecure", false);
  o.heartbeat_interval =
      ms(n.duration("heartbeat_interval", o.heartbeat_interval, milliseconds(10), seconds(60)));
  o.broker_timeout =
      ms(n.duration("broker_timeout", o.broker_timeout, milliseconds(50), seconds(600)));
  o.reconnect_min = ms(n.duration("reconnect_min", o.reconnect_min, milliseconds(1), seconds(60)));
  o.reconnect_max =
      ms(n.duration("reconnect_max", o.reconnect_max, o.reconnect_min, seconds(600)));
  o.send_queue_frames =
      static_cast<size_t>(n.integer("send_queue_frames", 4096, 1, 1 << 24));
  o.send_queue_bytes =
      static_cast<size_t>(n.integer("send_queue_bytes", 16 << 20, 1024, int64_t{1} << 34));
  o.probe_burst = static_cast<uint32_t>(n.integer("probe_burst", o.probe_burst, 1, 256));
  o.resync_interval =
      ms(n.duration("resync_interval", o.resync_interval, milliseconds(100), seconds(3600)));
  o.limits.max_events_per_batch = static_cast<uint32_t>(
      n.integer("max_events_per_batch", o.limits.max_events_per_batch, 1, 1 << 22));
  o.limits.max_message_bytes =
      static_cast<size_t>(n.integer("max_message_bytes", 1 << 20, 256, 64 << 20));
  o.playout_capacity =
      static_cast<size_t>(n.integer("playout_capacity", 1 << 20, 1, int64_t{1} << 30));
  o.playout_spin = std::chrono::duration_cast<std::chrono::microseconds>(
      n.duration("playout_spin", o.playout_spin, std::chrono::microseconds(0), milliseconds(10)));
  o.playout_precision = std::chrono::duration_cast<std::chrono::microseconds>(
      n.duration("playout_precision", o.playout_precision, std::chrono::microseconds(10), std::chrono::seconds(10)));
  o.batch_budget = std::chrono::duration_cast<std::chrono::microseconds>(
      n.duration("batch_budget", o.batch_budget, std::chrono::microseconds(0), milliseconds(100)));
  o.batch_max_events = static_cast<uint32_t>(n.integer("batch_max_events", o.batch_max_events, 1, 1 << 22));
  return o;
}

class Node::Impl final : public Emitter {
 public:
  Impl(NodeOptions options, std::unique_ptr<Driver> driver, const Clock& clock)
      : opts_(std::move(options)),
        driver_(std::move(driver)),
        info_(driver_->describe()),
        clock_(clock),
        codec_(opts_.limits),
        emit_codec_(opts_.limits),
        rng_(std::random_device{}()),
        queue_(opts_.send_queue_frames, opts_.send_queue_bytes),
        playout_(opts_.playout_capacity,
                 [this](const BatchHeader& h, const EventBatch& e, const Delivery& d) {
                   received_events_.add(e.size());
                   received_batches_.add();
                   driver_->deliver(h, e, d);
                 }) {
    epoch_ = random_epoch();
    if (const std::string why = endpoint_problem(opts_.broker); !why.empty()) {
      throw TransportError("node '" + opts_.name + "': broker endpoint: " + why);
    }
    if (opts_.curve) {
      require_curve("ion-node");
    } else if (!local_only_endpoint(opts_.broker) && !opts_.insecure) {
      throw SecurityError("node '" + opts_.name + "': refusing to connect to '" + opts_.broker +
                          "' without encryption: give the node its key and the broker's "
                          "(node.secret_key, node.broker_key; see docs/security.md), or set "
                          "node.insecure (never across the internet)");
    } else if (!local_only_endpoint(opts_.broker)) {
      spdlog::warn("node '{}': INSECURE: plaintext, unauthenticated link to {}", opts_.name,
                   opts_.broker);
    }
    heartbeat_interval_ns_ = ns(opts_.heartbeat_interval);
    broker_timeout_ns_ = ns(opts_.broker_timeout);
  }

  // One per stream the driver emits on (emit_mu_ guards them).
  struct OutStream {
    uint32_t stream = 0;
    uint64_t next_sequence = 0;
    uint64_t next_index = 0;
    EventBatch pending;              // coalesced emissions not yet encoded
    int64_t pending_since_ns = 0;
    int64_t last_send_ns = INT64_MIN / 2;
  };

  // --- Emitter (driver threads) ---
  EmitStatus emit(const EventBatch& batch) noexcept override {
    const size_t n = batch.size();
    bool valid = n > 0 && batch.times_ns.size() == n &&
                 (batch.payload.empty() || batch.payload.size() == n) &&
                 n <= opts_.limits.max_events_per_batch;
    for (size_t i = 0; valid && i < n; ++i) valid = batch.channels[i] < info_.output_channels;
    if (!valid) {
      dropped_events_.add(n);
      dropped_batches_.add();
      uint64_t suppressed = 0;
      std::lock_guard lock(emit_mu_);
      if (emit_log_.allow(clock_.now_ns(), suppressed)) {
        spdlog::error("driver emitted an invalid batch of {} events (columns, channel ids or size)"
                      "; dropped ({} more since the last line)", n, suppressed);
      }
      return EmitStatus::rejected;
    }
    uint64_t dropped_frames = 0;
    {
      std::lock_guard lock(emit_mu_);
      OutStream* s = nullptr;
      for (auto& o : out_streams_) {
        if (o.stream == batch.stream) s = &o;
      }
      if (s == nullptr) s = &out_streams_.emplace_back();
      s->stream = batch.stream;
      const int64_t now = clock_.now_ns();
      const int64_t budget = ns(opts_.batch_budget);
      const uint32_t max_events = std::min(opts_.batch_max_events, opts_.limits.max_events_per_batch);
      EventBatch& p = s->pending;
      if (!p.empty() && (p.kind != batch.kind || p.has_payload() != batch.has_payload())) {
        dropped_frames += send_pending_locked(*s);
      }
      if (budget == 0 || (p.empty() && now - s->last_send_ns >= budget) || n >= max_events) {
        if (!p.empty()) dropped_frames += send_pending_locked(*s);
        // The stream was idle (or the batch is big): it goes at once, adding no latency.
        if (!encode_and_queue_locked(*s, batch, dropped_frames)) return EmitStatus::rejected;
        s->last_send_ns = now;
      } else {
        if (p.size() + n > max_events) dropped_frames += send_pending_locked(*s);
        if (p.empty()) {
          p.stream = batch.stream;
          p.kind = batch.kind;
          s->pending_since_ns = now;
        }
        p.channels.insert(p.channels.end(), batch.channels.begin(), batch.channels.end());
        p.times_ns.insert(p.times_ns.end(), batch.times_ns.begin(), batch.times_ns.end());
        p.payload.insert(p.payload.end(), batch.payload.begin(), batch.payload.end());
        if (p.size() >= max_events) {
          dropped_frames += send_pending_locked(*s);
        } else {
          next_batch_flush_ns_.store(std::min(next_batch_flush_ns_.load(), s->pending_since_ns + budget));
        }
      }
    }
    emitted_events_.add(n);
    wakeup_.notify();
    return dropped_frames == 0 ? EmitStatus::queued : EmitStatus::queued_dropping_oldest;
  }

  // Encodes one batch of a stream into the send queue (the caller holds emit_mu_).
  bool encode_and_queue_locked(OutStream& s, const EventBatch& batch, uint64_t& dropped_frames) noexcept {
    const size_t n = batch.size();
    BatchHeader h;
    h.epoch = epoch_;
    h.sequence = s.next_sequence++;
    h.first_index = s.next_index;
    s.next_index += n;
    if (!emit_codec_.encode_batch(h, batch, emit_scratch_)) {
      dropped_events_.add(n);
      dropped_batches_.add();
      return false;
    }
    const FrameRing::PushResult pr = queue_.push(emit_scratch_, static_cast<uint32_t>(n));
    emitted_batches_.add();
    dropped_batches_.add(pr.dropped_frames);
    dropped_events_.add(pr.dropped_events);
    dropped_frames += pr.dropped_frames;
    return true;
  }

  uint64_t send_pending_locked(OutStream& s) noexcept {
    uint64_t dropped = 0;
    if (s.pending.empty()) return 0;
    (void)encode_and_queue_locked(s, s.pending, dropped);
    s.pending.clear();
    s.last_send_ns = clock_.now_ns();
    return dropped;
  }

  // Sends coalesced batches whose budget is up (all of them when `all`), from the node thread.
  void flush_batches(int64_t now, bool all) noexcept {
    if (!all && now < next_batch_flush_ns_.load()) return;
    std::lock_guard lock(emit_mu_);
    const int64_t budget = ns(opts_.batch_budget);
    int64_t next = INT64_MAX;
    for (auto& s : out_streams_) {
      if (s.pending.empty()) continue;
      if (all || now >= s.pending_since_ns + budget) {
        (void)send_pending_locked(s);
      } else {
        next = std::min(next, s.pending_since_ns + budget);
      }
    }
    next_batch_flush_ns_.store(next);
  }

  [[nodiscard]] int64_t local_now_ns() const noexcept override { return clock_.now_ns(); }
  [[nodiscard]] int64_t to_network_ns(int64_t local_ns) const noexcept override {
    return clock_sync_.to_network(local_ns);
  }

  // --- Node loop ---
  void run() {
    spdlog::info("node '{}' ({}) starting: broker {}, {} channels, {} ports, epoch {:016x}",
                 opts_.name, info_.kind, opts_.broker, info_.output_channels, info_.input_ports,
                 epoch_);
    reconnect_at_ns_ = clock_.now_ns();
    std::thread playout_thread([this] { playout_loop(); });
    struct JoinOnExit {
      Impl* self;
      std::thread& t;
      ~JoinOnExit() {
        {
          std::lock_guard lock(self->playout_mu_);
          self->playout_stop_ = true;
        }
        self->playout_cv_.notify_all();
        t.join();
        const size_t left = self->playout_.abandon();  // counted, never silently gone
        if (left > 0) {
          spdlog::info("node '{}': {} events were still waiting for their deadline at stop",
                       self->opts_.name, left);
        }
      }
    } join_on_exit{this, playout_thread};
    while (!stop_.load(std::memory_order_acquire)) {
      const int64_t now = clock_.now_ns();
      check_stall(now);
      if (!socket_ && now >= reconnect_at_ns_) open_socket(now);
      if (socket_) {
        const int ready = poll_readable(*socket_, wakeup_.fd(), poll_timeout_ms(now));
        if ((ready & 2) != 0) wakeup_.drain();
        receive_all();
        if (state_ == State::hello_pending) {
          check_handshakes();
        } else if (monitor_) {
          bool succeeded = false;
          (void)monitor_->poll(succeeded);  // registered: only whether the connection dropped
        }
        if (state_ == State::registered && monitor_ && monitor_->take_disconnects() > 0) {
          // The connection dropped (a broker killed or restarted, a cut link). ZeroMQ reconnects
          // by itself, possibly to a new broker that does not know this node: a backlog sent
          // before registering there would be refused and lost. Register again first; what the
          // driver emits meanwhile waits in the send queue.
          spdlog::warn("node '{}': the connection to the broker dropped; registering again before "
                       "sending", opts_.name);
          state_ = State::hello_pending;
          registered_.store(false, std::memory_order_relaxed);
          connect_started_ns_ = clock_.now_ns();
          next_hello_ns_ = connect_started_ns_;
        }
        if (start_driver_) {  // first network time: the driver may now stamp events
          start_driver_ = false;
          driver_started_ = true;
          driver_->start(*this);  // may throw: a start-up failure surfaces from run()
        }
        if (socket_) on_timers(clock_.now_ns());
        flush_batches(clock_.now_ns(), false);
        if (socket_ && state_ == State::registered) send_queued();
      } else {
        wait_fd_ms(static_cast<int>(std::clamp<int64_t>((reconnect_at_ns_ - now) / 1'000'000, 1, 50)));
      }
    }
    // The driver stops first: what it emits after the last flush would count as emitted and
    // never leave, a loss no receiver could see.
    driver_->stop();
    flush_batches(clock_.now_ns(), true);  // nothing the driver emitted stays behind
    if (socket_ && state_ == State::registered) {
      send_queued();
      v1::Goodbye g;
      g.set_reason("node stopping");
      if (codec_.encode(g, scratch_)) (void)socket_->send(scratch_);
    }
    {
      // What could not be handed to the socket (the broker away or slow) is dropped: counted.
      std::lock_guard lock(emit_mu_);
      const FrameRing::PushResult left = queue_.clear();
      dropped_batches_.add(left.dropped_frames);
      dropped_events_.add(left.dropped_events);
      if (left.dropped_events > 0) {
        spdlog::warn("node '{}': {} events emitted but not sent when it stopped (counted as dropped)",
                     opts_.name, left.dropped_events);
      }
    }
    close_socket();
  }

  void stop() noexcept {
    stop_.store(true, std::memory_order_release);
    wakeup_.notify();
  }

  NodeStats stats() const {
    NodeStats s;
    s.registered = registered_.load(std::memory_order_relaxed);
    s.registrations = registrations_.get();
    s.broker_restarts = broker_restarts_.get();
    s.emitted_events = emitted_events_.get();
    s.emitted_batches = emitted_batches_.get();
    s.sent_batches = sent_batches_.get();
    s.dropped_events = dropped_events_.get();
    s.dropped_batches = dropped_batches_.get();
    s.received_events = received_events_.get();
    s.received_batches = received_batches_.get();
    s.lost_events = lost_events_.get();
    s.lost_batches = lost_batches_.get();
    s.source_index_seen = index_seen_.get();
    s.duplicate_or_reordered = duplicate_or_reordered_.get();
    s.source_restarts = source_restarts_.get();
    const PlayoutStats p = playout_.stats();
    s.late_events = p.late_events;
    s.late_dropped = p.late_dropped;
    s.on_time_events = p.on_time_events;
    s.playout_overflow = p.overflow_dropped;
    s.playout_abandoned = p.abandoned;
    s.playout_overrun = p.overrun_events;
    s.delivery_error_p50_ns = p.delivery_error_p50_ns;
    s.delivery_error_p99_ns = p.delivery_error_p99_ns;
    s.delivery_error_max_ns = p.delivery_error_max_ns;
    s.lateness_p99_ns = p.lateness_p99_ns;
    s.lateness_max_ns = p.lateness_max_ns;
    s.link_latency_p50_ns = link_latency_.quantile_ns(0.5);
    s.link_latency_p99_ns = link_latency_.quantile_ns(0.99);
    s.link_latency_max_ns = link_latency_.max_ns();
    s.latency_p50_ns = latency_.quantile_ns(0.5);
    s.latency_p99_ns = latency_.quantile_ns(0.99);
    s.latency_max_ns = latency_.max_ns();
    s.rejected_frames = rejected_frames_.get();
    const ClockEstimate e = clock_sync_.estimate(clock_.now_ns());
    s.clock_synced = e.valid;
    s.clock_offset_ns = e.offset_ns;
    s.clock_uncertainty_ns = e.uncertainty_ns;
    s.clock_drift_ppm = e.drift_ppm;
    return s;
  }

  ClockEstimate clock_estimate(int64_t local_ns) const { return clock_sync_.estimate(local_ns); }

  bool wait_registered(uint64_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(reg_mu_);
    return reg_cv_.wait_for(lock, timeout, [&] {
      return registrations_.get() >= count && clock_sync_.synced();
    });
  }

  Registration wait_registration(uint64_t count, std::chrono::milliseconds timeout,
                                 Refusal* refusal) const {
    std::unique_lock lock(reg_mu_);
    const bool done = reg_cv_.wait_for(lock, timeout, [&] {
      return (registrations_.get() >= count && clock_sync_.synced()) ||
             refusal_.kind != RefusalKind::none;
    });
    if (!done) return Registration::timed_out;
    if (registrations_.get() >= count && clock_sync_.synced()) return Registration::registered;
    if (refusal != nullptr) *refusal = refusal_;
    return Registration::refused;
  }

  Refusal last_refusal() const {
    std::lock_guard lock(reg_mu_);
    return refusal_;
  }

  int64_t next_deadline_local_ns() const noexcept {
    const int64_t d = playout_.next_deadline();
    if (d == INT64_MAX || !clock_sync_.synced()) return INT64_MAX;
    return clock_sync_.to_local(d);
  }

  // A refusal of this attempt: kept for wait_registration, logged once per change of reason.
  void refused(RefusalKind kind, std::string reason) noexcept {
    {
      std::lock_guard lock(reg_mu_);
      if (refusal_.kind == kind && refusal_.reason == reason) return;
      refusal_.kind = kind;
      refusal_.reason = std::move(reason);
      // When it stops the node, the caller says it (ion-node's last line, the C API's error).
      if (!opts_.exit_on_refusal) {
        spdlog::error("node '{}': refused: {} (retrying quietly)", opts_.name, refusal_.reason);
      }
    }
    reg_cv_.notify_all();
    if (opts_.exit_on_refusal) stop();
  }

  const NodeOptions opts_;
  std::unique_ptr<Driver> driver_;
  const DriverInfo info_;
  uint64_t epoch_ = 0;

 private:
  std::string said_no_answer_;  // the last no-answer diagnosis logged (node loop only)
  int64_t name_wait_until_ns_ = 0;  // NAME_IN_USE: until when a silent holder may be released
  int64_t last_loop_ns_ = 0;        // the node loop's previous turn: a longer gap is a stall
  std::atomic<int64_t> next_batch_flush_ns_{INT64_MAX};

  // Releases queued events at their deadlines: sleep until `playout_spin` before the next one,
  // then spin on the clock so the release lands just after the deadline, never before.
  void playout_loop() noexcept {
    const int64_t spin_ns = ns(opts_.playout_spin);
    std::unique_lock lock(playout_mu_);
    while (!playout_stop_) {
      const int64_t deadline = playout_.next_deadline();
      if (deadline == INT64_MAX || !clock_sync_.synced()) {
        playout_cv_.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      const int64_t local_deadline = clock_sync_.to_local(deadline);
      const int64_t wait_ns = local_deadline - clock_.now_ns() - spin_ns;
      if (wait_ns > 0) {  // an earlier deadline may arrive meanwhile: re-evaluate after waking
        playout_cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns));
        continue;
      }
      lock.unlock();
      while (clock_.now_ns() < local_deadline) {
      }
      playout_.release_due(clock_sync_.to_network(clock_.now_ns()),
                           [this] { return clock_sync_.to_network(clock_.now_ns()); },
                           ns(opts_.playout_precision));
      lock.lock();
    }
  }

  void wait_fd_ms(int ms) noexcept {
    zmq_pollitem_t item{nullptr, wakeup_.fd(), ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, ms) > 0) wakeup_.drain();
  }

  int poll_timeout_ms(int64_t now) const noexcept {
    int64_t next = now + 50'000'000;
    if (state_ == State::hello_pending) next = std::min(next, next_hello_ns_);
    if (state_ == State::registered) {
      next = std::min(next, next_heartbeat_ns_);
      if (probes_left_ > 0 && !probe_in_flight_) next = now;
      if (send_blocked_) next = std::min(next, now + 1'000'000);
    }
    next = std::min(next, next_batch_flush_ns_.load());
    return static_cast<int>(std::clamp<int64_t>((next - now + 999'999) / 1'000'000, 0, 50));
  }

  void open_socket(int64_t now) {
    SocketOptions so;
    so.max_message_bytes = static_cast<int64_t>(opts_.limits.max_message_bytes);
    so.heartbeat_interval_ms = static_cast<int>(opts_.heartbeat_interval.count());
    so.heartbeat_timeout_ms = static_cast<int>(opts_.broker_timeout.count());
    so.reconnect_interval_ms = static_cast<int>(opts_.reconnect_min.count());
    so.reconnect_interval_max_ms = static_cast<int>(opts_.reconnect_max.count());
    so.curve_client = opts_.curve;
    try {
      socket_ = std::make_unique<Socket>(ctx_, Socket::Type::dealer, so);
      monitor_ = std::make_unique<HandshakeMonitor>(ctx_, *socket_);
      socket_->connect(opts_.broker);
    } catch (const std::exception& e) {
      spdlog::error("node '{}': {}", opts_.name, e.what());
      monitor_.reset();
      socket_.reset();
      schedule_reconnect(now);
      return;
    }
    state_ = State::hello_pending;
    connect_started_ns_ = now;
    next_hello_ns_ = now;
  }

  void close_socket() noexcept {
    check_handshakes();  // what the handshake said before the socket goes
    monitor_.reset();
    if (socket_) socket_->close();
    socket_.reset();
    state_ = State::waiting;
    registered_.store(false, std::memory_order_relaxed);
    probe_in_flight_ = false;
    probes_left_ = 0;
  }

  void schedule_reconnect(int64_t now) noexcept {
    const int64_t base = ns(opts_.reconnect_min) << std::min<uint32_t>(backoff_attempt_, 20);
    const int64_t capped = std::min(base, ns(opts_.reconnect_max));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    reconnect_at_ns_ = now + static_cast<int64_t>(static_cast<double>(capped) * jitter(rng_));
    ++backoff_attempt_;
  }

  // No Welcome within broker_timeout: said once, in one line, with what to check; the retries
  // that follow are quiet (debug) until the node registers or the diagnosis changes.
  void no_answer(int64_t now) noexcept {
    check_handshakes();
    // Up now, not ever: during a broker outage the old connection is gone, and nothing answers.
    const bool connected = monitor_ && monitor_->connected_now();
    const std::string t = std::to_string(opts_.broker_timeout.count()) + " ms";
    std::string why;
    if (!connected) {
      why = "nothing answers at " + opts_.broker + " (no broker listening there, or the host is "
            "unreachable): is the broker running, and is node.broker its address?";
    } else if (opts_.curve) {
      why = "the broker at " + opts_.broker + " did not answer within " + t +
            ": is node.broker_key that broker's public key, and this node's key on its allowlist?";
    } else {
      why = "something at " + opts_.broker + " accepted the connection but did not answer the "
            "Hello within " + t + ": is it an IoN broker (ion-broker)?";
    }
    if (why != said_no_answer_) {
      spdlog::warn("node '{}': {} (retrying quietly)", opts_.name, why);
      said_no_answer_ = why;
    } else {
      spdlog::debug("node '{}': {} (retrying)", opts_.name, why);
    }
    close_socket();
    schedule_reconnect(now);
  }

  void lose_broker(int64_t now, const char* why) noexcept {
    spdlog::warn("node '{}': {}; reconnecting", opts_.name, why);
    close_socket();
    schedule_reconnect(now);
  }

  void send_hello(int64_t now) noexcept {
    v1::Hello h;
    h.set_node_name(opts_.name);
    h.set_kind(static_cast<v1::NodeKind>(info_.node_kind));
    h.set_protocol_version(kProtocolVersion);
    h.set_output_channels(info_.output_channels);
    h.set_input_ports(info_.input_ports);
    h.set_epoch(epoch_);
    h.set_replace(opts_.replace);
    h.set_software("ion-node " ION_VERSION " " + info_.kind);
    if (codec_.encode(h, scratch_)) (void)socket_->send(scratch_);  // retried until Welcome
    next_hello_ns_ = now + std::min<int64_t>(250'000'000, broker_timeout_ns_ / 4);
  }

  void on_timers(int64_t now) noexcept {
    if (state_ == State::hello_pending) {
      if (now - connect_started_ns_ > broker_timeout_ns_) {
        no_answer(now);
        return;
      }
      if (now >= next_hello_ns_) send_hello(now);
      return;
    }
    if (state_ != State::registered) return;
    if (now - last_heard_ns_ > broker_timeout_ns_) {
      lose_broker(now, "broker silent beyond the timeout");
      return;
    }
    if (now >= next_heartbeat_ns_) {
      v1::Heartbeat hb;
      hb.set_sent_ns(now);
      add_latency_reports(hb, now);
      add_health(*hb.mutable_health());
      if (codec_.encode(hb, scratch_)) (void)socket_->send(scratch_);
      next_heartbeat_ns_ = now + heartbeat_interval_ns_;
    }
    if (probe_in_flight_ && now - probe_sent_ns_ > 1'000'000'000) {  // lost probe: move on
      probe_in_flight_ = false;
      if (probes_left_ == 0) clock_sync_.end_burst();
    }
    if (probes_left_ == 0 && now >= next_burst_ns_) {
      probes_left_ = opts_.probe_burst;
      // The first bursts come 1 s apart so drift (and a tight bound) is known within seconds.
      next_burst_ns_ = now + (++bursts_since_welcome_ < 3 ? 1'000'000'000
                                                         : ns(opts_.resync_interval));
    }
    if (probes_left_ > 0 && !probe_in_flight_) {
      v1::TimeRequest r;
      r.set_probe_id(++probe_id_);
      probe_sent_ns_ = clock_.now_ns();
      r.set_t0_ns(probe_sent_ns_);
      if (codec_.encode(r, scratch_) && socket_->send(scratch_) == IoStatus::ok) {
        probe_in_flight_ = true;
        --probes_left_;
      }
    }
  }

  // What `delay: auto` connections follow: each source's latency over the last 10-20 s.
  static constexpr int64_t kLatencyWindowNs = 10'000'000'000;
  struct LatencyWindow {
    Histogram current;
    Histogram total;  // since start: the link's histogram the broker publishes
    uint64_t previous_count = 0;
    int64_t previous_p999_ns = 0;
    int64_t previous_max_ns = 0;
  };

  // What the node knows and the broker cannot: its clock mapping and its receive-side counts.
  void add_health(v1::NodeHealth& h) const noexcept {
    const NodeStats s = stats();
    h.set_clock_synced(s.clock_synced);
    h.set_clock_offset_ns(s.clock_offset_ns);
    h.set_clock_uncertainty_ns(s.clock_uncertainty_ns);
    h.set_clock_drift_ppb(static_cast<int64_t>(s.clock_drift_ppm * 1000.0));
    h.set_received_events(s.received_events);
    h.set_lost_events(s.lost_events);
    h.set_late_events(s.late_events);
    h.set_late_dropped(s.late_dropped);
    h.set_emitted_events(s.emitted_events);
    h.set_dropped_events(s.dropped_events);
    h.set_playout_overrun(s.playout_overrun);
    // The driver's trouble travels in every heartbeat, not only in the log at stop.
    if (!driver_started_) return;
    const std::map<std::string, int64_t> c = driver_->counters();
    uint64_t trouble = 0;
    for (const std::string& name : driver_->trouble_counters()) {
      const auto it = c.find(name);
      if (it == c.end()) continue;
      h.add_trouble_counters(name);
      trouble += static_cast<uint64_t>(std::max<int64_t>(it->second, 0));
    }
    h.set_device_trouble(trouble);
    h.mutable_driver_counters()->insert(c.begin(), c.end());
  }

  void add_latency_reports(v1::Heartbeat& hb, int64_t now) noexcept {
    const bool rotate = now >= next_window_ns_;
    if (rotate) next_window_ns_ = now + kLatencyWindowNs;
    for (auto& [source, w] : latency_windows_) {
      const uint64_t count = w.current.count() + w.previous_count;
      if (count > 0) {
        v1::LatencyReport* r = hb.add_latency();
        r->set_source_node_id(source);
        r->set_count(count);
        r->set_p999_ns(std::max(w.current.quantile_ns(0.999), w.previous_p999_ns));
        r->set_max_ns(std::max(w.current.max_ns(), w.previous_max_ns));
        for (const uint64_t c : w.total.counts_at_bounds()) r->add_total_le(c);
        r->set_total_count(w.total.count());
        r->set_total_sum_ns(static_cast<int64_t>(w.total.sum_ns()));
      }
      if (rotate) {
        w.previous_count = w.current.count();
        w.previous_p999_ns = w.current.quantile_ns(0.999);
        w.previous_max_ns = w.current.max_ns();
        w.current.clear();
      }
    }
  }

  // Stalled (SIGSTOP, a suspended machine) beyond the broker's timeout since the loop's last
  // turn: the broker has let this node go, and would refuse what it sends now. Register again
  // before sending. Checked at each turn and again just before sending: the stall may fall
  // between the two.
  void check_stall(int64_t now) noexcept {
    if (state_ == State::registered && last_loop_ns_ != 0 && now - last_loop_ns_ > broker_timeout_ns_) {
      spdlog::warn("node '{}': stalled for {} ms, beyond the broker's timeout; registering again "
                   "before sending what it kept",
                   opts_.name, (now - last_loop_ns_) / 1'000'000);
      state_ = State::hello_pending;
      registered_.store(false, std::memory_order_relaxed);
      connect_started_ns_ = now;
      send_hello(now);
    }
    last_loop_ns_ = now;
  }

  void send_queued() noexcept {
    check_stall(clock_.now_ns());
    if (state_ != State::registered) return;
    std::lock_guard lock(emit_mu_);
    send_blocked_ = false;
    while (!queue_.empty()) {
      const IoStatus s = socket_->send(queue_.front());
      if (s != IoStatus::ok) {
        send_blocked_ = true;  // high-water mark: keep it queued, try again shortly
        return;
      }
      sent_batches_.add();
      queue_.pop();
    }
  }

  void receive_all() noexcept {
    Frame f;
    for (int i = 0; socket_ && i < 4096; ++i) {
      if (socket_->recv(f) != IoStatus::ok) return;
      const int64_t t_recv = clock_.now_ns();
      handle(f, t_recv);
    }
  }

  void handle(const Frame& f, int64_t t_recv) noexcept {
    const Decoded d = codec_.decode(bytes_of(f));
    if (!d.ok()) {
      rejected_frames_.add();
      uint64_t suppressed = 0;
      if (reject_log_.allow(t_recv, suppressed)) {
        spdlog::warn("node '{}': rejected a frame from the broker: {}", opts_.name,
                     to_string(d.reject));
      }
      return;
    }
    last_heard_ns_ = t_recv;
    switch (d.body) {
      case Body::welcome: on_welcome(t_recv); break;
      case Body::heartbeat: break;
      case Body::time_reply: on_time_reply(t_recv); break;
      case Body::spike_batch: on_batch(t_recv); break;
      case Body::error: on_error(t_recv); break;
      case Body::goodbye:
        lose_broker(t_recv, ("broker said goodbye: " + codec_.goodbye().reason()).c_str());
        break;
      default: rejected_frames_.add(); break;
    }
  }

  void on_welcome(int64_t now) noexcept {
    if (state_ != State::hello_pending) return;  // a duplicate answer to a retried Hello
    const v1::Welcome& w = codec_.welcome();
    if (broker_epoch_ != 0 && w.broker_epoch() != broker_epoch_) {
      broker_restarts_.add();
      clock_sync_.reset();  // a new broker is a new network time axis
      spdlog::warn("node '{}': broker restarted (epoch {:016x} -> {:016x})", opts_.name,
                   broker_epoch_, w.broker_epoch());
    }
    broker_epoch_ = w.broker_epoch();
    node_id_ = w.node_id();
    if (w.heartbeat_interval_ms() > 0) heartbeat_interval_ns_ = w.heartbeat_interval_ms() * 1'000'000LL;
    if (w.heartbeat_timeout_ms() > 0) broker_timeout_ns_ = w.heartbeat_timeout_ms() * 1'000'000LL;
    state_ = State::registered;
    registered_.store(true, std::memory_order_relaxed);
    backoff_attempt_ = 0;
    said_no_answer_.clear();
    name_wait_until_ns_ = 0;
    next_heartbeat_ns_ = now + heartbeat_interval_ns_;
    probes_left_ = opts_.probe_burst;
    bursts_since_welcome_ = 0;
    next_burst_ns_ = now + 1'000'000'000;
    spdlog::info("node '{}' registered as id {} (broker epoch {:016x})", opts_.name, node_id_,
                 broker_epoch_);
    {
      std::lock_guard lock(reg_mu_);
      registrations_.add();
      refusal_ = {};
    }
    reg_cv_.notify_all();
  }

  void on_time_reply(int64_t t3) noexcept {
    const v1::TimeReply& r = codec_.time_reply();
    if (!probe_in_flight_ || r.probe_id() != probe_id_ || r.broker_epoch() != broker_epoch_) return;
    probe_in_flight_ = false;
    const bool was_synced = clock_sync_.synced();
    clock_sync_.add({r.t0_ns(), r.t1_ns(), r.t2_ns(), t3});
    if (probes_left_ == 0) clock_sync_.end_burst();
    if (!was_synced && clock_sync_.synced()) {
      { std::lock_guard lock(reg_mu_); }  // orders the change with wait_registered's predicate
      reg_cv_.notify_all();
      start_driver_ = !driver_started_;
    }
  }

  void on_error(int64_t now) noexcept {
    const v1::Error& e = codec_.error();
    if (e.code() == v1::Error::UNKNOWN_NODE && state_ == State::hello_pending) {
      return;  // answers to what we sent before noticing; our Hello is already on its way
    }
    if (e.code() == v1::Error::UNKNOWN_NODE && socket_) {
      // The broker does not know us (it restarted, or timed us out): register again.
      if (state_ == State::registered) {
        spdlog::warn("node '{}': broker does not know this node; registering again", opts_.name);
        state_ = State::hello_pending;
        registered_.store(false, std::memory_order_relaxed);
        connect_started_ns_ = now;
        send_hello(now);
        return;
      }
    }
    if (e.code() == v1::Error::NAME_IN_USE && state_ == State::registered) {
      // Another process took this name over (--replace): this one is no longer the holder.
      refused(RefusalKind::name_in_use, "the broker at " + opts_.broker + ": " + e.message());
      close_socket();
      backoff_attempt_ = 31;
      schedule_reconnect(now);
      return;
    }
    if (state_ == State::hello_pending && e.code() == v1::Error::NAME_IN_USE &&
        e.retry_after_ms() > 0) {
      // The holder may be this node's previous life (killed, its goodbye never sent): wait as
      // long as the broker takes to release a silent holder, then take the refusal as final.
      if (name_wait_until_ns_ == 0) {
        name_wait_until_ns_ = now + static_cast<int64_t>(e.retry_after_ms()) * 1'000'000 +
                              heartbeat_interval_ns_ + 250'000'000;
        spdlog::info("node '{}': the name is held by another connection; waiting up to {} ms for "
                     "the broker to release it if that holder is gone",
                     opts_.name, e.retry_after_ms());
      }
      if (now < name_wait_until_ns_) {
        connect_started_ns_ = now;  // an answer, not silence
        next_hello_ns_ = now + 200'000'000;
        return;
      }
    }
    if (state_ == State::hello_pending && e.code() != v1::Error::UNKNOWN_NODE) {
      // A refusal of our Hello (name, version, declared sizes, key): kept for whoever waits for
      // registration; retry slowly, it needs an operator.
      refused(refusal_kind(e.code()), "the broker at " + opts_.broker + " refused node '" +
                                          opts_.name + "': " + e.message());
      close_socket();
      backoff_attempt_ = 31;
      schedule_reconnect(now);
      return;
    }
    uint64_t suppressed = 0;
    if (error_log_.allow(now, suppressed)) {
      spdlog::error("node '{}': broker refused: {} ({} more since the last line)", opts_.name,
                    e.message(), suppressed);
    }
  }

  static RefusalKind refusal_kind(v1::Error::Code code) noexcept {
    switch (code) {
      case v1::Error::NOT_IN_TOPOLOGY: return RefusalKind::not_in_topology;
      case v1::Error::REJECTED: return RefusalKind::declared_sizes;
      case v1::Error::NOT_AUTHORIZED: return RefusalKind::not_authorized;
      case v1::Error::VERSION_MISMATCH: return RefusalKind::version;
      case v1::Error::TOO_MANY_NODES: return RefusalKind::too_many_nodes;
      case v1::Error::NAME_IN_USE: return RefusalKind::name_in_use;
      default: return RefusalKind::other;
    }
  }

  // What the connection's handshakes showed: a refusal the broker cannot put into words (it never
  // reads a message from a peer whose handshake failed).
  void check_handshakes() noexcept {
    if (!monitor_) return;
    bool succeeded = false;
    const std::optional<HandshakeFailure> f = monitor_->poll(succeeded);
    if (!f) return;
    const std::string at = "the broker at " + opts_.broker;
    switch (f->kind) {
      case HandshakeFailure::Kind::mechanism_mismatch:
        refused(RefusalKind::encryption_mismatch,
                opts_.curve ? at + " does not use CURVE encryption, and this node does"
                            : at + " requires CURVE encryption: give this node its key and the "
                                   "broker's public key (node.secret_key, node.broker_key)");
        break;
      case HandshakeFailure::Kind::refused:
        refused(RefusalKind::key_refused,
                at + " refused this node's key (authenticator status " +
                    std::to_string(f->detail) + "): it is not on the broker's allowlist");
        break;
      case HandshakeFailure::Kind::crypto:
        refused(RefusalKind::handshake_failed,
                "the CURVE handshake with " + at.substr(4) +
                    " did not decrypt: is node.broker_key that broker's public key?");
        break;
      case HandshakeFailure::Kind::other:
        if (opts_.curve) {
          refused(RefusalKind::handshake_failed,
                  "the CURVE handshake with " + at.substr(4) + " failed (" +
                      std::strerror(static_cast<int>(f->detail)) +
                      "): is node.broker_key that broker's public key?");
        }
        break;
    }
  }

  void on_batch(int64_t t_recv) noexcept {
    BatchChecks checks;
    checks.channel_limit = info_.input_ports;
    const Reject r = codec_.take_batch(checks, in_header_, in_events_);
    if (r != Reject::none) {
      rejected_frames_.add();
      uint64_t suppressed = 0;
      if (reject_log_.allow(t_recv, suppressed)) {
        spdlog::warn("node '{}': rejected a batch from the broker: {}", opts_.name, to_string(r));
      }
      return;
    }
    const BatchHeader& h = in_header_;
    if (link_.observe(h.broker_epoch, h.link_sequence) == SequenceTracker::Verdict::gap) {
      lost_batches_.add(link_.last_gap());
    }
    auto key = std::make_pair(h.source_node, in_events_.stream);
    auto it = sources_.find(key);
    if (it == sources_.end()) {
      if (sources_.size() >= opts_.max_source_streams) {
        rejected_frames_.add();
        return;
      }
      it = sources_.emplace(std::move(key), SourceStream{}).first;
    }
    SourceStream& src = it->second;
    const size_t n = in_events_.size();
    switch (src.seq.observe(h.epoch, h.sequence)) {
      case SequenceTracker::Verdict::duplicate_or_reordered:
        duplicate_or_reordered_.add();  // promise 1: never delivered twice or out of order
        return;
      case SequenceTracker::Verdict::restarted:
        source_restarts_.add();
        src.index_known = false;
        break;
      default: break;
    }
    if (h.complete) {
      if (src.index_known && h.first_index > src.next_index) {
        lost_events_.add(h.first_index - src.next_index);
      }
      // First sight (or after a partial copy): count from here. Events before it were never
      // routed here while this node was registered, or were counted by the broker as undeliverable.
      if (!src.index_known) src.counted_to = h.first_index;
      src.index_known = true;
      src.next_index = h.first_index + n;
      index_seen_.add(src.next_index - src.counted_to);
      src.counted_to = src.next_index;
    } else {
      src.index_known = false;
    }
    // Without network time nothing can be proven on time: everything counts as late.
    int64_t arrival = INT64_MAX;
    if (clock_sync_.synced()) {
      arrival = clock_sync_.to_network(t_recv);
      if (h.broker_time_ns != 0) link_latency_.record(arrival - h.broker_time_ns);
      LatencyWindow* window = nullptr;
      if (auto w = latency_windows_.find(h.source_node_id); w != latency_windows_.end()) {
        window = &w->second;
      } else if (latency_windows_.size() < opts_.max_source_streams) {
        window = &latency_windows_[h.source_node_id];
      }
      for (size_t i = 0; i < n; ++i) {
        const int64_t latency = arrival - in_events_.times_ns[i];
        latency_.record(latency);
        if (window != nullptr) {
          window->current.record(latency);
          window->total.record(latency);
        }
      }
    }
    playout_.accept(h, in_events_, arrival);
    // Taking the mutex orders this with the playout thread's check-then-wait: no lost wake-up.
    { std::lock_guard lock(playout_mu_); }
    playout_cv_.notify_one();
  }

  const Clock& clock_;
  Codec codec_;       // loop thread
  Codec emit_codec_;  // driver threads, under emit_mu_
  zmq::context_t ctx_{1};
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;
  Wakeup wakeup_;
  std::atomic<bool> stop_{false};
  State state_ = State::waiting;
  std::atomic<bool> registered_{false};
  ClockSync clock_sync_;
  std::mt19937_64 rng_;

  std::mutex emit_mu_;
  FrameRing queue_;
  std::vector<OutStream> out_streams_;
  std::string emit_scratch_;
  LogLimiter emit_log_;
  bool send_blocked_ = false;

  std::string scratch_;
  BatchHeader in_header_;
  EventBatch in_events_;
  SequenceTracker link_;
  std::map<std::pair<std::string, uint32_t>, SourceStream> sources_;
  LogLimiter reject_log_;
  LogLimiter error_log_;

  uint64_t broker_epoch_ = 0;
  uint32_t node_id_ = 0;
  int64_t heartbeat_interval_ns_ = 0;
  int64_t broker_timeout_ns_ = 0;
  int64_t reconnect_at_ns_ = 0;
  uint32_t backoff_attempt_ = 0;
  int64_t connect_started_ns_ = 0;
  int64_t next_hello_ns_ = 0;
  int64_t last_heard_ns_ = 0;
  int64_t next_heartbeat_ns_ = 0;
  int64_t next_burst_ns_ = 0;
  uint32_t probes_left_ = 0;
  uint32_t bursts_since_welcome_ = 0;
  bool probe_in_flight_ = false;
  uint32_t probe_id_ = 0;
  int64_t probe_sent_ns_ = 0;
  bool driver_started_ = false;
  bool start_driver_ = false;

  Playout playout_;
  Histogram latency_;       // end to end
  Histogram link_latency_;  // broker -> this node
  std::map<uint32_t, LatencyWindow> latency_windows_;  // by source node id (loop thread)
  int64_t next_window_ns_ = 0;
  std::mutex playout_mu_;
  std::condition_variable playout_cv_;
  bool playout_stop_ = false;

  mutable std::mutex reg_mu_;
  mutable std::condition_variable reg_cv_;
  Refusal refusal_;  // reg_mu_

  Counter registrations_, broker_restarts_, emitted_events_, emitted_batches_, sent_batches_,
      dropped_events_, dropped_batches_, received_events_, received_batches_, lost_events_,
      lost_batches_, duplicate_or_reordered_, source_restarts_, rejected_frames_, index_seen_;
};

Node::Node(NodeOptions options, std::unique_ptr<Driver> driver, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(driver), clock)) {}
Node::~Node() = default;
void Node::run() { impl_->run(); }
void Node::stop() noexcept { impl_->stop(); }
NodeStats Node::stats() const { return impl_->stats(); }
ClockEstimate Node::clock_estimate(int64_t local_ns) const {
  return impl_->clock_estimate(local_ns);
}
Driver& Node::driver() noexcept { return *impl_->driver_; }
const NodeOptions& Node::options() const noexcept { return impl_->opts_; }
uint64_t Node::epoch() const noexcept { return impl_->epoch_; }
bool Node::wait_registered(uint64_t count, std::chrono::milliseconds timeout) const {
  return impl_->wait_registered(count, timeout);
}
Registration Node::wait_registration(uint64_t count, std::chrono::milliseconds timeout,
                                     Refusal* refusal) const {
  return impl_->wait_registration(count, timeout, refusal);
}
Refusal Node::last_refusal() const { return impl_->last_refusal(); }
int64_t Node::next_deadline_local_ns() const noexcept { return impl_->next_deadline_local_ns(); }

}  // namespace ion
