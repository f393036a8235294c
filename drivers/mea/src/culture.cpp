#include "ion/mea/culture.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <limits>
#include <stdexcept>
#include <string>

namespace ion::mea {
namespace {

constexpr uint32_t kGaussTableBits = 16;

// Extracellular spike seen from outside the soma: a sharp trough (Na+ inflow) then a broad,
// smaller positive phase (repolarisation). Unit trough depth; 2 ms long.
std::vector<float> make_template(double fs_hz, uint32_t& trough) {
  const double trough_ms = 0.4;
  const auto n = static_cast<uint32_t>(std::ceil(2.5e-3 * fs_hz));
  std::vector<float> t(n);
  double lowest = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const double ms = static_cast<double>(i) * 1e3 / fs_hz;
    const double a = (ms - trough_ms) / 0.15;
    const double b = (ms - 1.1) / 0.4;
    const double v = -std::exp(-a * a / 2) + 0.12 * std::exp(-b * b / 2);
    t[i] = static_cast<float>(v);
    lowest = std::min(lowest, v);
  }
  for (auto& v : t) v = static_cast<float>(v / -lowest);
  trough = static_cast<uint32_t>(std::lround(trough_ms * 1e-3 * fs_hz));
  return t;
}

}  // namespace

void CultureOptions::validate() const {
  auto bad = [](const char* field, const char* why) {
    throw std::invalid_argument(std::string("culture: ") + field + ": " + why);
  };
  if (rows == 0 || cols == 0 || rows > 64 || cols > 64) bad("rows/cols", "must be 1..64");
  if (drop_corners && (rows < 3 || cols < 3)) bad("drop_corners", "needs at least 3x3");
  if (!(pitch_um > 0 && pitch_um <= 5000)) bad("pitch_um", "must be in (0, 5000]");
  if (!(sample_rate_hz >= 5000 && sample_rate_hz <= 100000)) bad("sample_rate_hz", "must be 5..100 kHz");
  if (!(uv_per_bit > 0)) bad("uv_per_bit", "must be > 0");
  if (!(noise_uv_rms >= 0)) bad("noise_uv_rms", "must be >= 0");
  if (neurons == 0 || neurons > 200000) bad("neurons", "must be 1..200000");
  if (!(excitatory_fraction >= 0 && excitatory_fraction <= 1)) bad("excitatory_fraction", "must be in [0, 1]");
  if (!(connection_probability >= 0 && connection_probability <= 1)) bad("connection_probability", "must be in [0, 1]");
  if (static_cast<double>(neurons) * neurons * connection_probability > 5e7) {
    bad("connection_probability", "more than 50 million synapses");
  }
  if (!(delay_min_ms > 0 && delay_min_ms <= delay_max_ms && delay_max_ms <= 50)) {
    bad("delay_min_ms/delay_max_ms", "must satisfy 0 < min <= max <= 50");
  }
  if (!(tau_exc_ms > 0 && tau_inh_ms > 0 && depression_tau_ms > 0)) bad("tau_*", "must be > 0");
  if (!(depression_u > 0 && depression_u <= 1)) bad("depression_u", "must be in (0, 1]");
  if (!(step_ms >= 0.02 && step_ms <= 1)) bad("step_ms", "must be 0.02..1 ms");
  if (!(spike_amplitude_uv >= 0 && distance_scale_um > 0 && pickup_radius_um > 0)) {
    bad("spike_amplitude_uv/distance_scale_um/pickup_radius_um", "must be positive");
  }
  if (!(stim_latency_min_ms >= 0 && stim_latency_min_ms <= stim_latency_max_ms &&
        stim_latency_max_ms <= 50)) {
    bad("stim_latency_min_ms/stim_latency_max_ms", "must satisfy 0 <= min <= max <= 50");
  }
  if (!(stim_slope_mv > 0 && stim_radius_um > 0 && artifact_tau_ms > 0)) {
    bad("stim_slope_mv/stim_radius_um/artifact_tau_ms", "must be > 0");
  }
}

CultureEmulator::CultureEmulator(CultureOptions options) : opts_(options), rng_(options.seed) {
  opts_.validate();
  build();
}

