#include "ion/synapse/distal_reward.h"

#include <algorithm>
#include <random>

namespace ion::synapse {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr uint32_t kReward = UINT32_MAX;

struct Event {
  int64_t t_ns;
  uint32_t neuron;  // kReward: a reward
};

}  // namespace

RuleSet DistalRewardProtocol::izhikevich_rules() {
  RuleSet r;
  r.reward.mode = ModulatorMode::bolus;
  r.reward.tau_c_ns = 1000 * kMs;
  r.reward.tau_d_ns = 200 * kMs;
  r.reward.a_plus = 1.0;
  r.reward.a_minus = 1.5;
  r.reward.tau_plus_ns = 20 * kMs;
  r.reward.tau_minus_ns = 20 * kMs;
  r.reward.quantum = 0.01;
  return r;
}

DistalRewardResult run_distal_reward(const DistalRewardProtocol& p) {
  const uint32_t n = p.synapses;
  std::mt19937_64 rng(p.seed);
  std::vector<Event> ev;
  DistalRewardResult out;
  std::exponential_distribution<double> background(p.background_hz);
  for (uint32_t k = 0; k < 2 * n; ++k) {
    for (double t = background(rng); t < p.seconds; t += background(rng)) {
      ev.push_back({static_cast<int64_t>(t * 1e9), k});
    }
  }
  std::uniform_real_distribution<double> gap(2.0, 6.0), delay(1.0, 3.0), u(0.0, 1.0);
  std::uniform_int_distribution<uint32_t> other(1, n - 1);
  for (double t = 1.0; t < p.seconds - 4; t += gap(rng)) {
    const uint32_t k = u(rng) < p.rewarded_share ? 0 : other(rng);
    const auto pre = static_cast<int64_t>(t * 1e9);
    ev.push_back({pre, k});
    ev.push_back({pre + 5 * kMs, n + k});
    ++out.pairings;
    if (k == 0) {
      ev.push_back({pre + static_cast<int64_t>(delay(rng) * 1e9), kReward});
      ++out.rewards;
    }
  }
  std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) { return a.t_ns < b.t_ns; });

  std::vector<PlasticSynapse> syn;
  for (uint32_t k = 0; k < n; ++k) syn.push_back({k, n + k, RuleKind::reward});
  PlasticityEngine e(2 * n, syn, p.rules);
  std::vector<std::pair<int64_t, Event>> arrivals;
  std::mt19937_64 net(99);
  std::uniform_int_distribution<int64_t> latency(20 * kMs, 60 * kMs);
  for (const Event& x : ev) arrivals.emplace_back(x.t_ns + (p.wan ? latency(net) : 0), x);
  std::stable_sort(arrivals.begin(), arrivals.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [arrival, x] : arrivals) {
    e.commit(arrival, out.pulses);
    if (x.neuron == kReward) {
      (void)e.add_modulator(x.t_ns, p.reward_um);
    } else {
      (void)e.add_spike(x.neuron, x.t_ns);
    }
  }
  e.commit_all(out.pulses);
  for (uint32_t k = 0; k < n; ++k) out.change.push_back(e.reward_change_of(k));
  out.too_late = e.counters().too_late;
  return out;
}

}  // namespace ion::synapse
