#include "ion/chip/chip_driver.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "ion/core/inet.h"
#include "ion/v1/ion.pb.h"

namespace ion::chip {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr double kAerTickHz = 1e6;

void iontronic_from(const ConfigNode& n, ChipOptions& o) {
  n.only_keys({"preset", "time_scale", "c", "e_na", "e_k", "v0", "alpha", "g0", "g1_na", "g1_k",
               "tau_na", "tau_k", "bias", "v_spike", "v_rearm"});
  try {
    o.apply_iontronic_preset(n.string("preset", "iontronic-ms"));
  } catch (const std::invalid_argument& e) {
    n.fail("preset", e.what());
  }
  IontronicParams& q = o.iontronic;
  o.time_base.time_scale = n.number("time_scale", o.time_base.time_scale, 1e-6, 1e9);
  q.c = n.number("c", q.c, 1e-12, 1e12);
  q.e_na = n.number("e_na", q.e_na, -1e6, 1e6);
  q.e_k = n.number("e_k", q.e_k, -1e6, 1e6);
  q.v0 = n.number("v0", q.v0, 1e-12, 1e6);
  q.alpha = n.number("alpha", q.alpha, 1, 4);
  q.g0 = n.number("g0", q.g0, 1e-12, 1e12);
  q.g1_na = n.number("g1_na", q.g1_na, 0, 1e12);
  q.g1_k = n.number("g1_k", q.g1_k, 0, 1e12);
  q.tau_na = n.number("tau_na", q.tau_na, 1e-12, 1e12);
  q.tau_k = n.number("tau_k", q.tau_k, 1e-12, 1e12);
  q.bias = n.number("bias", q.bias, -1e12, 1e12);
  q.v_spike = n.number("v_spike", q.v_spike, -1e6, 1e6);
  q.v_rearm = n.number("v_rearm", q.v_rearm, -1e6, 1e6);
}

ChipOptions chip_from(const ConfigNode& c) {
  c.only_keys({"chip_id", "cores", "neurons_per_core", "step_ms", "mismatch_cv", "max_weight", "seed",
               "neuron", "synapses", "bias_overrides", "neuron_model", "iontronic"});
  ChipOptions o;
  // The iontronic preset sets the step, the size and the synapses; keys given here override it.
  const std::string model = c.string("neuron_model", "adex");
  if (model == "iontronic") {
    if (c.has("neuron")) c.fail("neuron", "AdEx parameters; an iontronic chip takes `iontronic:`");
    if (auto n = c.find_child("iontronic")) {
      iontronic_from(*n, o);
    } else {
      o.apply_iontronic_preset("iontronic-ms");
    }
  } else if (model != "adex") {
    c.fail("neuron_model", "one of: adex, iontronic");
  } else if (c.has("iontronic")) {
    c.fail("iontronic", "parameters of `neuron_model: iontronic`");
  }
  o.chip_id = static_cast<uint32_t>(c.integer("chip_id", o.chip_id, 0, 255));
  o.cores = static_cast<uint32_t>(c.integer("cores", o.cores, 1, 256));
  o.neurons_per_core = static_cast<uint32_t>(c.integer("neurons_per_core", o.neurons_per_core, 1, 65536));
  o.step_ms = c.number("step_ms", o.step_ms, 0.001, 1.0);
  o.mismatch_cv = c.number("mismatch_cv", o.mismatch_cv, 0, 0.3);
  o.max_weight = static_cast<float>(c.number("max_weight", o.max_weight, 1e-6, 1e9));
  o.seed = static_cast<uint64_t>(c.integer("seed", 1, 0, INT64_MAX));
  if (auto n = c.find_child("neuron")) {
    n->only_keys({"c_pf", "g_l_ns", "e_l_mv", "v_t_mv", "delta_t_mv", "v_reset_mv", "v_peak_mv",
                  "tau_w_ms", "a_ns", "b_pa", "refractory_ms", "bias_pa"});
    NeuronParams& p = o.neuron;
    p.c_pf = n->number("c_pf", p.c_pf, 1e-3, 1e6);
    p.g_l_ns = n->number("g_l_ns", p.g_l_ns, 1e-6, 1e6);
    p.e_l_mv = n->number("e_l_mv", p.e_l_mv, -200, 100);
    p.v_t_mv = n->number("v_t_mv", p.v_t_mv, -200, 100);
    p.delta_t_mv = n->number("delta_t_mv", p.delta_t_mv, 0.01, 50);
    p.v_reset_mv = n->number("v_reset_mv", p.v_reset_mv, -200, 100);
    p.v_peak_mv = n->number("v_peak_mv", p.v_peak_mv, -200, 200);
    p.tau_w_ms = n->number("tau_w_ms", p.tau_w_ms, 0.01, 1e6);
    p.a_ns = n->number("a_ns", p.a_ns, 0, 1e6);
    p.b_pa = n->number("b_pa", p.b_pa, 0, 1e6);
    p.refractory_ms = n->number("refractory_ms", p.refractory_ms, 0, 1000);
    p.bias_pa = n->number("bias_pa", p.bias_pa, -1e6, 1e6);
  }
  if (auto b = c.find_child("bias_overrides")) {
    for (const auto& kv : b->yaml()) {
      const auto key = kv.first.as<std::string>();
      if (key.empty() || key.find_first_not_of("0123456789") != std::string::npos || key.size() > 9) {
        b->fail(key, "neuron numbers as keys (neuron: bias in pA)");
      }
      o.bias_overrides_pa[static_cast<uint32_t>(std::stoul(key))] = b->number(key, 0, -1e6, 1e6);
    }
  }
  if (auto s = c.find_child("synapses")) {
    s->only_keys({"fast_exc", "slow_exc", "fast_inh", "slow_inh"});
    for (uint32_t t = 0; t < kSynapseTypes; ++t) {
      if (auto x = s->find_child(to_string(static_cast<SynapseType>(t)))) {
        x->only_keys({"tau_ms", "gain_pa"});
        o.synapses[t].tau_ms = x->number("tau_ms", o.synapses[t].tau_ms, 0.01, 1e5);
        o.synapses[t].gain_pa = x->number("gain_pa", o.synapses[t].gain_pa, 0, 1e6);
      }
    }
  }
  try {
    o.validate();
  } catch (const std::invalid_argument& ex) {
    c.fail("", ex.what());
  }
  return o;
}

uint8_t code_from(const ConfigNode& where, const YAML::Node& v, std::string_view key) {
  // A sender code is a byte: a number 0..255 or a one-character string ('Z').
  try {
    const auto s = v.as<std::string>();
    if (s.size() == 1 && !std::isdigit(static_cast<unsigned char>(s[0]))) return static_cast<uint8_t>(s[0]);
    const int x = v.as<int>();
    if (x >= 0 && x <= 255) return static_cast<uint8_t>(x);
  } catch (const YAML::Exception&) {
  }
  where.fail(key, "a sender code: a number 0..255 or one character");
}

LegacyTime legacy_time(const ConfigNode& where, const std::string& v) {
  if (v == "counter") return LegacyTime::counter;
  if (v == "interval") return LegacyTime::interval;
  if (v == "since_stimulus") return LegacyTime::since_stimulus;
  where.fail("time", "one of: counter, interval, since_stimulus");
}

LegacyField legacy_field(const ConfigNode& where, const std::string& v) {
  if (v == "event_type") return LegacyField::event_type;
  if (v == "weight") return LegacyField::weight;
  if (v == "unused") return LegacyField::unused;
  where.fail("field", "one of: event_type, weight, unused");
}

void legacy_direction(const ConfigNode& c, LegacyDirection& d, bool in) {
  c.only_keys({"codes", "code", "time", "field", "id_bits", "time_bits", "event_type"});
  if (in && c.has("codes")) {
    const YAML::Node codes = c.yaml()["codes"];
    if (!codes.IsSequence()) c.fail("codes", "a list of sender codes");
    d.codes.clear();
    for (const auto& x : codes) d.codes.push_back(code_from(c, x, "codes"));
  }
  if (!in && c.has("code")) d.codes = {code_from(c, c.yaml()["code"], "code")};
  if (in && c.has("code")) c.fail("code", "in: takes `codes`, a list");
  if (!in && c.has("codes")) c.fail("codes", "out: takes `code`, our sender code");
  if (c.has("time")) d.time = legacy_time(c, c.string("time", ""));
  if (c.has("field")) d.field = legacy_field(c, c.string("field", ""));
  d.id_bits = static_cast<uint8_t>(c.integer("id_bits", d.id_bits, 1, 24));
  d.time_bits = static_cast<uint8_t>(c.integer("time_bits", d.time_bits, 1, 24));
  d.event_type = static_cast<uint8_t>(c.integer("event_type", d.event_type, 0, 2));
}

LegacyOptions legacy_from(const ConfigNode& l) {
  l.only_keys({"preset", "in", "out", "own_code", "accept_codes", "weight_full_scale"});
  LegacyOptions o;
  if (l.has("preset")) {
    try {
      o = LegacyOptions::preset_named(l.string("preset", ""));
    } catch (const std::invalid_argument& e) {
      l.fail("preset", e.what());
    }
  }
  // The two short keys of the first version: our code, and the codes accepted.
  if (l.has("own_code")) o.out.codes = {code_from(l, l.yaml()["own_code"], "own_code")};
  if (l.has("accept_codes")) {
    const YAML::Node codes = l.yaml()["accept_codes"];
    if (!codes.IsSequence()) l.fail("accept_codes", "a list of sender codes");
    o.in.codes.clear();
    for (const auto& c : codes) o.in.codes.push_back(code_from(l, c, "accept_codes"));
  }
  if (auto c = l.find_child("in")) legacy_direction(*c, o.in, true);
  if (auto c = l.find_child("out")) legacy_direction(*c, o.out, false);
  o.weight_full_scale = static_cast<float>(l.number("weight_full_scale", o.weight_full_scale, 1e-6, 1e6));
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    l.fail("", e.what());
  }
  return o;
}