void CultureEmulator::build() {
  const double fs = opts_.sample_rate_hz;
  xs_ = opts_.seed * 0x9E3779B97F4A7C15ULL + 1;
  std::normal_distribution<float> normal(0.F, 1.F);
  gauss_table_.resize(size_t{1} << kGaussTableBits);
  for (auto& g : gauss_table_) g = normal(rng_);

  // Electrodes on the grid, row-major, corners left out in the MCS layout.
  for (uint32_t r = 0; r < opts_.rows; ++r) {
    for (uint32_t c = 0; c < opts_.cols; ++c) {
      const bool corner = (r == 0 || r == opts_.rows - 1) && (c == 0 || c == opts_.cols - 1);
      if (opts_.drop_corners && corner) continue;
      electrodes_.push_back({c * opts_.pitch_um, r * opts_.pitch_um});
    }
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  dc_uv_.resize(electrodes_.size());
  for (auto& d : dc_uv_) {
    d = static_cast<float>(opts_.dc_offset_uv + (2 * unit(rng_) - 1) * opts_.dc_offset_spread_uv);
  }

  // Neurons spread uniformly over the array plus half a pitch around it.
  const double margin = opts_.pitch_um / 2;
  const double w = (opts_.cols - 1) * opts_.pitch_um + 2 * margin;
  const double h = (opts_.rows - 1) * opts_.pitch_um + 2 * margin;
  const uint32_t n = opts_.neurons;
  n_exc_ = static_cast<uint32_t>(std::lround(n * opts_.excitatory_fraction));
  neurons_.resize(n);
  for (auto& p : neurons_) p = {unit(rng_) * w - margin, unit(rng_) * h - margin};

  // Izhikevich (2003) heterogeneous regular-spiking and fast-spiking populations.
  for (auto* v : {&v_, &u_, &a_, &b_, &c_, &d_, &ge_, &gi_}) v->assign(n, 0.F);
  for (uint32_t i = 0; i < n; ++i) {
    const double r = unit(rng_);
    if (i < n_exc_) {
      a_[i] = 0.02F;
      b_[i] = 0.2F;
      c_[i] = static_cast<float>(-65 + 15 * r * r);
      d_[i] = static_cast<float>(8 - 6 * r * r);
    } else {
      a_[i] = static_cast<float>(0.02 + 0.08 * r);
      b_[i] = static_cast<float>(0.25 - 0.05 * r);
      c_[i] = -65.F;
      d_[i] = 2.F;
    }
    v_[i] = -65.F;
    u_[i] = b_[i] * v_[i];
  }
  resources_.assign(n_exc_, 1.F);
  last_spike_step_.assign(n, 0);

  step_samples_ = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(opts_.step_ms * 1e-3 * fs)));
  const double dt_ms = step_samples_ * 1e3 / fs;
  dt_ms_ = static_cast<float>(dt_ms);
  decay_exc_ = static_cast<float>(std::exp(-dt_ms / opts_.tau_exc_ms));
  decay_inh_ = static_cast<float>(std::exp(-dt_ms / opts_.tau_inh_ms));
  // White noise current: Izhikevich's sigma per 1 ms step, scaled to keep the same diffusion.
  noise_scale_ = static_cast<float>(opts_.noise_current / std::sqrt(dt_ms));

  // Sparse random connectivity (each ordered pair with probability p), delays uniform.
  const auto dmin = static_cast<uint32_t>(std::max(1.0, std::round(opts_.delay_min_ms / dt_ms)));
  const auto dmax = static_cast<uint32_t>(std::max<double>(dmin, std::round(opts_.delay_max_ms / dt_ms)));
  std::uniform_int_distribution<uint32_t> delay(dmin, dmax);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  // Geometric skipping draws the same Bernoulli pattern in O(synapses) instead of O(n^2).
  const double p = opts_.connection_probability;
  syn_begin_.assign(n + 1, 0);
  for (uint32_t pre = 0; pre < n; ++pre) {
    syn_begin_[pre] = static_cast<uint32_t>(synapses_.size());
    if (p <= 0) continue;
    const double w0 = pre < n_exc_ ? opts_.weight_exc : opts_.weight_inh;
    int64_t post = -1;
    while (true) {
      const double skip = p >= 1 ? 0 : std::floor(std::log(1 - unit(rng_)) / std::log(1 - p));
      post += 1 + static_cast<int64_t>(skip);
      if (post >= n) break;
      if (post == pre) continue;
      synapses_.push_back({static_cast<uint32_t>(post), static_cast<uint16_t>(delay(rng_)),
                           static_cast<float>(w0 * jitter(rng_))});
    }
  }
  syn_begin_[n] = static_cast<uint32_t>(synapses_.size());
  ring_slots_ = dmax + 1;
  ring_exc_.assign(static_cast<size_t>(ring_slots_) * n, 0.F);
  ring_inh_.assign(static_cast<size_t>(ring_slots_) * n, 0.F);
  forced_.resize(static_cast<size_t>(std::ceil(opts_.stim_latency_max_ms / dt_ms)) + 2);

  // What each electrode sees.
  template_ = make_template(fs, trough_);
  std::lognormal_distribution<double> size(0.0, opts_.amplitude_spread);
  pickups_.resize(electrodes_.size());
  neuron_to_electrodes_.resize(n);
  const double r2max = opts_.pickup_radius_um * opts_.pickup_radius_um;
  const double h2 = opts_.cell_height_um * opts_.cell_height_um;
  const double s2 = opts_.distance_scale_um * opts_.distance_scale_um;
  for (uint32_t i = 0; i < n; ++i) {
    const double amp = opts_.spike_amplitude_uv * size(rng_);
    for (uint32_t e = 0; e < electrodes_.size(); ++e) {
      const double dx = neurons_[i].x_um - electrodes_[e].x_um;
      const double dy = neurons_[i].y_um - electrodes_[e].y_um;
      const double r2 = dx * dx + dy * dy;
      if (r2 > r2max) continue;
      const auto a = static_cast<float>(amp / (1 + (r2 + h2) / s2));
      pickups_[e].push_back({i, a});
      neuron_to_electrodes_[i].emplace_back(e, a);
    }
  }
  for (auto& list : pickups_) {
    std::sort(list.begin(), list.end(), [](const Pickup& x, const Pickup& y) {
      return x.amplitude_uv > y.amplitude_uv;
    });
  }
}

