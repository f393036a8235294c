#include "ion/core/record.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace ion::record {
namespace {

std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t crc_table(uint32_t crc, const uint8_t* p, size_t n) noexcept {
  static const std::array<uint32_t, 256> table = make_table();
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFFU] ^ (crc >> 8);
  return crc;
}

__attribute__((target("sse4.2"))) uint32_t crc_sse42(uint32_t crc, const uint8_t* p,
                                                     size_t n) noexcept {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = __builtin_ia32_crc32qi(c32, *p++);
    --n;
  }
  return c32;
}

void put_u32(uint8_t* p, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) noexcept {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

uint32_t crc32c(uint32_t crc, const void* data, size_t n) noexcept {
  static const bool hw = __builtin_cpu_supports("sse4.2");
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  crc = hw ? crc_sse42(crc, p, n) : crc_table(crc, p, n);
  return ~crc;
}

const char* to_string(RecordType t) noexcept {
  switch (t) {
    case RecordType::header: return "header";
    case RecordType::batch: return "batch";
    case RecordType::status: return "status";
    case RecordType::marker: return "marker";
    case RecordType::index: return "index";
  }
  return "unknown";
}

// --- Writer -------------------------------------------------------------------------------------

Writer::Writer(const std::string& path, const v1::RecordHeader& header, WriterOptions options)
    : path_(path), opts_(options) {
  f_ = std::fopen(path.c_str(), "wb");
  if (f_ == nullptr) {
    throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  }
  buffer_.resize(opts_.buffer_bytes);
  std::setvbuf(f_, buffer_.data(), _IOFBF, buffer_.size());
  v1::RecordHeader h = header;
  h.set_format_version(kFormatVersion);
  if (std::fwrite(kMagic, 1, sizeof kMagic, f_) != sizeof kMagic || !put_message(RecordType::header, h) ||
      !flush()) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
  bytes_ += sizeof kMagic;
}

Writer::~Writer() { close(); }

bool Writer::put(RecordType type, std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept {
  if (f_ == nullptr) return false;
  const size_t len = a.size() + b.size();
  if (len > kMaxRecordBytes) {
    ++write_errors_;
    return false;
  }
  uint8_t head[5];
  put_u32(head, static_cast<uint32_t>(len));
  head[4] = static_cast<uint8_t>(type);
  uint32_t crc = crc32c(0, &head[4], 1);
  crc = crc32c(crc, a.data(), a.size());
  crc = crc32c(crc, b.data(), b.size());
  uint8_t tail[4];
  put_u32(tail, crc);
  // (An empty span may have no data pointer, which fwrite must not be given.)
  const auto write = [&](std::span<const uint8_t> x) { return x.empty() || std::fwrite(x.data(), 1, x.size(), f_) == x.size(); };
  const bool ok = std::fwrite(head, 1, 5, f_) == 5 && write(a) && write(b) && std::fwrite(tail, 1, 4, f_) == 4;
  if (!ok) {
    ++write_errors_;
    return false;
  }
  bytes_ += kFraming + len;
  return true;
}

bool Writer::put_message(RecordType type, const google::protobuf::MessageLite& m) noexcept {
  scratch_.clear();
  if (!m.AppendToString(&scratch_)) {
    ++write_errors_;
    return false;
  }
  return put(type, {reinterpret_cast<const uint8_t*>(scratch_.data()), scratch_.size()});
}

bool Writer::maybe_index(int64_t event_ns) noexcept {
  latest_event_ns_ = std::max(latest_event_ns_, event_ns);
  if (next_index_ns_ == INT64_MIN) next_index_ns_ = event_ns + opts_.index_interval_ns;
  if (latest_event_ns_ < next_index_ns_) return true;
  next_index_ns_ = latest_event_ns_ + opts_.index_interval_ns;
  v1::RecordIndex ix;
  ix.set_network_ns(latest_event_ns_);
  ix.set_previous_index_offset(last_index_offset_);
  ix.set_batches(batches_);
  ix.set_events(events_);
  last_index_offset_ = bytes_;
  return put_message(RecordType::index, ix);
}

bool Writer::batch(int64_t arrival_ns, std::span<const uint8_t> envelope, uint64_t events,
                   int64_t last_event_ns) noexcept {
  uint8_t arrival[8];
  for (int i = 0; i < 8; ++i) arrival[i] = static_cast<uint8_t>(static_cast<uint64_t>(arrival_ns) >> (8 * i));
  if (!put(RecordType::batch, {arrival, 8}, envelope)) return false;
  ++batches_;
  events_ += events;
  return events == 0 || maybe_index(last_event_ns);
}

bool Writer::status(const v1::RecordStatus& s) noexcept { return put_message(RecordType::status, s); }
bool Writer::marker(const v1::RecordMarker& m) noexcept { return put_message(RecordType::marker, m); }

bool Writer::flush() noexcept {
  if (f_ == nullptr) return false;
  if (std::fflush(f_) != 0) {
    ++write_errors_;
    return false;
  }
  return true;
}

bool Writer::sync() noexcept { return flush() && ::fsync(::fileno(f_)) == 0; }

void Writer::close() noexcept {
  if (f_ == nullptr) return;
  (void)sync();
  std::fclose(f_);
  f_ = nullptr;
}

// --- Reader -------------------------------------------------------------------------------------

Reader::Reader(const std::string& path) : path_(path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw std::runtime_error(path + " is a folder, not an IoN recording");
  }
  f_ = std::fopen(path.c_str(), "rb");
  if (f_ == nullptr) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::fseek(f_, 0, SEEK_END);
  file_bytes_ = static_cast<uint64_t>(std::ftell(f_));
  std::fseek(f_, 0, SEEK_SET);
  char magic[sizeof kMagic];
  if (std::fread(magic, 1, sizeof magic, f_) != sizeof magic || std::memcmp(magic, kMagic, sizeof magic) != 0) {
    std::fclose(f_);
    f_ = nullptr;
    throw std::runtime_error(path + " is not an IoN recording (no IONREC1 magic)");
  }
  pos_ = sizeof kMagic;
  valid_bytes_ = pos_;
  Record r;
  if (!read_record(r) || r.type != RecordType::header ||
      !header_.ParseFromArray(r.body.data(), static_cast<int>(r.body.size()))) {
    const std::string why = tail_reason_.empty() ? "the first record is not a header" : tail_reason_;
    std::fclose(f_);
    f_ = nullptr;
    throw std::runtime_error(path + ": no readable header (" + why + ")");
  }
  if (header_.format_version() != kFormatVersion) {
    std::fclose(f_);
    f_ = nullptr;
    throw std::runtime_error(path + ": format version " + std::to_string(header_.format_version()) +
                             ", this reader knows " + std::to_string(kFormatVersion));
  }
  first_record_ = pos_;
}

Reader::~Reader() {
  if (f_ != nullptr) std::fclose(f_);
}

void Reader::rewind() {
  pos_ = first_record_;
  tail_reason_.clear();
  std::fseek(f_, static_cast<long>(pos_), SEEK_SET);
}

bool Reader::read_record(Record& r) {
  if (pos_ == file_bytes_) return false;  // clean end
  uint8_t head[5];
  if (std::fread(head, 1, 5, f_) != 5) {
    tail_reason_ = "truncated record header at byte " + std::to_string(pos_);
    return false;
  }
  const uint32_t len = get_u32(head);
  const uint8_t type = head[4];
  if (len > kMaxRecordBytes || pos_ + kFraming + len > file_bytes_) {
    tail_reason_ = (len > kMaxRecordBytes ? "impossible record length " : "truncated record of length ") +
                   std::to_string(len) + " at byte " + std::to_string(pos_);
    return false;
  }
  buf_.resize(len + 4);
  if (std::fread(buf_.data(), 1, len + 4, f_) != len + 4) {
    tail_reason_ = "short read at byte " + std::to_string(pos_);
    return false;
  }
  uint32_t crc = crc32c(0, &type, 1);
  crc = crc32c(crc, buf_.data(), len);
  if (crc != get_u32(buf_.data() + len)) {
    tail_reason_ = "CRC mismatch in the record at byte " + std::to_string(pos_);
    return false;
  }
  if (type < 1 || type > 5) {
    tail_reason_ = "unknown record type " + std::to_string(type) + " at byte " + std::to_string(pos_);
    return false;
  }
  r.type = static_cast<RecordType>(type);
  r.offset = pos_;
  r.arrival_ns = 0;
  r.body = {buf_.data(), len};
  if (r.type == RecordType::batch) {
    if (len < 8) {
      tail_reason_ = "batch record too short at byte " + std::to_string(pos_);
      return false;
    }
    uint64_t a = 0;
    for (int i = 0; i < 8; ++i) a |= static_cast<uint64_t>(buf_[static_cast<size_t>(i)]) << (8 * i);
    r.arrival_ns = static_cast<int64_t>(a);
    r.body = {buf_.data() + 8, len - 8};
  }
  pos_ += kFraming + len;
  valid_bytes_ = std::max(valid_bytes_, pos_);
  return true;
}

bool Reader::seek_time(int64_t t_ns) {
  rewind();
  uint64_t best = first_record_;
  while (pos_ < file_bytes_) {
    uint8_t head[5];
    if (std::fread(head, 1, 5, f_) != 5) break;
    const uint32_t len = get_u32(head);
    if (len > kMaxRecordBytes || pos_ + kFraming + len > file_bytes_) break;
    if (head[4] == static_cast<uint8_t>(RecordType::index)) {
      buf_.resize(len);
      if (std::fread(buf_.data(), 1, len, f_) != len) break;
      v1::RecordIndex ix;
      if (ix.ParseFromArray(buf_.data(), static_cast<int>(len))) {
        if (ix.network_ns() >= t_ns) break;
        best = pos_;  // everything before this record is older than t_ns
      }
      std::fseek(f_, 4, SEEK_CUR);
    } else {
      std::fseek(f_, static_cast<long>(len) + 4, SEEK_CUR);
    }
    pos_ += kFraming + len;
  }
  pos_ = best;
  tail_reason_.clear();
  return std::fseek(f_, static_cast<long>(pos_), SEEK_SET) == 0;
}

bool Reader::next(Record& r) {
  if (!tail_reason_.empty()) return false;
  return read_record(r);
}

uint64_t repair(const std::string& path) {
  uint64_t keep = 0;
  uint64_t size = 0;
  {
    Reader rd(path);
    Record r;
    while (rd.next(r)) {
    }
    keep = rd.valid_bytes();
    size = rd.file_bytes();
  }
  if (keep == size) return 0;
  if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
    throw std::runtime_error("cannot truncate " + path + ": " + std::strerror(errno));
  }
  return size - keep;
}

}  // namespace ion::record
