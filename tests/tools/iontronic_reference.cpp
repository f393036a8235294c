// Prints, as JSON, what one emulated iontronic neuron does under constant currents, with every
// parameter a reference integrator needs to run the same equations: spike times, the membrane's
// extremes in the second half of the run, and its final value. Read by
// tests/scripts/iontronic_scipy_reference.py.
//   iontronic_reference [--preset NAME] [--duration-s S]
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "ion/chip/model.h"

int main(int argc, char** argv) {
  std::string preset = "iontronic-ms";
  double duration_s = 1.5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view k = argv[i];
    if (k == "--preset") {
      preset = argv[i + 1];
    } else if (k == "--duration-s") {
      duration_s = std::stod(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  ion::chip::ChipOptions base;
  base.apply_iontronic_preset(preset);
  const ion::chip::IontronicParams& q = base.iontronic;
  const ion::chip::TimeBase& tb = base.time_base;
  std::printf("{\"preset\":\"%s\",\"c\":%.12g,\"e_na\":%.12g,\"e_k\":%.12g,\"v0\":%.12g,\"alpha\":%.12g,"
              "\"g0\":%.12g,\"g1_na\":%.12g,\"g1_k\":%.12g,\"tau_na\":%.12g,\"tau_k\":%.12g,"
              "\"v_spike\":%.12g,\"time_scale\":%.12g,\"unit_s\":%.12g,\"step_ms\":%.12g,\"duration_s\":%.12g,"
              "\"runs\":[",
              preset.c_str(), q.c, q.e_na, q.e_k, q.v0, q.alpha, q.g0, q.g1_na, q.g1_k, q.tau_na,
              q.tau_k, q.v_spike, tb.time_scale, tb.unit_s, base.step_ms, duration_s);
  const double unit = q.g0 / 0.01 * q.e_na;  // the normalised current unit, g_unit * E
  const std::vector<double> currents = {0.0, 0.005, 0.02, 0.05, 0.1};
  for (size_t r = 0; r < currents.size(); ++r) {
    ion::chip::ChipOptions o = base;
    o.cores = 1;
    o.neurons_per_core = 1;
    o.mismatch_cv = 0;
    o.iontronic.bias = currents[r] * unit;
    ion::chip::ChipModel m(o);
    std::vector<ion::chip::ChipSpike> out;
    double vmax = -1e300, vmin = 1e300;
    const auto end_ns = static_cast<int64_t>(duration_s * 1e9);
    for (int64_t t = 0; t < end_ns; t += m.step_ns()) {
      m.advance(t + m.step_ns(), out);
      if (t >= end_ns / 2) {
        vmax = std::max(vmax, m.membrane_mv(0));
        vmin = std::min(vmin, m.membrane_mv(0));
      }
    }
    std::printf("%s{\"current\":%.12g,\"bias\":%.12g,\"v_max\":%.9g,\"v_min\":%.9g,\"v_end\":%.9g,\"spikes_s\":[",
                r ? "," : "", currents[r], o.iontronic.bias, vmax, vmin, m.membrane_mv(0));
    for (size_t k = 0; k < out.size(); ++k) std::printf("%s%.9g", k ? "," : "", static_cast<double>(out[k].time_ns) * 1e-9);
    std::printf("]}");
  }
  std::printf("]}\n");
  return 0;
}
