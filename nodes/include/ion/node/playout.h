#pragma once
// Playout: holds each routed event until its deadline (source time + connection delay, in network
// time) and then hands it to the driver. Events that arrive after their deadline are never passed
// off as on time: the connection's policy delivers them at once flagged late, or drops them; both
// are counted, with a lateness histogram. This class has no thread and no clock, so it is tested
// deterministically; the node runs it from a thread that sleeps, then spins the last stretch.
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <string>
#include <vector>

#include "ion/core/counter.h"
#include "ion/core/driver.h"
#include "ion/core/histogram.h"

namespace ion {

struct PlayoutStats {
  uint64_t on_time_events = 0;     // released at their deadline
  uint64_t late_events = 0;        // arrived after their deadline (either policy)
  uint64_t late_delivered = 0;     // ... and delivered flagged late
  uint64_t late_dropped = 0;       // ... and dropped by policy
  uint64_t overflow_dropped = 0;   // queue full (bounded by configuration)
  uint64_t abandoned = 0;          // still queued when the node stopped
  // Arrived in time but handed over more than the stated precision after their deadline (the
  // release thread was held up, e.g. on a loaded machine): flagged late to the device, counted.
  uint64_t overrun_events = 0;
  int64_t delivery_error_p50_ns = 0;  // release - deadline, on-time events
  int64_t delivery_error_p99_ns = 0;
  int64_t delivery_error_max_ns = 0;
  int64_t lateness_p99_ns = 0;        // arrival - deadline, late events
  int64_t lateness_max_ns = 0;
  size_t queued = 0;
};

class Playout {
 public:
  using Release = std::function<void(const BatchHeader&, const EventBatch&, const Delivery&)>;

  Playout(size_t capacity_events, Release release);

  // Takes a batch that arrived at network time `arrival_ns` (INT64_MAX: unknown, so nothing can
  // be proven on time, and such events are handed over at once, flagged late). Late events are
  // dropped or queued flagged for release at once, but behind older events of their stream.
  void accept(const BatchHeader& header, const EventBatch& events, int64_t arrival_ns) noexcept;
  // Releases every queued event with deadline <= now_ns, in deadline order (ties in arrival
  // order). Returns how many were released.
  size_t release_due(int64_t now_ns) noexcept;
  // The same, reading `clock` (network time) again before handing over each batch: events that
  // would reach the device more than `precision_ns` after their deadline go flagged late and are
  // counted as overruns, so a held-up release is never passed off as on time.
  size_t release_due(int64_t now_ns, const std::function<int64_t()>& clock, int64_t precision_ns) noexcept;
  // Empties the queue without delivering (the node is stopping); returns and counts the events.
  size_t abandon() noexcept;
  // Earliest queued deadline, or INT64_MAX when nothing waits.
  [[nodiscard]] int64_t next_deadline() const noexcept;
  [[nodiscard]] PlayoutStats stats() const;

 private:
  struct Source {
    BatchHeader header;  // source fields only
    uint32_t stream;
    EventKind kind;
  };
  struct Item {
    int64_t deadline_ns;
    uint64_t order;
    uint32_t source;
    uint32_t port;
    int64_t time_ns;
    float payload;
    bool has_payload;
    bool late;  // arrived after its deadline but must wait behind older events of its stream
    bool operator>(const Item& o) const noexcept {
      return deadline_ns != o.deadline_ns ? deadline_ns > o.deadline_ns : order > o.order;
    }
  };
  uint32_t source_slot(const BatchHeader& h, const EventBatch& e);
  // Per (source, stream, epoch): the latest deadline queued. Deadlines never go backwards within a
  // stream, so a connection whose delay was lowered cannot deliver out of order.
  struct StreamClock {
    uint32_t source_node_id;
    uint32_t stream;
    uint64_t epoch;
    int64_t last_deadline_ns;
  };
  StreamClock& stream_clock(const BatchHeader& h, const EventBatch& e);
  std::vector<StreamClock> stream_clocks_;
  void emit(uint32_t source, const EventBatch& events, const Delivery& d) noexcept;

  const size_t capacity_;
  Release release_;
  mutable std::mutex mu_;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap_;
  std::vector<Source> sources_;
  uint64_t order_ = 0;
  std::vector<Item> due_;      // release scratch (release thread only)
  EventBatch out_;             // release scratch
  EventBatch late_out_;        // accept scratch (accept thread only)

  Counter on_time_, late_, late_delivered_, late_dropped_, overflow_, abandoned_, overrun_;
  Histogram delivery_error_;
  Histogram lateness_;
};

}  // namespace ion
