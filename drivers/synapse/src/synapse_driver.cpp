#include "ion/synapse/synapse_driver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "ion/v1/ion.pb.h"

namespace ion::synapse {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

RuleKind rule_of(const std::string& s, bool& ok) {
  ok = true;
  if (s == "rate") return RuleKind::rate;
  if (s == "stdp") return RuleKind::stdp;
  if (s == "reward") return RuleKind::reward;
  if (s == "none") return RuleKind::none;
  ok = false;
  return RuleKind::none;
}

bool neuron_of(const std::string& s, const std::map<std::string, uint32_t>& names, uint32_t& out) {
  if (auto it = names.find(s); it != names.end()) {
    out = it->second;
    return true;
  }
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9) return false;
  out = static_cast<uint32_t>(std::stoul(s));
  return true;
}

#define ION_TIOX_KEYS                                                                           \
  "r_on_ohm", "r_off_ohm", "v_th_pos", "v_th_neg", "a_pos", "a_neg", "t_pos", "t_neg",          \
      "r_pos0_ohm", "r_pos1_ohm_per_v", "r_neg0_ohm", "r_neg1_ohm_per_v", "r_init_ohm",         \
      "r_init_spread", "d2d_sigma", "c2c_sigma", "read_noise"

void read_tiox(const ConfigNode& n, TiOxParams& p) {
  p.r_on_ohm = n.number("r_on_ohm", p.r_on_ohm, 1, 1e9);
  p.r_off_ohm = n.number("r_off_ohm", p.r_off_ohm, 1, 1e9);
  p.v_th_pos = n.number("v_th_pos", p.v_th_pos, 0.01, 20);
  p.v_th_neg = n.number("v_th_neg", p.v_th_neg, 0.01, 20);
  p.a_pos = n.number("a_pos", p.a_pos, 0, 1e6);
  p.a_neg = n.number("a_neg", p.a_neg, 0, 1e6);
  p.t_pos = n.number("t_pos", p.t_pos, 1e-3, 100);
  p.t_neg = n.number("t_neg", p.t_neg, 1e-3, 100);
  p.r_pos0_ohm = n.number("r_pos0_ohm", p.r_pos0_ohm, 0, 1e9);
  p.r_pos1_ohm_per_v = n.number("r_pos1_ohm_per_v", p.r_pos1_ohm_per_v, -1e9, 1e9);
  p.r_neg0_ohm = n.number("r_neg0_ohm", p.r_neg0_ohm, 0, 1e9);
  p.r_neg1_ohm_per_v = n.number("r_neg1_ohm_per_v", p.r_neg1_ohm_per_v, -1e9, 1e9);
  p.r_init_ohm = n.number("r_init_ohm", p.r_init_ohm, 1, 1e9);
  p.r_init_spread = n.number("r_init_spread", p.r_init_spread, 0, 0.99);
  p.d2d_sigma = n.number("d2d_sigma", p.d2d_sigma, 0, 2);
  p.c2c_sigma = n.number("c2c_sigma", p.c2c_sigma, 0, 2);
  p.read_noise = n.number("read_noise", p.read_noise, 0, 0.49);
}

int64_t ns_of(const ConfigNode& n, std::string_view key, int64_t fallback, nanoseconds lo,
              nanoseconds hi) {
  return n.duration(key, nanoseconds(fallback), lo, hi).count();
}

