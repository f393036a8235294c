#include "ion/mea/detector.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numbers>
#include <stdexcept>
#include <string>

namespace ion::mea {
namespace {

constexpr float kNoThreshold = -FLT_MAX;  // nothing is below it: no detection until sigma is known

struct Biquad {
  float b0, b1, b2, a1, a2;
};

// Butterworth sections by the bilinear transform, prewarped at f: first order (b2 = a2 = 0) or
// second order (Q = 1/sqrt 2).
Biquad first_order_high_pass(double f_hz, double fs_hz) {
  const double k = std::tan(std::numbers::pi * f_hz / fs_hz);
  return {static_cast<float>(1 / (1 + k)), static_cast<float>(-1 / (1 + k)), 0.F,
          static_cast<float>((k - 1) / (k + 1)), 0.F};
}

Biquad butterworth(double f_hz, double fs_hz, bool high_pass) {
  const double w0 = 2.0 * std::numbers::pi * f_hz / fs_hz;
  const double alpha = std::sin(w0) / std::numbers::sqrt2;  // sin(w0) / (2Q)
  const double c = std::cos(w0);
  const double a0 = 1.0 + alpha;
  const double b0 = high_pass ? (1.0 + c) / 2.0 : (1.0 - c) / 2.0;
  const double b1 = high_pass ? -(1.0 + c) : 1.0 - c;
  return {static_cast<float>(b0 / a0), static_cast<float>(b1 / a0), static_cast<float>(b0 / a0),
          static_cast<float>(-2.0 * c / a0), static_cast<float>((1.0 - alpha) / a0)};
}

uint32_t samples_of(std::chrono::microseconds d, double fs_hz) {
  return static_cast<uint32_t>(std::llround(static_cast<double>(d.count()) * 1e-6 * fs_hz));
}

// The hot loop: one frame through both sections for every channel. Channels are the inner loop
// so it vectorises; built for AVX2 as well as the baseline and picked at load time. Not under
// ThreadSanitizer: the clone resolver runs during relocation, before the TSan runtime exists, and
// its instrumented entry crashes the program at load.
#if defined(__SANITIZE_THREAD__)
#define ION_FILTER_CLONES
#else
#define ION_FILTER_CLONES __attribute__((target_clones("avx2", "default")))
#endif
ION_FILTER_CLONES void filter_kernel(
    const int16_t* __restrict in, float* __restrict y,
    float* __restrict hz1, float* __restrict hz2, float* __restrict lz1, float* __restrict lz2,
    uint32_t n, float offset, float scale, Biquad h, Biquad l) noexcept {
  for (uint32_t c = 0; c < n; ++c) {
    const float x = (static_cast<float>(in[c]) - offset) * scale;
    const float u = h.b0 * x + hz1[c];
    hz1[c] = h.b1 * x - h.a1 * u + hz2[c];
    hz2[c] = h.b2 * x - h.a2 * u;
    const float v = l.b0 * u + lz1[c];
    lz1[c] = l.b1 * u - l.a1 * v + lz2[c];
    lz2[c] = l.b2 * u - l.a2 * v;
    y[c] = v;
  }
}

}  // namespace

Biquad high_pass(const DetectorOptions& o) {
  return o.high_pass_order == 1 ? first_order_high_pass(o.band_low_hz, o.sample_rate_hz)
                                : butterworth(o.band_low_hz, o.sample_rate_hz, true);
}

DetectorOptions with_format(DetectorOptions configured, const SignalFormat& f) noexcept {
  configured.channels = f.channels;
  configured.sample_rate_hz = f.sample_rate_hz;
  configured.uv_per_bit = f.uv_per_bit;
  configured.offset_bits = f.offset_bits;
  return configured;
}

std::vector<float> band_pass(const DetectorOptions& options, std::span<const float> x_uv) {
  const Biquad h = high_pass(options);
  const Biquad l = butterworth(options.band_high_hz, options.sample_rate_hz, false);
  std::vector<float> y(x_uv.size());
  float hz1 = 0, hz2 = 0, lz1 = 0, lz2 = 0;
  for (size_t i = 0; i < x_uv.size(); ++i) {
    const float x = x_uv[i];
    const float u = h.b0 * x + hz1;
    hz1 = h.b1 * x - h.a1 * u + hz2;
    hz2 = h.b2 * x - h.a2 * u;
    const float v = l.b0 * u + lz1;
    lz1 = l.b1 * u - l.a1 * v + lz2;
    lz2 = l.b2 * u - l.a2 * v;
    y[i] = v;
  }
  return y;
}

void DetectorOptions::validate() const {
  auto bad = [](const char* field, const std::string& why) {
    throw std::invalid_argument(std::string("detector: ") + field + ": " + why);
  };
  if (channels == 0 || channels > 65536) bad("channels", "must be 1..65536");
  if (!(sample_rate_hz >= 1000 && sample_rate_hz <= 1e6)) bad("sample_rate_hz", "must be 1 kHz..1 MHz");
  if (!(uv_per_bit > 0)) bad("uv_per_bit", "must be > 0");
  if (!(band_low_hz > 0 && band_low_hz < band_high_hz)) bad("band_low_hz", "must be > 0 and < band_high_hz");
  if (!(band_high_hz < sample_rate_hz / 2)) bad("band_high_hz", "must be below half the sample rate");
  if (high_pass_order != 1 && high_pass_order != 2) bad("high_pass_order", "must be 1 or 2");
  if (!(threshold_k > 0 && threshold_k < 100)) bad("threshold_k", "must be in (0, 100)");
  if (dead_time.count() < 0) bad("dead_time", "must be >= 0");
  if (noise_points < 16 || noise_points > 100000) bad("noise_points", "must be 16..100000");
  if (static_cast<double>(noise_window.count()) * 1e-3 * sample_rate_hz < noise_points) {
    bad("noise_window", "must hold at least noise_points samples");
  }
  if (peak_window.count() < 0 || snippet_pre.count() < 0 || snippet_post.count() < 0 ||
      blanking.count() < 0) {
    bad("peak_window/snippet/blanking", "must be >= 0");
  }
  if (snippet_pre + snippet_post > std::chrono::milliseconds(20)) bad("snippet", "at most 20 ms");
}

SpikeDetector::SpikeDetector(DetectorOptions options) : opts_(options) {
  opts_.validate();
  nch_ = opts_.channels;
  const double fs = opts_.sample_rate_hz;
  const Biquad h = high_pass(opts_);
  const Biquad l = butterworth(opts_.band_high_hz, fs, false);
  hb0_ = h.b0, hb1_ = h.b1, hb2_ = h.b2, ha1_ = h.a1, ha2_ = h.a2;
  lb0_ = l.b0, lb1_ = l.b1, lb2_ = l.b2, la1_ = l.a1, la2_ = l.a2;
  for (auto* v : {&hz1_, &hz2_, &lz1_, &lz2_, &prev_y_, &sigma_, &y_}) v->assign(nch_, 0.F);
  held_.assign(nch_, 0);
  threshold_.assign(nch_, kNoThreshold);
  dead_until_.assign(nch_, 0);
  blank_from_.assign(nch_, 0);
  blank_until_.assign(nch_, 0);
  window_rows_ = opts_.noise_points;
  const double window_samples = static_cast<double>(opts_.noise_window.count()) * 1e-3 * fs;
  decim_ = std::max<uint32_t>(1, static_cast<uint32_t>(window_samples / window_rows_));
  // Twice per window: sigma follows slow changes without the median costing more than filtering.
  update_every_ = std::max<uint64_t>(1, static_cast<uint64_t>(decim_) * window_rows_ / 2);
  window_.assign(static_cast<size_t>(window_rows_) * nch_, 0.F);
  scratch_.resize(window_rows_);
  pre_ = samples_of(opts_.snippet_pre, fs);
  post_ = samples_of(opts_.snippet_post, fs);
  peak_ = std::max<uint32_t>(1, samples_of(opts_.peak_window, fs));
  dead_ = samples_of(opts_.dead_time, fs);
  blank_ = samples_of(opts_.blanking, fs);
  history_.assign(static_cast<size_t>(std::max<uint32_t>(pre_, 1)) * nch_, 0.F);
}

float SpikeDetector::noise_uv(uint32_t channel) const noexcept {
  return channel < nch_ ? sigma_[channel] : 0.F;
}

std::span<const float> SpikeDetector::snippet(const DetectedSpike& s) const noexcept {
  const uint32_t len = snippet_length();
  if (len == 0 || static_cast<size_t>(s.snippet) + len > snippets_.size()) return {};
  return {snippets_.data() + s.snippet, len};
}

bool SpikeDetector::blank(uint32_t channel, uint64_t from_sample) noexcept {
  if (channel >= nch_) return false;
  if (blank_ == 0) return true;
  // A stimulation already in the past is blanked from the next sample still to come.
  const uint64_t from = std::max(from_sample, next_sample_);
  const uint64_t until = from_sample + blank_;
  if (until <= from) return true;
  if (blank_until_[channel] > next_sample_) {
    // Still blanking, or about to: one interval covering both (a little more blanking, never less).
    blank_from_[channel] = std::min(blank_from_[channel], from);
    blank_until_[channel] = std::max(blank_until_[channel], until);
  } else {
    blank_from_[channel] = from;
    blank_until_[channel] = until;
  }
  blank_lo_ = std::min(blank_lo_, blank_from_[channel]);
  blank_hi_ = std::max(blank_hi_, blank_until_[channel]);
  return true;
}

// Filters start from the first frame's values as if they had always been there: no start-up
// transient from the DC offset.
void SpikeDetector::restart(const int16_t* frame) noexcept {
  const auto scale = static_cast<float>(opts_.uv_per_bit);
  const auto offset = static_cast<float>(opts_.offset_bits);
  for (uint32_t c = 0; c < nch_; ++c) {
    const float x = (static_cast<float>(frame[c]) - offset) * scale;
    hz1_[c] = (hb1_ + hb2_) * x;  // steady state of the high-pass for constant input: output 0
    hz2_[c] = hb2_ * x;
    lz1_[c] = 0;
    lz2_[c] = 0;
    prev_y_[c] = 0;
  }
  std::memcpy(held_.data(), frame, nch_ * sizeof(int16_t));
}

void SpikeDetector::filter_frame(const int16_t* in) noexcept {
  filter_kernel(in, y_.data(), hz1_.data(), hz2_.data(), lz1_.data(), lz2_.data(), nch_,
                static_cast<float>(opts_.offset_bits), static_cast<float>(opts_.uv_per_bit),
                {hb0_, hb1_, hb2_, ha1_, ha2_}, {lb0_, lb1_, lb2_, la1_, la2_});
}

bool SpikeDetector::blanked(uint32_t c, uint64_t sample) const noexcept {
  return sample >= blank_from_[c] && sample < blank_until_[c];
}

void SpikeDetector::detect_frame(uint64_t sample, bool maybe_blanked) noexcept {
  const float* y = y_.data();
  const float* prev = prev_y_.data();
  const float* thr = threshold_.data();
  uint32_t any = 0;
  for (uint32_t c = 0; c < nch_; ++c) {
    any |= static_cast<uint32_t>(y[c] < thr[c]) & static_cast<uint32_t>(prev[c] >= thr[c]);
  }
  if (any == 0) return;
  const uint32_t wait = std::max(peak_, post_);
  for (uint32_t c = 0; c < nch_; ++c) {
    if (!(y[c] < thr[c] && prev[c] >= thr[c]) || sample < dead_until_[c]) continue;
    if (maybe_blanked && blanked(c, sample)) {
      ++counters_.blanked_crossings;
      continue;
    }
    dead_until_[c] = sample + dead_;
    Pending p{};
    p.spike = {c, sample, y[c], thr[c], static_cast<uint32_t>(snippets_.size())};
    p.filled = 1;
    p.remaining = wait - 1;
    if (snippet_length() > 0) {
      snippets_.resize(snippets_.size() + snippet_length(), 0.F);
      float* snip = snippets_.data() + p.spike.snippet;
      for (uint32_t k = 0; k < pre_; ++k) {  // oldest first
        const uint32_t row = (history_next_ + k) % pre_;
        snip[k] = history_[static_cast<size_t>(row) * nch_ + c];
      }
      if (post_ > 0) snip[pre_] = y[c];
    }
    ++counters_.spikes;
    if (p.remaining == 0) {
      finished_.push_back(p.spike);
    } else {
      pending_.push_back(p);
    }
  }
}

void SpikeDetector::update_noise() noexcept {
  const uint32_t rows = window_filled_;
  if (rows < window_rows_ / 4) return;
  for (uint32_t c = 0; c < nch_; ++c) {
    const float* column = window_.data() + static_cast<size_t>(c) * window_rows_;
    std::copy(column, column + rows, scratch_.begin());
    auto mid = scratch_.begin() + rows / 2;
    std::nth_element(scratch_.begin(), mid, scratch_.begin() + rows);
    sigma_[c] = *mid / 0.6745F;  // median |x| / 0.6745 = sigma for Gaussian noise
    threshold_[c] = sigma_[c] > 0 ? -static_cast<float>(opts_.threshold_k) * sigma_[c] : kNoThreshold;
  }
  ready_ = true;
  ++counters_.noise_updates;
}

void SpikeDetector::feed_pending() noexcept {
  size_t done = 0;
  const float* y = y_.data();
  for (auto& p : pending_) {
    const uint32_t c = p.spike.channel;
    if (p.filled < peak_) p.spike.peak_uv = std::min(p.spike.peak_uv, y[c]);
    if (p.filled < post_) snippets_[p.spike.snippet + pre_ + p.filled] = y[c];
    ++p.filled;
    if (--p.remaining == 0) ++done;
  }
  if (done == 0) return;
  // Pending spikes all wait the same number of samples, so the finished ones are at the front.
  for (size_t i = 0; i < done; ++i) finished_.push_back(pending_[i].spike);
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(done));
}

