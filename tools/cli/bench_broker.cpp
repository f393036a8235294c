#include "cli/bench_broker.h"
#include "cli/command.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <thread>
#include <vector>

#include "ion/broker/broker.h"
#include "ion/broker/http.h"
#include "ion/core/clock.h"
#include "ion/core/codec.h"
#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

constexpr uint32_t kChannels = 256;

int64_t now_ns() { return SteadyClock::instance().now_ns(); }

struct Throughput {
  uint64_t dropped = 0;  // frames that never reached the consumer
  double events_per_s = 0;
  double messages_per_s = 0;
  uint64_t bytes_per_message = 0;
};

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  uint64_t samples = 0;
};

Latency percentiles(std::vector<int64_t>& v) {
  Latency l;
  if (v.empty()) return l;
  std::sort(v.begin(), v.end());
  auto q = [&](double p) { return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))]) / 1e3; };
  l.p50_us = q(0.5);
  l.p99_us = q(0.99);
  l.p999_us = q(0.999);
  l.samples = v.size();
  return l;
}

// A SpikeBatch frame of `events` events as a node would send it, stamped `t_ns`.
std::string node_frame(Codec& codec, uint64_t sequence, uint32_t events, int64_t t_ns) {
  EventBatch b;
  for (uint32_t i = 0; i < events; ++i) b.push((static_cast<uint32_t>(sequence) * 7 + i) % kChannels, t_ns + i);
  BatchHeader h;
  h.epoch = 1;
  h.sequence = sequence;
  h.first_index = sequence * events;
  std::string f;
  (void)codec.encode_batch(h, b, f);
  return f;
}

void paced_wait(int64_t until_ns) {
  while (true) {
    const int64_t left = until_ns - now_ns();
    if (left <= 0) return;
    if (left > 200'000) std::this_thread::sleep_for(std::chrono::nanoseconds(left - 100'000));
  }
}

// --- Baseline: DEALER -> ROUTER forwarding -> DEALER, no parsing --------------------------------

class RawPath {
 public:
  // The forwarder has its own context (its own I/O thread), as the broker does: a separate
  // process in a real deployment.
  RawPath() : router_(fwd_ctx_, zmq::socket_type::router), prod_(ctx_, zmq::socket_type::dealer), cons_(ctx_, zmq::socket_type::dealer) {
    for (zmq::socket_t* s : {&router_, &prod_, &cons_}) {
      s->set(zmq::sockopt::linger, 0);
      s->set(zmq::sockopt::sndhwm, 1000);
      s->set(zmq::sockopt::rcvhwm, 1000);
    }
    router_.bind("tcp://127.0.0.1:*");
    const std::string ep = router_.get(zmq::sockopt::last_endpoint);
    cons_.set(zmq::sockopt::routing_id, "c");
    prod_.set(zmq::sockopt::routing_id, "p");
    cons_.connect(ep);
    prod_.connect(ep);
    (void)cons_.send(zmq::str_buffer("ready"), zmq::send_flags::none);  // the router learns "c"
    zmq::message_t id;
    zmq::message_t body;
    (void)router_.recv(id);
    (void)router_.recv(body);
    forwarder_ = std::thread([this] {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::message_t from;
      zmq::message_t msg;
      while (!stop_.load(std::memory_order_relaxed)) {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) <= 0) continue;
        while (router_.recv(from, zmq::recv_flags::dontwait)) {
          (void)router_.recv(msg);
          (void)router_.send(zmq::str_buffer("c"), zmq::send_flags::sndmore);
          (void)router_.send(msg, zmq::send_flags::none);  // the same message: zero-copy
        }
      }
    });
  }
  ~RawPath() {
    stop_.store(true);
    forwarder_.join();
  }
  zmq::socket_t& producer() { return prod_; }
  zmq::socket_t& consumer() { return cons_; }

 private:
  zmq::context_t fwd_ctx_{1};
  zmq::context_t ctx_{1};
  zmq::socket_t router_;
  zmq::socket_t prod_;
  zmq::socket_t cons_;
  std::atomic<bool> stop_{false};
  std::thread forwarder_;
};

// --- IoN: the broker with one producer node and one consumer node (raw DEALERs speaking IoN) ---

