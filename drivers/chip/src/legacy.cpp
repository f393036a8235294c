#include "ion/chip/legacy.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ion::chip {
namespace {

constexpr uint32_t mask_of(uint8_t bits) noexcept { return bits >= 32 ? ~0U : (1U << bits) - 1; }

// The latest time in `times` (oldest first) at or before `limit`.
std::optional<int64_t> latest_at_or_before(const std::vector<int64_t>& times, int64_t limit) {
  for (auto it = times.rbegin(); it != times.rend(); ++it) {
    if (*it <= limit) return *it;
  }
  return std::nullopt;
}

void remember(std::vector<int64_t>& times, int64_t t) {
  constexpr size_t kKept = 64;  // stimuli that may still be answered
  if (times.size() == kKept) times.erase(times.begin());
  times.push_back(t);
}

LegacyDirection hub_packets() {  // what the 2017 hub sent: 'S', absolute clock, weight, 20 bits
  return {{'S'}, LegacyTime::counter, LegacyField::weight, 20, 20, 0};
}

}  // namespace

std::string_view to_string(LegacyTime t) noexcept {
  switch (t) {
    case LegacyTime::counter: return "counter";
    case LegacyTime::interval: return "interval";
    case LegacyTime::since_stimulus: return "since_stimulus";
  }
  return "?";
}

std::string_view to_string(LegacyField f) noexcept {
  switch (f) {
    case LegacyField::event_type: return "event_type";
    case LegacyField::weight: return "weight";
    case LegacyField::unused: return "unused";
  }
  return "?";
}

std::string_view LegacyOptions::preset_names() noexcept {
  return "absolute, hub2017-zurich, hub2017-padova, zurich2017, padova2017";
}

LegacyOptions LegacyOptions::preset_named(std::string_view name) {
  LegacyOptions o;
  o.preset = std::string(name);
  if (name == "absolute") return o;  // IoN's own reading: absolute counters both ways, 24 bits
  if (name == "hub2017-zurich") {
    // IoN plays Zurich against a 2017 hub: its spikes go as 'A' intervals; the hub's packets
    // come back on the clock those intervals built.
    o.in = hub_packets();
    o.out = {{'A'}, LegacyTime::interval, LegacyField::unused, 24, 24, 0};
  } else if (name == "hub2017-padova") {
    // IoN plays Padova against a 2017 hub: the hub's packets are stimuli; the culture's spikes
    // go as 'D' with their delay from the stimulus.
    o.in = hub_packets();
    o.out = {{'D'}, LegacyTime::since_stimulus, LegacyField::unused, 24, 24, 0};
  } else if (name == "zurich2017") {
    // IoN plays the hub for a 2017 Zurich peer: 'A' intervals in, hub packets out on the clock
    // those intervals build.
    o.in = {{'A'}, LegacyTime::interval, LegacyField::unused, 24, 24, 0};
    o.out = hub_packets();
  } else if (name == "padova2017") {
    // IoN plays the hub for a 2017 Padova peer: hub packets out are stimuli, 'D' delays in.
    o.in = {{'D'}, LegacyTime::since_stimulus, LegacyField::unused, 24, 24, 0};
    o.out = hub_packets();
  } else {
    throw std::invalid_argument("unknown preset '" + std::string(name) +
                                "'; one of: " + std::string(preset_names()));
  }
  return o;
}

void LegacyOptions::validate() const {
  for (const LegacyDirection* d : {&in, &out}) {
    if (d->id_bits < 1 || d->id_bits > 24 || d->time_bits < 1 || d->time_bits > 24) {
      throw std::invalid_argument("id_bits and time_bits are 1..24 (the packet's fields)");
    }
  }
  if (out.codes.empty()) throw std::invalid_argument("out: a sender code for our packets");
  if (out.time == LegacyTime::since_stimulus && in.time == LegacyTime::since_stimulus) {
    throw std::invalid_argument("since_stimulus both ways: neither side would have a clock");
  }
  if (!(weight_full_scale > 0)) throw std::invalid_argument("weight_full_scale must be > 0");
}