void SpikeDetector::process(std::span<const int16_t> frames, uint64_t first_sample,
                            std::vector<DetectedSpike>& out) noexcept {
  const size_t n_frames = frames.size() / nch_;
  if (n_frames == 0) return;
  if (!started_ || first_sample != next_sample_) {
    if (started_) {
      ++counters_.discontinuities;
      // Spikes waiting for their peak window are finished with what was seen.
      for (auto& p : pending_) out.push_back(p.spike);
      pending_.clear();
      std::fill(dead_until_.begin(), dead_until_.end(), 0);
    }
    restart(frames.data());
    started_ = true;
  }
  for (size_t f = 0; f < n_frames; ++f) {
    const uint64_t sample = first_sample + f;
    const int16_t* in = frames.data() + f * nch_;
    if (sample >= blank_hi_) {
      blank_lo_ = UINT64_MAX;
      blank_hi_ = 0;
    }
    const bool maybe_blanked = sample >= blank_lo_;
    if (!maybe_blanked) {
      filter_frame(in);
      // The input to hold is needed only once a blanking interval is scheduled.
      if (blank_lo_ != UINT64_MAX) std::memcpy(held_.data(), in, nch_ * sizeof(int16_t));
    } else {
      // Blanked channels see their last input before the stimulation, held, so the artifact
      // never enters the filters.
      for (uint32_t c = 0; c < nch_; ++c) {
        if (!blanked(c, sample)) held_[c] = in[c];
      }
      filter_frame(held_.data());
    }
    if (!pending_.empty()) feed_pending();
    detect_frame(sample, maybe_blanked);
    if (sample % decim_ == 0) {
      // Channel-major, so each noise update reads one contiguous run per channel.
      float* slot = window_.data() + window_next_;
      for (uint32_t c = 0; c < nch_; ++c) {
        if (!maybe_blanked || !blanked(c, sample)) slot[static_cast<size_t>(c) * window_rows_] = std::fabs(y_[c]);
      }
      window_next_ = window_next_ + 1 == window_rows_ ? 0 : window_next_ + 1;
      window_filled_ = std::min(window_filled_ + 1, window_rows_);
    }
    if (sample % update_every_ == 0) update_noise();
    if (pre_ > 0) {
      std::memcpy(history_.data() + static_cast<size_t>(history_next_) * nch_, y_.data(),
                  nch_ * sizeof(float));
      history_next_ = history_next_ + 1 == pre_ ? 0 : history_next_ + 1;
    }
    prev_y_.swap(y_);  // this frame's output is the next frame's previous one
  }
  next_sample_ = first_sample + n_frames;
  // A blanking interval scheduled before the next call holds from this frame on.
  if (blank_lo_ == UINT64_MAX) {
    std::memcpy(held_.data(), frames.data() + (n_frames - 1) * nch_, nch_ * sizeof(int16_t));
  }
  out.insert(out.end(), finished_.begin(), finished_.end());
  finished_.clear();
}

}  // namespace ion::mea