class IonPath {
 public:
  IonPath() : running_(options()), prod_(ctx_, zmq::socket_type::dealer), cons_(ctx_, zmq::socket_type::dealer) {
    endpoint_ = running_.endpoint();
    for (zmq::socket_t* s : {&prod_, &cons_}) {
      s->set(zmq::sockopt::linger, 0);
      s->set(zmq::sockopt::sndhwm, 1000);
      s->set(zmq::sockopt::rcvhwm, 1000);
      s->connect(endpoint_);
    }
    hello(prod_, "p0", kChannels, 0);
    hello(cons_, "c0", 0, kChannels);
  }
  ~IonPath() { running_.stop(); }
  zmq::socket_t& producer() { return prod_; }
  zmq::socket_t& consumer() { return cons_; }
  Broker& broker() { return running_.broker(); }

 private:
  static BrokerOptions options() {
    BrokerOptions o;
    o.listen = "tcp://127.0.0.1:*";
    o.topology.nodes = {{"p0", "generator", kChannels, 0}, {"c0", "sink", 0, kChannels}};
    o.topology.connections = {connect_whole("p0", "c0", 1'000'000, "bench")};
    o.heartbeat_timeout = std::chrono::seconds(600);  // the raw peers do not heartbeat
    o.stats_interval = std::chrono::milliseconds(0);
    o.max_taps = 0;
    return o;
  }
  void hello(zmq::socket_t& s, const std::string& name, uint32_t channels, uint32_t ports) {
    v1::Hello h;
    h.set_node_name(name);
    h.set_protocol_version(kProtocolVersion);
    h.set_output_channels(channels);
    h.set_input_ports(ports);
    h.set_epoch(1);
    std::string f;
    (void)codec_.encode(h, f);
    (void)s.send(zmq::buffer(f), zmq::send_flags::none);
    zmq::message_t m;
    while (true) {  // Welcome (skip anything else)
      (void)s.recv(m);
      if (codec_.decode({static_cast<const uint8_t*>(m.data()), m.size()}).body == Body::welcome) return;
    }
  }
  Codec codec_;
  BrokerThread running_;
  std::string endpoint_;
  zmq::context_t ctx_{1};
  zmq::socket_t prod_;
  zmq::socket_t cons_;
};

// True for a data frame (IoN: a SpikeBatch; raw: anything).
bool codec_peek(const zmq::message_t& m) {
  return peek_body({static_cast<const uint8_t*>(m.data()), m.size()}) == Body::spike_batch;
}

// Sends the frames as fast as the path takes them; the consumer counts until all arrived.
template <class Path>
Throughput throughput(Path& path, const std::vector<std::string>& frames, uint32_t events_per_frame) {
  int64_t last = 0;
  size_t got = 0;
  std::thread consumer([&] {
    zmq::message_t m;
    zmq::pollitem_t item{path.consumer().handle(), 0, ZMQ_POLLIN, 0};
    // Until everything came, or nothing more for half a second (what was dropped on the way:
    // a ROUTER drops at a full peer queue, IoN's broker drops the oldest at a full ring).
    while (got < frames.size()) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(500)) <= 0) break;
      while (got < frames.size() && path.consumer().recv(m, zmq::recv_flags::dontwait)) {
        if (codec_peek(m)) {
          ++got;
          last = now_ns();
        }
      }
    }
  });
  const int64_t t0 = now_ns();
  for (const auto& f : frames) (void)path.producer().send(zmq::buffer(f), zmq::send_flags::none);
  consumer.join();
  Throughput t;
  const double s = static_cast<double>(std::max<int64_t>(1, last - t0)) * 1e-9;
  t.messages_per_s = static_cast<double>(got) / s;
  t.events_per_s = t.messages_per_s * events_per_frame;
  t.bytes_per_message = frames.empty() ? 0 : frames[0].size();
  t.dropped = frames.size() - got;
  return t;
}

int64_t rss_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char buf[256];
  int64_t kib = 0;
  while (std::fgets(buf, sizeof buf, f) != nullptr) {
    if (std::strncmp(buf, "VmRSS:", 6) == 0) kib = std::strtoll(buf + 6, nullptr, 10);
  }
  std::fclose(f);
  return kib;
}

