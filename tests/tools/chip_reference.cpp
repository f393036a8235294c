// Prints, as JSON, what the emulated chip does under constant input, with every parameter a
// reference simulator needs to run the same equations: an f–I curve of one nominal neuron (no
// mismatch) and the rates of a core of mismatched neurons under equal input. Read by
// tests/scripts/chip_brian2_reference.py.
//   chip_reference [--cv X] [--seed N] [--duration-s S] [--neurons N] [--equal-input-pa I]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ion/chip/model.h"

namespace {

using ion::chip::ChipModel;
using ion::chip::ChipOptions;
using ion::chip::ChipSpike;
using ion::chip::NeuronParams;

// Rates (Hz) of every neuron of `model`, run from time 0 for duration_s.
std::vector<double> rates(ChipModel& model, double duration_s) {
  std::vector<ChipSpike> spikes;
  model.advance(static_cast<int64_t>(duration_s * 1e9), spikes);
  std::vector<double> r(model.neurons(), 0.0);
  for (const ChipSpike& s : spikes) r[s.neuron] += 1.0 / duration_s;
  return r;
}

void print_params(const NeuronParams& p) {
  std::printf(
      "{\"c_pf\":%.9g,\"g_l_ns\":%.9g,\"e_l_mv\":%.9g,\"v_t_mv\":%.9g,\"delta_t_mv\":%.9g,"
      "\"v_reset_mv\":%.9g,\"v_peak_mv\":%.9g,\"tau_w_ms\":%.9g,\"a_ns\":%.9g,\"b_pa\":%.9g,"
      "\"refractory_ms\":%.9g,\"bias_pa\":%.9g}",
      p.c_pf, p.g_l_ns, p.e_l_mv, p.v_t_mv, p.delta_t_mv, p.v_reset_mv, p.v_peak_mv, p.tau_w_ms,
      p.a_ns, p.b_pa, p.refractory_ms, p.bias_pa);
}

}  // namespace

int main(int argc, char** argv) {
  double cv = 0.10;
  uint64_t seed = 1;
  double duration_s = 2.0;
  uint32_t neurons = 256;
  double equal_input_pa = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--cv") cv = std::atof(v);
    else if (k == "--seed") seed = std::strtoull(v, nullptr, 10);
    else if (k == "--duration-s") duration_s = std::atof(v);
    else if (k == "--neurons") neurons = static_cast<uint32_t>(std::atoi(v));
    else if (k == "--equal-input-pa") equal_input_pa = std::atof(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  // f–I curve: one neuron per current, nominal parameters.
  const std::vector<double> currents = {0, 400, 500, 550, 600, 700, 800, 1000, 1200, 1500, 2000, 3000};
  ChipOptions fi;
  fi.cores = 1;
  fi.neurons_per_core = static_cast<uint32_t>(currents.size());
  fi.mismatch_cv = 0;
  ChipModel fi_model(fi);
  for (uint32_t i = 0; i < currents.size(); ++i) fi_model.set_bias(i, currents[i]);
  const std::vector<double> fi_rates = rates(fi_model, duration_s);

  ChipOptions mm;
  mm.cores = 1;
  mm.neurons_per_core = neurons;
  mm.mismatch_cv = cv;
  mm.seed = seed;
  ChipModel mm_model(mm);
  for (uint32_t i = 0; i < neurons; ++i) mm_model.set_bias(i, equal_input_pa);
  const std::vector<double> mm_rates = rates(mm_model, duration_s);

  std::printf("{\"dt_ms\":%.9g,\"duration_s\":%.9g,\"nominal\":", fi.step_ms, duration_s);
  print_params(fi_model.neuron_params(0));
  std::printf(",\"fi\":[");
  for (size_t i = 0; i < currents.size(); ++i) {
    std::printf("%s{\"bias_pa\":%.9g,\"rate_hz\":%.9g}", i ? "," : "", currents[i], fi_rates[i]);
  }
  std::printf("],\"mismatch\":{\"cv\":%.9g,\"seed\":%llu,\"equal_input_pa\":%.9g,\"neurons\":[", cv,
              static_cast<unsigned long long>(seed), equal_input_pa);
  for (uint32_t i = 0; i < neurons; ++i) {
    std::printf("%s{\"params\":", i ? "," : "");
    print_params(mm_model.neuron_params(i));
    std::printf(",\"rate_hz\":%.9g}", mm_rates[i]);
  }
  std::printf("]}}\n");
  return 0;
}
