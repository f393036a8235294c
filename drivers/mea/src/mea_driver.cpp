#include "ion/mea/mea_driver.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "ion/core/clock.h"
#include "ion/mea/culture.h"
#include "ion/v1/ion.pb.h"

namespace ion::mea {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

microseconds us(const ConfigNode& n, std::string_view key, microseconds fallback, microseconds lo,
                microseconds hi) {
  return duration_cast<microseconds>(n.duration(key, fallback, lo, hi));
}

CultureOptions culture_from(const ConfigNode& e) {
  e.only_keys({"rows", "cols", "drop_corners", "pitch_um", "sample_rate_hz", "uv_per_bit",
               "noise_uv_rms", "dc_offset_uv", "dc_offset_spread_uv", "neurons",
               "excitatory_fraction", "connection_probability", "delay_min_ms", "delay_max_ms",
               "weight_exc", "weight_inh", "tau_exc_ms", "tau_inh_ms", "depression_u",
               "depression_tau_ms", "noise_current", "step_ms", "spike_amplitude_uv",
               "amplitude_spread", "distance_scale_um", "cell_height_um", "pickup_radius_um",
               "stim_threshold_mv", "stim_slope_mv", "stim_radius_um", "stim_latency_min_ms",
               "stim_latency_max_ms", "artifact_uv_per_mv", "artifact_tau_ms", "seed",
               "wiring_file"});
  CultureOptions o;
  o.rows = static_cast<uint32_t>(e.integer("rows", o.rows, 1, 64));
  o.cols = static_cast<uint32_t>(e.integer("cols", o.cols, 1, 64));
  o.drop_corners = e.boolean("drop_corners", o.drop_corners && o.rows == 8 && o.cols == 8);
  o.pitch_um = e.number("pitch_um", o.pitch_um, 1, 5000);
  o.sample_rate_hz = e.number("sample_rate_hz", o.sample_rate_hz, 5000, 100000);
  o.uv_per_bit = e.number("uv_per_bit", o.uv_per_bit, 1e-3, 1e3);
  o.noise_uv_rms = e.number("noise_uv_rms", o.noise_uv_rms, 0, 1000);
  o.dc_offset_uv = e.number("dc_offset_uv", o.dc_offset_uv, -1e4, 1e4);
  o.dc_offset_spread_uv = e.number("dc_offset_spread_uv", o.dc_offset_spread_uv, 0, 1e4);
  o.neurons = static_cast<uint32_t>(e.integer("neurons", o.neurons, 1, 200000));
  o.excitatory_fraction = e.number("excitatory_fraction", o.excitatory_fraction, 0, 1);
  o.connection_probability = e.number("connection_probability", o.connection_probability, 0, 1);
  o.delay_min_ms = e.number("delay_min_ms", o.delay_min_ms, 0.01, 50);
  o.delay_max_ms = e.number("delay_max_ms", o.delay_max_ms, 0.01, 50);
  o.weight_exc = e.number("weight_exc", o.weight_exc, 0, 1000);
  o.weight_inh = e.number("weight_inh", o.weight_inh, 0, 1000);
  o.tau_exc_ms = e.number("tau_exc_ms", o.tau_exc_ms, 0.1, 1000);
  o.tau_inh_ms = e.number("tau_inh_ms", o.tau_inh_ms, 0.1, 1000);
  o.depression_u = e.number("depression_u", o.depression_u, 0.001, 1);
  o.depression_tau_ms = e.number("depression_tau_ms", o.depression_tau_ms, 1, 1e6);
  o.noise_current = e.number("noise_current", o.noise_current, 0, 100);
  o.step_ms = e.number("step_ms", o.step_ms, 0.02, 1);
  o.spike_amplitude_uv = e.number("spike_amplitude_uv", o.spike_amplitude_uv, 0, 1e4);
  o.amplitude_spread = e.number("amplitude_spread", o.amplitude_spread, 0, 3);
  o.distance_scale_um = e.number("distance_scale_um", o.distance_scale_um, 1, 1000);
  o.cell_height_um = e.number("cell_height_um", o.cell_height_um, 0, 1000);
  o.pickup_radius_um = e.number("pickup_radius_um", o.pickup_radius_um, 1, 2000);
  o.stim_threshold_mv = e.number("stim_threshold_mv", o.stim_threshold_mv, 0, 1e4);
  o.stim_slope_mv = e.number("stim_slope_mv", o.stim_slope_mv, 1e-3, 1e4);
  o.stim_radius_um = e.number("stim_radius_um", o.stim_radius_um, 1, 2000);
  o.stim_latency_min_ms = e.number("stim_latency_min_ms", o.stim_latency_min_ms, 0, 50);
  o.stim_latency_max_ms = e.number("stim_latency_max_ms", o.stim_latency_max_ms, 0, 50);
  o.artifact_uv_per_mv = e.number("artifact_uv_per_mv", o.artifact_uv_per_mv, 0, 1e4);
  o.artifact_tau_ms = e.number("artifact_tau_ms", o.artifact_tau_ms, 0.01, 100);
  o.seed = static_cast<uint64_t>(e.integer("seed", 1, 0, INT64_MAX));
  try {
    o.validate();
  } catch (const std::invalid_argument& ex) {
    e.fail("", ex.what());
  }
  return o;
}

// `layout: FILE.csv` (channel,name,x_um,y_um) or `layout: {rows, cols, pitch_um, drop_corners,
// names: mcs|number}`: a grid row-major as the emulator lays it out; MCS names are the column
// then the row digit, 1-based ("12" ... "87" on the 60-electrode array).
std::vector<ChannelDescription> layout_from(const ConfigNode& d) {
  std::vector<ChannelDescription> out;
  if (d.yaml()["layout"].IsMap()) {
    const ConfigNode g = d.child("layout");
    g.only_keys({"rows", "cols", "pitch_um", "drop_corners", "names"});
    const auto rows = static_cast<uint32_t>(g.integer("rows", 8, 1, 256));
    const auto cols = static_cast<uint32_t>(g.integer("cols", 8, 1, 256));
    const double pitch = g.number("pitch_um", 200, 1e-3, 1e4);
    const bool drop = g.boolean("drop_corners", rows == 8 && cols == 8);
    const std::string names = g.string("names", rows <= 9 && cols <= 9 ? "mcs" : "number");
    if (names != "mcs" && names != "number") g.fail("names", "one of: mcs, number");
    if (names == "mcs" && (rows > 9 || cols > 9)) g.fail("names", "mcs names need at most 9 rows and columns");
    for (uint32_t r = 0; r < rows; ++r) {
      for (uint32_t c = 0; c < cols; ++c) {
        const bool corner = (r == 0 || r == rows - 1) && (c == 0 || c == cols - 1);
        if (drop && corner) continue;
        const auto id = static_cast<uint32_t>(out.size());
        out.push_back({id, names == "mcs" ? std::to_string(c + 1) + std::to_string(r + 1) : std::to_string(id),
                       c * pitch, r * pitch});
      }
    }
    return out;
  }
  const std::string path = d.resolve_path(d.string("layout"));
  std::ifstream in(path);
  if (!in) d.fail("layout", path + ": cannot be read");
  std::set<uint32_t> seen;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#' || line.starts_with("channel,")) continue;
    const auto bad = [&](const std::string& why) {
      d.fail("layout", path + ":" + std::to_string(line_no) + ": " + why + " (want channel,name,x_um,y_um)");
    };
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    if (f.size() != 4) bad("4 fields");
    ChannelDescription c;
    try {
      size_t used = 0;
      const unsigned long id = std::stoul(f[0], &used);
      if (used != f[0].size() || id > 65535) bad("channel is not a number 0..65535");
      c.id = static_cast<uint32_t>(id);
      c.x_um = std::stod(f[2]);
      c.y_um = std::stod(f[3]);
    } catch (const std::logic_error&) {
      bad("not a number");
    }
    if (!std::isfinite(c.x_um) || !std::isfinite(c.y_um)) bad("a position is not finite");
    if (!seen.insert(c.id).second) bad("channel " + f[0] + " twice");
    c.name = f[1];
    out.push_back(std::move(c));
  }
  if (out.empty()) d.fail("layout", path + ": no electrode in it");
  return out;
}

}  // namespace

