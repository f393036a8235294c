#include "ion/core/reject.h"

namespace ion {

std::string_view to_string(Reject reason) noexcept {
  switch (reason) {
    case Reject::none: return "none";
    case Reject::oversized: return "oversized";
    case Reject::malformed: return "malformed";
    case Reject::version_mismatch: return "version_mismatch";
    case Reject::unknown_type: return "unknown_type";
    case Reject::unexpected_type: return "unexpected_type";
    case Reject::empty_batch: return "empty_batch";
    case Reject::too_many_events: return "too_many_events";
    case Reject::column_mismatch: return "column_mismatch";
    case Reject::channel_out_of_range: return "channel_out_of_range";
    case Reject::time_overflow: return "time_overflow";
    case Reject::time_out_of_window: return "time_out_of_window";
    case Reject::bad_kind: return "bad_kind";
    case Reject::non_finite_payload: return "non_finite_payload";
    case Reject::unknown_node: return "unknown_node";
    case Reject::name_in_use: return "name_in_use";
    case Reject::too_many_nodes: return "too_many_nodes";
    case Reject::declared_too_large: return "declared_too_large";
    case Reject::bad_hello: return "bad_hello";
    case Reject::too_many_streams: return "too_many_streams";
    case Reject::duplicate_or_reordered: return "duplicate_or_reordered";
    case Reject::encode_failed: return "encode_failed";
    case Reject::impersonation: return "impersonation";
    case Reject::revoked: return "revoked";
    case Reject::rate_limited: return "rate_limited";
    case Reject::count_: break;
  }
  return "unknown";
}

}  // namespace ion
