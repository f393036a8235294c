#include "ion/linkem.h"

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
