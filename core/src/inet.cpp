#include "ion/core/inet.h"

#include <arpa/inet.h>

#include <charconv>
#include <stdexcept>

namespace ion {

sockaddr_in parse_ipv4_endpoint(std::string_view text, std::string_view what) {
  auto fail = [&] {
    throw std::runtime_error(std::string(what) + ": '" + std::string(text) +
                             "' needs an IPv4 address and a port (like 127.0.0.1:7020)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) fail();
  const std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    fail();
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

std::string to_string(const sockaddr_in& address) {
  char host[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &address.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(address.sin_port));
}

}  // namespace ion
