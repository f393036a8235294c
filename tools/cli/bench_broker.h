#pragma once
// `ion bench broker`: IoN's broker against a raw ZeroMQ forwarder in the same run on the same
// machine — throughput for batches of 1, 16 and 256 events, one-way latency at fixed offered
// loads, and the ratio IoN/baseline for each.
#include <iosfwd>

namespace ion {

struct BrokerBenchOptions {
  bool quick = false;
  bool json = false;
  bool throughput_only = false;  // skip the latency runs (for profiling the routing path)
  double soak_s = 0;  // > 0: instead, route 1 M events/s for this long and report RSS growth
  // > 0: instead, routing throughput with and without this many dashboard clients on /api/live
  int dashboard_clients = 0;
};

int run_bench_broker(const BrokerBenchOptions& options, std::ostream& out);

}  // namespace ion
