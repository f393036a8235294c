#include "ion/chip/model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ion::chip {
namespace {

// e^x for the exponential term, accurate to a few float ulps on the range the membrane uses; it
// is written so GCC vectorises it (libm's expf would keep the step loop scalar).
inline float exp_vec(float x) noexcept {
  x = std::min(std::max(x, -87.0F), 80.0F);
  const float kLog2e = 1.44269504F;
  const auto ni = static_cast<int32_t>(x * kLog2e + (x >= 0 ? 0.5F : -0.5F));
  const auto n = static_cast<float>(ni);
  const float r = (x - n * 0.693145751953125F) - n * 1.428606765330187e-06F;  // ln 2, split
  const float p =
      1.0F + r * (1.0F + r * (0.5F + r * (1.0F / 6 + r * (1.0F / 24 + r * (1.0F / 120 + r * (1.0F / 720))))));
  return p * std::bit_cast<float>((ni + 127) << 23);
}

struct StepArrays {
  float* __restrict v;
  float* __restrict w;
  float* __restrict refr;
  float* __restrict v_prev;
  uint8_t* __restrict crossed;
  const float* __restrict dt_over_c;
  const float* __restrict g_l;
  const float* __restrict e_l;
  const float* __restrict v_t;
  const float* __restrict delta_t;
  const float* __restrict inv_delta_t;
  const float* __restrict a;
  const float* __restrict dt_over_tau_w;
  const float* __restrict bias;
  const float* __restrict v_peak;
  float* __restrict s0;
  float* __restrict s1;
  float* __restrict s2;
  float* __restrict s3;
  const float* __restrict d0;
  const float* __restrict d1;
  const float* __restrict d2;
  const float* __restrict d3;
};

// One forward-Euler step for every neuron; neurons are the inner loop so it vectorises. Both
// derivatives use the state at the start of the step (as Brian2's `euler` does). A refractory
// neuron keeps V (it sits at reset) while w goes on adapting.
__attribute__((target_clones("avx2", "default"))) void step_kernel(const StepArrays& s,
                                                                    uint32_t n) noexcept {
  for (uint32_t i = 0; i < n; ++i) {
    const float v = s.v[i];
    const float w = s.w[i];
    const float current = s.bias[i] + s.s0[i] + s.s1[i] - s.s2[i] - s.s3[i];
    const float spike_current = s.g_l[i] * s.delta_t[i] * exp_vec((v - s.v_t[i]) * s.inv_delta_t[i]);
    const float dv = s.dt_over_c[i] * (-s.g_l[i] * (v - s.e_l[i]) + spike_current + current - w);
    const float dw = s.dt_over_tau_w[i] * (s.a[i] * (v - s.e_l[i]) - w);
    const bool refractory = s.refr[i] > 0.5F;
    const float v_new = refractory ? v : v + dv;
    s.refr[i] = refractory ? s.refr[i] - 1.0F : 0.0F;
    s.v_prev[i] = v;
    s.v[i] = v_new;
    s.w[i] = w + dw;
    s.crossed[i] = v_new > s.v_peak[i] ? 1 : 0;
    s.s0[i] *= s.d0[i];
    s.s1[i] *= s.d1[i];
    s.s2[i] *= s.d2[i];
    s.s3[i] *= s.d3[i];
  }
}

}  // namespace

std::string_view to_string(SynapseType t) noexcept {
  switch (t) {
    case SynapseType::fast_exc: return "fast_exc";
    case SynapseType::slow_exc: return "slow_exc";
    case SynapseType::fast_inh: return "fast_inh";
    case SynapseType::slow_inh: return "slow_inh";
  }
  return "?";
}

void ChipOptions::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (cores == 0 || cores > 256) fail("cores must be 1..256");
  if (neurons_per_core == 0 || neurons_per_core > 65536) fail("neurons_per_core must be 1..65536");
  if (neurons() > (1U << 22)) fail("at most 4194304 neurons per chip");
  if (chip_id > 255) fail("chip_id must be 0..255");
  if (!(step_ms >= 0.001 && step_ms <= 1.0)) fail("step_ms must be within 0.001..1");
  const NeuronParams& p = neuron;
  if (!(p.c_pf > 0 && p.g_l_ns > 0 && p.delta_t_mv > 0 && p.tau_w_ms > 0))
    fail("c_pf, g_l_ns, delta_t_mv and tau_w_ms must be positive");
  if (!(p.v_t_mv > p.e_l_mv)) fail("v_t_mv must be above e_l_mv");
  if (!(p.v_peak_mv > p.v_t_mv)) fail("v_peak_mv must be above v_t_mv");
  if (!(p.v_reset_mv < p.v_peak_mv)) fail("v_reset_mv must be below v_peak_mv");
  if (!(p.refractory_ms >= 0 && p.a_ns >= 0 && p.b_pa >= 0))
    fail("refractory_ms, a_ns and b_pa must not be negative");
  if (!std::isfinite(p.bias_pa)) fail("bias_pa must be finite");
  for (const SynapseParams& s : synapses) {
    if (!(s.tau_ms > 0 && s.gain_pa >= 0)) fail("synapse tau_ms must be positive, gain_pa not negative");
  }
  if (!(mismatch_cv >= 0 && mismatch_cv <= 0.3)) fail("mismatch_cv must be within 0..0.3");
  if (!(max_weight > 0)) fail("max_weight must be positive");
}

