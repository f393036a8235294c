// The emulated culture run and the pasted network run of `ion connectome` (connectome_run.h).
#include "cli/connectome_run.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cli/network.h"
#include "cli/record.h"
#include "ion/builtin/generator.h"
#include "ion/chip/chip_driver.h"
#include "ion/mea/culture.h"
#include "ion/synapse/synapse_driver.h"
#include "ion/v1/ion.pb.h"

namespace ion::cli {

void SimulateOptions::bursting() {
  const mea::CultureOptions d;
  noise_current = d.noise_current;
  weight_exc = d.weight_exc;
  weight_inh = d.weight_inh;
}

CultureRun run_culture(const SimulateOptions& s) {
  mea::CultureOptions o;
  o.neurons = s.neurons;
  o.seed = s.seed;
  o.connection_probability = s.connection_probability;
  o.step_ms = s.step_ms;
  o.noise_current = s.noise_current;
  o.weight_exc = s.weight_exc;
  o.weight_inh = s.weight_inh;
  o.rows = s.rows;
  o.cols = s.cols;
  o.drop_corners = s.rows == 8 && s.cols == 8;
  o.ground_truth = true;
  o.ground_truth_limit = SIZE_MAX;
  mea::CultureEmulator c(o);
  const auto samples = static_cast<uint64_t>(s.minutes * 60 * o.sample_rate_hz);
  c.run_network(samples);
  CultureRun r;
  r.electrodes = c.electrodes();
  r.sample_rate_hz = o.sample_rate_hz;
  r.neuron_names.resize(s.neurons);
  for (uint32_t i = 0; i < s.neurons; ++i) r.neuron_names[i] = "n" + std::to_string(i);
  r.neuron_times_ns.resize(s.neurons);
  r.electrode_times_ns.resize(r.electrodes);
  const double ns_per_sample = 1e9 / o.sample_rate_hz;
  for (const mea::TruthSpike& t : c.take_ground_truth()) {
    const auto ns = static_cast<int64_t>(std::llround(static_cast<double>(t.sample) * ns_per_sample));
    r.neuron_times_ns[t.neuron].push_back(ns);
    if (const int32_t e = c.home_electrode(t.neuron); e >= 0) r.electrode_times_ns[e].push_back(ns);
    ++r.spikes;
  }
  for (auto& e : r.electrode_times_ns) std::sort(e.begin(), e.end());
  for (const mea::TrueSynapse& w : c.wiring()) {
    r.neuron_truth.push_back({r.neuron_names[w.pre], r.neuron_names[w.post], w.weight, w.delay_ms,
                              w.excitatory ? 1 : -1});
  }
  for (const mea::TrueSynapse& w : c.electrode_wiring()) {
    r.electrode_truth.push_back({std::to_string(w.pre), std::to_string(w.post), w.weight, w.delay_ms,
                                 w.excitatory ? 1 : -1});
  }
  return r;
}


namespace {

// Keeps what the chip fired: (neuron, network time), from its own thread.
class Observer final : public Driver {
 public:
  explicit Observer(uint32_t ports) : spikes_(ports) {}
  [[nodiscard]] DriverInfo describe() const override {
    return {"sink", v1::NODE_KIND_SINK, 0, static_cast<uint32_t>(spikes_.size())};
  }
  void start(Emitter& /*emitter*/) override {}
  void stop() noexcept override {}
  void deliver(const BatchHeader& /*h*/, const EventBatch& e, const Delivery& /*d*/) noexcept override {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < e.size(); ++i) {
      if (e.channels[i] < spikes_.size()) spikes_[e.channels[i]].push_back(e.times_ns[i]);
    }
  }
  std::vector<std::vector<int64_t>> take() {
    std::lock_guard lock(mu_);
    return spikes_;
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<int64_t>> spikes_;
};

EndpointRef one(const std::string& node, uint32_t first, uint32_t last) { return {node, false, first, last}; }

}  // namespace

PastePlan plan_paste(const std::vector<connectome::MapEdge>& edges, uint32_t rows, uint32_t cols, uint32_t levels,
                     double r_min, double r_max) {
  PastePlan plan;
  double max_abs = 0;
  for (const auto& e : edges) max_abs = std::max(max_abs, std::fabs(e.strength));
  const size_t per_bar = static_cast<size_t>(rows) * cols;
  for (size_t i = 0; i < edges.size(); ++i) {
    double w = max_abs > 0 ? std::fabs(edges[i].strength) / max_abs : 0;
    if (levels > 1) w = std::round(w * (levels - 1)) / (levels - 1);
    plan.weights.push_back(w);
    for (const bool positive : {true, false}) {
      const size_t k = plan.cells.size();
      const size_t in = k % per_bar;
      const bool active = positive == (edges[i].strength > 0);
      plan.cells.push_back({static_cast<uint32_t>(k / per_bar),
                            {static_cast<uint32_t>(in / cols), static_cast<uint32_t>(in % cols)}, i, positive,
                            active ? r_min + w * (r_max - r_min) : r_min});
    }
  }
  plan.crossbars = static_cast<uint32_t>((plan.cells.size() + per_bar - 1) / per_bar);
  return plan;
}

PastedNetwork pasted_network(const PastePlan& plan, const std::vector<connectome::MapEdge>& edges,
                             const std::vector<std::string>& channels, const PastedRunOptions& o) {
  const auto n = static_cast<uint32_t>(channels.size());
  std::map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < n; ++i) index[channels[i]] = i;
  PastedNetwork net;
  net.boards.resize(plan.crossbars);
  // Per board synapse k: the chip port it drives and the connection's delay.
  std::vector<std::vector<std::pair<uint32_t, int64_t>>> routes(plan.crossbars);
  for (size_t b = 0; b < plan.crossbars; ++b) {
    synapse::SynapseDriverOptions& so = net.boards[b];
    so.neurons = n;
    so.crossbar.wordlines = o.rows;
    so.crossbar.bitlines = o.cols;
    so.crossbar.device.seed = o.seed + b;
  }
  for (const PastedCell& c : plan.cells) {
    const auto& e = edges[c.edge];
    const auto pre = index.find(e.pre);
    const auto post = index.find(e.post);
    if (pre == index.end() || post == index.end()) {
      throw std::runtime_error("the map names a channel outside its own list: " + e.pre + " -> " + e.post);
    }
    synapse::SynapseSpec spec;
    spec.pre = pre->second;
    spec.post = post->second;
    spec.cell = c.at;
    spec.rule = synapse::RuleKind::none;
    spec.gain = 1;  // the - cell's sign is its route (an inhibitory synapse), not a negative weight
    spec.target_ohm = c.target_ohm;
    net.boards[c.crossbar].synapses.push_back(spec);
    // + cells to the fast excitatory synapse of the target, - cells to its fast inhibitory one.
    const auto type = static_cast<uint32_t>(c.positive ? chip::SynapseType::fast_exc : chip::SynapseType::fast_inh);
    // The copied latency (pre spike -> post spike) is what the pasted connection must take end
    // to end: the loop (chip -> board) already takes loop_delay_ms of it, the board -> chip
    // connection the rest (at least min_delay_ms). Adding the map's delay on top of the loop
    // put every pasted effect 30 ms later than in the culture.
    const double rest_ms = std::max(o.min_delay_ms, e.delay_ms - o.loop_delay_ms);
    routes[c.crossbar].emplace_back(post->second + type * n, static_cast<int64_t>(std::llround(rest_ms * 1e3)) * 1000);
  }
  Topology& t = net.topology;
  t.nodes.push_back({"drive", "generator", n, 0});
  t.nodes.push_back({"chip", "chip", n, n * chip::kSynapseTypes});
  const auto ms = [](double v) { return static_cast<int64_t>(v * 1e6); };
  ConnectionSpec drive;
  drive.from = one("drive", 0, n - 1);
  drive.to = {one("chip", n * static_cast<uint32_t>(chip::SynapseType::slow_exc),
                  n * static_cast<uint32_t>(chip::SynapseType::slow_exc) + n - 1)};
  drive.delay_ns = ms(o.loop_delay_ms);
  drive.where = "paste";
  t.connections.push_back(drive);
  for (size_t b = 0; b < plan.crossbars; ++b) {
    const std::string name = "board" + std::to_string(b);
    t.nodes.push_back({name, "synapse", net.boards[b].channels(), n});
    ConnectionSpec in;
    in.from = one("chip", 0, n - 1);
    in.to = {one(name, 0, n - 1)};
    in.delay_ns = ms(o.loop_delay_ms);
    in.where = "paste";
    t.connections.push_back(in);
    for (size_t k = 0; k < routes[b].size(); ++k) {
      ConnectionSpec c;
      const auto ch = static_cast<uint32_t>(k);
      c.from = one(name, ch, ch);
      c.to = {one("chip", routes[b][k].first, routes[b][k].first)};
      c.delay_ns = routes[b][k].second;
      c.where = "paste";
      t.connections.push_back(c);
    }
  }
  chip::ChipDriverOptions& co = net.chip;
  co.chip.cores = 1;
  co.chip.neurons_per_core = n;
  co.chip.mismatch_cv = 0.05;
  co.chip.seed = o.seed;
  co.chip.neuron.bias_pa = o.bias_pa;
  co.chip.synapses[static_cast<size_t>(chip::SynapseType::fast_exc)].gain_pa = o.exc_gain_pa;
  co.chip.synapses[static_cast<size_t>(chip::SynapseType::fast_inh)].gain_pa = o.inh_gain_pa;
  co.chip.synapses[static_cast<size_t>(chip::SynapseType::slow_exc)] = {5, o.background_gain_pa};
  co.lag = std::chrono::microseconds(static_cast<int64_t>(o.chip_lag_ms * 1000));
  net.drive.channels = n;
  net.drive.rate_hz = o.background_hz;
  net.drive.seed = o.seed;
  return net;
}

