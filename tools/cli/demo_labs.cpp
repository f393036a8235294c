// `ion demo` with the three labs: broker, MEA, chip and synapse nodes behind emulated WAN links,
// a recorder, a live summary, a promise check, and an HTML report.
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <thread>

#include "cli/audit.h"
#include "cli/network.h"
#include "ion/broker/broker.h"
#include "ion/broker/http.h"
#include "ion/core/config.h"
#include "ion/core/json.h"
#include "cli/demo.h"
#include "ion/drivers/registry.h"
#include "ion/interchange/inspect.h"
#include "ion/linkem/link_emulator.h"
#include "ion/node/node.h"
#include "cli/record.h"
#include "cli/report.h"
#include "ion/synapse/synapse_driver.h"

namespace ion {

namespace fs = std::filesystem;

std::string find_configs_dir() {
  if (const char* e = std::getenv("ION_CONFIGS"); e != nullptr && fs::is_directory(e)) return e;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& c : {exe.parent_path() / "../../../configs", exe.parent_path() / "../share/ion/configs"}) {
      if (fs::exists(c / "broker.yaml")) return fs::canonical(c).string();
    }
  }
  return "configs";
}

namespace {

constexpr int64_t kLateToleranceNs = 10'000'000;  // the playout's worst case on a shared machine
constexpr int64_t kEarlyToleranceNs = 1'000'000;  // clock-estimate steps, never a real early release

// The WAN between a lab and the hub (the broker runs at Southampton), by site name.
std::string site_preset(const std::string& node) {
  if (node == "padova") return "southampton-padova";
  if (node == "zurich") return "southampton-zurich";
  if (node == "singapore") return "wan-20ms-5ms";  // the chemical neuron's lab (configs/chemical)
  return "loopback";
}

struct Lab {
  std::string name;
  std::string kind;
  std::string preset = "loopback";
  const AuditDriver* audit = nullptr;
  synapse::SynapseDriver* synapse = nullptr;
  std::unique_ptr<linkem::LinkEmulator> link;
  NodeOptions options;              // until the node starts
  std::unique_ptr<Driver> driver;   // until the node starts
  Node* node = nullptr;             // in the network
  uint64_t last_emitted = 0;
};

std::string now_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", &tm);
  return b;
}

std::string synapse_name(const synapse::SynapseDriver& d, uint32_t k) {
  std::map<uint32_t, std::string> names;
  for (const auto& [n, port] : d.options().neuron_names) names[port] = n;
  const auto& s = d.options().synapses[k];
  auto name = [&](uint32_t p) { return names.count(p) != 0 ? names[p] : std::to_string(p); };
  return name(s.pre) + "->" + name(s.post);
}

}  // namespace