uint64_t key_of(const sockaddr_in& a) noexcept {
  return (uint64_t{a.sin_addr.s_addr} << 16) | a.sin_port;
}

}  // namespace

ChipDriverOptions ChipDriverOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "backend", "chip", "udp", "legacy", "lag", "block", "max_catch_up", "stream"});
  ChipDriverOptions o;
  const std::string backend = d.string("backend", "emulator");
  if (backend == "emulator") {
    o.backend = Backend::emulator;
  } else if (backend == "udp") {
    o.backend = Backend::udp;
  } else if (backend == "legacy_udp") {
    o.backend = Backend::legacy_udp;
  } else {
    d.fail("backend", "one of: emulator, udp, legacy_udp");
  }
  if (auto c = d.find_child("chip")) o.chip = chip_from(*c);
  if (auto u = d.find_child("udp")) {
    u->only_keys({"listen", "peer"});
    o.udp.listen = u->string("listen", o.udp.listen);
    o.udp.peer = u->string("peer", "");
  }
  if (auto l = d.find_child("legacy")) o.legacy = legacy_from(*l);
  o.lag = duration_cast<microseconds>(d.duration("lag", o.lag, microseconds(0), milliseconds(1000)));
  o.block = duration_cast<microseconds>(d.duration("block", o.block, microseconds(100), milliseconds(100)));
  o.max_catch_up = duration_cast<milliseconds>(
      d.duration("max_catch_up", o.max_catch_up, milliseconds(10), std::chrono::seconds(600)));
  o.stream = static_cast<uint32_t>(d.integer("stream", 0, 0, UINT32_MAX));
  if (o.backend != Backend::emulator) {
    try {
      (void)parse_ipv4_endpoint(o.udp.listen, "udp.listen");
      if (!o.udp.peer.empty()) (void)parse_ipv4_endpoint(o.udp.peer, "udp.peer");
    } catch (const std::runtime_error& e) {
      d.fail("udp", e.what());
    }
  }
  return o;
}

