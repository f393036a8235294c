#pragma once
// Encode and decode envelopes. Decoding validates sizes, counts, ids and time windows before
// anything is used; the data path never throws. A Codec reuses its message objects, so steady-state
// encode/decode of batches does not allocate. One Codec per thread.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "ion/core/event_batch.h"
#include "ion/core/reject.h"

namespace ion::v1 {
class Envelope;
class Hello;
class Welcome;
class Heartbeat;
class TimeRequest;
class TimeReply;
class SpikeBatch;
class Stimulus;
class Error;
class Goodbye;
class StatusRequest;
class StatusReply;
}  // namespace ion::v1

namespace ion {

inline constexpr uint32_t kProtocolVersion = 1;

// Envelope body kinds; values are the protobuf field numbers of the oneof.
enum class Body : uint8_t {
  none = 0,
  hello = 2,
  welcome = 3,
  heartbeat = 4,
  time_request = 5,
  time_reply = 6,
  spike_batch = 7,
  stimulus = 8,
  error = 9,
  goodbye = 10,
  status_request = 11,
  status_reply = 12,
};
[[nodiscard]] const char* to_string(Body body) noexcept;

struct CodecLimits {
  size_t max_message_bytes = 1 << 20;
  uint32_t max_events_per_batch = 65536;
};

// Checks applied to a decoded batch by whoever knows the sender.
struct BatchChecks {
  uint32_t channel_limit = UINT32_MAX;  // channel ids must be < this
  bool check_time_window = false;
  int64_t window_lo_ns = INT64_MIN;     // event times must lie in [lo, hi]
  int64_t window_hi_ns = INT64_MAX;
};

struct Decoded {
  Reject reject = Reject::none;  // none when the envelope is usable
  Body body = Body::none;
  uint32_t version = 0;          // as sent, for version-mismatch messages
  [[nodiscard]] bool ok() const noexcept { return reject == Reject::none; }
};

class Codec {
 public:
  explicit Codec(CodecLimits limits = {});
  ~Codec();
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  [[nodiscard]] const CodecLimits& limits() const noexcept { return limits_; }

  // --- Encoding: replaces `out`. Returns false only if the frame would exceed
  // max_message_bytes or the batch is invalid (columns of different lengths, or two consecutive
  // times further apart than int64 can hold).
  [[nodiscard]] bool encode_batch(const BatchHeader& header, const EventBatch& events,
                                  std::string& out) noexcept;
  // A batch frame as it came from its source, re-addressed: the source's body bytes unchanged
  // (no re-encoding) followed by the routing header of `header` (which overrides any routing
  // field the sender set). For a batch routed whole, with ports equal to channels. False if the
  // frame is not a batch envelope or the result would exceed max_message_bytes.
  [[nodiscard]] bool reroute_batch(std::span<const uint8_t> frame, const BatchHeader& header,
                                   std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::Hello& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::Welcome& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::Heartbeat& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::TimeRequest& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::TimeReply& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::Stimulus& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::Error& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::Goodbye& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::StatusRequest& m, std::string& out) noexcept;
  [[nodiscard]] bool encode(const v1::StatusReply& m, std::string& out) noexcept;

  // --- Decoding: parses the envelope; on success the body is available through the accessor
  // matching Decoded::body until the next decode().
  [[nodiscard]] Decoded decode(std::span<const uint8_t> frame) noexcept;

  // Converts the last decoded spike batch into native form and validates it.
  [[nodiscard]] Reject take_batch(const BatchChecks& checks, BatchHeader& header,
                                  EventBatch& events) noexcept;

  [[nodiscard]] const v1::Hello& hello() const noexcept;
  [[nodiscard]] const v1::Welcome& welcome() const noexcept;
  [[nodiscard]] const v1::Heartbeat& heartbeat() const noexcept;
  [[nodiscard]] const v1::TimeRequest& time_request() const noexcept;
  [[nodiscard]] const v1::TimeReply& time_reply() const noexcept;
  [[nodiscard]] const v1::SpikeBatch& spike_batch() const noexcept;
  [[nodiscard]] const v1::Stimulus& stimulus() const noexcept;
  [[nodiscard]] const v1::Error& error() const noexcept;
  [[nodiscard]] const v1::Goodbye& goodbye() const noexcept;
  [[nodiscard]] const v1::StatusRequest& status_request() const noexcept;
  [[nodiscard]] const v1::StatusReply& status_reply() const noexcept;

 private:
  struct Messages;
  CodecLimits limits_;
  std::unique_ptr<Messages> m_;
};

// The envelope's body kind from its top-level tags, without parsing the body (Body::none if the
// frame is not a well-formed envelope). Lets the broker answer clock probes before routing work.
[[nodiscard]] Body peek_body(std::span<const uint8_t> frame) noexcept;

// A frame holding an Error envelope, for replies built outside a Codec.
[[nodiscard]] std::string make_error_frame(int code, std::string_view message);

}  // namespace ion