MeaOptions MeaOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "source", "emulator", "raw_file", "tcp", "detection", "stimulation",
               "block", "stream", "layout"});
  MeaOptions o;
  const std::string source = d.string("source", "emulator");
  if (source == "emulator") {
    o.source = SourceKind::emulator;
  } else if (source == "raw_file") {
    o.source = SourceKind::raw_file;
  } else if (source == "tcp") {
    o.source = SourceKind::tcp;
  } else {
    d.fail("source", "one of: emulator, raw_file, tcp");
  }
  if (auto e = d.find_child("emulator")) {
    o.emulator = culture_from(*e);
    o.wiring_file = e->string("wiring_file", "");
  }
  if (auto f = d.find_child("raw_file")) {
    f->only_keys({"path", "channels", "sample_rate_hz", "uv_per_bit", "offset_bits", "speed", "loop"});
    o.raw_file.path = f->resolve_path(f->string("path"));
    o.raw_file.channels = static_cast<uint32_t>(f->integer("channels", 1, 65535));
    o.raw_file.sample_rate_hz = f->number("sample_rate_hz", 0, 1000, 1e6);
    o.raw_file.uv_per_bit = f->number("uv_per_bit", 1.0, 1e-6, 1e6);
    o.raw_file.offset_bits = f->number("offset_bits", 0, -65536, 65536);
    o.speed = f->number("speed", 1.0, 0.01, 1000);
    o.raw_file.loop = f->boolean("loop", false);
  } else if (o.source == SourceKind::raw_file) {
    d.fail("raw_file", "a mapping with path, channels and sample_rate_hz (source: raw_file)");
  }
  if (auto t = d.find_child("tcp")) {
    t->only_keys({"listen", "channels", "sample_rate_hz", "max_chunk_frames"});
    o.tcp.listen = t->string("listen", "127.0.0.1:7010");
    o.tcp.channels = static_cast<uint32_t>(t->integer("channels", 1, 65535));
    o.tcp.sample_rate_hz = t->number("sample_rate_hz", 0, 1000, 1e6);
    o.tcp.max_chunk_frames = static_cast<uint32_t>(t->integer("max_chunk_frames", 65536, 1, 1 << 20));
  } else if (o.source == SourceKind::tcp) {
    d.fail("tcp", "a mapping with listen, channels and sample_rate_hz (source: tcp)");
  }
  if (auto x = d.find_child("detection")) {
    x->only_keys({"band_low_hz", "band_high_hz", "high_pass_order", "threshold_k", "dead_time",
                  "noise_window", "noise_points", "peak_window", "snippet_pre", "snippet_post",
                  "blanking"});
    DetectorOptions& t = o.detection;
    t.band_low_hz = x->number("band_low_hz", t.band_low_hz, 1, 1e5);
    t.band_high_hz = x->number("band_high_hz", t.band_high_hz, 1, 1e5);
    t.high_pass_order = static_cast<uint32_t>(x->integer("high_pass_order", t.high_pass_order, 1, 2));
    t.threshold_k = x->number("threshold_k", t.threshold_k, 0.5, 50);
    t.dead_time = us(*x, "dead_time", t.dead_time, microseconds(0), milliseconds(100));
    t.noise_window = duration_cast<milliseconds>(
        x->duration("noise_window", t.noise_window, milliseconds(100), std::chrono::seconds(600)));
    t.noise_points = static_cast<uint32_t>(x->integer("noise_points", t.noise_points, 16, 100000));
    t.peak_window = us(*x, "peak_window", t.peak_window, microseconds(0), milliseconds(5));
    t.snippet_pre = us(*x, "snippet_pre", t.snippet_pre, microseconds(0), milliseconds(10));
    t.snippet_post = us(*x, "snippet_post", t.snippet_post, microseconds(0), milliseconds(10));
    t.blanking = us(*x, "blanking", t.blanking, microseconds(0), milliseconds(100));
  }
  if (auto s = d.find_child("stimulation")) {
    s->only_keys({"amplitude_mv", "max_amplitude_mv", "width"});
    o.stimulation.max_amplitude_mv =
        static_cast<float>(s->number("max_amplitude_mv", o.stimulation.max_amplitude_mv, 0, 1e4));
    o.stimulation.amplitude_mv = static_cast<float>(
        s->number("amplitude_mv", o.stimulation.amplitude_mv, 0, o.stimulation.max_amplitude_mv));
    o.stimulation.width_us = static_cast<uint32_t>(
        us(*s, "width", microseconds(o.stimulation.width_us), microseconds(1), milliseconds(10)).count());
  }
  o.block = us(d, "block", o.block, microseconds(100), milliseconds(100));
  o.stream = static_cast<uint32_t>(d.integer("stream", 0, 0, UINT32_MAX));
  if (d.has("layout")) {
    if (o.source == SourceKind::emulator) {
      d.fail("layout", "the emulator's electrodes are its culture's (emulator: rows, cols, pitch_um); layout is "
                       "for raw_file and tcp sources");
    }
    o.layout = layout_from(d);
  }
  return o;
}

