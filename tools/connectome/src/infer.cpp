// Pairwise coincidence counts from sorted spike bins, then TSPE or the CCG excess test per pair.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include "ion/connectome/connectome.h"
#include "ion/core/dataset.h"

namespace ion::connectome {
namespace {

// Regularised lower incomplete gamma P(a, x) (series below a + 1, continued fraction above):
// the Poisson tails, P(X >= n | lambda) = P(n, lambda) and P(X <= n) = 1 - P(n + 1, lambda).
double gamma_p(double a, double x) noexcept {
  if (x <= 0) return 0;
  const double log_front = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a;
    double sum = term;
    for (int k = 1; k < 100000; ++k) {
      term *= x / (a + k);
      sum += term;
      if (term < sum * 1e-15) break;
    }
    return std::min(1.0, sum * std::exp(log_front));
  }
  // Lentz's continued fraction for Q(a, x).
  constexpr double tiny = 1e-300;
  double b = x + 1 - a;
  double c = 1 / tiny;
  double d = 1 / b;
  double h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < 1e-15) break;
  }
  return std::max(0.0, 1.0 - std::exp(log_front) * h);
}

// Poisson tails with the continuity correction of Stark & Abeles (half the point mass).
double p_at_least(uint32_t n, double lambda) noexcept {
  if (n == 0) return 1;
  const double point = std::exp(n * std::log(lambda) - lambda - std::lgamma(n + 1.0));
  return std::clamp(gamma_p(n, lambda) - 0.5 * point, 0.0, 1.0);
}
double p_at_most(uint32_t n, double lambda) noexcept {
  const double point = std::exp(n * std::log(std::max(lambda, 1e-300)) - lambda - std::lgamma(n + 1.0));
  return std::clamp(1.0 - gamma_p(n + 1.0, lambda) - 0.5 * point, 0.0, 1.0);
}

struct Lags {
  int32_t first = 0;  // the lowest lag counted (may be negative)
  uint32_t count = 0;
};

// For one pre channel: counts[post * lags + (lag - first)] of post spikes `lag` bins after a pre
// spike, over every post channel. `touched` lists the posts with any count.
class Coincidences {
 public:
  Coincidences(const SpikeTrains& t, Lags lags) : t_(t), lags_(lags) {
    counts_.assign(t.channels() * lags.count, 0);
    // All spikes merged in time order, to find every post spike in a pre spike's window.
    for (uint32_t c = 0; c < t.channels(); ++c) {
      for (int64_t b : t.bins[c]) merged_.push_back({b, c});
    }
    std::sort(merged_.begin(), merged_.end(),
              [](const Spike& x, const Spike& y) { return x.bin < y.bin || (x.bin == y.bin && x.ch < y.ch); });
  }
  void count(uint32_t pre) {
    for (uint32_t p : touched_) std::fill_n(counts_.begin() + static_cast<ptrdiff_t>(p) * lags_.count, lags_.count, 0);
    touched_.clear();
    seen_.assign(t_.channels(), 0);
    const int64_t last = lags_.first + static_cast<int64_t>(lags_.count) - 1;
    for (int64_t b : t_.bins[pre]) {
      auto it = std::lower_bound(merged_.begin(), merged_.end(), b + lags_.first,
                                 [](const Spike& s, int64_t v) { return s.bin < v; });
      for (; it != merged_.end() && it->bin <= b + last; ++it) {
        if (it->ch == pre) continue;
        ++counts_[static_cast<size_t>(it->ch) * lags_.count + static_cast<size_t>(it->bin - b - lags_.first)];
        if (!seen_[it->ch]) {
          seen_[it->ch] = 1;
          touched_.push_back(it->ch);
        }
      }
    }
  }
  [[nodiscard]] const uint32_t* of(uint32_t post) const noexcept {
    return counts_.data() + static_cast<size_t>(post) * lags_.count;
  }
  [[nodiscard]] const std::vector<uint32_t>& touched() const noexcept { return touched_; }

