#include "cli/bench_chip.h"
#include "cli/command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <random>
#include <vector>

#include "ion/chip/aer.h"
#include "ion/chip/model.h"

namespace ion {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Input {
  int64_t t_ns;
  uint32_t neuron;
  chip::SynapseType type;
  float weight;
};

// Every neuron has `per_type` input synapses of each of the four types, each firing as an
// independent Poisson process at rate_hz: merged per (neuron, type), then sorted by time.
std::vector<Input> poisson_inputs(uint32_t neurons, uint32_t per_type, double rate_hz, double seconds,
                                  uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> weight(0.2F, 1.0F);
  std::vector<Input> in;
  in.reserve(static_cast<size_t>(neurons * 4.0 * per_type * rate_hz * seconds * 1.1));
  const double merged_hz = rate_hz * per_type;
  std::exponential_distribution<double> gap(merged_hz);
  for (uint32_t n = 0; n < neurons; ++n) {
    for (uint32_t t = 0; t < chip::kSynapseTypes; ++t) {
      for (double at = gap(rng); at < seconds; at += gap(rng)) {
        in.push_back({static_cast<int64_t>(at * 1e9), n, static_cast<chip::SynapseType>(t), weight(rng)});
      }
    }
  }
  std::sort(in.begin(), in.end(), [](const Input& a, const Input& b) { return a.t_ns < b.t_ns; });
  return in;
}

struct RunResult {
  double wall_s = 0;
  double model_s = 0;
  uint64_t neuron_updates = 0;
  uint64_t inputs = 0;
  uint64_t spikes = 0;
  [[nodiscard]] double realtime_factor() const { return model_s / wall_s; }
  [[nodiscard]] double updates_per_s() const { return static_cast<double>(neuron_updates) / wall_s; }
};

RunResult run_chip(const chip::ChipOptions& o, double seconds, bool with_input);

// The driver's pattern: every 1 ms, hand over the inputs that have arrived, then integrate.
RunResult run(uint32_t cores, double seconds, bool with_input, double bias_pa) {
  chip::ChipOptions o;
  o.cores = cores;
  o.neuron.bias_pa = bias_pa;
  return run_chip(o, seconds, with_input);
}

RunResult run_chip(const chip::ChipOptions& o, double seconds, bool with_input) {
  chip::ChipModel model(o);
  const std::vector<Input> inputs =
      with_input ? poisson_inputs(model.neurons(), 16, 10.0, seconds, 11) : std::vector<Input>{};
  std::vector<chip::ChipSpike> spikes;
  spikes.reserve(65536);
  const int64_t block_ns = 1'000'000;
  const auto end_ns = static_cast<int64_t>(seconds * 1e9);
  size_t next = 0;
  RunResult r;
  const auto t0 = Clock::now();
  for (int64_t t = block_ns; t <= end_ns; t += block_ns) {
    for (; next < inputs.size() && inputs[next].t_ns < t; ++next) {
      const Input& in = inputs[next];
      (void)model.inject(in.neuron, in.type, in.weight, in.t_ns);
    }
    model.advance(t, spikes);
    r.spikes += spikes.size();
    spikes.clear();
  }
  r.wall_s = seconds_since(t0);
  r.model_s = seconds;
  r.neuron_updates = model.counters().steps * model.neurons();
  r.inputs = model.counters().inputs_applied;
  return r;
}

// Encode + decode of full datagrams (121 events), events per second.
double aer_codec_events_per_s(double seconds) {
  std::vector<chip::AerEvent> events(chip::kAerMaxEvents);
  for (size_t i = 0; i < events.size(); ++i) {
    events[i] = {0, static_cast<uint8_t>(i % 4), static_cast<uint16_t>(i), static_cast<uint32_t>(i * 37), 0, 0};
  }
  std::vector<uint8_t> bytes;
  chip::AerDatagram d;
  uint64_t n = 0;
  uint32_t seq = 0;
  const auto t0 = Clock::now();
  while (seconds_since(t0) < seconds) {
    for (int k = 0; k < 1000; ++k) {
      bytes.clear();
      chip::encode_aer(seq++, events, bytes);
      if (chip::decode_aer(bytes, d) != chip::DecodeError::none) return 0;
      n += d.events.size();
    }
  }
  return static_cast<double>(n) / seconds_since(t0);
}

}  // namespace

