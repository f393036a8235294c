#pragma once
// A userspace WAN impairment proxy: nodes connect to it instead of the broker, and it forwards
// each connection to the broker, applying the profile's delay, jitter, tail, loss, duplication,
// reordering and bandwidth cap per direction, seeded. Needs no root and no kernel support.
#include <cstdint>
#include <memory>
#include <string>

#include "ion/linkem/profile.h"

namespace ion::linkem {

struct DirectionStats {
  uint64_t units = 0;       // greeting, commands and messages forwarded
  uint64_t messages = 0;    // data messages seen
  uint64_t dropped = 0;     // lost and not forwarded
  uint64_t retransmitted = 0;  // lost and delayed by a retransmission
  uint64_t duplicated = 0;
  uint64_t reordered = 0;
  uint64_t bytes = 0;
  int64_t delay_p50_ns = 0;  // applied one-way delay
  int64_t delay_p99_ns = 0;
  int64_t delay_max_ns = 0;
};

struct LinkStats {
  uint64_t connections = 0;
  DirectionStats up;
  DirectionStats down;
};

class LinkEmulator {
 public:
  // Listens on `listen` ("127.0.0.1:0" picks a port) and forwards to `target` ("host:port" or a
  // broker endpoint "tcp://host:port").
  // Throws on a bad address or a port in use.
  LinkEmulator(LinkProfile profile, const std::string& listen, const std::string& target,
               uint64_t seed);
  ~LinkEmulator();
  LinkEmulator(const LinkEmulator&) = delete;
  LinkEmulator& operator=(const LinkEmulator&) = delete;

  [[nodiscard]] uint16_t port() const noexcept;
  // "tcp://127.0.0.1:PORT", for a node's `broker` setting.
  [[nodiscard]] std::string endpoint() const;
  [[nodiscard]] LinkStats stats() const;
  // Closes every forwarded connection (a cut cable); new connections are still accepted.
  void cut();
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ion::linkem
