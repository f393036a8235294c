#pragma once
// An Emitter for driver unit tests: records what a driver transmits on stream 0; network time is
// the steady clock.
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "ion/core/clock.h"
#include "ion/core/driver.h"

namespace ion::test {

class RecordingEmitter final : public Emitter {
 public:
  EmitStatus emit(const EventBatch& b) noexcept override {
    std::lock_guard lock(mu);
    for (size_t i = 0; i < b.size(); ++i) {
      if (b.stream == 0) transmitted.push_back({b.channels[i], b.times_ns[i]});
    }
    return EmitStatus::queued;
  }
  [[nodiscard]] int64_t local_now_ns() const noexcept override { return SteadyClock::instance().now_ns(); }
  [[nodiscard]] int64_t to_network_ns(int64_t local_ns) const noexcept override { return local_ns; }
  std::mutex mu;
  std::vector<std::pair<uint32_t, int64_t>> transmitted;
};

}  // namespace ion::test
