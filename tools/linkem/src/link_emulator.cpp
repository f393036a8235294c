#include "ion/linkem/link_emulator.h"

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <deque>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "ion/core/counter.h"
#include "ion/core/histogram.h"
#include "ion/linkem/zmtp.h"

namespace ion::linkem {

namespace {

using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

// "host:port", or a ZeroMQ endpoint "tcp://host:port". Port 0 (pick a free one) only to listen.
std::pair<std::string, std::string> split_host_port(std::string s, bool listen) {
  if (s.rfind("tcp://", 0) == 0) s.erase(0, 6);
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) throw std::invalid_argument("expected host:port, got '" + s + "'");
  const std::string port = s.substr(colon + 1);
  // A number 1-65535: asio would take "99999" modulo 65536 and a name as a service lookup.
  const bool digits = !port.empty() && port.size() <= 5 &&
                      port.find_first_not_of("0123456789") == std::string::npos;
  const unsigned long lowest = listen ? 0 : 1;
  if (!digits || std::stoul(port) < lowest || std::stoul(port) > 65535) {
    throw std::invalid_argument("port '" + port + "' in '" + s + "' is not a number from " +
                                std::to_string(lowest) + " to 65535");
  }
  return {s.substr(0, colon), port};
}

struct DirCounters {
  Counter units, messages, dropped, retransmitted, duplicated, reordered, bytes;
  Histogram delay;
  DirectionStats snapshot() const {
    DirectionStats s;
    s.units = units.get();
    s.messages = messages.get();
    s.dropped = dropped.get();
    s.retransmitted = retransmitted.get();
    s.duplicated = duplicated.get();
    s.reordered = reordered.get();
    s.bytes = bytes.get();
    s.delay_p50_ns = delay.quantile_ns(0.5);
    s.delay_p99_ns = delay.quantile_ns(0.99);
    s.delay_max_ns = delay.max_ns();
    return s;
  }
};

// One direction of one connection: read, split, impair, release in order at the scheduled times.
class Pump : public std::enable_shared_from_this<Pump> {
 public:
  Pump(asio::io_context& io, tcp::socket& from, tcp::socket& to, const Direction& d,
       uint64_t seed, DirCounters& counters, std::function<void()> on_close)
      : from_(from), to_(to), dir_(d), rng_(seed), counters_(counters), timer_(io),
        on_close_(std::move(on_close)) {}

  void start() { read(); }

 private:
  struct Pending {
    Clock::time_point release;
    std::string bytes;
  };

  void read() {
    auto self = shared_from_this();
    from_.async_read_some(asio::buffer(buf_), [this, self](std::error_code ec, size_t n) {
      if (ec) {
        on_close_();
        return;
      }
      on_bytes(buf_.data(), n);
      read();
    });
  }

  void on_bytes(const char* data, size_t n) {
    const auto now = Clock::now();
    units_.clear();
    if (passthrough_ || !splitter_.feed(data, n, units_)) {
      if (!passthrough_) {
        spdlog::warn("linkem: stream is not ZMTP; forwarding bytes with delay only");
        passthrough_ = true;
      }
      schedule(now, std::string(data, n), 0);
      return;
    }
    for (auto& u : units_) {
      if (u.kind != ZmtpUnit::Kind::message) {
        schedule(now, std::move(u.bytes), 0);
        continue;
      }
      counters_.messages.add();
      int64_t extra_ns = 0;
      if (dir_.loss > 0 && uniform() < dir_.loss) {
        if (dir_.loss_drops) {
          counters_.dropped.add();
          continue;
        }
        counters_.retransmitted.add();
        extra_ns = dir_.retransmit_ns;
      }
      const bool dup = dir_.duplicate > 0 && uniform() < dir_.duplicate;
      if (dir_.reorder > 0 && !held_ && uniform() < dir_.reorder) {
        held_ = std::move(u.bytes);  // goes out right after the next message
        counters_.reordered.add();
        if (dup) {
          counters_.duplicated.add();
          schedule(now, *held_, extra_ns);
        }
        continue;
      }
      if (dup) {
        counters_.duplicated.add();
        schedule(now, u.bytes, extra_ns);
      }
      schedule(now, std::move(u.bytes), extra_ns);
      if (held_) {
        schedule(now, std::move(*held_), 0);
        held_.reset();
      }
    }
  }

  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

  void schedule(Clock::time_point now, std::string bytes, int64_t extra_ns) {
    const int64_t delay = dir_.delay.sample(rng_) + extra_ns;
    counters_.delay.record(delay);
    auto release = now + std::chrono::nanoseconds(delay);
    if (dir_.bandwidth_bps > 0) {  // serialisation on a link of that rate
      link_free_ = std::max(link_free_, now) +
                   std::chrono::nanoseconds(static_cast<int64_t>(
                       static_cast<double>(bytes.size()) * 8e9 / dir_.bandwidth_bps));
      release = std::max(release, link_free_);
    }
    // A byte stream keeps its order: nothing overtakes what was sent before it.
    if (!queue_.empty()) release = std::max(release, queue_.back().release);
    counters_.units.add();
    counters_.bytes.add(bytes.size());
    queue_.push_back({release, std::move(bytes)});
    if (queue_.size() == 1 && !writing_) arm();
  }