std::unique_ptr<SignalSource> make_source(const MeaOptions& o) {
  switch (o.source) {
    case SourceKind::emulator: {
      auto c = std::make_unique<CultureEmulator>(o.emulator);
      if (!o.wiring_file.empty()) {
        c->write_wiring(o.wiring_file, true);
        std::string neurons = o.wiring_file;
        if (neurons.size() > 4 && neurons.ends_with(".csv")) neurons.resize(neurons.size() - 4);
        c->write_wiring(neurons + ".neurons.csv", false);
      }
      return c;
    }
    case SourceKind::raw_file: return std::make_unique<RawFileSource>(o.raw_file);
    case SourceKind::tcp: return std::make_unique<TcpStreamSource>(o.tcp);
  }
  return nullptr;
}

MeaDriver::MeaDriver(MeaOptions options) : MeaDriver(options, make_source(options)) {}

MeaDriver::MeaDriver(MeaOptions options, std::unique_ptr<SignalSource> source)
    : opts_(std::move(options)),
      source_(std::move(source)),
      format_(source_->format()),
      channels_(format_.channels) {
  // Check the detector settings against the source now, at start-up, not on the first block.
  with_format(opts_.detection, format_).validate();
  for (const ChannelDescription& c : opts_.layout) {
    if (c.id >= channels_) {
      throw std::invalid_argument("layout: electrode " + std::to_string(c.id) + " ('" + c.name + "') but the source has " +
                                  std::to_string(channels_) + " channels");
    }
  }
}

