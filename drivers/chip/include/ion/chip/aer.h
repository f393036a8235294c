#pragma once
// Address events over UDP, two wire formats (docs/devices/chip.md, "UDP address events"):
//
// IoN AER datagram, big-endian, one datagram ≤ 1472 bytes (one Ethernet MTU):
//   header (16 B): magic "IOAE" · version u8 (1) · flags u8 (0) · count u16 · sequence u32
//                  (per sender, +1 per datagram, wraps) · reserved u32 (0)
//   count × event (12 B): chip u8 · core u8 · neuron u16 · timestamp u32 (device µs, wraps
//                  every 71.6 min) · synapse u8 (0 = output spike, 1..4 = input synapse type + 1)
//                  · reserved u8 · weight u16 (unsigned 8.8 fixed point, 0..255.996)
//
// Legacy 8-byte packet of the 2017 Southampton hub, big-endian, one per datagram:
//   word 0: sender code u8 · neuron id u24
//   word 1: field u8 (inbound to the hub: event type 0 PSP, 1 stimulated spike, 2 spontaneous
//           spike; outbound from the hub: synaptic weight 0..255) · timestamp u24 (50 µs ticks,
//           wraps every 838.9 s)
//
// Decoders never trust a length: every refusal has a reason, which the caller counts.
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ion::chip {

inline constexpr size_t kAerHeaderBytes = 16;
inline constexpr size_t kAerEventBytes = 12;
inline constexpr size_t kMaxDatagramBytes = 1472;
inline constexpr size_t kAerMaxEvents = (kMaxDatagramBytes - kAerHeaderBytes) / kAerEventBytes;  // 121
inline constexpr uint8_t kAerVersion = 1;
inline constexpr size_t kLegacyPacketBytes = 8;
inline constexpr double kLegacyTickHz = 20000;  // 50 µs
inline constexpr uint32_t kLegacyIdMask = 0xFFFFFF;

struct AerEvent {
  uint8_t chip = 0;
  uint8_t core = 0;
  uint16_t neuron = 0;
  uint32_t timestamp_us = 0;
  uint8_t synapse = 0;  // 0: output spike; 1..4: input on SynapseType (synapse − 1)
  float weight = 0;     // 8.8 fixed point on the wire
  friend bool operator==(const AerEvent&, const AerEvent&) = default;
};

struct AerDatagram {
  uint32_t sequence = 0;
  std::vector<AerEvent> events;
};

enum class DecodeError : uint8_t {
  none = 0,
  truncated,    // shorter than its header says
  oversized,    // longer than its header says, or beyond one MTU, or more than kAerMaxEvents
  bad_magic,
  bad_version,
  bad_synapse,  // synapse field above 4
  count_
};
[[nodiscard]] std::string_view to_string(DecodeError e) noexcept;

// Appends the datagram's bytes to `out`. At most kAerMaxEvents events (the rest are not written;
// returns how many were).
size_t encode_aer(uint32_t sequence, std::span<const AerEvent> events, std::vector<uint8_t>& out);
DecodeError decode_aer(std::span<const uint8_t> bytes, AerDatagram& out) noexcept;
// 8.8 fixed point, rounded and clamped to 0..65535/256.
[[nodiscard]] uint16_t weight_to_q8(float weight) noexcept;

struct LegacyPacket {
  uint8_t code = 0;       // sender code
  uint32_t id = 0;        // 24 bits
  uint8_t field = 0;      // event type (inbound) or weight (outbound)
  uint32_t ticks = 0;     // 24 bits, 50 µs
  friend bool operator==(const LegacyPacket&, const LegacyPacket&) = default;
};
enum class LegacyType : uint8_t { psp = 0, stimulated_spike = 1, spontaneous_spike = 2 };

// Fields wider than 24 bits are masked (ids and timestamps wrap, as the original did).
[[nodiscard]] std::array<uint8_t, kLegacyPacketBytes> encode_legacy(const LegacyPacket& p) noexcept;
DecodeError decode_legacy(std::span<const uint8_t> bytes, LegacyPacket& out) noexcept;

// Per-sender datagram sequence: in order, a gap (datagrams lost), or behind (duplicate or
// reordered; the caller drops it).
class SequenceTracker {
 public:
  enum class Verdict : uint8_t { first, in_order, gap, behind };
  Verdict observe(uint32_t sequence) noexcept;
  [[nodiscard]] uint64_t lost() const noexcept { return lost_; }

 private:
  bool started_ = false;
  uint32_t next_ = 0;
  uint64_t lost_ = 0;
};

}  // namespace ion::chip