ChipDriver::ChipDriver(ChipDriverOptions options)
    : opts_(std::move(options)), neurons_(opts_.chip.neurons()) {
  opts_.chip.validate();
  if (opts_.backend == Backend::emulator) {
    model_ = std::make_unique<ChipModel>(opts_.chip);
  } else {
    udp_ = std::make_unique<UdpEndpoint>(opts_.udp.listen);
    if (!opts_.udp.peer.empty()) peer_ = parse_ipv4_endpoint(opts_.udp.peer, "udp.peer");
    if (opts_.backend == Backend::legacy_udp) {
      legacy_ = std::make_unique<LegacyBridge>(opts_.legacy, neurons_);  // keeps the peer's clock
    } else {
      device_clock_ = std::make_unique<DeviceClock>(device_clock_options());
    }
  }
}

ChipDriver::~ChipDriver() { stop(); }

DriverInfo ChipDriver::describe() const {
  return {"chip", v1::NODE_KIND_CHIP, neurons_, opts_.ports()};
}

DeviceDescription ChipDriver::device() const {
  // An iontronic chip's time and voltages may be a simulation's: said in the Hello, so status,
  // recordings and exports say it too.
  if (!model_ || opts_.chip.neuron_model != NeuronModelKind::iontronic) return {};
  const TimeBase& tb = opts_.chip.time_base;
  return {"iontronic", tb.name, tb.time_unit, tb.time_scale, tb.voltage_unit, tb.current_unit,
          tb.simulation_scaled()};
}

