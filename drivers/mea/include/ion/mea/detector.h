#pragma once
// Online spike detection on multi-channel int16 voltage frames: causal band-pass, a robust noise
// estimate (median absolute deviation over a rolling window), a negative threshold at k·sigma,
// dead time, trough search, optional waveform snippets and artifact blanking after stimulation.
//
// Every decision is made per sample, on sample indices, never on block boundaries: feeding the
// same frames 1, 7 or 4096 at a time gives identical spikes.
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "ion/mea/signal_source.h"

namespace ion::mea {

struct DetectorOptions {
  uint32_t channels = 0;
  double sample_rate_hz = 0;
  double uv_per_bit = 1.0;        // scale of the int16 samples
  double offset_bits = 0;         // the ADC value of 0 V (removed by the band-pass anyway)
  double band_low_hz = 300;       // Butterworth high-pass
  // First order by default: a second-order high-pass rings after a spike's trough deep enough
  // (~18 % of it) for large units to cross the threshold twice, 1.2–2 ms apart.
  uint32_t high_pass_order = 1;
  double band_high_hz = 3000;     // 2nd-order Butterworth low-pass
  double threshold_k = 5.0;       // threshold = -k * sigma
  std::chrono::microseconds dead_time{1000};
  std::chrono::milliseconds noise_window{2000};  // rolling MAD window
  uint32_t noise_points = 1000;   // samples per channel the window keeps (evenly spaced)
  std::chrono::microseconds peak_window{500};    // trough search after the crossing
  std::chrono::microseconds snippet_pre{0};      // snippet before the crossing; 0 = none
  std::chrono::microseconds snippet_post{0};     // snippet after the crossing
  std::chrono::microseconds blanking{2000};      // after a stimulation on the electrode

  // Throws std::invalid_argument naming the field if a value is out of range.
  void validate() const;
};

// `configured` with the channel count, rate and scale of what the source delivers.
[[nodiscard]] DetectorOptions with_format(DetectorOptions configured, const SignalFormat& f) noexcept;

// The detector's band-pass applied to one channel of µV samples (starting from rest): for
// computing what the detector sees of a waveform or of white noise.
std::vector<float> band_pass(const DetectorOptions& options, std::span<const float> x_uv);

struct DetectedSpike {
  uint32_t channel = 0;
  uint64_t sample = 0;      // the threshold-crossing sample
  float peak_uv = 0;        // filtered trough within the peak window (negative)
  float threshold_uv = 0;   // the threshold in force at the crossing (negative)
  uint32_t snippet = 0;     // offset into the snippet buffer (snippet_length() floats, µV)
};

struct DetectorCounters {
  uint64_t spikes = 0;
  uint64_t blanked_crossings = 0;  // crossings suppressed by blanking
  uint64_t discontinuities = 0;    // sample gaps; filters restarted
  uint64_t noise_updates = 0;
};

class SpikeDetector {
 public:
  explicit SpikeDetector(DetectorOptions options);

  // Processes frames (interleaved, frames × channels) starting at `first_sample`. A first_sample
  // other than the expected next one restarts the filters (a gap in the stream). Finished spikes
  // (their peak window and snippet complete) are appended to `out`, in crossing order.
  void process(std::span<const int16_t> frames, uint64_t first_sample,
               std::vector<DetectedSpike>& out) noexcept;
  // Blanks `channel` for the blanking window from `from_sample` (a stimulation): the band-pass
  // input holds its last value, the noise window skips those samples, no spike is detected.
  // Returns false if the channel is out of range.
  bool blank(uint32_t channel, uint64_t from_sample) noexcept;

  // Snippet of a spike returned by the last process() calls; valid until the buffer is cleared.
  [[nodiscard]] std::span<const float> snippet(const DetectedSpike& s) const noexcept;
  // Drops stored snippets (call after consuming the spikes of a process()).
  void clear_snippets() noexcept { snippets_.clear(); }
  [[nodiscard]] uint32_t snippet_length() const noexcept { return pre_ + post_; }

  // Noise sigma in µV per channel (0 until the first estimate); threshold = -k·sigma.
  [[nodiscard]] float noise_uv(uint32_t channel) const noexcept;
  [[nodiscard]] bool ready() const noexcept { return ready_; }
  [[nodiscard]] uint64_t next_sample() const noexcept { return next_sample_; }
  [[nodiscard]] const DetectorCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] const DetectorOptions& options() const noexcept { return opts_; }

 private:
  struct Pending {
    DetectedSpike spike;
    uint32_t remaining;  // samples left to see (peak window, snippet)
    uint32_t filled;     // snippet samples written
  };
  void restart(const int16_t* frame) noexcept;
  void filter_frame(const int16_t* in) noexcept;
  [[nodiscard]] bool blanked(uint32_t channel, uint64_t sample) const noexcept;
  void detect_frame(uint64_t sample, bool maybe_blanked) noexcept;
  void feed_pending() noexcept;
  void update_noise() noexcept;

  DetectorOptions opts_;
  uint32_t nch_;
  // Biquad coefficients (direct form II transposed), high-pass then low-pass.
  float hb0_, hb1_, hb2_, ha1_, ha2_;
  float lb0_, lb1_, lb2_, la1_, la2_;
  // Per-channel state, structure of arrays so the channel loop vectorises.
  std::vector<float> hz1_, hz2_, lz1_, lz2_;
  std::vector<int16_t> held_;     // last input; blanked channels keep the pre-stimulation value
  std::vector<float> prev_y_;     // previous filtered sample
  std::vector<float> threshold_;  // negative, µV; +inf-like (−huge) until ready
  std::vector<float> sigma_;
  std::vector<uint64_t> dead_until_;
  std::vector<uint64_t> blank_from_;   // blanking interval [from, until) per channel
  std::vector<uint64_t> blank_until_;
  uint64_t blank_lo_ = UINT64_MAX;      // earliest start and latest end of any interval
  uint64_t blank_hi_ = 0;
  std::vector<float> y_;          // current filtered frame
  // Noise window: noise_points values of |y| per channel (channel-major), every decim_ samples.
  std::vector<float> window_;
  std::vector<float> scratch_;
  uint32_t decim_;
  uint32_t window_rows_;
  uint32_t window_next_ = 0;
  uint32_t window_filled_ = 0;
  uint64_t update_every_;         // samples between noise updates
  // Snippet history: pre_ rows of filtered frames.
  uint32_t pre_, post_, peak_, dead_, blank_;
  std::vector<float> history_;
  uint32_t history_next_ = 0;
  std::vector<Pending> pending_;
  std::vector<DetectedSpike> finished_;
  std::vector<float> snippets_;
  uint64_t next_sample_ = 0;
  bool started_ = false;
  bool ready_ = false;
  DetectorCounters counters_;
};

}  // namespace ion::mea
