// ion-broker's shell: the ROUTER socket (with CURVE and its authenticator), the loop that drains
// it into the core, and the thread-safe accessors. The logic is in BrokerCore (core.h).
#include "ion/broker/broker.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "core.h"
#include "ion/core/transport.h"

namespace ion {

namespace {

// The socket as the core's Outbox.
class SocketOutbox final : public broker_impl::Outbox {
 public:
  IoStatus send_to(std::string_view routing_id, std::string_view frame) noexcept override {
    return socket_ != nullptr ? socket_->send_to(routing_id, frame) : IoStatus::unreachable;
  }
  void attach(Socket* s) noexcept { socket_ = s; }

 private:
  Socket* socket_ = nullptr;
};

// The ZAP authenticator as the core's Authority.
class ZapAuthority final : public broker_impl::Authority {
 public:
  explicit ZapAuthority(const ZapAuthenticator& zap) : zap_(zap) {}
  bool name_allowed(const std::string& name) const override { return zap_.name_allowed(name); }
  uint64_t generation() const noexcept override { return zap_.generation(); }
  AuthStats stats() const noexcept override { return zap_.stats(); }

 private:
  const ZapAuthenticator& zap_;
};

}  // namespace

class Broker::Impl {
 public:
  Impl(BrokerOptions options, const Clock& clock)
      : clock_(clock), core_(std::move(options), clock, outbox_, random_epoch()) {}

  std::string bind() {
    const BrokerOptions& opts = core_.options();
    SocketOptions so;
    so.send_hwm = opts.send_hwm;
    so.recv_hwm = opts.send_hwm;
    so.send_buffer_bytes = opts.socket_send_buffer;
    so.max_message_bytes = static_cast<int64_t>(opts.limits.max_message_bytes);
    so.heartbeat_interval_ms = static_cast<int>(opts.heartbeat_interval.count());
    so.heartbeat_timeout_ms = static_cast<int>(opts.heartbeat_timeout.count());
    const BrokerSecurity& sec = opts.security;
    if (sec.key) {
      require_curve("ion-broker");
      if (sec.allowlist.size() == 0) {
        throw SecurityError("the allowlist" +
                            (sec.allowlist_file.empty() ? "" : " '" + sec.allowlist_file + "'") +
                            " lists no node keys: no node could connect. Add the lines of the "
                            "nodes' NAME.pub files (`ion keygen NAME` makes them)");
      }
      so.curve_server_secret_z85 = sec.key->secret_z85;
    } else if (!local_only_endpoint(opts.listen) && !sec.insecure) {
      throw SecurityError(
          "refusing to listen on '" + opts.listen +
          "' without encryption: other machines can reach it, and an unauthenticated message "
          "must never reach a lab. Give the broker a key (broker.secret_key and "
          "broker.allowlist; `ion keygen` makes keys, see docs/security.md), listen on a "
          "loopback address, or pass --insecure to accept anyone");
    }
    socket_ = std::make_unique<Socket>(ctx_, Socket::Type::router, so);
    if (sec.key) {  // installed before the socket binds: no handshake without it
      auth_ = std::make_unique<ZapAuthenticator>(ctx_, socket_->raw(), sec.allowlist,
                                                 sec.allowlist_file);
      authority_ = std::make_unique<ZapAuthority>(*auth_);
    }
    endpoint_ = socket_->bind(opts.listen);
    outbox_.attach(socket_.get());
    const bool insecure = !auth_ && !local_only_endpoint(endpoint_);
    if (insecure) {
      spdlog::warn(
          "INSECURE: listening on {} WITHOUT encryption or authentication (--insecure): "
          "anyone who can reach this port can register as any node and send events",
          endpoint_);
    }
    core_.on_bound(authority_.get(), insecure, clock_.now_ns());
    const RoutingTable& table = core_.routing();
    spdlog::info("broker listening on {} (epoch {:016x}, {} nodes, {} routes, {})", endpoint_,
                 core_.epoch(), table.node_count(), table.route_count(),
                 sec.key ? "CURVE, " + std::to_string(sec.allowlist.size()) + " node keys"
                         : std::string("plaintext"));
    return endpoint_;
  }