int run_bench_chip(const ChipBenchOptions& options, std::ostream& out) {
  const double seconds = options.quick ? 2.0 : 10.0;
  const double bias_pa = 450;  // below rheobase: firing is driven by the Poisson input
  char line[512];
  out << "emulated chip on one core, 0.1 ms step, AdEx + 4 exponential synapse types\n";
  const RunResult idle = run(4, seconds, false, bias_pa);
  std::snprintf(line, sizeof line, "  4 x 256 neurons, no input:          %7.1fx real time  %7.1f M neuron updates/s\n",
                idle.realtime_factor(), idle.updates_per_s() / 1e6);
  out << line;
  const RunResult loaded = run(4, seconds, true, bias_pa);
  const double rate_hz = static_cast<double>(loaded.spikes) / loaded.model_s / 1024.0;
  std::snprintf(line, sizeof line,
                "  4 x 256 neurons, 64 synapses x 10 Hz: %6.1fx real time  %7.1f M neuron updates/s  "
                "(%.0f k inputs/s, output %.1f Hz per neuron)\n",
                loaded.realtime_factor(), loaded.updates_per_s() / 1e6,
                static_cast<double>(loaded.inputs) / loaded.model_s / 1e3, rate_hz);
  out << line;
  const RunResult big = run(16, seconds / 2, true, bias_pa);
  std::snprintf(line, sizeof line, "  16 x 256 neurons, same input:       %7.1fx real time  %7.1f M neuron updates/s\n",
                big.realtime_factor(), big.updates_per_s() / 1e6);
  out << line;
  // Iontronic neurons (docs/devices/iontronic-neuron.md): exponential Euler at the preset's
  // 5 us step (20x more steps than AdEx's 0.1 ms), same input pattern.
  chip::ChipOptions ion_opts;
  ion_opts.apply_iontronic_preset("iontronic-ms");
  ion_opts.neurons_per_core = 256;
  const RunResult ion16 = [&] {
    chip::ChipOptions o = ion_opts;
    o.neurons_per_core = 16;
    return run_chip(o, seconds / 2, true);
  }();
  const RunResult ion256 = run_chip(ion_opts, seconds / 10, true);
  std::snprintf(line, sizeof line,
                "iontronic neurons (iontronic-ms, 5 us step), 64 synapses x 10 Hz:\n"
                "  16 neurons:   %7.1fx real time  %7.1f M neuron updates/s (output %.1f Hz per neuron)\n"
                "  256 neurons:  %7.1fx real time  %7.1f M neuron updates/s\n",
                ion16.realtime_factor(), ion16.updates_per_s() / 1e6,
                static_cast<double>(ion16.spikes) / ion16.model_s / 16.0, ion256.realtime_factor(),
                ion256.updates_per_s() / 1e6);
  out << line;
  const double codec = aer_codec_events_per_s(options.quick ? 0.3 : 1.0);
  std::snprintf(line, sizeof line, "UDP address events: encode + decode %.1f M events/s\n", codec / 1e6);
  out << line;
  const bool target_met = loaded.realtime_factor() >= 20.0;
  std::snprintf(line, sizeof line, "target: >= 20x real time for 4 x 256 under input: %s\n",
                target_met ? "met" : "MISSED");
  out << line;
  if (options.json) {
    std::snprintf(line, sizeof line,
                  "{\"neuron_updates_per_s\":%.0f,\"realtime_factor_4x256\":%.2f,"
                  "\"realtime_factor_4x256_no_input\":%.2f,\"realtime_factor_16x256\":%.2f,"
                  "\"input_events_per_s\":%.0f,\"output_rate_hz\":%.2f,\"aer_codec_events_per_s\":%.0f,"
                  "\"step_ms\":0.1,\"synapses_per_neuron\":64,\"input_rate_hz\":10,"
                  "\"realtime_factor_iontronic_16\":%.2f,\"realtime_factor_iontronic_256\":%.2f}\n",
                  loaded.updates_per_s(), loaded.realtime_factor(), idle.realtime_factor(),
                  big.realtime_factor(), static_cast<double>(loaded.inputs) / loaded.model_s, rate_hz,
                  codec, ion16.realtime_factor(), ion256.realtime_factor());
    out << line;
  }
  // Sanity, not speed (machines are shared): the model must have run and fired.
  return loaded.neuron_updates > 0 && loaded.spikes > 0 && ion16.spikes > 0 && codec > 0 ? 0 : 1;
}

}  // namespace ion

namespace ion::cli {
namespace {

class BenchChipCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "chip", "emulated neuromorphic chip: neuron updates per second and real-time factor for "
        "4 cores x 256 neurons under 10 Hz Poisson input per synapse; address-event codec");
    c->add_flag("--quick", o_.quick, "short runs (noisier figures)");
    c->add_flag("--json", o_.json, "end with one JSON line");
    return c;
  }
  int run(Context& ctx) override { return run_bench_chip(o_, ctx.out); }

 private:
  ChipBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_chip_command() { return std::make_unique<BenchChipCommand>(); }

}  // namespace ion::cli
