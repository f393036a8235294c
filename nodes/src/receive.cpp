// Receive accounting and playout: each batch's link and source sequences (lost events counted
// exactly for complete copies, duplicates never delivered), lateness on arrival, and the playout
// thread that hands events to the driver at source time + delay.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "node_impl.h"

namespace ion {

void Node::Impl::on_batch(int64_t t_recv) noexcept {
  BatchChecks checks;
  checks.channel_limit = info_.input_ports;
  const Reject r = codec_.take_batch(checks, in_header_, in_events_);
  if (r != Reject::none) {
    rejected_frames_.add();
    uint64_t suppressed = 0;
    if (reject_log_.allow(t_recv, suppressed)) {
      spdlog::warn("node '{}': rejected a batch from the broker: {}", opts_.name, to_string(r));
    }
    return;
  }
  const BatchHeader& h = in_header_;
  if (link_.observe(h.broker_epoch, h.link_sequence) == SequenceTracker::Verdict::gap) {
    lost_batches_.add(link_.last_gap());
  }
  auto key = std::make_pair(h.source_node, in_events_.stream);
  auto it = sources_.find(key);
  if (it == sources_.end()) {
    if (sources_.size() >= opts_.max_source_streams) {
      rejected_frames_.add();
      return;
    }
    it = sources_.emplace(std::move(key), SourceStream{}).first;
  }
  SourceStream& src = it->second;
  const size_t n = in_events_.size();
  switch (src.seq.observe(h.epoch, h.sequence)) {
    case SequenceTracker::Verdict::duplicate_or_reordered:
      duplicate_or_reordered_.add();  // promise 1: never delivered twice or out of order
      return;
    case SequenceTracker::Verdict::restarted:
      source_restarts_.add();
      src.index_known = false;
      break;
    default:
      break;
  }
  if (h.complete) {
    if (src.index_known && h.first_index > src.next_index) {
      lost_events_.add(h.first_index - src.next_index);
    }
    // First sight (or after a partial copy): count from here. Events before it were never
    // routed here while this node was registered, or were counted by the broker as undeliverable.
    if (!src.index_known) src.counted_to = h.first_index;
    src.index_known = true;
    src.next_index = h.first_index + n;
    index_seen_.add(src.next_index - src.counted_to);
    src.counted_to = src.next_index;
  } else {
    src.index_known = false;
  }
  // Without network time nothing can be proven on time: everything counts as late.
  int64_t arrival = INT64_MAX;
  if (session_.clock_sync().synced()) {
    arrival = session_.clock_sync().to_network(t_recv);
    if (h.broker_time_ns != 0) link_latency_.record(arrival - h.broker_time_ns);
    LatencyWindow* window = nullptr;
    if (auto w = latency_windows_.find(h.source_node_id); w != latency_windows_.end()) {
      window = &w->second;
    } else if (latency_windows_.size() < opts_.max_source_streams) {
      window = &latency_windows_[h.source_node_id];
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t latency = arrival - in_events_.times_ns[i];
      latency_.record(latency);
      if (window != nullptr) {
        window->current.record(latency);
        window->total.record(latency);
      }
    }
  }
  playout_.accept(h, in_events_, arrival);
  // Taking the mutex orders this with the playout thread's check-then-wait: no lost wake-up.
  { std::lock_guard lock(playout_mu_); }
  playout_cv_.notify_one();
}

// Releases queued events at their deadlines: sleep until `playout_spin` before the next one,
// then spin on the clock so the release lands just after the deadline, never before.
// How long the playout thread may sleep without re-reading the clock mapping.
constexpr int64_t kRemapNs = 50'000'000;

void Node::Impl::playout_loop() noexcept {
  const int64_t spin_ns = ns(opts_.playout_spin);
  std::unique_lock lock(playout_mu_);
  while (!playout_stop_) {
    const int64_t deadline = playout_.next_deadline();
    if (deadline == INT64_MAX || !session_.clock_sync().synced()) {
      playout_cv_.wait_for(lock, std::chrono::milliseconds(50));
      continue;
    }
    const int64_t local_deadline = session_.clock_sync().to_local(deadline);
    const int64_t wait_ns = local_deadline - clock_.now_ns() - spin_ns;
    if (wait_ns > 0) {
      // An earlier deadline may arrive meanwhile (an arrival wakes this thread), and the clock
      // mapping may move (nothing wakes it): re-evaluate at least every kRemapNs, so a deadline
      // computed with a mapping later corrected never keeps the next event asleep.
      playout_cv_.wait_for(lock, std::chrono::nanoseconds(std::min(wait_ns, kRemapNs)));
      continue;
    }
    lock.unlock();
    while (clock_.now_ns() < local_deadline) {
    }
    playout_.release_due(
        session_.clock_sync().to_network(clock_.now_ns()),
        [this] { return session_.clock_sync().to_network(clock_.now_ns()); }, ns(opts_.playout_precision));
    lock.lock();
  }
}

}  // namespace ion
