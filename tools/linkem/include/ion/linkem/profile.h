#pragma once
// What a link does to traffic, per direction, and the presets of the original three-lab setup.
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ion/core/config.h"

namespace ion::linkem {

// One-way delay = base + |jitter_mean + normal(0, jitter_sd) + pareto tail|.
struct DelayModel {
  int64_t base_ns = 0;          // propagation floor
  int64_t jitter_sd_ns = 0;     // normal jitter around base + jitter_mean
  int64_t jitter_mean_ns = 0;   // queueing mean above the floor
  double tail_probability = 0;  // chance of a Pareto-distributed extra delay (bursty queues)
  double tail_alpha = 2.5;      // Pareto shape (> 1)
  int64_t tail_scale_ns = 0;    // Pareto scale (minimum extra when it happens)

  // Never below base: a path cannot beat its own propagation delay.
  int64_t sample(std::mt19937_64& rng) const;
};

struct Direction {
  DelayModel delay;
  double loss = 0;       // probability a message is lost
  // true: a lost message is dropped (what a datagram transport would see; tests IoN's accounting).
  // false: it is retransmitted after `retransmit_ns` and holds up what follows, as TCP does.
  bool loss_drops = false;
  int64_t retransmit_ns = 200'000'000;  // Linux minimum RTO
  double duplicate = 0;  // probability a message is sent twice
  double reorder = 0;    // probability a message is held back and sent after the next one
  double bandwidth_bps = 0;  // 0 = unlimited
};

struct LinkProfile {
  std::string name = "none";
  Direction up;    // node -> broker
  Direction down;  // broker -> node

  // Presets: "loopback" (no impairment), "southampton-padova", "padova-zurich",
  // "southampton-zurich" (physical one-way floors 5.7 / 1.65 / 4.0 ms, real paths about 2.5x
  // that, with jitter, a Pareto tail and TCP-style loss), and "wan-20ms-5ms" (20 ms one way with
  // 5 ms symmetric jitter, the clock benchmark's case).
  static std::optional<LinkProfile> preset(const std::string& name);
  static std::vector<std::string> preset_names();
  // Reads `link:` from a config node: either `preset: NAME` or `up:`/`down:` mappings.
  static LinkProfile from_config(const ConfigNode& link);
};

}  // namespace ion::linkem