PastedRun run_pasted(const std::vector<connectome::MapEdge>& edges, const std::vector<std::string>& channels,
                     const PastedRunOptions& o) {
  const auto n = static_cast<uint32_t>(channels.size());
  // The board's default resistance map (4-9 kOhm), weights unquantised; no crossbar: the silicon
  // network unwired.
  const PastePlan plan = plan_paste(edges, o.rows, o.cols, 0, 4000, 9000);
  PastedNetwork pn = pasted_network(plan, edges, channels, o);
  const size_t bars = plan.crossbars;
  for (synapse::SynapseDriverOptions& so : pn.boards) {
    so.timing.pulse_time = std::chrono::microseconds(0);  // emulated: programming takes no time
    so.timing.read_time = std::chrono::microseconds(0);
    so.timing.queue_capacity = 1u << 16;
  }
  Topology t = pn.topology;
  t.nodes.push_back({"observer", "sink", 0, n});
  t.connections.push_back(connect_whole("chip", "observer", static_cast<int64_t>(o.loop_delay_ms * 1e6), "paste"));
  BrokerOptions bo;
  bo.listen = "tcp://127.0.0.1:*";
  bo.topology = t;
  bo.stats_interval = std::chrono::milliseconds(0);
  InProcessNetwork net(bo);
  InProcessNetwork::NodeSetup plain;
  plain.audit = std::nullopt;
  auto node = [](const std::string& name) {
    NodeOptions no;
    no.name = name;
    return no;
  };
  auto observer = std::make_unique<Observer>(n);
  Observer* seen = observer.get();
  net.add_node(node("observer"), std::move(observer), plain);
  auto chip_driver = std::make_unique<chip::ChipDriver>(pn.chip);
  chip::ChipDriver* chip = chip_driver.get();
  net.add_node(node("chip"), std::move(chip_driver), plain);
  std::vector<synapse::SynapseDriver*> board_drivers;
  for (size_t b = 0; b < bars; ++b) {
    auto d = std::make_unique<synapse::SynapseDriver>(pn.boards[b]);
    board_drivers.push_back(d.get());
    net.add_node(node("board" + std::to_string(b)), std::move(d), plain);
  }
  std::string late;
  if (!net.wait_registered(std::chrono::seconds(30), &late)) {
    throw std::runtime_error("the pasted network did not start: node '" + late + "' did not register");
  }
  // The recording, when asked for: the chip's spikes and the boards' transmissions and weights
  // (not the drive's many events).
  struct Recorder {  // stopped and joined on every way out, before the network goes
    std::atomic<bool> stop{false};
    std::thread thread;
    void finish() {
      stop.store(true);
      if (thread.joinable()) thread.join();
    }
    ~Recorder() { finish(); }
  } recorder;
  std::ostringstream recorder_log;
  int recorder_rc = 0;
  if (!o.record_path.empty()) {
    RecordOptions ro;
    ro.broker = net.endpoint();
    ro.out = o.record_path;
    ro.name = "recorder";
    ro.nodes = {"chip"};
    for (size_t b = 0; b < bars; ++b) ro.nodes.push_back("board" + std::to_string(b));
    recorder.thread = std::thread([&, ro] { recorder_rc = run_record(ro, recorder.stop, recorder_log); });
  }
  // Programming first (the boards' own write-verify), then the background drive.
  PastedRun r;
  r.cells = plan.cells.size();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(600);
  for (synapse::SynapseDriver* d : board_drivers) {
    const auto want = static_cast<int64_t>(d->options().synapses.size());
    while (d->counters().at("reads_done") < want) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("a pasted board did not finish programming");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    r.cells_programmed += static_cast<uint64_t>(d->counters().at("cells_programmed"));
    r.cells_failed += static_cast<uint64_t>(d->counters().at("cells_program_failed"));
  }
  net.add_node(node("drive"), std::make_unique<GeneratorDriver>(pn.drive), plain);
  if (!net.wait_registered(std::chrono::seconds(30), &late)) {
    throw std::runtime_error("the pasted network's drive did not start");
  }
  // Let the network settle for a second, then keep `seconds` of activity.
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>((o.seconds + 1.5) * 1000)));
  r.late_inputs = static_cast<uint64_t>(chip->counters().at("inputs_late"));
  net.stop_nodes();
  recorder.finish();
  if (recorder_rc != 0) throw std::runtime_error("the pasted network's recording failed: " + recorder_log.str());
  r.spikes_ns = seen->take();
  r.seconds = o.seconds;
  return r;
}