void ChipDriver::start(Emitter& emitter) {
  if (thread_.joinable()) return;
  emitter_.store(&emitter);
  if (model_) {
    thread_ = std::thread([this, &emitter] { emulate(emitter); });
  } else {
    std::string what = "address events";
    if (legacy_) {
      const LegacyOptions& l = opts_.legacy;
      what = fmt::format("legacy 8-byte packets ({}: in {} times, {} field; out {} times, {} field)",
                         l.preset, to_string(l.in.time), to_string(l.in.field),
                         to_string(l.out.time), to_string(l.out.field));
    }
    spdlog::info("chip: {} on udp port {}{}", what, udp_->port(),
                 peer_ ? ", inputs to " + ion::to_string(*peer_) : "");
    thread_ = std::thread([this, &emitter] { receive(emitter); });
  }
}

void ChipDriver::count(const std::string& reason, uint64_t n) noexcept {
  rejected_[reason] += n;  // callers hold mu_
}

void ChipDriver::emulate(Emitter& emitter) {
  const int64_t lag_ns = duration_cast<std::chrono::nanoseconds>(opts_.lag).count();
  const int64_t block_ns = duration_cast<std::chrono::nanoseconds>(opts_.block).count();
  const int64_t max_behind_ns = duration_cast<std::chrono::nanoseconds>(opts_.max_catch_up).count();
  model_->start_at(emitter.network_now_ns() - lag_ns);
  std::vector<Input> inputs;
  std::vector<ChipSpike> spikes;
  EventBatch batch;
  batch.stream = opts_.stream;
  batch.kind = EventKind::spike;
  int64_t next_wake_local = emitter.local_now_ns();
  int64_t target = 0;
  while (true) {
    {
      std::unique_lock lock(mu_);
      next_wake_local += block_ns;
      const int64_t wait_ns = next_wake_local - emitter.local_now_ns();
      if (wait_ns > 0 &&
          cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [&] { return stop_requested_; })) {
        break;
      }
      if (stop_requested_) break;
      if (wait_ns < -4 * block_ns) {
        next_wake_local = emitter.local_now_ns();  // late wake-ups are not made up one by one
      }
      // The target first, then the inputs: anything delivered after the swap has a deadline
      // after now, so at least `lag` after the target and still ahead of the model.
      target = emitter.network_now_ns() - lag_ns;
      inputs.swap(inbox_);
    }
    for (const Input& in : inputs) {
      // Addresses and weights were checked in deliver(); the model clamps to max_weight.
      if (model_->inject(in.neuron, in.type, in.weight, in.t_ns) == InputResult::clamped) {
        clamped_.fetch_add(1);
      }
    }
    inputs.clear();
    if (target - model_->now_ns() > max_behind_ns) {
      steps_skipped_.fetch_add(static_cast<uint64_t>(model_->skip_to(target - block_ns)));
    } else if (target - model_->now_ns() > 4 * block_ns) {
      behind_.fetch_add(1);  // integration slower than real time for a moment
    }
    spikes.clear();
    model_->advance(target, spikes);
    inputs_applied_.store(model_->counters().inputs_applied);
    inputs_late_.store(model_->counters().inputs_late);
    if (spikes.empty()) continue;
    batch.clear();
    for (const ChipSpike& s : spikes) batch.push(s.neuron, s.time_ns);
    if (emitter.emit(batch) == EmitStatus::rejected) emit_rejected_.fetch_add(batch.size());
    spikes_.fetch_add(spikes.size());
  }
}