DeviceOptions device_from(const ConfigNode& n) {
  DeviceOptions o;
  const std::string model = n.string("model", "tiox");
  if (model == "tiox") {
    n.only_keys({"model", "seed", ION_TIOX_KEYS});
    o.model = DeviceModel::tiox;
    read_tiox(n, o.tiox);
  } else if (model == "volatile") {
    // The volatile layer's keys here; the long-term layer's under `nonvolatile:`.
    n.only_keys({"model", "seed", "v_th", "g_max_s", "rate_per_v_s", "tau_ms", "nonvolatile"});
    o.model = DeviceModel::volatile_cell;
    VolatileParams& v = o.volatile_cell;
    v.v_th = n.number("v_th", v.v_th, 0.01, 20);
    v.g_max_s = n.number("g_max_s", v.g_max_s, 1e-12, 10);
    v.rate_per_v_s = n.number("rate_per_v_s", v.rate_per_v_s, 0, 1e12);
    v.tau_ms = n.number("tau_ms", v.tau_ms, 1e-3, 1e7);
    if (auto nv = n.find_child("nonvolatile")) {
      nv->only_keys({ION_TIOX_KEYS});
      read_tiox(*nv, v.nonvolatile);
    }
  } else if (model == "nanofluidic") {
    n.only_keys({"model", "seed", "preset", "law", "tau_s", "v0", "g0_s", "g1_s", "alpha", "g_plus_s",
                 "g_minus_s", "v_s", "g_uni_s", "a", "g_bi_s", "b", "g_floor_s", "d2d_sigma",
                 "c2c_sigma", "read_noise"});
    o.model = DeviceModel::nanofluidic;
    NanofluidicParams& f = o.nanofluidic;
    if (n.has("preset")) {
      try {
        f = NanofluidicParams::preset(n.string("preset", ""));
      } catch (const std::invalid_argument& e) {
        n.fail("preset", e.what());
      }
    }
    if (n.has("law")) {
      const std::string law = n.string("law", "");
      if (law == "unipolar") {
        f.law = NanofluidicLaw::unipolar;
      } else if (law == "bipolar") {
        f.law = NanofluidicLaw::bipolar;
      } else if (law == "mixed") {
        f.law = NanofluidicLaw::mixed;
      } else {
        n.fail("law", "one of: unipolar, bipolar, mixed");
      }
    }
    f.tau_s = n.number("tau_s", f.tau_s, 1e-9, 1e5);
    f.v0 = n.number("v0", f.v0, 1e-6, 100);
    f.g0_s = n.number("g0_s", f.g0_s, 1e-15, 1);
    f.g1_s = n.number("g1_s", f.g1_s, 0, 1);
    f.alpha = n.number("alpha", f.alpha, 1, 4);
    f.g_plus_s = n.number("g_plus_s", f.g_plus_s, 1e-15, 1);
    f.g_minus_s = n.number("g_minus_s", f.g_minus_s, 1e-15, 1);
    f.v_s = n.number("v_s", f.v_s, 1e-6, 100);
    f.g_uni_s = n.number("g_uni_s", f.g_uni_s, 0, 1);
    f.a = n.number("a", f.a, -1e6, 1e6);
    f.g_bi_s = n.number("g_bi_s", f.g_bi_s, 0, 1);
    f.b = n.number("b", f.b, -1e6, 1e6);
    f.g_floor_s = n.number("g_floor_s", f.g_floor_s, 1e-18, 1);
    f.d2d_sigma = n.number("d2d_sigma", f.d2d_sigma, 0, 2);
    f.c2c_sigma = n.number("c2c_sigma", f.c2c_sigma, 0, 2);
    f.read_noise = n.number("read_noise", f.read_noise, 0, 0.49);
  } else if (model == "ts-pcm") {
    n.only_keys({"model", "seed", "pcm", "ts", "cell"});
    o.model = DeviceModel::ts_pcm;
    TsPcmParams& t = o.ts_pcm;
    if (auto c = n.find_child("pcm")) {
      c->only_keys({"w_min", "w_max", "dw_min", "a", "b", "gamma_up", "a_up", "dw_min_dtod",
                    "dw_min_std", "reset", "reset_dtod", "g_max_s", "g_min_s", "t0_s", "drift",
                    "set_v", "reset_v", "read_noise"});
      PcmParams& q = t.pcm;
      q.w_min = c->number("w_min", q.w_min, -100, 100);
      q.w_max = c->number("w_max", q.w_max, -100, 100);
      q.dw_min = c->number("dw_min", q.dw_min, 1e-9, 10);
      q.a = c->number("a", q.a, -100, 100);
      q.b = c->number("b", q.b, -100, 100);
      q.gamma_up = c->number("gamma_up", q.gamma_up, -100, 100);
      q.a_up = c->number("a_up", q.a_up, -1e4, 1e4);
      q.dw_min_dtod = c->number("dw_min_dtod", q.dw_min_dtod, 0, 2);
      q.dw_min_std = c->number("dw_min_std", q.dw_min_std, 0, 5);
      q.reset = c->number("reset", q.reset, -100, 100);
      q.reset_dtod = c->number("reset_dtod", q.reset_dtod, 0, 10);
      q.g_max_s = c->number("g_max_s", q.g_max_s, 1e-12, 1);
      q.g_min_s = c->number("g_min_s", q.g_min_s, 1e-15, 1);
      q.t0_s = c->number("t0_s", q.t0_s, 1e-6, 1e6);
      q.drift = c->boolean("drift", q.drift);
      q.set_v = c->number("set_v", q.set_v, 1e-3, 100);
      q.reset_v = c->number("reset_v", q.reset_v, -100, -1e-3);
      q.read_noise = c->number("read_noise", q.read_noise, 0, 0.49);
    }
    if (auto c = n.find_child("ts")) {
      c->only_keys({"v_th", "v_hold", "r_on_ohm", "r_off_ohm"});
      t.ts.v_th = c->number("v_th", t.ts.v_th, 1e-3, 100);
      t.ts.v_hold = c->number("v_hold", t.ts.v_hold, 1e-3, 100);
      t.ts.r_on_ohm = c->number("r_on_ohm", t.ts.r_on_ohm, 1e-3, 1e12);
      t.ts.r_off_ohm = c->number("r_off_ohm", t.ts.r_off_ohm, 1e-3, 1e12);
    }
    if (auto c = n.find_child("cell")) {
      c->only_keys({"c_f", "r_leak_ohm", "drive_a", "drive_width", "feedback", "max_firings_per_drive"});
      t.cell.c_f = c->number("c_f", t.cell.c_f, 1e-18, 1);
      t.cell.r_leak_ohm = c->number("r_leak_ohm", t.cell.r_leak_ohm, 1, 1e15);
      t.cell.drive_a = c->number("drive_a", t.cell.drive_a, 0, 1);
      t.cell.drive_width_s = static_cast<double>(ns_of(*c, "drive_width", std::llround(t.cell.drive_width_s * 1e9), nanoseconds(1000), std::chrono::seconds(60))) * 1e-9;
      t.cell.feedback = c->number("feedback", t.cell.feedback, 0, 10);
      t.cell.max_firings_per_drive = static_cast<uint32_t>(c->integer("max_firings_per_drive", t.cell.max_firings_per_drive, 1, 1000000));
    }
  } else {
    n.fail("model", "one of: tiox, volatile, nanofluidic, ts-pcm");
  }
  o.seed = static_cast<uint64_t>(n.integer("seed", 1, 0, INT64_MAX));
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    n.fail("", e.what());
  }
  return o;
}

#undef ION_TIOX_KEYS


}  // namespace

float map_weight(const WeightOptions& w, double r) noexcept {
  if (!(r > 0)) return 0.F;
  switch (w.map) {
    case WeightMap::resistance:
      return static_cast<float>(std::clamp((r - w.r_min_ohm) / (w.r_max_ohm - w.r_min_ohm), 0.0, 1.0));
    case WeightMap::conductance: {
      const double g_lo = 1.0 / w.r_max_ohm;
      const double g_hi = 1.0 / w.r_min_ohm;
      return static_cast<float>(std::clamp((1.0 / r - g_lo) / (g_hi - g_lo), 0.0, 1.0));
    }
    case WeightMap::byte:
      return static_cast<float>(
          std::round(255.0 * std::clamp((r - w.r_min_ohm) / (w.r_max_ohm - w.r_min_ohm), 0.0, 1.0)));
  }
  return 0.F;
}

