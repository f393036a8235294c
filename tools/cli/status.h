#pragma once
// `ion status`: asks a running broker for its counters and prints them as a table or JSON (the
// same JSON as the broker's /api/status), once or every interval (--watch).
#include <atomic>
#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>

#include "ion/core/security.h"

namespace ion {
namespace v1 {
class StatusReply;
}

struct StatusOptions {
  std::string broker = "tcp://127.0.0.1:5555";
  std::chrono::milliseconds timeout{3000};
  bool json = false;
  bool watch = false;                       // ask again every interval until stopped
  std::chrono::milliseconds interval{1000};
  std::optional<CurveClientKeys> curve;  // a CURVE broker: this peer's keys and the broker's
};

// One answer from the broker at `broker`, or nullopt with `why` saying what went wrong (nothing
// listening, a plaintext/CURVE mismatch, a key not on the allowlist, not an IoN broker).
std::optional<v1::StatusReply> fetch_status(const std::string& broker,
                                            const std::optional<CurveClientKeys>& curve,
                                            std::chrono::milliseconds timeout, std::string& why);

// Returns 0 on a reply (with --watch: when `stop` is set), 2 when the broker did not answer
// within the timeout.
int run_status(const StatusOptions& options, std::ostream& out,
               const std::atomic<bool>* stop = nullptr);

}  // namespace ion
