#include "ion/core/codec.h"

#include <cmath>
#include <cstring>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "ion/v1/ion.pb.h"

namespace ion {

namespace {

// libprotobuf writes an unthrottled stderr line for each string field with invalid UTF-8, so a
// hostile peer could flood the log. Such frames are already refused and counted as malformed;
// protobuf's own messages go to spdlog at debug level (fatal ones stay loud).
void protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                  const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    spdlog::critical("protobuf {}:{}: {}", file, line, message);
  } else {
    spdlog::debug("protobuf {}:{}: {}", file, line, message);
  }
}

void install_protobuf_log_handler() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&protobuf_log); });
}

// Top-level envelope fields are written and read by hand so that a batch body can be parsed into
// a reused SpikeBatch object (a protobuf oneof frees its member on Clear()). The bytes are plain
// protobuf: any protobuf library decodes them as ion.v1.Envelope.
constexpr uint8_t kWireVarint = 0;
constexpr uint8_t kWireFixed64 = 1;
constexpr uint8_t kWireLen = 2;
constexpr uint8_t kWireFixed32 = 5;

size_t put_varint(uint8_t* p, uint64_t v) noexcept {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  p[n++] = static_cast<uint8_t>(v);
  return n;
}

bool get_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) noexcept {
  v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// The envelope's top-level fields, read without parsing the body.
struct EnvelopeScan {
  bool well_formed = false;
  uint32_t version = 0;
  Body body = Body::none;  // a oneof: the last body field wins, as in protobuf
  const uint8_t* body_ptr = nullptr;
  size_t body_len = 0;
  bool saw_unknown = false;  // a length-delimited field outside the known bodies
};

EnvelopeScan scan_envelope(std::span<const uint8_t> frame) noexcept {
  EnvelopeScan r;
  const uint8_t* p = frame.data();
  const uint8_t* const end = p + frame.size();
  while (p < end) {
    uint64_t tag = 0;
    if (!get_varint(p, end, tag)) return r;
    const uint64_t field = tag >> 3;
    const auto wire = static_cast<uint8_t>(tag & 7);
    if (field == 0) return r;
    uint64_t v = 0;
    switch (wire) {
      case kWireVarint:
        if (!get_varint(p, end, v)) return r;
        if (field == 1) r.version = static_cast<uint32_t>(v);
        break;
      case kWireFixed64:
      case kWireFixed32: {
        const size_t width = wire == kWireFixed64 ? 8 : 4;
        if (static_cast<size_t>(end - p) < width) return r;
        p += width;
        break;
      }
      case kWireLen:
        if (!get_varint(p, end, v) || v > static_cast<uint64_t>(end - p)) return r;
        if (field >= static_cast<uint64_t>(Body::hello) &&
            field <= static_cast<uint64_t>(Body::status_reply)) {
          r.body = static_cast<Body>(field);
          r.body_ptr = p;
          r.body_len = static_cast<size_t>(v);
        } else {
          r.saw_unknown = true;
        }
        p += v;
        break;
      default:  // groups (3, 4) and reserved wire types are not part of this schema
        return r;
    }
  }
  r.well_formed = true;
  return r;
}

// The envelope's fields ahead of a body of `body_len` bytes (version, body tag and length).
struct EnvelopeHead {
  uint8_t bytes[1 + 10 + 1 + 10];
  size_t size = 0;
  EnvelopeHead(Body body, size_t body_len) noexcept {
    bytes[size++] = (1 << 3) | kWireVarint;
    size += put_varint(bytes + size, kProtocolVersion);
    bytes[size++] = static_cast<uint8_t>((static_cast<uint8_t>(body) << 3) | kWireLen);
    size += put_varint(bytes + size, body_len);
  }
};

bool encode_body(Body body, const google::protobuf::MessageLite& m, size_t max_bytes,
                 std::string& out) noexcept {
  const size_t body_len = m.ByteSizeLong();
  const EnvelopeHead head(body, body_len);
  const size_t h = head.size;
  if (h + body_len > max_bytes) return false;
  out.resize(h + body_len);
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(dst, head.bytes, h);
  m.SerializeWithCachedSizesToArray(dst + h);
  return true;
}

// The routing header the broker puts on the copy it delivers (fields 16 and up).
void set_routing(v1::SpikeBatch& b, const BatchHeader& header) {
  b.set_source_node_id(header.source_node_id);
  b.set_source_node(header.source_node);
  b.set_broker_epoch(header.broker_epoch);
  b.set_link_sequence(header.link_sequence);
  b.set_delay_ns(header.delay_ns);
  b.set_complete(header.complete);
  b.set_late_policy(static_cast<v1::LatePolicy>(header.late_policy));
  b.set_broker_time_ns(header.broker_time_ns);
}

bool valid_kind(int k) noexcept { return k >= 0 && k < kEventKindCount; }

}  // namespace