std::vector<SynapseSpec> parse_connectivity(const std::string& text, const std::string& where,
                                            const std::map<std::string, uint32_t>& names,
                                            RuleKind default_rule) {
  std::vector<SynapseSpec> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  bool header_seen = false;
  while (std::getline(in, line)) {
    ++lineno;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) f.push_back(trim(cell));
    const auto fail = [&](const std::string& what) {
      throw std::invalid_argument(where + ":" + std::to_string(lineno) + ": " + what);
    };
    if (!header_seen) {
      header_seen = true;
      if (f.size() < 4 || f[0] != "pre" || f[1] != "post" || f[2] != "wordline" || f[3] != "bitline" ||
          (f.size() >= 7 && f[6] != "target_ohm") || f.size() > 7) {
        fail("expected the header pre,post,wordline,bitline[,rule][,gain][,target_ohm]");
      }
      continue;
    }
    if (f.size() < 4 || f.size() > 7) fail("expected pre,post,wordline,bitline[,rule][,gain][,target_ohm]");
    SynapseSpec s;
    if (!neuron_of(f[0], names, s.pre)) fail("unknown presynaptic neuron '" + f[0] + "'");
    if (!neuron_of(f[1], names, s.post)) fail("unknown postsynaptic neuron '" + f[1] + "'");
    uint32_t wl = 0;
    uint32_t bl = 0;
    if (!neuron_of(f[2], {}, wl)) fail("wordline '" + f[2] + "' is not a non-negative integer");
    if (!neuron_of(f[3], {}, bl)) fail("bitline '" + f[3] + "' is not a non-negative integer");
    s.cell = {wl, bl};
    s.rule = default_rule;
    if (f.size() >= 5 && !f[4].empty()) {
      bool ok = false;
      s.rule = rule_of(f[4], ok);
      if (!ok) fail("rule '" + f[4] + "': expected rate, stdp, reward or none");
    }
    if (f.size() >= 6 && !f[5].empty()) {
      char* end = nullptr;
      const double g = std::strtod(f[5].c_str(), &end);
      if (end == f[5].c_str() || *end != '\0' || !std::isfinite(g) || std::fabs(g) > 1e6) {
        fail("gain '" + f[5] + "' is not a finite number");
      }
      s.gain = static_cast<float>(g);
    }
    if (f.size() == 7 && !f[6].empty()) {
      char* end = nullptr;
      const double r = std::strtod(f[6].c_str(), &end);
      if (end == f[6].c_str() || *end != '\0' || !(r > 0 && r < 1e9)) {
        fail("target_ohm '" + f[6] + "' is not a resistance in (0, 1e9) ohm");
      }
      s.target_ohm = r;
    }
    out.push_back(s);
  }
  if (!header_seen) throw std::invalid_argument(where + ": no connectivity (empty file)");
  return out;
}

void SynapseDriverOptions::validate() const {
  if (crossbar.device.model == DeviceModel::ts_pcm && backend != InstrumentBackend::emulator) {
    throw std::invalid_argument("ts-pcm cells are emulated: instrument.backend must be emulator");
  }
  std::set<std::pair<uint32_t, uint32_t>> cells;
  for (size_t k = 0; k < synapses.size(); ++k) {
    const SynapseSpec& s = synapses[k];
    const std::string name = "synapse " + std::to_string(k) + " (" + std::to_string(s.pre) + " -> " +
                             std::to_string(s.post) + ")";
    if (s.pre >= neurons || s.post >= neurons) {
      throw std::invalid_argument(name + ": neuron outside 0.." + std::to_string(neurons) + "-1");
    }
    if (s.cell.wordline >= crossbar.wordlines || s.cell.bitline >= crossbar.bitlines) {
      throw std::invalid_argument(name + ": cell (" + std::to_string(s.cell.wordline) + ", " +
                                  std::to_string(s.cell.bitline) + ") outside the " +
                                  std::to_string(crossbar.wordlines) + "x" +
                                  std::to_string(crossbar.bitlines) + " array");
    }
    if (!cells.insert({s.cell.wordline, s.cell.bitline}).second) {
      throw std::invalid_argument(name + ": cell (" + std::to_string(s.cell.wordline) + ", " +
                                  std::to_string(s.cell.bitline) + ") is already assigned");
    }
  }
  if (synapses.empty()) throw std::invalid_argument("no synapses: the connectivity is empty");
  auto check = [&](double v, double w, const char* what) {
    if (std::fabs(v) > safety.max_volts || w > safety.max_width_s || !(w > 0)) {
      throw std::invalid_argument(std::string(what) + " pulse (" + std::to_string(v) + " V, " +
                                  std::to_string(w * 1e6) + " us) beyond the safety limits (" +
                                  std::to_string(safety.max_volts) + " V, " +
                                  std::to_string(safety.max_width_s * 1e6) + " us)");
    }
  };
  // The rules some synapse uses: each of their pulses must be within the limits.
  auto used = [&](RuleKind k) {
    return std::any_of(synapses.begin(), synapses.end(), [k](const SynapseSpec& x) { return x.rule == k; });
  };
  if (used(RuleKind::rate)) {
    check(rules.rate.ltp_volts, rules.rate.width_s, "rate-rule LTP");
    check(rules.rate.ltd_volts, rules.rate.width_s, "rate-rule LTD");
  }
  if (used(RuleKind::stdp)) {
    check(rules.stdp.ltp_v_max, rules.stdp.width_s, "STDP LTP");
    check(rules.stdp.ltd_v_max, rules.stdp.width_s, "STDP LTD");
  }
  if (used(RuleKind::reward)) {
    check(rules.reward.ltp_volts, rules.reward.width_s, "reward-rule LTP");
    check(rules.reward.ltd_volts, rules.reward.width_s, "reward-rule LTD");
    if (rules.reward.port >= neurons) {
      throw std::invalid_argument("reward-rule synapses need plasticity.reward.port: the input port that carries the neuromodulator");
    }
  }
  if (!(weight.r_max_ohm > weight.r_min_ohm) || !(weight.r_min_ohm > 0)) {
    throw std::invalid_argument("weight: r_min_ohm must be > 0 and below r_max_ohm");
  }
}