ChipModel::ChipModel(const ChipOptions& options)
    : opts_(options),
      n_(options.neurons()),
      dt_ns_(std::llround(options.step_ms * 1e6)) {
  opts_.validate();
  const uint32_t n = n_;
  for (auto* vec : {&v_, &w_, &refr_left_, &dt_over_c_, &g_l_, &e_l_, &v_t_, &delta_t_, &inv_delta_t_,
                    &v_reset_, &a_, &dt_over_tau_w_, &b_, &bias_, &refr_steps_, &v_peak_, &v_prev_}) {
    vec->assign(n, 0.0F);
  }
  for (uint32_t t = 0; t < kSynapseTypes; ++t) {
    i_syn_[t].assign(n, 0.0F);
    decay_[t].assign(n, 0.0F);
    gain_[t].assign(n, 0.0F);
    tau_ms_[t].assign(n, 0.0F);
  }
  crossed_.assign(n, 0);
  // Mismatch: every analog parameter of every neuron times its own factor 1 + cv·N(0,1), cut at
  // ±3 cv (and kept positive). Drawn in a fixed order so a seed names one chip.
  std::mt19937_64 rng(opts_.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double cv = opts_.mismatch_cv;
  auto factor = [&] {
    const double z = std::clamp(normal(rng), -3.0, 3.0);
    return std::max(0.05, 1.0 + cv * z);
  };
  const NeuronParams& p = opts_.neuron;
  const double dt = opts_.step_ms;
  for (uint32_t i = 0; i < n; ++i) {
    const double c = p.c_pf * factor();
    const double g = p.g_l_ns * factor();
    const double gap = (p.v_t_mv - p.e_l_mv) * factor();
    const double tau_w = p.tau_w_ms * factor();
    const double a = p.a_ns * factor();
    const double b = p.b_pa * factor();
    const double refr = p.refractory_ms * factor();
    const double bias = p.bias_pa * factor();
    dt_over_c_[i] = static_cast<float>(dt / c);
    g_l_[i] = static_cast<float>(g);
    e_l_[i] = static_cast<float>(p.e_l_mv);
    v_t_[i] = static_cast<float>(p.e_l_mv + gap);
    v_peak_[i] = static_cast<float>(p.e_l_mv + gap + (p.v_peak_mv - p.v_t_mv));
    delta_t_[i] = static_cast<float>(p.delta_t_mv);
    inv_delta_t_[i] = static_cast<float>(1.0 / p.delta_t_mv);
    v_reset_[i] = static_cast<float>(p.v_reset_mv);
    a_[i] = static_cast<float>(a);
    dt_over_tau_w_[i] = static_cast<float>(dt / tau_w);
    b_[i] = static_cast<float>(b);
    bias_[i] = static_cast<float>(bias);
    // Held for round(t_ref / dt) − 1 steps after the spike step: the count Brian2 uses.
    refr_steps_[i] = static_cast<float>(std::max<long>(0, std::lround(refr / dt) - 1));
    v_[i] = static_cast<float>(p.e_l_mv);
    for (uint32_t t = 0; t < kSynapseTypes; ++t) {
      const double tau = opts_.synapses[t].tau_ms * factor();
      tau_ms_[t][i] = static_cast<float>(tau);
      decay_[t][i] = static_cast<float>(std::exp(-dt / tau));
      gain_[t][i] = static_cast<float>(opts_.synapses[t].gain_pa * factor());
    }
  }
  pending_.reserve(4096);
}

NeuronParams ChipModel::neuron_params(uint32_t i) const noexcept {
  NeuronParams p = opts_.neuron;
  const double dt = opts_.step_ms;
  p.c_pf = dt / dt_over_c_[i];
  p.g_l_ns = g_l_[i];
  p.v_t_mv = v_t_[i];
  p.v_peak_mv = v_peak_[i];
  p.tau_w_ms = dt / dt_over_tau_w_[i];
  p.a_ns = a_[i];
  p.b_pa = b_[i];
  p.refractory_ms = (refr_steps_[i] + 1) * dt;
  p.bias_pa = bias_[i];
  return p;
}

SynapseParams ChipModel::synapse_params(uint32_t i, SynapseType t) const noexcept {
  const auto k = static_cast<size_t>(t);
  return {tau_ms_[k][i], gain_[k][i]};
}

void ChipModel::set_bias(uint32_t neuron, double bias_pa) noexcept {
  if (neuron < n_ && std::isfinite(bias_pa)) bias_[neuron] = static_cast<float>(bias_pa);
}

namespace {
int64_t step_of(int64_t t_ns, int64_t dt_ns) noexcept {
  return t_ns >= 0 ? t_ns / dt_ns : -((-t_ns + dt_ns - 1) / dt_ns);  // floor
}
}  // namespace

void ChipModel::start_at(int64_t t_ns) noexcept {
  if (started_) return;
  next_step_ = step_of(t_ns, dt_ns_);
}

int64_t ChipModel::skip_to(int64_t t_ns) noexcept {
  const int64_t target = step_of(t_ns, dt_ns_);
  if (target <= next_step_) return 0;
  const int64_t skipped = target - next_step_;
  next_step_ = target;
  return skipped;
}

InputResult ChipModel::inject(uint32_t neuron, SynapseType type, float weight, int64_t t_ns) noexcept {
  if (neuron >= n_) return InputResult::bad_neuron;
  if (!(weight >= 0) || static_cast<uint8_t>(type) >= kSynapseTypes) return InputResult::bad_weight;
  InputResult r = InputResult::queued;
  if (weight > opts_.max_weight) {
    weight = opts_.max_weight;
    r = InputResult::clamped;
  }
  if (head_ < pending_.size() && t_ns < pending_.back().t_ns) sorted_ = false;
  pending_.push_back({t_ns, neuron, static_cast<uint8_t>(type), weight});
  return r;
}

void ChipModel::apply_due_inputs(int64_t step_start_ns) noexcept {
  if (head_ == pending_.size()) return;
  if (!sorted_) {
    std::stable_sort(pending_.begin() + static_cast<std::ptrdiff_t>(head_), pending_.end(),
                     [](const Input& x, const Input& y) { return x.t_ns < y.t_ns; });
    sorted_ = true;
  }
  while (head_ < pending_.size() && pending_[head_].t_ns <= step_start_ns) {
    const Input& in = pending_[head_++];
    // The current an input of time t has at step start t_k is its jump decayed over t_k − t:
    // exact for the synapse, whichever step it lands in.
    const float age_ms = static_cast<float>(step_start_ns - in.t_ns) * 1e-6F;
    const float decayed = std::exp(-age_ms / tau_ms_[in.type][in.neuron]);
    i_syn_[in.type][in.neuron] += in.weight * gain_[in.type][in.neuron] * decayed;
    ++counters_.inputs_applied;
    if (step_start_ns - in.t_ns >= dt_ns_) ++counters_.inputs_late;
  }
  if (head_ == pending_.size()) {
    pending_.clear();
    head_ = 0;
  } else if (head_ > 4096 && head_ * 2 > pending_.size()) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void ChipModel::step(int64_t step_start_ns, std::vector<ChipSpike>& out) noexcept {
  apply_due_inputs(step_start_ns);
  const StepArrays s{v_.data(), w_.data(), refr_left_.data(), v_prev_.data(), crossed_.data(),
                     dt_over_c_.data(), g_l_.data(), e_l_.data(), v_t_.data(), delta_t_.data(),
                     inv_delta_t_.data(), a_.data(), dt_over_tau_w_.data(), bias_.data(),
                     v_peak_.data(), i_syn_[0].data(), i_syn_[1].data(), i_syn_[2].data(),
                     i_syn_[3].data(), decay_[0].data(), decay_[1].data(), decay_[2].data(),
                     decay_[3].data()};
  step_kernel(s, n_);
  ++counters_.steps;
  // Crossings are rare: scan the flags eight at a time.
  const uint8_t* flags = crossed_.data();
  for (uint32_t base = 0; base < n_; base += 8) {
    uint64_t word = 0;
    const uint32_t len = std::min<uint32_t>(8, n_ - base);
    std::memcpy(&word, flags + base, len);
    if (word == 0) continue;
    for (uint32_t i = base; i < base + len; ++i) {
      if (flags[i] == 0) continue;
      const float v0 = v_prev_[i];
      const float v1 = v_[i];
      const float frac = std::clamp((v_peak_[i] - v0) / (v1 - v0), 0.0F, 1.0F);
      out.push_back({i, step_start_ns + static_cast<int64_t>(frac * static_cast<float>(dt_ns_))});
      v_[i] = v_reset_[i];
      w_[i] += b_[i];
      refr_left_[i] = refr_steps_[i];
      ++counters_.spikes;
    }
  }
}

void ChipModel::advance(int64_t until_ns, std::vector<ChipSpike>& out) noexcept {
  started_ = true;
  const size_t first = out.size();
  while ((next_step_ + 1) * dt_ns_ <= until_ns) {
    step(next_step_ * dt_ns_, out);
    ++next_step_;
  }
  // Within a step spikes come out in neuron order; callers get them in time order.
  std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                   [](const ChipSpike& x, const ChipSpike& y) { return x.time_ns < y.time_ns; });
}

}  // namespace ion::chip
