// ion-node: runs one lab device driver and connects it to an IoN broker.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "ion/core/log.h"
#include "ion/drivers/registry.h"
#include "ion/node/node.h"

namespace {
ion::Node* g_node = nullptr;
void on_signal(int /*sig*/) {
  if (g_node != nullptr) g_node->stop();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ion-node: connects one lab device (or a generator, sink, replay) to an IoN broker"};
  std::string config;
  std::string broker;
  std::string log_level = "info";
  bool insecure = false;
  std::string key_file;
  std::string broker_key;
  app.add_option("--config", config, "node config file (YAML)")->required();
  app.add_option("--broker", broker, "override node.broker, e.g. tcp://broker.example:5555");
  app.add_option("--key", key_file, "override node.secret_key: this node's secret key file");
  app.add_option("--broker-key", broker_key,
                 "override node.broker_key: the broker's public key (its .pub file or the key)");
  app.add_flag("--insecure", insecure,
               "connect without CURVE to a broker on another machine (never across the internet)");
  bool replace = false;
  bool keep_retrying = false;
  app.add_flag("--replace", replace,
               "take this node's name over from a live process holding it (that one is cut off)");
  app.add_flag("--keep-retrying", keep_retrying,
               "after a refusal, keep retrying quietly instead of exiting with status 2 "
               "(node.on_refusal: retry)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");
  app.set_version_flag("--version", "ion-node " ION_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors are status 2; --help and --version 0
  }
  if (!ion::set_log_level(log_level.c_str())) {
    std::fprintf(stderr, "ion-node: --log-level: unknown level '%s'\n", log_level.c_str());
    return 2;
  }
  try {
    const ion::ConfigNode root = ion::ConfigNode::load_file(config);
    root.only_keys({"node", "driver"});
    ion::NodeOptions options = ion::NodeOptions::from_config(root);
    if (!broker.empty()) options.broker = broker;
    options.insecure = options.insecure || insecure;
    options.replace = options.replace || replace;
    if (keep_retrying) options.exit_on_refusal = false;
    if (auto keys = ion::client_keys(key_file, broker_key)) options.curve = std::move(keys);
    ion::Node node(std::move(options), ion::make_driver(root));
    g_node = &node;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    node.run();
    g_node = nullptr;
    const auto s = node.stats();
    spdlog::info("node stopped: emitted={} dropped={} received={} lost={} late={} "
                 "late_dropped={} abandoned={}",
                 s.emitted_events, s.dropped_events, s.received_events, s.lost_events,
                 s.late_events, s.late_dropped, s.playout_abandoned);
    std::string counters;
    for (const auto& [k, v] : node.driver().counters()) counters += " " + k + "=" + std::to_string(v);
    if (!counters.empty()) spdlog::info("driver counters:{}", counters);
    if (const ion::Refusal r = node.last_refusal(); r.kind != ion::RefusalKind::none &&
                                                    node.options().exit_on_refusal) {
      std::fprintf(stderr, "ion-node: refused: %s\n", r.reason.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ion-node: %s\n", e.what());
    return 2;
  }
  return 0;
}
