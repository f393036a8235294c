#pragma once
// Test fixtures: a real broker and real nodes in-process on ephemeral loopback ports, raw peers
// for hostile input, and child processes for the daemons. Waiting is on conditions, never sleeps.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "../eventually.h"
#include "ion/broker/broker.h"
#include "ion/core/codec.h"
#include "ion/builtin/generator.h"
#include "ion/builtin/sink.h"
#include "ion/node/node.h"
#include "ion/node/node_thread.h"
#include "ion/v1/ion.pb.h"

extern char** environ;

namespace ion::test {

using namespace std::chrono_literals;

inline BrokerOptions broker_options(Topology topo) {
  BrokerOptions o;
  o.listen = "tcp://127.0.0.1:*";
  o.topology = std::move(topo);
  o.heartbeat_interval = 100ms;
  o.heartbeat_timeout = 2s;
  // In-process tests see the routing as it is once the grace is over (a target that is not
  // there is counted at once); the restart tests run the daemon with its grace.
  o.startup_grace = 0ms;
  o.stats_interval = 0ms;
  return o;
}

inline NodeOptions node_options(const std::string& name, const std::string& endpoint) {
  NodeOptions o;
  o.name = name;
  o.broker = endpoint;
  o.heartbeat_interval = 100ms;
  o.broker_timeout = 1s;
  o.reconnect_min = 20ms;
  o.reconnect_max = 300ms;
  return o;
}

inline ConnectionSpec connect_all(const std::string& from, const std::string& to,
                                  std::chrono::milliseconds delay = 20ms) {
  return connect_whole(from, to, std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count(),
                       "test");
}

class BrokerRunner {
 public:
  explicit BrokerRunner(BrokerOptions o) : running_(std::move(o)) {}
  void stop() { running_.stop(); }
  Broker& broker() { return running_.broker(); }
  const std::string& endpoint() const { return running_.endpoint(); }
  BrokerNodeStats stats(const std::string& name) {
    for (auto& s : running_.broker().node_stats()) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no node " << name;
    return {};
  }

 private:
  BrokerThread running_;
};

template <class DriverT>
class NodeRunner {
 public:
  NodeRunner(NodeOptions o, std::unique_ptr<DriverT> d,
             const Clock& clock = SteadyClock::instance())
      : driver_(d.get()), thread_(std::move(o), std::move(d), clock) {}
  void stop() { thread_.stop(); }
  Node& node() { return thread_.node(); }
  DriverT& driver() { return *driver_; }
  NodeStats stats() const { return thread_.node().stats(); }

 private:
  DriverT* driver_;
  NodeThread thread_;  // ion/node/node_thread.h: the one "node on its own thread"
};

inline std::unique_ptr<GeneratorDriver> generator(uint32_t channels, double rate_hz,
                                                  uint64_t max_events, uint64_t seed = 1) {
  GeneratorOptions g;
  g.channels = channels;
  g.rate_hz = rate_hz;
  g.max_events = max_events;
  g.seed = seed;
  return std::make_unique<GeneratorDriver>(g);
}

inline std::unique_ptr<SinkDriver> sink(uint32_t ports) {
  return std::make_unique<SinkDriver>(SinkOptions{ports});
}

// A test workload: a driver whose start() hands its own thread a loop that emits until it is
// done or stopping(); deliveries are ignored. A subclass calls stop() in its destructor, before
// its own members (which the loop reads) are gone.
class WorkloadDriver : public Driver {
 public:
  void deliver(const BatchHeader&, const EventBatch&, const Delivery&) noexcept override {}
  void stop() noexcept override {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] bool done() const { return done_.load(); }

 protected:
  template <class Loop>
  void run(Loop loop) {
    thread_ = std::thread([this, loop] {
      loop();
      done_.store(true);
    });
  }
  [[nodiscard]] bool stopping() const { return stop_.load(); }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false}, done_{false};
};

// A hand-driven DEALER: sends whatever bytes a test wants, reads replies with a timeout.
class RawPeer {
 public:
  // `rcvhwm` and `rcvbuf_bytes` (0 = system default) shape how much a non-reading peer absorbs.
  explicit RawPeer(const std::string& endpoint, int rcvhwm = 1000, int rcvbuf_bytes = 0,
                   const std::optional<CurveClientKeys>& curve = std::nullopt)
      : sock_(ctx_, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::linger, 0);
    if (curve) {
      sock_.set(zmq::sockopt::curve_publickey, curve->public_z85);
      sock_.set(zmq::sockopt::curve_secretkey, curve->secret_z85);
      sock_.set(zmq::sockopt::curve_serverkey, curve->server_public_z85);
    }
    sock_.set(zmq::sockopt::rcvhwm, rcvhwm);
    if (rcvbuf_bytes > 0) sock_.set(zmq::sockopt::rcvbuf, rcvbuf_bytes);
    sock_.connect(endpoint);
  }
  zmq::socket_t& socket() { return sock_; }
  void send(const std::string& bytes) { (void)sock_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  // Never blocks: a peer whose handshake is refused may have no pipe to queue on.
  void try_send(const std::string& bytes) {
    (void)sock_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  }
  std::optional<std::string> recv(std::chrono::milliseconds timeout = 5s) {
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    zmq::message_t m;
    if (!sock_.recv(m, zmq::recv_flags::dontwait)) return std::nullopt;
    return m.to_string();
  }
  // Next message of the given body kind, skipping others (e.g. heartbeats).
  std::optional<Body> recv_body(Codec& codec, Body want, std::chrono::milliseconds timeout = 5s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      const auto m = recv(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()));
      if (!m) return std::nullopt;
      const Decoded d = codec.decode({reinterpret_cast<const uint8_t*>(m->data()), m->size()});
      if (d.body == want) return d.body;
    }
    return std::nullopt;
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
};

inline std::string hello_frame(const std::string& name, uint32_t channels, uint32_t ports,
                               uint32_t version = kProtocolVersion) {
  v1::Hello h;
  h.set_node_name(name);
  h.set_protocol_version(version);
  h.set_output_channels(channels);
  h.set_input_ports(ports);
  h.set_epoch(12345);
  Codec c;
  std::string out;
  EXPECT_TRUE(c.encode(h, out));
  return out;
}

// A port that was free a moment ago (for daemons that must come back on the same port).
inline int free_port() {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 0);
  s.bind("tcp://127.0.0.1:*");
  const std::string ep = s.get(zmq::sockopt::last_endpoint);
  return std::stoi(ep.substr(ep.rfind(':') + 1));
}

// A child process whose stdout and stderr go to a file.
class Child {
 public:
  Child(std::vector<std::string> argv, std::string log_path) : log_(std::move(log_path)) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      (void)wait();
    }
  }
  [[nodiscard]] bool started() const { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  // The exit code (or 128 + signal) if the child has ended, without waiting.
  std::optional<int> try_wait() {
    int status = 0;
    if (pid_ <= 0 || ::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits for exit; returns the exit code, or 128 + signal.
  int wait() {
    int status = 0;
    if (pid_ <= 0) return -1;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  [[nodiscard]] std::string output() const {
    std::ifstream f(log_);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace ion::test
