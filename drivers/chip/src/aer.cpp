#include "ion/chip/aer.h"

#include <algorithm>
#include <cmath>

namespace ion::chip {
namespace {

constexpr std::array<uint8_t, 4> kMagic = {'I', 'O', 'A', 'E'};

void put16(std::vector<uint8_t>& o, uint16_t v) {
  o.push_back(static_cast<uint8_t>(v >> 8));
  o.push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t>& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<uint8_t>(v >> s));
}
uint16_t get16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

std::string_view to_string(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::none: return "none";
    case DecodeError::truncated: return "truncated";
    case DecodeError::oversized: return "oversized";
    case DecodeError::bad_magic: return "bad_magic";
    case DecodeError::bad_version: return "bad_version";
    case DecodeError::bad_synapse: return "bad_synapse";
    case DecodeError::count_: break;
  }
  return "?";
}

uint16_t weight_to_q8(float weight) noexcept {
  if (!(weight > 0)) return 0;  // also NaN
  return static_cast<uint16_t>(std::min(65535.0F, std::round(weight * 256.0F)));
}

size_t encode_aer(uint32_t sequence, std::span<const AerEvent> events, std::vector<uint8_t>& out) {
  const size_t n = std::min(events.size(), kAerMaxEvents);
  out.reserve(out.size() + kAerHeaderBytes + n * kAerEventBytes);
  out.insert(out.end(), kMagic.begin(), kMagic.end());
  out.push_back(kAerVersion);
  out.push_back(0);  // flags
  put16(out, static_cast<uint16_t>(n));
  put32(out, sequence);
  put32(out, 0);
  for (size_t i = 0; i < n; ++i) {
    const AerEvent& e = events[i];
    out.push_back(e.chip);
    out.push_back(e.core);
    put16(out, e.neuron);
    put32(out, e.timestamp_us);
    out.push_back(e.synapse);
    out.push_back(0);
    put16(out, weight_to_q8(e.weight));
  }
  return n;
}

DecodeError decode_aer(std::span<const uint8_t> b, AerDatagram& out) noexcept {
  out.events.clear();
  if (b.size() > kMaxDatagramBytes) return DecodeError::oversized;
  if (b.size() < kAerHeaderBytes) return DecodeError::truncated;
  if (!std::equal(kMagic.begin(), kMagic.end(), b.begin())) return DecodeError::bad_magic;
  if (b[4] != kAerVersion) return DecodeError::bad_version;
  const size_t count = get16(&b[6]);
  if (count > kAerMaxEvents) return DecodeError::oversized;
  const size_t expected = kAerHeaderBytes + count * kAerEventBytes;
  if (b.size() < expected) return DecodeError::truncated;
  if (b.size() > expected) return DecodeError::oversized;
  out.sequence = get32(&b[8]);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* p = &b[kAerHeaderBytes + i * kAerEventBytes];
    if (p[8] > 4) {
      out.events.clear();
      return DecodeError::bad_synapse;
    }
    out.events.push_back({p[0], p[1], get16(p + 2), get32(p + 4), p[8],
                          static_cast<float>(get16(p + 10)) / 256.0F});
  }
  return DecodeError::none;
}

std::array<uint8_t, kLegacyPacketBytes> encode_legacy(const LegacyPacket& p) noexcept {
  const uint32_t w0 = (uint32_t{p.code} << 24) | (p.id & kLegacyIdMask);
  const uint32_t w1 = (uint32_t{p.field} << 24) | (p.ticks & kLegacyIdMask);
  return {static_cast<uint8_t>(w0 >> 24), static_cast<uint8_t>(w0 >> 16),
          static_cast<uint8_t>(w0 >> 8),  static_cast<uint8_t>(w0),
          static_cast<uint8_t>(w1 >> 24), static_cast<uint8_t>(w1 >> 16),
          static_cast<uint8_t>(w1 >> 8),  static_cast<uint8_t>(w1)};
}

DecodeError decode_legacy(std::span<const uint8_t> b, LegacyPacket& out) noexcept {
  if (b.size() < kLegacyPacketBytes) return DecodeError::truncated;
  if (b.size() > kLegacyPacketBytes) return DecodeError::oversized;
  const uint32_t w0 = get32(b.data());
  const uint32_t w1 = get32(b.data() + 4);
  out = {static_cast<uint8_t>(w0 >> 24), w0 & kLegacyIdMask, static_cast<uint8_t>(w1 >> 24),
         w1 & kLegacyIdMask};
  return DecodeError::none;
}

SequenceTracker::Verdict SequenceTracker::observe(uint32_t sequence) noexcept {
  if (!started_) {
    started_ = true;
    next_ = sequence + 1;
    return Verdict::first;
  }
  const uint32_t ahead = sequence - next_;  // modulo 2^32
  if (ahead == 0) {
    ++next_;
    return Verdict::in_order;
  }
  if (ahead < (1U << 31)) {
    lost_ += ahead;
    next_ = sequence + 1;
    return Verdict::gap;
  }
  return Verdict::behind;
}

}  // namespace ion::chip
