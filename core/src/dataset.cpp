#include "ion/core/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <tuple>

#include "ion/core/codec.h"

namespace ion {

std::string SourceData::channel_name(uint32_t id) const {
  for (const auto& c : desc.channel_info()) {
    if (c.id() == id && !c.name().empty()) return c.name();
  }
  return std::to_string(id);
}

void SourceData::sort_by_time() {
  if (std::is_sorted(times_ns.begin(), times_ns.end())) return;
  std::vector<size_t> order(times_ns.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return times_ns[a] < times_ns[b]; });
  auto permute = [&](auto& v) {
    if (v.empty()) return;
    auto copy = v;
    for (size_t i = 0; i < order.size(); ++i) v[i] = copy[order[i]];
  };
  permute(channels);
  permute(times_ns);
  permute(payload);
}

Dataset load_recording(const std::string& path, LoadStats* stats, const std::string& only_source) {
  record::Reader rd(path);
  Dataset d;
  d.header = rd.header();
  Codec codec({.max_message_bytes = record::kMaxRecordBytes, .max_events_per_batch = 1u << 22});
  std::map<std::tuple<std::string, uint32_t, uint8_t>, size_t> index;
  LoadStats st;
  BatchHeader h;
  EventBatch ev;
  record::Record r;
  // Channel names and positions of sources that joined after the header was written come in the
  // status records (the recorder asks for them once per join).
  std::map<std::string, std::vector<v1::ChannelInfo>> late_channels;
  while (rd.next(r)) {
    if (r.type == record::RecordType::status) {
      v1::RecordStatus rs;
      if (!rs.ParseFromArray(r.body.data(), static_cast<int>(r.body.size()))) continue;
      for (const auto& n : rs.status().nodes()) {
        if (n.channel_info_size() > 0 && !late_channels.contains(n.name())) {
          late_channels[n.name()].assign(n.channel_info().begin(), n.channel_info().end());
        }
      }
      continue;
    }
    if (r.type != record::RecordType::batch) continue;
    const Decoded dec = codec.decode(r.body);
    if (!dec.ok() || dec.body != Body::spike_batch || codec.take_batch({}, h, ev) != Reject::none) {
      ++st.bad_batches;
      continue;
    }
    if (!only_source.empty() && h.source_node != only_source) continue;
    ++st.batches;
    st.events += ev.size();
    const auto key = std::make_tuple(h.source_node, ev.stream, static_cast<uint8_t>(ev.kind));
    auto it = index.find(key);
    if (it == index.end()) {
      SourceData s;
      s.stream = ev.stream;
      s.kind = ev.kind;
      bool described = false;
      for (const auto& x : d.header.sources()) {
        if (x.name() == h.source_node) {
          s.desc = x;
          described = true;
        }
      }
      if (!described) s.desc.set_name(h.source_node);
      it = index.emplace(key, d.sources.size()).first;
      d.sources.push_back(std::move(s));
    }
    SourceData& s = d.sources[it->second];
    const bool had_payload = !s.payload.empty() || s.times_ns.empty();
    s.channels.insert(s.channels.end(), ev.channels.begin(), ev.channels.end());
    s.times_ns.insert(s.times_ns.end(), ev.times_ns.begin(), ev.times_ns.end());
    if (ev.has_payload() && had_payload) {
      s.payload.insert(s.payload.end(), ev.payload.begin(), ev.payload.end());
    } else if (!s.payload.empty() || ev.has_payload()) {
      s.payload.clear();  // mixed: some batches without values; keep none rather than misalign
    }
  }
  for (auto& s : d.sources) {
    const auto late = late_channels.find(s.desc.name());
    if (s.desc.channel_info_size() == 0 && late != late_channels.end()) {
      for (const auto& c : late->second) *s.desc.add_channel_info() = c;
    }
    uint32_t top = s.desc.channels();
    for (uint32_t c : s.channels) top = std::max(top, c + 1);
    s.desc.set_channels(top);
    s.sort_by_time();
  }
  st.torn = rd.torn();
  st.tail_reason = rd.tail_reason();
  if (stats != nullptr) *stats = st;
  return d;
}

