#pragma once
// ZeroMQ (through cppzmq) behind one small seam. zmq errors are translated to IoStatus in exactly
// one place (transport.cpp); the data path never throws. Set-up failures (bad endpoint, port in
// use) throw TransportError with the endpoint and zmq's reason.
#include <zmq.hpp>

#include "ion/core/handshake.h"
#include "ion/core/security.h"

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace ion {

class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class IoStatus : uint8_t {
  ok,
  would_block,  // high-water mark reached, or nothing to read: the caller counts and moves on
  unreachable,  // ROUTER: no connected peer with that routing id
  closed,       // context terminated
  error,
};
[[nodiscard]] const char* to_string(IoStatus s) noexcept;

struct SocketOptions {
  int send_hwm = 1000;  // frames queued per peer before sends would block
  int recv_hwm = 1000;
  int linger_ms = 0;  // never hang on close
  int64_t max_message_bytes = 1 << 20;  // larger inbound frames make zmq drop the connection
  // Dead-connection detection (TCP keepalive: idle heartbeat_timeout, then 3 probes 1 s apart);
  // 0 = off. Not ZMTP heartbeats: see transport.cpp.
  int heartbeat_interval_ms = 0;
  int heartbeat_timeout_ms = 0;
  int reconnect_interval_ms = 100;
  int reconnect_interval_max_ms = 5000;
  bool immediate = true;  // queue only to completed connections: no silent buffering while down
  int send_buffer_bytes = 0;  // kernel SO_SNDBUF per connection; 0 = system default (autotuned)
  // CURVE: a server's secret key (Z85; its ZAP handler must be installed before it binds), or a
  // client's keys. Neither: plaintext.
  std::string curve_server_secret_z85;
  std::optional<CurveClientKeys> curve_client;
};

using Frame = zmq::message_t;

[[nodiscard]] inline std::span<const uint8_t> bytes_of(const Frame& f) noexcept {
  return {static_cast<const uint8_t*>(f.data()), f.size()};
}

class Socket {
 public:
  enum class Type : uint8_t { router, dealer };
  Socket(zmq::context_t& ctx, Type type, const SocketOptions& options);

  // Binds and returns the resolved endpoint ("tcp://127.0.0.1:*" gets its port filled in).
  std::string bind(const std::string& endpoint);
  void connect(const std::string& endpoint);

  [[nodiscard]] IoStatus send(std::string_view frame) noexcept;
  // ROUTER: sends [routing_id, frame]; an unknown or disconnected peer is `unreachable`.
  [[nodiscard]] IoStatus send_to(std::string_view routing_id, std::string_view frame) noexcept;
  // Non-blocking receive of one part.
  [[nodiscard]] IoStatus recv(Frame& frame) noexcept;

  [[nodiscard]] zmq::socket_t& raw() noexcept { return sock_; }
  void close() noexcept { sock_.close(); }

 private:
  zmq::socket_t sock_;
};

// Watches a client socket's handshakes through a zmq socket monitor on an inproc pair. Owned by
// the socket's thread; stop() before the socket closes.
class HandshakeMonitor {
 public:
  // Throws TransportError if the socket cannot be monitored.
  HandshakeMonitor(zmq::context_t& ctx, Socket& socket);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;
  // Non-blocking: the last handshake failure among the events pending; `succeeded` is set when a
  // handshake succeeded after it (the failure is then history, not the current state).
  [[nodiscard]] std::optional<HandshakeFailure> poll(bool& succeeded) noexcept;
  // Whether a TCP (or ipc) connection was ever made, as of the last poll: tells "nothing is
  // listening there" from "something answered but not as a broker".
  [[nodiscard]] bool ever_connected() const noexcept { return connected_; }
  // Whether a connection is up now (connected, and not dropped since), as of the last poll.
  [[nodiscard]] bool connected_now() const noexcept { return up_; }
  // Connections that dropped since the last call, as of the last poll: a peer that went away (a
  // broker killed) and may come back as another process that does not know this client.
  [[nodiscard]] uint32_t take_disconnects() noexcept { return std::exchange(disconnects_, 0); }
  void stop() noexcept;

 private:
  zmq::socket_t* watched_;
  zmq::socket_t pair_;
  bool connected_ = false;
  bool up_ = false;
  uint32_t disconnects_ = 0;
};

// Empty when `endpoint` has a form a client can connect to (tcp://HOST:PORT, ipc://PATH,
// inproc://NAME); else a one-line reason with the fix ("127.0.0.1:5555" has no scheme).
[[nodiscard]] std::string endpoint_problem(std::string_view endpoint);

// Asks the server at `endpoint` (tcp://HOST:PORT or ipc://PATH) which security mechanism it
// greets with, over a short connection of its own that ends before the mechanism exchange:
// "NULL", "PLAIN" or "CURVE"; nullopt if nothing answered with a ZMTP 3 greeting within
// `timeout` (nothing listening, a relay whose far side is down, not ZeroMQ). Why: a server whose
// security differs from the client's may reset the connection before the client has read the
// server's greeting, and the client then only sees a reset. Blocks for at most `timeout`.
[[nodiscard]] std::optional<std::string> greeting_mechanism(std::string_view endpoint,
                                                             int timeout_ms) noexcept;

// Waits until the socket is readable, `extra_fd` (if >= 0) is readable, or the timeout passes.
// Returns bit 0 set for the socket, bit 1 for the fd; 0 on timeout or error.
int poll_readable(Socket& socket, int extra_fd, int timeout_ms) noexcept;

// A wake-up signal usable from any thread and pollable as an fd (Linux eventfd).
class Wakeup {
 public:
  Wakeup();
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  void notify() noexcept;
  void drain() noexcept;
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace ion