LegacyBridge::LegacyBridge(LegacyOptions options, uint32_t neurons)
    : opts_(std::move(options)), neurons_(neurons) {
  opts_.validate();
  peer_clock_ = std::make_unique<DeviceClock>(peer_clock_options());
}

DeviceClockOptions LegacyBridge::peer_clock_options() const noexcept {
  DeviceClockOptions dc;
  // An interval peer's clock is our running sum of its intervals: it does not wrap.
  dc.counter_bits = opts_.in.time == LegacyTime::interval ? 62 : opts_.in.time_bits;
  dc.tick_hz = kLegacyTickHz;
  return dc;
}

std::optional<int64_t> LegacyBridge::in_time(uint32_t raw, int64_t arrival_ns,
                                             std::string_view& refused, bool& restarted) noexcept {
  switch (opts_.in.time) {
    case LegacyTime::since_stimulus: {
      // The stimulus that caused it is the latest one sent that the delay does not put after
      // the packet's arrival.
      const int64_t delay_ns = int64_t{raw} * kTickNs;
      const auto s = latest_at_or_before(out_times_, arrival_ns - delay_ns);
      if (!s) {
        refused = "packet_before_any_stimulus";
        return std::nullopt;
      }
      return *s + delay_ns;
    }
    case LegacyTime::interval: {
      in_interval_sum_ = in_started_ ? in_interval_sum_ + raw : raw;
      in_started_ = true;
      peer_clock_->observe(static_cast<uint64_t>(in_interval_sum_), arrival_ns);
      return peer_clock_->to_host_ns(static_cast<uint64_t>(in_interval_sum_));
    }
    case LegacyTime::counter: break;
  }
  if (opts_.out.time == LegacyTime::interval) {
    // The peer's clock is the running sum of the intervals we sent (the hub's was): its
    // readings map back exactly, to the latest value of our sum they can stand for.
    if (!out_started_) {
      refused = "packet_before_any_interval_sent";
      return std::nullopt;
    }
    const uint32_t m = mask_of(opts_.in.time_bits);
    const int64_t behind = (out_last_ticks_ - raw) & m;
    return out_origin_ns_ + (out_last_ticks_ - behind) * kTickNs;
  }
  // An absolute counter of the peer's own: unwrapped and fitted against arrival times; it must
  // not go backwards (a run of backwards packets: the peer restarted).
  const int64_t t = peer_clock_->valid() ? peer_clock_->unwrap(raw) : 0;
  if (peer_clock_->valid() && t < last_in_ticks_) {
    refused = "event_time_backwards";
    if (++backwards_run_ >= kRestartAfterBackwards) {
      restarted = true;
      peer_clock_ = std::make_unique<DeviceClock>(peer_clock_options());
      last_in_ticks_ = INT64_MIN;
      backwards_run_ = 0;
    }
    return std::nullopt;
  }
  backwards_run_ = 0;
  peer_clock_->observe(raw, arrival_ns);
  last_in_ticks_ = peer_clock_->unwrap(raw);
  return peer_clock_->to_host_ns(raw);
}