int run_lab_demo(const DemoOptions& o, std::ostream& out) {
  const std::string configs = o.configs_dir.empty() ? find_configs_dir() : o.configs_dir;
  std::string dir = o.topology;
  if (o.topology == "three-lab") dir = configs;
  if (o.topology == "large") dir = configs + "/large";
  if (o.topology == "iontronic") dir = configs + "/iontronic";
  if (o.topology == "chemical") dir = configs + "/chemical";
  if (!fs::exists(dir + "/broker.yaml")) {
    out << "ion demo: no broker.yaml in " << dir << " (--topology three-lab, large, iontronic, chemical, minimal or a folder; "
        << "--configs or $ION_CONFIGS say where the configs are)\n";
    return 2;
  }
  const std::string out_dir = o.out_dir.empty() ? "ion-demo-" + now_stamp() : o.out_dir;
  fs::create_directories(out_dir);
  const std::string recording = out_dir + "/recording.ionrec";
  const std::string report = out_dir + "/report.html";

  BrokerOptions bo = BrokerOptions::from_file(dir + "/broker.yaml");
  bo.listen = "tcp://127.0.0.1:*";
  // Encrypted and authenticated as across real sites: a key pair per lab and for the recorder,
  // made for this run and kept in memory only.
  std::map<std::string, CurveClientKeys> client_keys;
  if (!o.plaintext) {
    bo.security.key = generate_keypair("broker");
    bo.security.allowlist = Allowlist{};
    std::vector<std::string> names{"recorder"};
    for (const NodeSpec& n : bo.topology.nodes) names.push_back(n.name);
    for (const std::string& name : names) {
      const CurveKeyPair p = generate_keypair(name);
      bo.security.allowlist.add(name, p.public_z85);
      client_keys[name] = {p.public_z85, p.secret_z85, bo.security.key->public_z85, name};
    }
  }
  const auto keys_for = [&](const std::string& name) -> std::optional<CurveClientKeys> {
    const auto it = client_keys.find(name);
    return it == client_keys.end() ? std::nullopt : std::optional<CurveClientKeys>(it->second);
  };
  bo.stats_interval = std::chrono::milliseconds(0);
  InProcessNetwork net(bo);
  Broker& broker = net.broker();
  const std::string endpoint = net.endpoint();
  std::unique_ptr<HttpServer> http;
  if (!o.http.empty()) {
    try {
      HttpOptions ho;
      ho.listen = o.http;
      http = std::make_unique<HttpServer>(broker, ho);
    } catch (const std::exception& e) {
      out << "ion demo: " << e.what() << "\n";
      net.stop();
      return 2;
    }
  }

  std::atomic<bool> stop_recorder{false};
  std::ostringstream recorder_log;
  RecordSummary rec_summary;
  int rec_rc = -1;
  RecordOptions ro;
  ro.broker = endpoint;
  ro.out = recording;
  ro.name = "recorder";
  ro.curve = keys_for("recorder");
  std::thread recorder([&] { rec_rc = run_record(ro, stop_recorder, recorder_log, &rec_summary); });

  std::vector<Lab> labs;
  uint64_t seed = 1;
  auto shutdown = [&] {
    net.stop_nodes();
    stop_recorder.store(true);
    if (recorder.joinable()) recorder.join();
    net.stop();
  };
  try {
    for (const char* file : {"padova-mea.yaml", "zurich-chip.yaml", "southampton-synapse.yaml", "chemical-neuron.yaml"}) {
      const std::string path = dir + "/" + file;
      if (!fs::exists(path)) continue;
      const ConfigNode root = ConfigNode::load_file(path);
      root.only_keys({"node", "driver"});
      NodeOptions no = NodeOptions::from_config(root);
      std::unique_ptr<Driver> drv = make_driver(root);
      Lab lab;
      lab.name = no.name;
      lab.kind = drv->describe().kind;
      lab.synapse = dynamic_cast<synapse::SynapseDriver*>(drv.get());
      lab.driver = std::move(drv);
      if (!o.plaintext) no.curve = keys_for(no.name);
      if (o.emulated_wan) {
        lab.preset = site_preset(no.name);
        if (lab.preset != "loopback") {
          lab.link = std::make_unique<linkem::LinkEmulator>(*linkem::LinkProfile::preset(lab.preset), "127.0.0.1:0",
                                                            endpoint, seed++);
        }
      }
      no.broker_timeout = std::chrono::milliseconds(5000);
      lab.options = std::move(no);
      labs.push_back(std::move(lab));
    }
  } catch (const std::exception& e) {
    out << "ion demo: " << e.what() << "\n";
    shutdown();
    return 2;
  }
  if (labs.empty()) {
    out << "ion demo: no lab configs (padova-mea.yaml, zurich-chip.yaml, southampton-synapse.yaml, chemical-neuron.yaml) in " << dir << "\n";
    shutdown();
    return 2;
  }
  // The recorder first, so the recording holds the network from its first spike.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (broker.tap_stats().empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  try {
    for (auto& l : labs) {
      InProcessNetwork::NodeSetup setup;
      setup.audit = AuditTolerance{kLateToleranceNs, kEarlyToleranceNs};
      if (l.link) setup.via = l.link->endpoint();
      l.node = &net.add_node(std::move(l.options), std::move(l.driver), setup);
      l.audit = net.audit(l.name);
    }
  } catch (const std::exception& e) {
    out << "ion demo: " << e.what() << "\n";
    shutdown();
    return 2;
  }
  out << "ion demo: " << (o.topology == "three-lab" ? "the three-lab network of the 2017-2020 experiment" : "topology " + dir)
      << ", broker at the Southampton hub on " << endpoint << "\n";
  for (const auto& l : labs) {
    out << "  " << std::left << std::setw(12) << l.name << std::setw(9) << l.kind
        << (o.emulated_wan ? "link " + l.preset : std::string("no emulated WAN")) << "\n";
  }
  out << "  links " << (o.plaintext ? "in plaintext (--plaintext)" : "encrypted and authenticated (CURVE, keys made for this run)")
      << "\n  recording to " << recording << "; " << o.duration_s << " s\n";
  if (http) out << "  dashboard: http://" << http->endpoint() << "/\n";
  out.flush();
  for (auto& l : labs) {
    if (!l.node->wait_registered(1, std::chrono::seconds(20))) {
      out << "ion demo: lab '" << l.name << "' did not register with the broker within 20 s\n";
      shutdown();
      return 2;
    }
  }

  // Live summary, once a second.
  const auto t0 = std::chrono::steady_clock::now();
  const auto end = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(o.duration_s));
  auto next_line = t0 + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_until(std::min(next_line, end));
    if (std::chrono::steady_clock::now() < next_line) continue;
    next_line += std::chrono::seconds(1);
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ostringstream line;
    line << std::fixed << std::setprecision(0) << "  t=" << t << "s";
    for (auto& l : labs) {
      const NodeStats s = l.node->stats();
      const AuditCounts a = l.audit->counts();
      line << " | " << l.name << " " << std::setprecision(0) << static_cast<double>(s.emitted_events - l.last_emitted)
           << "/s in " << s.received_events << " lat99 " << std::setprecision(1)
           << static_cast<double>(s.latency_p99_ns) / 1e6 << "ms clk " << std::setprecision(0)
           << static_cast<double>(s.clock_offset_ns) / 1e3 << "+/-" << static_cast<double>(s.clock_uncertainty_ns) / 1e3
           << "us late " << s.late_events + s.playout_overrun << " lost " << s.lost_events;
      if (const uint64_t trouble = device_trouble(l.node->driver()); trouble > 0) {
        line << " TROUBLE " << trouble;  // the device's own: late at the device, behind, queue full
      }
      if (a.late_uncounted + a.early > 0) line << " BROKEN " << a.late_uncounted + a.early;
      l.last_emitted = s.emitted_events;
      if (l.synapse != nullptr) {
        const auto st = l.synapse->synapse_states();
        line << " w";
        for (size_t k = 0; k < st.size() && k < 4; ++k) line << " " << std::setprecision(2) << st[k].weight;
      }
    }
    out << line.str() << "\n";
    out.flush();
  }

  // Final figures before the nodes go (synapse weights, audits), then a clean stop.
  struct Final {
    NodeStats stats;
    AuditCounts audit;
    std::vector<synapse::SynapseDriver::SynapseState> synapses;
  };
  std::vector<Final> finals;
  shutdown();
  for (auto& l : labs) {
    finals.push_back({l.node->stats(), l.audit->counts(), l.synapse != nullptr ? l.synapse->synapse_states()
                                                                               : std::vector<synapse::SynapseDriver::SynapseState>{}});
  }
  uint64_t broker_dropped = 0;
  for (const auto& b : broker.node_stats()) broker_dropped += b.dropped_events;
  uint64_t late_uncounted = 0;
  uint64_t early = 0;
  uint64_t disorder = 0;
  for (const auto& f : finals) {
    late_uncounted += f.audit.late_uncounted;
    early += f.audit.early;
    disorder += f.audit.out_of_order + f.stats.duplicate_or_reordered;
  }
  uint64_t recorded = 0;
  try {
    recorded = interchange::inspect(recording).total_events;
  } catch (const std::exception& e) {
    out << "ion demo: the recording cannot be read: " << e.what() << "\n";
  }
  const bool recorder_ok = rec_rc == 0;
  const bool ok = late_uncounted == 0 && early == 0 && disorder == 0 && recorder_ok;

  out << "\n  " << std::left << std::setw(13) << "node" << std::setw(9) << "kind" << std::right << std::setw(9)
      << "emitted" << std::setw(10) << "received" << std::setw(7) << "lost" << std::setw(7) << "late"
      << std::setw(9) << "dropped" << std::setw(11) << "uncounted" << std::setw(8) << "early"
      << std::setw(14) << "err p99 (us)" << "\n";
  for (size_t i = 0; i < labs.size(); ++i) {
    const NodeStats& s = finals[i].stats;
    const AuditCounts& a = finals[i].audit;
    out << "  " << std::left << std::setw(13) << labs[i].name << std::setw(9) << labs[i].kind << std::right
        << std::setw(9) << s.emitted_events << std::setw(10) << s.received_events << std::setw(7) << s.lost_events
        << std::setw(7) << s.late_events + s.playout_overrun << std::setw(9)
        << s.dropped_events + s.late_dropped + s.playout_overflow + s.playout_abandoned << std::setw(11)
        << a.late_uncounted << std::setw(8) << a.early << std::setw(14) << std::fixed << std::setprecision(1)
        << static_cast<double>(a.error_p99_ns) / 1e3 << "\n";
  }
  for (size_t i = 0; i < labs.size(); ++i) {
    const auto& syn = finals[i].synapses;
    size_t up = 0;
    size_t down = 0;
    for (size_t k = 0; k < syn.size(); ++k) {
      up += syn[k].weight > syn[k].initial_weight;
      down += syn[k].weight < syn[k].initial_weight;
      if (k >= 8) continue;  // the rest are in the JSON and the report
      out << "  synapse " << synapse_name(*labs[i].synapse, static_cast<uint32_t>(k)) << ": weight "
          << std::setprecision(3) << syn[k].initial_weight << " -> " << syn[k].weight << " (" << syn[k].ltp
          << " LTP, " << syn[k].ltd << " LTD pulses decided)\n";
    }
    if (syn.size() > 8) {
      out << "  ... " << syn.size() << " synapses in all: " << up << " potentiated, " << down << " depressed, "
          << syn.size() - up - down << " unchanged\n";
    }
  }
  out << "  broker dropped " << broker_dropped << " events (counted); recorded " << recorded << " events; "
      << rec_summary.tap_gap_batches << " batches dropped for the recorder (counted)\n";
  const std::string verdict =
      ok ? "OK: every event was delivered at its deadline or counted late; none early, none out of order"
         : "BROKEN PROMISE: " + std::to_string(late_uncounted) + " delivered late without being counted, " +
               std::to_string(early) + " early, " + std::to_string(disorder) + " out of order" +
               (recorder_ok ? std::string() : ", the recorder failed");
  out << "  " << verdict << "\n";

  ReportOptions rep;
  rep.title = "ion demo — " + (o.topology == "three-lab" ? std::string("the three-lab network") : o.topology);
  rep.verdict = verdict;
  rep.verdict_ok = ok;
  rep.facts.emplace_back("emulated WAN", o.emulated_wan ? "yes (site presets)" : "no");
  for (size_t i = 0; i < labs.size(); ++i) {
    rep.facts.emplace_back("lab " + labs[i].name, labs[i].kind + ", link " + labs[i].preset + ", delivery error p99 " +
                                                      std::to_string(finals[i].audit.error_p99_ns / 1000) + " us");
    for (size_t k = 0; k < finals[i].synapses.size() && k < 8; ++k) {
      const auto& st = finals[i].synapses[k];
      std::ostringstream w;
      w << std::setprecision(3) << st.initial_weight << " -> " << st.weight << " (" << st.ltp << " LTP, " << st.ltd << " LTD)";
      rep.facts.emplace_back("synapse " + synapse_name(*labs[i].synapse, static_cast<uint32_t>(k)), w.str());
      rep.labels[labs[i].name + "/" + std::to_string(k)] = synapse_name(*labs[i].synapse, static_cast<uint32_t>(k));
    }
  }
  try {
    const ReportStats rs = write_report(recording, report, rep);
    out << "  report: " << report << " (" << rs.sites << " sites, " << rs.weight_series << " weight traces, "
        << rs.latency_histograms << " latency histograms, " << rs.clock_traces << " clock traces)\n";
  } catch (const std::exception& e) {
    out << "ion demo: no report: " << e.what() << "\n";
  }

  if (o.json) {
    std::ostringstream j;
    j << "{\"ok\":" << (ok ? "true" : "false") << ",\"duration_s\":" << o.duration_s
      << ",\"topology\":" << json_string(o.topology) << ",\"emulated_wan\":" << (o.emulated_wan ? "true" : "false")
      << ",\"out_dir\":" << json_string(out_dir) << ",\"recording\":" << json_string(recording)
      << ",\"report\":" << json_string(report) << ",\"recorded_events\":" << recorded
      << ",\"late_uncounted\":" << late_uncounted << ",\"early\":" << early << ",\"out_of_order\":" << disorder
      << ",\"broker\":{\"endpoint\":" << json_string(endpoint) << ",\"dropped\":" << broker_dropped
      << ",\"curve\":" << (o.plaintext ? "false" : "true") << ",\"authenticated\":"
      << broker.auth_stats().accepted << "},\"nodes\":[";
    for (size_t i = 0; i < labs.size(); ++i) {
      const NodeStats& s = finals[i].stats;
      const AuditCounts& a = finals[i].audit;
      j << (i ? "," : "") << "{\"name\":" << json_string(labs[i].name) << ",\"kind\":" << json_string(labs[i].kind)
        << ",\"link\":" << json_string(labs[i].preset) << ",\"emitted\":" << s.emitted_events
        << ",\"received\":" << s.received_events << ",\"lost\":" << s.lost_events << ",\"late\":" << s.late_events
        << ",\"dropped\":" << s.dropped_events + s.late_dropped + s.playout_overflow + s.playout_abandoned
        << ",\"overrun\":" << s.playout_overrun << ",\"late_uncounted\":" << a.late_uncounted << ",\"early\":" << a.early
        << ",\"delivery_error_p99_ns\":" << a.error_p99_ns << ",\"latency_p99_ns\":" << s.latency_p99_ns
        << ",\"clock_offset_ns\":" << s.clock_offset_ns << ",\"clock_uncertainty_ns\":" << s.clock_uncertainty_ns << "}";
    }
    j << "],\"synapses\":[";
    bool first = true;
    for (size_t i = 0; i < labs.size(); ++i) {
      for (size_t k = 0; k < finals[i].synapses.size(); ++k) {
        const auto& st = finals[i].synapses[k];
        j << (first ? "" : ",") << "{\"name\":" << json_string(synapse_name(*labs[i].synapse, static_cast<uint32_t>(k)))
          << ",\"initial_weight\":" << st.initial_weight << ",\"final_weight\":" << st.weight
          << ",\"ltp_events\":" << st.ltp << ",\"ltd_events\":" << st.ltd << "}";
        first = false;
      }
    }
    j << "]}";
    out << j.str() << "\n";
  }
  out.flush();
  return ok ? 0 : 1;
}

}  // namespace ion