// 1 M events/s in batches of 64 through the broker for `seconds`; RSS after a 10 % warm-up
// against RSS at the end (the whole process: broker, producer, consumer).
int soak(double seconds, bool json, std::ostream& out) {
  IonPath ion;
  Codec codec;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> got{0};
  std::thread consumer([&] {
    zmq::message_t m;
    zmq::pollitem_t item{ion.consumer().handle(), 0, ZMQ_POLLIN, 0};
    while (!stop.load()) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
      while (ion.consumer().recv(m, zmq::recv_flags::dontwait)) got.fetch_add(1);
    }
  });
  constexpr uint32_t kBatch = 64;
  constexpr double kRate = 1e6 / kBatch;  // frames per second
  const int64_t start = now_ns();
  const auto total = static_cast<uint64_t>(seconds * kRate);
  int64_t rss_warm = 0;
  int64_t rss_peak = 0;
  for (uint64_t i = 0; i < total; ++i) {
    paced_wait(start + static_cast<int64_t>(static_cast<double>(i) * 1e9 / kRate));
    const std::string f = node_frame(codec, i, kBatch, now_ns());
    (void)ion.producer().send(zmq::buffer(f), zmq::send_flags::none);
    if (i == total / 10) rss_warm = rss_kib();
    if (i % 10000 == 0) rss_peak = std::max(rss_peak, rss_kib());
  }
  const int64_t rss_end = rss_kib();
  stop.store(true);
  consumer.join();
  const double growth = rss_warm > 0 ? 100.0 * static_cast<double>(rss_end - rss_warm) / static_cast<double>(rss_warm) : 0;
  uint64_t dropped = 0;
  for (const auto& n : ion.broker().node_stats()) dropped += n.dropped_events;
  char line[512];
  std::snprintf(line, sizeof line,
                "ion bench broker --soak: %.0f s at 1 M events/s (batches of %u): %llu frames sent, %llu received, "
                "broker dropped %llu events; RSS %lld KiB after warm-up, %lld KiB at the end (%+.2f %%), peak %lld KiB\n",
                seconds, kBatch, static_cast<unsigned long long>(total), static_cast<unsigned long long>(got.load()),
                static_cast<unsigned long long>(dropped), static_cast<long long>(rss_warm), static_cast<long long>(rss_end),
                growth, static_cast<long long>(rss_peak));
  out << line;
  if (json) {
    std::snprintf(line, sizeof line, "{\"soak_s\":%.0f,\"rss_warm_kib\":%lld,\"rss_end_kib\":%lld,\"rss_growth_percent\":%.3f,\"dropped_events\":%llu}\n",
                  seconds, static_cast<long long>(rss_warm), static_cast<long long>(rss_end), growth,
                  static_cast<unsigned long long>(dropped));
    out << line;
  }
  return growth < 5.0 ? 0 : 1;
}

}  // namespace

// A browser stand-in: opens /api/live and reads (and discards) the frames until stopped.
class LiveReader {
 public:
  LiveReader(const std::string& endpoint, const std::atomic<bool>& stop) {
    const auto colon = endpoint.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))));
    inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &a.sin_addr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    const std::string req = "GET /api/live HTTP/1.1\r\nHost: bench\r\n\r\n";
    if (::write(fd_, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return;
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this, &stop] {
      char buf[65536];
      while (!stop.load()) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n == 0) break;
        if (n > 0) bytes_ += static_cast<uint64_t>(n);
      }
    });
  }
  ~LiveReader() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] uint64_t bytes() const { return bytes_; }

 private:
  int fd_ = -1;
  std::atomic<uint64_t> bytes_{0};
  std::thread thread_;
};

