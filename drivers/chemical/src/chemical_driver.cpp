#include "ion/chemical/chemical_driver.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "ion/v1/ion.pb.h"

namespace ion::chemical {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// A duration key read into seconds (the model's unit), within [lo, hi].
double seconds_of(const ConfigNode& n, std::string_view key, double fallback_s, nanoseconds lo, nanoseconds hi) {
  return static_cast<double>(n.duration(key, nanoseconds(std::llround(fallback_s * 1e9)), lo, hi).count()) * 1e-9;
}

}  // namespace

ChemicalDriverOptions ChemicalDriverOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "backend", "sample_rate_hz", "lag", "block", "stream", "step_ms", "seed",
               "sensor", "memristor", "release", "dish"});
  ChemicalDriverOptions o;
  if (d.string("backend", "emulator") != "emulator") d.fail("backend", "emulator (the only backend so far)");
  o.sample_rate_hz = d.number("sample_rate_hz", o.sample_rate_hz, 0.01, 1000);
  o.lag = duration_cast<microseconds>(d.duration("lag", o.lag, microseconds(0), milliseconds(10000)));
  o.block = duration_cast<microseconds>(d.duration("block", o.block, microseconds(100), milliseconds(1000)));
  o.stream = static_cast<uint32_t>(d.integer("stream", 0, 0, UINT32_MAX));
  ChemicalParams& m = o.model;
  m.step_ms = d.number("step_ms", m.step_ms, 0.01, 100);
  m.seed = static_cast<uint64_t>(d.integer("seed", 1, 0, INT64_MAX));
  if (auto s = d.find_child("sensor")) {
    s->only_keys({"sensitivity_ua_per_cm2_per_mm", "area_cm2", "background_na", "noise_na", "t90",
                  "lod_um", "linear_max_um", "saturation_um"});
    SensorParams& p = m.sensor;
    p.sensitivity_ua_per_cm2_per_mm = s->number("sensitivity_ua_per_cm2_per_mm", p.sensitivity_ua_per_cm2_per_mm, 1e-6, 1e9);
    p.area_cm2 = s->number("area_cm2", p.area_cm2, 1e-9, 100);
    p.background_na = s->number("background_na", p.background_na, 0, 1e9);
    p.noise_na = s->number("noise_na", p.noise_na, 0, 1e9);
    p.t90_s = seconds_of(*s, "t90", p.t90_s, milliseconds(1), std::chrono::hours(1));
    p.lod_um = s->number("lod_um", p.lod_um, 1e-9, 1e9);
    p.linear_max_um = s->number("linear_max_um", p.linear_max_um, 1e-9, 1e9);
    p.saturation_um = s->number("saturation_um", p.saturation_um, 1e-9, 1e9);
  }
  if (auto s = d.find_child("memristor")) {
    s->only_keys({"v_per_na", "v_th", "v0", "tau_stm", "tau_ltm", "x_c", "hold_fraction", "eta", "kappa",
                  "g_on_s", "g_off_s"});
    MemristorParams& p = m.memristor;
    p.v_per_na = s->number("v_per_na", p.v_per_na, 1e-12, 1e6);
    p.v_th = s->number("v_th", p.v_th, 1e-6, 100);
    p.v0 = s->number("v0", p.v0, 1e-6, 100);
    p.tau_stm_s = seconds_of(*s, "tau_stm", p.tau_stm_s, microseconds(1), std::chrono::hours(1));
    p.tau_ltm_s = seconds_of(*s, "tau_ltm", p.tau_ltm_s, milliseconds(1), std::chrono::hours(24 * 365));
    p.x_c = s->number("x_c", p.x_c, 1e-6, 0.999999);
    p.hold_fraction = s->number("hold_fraction", p.hold_fraction, 1e-3, 1);
    p.eta = s->number("eta", p.eta, 0, 1);
    p.kappa = s->number("kappa", p.kappa, 0, 0.99);
    p.g_on_s = s->number("g_on_s", p.g_on_s, 1e-12, 10);
    p.g_off_s = s->number("g_off_s", p.g_off_s, 1e-15, 10);
  }
  if (auto s = d.find_child("release")) {
    s->only_keys({"v_app", "r_heater_ohm", "r_th_k_per_w", "tau_th", "t_ambient_c", "t_on_c", "t_max_c",
                  "k_max_per_s", "load_nmol", "command_heat", "command_power_w"});
    ReleaseParams& p = m.release;
    p.v_app = s->number("v_app", p.v_app, 0, 100);
    p.r_heater_ohm = s->number("r_heater_ohm", p.r_heater_ohm, 1e-3, 1e9);
    p.r_th_k_per_w = s->number("r_th_k_per_w", p.r_th_k_per_w, 1e-3, 1e9);
    p.tau_th_s = seconds_of(*s, "tau_th", p.tau_th_s, milliseconds(1), std::chrono::hours(1));
    p.t_ambient_c = s->number("t_ambient_c", p.t_ambient_c, -50, 100);
    p.t_on_c = s->number("t_on_c", p.t_on_c, -50, 200);
    p.t_max_c = s->number("t_max_c", p.t_max_c, -50, 200);
    p.k_max_per_s = s->number("k_max_per_s", p.k_max_per_s, 0, 1e3);
    p.load_nmol = s->number("load_nmol", p.load_nmol, 0, 1e9);
    p.command_heat_s = seconds_of(*s, "command_heat", p.command_heat_s, nanoseconds(0), std::chrono::hours(1));
    p.command_power_w = s->number("command_power_w", p.command_power_w, 0, 10);
  }
  if (auto s = d.find_child("dish")) {
    s->only_keys({"volume_ml", "tau_clear", "baseline_um", "pc12_release_nmol", "pc12_rate_max_hz", "pc12_ec50_um"});
    DishParams& p = m.dish;
    p.volume_ml = s->number("volume_ml", p.volume_ml, 1e-9, 1e6);
    p.tau_clear_s = seconds_of(*s, "tau_clear", p.tau_clear_s, milliseconds(1), std::chrono::hours(24));
    p.baseline_um = s->number("baseline_um", p.baseline_um, 0, 1e9);
    p.pc12_release_nmol = s->number("pc12_release_nmol", p.pc12_release_nmol, 0, 1e9);
    p.pc12_rate_max_hz = s->number("pc12_rate_max_hz", p.pc12_rate_max_hz, 0, 1e4);
    p.pc12_ec50_um = s->number("pc12_ec50_um", p.pc12_ec50_um, 1e-9, 1e9);
  }
  try {
    m.validate();
  } catch (const std::invalid_argument& e) {
    d.fail("", e.what());
  }
  return o;
}

