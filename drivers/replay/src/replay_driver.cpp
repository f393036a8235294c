#include "ion/replay/replay_driver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "ion/core/dataset.h"
#include "ion/core/device_description.h"
#include "ion/v1/ion.pb.h"

namespace ion::replay {

ReplayOptions ReplayOptions::from_config(const ConfigNode& d) {
  d.only_keys({"kind", "file", "source", "speed", "from", "to", "loop", "loop_gap", "remap",
               "batch_interval", "stream", "channels", "ports"});
  ReplayOptions o;
  o.file = d.resolve_path(d.string("file"));
  o.source = d.string("source", "");
  o.speed = d.number("speed", 1.0, 1e-3, 1e3);
  using std::chrono::nanoseconds;
  o.from_ns = d.duration("from", nanoseconds(0), nanoseconds(0), std::chrono::hours(24 * 365)).count();
  if (d.has("to")) o.to_ns = d.duration("to", nanoseconds(0), nanoseconds(0), std::chrono::hours(24 * 365)).count();
  if (o.to_ns <= o.from_ns) d.fail("to", "a time after `from`");
  o.loop = d.boolean("loop", false);
  o.loop_gap = std::chrono::duration_cast<std::chrono::microseconds>(
      d.duration("loop_gap", o.loop_gap, std::chrono::microseconds(0), std::chrono::hours(1)));
  o.batch_interval = std::chrono::duration_cast<std::chrono::microseconds>(
      d.duration("batch_interval", o.batch_interval, std::chrono::microseconds(50), std::chrono::seconds(1)));
  o.stream = static_cast<uint32_t>(d.integer("stream", 0, 0, UINT32_MAX));
  o.channels = static_cast<uint32_t>(d.integer("channels", 0, 0, 1 << 24));
  o.ports = static_cast<uint32_t>(d.integer("ports", 0, 0, 1 << 24));
  if (d.has("remap")) {
    const ConfigNode m = d.child("remap");
    for (const auto& kv : m.yaml()) {
      const auto from = kv.first.as<std::string>();
      if (from.empty() || from.find_first_not_of("0123456789") != std::string::npos || from.size() > 9) {
        m.fail(from, "recorded channel numbers as keys (from: to)");
      }
      o.remap[static_cast<uint32_t>(std::stoul(from))] = static_cast<uint32_t>(m.integer(from, 0, 1 << 24));
    }
  }
  return o;
}

ReplayEvents events_from_file(const std::string& file, const std::string& source, std::string* chosen) {
  ion::LoadStats st;
  const ion::Dataset d = ion::load_recording(file, &st, source);
  if (st.torn) spdlog::warn("replay: {} has a torn tail ({}); replaying what precedes it", file, st.tail_reason);
  std::vector<const ion::SourceData*> spikes;
  for (const auto& s : d.sources) {
    if (s.kind == EventKind::spike) spikes.push_back(&s);
  }
  if (spikes.empty()) {
    throw std::runtime_error(file + ": no spike source" + (source.empty() ? std::string() : " named '" + source + "'"));
  }
  if (spikes.size() > 1) {
    std::string names;
    for (const auto* s : spikes) names += (names.empty() ? "" : ", ") + s->desc.name() + "/" + std::to_string(s->stream);
    throw std::runtime_error(file + " holds several spike streams (" + names + "): choose one source");
  }
  const ion::SourceData& s = *spikes[0];
  if (chosen != nullptr) *chosen = s.desc.name();
  ReplayEvents e;
  e.channels = s.channels;
  e.times_ns = s.times_ns;
  e.payload = s.payload;
  e.kind = s.kind;
  e.channel_count = s.desc.channels();
  e.channel_info = from_proto(s.desc.channel_info());
  return e;
}

std::vector<ChannelDescription> remap_channel_info(const std::vector<ChannelDescription>& in,
                                                   const std::map<uint32_t, uint32_t>& remap) {
  std::vector<ChannelDescription> out;
  std::set<uint32_t> taken;
  for (ChannelDescription c : in) {
    if (auto it = remap.find(c.id); it != remap.end()) c.id = it->second;
    if (taken.insert(c.id).second) out.push_back(std::move(c));
  }
  return out;
}

ReplayDriver::ReplayDriver(ReplayOptions options, ReplayEvents events)
    : opts_(std::move(options)), ev_(std::move(events)) {
  if (!(opts_.speed > 0)) throw std::invalid_argument("replay: speed must be > 0");
  // Cut to [from, to) relative to the first event, then remap.
  if (!ev_.times_ns.empty()) {
    const int64_t first = ev_.times_ns.front();
    ReplayEvents cut;
    cut.kind = ev_.kind;
    cut.channel_info = remap_channel_info(ev_.channel_info, opts_.remap);
    for (size_t i = 0; i < ev_.times_ns.size(); ++i) {
      const int64_t rel = ev_.times_ns[i] - first;
      if (rel < opts_.from_ns || rel >= opts_.to_ns) continue;
      uint32_t ch = ev_.channels[i];
      if (auto it = opts_.remap.find(ch); it != opts_.remap.end()) ch = it->second;
      cut.channels.push_back(ch);
      cut.times_ns.push_back(ev_.times_ns[i]);
      if (!ev_.payload.empty()) cut.payload.push_back(ev_.payload[i]);
    }
    uint32_t top = 0;
    for (const uint32_t c : cut.channels) top = std::max(top, c + 1);
    for (const auto& [from, to] : opts_.remap) top = std::max(top, to + 1);
    cut.channel_count = std::max(top, opts_.remap.empty() ? ev_.channel_count : top);
    ev_ = std::move(cut);
  }
  if (opts_.channels != 0) {
    uint32_t top = 0;
    for (const uint32_t c : ev_.channels) top = std::max(top, c + 1);
    if (top > opts_.channels) {
      throw std::invalid_argument("the events use channel " + std::to_string(top - 1) + ", beyond the " +
                                  std::to_string(opts_.channels) + " channels declared: remap them");
    }
    ev_.channel_count = opts_.channels;
  }
  span_ns_ = ev_.times_ns.empty() ? 0 : ev_.times_ns.back() - ev_.times_ns.front();
}

ReplayDriver::ReplayDriver(ReplayOptions options)
    : ReplayDriver(options, events_from_file(options.file, options.source)) {}

ReplayDriver::~ReplayDriver() { stop(); }

DriverInfo ReplayDriver::describe() const {
  return {"replay", v1::NODE_KIND_REPLAY, ev_.channel_count, opts_.ports};
}

void ReplayDriver::deliver(const BatchHeader& header, const EventBatch& events,
                           const Delivery& delivery) noexcept {
  inputs_.fetch_add(events.size());
  if (delivery.late) inputs_late_.fetch_add(events.size());
  std::lock_guard lock(in_mu_);
  for (size_t i = 0; i < events.size(); ++i) {
    if (events.channels[i] >= opts_.ports) {
      inputs_unknown_port_.fetch_add(1);
      continue;
    }
    if (!opts_.keep_inputs) continue;
    if (kept_.size() >= opts_.max_kept_inputs) {
      inputs_not_kept_.fetch_add(1);
      continue;
    }
    try {
      kept_.push_back({header.source_node, events.kind, events.channels[i],
                       events.times_ns[i] + header.delay_ns,
                       events.has_payload() ? events.payload[i] : 0.0F, events.has_payload(),
                       delivery.late});
    } catch (const std::bad_alloc&) {
      inputs_not_kept_.fetch_add(1);
    }
  }
}

std::vector<ReceivedInput> ReplayDriver::received_inputs() const {
  std::lock_guard lock(in_mu_);
  return kept_;
}

void ReplayDriver::start(Emitter& emitter) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, &emitter] { loop(emitter); });
}