 private:
  struct Spike {
    int64_t bin;
    uint32_t ch;
  };
  const SpikeTrains& t_;
  Lags lags_;
  std::vector<Spike> merged_;
  std::vector<uint32_t> counts_;
  std::vector<uint32_t> touched_;
  std::vector<uint8_t> seen_;
};

ConnectivityMap empty_map(const SpikeTrains& t, const InferOptions& o) {
  ConnectivityMap m;
  m.method = o.method;
  m.bin_ms = t.bin_ms;
  m.channels = t.names;
  const size_t nn = t.channels() * t.channels();
  m.strength.assign(nn, 0.F);
  m.delay_ms.assign(nn, 0.F);
  m.confidence.assign(nn, 0.F);
  m.significant.assign(nn, 0);
  // Scored: every ordered pair of distinct channels that both have min_spikes (the rest keep
  // zeros); the same whatever the trains' timing, so also for a null of shifted trains.
  m.scored.assign(nn, 0);
  for (size_t pre = 0; pre < t.channels(); ++pre) {
    if (t.bins[pre].size() < o.min_spikes) continue;
    for (size_t post = 0; post < t.channels(); ++post) {
      if (post != pre && t.bins[post].size() >= o.min_spikes) m.scored[m.at(pre, post)] = 1;
    }
  }
  return m;
}

// TSPE scores of every scored pair into m.strength / m.delay_ms.
void tspe_scores(const SpikeTrains& t, const InferOptions& o, ConnectivityMap& m) {
  const TspeKernel kernel = tspe_kernel(o);
  const size_t n = t.channels();
  const auto nb = static_cast<double>(t.n_bins);
  // Standard deviation of each binned train (ddof 1), counts per bin as they are.
  std::vector<double> sd(n, 0);
  for (size_t c = 0; c < n; ++c) {
    const auto& b = t.bins[c];
    double sum_sq = 0;
    for (size_t i = 0; i < b.size();) {
      size_t j = i;
      while (j < b.size() && b[j] == b[i]) ++j;
      sum_sq += static_cast<double>((j - i) * (j - i));
      i = j;
    }
    const double mean = static_cast<double>(b.size()) / nb;
    sd[c] = nb > 1 ? std::sqrt(std::max(0.0, (sum_sq - nb * mean * mean) / (nb - 1))) : 0;
  }
  Coincidences cc(t, {kernel.first_lag, kernel.lags});
  std::vector<double> tspe(kernel.delays);
  std::vector<double> ncc(kernel.lags);
  for (uint32_t pre = 0; pre < n; ++pre) {
    if (t.bins[pre].size() < o.min_spikes) continue;
    cc.count(pre);
    for (uint32_t post : cc.touched()) {
      if (!m.scored[m.at(pre, post)] || sd[pre] <= 0 || sd[post] <= 0) continue;
      const uint32_t* c = cc.of(post);
      const double norm = 1.0 / (sd[pre] * sd[post] * nb);
      for (uint32_t j = 0; j < kernel.lags; ++j) ncc[j] = c[j] * norm;
      double best = 0;
      uint32_t best_k = 0;
      for (uint32_t k = 0; k < kernel.delays; ++k) {
        const double* row = kernel.k.data() + static_cast<size_t>(k) * kernel.lags;
        double s = 0;
        for (uint32_t j = 0; j < kernel.lags; ++j) s += row[j] * ncc[j];
        if (std::fabs(s) > std::fabs(best)) {
          best = s;
          best_k = k;
        }
      }
      const size_t i = m.at(pre, post);
      m.strength[i] = static_cast<float>(best);
      m.delay_ms[i] = static_cast<float>(best_k * t.bin_ms);
    }
  }
}

// Every channel's train turned circularly by its own offset (a quarter to three quarters of
// the recording): each train keeps its rate and its own temporal structure (bursts, refractory
// period), every pair loses its coupling.
SpikeTrains shifted(const SpikeTrains& t, uint64_t seed) {
  SpikeTrains s = t;
  std::mt19937_64 rng(seed);
  const int64_t n = std::max<int64_t>(t.n_bins, 1);
  std::uniform_int_distribution<int64_t> offset(n / 4, std::max(n / 4, 3 * n / 4));
  for (auto& b : s.bins) {
    const int64_t k = offset(rng);
    for (int64_t& x : b) x = (x + k) % n;
    std::sort(b.begin(), b.end());
  }
  return s;
}

