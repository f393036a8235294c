// Recorders (taps): not in the topology; each gets a copy of every accepted batch from the
// sources it follows, through its own bounded ring. After a (re)start, the startup grace holds
// traffic for nodes and recorders that have not registered yet (docs/timing.md).
#include <spdlog/spdlog.h>

#include <cstring>

#include "ion/core/names.h"

#include "core.h"

namespace ion::broker_impl {

TapSlot* BrokerCore::find_tap(std::string_view rid) noexcept {
  for (auto& t : taps_) {
    if (t->in_use && t->registered && t->routing_id == rid) return t.get();
  }
  return nullptr;
}

void BrokerCore::on_tap_message(TapSlot& tap, std::string_view rid, Body body,
                                int64_t t_recv) noexcept {
  tap.last_seen_ns = t_recv;
  switch (body) {
    case Body::heartbeat:
      echo_heartbeat(rid);
      break;
    case Body::time_request:
      answer_probe(rid, t_recv);
      break;
    case Body::goodbye:
      spdlog::info("tap '{}' left: {}", tap.name, codec_.goodbye().reason());
      unregister_tap(tap);
      break;
    default:
      reject(Reject::unexpected_type, nullptr);
      break;
  }
}

void BrokerCore::on_tap_hello(std::string_view rid, std::string_view peer, int64_t t_recv) {
  const v1::Hello& h = codec_.hello();
  std::vector<uint8_t> sources;
  if (h.tap_sources_size() > 0) {
    sources.assign(table_.node_count(), 0);
    for (const auto& name : h.tap_sources()) {
      const int64_t id = table_.find_node(name);
      if (id < 0) {
        std::vector<std::string> known;
        for (size_t i = 0; i < table_.node_count(); ++i) {
          known.push_back(table_.node(static_cast<uint32_t>(i)).name);
        }
        refuse_hello(rid, peer, h.node_name(), Reject::unknown_node, v1::Error::NOT_IN_TOPOLOGY,
                     "tap '" + h.node_name() + "' selects node '" + name +
                         "', which is not in this broker's topology" + closest_names(name, known));
        return;
      }
      sources[static_cast<size_t>(id)] = 1;
    }
  }
  // The same name again takes its slot back if may_hold allows; else the first free slot.
  TapSlot* slot = nullptr;
  for (auto& t : taps_) {
    if (t->in_use && t->name == h.node_name()) slot = t.get();
  }
  if (slot != nullptr && !may_hold(*slot, "recorder", rid, peer, h, t_recv)) return;
  bool fresh = false;  // a slot not used since this broker started
  for (auto& t : taps_) {
    if (slot == nullptr && !t->in_use) {
      slot = t.get();
      fresh = true;
    }
  }
  if (slot == nullptr) {
    refuse_hello(rid, peer, h.node_name(), Reject::too_many_nodes, v1::Error::TOO_MANY_NODES,
                 "this broker takes at most " + std::to_string(opts_.max_taps) + " taps");
    return;
  }
  {
    std::lock_guard lock(taps_mu_);
    slot->name = h.node_name();
    slot->in_use = true;
  }
  if (slot->registered && slot->routing_id != rid) {
    const auto dropped = slot->ring.clear();
    slot->dropped_batches.add(dropped.dropped_frames);
    slot->dropped_events.add(dropped.dropped_events);
  }
  if (!slot->registered || slot->routing_id != rid) slot->registered_ns = t_recv;
  slot->registered = true;
  slot->routing_id = std::string(rid);
  slot->epoch = h.epoch();
  slot->peer = std::string(peer);
  slot->sources = std::move(sources);
  slot->last_seen_ns = t_recv;
  slot->connected.store(true, std::memory_order_relaxed);
  send_welcome(rid, UINT32_MAX);  // taps have no node id
  if (fresh && in_grace_) replay_held(*slot);
  spdlog::info("tap '{}' ({}) registered: {} sources", slot->name, h.software(),
               slot->sources.empty() ? std::string("all") : std::to_string(h.tap_sources_size()));
}

void BrokerCore::unregister_tap(TapSlot& t) noexcept {
  t.registered = false;
  t.connected.store(false, std::memory_order_relaxed);
  const auto dropped = t.ring.clear();
  t.dropped_batches.add(dropped.dropped_frames);
  t.dropped_events.add(dropped.dropped_events);
}

// A copy of the accepted batch for every tap that follows its source: the whole batch as it
// came (its bytes and a routing header, like a whole route), stamped with the broker's receive
// time, never waiting for the tap (its ring drops the oldest).
void BrokerCore::copy_to_taps(const NodeSlot& src, std::span<const uint8_t> frame,
                              int64_t t_recv) noexcept {
  if (in_grace_) hold_for_taps(src.id, frame, t_recv);
  const auto n = static_cast<uint32_t>(in_events_.size());
  for (auto& tp : taps_) {
    TapSlot& t = *tp;
    if (t.registered) copy_to_tap(t, src.id, frame, t_recv, n);
  }
}

void BrokerCore::copy_to_tap(TapSlot& t, uint32_t src, std::span<const uint8_t> frame,
                             int64_t t_recv, uint32_t events) noexcept {
  if (!t.sources.empty() && t.sources[src] == 0) return;
  BatchHeader h;
  h.source_node_id = src;
  h.source_node = slots_[src]->name;
  h.broker_epoch = epoch_;
  h.link_sequence = t.next_link_sequence++;
  h.broker_time_ns = t_recv;
  h.complete = true;
  if (!codec_.reroute_batch(frame, h, scratch_)) {
    t.dropped_batches.add();
    t.dropped_events.add(events);
    return;
  }
  // Neuromodulator samples are never evicted by spike traffic (FrameRing keep).
  const auto pr = t.ring.push(scratch_, events, in_events_.kind == EventKind::neuromodulator);
  t.dropped_batches.add(pr.dropped_frames);
  t.dropped_events.add(pr.dropped_events);
  any_pending_ = true;
}

bool BrokerCore::holding(const NodeSlot& t) const noexcept {
  return in_grace_ && t.registrations.get() == 0;  // never registered with this broker yet
}

// A copy of an accepted batch, kept for recorders that register during the grace period:
// [source id (4 bytes) | broker receive time (8 bytes) | the batch as it came].
void BrokerCore::hold_for_taps(uint32_t src, std::span<const uint8_t> frame,
                               int64_t t_recv) noexcept {
  held_scratch_.resize(12 + frame.size());
  std::memcpy(held_scratch_.data(), &src, 4);
  std::memcpy(held_scratch_.data() + 4, &t_recv, 8);
  std::memcpy(held_scratch_.data() + 12, frame.data(), frame.size());
  const auto pr = held_for_taps_.push(held_scratch_, static_cast<uint32_t>(in_events_.size()),
                                      in_events_.kind == EventKind::neuromodulator);
  held_for_taps_dropped_ += pr.dropped_events;
}

// A recorder that registers during the grace period gets what was accepted before it came.
void BrokerCore::replay_held(TapSlot& t) noexcept {
  uint64_t events = 0;
  held_for_taps_.for_each([&](std::string_view held, uint32_t n) {
    uint32_t src = 0;
    int64_t t_recv = 0;
    std::memcpy(&src, held.data(), 4);
    std::memcpy(&t_recv, held.data() + 4, 8);
    const auto* bytes = reinterpret_cast<const uint8_t*>(held.data() + 12);
    copy_to_tap(t, src, {bytes, held.size() - 12}, t_recv, n);
    events += n;
  });
  if (events > 0) {
    spdlog::info(
        "tap '{}': {} events accepted before it registered were held for it "
        "(startup grace)",
        t.name, events);
  }
}

void BrokerCore::end_grace() noexcept {
  in_grace_ = false;
  uint64_t dropped = 0;
  for (auto& sp : slots_) {
    if (sp->registered) continue;
    const auto d = sp->ring.clear();
    sp->drop(d.dropped_frames, d.dropped_events);
    dropped += d.dropped_events;
  }
  held_for_taps_.clear();
  spdlog::info(
      "startup grace over: {} events held for nodes that did not come were dropped "
      "(counted); {} events held for recorders did not fit the ring",
      dropped, held_for_taps_dropped_);
}

}  // namespace ion::broker_impl
