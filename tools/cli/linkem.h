#pragma once
// `ion linkem`: the WAN link emulator as a standalone proxy between a node and its broker.
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace ion {

struct LinkemOptions {
  std::string listen = "127.0.0.1:6000";
  std::string connect = "127.0.0.1:5555";
  std::string preset;  // or config
  std::string config;  // YAML file with a `link:` mapping
  uint64_t seed = 1;
  int stats_interval_s = 5;
};

// Runs until `stop` becomes true. Returns 2 on a set-up error.
int run_linkem(const LinkemOptions& options, const std::atomic<bool>& stop, std::ostream& out);

}  // namespace ion
