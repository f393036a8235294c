#include "cli/bench_mea.h"
#include "cli/command.h"

#include <chrono>
#include <cstdio>
#include <ostream>
#include <random>
#include <vector>

#include "ion/mea/culture.h"
#include "ion/mea/detector.h"
#include "ion/mea/validation.h"

namespace ion {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Throughput {
  double realtime_factor = 0;
  double channel_samples_per_s = 0;
  uint64_t spikes = 0;
};

// Detection alone on one thread: a buffer of synthetic frames (noise plus sparse spikes) fed in
// 1 ms blocks, repeated until `data_s` seconds of signal have been processed.
Throughput detection_throughput(uint32_t channels, double fs, double data_s) {
  const auto frames = static_cast<size_t>(fs / 2);  // half a second, looped
  std::vector<int16_t> buf(frames * channels);
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.F, 30.F);
  std::uniform_int_distribution<int> spike(0, 4000);
  for (size_t i = 0; i < buf.size(); ++i) {
    float v = noise(rng);
    if (spike(rng) == 0) v -= 400.F;
    buf[i] = static_cast<int16_t>(v);
  }
  mea::DetectorOptions o;
  o.channels = channels;
  o.sample_rate_hz = fs;
  mea::SpikeDetector detector(o);
  std::vector<mea::DetectedSpike> out;
  const auto block = static_cast<size_t>(fs / 1000);
  const auto total = static_cast<uint64_t>(data_s * fs);
  uint64_t sample = 0;
  Throughput t;
  const auto t0 = Clock::now();
  while (sample < total) {
    for (size_t at = 0; at + block <= frames && sample < total; at += block) {
      detector.process(std::span<const int16_t>(buf.data() + at * channels, block * channels), sample, out);
      sample += block;
      t.spikes += out.size();
      out.clear();
    }
  }
  const double wall = seconds_since(t0);
  t.realtime_factor = (static_cast<double>(sample) / fs) / wall;
  t.channel_samples_per_s = static_cast<double>(sample) * channels / wall;
  return t;
}

double emulator_factor(const mea::CultureOptions& o, double data_s) {
  mea::CultureEmulator culture(o);
  std::vector<int16_t> block(static_cast<size_t>(culture.electrodes()) *
                             static_cast<size_t>(o.sample_rate_hz / 1000));
  const auto end = static_cast<uint64_t>(data_s * o.sample_rate_hz);
  const auto t0 = Clock::now();
  while (culture.next_sample() < end) culture.read(block, milliseconds(0));
  return data_s / seconds_since(t0);
}

}  // namespace

int run_bench_mea(const MeaBenchOptions& options, std::ostream& out) {
  const double data_s = options.quick ? 1.0 : 5.0;
  char line[1024];
  out << "detection on one core, 1 ms blocks, 20 kHz (band-pass, MAD noise, threshold, dead time)\n";
  const Throughput t1024 = detection_throughput(1024, 20000, data_s);
  const Throughput t4096 = detection_throughput(4096, 20000, data_s);
  std::snprintf(line, sizeof line, "  1024 ch: %8.1fx real time  %7.1f M channel-samples/s\n",
                t1024.realtime_factor, t1024.channel_samples_per_s / 1e6);
  out << line;
  std::snprintf(line, sizeof line, "  4096 ch: %8.1fx real time  %7.1f M channel-samples/s  (%.1f %% of a core)\n",
                t4096.realtime_factor, t4096.channel_samples_per_s / 1e6, 100.0 / t4096.realtime_factor);
  out << line;

  mea::CultureOptions small;  // 60 electrodes, 1000 neurons
  mea::CultureOptions large;
  large.rows = 64;
  large.cols = 64;
  large.drop_corners = false;
  large.pitch_um = 42;  // high-density CMOS array
  large.neurons = 3000;
  const double emu_s = options.quick ? 2.0 : 10.0;
  const double e60 = emulator_factor(small, emu_s);
  const double e4096 = emulator_factor(large, emu_s / 2);
  out << "culture emulator (network + 25 kHz signal), one core\n";
  std::snprintf(line, sizeof line, "  60 electrodes, %u neurons:   %7.1fx real time\n", small.neurons, e60);
  out << line;
  std::snprintf(line, sizeof line, "  4096 electrodes, %u neurons: %7.1fx real time\n", large.neurons, e4096);
  out << line;

  // Quality against ground truth: 60 electrodes, SNR >= 5, thresholds 4.5 and 5 sigma.
  const auto scores = mea::evaluate_detection(mea::CultureOptions{}, {4.5, 5.0}, options.quick ? 12.0 : 40.0);
  const mea::DetectionScore& s = scores.at(0);
  const mea::DetectionScore& s5 = scores.at(1);
  out << "detection quality on the emulated culture (60 electrodes, SNR >= 5, isolated spikes)\n";
  std::snprintf(line, sizeof line,
                "  threshold 4.5 sigma: recall %.4f (%llu of %llu)  precision %.4f (%llu of %llu)\n",
                s.recall(), static_cast<unsigned long long>(s.found), static_cast<unsigned long long>(s.truth),
                s.precision(), static_cast<unsigned long long>(s.true_detections),
                static_cast<unsigned long long>(s.detections));
  out << line;
  std::snprintf(line, sizeof line, "  threshold 5 sigma:   recall %.4f  precision %.4f\n", s5.recall(), s5.precision());
  out << line;
  std::snprintf(line, sizeof line, "  overlapped spikes (not scored): %llu, of which found %llu\n",
                static_cast<unsigned long long>(s.overlapped), static_cast<unsigned long long>(s.overlapped_found));
  out << line;
  // Speed is a figure for this machine, not a verdict; detection quality is deterministic.
  const bool ok = s.recall() >= 0.95 && s.precision() >= 0.95;
  if (options.json) {
    std::snprintf(line, sizeof line,
                  "{\"realtime_factor_1024ch_20khz\": %.2f, \"realtime_factor_4096ch_20khz\": %.2f, "
                  "\"channel_samples_per_s_4096ch\": %.0f, \"emulator_realtime_factor_60\": %.2f, "
                  "\"emulator_realtime_factor_4096\": %.2f, \"detection_recall\": %.4f, "
                  "\"detection_precision\": %.4f, \"threshold_k\": 4.5, \"ok\": %s}\n",
                  t1024.realtime_factor, t4096.realtime_factor, t4096.channel_samples_per_s, e60,
                  e4096, s.recall(), s.precision(), ok ? "true" : "false");
    out << line;
  }
  return ok ? 0 : 1;
}

}  // namespace ion

namespace ion::cli {
namespace {

class BenchMeaCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "mea", "spike detection throughput (1024 and 4096 channels at 20 kHz), culture emulator "
        "cost, detection recall and precision against the emulator's ground truth");
    c->add_flag("--quick", o_.quick, "short runs (noisier figures)");
    c->add_flag("--json", o_.json, "end with one JSON line");
    return c;
  }
  int run(Context& ctx) override { return run_bench_mea(o_, ctx.out); }

 private:
  MeaBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_mea_command() { return std::make_unique<BenchMeaCommand>(); }

}  // namespace ion::cli
