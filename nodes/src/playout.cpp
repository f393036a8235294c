#include "ion/node/playout.h"

#include <algorithm>

namespace ion {

namespace {
constexpr size_t kMaxSources = 4096;
}

Playout::Playout(size_t capacity_events, Release release)
    : capacity_(capacity_events), release_(std::move(release)) {}

uint32_t Playout::source_slot(const BatchHeader& h, const EventBatch& e) {
  for (uint32_t i = 0; i < sources_.size(); ++i) {
    const Source& s = sources_[i];
    if (s.header.source_node_id == h.source_node_id && s.stream == e.stream && s.kind == e.kind &&
        s.header.epoch == h.epoch && s.header.delay_ns == h.delay_ns &&
        s.header.late_policy == h.late_policy && s.header.source_node == h.source_node) {
      return i;
    }
  }
  if (sources_.size() >= kMaxSources) return UINT32_MAX;  // queued items index this table
  Source s{h, e.stream, e.kind};
  s.header.sequence = 0;
  s.header.first_index = 0;
  s.header.link_sequence = 0;
  s.header.complete = false;
  sources_.push_back(std::move(s));
  return static_cast<uint32_t>(sources_.size() - 1);
}

Playout::StreamClock& Playout::stream_clock(const BatchHeader& h, const EventBatch& e) {
  for (auto& c : stream_clocks_) {
    if (c.source_node_id == h.source_node_id && c.stream == e.stream) {
      if (c.epoch != h.epoch) {  // the source restarted: a new timeline
        c.epoch = h.epoch;
        c.last_deadline_ns = INT64_MIN;
      }
      return c;
    }
  }
  if (stream_clocks_.size() >= kMaxSources) stream_clocks_.erase(stream_clocks_.begin());
  return stream_clocks_.emplace_back(
      StreamClock{h.source_node_id, e.stream, h.epoch, INT64_MIN});
}

void Playout::accept(const BatchHeader& h, const EventBatch& e, int64_t arrival_ns) noexcept {
  const bool payload = e.has_payload();
  late_out_.clear();
  late_out_.stream = e.stream;
  late_out_.kind = e.kind;
  uint64_t late = 0;
  {
    std::lock_guard lock(mu_);
    uint32_t src = UINT32_MAX;
    StreamClock& clock = stream_clock(h, e);
    for (size_t i = 0; i < e.size(); ++i) {
      int64_t deadline = 0;
      if (__builtin_add_overflow(e.times_ns[i], h.delay_ns, &deadline)) deadline = INT64_MAX;
      const bool is_late = deadline < arrival_ns;  // never passed off as on time
      if (is_late) {
        ++late;
        if (arrival_ns != INT64_MAX) lateness_.record(arrival_ns - deadline);
        if (h.late_policy == LatePolicy::drop) continue;
        if (arrival_ns == INT64_MAX) {  // no network time: nothing to order against, hand over
          if (payload) {
            late_out_.push(e.channels[i], e.times_ns[i], e.payload[i]);
          } else {
            late_out_.push(e.channels[i], e.times_ns[i]);
          }
          continue;
        }
        // Released by the playout thread as soon as possible, but through the same queue as
        // everything else: an older event that is due and not yet released must go first.
        deadline = arrival_ns;
      }
      // Deadlines never go backwards within a stream (a lowered delay must not reorder it).
      const int64_t due = std::max(deadline, clock.last_deadline_ns);
      if (src == UINT32_MAX) src = source_slot(h, e);
      if (heap_.size() >= capacity_ || src == UINT32_MAX) {
        overflow_.add();
        continue;
      }
      clock.last_deadline_ns = due;
      heap_.push({due, order_++, src, e.channels[i], e.times_ns[i],
                  payload ? e.payload[i] : 0.0F, payload, is_late});
    }
  }
  late_.add(late);
  if (h.late_policy == LatePolicy::drop) {
    late_dropped_.add(late);
  } else {
    late_delivered_.add(late);  // now, or queued behind older events of the stream
    if (!late_out_.empty()) release_(h, late_out_, Delivery{arrival_ns, true});
  }
}

size_t Playout::release_due(int64_t now_ns) noexcept {
  return release_due(now_ns, [now_ns] { return now_ns; }, INT64_MAX);
}

size_t Playout::release_due(int64_t now_ns, const std::function<int64_t()>& clock,
                            int64_t precision_ns) noexcept {
  due_.clear();
  {
    std::lock_guard lock(mu_);
    while (!heap_.empty() && heap_.top().deadline_ns <= now_ns) {
      due_.push_back(heap_.top());
      heap_.pop();
    }
  }
  // Consecutive events of one source (and lateness) go out as one batch.
  size_t i = 0;
  while (i < due_.size()) {
    const uint32_t src = due_[i].source;
    const bool late = due_[i].late;
    out_.clear();
    BatchHeader header;
    {
      std::lock_guard lock(mu_);
      header = sources_[src].header;
      out_.stream = sources_[src].stream;
      out_.kind = sources_[src].kind;
    }
    size_t end = i;
    while (end < due_.size() && due_[end].source == src && due_[end].late == late) ++end;
    const int64_t t = late ? now_ns : clock();
    // Deadline order: the overdue ones, if any, come first.
    size_t overdue = i;
    if (!late) {
      while (overdue < end && t - due_[overdue].deadline_ns > precision_ns) ++overdue;
    }
    auto hand_over = [&](size_t from, size_t to, bool flagged) {
      if (from == to) return;
      out_.clear();
      for (size_t k = from; k < to; ++k) {
        const Item& it = due_[k];
        if (it.has_payload) {
          out_.push(it.port, it.time_ns, it.payload);
        } else {
          out_.push(it.port, it.time_ns);
        }
        if (!flagged) delivery_error_.record(t - it.deadline_ns);
      }
      if (!flagged) on_time_.add(out_.size());
      release_(header, out_, Delivery{t, flagged});
    };
    if (overdue > i) overrun_.add(overdue - i);
    hand_over(i, overdue, true);
    hand_over(overdue, end, late);
    i = end;
  }
  return due_.size();
}

size_t Playout::abandon() noexcept {
  std::lock_guard lock(mu_);
  const size_t n = heap_.size();
  heap_ = {};
  abandoned_.add(n);
  return n;
}

int64_t Playout::next_deadline() const noexcept {
  std::lock_guard lock(mu_);
  return heap_.empty() ? INT64_MAX : heap_.top().deadline_ns;
}

PlayoutStats Playout::stats() const {
  PlayoutStats s;
  s.on_time_events = on_time_.get();
  s.overrun_events = overrun_.get();
  s.late_events = late_.get();
  s.late_delivered = late_delivered_.get();
  s.late_dropped = late_dropped_.get();
  s.overflow_dropped = overflow_.get();
  s.abandoned = abandoned_.get();
  s.delivery_error_p50_ns = delivery_error_.quantile_ns(0.5);
  s.delivery_error_p99_ns = delivery_error_.quantile_ns(0.99);
  s.delivery_error_max_ns = delivery_error_.max_ns();
  s.lateness_p99_ns = lateness_.quantile_ns(0.99);
  s.lateness_max_ns = lateness_.max_ns();
  std::lock_guard lock(mu_);
  s.queued = heap_.size();
  return s;
}

}  // namespace ion
