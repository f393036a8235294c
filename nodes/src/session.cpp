// BrokerSession: the state machine every participant (node, recorder) runs against the broker.
#include "ion/node/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

int64_t ns(std::chrono::nanoseconds d) noexcept { return d.count(); }

}  // namespace

BrokerSession::BrokerSession(SessionOptions options, SessionLink& link, SessionOwner& owner,
                             const Clock& clock, CodecLimits limits)
    : opts_(std::move(options)),
      link_(link),
      owner_(owner),
      clock_(clock),
      codec_(limits),
      rng_(opts_.seed != 0 ? opts_.seed : std::random_device{}()),
      heartbeat_interval_ns_(ns(opts_.heartbeat_interval)),
      broker_timeout_ns_(ns(opts_.broker_timeout)) {
  reconnect_at_ns_ = INT64_MIN;  // open at the first tick
}

void BrokerSession::tick(int64_t now) noexcept {
  if (state_ == State::closed) {
    if (now >= reconnect_at_ns_) open_link(now);
    if (state_ == State::closed) return;
  }
  if (state_ == State::hello_pending) {
    check_handshakes(now);
  } else {
    bool succeeded = false;
    (void)link_.poll_handshake(succeeded);  // registered: only whether the connection dropped
  }
  if (state_ == State::registered && link_.take_disconnects() > 0) {
    // The connection dropped (a broker killed or restarted, a cut link). ZeroMQ reconnects by
    // itself, possibly to a new broker that does not know this participant: what it sent before
    // registering there would be refused and lost. Register again first.
    register_again(now, "the connection to the broker dropped; registering again before sending");
  }
  if (state_ != State::closed) on_timers(now);
}

void BrokerSession::open_link(int64_t now) noexcept {
  if (!link_.open()) {
    schedule_reconnect(now);
    return;
  }
  state_ = State::hello_pending;
  asked_mechanism_ = false;
  connect_started_ns_ = now;
  next_hello_ns_ = now;
}

void BrokerSession::close_link() noexcept {
  check_handshakes(clock_.now_ns());  // what the handshake said before the link goes
  link_.close();
  unregister(State::closed);
}

void BrokerSession::unregister(State next) noexcept {
  const bool was = state_ == State::registered;
  state_ = next;
  probe_in_flight_ = false;
  probes_left_ = 0;
  if (was) owner_.on_unregistered();
}

void BrokerSession::close(const std::string& reason) noexcept {
  const bool was_registered = state_ == State::registered;
  if (was_registered) {
    v1::Goodbye g;
    g.set_reason(reason);
    if (codec_.encode(g, scratch_)) send(scratch_);
  }
  if (link_.is_open()) {
    check_handshakes(clock_.now_ns());
    // The last batches and the Goodbye are queued in the link, not yet on the wire: a plain
    // close drops them, and a receiver could not count the last batch as lost (no later one
    // shows the gap). Bounded: a broker that is gone costs at most a second at stop.
    if (was_registered) {
      link_.close_flushing(std::chrono::milliseconds(1000));
    } else {
      link_.close();
    }
    unregister(State::closed);
  }
  state_ = State::closed;
  reconnect_at_ns_ = INT64_MAX;
}

void BrokerSession::schedule_reconnect(int64_t now) noexcept {
  const int64_t base = ns(opts_.reconnect_min) << std::min<uint32_t>(backoff_attempt_, 20);
  const int64_t capped = std::min(base, ns(opts_.reconnect_max));
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  reconnect_at_ns_ = now + static_cast<int64_t>(static_cast<double>(capped) * jitter(rng_));
  ++backoff_attempt_;
}