const char* to_string(EventKind kind) noexcept {
  switch (kind) {
    case EventKind::spike: return "spike";
    case EventKind::synaptic_input: return "synaptic_input";
    case EventKind::stimulation: return "stimulation";
    case EventKind::neuromodulator: return "neuromodulator";
  }
  return "unknown";
}

const char* to_string(Body body) noexcept {
  switch (body) {
    case Body::none: return "none";
    case Body::hello: return "hello";
    case Body::welcome: return "welcome";
    case Body::heartbeat: return "heartbeat";
    case Body::time_request: return "time_request";
    case Body::time_reply: return "time_reply";
    case Body::spike_batch: return "spike_batch";
    case Body::stimulus: return "stimulus";
    case Body::error: return "error";
    case Body::goodbye: return "goodbye";
    case Body::status_request: return "status_request";
    case Body::status_reply: return "status_reply";
  }
  return "unknown";
}

struct Codec::Messages {
  v1::Hello hello;
  v1::Welcome welcome;
  v1::Heartbeat heartbeat;
  v1::TimeRequest time_request;
  v1::TimeReply time_reply;
  v1::SpikeBatch batch;
  v1::Stimulus stimulus;
  v1::Error error;
  v1::Goodbye goodbye;
  v1::StatusRequest status_request;
  v1::StatusReply status_reply;
  v1::SpikeBatch encode_batch;  // scratch for encoding, kept apart from the decoded one

  google::protobuf::MessageLite* by_body(Body b) noexcept {
    switch (b) {
      case Body::hello: return &hello;
      case Body::welcome: return &welcome;
      case Body::heartbeat: return &heartbeat;
      case Body::time_request: return &time_request;
      case Body::time_reply: return &time_reply;
      case Body::spike_batch: return &batch;
      case Body::stimulus: return &stimulus;
      case Body::error: return &error;
      case Body::goodbye: return &goodbye;
      case Body::status_request: return &status_request;
      case Body::status_reply: return &status_reply;
      case Body::none: return nullptr;
    }
    return nullptr;
  }
};

Codec::Codec(CodecLimits limits) : limits_(limits), m_(std::make_unique<Messages>()) {
  install_protobuf_log_handler();
}
Codec::~Codec() = default;

bool Codec::encode_batch(const BatchHeader& header, const EventBatch& events,
                         std::string& out) noexcept {
  const size_t n = events.channels.size();
  if (events.times_ns.size() != n || (!events.payload.empty() && events.payload.size() != n)) {
    return false;
  }
  v1::SpikeBatch& b = m_->encode_batch;
  b.set_stream(events.stream);
  b.set_epoch(header.epoch);
  b.set_sequence(header.sequence);
  b.set_first_index(header.first_index);
  b.set_kind(static_cast<v1::EventKind>(events.kind));
  const int64_t base = n > 0 ? events.times_ns[0] : 0;
  b.set_base_time_ns(base);

  auto* ch = b.mutable_channels();
  ch->Resize(static_cast<int>(n), 0);
  if (n > 0) std::memcpy(ch->mutable_data(), events.channels.data(), n * sizeof(uint32_t));

  auto* dt = b.mutable_time_deltas_ns();
  dt->Resize(static_cast<int>(n), 0);
  int64_t* d = dt->mutable_data();
  int64_t prev = base;
  bool overflow = false;
  for (size_t i = 0; i < n; ++i) {
    // A step that does not fit in int64 would be refused by every decoder: refuse it here.
    overflow |= __builtin_sub_overflow(events.times_ns[i], prev, &d[i]);
    prev = events.times_ns[i];
  }
  if (overflow) return false;

  auto* pl = b.mutable_payload();
  pl->Resize(static_cast<int>(events.payload.size()), 0.0F);
  if (!events.payload.empty()) {
    std::memcpy(pl->mutable_data(), events.payload.data(), events.payload.size() * sizeof(float));
  }

  set_routing(b, header);
  return encode_body(Body::spike_batch, b, limits_.max_message_bytes, out);
}

