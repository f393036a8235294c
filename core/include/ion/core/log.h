#pragma once
// Logging: spdlog, plus a limiter so that a flood of bad input costs one line per interval.
#include <cstdint>

namespace ion {

// Sets the default spdlog logger's level from a name ("trace" .. "off"); returns false if unknown.
bool set_log_level(const char* level) noexcept;

// Allows one log line per interval and counts what it suppressed in between.
class LogLimiter {
 public:
  LogLimiter() noexcept = default;
  explicit LogLimiter(int64_t interval_ns) noexcept : interval_ns_(interval_ns) {}
  // True when a line may be written now; `suppressed` then holds how many were skipped.
  bool allow(int64_t now_ns, uint64_t& suppressed) noexcept {
    if (last_ns_ != INT64_MIN && now_ns - last_ns_ < interval_ns_) {
      ++suppressed_;
      return false;
    }
    last_ns_ = now_ns;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  int64_t interval_ns_ = 1'000'000'000;
  int64_t last_ns_ = INT64_MIN;
  uint64_t suppressed_ = 0;
};

}  // namespace ion
