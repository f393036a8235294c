// ion: the IoN command-line tool. `ion --help` lists the subcommands.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include <cstdio>
#include <iostream>

#include "ion/core/log.h"
#include <atomic>
#include <csignal>

#include "ion/bench_broker.h"
#include "ion/bench_chip.h"
#include "ion/bench_synapse.h"
#include "ion/bench_mea.h"
#include "ion/bench_record.h"
#include "ion/bench_timing.h"
#include "ion/data.h"
#include "ion/outputs.h"
#include "ion/record.h"
#include "ion/report.h"
#include "ion/demo.h"
#include "ion/keys.h"
#include "ion/linkem.h"
#include "ion/status.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int /*sig*/) { g_stop.store(true); }
}  // namespace

// `ion bench python`: the figures come from a Python program (bench/python_bench.py) that drives
// libion and capi_bench of this build tree.
int run_python_bench(double seconds, bool json) {
  std::error_code ec;
  const std::filesystem::path bin = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  const std::filesystem::path build = bin.parent_path();
  const std::string script = std::string(ION_SOURCE_DIR) + "/bench/python_bench.py";
  const std::string lib = (build / "lib" / "libion.so.1").string();
  const std::string capi_bench = (build / "bench" / "capi_bench").string();
  for (const auto& f : {script, lib, capi_bench}) {
    if (!std::filesystem::exists(f)) {
      std::fprintf(stderr, "ion bench python: %s is missing (a build tree with benchmarks is needed)\n",
                   f.c_str());
      return 2;
    }
  }
  ::setenv("ION_LIBRARY", lib.c_str(), 1);
  const std::string secs = std::to_string(seconds);
  // ION_PYTHON: another interpreter, e.g. a venv's with pylsl for the LSL figures. argv[0] is its
  // path: a venv's interpreter finds its environment from it.
  const char* python = std::getenv("ION_PYTHON");
  if (python == nullptr || *python == '\0') python = "/usr/bin/python3";
  std::vector<const char*> argv = {python, script.c_str(), "--bin-dir", bin.c_str(),
                                   "--capi-bench", capi_bench.c_str(), "--seconds", secs.c_str()};
  if (json) argv.push_back("--json");
  argv.push_back(nullptr);
  ::execv(python, const_cast<char* const*>(argv.data()));
  std::fprintf(stderr, "ion bench python: cannot run %s: %s\n", python, std::strerror(errno));
  return 2;
}

