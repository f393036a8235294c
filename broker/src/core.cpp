// The broker core's dispatch: a message by kind, rate limits on control messages, clock probes,
// heartbeats, refusals and error replies, and the timers (see core.h for the other parts).
#include <spdlog/spdlog.h>

#include "core.h"

namespace ion::broker_impl {

BrokerCore::BrokerCore(BrokerOptions options, const Clock& clock, Outbox& out, uint64_t epoch)
    : opts_(std::move(options)),
      clock_(clock),
      out_(out),
      table_(RoutingTable::compile(opts_.topology)),
      codec_(opts_.limits),
      epoch_(epoch),
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
    for (const auto& t : conns[c].to)
      targets.push_back(static_cast<uint32_t>(table_.find_node(t.node)));
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

void BrokerCore::on_bound(const Authority* authority, bool insecure, int64_t now_ns) noexcept {
  auth_ = authority;
  insecure_ = insecure;
  anchor_network_ns_ = now_ns;
  anchor_utc_ns_ = utc_now_ns();
}

void BrokerCore::start(int64_t now_ns) noexcept {
  next_stats_ns_ = now_ns + ms_to_ns(opts_.stats_interval);
  if (opts_.startup_grace.count() > 0) {
    in_grace_ = true;
    grace_end_ns_ = now_ns + ms_to_ns(opts_.startup_grace);
    if (opts_.max_taps > 0) held_for_taps_ = FrameRing(opts_.tap_ring_frames, opts_.tap_ring_bytes);
  }
}

void BrokerCore::on_message(const Message& m) noexcept {
  const std::string_view rid = m.routing_id;
  const int64_t t_recv = m.t_recv_ns;
  const Decoded d = codec_.decode(m.body);
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
    on_hello(rid, m.user, m.peer.empty() ? std::string_view("an unknown address") : m.peer, t_recv);
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
    case Body::spike_batch:
      on_batch(*slot, m.body, t_recv);
      break;
    case Body::heartbeat:
      on_latency_reports(*slot, t_recv);
      on_health(*slot);
      echo_heartbeat(rid);
      break;
    case Body::time_request:
      answer_probe(rid, t_recv);
      break;
    case Body::goodbye:
      spdlog::info("node '{}' left: {}", slot->name, codec_.goodbye().reason());
      unregister(*slot);
      break;
    case Body::error:
      spdlog::warn("node '{}' reports error {}: {}", slot->name,
                   static_cast<int>(codec_.error().code()), codec_.error().message());
      break;
    default:
      reject(Reject::unexpected_type, slot);
      break;
  }
}

// Control messages cost a token: a registered node's own bucket, else its key name's (CURVE:
// bounded by the allowlist), else one shared by all unregistered plaintext peers.
bool BrokerCore::control_allowed(NodeSlot* slot, TapSlot* tap, std::string_view user,
                                 int64_t now) noexcept {
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

void BrokerCore::answer_probe(std::string_view rid, int64_t t_recv) noexcept {
  v1::TimeReply r;
  r.set_probe_id(codec_.time_request().probe_id());
  r.set_t0_ns(codec_.time_request().t0_ns());
  r.set_t1_ns(t_recv);
  r.set_broker_epoch(epoch_);
  r.set_t2_ns(clock_.now_ns());  // as late as possible before the send
  if (codec_.encode(r, scratch_)) send_direct(rid, scratch_);
}

void BrokerCore::send_welcome(std::string_view rid, uint32_t node_id) noexcept {
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

void BrokerCore::echo_heartbeat(std::string_view rid) noexcept {
  v1::Heartbeat hb;
  hb.set_sent_ns(codec_.heartbeat().sent_ns());
  hb.set_broker_epoch(epoch_);
  if (codec_.encode(hb, scratch_)) send_direct(rid, scratch_);
}

void BrokerCore::reject(Reject why, NodeSlot* slot) noexcept {
  rejects_.add(why);
  if (slot != nullptr) slot->rejected_batches.add();
  uint64_t suppressed = 0;
  if (reject_log_[static_cast<size_t>(why)].allow(clock_.now_ns(), suppressed)) {
    spdlog::warn("rejected a message from {}: {} ({} more like it since the last line)",
                 slot != nullptr ? "'" + slot->name + "'" : std::string("an unregistered peer"),
                 to_string(why), suppressed);
  }
}

void BrokerCore::reply_error(std::string_view rid, v1::Error::Code code, const std::string& msg,
                             uint32_t retry_after_ms) noexcept {
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

void BrokerCore::send_direct(std::string_view rid, const std::string& frame) noexcept {
  if (out_.send_to(rid, frame) != IoStatus::ok) ++control_send_failures_;
}

void BrokerCore::tick(int64_t now) noexcept {
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

void BrokerCore::say_goodbye() noexcept {
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

}  // namespace ion::broker_impl