// Promise of the dashboard: watching costs the data path nothing noticeable. The same frames
// through the broker alone and with `clients` live dashboard streams open, alternated.
int dashboard_bench(const BrokerBenchOptions& o, std::ostream& out) {
  Codec codec;
  char line[256];
  out << "ion bench broker --dashboard-clients " << o.dashboard_clients
      << ": routing throughput without and with live dashboard clients (the same frames;\n"
      << "  live frames every 25 ms, ten times the dashboard's rate)\n\n"
      << "  batch    events/s alone   events/s watched   ratio   live MB sent   events thinned\n";
  std::string json = "{\"dashboard_clients\":" + std::to_string(o.dashboard_clients);
  for (const uint32_t batch : {16U, 256U}) {
    const uint64_t n = std::clamp<uint64_t>((o.quick ? 400'000ULL : 16'000'000ULL) / batch, 2000, 1'000'000);
    const int64_t t = now_ns();
    std::vector<std::string> frames;
    frames.reserve(n);
    for (uint64_t i = 0; i < n; ++i) frames.push_back(node_frame(codec, i, batch, t));
    Throughput alone;
    Throughput watched;
    uint64_t live_bytes = 0;
    uint64_t thinned = 0;
    {
      IonPath ion;
      alone = throughput(ion, frames, batch);
    }
    {
      IonPath ion;
      HttpOptions ho;
      ho.listen = "127.0.0.1:0";
      // Ten times the dashboard's frame rate: the runs last seconds, and the cost is an upper bound.
      ho.live_interval = std::chrono::milliseconds(25);
      HttpServer http(ion.broker(), ho);
      std::atomic<bool> stop{false};
      std::vector<std::unique_ptr<LiveReader>> readers;
      for (int i = 0; i < o.dashboard_clients; ++i) {
        readers.push_back(std::make_unique<LiveReader>(http.endpoint(), stop));
      }
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (http.figures().live_clients < static_cast<uint64_t>(o.dashboard_clients) &&
             std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      watched = throughput(ion, frames, batch);
      stop.store(true);
      for (const auto& r : readers) live_bytes += r->bytes();
      readers.clear();
      thinned = http.figures().events_thinned;
    }
    std::snprintf(line, sizeof line, "  %5u %17.0f %18.0f %7.2f %14.2f %16llu\n", batch, alone.events_per_s,
                  watched.events_per_s, watched.events_per_s / alone.events_per_s,
                  static_cast<double>(live_bytes) / 1e6, static_cast<unsigned long long>(thinned));
    out << line;
    std::snprintf(line, sizeof line, ",\"batched_%u\":{\"events_per_s\":%.0f,\"watched_events_per_s\":%.0f,\"ratio\":%.3f}",
                  batch, alone.events_per_s, watched.events_per_s, watched.events_per_s / alone.events_per_s);
    json += line;
  }
  if (o.json) out << json << "}\n";
  return 0;
}

int run_bench_broker(const BrokerBenchOptions& o, std::ostream& out) {
  if (o.soak_s > 0) return soak(o.soak_s, o.json, out);
  if (o.dashboard_clients > 0) return dashboard_bench(o, out);
  char line[512];
  Codec codec;
  struct Row {
    uint32_t batch;
    Throughput ion;
    Throughput raw;
  };
  std::vector<Row> rows;
  const uint64_t events_target = o.quick ? 400'000 : 4'000'000;
  for (const uint32_t batch : {1U, 16U, 256U}) {
    const uint64_t n = std::max<uint64_t>(2000, std::min<uint64_t>(events_target / batch, 1'000'000));
    const int64_t t = now_ns();
    std::vector<std::string> frames;
    frames.reserve(n);
    for (uint64_t i = 0; i < n; ++i) frames.push_back(node_frame(codec, i, batch, t));
    Row r{batch, {}, {}};
    {
      RawPath raw;
      r.raw = throughput(raw, frames, batch);
    }
    {
      IonPath ion;
      r.ion = throughput(ion, frames, batch);
    }
    rows.push_back(r);
  }

  // One-way latency of single-event frames at fixed offered loads, from the stamps.
  struct LatRow {
    double rate;
    Latency ion;
    Latency raw;
  };
  std::vector<LatRow> lat;
  const double seconds = o.quick ? 1.0 : 5.0;
  for (const double rate : {1000.0, 100000.0}) {
    if (o.throughput_only) {
      lat.push_back({rate, {}, {}});
      continue;
    }
    const auto n = static_cast<uint64_t>(rate * seconds);
    LatRow row{rate, {}, {}};
    auto measure = [&](auto& path, bool ion_frames) {
      std::vector<int64_t> samples;
      samples.reserve(n);
      std::thread consumer([&] {
        zmq::message_t m;
        Codec c;
        BatchHeader h;
        EventBatch ev;
        zmq::pollitem_t item{path.consumer().handle(), 0, ZMQ_POLLIN, 0};
        while (samples.size() < n) {
          if (zmq::poll(&item, 1, std::chrono::milliseconds(1000)) <= 0) break;  // the rest was dropped
          if (!path.consumer().recv(m, zmq::recv_flags::dontwait)) continue;
          const int64_t arrival = now_ns();
          if (ion_frames) {
            if (!c.decode({static_cast<const uint8_t*>(m.data()), m.size()}).ok() || c.take_batch({}, h, ev) != Reject::none) continue;
            samples.push_back(arrival - ev.times_ns[0]);
          } else {
            int64_t stamp = 0;
            std::memcpy(&stamp, m.data(), sizeof stamp);
            samples.push_back(arrival - stamp);
          }
        }
      });
      const int64_t start = now_ns() + 10'000'000;
      std::string raw_frame = node_frame(codec, 0, 1, 0);
      for (uint64_t i = 0; i < n; ++i) {
        paced_wait(start + static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate));
        const int64_t stamp = now_ns();
        if (ion_frames) {
          const std::string f = node_frame(codec, i, 1, stamp);
          (void)path.producer().send(zmq::buffer(f), zmq::send_flags::none);
        } else {
          std::memcpy(raw_frame.data(), &stamp, sizeof stamp);  // same size as IoN's frame
          (void)path.producer().send(zmq::buffer(raw_frame), zmq::send_flags::none);
        }
      }
      consumer.join();
      return percentiles(samples);
    };
    {
      RawPath raw;
      row.raw = measure(raw, false);
    }
    {
      IonPath ion;
      row.ion = measure(ion, true);
    }
    lat.push_back(row);
  }

  out << "ion bench broker" << (o.quick ? " (quick)" : "")
      << ": 1 producer -> forwarder -> 1 consumer over TCP loopback, the same frames both ways\n\n"
      << "  batch  bytes/msg   IoN events/s   raw events/s   ratio   IoN msgs/s   raw msgs/s  dropped (IoN/raw)\n";
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "  %5u %10llu %14.0f %14.0f %7.2f %12.0f %12.0f   %llu/%llu\n", r.batch,
                  static_cast<unsigned long long>(r.ion.bytes_per_message), r.ion.events_per_s,
                  r.raw.events_per_s, r.ion.events_per_s / r.raw.events_per_s, r.ion.messages_per_s,
                  r.raw.messages_per_s, static_cast<unsigned long long>(r.ion.dropped),
                  static_cast<unsigned long long>(r.raw.dropped));
    out << line;
  }
  out << "\n  offered load    IoN p50/p99/p99.9 (us)      raw p50/p99/p99.9 (us)     p50 ratio\n";
  for (const auto& l : lat) {
    std::snprintf(line, sizeof line, "  %9.0f/s   %7.1f %7.1f %8.1f     %7.1f %7.1f %8.1f     %6.2f\n", l.rate,
                  l.ion.p50_us, l.ion.p99_us, l.ion.p999_us, l.raw.p50_us, l.raw.p99_us, l.raw.p999_us,
                  l.ion.p50_us / l.raw.p50_us);
    out << line;
  }
  if (o.json) {
    auto tp = [&](const Row& r) {
      char b[256];
      std::snprintf(b, sizeof b, "{\"events_per_s\":%.0f,\"baseline_events_per_s\":%.0f,\"ratio\":%.3f,"
                    "\"messages_per_s\":%.0f,\"bytes_per_message\":%llu}",
                    r.ion.events_per_s, r.raw.events_per_s, r.ion.events_per_s / r.raw.events_per_s,
                    r.ion.messages_per_s, static_cast<unsigned long long>(r.ion.bytes_per_message));
      return std::string(b);
    };
    std::snprintf(line, sizeof line,
                  "\"latency_us\":{\"offered_per_s\":%.0f,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"baseline_p50\":%.1f,"
                  "\"baseline_p99\":%.1f},\"latency_100k_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"baseline_p50\":%.1f,"
                  "\"baseline_p99\":%.1f}",
                  lat[0].rate, lat[0].ion.p50_us, lat[0].ion.p99_us, lat[0].ion.p999_us, lat[0].raw.p50_us, lat[0].raw.p99_us,
                  lat[1].ion.p50_us, lat[1].ion.p99_us, lat[1].ion.p999_us, lat[1].raw.p50_us, lat[1].raw.p99_us);
    out << "{\"unbatched\":" << tp(rows[0]) << ",\"batched_16\":" << tp(rows[1]) << ",\"batched_256\":" << tp(rows[2])
        << "," << line << ",\"quick\":" << (o.quick ? "true" : "false") << "}\n";
  }
  return 0;
}

}  // namespace ion

namespace ion::cli {
namespace {

class BenchBrokerCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& /*ctx*/) override {
    CLI::App* c = parent.add_subcommand(
        "broker", "broker throughput (batches of 1, 16, 256) and one-way latency against a raw "
        "ZeroMQ forwarder in the same run");
    c->add_flag("--quick", o_.quick, "short runs (noisier figures)");
    c->add_flag("--json", o_.json, "end with one JSON line");
    c->add_flag("--throughput-only", o_.throughput_only,
                "skip the latency runs (to profile the routing path)");
    c->add_option("--dashboard-clients", o_.dashboard_clients,
                  "instead: throughput with and without N live dashboard clients")
        ->check(CLI::Range(1, 64));
    c->add_option("--soak", o_.soak_s,
                  "instead: route 1 M events/s for this many seconds; RSS growth must stay < 5 %")
        ->check(CLI::Range(1.0, 86400.0));
    return c;
  }
  int run(Context& ctx) override { return run_bench_broker(o_, ctx.out); }

 private:
  BrokerBenchOptions o_;
};

}  // namespace

std::unique_ptr<Command> make_bench_broker_command() { return std::make_unique<BenchBrokerCommand>(); }

}  // namespace ion::cli