SignalFormat CultureEmulator::format() const {
  return {static_cast<uint32_t>(electrodes_.size()), opts_.sample_rate_hz, opts_.uv_per_bit, 0};
}

float CultureEmulator::gauss() noexcept {
  // xorshift64*: a cheap index into a table of Gaussian draws (noise for thousands of channels at
  // 25 kHz must cost nanoseconds).
  xs_ ^= xs_ >> 12;
  xs_ ^= xs_ << 25;
  xs_ ^= xs_ >> 27;
  return gauss_table_[(xs_ * 0x2545F4914F6CDD1DULL) >> (64 - kGaussTableBits)];
}

void CultureEmulator::fire(uint32_t i, uint64_t step, uint64_t step_sample, bool evoked) {
  v_[i] = c_[i];
  u_[i] += d_[i];
  ++total_spikes_;
  if (evoked) ++evoked_spikes_;
  float scale = 1.F;
  if (i < n_exc_) {
    // Tsodyks–Markram depression: resources recover towards 1, each spike uses a fraction U.
    const auto gap_ms = static_cast<double>(step - last_spike_step_[i]) * dt_ms_;
    float& r = resources_[i];
    r = static_cast<float>(1 - (1 - r) * std::exp(-gap_ms / opts_.depression_tau_ms));
    scale = r;
    r -= static_cast<float>(opts_.depression_u) * r;
  }
  last_spike_step_[i] = step;
  std::vector<float>& ring = i < n_exc_ ? ring_exc_ : ring_inh_;
  const size_t n = neurons_.size();
  for (uint32_t k = syn_begin_[i]; k < syn_begin_[i + 1]; ++k) {
    const Synapse& s = synapses_[k];
    const size_t slot = (step + s.delay_steps) % ring_slots_;
    ring[slot * n + s.target] += s.weight * scale;
  }
  if (!neuron_to_electrodes_[i].empty()) active_.push_back({i, step_sample});
  if (opts_.ground_truth) {
    if (truth_.size() < opts_.ground_truth_limit) {
      truth_.push_back({i, step_sample + trough_, evoked});
    } else {
      ++truth_dropped_;
    }
  }
}

