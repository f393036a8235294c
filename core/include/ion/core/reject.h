#pragma once
// Reasons an input is refused. Every refusal is counted by reason; none is only a log line.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace ion {

enum class Reject : uint8_t {
  none = 0,
  oversized,             // frame larger than max_message_bytes
  malformed,             // not a valid protobuf envelope
  version_mismatch,      // protocol_version other than ours
  unknown_type,          // envelope with no body or a body we do not know
  unexpected_type,       // a known message that this side must never receive
  empty_batch,
  too_many_events,       // more than max_events_per_batch
  column_mismatch,       // columns of different lengths
  channel_out_of_range,  // channel/port id not below what the node declared
  time_overflow,         // deltas overflow int64
  time_out_of_window,    // event time too far from now
  bad_kind,              // unknown event kind
  non_finite_payload,    // NaN or infinity
  unknown_node,          // sender not registered, or name not in the topology
  name_in_use,           // another live connection holds this node name
  too_many_nodes,
  declared_too_large,    // Hello declares more channels/ports than the topology allows
  bad_hello,             // empty name, wrong declared version
  too_many_streams,      // more distinct streams from one node than allowed
  duplicate_or_reordered,  // batch sequence at or below one already forwarded
  encode_failed,         // an outbound frame would exceed the size limit
  impersonation,         // a name other than the one the connection authenticated as
  revoked,               // the connection's name left the allowlist
  rate_limited,          // control messages faster than a peer's allowance
  count_                 // keep last
};
inline constexpr size_t kRejectCount = static_cast<size_t>(Reject::count_);

[[nodiscard]] std::string_view to_string(Reject reason) noexcept;

// Lock-free counters, one per reason; safe to read from another thread.
class RejectCounters {
 public:
  void add(Reject reason, uint64_t n = 1) noexcept {
    counts_[static_cast<size_t>(reason)].fetch_add(n, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t get(Reject reason) const noexcept {
    return counts_[static_cast<size_t>(reason)].load(std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t total() const noexcept {
    uint64_t sum = 0;
    for (size_t i = 1; i < kRejectCount; ++i) sum += counts_[i].load(std::memory_order_relaxed);
    return sum;
  }

 private:
  std::array<std::atomic<uint64_t>, kRejectCount> counts_{};
};

}  // namespace ion