void ChipDriver::receive(Emitter& emitter) {
  std::vector<uint8_t> buffer(kMaxDatagramBytes + 1);  // one more byte: an oversized one shows
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stop_requested_) break;
    }
    sockaddr_in from{};
    const long n = udp_->receive(buffer, from, milliseconds(100));
    if (n < 0) continue;
    datagrams_.fetch_add(1);
    const auto len = static_cast<size_t>(n);
    std::lock_guard lock(mu_);
    if (len > buffer.size()) {
      count("datagram_oversized");
      continue;
    }
    const std::span<const uint8_t> bytes(buffer.data(), len);
    if (opts_.backend == Backend::udp) {
      on_aer(bytes, from, emitter);
    } else {
      on_legacy(bytes, from, emitter);
    }
  }
}

void ChipDriver::on_aer(std::span<const uint8_t> bytes, const sockaddr_in& from, Emitter& emitter) {
  AerDatagram d;
  const DecodeError e = decode_aer(bytes, d);
  if (e != DecodeError::none) {
    count("datagram_" + std::string(to_string(e)));
    return;
  }
  if (senders_.size() >= 64 && !senders_.contains(key_of(from))) {
    count("datagram_too_many_senders");
    return;
  }
  SequenceTracker& seq = senders_[key_of(from)];
  const uint64_t lost_before = seq.lost();
  if (seq.observe(d.sequence) == SequenceTracker::Verdict::behind) {
    count("datagram_duplicate_or_reordered");
    return;
  }
  datagrams_lost_.fetch_add(seq.lost() - lost_before);
  last_sender_ = from;
  std::vector<Stamped> events;
  const ChipOptions& c = opts_.chip;
  for (const AerEvent& ev : d.events) {
    if (ev.synapse != 0) {
      count("event_not_an_output_spike");
    } else if (ev.chip != c.chip_id || ev.core >= c.cores || ev.neuron >= c.neurons_per_core) {
      count("event_unknown_address");
    } else {
      events.push_back({ev.core * c.neurons_per_core + ev.neuron, ev.timestamp_us, 0.0F});
    }
  }
  emit_stamped(events, false, emitter);
}

void ChipDriver::on_legacy(std::span<const uint8_t> bytes, const sockaddr_in& from, Emitter& emitter) {
  const LegacyBridge::In r = legacy_->on_packet(bytes, emitter.network_now_ns());
  if (r.restarted) count("peer_clock_restarted");
  if (!r.event) {
    count(std::string(r.refused));
    return;
  }
  last_sender_ = from;
  EventBatch batch;
  batch.stream = opts_.stream;
  // The hub's packets are synaptic events with the synapse's weight; the others are spikes, with
  // the legacy event type (0 PSP, 1 stimulated, 2 spontaneous) as payload where it was sent.
  batch.kind = legacy_->emits_weights() ? EventKind::synaptic_input : EventKind::spike;
  if (legacy_->emits_payload()) {
    batch.push(r.event->channel, r.event->time_ns, r.event->payload);
  } else {
    batch.push(r.event->channel, r.event->time_ns);
  }
  if (emitter.emit(batch) == EmitStatus::rejected) emit_rejected_.fetch_add(batch.size());
  spikes_.fetch_add(batch.size());
}

