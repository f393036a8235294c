#pragma once
// `ion record`: joins a broker as a tap and writes everything it is sent (or the chosen nodes'
// batches) to a recording (docs/record-format.md) until stopped. It never slows the broker: the
// broker copies each accepted batch into the tap's bounded ring (drop-oldest, counted) and the
// recorder counts the gaps it sees. Memory is bounded by the file buffer; records reach the
// kernel every flush interval, so a killed recorder leaves a file that reads back up to then.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "ion/core/security.h"

namespace ion {

struct RecordOptions {
  std::string broker = "tcp://127.0.0.1:5555";
  std::string out;
  // The recorder's name at the broker; empty: default_recorder_name(), unique per process, so
  // two recorders never contend for one name by default.
  std::string name;
  bool replace = false;  // take the name over from a live recorder holding it
  std::vector<std::string> nodes;   // empty: every node
  double duration_s = 0;            // 0: until stopped
  std::chrono::milliseconds status_interval{1000};  // broker status snapshots (clock, counters)
  std::chrono::milliseconds flush_interval{100};
  std::chrono::milliseconds connect_timeout{10000};
  std::optional<CurveClientKeys> curve;  // a CURVE broker: the recorder's keys (its name is the key's)
};

struct RecordSummary {
  uint64_t batches = 0;
  uint64_t events = 0;
  uint64_t bytes = 0;
  uint64_t tap_gap_batches = 0;   // link-sequence gaps: batches the broker dropped for us
  uint64_t status_records = 0;
  uint64_t broker_restarts = 0;
  uint64_t write_errors = 0;
  uint64_t undecodable = 0;
};

// "recorder-HOST-PID".
[[nodiscard]] std::string default_recorder_name();

// Runs until `stop` or the duration; returns the exit status (0 ok, 2 could not start).
int run_record(const RecordOptions& options, const std::atomic<bool>& stop, std::ostream& out,
               RecordSummary* summary = nullptr);

}  // namespace ion
