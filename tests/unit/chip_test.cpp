// The emulated chip (timing of inputs and outputs, adaptation, mismatch, bad input) and the two
// UDP address-event formats. The f–I curve against Brian2 is tests/scripts/chip_brian2_reference.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "ion/chip/aer.h"
#include "ion/chip/chip_driver.h"
#include "ion/chip/model.h"
#include "ion/core/config.h"
#include "ion/core/device_clock.h"

namespace ion::chip {
namespace {

constexpr int64_t kMs = 1'000'000;

ChipOptions one_core(uint32_t neurons, double cv = 0.0) {
  ChipOptions o;
  o.cores = 1;
  o.neurons_per_core = neurons;
  o.mismatch_cv = cv;
  return o;
}

TEST(ChipModel, InputActsFromItsDeadlineNotBefore) {
  // "input events are applied at their delivery deadline": nothing moves before the step that
  // starts at or after the input's time; from there the synaptic current is the jump decayed
  // over the time since the input.
  ChipModel m(one_core(1));
  std::vector<ChipSpike> out;
  m.advance(5 * kMs, out);
  const double rest = m.membrane_mv(0);
  ASSERT_EQ(m.inject(0, SynapseType::fast_exc, 2.0F, 5 * kMs + 30'000), InputResult::queued);
  m.advance(5 * kMs + 100'000, out);  // the step [5.0, 5.1) ms: the input is not due yet
  EXPECT_DOUBLE_EQ(m.membrane_mv(0), rest);
  m.advance(5 * kMs + 200'000, out);  // the step starting at 5.1 ms carries it
  const double after_one = m.membrane_mv(0);
  // Euler over one step with I = 2 × 200 pA × e^(−0.07 ms / 5 ms) on C = 281 pF.
  const double expected = 0.1 * 400.0 * std::exp(-0.07 / 5.0) / 281.0;
  EXPECT_NEAR(after_one - rest, expected, 1e-3 * expected + 1e-4);
  EXPECT_EQ(m.counters().inputs_applied, 1U);
  EXPECT_EQ(m.counters().inputs_late, 0U);
}

TEST(ChipModel, LateInputIsCountedAndItsCurrentStillExact) {
  ChipModel m(one_core(1));
  std::vector<ChipSpike> out;
  m.advance(10 * kMs, out);
  ASSERT_EQ(m.inject(0, SynapseType::fast_exc, 1.0F, 2 * kMs), InputResult::queued);
  m.advance(11 * kMs, out);
  EXPECT_EQ(m.counters().inputs_late, 1U);
  EXPECT_EQ(m.counters().inputs_applied, 1U);
}

TEST(ChipModel, BadInputsAreRefusedWithAReason) {
  ChipModel m(one_core(4));
  EXPECT_EQ(m.inject(4, SynapseType::fast_exc, 1.0F, 0), InputResult::bad_neuron);
  EXPECT_EQ(m.inject(0, SynapseType::fast_exc, -1.0F, 0), InputResult::bad_weight);
  EXPECT_EQ(m.inject(0, SynapseType::fast_exc, std::nanf(""), 0), InputResult::bad_weight);
  EXPECT_EQ(m.inject(0, static_cast<SynapseType>(7), 1.0F, 0), InputResult::bad_weight);
  EXPECT_EQ(m.inject(0, SynapseType::fast_exc, 1e9F, 0), InputResult::clamped);
  EXPECT_EQ(m.pending_inputs(), 1U);
}

TEST(ChipModel, SpikesAreInterpolatedWithinTheStepAndComeInTimeOrder) {
  ChipOptions o = one_core(64, 0.1);
  o.neuron.bias_pa = 1500;
  ChipModel m(o);
  std::vector<ChipSpike> out;
  m.advance(500 * kMs, out);
  ASSERT_GT(out.size(), 500U);
  size_t off_grid = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].time_ns % m.step_ns() != 0) ++off_grid;
    if (i > 0) {
      ASSERT_LE(out[i - 1].time_ns, out[i].time_ns);
    }
  }
  EXPECT_GT(off_grid, out.size() / 2) << "crossings fall inside steps, not on the grid";
}

TEST(ChipModel, RefractoryPeriodAndAdaptationShapeTheSpikeTrain) {
  // Constant strong input: no two spikes closer than the refractory period, and intervals grow
  // as the adaptation current builds up (spike-frequency adaptation).
  ChipOptions o = one_core(1);
  o.neuron.bias_pa = 3000;
  ChipModel m(o);
  std::vector<ChipSpike> out;
  m.advance(1000 * kMs, out);
  ASSERT_GT(out.size(), 20U);
  for (size_t i = 1; i < out.size(); ++i) {
    ASSERT_GE(out[i].time_ns - out[i - 1].time_ns, 2 * kMs - m.step_ns());
  }
  const int64_t first_isi = out[1].time_ns - out[0].time_ns;
  const int64_t last_isi = out.back().time_ns - out[out.size() - 2].time_ns;
  EXPECT_GT(last_isi, first_isi * 3 / 2) << "adaptation lengthens the intervals";
}

TEST(ChipModel, InhibitionSlowsAndExcitationSpeedsFiring) {
  ChipOptions o = one_core(3);
  o.neuron.bias_pa = 900;
  ChipModel m(o);
  for (int64_t t = 0; t < 1000 * kMs; t += 2 * kMs) {  // 500 Hz of input on neurons 1 and 2
    (void)m.inject(1, SynapseType::fast_exc, 0.5F, t);
    (void)m.inject(2, SynapseType::fast_inh, 0.5F, t);
  }
  std::vector<ChipSpike> out;
  m.advance(1000 * kMs, out);
  std::array<int, 3> count{};
  for (const ChipSpike& s : out) ++count[s.neuron];
  EXPECT_GT(count[1], count[0] + 5);
  EXPECT_LT(count[2], count[0] - 5);
}

TEST(ChipModel, ResultsDoNotDependOnHowTimeIsSliced) {
  // The driver advances in 1 ms blocks, a replay in one go: the same inputs give the same spikes.
  ChipOptions o;
  o.cores = 2;
  o.neurons_per_core = 300;  // chunks of 256 do not divide it
  o.neuron.bias_pa = 500;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> when(0, 300 * kMs);
  std::uniform_int_distribution<uint32_t> who(0, 599);
  std::uniform_int_distribution<int> type(0, 3);
  std::vector<std::tuple<int64_t, uint32_t, int>> inputs;
  for (int i = 0; i < 60000; ++i) inputs.emplace_back(when(rng), who(rng), type(rng));
  std::sort(inputs.begin(), inputs.end());
  ChipModel whole(o);
  ChipModel sliced(o);
  for (const auto& [t, n, k] : inputs) {
    (void)whole.inject(n, static_cast<SynapseType>(k), 1.0F, t);
  }
  std::vector<ChipSpike> a;
  std::vector<ChipSpike> b;
  whole.advance(300 * kMs, a);
  size_t next = 0;
  for (int64_t t = 0; t <= 300 * kMs; t += 700'000) {  // 0.7 ms: not a multiple of the step
    for (; next < inputs.size() && std::get<0>(inputs[next]) < t; ++next) {
      const auto& [ti, n, k] = inputs[next];
      (void)sliced.inject(n, static_cast<SynapseType>(k), 1.0F, ti);
    }
    sliced.advance(t, b);
  }
  sliced.advance(300 * kMs, b);
  ASSERT_GT(a.size(), 100U);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].neuron, b[i].neuron) << i;
    ASSERT_EQ(a[i].time_ns, b[i].time_ns) << i;
  }
  EXPECT_EQ(whole.counters().inputs_late, 0U);
  EXPECT_EQ(sliced.counters().inputs_late, 0U);
}

