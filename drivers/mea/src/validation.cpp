#include "ion/mea/validation.h"

#include <algorithm>
#include <cmath>

namespace ion::mea {

FilterGains filter_gains(const CultureEmulator& culture, const DetectorOptions& detector) {
  FilterGains g;
  const auto& t = culture.spike_template();
  std::vector<float> x(t.size() + static_cast<size_t>(detector.sample_rate_hz / 100), 0.F);
  std::copy(t.begin(), t.end(), x.begin());
  const std::vector<float> y = band_pass(detector, x);
  g.spike = -*std::min_element(y.begin(), y.end());
  // White noise of unit rms: the filter's rms gain is the root sum of squares of its impulse
  // response (one second is long enough for it to die out).
  std::vector<float> impulse(static_cast<size_t>(detector.sample_rate_hz), 0.F);
  impulse[0] = 1.F;
  double energy = 0;
  for (float v : band_pass(detector, impulse)) energy += double(v) * v;
  g.noise = std::sqrt(energy);
  return g;
}

DetectionScore score_detection(const CultureEmulator& culture, const CultureOptions& options,
                               const DetectorOptions& detector,
                               const std::vector<TruthSpike>& truth,
                               const std::vector<DetectedSpike>& detected,
                               const ScoreOptions& score) {
  const uint32_t n_el = culture.electrodes();
  const auto tol = static_cast<int64_t>(std::llround(score.tolerance_ms * 1e-3 * options.sample_rate_hz));
  // Raw trough amplitudes at the SNR limits.
  const FilterGains g = filter_gains(culture, detector);
  const double noise_filtered = options.noise_uv_rms * g.noise;
  const double big = score.snr_min * noise_filtered / g.spike;
  const double visible = score.visible_snr * noise_filtered / g.spike;
  // Ground truth per electrode: (sample, amplitude) of every visible spike in the scored span.
  struct Event {
    int64_t sample;
    float amplitude;
  };
  std::vector<std::vector<std::pair<uint32_t, float>>> seen_by(culture.neuron_positions().size());
  for (uint32_t e = 0; e < n_el; ++e) {
    for (const Pickup& p : culture.pickups()[e]) {
      if (p.amplitude_uv >= visible) seen_by[p.neuron].emplace_back(e, p.amplitude_uv);
    }
  }
  std::vector<std::vector<Event>> events(n_el);
  for (const TruthSpike& t : truth) {
    if (t.sample + tol >= score.to_sample) continue;
    for (const auto& [e, a] : seen_by[t.neuron]) events[e].push_back({static_cast<int64_t>(t.sample), a});
  }
  std::vector<std::vector<int64_t>> dets(n_el);
  for (const DetectedSpike& d : detected) {
    if (d.sample >= score.to_sample || d.channel >= n_el) continue;
    dets[d.channel].push_back(static_cast<int64_t>(d.sample));
  }
  const auto iso = static_cast<int64_t>(std::llround(score.isolation_ms * 1e-3 * options.sample_rate_hz));
  DetectionScore s;
  s.electrodes = n_el;
  for (uint32_t e = 0; e < n_el; ++e) {
    auto& ev = events[e];
    auto& de = dets[e];
    std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) { return a.sample < b.sample; });
    std::sort(de.begin(), de.end());
    auto any_within = [](const std::vector<int64_t>& xs, int64_t lo, int64_t hi) {
      auto it = std::lower_bound(xs.begin(), xs.end(), lo);
      return it != xs.end() && *it <= hi;
    };
    std::vector<int64_t> ev_samples(ev.size());
    for (size_t k = 0; k < ev.size(); ++k) ev_samples[k] = ev[k].sample;
    for (int64_t d : de) {
      if (d < static_cast<int64_t>(score.from_sample) + tol) continue;
      ++s.detections;
      s.true_detections += any_within(ev_samples, d - tol, d + tol) ? 1 : 0;
    }
    for (size_t k = 0; k < ev.size(); ++k) {
      if (ev[k].amplitude < big || ev[k].sample < static_cast<int64_t>(score.from_sample) + iso) continue;
      const bool isolated = (k == 0 || ev[k].sample - ev[k - 1].sample > iso) &&
                            (k + 1 == ev.size() || ev[k + 1].sample - ev[k].sample > iso);
      const bool found = any_within(de, ev[k].sample - tol, ev[k].sample + tol);
      if (isolated) {
        ++s.truth;
        s.found += found ? 1 : 0;
      } else {
        ++s.overlapped;
        s.overlapped_found += found ? 1 : 0;
      }
    }
  }
  return s;
}

std::vector<DetectionScore> evaluate_detection(CultureOptions options,
                                               const std::vector<double>& thresholds_k,
                                               double seconds, double warmup_s) {
  options.ground_truth = true;
  CultureEmulator culture(options);
  const SignalFormat f = culture.format();
  std::vector<DetectorOptions> settings;
  std::vector<SpikeDetector> detectors;
  std::vector<std::vector<DetectedSpike>> found(thresholds_k.size());
  for (double k : thresholds_k) {
    DetectorOptions d = with_format(DetectorOptions{}, f);
    d.threshold_k = k;
    settings.push_back(d);
    detectors.emplace_back(d);
  }
  std::vector<int16_t> block(static_cast<size_t>(f.channels) * 250);
  const auto end = static_cast<uint64_t>(seconds * f.sample_rate_hz);
  while (culture.next_sample() < end) {
    const ReadResult r = culture.read(block, std::chrono::milliseconds(0));
    for (size_t i = 0; i < detectors.size(); ++i) detectors[i].process(block, r.first_sample, found[i]);
  }
  ScoreOptions so;
  so.from_sample = static_cast<uint64_t>(warmup_s * f.sample_rate_hz);
  so.to_sample = end - 100;  // the last spikes' peak windows are still open
  const std::vector<TruthSpike> truth = culture.take_ground_truth();
  std::vector<DetectionScore> scores;
  for (size_t i = 0; i < detectors.size(); ++i) {
    scores.push_back(score_detection(culture, options, settings[i], truth, found[i], so));
  }
  return scores;
}

}  // namespace ion::mea
