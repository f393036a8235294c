#pragma once
// The seam between a node daemon and its device. A node hosts exactly one driver.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ion/core/event_batch.h"

namespace ion {

// What a device's time and values mean when they are not network time and physical units (sent
// in the Hello: ion.v1.DeviceDescription; Driver::device()). Empty `model`: nothing to declare.
struct DeviceDescription {
  std::string model;
  std::string time_base = "physical";  // or "md": a simulation's time and scaled values
  std::string time_unit = "ms";
  double time_scale = 1;               // network seconds per device second
  std::string voltage_unit;
  std::string current_unit;
  bool simulation_scaled = false;
};

// A channel's name and, for an electrode, its position (sent in the Hello: ion.v1.ChannelInfo).
struct ChannelDescription {
  uint32_t id = 0;
  std::string name;
  double x_um = 0;
  double y_um = 0;
};

struct DriverInfo {
  std::string kind;             // "generator", "sink", "mea", ...
  int node_kind = 0;            // ion.v1.NodeKind value
  uint32_t output_channels = 0;
  uint32_t input_ports = 0;
};

enum class EmitStatus : uint8_t {
  queued,         // taken; it will be sent when the broker is reachable
  queued_dropping_oldest,  // taken, but older queued batches were dropped (counted)
  rejected,       // invalid batch (columns, channels, too many events); counted, not sent
};

// Handed to the driver at start; callable from any driver thread. Never blocks.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual EmitStatus emit(const EventBatch& batch) noexcept = 0;
  // The node's monotonic clock, for pacing device threads and stamping acquisitions.
  [[nodiscard]] virtual int64_t local_now_ns() const noexcept = 0;
  // A local monotonic time -> the node's current estimate of network time (the broker's clock).
  [[nodiscard]] virtual int64_t to_network_ns(int64_t local_ns) const noexcept = 0;
  [[nodiscard]] int64_t network_now_ns() const noexcept { return to_network_ns(local_now_ns()); }
};

// How an event batch reaches the driver.
struct Delivery {
  int64_t release_network_ns = 0;  // when the node handed it over, network time
  bool late = false;               // arrived after its deadline (policy deliver_flagged)
};

class Driver {
 public:
  virtual ~Driver() = default;
  [[nodiscard]] virtual DriverInfo describe() const = 0;
  // A device whose time or values are not network time and physical units says what they are.
  [[nodiscard]] virtual DeviceDescription device() const { return {}; }
  // The channels' names and electrode positions, when the device knows them (empty: it does not).
  [[nodiscard]] virtual std::vector<ChannelDescription> channel_info() const { return {}; }
  // Called once when the node first has network time; may start threads. May throw.
  virtual void start(Emitter& emitter) = 0;
  // Called from the node's playout thread with events routed to this node (ports in `channels`),
  // each at its deadline (events.times_ns[i] + header.delay_ns, network time), or at once with
  // `late` set if it arrived after that deadline and the connection's policy delivers late events.
  // Late events are handed over from the node's receive thread, so two calls may overlap: an
  // implementation guards what it shares.
  virtual void deliver(const BatchHeader& header, const EventBatch& events,
                       const Delivery& delivery) noexcept = 0;
  // Stops producing; idempotent.
  virtual void stop() noexcept = 0;
  // Driver-specific counters for status output, sent to the broker in every heartbeat.
  [[nodiscard]] virtual std::map<std::string, int64_t> counters() const { return {}; }
  // The names among counters() that count device trouble: an event that reached the device after
  // its deadline, processing that fell behind real time, a device queue that was full. Their sum
  // is the node's device_trouble, shown red in status, dashboard, metrics and report when > 0.
  [[nodiscard]] virtual std::vector<std::string> trouble_counters() const { return {}; }
  // Current values the device state is summed up by, by name (e.g. "weight": one per synapse,
  // NaN while unknown); sent in every heartbeat and shown by status, /metrics and the dashboard.
  [[nodiscard]] virtual std::map<std::string, std::vector<float>> gauges() const { return {}; }
};

// The sum of a driver's trouble counters: 0 on a healthy run.
[[nodiscard]] inline uint64_t device_trouble(const Driver& d) {
  const std::map<std::string, int64_t> c = d.counters();
  uint64_t sum = 0;
  for (const std::string& name : d.trouble_counters()) {
    const auto it = c.find(name);
    if (it != c.end() && it->second > 0) sum += static_cast<uint64_t>(it->second);
  }
  return sum;
}

}  // namespace ion