TEST(ChipModel, MismatchIsSeededAndZeroMismatchMakesIdenticalNeurons) {
  // "per-neuron parameter mismatch (seeded, coefficient of variation configurable)".
  ChipModel a(one_core(256, 0.1));
  ChipModel b(one_core(256, 0.1));
  ChipOptions other = one_core(256, 0.1);
  other.seed = 2;
  ChipModel c(other);
  EXPECT_EQ(a.neuron_params(17).c_pf, b.neuron_params(17).c_pf);
  EXPECT_NE(a.neuron_params(17).c_pf, c.neuron_params(17).c_pf);
  // Spread of every mismatched parameter across 256 neurons.
  auto cv_of = [&](auto get) {
    double s = 0, s2 = 0;
    for (uint32_t i = 0; i < 256; ++i) {
      const double x = get(a.neuron_params(i));
      s += x;
      s2 += x * x;
    }
    const double mean = s / 256;
    return std::sqrt(s2 / 256 - mean * mean) / mean;
  };
  EXPECT_NEAR(cv_of([](const NeuronParams& p) { return p.c_pf; }), 0.1, 0.02);
  EXPECT_NEAR(cv_of([](const NeuronParams& p) { return p.g_l_ns; }), 0.1, 0.02);
  EXPECT_NEAR(cv_of([](const NeuronParams& p) { return p.b_pa; }), 0.1, 0.02);
  // No mismatch: equal input, equal rates.
  ChipModel flat(one_core(256, 0.0));
  for (uint32_t i = 0; i < 256; ++i) flat.set_bias(i, 1000);
  std::vector<ChipSpike> out;
  flat.advance(300 * kMs, out);
  std::vector<int> count(256);
  for (const ChipSpike& s : out) ++count[s.neuron];
  EXPECT_GT(count[0], 3);
  for (int x : count) ASSERT_EQ(x, count[0]);
}