bool Codec::reroute_batch(std::span<const uint8_t> frame, const BatchHeader& header,
                          std::string& out) noexcept {
  const EnvelopeScan scan = scan_envelope(frame);
  if (!scan.well_formed || scan.body != Body::spike_batch) return false;
  // The source's body as it came, then every routing field written out, defaults included:
  // protobuf merges concatenated fields and the last value of a scalar wins, so whatever a sender
  // put in these fields is overridden (an omitted default would let it through).
  uint8_t routing[8 * 11 + 11];
  size_t r = 0;
  auto varint_field = [&](uint32_t field, uint64_t v) {
    r += put_varint(routing + r, (uint64_t{field} << 3) | kWireVarint);
    r += put_varint(routing + r, v);
  };
  varint_field(16, header.source_node_id);
  // Field 17 (the name): its tag and length here, its bytes copied in between below.
  r += put_varint(routing + r, (uint64_t{17} << 3) | kWireLen);
  r += put_varint(routing + r, header.source_node.size());
  const size_t name_end = r;
  r += put_varint(routing + r, (uint64_t{18} << 3) | kWireFixed64);
  for (int k = 0; k < 8; ++k) routing[r++] = static_cast<uint8_t>(header.broker_epoch >> (8 * k));
  varint_field(19, header.link_sequence);
  varint_field(20, static_cast<uint64_t>(header.delay_ns));
  varint_field(21, header.complete ? 1 : 0);
  varint_field(22, static_cast<uint64_t>(header.late_policy));
  varint_field(23, static_cast<uint64_t>(header.broker_time_ns));
  const size_t name_len = header.source_node.size();
  const size_t body_len = scan.body_len + r + name_len;
  const EnvelopeHead head(Body::spike_batch, body_len);
  const size_t h = head.size;
  if (h + body_len > limits_.max_message_bytes) return false;
  out.resize(h + body_len);
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(dst, head.bytes, h);
  dst += h;
  std::memcpy(dst, scan.body_ptr, scan.body_len);
  dst += scan.body_len;
  std::memcpy(dst, routing, name_end);
  dst += name_end;
  if (name_len > 0) std::memcpy(dst, header.source_node.data(), name_len);
  dst += name_len;
  std::memcpy(dst, routing + name_end, r - name_end);
  return true;
}

#define ION_ENCODE(Type, body_kind)                                       \
  bool Codec::encode(const v1::Type& m, std::string& out) noexcept {      \
    return encode_body(Body::body_kind, m, limits_.max_message_bytes, out); \
  }
ION_ENCODE(Hello, hello)
ION_ENCODE(Welcome, welcome)
ION_ENCODE(Heartbeat, heartbeat)
ION_ENCODE(TimeRequest, time_request)
ION_ENCODE(TimeReply, time_reply)
ION_ENCODE(Stimulus, stimulus)
ION_ENCODE(Error, error)
ION_ENCODE(Goodbye, goodbye)
ION_ENCODE(StatusRequest, status_request)
ION_ENCODE(StatusReply, status_reply)
#undef ION_ENCODE

Decoded Codec::decode(std::span<const uint8_t> frame) noexcept {
  Decoded r;
  if (frame.size() > limits_.max_message_bytes) {
    r.reject = Reject::oversized;
    return r;
  }
  const EnvelopeScan scan = scan_envelope(frame);
  if (!scan.well_formed) {
    r.reject = Reject::malformed;
    return r;
  }
  r.version = scan.version;
  r.body = scan.body;
  if (r.body == Body::none) {
    r.reject = scan.saw_unknown || r.version == kProtocolVersion ? Reject::unknown_type
                                                                 : Reject::malformed;
    if (r.version != kProtocolVersion && r.version != 0) r.reject = Reject::version_mismatch;
    return r;
  }
  auto* msg = m_->by_body(r.body);
  if (!msg->ParseFromArray(scan.body_ptr, static_cast<int>(scan.body_len))) {
    r.reject = Reject::malformed;
    r.body = Body::none;
    return r;
  }
  // The body is parsed even on a version mismatch so the receiver can name the sender.
  if (r.version != kProtocolVersion) r.reject = Reject::version_mismatch;
  return r;
}

