#pragma once
// The IoN recording format (docs/record-format.md): append-only; the magic, then records, each
//   u32 length (LE) | u8 type | payload (length bytes) | u32 CRC32C (LE) of type and payload.
// The first record is the header; spike batches are stored as the wire's Envelope bytes after
// the local arrival time; status snapshots, markers and periodic index records are protobuf
// messages (proto/ion/v1/record.proto). A torn tail (a crash mid-write) fails its length or CRC
// check: readers stop there, everything before it intact; repair() cuts it off.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ion/v1/record.pb.h"

namespace ion::record {

inline constexpr char kMagic[8] = {'I', 'O', 'N', 'R', 'E', 'C', '1', '\n'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kMaxRecordBytes = 64u << 20;
inline constexpr size_t kFraming = 9;  // length, type, CRC

enum class RecordType : uint8_t { header = 1, batch = 2, status = 3, marker = 4, index = 5 };
[[nodiscard]] const char* to_string(RecordType t) noexcept;

// CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
[[nodiscard]] uint32_t crc32c(uint32_t crc, const void* data, size_t n) noexcept;

struct WriterOptions {
  int64_t index_interval_ns = 1'000'000'000;  // an index record per this much event time
  size_t buffer_bytes = 1u << 20;
};

class Writer {
 public:
  // Creates (truncates) the file and writes the magic and the header. Throws std::runtime_error
  // naming the file on failure.
  Writer(const std::string& path, const v1::RecordHeader& header, WriterOptions options = {});
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // A spike batch: the Envelope bytes as received, the local arrival time, its number of events
  // and its latest event time (for the index). False on a write error (counted).
  bool batch(int64_t arrival_ns, std::span<const uint8_t> envelope, uint64_t events,
             int64_t last_event_ns) noexcept;
  bool status(const v1::RecordStatus& s) noexcept;
  bool marker(const v1::RecordMarker& m) noexcept;
  // Hands buffered records to the kernel (a SIGKILL after this loses nothing written before).
  bool flush() noexcept;
  // flush() and fsync(): the records are on the disk.
  bool sync() noexcept;
  void close() noexcept;

  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] uint64_t batches() const noexcept { return batches_; }
  [[nodiscard]] uint64_t events() const noexcept { return events_; }
  [[nodiscard]] uint64_t write_errors() const noexcept { return write_errors_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  bool put(RecordType type, std::span<const uint8_t> a, std::span<const uint8_t> b = {}) noexcept;
  bool put_message(RecordType type, const google::protobuf::MessageLite& m) noexcept;
  bool maybe_index(int64_t event_ns) noexcept;

  std::string path_;
  WriterOptions opts_;
  std::FILE* f_ = nullptr;
  std::vector<char> buffer_;
  std::string scratch_;
  uint64_t bytes_ = 0;
  uint64_t batches_ = 0;
  uint64_t events_ = 0;
  uint64_t write_errors_ = 0;
  uint64_t last_index_offset_ = 0;
  int64_t next_index_ns_ = INT64_MIN;
  int64_t latest_event_ns_ = INT64_MIN;
};

struct Record {
  RecordType type = RecordType::header;
  uint64_t offset = 0;        // of the record's length field
  int64_t arrival_ns = 0;     // batch records: local arrival time
  std::span<const uint8_t> body;  // batch: the Envelope; others: the protobuf message
};

class Reader {
 public:
  // Opens a recording and reads its header. Throws std::runtime_error naming the file and the
  // reason (missing, not an IoN recording, unknown format version, no readable header).
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  [[nodiscard]] const v1::RecordHeader& header() const noexcept { return header_; }
  // The next record after the header; false at the end of the file or at a torn tail.
  bool next(Record& r);
  // Back to the first record after the header.
  void rewind();
  // Positions the reader so that next() returns every record holding events at or after t_ns:
  // at the last index record whose latest event time is before t_ns (or at the start). Walks the
  // record headers, reading only index payloads. False at a torn tail before such a point.
  bool seek_time(int64_t t_ns);

  [[nodiscard]] bool torn() const noexcept { return !tail_reason_.empty(); }
  [[nodiscard]] const std::string& tail_reason() const noexcept { return tail_reason_; }
  [[nodiscard]] uint64_t valid_bytes() const noexcept { return valid_bytes_; }  // up to the last good record
  [[nodiscard]] uint64_t file_bytes() const noexcept { return file_bytes_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  bool read_record(Record& r);
  std::string path_;
  std::FILE* f_ = nullptr;
  v1::RecordHeader header_;
  std::vector<uint8_t> buf_;
  uint64_t pos_ = 0;
  uint64_t first_record_ = 0;
  uint64_t valid_bytes_ = 0;
  uint64_t file_bytes_ = 0;
  std::string tail_reason_;
};

// Cuts a torn tail off a recording; returns the bytes removed (0 when the file is whole).
// Throws std::runtime_error when the file is not a readable recording.
uint64_t repair(const std::string& path);

}  // namespace ion::record
