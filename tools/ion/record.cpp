#include "ion/record.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <thread>

#include <unistd.h>
#include <cstring>

#include "ion/broker/topology.h"
#include "ion/core/clock.h"
#include "ion/core/counter.h"
#include "ion/core/clock_sync.h"
#include "ion/core/codec.h"
#include "ion/core/config.h"
#include "ion/core/record.h"
#include "ion/core/transport.h"
#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

constexpr int64_t kMs = 1'000'000;


class Recorder {
 public:
  Recorder(const RecordOptions& o, std::ostream& out)
      : o_(o), out_(out), epoch_(random_epoch()), session_(random_epoch()) {
    SocketOptions so;
    so.recv_hwm = 100000;  // the broker's tap ring is the real bound; this only smooths bursts
    so.max_message_bytes = 64 << 20;
    so.immediate = false;  // Hello goes out as soon as the connection is up
    // Back soon after a broker restart: what it holds for recorders is kept for its startup grace.
    so.reconnect_interval_max_ms = 1000;
    so.curve_client = o.curve;
    sock_ = std::make_unique<Socket>(ctx_, Socket::Type::dealer, so);
    sock_->connect(o_.broker);
  }

  int run(const std::atomic<bool>& stop, RecordSummary& sum) {
    const int64_t start = clock_.now_ns();
    const int64_t end = o_.duration_s > 0 ? start + static_cast<int64_t>(o_.duration_s * 1e9) : INT64_MAX;
    int64_t next_hello = 0;
    int64_t next_status = 0;
    int64_t next_flush = 0;
    int64_t next_heartbeat = 0;
    int64_t next_probe_burst = 0;
    int64_t last_heard = start;
    while (!stop.load() && clock_.now_ns() < end) {
      const int64_t now = clock_.now_ns();
      if (refused_) break;  // what was recorded is closed properly; the status is still 2
      if (!welcomed_) {
        if (now - start > o_.connect_timeout.count() * kMs && writer_ == nullptr) {
          out_ << "ion record: no answer from " << o_.broker << " within "
               << o_.connect_timeout.count() << " ms\n";
          return 2;
        }
        if (now >= next_hello) {
          send_hello();
          next_hello = now + 250 * kMs;
        }
      } else {
        if (now >= next_heartbeat) {
          v1::Heartbeat hb;
          hb.set_sent_ns(now);
          if (codec_.encode(hb, scratch_)) (void)sock_->send(scratch_);
          next_heartbeat = now + heartbeat_ns_;
        }
        if (now >= next_status) {
          v1::StatusRequest r;
          r.set_request_id(++status_id_);
          r.set_include_topology(writer_ == nullptr);
          if (codec_.encode(r, scratch_)) (void)sock_->send(scratch_);
          next_status = now + o_.status_interval.count() * kMs;
        }
        if (now >= next_probe_burst && probes_left_ == 0) {
          probes_left_ = 8;
          next_probe_burst = now + (sync_.bursts() < 3 ? 1000 : 5000) * kMs;
        }
        if (probe_in_flight_ && now - probe_sent_ > 1000 * kMs) {  // lost probe: move on
          probe_in_flight_ = false;
          if (--probes_left_ == 0) sync_.end_burst();
        }
        if (probes_left_ > 0 && !probe_in_flight_) send_probe(now);
        if (now - last_heard > timeout_ns_) {
          spdlog::warn("ion record: broker silent; registering again");
          welcomed_ = false;
          last_heard = now;
        }
      }
      if (writer_ != nullptr && now >= next_flush) {
        (void)writer_->flush();
        next_flush = now + o_.flush_interval.count() * kMs;
      }
      if (poll_readable(*sock_, -1, 10) == 0) continue;
      Frame f;
      for (int i = 0; i < 4096 && sock_->recv(f) == IoStatus::ok; ++i) {
        last_heard = clock_.now_ns();
        on_frame(f, last_heard, sum);
      }
    }
    if (welcomed_) {
      v1::Goodbye g;
      g.set_reason("recording stopped");
      if (codec_.encode(g, scratch_)) (void)sock_->send(scratch_);
    }
    if (writer_ == nullptr) {
      out_ << "ion record: nothing recorded (the broker never answered the status request)\n";
      return 2;
    }
    v1::RecordMarker m;
    m.set_kind(v1::RecordMarker::RECORDING_STOPPED);
    m.set_network_ns(network_now());
    (void)writer_->marker(m);
    writer_->close();
    sum.batches = writer_->batches();
    sum.events = writer_->events();
    sum.bytes = writer_->bytes();
    sum.write_errors = writer_->write_errors();
    if (refused_) return 2;
    return sum.write_errors == 0 ? 0 : 1;
  }

