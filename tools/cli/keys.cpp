#include "cli/keys.h"
#include "cli/command.h"

#include <ostream>

namespace ion {

int run_keygen(const KeygenOptions& o, std::ostream& out) {
  const CurveKeyPair pair = generate_keypair(o.name);
  const KeyFiles files = write_keypair(pair, o.dir, o.force);
  out << "ion keygen: wrote " << files.secret_path << " (secret, mode 0600: keep it on "
      << o.name << "'s machine) and " << files.public_path << "\n"
      << "Add this line to the broker's allowlist:\n"
      << allowlist_line(pair) << "\n";
  return 0;
}

}  // namespace ion

namespace ion::cli {
namespace {

class KeygenCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "keygen", "make a CURVE key pair: NAME.key (secret, 0600) and NAME.pub (the allowlist line)");
    c->add_option("name", o_.name, "the node's (or broker's) name")->required();
    c->add_option("--dir", o_.dir, "folder to write to")->capture_default_str();
    c->add_flag("--force", o_.force, "replace existing key files");
    return c;
  }
  int run(Context& ctx) override { return run_keygen(o_, ctx.out); }

 private:
  KeygenOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_keygen_command() { return std::make_unique<KeygenCommand>(); }

}  // namespace ion::cli
