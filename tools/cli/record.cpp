#include "cli/record.h"
#include "cli/command.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
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
#include "ion/node/dealer_link.h"
#include "ion/node/session.h"
#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

constexpr int64_t kMs = 1'000'000;

SocketOptions recorder_socket_options(const RecordOptions& o) {
  SocketOptions so;
  so.recv_hwm = 100000;  // the broker's tap ring is the real bound; this only smooths bursts
  so.max_message_bytes = 64 << 20;
  so.immediate = false;  // Hello goes out as soon as the connection is up
  // Back soon after a broker restart: what it holds for recorders is kept for its startup grace.
  so.reconnect_interval_max_ms = 1000;
  so.curve_client = o.curve;
  return so;
}

SessionOptions recorder_session_options(const RecordOptions& o) {
  SessionOptions so;
  so.broker = o.broker;
  so.who = "recorder '" + o.name + "'";
  so.broker_setting = "--broker";
  so.curve = o.curve.has_value();
  so.reconnect_min = std::chrono::milliseconds(100);
  so.reconnect_max = std::chrono::milliseconds(1000);
  so.probe_burst = 8;
  so.resync_interval = std::chrono::milliseconds(5000);
  return so;
}

constexpr CodecLimits kRecorderLimits{.max_message_bytes = 64u << 20,
                                      .max_events_per_batch = 1u << 22};

// A tap on the broker through the shared broker session (session.h): the session registers,
// keeps the clock mapping and survives restarts; the recorder writes what it is sent.
class Recorder final : private SessionOwner {
 public:
  Recorder(const RecordOptions& o, std::ostream& out)
      : o_(o),
        out_(out),
        link_(o.broker, recorder_socket_options(o), "recorder '" + o.name + "'"),
        session_(recorder_session_options(o), link_, *this, clock_, kRecorderLimits),
        epoch_(random_epoch()),
        session_id_(random_epoch()) {}