ChemicalDriver::ChemicalDriver(ChemicalDriverOptions options) : opts_(std::move(options)), model_(opts_.model) {
  shown_ = model_.state();
  shown_threshold_um_ = model_.threshold_um();
}

ChemicalDriver::~ChemicalDriver() { stop(); }

DriverInfo ChemicalDriver::describe() const { return {"chemical", v1::NODE_KIND_CHEMICAL, kChannels, kPorts}; }

void ChemicalDriver::start(Emitter& emitter) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, &emitter] { run(emitter); });
}

void ChemicalDriver::run(Emitter& emitter) {
  const int64_t lag_ns = duration_cast<nanoseconds>(opts_.lag).count();
  const int64_t block_ns = duration_cast<nanoseconds>(opts_.block).count();
  const auto sample_ns = static_cast<int64_t>(std::llround(1e9 / opts_.sample_rate_hz));
  model_.start_at(emitter.network_now_ns() - lag_ns);
  int64_t next_sample = (model_.now_ns() / sample_ns + 1) * sample_ns;  // on the sample grid
  std::vector<std::pair<uint32_t, int64_t>> inputs;
  std::vector<ChemicalEvent> events;
  EventBatch samples, spikes;
  samples.stream = spikes.stream = opts_.stream;
  samples.kind = EventKind::neuromodulator;
  spikes.kind = EventKind::spike;
  int64_t next_wake = emitter.local_now_ns();
  while (true) {
    int64_t target = 0;
    {
      std::unique_lock lock(mu_);
      next_wake += block_ns;
      const int64_t wait_ns = next_wake - emitter.local_now_ns();
      if (wait_ns > 0 && cv_.wait_for(lock, nanoseconds(wait_ns), [&] { return stop_; })) break;
      if (stop_) break;
      if (wait_ns < -4 * block_ns) next_wake = emitter.local_now_ns();
      target = emitter.network_now_ns() - lag_ns;
      inputs.swap(inbox_);
    }
    for (const auto& [port, t] : inputs) {
      if (port == 0) {
        model_.command_release(t);
      } else {
        model_.stimulate_pc12(t);
      }
    }
    inputs.clear();
    if (target - model_.now_ns() > 4 * block_ns) behind_.fetch_add(1);  // slower than real time for a moment
    // Step to each sample time in turn, so every sample reads the state at its own time.
    samples.clear();
    spikes.clear();
    events.clear();
    while (next_sample <= target) {
      model_.advance(next_sample, events);
      const ChemicalState& s = model_.state();
      const SensorParams& sp = opts_.model.sensor;
      switch (s.reading) {
        case Reading::in_range: samples.push(0, next_sample, static_cast<float>(s.estimate_um)); break;
        case Reading::below_range:
          samples.push(2, next_sample, static_cast<float>(sp.lod_um));
          below_range_.fetch_add(1);
          break;
        case Reading::saturated:
          samples.push(3, next_sample, static_cast<float>(sp.linear_max_um));
          saturated_.fetch_add(1);
          break;
      }
      samples_.fetch_add(1);
      next_sample += sample_ns;
    }
    model_.advance(target, events);
    for (const ChemicalEvent& e : events) {
      spikes.push(e.kind == ChemicalEvent::Kind::firing ? 1 : 4, e.t_ns);
      (e.kind == ChemicalEvent::Kind::firing ? firings_ : pc12_spikes_).fetch_add(1);
    }
    {
      std::lock_guard lock(mu_);
      shown_ = model_.state();
      shown_threshold_um_ = model_.threshold_um();
    }
    for (EventBatch* b : {&samples, &spikes}) {
      if (!b->empty() && emitter.emit(*b) == EmitStatus::rejected) emit_rejected_.fetch_add(b->size());
    }
  }
}