int main(int argc, char** argv) {
  CLI::App app{"ion: Internet of Neuro-electronics — run, inspect and test spiking networks "
               "that span labs"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");
  app.set_version_flag("--version", "ion " ION_VERSION);
  app.fallthrough();  // --log-level before or after the subcommand
  app.footer("Exit status: 0 ok; 1 a broken promise or a failed check; 2 a usage, config or "
             "connection error (docs/cli.md).");

  ion::DemoOptions demo;
  double delay_ms = 20;
  bool no_wan = false;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo", "emulate the three-lab network (MEA culture, silicon neurons, memristive synapses) "
              "on this machine over emulated WAN links; record it and write a report");
  demo_cmd->add_option("--duration", demo.duration_s, "seconds to run")
      ->check(CLI::Range(0.1, 86400.0))->capture_default_str();
  demo_cmd->add_option("--topology", demo.topology,
                       "three-lab, large (60 electrodes, 256 neurons, 32x32 crossbar), minimal "
                       "(generator -> sink) or a folder with broker.yaml and lab configs")
      ->capture_default_str();
  demo_cmd->add_option("--out", demo.out_dir, "folder for the recording and report.html "
                                              "(default ./ion-demo-DATE-TIME)");
  demo_cmd->add_option("--configs", demo.configs_dir, "where the shipped configs are");
  demo_cmd->add_flag("--no-emulated-wan", no_wan, "connect the labs to the broker directly");
  demo_cmd->add_option("--http", demo.http,
                       "serve the live dashboard, /metrics and /api/status on HOST:PORT, e.g. 127.0.0.1:8080");
  demo_cmd->add_flag("--plaintext", demo.plaintext,
                     "links without CURVE encryption (by default every lab and the recorder get "
                     "a key pair made for the run)");
  demo_cmd->add_option("--channels", demo.channels, "minimal: generator channels")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  demo_cmd->add_option("--rate", demo.rate_hz, "minimal: spike rate per channel, Hz")
      ->check(CLI::Range(0.0, 100000.0))->capture_default_str();
  demo_cmd->add_option("--seed", demo.seed, "minimal: generator seed")->capture_default_str();
  demo_cmd->add_option("--delay-ms", delay_ms, "minimal: connection delay, ms")
      ->check(CLI::Range(0.0, 10000.0))->capture_default_str();
  demo_cmd->add_flag("--json", demo.json, "end with one JSON line: {ok, nodes: [...], synapses: [...]}");

  std::string report_in;
  std::string report_out;
  CLI::App* report_cmd = app.add_subcommand(
      "report", "write an HTML page (raster, weights, latency, clocks) of a recording");
  report_cmd->add_option("file", report_in, "recording")->required();
  report_cmd->add_option("-o,--out", report_out, "HTML file to write")->required();
  bool force = false;  // every command that writes a file: replace an existing one

  ion::StatusOptions status;
  int64_t status_timeout_ms = 3000;
  CLI::App* status_cmd =
      app.add_subcommand("status", "ask a running broker for its per-node counters");
  status_cmd->add_option("--broker", status.broker, "broker endpoint")->capture_default_str();
  status_cmd->add_option("--timeout-ms", status_timeout_ms, "how long to wait for the answer")
      ->check(CLI::Range(1, 600000))->capture_default_str();
  status_cmd->add_flag("--json", status.json, "print one JSON object");
  status_cmd->add_flag("--watch", status.watch, "redraw every second until Ctrl-C (--json: a line each)");
  double status_interval_s = 1.0;
  status_cmd->add_option("--interval", status_interval_s, "seconds between redraws with --watch")
      ->check(CLI::Range(0.05, 3600.0))->capture_default_str();

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

  ion::BrokerBenchOptions broker_bench;
  CLI::App* broker_bench_cmd = bench_cmd->add_subcommand(
      "broker", "broker throughput (batches of 1, 16, 256) and one-way latency against a raw "
                "ZeroMQ forwarder in the same run");
  broker_bench_cmd->add_flag("--quick", broker_bench.quick, "short runs (noisier figures)");
  broker_bench_cmd->add_flag("--json", broker_bench.json, "end with one JSON line");
  broker_bench_cmd->add_flag("--throughput-only", broker_bench.throughput_only,
                             "skip the latency runs (to profile the routing path)");
  broker_bench_cmd->add_option("--dashboard-clients", broker_bench.dashboard_clients,
                               "instead: throughput with and without N live dashboard clients");
  broker_bench_cmd->add_option("--soak", broker_bench.soak_s,
                               "instead: route 1 M events/s for this many seconds; RSS growth must stay < 5 %")
      ->check(CLI::Range(1.0, 86400.0));
  ion::RecordBenchOptions record_bench;
  CLI::App* record_bench_cmd = bench_cmd->add_subcommand(
      "record", "recording write/read/export throughput and replay timing over an hour of data");
  record_bench_cmd->add_flag("--quick", record_bench.quick, "short runs (noisier figures)");
  record_bench_cmd->add_flag("--json", record_bench.json, "end with one JSON line");
  double python_bench_s = 5.0;
  bool python_bench_json = false;
  CLI::App* python_bench_cmd = bench_cmd->add_subcommand(
      "python", "the Python package against the C++ node in the same run: emit throughput "
                "(batches of 256), delivery error at 1000 events/s, the LSL bridge against plain "
                "LSL (bench/python_bench.py, with /usr/bin/python3 or $ION_PYTHON)");
  python_bench_cmd->add_option("--seconds", python_bench_s, "per measurement")
      ->check(CLI::Range(0.5, 600.0))->capture_default_str();
  python_bench_cmd->add_flag("--json", python_bench_json, "end with one JSON line");

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

  ion::RecordOptions record;
  double record_flush_ms = 100;
  CLI::App* record_cmd = app.add_subcommand(
      "record", "join a broker as a tap and record every batch (or chosen nodes') to a file");
  record_cmd->add_option("--broker", record.broker, "broker endpoint")->capture_default_str();
  record_cmd->add_option("-o,--out", record.out, "recording file to write")->required();
  record_cmd->add_option("--nodes", record.nodes, "record only these nodes")->delimiter(',');
  record_cmd->add_option("--name", record.name,
                         "the recorder's name at the broker (default: recorder-HOST-PID)");
  record_cmd->add_flag("--replace", record.replace,
                       "take the name over from a live recorder holding it (that one stops)");
  record_cmd->add_option("--duration", record.duration_s, "seconds to record (0: until Ctrl-C)")
      ->check(CLI::Range(0.0, 1e7))->capture_default_str();
  record_cmd->add_option("--flush-ms", record_flush_ms, "records reach the kernel this often")
      ->check(CLI::Range(1.0, 60000.0))->capture_default_str();

  ion::ReplayCommand replay;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay", "re-emit a recording with its original relative timing, into a broker (one node "
                "per recorded source) or into a file");
  replay_cmd->add_option("file", replay.file, "recording")->required();
  replay_cmd->add_option("--broker", replay.broker, "join this broker");
  replay_cmd->add_option("--to", replay.to, "write the replayed events into this recording instead");
  replay_cmd->add_option("--source", replay.source, "replay only this source");
  replay_cmd->add_option("--as", replay.as, "node name for the replayed source");
  replay_cmd->add_option("--speed", replay.speed, "2 = twice as fast (0.001-1000)")->capture_default_str();
  replay_cmd->add_option("--start", replay.start_s, "seconds into the recording to start from");
  replay_cmd->add_option("--end", replay.end_s, "seconds into the recording to stop at");
  replay_cmd->add_flag("--loop", replay.loop, "start again after the last event (until Ctrl-C)");
  replay_cmd->add_option("--remap", replay.remap, "recorded:emitted channel pairs, e.g. 3:0,4:1");
  replay_cmd->add_flag("--merge", replay.merge, "let --remap send two recorded channels to one");

  ion::ImportCommand import;
  CLI::App* import_cmd = app.add_subcommand(
      "import", "convert sjemea HDF5, Axion spike-list CSV or plain CSV (channel,time_s) into a recording");
  import_cmd->add_option("format", import.format, "sjemea | axion-csv | csv")->required()
      ->check(CLI::IsMember({"sjemea", "axion-csv", "csv"}));
  import_cmd->add_option("input", import.input, "input file")->required();
  import_cmd->add_option("-o,--out", import.out, "recording to write")->required();
  import_cmd->add_option("--name", import.name, "source name (default: the input's stem)");
  import_cmd->add_option("--sample-rate", import.sample_rate_hz, "Hz; default: the file's own or detected")
      ->check(CLI::PositiveNumber);

  ion::ExportCommand exp;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "write a recording's spikes as CSV, phy/Kilosort .npy files or NWB");
  export_cmd->add_option("file", exp.file, "recording")->required();
  export_cmd->add_option("--format", exp.format, "csv | npy | nwb")->required()
      ->check(CLI::IsMember({"csv", "npy", "nwb"}));
  export_cmd->add_option("-o,--out", exp.out, "output file (npy: a folder)")->required();
  export_cmd->add_option("--source", exp.source, "only this source");
  export_cmd->add_option("--sample-rate", exp.sample_rate_hz, "npy: samples per second when the recording has no grid")
      ->check(CLI::PositiveNumber);

  ion::InspectCommand inspect;
  CLI::App* inspect_cmd = app.add_subcommand(
      "inspect", "streams, channel counts, span, rates, gaps, losses, clock quality of a recording");
  inspect_cmd->add_option("file", inspect.file, "recording")->required();
  inspect_cmd->add_flag("--json", inspect.json, "print one JSON object");
  inspect_cmd->add_flag("--repair", inspect.repair, "cut a torn tail (a crash mid-write) first");

  ion::KeygenOptions keygen;
  CLI::App* keygen_cmd = app.add_subcommand(
      "keygen", "make a CURVE key pair: NAME.key (secret, 0600) and NAME.pub (the allowlist line)");
  keygen_cmd->add_option("name", keygen.name, "the node's (or broker's) name")->required();
  keygen_cmd->add_option("--dir", keygen.dir, "folder to write to")->capture_default_str();
  keygen_cmd->add_flag("--force", keygen.force, "replace existing key files");

  // Tools that talk to a CURVE broker: this peer's secret key and the broker's public key.
  std::string key_file;
  std::string broker_key;
  for (CLI::App* cmd : {status_cmd, record_cmd, replay_cmd}) {
    cmd->add_option("--key", key_file, "this peer's secret key file (a CURVE broker)");
    cmd->add_option("--broker-key", broker_key, "the broker's public key: its .pub file or the key");
  }

  for (CLI::App* cmd : {report_cmd, record_cmd, replay_cmd, import_cmd, export_cmd}) {
    cmd->add_flag("--force", force, "replace an existing output file (never one of the inputs)");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version are not errors
  }
  if (!ion::set_log_level(log_level.c_str())) {
    std::fprintf(stderr, "ion: --log-level: unknown level '%s'\n", log_level.c_str());
    return 2;
  }
  try {
    if (*keygen_cmd) return ion::run_keygen(keygen, std::cout);
    // An output never replaces an input, nor an existing file without --force.
    if (*report_cmd) ion::check_output(report_out, {report_in}, force, "-o");
    if (*record_cmd) ion::check_output(record.out, {}, force, "-o");
    if (*replay_cmd && !replay.to.empty()) ion::check_output(replay.to, {replay.file}, force, "--to");
    if (*import_cmd) ion::check_output(import.out, {import.input}, force, "-o");
    if (*export_cmd) ion::check_output(exp.out, {exp.file}, force, "-o");
    status.curve = record.curve = replay.curve = ion::client_keys(key_file, broker_key);
    // A recorder is known by its key's name unless told otherwise.
    if (record.curve && record_cmd->count("--name") == 0) record.name = record.curve->name;
    if (*demo_cmd) {
      demo.delay = std::chrono::milliseconds(static_cast<int64_t>(delay_ms));
      demo.emulated_wan = !no_wan;
      return ion::run_demo(demo, std::cout);
    }
    if (*timing_cmd) return ion::run_bench_timing(timing, std::cout);
    if (*mea_cmd) return ion::run_bench_mea(mea_bench, std::cout);
    if (*chip_cmd) return ion::run_bench_chip(chip_bench, std::cout);
    if (*synapse_cmd) return ion::run_bench_synapse(synapse_bench, std::cout);
    if (*record_bench_cmd) return ion::run_bench_record(record_bench, std::cout);
    if (*broker_bench_cmd) return ion::run_bench_broker(broker_bench, std::cout);
    if (*python_bench_cmd) return run_python_bench(python_bench_s, python_bench_json);
    if (*linkem_cmd) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return ion::run_linkem(linkem, g_stop, std::cout);
    }
    if (*record_cmd) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      record.flush_interval = std::chrono::milliseconds(static_cast<int64_t>(record_flush_ms));
      return ion::run_record(record, g_stop, std::cout);
    }
    if (*replay_cmd) {
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return ion::run_replay(replay, g_stop, std::cout);
    }
    if (*import_cmd) return ion::run_import(import, std::cout);
    if (*report_cmd) {
      ion::ReportOptions ro;
      ro.title = "IoN recording " + report_in;
      const auto st = ion::write_report(report_in, report_out, ro);
      std::cout << "ion report: " << report_out << " (" << st.sites << " sites, " << st.weight_series
                << " weight traces, " << st.latency_histograms << " latency histograms, "
                << st.clock_traces << " clock traces)\n";
      return 0;
    }
    if (*export_cmd) return ion::run_export(exp, std::cout);
    if (*inspect_cmd) return ion::run_inspect(inspect, std::cout);
    if (*status_cmd) {
      status.timeout = std::chrono::milliseconds(status_timeout_ms);
      status.interval = std::chrono::milliseconds(static_cast<int64_t>(status_interval_s * 1000));
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return ion::run_status(status, std::cout, &g_stop);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ion: %s\n", e.what());
    return 2;
  }
  return 0;
}
