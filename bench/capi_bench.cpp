// The C++ side of `ion bench python`: the same measurements as bench/python_bench.py, through the
// same C API, so the Python package's figures can be read as ratios to it.
//   capi_bench emit    BROKER NODE SECONDS BATCH  -> events/s emitted (batches of BATCH)
//   capi_bench receive BROKER NODE SECONDS        -> delivery error at the receiver (p50/p99/max)
// Prints one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ion/ion.h"

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "capi_bench: %s: %s\n", what, ion_last_error());
  return 1;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t quantile(std::vector<int64_t> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: capi_bench emit|receive BROKER NODE SECONDS [BATCH]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const double seconds = std::atof(argv[4]);
  const size_t batch = argc > 5 ? static_cast<size_t>(std::atol(argv[5])) : 256;
  ion_node_params p;
  ion_node_params_init(&p, sizeof p);
  p.name = argv[3];
  p.broker = argv[2];
  p.channels = mode == "emit" ? 256 : 0;
  p.ports = mode == "emit" ? 0 : 256;
  ion_node* node = nullptr;
  if (ion_open(&p, sizeof p, &node) != ION_OK) return fail("open");
  if (ion_wait_registered(node, 20000) != ION_OK) return fail("register");
  if (mode == "emit") {
    std::vector<uint32_t> ch(batch);
    std::vector<int64_t> t(batch);
    for (size_t i = 0; i < batch; ++i) ch[i] = static_cast<uint32_t>(i % 256);
    int64_t now = 0;
    ion_network_time_ns(node, &now);
    uint64_t events = 0;
    uint64_t dropping = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0;
    while ((elapsed = seconds_since(t0)) < seconds) {
      for (int k = 0; k < 64; ++k) {
        for (size_t i = 0; i < batch; ++i) t[i] = now + static_cast<int64_t>(events + i);
        const int r = ion_emit(node, ch.data(), t.data(), nullptr, batch, ION_KIND_SPIKE, 0);
        if (r < 0 || r == ION_EMIT_REJECTED) return fail("emit");
        if (r == ION_EMIT_QUEUED_DROPPING_OLDEST) ++dropping;
        events += batch;
      }
    }
    std::printf("{\"mode\":\"emit\",\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f,"
                "\"batches_dropping_oldest\":%llu}\n",
                static_cast<unsigned long long>(events), elapsed,
                static_cast<double>(events) / elapsed, static_cast<unsigned long long>(dropping));
  } else {
    std::vector<int64_t> errors;
    ion_delivery d;
    const auto t0 = std::chrono::steady_clock::now();
    while (seconds_since(t0) < seconds) {
      if (ion_receive(node, &d, sizeof d, 100) != ION_OK) continue;
      int64_t now = 0;
      ion_network_time_ns(node, &now);
      for (size_t i = 0; i < d.count; ++i) errors.push_back(now - (d.times_ns[i] + d.delay_ns));
    }
    ion_stats s;
    ion_get_stats(node, &s, sizeof s);
    std::printf("{\"mode\":\"receive\",\"events\":%zu,\"p50_ns\":%lld,\"p99_ns\":%lld,"
                "\"max_ns\":%lld,\"node_p99_ns\":%lld,\"late\":%llu,\"lost\":%llu}\n",
                errors.size(), static_cast<long long>(quantile(errors, 0.5)),
                static_cast<long long>(quantile(errors, 0.99)),
                static_cast<long long>(errors.empty() ? 0 : *std::max_element(errors.begin(), errors.end())),
                static_cast<long long>(s.delivery_error_p99_ns),
                static_cast<unsigned long long>(s.late), static_cast<unsigned long long>(s.lost));
  }
  ion_close(node);
  return 0;
}
