// greeting_mechanism: reads the security mechanism from a ZMTP 3 server's greeting (RFC 23/ZMTP:
// signature 0xFF, 8 bytes of padding, 0x7F; major and minor version; the mechanism's name in 20
// bytes, NUL-padded; as-server; filler). The server sends its greeting's tail as soon as it has
// the client's signature and major version, so the probe sends those 11 bytes only and never
// names a mechanism: the server has nothing to refuse and sees an ordinary closed connection.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "ion/core/transport.h"

namespace ion {
namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

int ms_left(Clock::time_point deadline) noexcept {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) noexcept {
  pollfd p{fd, events, 0};
  for (;;) {
    const int rc = ::poll(&p, 1, ms_left(deadline));
    if (rc > 0) return true;
    if (rc == 0 || errno != EINTR) return false;
  }
}

// A non-blocking socket connected (or connecting) to `endpoint`; -1 if it has no usable form.
int connect_to(std::string_view endpoint) noexcept {
  if (endpoint.starts_with("ipc://")) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string_view path = endpoint.substr(6);
    if (path.empty() || path.size() >= sizeof a.sun_path) return -1;
    std::memcpy(a.sun_path, path.data(), path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  if (!endpoint.starts_with("tcp://")) return -1;
  const std::string_view hp = endpoint.substr(6);
  const size_t colon = hp.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return -1;
  std::string host(hp.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port(hp.substr(colon + 1));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

}  // namespace

std::optional<std::string> greeting_mechanism(std::string_view endpoint, int timeout_ms) noexcept {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const Fd fd(connect_to(endpoint));
  if (fd.get() < 0) return std::nullopt;
  if (!wait_for(fd.get(), POLLOUT, deadline)) return std::nullopt;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return std::nullopt;
  // Signature (the padding's last byte 1, as libzmq sends it) and major version 3.
  constexpr std::array<uint8_t, 11> kHello = {0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3};
  if (::send(fd.get(), kHello.data(), kHello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kHello.size())) {
    return std::nullopt;
  }
  std::array<uint8_t, 32> g{};  // up to the end of the mechanism's name
  size_t got = 0;
  while (got < g.size()) {
    if (!wait_for(fd.get(), POLLIN, deadline)) return std::nullopt;
    const ssize_t n = ::recv(fd.get(), g.data() + got, g.size() - got, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return std::nullopt;
    got += static_cast<size_t>(n);
  }
  if (g[0] != 0xFF || g[9] != 0x7F || g[10] < 3) return std::nullopt;  // not a ZMTP 3 server
  std::string mechanism;
  for (size_t i = 12; i < 32 && g[i] != 0; ++i) {
    if (g[i] < 0x20 || g[i] > 0x7E) return std::nullopt;
    mechanism.push_back(static_cast<char>(g[i]));
  }
  if (mechanism.empty()) return std::nullopt;
  return mechanism;
}

}  // namespace ion