MeaDriver::~MeaDriver() { stop(); }

DriverInfo MeaDriver::describe() const {
  return {"mea", v1::NODE_KIND_MEA, channels_, channels_};
}

std::vector<ChannelDescription> MeaDriver::channel_info() const {
  if (!opts_.layout.empty()) return opts_.layout;
  std::vector<ChannelDescription> out;
  if (const auto* culture = dynamic_cast<const CultureEmulator*>(source_.get())) {
    const auto& p = culture->electrode_positions();
    for (uint32_t e = 0; e < p.size(); ++e) out.push_back({e, "", p[e].x_um, p[e].y_um});
  }
  return out;
}

void MeaDriver::start(Emitter& emitter) {
  if (thread_.joinable()) return;
  emitter_.store(&emitter);
  thread_ = std::thread([this, &emitter] { loop(emitter); });
}

int64_t MeaDriver::sample_local_ns(uint64_t sample) const noexcept {
  if (device_clock_) return device_clock_->to_host_ns(sample);
  const double k = static_cast<double>(sample - first_sample_);
  return t0_local_ns_ + static_cast<int64_t>(std::llround(k * ns_per_sample_));
}

uint64_t MeaDriver::local_to_sample(int64_t local_ns) const noexcept {
  // Paced sources only: the first sample at or after local_ns.
  const double k = std::ceil(static_cast<double>(local_ns - t0_local_ns_) / ns_per_sample_);
  return first_sample_ + static_cast<uint64_t>(std::max(0.0, k));
}