TEST(ChipModel, RateSpreadGrowsWithTheConfiguredMismatch) {
  // "the spread of firing rates across 256 neurons under equal input matches the configured
  // CV": rates inherit the parameters' spread, scaled by the f–I curve's sensitivity (about 2 at
  // 1 nA; the Brian2 script checks the exact value on the same parameters). Half the mismatch,
  // half the spread.
  auto rate_cv = [](double cv) {
    ChipModel m(one_core(256, cv));
    for (uint32_t i = 0; i < 256; ++i) m.set_bias(i, 1000);
    std::vector<ChipSpike> out;
    m.advance(2000 * kMs, out);
    std::vector<double> r(256);
    for (const ChipSpike& s : out) r[s.neuron] += 0.5;
    double s = 0, s2 = 0;
    for (double x : r) {
      s += x;
      s2 += x * x;
    }
    const double mean = s / 256;
    return std::sqrt(s2 / 256 - mean * mean) / mean;
  };
  const double at10 = rate_cv(0.10);
  const double at05 = rate_cv(0.05);
  EXPECT_GT(at10, 0.10);
  EXPECT_LT(at10, 0.30);
  EXPECT_NEAR(at05 / at10, 0.5, 0.1);
}

TEST(AerFormat, RoundTripsEveryField) {
  std::mt19937 rng(5);
  std::vector<AerEvent> events(kAerMaxEvents);
  for (AerEvent& e : events) {
    e.chip = static_cast<uint8_t>(rng());
    e.core = static_cast<uint8_t>(rng());
    e.neuron = static_cast<uint16_t>(rng());
    e.timestamp_us = static_cast<uint32_t>(rng());
    e.synapse = static_cast<uint8_t>(rng() % 5);
    e.weight = static_cast<float>(rng() % 65536) / 256.0F;  // exact in 8.8
  }
  std::vector<uint8_t> bytes;
  ASSERT_EQ(encode_aer(0xFFFFFFFFU, events, bytes), kAerMaxEvents);
  EXPECT_EQ(bytes.size(), kAerHeaderBytes + kAerMaxEvents * kAerEventBytes);
  EXPECT_LE(bytes.size(), kMaxDatagramBytes);
  AerDatagram d;
  ASSERT_EQ(decode_aer(bytes, d), DecodeError::none);
  EXPECT_EQ(d.sequence, 0xFFFFFFFFU);
  EXPECT_EQ(d.events, events);
  // Big-endian on the wire: magic, then the count and sequence most significant byte first.
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "IOAE");
  EXPECT_EQ(bytes[6], 0);
  EXPECT_EQ(bytes[7], kAerMaxEvents);
  // More events than fit: the encoder writes one datagram's worth and says so.
  std::vector<AerEvent> many(300);
  bytes.clear();
  EXPECT_EQ(encode_aer(1, many, bytes), kAerMaxEvents);
  EXPECT_EQ(weight_to_q8(1.0F), 256);
  EXPECT_EQ(weight_to_q8(-3.0F), 0);
  EXPECT_EQ(weight_to_q8(1e9F), 65535);
}

