#include "ion/chip/udp.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "ion/core/inet.h"

namespace ion::chip {

UdpEndpoint::UdpEndpoint(std::string_view listen) {
  sockaddr_in addr = parse_ipv4_endpoint(listen, "udp: listen");
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("udp: cannot bind " + std::string(listen) + ": " + why);
  }
  const int buffer_bytes = 4 << 20;  // bursts of a chip's output must not overflow the kernel queue
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

UdpEndpoint::~UdpEndpoint() {
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

long UdpEndpoint::receive(std::span<uint8_t> buffer, sockaddr_in& from,
                          std::chrono::milliseconds timeout) noexcept {
  while (true) {
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n >= 0) return static_cast<long>(n);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int r = ::poll(fds, 2, static_cast<int>(timeout.count()));
    if (r <= 0) return -1;
    if ((fds[1].revents & POLLIN) != 0) {
      uint64_t v = 0;
      [[maybe_unused]] const ssize_t ignored = ::read(wake_fd_, &v, sizeof v);
      return -1;
    }
  }
}

bool UdpEndpoint::send_to(std::span<const uint8_t> bytes, const sockaddr_in& to) noexcept {
  const ssize_t n = ::sendto(fd_, bytes.data(), bytes.size(), 0,
                             reinterpret_cast<const sockaddr*>(&to), sizeof to);
  return n == static_cast<ssize_t>(bytes.size());
}

void UdpEndpoint::wake() noexcept {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
}

}  // namespace ion::chip
