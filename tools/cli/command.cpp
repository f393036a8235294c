#include "cli/command.h"

#include <csignal>

#include "cli/outputs.h"

namespace ion::cli {
namespace {

std::atomic<bool>* g_stop = nullptr;
void on_signal(int /*sig*/) {
  if (g_stop != nullptr) g_stop->store(true);
}

}  // namespace

void Context::catch_signals() const {
  g_stop = &stop;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

void Context::add_client_keys(CLI::App* cmd) {
  cmd->add_option("--key", key_file_, "this peer's secret key file (a CURVE broker)");
  cmd->add_option("--broker-key", broker_key_, "the broker's public key: its .pub file or the key");
}

std::optional<CurveClientKeys> Context::client_keys() const {
  return ion::client_keys(key_file_, broker_key_);
}

void Context::add_force(CLI::App* cmd) {
  cmd->add_flag("--force", force_, "replace an existing output file (never one of the inputs)");
}

void Context::check_output(const std::string& out_path, const std::vector<std::string>& inputs,
                           const char* option) const {
  ion::check_output(out_path, inputs, force_, option);
}

CommandGroup::CommandGroup(std::string name, std::string help,
                           std::vector<std::unique_ptr<Command>> children)
    : name_(std::move(name)), help_(std::move(help)), children_(std::move(children)) {}

CLI::App* CommandGroup::add(CLI::App& parent, Context& ctx) {
  CLI::App* group = parent.add_subcommand(name_, help_);
  group->require_subcommand(1);
  for (const auto& c : children_) apps_.push_back(c->add(*group, ctx));
  return group;
}

int CommandGroup::run(Context& ctx) {
  for (size_t i = 0; i < children_.size(); ++i) {
    if (apps_[i]->parsed()) return children_[i]->run(ctx);
  }
  return 2;  // not reached: CLI11 requires one
}

std::vector<std::unique_ptr<Command>> all_commands() {
  std::vector<std::unique_ptr<Command>> c;
  c.push_back(make_demo_command());
  c.push_back(make_report_command());
  c.push_back(make_status_command());
  c.push_back(make_bench_command());
  c.push_back(make_linkem_command());
  c.push_back(make_record_command());
  c.push_back(make_replay_command());
  c.push_back(make_import_command());
  c.push_back(make_export_command());
  c.push_back(make_inspect_command());
  c.push_back(make_connectome_command());
  c.push_back(make_keygen_command());
  return c;
}

std::unique_ptr<Command> make_bench_command() {
  std::vector<std::unique_ptr<Command>> b;
  b.push_back(make_bench_timing_command());
  b.push_back(make_bench_mea_command());
  b.push_back(make_bench_chip_command());
  b.push_back(make_bench_synapse_command());
  b.push_back(make_bench_broker_command());
  b.push_back(make_bench_record_command());
  b.push_back(make_bench_python_command());
  b.push_back(make_bench_connectome_command());
  b.push_back(make_bench_tspcm_command());
  b.push_back(make_bench_chemical_command());
  return std::make_unique<CommandGroup>("bench", "print performance figures", std::move(b));
}

}  // namespace ion::cli
