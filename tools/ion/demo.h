#pragma once
// `ion demo`: the network emulated on one machine. For now: broker + generator lab + sink lab.
#include <chrono>
#include <cstdint>
#include <iosfwd>

namespace ion {

struct DemoOptions {
  double duration_s = 5.0;
  uint32_t channels = 16;
  double rate_hz = 50.0;  // per channel
  uint64_t seed = 1;
  std::chrono::milliseconds delay{20};
  bool json = false;      // last line printed is one JSON object
};

// Runs the demo, printing a live summary and a final table to `out`. Returns the exit status:
// 0 when every emitted event is accounted for (received or counted lost) with no duplicate and no
// disorder, 1 when a promise was broken, 2 when the network could not be brought up.
int run_demo(const DemoOptions& options, std::ostream& out);

}  // namespace ion
