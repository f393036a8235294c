#pragma once
// The broker's per-participant state: a slot per topology node and per recorder (tap), the
// holder of each name, and the small helpers the loop uses on them. Private to broker/src.
#include <atomic>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ion/broker/broker.h"
#include "ion/core/counter.h"
#include "ion/core/status_counters.h"
#include "ion/core/event_batch.h"
#include "ion/core/frame_ring.h"
#include "ion/core/histogram.h"
#include "ion/core/sequence.h"
#include "ion/v1/ion.pb.h"

namespace ion::broker_impl {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// A sustained rate with a burst allowance.
struct TokenBucket {
  double tokens = -1;  // < 0: not started (full)
  int64_t last_ns = 0;
  bool take(int64_t now_ns, double rate_hz, double burst) noexcept {
    if (tokens < 0) {
      tokens = burst;
    } else {
      tokens = std::min(burst, tokens + static_cast<double>(now_ns - last_ns) * 1e-9 * rate_hz);
    }
    last_ns = now_ns;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }
};

struct StreamState {
  uint32_t stream = 0;
  SequenceTracker seq;
};

struct RouteGroup {
  int64_t delay_ns = 0;
  LatePolicy late_policy = LatePolicy::deliver_flagged;
  EventBatch events;
};

// What the broker keeps of a node's latest heartbeat, as the public stats type.
NodeHealthStats health_stats(bool reported, const v1::NodeHealth& h);

// Who holds a name (a node's or a recorder's): one holder per name (BrokerCore::may_hold).
struct Holder {
  bool registered = false;
  std::string routing_id;
  uint64_t epoch = 0;         // the holder's process
  std::string peer;           // the holder's address, for the one-holder refusal
  int64_t registered_ns = 0;  // broker clock, when the holder registered
  int64_t last_seen_ns = 0;   // broker clock, its last message
};

// One per topology node, created at start and never moved (counters are read by other threads).
struct NodeSlot : Holder {
  NodeSlot(uint32_t node_id, const NodeSpec& spec, size_t ring_frames, size_t ring_bytes)
      : id(node_id),
        name(spec.name),
        kind(spec.kind),
        ring(ring_frames, ring_bytes) {}

  const uint32_t id;
  const std::string name;
  const std::string kind;

  // Broker-loop state.
  uint32_t declared_channels = 0;
  uint32_t declared_ports = 0;
  uint64_t next_link_sequence = 0;
  std::vector<StreamState> streams;
  FrameRing ring;
  std::vector<RouteGroup> groups;  // per-delay builders for the batch being routed
  size_t groups_used = 0;
  bool split = false;   // current batch was cut into several frames
  TokenBucket control;  // control messages of the registered node

  // Counters, readable from any thread.
  std::atomic<bool> connected{false};
#define ION_SLOT_COUNTER(name) Counter name;
  ION_BROKER_NODE_COUNTERS(ION_SLOT_COUNTER)
  Histogram ingress_latency;  // source -> broker, per event
  // The node's own report (its latest heartbeat's health), readable from any thread.
  mutable std::mutex health_mu;
  bool health_reported = false;             // guarded by health_mu
  v1::NodeHealth health;                    // guarded by health_mu
  v1::DeviceDescription device;             // from the Hello; guarded by health_mu
  std::vector<v1::ChannelInfo> channel_info;  // from the Hello; guarded by health_mu
  // End-to-end latency of the links into this node, as it reports them (heartbeats).
  struct LinkTotals {
    uint32_t source = 0;
    std::vector<uint64_t> le;
    uint64_t count = 0;
    int64_t sum_ns = 0;
  };
  mutable std::mutex links_mu;
  std::vector<LinkTotals> links;  // at most one per source node

  void drop(uint64_t frames, uint64_t events) noexcept {
    dropped_batches.add(frames);
    dropped_events.add(events);
  }
};

// A recorder: not in the topology; gets a copy of every accepted batch from its sources.
struct TapSlot : Holder {
  TapSlot(size_t ring_frames, size_t ring_bytes) : ring(ring_frames, ring_bytes) {}
  bool in_use = false;
  std::string name;              // written under taps_mu_
  std::vector<uint8_t> sources;  // per node id; empty: every node
  uint64_t next_link_sequence = 0;
  FrameRing ring;
  TokenBucket control;
  std::atomic<bool> connected{false};
  ION_BROKER_TAP_COUNTERS(ION_SLOT_COUNTER)
#undef ION_SLOT_COUNTER
};

}  // namespace ion::broker_impl