SynapseDriverOptions SynapseDriverOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "neurons", "crossbar", "device", "instrument", "weight", "plasticity",
               "safety", "refresh_interval", "synapses", "stream", "weight_stream", "program"});
  SynapseDriverOptions o;
  // Neurons: a count, or a mapping of names to ports.
  if (!d.has("neurons")) d.fail("neurons", "a neuron count or a mapping name: port");
  if (d.yaml()["neurons"].IsMap()) {
    const ConfigNode n = d.child("neurons");
    uint32_t top = 0;
    for (const auto& kv : n.yaml()) {
      const auto name = kv.first.as<std::string>();
      const auto port = static_cast<uint32_t>(n.integer(name, 0, 65535));
      o.neuron_names[name] = port;
      top = std::max(top, port + 1);
    }
    o.neurons = top;
  } else {
    o.neurons = static_cast<uint32_t>(d.integer("neurons", 1, 65536));
  }
  if (auto c = d.find_child("crossbar")) {
    c->only_keys({"wordlines", "bitlines"});
    o.crossbar.wordlines = static_cast<uint32_t>(c->integer("wordlines", o.crossbar.wordlines, 1, 4096));
    o.crossbar.bitlines = static_cast<uint32_t>(c->integer("bitlines", o.crossbar.bitlines, 1, 4096));
  }
  if (auto dev = d.find_child("device")) o.crossbar.device = device_from(*dev);
  if (auto i = d.find_child("instrument")) {
    i->only_keys({"backend", "pulse_time", "read_time", "queue", "address", "device", "baud",
                  "reply_timeout"});
    const std::string b = i->string("backend", "emulator");
    if (b == "emulator") {
      o.backend = InstrumentBackend::emulator;
    } else if (b == "tcp") {
      o.backend = InstrumentBackend::tcp;
      o.line.tcp = i->string("address");
    } else if (b == "serial") {
      o.backend = InstrumentBackend::serial;
      o.line.serial = i->string("device");
      o.line.baud = static_cast<uint32_t>(i->integer("baud", 115200, 9600, 921600));
    } else {
      i->fail("backend", "one of: emulator, tcp, serial");
    }
    o.timing.pulse_time = duration_cast<microseconds>(
        i->duration("pulse_time", o.timing.pulse_time, microseconds(0), std::chrono::seconds(10)));
    o.timing.read_time = duration_cast<microseconds>(
        i->duration("read_time", o.timing.read_time, microseconds(0), std::chrono::seconds(10)));
    o.timing.queue_capacity = static_cast<size_t>(i->integer("queue", 1024, 1, 1 << 20));
    o.line.queue_capacity = o.timing.queue_capacity;
    o.line.reply_timeout = duration_cast<milliseconds>(
        i->duration("reply_timeout", o.line.reply_timeout, milliseconds(1), std::chrono::seconds(60)));
  }
  if (o.crossbar.device.model == DeviceModel::nanofluidic) {
    // A channel's conductance is its state: by default the weight spans rest (0) to what a 1 V
    // pulse drives it to (1), the write amplitude of the 2023 protocol.
    const NanofluidicParams& f = o.crossbar.device.nanofluidic;
    o.weight.map = WeightMap::conductance;
    o.weight.r_max_ohm = 1.0 / f.g_rest_s();
    o.weight.r_min_ohm = 1.0 / std::max(f.g_qs_s(1.0), f.g_rest_s() * (1 + 1e-6));
  }
  if (auto w = d.find_child("weight")) {
    w->only_keys({"map", "r_min_ohm", "r_max_ohm"});
    const std::string m = w->string("map", "resistance");
    if (m == "resistance") {
      o.weight.map = WeightMap::resistance;
    } else if (m == "conductance") {
      o.weight.map = WeightMap::conductance;
    } else if (m == "byte") {
      o.weight.map = WeightMap::byte;
    } else {
      w->fail("map", "one of: resistance, conductance, byte");
    }
    o.weight.r_min_ohm = w->number("r_min_ohm", o.weight.r_min_ohm, 1, 1e15);
    o.weight.r_max_ohm = w->number("r_max_ohm", o.weight.r_max_ohm, 1, 1e15);
  }
  RuleKind default_rule = RuleKind::rate;
  if (auto p = d.find_child("plasticity")) {
    p->only_keys({"horizon", "default_rule", "rate", "stdp", "reward", "history_per_neuron"});
    RuleSet& r = o.rules;
    r.horizon_ns = ns_of(*p, "horizon", r.horizon_ns, milliseconds(0), std::chrono::seconds(60));
    r.history_per_neuron = static_cast<uint32_t>(p->integer("history_per_neuron", r.history_per_neuron, 16, 1 << 20));
    bool ok = false;
    default_rule = rule_of(p->string("default_rule", "rate"), ok);
    if (!ok) p->fail("default_rule", "one of: rate, stdp, reward, none");
    if (auto x = p->find_child("rate")) {
      x->only_keys({"window", "max_count", "ltp_above", "ltd_below", "ltp_volts", "ltd_volts", "width"});
      RateRule& q = r.rate;
      q.window_ns = ns_of(*x, "window", q.window_ns, milliseconds(1), std::chrono::seconds(3600));
      q.max_count = static_cast<uint32_t>(x->integer("max_count", q.max_count, 1, 1 << 20));
      q.ltp_above = static_cast<uint32_t>(x->integer("ltp_above", q.ltp_above, 0, 1 << 20));
      q.ltd_below = static_cast<uint32_t>(x->integer("ltd_below", q.ltd_below, 0, 1 << 20));
      q.ltp_volts = x->number("ltp_volts", q.ltp_volts, -100, 100);
      q.ltd_volts = x->number("ltd_volts", q.ltd_volts, -100, 100);
      q.width_s = static_cast<double>(ns_of(*x, "width", 100'000, nanoseconds(1), std::chrono::seconds(1))) * 1e-9;
    }
    if (auto x = p->find_child("stdp")) {
      x->only_keys({"window", "tau_plus", "tau_minus", "ltp_v_min", "ltp_v_max", "ltd_v_min",
                    "ltd_v_max", "width"});
      StdpRule& q = r.stdp;
      q.window_ns = ns_of(*x, "window", q.window_ns, milliseconds(1), std::chrono::seconds(60));
      q.tau_plus_ns = ns_of(*x, "tau_plus", q.tau_plus_ns, microseconds(10), std::chrono::seconds(60));
      q.tau_minus_ns = ns_of(*x, "tau_minus", q.tau_minus_ns, microseconds(10), std::chrono::seconds(60));
      q.ltp_v_min = x->number("ltp_v_min", q.ltp_v_min, -100, 100);
      q.ltp_v_max = x->number("ltp_v_max", q.ltp_v_max, -100, 100);
      q.ltd_v_min = x->number("ltd_v_min", q.ltd_v_min, -100, 100);
      q.ltd_v_max = x->number("ltd_v_max", q.ltd_v_max, -100, 100);
      q.width_s = static_cast<double>(ns_of(*x, "width", 100'000, nanoseconds(1), std::chrono::seconds(1))) * 1e-9;
    }
  }
  if (auto p = d.find_child("plasticity")) {
    if (auto x = p->find_child("reward")) {
      x->only_keys({"port", "modulator", "baseline", "tau_d", "tau_c", "window", "tau_plus", "tau_minus",
                    "a_plus", "a_minus", "quantum", "ltp_volts", "ltd_volts", "width"});
      RewardRule& q = o.rules.reward;
      if (x->has("port")) {
        const std::string port = x->string("port", "");
        uint32_t n = 0;
        if (!neuron_of(port, o.neuron_names, n) || n >= o.neurons) {
          x->fail("port", "an input port of the board (a neuron number or name) carrying the neuromodulator");
        }
        q.port = n;
      }
      const std::string mode = x->string("modulator", "level");
      if (mode == "level") {
        q.mode = ModulatorMode::level;
      } else if (mode == "bolus") {
        q.mode = ModulatorMode::bolus;
      } else {
        x->fail("modulator", "one of: level, bolus");
      }
      q.baseline = x->number("baseline", q.baseline, -1e9, 1e9);
      q.tau_d_ns = ns_of(*x, "tau_d", q.tau_d_ns, microseconds(100), std::chrono::seconds(3600));
      q.tau_c_ns = ns_of(*x, "tau_c", q.tau_c_ns, microseconds(100), std::chrono::seconds(3600));
      q.window_ns = ns_of(*x, "window", q.window_ns, milliseconds(1), std::chrono::seconds(60));
      q.tau_plus_ns = ns_of(*x, "tau_plus", q.tau_plus_ns, microseconds(10), std::chrono::seconds(60));
      q.tau_minus_ns = ns_of(*x, "tau_minus", q.tau_minus_ns, microseconds(10), std::chrono::seconds(60));
      q.a_plus = x->number("a_plus", q.a_plus, 0, 1e6);
      q.a_minus = x->number("a_minus", q.a_minus, 0, 1e6);
      q.quantum = x->number("quantum", q.quantum, 1e-12, 1e12);
      q.ltp_volts = x->number("ltp_volts", q.ltp_volts, -100, 100);
      q.ltd_volts = x->number("ltd_volts", q.ltd_volts, -100, 100);
      q.width_s = static_cast<double>(ns_of(*x, "width", 100'000, nanoseconds(1), std::chrono::seconds(60))) * 1e-9;
    }
  }
  if (auto s = d.find_child("safety")) {
    s->only_keys({"max_volts", "max_width"});
    o.safety.max_volts = s->number("max_volts", o.safety.max_volts, 0.01, 100);
    o.safety.max_width_s =
        static_cast<double>(ns_of(*s, "max_width", 1'000'000, nanoseconds(1), std::chrono::seconds(60))) * 1e-9;
  }
  o.refresh_interval = duration_cast<milliseconds>(
      d.duration("refresh_interval", o.refresh_interval, milliseconds(0), std::chrono::hours(24)));
  o.stream = static_cast<uint32_t>(d.integer("stream", 0, 0, UINT32_MAX));
  o.weight_stream = static_cast<uint32_t>(d.integer("weight_stream", 1, 0, UINT32_MAX));
  if (o.weight_stream == o.stream) d.fail("weight_stream", "a stream id other than `stream`");

  // Write-verify of the synapses with a target resistance, at start.
  if (auto p = d.find_child("program")) {
    p->only_keys({"tolerance_ohm", "max_pulses", "v_start", "v_step", "v_max", "width", "report"});
    WriteVerifyOptions& w = o.write_verify;
    w.tolerance_ohm = p->number("tolerance_ohm", w.tolerance_ohm, 1e-3, 1e9);
    w.max_pulses = static_cast<uint32_t>(p->integer("max_pulses", w.max_pulses, 1, 100000));
    w.v_start = p->number("v_start", w.v_start, 1e-3, 20);
    w.v_step = p->number("v_step", w.v_step, 1e-4, 20);
    w.v_max = p->number("v_max", w.v_max, 1e-3, 20);
    w.width_s = static_cast<double>(p->duration("width", std::chrono::microseconds(100),
                                                std::chrono::microseconds(1), std::chrono::seconds(1))
                                        .count()) * 1e-9;
    o.program_report = p->has("report") ? p->resolve_path(p->string("report")) : "";
    try {
      w.validate();
    } catch (const std::invalid_argument& e) {
      p->fail("", e.what());
    }
  }
  // Synapses: a CSV file, or an inline list of {pre, post, cell: [wl, bl], rule, gain}.
  if (!d.has("synapses")) d.fail("synapses", "a connectivity CSV path or a list of synapses");
  if (d.yaml()["synapses"].IsScalar()) {
    const std::string path = d.resolve_path(d.string("synapses"));
    std::ifstream f(path);
    if (!f) d.fail("synapses", "a readable connectivity file (cannot open " + path + ")");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
      o.synapses = parse_connectivity(ss.str(), path, o.neuron_names, default_rule);
    } catch (const std::invalid_argument& e) {
      d.fail("synapses", e.what());
    }
  } else if (d.yaml()["synapses"].IsSequence()) {
    const YAML::Node list = d.yaml()["synapses"];
    for (size_t k = 0; k < list.size(); ++k) {
      const ConfigNode s(list[k], std::make_shared<const std::string>(d.file()),
                         d.path() + ".synapses[" + std::to_string(k) + "]");
      s.only_keys({"pre", "post", "cell", "rule", "gain", "target_ohm"});
      SynapseSpec x;
      if (!neuron_of(s.string("pre"), o.neuron_names, x.pre)) s.fail("pre", "a neuron name or port");
      if (!neuron_of(s.string("post"), o.neuron_names, x.post)) s.fail("post", "a neuron name or port");
      const YAML::Node cell = list[k]["cell"];
      if (!cell || !cell.IsSequence() || cell.size() != 2) s.fail("cell", "[wordline, bitline]");
      try {
        x.cell = {cell[0].as<uint32_t>(), cell[1].as<uint32_t>()};
      } catch (const YAML::Exception&) {
        s.fail("cell", "[wordline, bitline] as non-negative integers");
      }
      bool ok = true;
      x.rule = s.has("rule") ? rule_of(s.string("rule"), ok) : default_rule;
      if (!ok) s.fail("rule", "one of: rate, stdp, reward, none");
      x.gain = static_cast<float>(s.number("gain", 1.0, -1e6, 1e6));
      x.target_ohm = s.has("target_ohm") ? s.number("target_ohm", 0, 1e-3, 1e9) : 0;
      o.synapses.push_back(x);
    }
  } else {
    d.fail("synapses", "a connectivity CSV path or a list of synapses");
  }
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    d.fail("synapses", e.what());
  }
  return o;
}

// --- The driver -------------------------------------------------------------------------------

SynapseDriver::SynapseDriver(SynapseDriverOptions options) : opts_(std::move(options)) {
  opts_.validate();
  if (opts_.backend == InstrumentBackend::emulator) {
    auto e = std::make_unique<EmulatedInstrument>(opts_.crossbar, opts_.timing);
    emulated_ = e.get();
    instrument_ = std::move(e);
  } else {
    instrument_ = std::make_unique<LineInstrument>(opts_.line);
  }
  const size_t n = opts_.synapses.size();
  by_pre_.resize(opts_.neurons);
  by_cell_.resize(static_cast<size_t>(opts_.crossbar.wordlines) * opts_.crossbar.bitlines);
  std::vector<PlasticSynapse> plastic;
  for (uint32_t k = 0; k < n; ++k) {
    const SynapseSpec& s = opts_.synapses[k];
    by_pre_[s.pre].push_back(k);
    by_cell_[s.cell.wordline * opts_.crossbar.bitlines + s.cell.bitline].push_back(k);
    plastic.push_back({s.pre, s.post, s.rule});
  }
  weight_ = std::make_unique<std::atomic<float>[]>(n);
  r_read_ = std::make_unique<std::atomic<double>[]>(n);
  initial_weight_ = std::make_unique<std::atomic<float>[]>(n);
  for (size_t k = 0; k < n; ++k) {
    weight_[k].store(std::numeric_limits<float>::quiet_NaN());
    initial_weight_[k].store(std::numeric_limits<float>::quiet_NaN());
    r_read_[k].store(0);
  }
  engine_ = std::make_unique<PlasticityEngine>(opts_.neurons, std::move(plastic), opts_.rules);
  out_.stream = opts_.stream;
  // TS-PCM cells are neurons: channel k carries cell k's firings, not weighted copies.
  cells_spike_ = opts_.crossbar.device.model == DeviceModel::ts_pcm;
  out_.kind = cells_spike_ ? EventKind::spike : EventKind::synaptic_input;
  report_.stream = opts_.weight_stream;
  report_.kind = EventKind::synaptic_input;
}

SynapseDriver::~SynapseDriver() { stop(); }

DriverInfo SynapseDriver::describe() const {
  return {"synapse", v1::NODE_KIND_SYNAPSE, opts_.channels(), opts_.neurons};
}

void SynapseDriver::start(Emitter& emitter) {
  if (thread_.joinable()) return;
  emitter_.store(&emitter);
  const bool program = std::any_of(opts_.synapses.begin(), opts_.synapses.end(),
                                   [](const SynapseSpec& s) { return s.target_ohm > 0; });
  if (program) {
    program_sync_ = std::make_unique<SyncInstrument>(*instrument_);
    programming_.store(true);
  }
  instrument_->start([&emitter] { return emitter.network_now_ns(); }, [this](const InstrumentResult& r) {
    if (programming_.load(std::memory_order_acquire)) {
      program_sync_->on_result(r);
    } else {
      on_result(r);
    }
  });
  // Every weight starts from a reading of its cell, as the hub did; after programming, if any
  // (meanwhile spikes find their synapses unread: not transmitted, counted).
  auto read_all = [this] {
    for (const SynapseSpec& s : opts_.synapses) {
      if (instrument_->submit({InstrumentOp::Kind::read, s.cell, 0, 0})) {
        reads_queued_.fetch_add(1);
      } else {
        queue_full_.fetch_add(1);
      }
    }
  };
  if (!program) read_all();
  thread_ = std::thread([this, program, read_all] {
    if (program) {
      program_targets();
      read_all();
    }
    plasticity_loop();
  });
}

void SynapseDriver::program_targets() {
  std::vector<ProgramTarget> targets;
  std::vector<size_t> which;
  for (size_t k = 0; k < opts_.synapses.size(); ++k) {
    if (opts_.synapses[k].target_ohm <= 0) continue;
    targets.push_back({opts_.synapses[k].cell, opts_.synapses[k].target_ohm});
    which.push_back(k);
  }
  const auto t0 = std::chrono::steady_clock::now();
  program_results_ = write_verify(*program_sync_, targets, opts_.write_verify, &cancel_programming_);
  programming_.store(false, std::memory_order_release);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t pulses = 0;
  double sum_error = 0;
  size_t failed_said = 0;
  for (size_t i = 0; i < program_results_.size(); ++i) {
    const ProgramResult& r = program_results_[i];
    pulses += r.pulses;
    if (r.ok) {
      cells_programmed_.fetch_add(1);
      sum_error += std::fabs(r.reached_ohm - r.target_ohm);
    } else {
      cells_program_failed_.fetch_add(1);
      if (failed_said++ < 5) {
        spdlog::warn("synapse board: cell ({}, {}) of synapse {} not programmed: {} (target {:.0f}, read {:.0f} ohm)",
                     r.cell.wordline, r.cell.bitline, which[i], r.why, r.target_ohm, r.reached_ohm);
      }
    }
  }
  const uint64_t ok = cells_programmed_.load();
  spdlog::info("synapse board: write-verify of {} cells: {} programmed, {} failed; {:.1f} pulses per cell, "
               "mean |error| {:.0f} ohm (tolerance {:.0f}), {:.1f} s",
               program_results_.size(), ok, cells_program_failed_.load(),
               program_results_.empty() ? 0.0 : static_cast<double>(pulses) / static_cast<double>(program_results_.size()),
               ok > 0 ? sum_error / static_cast<double>(ok) : 0.0, opts_.write_verify.tolerance_ohm, took);
  if (opts_.program_report.empty()) return;
  std::ofstream out(opts_.program_report);
  out << "synapse,pre,post,wordline,bitline,target_ohm,reached_ohm,pulses,ok,why\n";
  for (size_t i = 0; i < program_results_.size(); ++i) {
    const ProgramResult& r = program_results_[i];
    const SynapseSpec& s = opts_.synapses[which[i]];
    out << which[i] << ',' << s.pre << ',' << s.post << ',' << r.cell.wordline << ',' << r.cell.bitline << ','
        << r.target_ohm << ',' << r.reached_ohm << ',' << r.pulses << ',' << (r.ok ? 1 : 0) << ',' << r.why << '\n';
  }
  if (!out) spdlog::error("synapse board: the programming report '{}' could not be written", opts_.program_report);
}

void SynapseDriver::deliver(const BatchHeader& header, const EventBatch& events,
                            const Delivery& delivery) noexcept {
  Emitter* emitter = emitter_.load();
  if (emitter == nullptr) return;
  // Late events are handed over from the node's receive thread, on-time ones from its playout
  // thread: the outgoing batch is shared.
  std::lock_guard transmit(transmit_mu_);
  out_.clear();
  const size_t n = events.size();
  received_.fetch_add(n, std::memory_order_relaxed);
  if (delivery.late) late_in_.fetch_add(n, std::memory_order_relaxed);
  uint64_t unknown = 0;
  uint64_t unread = 0;
  {
    std::unique_lock lock(inbox_mu_, std::defer_lock);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t port = events.channels[i];
      if (port >= opts_.neurons) {
        ++unknown;
        continue;
      }
      // The spike's time at the board: its source time plus the connection's delay.
      const int64_t t = events.times_ns[i] + header.delay_ns;
      if (events.kind == EventKind::neuromodulator) {
        // A concentration sample: the reward rule's third factor on its port, nothing to transmit.
        if (!lock.owns_lock()) lock.lock();
        if (port != opts_.rules.reward.port || !events.has_payload()) {
          modulator_unused_.fetch_add(1, std::memory_order_relaxed);
        } else if (modulator_inbox_.size() < kInboxCapacity) {
          modulator_inbox_.emplace_back(t, events.payload[i]);
        } else {
          inbox_full_.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      if (cells_spike_) {
        drive_cells(port, t);
      }
      for (const uint32_t s : by_pre_[port]) {
        if (cells_spike_) break;
        const float w = weight_[s].load(std::memory_order_relaxed);
        if (std::isnan(w)) {  // its cell has not been read yet: nothing honest to send
          ++unread;
          continue;
        }
        out_.channels.push_back(s);
        out_.times_ns.push_back(t);
        out_.payload.push_back(w * opts_.synapses[s].gain);
      }
      if (!lock.owns_lock()) lock.lock();
      if (inbox_.size() < kInboxCapacity) {
        inbox_.emplace_back(port, t);
      } else {
        inbox_full_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  if (unknown > 0) unknown_port_.fetch_add(unknown, std::memory_order_relaxed);
  if (unread > 0) transmitted_unread_.fetch_add(unread, std::memory_order_relaxed);
  if (!cell_events_.empty()) {  // several cells' firings interleave: sent in time order
    std::sort(cell_events_.begin(), cell_events_.end());
    for (const auto& [t, ch] : cell_events_) {
      out_.channels.push_back(ch);
      out_.times_ns.push_back(t);
      out_.payload.push_back(1.0F);
    }
    cell_events_.clear();
  }
  if (!out_.empty()) {
    if (emitter->emit(out_) == EmitStatus::rejected) {
      emit_rejected_.fetch_add(out_.size(), std::memory_order_relaxed);
    } else {
      transmitted_.fetch_add(out_.size(), std::memory_order_relaxed);
    }
  }
}

void SynapseDriver::drive_cells(uint32_t port, int64_t t_ns) noexcept {
  // A presynaptic spike drives each of the neuron's TS-PCM cells for drive_width from its time at
  // the board; the cells' firings (at most drive_width ahead of it) go out on their channels.
  const CellOscillatorParams& c = opts_.crossbar.device.ts_pcm.cell;
  const auto width_ns = static_cast<int64_t>(std::llround(c.drive_width_s * 1e9));
  for (const uint32_t s : by_pre_[port]) {
    fired_.clear();
    const bool complete = emulated_->drive(opts_.synapses[s].cell, c.drive_a * opts_.synapses[s].gain,
                                           t_ns, t_ns + width_ns, fired_);
    cell_drives_.fetch_add(1, std::memory_order_relaxed);
    if (!complete) cell_firings_capped_.fetch_add(1, std::memory_order_relaxed);
    for (const int64_t f : fired_) cell_events_.emplace_back(f, s);
    cell_firings_.fetch_add(fired_.size(), std::memory_order_relaxed);
  }
}

void SynapseDriver::program(const Pulse& p) noexcept {
  const SynapseSpec& s = opts_.synapses[p.synapse];
  if (std::fabs(p.volts) > opts_.safety.max_volts || p.width_s > opts_.safety.max_width_s ||
      !std::isfinite(p.volts)) {
    unsafe_.fetch_add(1);
    return;
  }
  // The pulse, then a read of the cell (the weight used from then on).
  if (!instrument_->submit({InstrumentOp::Kind::pulse, s.cell, p.volts, p.width_s})) {
    queue_full_.fetch_add(1);
    return;
  }
  pulses_queued_.fetch_add(1);
  if (instrument_->submit({InstrumentOp::Kind::read, s.cell, 0, 0})) {
    reads_queued_.fetch_add(1);
  } else {
    queue_full_.fetch_add(1);
  }
}

void SynapseDriver::plasticity_loop() {
  std::vector<std::pair<uint32_t, int64_t>> spikes;
  std::vector<std::pair<int64_t, double>> modulators;
  std::vector<Pulse> pulses;
  Emitter* emitter = emitter_.load();
  const int64_t refresh_ns =
      opts_.refresh_interval.count() > 0
          ? duration_cast<nanoseconds>(opts_.refresh_interval).count() /
                static_cast<int64_t>(opts_.synapses.size())
          : 0;
  int64_t next_refresh = emitter->network_now_ns() + refresh_ns;
  size_t refresh_next = 0;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, milliseconds(1), [&] { return stop_; })) return;
      {
        std::lock_guard inbox(inbox_mu_);
        spikes.swap(inbox_);
        modulators.swap(modulator_inbox_);
      }
      for (const auto& [neuron, t] : spikes) engine_->add_spike(neuron, t);
      for (const auto& [t, value] : modulators) engine_->add_modulator(t, value);
      modulators.clear();
      pulses.clear();
      engine_->commit(emitter->network_now_ns(), pulses);
    }
    spikes.clear();
    for (const Pulse& p : pulses) program(p);
    if (refresh_ns > 0 && emitter->network_now_ns() >= next_refresh) {
      next_refresh += refresh_ns;
      const SynapseSpec& s = opts_.synapses[refresh_next++ % opts_.synapses.size()];
      if (instrument_->submit({InstrumentOp::Kind::read, s.cell, 0, 0})) reads_queued_.fetch_add(1);
    }
  }
}

void SynapseDriver::on_result(const InstrumentResult& r) noexcept {
  if (!r.ok) {
    op_failed_.fetch_add(1);
    return;
  }
  const uint32_t cell = r.op.cell.wordline * opts_.crossbar.bitlines + r.op.cell.bitline;
  if (r.op.kind == InstrumentOp::Kind::pulse) {
    pulses_done_.fetch_add(1);
    return;
  }
  reads_done_.fetch_add(1);
  if (cell >= by_cell_.size()) return;
  Emitter* emitter = emitter_.load();
  std::lock_guard lock(report_mu_);
  report_.clear();
  const auto n = static_cast<uint32_t>(opts_.synapses.size());
  for (const uint32_t s : by_cell_[cell]) {
    const float w = map_weight(opts_.weight, r.r_ohm);
    r_read_[s].store(r.r_ohm);
    if (std::isnan(weight_[s].load())) initial_weight_[s].store(w);
    weight_[s].store(w);
    report_.channels.push_back(n + s);  // channel S + k: synapse k's weight over time
    report_.times_ns.push_back(r.done_ns);
    report_.payload.push_back(w);
  }
  if (emitter != nullptr && !report_.empty() && emitter->emit(report_) == EmitStatus::rejected) {
    emit_rejected_.fetch_add(report_.size());
  }
}

void SynapseDriver::stop() noexcept {
  cancel_programming_.store(true);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  instrument_->stop();
}

std::vector<float> SynapseDriver::weights() const {
  std::vector<float> w(opts_.synapses.size());
  for (size_t k = 0; k < w.size(); ++k) w[k] = weight_[k].load();
  return w;
}

std::vector<double> SynapseDriver::resistances_ohm() const {
  std::vector<double> r(opts_.synapses.size());
  for (size_t k = 0; k < r.size(); ++k) r[k] = r_read_[k].load();
  return r;
}

std::vector<double> SynapseDriver::true_resistances_ohm() const {
  std::vector<double> r;
  if (emulated_ == nullptr) return r;
  Emitter* emitter = emitter_.load();
  const int64_t now = emitter == nullptr ? 0 : emitter->network_now_ns();
  for (const SynapseSpec& s : opts_.synapses) r.push_back(emulated_->true_resistance_ohm(s.cell, now));
  return r;
}

std::vector<SynapseDriver::SynapseState> SynapseDriver::synapse_states() const {
  std::vector<SynapseState> out;
  std::lock_guard lock(mu_);
  for (uint32_t k = 0; k < opts_.synapses.size(); ++k) {
    out.push_back({opts_.synapses[k].pre, opts_.synapses[k].post, initial_weight_[k].load(),
                   weight_[k].load(), engine_->ltp_of(k), engine_->ltd_of(k)});
  }
  return out;
}

PlasticityCounters SynapseDriver::plasticity() const {
  std::lock_guard lock(mu_);
  return engine_->counters();
}

std::map<std::string, int64_t> SynapseDriver::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return static_cast<int64_t>(a.load()); };
  std::map<std::string, int64_t> c = {
      {"received_spikes", v(received_)},
      {"transmitted", v(transmitted_)},
      {"not_transmitted_unread", v(transmitted_unread_)},
      {"rejected_unknown_port", v(unknown_port_)},
      {"received_late", v(late_in_)},
      {"plasticity_inbox_full", v(inbox_full_)},
      {"pulses_queued", v(pulses_queued_)},
      {"reads_queued", v(reads_queued_)},
      {"instrument_queue_full", v(queue_full_)},
      {"pulses_rejected_unsafe", v(unsafe_)},
      {"instrument_failed", v(op_failed_)},
      {"pulses_done", v(pulses_done_)},
      {"reads_done", v(reads_done_)},
      {"emit_rejected", v(emit_rejected_)},
      {"cells_programmed", v(cells_programmed_)},
      {"cells_program_failed", v(cells_program_failed_)}};
  if (opts_.rules.reward.port != UINT32_MAX) c["modulator_unused"] = v(modulator_unused_);
  if (cells_spike_) {
    c["cell_drives"] = v(cell_drives_);
    c["cell_firings"] = v(cell_firings_);
    c["cell_firings_capped"] = v(cell_firings_capped_);
  }
  {
    std::lock_guard lock(mu_);
    const PlasticityCounters& p = engine_->counters();
    c["plasticity_spikes"] = static_cast<int64_t>(p.spikes);
    c["plasticity_too_late"] = static_cast<int64_t>(p.too_late);
    c["plasticity_evaluations"] = static_cast<int64_t>(p.evaluations);
    c["plasticity_ltp"] = static_cast<int64_t>(p.ltp);
    c["plasticity_ltd"] = static_cast<int64_t>(p.ltd);
    c["plasticity_pending"] = static_cast<int64_t>(engine_->pending());
    c["plasticity_history_dropped"] = static_cast<int64_t>(p.history_dropped);
    if (opts_.rules.reward.port != UINT32_MAX) c["modulator_samples"] = static_cast<int64_t>(p.modulator_samples);
  }
  for (const auto& [k, x] : instrument_->counters()) c[k] = x;
  return c;
}

std::vector<std::string> SynapseDriver::trouble_counters() const {
  return {"received_late", "plasticity_inbox_full", "instrument_queue_full", "instrument_failed"};
}

std::map<std::string, std::vector<float>> SynapseDriver::gauges() const { return {{"weight", weights()}}; }

}  // namespace ion::synapse
