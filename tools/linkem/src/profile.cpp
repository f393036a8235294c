#include "ion/linkem/profile.h"

#include <cmath>

namespace ion::linkem {

int64_t DelayModel::sample(std::mt19937_64& rng) const {
  double extra = static_cast<double>(jitter_mean_ns);
  if (jitter_sd_ns > 0) {
    extra += std::normal_distribution<double>(0.0, static_cast<double>(jitter_sd_ns))(rng);
  }
  if (tail_probability > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < tail_probability) {
    const double u = std::uniform_real_distribution<double>(1e-12, 1.0)(rng);
    extra += static_cast<double>(tail_scale_ns) / std::pow(u, 1.0 / tail_alpha);
  }
  // Reflect at the floor so the distribution keeps its spread instead of piling up at base.
  const double d = static_cast<double>(base_ns) + std::abs(extra);
  return static_cast<int64_t>(d);
}

namespace {

// A real path `stretch` times the fibre floor, jitter a tenth of the floor, 1 % Pareto tail,
// 0.05 % loss recovered by TCP. In a continuous stream Linux recovers an isolated loss by fast
// retransmit or a tail-loss probe within one or two round trips; the presets use two (the 200 ms
// minimum RTO is for losses with nothing sent after them).
Direction wan(double floor_ms, double stretch) {
  Direction d;
  d.delay.base_ns = static_cast<int64_t>(floor_ms * 1e6);
  d.delay.jitter_mean_ns = static_cast<int64_t>(floor_ms * (stretch - 1.0) * 1e6);
  d.delay.jitter_sd_ns = static_cast<int64_t>(floor_ms * 0.1e6);
  d.delay.tail_probability = 0.01;
  d.delay.tail_alpha = 2.5;
  d.delay.tail_scale_ns = static_cast<int64_t>(floor_ms * 0.5e6);
  d.loss = 0.0005;
  d.loss_drops = false;
  d.retransmit_ns = static_cast<int64_t>(4 * floor_ms * stretch * 1e6);  // 2 RTT
  return d;
}

LinkProfile symmetric(const std::string& name, Direction d) {
  LinkProfile p;
  p.name = name;
  p.up = d;
  p.down = d;
  return p;
}

Direction read_direction(const ConfigNode& n) {
  n.only_keys({"delay", "jitter_mean", "jitter_sd", "tail_probability", "tail_alpha",
               "tail_scale", "loss", "loss_drops", "retransmit", "duplicate", "reorder",
               "bandwidth_bps"});
  using std::chrono::nanoseconds;
  using std::chrono::seconds;
  Direction d;
  d.delay.base_ns = n.duration("delay", nanoseconds(0), nanoseconds(0), seconds(60)).count();
  d.delay.jitter_mean_ns =
      n.duration("jitter_mean", nanoseconds(0), nanoseconds(0), seconds(60)).count();
  d.delay.jitter_sd_ns = n.duration("jitter_sd", nanoseconds(0), nanoseconds(0), seconds(60)).count();
  d.delay.tail_probability = n.number("tail_probability", 0, 0, 1);
  d.delay.tail_alpha = n.number("tail_alpha", 2.5, 1.01, 100);
  d.delay.tail_scale_ns =
      n.duration("tail_scale", nanoseconds(0), nanoseconds(0), seconds(60)).count();
  d.loss = n.number("loss", 0, 0, 1);
  d.loss_drops = n.boolean("loss_drops", false);
  d.retransmit_ns =
      n.duration("retransmit", nanoseconds(200'000'000), nanoseconds(0), seconds(60)).count();
  d.duplicate = n.number("duplicate", 0, 0, 1);
  d.reorder = n.number("reorder", 0, 0, 1);
  d.bandwidth_bps = n.number("bandwidth_bps", 0, 0, 1e12);
  return d;
}

}  // namespace

std::optional<LinkProfile> LinkProfile::preset(const std::string& name) {
  if (name == "loopback" || name == "none") return symmetric(name, Direction{});
  if (name == "southampton-padova") return symmetric(name, wan(5.7, 2.5));
  if (name == "padova-zurich") return symmetric(name, wan(1.65, 2.5));
  if (name == "southampton-zurich") return symmetric(name, wan(4.0, 2.5));
  if (name == "wan-20ms-5ms") {
    Direction d;
    d.delay.base_ns = 15'000'000;
    d.delay.jitter_mean_ns = 5'000'000;
    d.delay.jitter_sd_ns = 2'500'000;  // 20 ms ± 5 ms (2 sd), never below 15 ms
    return symmetric(name, d);
  }
  return std::nullopt;
}

std::vector<std::string> LinkProfile::preset_names() {
  return {"loopback", "southampton-padova", "padova-zurich", "southampton-zurich", "wan-20ms-5ms"};
}

LinkProfile LinkProfile::from_config(const ConfigNode& link) {
  link.only_keys({"preset", "up", "down"});
  if (link.has("preset")) {
    const std::string name = link.string("preset");
    auto p = preset(name);
    if (!p) {
      std::string names;
      for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
      link.fail("preset", "one of: " + names);
    }
    return *p;
  }
  LinkProfile p;
  p.name = "custom";
  if (auto up = link.find_child("up")) p.up = read_direction(*up);
  if (auto down = link.find_child("down")) p.down = read_direction(*down);
  return p;
}

}  // namespace ion::linkem