LegacyBridge::In LegacyBridge::on_packet(std::span<const uint8_t> bytes, int64_t arrival_ns) noexcept {
  In r;
  LegacyPacket p;
  switch (decode_legacy(bytes, p)) {
    case DecodeError::none: break;
    case DecodeError::truncated: r.refused = "datagram_truncated"; return r;
    default: r.refused = "datagram_oversized"; return r;
  }
  const auto& codes = opts_.in.codes;
  if (!codes.empty() && std::find(codes.begin(), codes.end(), p.code) == codes.end()) {
    r.refused = "packet_unknown_sender_code";
    return r;
  }
  const uint32_t id = p.id & mask_of(opts_.in.id_bits);
  if (id >= neurons_) {
    r.refused = "event_unknown_address";
    return r;
  }
  LegacyEvent e;
  e.channel = id;
  switch (opts_.in.field) {
    case LegacyField::event_type:
      if (p.field > static_cast<uint8_t>(LegacyType::spontaneous_spike)) {
        r.refused = "packet_unknown_event_type";
        return r;
      }
      e.payload = static_cast<float>(p.field);
      break;
    case LegacyField::weight:
      e.payload = static_cast<float>(p.field) / 255.0F * opts_.weight_full_scale;
      break;
    case LegacyField::unused: break;
  }
  const auto t = in_time(p.ticks & mask_of(opts_.in.time_bits), arrival_ns, r.refused, r.restarted);
  if (!t) return r;
  e.time_ns = *t;
  remember(in_times_, e.time_ns);
  r.event = e;
  return r;
}

LegacyBridge::Out LegacyBridge::on_input(uint32_t neuron, float weight, int64_t source_ns,
                                         int64_t deadline_ns) noexcept {
  Out r;
  const LegacyDirection& o = opts_.out;
  if (neuron > mask_of(o.id_bits)) {
    r.refused = "input_id_too_wide";  // masking would send it to another neuron
    return r;
  }
  LegacyPacket p;
  p.code = o.codes.front();
  p.id = neuron;
  switch (o.field) {
    case LegacyField::weight: {
      const float byte = std::round(255.0F * weight / opts_.weight_full_scale);
      r.clamped = byte > 255.0F;
      p.field = static_cast<uint8_t>(std::clamp(byte, 0.0F, 255.0F));
      break;
    }
    case LegacyField::event_type: p.field = o.event_type; break;
    case LegacyField::unused: p.field = 0; break;
  }
  const uint32_t m = mask_of(o.time_bits);
  switch (o.time) {
    case LegacyTime::counter:
      // On the peer's clock once it has shown it (its counter, or the sum of its intervals);
      // before that, network time in ticks.
      if (peer_clock_->valid() && opts_.in.time != LegacyTime::since_stimulus) {
        p.ticks = static_cast<uint32_t>(peer_clock_->to_raw(deadline_ns) & m);
      } else {
        p.ticks = static_cast<uint32_t>(std::llround(static_cast<double>(deadline_ns) / kTickNs)) & m;
      }
      break;
    case LegacyTime::interval: {
      // The peer sums them into its clock: sent as differences of one rounded running count, so
      // rounding never accumulates.
      if (!out_started_) {
        out_started_ = true;
        out_origin_ns_ = deadline_ns;
        out_last_ticks_ = 0;
        p.ticks = 0;
        break;
      }
      const int64_t ticks = (deadline_ns - out_origin_ns_ + kTickNs / 2) / kTickNs;
      const int64_t interval = ticks - out_last_ticks_;
      if (interval < 0) {
        r.refused = "input_time_backwards";
        return r;
      }
      if (interval > m) {
        // Longer than the field holds: sent as the longest, and our clock follows the peer's.
        r.interval_clamped = true;
        out_origin_ns_ += (interval - m) * kTickNs;
        out_last_ticks_ += m;
        p.ticks = m;
        break;
      }
      out_last_ticks_ = ticks;
      p.ticks = static_cast<uint32_t>(interval);
      break;
    }
    case LegacyTime::since_stimulus: {
      const auto s = latest_at_or_before(in_times_, source_ns);
      if (!s) {
        r.refused = "input_before_any_stimulus";
        return r;
      }
      const int64_t delay = (source_ns - *s + kTickNs / 2) / kTickNs;
      if (delay > m) {
        r.refused = "input_too_long_after_stimulus";
        return r;
      }
      p.ticks = static_cast<uint32_t>(delay);
      break;
    }
  }
  remember(out_times_, deadline_ns);
  r.bytes = encode_legacy(p);
  return r;
}

}  // namespace ion::chip
