#pragma once
// Events travel as column-wise batches (structure of arrays): cheap to fill, route and encode.
#include <cstdint>
#include <string>
#include <vector>

namespace ion {

enum class EventKind : uint8_t {
  spike = 0,            // a neuron or electrode fired
  synaptic_input = 1,   // payload = weight
  stimulation = 2,      // payload = amplitude
  neuromodulator = 3,   // payload = concentration
};
inline constexpr uint8_t kEventKindCount = 4;

[[nodiscard]] const char* to_string(EventKind kind) noexcept;

// What a driver emits: events of one kind on one stream. Times are network time in ns.
struct EventBatch {
  uint32_t stream = 0;
  EventKind kind = EventKind::spike;
  std::vector<uint32_t> channels;
  std::vector<int64_t> times_ns;
  std::vector<float> payload;  // empty, or one value per event

  [[nodiscard]] size_t size() const noexcept { return channels.size(); }
  [[nodiscard]] bool empty() const noexcept { return channels.empty(); }
  [[nodiscard]] bool has_payload() const noexcept { return !payload.empty(); }
  void clear() noexcept {
    channels.clear();
    times_ns.clear();
    payload.clear();
  }
  void reserve(size_t n) {
    channels.reserve(n);
    times_ns.reserve(n);
  }
  void push(uint32_t channel, int64_t time_ns) {
    channels.push_back(channel);
    times_ns.push_back(time_ns);
  }
  void push(uint32_t channel, int64_t time_ns, float value) {
    push(channel, time_ns);
    payload.push_back(value);
  }
};

// What a target does with an event that arrives after its deadline. Both outcomes are counted.
enum class LatePolicy : uint8_t { deliver_flagged = 0, drop = 1 };

// Everything in a batch frame besides the columns: the source's header and, on the copy the
// broker delivers, the routing header.
struct BatchHeader {
  // Source header.
  uint64_t epoch = 0;        // source node epoch (random per process start)
  uint64_t sequence = 0;     // batch number within (stream, epoch)
  uint64_t first_index = 0;  // events emitted on the stream before this batch
  // Routing header (zero on frames from a node).
  uint32_t source_node_id = 0;
  std::string source_node;
  uint64_t broker_epoch = 0;
  uint64_t link_sequence = 0;
  int64_t delay_ns = 0;
  bool complete = false;
  LatePolicy late_policy = LatePolicy::deliver_flagged;
  int64_t broker_time_ns = 0;  // network time the broker queued this copy
};

}  // namespace ion