TEST(AerFormat, BadDatagramsAreRefusedWithTheirReason) {
  std::vector<AerEvent> events(3);
  std::vector<uint8_t> good;
  encode_aer(7, events, good);
  AerDatagram d;
  auto cut = good;
  cut.pop_back();
  EXPECT_EQ(decode_aer(cut, d), DecodeError::truncated);
  EXPECT_EQ(decode_aer(std::span(good).first(10), d), DecodeError::truncated);
  auto longer = good;
  longer.push_back(0);
  EXPECT_EQ(decode_aer(longer, d), DecodeError::oversized);
  std::vector<uint8_t> huge(kMaxDatagramBytes + 1);
  EXPECT_EQ(decode_aer(huge, d), DecodeError::oversized);
  auto magic = good;
  magic[0] = 'X';
  EXPECT_EQ(decode_aer(magic, d), DecodeError::bad_magic);
  auto version = good;
  version[4] = 9;
  EXPECT_EQ(decode_aer(version, d), DecodeError::bad_version);
  auto count = good;
  count[6] = 0xFF;  // claims 65280+ events
  EXPECT_EQ(decode_aer(count, d), DecodeError::oversized);
  auto synapse = good;
  synapse[kAerHeaderBytes + 8] = 5;
  EXPECT_EQ(decode_aer(synapse, d), DecodeError::bad_synapse);
  EXPECT_TRUE(d.events.empty());
  // Every truncation of a good datagram is refused, none crashes.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_NE(decode_aer(std::span(good).first(n), d), DecodeError::none) << n;
  }
}

TEST(LegacyFormat, MatchesTheHubsByteLayoutAndMasksTo24Bits) {
  // DESIGN.md §1: word 0 = 8-bit sender code + 24-bit neuron id, word 1 = 8-bit field + 24-bit
  // timestamp in 50 µs ticks, big-endian.
  const LegacyPacket p{'Z', 0x000102, 200, 0xABCDEF};
  const auto b = encode_legacy(p);
  const std::array<uint8_t, 8> expected = {0x5A, 0x00, 0x01, 0x02, 0xC8, 0xAB, 0xCD, 0xEF};
  EXPECT_EQ(b, expected);
  LegacyPacket back;
  ASSERT_EQ(decode_legacy(b, back), DecodeError::none);
  EXPECT_EQ(back, p);
  const auto wide = encode_legacy({'P', 0x1234567, 1, 0x1FFFFFF});
  ASSERT_EQ(decode_legacy(wide, back), DecodeError::none);
  EXPECT_EQ(back.id, 0x234567U);
  EXPECT_EQ(back.ticks, 0xFFFFFFU);
  EXPECT_EQ(decode_legacy(std::span(b).first(7), back), DecodeError::truncated);
  const std::array<uint8_t, 9> nine{};
  EXPECT_EQ(decode_legacy(nine, back), DecodeError::oversized);
}