void write_recording(const std::string& path, const Dataset& data, size_t batch_events) {
  record::Writer w(path, data.header);
  Codec codec({.max_message_bytes = record::kMaxRecordBytes, .max_events_per_batch = 1u << 22});
  std::string frame;
  // Merge sources by time: each step takes the source whose next event is earliest.
  std::vector<size_t> next(data.sources.size(), 0);
  std::vector<uint64_t> sequence(data.sources.size(), 0);
  using Item = std::pair<int64_t, size_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  for (size_t s = 0; s < data.sources.size(); ++s) {
    if (data.sources[s].size() > 0) heap.push({data.sources[s].times_ns[0], s});
  }
  EventBatch b;
  while (!heap.empty()) {
    const size_t s = heap.top().second;
    heap.pop();
    const SourceData& src = data.sources[s];
    const size_t from = next[s];
    const size_t to = std::min(src.size(), from + batch_events);
    b.clear();
    b.stream = src.stream;
    b.kind = src.kind;
    for (size_t i = from; i < to; ++i) {
      if (src.payload.empty()) {
        b.push(src.channels[i], src.times_ns[i]);
      } else {
        b.push(src.channels[i], src.times_ns[i], src.payload[i]);
      }
    }
    BatchHeader h;
    h.epoch = data.header.session_id();
    h.sequence = sequence[s]++;
    h.first_index = from;
    h.source_node_id = static_cast<uint32_t>(s);
    h.source_node = src.desc.name();
    h.complete = true;
    if (!codec.encode_batch(h, b, frame)) {
      throw std::runtime_error("cannot encode a batch of " + src.desc.name() + " for " + path);
    }
    if (!w.batch(b.times_ns.back(), {reinterpret_cast<const uint8_t*>(frame.data()), frame.size()},
                 b.size(), b.times_ns.back())) {
      throw std::runtime_error("cannot write " + path);
    }
    next[s] = to;
    if (to < src.size()) heap.push({src.times_ns[to], s});
  }
  v1::RecordMarker end;
  end.set_kind(v1::RecordMarker::RECORDING_STOPPED);
  (void)w.marker(end);
  w.close();
  if (w.write_errors() > 0) throw std::runtime_error("write errors on " + path);
}

bool parse_seconds_ns(std::string_view t, int64_t& ns) noexcept {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.remove_suffix(1);
  bool neg = false;
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) {
    neg = t.front() == '-';
    t.remove_prefix(1);
  }
  const size_t dot = t.find('.');
  const std::string_view whole = t.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : t.substr(dot + 1);
  if (whole.empty() && frac.empty()) return false;
  int64_t s = 0;
  if (!whole.empty()) {
    const auto r = std::from_chars(whole.data(), whole.data() + whole.size(), s);
    if (r.ec != std::errc() || r.ptr != whole.data() + whole.size() || s > 9'000'000'000) return false;
  }
  int64_t f = 0;
  int digits = 0;
  for (const char c : frac) {
    if (c < '0' || c > '9') return false;
    if (digits < 9) {
      f = f * 10 + (c - '0');
      ++digits;
    } else if (c != '0') {
      return false;  // finer than a nanosecond: not representable exactly
    }
  }
  for (; digits < 9; ++digits) f *= 10;
  ns = s * 1'000'000'000 + f;
  if (neg) ns = -ns;
  return true;
}

std::string format_seconds(int64_t ns) {
  const bool neg = ns < 0;
  const uint64_t a = neg ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  std::string frac = std::to_string(a % 1'000'000'000ULL);
  frac.insert(0, 9 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string out = (neg ? "-" : "") + std::to_string(a / 1'000'000'000ULL);
  if (!frac.empty()) out += "." + frac;
  return out;
}

std::vector<int64_t> seconds_to_ns_on_grid(const std::vector<double>& seconds, double& rate_hz) {
  static constexpr double kRates[] = {1000,  2000,  5000,  10000, 12500, 15000, 20000,
                                      24000, 25000, 30000, 40000, 48000, 50000, 100000};
  auto on_grid = [&](double fs) {
    for (double t : seconds) {
      const double k = t * fs;
      if (std::fabs(k - std::nearbyint(k)) > 1e-6) return false;  // float64 keeps ~1e-8 ticks here
    }
    return true;
  };
  double found = 0;
  if (rate_hz > 0) {
    if (on_grid(rate_hz)) found = rate_hz;
  } else {
    for (double fs : kRates) {
      if (on_grid(fs)) {
        found = fs;
        break;
      }
    }
  }
  rate_hz = found;
  std::vector<int64_t> ns(seconds.size());
  const double step = found > 0 ? 1e9 / found : 0;
  const bool integer_step = found > 0 && std::fabs(step - std::nearbyint(step)) < 1e-9;
  for (size_t i = 0; i < seconds.size(); ++i) {
    if (found > 0) {
      const auto tick = static_cast<int64_t>(std::llround(seconds[i] * found));
      ns[i] = integer_step ? tick * static_cast<int64_t>(std::llround(step))
                           : static_cast<int64_t>(std::llround(static_cast<double>(tick) * step));
    } else {
      ns[i] = static_cast<int64_t>(std::llround(seconds[i] * 1e9));
    }
  }
  return ns;
}

}  // namespace ion