  void run() {
    if (!socket_) bind();
    pthread_setname_np(pthread_self(), "ion-broker");  // visible in top -H and perf
    core_.start(clock_.now_ns());
    while (!stop_.load(std::memory_order_acquire)) {
      const int ready = poll_readable(*socket_, wakeup_.fd(), core_.pending() ? 1 : 20);
      if ((ready & 2) != 0) wakeup_.drain();
      // Drain what is readable first, answering clock probes as they are read, so a probe never
      // waits behind the routing of batches that arrived before it. The rest is handled after.
      size_t deferred = 0;
      for (int i = 0; i < kDrainMax; ++i) {  // bounded, so rings flush and timers run under flood
        Pending& m = pending_[deferred];
        if (socket_->recv(m.id) != IoStatus::ok) break;
        m.t_recv = clock_.now_ns();
        if (!m.id.more() || socket_->recv(m.body) != IoStatus::ok) {
          core_.on_malformed();
          continue;
        }
        if (m.body.more()) {  // our protocol is one frame per message
          while (m.body.more() && socket_->recv(m.body) == IoStatus::ok) {
          }
          core_.on_malformed();
          continue;
        }
        m.kind = peek_body(bytes_of(m.body));
        if (m.kind == Body::time_request) {
          handle(m);
          continue;
        }
        ++deferred;
      }
      for (size_t i = 0; i < deferred; ++i) handle(pending_[i]);
      core_.flush();
      core_.tick(clock_.now_ns());
    }
    core_.say_goodbye();
    socket_->close();
  }

  void stop() noexcept {
    stop_.store(true, std::memory_order_release);
    wakeup_.notify();
  }

  [[nodiscard]] AuthStats auth_stats() const noexcept {
    return auth_ ? auth_->stats() : AuthStats{};
  }
  void reload_allowlist() noexcept {
    if (auth_) auth_->request_reload();
  }

  const Clock& clock_;
  std::string endpoint_;
  SocketOutbox outbox_;
  broker_impl::BrokerCore core_;

 private:
  struct Pending {
    Frame id;
    Frame body;
    int64_t t_recv = 0;
    Body kind = Body::none;  // from peek_body, before the message is decoded
  };

  void handle(const Pending& p) noexcept {
    broker_impl::Message m;
    m.routing_id = p.id.to_string_view();
    m.body = bytes_of(p.body);
    m.t_recv_ns = p.t_recv;
    if (auth_) {  // the name ZAP gave this connection's key
      if (const char* u = zmq_msg_gets(p.body.handle(), "User-Id")) m.user = u;
    }
    // Looked up only for a Hello: metadata reads are not free, and only a Hello needs the address.
    if (p.kind == Body::hello) {
      if (const char* peer = zmq_msg_gets(p.body.handle(), "Peer-Address")) m.peer = peer;
    }
    core_.on_message(m);
  }

  zmq::context_t ctx_{1};
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<ZapAuthenticator> auth_;  // CURVE only; destroyed before the socket and context
  std::unique_ptr<ZapAuthority> authority_;
  Wakeup wakeup_;
  std::atomic<bool> stop_{false};
  static constexpr int kDrainMax = 1024;
  std::vector<Pending> pending_ = std::vector<Pending>(kDrainMax);
};

Broker::Broker(BrokerOptions options, const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}
Broker::~Broker() = default;
std::string Broker::bind() {
  return impl_->bind();
}
void Broker::run() {
  impl_->run();
}
void Broker::stop() noexcept {
  impl_->stop();
}
uint64_t Broker::epoch() const noexcept {
  return impl_->core_.epoch();
}
std::string Broker::endpoint() const {
  return impl_->endpoint_;
}
std::vector<BrokerNodeStats> Broker::node_stats() const {
  return impl_->core_.node_stats();
}
std::vector<ConnectionStats> Broker::connection_stats() const {
  return impl_->core_.connection_stats();
}
std::vector<TapStats> Broker::tap_stats() const {
  return impl_->core_.tap_stats();
}
const RejectCounters& Broker::rejects() const noexcept {
  return impl_->core_.rejects();
}
AuthStats Broker::auth_stats() const noexcept {
  return impl_->auth_stats();
}
void Broker::reload_allowlist() noexcept {
  impl_->reload_allowlist();
}
void Broker::status(v1::StatusReply& out, bool include_topology) const {
  impl_->core_.fill_status(out, include_topology);
}
LiveFeed& Broker::live() noexcept {
  return impl_->core_.live();
}
int64_t Broker::network_now_ns() const noexcept {
  return impl_->clock_.now_ns();
}
const RoutingTable& Broker::routing() const noexcept {
  return impl_->core_.routing();
}

BrokerThread::BrokerThread(BrokerOptions options, const Clock& clock)
    : broker_(std::move(options), clock), endpoint_(broker_.bind()) {
  thread_ = std::thread([this] { broker_.run(); });
}
BrokerThread::~BrokerThread() { stop(); }
void BrokerThread::stop() noexcept {
  if (!thread_.joinable()) return;
  broker_.stop();
  thread_.join();
}

}  // namespace ion