// No Welcome within broker_timeout: said once, in one line, with what to check; the retries
// that follow are quiet (debug) until the participant registers or the diagnosis changes.
void BrokerSession::no_answer(int64_t now) noexcept {
  check_handshakes(now);
  // Up now, not ever: during a broker outage the old connection is gone, and nothing answers.
  const bool connected = link_.connected_now();
  const std::string t = std::to_string(broker_timeout_ns_ / 1'000'000) + " ms";
  std::string why;
  if (!connected && ambiguous_since_ns_ != 0) {
    why = "something at " + opts_.broker +
          " accepts connections and drops them during the handshake: is it an IoN broker with "
          "the same security as this side, and is a relay in between connected to it?";
  } else if (!connected) {
    why = "nothing answers at " + opts_.broker +
          " (no broker listening there, or the host is unreachable): is the broker running, "
          "and is " + opts_.broker_setting + " its address?";
  } else if (opts_.curve) {
    why = "the broker at " + opts_.broker + " did not answer within " + t +
          ": is node.broker_key that broker's public key, and this node's key on its allowlist?";
  } else {
    why = "something at " + opts_.broker +
          " accepted the connection but did not answer the Hello within " + t +
          ": is it an IoN broker (ion-broker)?";
  }
  if (why != said_no_answer_) {
    spdlog::warn("{}: {} (retrying quietly)", opts_.who, why);
    said_no_answer_ = why;
  } else {
    spdlog::debug("{}: {} (retrying)", opts_.who, why);
  }
  close_link();
  schedule_reconnect(now);
}

void BrokerSession::lose_broker(int64_t now, const std::string& why) noexcept {
  spdlog::warn("{}: {}; reconnecting", opts_.who, why);
  close_link();
  schedule_reconnect(now);
}

void BrokerSession::register_again(int64_t now, const char* why) noexcept {
  spdlog::warn("{}: {}", opts_.who, why);
  unregister(State::hello_pending);
  connect_started_ns_ = now;
  send_hello(now);
}

void BrokerSession::send_hello(int64_t now) noexcept {
  v1::Hello h;
  owner_.fill_hello(h);
  h.set_protocol_version(kProtocolVersion);
  if (codec_.encode(h, scratch_)) send(scratch_);  // retried until the Welcome
  next_hello_ns_ = now + std::min<int64_t>(250'000'000, broker_timeout_ns_ / 4);
}

void BrokerSession::on_timers(int64_t now) noexcept {
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
    owner_.fill_heartbeat(hb, now);
    if (codec_.encode(hb, scratch_)) send(scratch_);
    next_heartbeat_ns_ = now + heartbeat_interval_ns_;
  }
  if (probe_in_flight_ && now - probe_sent_ns_ > 1'000'000'000) {  // lost probe: move on
    probe_in_flight_ = false;
    if (probes_left_ == 0) clock_sync_.end_burst();
  }
  if (probes_left_ == 0 && now >= next_burst_ns_) {
    probes_left_ = opts_.probe_burst;
    // The first bursts come 1 s apart so drift (and a tight bound) is known within seconds.
    next_burst_ns_ =
        now + (++bursts_since_welcome_ < 3 ? 1'000'000'000 : ns(opts_.resync_interval));
  }
  if (probes_left_ > 0 && !probe_in_flight_) {
    v1::TimeRequest r;
    r.set_probe_id(probe_id_ + 1);
    const int64_t sent = clock_.now_ns();
    r.set_t0_ns(sent);
    if (codec_.encode(r, scratch_) && link_.send(scratch_)) {
      ++probe_id_;
      probe_sent_ns_ = sent;
      probe_in_flight_ = true;
      --probes_left_;
    }
  }
}

void BrokerSession::check_stall(int64_t now) noexcept {
  if (state_ == State::registered && last_loop_ns_ != 0 &&
      now - last_loop_ns_ > broker_timeout_ns_) {
    spdlog::warn(
        "{}: stalled for {} ms, beyond the broker's timeout; registering again before sending "
        "what it kept",
        opts_.who, (now - last_loop_ns_) / 1'000'000);
    unregister(State::hello_pending);
    connect_started_ns_ = now;
    send_hello(now);
  }
  last_loop_ns_ = now;
}

