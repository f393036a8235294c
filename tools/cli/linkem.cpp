#include "cli/linkem.h"
#include "cli/command.h"

#include <ostream>
#include <thread>

#include "ion/linkem/link_emulator.h"

namespace ion {

int run_linkem(const LinkemOptions& o, const std::atomic<bool>& stop, std::ostream& out) {
  linkem::LinkProfile profile;
  if (!o.config.empty()) {
    const ConfigNode root = ConfigNode::load_file(o.config);
    root.only_keys({"link"});
    profile = linkem::LinkProfile::from_config(root.child("link"));
  } else {
    const auto p = linkem::LinkProfile::preset(o.preset.empty() ? "loopback" : o.preset);
    if (!p) {
      std::string names;
      for (const auto& n : linkem::LinkProfile::preset_names()) names += " " + n;
      out << "ion linkem: unknown preset '" << o.preset << "'; presets:" << names << "\n";
      return 2;
    }
    profile = *p;
  }
  linkem::LinkEmulator em(profile, o.listen, o.connect, o.seed);
  out << "ion linkem: " << profile.name << " link on 127.0.0.1:" << em.port() << " -> "
      << o.connect << " (point a node's broker setting at tcp://<this host>:" << em.port()
      << ")\n";
  out.flush();
  auto next = std::chrono::steady_clock::now() + std::chrono::seconds(o.stats_interval_s);
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() < next) continue;
    next += std::chrono::seconds(o.stats_interval_s);
    const auto s = em.stats();
    for (const auto& [name, d] : {std::pair{"up  ", s.up}, std::pair{"down", s.down}}) {
      out << "  " << name << " messages " << d.messages << " dropped " << d.dropped
          << " retransmitted " << d.retransmitted << " duplicated " << d.duplicated
          << " reordered " << d.reordered << " delay p50 " << d.delay_p50_ns / 1000 << " us p99 "
          << d.delay_p99_ns / 1000 << " us\n";
    }
    out.flush();
  }
  em.stop();
  return 0;
}

}  // namespace ion

namespace ion::cli {
namespace {

class LinkemCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "linkem", "userspace WAN link emulator between a node and the broker (no root needed)");
    c->add_option("--listen", o_.listen, "host:port nodes connect to")->capture_default_str();
    c->add_option("--connect", o_.connect, "host:port of the broker")->capture_default_str();
    c->add_option("--preset", o_.preset,
                  "loopback, southampton-padova, padova-zurich, southampton-zurich, wan-20ms-5ms");
    c->add_option("--config", o_.config, "YAML file with a link: mapping");
    c->add_option("--seed", o_.seed, "random seed")->capture_default_str();
    c->add_option("--stats-interval", o_.stats_interval_s, "seconds between lines")
        ->check(CLI::Range(1, 3600))->capture_default_str();
    return c;
  }
  int run(Context& ctx) override {
    ctx.catch_signals();
    return run_linkem(o_, ctx.stop, ctx.out);
  }

 private:
  LinkemOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_linkem_command() { return std::make_unique<LinkemCommand>(); }

}  // namespace ion::cli
