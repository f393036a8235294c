// ion-broker: routes spike events between lab nodes. See docs/config.md for the config file.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "ion/broker/broker.h"
#include "ion/broker/http.h"
#include "ion/core/log.h"
#include "ion/core/transport.h"

namespace {
ion::Broker* g_broker = nullptr;
void on_signal(int sig) {
  if (g_broker == nullptr) return;
  if (sig == SIGHUP) {
    g_broker->reload_allowlist();
  } else {
    g_broker->stop();
  }
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ion-broker: the IoN hub that routes timestamped spike events between lab nodes"};
  std::string config;
  std::string listen;
  std::string log_level = "info";
  bool insecure = false;
  std::string http;
  std::string web_root;
  std::string key_file;
  std::string allowlist_file;
  app.add_option("--config", config, "broker config file (YAML)")->required();
  app.add_option("--listen", listen, "override broker.listen, e.g. tcp://0.0.0.0:5555");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");
  app.add_option("--http", http,
                 "serve the dashboard, /metrics and /api/status on HOST:PORT (override broker.http), "
                 "e.g. 127.0.0.1:8080");
  app.add_option("--web-root", web_root, "serve the dashboard's files from this folder (development)");
  app.add_option("--key", key_file, "override broker.secret_key: the broker's secret key file");
  app.add_option("--allowlist", allowlist_file,
                 "override broker.allowlist: the node keys admitted ('NAME KEY' lines)");
  app.add_flag("--insecure", insecure,
               "accept plaintext, unauthenticated nodes on an address other machines can reach "
               "(never across the internet; see docs/security.md)");
  app.set_version_flag("--version", "ion-broker " ION_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors are status 2; --help and --version 0
  }
  if (!ion::set_log_level(log_level.c_str())) {
    std::fprintf(stderr, "ion-broker: --log-level: unknown level '%s'\n", log_level.c_str());
    return 2;
  }
  try {
    ion::BrokerOptions options = ion::BrokerOptions::from_file(config);
    if (!listen.empty()) options.listen = listen;
    if (!http.empty()) options.http = http;
    const std::string http_listen = options.http;
    if (key_file.empty() != allowlist_file.empty()) {
      std::fprintf(stderr, "ion-broker: --key and --allowlist go together\n");
      return 2;
    }
    if (!key_file.empty()) options.security = ion::BrokerSecurity::load(key_file, allowlist_file);
    options.security.insecure = insecure;
    if (insecure && options.security.key) {
      spdlog::warn("--insecure ignored: the config gives the broker a CURVE key");
    }
    ion::Broker broker(std::move(options));
    broker.bind();
    std::unique_ptr<ion::HttpServer> http_server;
    if (!http_listen.empty()) {
      ion::HttpOptions ho;
      ho.listen = http_listen;
      ho.web_root = web_root;
      http_server = std::make_unique<ion::HttpServer>(broker, ho);
    }
    g_broker = &broker;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGHUP, on_signal);  // reload the allowlist
    broker.run();
    g_broker = nullptr;
    spdlog::info("broker stopped");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ion-broker: %s\n", e.what());
    return 2;
  }
  return 0;
}
