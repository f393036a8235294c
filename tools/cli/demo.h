#pragma once
// `ion demo`: the three-lab network of the 2017-2020 experiment emulated on one machine — the
// broker (at the Southampton hub), Padova's MEA culture, Zurich's silicon neurons and
// Southampton's memristive synapses, each lab behind a link emulator with its site's latency,
// and a recorder — with a live summary, a check of the promises, the recording and an HTML
// report. `--topology minimal` runs the smallest network (a generator lab and a sink lab).
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace ion {

struct DemoOptions {
  double duration_s = 30.0;
  std::string topology = "three-lab";  // three-lab | large | minimal | a folder of configs
  std::string out_dir;                 // default: ./ion-demo-YYYYMMDD-HHMMSS
  std::string configs_dir;             // default: the project's configs/ next to the binary
  bool emulated_wan = true;
  bool plaintext = false;
  std::string http;                    // HOST:PORT: serve the broker's dashboard there while it runs              // three-lab: without CURVE (keys are made for each run)
  bool json = false;                   // last line printed is one JSON object
  // --topology minimal only.
  uint32_t channels = 16;
  double rate_hz = 50.0;  // per channel
  uint64_t seed = 1;
  std::chrono::milliseconds delay{20};
};

// Runs the demo, printing a live summary and a final table to `out`. Returns the exit status:
// 0 when every promise held, 1 when one was broken, 2 when the network could not be brought up.
int run_demo(const DemoOptions& options, std::ostream& out);

// The folder holding the shipped configs: $ION_CONFIGS, else configs/ of the source tree the
// binary was built in, else <prefix>/share/ion/configs, else ./configs.
std::string find_configs_dir();

}  // namespace ion
