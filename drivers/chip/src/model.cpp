#include "ion/chip/model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

namespace ion::chip {
namespace {

// e^x for the exponential term, to about one float ulp on the range the membrane uses; written
// so GCC vectorises it (libm's expf would keep the step loop scalar). The polynomial is split
// (Estrin) so its dependency chain is short.
inline float exp_vec(float x) noexcept {
  x = x < -87.0F ? -87.0F : x;  // not std::min/max: their references keep GCC from vectorising
  x = x > 80.0F ? 80.0F : x;
  const float kLog2e = 1.44269504F;
  const auto ni = static_cast<int32_t>(x * kLog2e + std::copysign(0.5F, x));  // round
  const auto n = static_cast<float>(ni);
  const float r = (x - n * 0.693145751953125F) - n * 1.428606765330187e-06F;  // ln 2, split
  const float r2 = r * r;
  const float r4 = r2 * r2;
  const float p01 = 1.0F + r;
  const float p23 = 0.5F + r * (1.0F / 6);
  const float p45 = 1.0F / 24 + r * (1.0F / 120);
  const float p = p01 + r2 * p23 + r4 * (p45 + r2 * (1.0F / 720));
  return p * std::bit_cast<float>((ni + 127) << 23);
}

struct Scalars {
  float e_l, inv_delta_t, peak_above_v_t;
};

// One forward-Euler step for a run of neurons; neurons are the inner loop so it vectorises
// (every array is its own __restrict parameter: GCC ignores __restrict on struct members). Both
// derivatives use the state at the start of the step, as Brian2's `euler` does. A refractory
// neuron keeps V (it sits at reset) while w goes on adapting. Synaptic currents decay exactly.
// `crossed` gets 0, or 1 + (peak − V before the step) for the interpolation (V ≤ peak there).
// Masks are 0/1 arithmetic rather than selects: the AVX2 build is otherwise not if-converted.
#define ION_CHIP_STEP_BODY                                                                      \
  for (uint32_t i = 0; i < n; ++i) {                                                            \
    const float v = v_io[i];                                                                    \
    const float w = w_io[i];                                                                    \
    const float current = bias[i] + s0[i] + s1[i] - s2[i] - s3[i];                              \
    const float above = v - k.e_l;                                                              \
    const float dv = k_exp[i] * exp_vec((v - v_t[i]) * k.inv_delta_t) - k_leak[i] * above +     \
                     k_in[i] * (current - w);                                                   \
    const float dw = k_a[i] * above - k_w[i] * w;                                               \
    const float r = refr_io[i];                                                                 \
    const auto refractory = static_cast<float>(r > 0.5F);                                       \
    const float v_new = v + dv * (1.0F - refractory);                                           \
    refr_io[i] = (r - 1.0F) * refractory;                                                       \
    v_io[i] = v_new;                                                                            \
    w_io[i] = w + dw;                                                                           \
    const float peak = v_t[i] + k.peak_above_v_t;                                               \
    crossed[i] = static_cast<float>(v_new > peak) * (1.0F + (peak - v));                        \
    s0[i] *= d0[i];                                                                             \
    s1[i] *= d1[i];                                                                             \
    s2[i] *= d2[i];                                                                             \
    s3[i] *= d3[i];                                                                             \
  }

#define ION_CHIP_STEP_PARAMS                                                                    \
  uint32_t n, Scalars k, float *__restrict v_io, float *__restrict w_io,                        \
      float *__restrict refr_io, float *__restrict crossed, const float *__restrict k_leak,     \
      const float *__restrict k_exp, const float *__restrict k_in, const float *__restrict v_t, \
      const float *__restrict k_a, const float *__restrict k_w, const float *__restrict bias,   \
      float *__restrict s0, float *__restrict s1, float *__restrict s2, float *__restrict s3,   \
      const float *__restrict d0, const float *__restrict d1, const float *__restrict d2,       \
      const float *__restrict d3

// Two builds of the same body, picked once at start-up: AVX2 with FMA, and the x86-64 baseline.
__attribute__((target("avx2,fma"))) void step_avx2(ION_CHIP_STEP_PARAMS) noexcept { ION_CHIP_STEP_BODY }
void step_baseline(ION_CHIP_STEP_PARAMS) noexcept { ION_CHIP_STEP_BODY }
using StepFn = void (*)(ION_CHIP_STEP_PARAMS) noexcept;
StepFn pick_step() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? step_avx2 : step_baseline;
}
const StepFn kStep = pick_step();

// The iontronic neuron, one exponential-Euler step: over a step each conductance relaxes exactly
// towards its quasi-static value, and V exactly towards the reversal the conductances and the
// current set (stable for any step; accurate when the step is well below tau_na). The fields of
// the AdEx layout hold its state and coefficients under the names in kIontronicFields.
struct IontronicScalars {
  float e_na, e_k, inv_v0, alpha, g0, v_spike, v_rearm;
};

void step_iontronic(uint32_t n, IontronicScalars k, float* __restrict v_io, float* __restrict gna_io,
                    float* __restrict gk_io, float* __restrict armed_io, float* __restrict crossed,
                    const float* __restrict decay_na, const float* __restrict decay_k,
                    const float* __restrict g1_na, const float* __restrict g1_k,
                    const float* __restrict dt_over_c, const float* __restrict bias,
                    float* __restrict s0, float* __restrict s1, float* __restrict s2,
                    float* __restrict s3, const float* __restrict d0, const float* __restrict d1,
                    const float* __restrict d2, const float* __restrict d3) noexcept {
  const bool square = k.alpha == 2.0F;
  for (uint32_t i = 0; i < n; ++i) {
    const float v = v_io[i];
    const float x = std::fabs(v * k.inv_v0);
    const float law = square ? x * x : std::pow(x, k.alpha);
    const float gna = gna_io[i];
    const float gk = gk_io[i];
    const float g = gna + gk;
    const float current = bias[i] + s0[i] + s1[i] - s2[i] - s3[i];
    const float v_inf = (current + gna * k.e_na + gk * k.e_k) / g;
    const float v_new = v_inf + (v - v_inf) * exp_vec(-dt_over_c[i] * g);
    const float gna_inf = k.g0 + g1_na[i] * law;
    const float gk_inf = k.g0 + g1_k[i] * law;
    gna_io[i] = gna_inf + (gna - gna_inf) * decay_na[i];
    gk_io[i] = gk_inf + (gk - gk_inf) * decay_k[i];
    v_io[i] = v_new;
    const bool up = armed_io[i] > 0.5F && v <= k.v_spike && v_new > k.v_spike;
    crossed[i] = up ? 1.0F + (k.v_spike - v) : 0.0F;
    armed_io[i] = up ? 0.0F : (armed_io[i] > 0.5F || v_new < k.v_rearm ? 1.0F : 0.0F);
    s0[i] *= d0[i];
    s1[i] *= d1[i];
    s2[i] *= d2[i];
    s3[i] *= d3[i];
  }
}

// Neurons are independent between inputs, so a block of steps runs one chunk of neurons at a
// time: a chunk's fields (19 floats per neuron, 19 KiB) stay in L1 across the block's steps.
constexpr int64_t kBlockSteps = 16;

int64_t step_of(int64_t t_ns, int64_t dt_ns) noexcept {
  return t_ns >= 0 ? t_ns / dt_ns : -((-t_ns + dt_ns - 1) / dt_ns);  // floor
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
  for (const auto& [id, bias] : bias_overrides_pa) {
    if (id >= neurons()) fail("bias_overrides names neuron " + std::to_string(id) + ", beyond the chip's " + std::to_string(neurons()));
    if (!std::isfinite(bias)) fail("bias_overrides must be finite");
  }
  for (const SynapseParams& s : synapses) {
    if (!(s.tau_ms > 0 && s.gain_pa >= 0)) fail("synapse tau_ms must be positive, gain_pa not negative");
  }
  if (!(mismatch_cv >= 0 && mismatch_cv <= 0.3)) fail("mismatch_cv must be within 0..0.3");
  if (neuron_model == NeuronModelKind::iontronic) {
    const IontronicParams& q = iontronic;
    if (!(q.c > 0 && q.g0 > 0 && q.g1_na >= 0 && q.g1_k >= 0 && q.v0 > 0))
      fail("iontronic c, g0 and v0 must be positive, g1_na and g1_k not negative");
    if (!(q.tau_na > 0 && q.tau_k > 0)) fail("iontronic tau_na and tau_k must be positive");
    if (!(q.alpha >= 1 && q.alpha <= 4)) fail("iontronic alpha must be within 1..4");
    if (!(q.e_na > q.e_k)) fail("iontronic e_na must be above e_k");
    if (!(q.v_rearm < q.v_spike)) fail("iontronic v_rearm must be below v_spike");
    if (!std::isfinite(q.bias)) fail("iontronic bias must be finite");
    if (!(time_base.time_scale > 0 && time_base.unit_s > 0)) fail("time_scale must be positive");
    // Exponential Euler is stable for any step, but a step beyond tau_na no longer resolves the
    // rising phase: refuse it rather than emit wrong spike times.
    const double dt_device = step_ms * 1e-3 / time_base.time_scale / time_base.unit_s;
    if (dt_device > 0.25 * q.tau_na) {
      fail("step_ms " + std::to_string(step_ms) + " is " + std::to_string(dt_device) + " " +
           time_base.time_unit + " of device time, above tau_na/4 (" + std::to_string(q.tau_na / 4) +
           "): use step_ms <= " + std::to_string(0.25 * q.tau_na * time_base.unit_s * time_base.time_scale * 1e3));
    }
  }
  if (!(max_weight > 0)) fail("max_weight must be positive");
}

void ChipOptions::apply_iontronic_preset(std::string_view name) {
  // The normalised model of docs/devices/iontronic-neuron.md (E = +-1, g0 = 0.01, g1 = 20 and 5,
  // tau = 0.1 and 5 time units): rest at I = 0, tonic spiking above a small current, block at
  // large ones. Each preset gives it units.
  constexpr double kIsiMdUs = 87.7;       // the authors' MD output (neuron/Efield.txt), derived
  constexpr double kIsiNormalised = 40.613;  // the normalised model's ISI at I = 0.02 (converged)
  IontronicParams q;
  TimeBase tb;
  double e = 1, u = 1, g_unit = 1;  // volts, time and conductance per normalised unit
  if (name == "iontronic-ms") {
    e = 100;  // mV
    u = 1;    // ms (= C / g_unit with 1 pF and 1 nS)
    g_unit = 1;
    tb = TimeBase{};
    step_ms = 0.005;
  } else if (name == "robin2021-md") {
    e = 0.2;  // the authors' batteries: +-0.2 k_BT/(e A)
    u = kIsiMdUs / kIsiNormalised;  // us, so that the ISI at the preset's bias is 87.7 us
    g_unit = 1 / u;                 // C = 1: conductances in C per us
    tb.name = "md";
    tb.time_unit = "us";
    tb.unit_s = 1e-6;
    tb.time_scale = 1000;  // 1 us of MD time runs as 1 ms of network time
    tb.voltage_unit = "k_BT/(e A) (simulation-scaled field, not a membrane potential)";
    tb.current_unit = "C k_BT/(e A) per us (simulation units)";
    step_ms = 0.01;
  } else {
    throw std::invalid_argument("unknown iontronic preset '" + std::string(name) +
                                "'; presets: iontronic-ms, robin2021-md");
  }
  q.c = 1;
  q.e_na = e;
  q.e_k = -e;
  q.v0 = e;
  q.alpha = 2;
  q.g0 = 0.01 * g_unit;
  q.g1_na = 20 * g_unit;
  q.g1_k = 5 * g_unit;
  q.tau_na = 0.1 * u;
  q.tau_k = 5 * u;
  q.bias = 0.02 * e * g_unit;  // normalised 0.02: tonic, ISI 40.6 time units
  q.v_spike = 0.5 * e;
  q.v_rearm = 0;
  neuron_model = NeuronModelKind::iontronic;
  iontronic = q;
  time_base = tb;
  cores = 1;
  neurons_per_core = 16;
  // Synapses in network time (as for AdEx); a weight-1 input carries twice the charge that lifts
  // a resting neuron to v_spike: stand-ins, not device figures.
  const double tau_dev_fast = 5e-3 / tb.time_scale / tb.unit_s;  // 5 ms of network time, in device time units
  const double tau_dev_slow = 100e-3 / tb.time_scale / tb.unit_s;
  const double charge = 2 * q.c * q.v_spike;
  synapses = {{{5, charge / tau_dev_fast}, {100, charge / tau_dev_slow}, {10, charge / tau_dev_fast},
               {100, charge / tau_dev_slow}}};
}

ChipModel::ChipModel(const ChipOptions& options)
    : opts_(options),
      n_(options.neurons()),
      dt_ns_(std::llround(options.step_ms * 1e6)) {
  opts_.validate();
  const uint32_t n = n_;
  hot_.assign(static_cast<size_t>((n + kChunk - 1) / kChunk) * kFields * kChunk, 0.0F);
  b_.assign(n, 0.0F);
  refr_steps_.assign(n, 0.0F);
  for (uint32_t t = 0; t < kSynapseTypes; ++t) {
    gain_[t].assign(n, 0.0F);
    tau_ms_[t].assign(n, 0.0F);
  }
  effective_.resize(n);
  // Mismatch: every analog parameter of every neuron times its own factor 1 + cv·N(0,1), cut at
  // ±3 cv (and kept positive). Drawn in a fixed order so a seed names one chip. Voltages that are
  // references (E_L, reset, Δ_T) are shared; the threshold's distance from rest is mismatched.
  std::mt19937_64 rng(opts_.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const double cv = opts_.mismatch_cv;
  auto factor = [&] {
    const double z = std::clamp(normal(rng), -3.0, 3.0);
    return std::max(0.05, 1.0 + cv * z);
  };
  const NeuronParams& nominal = opts_.neuron;
  const double dt = opts_.step_ms;
  if (opts_.neuron_model == NeuronModelKind::iontronic) {
    init_iontronic(factor);
    return;
  }
  for (uint32_t i = 0; i < n; ++i) {
    NeuronParams& p = effective_[i];
    p = nominal;
    p.c_pf = nominal.c_pf * factor();
    p.g_l_ns = nominal.g_l_ns * factor();
    p.v_t_mv = nominal.e_l_mv + (nominal.v_t_mv - nominal.e_l_mv) * factor();
    p.v_peak_mv = p.v_t_mv + (nominal.v_peak_mv - nominal.v_t_mv);
    p.tau_w_ms = nominal.tau_w_ms * factor();
    p.a_ns = nominal.a_ns * factor();
    p.b_pa = nominal.b_pa * factor();
    // Held for round(t_ref / dt) − 1 steps after the spike step, the count Brian2 uses; the
    // exported value is the one that count stands for.
    const long held = std::max<long>(0, std::lround(nominal.refractory_ms * factor() / dt) - 1);
    p.refractory_ms = nominal.refractory_ms > 0 ? static_cast<double>(held + 1) * dt : 0.0;
    refr_steps_[i] = nominal.refractory_ms > 0 ? static_cast<float>(held) : 0.0F;
    p.bias_pa = nominal.bias_pa * factor();
    at(kLeak, i) = static_cast<float>(dt * p.g_l_ns / p.c_pf);
    at(kExp, i) = static_cast<float>(dt * p.g_l_ns * p.delta_t_mv / p.c_pf);
    at(kIn, i) = static_cast<float>(dt / p.c_pf);
    at(kVt, i) = static_cast<float>(p.v_t_mv);
    at(kA, i) = static_cast<float>(dt * p.a_ns / p.tau_w_ms);
    at(kKw, i) = static_cast<float>(dt / p.tau_w_ms);
    b_[i] = static_cast<float>(p.b_pa);
    at(kBias, i) = static_cast<float>(p.bias_pa);
    at(kV, i) = static_cast<float>(p.e_l_mv);
    for (uint32_t t = 0; t < kSynapseTypes; ++t) {
      const double tau = opts_.synapses[t].tau_ms * factor();
      tau_ms_[t][i] = static_cast<float>(tau);
      at(static_cast<Field>(kD0 + t), i) = static_cast<float>(std::exp(-dt / tau));
      gain_[t][i] = static_cast<float>(opts_.synapses[t].gain_pa * factor());
    }
  }
  for (const auto& [neuron, bias] : opts_.bias_overrides_pa) set_bias(neuron, bias);
  pending_.reserve(4096);
}

void ChipModel::init_iontronic(const std::function<double()>& factor) {
  // Mismatch as for AdEx: the capacitance, the channels' strengths and memory times, the bias and
  // each synapse's tau and gain; the batteries, g0 and the law's scale are shared references.
  const IontronicParams& nominal = opts_.iontronic;
  const TimeBase& tb = opts_.time_base;
  const double dt_device = opts_.step_ms * 1e-3 / tb.time_scale / tb.unit_s;
  effective_ion_.resize(n_);
  for (uint32_t i = 0; i < n_; ++i) {
    IontronicParams& q = effective_ion_[i];
    q = nominal;
    q.c = nominal.c * factor();
    q.g1_na = nominal.g1_na * factor();
    q.g1_k = nominal.g1_k * factor();
    q.tau_na = nominal.tau_na * factor();
    q.tau_k = nominal.tau_k * factor();
    q.bias = nominal.bias * factor();
    effective_[i] = opts_.neuron;  // not used by this model; kept so exports stay defined
    at(kV, i) = 0.0F;
    at(kGna, i) = static_cast<float>(q.g0);
    at(kGk, i) = static_cast<float>(q.g0);
    at(kArmed, i) = 1.0F;
    at(kDecayNa, i) = static_cast<float>(std::exp(-dt_device / q.tau_na));
    at(kDecayK, i) = static_cast<float>(std::exp(-dt_device / q.tau_k));
    at(kG1Na, i) = static_cast<float>(q.g1_na);
    at(kG1K, i) = static_cast<float>(q.g1_k);
    at(kDtOverC, i) = static_cast<float>(dt_device / q.c);
    at(kBias, i) = static_cast<float>(q.bias);
    for (uint32_t t = 0; t < kSynapseTypes; ++t) {
      const double tau = opts_.synapses[t].tau_ms * factor();
      tau_ms_[t][i] = static_cast<float>(tau);
      at(static_cast<Field>(kD0 + t), i) = static_cast<float>(std::exp(-opts_.step_ms / tau));
      gain_[t][i] = static_cast<float>(opts_.synapses[t].gain_pa * factor());
    }
  }
  for (const auto& [neuron, bias] : opts_.bias_overrides_pa) set_bias(neuron, bias);
  pending_.reserve(4096);
}

NeuronParams ChipModel::neuron_params(uint32_t i) const noexcept { return effective_[i]; }

IontronicParams ChipModel::iontronic_params(uint32_t i) const noexcept {
  return i < effective_ion_.size() ? effective_ion_[i] : opts_.iontronic;
}

double ChipModel::membrane_mv(uint32_t neuron) const noexcept { return at(kV, neuron); }

SynapseParams ChipModel::synapse_params(uint32_t i, SynapseType t) const noexcept {
  const auto k = static_cast<size_t>(t);
  return {tau_ms_[k][i], gain_[k][i]};
}

void ChipModel::set_bias(uint32_t neuron, double bias_pa) noexcept {
  if (neuron >= n_ || !std::isfinite(bias_pa)) return;
  at(kBias, neuron) = static_cast<float>(bias_pa);
  effective_[neuron].bias_pa = bias_pa;
  if (neuron < effective_ion_.size()) effective_ion_[neuron].bias = bias_pa;
}

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

void ChipModel::apply_input(const Input& in, int64_t step_start_ns) noexcept {
  // The current an input of time t has at step start t_k is its jump decayed over t_k − t:
  // exact for the synapse, whichever step it lands in.
  const float age_ms = static_cast<float>(step_start_ns - in.t_ns) * 1e-6F;
  const float decayed = exp_vec(-age_ms / tau_ms_[in.type][in.neuron]);
  at(static_cast<Field>(kS0 + in.type), in.neuron) += in.weight * gain_[in.type][in.neuron] * decayed;
  ++counters_.inputs_applied;
  if (step_start_ns - in.t_ns >= dt_ns_) ++counters_.inputs_late;
}

void ChipModel::run_block(int64_t first_step, int64_t steps, std::vector<ChipSpike>& out) noexcept {
  if (!sorted_) {
    std::stable_sort(pending_.begin() + static_cast<std::ptrdiff_t>(head_), pending_.end(),
                     [](const Input& x, const Input& y) { return x.t_ns < y.t_ns; });
    sorted_ = true;
  }
  // The block's inputs, grouped by chunk (counting sort, time order kept): each carries the
  // step it is due at — the first whose start is at or after its time.
  const int64_t block_start = first_step * dt_ns_;
  size_t h = head_;
  const int64_t last_start = (first_step + steps - 1) * dt_ns_;
  while (h < pending_.size() && pending_[h].t_ns <= last_start) ++h;
  const uint32_t chunks = (n_ + kChunk - 1) / kChunk;
  chunk_begin_.assign(chunks + 1, 0);
  for (size_t j = head_; j < h; ++j) ++chunk_begin_[pending_[j].neuron / kChunk + 1];
  for (uint32_t c = 0; c < chunks; ++c) chunk_begin_[c + 1] += chunk_begin_[c];
  block_inputs_.resize(h - head_);
  {
    std::vector<size_t>& fill = chunk_fill_;
    fill.assign(chunk_begin_.begin(), chunk_begin_.end() - 1);
    for (size_t j = head_; j < h; ++j) {
      const Input& in = pending_[j];
      const int64_t late_by = block_start - in.t_ns;
      const int64_t s = late_by >= 0 ? 0 : (-late_by + dt_ns_ - 1) / dt_ns_;  // ceil
      block_inputs_[fill[in.neuron / kChunk]++] = {in, static_cast<int32_t>(s)};
    }
  }
  const Scalars k{static_cast<float>(opts_.neuron.e_l_mv),
                  static_cast<float>(1.0 / opts_.neuron.delta_t_mv),
                  static_cast<float>(opts_.neuron.v_peak_mv - opts_.neuron.v_t_mv)};
  const auto v_reset = static_cast<float>(opts_.neuron.v_reset_mv);
  const bool iontronic = opts_.neuron_model == NeuronModelKind::iontronic;
  const IontronicParams& ion = opts_.iontronic;
  const IontronicScalars ki{static_cast<float>(ion.e_na), static_cast<float>(ion.e_k),
                            static_cast<float>(1.0 / ion.v0), static_cast<float>(ion.alpha),
                            static_cast<float>(ion.g0), static_cast<float>(ion.v_spike),
                            static_cast<float>(ion.v_rearm)};
  const auto dt = static_cast<float>(dt_ns_);
  for (uint32_t lo = 0; lo < n_; lo += kChunk) {
    const uint32_t len = std::min(kChunk, n_ - lo);
    size_t next_input = chunk_begin_[lo / kChunk];
    const size_t end_input = chunk_begin_[lo / kChunk + 1];
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t start = (first_step + s) * dt_ns_;
      for (; next_input < end_input && block_inputs_[next_input].step <= s; ++next_input) {
        apply_input(block_inputs_[next_input].input, start);
      }
      const uint32_t c = lo / kChunk;
      if (iontronic) {
        step_iontronic(len, ki, field(c, kV), field(c, kGna), field(c, kGk), field(c, kArmed),
                       field(c, kCrossed), field(c, kDecayNa), field(c, kDecayK), field(c, kG1Na),
                       field(c, kG1K), field(c, kDtOverC), field(c, kBias), field(c, kS0),
                       field(c, kS1), field(c, kS2), field(c, kS3), field(c, kD0), field(c, kD1),
                       field(c, kD2), field(c, kD3));
      } else {
        kStep(len, k, field(c, kV), field(c, kW), field(c, kRefr), field(c, kCrossed), field(c, kLeak),
              field(c, kExp), field(c, kIn), field(c, kVt), field(c, kA), field(c, kKw),
              field(c, kBias), field(c, kS0), field(c, kS1), field(c, kS2), field(c, kS3),
              field(c, kD0), field(c, kD1), field(c, kD2), field(c, kD3));
      }
      // Crossings are rare: skip eight flags at a time (0.0F is all zero bits; a chunk's fields
      // are padded to kChunk and the padding stays zero).
      const float* flags = field(c, kCrossed);
      for (uint32_t g = 0; g < len; g += 8) {
        const uint32_t m = std::min<uint32_t>(8, len - g);
        uint64_t any[4];
        std::memcpy(any, flags + g, sizeof any);
        if ((any[0] | any[1] | any[2] | any[3]) == 0) continue;
        for (uint32_t q = g; q < g + m; ++q) {
          if (flags[q] == 0) continue;
          const uint32_t i = lo + q;
          // Linear interpolation of the crossing between V before and after the step.
          const float below = flags[q] - 1.0F;  // peak − V before
          const float v_after = at(kV, i);
          const float peak = iontronic ? ki.v_spike : at(kVt, i) + k.peak_above_v_t;
          const float frac = std::clamp(below / (v_after - peak + below), 0.0F, 1.0F);
          out.push_back({i, start + static_cast<int64_t>(frac * dt)});
          ++counters_.spikes;
          if (iontronic) continue;  // its channels repolarise it: no reset
          at(kV, i) = v_reset;
          at(kW, i) += b_[i];
          at(kRefr, i) = refr_steps_[i];
        }
      }
    }
  }
  counters_.steps += static_cast<uint64_t>(steps);
  head_ = h;
  if (head_ == pending_.size()) {
    pending_.clear();
    head_ = 0;
  } else if (head_ > 4096 && head_ * 2 > pending_.size()) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void ChipModel::advance(int64_t until_ns, std::vector<ChipSpike>& out) noexcept {
  started_ = true;
  const size_t first = out.size();
  const int64_t end_step = step_of(until_ns, dt_ns_);  // steps ending at or before until_ns
  while (next_step_ < end_step) {
    const int64_t steps = std::min(end_step - next_step_, kBlockSteps);
    run_block(next_step_, steps, out);
    next_step_ += steps;
  }
  // Chunk by chunk, spikes come out of order; callers get them in time (then neuron) order.
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
            [](const ChipSpike& x, const ChipSpike& y) {
              return x.time_ns != y.time_ns ? x.time_ns < y.time_ns : x.neuron < y.neuron;
            });
}

}  // namespace ion::chip
