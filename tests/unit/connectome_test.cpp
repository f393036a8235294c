// Connectivity inference (docs/connectome.md): the TSPE kernel against the filter pipeline it
// stands for, both methods on pairs with a planted excitatory or inhibitory coupling, scoring,
// aggregation onto electrodes, and an emulated culture with a known wiring.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "ion/connectome/connectome.h"
#include "ion/mea/culture.h"

namespace ion::connectome {
namespace {

// The TSPE pipeline as De Blasi et al. (2019) describe it, computed the slow way for one pair:
// for every window pair (a, b), the edge filter slid over the normalised correlogram
// ('valid'), then a running total of b; summed over (a, b).
std::vector<double> tspe_direct(const std::vector<double>& ncc, int32_t first_lag, const InferOptions& o) {
  const auto max_delay = static_cast<int32_t>(o.max_delay_bins);
  std::vector<double> total(max_delay, 0.0);
  auto at = [&](int32_t lag) { return ncc[static_cast<size_t>(lag - first_lag)]; };
  for (uint32_t ua : o.surrounding) {
    for (uint32_t ub : o.observed) {
      const auto a = static_cast<int32_t>(ua);
      const auto b = static_cast<int32_t>(ub);
      // Filter g(i), i = 1..2a+b: -1/a, then 2/b, then -1/a; window starts at lag m - a.
      std::vector<double> spe;
      for (int32_t m = 0; m + b <= max_delay; ++m) {
        double v = 0;
        for (int32_t i = 1; i <= 2 * a + b; ++i) {
          const double g = i <= a ? -1.0 / a : i <= a + b ? 2.0 / b : -1.0 / a;
          v += g * at(m - a + i - 1);
        }
        spe.push_back(v);
      }
      for (int32_t k = 0; k < max_delay; ++k) {
        for (int32_t m = std::max(0, k - b + 1); m <= k && m < static_cast<int32_t>(spe.size()); ++m) total[k] += spe[m];
      }
    }
  }
  return total;
}

TEST(Tspe, TheKernelIsTheFilterPipeline) {
  InferOptions o;
  const TspeKernel k = tspe_kernel(o);
  ASSERT_EQ(k.delays, o.max_delay_bins);
  std::mt19937 rng(3);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> ncc(k.lags);
  for (double& x : ncc) x = g(rng);
  const std::vector<double> want = tspe_direct(ncc, k.first_lag, o);
  for (uint32_t d = 0; d < k.delays; ++d) {
    double got = 0;
    for (uint32_t j = 0; j < k.lags; ++j) got += k.k[d * k.lags + j] * ncc[j];
    EXPECT_NEAR(got, want[d], 1e-9) << "delay " << d;
  }
  // Every edge filter sums to zero: a flat correlogram scores nothing.
  std::vector<double> flat(k.lags, 0.37);
  for (uint32_t d = 0; d < k.delays; ++d) {
    double got = 0;
    for (uint32_t j = 0; j < k.lags; ++j) got += k.k[d * k.lags + j] * flat[j];
    EXPECT_NEAR(got, 0, 1e-9);
  }
}

// Three channels over `seconds`: `pre` Poisson; `post` Poisson plus, after each pre spike with
// probability `p`, one spike `lag_ms` later (excitation), or with its spikes in the 2–6 ms
// after each pre spike removed (inhibition); `other` independent.
SpikeTrains planted(bool excitatory, double seconds, double lag_ms, double p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  auto poisson = [&](double hz) {
    std::vector<int64_t> t;
    std::exponential_distribution<double> gap(hz);
    for (double x = gap(rng); x < seconds; x += gap(rng)) t.push_back(static_cast<int64_t>(x * 1e9));
    return t;
  };
  std::vector<int64_t> pre = poisson(8);
  std::vector<int64_t> post = poisson(excitatory ? 5 : 30);
  if (excitatory) {
    for (int64_t t : pre) {
      if (u(rng) < p) post.push_back(t + static_cast<int64_t>(lag_ms * 1e6));
    }
  } else {
    std::vector<int64_t> kept;
    for (int64_t t : post) {
      const auto after = std::upper_bound(pre.begin(), pre.end(), t);
      bool silenced = false;
      if (after != pre.begin()) {
        const double since_ms = static_cast<double>(t - *(after - 1)) / 1e6;
        silenced = since_ms >= 2 && since_ms < 6;
      }
      if (!silenced) kept.push_back(t);
    }
    post = kept;
  }
  std::sort(post.begin(), post.end());
  return bin_times({"pre", "post", "other"}, {pre, post, poisson(6)}, 1.0);
}

class BothMethods : public ::testing::TestWithParam<Method> {};

TEST_P(BothMethods, APlantedExcitatoryCouplingIsFoundWithItsDirectionAndDelay) {
  InferOptions o;
  o.method = GetParam();
  const ConnectivityMap m = infer(planted(true, 300, 4.2, 0.3, 5), o);
  const size_t fwd = m.at(0, 1);
  EXPECT_TRUE(m.significant[fwd]);
  EXPECT_GT(m.strength[fwd], 0);
  EXPECT_NEAR(m.delay_ms[fwd], 4.0, 2.01);
  // The reverse direction is never excitatory. (Both methods' filters see the forward peak at
  // negative lags, so a coupling this strong can leave a weaker negative score the other way.)
  const size_t rev = m.at(1, 0);
  EXPECT_FALSE(m.significant[rev] && m.strength[rev] > 0) << "the reverse direction";
  EXPECT_LT(std::fabs(m.strength[rev]), 0.5 * m.strength[fwd]);
  for (size_t a = 0; a < 3; ++a) {
    EXPECT_FALSE(m.significant[m.at(a, 2)]) << "an independent channel";
    EXPECT_FALSE(m.significant[m.at(2, a)]) << "an independent channel";
  }
}

TEST_P(BothMethods, APlantedInhibitionIsFoundWithANegativeSign) {
  InferOptions o;
  o.method = GetParam();
  const ConnectivityMap m = infer(planted(false, 300, 0, 0, 6), o);
  EXPECT_TRUE(m.significant[m.at(0, 1)]);
  EXPECT_LT(m.strength[m.at(0, 1)], 0);
  EXPECT_FALSE(m.significant[m.at(0, 2)]);
}

INSTANTIATE_TEST_SUITE_P(Connectome, BothMethods, ::testing::Values(Method::tspe, Method::ccg),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

TEST(Connectome, QuietChannelsGetNoScores) {
  InferOptions o;
  o.min_spikes = 1000000;
  const ConnectivityMap m = infer(planted(true, 60, 3, 0.3, 1), o);
  EXPECT_EQ(std::count(m.scored.begin(), m.scored.end(), uint8_t{1}), 0);
  EXPECT_EQ(m.significant_count(), 0U);
}

TEST(Connectome, BadOptionsAreNamed) {
  InferOptions o;
  o.max_delay_bins = 1;
  EXPECT_THROW(o.validate(1.0), std::invalid_argument);
  o = {};
  EXPECT_THROW(o.validate(0.0), std::invalid_argument);
  o.alpha = 2;
  EXPECT_THROW(o.validate(1.0), std::invalid_argument);
}

TEST(Score, RocAucCountsTiesAsHalf) {
  EXPECT_DOUBLE_EQ(roc_auc({3, 4}, {1, 2}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({1, 2}, {3, 4}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({1}, {1}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({2, 0}, {1}), 0.5);
}

TEST(Score, PrecisionRecallSignAndDelayOfASmallMap) {
  const std::vector<TrueEdge> truth = {{"a", "b", 1, 2, 1}, {"b", "c", 1, 3, -1}, {"c", "a", 1, 1, 1}};
  const std::vector<MapEdge> map = {
      {"a", "b", 0.9, 3, 5, true},    // true, right sign, 1 ms off
      {"b", "c", 0.5, 3, 4, true},    // true, wrong sign
      {"a", "c", 0.4, 1, 3, true},    // false positive
      {"c", "a", 0.1, 1, 0.1, false}  // true, missed
  };
  const Score s = score(map, {"a", "b", "c"}, truth);
  EXPECT_EQ(s.pairs, 6U);
  EXPECT_EQ(s.predicted, 3U);
  EXPECT_EQ(s.true_positive, 2U);
  EXPECT_DOUBLE_EQ(s.precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.sign_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(s.delay_error_ms, 0.5);
  // Excitatory a->b (0.9) and c->a (0.1) against the rest (0.5, 0.4, 0, 0).
  EXPECT_DOUBLE_EQ(s.auc_excitatory, (4 + 2) / 8.0);
  EXPECT_THROW((void)score(map, {"x", "y"}, truth), std::invalid_argument);
}

// Issue 22: "The MEA driver writes its culture's true wiring ... at neuron level and aggregated
// to electrodes (how neurons map to electrodes is the emulator's)."
TEST(Score, TheCulturesWiringAggregatesOntoItsElectrodes) {
  mea::CultureOptions o;
  o.neurons = 200;
  mea::CultureEmulator c(o);
  const auto neurons = c.wiring();
  const auto electrodes = c.electrode_wiring();
  ASSERT_FALSE(electrodes.empty());
  // Recompute one electrode pair's entry from the neuron wiring and the home electrodes.
  const mea::TrueSynapse& e = electrodes.front();
  double signed_weight = 0;
  for (const auto& w : neurons) {
    if (c.home_electrode(w.pre) == static_cast<int32_t>(e.pre) &&
        c.home_electrode(w.post) == static_cast<int32_t>(e.post)) {
      signed_weight += w.excitatory ? w.weight : -w.weight;
    }
  }
  EXPECT_NEAR(e.weight, std::fabs(signed_weight), 1e-3);
  EXPECT_EQ(e.excitatory, signed_weight > 0);
  for (const auto& x : electrodes) EXPECT_NE(x.pre, x.post) << "within one electrode: dropped";
  const std::string path = ::testing::TempDir() + "/wiring.csv";
  c.write_wiring(path, true);
  const auto back = read_truth(path);
  ASSERT_EQ(back.size(), electrodes.size());
  EXPECT_EQ(back[0].pre, std::to_string(e.pre));
  EXPECT_NEAR(back[0].weight, e.weight, 1e-3);
}

TEST(Files, MapsAndWiringsRoundTripAndBadLinesAreNamed) {
  const std::string dir = ::testing::TempDir();
  ConnectivityMap m = infer(planted(true, 120, 3, 0.3, 2), InferOptions{});
  {
    std::ofstream out(dir + "/map.csv");
    write_map(out, m, true);
  }
  const auto edges = read_map(dir + "/map.csv");
  EXPECT_EQ(edges.size(), 6U);
  EXPECT_EQ(map_channels(dir + "/map.csv"), (std::vector<std::string>{"pre", "post", "other"}));
  {
    std::ofstream out(dir + "/truth.csv");
    write_truth(out, {{"pre", "post", 1.5, 3, 1}}, "planted");
  }
  const auto t = read_truth(dir + "/truth.csv");
  ASSERT_EQ(t.size(), 1U);
  EXPECT_EQ(t[0].sign, 1);
  {
    std::ofstream out(dir + "/bad.csv");
    out << "pre,post,weight,delay_ms,sign\na,b,1,2,0\n";
  }
  try {
    (void)read_truth(dir + "/bad.csv");
    FAIL() << "a sign of 0 must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)read_map(dir + "/missing.csv"), std::runtime_error);
}

// Issue: "On emulated cultures with a known wiring ... ROC AUC of the excitatory connections
// >= 0.9 for at least one method." 60 neurons, 10 minutes, the culture's asynchronous regime
// (noise 4, excitatory weight 4: the stand-in regime `ion connectome simulate` uses).
// An emulated culture run for `seconds`, network only: its neurons' binned trains and wiring.
struct Culture {
  std::vector<std::string> names;
  SpikeTrains trains;
  std::vector<TrueEdge> truth;
};
Culture emulated_culture(mea::CultureOptions o, double seconds) {
  o.ground_truth = true;
  mea::CultureEmulator c(o);
  c.run_network(static_cast<uint64_t>(seconds * o.sample_rate_hz));
  Culture r;
  std::vector<std::vector<int64_t>> times(o.neurons);
  for (uint32_t i = 0; i < o.neurons; ++i) r.names.push_back("n" + std::to_string(i));
  for (const auto& s : c.take_ground_truth()) {
    times[s.neuron].push_back(static_cast<int64_t>(static_cast<double>(s.sample) * 1e9 / o.sample_rate_hz));
  }
  for (const auto& w : c.wiring()) {
    r.truth.push_back({r.names[w.pre], r.names[w.post], w.weight, w.delay_ms, w.excitatory ? 1 : -1});
  }
  r.trains = bin_times(r.names, times, 1.0);
  return r;
}

// The asynchronous, noise-driven regime `ion connectome simulate` uses (noise 4, excitatory
// weight 4, inhibitory 8): each synapse marks its target's firing.
mea::CultureOptions asynchronous_culture(uint32_t neurons) {
  mea::CultureOptions o;
  o.neurons = neurons;
  o.noise_current = 4;
  o.weight_exc = 4;
  o.weight_inh = 8;
  o.step_ms = 0.5;
  o.seed = 11;
  return o;
}

TEST(Connectome, AnEmulatedCulturesExcitatoryWiringIsRecoveredWithAucAbove0_9) {
  const Culture culture = emulated_culture(asynchronous_culture(60), 600);
  const auto& names = culture.names;
  const auto& truth = culture.truth;
  const SpikeTrains& trains = culture.trains;
  for (Method method : {Method::tspe, Method::ccg}) {
    InferOptions io;
    io.method = method;
    const ConnectivityMap m = infer(trains, io);
    const Score s = score(edges_of(m), names, truth);
    std::printf("%s: AUC excitatory %.3f inhibitory %.3f, precision %.3f recall %.3f sign %.3f\n",
                to_string(method), s.auc_excitatory, s.auc_inhibitory, s.precision, s.recall, s.sign_accuracy);
    if (method == Method::tspe) {
      EXPECT_GE(s.auc_excitatory, 0.9);
      EXPECT_GE(s.precision, 0.8) << "alpha 0.001 per pair: few false positives";
      EXPECT_GE(s.sign_accuracy, 0.9);
    } else {
      EXPECT_GE(s.auc_excitatory, 0.8);
    }
  }
}

// Under network bursts the shifted-train null keeps bursts unaligned, so pairs that merely burst
// together pass it (precision about 0.1). The jitter null keeps each train's slow structure,
// bursts included: what passes it is timing finer than the window. On a bursting culture (the MEA
// node's defaults) it is several times more precise; on the asynchronous one it finds about as
// many connections as the shifted one.
TEST(Connectome, TheJitterNullIsPreciseUnderNetworkBursts) {
  mea::CultureOptions bursting;  // the MEA node's culture: network bursts
  bursting.neurons = 256;
  bursting.step_ms = 0.5;
  bursting.seed = 1;
  const Culture b = emulated_culture(bursting, 300);
  InferOptions shift;
  InferOptions jitter;
  jitter.null = InferOptions::Null::jitter;
  const Score bs = score(edges_of(infer(b.trains, shift)), b.names, b.truth);
  const Score bj = score(edges_of(infer(b.trains, jitter)), b.names, b.truth);
  std::printf("bursting: shift precision %.3f recall %.3f; jitter precision %.3f recall %.3f\n", bs.precision,
              bs.recall, bj.precision, bj.recall);
  EXPECT_LT(bs.precision, 0.2);
  EXPECT_GT(bj.precision, 2 * bs.precision);
  const Culture a = emulated_culture(asynchronous_culture(60), 300);
  const Score as = score(edges_of(infer(a.trains, shift)), a.names, a.truth);
  const Score aj = score(edges_of(infer(a.trains, jitter)), a.names, a.truth);
  std::printf("asynchronous: shift precision %.3f recall %.3f; jitter precision %.3f recall %.3f\n", as.precision,
              as.recall, aj.precision, aj.recall);
  EXPECT_GE(aj.precision, 0.9);
  EXPECT_GE(aj.recall, 0.8 * as.recall);
}

}  // namespace
}  // namespace ion::connectome
