// ion: the IoN command-line tool. `ion --help` lists the subcommands; each is declared beside
// its implementation and listed in command.cpp.
#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "ion/core/log.h"

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

  std::atomic<bool> stop{false};
  ion::cli::Context ctx(std::cout, stop);
  const auto commands = ion::cli::all_commands();
  std::vector<CLI::App*> apps;
  for (const auto& c : commands) apps.push_back(c->add(app, ctx));

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
    for (size_t i = 0; i < commands.size(); ++i) {
      if (apps[i]->parsed()) return commands[i]->run(ctx);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ion: %s\n", e.what());
    return 2;
  }
  return 0;
}
