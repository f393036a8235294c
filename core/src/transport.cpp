#include "ion/core/transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace ion {

namespace {

// The one place where zmq errors become IoStatus.
IoStatus translate(int err) noexcept {
  switch (err) {
    case EAGAIN: return IoStatus::would_block;
    case EHOSTUNREACH: return IoStatus::unreachable;
    case ETERM:
    case ENOTSOCK: return IoStatus::closed;
    default: return IoStatus::error;
  }
}

}  // namespace

const char* to_string(IoStatus s) noexcept {
  switch (s) {
    case IoStatus::ok: return "ok";
    case IoStatus::would_block: return "would_block";
    case IoStatus::unreachable: return "unreachable";
    case IoStatus::closed: return "closed";
    case IoStatus::error: return "error";
  }
  return "unknown";
}

Socket::Socket(zmq::context_t& ctx, Type type, const SocketOptions& o)
    : sock_(ctx, type == Type::router ? zmq::socket_type::router : zmq::socket_type::dealer) {
  sock_.set(zmq::sockopt::sndhwm, o.send_hwm);
  sock_.set(zmq::sockopt::rcvhwm, o.recv_hwm);
  sock_.set(zmq::sockopt::linger, o.linger_ms);
  sock_.set(zmq::sockopt::maxmsgsize, o.max_message_bytes);
  if (o.send_buffer_bytes > 0) sock_.set(zmq::sockopt::sndbuf, o.send_buffer_bytes);
  if (o.heartbeat_interval_ms > 0) {
    // Dead TCP connections are found by the kernel's keepalive, not by ZMTP heartbeats: libzmq
    // 4.3.4 aborts (stream_engine_base.cpp:331, "!_io_error") when a ZMTP heartbeat times out on
    // a connection whose input is held back by a full receive pipe, which a node emitting faster
    // than a busy broker reads causes (zeromq/libzmq#4364). Registered peers' liveness is the
    // application heartbeats' job (Heartbeat messages, broker_timeout, heartbeat_timeout).
    const int idle_s = std::max(1, (o.heartbeat_timeout_ms + 999) / 1000);
    sock_.set(zmq::sockopt::tcp_keepalive, 1);
    sock_.set(zmq::sockopt::tcp_keepalive_idle, idle_s);
    sock_.set(zmq::sockopt::tcp_keepalive_intvl, 1);
    sock_.set(zmq::sockopt::tcp_keepalive_cnt, 3);
  }
  if (!o.curve_server_secret_z85.empty()) {
    sock_.set(zmq::sockopt::curve_server, 1);
    sock_.set(zmq::sockopt::curve_secretkey, o.curve_server_secret_z85);
    sock_.set(zmq::sockopt::zap_domain, "ion");
  } else if (o.curve_client) {
    sock_.set(zmq::sockopt::curve_publickey, o.curve_client->public_z85);
    sock_.set(zmq::sockopt::curve_secretkey, o.curve_client->secret_z85);
    sock_.set(zmq::sockopt::curve_serverkey, o.curve_client->server_public_z85);
  }
  if (type == Type::router) {
    sock_.set(zmq::sockopt::router_mandatory, 1);  // unknown peer -> EHOSTUNREACH, not silence
  } else {
    sock_.set(zmq::sockopt::reconnect_ivl, o.reconnect_interval_ms);
    sock_.set(zmq::sockopt::reconnect_ivl_max, o.reconnect_interval_max_ms);
    sock_.set(zmq::sockopt::immediate, o.immediate ? 1 : 0);
  }
}

std::string Socket::bind(const std::string& endpoint) {
  try {
    sock_.bind(endpoint);
    return sock_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    throw TransportError("cannot listen on '" + endpoint + "': " + e.what());
  }
}

void Socket::connect(const std::string& endpoint) {
  try {
    sock_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw TransportError("cannot connect to '" + endpoint + "': " + e.what());
  }
}

IoStatus Socket::send(std::string_view frame) noexcept {
  if (zmq_send(sock_.handle(), frame.data(), frame.size(), ZMQ_DONTWAIT) < 0) {
    return translate(zmq_errno());
  }
  return IoStatus::ok;
}

IoStatus Socket::send_to(std::string_view routing_id, std::string_view frame) noexcept {
  if (zmq_send(sock_.handle(), routing_id.data(), routing_id.size(), ZMQ_DONTWAIT | ZMQ_SNDMORE) <
      0) {
    return translate(zmq_errno());
  }
  // After the routing frame is accepted the body cannot block (the pipe was checked).
  if (zmq_send(sock_.handle(), frame.data(), frame.size(), ZMQ_DONTWAIT) < 0) {
    return translate(zmq_errno());
  }
  return IoStatus::ok;
}

