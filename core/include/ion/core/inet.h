#pragma once
// "a.b.c.d:port" <-> sockaddr_in, for the device links (TCP frame streams, UDP address events).
#include <netinet/in.h>

#include <string>
#include <string_view>

namespace ion {

// Throws std::runtime_error "<what>: '<text>' needs an IPv4 address and a port" on bad text.
[[nodiscard]] sockaddr_in parse_ipv4_endpoint(std::string_view text, std::string_view what);
[[nodiscard]] std::string to_string(const sockaddr_in& address);

}  // namespace ion
