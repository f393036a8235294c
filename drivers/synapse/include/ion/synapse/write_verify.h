#pragma once
// Programming cells to target resistances through an instrument, write-verify style: read, and
// while the reading is outside the tolerance, pulse towards the target with an amplitude that
// rises by a step per pulse (incremental step pulse programming); each overshoot reverses the
// polarity, restarts the ramp and halves the pulse width, so the steps shrink near the target.
// Synchronous: for start-up and offline programming (`ion connectome paste`), never the data
// path. Works on any Instrument (the emulated crossbar, or a real one over the line protocol).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ion/synapse/instrument.h"

namespace ion::synapse {

// An instrument driven one operation at a time. Its owner starts it and hands each completion
// to on_result() while programming; run() submits and waits.
class SyncInstrument {
 public:
  explicit SyncInstrument(Instrument& instrument) : instrument_(instrument) {}
  SyncInstrument(const SyncInstrument&) = delete;
  SyncInstrument& operator=(const SyncInstrument&) = delete;
  void on_result(const InstrumentResult& r);
  // The result, or nullopt if the queue refused it or no completion came within `timeout`.
  std::optional<InstrumentResult> run(const InstrumentOp& op, std::chrono::milliseconds timeout);

 private:
  Instrument& instrument_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<InstrumentResult> result_;
};

struct WriteVerifyOptions {
  double tolerance_ohm = 100;  // done when |reading - target| <= this
  uint32_t max_pulses = 300;   // per cell; then the cell is reported as failed
  double v_start = 1.0;        // V: the ramp's first amplitude (below threshold is harmless)
  double v_step = 0.1;         // V per pulse
  double v_max = 5.0;          // V: never above (the board's safety limit)
  double width_s = 100e-6;     // the first pulses' width
  double min_width_s = 1e-6;   // halving stops here
  bool positive_raises_r = true;  // the polarity convention of the device (TiOx: + resets)
  std::chrono::milliseconds op_timeout{5000};
  // Throws std::invalid_argument naming the option.
  void validate() const;
};

struct ProgramTarget {
  CellAddress cell;
  double target_ohm = 0;
};

struct ProgramResult {
  CellAddress cell;
  double target_ohm = 0;
  double reached_ohm = 0;  // the last reading
  uint32_t pulses = 0;
  bool ok = false;
  std::string why;  // when not ok: "not reached in 300 pulses", "instrument did not answer"
};

// Programs each target in turn; stops early (the rest reported "cancelled") when `cancel` is set.
std::vector<ProgramResult> write_verify(SyncInstrument& instrument, const std::vector<ProgramTarget>& targets,
                                        const WriteVerifyOptions& options,
                                        const std::atomic<bool>* cancel = nullptr);

}  // namespace ion::synapse