IoStatus Socket::recv(Frame& frame) noexcept {
  if (zmq_msg_recv(frame.handle(), sock_.handle(), ZMQ_DONTWAIT) < 0) {
    return translate(zmq_errno());
  }
  return IoStatus::ok;
}

int poll_readable(Socket& socket, int extra_fd, int timeout_ms) noexcept {
  zmq_pollitem_t items[2] = {{socket.raw().handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, extra_fd, ZMQ_POLLIN, 0}};
  const int n = zmq_poll(items, extra_fd >= 0 ? 2 : 1, timeout_ms);
  if (n <= 0) return 0;
  int r = 0;
  if ((items[0].revents & ZMQ_POLLIN) != 0) r |= 1;
  if (extra_fd >= 0 && (items[1].revents & ZMQ_POLLIN) != 0) r |= 2;
  return r;
}

HandshakeMonitor::HandshakeMonitor(zmq::context_t& ctx, Socket& socket)
    : watched_(&socket.raw()), pair_(ctx, zmq::socket_type::pair) {
  // A unique name per monitor: many nodes may share a process (the C API, tests).
  static std::atomic<uint64_t> instances{0};
  const std::string ep = "inproc://ion-handshake-" + std::to_string(instances.fetch_add(1));
  const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(watched_->handle(), ep.c_str(), events) != 0) {
    throw TransportError(std::string("cannot monitor the connection's handshakes: ") +
                         zmq_strerror(zmq_errno()));
  }
  pair_.set(zmq::sockopt::linger, 0);
  pair_.connect(ep);
}

HandshakeMonitor::~HandshakeMonitor() { stop(); }

void HandshakeMonitor::stop() noexcept {
  if (watched_ == nullptr) return;
  if (watched_->handle() != nullptr) (void)zmq_socket_monitor(watched_->handle(), nullptr, 0);
  watched_ = nullptr;
  pair_.close();
}

std::optional<HandshakeFailure> HandshakeMonitor::poll(bool& succeeded) noexcept {
  succeeded = false;
  std::optional<HandshakeFailure> last;
  if (watched_ == nullptr) return last;
  for (int i = 0; i < 64; ++i) {  // bounded: a peer cannot keep the caller here
    zmq::message_t head;
    zmq::message_t addr;
    try {
      if (!pair_.recv(head, zmq::recv_flags::dontwait)) break;
      if (head.more()) (void)pair_.recv(addr, zmq::recv_flags::dontwait);  // the peer's address
    } catch (const zmq::error_t&) {
      break;
    }
    if (head.size() < 6) continue;
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    HandshakeFailure f;
    f.detail = value;
    switch (event) {
      case ZMQ_EVENT_CONNECTED:
        connected_ = true;
        up_ = true;
        continue;
      case ZMQ_EVENT_DISCONNECTED:
        ++disconnects_;
        up_ = false;
        continue;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        succeeded = true;
        last.reset();
        continue;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: f.kind = HandshakeFailure::Kind::refused; break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        f.kind = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                     ? HandshakeFailure::Kind::mechanism_mismatch
                 : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC ? HandshakeFailure::Kind::crypto
                                                                  : HandshakeFailure::Kind::other;
        break;
      default: f.kind = HandshakeFailure::Kind::other; break;
    }
    succeeded = false;
    last = f;
  }
  return last;
}

std::string endpoint_problem(std::string_view ep) {
  const std::string e(ep);
  if (ep.empty()) return "empty: write tcp://HOST:PORT";
  if (ep.starts_with("ipc://") || ep.starts_with("inproc://")) {
    return ep.size() > (ep[0] == 'i' && ep[1] == 'p' ? 6u : 9u) ? "" : "'" + e + "' names no path";
  }
  if (!ep.starts_with("tcp://")) {
    if (ep.find("://") != std::string_view::npos) {
      return "'" + e + "': unknown scheme (tcp://HOST:PORT, ipc://PATH or inproc://NAME)";
    }
    return "'" + e + "' has no scheme: write tcp://" + e;
  }
  const std::string_view hp = ep.substr(6);
  const auto colon = hp.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == hp.size()) {
    return "'" + e + "' needs a host and a port: tcp://HOST:PORT";
  }
  for (const char c : hp.substr(colon + 1)) {
    if (c < '0' || c > '9') return "'" + e + "': the port must be a number (tcp://HOST:PORT)";
  }
  return "";
}

Wakeup::Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw TransportError(std::string("eventfd: ") + std::strerror(errno));
}

Wakeup::~Wakeup() { ::close(fd_); }

void Wakeup::notify() noexcept {
  const uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
}

void Wakeup::drain() noexcept {
  uint64_t v = 0;
  [[maybe_unused]] const auto n = ::read(fd_, &v, sizeof v);
}

}  // namespace ion