Reject Codec::take_batch(const BatchChecks& checks, BatchHeader& header,
                         EventBatch& events) noexcept {
  const v1::SpikeBatch& b = m_->batch;
  const auto n = static_cast<size_t>(b.channels_size());
  if (n == 0) return Reject::empty_batch;
  if (n > limits_.max_events_per_batch) return Reject::too_many_events;
  if (static_cast<size_t>(b.time_deltas_ns_size()) != n ||
      (b.payload_size() != 0 && static_cast<size_t>(b.payload_size()) != n)) {
    return Reject::column_mismatch;
  }
  if (!valid_kind(b.kind())) return Reject::bad_kind;
  if (b.late_policy() != v1::LATE_DELIVER_FLAGGED && b.late_policy() != v1::LATE_DROP) {
    return Reject::malformed;
  }

  const uint32_t* ch = b.channels().data();
  uint32_t max_channel = 0;
  for (size_t i = 0; i < n; ++i) max_channel = ch[i] > max_channel ? ch[i] : max_channel;
  if (max_channel >= checks.channel_limit) return Reject::channel_out_of_range;

  events.times_ns.resize(n);
  const int64_t* d = b.time_deltas_ns().data();
  int64_t t = b.base_time_ns();
  int64_t lo = INT64_MAX;
  int64_t hi = INT64_MIN;
  bool overflow = false;
  for (size_t i = 0; i < n; ++i) {
    overflow |= __builtin_add_overflow(t, d[i], &t);
    events.times_ns[i] = t;
    lo = t < lo ? t : lo;
    hi = t > hi ? t : hi;
  }
  if (overflow) return Reject::time_overflow;
  if (checks.check_time_window && (lo < checks.window_lo_ns || hi > checks.window_hi_ns)) {
    return Reject::time_out_of_window;
  }

  const auto np = static_cast<size_t>(b.payload_size());
  const float* pl = b.payload().data();
  for (size_t i = 0; i < np; ++i) {
    if (!std::isfinite(pl[i])) return Reject::non_finite_payload;
  }

  events.stream = b.stream();
  events.kind = static_cast<EventKind>(b.kind());
  events.channels.assign(ch, ch + n);
  events.payload.assign(pl, pl + np);

  header.epoch = b.epoch();
  header.sequence = b.sequence();
  header.first_index = b.first_index();
  header.source_node_id = b.source_node_id();
  header.source_node = b.source_node();
  header.broker_epoch = b.broker_epoch();
  header.link_sequence = b.link_sequence();
  header.delay_ns = b.delay_ns();
  header.complete = b.complete();
  header.late_policy = static_cast<LatePolicy>(b.late_policy());
  header.broker_time_ns = b.broker_time_ns();
  return Reject::none;
}

const v1::Hello& Codec::hello() const noexcept { return m_->hello; }
const v1::Welcome& Codec::welcome() const noexcept { return m_->welcome; }
const v1::Heartbeat& Codec::heartbeat() const noexcept { return m_->heartbeat; }
const v1::TimeRequest& Codec::time_request() const noexcept { return m_->time_request; }
const v1::TimeReply& Codec::time_reply() const noexcept { return m_->time_reply; }
const v1::SpikeBatch& Codec::spike_batch() const noexcept { return m_->batch; }
const v1::Stimulus& Codec::stimulus() const noexcept { return m_->stimulus; }
const v1::Error& Codec::error() const noexcept { return m_->error; }
const v1::Goodbye& Codec::goodbye() const noexcept { return m_->goodbye; }
const v1::StatusRequest& Codec::status_request() const noexcept { return m_->status_request; }
const v1::StatusReply& Codec::status_reply() const noexcept { return m_->status_reply; }

Body peek_body(std::span<const uint8_t> frame) noexcept {
  const EnvelopeScan scan = scan_envelope(frame);
  return scan.well_formed ? scan.body : Body::none;
}

std::string make_error_frame(int code, std::string_view message) {
  v1::Error e;
  e.set_code(static_cast<v1::Error::Code>(code));
  e.set_message(std::string(message));
  std::string out;
  (void)encode_body(Body::error, e, SIZE_MAX, out);
  return out;
}

}  // namespace ion
