#include "ion/synapse/plasticity.h"

#include <algorithm>
#include <cmath>

namespace ion::synapse {

PlasticityEngine::PlasticityEngine(uint32_t neurons, std::vector<PlasticSynapse> synapses,
                                   RuleSet rules)
    : rules_(rules),
      synapses_(std::move(synapses)),
      by_post_(neurons),
      stdp_by_pre_(neurons),
      reward_by_post_(neurons),
      reward_by_pre_(neurons),
      history_(neurons) {
  for (uint32_t s = 0; s < synapses_.size(); ++s) {
    const PlasticSynapse& p = synapses_[s];
    if (p.rule == RuleKind::none || p.pre >= neurons || p.post >= neurons) continue;
    if (p.rule == RuleKind::reward) {
      reward_by_post_[p.post].push_back(s);
      reward_by_pre_[p.pre].push_back(s);
      reward_synapses_.push_back(s);
      continue;
    }
    by_post_[p.post].push_back(s);
    if (p.rule == RuleKind::stdp) stdp_by_pre_[p.pre].push_back(s);
  }
  lookback_ns_ = std::max({rules_.rate.window_ns, rules_.stdp.window_ns, rules_.reward.window_ns});
  reward_.assign(synapses_.size(), RewardState{});
  ltp_.assign(synapses_.size(), 0);
  ltd_.assign(synapses_.size(), 0);
}

bool PlasticityEngine::add_spike(uint32_t neuron, int64_t t_ns) noexcept {
  if (neuron >= history_.size()) {
    ++c_.rejected_neuron;
    return false;
  }
  if (t_ns <= committed_ns_) {  // evaluations up to here are already made
    ++c_.too_late;
    return false;
  }
  ++c_.spikes;
  auto& h = history_[neuron];
  if (h.size() >= rules_.history_per_neuron) {
    h.erase(h.begin());
    ++c_.history_dropped;
  }
  if (h.empty() || h.back() <= t_ns) {
    h.push_back(t_ns);
  } else {
    h.insert(std::upper_bound(h.begin(), h.end(), t_ns), t_ns);  // out of order, within horizon
  }
  if (!by_post_[neuron].empty() || !stdp_by_pre_[neuron].empty() || !reward_by_post_[neuron].empty() ||
      !reward_by_pre_[neuron].empty()) {
    triggers_.push({t_ns, neuron});
  }
  return true;
}

bool PlasticityEngine::add_modulator(int64_t t_ns, double value) noexcept {
  if (!std::isfinite(value) || reward_synapses_.empty()) return false;
  if (t_ns <= committed_ns_) {
    ++c_.too_late;
    return false;
  }
  ++c_.modulator_samples;
  triggers_.push({t_ns, kModulator, value});
  return true;
}

double PlasticityEngine::eligibility_of(uint32_t synapse) const noexcept {
  return synapse < reward_.size() ? reward_[synapse].c : 0.0;
}

double PlasticityEngine::reward_change_of(uint32_t synapse) const noexcept {
  return synapse < reward_.size() ? reward_[synapse].total : 0.0;
}

void PlasticityEngine::settle(uint32_t synapse, int64_t t_ns, std::vector<Pulse>& out) noexcept {
  RewardState& r = reward_[synapse];
  const RewardRule& rule = rules_.reward;
  if (r.t_ns == INT64_MIN || t_ns <= r.t_ns) {
    r.t_ns = std::max(r.t_ns, t_ns);
    return;
  }
  // d has been what on_modulator left since d_t_ns_ <= r.t_ns (every sample settles everyone).
  const double dt = static_cast<double>(t_ns - r.t_ns) * 1e-9;
  const double tau_c = static_cast<double>(rule.tau_c_ns) * 1e-9;
  double integral = 0;
  if (d_ > 0 && r.c != 0) {
    if (rule.mode == ModulatorMode::level) {
      integral = r.c * d_ * tau_c * -std::expm1(-dt / tau_c);
    } else {
      const double tau_d = static_cast<double>(rule.tau_d_ns) * 1e-9;
      const double d1 = d_ * std::exp(-static_cast<double>(r.t_ns - d_t_ns_) * 1e-9 / tau_d);
      const double k = 1.0 / tau_c + 1.0 / tau_d;
      integral = r.c * d1 * -std::expm1(-k * dt) / k;
    }
  }
  r.c *= std::exp(-dt / tau_c);
  r.t_ns = t_ns;
  r.s += integral;
  r.total += integral;
  // Whole quanta become pulses now (at most 64 per update; the rest waits for the next).
  for (int k = 0; k < 64 && std::fabs(r.s) >= rule.quantum; ++k) {
    if (r.s > 0) {
      out.push_back({synapse, rule.ltp_volts, rule.width_s, t_ns});
      r.s -= rule.quantum;
      ++c_.ltp;
      ++ltp_[synapse];
    } else {
      out.push_back({synapse, rule.ltd_volts, rule.width_s, t_ns});
      r.s += rule.quantum;
      ++c_.ltd;
      ++ltd_[synapse];
    }
  }
}

void PlasticityEngine::on_modulator(const Trigger& t, std::vector<Pulse>& out) noexcept {
  for (const uint32_t s : reward_synapses_) settle(s, t.t_ns, out);
  const RewardRule& rule = rules_.reward;
  if (rule.mode == ModulatorMode::level) {
    d_ = std::max(0.0, t.value - rule.baseline);
  } else {
    const double tau_d = static_cast<double>(rule.tau_d_ns) * 1e-9;
    const double left = d_t_ns_ == INT64_MIN ? 0.0 : d_ * std::exp(-static_cast<double>(t.t_ns - d_t_ns_) * 1e-9 / tau_d);
    d_ = std::max(0.0, left + t.value);
  }
  d_t_ns_ = t.t_ns;
}

size_t PlasticityEngine::count_in(uint32_t neuron, int64_t from_ns, int64_t to_ns) const noexcept {
  const auto& h = history_[neuron];
  return static_cast<size_t>(std::lower_bound(h.begin(), h.end(), to_ns) -
                             std::lower_bound(h.begin(), h.end(), from_ns));
}

int64_t PlasticityEngine::latest_before(uint32_t neuron, int64_t before_ns) const noexcept {
  const auto& h = history_[neuron];
  const auto it = std::lower_bound(h.begin(), h.end(), before_ns);
  return it == h.begin() ? INT64_MIN : *std::prev(it);
}

void PlasticityEngine::evaluate(const Trigger& t, std::vector<Pulse>& out) noexcept {
  if (t.neuron == kModulator) {
    on_modulator(t, out);
    return;
  }
  // Reward rule: pairings move the eligibility trace; the modulator turns it into change.
  const RewardRule& rr = rules_.reward;
  for (const uint32_t s : reward_by_post_[t.neuron]) {
    ++c_.evaluations;
    settle(s, t.t_ns, out);
    const int64_t pre = latest_before(synapses_[s].pre, t.t_ns);
    if (pre != INT64_MIN && t.t_ns - pre <= rr.window_ns) {
      reward_[s].c += rr.a_plus * std::exp(-static_cast<double>(t.t_ns - pre) / static_cast<double>(rr.tau_plus_ns));
    }
  }
  for (const uint32_t s : reward_by_pre_[t.neuron]) {
    ++c_.evaluations;
    settle(s, t.t_ns, out);
    const int64_t post = latest_before(synapses_[s].post, t.t_ns);
    if (post != INT64_MIN && t.t_ns - post <= rr.window_ns) {
      reward_[s].c -= rr.a_minus * std::exp(-static_cast<double>(t.t_ns - post) / static_cast<double>(rr.tau_minus_ns));
    }
  }
  for (const uint32_t s : by_post_[t.neuron]) {
    const PlasticSynapse& p = synapses_[s];
    ++c_.evaluations;
    if (p.rule == RuleKind::rate) {
      const RateRule& r = rules_.rate;
      // Presynaptic spikes in (T - window, T], at most max_count (the hub kept the last 100).
      const auto n = std::min<size_t>(count_in(p.pre, t.t_ns - r.window_ns + 1, t.t_ns + 1),
                                      r.max_count);
      if (n > r.ltp_above) {
        out.push_back({s, r.ltp_volts, r.width_s, t.t_ns});
        ++c_.ltp;
        ++ltp_[s];
      } else if (n < r.ltd_below) {
        out.push_back({s, r.ltd_volts, r.width_s, t.t_ns});
        ++c_.ltd;
        ++ltd_[s];
      }
    } else if (p.rule == RuleKind::stdp) {
      const StdpRule& r = rules_.stdp;
      const int64_t pre = latest_before(p.pre, t.t_ns);  // strictly earlier: pre before post
      if (pre != INT64_MIN && t.t_ns - pre <= r.window_ns) {
        const double k = std::exp(-static_cast<double>(t.t_ns - pre) / static_cast<double>(r.tau_plus_ns));
        out.push_back({s, r.ltp_v_min + (r.ltp_v_max - r.ltp_v_min) * k, r.width_s, t.t_ns});
        ++c_.ltp;
        ++ltp_[s];
      }
    }
  }
  for (const uint32_t s : stdp_by_pre_[t.neuron]) {
    const PlasticSynapse& p = synapses_[s];
    const StdpRule& r = rules_.stdp;
    ++c_.evaluations;
    const int64_t post = latest_before(p.post, t.t_ns);  // post before pre: depression
    if (post != INT64_MIN && t.t_ns - post <= r.window_ns) {
      const double k = std::exp(-static_cast<double>(t.t_ns - post) / static_cast<double>(r.tau_minus_ns));
      out.push_back({s, r.ltd_v_min + (r.ltd_v_max - r.ltd_v_min) * k, r.width_s, t.t_ns});
      ++c_.ltd;
      ++ltd_[s];
    }
  }
}

void PlasticityEngine::trim(int64_t keep_from_ns) noexcept {
  for (auto& h : history_) {
    if (h.empty() || h.front() >= keep_from_ns) continue;
    h.erase(h.begin(), std::lower_bound(h.begin(), h.end(), keep_from_ns));
  }
}

size_t PlasticityEngine::commit_until(int64_t until_ns, std::vector<Pulse>& out) noexcept {
  size_t n = 0;
  const uint64_t before = c_.evaluations;
  while (!triggers_.empty() && triggers_.top().t_ns <= until_ns) {
    const Trigger t = triggers_.top();
    triggers_.pop();
    evaluate(t, out);
  }
  n = static_cast<size_t>(c_.evaluations - before);
  if (until_ns > committed_ns_) {
    committed_ns_ = until_ns;
    // Later triggers are at > committed: they look back no further than this.
    if (committed_ns_ > INT64_MIN + lookback_ns_) trim(committed_ns_ - lookback_ns_);
  }
  return n;
}

size_t PlasticityEngine::commit(int64_t now_ns, std::vector<Pulse>& out) noexcept {
  return commit_until(now_ns - rules_.horizon_ns, out);
}

size_t PlasticityEngine::commit_all(std::vector<Pulse>& out) noexcept {
  int64_t last = committed_ns_;
  for (const auto& h : history_) {
    if (!h.empty()) last = std::max(last, h.back());
  }
  std::vector<Trigger> pending;  // modulator samples may come after the last spike
  while (!triggers_.empty()) {
    last = std::max(last, triggers_.top().t_ns);
    pending.push_back(triggers_.top());
    triggers_.pop();
  }
  for (const Trigger& t : pending) triggers_.push(t);
  return commit_until(last, out);
}

}  // namespace ion::synapse
