#pragma once
// `ion bench timing`: the timing figures of issue 3, measured on loopback in one run.
#include <iosfwd>

namespace ion {

struct TimingBenchOptions {
  bool quick = false;  // shorter runs (CI smoke); figures are noisier
  bool json = false;   // last line: one JSON object
};

int run_bench_timing(const TimingBenchOptions& options, std::ostream& out);

}  // namespace ion
