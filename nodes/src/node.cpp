// The node: construction, the node loop (session, receive, timers in one thread beside the
// playout thread), stop, stats and registration waits. Its other parts: node_impl.h.
#include "ion/node/node.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "node_impl.h"
#include "ion/core/device_description.h"

namespace ion {

namespace {

SocketOptions node_socket_options(const NodeOptions& o) {
  SocketOptions so;
  so.max_message_bytes = static_cast<int64_t>(o.limits.max_message_bytes);
  so.heartbeat_interval_ms = static_cast<int>(o.heartbeat_interval.count());
  so.heartbeat_timeout_ms = static_cast<int>(o.broker_timeout.count());
  so.reconnect_interval_ms = static_cast<int>(o.reconnect_min.count());
  so.reconnect_interval_max_ms = static_cast<int>(o.reconnect_max.count());
  so.curve_client = o.curve;
  return so;
}

SessionOptions node_session_options(const NodeOptions& o) {
  SessionOptions so;
  so.broker = o.broker;
  so.who = "node '" + o.name + "'";
  so.curve = o.curve.has_value();
  so.heartbeat_interval = o.heartbeat_interval;
  so.broker_timeout = o.broker_timeout;
  so.reconnect_min = o.reconnect_min;
  so.reconnect_max = o.reconnect_max;
  so.probe_burst = o.probe_burst;
  so.resync_interval = o.resync_interval;
  return so;
}

}  // namespace

Node::Impl::Impl(NodeOptions options, std::unique_ptr<Driver> driver, const Clock& clock)
    : opts_(std::move(options)),
      driver_(std::move(driver)),
      info_(driver_->describe()),
      device_(driver_->device()),
      channels_(driver_->channel_info()),
      clock_(clock),
      codec_(opts_.limits),
      emit_codec_(opts_.limits),
      broker_link_(opts_.broker, node_socket_options(opts_), "node '" + opts_.name + "'"),
      session_(node_session_options(opts_), broker_link_, *this, clock_, opts_.limits),
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
}

// --- Node loop ---
void Node::Impl::run() {
  spdlog::info("node '{}' ({}) starting: broker {}, {} channels, {} ports, epoch {:016x}",
               opts_.name, info_.kind, opts_.broker, info_.output_channels, info_.input_ports,
               epoch_);
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
    session_.check_stall(now);
    session_.tick(now);  // opens the link when due
    if (Socket* socket = broker_link_.socket()) {
      const int ready = poll_readable(*socket, wakeup_.fd(), poll_timeout_ms(now));
      if ((ready & 2) != 0) wakeup_.drain();
      receive_all();
      session_.tick(clock_.now_ns());
      if (start_driver_) {  // first network time: the driver may now stamp events
        start_driver_ = false;
        driver_started_ = true;
        driver_->start(*this);  // may throw: a start-up failure surfaces from run()
      }
      flush_batches(clock_.now_ns(), false);
      if (session_.registered()) send_queued();
    } else {
      wait_fd_ms(poll_timeout_ms(now));
    }
  }
  // The driver stops first: what it emits after the last flush would count as emitted and
  // never leave, a loss no receiver could see.
  driver_->stop();
  flush_batches(clock_.now_ns(), true);  // nothing the driver emitted stays behind
  if (session_.registered()) send_queued();
  session_.close("node stopping");
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
}

void Node::Impl::wait_fd_ms(int ms) noexcept {
  zmq_pollitem_t item{nullptr, wakeup_.fd(), ZMQ_POLLIN, 0};
  if (zmq_poll(&item, 1, std::max(ms, 1)) > 0) wakeup_.drain();
}