void CultureEmulator::step_network(uint64_t step_sample) {
  const size_t n = neurons_.size();
  const size_t slot = step_ % ring_slots_;
  float* in_e = ring_exc_.data() + slot * n;
  float* in_i = ring_inh_.data() + slot * n;
  const float dt = dt_ms_;
  std::vector<uint32_t>& forced = forced_[step_ % forced_.size()];
  for (uint32_t i : forced) v_[i] = 1000.F;  // evoked: fires in this step (marked below)
  fired_.clear();
  for (size_t i = 0; i < n; ++i) {
    ge_[i] = ge_[i] * decay_exc_ + in_e[i];
    gi_[i] = gi_[i] * decay_inh_ + in_i[i];
    in_e[i] = 0;
    in_i[i] = 0;
    if (v_[i] >= 30.F) {
      fired_.push_back(static_cast<uint32_t>(i));
      continue;
    }
    const float current = ge_[i] - gi_[i] + noise_scale_ * gauss();
    float v = v_[i];
    v += dt * (0.04F * v * v + 5.F * v + 140.F - u_[i] + current);
    u_[i] += dt * a_[i] * (b_[i] * v - u_[i]);
    v_[i] = v;
    if (v >= 30.F) fired_.push_back(static_cast<uint32_t>(i));
  }
  for (uint32_t i : fired_) {
    const bool evoked = std::find(forced.begin(), forced.end(), i) != forced.end();
    fire(i, step_, step_sample, evoked);
  }
  forced.clear();
  ++step_;
}

void CultureEmulator::apply_stimulus(const StimCommand& s) {
  ++stimulations_;
  const Position& at = electrodes_[s.electrode];
  // Artifact: the biphasic pulse through the electrode, then an exponential discharge.
  const auto phase = static_cast<uint32_t>(
      std::max<long>(1, std::lround(s.width_us * 1e-6 * opts_.sample_rate_hz)));
  artifacts_.push_back({s.electrode, s.sample, phase,
                        static_cast<float>(s.amplitude_mv * opts_.artifact_uv_per_mv)});
  // Direct activation: probability rises with the effective amplitude (amplitude × width
  // relative to 200 µs, falling with distance), a sigmoid around the threshold.
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double charge = std::abs(s.amplitude_mv) * (s.width_us / 200.0);
  const double lat_min = opts_.stim_latency_min_ms;
  const double lat_span = opts_.stim_latency_max_ms - lat_min;
  const double r2s = opts_.stim_radius_um * opts_.stim_radius_um;
  const uint64_t stim_step = (s.sample + step_samples_ - 1) / step_samples_;
  for (uint32_t i = 0; i < neurons_.size(); ++i) {
    const double dx = neurons_[i].x_um - at.x_um;
    const double dy = neurons_[i].y_um - at.y_um;
    const double r2 = dx * dx + dy * dy;
    if (r2 > 16 * r2s) continue;
    const double effective = charge / (1 + r2 / r2s);
    const double p = 1 / (1 + std::exp(-(effective - opts_.stim_threshold_mv) / opts_.stim_slope_mv));
    if (unit(rng_) >= p) continue;
    const double latency_ms = lat_min + lat_span * unit(rng_);
    const auto delay_steps = static_cast<uint64_t>(std::lround(latency_ms / dt_ms_));
    const uint64_t at_step = std::max(stim_step + delay_steps, step_ + 1);
    if (at_step - step_ >= forced_.size()) continue;
    forced_[at_step % forced_.size()].push_back(i);
  }
}

StimResult CultureEmulator::stimulate(const StimCommand& command) noexcept {
  if (command.electrode >= electrodes_.size()) return StimResult::out_of_range;
  std::lock_guard lock(stim_mu_);
  stim_queue_.push_back(command);
  return StimResult::applied;
}

