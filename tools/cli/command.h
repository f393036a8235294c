#pragma once
// The `ion` command's subcommands. Each is declared beside its implementation (demo.cpp holds
// `ion demo` and its options) and listed once in command.cpp; main.cpp builds the app from the
// list and runs the one chosen, so adding a subcommand never touches main.cpp.
#include <CLI/CLI.hpp>

#include <atomic>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ion/core/security.h"

namespace ion::cli {

// What every subcommand may use besides its own options.
class Context {
 public:
  Context(std::ostream& output, std::atomic<bool>& stop_flag) : out(output), stop(stop_flag) {}
  std::ostream& out;
  std::atomic<bool>& stop;  // set by SIGINT/SIGTERM after catch_signals()

  // SIGINT and SIGTERM set `stop` (commands that run until stopped).
  void catch_signals() const;
  // --key and --broker-key on `cmd` (tools that talk to a CURVE broker).
  void add_client_keys(CLI::App* cmd);
  // The keys those options name, or none (plaintext).
  [[nodiscard]] std::optional<CurveClientKeys> client_keys() const;
  // --force on `cmd` (commands that write a file).
  void add_force(CLI::App* cmd);
  // An output never replaces an input, nor an existing file without --force (throws UsageError).
  void check_output(const std::string& out_path, const std::vector<std::string>& inputs,
                    const char* option) const;

 private:
  std::string key_file_;
  std::string broker_key_;
  bool force_ = false;
};

class Command {
 public:
  virtual ~Command() = default;
  // Adds the subcommand and its options under `parent`.
  virtual CLI::App* add(CLI::App& parent, Context& ctx) = 0;
  // Runs it once chosen and parsed: 0 ok, 1 a broken promise or failed check, 2 a usage, config
  // or connection error (docs/cli.md). Exceptions become `ion: WHAT` and status 2.
  virtual int run(Context& ctx) = 0;
};

// A group of subcommands (`ion bench ...`): runs the one chosen.
class CommandGroup final : public Command {
 public:
  CommandGroup(std::string name, std::string help, std::vector<std::unique_ptr<Command>> children);
  CLI::App* add(CLI::App& parent, Context& ctx) override;
  int run(Context& ctx) override;

 private:
  std::string name_, help_;
  std::vector<std::unique_ptr<Command>> children_;
  std::vector<CLI::App*> apps_;
};

// Every subcommand, in `ion --help` order (command.cpp).
std::vector<std::unique_ptr<Command>> all_commands();

// One per file that implements the command.
std::unique_ptr<Command> make_demo_command();
std::unique_ptr<Command> make_report_command();
std::unique_ptr<Command> make_status_command();
std::unique_ptr<Command> make_bench_command();  // bench timing, mea, chip, synapse, broker, record, python
std::unique_ptr<Command> make_bench_timing_command();
std::unique_ptr<Command> make_bench_mea_command();
std::unique_ptr<Command> make_bench_chip_command();
std::unique_ptr<Command> make_bench_synapse_command();
std::unique_ptr<Command> make_bench_broker_command();
std::unique_ptr<Command> make_bench_record_command();
std::unique_ptr<Command> make_bench_python_command();
std::unique_ptr<Command> make_bench_connectome_command();
std::unique_ptr<Command> make_bench_tspcm_command();
std::unique_ptr<Command> make_bench_chemical_command();
std::unique_ptr<Command> make_connectome_command();  // connectome simulate, infer, score
std::unique_ptr<Command> make_linkem_command();
std::unique_ptr<Command> make_record_command();
std::unique_ptr<Command> make_replay_command();
std::unique_ptr<Command> make_import_command();
std::unique_ptr<Command> make_export_command();
std::unique_ptr<Command> make_inspect_command();
std::unique_ptr<Command> make_keygen_command();

}  // namespace ion::cli