void ChipDriver::emit_stamped(std::span<const Stamped> events, bool with_payload, Emitter& emitter) {
  if (events.empty()) return;
  // Device times must not go backwards. Before the first datagram there is no reference: times
  // within it are compared with its first one.
  const bool known = device_clock_->valid();
  const uint32_t base = events.front().raw;
  int64_t last = last_ticks_;
  std::vector<Stamped> ok;
  ok.reserve(events.size());
  for (const Stamped& ev : events) {
    const int64_t t = known ? device_clock_->unwrap(ev.raw)
                            : static_cast<int64_t>(static_cast<int32_t>(ev.raw - base));
    if (t < last) {
      count("event_time_backwards");
      continue;
    }
    last = t;
    ok.push_back(ev);
  }
  if (ok.empty()) {
    // A peer whose counter restarted looks like time going backwards for ever: after a run of
    // such datagrams, start the mapping again (counted).
    if (++backwards_run_ >= kRestartAfterBackwards) {
      count("peer_clock_restarted");
      device_clock_ = std::make_unique<DeviceClock>(device_clock_options());
      last_ticks_ = INT64_MIN;
      backwards_run_ = 0;
    }
    return;
  }
  backwards_run_ = 0;
  device_clock_->observe(ok.back().raw, emitter.local_now_ns());
  last_ticks_ = device_clock_->unwrap(ok.back().raw);
  EventBatch batch;
  batch.stream = opts_.stream;
  batch.kind = EventKind::spike;
  for (const Stamped& ev : ok) {
    const int64_t t = emitter.to_network_ns(device_clock_->to_host_ns(ev.raw));
    if (with_payload) {
      batch.push(ev.channel, t, ev.payload);
    } else {
      batch.push(ev.channel, t);
    }
  }
  if (emitter.emit(batch) == EmitStatus::rejected) emit_rejected_.fetch_add(batch.size());
  spikes_.fetch_add(batch.size());
}

DeviceClockOptions ChipDriver::device_clock_options() const noexcept {
  DeviceClockOptions dc;  // the chip host's 32-bit µs counter
  dc.counter_bits = 32;
  dc.tick_hz = kAerTickHz;
  return dc;
}

uint64_t ChipDriver::device_ticks_at(int64_t network_ns, double tick_hz) const noexcept {
  // Callers hold mu_. On the peer's counter once it has spoken; before that, network time.
  Emitter* emitter = emitter_.load();
  if (device_clock_->valid() && emitter != nullptr) {
    const int64_t offset = emitter->network_now_ns() - emitter->local_now_ns();
    return device_clock_->to_raw(network_ns - offset);
  }
  return static_cast<uint64_t>(std::llround(static_cast<double>(network_ns) * tick_hz * 1e-9));
}