 private:
  int64_t network_now() const { return sync_.synced() ? sync_.to_network(clock_.now_ns()) : clock_.now_ns(); }

  void send_hello() {
    v1::Hello h;
    h.set_node_name(o_.name);
    h.set_kind(v1::NODE_KIND_TOOL);
    h.set_protocol_version(kProtocolVersion);
    h.set_epoch(epoch_);
    h.set_software("ion record " ION_VERSION);
    h.set_tap(true);
    h.set_replace(o_.replace);
    for (const auto& n : o_.nodes) h.add_tap_sources(n);
    if (codec_.encode(h, scratch_)) (void)sock_->send(scratch_);
  }

  void send_probe(int64_t now) {
    v1::TimeRequest t;
    t.set_probe_id(++probe_id_);
    t.set_t0_ns(now);
    if (codec_.encode(t, scratch_) && sock_->send(scratch_) == IoStatus::ok) {
      probe_in_flight_ = true;
      probe_sent_ = now;
    }
  }

  void marker(v1::RecordMarker::Kind kind, const std::string& node, uint64_t count,
              const std::string& detail) {
    if (writer_ == nullptr) return;
    v1::RecordMarker m;
    m.set_kind(kind);
    m.set_network_ns(network_now());
    m.set_node(node);
    m.set_count(count);
    m.set_detail(detail);
    m.set_broker_epoch(broker_epoch_);
    m.set_anchor_network_ns(anchor_network_);
    m.set_anchor_utc_ns(anchor_utc_);
    (void)writer_->marker(m);
  }

