#pragma once
// `ion bench mea`: spike-detection throughput and real-time factors, emulator cost, and
// detection quality against the emulated culture's ground truth.
#include <iosfwd>

namespace ion {

struct MeaBenchOptions {
  bool quick = false;
  bool json = false;
};

int run_bench_mea(const MeaBenchOptions& options, std::ostream& out);

}  // namespace ion