  void arm() {
    if (queue_.empty()) return;
    timer_.expires_at(queue_.front().release);
    auto self = shared_from_this();
    timer_.async_wait([this, self](std::error_code ec) {
      if (ec) return;
      write_due();
    });
  }

  void write_due() {
    const auto now = Clock::now();
    out_.clear();
    while (!queue_.empty() && queue_.front().release <= now) {
      out_ += queue_.front().bytes;
      queue_.pop_front();
    }
    if (out_.empty()) {
      arm();
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(to_, asio::buffer(out_), [this, self](std::error_code ec, size_t) {
      writing_ = false;
      if (ec) {
        on_close_();
        return;
      }
      arm();
    });
  }

  tcp::socket& from_;
  tcp::socket& to_;
  const Direction dir_;
  std::mt19937_64 rng_;
  DirCounters& counters_;
  asio::steady_timer timer_;
  std::function<void()> on_close_;
  std::array<char, 65536> buf_{};
  ZmtpSplitter splitter_;
  std::vector<ZmtpUnit> units_;
  bool passthrough_ = false;
  std::optional<std::string> held_;
  std::deque<Pending> queue_;
  std::string out_;
  bool writing_ = false;
  Clock::time_point link_free_{};
};

}  // namespace

class LinkEmulator::Impl {
 public:
  Impl(LinkProfile profile, const std::string& listen, const std::string& target, uint64_t seed)
      : profile_(std::move(profile)), acceptor_(io_), seed_(seed) {
    const auto [lhost, lport] = split_host_port(listen, true);
    const auto [thost, tport] = split_host_port(target, false);
    tcp::resolver resolver(io_);
    target_ = *resolver.resolve(thost, tport).begin();
    const tcp::endpoint le = *resolver.resolve(lhost, lport).begin();
    acceptor_.open(le.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(le);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Impl() { stop(); }

  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      std::error_code ec;
      acceptor_.close(ec);
      close_all();
    });
    io_.stop();
    thread_.join();
  }

  void cut() {
    asio::post(io_, [this] { close_all(); });
  }

  uint16_t port_ = 0;
  LinkProfile profile_;
  DirCounters up_, down_;
  Counter connections_;

 private:
  struct Conn {
    explicit Conn(asio::io_context& io) : client(io), server(io) {}
    tcp::socket client;
    tcp::socket server;
    bool closed = false;
  };

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket client) {
      if (ec) return;
      auto conn = std::make_shared<Conn>(io_);
      conn->client = std::move(client);
      conn->client.set_option(tcp::no_delay(true));
      conns_.push_back(conn);
      conn->server.async_connect(target_, [this, conn](std::error_code cec) {
        if (cec) {
          close(conn);
          return;
        }
        conn->server.set_option(tcp::no_delay(true));
        connections_.add();
        const uint64_t n = connections_.get();
        auto closer = [this, conn] { close(conn); };
        std::make_shared<Pump>(io_, conn->client, conn->server, profile_.up, seed_ * 2 + n * 7919,
                               up_, closer)
            ->start();
        std::make_shared<Pump>(io_, conn->server, conn->client, profile_.down,
                               seed_ * 2 + 1 + n * 7919, down_, closer)
            ->start();
      });
      accept();
    });
  }

  void close(const std::shared_ptr<Conn>& c) {
    if (c->closed) return;
    c->closed = true;
    std::error_code ec;
    c->client.close(ec);
    c->server.close(ec);
    conns_.remove(c);
  }

  void close_all() {
    auto all = conns_;
    for (auto& c : all) close(c);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  tcp::endpoint target_;
  uint64_t seed_;
  std::list<std::shared_ptr<Conn>> conns_;
  std::thread thread_;
};

LinkEmulator::LinkEmulator(LinkProfile profile, const std::string& listen,
                           const std::string& target, uint64_t seed)
    : impl_(std::make_unique<Impl>(std::move(profile), listen, target, seed)) {}
LinkEmulator::~LinkEmulator() = default;
uint16_t LinkEmulator::port() const noexcept { return impl_->port_; }
std::string LinkEmulator::endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port()); }
LinkStats LinkEmulator::stats() const {
  return {impl_->connections_.get(), impl_->up_.snapshot(), impl_->down_.snapshot()};
}
void LinkEmulator::cut() { impl_->cut(); }
void LinkEmulator::stop() { impl_->stop(); }

}  // namespace ion::linkem
