#pragma once
// Scores detected spikes against the emulated culture's ground truth.
#include <cstdint>
#include <vector>

#include "ion/mea/culture.h"
#include "ion/mea/detector.h"

namespace ion::mea {

// SNR as spike-sorting evaluations define it: the trough of the band-passed waveform over the
// rms of the band-passed noise, both through the detector's own filter.
struct ScoreOptions {
  double snr_min = 5.0;       // recall counts spikes at SNR >= snr_min
  double visible_snr = 2.0;   // a detection is true if it finds a spike at least this large
  double tolerance_ms = 0.5;  // |detection − trough| allowed
  // Recall is scored on isolated spikes: no other visible spike on the electrode this close.
  // Overlapping waveforms (common inside network bursts) defeat any threshold detector; they are
  // counted apart.
  double isolation_ms = 2.0;
  uint64_t from_sample = 0;   // ignore the detector's warm-up before this sample
  uint64_t to_sample = UINT64_MAX;  // and spikes whose window runs past the end
};

struct DetectionScore {
  uint32_t electrodes = 0;  // electrodes scored
  uint64_t truth = 0;       // isolated ground-truth spikes at SNR >= snr_min, per electrode
  uint64_t found = 0;       // of those, with a detection on that electrode within the tolerance
  uint64_t overlapped = 0;  // spikes at SNR >= snr_min left out of recall (not isolated)
  uint64_t overlapped_found = 0;
  uint64_t detections = 0;
  uint64_t true_detections = 0;  // within the tolerance of a visible ground-truth spike
  [[nodiscard]] double recall() const noexcept { return truth ? double(found) / double(truth) : 0; }
  [[nodiscard]] double precision() const noexcept {
    return detections ? double(true_detections) / double(detections) : 0;
  }
};

// Matching is per electrode. Spikes before `from_sample` (detector warm-up) are not scored.
// Band-passed trough of a unit raw trough, and band-passed rms of unit white noise.
struct FilterGains {
  double spike = 0;
  double noise = 0;
};
FilterGains filter_gains(const CultureEmulator& culture, const DetectorOptions& detector);

DetectionScore score_detection(const CultureEmulator& culture, const CultureOptions& options,
                               const DetectorOptions& detector,
                               const std::vector<TruthSpike>& truth,
                               const std::vector<DetectedSpike>& detected,
                               const ScoreOptions& score);

// Runs an emulated culture (ground truth on) for `seconds` through one detector per threshold
// (other detector settings at their defaults) and scores each from `warmup_s` on, when the noise
// estimate has settled.
std::vector<DetectionScore> evaluate_detection(CultureOptions culture,
                                               const std::vector<double>& thresholds_k,
                                               double seconds, double warmup_s = 2.0);

}  // namespace ion::mea
