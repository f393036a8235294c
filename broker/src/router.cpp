// Batch ingress and routing: a batch is validated, checked against its stream's sequence,
// counted, and routed through the compiled table into per-target rings (or passed on whole,
// with a routing header per target, when its source maps channel c to port c); flush() empties
// the rings into the Outbox while peers take them.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core.h"

namespace ion::broker_impl {

void BrokerCore::on_batch(NodeSlot& slot, std::span<const uint8_t> frame, int64_t now) noexcept {
  BatchChecks checks;
  checks.channel_limit = slot.declared_channels;
  checks.check_time_window = true;
  checks.window_lo_ns = now - opts_.max_past.count();
  checks.window_hi_ns = now + opts_.max_future.count();
  const Reject r = codec_.take_batch(checks, in_header_, in_events_);
  if (r != Reject::none) {
    reject(r, &slot);
    return;
  }
  StreamState* st = nullptr;
  for (auto& s : slot.streams) {
    if (s.stream == in_events_.stream) st = &s;
  }
  if (st == nullptr) {
    if (slot.streams.size() >= opts_.max_streams_per_node) {
      reject(Reject::too_many_streams, &slot);
      return;
    }
    slot.streams.push_back({in_events_.stream, {}});
    st = &slot.streams.back();
  }
  switch (st->seq.observe(in_header_.epoch, in_header_.sequence)) {
    case SequenceTracker::Verdict::duplicate_or_reordered:
      // Promise 1: never duplicated, in order per stream. An old sequence is not forwarded.
      slot.reordered_batches.add();
      reject(Reject::duplicate_or_reordered, &slot);
      return;
    case SequenceTracker::Verdict::gap:
      slot.lost_upstream_batches.add(st->seq.last_gap());
      break;
    case SequenceTracker::Verdict::restarted:
      slot.source_restarts.add();
      break;
    default:
      break;
  }
  slot.batches_in.add();
  slot.events_in.add(in_events_.size());
  for (const int64_t t : in_events_.times_ns) slot.ingress_latency.record(now - t);
  if (in_events_.stream == 0 && live_.watched()) live_.offer(slot.id, in_events_);
  if (whole_[slot.id].empty()) {
    route(slot.id);
  } else {
    route_whole(slot.id, frame, now);
  }
  copy_to_taps(slot, frame, now);
}

// One outbound batch per (target, delay, late policy) for the batch being routed.
RouteGroup& BrokerCore::group_for(NodeSlot& t, const Route& r) {
  const int64_t delay_ns = conn_delay_ns_[r.connection].load(std::memory_order_relaxed);
  for (size_t g = 0; g < t.groups_used; ++g) {
    if (t.groups[g].delay_ns == delay_ns && t.groups[g].late_policy == r.late_policy) {
      return t.groups[g];
    }
  }
  if (t.groups_used == 0) touched_.push_back(r.target_node);
  if (t.groups_used == t.groups.size()) t.groups.emplace_back();
  RouteGroup& g = t.groups[t.groups_used++];
  g.delay_ns = delay_ns;
  g.late_policy = r.late_policy;
  g.events.clear();
  return g;
}

std::vector<BrokerCore::WholeRoute> BrokerCore::whole_routes(const RoutingTable& table,
                                                             uint32_t src) {
  const uint32_t channels = table.node(src).channels;
  std::vector<WholeRoute> first;
  for (uint32_t c = 0; c < channels; ++c) {
    const auto routes = table.routes(src, c);
    std::vector<WholeRoute> here;
    for (const Route& r : routes) {
      if (r.port != c) return {};
      for (const auto& w : here) {
        if (w.target == r.target_node) return {};  // twice to one target: not whole
      }
      here.push_back({r.target_node, r.connection, r.late_policy});
    }
    if (c == 0) {
      first = here;
    } else if (here.size() != first.size() ||
               !std::equal(here.begin(), here.end(), first.begin(),
                           [](const WholeRoute& a, const WholeRoute& b) {
                             return a.target == b.target && a.connection == b.connection &&
                                    a.late_policy == b.late_policy;
                           })) {
      return {};
    }
  }
  return first;
}

void BrokerCore::route_whole(uint32_t src, std::span<const uint8_t> frame, int64_t now) noexcept {
  const auto n = static_cast<uint32_t>(in_events_.size());
  for (const WholeRoute& w : whole_[src]) {
    NodeSlot& t = *slots_[w.target];
    if (!t.registered && !holding(t)) {
      t.drop(1, n);
      continue;
    }
    BatchHeader h;
    h.source_node_id = src;
    h.source_node = slots_[src]->name;
    h.broker_epoch = epoch_;
    h.link_sequence = t.next_link_sequence++;
    h.delay_ns = conn_delay_ns_[w.connection].load(std::memory_order_relaxed);
    h.late_policy = w.late_policy;
    h.broker_time_ns = now;
    h.complete = true;
    if (!codec_.reroute_batch(frame, h, scratch_)) {
      t.drop(1, n);
      rejects_.add(Reject::encode_failed);
      continue;
    }
    const auto pr = t.ring.push(scratch_, n, in_events_.kind == EventKind::neuromodulator);
    t.drop(pr.dropped_frames, pr.dropped_events);
    any_pending_ = true;
  }
}

void BrokerCore::route(uint32_t src) noexcept {
  const EventBatch& ev = in_events_;
  const size_t n = ev.size();
  const bool with_payload = ev.has_payload();
  const uint32_t limit = opts_.limits.max_events_per_batch;
  touched_.clear();
  for (size_t i = 0; i < n; ++i) {
    for (const Route& r : table_.routes(src, ev.channels[i])) {
      NodeSlot& t = *slots_[r.target_node];
      RouteGroup& g = group_for(t, r);
      if (with_payload) {
        g.events.push(r.port, ev.times_ns[i], ev.payload[i]);
      } else {
        g.events.push(r.port, ev.times_ns[i]);
      }
      if (g.events.size() >= limit) {  // fan-out grew it past the limit: send a piece now
        t.split = true;
        enqueue(src, t, g, false);
      }
    }
  }
  for (const uint32_t tid : touched_) {
    NodeSlot& t = *slots_[tid];
    const bool complete = !t.split && t.groups_used == 1 && table_.complete(src, tid);
    for (size_t g = 0; g < t.groups_used; ++g) {
      if (!t.groups[g].events.empty()) enqueue(src, t, t.groups[g], complete);
    }
    t.groups_used = 0;
    t.split = false;
  }
}

void BrokerCore::enqueue(uint32_t src, NodeSlot& t, RouteGroup& g, bool complete) noexcept {
  const auto n = static_cast<uint32_t>(g.events.size());
  if (!t.registered && !holding(t)) {  // nobody to deliver to: counted, not queued
    t.drop(1, n);
    g.events.clear();
    return;
  }
  g.events.stream = in_events_.stream;
  g.events.kind = in_events_.kind;
  BatchHeader h;
  h.epoch = in_header_.epoch;
  h.sequence = in_header_.sequence;
  h.first_index = in_header_.first_index;
  h.source_node_id = src;
  h.source_node = slots_[src]->name;
  h.broker_epoch = epoch_;
  h.link_sequence = t.next_link_sequence++;
  h.delay_ns = g.delay_ns;
  h.late_policy = g.late_policy;
  h.broker_time_ns = clock_.now_ns();
  h.complete = complete;
  if (!codec_.encode_batch(h, g.events, scratch_)) {
    t.drop(1, n);
    rejects_.add(Reject::encode_failed);
  } else {
    // Neuromodulator samples are never evicted by spike traffic (FrameRing keep).
    const auto pr = t.ring.push(scratch_, n, g.events.kind == EventKind::neuromodulator);
    t.drop(pr.dropped_frames, pr.dropped_events);
    any_pending_ = true;
  }
  g.events.clear();
}

void BrokerCore::flush() noexcept {
  any_pending_ = false;
  for (auto& sp : slots_) {
    NodeSlot& t = *sp;
    if (!t.registered) continue;
    while (!t.ring.empty()) {
      const IoStatus s = out_.send_to(t.routing_id, t.ring.front());
      if (s != IoStatus::ok) break;  // would_block: stalled peer; unreachable: gone for now
      t.batches_out.add();
      t.events_out.add(t.ring.front_events());
      t.ring.pop();
    }
    any_pending_ = any_pending_ || !t.ring.empty();
  }
  for (auto& tp : taps_) {
    TapSlot& t = *tp;
    if (!t.registered) continue;
    while (!t.ring.empty()) {
      if (out_.send_to(t.routing_id, t.ring.front()) != IoStatus::ok) break;
      t.batches_out.add();
      t.events_out.add(t.ring.front_events());
      t.ring.pop();
    }
    any_pending_ = any_pending_ || !t.ring.empty();
  }
}

}  // namespace ion::broker_impl
