#pragma once
// `ion bench chip`: neuron updates per second of the emulated chip on one core and its real-time
// factor for 4 cores × 256 neurons at a 0.1 ms step under 10 Hz Poisson input per synapse, plus
// the address-event codec's speed.
#include <iosfwd>

namespace ion {

struct ChipBenchOptions {
  bool quick = false;
  bool json = false;
};

int run_bench_chip(const ChipBenchOptions& options, std::ostream& out);

}  // namespace ion
