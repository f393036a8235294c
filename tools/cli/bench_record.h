#pragma once
// `ion bench record`: recording write throughput (events/s into a file), read-back and export
// throughput, and replay timing over an hour of data (the last event's emission against its
// scheduled time).
#include <iosfwd>

namespace ion {

struct RecordBenchOptions {
  bool quick = false;
  bool json = false;
};

int run_bench_record(const RecordBenchOptions& options, std::ostream& out);

}  // namespace ion