  void on_frame(const Frame& f, int64_t t_recv, RecordSummary& sum) {
    const Decoded d = codec_.decode(bytes_of(f));
    if (!d.ok()) {
      ++sum.undecodable;
      return;
    }
    switch (d.body) {
      case Body::welcome: {
        const auto& w = codec_.welcome();
        if (broker_epoch_ != 0 && w.broker_epoch() != broker_epoch_) {
          ++sum.broker_restarts;
          sync_.reset();
          broker_epoch_ = w.broker_epoch();
          anchor_network_ = w.anchor_network_ns();
          anchor_utc_ = w.anchor_utc_ns();
          marker(v1::RecordMarker::BROKER_RESTARTED, "", 0, "new broker epoch");
          have_link_ = false;
        }
        broker_epoch_ = w.broker_epoch();
        anchor_network_ = w.anchor_network_ns();
        anchor_utc_ = w.anchor_utc_ns();
        heartbeat_ns_ = std::max<int64_t>(10, w.heartbeat_interval_ms()) * kMs;
        timeout_ns_ = std::max<int64_t>(50, w.heartbeat_timeout_ms()) * kMs;
        welcomed_ = true;
        name_wait_until_ = 0;
        break;
      }
      case Body::time_reply: {
        const auto& r = codec_.time_reply();
        if (!probe_in_flight_ || r.probe_id() != probe_id_) break;
        probe_in_flight_ = false;
        (void)sync_.add({r.t0_ns(), r.t1_ns(), r.t2_ns(), t_recv});
        if (--probes_left_ == 0) sync_.end_burst();
        break;
      }
      case Body::status_reply: on_status(sum); break;
      case Body::spike_batch: {
        if (codec_.take_batch({}, header_, events_) != Reject::none) {
          ++sum.undecodable;
          break;
        }
        if (have_link_ && header_.link_sequence > next_link_) {
          const uint64_t gap = header_.link_sequence - next_link_;
          sum.tap_gap_batches += gap;
          marker(v1::RecordMarker::TAP_GAP, header_.source_node, gap, "batches dropped by the broker for this recorder");
        }
        have_link_ = true;
        next_link_ = header_.link_sequence + 1;
        int64_t last = INT64_MIN;
        for (const int64_t t : events_.times_ns) last = std::max(last, t);
        const int64_t arrival = sync_.synced() ? sync_.to_network(t_recv) : header_.broker_time_ns;
        if (writer_ == nullptr) {
          if (early_.size() < 100000) {
            early_.push_back({arrival, std::string(static_cast<const char*>(f.data()), f.size()), events_.size(), last});
          } else {
            ++early_dropped_;
          }
          break;
        }
        (void)writer_->batch(arrival, bytes_of(f), events_.size(), last);
        break;
      }
      case Body::heartbeat:
        if (codec_.heartbeat().broker_epoch() != 0 && broker_epoch_ != 0 &&
            codec_.heartbeat().broker_epoch() != broker_epoch_) {
          welcomed_ = false;  // a new broker: register again (the Welcome records the restart)
        }
        break;
      case Body::error:
        if (codec_.error().code() == v1::Error::UNKNOWN_NODE) {
          welcomed_ = false;
        } else if (!welcomed_ && codec_.error().code() == v1::Error::NAME_IN_USE &&
                   codec_.error().retry_after_ms() > 0 &&
                   (name_wait_until_ == 0 || t_recv < name_wait_until_)) {
          // The holder may be this recorder's previous life: wait until a silent one is released.
          if (name_wait_until_ == 0) {
            name_wait_until_ = t_recv + (int64_t{codec_.error().retry_after_ms()} + 1000) * kMs;
          }
        } else if (!welcomed_ || codec_.error().code() == v1::Error::NAME_IN_USE) {
          // Refused, or (NAME_IN_USE while recording) another recorder took this name over.
          out_ << "ion record: the broker refused the recorder: " << codec_.error().message() << "\n";
          refused_ = true;
        }
        break;
      case Body::goodbye:
        spdlog::info("ion record: broker said goodbye ({}); waiting for it to come back",
                     codec_.goodbye().reason());
        welcomed_ = false;
        break;
      default: break;
    }
  }

  void on_status(RecordSummary& sum) {
    const v1::StatusReply& s = codec_.status_reply();
    if (writer_ == nullptr) {
      if (s.topology_yaml().empty()) return;  // asked before the Welcome; the next one has it
      open_writer(s);
    }
    v1::RecordStatus rs;
    rs.set_network_ns(s.network_ns());
    *rs.mutable_status() = s;
    rs.mutable_status()->clear_topology_yaml();
    (void)writer_->status(rs);
    ++sum.status_records;
    for (const auto& n : s.nodes()) {
      Seen& prev = seen_[n.name()];
      if (n.connected() && !prev.connected) marker(v1::RecordMarker::NODE_JOINED, n.name(), n.registrations(), "");
      if (!n.connected() && prev.connected) marker(v1::RecordMarker::NODE_LEFT, n.name(), 0, "");
      if (n.source_restarts() > prev.restarts) {
        marker(v1::RecordMarker::NODE_RESTARTED, n.name(), n.source_restarts() - prev.restarts, "new epoch");
      }
      prev.connected = n.connected();
      prev.restarts = n.source_restarts();
    }
  }