// Every spike moved to a random bin of its own window of `window` bins (interval jitter): the
// count in each window stays, so does everything slower (rates, bursts); finer timing goes.
SpikeTrains jittered(const SpikeTrains& t, int64_t window, uint64_t seed) {
  SpikeTrains s = t;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> within(0, window - 1);
  const int64_t n = std::max<int64_t>(t.n_bins, 1);
  for (auto& b : s.bins) {
    for (int64_t& x : b) x = std::min(n - 1, x / window * window + within(rng));
    std::sort(b.begin(), b.end());
  }
  return s;
}

void infer_tspe(const SpikeTrains& t, const InferOptions& o, ConnectivityMap& m) {
  tspe_scores(t, o, m);
  // TSPE has no null distribution of its own: the scores of the same trains with every pair's
  // coupling destroyed give one. A pair is significant when its |score| is exceeded by a
  // fraction below alpha of the null's scores (a per-pair false-positive rate).
  // With few channels one null has few pairs: take several, so that the null holds at least
  // 2 / alpha scores (a p-value of alpha can be reached), within a bounded cost.
  const auto pairs = static_cast<size_t>(std::count(m.scored.begin(), m.scored.end(), uint8_t{1}));
  if (pairs == 0) return;
  const auto rounds = static_cast<uint64_t>(
      std::clamp(std::ceil(2.0 / (o.alpha * static_cast<double>(pairs))), 1.0, 200.0));
  std::vector<float> tail;
  ConnectivityMap null = m;
  const auto window = std::max<int64_t>(1, std::llround(o.null_window_ms / t.bin_ms));
  const auto seed_of = [&](uint64_t r) { return o.seed + r * 0x9E3779B97F4A7C15ULL; };
  for (uint64_t r = 0; r < rounds; ++r) {
    std::fill(null.strength.begin(), null.strength.end(), 0.F);
    tspe_scores(o.null == InferOptions::Null::jitter ? jittered(t, window, seed_of(r)) : shifted(t, seed_of(r)), o, null);
    for (size_t i = 0; i < null.strength.size(); ++i) {
      if (null.scored[i]) tail.push_back(std::fabs(null.strength[i]));
    }
  }
  std::sort(tail.begin(), tail.end());
  const auto total = static_cast<double>(tail.size());
  for (size_t i = 0; i < m.strength.size(); ++i) {
    if (!m.scored[i] || m.strength[i] == 0) continue;
    const float a = std::fabs(m.strength[i]);
    const auto above = static_cast<double>(tail.end() - std::lower_bound(tail.begin(), tail.end(), a));
    const double p = (1 + above) / (1 + total);
    m.confidence[i] = static_cast<float>(-std::log10(p));
    m.significant[i] = p < o.alpha ? 1 : 0;
  }
}

