#pragma once
// Connectivity inference from spike trains ("copy"), its scoring against a known wiring, and the
// file formats of both. Two methods:
//  - TSPE, total spiking probability edges (De Blasi et al., J. Neurosci. Methods 312:169, 2019):
//    the normalised cross-correlation of binned trains, filtered with edge filters that turn a
//    peak (excitation) or a trough (inhibition) after a short delay into a signed score;
//  - CCG, cross-correlogram excess over a jitter predictor: the counts at each lag against the
//    same correlogram convolved with a partially hollow Gaussian (the expectation under spike
//    jitter of a few ms; Stark & Abeles, J. Neurosci. Methods 179:90, 2009), with a Poisson
//    significance per lag, Bonferroni-corrected over the lags tested.
// Both count coincidences pair by pair from sorted spike times, never from dense binned
// matrices, so 4,096 channels by 10 minutes fit in memory and in a minute of one core.
// Orientation everywhere: `pre` fires first, `post` responds after `delay`.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace ion {
struct SourceData;
}

namespace ion::connectome {

// Spike trains binned on a common grid: per channel, the sorted bin index of each spike.
struct SpikeTrains {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> bins;
  int64_t n_bins = 0;
  double bin_ms = 1.0;
  [[nodiscard]] size_t channels() const noexcept { return names.size(); }
  [[nodiscard]] size_t spikes() const noexcept;
};

// Bins one source's spike events (channel names from its description). Channels declared but
// silent are kept (their scores are zero). Throws std::invalid_argument if the source has no
// spike events or bin_ms is not positive.
SpikeTrains bin_source(const SourceData& source, double bin_ms);
// Bins explicit trains: times_ns[c] sorted or not; the grid starts at the earliest spike.
SpikeTrains bin_times(std::vector<std::string> names, const std::vector<std::vector<int64_t>>& times_ns,
                      double bin_ms);

enum class Method : uint8_t { tspe, ccg };
[[nodiscard]] const char* to_string(Method m) noexcept;
// "tspe" or "ccg"; nullopt otherwise.
[[nodiscard]] std::optional<Method> method_named(const std::string& name) noexcept;

struct InferOptions {
  Method method = Method::tspe;
  uint32_t max_delay_bins = 25;  // lags 0..max_delay-1 (TSPE) or 1..max_delay (CCG), in bins
  uint32_t min_spikes = 20;      // a channel with fewer spikes gets no scores (too little data)
  // TSPE edge-filter windows, in bins (the published defaults).
  std::vector<uint32_t> surrounding = {3, 4, 5, 6, 7, 8};
  std::vector<uint32_t> observed = {2, 3, 4, 5, 6};
  // CCG: the predictor's Gaussian (sd, ms) and the hollow fraction at lag 0 of the kernel.
  double jitter_ms = 10.0;
  double hollow = 0.6;
  // Significance. CCG: the Poisson p-value at the strongest lag, corrected over the lags tested.
  // TSPE: the fraction of a null's scores above the pair's (the same trains, each turned
  // circularly by its own offset so that no pair stays coupled), a per-pair false-positive rate.
  double alpha = 0.001;
  uint64_t seed = 1;  // the TSPE null's offsets
  // TSPE's null: `shift` (above) or `jitter`: every spike moved at random within its own window
  // of null_window_ms (interval jitter), which keeps each train's structure slower than the
  // window, network bursts included, and destroys the finer timing a synapse leaves.
  enum class Null : uint8_t { shift, jitter } null = Null::shift;
  double null_window_ms = 25;
  // Validates; throws std::invalid_argument naming the option.
  void validate(double bin_ms) const;
};

// Dense all-pairs result: index pre * n + post (the diagonal stays zero).
struct ConnectivityMap {
  Method method = Method::tspe;
  double bin_ms = 1.0;
  std::vector<std::string> channels;
  std::vector<float> strength;    // signed: > 0 excitatory, < 0 inhibitory (method's own scale)
  std::vector<float> delay_ms;    // lag of the strongest effect
  std::vector<float> confidence;  // -log10 of the pair's p-value (see InferOptions::alpha)
  std::vector<uint8_t> significant;
  std::vector<uint8_t> scored;    // both channels had min_spikes
  [[nodiscard]] size_t n() const noexcept { return channels.size(); }
  [[nodiscard]] size_t at(size_t pre, size_t post) const noexcept { return pre * channels.size() + post; }
  [[nodiscard]] size_t significant_count() const noexcept;
};

ConnectivityMap infer(const SpikeTrains& trains, const InferOptions& options);

// The TSPE pipeline (edge filters, then running totals, summed over the window sizes) is linear
// in the normalised cross-correlation, so it is one matrix: row k (delay k), column j (lag
// j - (max surrounding window)). Exposed for tests.
struct TspeKernel {
  int32_t first_lag = 0;
  uint32_t lags = 0;
  uint32_t delays = 0;
  std::vector<double> k;  // delays x lags
};
TspeKernel tspe_kernel(const InferOptions& options);

// Map files: CSV `pre,post,strength,sign,delay_ms,confidence,significant` with `#` header lines
// naming the method and bin. `all`: every scored pair; else the significant ones.
void write_map(std::ostream& out, const ConnectivityMap& map, bool all);
// Reads a map file; throws std::runtime_error naming the file and line.
struct MapEdge {
  std::string pre, post;
  double strength = 0;
  double delay_ms = 0;
  double confidence = 0;
  bool significant = false;
};
std::vector<MapEdge> read_map(const std::string& path);
// The map's scored pairs as edges, pre-major (what write_map writes with `all`).
std::vector<MapEdge> edges_of(const ConnectivityMap& map);

// A known wiring: CSV `pre,post,weight,delay_ms,sign` (sign: +1 excitatory, -1 inhibitory).
struct TrueEdge {
  std::string pre, post;
  double weight = 0;
  double delay_ms = 0;
  int sign = 1;
};
void write_truth(std::ostream& out, const std::vector<TrueEdge>& edges, const std::string& comment);
std::vector<TrueEdge> read_truth(const std::string& path);
struct Score {
  size_t channels = 0;         // channels both in the map and the truth's universe
  size_t pairs = 0;            // ordered pairs scored
  size_t true_excitatory = 0, true_inhibitory = 0;
  double auc_excitatory = 0;   // ROC AUC: excitatory connections against all other pairs
  double auc_inhibitory = 0;   // the same with -strength (0 if there are none)
  double auc_any = 0;          // |strength| against "any connection"
  size_t predicted = 0;        // significant edges
  size_t true_positive = 0;    // significant and connected (either sign)
  double precision = 0, recall = 0;
  double sign_accuracy = 0;    // among true positives, the sign matches
  double delay_error_ms = 0;   // mean |delay - true delay| among true positives
  std::vector<std::string> unknown_channels;  // in the map, not in the truth (scored as absent)
};
// Scores a map against a wiring over the channels of the map (`channels`: every channel that
// was inferred, so that absent edges count as predicted 0). Throws std::invalid_argument if
// the truth names none of the map's channels.
Score score(const std::vector<MapEdge>& map, const std::vector<std::string>& channels,
            const std::vector<TrueEdge>& truth);
// Channels named in a map file's header (`# channels: a b c`), else those of its edges.
std::vector<std::string> map_channels(const std::string& path);

// ROC AUC of `positive` against `negative` scores (Mann–Whitney, ties count half).
double roc_auc(std::vector<double> positive, std::vector<double> negative);

}  // namespace ion::connectome
