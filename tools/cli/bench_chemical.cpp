// `ion bench chemical`: the chemically mediated neuron's sensor calibration (slope and R^2 at 1,
// 10, 100, 1000 and 1500 uM), its release band, the dose that makes it fire before and after
// repeated exposures, the distal-reward experiment on the synapse board's reward rule with and
// without network latency, and the model's cost (docs/devices/chemical.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <vector>

#include "cli/command.h"
#include "ion/chemical/model.h"
#include "ion/synapse/distal_reward.h"

namespace ion {
namespace {

constexpr int64_t kS = 1'000'000'000;

struct ChemicalBenchOptions {
  bool json = false;
  uint64_t seed = 1;
};

int run_bench_chemical(const ChemicalBenchOptions& o, std::ostream& out) {
  using chemical::ChemicalNeuron;
  using chemical::ChemicalParams;
  char line[512];
  // Calibration through the whole sensor (lag, correlated noise, background), after 5 x t90.
  ChemicalParams cal;
  cal.seed = o.seed;
  const chemical::Calibration c = chemical::calibrate(cal, {1, 10, 100, 1000, 1500});
  const double slope = c.slope_na_per_um;
  const double r2 = c.r2;
  const double slope_error = slope / cal.sensor.slope_na_per_um() - 1.0;
  out << "ion bench chemical: the chemically mediated neuron (stand-in parameters: docs/devices/chemical.md)\n";
  std::snprintf(line, sizeof line,
                "  sensor: slope %.3f nA/uM against %.3f configured (error %+.2f %%), R^2 %.5f over 1-1500 uM\n",
                slope, cal.sensor.slope_na_per_um(), 100 * slope_error, r2);
  out << line;

  // Release band: a minute at each temperature.
  out << "  hydrogel release in a minute (nmol of 10):";
  std::vector<double> band;
  for (const double t_c : {37.0, 37.5, 38.0, 40.0, 42.0, 45.0}) {
    ChemicalParams p = cal;
    p.dish.tau_clear_s = 1e6;
    p.memristor.v_th = 1e6;  // the heater driven by the command alone
    p.release.command_heat_s = 600;
    p.release.command_power_w = std::max(0.0, (t_c - p.release.t_ambient_c) / p.release.r_th_k_per_w);
    ChemicalNeuron m(p);
    m.command_release(0);
    std::vector<chemical::ChemicalEvent> ev;
    m.advance(60 * kS, ev);
    const double at = m.state().released_nmol;
    m.advance(120 * kS, ev);
    band.push_back(m.state().released_nmol - at);
    std::snprintf(line, sizeof line, " %.1f C %.3f%s", t_c, band.back(), t_c < 45 ? "," : "\n");
    out << line;
  }

  // The dose that makes it fire, fresh and after five exposures of 40 uM.
  ChemicalParams dp;
  dp.seed = o.seed;
  dp.release.load_nmol = 0;
  dp.dish.pc12_rate_max_hz = 0;
  ChemicalNeuron neuron(dp);
  std::vector<double> doses = {chemical::dose_to_fire(neuron)};
  std::vector<chemical::ChemicalEvent> ev;
  for (int k = 0; k < 5; ++k) {
    neuron.add_dopamine(40 * dp.dish.volume_ml, neuron.now_ns());
    neuron.advance(neuron.now_ns() + 300 * kS, ev);
    doses.push_back(chemical::dose_to_fire(neuron));
  }
  out << "  dose that makes it fire (uM), fresh then after each of 5 exposures:";
  for (size_t i = 0; i < doses.size(); ++i) {
    std::snprintf(line, sizeof line, " %.1f%s", doses[i], i + 1 < doses.size() ? "," : "\n");
    out << line;
  }

  // Distal reward on the synapse board's reward rule.
  synapse::DistalRewardProtocol dr;
  dr.seed = o.seed;
  const auto t0 = std::chrono::steady_clock::now();
  const synapse::DistalRewardResult direct = synapse::run_distal_reward(dr);
  const double dr_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  dr.wan = true;
  const synapse::DistalRewardResult wan = synapse::run_distal_reward(dr);
  double others = -1e9;
  for (size_t k = 1; k < direct.change.size(); ++k) others = std::max(others, direct.change[k]);
  bool same = direct.pulses.size() == wan.pulses.size();
  for (size_t i = 0; same && i < direct.pulses.size(); ++i) {
    same = direct.pulses[i].synapse == wan.pulses[i].synapse && direct.pulses[i].t_ns == wan.pulses[i].t_ns;
  }
  std::snprintf(line, sizeof line,
                "  distal reward (%u synapses, %.0f s, %u pairings, %u rewarded 1-3 s later): rewarded "
                "synapse %+.3f, best other %+.3f; with 20-60 ms latency: %s pulses (%zu)\n",
                dr.synapses, dr.seconds, direct.pairings, direct.rewards, direct.change[0], others,
                same ? "the same" : "DIFFERENT", direct.pulses.size());
  out << line;
  std::snprintf(line, sizeof line, "  cost: the distal-reward run took %.3f s for %.0f s of network time (%.0fx real time)\n",
                dr_s, dr.seconds, dr.seconds / dr_s);
  out << line;

  bool band_ok = band[0] == 0.0;
  for (size_t i = 2; i < band.size(); ++i) band_ok = band_ok && band[i] > band[i - 1];
  const bool ok = std::fabs(slope_error) <= 0.05 && r2 >= 0.99 && band_ok && doses.back() > 0 &&
                  doses.back() < doses.front() && direct.change[0] > 3 * std::max(others, 0.0) && same;
  if (o.json) {
    std::ostringstream j;
    j << "{\"sensor_slope_error\":" << slope_error << ",\"sensor_r2\":" << r2 << ",\"release_nmol_per_min\":[";
    for (size_t i = 0; i < band.size(); ++i) j << (i ? "," : "") << band[i];
    j << "],\"dose_to_fire_um\":[";
    for (size_t i = 0; i < doses.size(); ++i) j << (i ? "," : "") << doses[i];
    j << "],\"distal_reward\":{\"rewarded_weight\":" << direct.change[0] << ",\"unrewarded_weight_max\":" << others
      << ",\"pairings\":" << direct.pairings << ",\"rewards\":" << direct.rewards
      << ",\"same_with_latency\":" << (same ? "true" : "false") << "},\"ok\":" << (ok ? "true" : "false") << "}";
    out << j.str() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ion

namespace ion::cli {
namespace {

class BenchChemicalCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "chemical", "chemical neuron: sensor calibration, release band, the dose that fires it before and "
                    "after exposures; distal reward on the synapse board's reward rule");
    c->add_flag("--json", o_.json, "end with one JSON line");
    c->add_option("--seed", o_.seed, "noise and protocol seed")->capture_default_str();
    return c;
  }
  int run(Context& ctx) override { return run_bench_chemical(o_, ctx.out); }

 private:
  ChemicalBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_chemical_command() { return std::make_unique<BenchChemicalCommand>(); }

}  // namespace ion::cli