ReadResult CultureEmulator::read(std::span<int16_t> out, std::chrono::milliseconds /*timeout*/) noexcept {
  const uint32_t nch = static_cast<uint32_t>(electrodes_.size());
  const size_t frames = out.size() / nch;
  ReadResult result{frames, next_sample_, false};
  if (frames == 0) return result;
  const uint64_t first = next_sample_;
  const uint64_t end = first + frames;
  {
    std::lock_guard lock(stim_mu_);
    std::sort(stim_queue_.begin(), stim_queue_.end(),
              [](const StimCommand& a, const StimCommand& b) { return a.sample < b.sample; });
    pending_stims_.insert(pending_stims_.end(), stim_queue_.begin(), stim_queue_.end());
    stim_queue_.clear();
  }
  // Applies the queued stimulations with a sample before `bound`.
  size_t next_stim = 0;
  auto apply_before = [&](uint64_t bound) {
    while (next_stim < pending_stims_.size() && pending_stims_[next_stim].sample < bound) {
      StimCommand c = pending_stims_[next_stim++];
      if (c.sample < first) {
        ++stim_late_;  // asked for a sample already produced: applied at the first one still to come
        c.sample = first;
      }
      apply_stimulus(c);
    }
  };
  // Network steps that begin inside this block, each after the stimulations due by then; then
  // those after the last step but inside the block (their artifact belongs here).
  for (uint64_t s = (first + step_samples_ - 1) / step_samples_ * step_samples_; s < end;
       s += step_samples_) {
    apply_before(s + 1);
    step_network(s);
  }
  apply_before(end);
  pending_stims_.erase(pending_stims_.begin(), pending_stims_.begin() + static_cast<ptrdiff_t>(next_stim));

  // Render: waveforms of active spikes, artifacts, then noise, offset and quantisation.
  accum_.assign(frames * nch, 0.F);
  const auto tlen = static_cast<uint64_t>(template_.size());
  for (const Active& a : active_) {
    const uint64_t from = std::max(a.start_sample, first);
    const uint64_t to = std::min(a.start_sample + tlen, end);
    for (const auto& [e, amp] : neuron_to_electrodes_[a.neuron]) {
      for (uint64_t s = from; s < to; ++s) {
        accum_[(s - first) * nch + e] += amp * template_[s - a.start_sample];
      }
    }
  }
  while (!active_.empty() && active_.front().start_sample + tlen <= end) active_.pop_front();
  const double tau_samples = opts_.artifact_tau_ms * 1e-3 * opts_.sample_rate_hz;
  for (auto it = artifacts_.begin(); it != artifacts_.end();) {
    const uint64_t tail_len = static_cast<uint64_t>(8 * tau_samples) + 1;
    const uint64_t a_end = it->sample + 2 * it->phase_samples + tail_len;
    for (uint64_t s = std::max(it->sample, first); s < std::min(a_end, end); ++s) {
      const uint64_t k = s - it->sample;
      float v;
      if (k < it->phase_samples) {
        v = -it->peak_uv;  // cathodic phase first
      } else if (k < 2 * it->phase_samples) {
        v = it->peak_uv;
      } else {
        v = 0.2F * it->peak_uv *
            static_cast<float>(std::exp(-static_cast<double>(k - 2 * it->phase_samples) / tau_samples));
      }
      accum_[(s - first) * nch + it->electrode] += v;
    }
    it = a_end <= end ? artifacts_.erase(it) : it + 1;
  }
  const auto sigma = static_cast<float>(opts_.noise_uv_rms);
  const auto inv_gain = static_cast<float>(1.0 / opts_.uv_per_bit);
  uint64_t clipped = 0;
  for (size_t f = 0; f < frames; ++f) {
    const float* acc = accum_.data() + f * nch;
    int16_t* o = out.data() + f * nch;
    for (uint32_t c = 0; c < nch; ++c) {
      const float bits = (dc_uv_[c] + sigma * gauss() + acc[c]) * inv_gain;
      const float r = std::nearbyint(bits);
      const bool clip = r > 32767.F || r < -32768.F;
      clipped += clip ? 1 : 0;
      o[c] = static_cast<int16_t>(std::clamp(r, -32768.F, 32767.F));
    }
  }
  clipped_samples_ += clipped;
  next_sample_ = end;
  return result;
}

