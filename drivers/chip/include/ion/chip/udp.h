#pragma once
// One bound UDP socket for address events: receive with a timeout (woken early by wake()),
// send to any address. Datagrams longer than the buffer report their true length, so the caller
// can count them as oversized instead of decoding a cut copy.
#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

namespace ion::chip {

class UdpEndpoint {
 public:
  explicit UdpEndpoint(std::string_view listen);  // "a.b.c.d:port" (port 0: any); throws
  ~UdpEndpoint();
  UdpEndpoint(const UdpEndpoint&) = delete;
  UdpEndpoint& operator=(const UdpEndpoint&) = delete;

  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  // Length of the datagram (possibly more than buffer.size(): only buffer.size() bytes were kept),
  // or −1 when nothing came within the timeout or wake() was called.
  long receive(std::span<uint8_t> buffer, sockaddr_in& from, std::chrono::milliseconds timeout) noexcept;
  bool send_to(std::span<const uint8_t> bytes, const sockaddr_in& to) noexcept;
  void wake() noexcept;

 private:
  int fd_ = -1;
  int wake_fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace ion::chip