void ChemicalDriver::deliver(const BatchHeader& header, const EventBatch& events,
                             const Delivery& delivery) noexcept {
  received_.fetch_add(events.size());
  if (delivery.late) late_in_.fetch_add(events.size());
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < events.size(); ++i) {
    const uint32_t port = events.channels[i];
    if (port >= kPorts) {
      unknown_port_.fetch_add(1);
      continue;
    }
    (port == 0 ? commands_ : stimulations_).fetch_add(1);
    inbox_.emplace_back(port, events.times_ns[i] + header.delay_ns);
  }
}

void ChemicalDriver::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::map<std::string, int64_t> ChemicalDriver::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return static_cast<int64_t>(a.load()); };
  return {{"received", v(received_)},       {"release_commands", v(commands_)},
          {"pc12_stimulations", v(stimulations_)}, {"rejected_unknown_port", v(unknown_port_)},
          {"received_late", v(late_in_)},   {"samples", v(samples_)},
          {"sensor_below_range", v(below_range_)}, {"sensor_saturated", v(saturated_)},
          {"firings", v(firings_)},         {"pc12_spikes", v(pc12_spikes_)},
          {"processing_behind", v(behind_)}, {"emit_rejected", v(emit_rejected_)}};
}

std::vector<std::string> ChemicalDriver::trouble_counters() const {
  return {"received_late", "processing_behind", "emit_rejected"};
}

std::map<std::string, std::vector<float>> ChemicalDriver::gauges() const {
  std::lock_guard lock(mu_);
  return {{"dopamine_um", {static_cast<float>(shown_.bath_um), static_cast<float>(shown_.estimate_um)}},
          {"temperature_c", {static_cast<float>(shown_.temperature_c)}},
          {"threshold_um", {static_cast<float>(shown_threshold_um_)}},
          {"released_nmol", {static_cast<float>(shown_.released_nmol)}}};
}

}  // namespace ion::chemical
