#pragma once
// `replay`: a recorded (or imported) source re-emitted as a live lab. Event i of the source goes
// out stamped start + (t_i - t_first - from) / speed, and is emitted when network time reaches
// that stamp, so a downstream lab sees what it would have seen live. Stamps are computed from
// the recording's integer times, never accumulated: an hour of replay does not drift.
//
// Standing in for a lab, a replay declares that lab's input ports (and output channels), so the
// broker routes to it what the lab would have received: it counts it (and keeps it, if asked)
// instead of acting on it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ion/core/config.h"
#include "ion/core/driver.h"

namespace ion::replay {

struct ReplayOptions {
  std::string file;        // recording (config use); the `ion replay` command passes events in
  std::string source;      // which source of the recording (empty: the only one)
  double speed = 1.0;      // 2 = twice as fast
  int64_t from_ns = 0;     // offset into the source (from its first event)
  int64_t to_ns = INT64_MAX;
  bool loop = false;       // start again after the last event (a period of span / speed + gap)
  std::chrono::microseconds loop_gap{1000000};
  std::map<uint32_t, uint32_t> remap;  // recorded channel -> emitted channel; unmapped: unchanged
  std::chrono::microseconds batch_interval{1000};  // emission tick
  uint32_t stream = 0;
  uint32_t channels = 0;   // output channels declared; 0: what the events need (after remap)
  uint32_t ports = 0;      // input ports declared (those of the lab it stands for)
  bool keep_inputs = false;  // keep what is delivered (received_inputs()), up to max_kept_inputs
  size_t max_kept_inputs = 10'000'000;

  static ReplayOptions from_config(const ConfigNode& driver);
};

struct ReplayEvents {
  std::vector<uint32_t> channels;
  std::vector<int64_t> times_ns;  // sorted
  std::vector<float> payload;     // empty or one per event
  EventKind kind = EventKind::spike;
  uint32_t channel_count = 0;
  std::vector<ChannelDescription> channel_info;  // the recording's names and positions, if any
};

// Names and positions follow their channels through a remap (unmapped ones keep their id; where
// channels merge, the first one's), in their order: live replays and `ion replay --to` alike.
[[nodiscard]] std::vector<ChannelDescription> remap_channel_info(const std::vector<ChannelDescription>& in,
                                                                 const std::map<uint32_t, uint32_t>& remap);

// One event delivered to the replay node (keep_inputs).
struct ReceivedInput {
  std::string source;  // the sending node
  EventKind kind = EventKind::spike;
  uint32_t port = 0;
  int64_t deadline_ns = 0;  // source time + the connection's delay
  float payload = 0;
  bool has_payload = false;
  bool late = false;
};

class ReplayDriver final : public Driver {
 public:
  // Events are taken as given (sorted by time), then cut to [from, to) and remapped.
  ReplayDriver(ReplayOptions options, ReplayEvents events);
  // Loads options.file and picks options.source. Throws std::runtime_error naming the file.
  explicit ReplayDriver(ReplayOptions options);
  ~ReplayDriver() override;

  [[nodiscard]] DriverInfo describe() const override;
  // The recording's channel names and positions (after --remap), so a live replay keeps them.
  [[nodiscard]] std::vector<ChannelDescription> channel_info() const override { return ev_.channel_info; }
  void start(Emitter& emitter) override;
  // Counts (and keeps, with keep_inputs) what is routed to the node's ports.
  void deliver(const BatchHeader& header, const EventBatch& events,
               const Delivery& delivery) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;

  // Network time of the first event; unset: the driver's start plus 200 ms. Several replay
  // nodes given the same start keep their recorded relative timing. Call before start().
  void set_start_network_ns(int64_t t) noexcept { start_ns_.store(t); }
  [[nodiscard]] bool finished() const noexcept { return finished_.load(); }
  [[nodiscard]] uint64_t emitted() const noexcept { return emitted_.load(); }
  [[nodiscard]] size_t size() const noexcept { return ev_.times_ns.size(); }
  // Worst lateness of an emission against its stamp (for the drift figure).
  [[nodiscard]] int64_t max_emit_lag_ns() const noexcept { return max_lag_.load(); }
  [[nodiscard]] int64_t last_emit_lag_ns() const noexcept { return last_lag_.load(); }
  [[nodiscard]] uint64_t inputs_received() const noexcept { return inputs_.load(); }
  // What was delivered, in delivery order (keep_inputs); call after stop().
  [[nodiscard]] std::vector<ReceivedInput> received_inputs() const;

 private:
  void loop(Emitter& emitter);
  ReplayOptions opts_;
  ReplayEvents ev_;
  int64_t span_ns_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<int64_t> start_ns_{INT64_MIN};
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> emitted_{0}, loops_{0}, rejected_{0};
  std::atomic<int64_t> max_lag_{0}, last_lag_{0};
  std::atomic<uint64_t> inputs_{0}, inputs_unknown_port_{0}, inputs_late_{0}, inputs_not_kept_{0};
  mutable std::mutex in_mu_;  // deliver() may overlap itself (late events): guards kept_
  std::vector<ReceivedInput> kept_;
};

// Converts loaded recording data for one source; "" picks the only spike source (throws if
// there are several, naming them).
ReplayEvents events_from_file(const std::string& file, const std::string& source,
                              std::string* chosen_name = nullptr);

}  // namespace ion::replay