void MeaDriver::apply_stimuli(Emitter& emitter, uint64_t from_sample) {
  std::vector<PendingStim> due;
  {
    std::lock_guard lock(mu_);
    due.swap(stim_queue_);
  }
  for (const PendingStim& p : due) {
    uint64_t sample = from_sample;
    if (!source_->paced()) {
      // Live stream: the latest chunk's sample plus the time since it arrived.
      if (device_clock_ && device_clock_->valid()) {
        const double ahead = static_cast<double>(p.local_ns - emitter.local_now_ns()) / ns_per_sample_;
        sample = from_sample + static_cast<uint64_t>(std::max(0.0, ahead));
      }
    } else {
      sample = local_to_sample(p.local_ns);
      if (sample < from_sample) {
        stim_late_.fetch_add(1);  // its sample is already processed: applied at the next one
        sample = from_sample;
      }
    }
    const StimCommand cmd{p.electrode, sample, p.amplitude_mv, opts_.stimulation.width_us};
    switch (source_->stimulate(cmd)) {
      case StimResult::applied:
        stim_applied_.fetch_add(1);
        if (detector_) detector_->blank(p.electrode, sample);
        break;
      case StimResult::out_of_range: stim_out_of_range_.fetch_add(1); break;
      case StimResult::unsupported: stim_unsupported_.fetch_add(1); break;
    }
  }
}

void MeaDriver::loop(Emitter& emitter) {
  const uint32_t nch = channels_;
  const double fs = format_.sample_rate_hz;
  const double speed = opts_.source == SourceKind::raw_file ? opts_.speed : 1.0;
  ns_per_sample_ = 1e9 / (fs * speed);
  const auto block_frames = static_cast<size_t>(
      std::max<int64_t>(1, std::llround(static_cast<double>(opts_.block.count()) * 1e-6 * fs)));
  std::vector<int16_t> frames(block_frames * nch);
  std::vector<DetectedSpike> spikes;
  EventBatch batch;
  batch.stream = opts_.stream;
  batch.kind = EventKind::spike;
  t0_local_ns_ = emitter.local_now_ns();
  first_sample_ = 0;
  bool have_first = false;
  if (!source_->paced()) {
    DeviceClockOptions dc;
    dc.counter_bits = 64;
    dc.tick_hz = fs;
    device_clock_ = std::make_unique<DeviceClock>(dc);
  }
  uint64_t next_sample = 0;
  // At the end of the source: say so, then idle until stopped (the node keeps running).
  auto finish = [&] {
    finished_.store(true);
    spdlog::info("mea: source ended after {} samples", samples_.load());
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stop_requested_; });
  };
  while (true) {
    if (source_->paced()) {
      // The block's last sample is acquired at its time: wait for it, as a rig would.
      const int64_t due = sample_local_ns(next_sample + block_frames);
      const int64_t wait_ns = due - emitter.local_now_ns();
      std::unique_lock lock(mu_);
      if (wait_ns > 0) {
        if (cv_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [&] { return stop_requested_; })) break;
      } else if (stop_requested_) {
        break;
      } else if (wait_ns < -static_cast<int64_t>(opts_.block.count()) * 1000 * 4) {
        behind_.fetch_add(1);  // more than four blocks late: processing slower than real time
      }
    } else {
      std::lock_guard lock(mu_);
      if (stop_requested_) break;
    }
    if (have_first) apply_stimuli(emitter, next_sample);
    const ReadResult r = source_->read(frames, milliseconds(100));
    if (r.frames == 0) {
      if (r.end) {
        finish();
        break;
      }
      continue;
    }
    if (!have_first) {
      have_first = true;
      first_sample_ = r.first_sample;
      format_ = source_->format();  // a live stream's scale is known once it has connected
      detector_ = std::make_unique<SpikeDetector>(with_format(opts_.detection, format_));
      apply_stimuli(emitter, r.first_sample);
    }
    if (device_clock_) {
      // Chunk arrival (steady clock) on the node's clock, against the chunk's last sample; a
      // device-paced source without arrival stamps is stamped now.
      const auto* tcp = dynamic_cast<const TcpStreamSource*>(source_.get());
      const int64_t since_arrival =
          tcp == nullptr ? 0 : SteadyClock::instance().now_ns() - tcp->last_arrival_ns();
      device_clock_->observe(r.first_sample + r.frames - 1, emitter.local_now_ns() - since_arrival);
    }
    next_sample = r.first_sample + r.frames;
    samples_.fetch_add(r.frames);
    spikes.clear();
    detector_->process(std::span<const int16_t>(frames.data(), r.frames * nch), r.first_sample, spikes);
    detector_->clear_snippets();
    if (!spikes.empty()) {
      batch.clear();
      for (const DetectedSpike& s : spikes) {
        batch.push(s.channel, emitter.to_network_ns(sample_local_ns(s.sample)), s.peak_uv);
      }
      if (emitter.emit(batch) == EmitStatus::rejected) emit_rejected_.fetch_add(batch.size());
      spikes_.fetch_add(spikes.size());
    }
    // The detector counts gaps and blanked crossings; published for counters() on other threads.
    blanked_.store(detector_->counters().blanked_crossings);
    discontinuities_.store(detector_->counters().discontinuities);
    if (r.end) {
      finish();
      break;
    }
  }
  source_->stop();
}

