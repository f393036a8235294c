// ion: the IoN command-line tool. `ion --help` lists the subcommands.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "ion/core/log.h"
#include <atomic>
#include <csignal>

#include "ion/bench_chip.h"
#include "ion/bench_synapse.h"
#include "ion/bench_mea.h"
#include "ion/bench_timing.h"
#include "ion/demo.h"
#include "ion/linkem.h"
#include "ion/status.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int /*sig*/) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ion: Internet of Neuro-electronics — run, inspect and test spiking networks "
               "that span labs"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");

  ion::DemoOptions demo;
  double delay_ms = 20;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo", "emulate a network on this machine (broker + generator lab + sink lab) and report "
              "what flowed");
  demo_cmd->add_option("--duration", demo.duration_s, "seconds to run")
      ->check(CLI::Range(0.1, 86400.0))->capture_default_str();
  demo_cmd->add_option("--channels", demo.channels, "generator channels")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  demo_cmd->add_option("--rate", demo.rate_hz, "spike rate per channel, Hz")
      ->check(CLI::Range(0.0, 100000.0))->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed, "generator seed")->capture_default_str();
  demo_cmd->add_option("--delay-ms", delay_ms, "connection delay, ms")
      ->check(CLI::Range(0.0, 10000.0))->capture_default_str();
  demo_cmd->add_flag("--json", demo.json, "end with one JSON line: {ok, nodes: [...]}");

  ion::StatusOptions status;
  int64_t status_timeout_ms = 3000;
  CLI::App* status_cmd =
      app.add_subcommand("status", "ask a running broker for its per-node counters");
  status_cmd->add_option("--broker", status.broker, "broker endpoint")->capture_default_str();
  status_cmd->add_option("--timeout-ms", status_timeout_ms, "how long to wait for the answer")
      ->check(CLI::Range(1, 600000))->capture_default_str();
  status_cmd->add_flag("--json", status.json, "print one JSON object");

  CLI::App* bench_cmd = app.add_subcommand("bench", "print performance figures");
  bench_cmd->require_subcommand(1);
  ion::TimingBenchOptions timing;
  CLI::App* timing_cmd = bench_cmd->add_subcommand(
      "timing", "clock offset error, playout delivery error and late events, on loopback and "
                "through the link emulator");
  timing_cmd->add_flag("--quick", timing.quick, "short runs (noisier figures)");
  timing_cmd->add_flag("--json", timing.json, "end with one JSON line");
  ion::MeaBenchOptions mea_bench;
  CLI::App* mea_cmd = bench_cmd->add_subcommand(
      "mea", "spike detection throughput (1024 and 4096 channels at 20 kHz), culture emulator "
             "cost, detection recall and precision against the emulator's ground truth");
  mea_cmd->add_flag("--quick", mea_bench.quick, "short runs (noisier figures)");
  mea_cmd->add_flag("--json", mea_bench.json, "end with one JSON line");
  ion::ChipBenchOptions chip_bench;
  CLI::App* chip_cmd = bench_cmd->add_subcommand(
      "chip", "emulated neuromorphic chip: neuron updates per second and real-time factor for "
              "4 cores x 256 neurons under 10 Hz Poisson input per synapse; address-event codec");
  chip_cmd->add_flag("--quick", chip_bench.quick, "short runs (noisier figures)");
  chip_cmd->add_flag("--json", chip_bench.json, "end with one JSON line");
  ion::SynapseBenchOptions synapse_bench;
  CLI::App* synapse_cmd = bench_cmd->add_subcommand(
      "synapse", "transmitted synaptic events/s and plasticity evaluations/s of the synapse board");
  synapse_cmd->add_flag("--quick", synapse_bench.quick, "short runs (noisier figures)");
  synapse_cmd->add_flag("--json", synapse_bench.json, "end with one JSON line");

  ion::LinkemOptions linkem;
  CLI::App* linkem_cmd = app.add_subcommand(
      "linkem", "userspace WAN link emulator between a node and the broker (no root needed)");
  linkem_cmd->add_option("--listen", linkem.listen, "host:port nodes connect to")
      ->capture_default_str();
  linkem_cmd->add_option("--connect", linkem.connect, "host:port of the broker")
      ->capture_default_str();
  linkem_cmd->add_option("--preset", linkem.preset,
                         "loopback, southampton-padova, padova-zurich, southampton-zurich, "
                         "wan-20ms-5ms");
  linkem_cmd->add_option("--config", linkem.config, "YAML file with a link: mapping");
  linkem_cmd->add_option("--seed", linkem.seed, "random seed")->capture_default_str();
  linkem_cmd->add_option("--stats-interval", linkem.stats_interval_s, "seconds between lines")
      ->check(CLI::Range(1, 3600))->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (!ion::set_log_level(log_level.c_str())) {
    std::fprintf(stderr, "ion: --log-level: unknown level '%s'\n", log_level.c_str());
    return 2;
  }
  try {
    if (*demo_cmd) {
      demo.delay = std::chrono::milliseconds(static_cast<int64_t>(delay_ms));
      return ion::run_demo(demo, std::cout);
    }
    if (*timing_cmd) return ion::run_bench_timing(timing, std::cout);
    if (*mea_cmd) return ion::run_bench_mea(mea_bench, std::cout);
    if (*chip_cmd) return ion::run_bench_chip(chip_bench, std::cout);
    if (*synapse_cmd) return ion::run_bench_synapse(synapse_bench, std::cout);
    if (*linkem_cmd) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return ion::run_linkem(linkem, g_stop, std::cout);
    }
    if (*status_cmd) {
      status.timeout = std::chrono::milliseconds(status_timeout_ms);
      return ion::run_status(status, std::cout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ion: %s\n", e.what());
    return 2;
  }
  return 0;
}
