#pragma once
// `ion status`: asks a running broker for its per-node counters and prints them.
#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>

#include "ion/core/security.h"

namespace ion {

struct StatusOptions {
  std::string broker = "tcp://127.0.0.1:5555";
  std::chrono::milliseconds timeout{3000};
  bool json = false;
  std::optional<CurveClientKeys> curve;  // a CURVE broker: this peer's keys and the broker's
};

// Returns 0 on a reply, 2 when the broker did not answer within the timeout.
int run_status(const StatusOptions& options, std::ostream& out);

}  // namespace ion
