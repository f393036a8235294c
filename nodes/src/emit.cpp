// The emit batcher: what the driver emits is coalesced per stream for at most batch_budget,
// encoded, and queued in the bounded send queue (drop-oldest, counted); the node loop sends it.
#include <spdlog/spdlog.h>

#include "node_impl.h"

namespace ion {

// --- Emitter (driver threads) ---
EmitStatus Node::Impl::emit(const EventBatch& batch) noexcept {
  const size_t n = batch.size();
  bool valid = n > 0 && batch.times_ns.size() == n &&
               (batch.payload.empty() || batch.payload.size() == n) &&
               n <= opts_.limits.max_events_per_batch;
  for (size_t i = 0; valid && i < n; ++i) valid = batch.channels[i] < info_.output_channels;
  if (!valid) {
    dropped_events_.add(n);
    dropped_batches_.add();
    uint64_t suppressed = 0;
    std::lock_guard lock(emit_mu_);
    if (emit_log_.allow(clock_.now_ns(), suppressed)) {
      spdlog::error(
          "driver emitted an invalid batch of {} events (columns, channel ids or size)"
          "; dropped ({} more since the last line)",
          n, suppressed);
    }
    return EmitStatus::rejected;
  }
  uint64_t dropped_frames = 0;
  {
    std::lock_guard lock(emit_mu_);
    OutStream* s = nullptr;
    for (auto& o : out_streams_) {
      if (o.stream == batch.stream) s = &o;
    }
    if (s == nullptr) s = &out_streams_.emplace_back();
    s->stream = batch.stream;
    const int64_t now = clock_.now_ns();
    const int64_t budget = ns(opts_.batch_budget);
    const uint32_t max_events = std::min(opts_.batch_max_events, opts_.limits.max_events_per_batch);
    EventBatch& p = s->pending;
    if (!p.empty() && (p.kind != batch.kind || p.has_payload() != batch.has_payload())) {
      dropped_frames += send_pending_locked(*s);
    }
    if (budget == 0 || (p.empty() && now - s->last_send_ns >= budget) || n >= max_events) {
      if (!p.empty()) dropped_frames += send_pending_locked(*s);
      // The stream was idle (or the batch is big): it goes at once, adding no latency.
      if (!encode_and_queue_locked(*s, batch, dropped_frames)) return EmitStatus::rejected;
      s->last_send_ns = now;
    } else {
      if (p.size() + n > max_events) dropped_frames += send_pending_locked(*s);
      if (p.empty()) {
        p.stream = batch.stream;
        p.kind = batch.kind;
        s->pending_since_ns = now;
      }
      p.channels.insert(p.channels.end(), batch.channels.begin(), batch.channels.end());
      p.times_ns.insert(p.times_ns.end(), batch.times_ns.begin(), batch.times_ns.end());
      p.payload.insert(p.payload.end(), batch.payload.begin(), batch.payload.end());
      if (p.size() >= max_events) {
        dropped_frames += send_pending_locked(*s);
      } else {
        next_batch_flush_ns_.store(
            std::min(next_batch_flush_ns_.load(), s->pending_since_ns + budget));
      }
    }
  }
  emitted_events_.add(n);
  wakeup_.notify();
  return dropped_frames == 0 ? EmitStatus::queued : EmitStatus::queued_dropping_oldest;
}

// Encodes one batch of a stream into the send queue (the caller holds emit_mu_).
bool Node::Impl::encode_and_queue_locked(OutStream& s, const EventBatch& batch,
                                         uint64_t& dropped_frames) noexcept {
  const size_t n = batch.size();
  BatchHeader h;
  h.epoch = epoch_;
  h.sequence = s.next_sequence++;
  h.first_index = s.next_index;
  s.next_index += n;
  if (!emit_codec_.encode_batch(h, batch, emit_scratch_)) {
    dropped_events_.add(n);
    dropped_batches_.add();
    return false;
  }
  // A node's own send queue also keeps its neuromodulator samples through a spike flood.
  const FrameRing::PushResult pr =
      queue_.push(emit_scratch_, static_cast<uint32_t>(n), batch.kind == EventKind::neuromodulator);
  emitted_batches_.add();
  dropped_batches_.add(pr.dropped_frames);
  dropped_events_.add(pr.dropped_events);
  dropped_frames += pr.dropped_frames;
  return true;
}

uint64_t Node::Impl::send_pending_locked(OutStream& s) noexcept {
  uint64_t dropped = 0;
  if (s.pending.empty()) return 0;
  (void)encode_and_queue_locked(s, s.pending, dropped);
  s.pending.clear();
  s.last_send_ns = clock_.now_ns();
  return dropped;
}

// Sends coalesced batches whose budget is up (all of them when `all`), from the node thread.
void Node::Impl::flush_batches(int64_t now, bool all) noexcept {
  if (!all && now < next_batch_flush_ns_.load()) return;
  std::lock_guard lock(emit_mu_);
  const int64_t budget = ns(opts_.batch_budget);
  int64_t next = INT64_MAX;
  for (auto& s : out_streams_) {
    if (s.pending.empty()) continue;
    if (all || now >= s.pending_since_ns + budget) {
      (void)send_pending_locked(s);
    } else {
      next = std::min(next, s.pending_since_ns + budget);
    }
  }
  next_batch_flush_ns_.store(next);
}

void Node::Impl::send_queued() noexcept {
  session_.check_stall(clock_.now_ns());
  Socket* socket = broker_link_.socket();
  if (!session_.registered() || socket == nullptr) return;
  std::lock_guard lock(emit_mu_);
  send_blocked_ = false;
  while (!queue_.empty()) {
    const IoStatus s = socket->send(queue_.front());
    if (s != IoStatus::ok) {
      send_blocked_ = true;  // high-water mark: keep it queued, try again shortly
      return;
    }
    sent_batches_.add();
    queue_.pop();
  }
}

}  // namespace ion