void infer_ccg(const SpikeTrains& t, const InferOptions& o, ConnectivityMap& m) {
  const size_t n = t.channels();
  const double sigma = o.jitter_ms / t.bin_ms;
  const auto half = static_cast<int32_t>(std::ceil(3 * sigma));
  // Partially hollow Gaussian, normalised: the predictor of a lag is the correlogram around it,
  // the lag itself weighted down so a sharp peak does not predict itself.
  std::vector<double> w(2 * half + 1);
  for (int32_t k = -half; k <= half; ++k) w[k + half] = std::exp(-0.5 * k * k / (sigma * sigma));
  w[half] *= 1 - o.hollow;
  const double wsum = std::accumulate(w.begin(), w.end(), 0.0);
  for (double& x : w) x /= wsum;
  const auto max_delay = static_cast<int32_t>(o.max_delay_bins);
  // The predictor sees both signs of lag, as in Stark & Abeles: a one-sided window biases the
  // prediction wherever the correlogram slopes. The price: a strong coupling the other way (a
  // peak at negative lags) raises the prediction at small positive lags and can read as a weaker
  // deficit there (docs/connectome.md).
  const Lags lags{1 - half, static_cast<uint32_t>(max_delay + 2 * half)};
  Coincidences cc(t, lags);
  const double tests = 2.0 * max_delay;  // excess and deficit at each lag
  for (uint32_t pre = 0; pre < n; ++pre) {
    if (t.bins[pre].size() < o.min_spikes) continue;
    cc.count(pre);
    for (uint32_t post : cc.touched()) {
      if (!m.scored[m.at(pre, post)]) continue;
      const uint32_t* c = cc.of(post);
      // The lag whose count departs most from its prediction (in Poisson sd), then its p-value.
      double best_z = 0;
      int32_t best_d = 0;
      double best_lambda = 0;
      for (int32_t d = 1; d <= max_delay; ++d) {
        const int32_t at = d - lags.first;
        double lambda = 0;
        for (int32_t k = -half; k <= half; ++k) lambda += w[k + half] * c[at + k];
        const double z = (c[at] - lambda) / std::sqrt(std::max(lambda, 0.25));
        if (std::fabs(z) > std::fabs(best_z)) {
          best_z = z;
          best_d = d;
          best_lambda = lambda;
        }
      }
      if (best_d == 0) continue;
      const uint32_t observed = c[best_d - lags.first];
      const double p = best_z > 0 ? p_at_least(observed, std::max(best_lambda, 1e-12))
                                  : p_at_most(observed, best_lambda);
      const double corrected = std::min(1.0, p * tests);
      const size_t i = m.at(pre, post);
      // Strength: extra (or missing) post spikes per pre spike at that lag.
      m.strength[i] = static_cast<float>((observed - best_lambda) / static_cast<double>(t.bins[pre].size()));
      m.delay_ms[i] = static_cast<float>(best_d * t.bin_ms);
      m.confidence[i] = static_cast<float>(std::min(300.0, -std::log10(std::max(corrected, 1e-300))));
      m.significant[i] = corrected < o.alpha ? 1 : 0;
    }
  }
}

}  // namespace

size_t SpikeTrains::spikes() const noexcept {
  size_t s = 0;
  for (const auto& b : bins) s += b.size();
  return s;
}

size_t ConnectivityMap::significant_count() const noexcept {
  return static_cast<size_t>(std::count(significant.begin(), significant.end(), uint8_t{1}));
}

const char* to_string(Method m) noexcept { return m == Method::tspe ? "tspe" : "ccg"; }

std::optional<Method> method_named(const std::string& name) noexcept {
  if (name == "tspe") return Method::tspe;
  if (name == "ccg") return Method::ccg;
  return std::nullopt;
}

void InferOptions::validate(double bin_ms) const {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (!(bin_ms > 0 && bin_ms <= 1000)) bad("--bin-ms: must be in (0, 1000]");
  if (max_delay_bins < 2 || max_delay_bins > 1000) bad("--max-delay: must span 2..1000 bins");
  if (surrounding.empty() || observed.empty()) bad("TSPE window sizes: must not be empty");
  for (uint32_t a : surrounding) {
    if (a == 0 || a > 100) bad("TSPE surrounding window: 1..100 bins");
  }
  for (uint32_t b : observed) {
    if (b == 0 || b > max_delay_bins) bad("TSPE observed window: 1..max delay bins");
  }
  if (!(jitter_ms > 0) || jitter_ms / bin_ms > 500) bad("--jitter-ms: must be > 0 and at most 500 bins");
  if (!(hollow >= 0 && hollow < 1)) bad("hollow fraction: must be in [0, 1)");
  if (!(alpha > 0 && alpha < 1)) bad("--alpha: must be in (0, 1)");
  if (!(null_window_ms >= bin_ms) || null_window_ms / bin_ms > 100000) {
    bad("--null-window-ms: must be at least one bin and at most 100000 bins");
  }
}

