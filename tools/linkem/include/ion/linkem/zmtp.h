#pragma once
// Splits a ZMTP 3.x byte stream into units the link emulator may treat separately: greeting bytes
// (passed on as they come), each command frame (READY, PING, PONG, ...) and each whole message (data frames up to
// the one without MORE). Only whole messages may be dropped, duplicated or reordered; commands
// and the greeting are only ever delayed, so the stream stays valid ZMTP.
// With CURVE, data travels inside MESSAGE commands, so only delay and bandwidth apply.
#include <cstdint>
#include <string>
#include <vector>

namespace ion::linkem {

struct ZmtpUnit {
  enum class Kind : uint8_t { greeting, command, message };
  Kind kind;
  std::string bytes;  // exactly as on the wire
};

class ZmtpSplitter {
 public:
  static constexpr size_t kGreetingBytes = 64;
  // Appends stream bytes; complete units are appended to `out`. Returns false if the stream is not
  // ZMTP (the caller then passes bytes through unparsed).
  bool feed(const char* data, size_t n, std::vector<ZmtpUnit>& out);
  [[nodiscard]] size_t buffered() const noexcept { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  bool greeting_done_ = false;
  size_t greeting_seen_ = 0;
  size_t message_start_ = SIZE_MAX;  // start of a multi-frame message in buf_
  bool broken_ = false;
};

}  // namespace ion::linkem