void ChipDriver::send_inputs(const std::vector<Input>& inputs) noexcept {
  // Callers hold mu_.
  const std::optional<sockaddr_in> to = peer_ ? peer_ : last_sender_;
  if (!to) {
    count("input_no_peer_yet", inputs.size());
    return;
  }
  const ChipOptions& c = opts_.chip;
  if (legacy_) {
    for (const Input& in : inputs) {
      const LegacyBridge::Out r = legacy_->on_input(in.neuron, in.weight, in.source_ns, in.t_ns);
      if (r.clamped) count("input_weight_clamped");
      if (r.interval_clamped) count("input_interval_clamped");
      if (!r.bytes) {
        count(std::string(r.refused));
      } else if (udp_->send_to(*r.bytes, *to)) {
        inputs_sent_.fetch_add(1);
      } else {
        count("input_send_failed");
      }
    }
    return;
  }
  std::vector<AerEvent> events;
  events.reserve(inputs.size());
  for (const Input& in : inputs) {
    AerEvent e;
    e.chip = static_cast<uint8_t>(c.chip_id);
    e.core = static_cast<uint8_t>(in.neuron / c.neurons_per_core);
    e.neuron = static_cast<uint16_t>(in.neuron % c.neurons_per_core);
    e.timestamp_us = static_cast<uint32_t>(device_ticks_at(in.t_ns, kAerTickHz));
    e.synapse = static_cast<uint8_t>(static_cast<uint8_t>(in.type) + 1);
    e.weight = in.weight;
    if (in.weight > 65535.0F / 256.0F) count("input_weight_clamped");
    events.push_back(e);
  }
  std::vector<uint8_t> datagram;
  for (size_t at = 0; at < events.size();) {
    datagram.clear();
    const size_t n = encode_aer(out_sequence_++, std::span(events).subspan(at), datagram);
    if (udp_->send_to(datagram, *to)) {
      inputs_sent_.fetch_add(n);
    } else {
      count("input_send_failed", n);
    }
    at += n;
  }
}

void ChipDriver::deliver(const BatchHeader& header, const EventBatch& events,
                         const Delivery& /*delivery*/) noexcept {
  std::vector<Input> inputs;
  inputs.reserve(events.size());
  std::lock_guard lock(mu_);
  inputs_received_.fetch_add(events.size());
  if (events.kind != EventKind::spike && events.kind != EventKind::synaptic_input) {
    count("input_unsupported_kind", events.size());
    return;
  }
  const uint32_t ports = opts_.ports();
  for (size_t i = 0; i < events.size(); ++i) {
    const uint32_t port = events.channels[i];
    if (port >= ports) {
      count("input_unknown_address");
      continue;
    }
    float weight = 1.0F;  // a spike is a unit-weight input (its payload means something else)
    if (events.kind == EventKind::synaptic_input && events.has_payload()) weight = events.payload[i];
    if (!(weight >= 0.0F) || std::isinf(weight)) {
      count("input_bad_weight");
      continue;
    }
    inputs.push_back({port % neurons_, static_cast<SynapseType>(port / neurons_), weight,
                      events.times_ns[i] + header.delay_ns, events.times_ns[i]});
  }
  if (model_) {
    inbox_.insert(inbox_.end(), inputs.begin(), inputs.end());
  } else {
    send_inputs(inputs);
  }
}

void ChipDriver::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
  if (udp_) udp_->wake();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::map<std::string, int64_t> ChipDriver::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return static_cast<int64_t>(a.load()); };
  std::map<std::string, int64_t> c = {{"spikes", v(spikes_)},
                                      {"inputs_received", v(inputs_received_)},
                                      {"emit_rejected", v(emit_rejected_)}};
  if (model_) {
    c["inputs_applied"] = v(inputs_applied_);
    c["inputs_late"] = v(inputs_late_);
    c["processing_behind"] = v(behind_);
    c["steps_skipped"] = v(steps_skipped_);
  } else {
    c["inputs_sent"] = v(inputs_sent_);
    c["datagrams"] = v(datagrams_);
    c["datagrams_lost"] = v(datagrams_lost_);
  }
  std::lock_guard lock(mu_);
  for (const auto& [k, x] : rejected_) c[k] = static_cast<int64_t>(x);
  if (model_) c["input_weight_clamped"] += v(clamped_);
  if (device_clock_ && device_clock_->valid()) {
    c["device_drift_ppb"] = std::llround(device_clock_->drift_ppm() * 1000);
  } else if (legacy_) {
    if (const auto ppm = legacy_->peer_drift_ppm()) c["device_drift_ppb"] = std::llround(*ppm * 1000);
  }
  return c;
}

std::vector<std::string> ChipDriver::trouble_counters() const {
  // Only what this backend reports: a declared trouble counter is always in counters().
  if (model_) return {"inputs_late", "processing_behind", "steps_skipped"};
  return {"datagrams_lost"};
}

}  // namespace ion::chip
