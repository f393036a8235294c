#include "ion/linkem/zmtp.h"

#include <algorithm>

namespace ion::linkem {

namespace {
constexpr uint8_t kMore = 0x01;
constexpr uint8_t kLong = 0x02;
constexpr uint8_t kCommand = 0x04;
}  // namespace

bool ZmtpSplitter::feed(const char* data, size_t n, std::vector<ZmtpUnit>& out) {
  if (broken_) return false;
  if (!greeting_done_) {
    // Peers send the first 11 greeting bytes and wait for the other side's before sending the
    // rest (version negotiation), so greeting bytes are passed on as soon as they arrive.
    const size_t take = std::min(n, kGreetingBytes - greeting_seen_);
    for (size_t i = 0; i < take; ++i) {
      const auto b = static_cast<uint8_t>(data[i]);
      const size_t at = greeting_seen_ + i;
      // Signature: 0xFF, 8 padding bytes, 0x7F; then version major 3.
      if ((at == 0 && b != 0xFF) || (at == 9 && b != 0x7F) || (at == 10 && b != 3)) {
        broken_ = true;
        return false;
      }
    }
    out.push_back({ZmtpUnit::Kind::greeting, std::string(data, take)});
    greeting_seen_ += take;
    greeting_done_ = greeting_seen_ == kGreetingBytes;
    data += take;
    n -= take;
  }
  buf_.append(data, n);
  while (true) {
    const size_t avail = buf_.size() - pos_;
    if (avail < 2) break;
    const auto flags = static_cast<uint8_t>(buf_[pos_]);
    if ((flags & ~(kMore | kLong | kCommand)) != 0) {
      broken_ = true;
      return false;
    }
    size_t header = 2;
    uint64_t size = static_cast<uint8_t>(buf_[pos_ + 1]);
    if ((flags & kLong) != 0) {
      header = 9;
      if (avail < header) break;
      size = 0;
      for (size_t i = 0; i < 8; ++i) size = (size << 8) | static_cast<uint8_t>(buf_[pos_ + 1 + i]);
      if (size > (uint64_t{1} << 40)) {
        broken_ = true;
        return false;
      }
    }
    if (avail < header + size) break;
    const size_t frame_start = pos_;
    pos_ += header + size;
    if ((flags & kCommand) != 0) {
      out.push_back({ZmtpUnit::Kind::command, buf_.substr(frame_start, header + size)});
      continue;
    }
    if (message_start_ == SIZE_MAX) message_start_ = frame_start;
    if ((flags & kMore) == 0) {
      out.push_back({ZmtpUnit::Kind::message, buf_.substr(message_start_, pos_ - message_start_)});
      message_start_ = SIZE_MAX;
    }
  }
  // Compact what was consumed (keeping an unfinished multi-frame message).
  const size_t keep_from = message_start_ == SIZE_MAX ? pos_ : message_start_;
  if (keep_from > 0) {
    buf_.erase(0, keep_from);
    pos_ -= keep_from;
    if (message_start_ != SIZE_MAX) message_start_ = 0;
  }
  return true;
}

}  // namespace ion::linkem
