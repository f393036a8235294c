#pragma once
// `ion record` in-process, for tests that record beside a live network (links ion_tools).
#include <atomic>
#include <sstream>
#include <string>
#include <thread>

#include "cli/record.h"

namespace ion::test {

// Runs `ion record` in-process until stopped.
class RecorderRunner {
 public:
  explicit RecorderRunner(RecordOptions o) {
    thread_ = std::thread([this, o] { rc_ = run_record(o, stop_, log_, &summary_); });
  }
  ~RecorderRunner() { stop(); }
  RecordSummary stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return summary_;
  }
  // Until the recorder ends by itself (refused, or its duration is up); its exit status.
  int wait() {
    if (thread_.joinable()) thread_.join();
    return rc_;
  }
  int rc() const { return rc_; }
  std::string log() const { return log_.str(); }

 private:
  std::atomic<bool> stop_{false};
  std::ostringstream log_;
  RecordSummary summary_;
  int rc_ = -1;
  std::thread thread_;
};

}  // namespace ion::test