TspeKernel tspe_kernel(const InferOptions& o) {
  // Lags -pad .. max_delay + pad - 1, pad the largest surrounding window (no crossover window).
  const auto pad = static_cast<int32_t>(*std::max_element(o.surrounding.begin(), o.surrounding.end()));
  const auto max_delay = static_cast<int32_t>(o.max_delay_bins);
  TspeKernel k;
  k.first_lag = -pad;
  k.lags = static_cast<uint32_t>(max_delay + 2 * pad);
  k.delays = o.max_delay_bins;
  k.k.assign(static_cast<size_t>(k.delays) * k.lags, 0.0);
  for (uint32_t a : o.surrounding) {
    for (uint32_t b : o.observed) {
      const auto ia = static_cast<int32_t>(a);
      const auto ib = static_cast<int32_t>(b);
      // Edge filter at window start m (m = 0 .. max_delay - b): the observed window covers lags
      // m .. m+b-1 (weight 2/b), the surroundings the a lags before and after it (-1/a each).
      // The running total then gives delay kk every window m with kk - b < m <= kk.
      for (int32_t m = 0; m <= max_delay - ib; ++m) {
        for (int32_t kk = m; kk < std::min(max_delay, m + ib); ++kk) {
          double* row = k.k.data() + static_cast<size_t>(kk) * k.lags;
          for (int32_t l = m - ia; l < m; ++l) row[l + pad] -= 1.0 / a;
          for (int32_t l = m; l < m + ib; ++l) row[l + pad] += 2.0 / b;
          for (int32_t l = m + ib; l < m + ib + ia; ++l) row[l + pad] -= 1.0 / a;
        }
      }
    }
  }
  return k;
}

SpikeTrains bin_times(std::vector<std::string> names, const std::vector<std::vector<int64_t>>& times_ns,
                      double bin_ms) {
  if (!(bin_ms > 0)) throw std::invalid_argument("bin width must be > 0 ms");
  SpikeTrains t;
  t.names = std::move(names);
  t.bin_ms = bin_ms;
  int64_t first = std::numeric_limits<int64_t>::max();
  int64_t last = std::numeric_limits<int64_t>::min();
  for (const auto& c : times_ns) {
    for (int64_t x : c) {
      first = std::min(first, x);
      last = std::max(last, x);
    }
  }
  t.bins.resize(times_ns.size());
  if (first > last) return t;
  const double bin_ns = bin_ms * 1e6;
  for (size_t c = 0; c < times_ns.size(); ++c) {
    auto& b = t.bins[c];
    b.reserve(times_ns[c].size());
    for (int64_t x : times_ns[c]) b.push_back(static_cast<int64_t>(std::floor(static_cast<double>(x - first) / bin_ns)));
    std::sort(b.begin(), b.end());
  }
  t.n_bins = static_cast<int64_t>(std::floor(static_cast<double>(last - first) / bin_ns)) + 1;
  return t;
}

SpikeTrains bin_source(const SourceData& s, double bin_ms) {
  if (s.kind != EventKind::spike) throw std::invalid_argument("source '" + s.desc.name() + "' holds no spike events");
  if (s.size() == 0) throw std::invalid_argument("source '" + s.desc.name() + "' has no spikes");
  uint32_t n = s.desc.channels();
  for (uint32_t c : s.channels) n = std::max(n, c + 1);
  std::vector<std::vector<int64_t>> times(n);
  for (size_t i = 0; i < s.size(); ++i) times[s.channels[i]].push_back(s.times_ns[i]);
  std::vector<std::string> names(n);
  for (uint32_t c = 0; c < n; ++c) names[c] = s.channel_name(c);
  return bin_times(std::move(names), times, bin_ms);
}

ConnectivityMap infer(const SpikeTrains& t, const InferOptions& o) {
  o.validate(t.bin_ms);
  ConnectivityMap m = empty_map(t, o);
  if (o.method == Method::tspe) {
    infer_tspe(t, o, m);
  } else {
    infer_ccg(t, o, m);
  }
  return m;
}

}  // namespace ion::connectome