  void open_writer(const v1::StatusReply& s) {
    v1::RecordHeader h;
    h.set_session_id(session_);
    h.set_software("ion record " ION_VERSION);
    h.set_origin("ion record " + o_.broker);
    h.set_broker_epoch(s.broker_epoch());
    h.set_anchor_network_ns(s.anchor_network_ns());
    h.set_anchor_utc_ns(s.anchor_utc_ns());
    h.set_topology_yaml(s.topology_yaml());
    h.set_created_utc_ns(utc_now_ns());
    try {
      const Topology t = load_topology(ConfigNode::parse(s.topology_yaml(), "broker topology"));
      for (const auto& n : t.nodes) {
        v1::SourceDescription* d = h.add_sources();
        d->set_name(n.name);
        d->set_kind(n.kind);
        d->set_channels(n.channels);
      }
    } catch (const std::exception& e) {
      spdlog::warn("ion record: the broker's topology did not parse ({}); sources undescribed", e.what());
    }
    writer_ = std::make_unique<record::Writer>(o_.out, h);
    for (const auto& e : early_) {
      (void)writer_->batch(e.arrival, {reinterpret_cast<const uint8_t*>(e.frame.data()), e.frame.size()}, e.events, e.last);
    }
    early_.clear();
    if (early_dropped_ > 0) marker(v1::RecordMarker::TAP_GAP, "", early_dropped_, "dropped by the recorder before its header");
    out_ << "ion record: recording " << o_.broker << " into " << o_.out << "\n";
    out_.flush();
  }

 public:
  [[nodiscard]] bool refused() const { return refused_; }

 private:
  struct Early {
    int64_t arrival;
    std::string frame;
    uint64_t events;
    int64_t last;
  };
  struct Seen {
    bool connected = false;
    uint64_t restarts = 0;
  };
  RecordOptions o_;
  std::ostream& out_;
  zmq::context_t ctx_{1};
  std::unique_ptr<Socket> sock_;
  const Clock& clock_ = SteadyClock::instance();
  Codec codec_{{.max_message_bytes = 64u << 20, .max_events_per_batch = 1u << 22}};
  ClockSync sync_;
  std::string scratch_;
  BatchHeader header_;
  EventBatch events_;
  std::unique_ptr<record::Writer> writer_;
  std::vector<Early> early_;
  uint64_t early_dropped_ = 0;
  std::map<std::string, Seen> seen_;
  uint64_t epoch_;
  uint64_t session_;
  uint64_t broker_epoch_ = 0;
  int64_t anchor_network_ = 0;
  int64_t anchor_utc_ = 0;
  int64_t heartbeat_ns_ = 500 * kMs;
  int64_t timeout_ns_ = 3000 * kMs;
  bool welcomed_ = false;
  bool refused_ = false;
  int64_t name_wait_until_ = 0;  // NAME_IN_USE: until when a silent holder may be released
  bool have_link_ = false;
  uint64_t next_link_ = 0;
  uint64_t status_id_ = 0;
  uint32_t probe_id_ = 0;
  int probes_left_ = 0;
  bool probe_in_flight_ = false;
  int64_t probe_sent_ = 0;
};

}  // namespace

std::string default_recorder_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "host");
  // A second recorder in the same process (tests, an embedding program) gets a suffix.
  static std::atomic<uint32_t> made{0};
  const uint32_t n = made.fetch_add(1);
  return "recorder-" + std::string(host) + "-" + std::to_string(::getpid()) +
         (n == 0 ? std::string() : "-" + std::to_string(n + 1));
}

int run_record(const RecordOptions& o, const std::atomic<bool>& stop, std::ostream& out,
               RecordSummary* summary) {
  if (o.out.empty()) {
    out << "ion record: -o FILE is required\n";
    return 2;
  }
  if (const std::string why = endpoint_problem(o.broker); !why.empty()) {
    out << "ion record: --broker " << why << "\n";
    return 2;
  }
  RecordOptions opts = o;
  if (opts.name.empty()) opts.name = default_recorder_name();
  Recorder r(opts, out);
  RecordSummary s;
  const int rc = r.run(stop, s);
  if (rc != 2) {
    out << "ion record: " << s.events << " events in " << s.batches << " batches, " << s.bytes
        << " bytes; " << s.tap_gap_batches << " batches dropped by the broker for the recorder; "
        << s.broker_restarts << " broker restarts; " << s.undecodable << " undecodable frames\n";
  }
  if (summary != nullptr) *summary = s;
  return rc;
}

}  // namespace ion
