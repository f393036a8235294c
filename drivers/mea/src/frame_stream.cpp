#include "ion/mea/frame_stream.h"

#include <cmath>
#include <cstring>

namespace ion::mea {
namespace {

template <typename T>
void put(char*& p, T v) {
  std::memcpy(p, &v, sizeof v);  // host is little-endian (checked in sources.cpp)
  p += sizeof v;
}
template <typename T>
T get(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

}  // namespace

std::array<char, kStreamHeaderBytes> encode_stream_header(const StreamHeader& h) {
  std::array<char, kStreamHeaderBytes> b{};
  char* p = b.data();
  std::memcpy(p, "IONM", 4);
  p += 4;
  put(p, h.version);
  put(p, h.channels);
  put(p, h.sample_rate_hz);
  put(p, h.uv_per_bit);
  put(p, h.offset_bits);
  put(p, uint32_t{0});
  return b;
}

std::string decode_stream_header(const char* bytes, StreamHeader& h) {
  if (std::memcmp(bytes, "IONM", 4) != 0) return "stream header: bad magic (expected \"IONM\")";
  const char* p = bytes + 4;
  h.version = get<uint16_t>(p);
  h.channels = get<uint16_t>(p);
  h.sample_rate_hz = get<double>(p);
  h.uv_per_bit = get<double>(p);
  h.offset_bits = get<float>(p);
  if (h.version != kFrameStreamVersion) {
    return "stream header: version " + std::to_string(h.version) + ", this node speaks " +
           std::to_string(kFrameStreamVersion);
  }
  if (h.channels == 0) return "stream header: 0 channels";
  if (!(h.sample_rate_hz > 0 && h.sample_rate_hz <= 1e6)) return "stream header: sample rate out of range";
  if (!(h.uv_per_bit > 0 && std::isfinite(h.uv_per_bit))) return "stream header: uv_per_bit must be > 0";
  if (!std::isfinite(h.offset_bits)) return "stream header: offset is not finite";
  return {};
}

std::array<char, kChunkHeaderBytes> encode_chunk_header(const ChunkHeader& h) {
  std::array<char, kChunkHeaderBytes> b{};
  char* p = b.data();
  std::memcpy(p, "IONC", 4);
  p += 4;
  put(p, h.frames);
  put(p, h.first_sample);
  return b;
}

std::string decode_chunk_header(const char* bytes, uint32_t max_frames, ChunkHeader& h) {
  if (std::memcmp(bytes, "IONC", 4) != 0) return "chunk header: bad magic (expected \"IONC\")";
  const char* p = bytes + 4;
  h.frames = get<uint32_t>(p);
  h.first_sample = get<uint64_t>(p);
  if (h.frames == 0 || h.frames > max_frames) {
    return "chunk header: " + std::to_string(h.frames) + " frames (allowed 1.." +
           std::to_string(max_frames) + ")";
  }
  return {};
}

std::array<char, kStimBytes> encode_stim(const StimCommand& s) {
  std::array<char, kStimBytes> b{};
  char* p = b.data();
  std::memcpy(p, "IONS", 4);
  p += 4;
  put(p, s.electrode);
  put(p, s.sample);
  put(p, s.amplitude_mv);
  put(p, s.width_us);
  return b;
}

std::string decode_stim(const char* bytes, StimCommand& s) {
  if (std::memcmp(bytes, "IONS", 4) != 0) return "stimulation: bad magic (expected \"IONS\")";
  const char* p = bytes + 4;
  s.electrode = get<uint32_t>(p);
  s.sample = get<uint64_t>(p);
  s.amplitude_mv = get<float>(p);
  s.width_us = get<uint32_t>(p);
  return {};
}

std::vector<char> encode_error(const std::string& reason) {
  std::vector<char> b(8 + reason.size());
  std::memcpy(b.data(), "IONE", 4);
  const auto n = static_cast<uint32_t>(reason.size());
  std::memcpy(b.data() + 4, &n, 4);
  std::memcpy(b.data() + 8, reason.data(), reason.size());
  return b;
}

}  // namespace ion::mea