int BrokerSession::poll_timeout_ms(int64_t now) const noexcept {
  int64_t next = now + 50'000'000;
  if (state_ == State::closed) next = std::min(next, reconnect_at_ns_);
  if (state_ == State::hello_pending) next = std::min(next, next_hello_ns_);
  if (state_ == State::registered) {
    next = std::min(next, next_heartbeat_ns_);
    if (probes_left_ > 0 && !probe_in_flight_) next = now;
  }
  return static_cast<int>(std::clamp<int64_t>((next - now + 999'999) / 1'000'000, 0, 50));
}

bool BrokerSession::on_frame(Body body, const Codec& codec, int64_t t_recv) noexcept {
  last_heard_ns_ = t_recv;
  switch (body) {
    case Body::welcome:
      on_welcome(codec.welcome(), t_recv);
      return true;
    case Body::heartbeat: {
      const uint64_t e = codec.heartbeat().broker_epoch();
      if (state_ == State::registered && e != 0 && broker_epoch_ != 0 && e != broker_epoch_) {
        register_again(t_recv, "a new broker answers; registering again");  // Welcome counts it
      }
      return true;
    }
    case Body::time_reply:
      on_time_reply(codec.time_reply(), t_recv);
      return true;
    case Body::error:
      on_error(codec.error(), t_recv);
      return true;
    case Body::goodbye:
      lose_broker(t_recv, "broker said goodbye: " + codec.goodbye().reason());
      return true;
    default:
      return false;
  }
}

void BrokerSession::on_welcome(const v1::Welcome& w, int64_t now) noexcept {
  if (state_ != State::hello_pending) return;  // a duplicate answer to a retried Hello
  const bool restarted = broker_epoch_ != 0 && w.broker_epoch() != broker_epoch_;
  if (restarted) {
    ++broker_restarts_;
    clock_sync_.reset();  // a new broker is a new network time axis
    spdlog::warn("{}: broker restarted (epoch {:016x} -> {:016x})", opts_.who, broker_epoch_,
                 w.broker_epoch());
  }
  broker_epoch_ = w.broker_epoch();
  node_id_ = w.node_id();
  if (w.heartbeat_interval_ms() > 0) heartbeat_interval_ns_ = w.heartbeat_interval_ms() * 1'000'000LL;
  if (w.heartbeat_timeout_ms() > 0) broker_timeout_ns_ = w.heartbeat_timeout_ms() * 1'000'000LL;
  state_ = State::registered;
  backoff_attempt_ = 0;
  said_no_answer_.clear();
  name_wait_until_ns_ = 0;
  next_heartbeat_ns_ = now + heartbeat_interval_ns_;
  probes_left_ = opts_.probe_burst;
  bursts_since_welcome_ = 0;
  next_burst_ns_ = now + 1'000'000'000;
  spdlog::info("{} registered as id {} (broker epoch {:016x})", opts_.who, node_id_, broker_epoch_);
  owner_.on_registered(w, restarted);
}

void BrokerSession::on_time_reply(const v1::TimeReply& r, int64_t t3) noexcept {
  if (!probe_in_flight_ || r.probe_id() != probe_id_ || r.broker_epoch() != broker_epoch_) return;
  probe_in_flight_ = false;
  const bool was_synced = clock_sync_.synced();
  (void)clock_sync_.add({r.t0_ns(), r.t1_ns(), r.t2_ns(), t3});
  if (probes_left_ == 0) clock_sync_.end_burst();
  if (!was_synced && clock_sync_.synced()) owner_.on_synced();
}

void BrokerSession::refuse_and_back_off(RefusalKind kind, const std::string& reason,
                                        int64_t now) noexcept {
  owner_.on_refused({kind, reason});
  close_link();
  backoff_attempt_ = 31;  // retry slowly: a refusal needs an operator
  schedule_reconnect(now);
}

void BrokerSession::on_error(const v1::Error& e, int64_t now) noexcept {
  if (e.code() == v1::Error::UNKNOWN_NODE) {
    // Answers to what was sent before noticing are ignored while the Hello is on its way; when
    // registered, the broker does not know this participant (it restarted, or timed it out).
    if (state_ == State::registered) {
      register_again(now, "broker does not know this participant; registering again");
    }
    return;
  }
  if (e.code() == v1::Error::NAME_IN_USE && state_ == State::registered) {
    // Another process took this name over (replace): this one is no longer the holder.
    refuse_and_back_off(RefusalKind::name_in_use, "the broker at " + opts_.broker + ": " + e.message(),
                        now);
    return;
  }
  if (state_ == State::hello_pending && e.code() == v1::Error::NAME_IN_USE &&
      e.retry_after_ms() > 0) {
    // The holder may be this participant's previous life (killed, its goodbye never sent): wait
    // as long as the broker takes to release a silent holder, then take the refusal as final.
    if (name_wait_until_ns_ == 0) {
      name_wait_until_ns_ = now + static_cast<int64_t>(e.retry_after_ms()) * 1'000'000 +
                            heartbeat_interval_ns_ + 250'000'000;
      spdlog::info(
          "{}: the name is held by another connection; waiting up to {} ms for the broker to "
          "release it if that holder is gone",
          opts_.who, e.retry_after_ms());
    }
    if (now < name_wait_until_ns_) {
      connect_started_ns_ = now;  // an answer, not silence
      next_hello_ns_ = now + 200'000'000;
      return;
    }
  }
  if (state_ == State::hello_pending) {
    // A refusal of the Hello (name, version, declared sizes, key).
    refuse_and_back_off(refusal_kind(e.code()),
                        "the broker at " + opts_.broker + " refused " + opts_.who + ": " + e.message(),
                        now);
    return;
  }
  uint64_t suppressed = 0;
  if (error_log_.allow(now, suppressed)) {
    spdlog::error("{}: broker refused: {} ({} more since the last line)", opts_.who, e.message(),
                  suppressed);
  }
}

RefusalKind BrokerSession::refusal_kind(int code) noexcept {
  switch (code) {
    case v1::Error::NOT_IN_TOPOLOGY:
      return RefusalKind::not_in_topology;
    case v1::Error::REJECTED:
      return RefusalKind::declared_sizes;
    case v1::Error::NOT_AUTHORIZED:
      return RefusalKind::not_authorized;
    case v1::Error::VERSION_MISMATCH:
      return RefusalKind::version;
    case v1::Error::TOO_MANY_NODES:
      return RefusalKind::too_many_nodes;
    case v1::Error::NAME_IN_USE:
      return RefusalKind::name_in_use;
    default:
      return RefusalKind::other;
  }
}

// What the connection's handshakes showed: a refusal the broker cannot put into words (it never
// reads a message from a peer whose handshake failed).
void BrokerSession::check_handshakes(int64_t now) noexcept {
  if (!link_.is_open()) return;
  bool succeeded = false;
  const std::optional<HandshakeFailure> f = link_.poll_handshake(succeeded);
  if (succeeded) ambiguous_since_ns_ = 0;
  if (!f) return;
  const std::string at = "the broker at " + opts_.broker;
  switch (f->kind) {
    case HandshakeFailure::Kind::mechanism_mismatch:
      refuse_mechanism_mismatch();
      break;
    case HandshakeFailure::Kind::refused:
      owner_.on_refused({RefusalKind::key_refused,
                         at + " refused this node's key (authenticator status " +
                             std::to_string(f->detail) + "): it is not on the broker's allowlist"});
      break;
    case HandshakeFailure::Kind::crypto:
      owner_.on_refused({RefusalKind::handshake_failed,
                         "the CURVE handshake with " + at.substr(4) +
                             " did not decrypt: is node.broker_key that broker's public key?"});
      break;
    case HandshakeFailure::Kind::other:
      // A reset mid-handshake: security that differs (libzmq may reset before this side has
      // read the broker's greeting, so ask the greeting itself, once per link), a wrong broker
      // key, or something in between (a link emulator, a proxy) whose far side is not up yet.
      if (ambiguous_since_ns_ == 0) ambiguous_since_ns_ = now;
      if (!asked_mechanism_) {
        asked_mechanism_ = true;
        const std::optional<std::string> m = link_.peer_mechanism();
        if (m && (*m == "CURVE") != opts_.curve) {
          refuse_mechanism_mismatch();
          break;
        }
      }
      // Otherwise final only when it persists.
      if (opts_.curve && now - ambiguous_since_ns_ >= broker_timeout_ns_) {
        owner_.on_refused({RefusalKind::handshake_failed,
                           "the CURVE handshake with " + at.substr(4) + " failed (" +
                               std::strerror(static_cast<int>(f->detail)) +
                               "): is node.broker_key that broker's public key?"});
      }
      break;
  }
}

void BrokerSession::refuse_mechanism_mismatch() noexcept {
  const std::string at = "the broker at " + opts_.broker;
  owner_.on_refused({RefusalKind::encryption_mismatch,
                     opts_.curve ? at + " does not use CURVE encryption, and this node does"
                                 : at + " requires CURVE encryption: give this node its key and "
                                        "the broker's public key (node.secret_key, node.broker_key)"});
}

}  // namespace ion