  int run(const std::atomic<bool>& stop, RecordSummary& sum) {
    sum_ = &sum;
    const int64_t start = clock_.now_ns();
    const int64_t end = o_.duration_s > 0 ? start + static_cast<int64_t>(o_.duration_s * 1e9) : INT64_MAX;
    int64_t next_status = 0;
    int64_t next_flush = 0;
    while (!stop.load() && clock_.now_ns() < end) {
      const int64_t now = clock_.now_ns();
      if (refused_) break;  // what was recorded is closed properly; the status is still 2
      session_.check_stall(now);
      session_.tick(now);
      if (!welcomed_once_ && writer_ == nullptr && now - start > o_.connect_timeout.count() * kMs) {
        out_ << "ion record: no answer from " << o_.broker << " within "
             << o_.connect_timeout.count() << " ms\n";
        return 2;
      }
      if (session_.registered() && now >= next_status) {
        (void)ask_status();
        next_status = now + o_.status_interval.count() * kMs;
      }
      if (writer_ != nullptr && now >= next_flush) {
        (void)writer_->flush();
        next_flush = now + o_.flush_interval.count() * kMs;
      }
      const int wait_ms = std::min(session_.poll_timeout_ms(now), 10);
      Socket* socket = link_.socket();
      if (socket == nullptr) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::max(wait_ms, 1)));  // until reconnect
        continue;
      }
      if (poll_readable(*socket, -1, wait_ms) == 0) continue;
      Frame f;
      for (int i = 0; i < 4096; ++i) {
        socket = link_.socket();  // a frame may close the link (goodbye, refusal)
        if (socket == nullptr || socket->recv(f) != IoStatus::ok) break;
        on_frame(f, clock_.now_ns());
      }
    }
    if (writer_ != nullptr && !refused_ && session_.registered()) final_status();
    session_.close("recording stopped");
    if (writer_ == nullptr) {
      if (refused_) return 2;  // said in on_refused
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
  int64_t network_now() const {
    const ClockSync& sync = session_.clock_sync();
    return sync.synced() ? sync.to_network(clock_.now_ns()) : clock_.now_ns();
  }

  // --- SessionOwner
  void fill_hello(v1::Hello& h) noexcept override {
    h.set_node_name(o_.name);
    h.set_kind(v1::NODE_KIND_TOOL);
    h.set_epoch(epoch_);
    h.set_software("ion record " ION_VERSION);
    h.set_tap(true);
    h.set_replace(o_.replace);
    for (const auto& n : o_.nodes) h.add_tap_sources(n);
  }

  void on_registered(const v1::Welcome& w, bool broker_restarted) noexcept override {
    broker_epoch_ = w.broker_epoch();
    anchor_network_ = w.anchor_network_ns();
    anchor_utc_ = w.anchor_utc_ns();
    if (broker_restarted) {
      ++sum_->broker_restarts;
      marker(v1::RecordMarker::BROKER_RESTARTED, "", 0, "new broker epoch");
      have_link_ = false;
    }
    welcomed_once_ = true;
  }

  void on_refused(const Refusal& r) noexcept override {
    // Refused, or (name in use while recording) another recorder took this name over.
    if (refused_) return;
    out_ << "ion record: " << r.reason << "\n";
    refused_ = true;
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

  void on_frame(const Frame& f, int64_t t_recv) {
    RecordSummary& sum = *sum_;
    const Decoded d = codec_.decode(bytes_of(f));
    if (!d.ok()) {
      ++sum.undecodable;
      return;
    }
    if (session_.on_frame(d.body, codec_, t_recv)) return;
    switch (d.body) {
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
        const ClockSync& sync = session_.clock_sync();
        const int64_t arrival = sync.synced() ? sync.to_network(t_recv) : header_.broker_time_ns;
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
      default: break;
    }
  }

  // A StatusRequest (with the topology until the file is open); false if it could not be sent.
  bool ask_status() {
    v1::StatusRequest r;
    r.set_request_id(++status_id_);
    r.set_include_topology(writer_ == nullptr);
    // Channel names and positions: every node's for the header, then those of the nodes that
    // (re)joined until a reply has described them in full (a reply holds a bounded number).
    r.set_include_channels(writer_ == nullptr);
    for (const std::string& n : undescribed_) r.add_channels_of(n);
    return codec_.encode(r, scratch_) && link_.send(scratch_);
  }

  // One last status record, so that the counters a report shows as final are taken at the end
  // (what arrives meanwhile is still recorded). At most a second: a broker that does not answer
  // leaves the last periodic one.
  void final_status() {
    if (!ask_status()) return;
    const uint64_t asked = status_id_;
    const int64_t give_up = clock_.now_ns() + 1000 * kMs;
    while (last_status_id_ < asked && clock_.now_ns() < give_up) {
      Socket* socket = link_.socket();
      if (socket == nullptr) return;  // the link closed (a goodbye): no answer is coming
      if (poll_readable(*socket, -1, 10) == 0) continue;
      Frame f;
      while (last_status_id_ < asked && (socket = link_.socket()) != nullptr && socket->recv(f) == IoStatus::ok) {
        on_frame(f, clock_.now_ns());
      }
    }
  }

  void on_status(RecordSummary& sum) {
    const v1::StatusReply& s = codec_.status_reply();
    last_status_id_ = std::max(last_status_id_, s.request_id());
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
      // A registration since the last reply (even one that came and went in between): the broker
      // keeps what its Hello declared, so a later status record can carry it; asked for until one
      // does in full.
      if (n.registrations() != prev.registrations) undescribed_.insert(n.name());
      if (static_cast<uint32_t>(n.channel_info_size()) == n.channels_described()) undescribed_.erase(n.name());
      prev.connected = n.connected();
      prev.restarts = n.source_restarts();
      prev.registrations = n.registrations();
    }
  }

  void open_writer(const v1::StatusReply& s) {
    v1::RecordHeader h;
    h.set_session_id(session_id_);
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
        // A device with its own time base says so in its Hello; nodes that register later say
        // it in the status records.
        for (const auto& ns : s.nodes()) {
          if (ns.name() != n.name) continue;
          if (ns.has_device()) *d->mutable_device() = ns.device();
          for (const auto& c : ns.channel_info()) *d->add_channel_info() = c;
        }
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
    uint64_t registrations = 0;
  };
  RecordOptions o_;
  std::ostream& out_;
  const Clock& clock_ = SteadyClock::instance();
  DealerLink link_;
  BrokerSession session_;
  Codec codec_{kRecorderLimits};
  std::string scratch_;
  BatchHeader header_;
  EventBatch events_;
  std::unique_ptr<record::Writer> writer_;
  std::vector<Early> early_;
  uint64_t early_dropped_ = 0;
  std::map<std::string, Seen> seen_;
  RecordSummary* sum_ = nullptr;
  uint64_t epoch_;
  uint64_t session_id_;
  uint64_t broker_epoch_ = 0;
  int64_t anchor_network_ = 0;
  int64_t anchor_utc_ = 0;
  bool welcomed_once_ = false;
  bool refused_ = false;
  bool have_link_ = false;
  uint64_t next_link_ = 0;
  uint64_t status_id_ = 0;
  uint64_t last_status_id_ = 0;  // the newest status reply seen
  std::set<std::string> undescribed_;  // nodes whose channel descriptions no record holds yet
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

namespace ion::cli {
namespace {

class RecordCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& ctx) override {
    c_ = parent.add_subcommand(
        "record", "join a broker as a tap and record every batch (or chosen nodes') to a file");
    c_->add_option("--broker", o_.broker, "broker endpoint")->capture_default_str();
    c_->add_option("-o,--out", o_.out, "recording file to write")->required();
    c_->add_option("--nodes", o_.nodes, "record only these nodes")->delimiter(',');
    c_->add_option("--name", o_.name, "the recorder's name at the broker (default: recorder-HOST-PID)");
    c_->add_flag("--replace", o_.replace,
                 "take the name over from a live recorder holding it (that one stops)");
    c_->add_option("--duration", o_.duration_s, "seconds to record (0: until Ctrl-C)")
        ->check(CLI::Range(0.0, 1e7))->capture_default_str();
    c_->add_option("--flush-ms", flush_ms_, "records reach the kernel this often")
        ->check(CLI::Range(1.0, 60000.0))->capture_default_str();
    ctx.add_client_keys(c_);
    ctx.add_force(c_);
    return c_;
  }
  int run(Context& ctx) override {
    ctx.check_output(o_.out, {}, "-o");
    o_.curve = ctx.client_keys();
    // A recorder is known by its key's name unless told otherwise.
    if (o_.curve && c_->count("--name") == 0) o_.name = o_.curve->name;
    o_.flush_interval = std::chrono::milliseconds(static_cast<int64_t>(flush_ms_));
    ctx.catch_signals();
    return run_record(o_, ctx.stop, ctx.out);
  }

 private:
  CLI::App* c_ = nullptr;
  RecordOptions o_;
  double flush_ms_ = 100;
};

}  // namespace

std::unique_ptr<Command> make_record_command() { return std::make_unique<RecordCommand>(); }

}  // namespace ion::cli
