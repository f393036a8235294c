#pragma once
// Node::Impl (private to nodes/src): the node's state and its parts, one file each:
//   node.cpp     construction, the node loop, stop, stats and registration waits
//   emit.cpp     the emit batcher: the driver's events coalesced per stream, encoded and queued
//                in the bounded send queue (driver threads); sent by the node loop
//   node.cpp     also the node's side of its broker session (session.h: connect and backoff,
//                Hello, Welcome and refusals, probes and heartbeats, the diagnoses, stalls; shared
//                with `ion record`): what the Hello says, what registration and refusal change
//   reports.cpp  what heartbeats carry: the node's health and its links' latency
//   receive.cpp  receive accounting (link and source sequences, lost and late) and the playout
//                thread that hands events to the driver at their deadlines
//   options.cpp  the config file's `node:` mapping
// Threads: the node loop owns the socket and the session; driver threads call emit (under
// emit_mu_); the playout thread delivers; stats readers may be on any thread.
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "ion/core/clock_sync.h"
#include "ion/core/codec.h"
#include "ion/core/counter.h"
#include "ion/core/frame_ring.h"
#include "ion/core/histogram.h"
#include "ion/core/log.h"
#include "ion/core/sequence.h"
#include "ion/core/transport.h"
#include "ion/node/dealer_link.h"
#include "ion/node/node.h"
#include "ion/node/playout.h"
#include "ion/node/session.h"
#include "ion/v1/ion.pb.h"

namespace ion {

class Node::Impl final : public Emitter, private SessionOwner {
 public:
  Impl(NodeOptions options, std::unique_ptr<Driver> driver, const Clock& clock);

  // One per stream the driver emits on (emit_mu_ guards them).
  struct OutStream {
    uint32_t stream = 0;
    uint64_t next_sequence = 0;
    uint64_t next_index = 0;
    EventBatch pending;  // coalesced emissions not yet encoded
    int64_t pending_since_ns = 0;
    int64_t last_send_ns = INT64_MIN / 2;
  };

  // --- Emitter (driver threads): emit.cpp
  EmitStatus emit(const EventBatch& batch) noexcept override;
  [[nodiscard]] int64_t local_now_ns() const noexcept override { return clock_.now_ns(); }
  [[nodiscard]] int64_t to_network_ns(int64_t local_ns) const noexcept override {
    return session_.clock_sync().to_network(local_ns);
  }

  // --- node.cpp
  void run();
  void stop() noexcept;
  NodeStats stats() const;
  Registration wait_registration(uint64_t count, std::chrono::milliseconds timeout,
                                 Refusal* refusal) const;
  Refusal last_refusal() const;
  int64_t next_deadline_local_ns() const noexcept;
  ClockEstimate clock_estimate(int64_t local_ns) const {
    return session_.clock_sync().estimate(local_ns);
  }
  bool wait_registered(uint64_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(reg_mu_);
    return reg_cv_.wait_for(lock, timeout,
                            [&] { return registrations_.get() >= count && session_.clock_sync().synced(); });
  }

  const NodeOptions opts_;
  std::unique_ptr<Driver> driver_;
  const DriverInfo info_;
  const DeviceDescription device_;  // sent in every Hello
  const std::vector<ChannelDescription> channels_;  // idem
  uint64_t epoch_ = 0;

 private:
  static int64_t ns(std::chrono::nanoseconds d) noexcept { return d.count(); }

  // Receiver-side state of one source stream seen at this node.
  struct SourceStream {
    SequenceTracker seq;
    bool index_known = false;
    uint64_t next_index = 0;
    uint64_t counted_to = 0;  // events of this epoch already in index_seen_
  };

  // --- emit.cpp
  bool encode_and_queue_locked(OutStream& s, const EventBatch& batch,
                               uint64_t& dropped_frames) noexcept;
  uint64_t send_pending_locked(OutStream& s) noexcept;
  void flush_batches(int64_t now, bool all) noexcept;
  void send_queued() noexcept;

  // --- node.cpp: SessionOwner
  void fill_hello(v1::Hello& h) noexcept override;
  void fill_heartbeat(v1::Heartbeat& hb, int64_t now) noexcept override;
  void on_registered(const v1::Welcome& w, bool broker_restarted) noexcept override;
  void on_unregistered() noexcept override;
  void on_synced() noexcept override;
  void on_refused(const Refusal& refusal) noexcept override;
  void wait_fd_ms(int ms) noexcept;
  int poll_timeout_ms(int64_t now) const noexcept;
  void receive_all() noexcept;
  void handle(const Frame& f, int64_t t_recv) noexcept;

  // --- reports.cpp
  void add_health(v1::NodeHealth& h) const noexcept;
  void add_latency_reports(v1::Heartbeat& hb, int64_t now) noexcept;

  // --- receive.cpp
  void on_batch(int64_t t_recv) noexcept;
  void playout_loop() noexcept;

  std::atomic<int64_t> next_batch_flush_ns_{INT64_MAX};

  // What `delay: auto` connections follow: each source's latency over the last 10-20 s.
  static constexpr int64_t kLatencyWindowNs = 10'000'000'000;
  struct LatencyWindow {
    Histogram current;
    Histogram total;  // since start: the link's histogram the broker publishes
    uint64_t previous_count = 0;
    int64_t previous_p999_ns = 0;
    int64_t previous_max_ns = 0;
  };

  const Clock& clock_;
  Codec codec_;       // loop thread
  Codec emit_codec_;  // driver threads, under emit_mu_
  DealerLink broker_link_;
  BrokerSession session_;  // node loop only, but for its clock mapping (any thread)
  Wakeup wakeup_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> registered_{false};

  std::mutex emit_mu_;
  FrameRing queue_;
  std::vector<OutStream> out_streams_;
  std::string emit_scratch_;
  LogLimiter emit_log_;
  bool send_blocked_ = false;

  std::string scratch_;
  BatchHeader in_header_;
  EventBatch in_events_;
  SequenceTracker link_;
  std::map<std::pair<std::string, uint32_t>, SourceStream> sources_;
  LogLimiter reject_log_;

  bool driver_started_ = false;
  bool start_driver_ = false;

  Playout playout_;
  Histogram latency_;                                  // end to end
  Histogram link_latency_;                             // broker -> this node
  std::map<uint32_t, LatencyWindow> latency_windows_;  // by source node id (loop thread)
  int64_t next_window_ns_ = 0;
  std::mutex playout_mu_;
  std::condition_variable playout_cv_;
  bool playout_stop_ = false;

  mutable std::mutex reg_mu_;
  mutable std::condition_variable reg_cv_;
  Refusal refusal_;  // reg_mu_

  Counter registrations_, broker_restarts_, emitted_events_, emitted_batches_, sent_batches_,
      dropped_events_, dropped_batches_, received_events_, received_batches_, lost_events_,
      lost_batches_, duplicate_or_reordered_, source_restarts_, rejected_frames_, index_seen_;
};

}  // namespace ion