void ReplayDriver::loop(Emitter& emitter) {
  if (ev_.times_ns.empty()) {
    finished_.store(true);
    return;
  }
  if (start_ns_.load() == INT64_MIN) start_ns_.store(emitter.network_now_ns() + 200'000'000);
  const int64_t start = start_ns_.load();
  const int64_t first = ev_.times_ns.front();
  const double inv_speed = 1.0 / opts_.speed;
  const int64_t period = static_cast<int64_t>(std::llround(static_cast<double>(span_ns_) * inv_speed)) +
                         std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.loop_gap).count();
  auto stamp = [&](size_t i, uint64_t round) {
    const double rel = static_cast<double>(ev_.times_ns[i] - first) * inv_speed;
    return start + static_cast<int64_t>(round) * period + static_cast<int64_t>(std::llround(rel));
  };
  EventBatch b;
  b.stream = opts_.stream;
  b.kind = ev_.kind;
  size_t next = 0;
  uint64_t round = 0;
  constexpr size_t kMaxPerBatch = 16384;
  while (true) {
    // Sleep until the next event's stamp (at most one tick), on the node's clock.
    const int64_t due = stamp(next, round);
    const int64_t wait = std::min<int64_t>(due - emitter.network_now_ns(),
                                           std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.batch_interval).count());
    {
      std::unique_lock lock(mu_);
      if (wait > 0 && cv_.wait_for(lock, std::chrono::nanoseconds(wait), [&] { return stop_; })) return;
      if (stop_) return;
    }
    const int64_t now = emitter.network_now_ns();
    b.clear();
    while (next < ev_.times_ns.size() && b.size() < kMaxPerBatch) {
      const int64_t t = stamp(next, round);
      if (t > now) break;
      if (ev_.payload.empty()) {
        b.push(ev_.channels[next], t);
      } else {
        b.push(ev_.channels[next], t, ev_.payload[next]);
      }
      ++next;
    }
    if (!b.empty()) {
      const int64_t lag = now - b.times_ns.front();
      last_lag_.store(now - b.times_ns.back());
      if (lag > max_lag_.load()) max_lag_.store(lag);
      if (emitter.emit(b) == EmitStatus::rejected) {
        rejected_.fetch_add(b.size());
      } else {
        emitted_.fetch_add(b.size());
      }
    }
    if (next == ev_.times_ns.size()) {
      if (!opts_.loop) break;
      next = 0;
      ++round;
      loops_.fetch_add(1);
    }
  }
  finished_.store(true);
  spdlog::info("replay: {} events emitted, worst emission lag {:.3f} ms", emitted_.load(),
               static_cast<double>(max_lag_.load()) / 1e6);
}

void ReplayDriver::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::map<std::string, int64_t> ReplayDriver::counters() const {
  return {{"events", static_cast<int64_t>(ev_.times_ns.size())},
          {"emitted", static_cast<int64_t>(emitted_.load())},
          {"rejected", static_cast<int64_t>(rejected_.load())},
          {"loops", static_cast<int64_t>(loops_.load())},
          {"max_emit_lag_ns", max_lag_.load()},
          {"inputs_received", static_cast<int64_t>(inputs_.load())},
          {"inputs_late", static_cast<int64_t>(inputs_late_.load())},
          {"inputs_unknown_port", static_cast<int64_t>(inputs_unknown_port_.load())},
          {"inputs_not_kept", static_cast<int64_t>(inputs_not_kept_.load())}};
}

}  // namespace ion::replay