std::vector<TrueSynapse> CultureEmulator::wiring() const {
  std::vector<TrueSynapse> w;
  w.reserve(synapses_.size());
  for (uint32_t pre = 0; pre + 1 < syn_begin_.size(); ++pre) {
    for (uint32_t k = syn_begin_[pre]; k < syn_begin_[pre + 1]; ++k) {
      const Synapse& s = synapses_[k];
      w.push_back({pre, s.target, s.weight, static_cast<float>(s.delay_steps * dt_ms_), pre < n_exc_});
    }
  }
  return w;
}

std::vector<TrueSynapse> CultureEmulator::electrode_wiring() const {
  struct Sum {
    double signed_weight = 0, weight = 0, delay_weighted = 0;
  };
  std::map<std::pair<uint32_t, uint32_t>, Sum> sums;
  for (const TrueSynapse& w : wiring()) {
    const int32_t a = home_electrode(w.pre);
    const int32_t b = home_electrode(w.post);
    if (a < 0 || b < 0 || a == b) continue;
    Sum& s = sums[{static_cast<uint32_t>(a), static_cast<uint32_t>(b)}];
    s.signed_weight += w.excitatory ? w.weight : -w.weight;
    s.weight += w.weight;
    s.delay_weighted += static_cast<double>(w.weight) * w.delay_ms;
  }
  std::vector<TrueSynapse> out;
  for (const auto& [k, s] : sums) {
    if (s.signed_weight == 0) continue;
    out.push_back({k.first, k.second, static_cast<float>(std::fabs(s.signed_weight)),
                   static_cast<float>(s.delay_weighted / s.weight), s.signed_weight > 0});
  }
  return out;
}

void CultureEmulator::write_wiring(const std::string& path, bool electrodes) const {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("culture wiring file '" + path + "' cannot be written");
  out << "# true wiring of an emulated culture (" << neurons_.size() << " neurons, seed " << opts_.seed
      << (electrodes ? "), on electrodes\n" : "), neuron level\n");
  out << "pre,post,weight,delay_ms,sign\n";
  const char* prefix = electrodes ? "" : "n";
  for (const TrueSynapse& w : electrodes ? electrode_wiring() : wiring()) {
    out << prefix << w.pre << ',' << prefix << w.post << ',' << w.weight << ',' << w.delay_ms << ','
        << (w.excitatory ? 1 : -1) << '\n';
  }
  if (!out) throw std::runtime_error("culture wiring file '" + path + "': write failed");
}

int32_t CultureEmulator::home_electrode(uint32_t neuron) const noexcept {
  if (neuron >= neuron_to_electrodes_.size()) return -1;
  int32_t best = -1;
  float amp = 0;
  for (const auto& [e, a] : neuron_to_electrodes_[neuron]) {
    if (a > amp) {
      amp = a;
      best = static_cast<int32_t>(e);
    }
  }
  return best;
}

void CultureEmulator::run_network(uint64_t samples) {
  const uint64_t end = next_sample_ + samples;
  for (uint64_t s = (next_sample_ + step_samples_ - 1) / step_samples_ * step_samples_; s < end;
       s += step_samples_) {
    step_network(s);
    active_.clear();  // nothing is drawn
  }
  next_sample_ = end;
}

std::vector<TruthSpike> CultureEmulator::take_ground_truth() {
  std::vector<TruthSpike> t;
  t.swap(truth_);
  return t;
}

std::map<std::string, int64_t> CultureEmulator::counters() const {
  return {{"model_spikes", static_cast<int64_t>(total_spikes_)},
          {"model_evoked_spikes", static_cast<int64_t>(evoked_spikes_)},
          {"stimulations", static_cast<int64_t>(stimulations_)},
          {"stimulations_late", static_cast<int64_t>(stim_late_)},
          {"clipped_samples", static_cast<int64_t>(clipped_samples_)},
          {"ground_truth_dropped", static_cast<int64_t>(truth_dropped_)}};
}

}  // namespace ion::mea
