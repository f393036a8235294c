// `ion bench tspcm`: the TS-PCM array's learn-forget-relearn experiment (4x4, docs/devices/ts-pcm.md)
// with and without the positive feedback between firing and crystallisation, the firing rate of
// one cell against its PCM conductance at a fixed drive, and the cost of the cell model.
#include <chrono>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "ion/synapse/tspcm.h"

namespace ion {
namespace {

struct TsPcmBenchOptions {
  bool json = false;
  double residual = 0.5;
  double forget_s = 3600;
  double drive_ms = 100;
  double feedback = 0.5;
  uint64_t seed = 1;
};

std::string map_text(const std::vector<uint32_t>& m, uint32_t cols, const std::string& indent) {
  std::ostringstream o;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i % cols == 0) o << indent;
    char cell[16];
    std::snprintf(cell, sizeof cell, "%3u", m[i]);
    o << cell << ((i + 1) % cols == 0 ? "\n" : "");
  }
  return o.str();
}

std::string json_list(const std::vector<uint32_t>& v) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
  o << ']';
  return o.str();
}

int run_bench_tspcm(const TsPcmBenchOptions& o, std::ostream& out) {
  synapse::TsPcmParams p;
  p.cell.drive_width_s = o.drive_ms * 1e-3;
  p.cell.feedback = o.feedback;
  synapse::LearningProtocol proto;
  proto.residual = o.residual;
  proto.forget_s = o.forget_s;
  proto.seed = o.seed;
  const auto t0 = std::chrono::steady_clock::now();
  const synapse::LearningResult with = synapse::learn_forget_relearn(p, proto);
  synapse::TsPcmParams no_feedback = p;
  no_feedback.cell.feedback = 0;
  const synapse::LearningResult without = synapse::learn_forget_relearn(no_feedback, proto);
  const double took_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Firing rate against PCM conductance at the drive current, feedback off (analytic, and checked
  // against the cell's own simulation in tests/unit/tspcm_test.cpp).
  std::vector<double> g_us = {0.5, 1, 2, 3, 5, 8, 12, 16, 20, 25};
  std::vector<double> rate_hz;
  for (const double g : g_us) rate_hz.push_back(synapse::TsPcmCell::firing_rate_hz(p, g * 1e-6, p.cell.drive_a));
  bool rising = true;
  for (size_t i = 1; i < rate_hz.size(); ++i) rising = rising && rate_hz[i] > rate_hz[i - 1];

  // The cost of the model: drives of a 32x32 board's cells, firings included.
  synapse::DeviceOptions d;
  d.model = synapse::DeviceModel::ts_pcm;
  auto cell = synapse::make_device(d, 0);
  auto* c = static_cast<synapse::TsPcmCell*>(cell.get());
  synapse::Rng rng(1);
  c->set_weight(1.5, 0, rng);
  std::vector<int64_t> fired;
  const int drives = 200000;
  const auto w0 = std::chrono::steady_clock::now();
  const auto width_ns = static_cast<int64_t>(p.cell.drive_width_s * 1e9);
  for (int k = 0; k < drives; ++k) {
    fired.clear();
    (void)c->drive(p.cell.drive_a, k * 2 * width_ns, k * 2 * width_ns + width_ns, rng, fired);
  }
  const double drive_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  const double simulated_s = drives * 2 * p.cell.drive_width_s;

  char line[256];
  out << "ion bench tspcm: a 4x4 TS-PCM array learns a pattern, forgets it (partial RESET to "
      << o.residual << " of its state, then " << o.forget_s << " s of drift) and relearns it\n";
  std::snprintf(line, sizeof line,
                "  with feedback (each firing %.2f of a SET step): learned in %.2f pulses per pixel, relearned in %.2f (%.2fx faster)\n",
                p.cell.feedback, with.learn_pulses, with.relearn_pulses,
                with.relearn_pulses > 0 ? with.learn_pulses / with.relearn_pulses : 0.0);
  out << line;
  std::snprintf(line, sizeof line,
                "  without feedback:                         learned in %.2f pulses per pixel, relearned in %.2f (%.2fx faster)\n",
                without.learn_pulses, without.relearn_pulses,
                without.relearn_pulses > 0 ? without.learn_pulses / without.relearn_pulses : 0.0);
  out << line;
  out << "  firings per probe drive (" << p.cell.drive_a * 1e6 << " uA for " << proto.probe_s * 1e3
      << " ms, feedback off), with feedback:\n    learned:\n"
      << map_text(with.map_learned, proto.cols, "      ") << "    forgotten:\n"
      << map_text(with.map_forgotten, proto.cols, "      ") << "    relearned:\n"
      << map_text(with.map_relearned, proto.cols, "      ");
  out << "  firing rate at " << p.cell.drive_a * 1e6 << " uA against PCM conductance:";
  for (size_t i = 0; i < g_us.size(); ++i) {
    std::snprintf(line, sizeof line, " %.1f uS %.1f Hz%s", g_us[i], rate_hz[i], i + 1 < g_us.size() ? "," : "\n");
    out << line;
  }
  std::snprintf(line, sizeof line,
                "  model cost: %.2f M drives/s (%.0fx real time for one cell at a drive every %.0f ms); experiment %.3f s\n",
                drives / drive_s / 1e6, simulated_s / drive_s, 2 * p.cell.drive_width_s * 1e3, took_s);
  out << line;
  out << "  (stand-in device and protocol parameters: docs/devices/ts-pcm.md)\n";
  const bool ok = with.learned && with.relearned && without.learned && without.relearned && rising &&
                  with.relearn_pulses < with.learn_pulses;
  if (o.json) {
    std::ostringstream j;
    j << "{\"learn_pulses\":" << with.learn_pulses << ",\"relearn_pulses\":" << with.relearn_pulses
      << ",\"learn_pulses_without_feedback\":" << without.learn_pulses
      << ",\"relearn_pulses_without_feedback\":" << without.relearn_pulses
      << ",\"firing_rate_hz_by_conductance\":[";
    for (size_t i = 0; i < rate_hz.size(); ++i) j << (i ? "," : "") << rate_hz[i];
    j << "],\"conductance_us\":[";
    for (size_t i = 0; i < g_us.size(); ++i) j << (i ? "," : "") << g_us[i];
    j << "],\"map_learned\":" << json_list(with.map_learned) << ",\"map_forgotten\":"
      << json_list(with.map_forgotten) << ",\"map_relearned\":" << json_list(with.map_relearned)
      << ",\"drives_per_s\":" << drives / drive_s << ",\"real_time_factor\":" << simulated_s / drive_s
      << ",\"ok\":" << (ok ? "true" : "false") << "}";
    out << j.str() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ion

namespace ion::cli {
namespace {

class BenchTsPcmCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "tspcm", "TS-PCM array: pulses to learn and to relearn a forgotten 4x4 pattern, with and "
                 "without the firing-crystallisation feedback; firing rate against PCM conductance");
    c->add_flag("--json", o_.json, "end with one JSON line");
    c->add_option("--residual", o_.residual, "fraction of its state a partial RESET leaves")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    c->add_option("--forget-s", o_.forget_s, "seconds of drift after the partial RESET")
        ->check(CLI::Range(0.0, 1e7))->capture_default_str();
    c->add_option("--drive-ms", o_.drive_ms, "how long each training pulse drives a cell (ms)")
        ->check(CLI::Range(0.001, 60000.0))->capture_default_str();
    c->add_option("--feedback", o_.feedback, "fraction of a SET step each firing adds (0: none)")
        ->check(CLI::Range(0.0, 10.0))->capture_default_str();
    c->add_option("--seed", o_.seed, "device variability seed")->capture_default_str();
    return c;
  }
  int run(Context& ctx) override { return run_bench_tspcm(o_, ctx.out); }

 private:
  TsPcmBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_tspcm_command() { return std::make_unique<BenchTsPcmCommand>(); }

}  // namespace ion::cli