std::vector<double> functional_connectivity(const std::vector<std::vector<int64_t>>& spikes, int64_t t0,
                                            double seconds, double bin_ms, double window_ms) {
  const size_t n = spikes.size();
  const auto bins = static_cast<size_t>(seconds * 1000 / bin_ms);
  const double bin_ns = bin_ms * 1e6;
  const auto lags = static_cast<int64_t>(std::floor(window_ms / bin_ms));
  // Counts, centred and scaled to unit norm: a correlation is then a dot product.
  std::vector<std::vector<double>> z(n, std::vector<double>(bins, 0.0));
  std::vector<uint8_t> silent(n, 1);
  for (size_t c = 0; c < n; ++c) {
    for (int64_t t : spikes[c]) {
      const double k = std::floor(static_cast<double>(t - t0) / bin_ns);
      if (k >= 0 && k < static_cast<double>(bins)) z[c][static_cast<size_t>(k)] += 1;
    }
    double mean = 0;
    for (double x : z[c]) mean += x;
    mean /= static_cast<double>(std::max<size_t>(bins, 1));
    double norm = 0;
    for (double& x : z[c]) {
      x -= mean;
      norm += x * x;
    }
    if (norm <= 0) continue;
    silent[c] = 0;
    norm = std::sqrt(norm);
    for (double& x : z[c]) x /= norm;
  }
  std::vector<double> fc(n * n, std::nan(""));
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = a; b < n; ++b) {
      if (silent[a] || silent[b]) continue;
      double best = -2;
      for (int64_t lag = -lags; lag <= lags; ++lag) {  // b shifted by lag bins after a
        double s = 0;
        const size_t from = lag < 0 ? static_cast<size_t>(-lag) : 0;
        const size_t to = lag > 0 ? bins - static_cast<size_t>(lag) : bins;
        for (size_t k = from; k < to; ++k) s += z[a][k] * z[b][static_cast<size_t>(static_cast<int64_t>(k) + lag)];
        best = std::max(best, s);
      }
      fc[a * n + b] = fc[b * n + a] = best;
    }
  }
  return fc;
}

double fc_similarity(const std::vector<double>& a, const std::vector<double>& b, size_t n) {
  std::vector<double> x, y;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const double u = a[i * n + j];
      const double v = b[i * n + j];
      if (std::isnan(u) || std::isnan(v)) continue;
      x.push_back(u);
      y.push_back(v);
    }
  }
  if (x.size() < 3) return std::nan("");
  double mx = 0, my = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    mx += x[k];
    my += y[k];
  }
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(y.size());
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    sxy += (x[k] - mx) * (y[k] - my);
    sxx += (x[k] - mx) * (x[k] - mx);
    syy += (y[k] - my) * (y[k] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : std::nan("");
}

}  // namespace ion::cli