void MeaDriver::deliver(const BatchHeader& header, const EventBatch& events,
                        const Delivery& /*delivery*/) noexcept {
  Emitter* emitter = emitter_.load();
  // Deadline (network time) -> the node's clock, through the current offset.
  const int64_t offset = emitter == nullptr ? 0 : emitter->network_now_ns() - emitter->local_now_ns();
  const StimulationOptions& s = opts_.stimulation;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < events.size(); ++i) {
    stim_received_.fetch_add(1);
    const uint32_t electrode = events.channels[i];
    if (electrode >= channels_) {
      stim_out_of_range_.fetch_add(1);
      continue;
    }
    float amplitude = s.amplitude_mv;
    if (events.has_payload()) {
      if (events.kind == EventKind::stimulation) amplitude = events.payload[i];
      if (events.kind == EventKind::synaptic_input) amplitude = s.amplitude_mv * events.payload[i];
    }
    if (!(std::fabs(amplitude) <= s.max_amplitude_mv)) {  // also catches NaN
      stim_clamped_.fetch_add(1);
      amplitude = std::isnan(amplitude) ? 0.F : std::copysign(s.max_amplitude_mv, amplitude);
    }
    if (amplitude == 0.F) continue;
    stim_queue_.push_back({electrode, amplitude, events.times_ns[i] + header.delay_ns - offset});
  }
  cv_.notify_all();
}

void MeaDriver::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
  source_->stop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::map<std::string, int64_t> MeaDriver::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return static_cast<int64_t>(a.load()); };
  std::map<std::string, int64_t> c = {
      {"samples", v(samples_)},
      {"spikes_detected", v(spikes_)},
      {"emit_rejected", v(emit_rejected_)},
      {"stim_received", v(stim_received_)},
      {"stim_scheduled", v(stim_applied_)},
      {"stim_rejected_electrode", v(stim_out_of_range_)},
      {"stim_unsupported", v(stim_unsupported_)},
      {"stim_clamped", v(stim_clamped_)},
      {"stim_late", v(stim_late_)},
      {"processing_behind", v(behind_)},
      {"discontinuities", v(discontinuities_)},
      {"blanked_crossings", v(blanked_)}};
  for (const auto& [k, x] : source_->counters()) c[k] = x;
  return c;
}

std::vector<std::string> MeaDriver::trouble_counters() const {
  // The driver's own, and its source's where the source has them (emulator, TCP stream, file).
  static const std::vector<std::string> kTrouble = {
      "stim_late", "processing_behind", "stimulations_late", "tcp_dropped_frames",
      "tcp_stim_unsent", "file_read_errors"};
  const auto c = counters();
  std::vector<std::string> out;
  for (const auto& n : kTrouble) {
    if (c.contains(n)) out.push_back(n);
  }
  return out;
}

}  // namespace ion::mea