int Node::Impl::poll_timeout_ms(int64_t now) const noexcept {
  int ms = session_.poll_timeout_ms(now);
  if (session_.registered() && send_blocked_) ms = std::min(ms, 1);
  const int64_t flush = next_batch_flush_ns_.load();
  if (flush != INT64_MAX) {
    ms = std::min(ms, static_cast<int>(std::clamp<int64_t>((flush - now + 999'999) / 1'000'000, 0, 50)));
  }
  return ms;
}

void Node::Impl::receive_all() noexcept {
  Frame f;
  for (int i = 0; i < 4096; ++i) {
    Socket* socket = broker_link_.socket();  // handling a frame may close the link
    if (socket == nullptr || socket->recv(f) != IoStatus::ok) return;
    handle(f, clock_.now_ns());
  }
}

void Node::Impl::handle(const Frame& f, int64_t t_recv) noexcept {
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
  if (session_.on_frame(d.body, codec_, t_recv)) return;
  if (d.body == Body::spike_batch) {
    on_batch(t_recv);
  } else {
    rejected_frames_.add();
  }
}

// --- The node's side of the broker session ---
void Node::Impl::fill_hello(v1::Hello& h) noexcept {
  h.set_node_name(opts_.name);
  h.set_kind(static_cast<v1::NodeKind>(info_.node_kind));
  h.set_output_channels(info_.output_channels);
  h.set_input_ports(info_.input_ports);
  h.set_epoch(epoch_);
  h.set_replace(opts_.replace);
  h.set_software("ion-node " ION_VERSION " " + info_.kind);
  if (!device_.model.empty()) to_proto(device_, *h.mutable_device());
  for (const ChannelDescription& c : channels_) to_proto(c, *h.add_channel_info());
}

void Node::Impl::fill_heartbeat(v1::Heartbeat& hb, int64_t now) noexcept {
  add_latency_reports(hb, now);
  add_health(*hb.mutable_health());
}

void Node::Impl::on_registered(const v1::Welcome& /*w*/, bool broker_restarted) noexcept {
  if (broker_restarted) broker_restarts_.add();
  registered_.store(true, std::memory_order_relaxed);
  {
    std::lock_guard lock(reg_mu_);
    registrations_.add();
    refusal_ = {};
  }
  reg_cv_.notify_all();
}

void Node::Impl::on_unregistered() noexcept { registered_.store(false, std::memory_order_relaxed); }

void Node::Impl::on_synced() noexcept {
  { std::lock_guard lock(reg_mu_); }  // orders the change with wait_registered's predicate
  reg_cv_.notify_all();
  start_driver_ = !driver_started_;
}

// A refusal of this attempt: kept for wait_registration, logged once per change of reason.
void Node::Impl::on_refused(const Refusal& r) noexcept {
  {
    std::lock_guard lock(reg_mu_);
    if (refusal_.kind == r.kind && refusal_.reason == r.reason) return;
    refusal_ = r;
    // When it stops the node, the caller says it (ion-node's last line, the C API's error).
    if (!opts_.exit_on_refusal) {
      spdlog::error("node '{}': refused: {} (retrying quietly)", opts_.name, refusal_.reason);
    }
  }
  reg_cv_.notify_all();
  if (opts_.exit_on_refusal) stop();
}

void Node::Impl::stop() noexcept {
  stop_.store(true, std::memory_order_release);
  wakeup_.notify();
}

NodeStats Node::Impl::stats() const {
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
  const ClockEstimate e = session_.clock_sync().estimate(clock_.now_ns());
  s.clock_synced = e.valid;
  s.clock_offset_ns = e.offset_ns;
  s.clock_uncertainty_ns = e.uncertainty_ns;
  s.clock_drift_ppm = e.drift_ppm;
  return s;
}

Registration Node::Impl::wait_registration(uint64_t count, std::chrono::milliseconds timeout,
                                           Refusal* refusal) const {
  std::unique_lock lock(reg_mu_);
  const bool done = reg_cv_.wait_for(lock, timeout, [&] {
    return (registrations_.get() >= count && session_.clock_sync().synced()) ||
           refusal_.kind != RefusalKind::none;
  });
  if (!done) return Registration::timed_out;
  if (registrations_.get() >= count && session_.clock_sync().synced()) return Registration::registered;
  if (refusal != nullptr) *refusal = refusal_;
  return Registration::refused;
}

Refusal Node::Impl::last_refusal() const {
  std::lock_guard lock(reg_mu_);
  return refusal_;
}

int64_t Node::Impl::next_deadline_local_ns() const noexcept {
  const int64_t d = playout_.next_deadline();
  if (d == INT64_MAX || !session_.clock_sync().synced()) return INT64_MAX;
  return session_.clock_sync().to_local(d);
}

Node::Node(NodeOptions options, std::unique_ptr<Driver> driver, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(driver), clock)) {}
Node::~Node() = default;
void Node::run() {
  impl_->run();
}
void Node::stop() noexcept {
  impl_->stop();
}
NodeStats Node::stats() const {
  return impl_->stats();
}
ClockEstimate Node::clock_estimate(int64_t local_ns) const {
  return impl_->clock_estimate(local_ns);
}
Driver& Node::driver() noexcept {
  return *impl_->driver_;
}
const NodeOptions& Node::options() const noexcept {
  return impl_->opts_;
}
uint64_t Node::epoch() const noexcept {
  return impl_->epoch_;
}
bool Node::wait_registered(uint64_t count, std::chrono::milliseconds timeout) const {
  return impl_->wait_registered(count, timeout);
}
Registration Node::wait_registration(uint64_t count, std::chrono::milliseconds timeout,
                                     Refusal* refusal) const {
  return impl_->wait_registration(count, timeout, refusal);
}
Refusal Node::last_refusal() const {
  return impl_->last_refusal();
}
int64_t Node::next_deadline_local_ns() const noexcept {
  return impl_->next_deadline_local_ns();
}

}  // namespace ion
