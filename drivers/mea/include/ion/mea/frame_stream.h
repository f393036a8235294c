#pragma once
// The live frame-stream format (docs/devices/mea.md, "Frame stream"), all little-endian:
//   stream header, once, 32 bytes: "IONM", u16 version = 1, u16 channels, f64 sample_rate_hz,
//                                  f64 uv_per_bit, f32 offset_bits (ADC value of 0 V), u32 0
//   chunk header, 16 bytes:        "IONC", u32 frames, u64 first_sample; then frames × channels
//                                  int16 samples, channels interleaved
//   stimulation (node -> acquisition), 24 bytes: "IONS", u32 electrode, u64 sample,
//                                  f32 amplitude_mv, u32 width_us (per phase, cathodic first)
//   refusal (node -> acquisition): "IONE", u32 length, UTF-8 reason; then the node closes
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ion/mea/signal_source.h"

namespace ion::mea {

inline constexpr size_t kStreamHeaderBytes = 32;
inline constexpr size_t kChunkHeaderBytes = 16;
inline constexpr size_t kStimBytes = 24;
inline constexpr uint16_t kFrameStreamVersion = 1;

struct StreamHeader {
  uint16_t version = kFrameStreamVersion;
  uint16_t channels = 0;
  double sample_rate_hz = 0;
  double uv_per_bit = 1.0;
  float offset_bits = 0;
};

struct ChunkHeader {
  uint32_t frames = 0;
  uint64_t first_sample = 0;
};

std::array<char, kStreamHeaderBytes> encode_stream_header(const StreamHeader& h);
// Empty string when valid, else what is wrong.
std::string decode_stream_header(const char* bytes, StreamHeader& out);
std::array<char, kChunkHeaderBytes> encode_chunk_header(const ChunkHeader& h);
std::string decode_chunk_header(const char* bytes, uint32_t max_frames, ChunkHeader& out);
std::array<char, kStimBytes> encode_stim(const StimCommand& s);
std::string decode_stim(const char* bytes, StimCommand& out);
std::vector<char> encode_error(const std::string& reason);

}  // namespace ion::mea