TEST(LegacyFormat, TimestampsUnwrapAcrossThe24BitWrap) {
  // 2^24 ticks of 50 µs = 838.9 s: a session longer than that sees the counter wrap.
  DeviceClockOptions o;
  o.counter_bits = 24;
  o.tick_hz = kLegacyTickHz;
  DeviceClock clock(o);
  clock.observe(0xFFFFF0, 0);
  const int64_t before = clock.to_host_ns(0xFFFFF0);
  const int64_t after = clock.to_host_ns(0x000010);  // 32 ticks later, across the wrap
  EXPECT_EQ(after - before, 32 * 50'000);
  EXPECT_EQ(clock.to_raw(after), 0x000010U);
}

TEST(AerSequence, CountsGapsAndRefusesWhatIsBehind) {
  SequenceTracker s;
  EXPECT_EQ(s.observe(0xFFFFFFFEU), SequenceTracker::Verdict::first);
  EXPECT_EQ(s.observe(0xFFFFFFFFU), SequenceTracker::Verdict::in_order);
  EXPECT_EQ(s.observe(0), SequenceTracker::Verdict::in_order);  // wraps
  EXPECT_EQ(s.observe(3), SequenceTracker::Verdict::gap);
  EXPECT_EQ(s.lost(), 2U);
  EXPECT_EQ(s.observe(3), SequenceTracker::Verdict::behind);  // duplicate
  EXPECT_EQ(s.observe(1), SequenceTracker::Verdict::behind);  // late
  EXPECT_EQ(s.observe(4), SequenceTracker::Verdict::in_order);
}

TEST(ChipConfig, ShippedConfigLoadsAndBadValuesAreNamed) {
  const ConfigNode root = ConfigNode::load_file(std::string(ION_SOURCE_DIR) + "/configs/zurich-chip.yaml");
  const ChipDriverOptions o = ChipDriverOptions::from_config(root.child("driver"));
  EXPECT_EQ(o.backend, Backend::emulator);
  EXPECT_EQ(o.neurons(), 256U);
  EXPECT_EQ(o.ports(), 1024U);
  EXPECT_DOUBLE_EQ(o.chip.neuron.bias_pa, 450);
  EXPECT_DOUBLE_EQ(o.chip.bias_overrides_pa.at(1), 670);
  auto fails = [](const std::string& yaml, const std::string& needle) {
    try {
      const ConfigNode r = ConfigNode::parse(yaml, "t.yaml");
      (void)ChipDriverOptions::from_config(r.child("driver"));
    } catch (const ConfigError& e) {
      return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(fails("driver: {kind: chip, backend: serial}", "one of: emulator, udp, legacy_udp"));
  EXPECT_TRUE(fails("driver: {kind: chip, chip: {mismatch_cv: 2}}", "mismatch_cv"));
  EXPECT_TRUE(fails("driver: {kind: chip, chip: {cores: 1, bias_overrides: {300: 10}}}",
                    "bias_overrides names neuron 300, beyond the chip's 256"));
  EXPECT_TRUE(fails("driver: {kind: chip, chip: {bias_overrides: {first: 10}}}", "neuron numbers as keys"));
  EXPECT_TRUE(fails("driver: {kind: chip, chip: {neuron: {v_t_mv: -80}}}", "v_t_mv must be above"));
  EXPECT_TRUE(fails("driver: {kind: chip, backend: udp, udp: {listen: nowhere}}", "IPv4"));
  EXPECT_TRUE(fails("driver: {kind: chip, legacy: {own_code: 300}}", "sender code"));
  EXPECT_TRUE(fails("driver: {kind: chip, chip: {synapses: {ampa: {tau_ms: 1}}}}", "ampa"));
  EXPECT_TRUE(fails("driver: {kind: chip, legacy: {preset: hub2018}}", "one of: absolute, hub2017-zurich"));
  EXPECT_TRUE(fails("driver: {kind: chip, legacy: {in: {code: A}}}", "in: takes `codes`"));
  EXPECT_TRUE(fails("driver: {kind: chip, legacy: {out: {time: later}}}", "counter, interval, since_stimulus"));
  EXPECT_TRUE(fails("driver: {kind: chip, legacy: {in: {id_bits: 32}}}", "id_bits"));

  // A preset, with one field overridden: the rest stays the preset's.
  const ConfigNode r = ConfigNode::parse(
      "driver: {kind: chip, backend: legacy_udp, legacy: {preset: hub2017-padova, out: {code: P}}}",
      "t.yaml");
  const ChipDriverOptions legacy = ChipDriverOptions::from_config(r.child("driver"));
  EXPECT_EQ(legacy.legacy.out.codes, std::vector<uint8_t>{'P'});
  EXPECT_EQ(legacy.legacy.out.time, LegacyTime::since_stimulus);
  EXPECT_EQ(legacy.legacy.in.codes, std::vector<uint8_t>{'S'});
  EXPECT_EQ(legacy.legacy.in.id_bits, 20);
}

}  // namespace
}  // namespace ion::chip
