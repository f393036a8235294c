#pragma once
// Where an MEA node's raw voltage comes from. Every source produces int16 frames (all channels of
// one sample, interleaved) numbered by a sample counter; the driver turns sample numbers into
// network time and runs the detector on them.
#include <chrono>
#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace ion::mea {

struct SignalFormat {
  uint32_t channels = 0;
  double sample_rate_hz = 0;
  double uv_per_bit = 1.0;
  double offset_bits = 0;  // ADC value of 0 V
};

struct ReadResult {
  size_t frames = 0;          // frames written; 0 with `end` false means nothing yet
  uint64_t first_sample = 0;  // sample number of the first frame
  bool end = false;           // the source has no more data (end of file, stopped)
};

// A stimulation pulse on one electrode at a sample: biphasic, `amplitude_mv` per phase,
// `width_us` per phase.
struct StimCommand {
  uint32_t electrode = 0;
  uint64_t sample = 0;
  float amplitude_mv = 0;
  uint32_t width_us = 0;
};

enum class StimResult : uint8_t { applied, unsupported, out_of_range };

class SignalSource {
 public:
  virtual ~SignalSource() = default;
  [[nodiscard]] virtual SignalFormat format() const = 0;
  // True when the node paces reads by its own clock (emulator, file); false when the device
  // delivers frames at its own pace (live stream), stamped by arrival.
  [[nodiscard]] virtual bool paced() const noexcept = 0;
  // Reads up to out.size()/channels frames; a live source waits at most `timeout` for data.
  virtual ReadResult read(std::span<int16_t> out, std::chrono::milliseconds timeout) noexcept = 0;
  // Schedules a stimulation; the source applies it when it produces that sample.
  virtual StimResult stimulate(const StimCommand& /*command*/) noexcept {
    return StimResult::unsupported;
  }
  virtual void stop() noexcept {}
  [[nodiscard]] virtual std::map<std::string, int64_t> counters() const { return {}; }
};

}  // namespace ion::mea
