#include "cli/status.h"
#include "cli/command.h"

#include <memory>
#include <ostream>
#include <thread>

#include "ion/broker/status_text.h"
#include "ion/core/codec.h"
#include "ion/core/transport.h"
#include "ion/v1/ion.pb.h"

namespace ion {

namespace {

// One StatusRequest on `sock`; true with `reply` filled when the broker answered in time.
bool ask(Socket& sock, Codec& codec, uint64_t id, std::chrono::milliseconds timeout,
         v1::StatusReply& reply) {
  v1::StatusRequest req;
  req.set_request_id(id);
  std::string frame;
  if (!codec.encode(req, frame) || sock.send(frame) != IoStatus::ok) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Frame msg;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (poll_readable(sock, -1, static_cast<int>(std::max<int64_t>(left.count(), 1))) == 0) continue;
    if (sock.recv(msg) != IoStatus::ok) continue;
    if (codec.decode(bytes_of(msg)).body != Body::status_reply) continue;
    if (codec.status_reply().request_id() != id) continue;  // an answer to an earlier, late ask
    reply = codec.status_reply();
    return true;
  }
  return false;
}

}  // namespace

namespace {

// A DEALER to the broker, kept for repeated asks (--watch), with the handshake watched so that a
// silence can be explained.
class StatusClient {
 public:
  StatusClient(const std::string& broker, const std::optional<CurveClientKeys>& curve)
      : ctx_(1), curve_(curve.has_value()) {
    SocketOptions so;
    so.immediate = false;  // queue the request until the connection is up
    so.max_message_bytes = 64 << 20;
    so.curve_client = curve;
    sock_ = std::make_unique<Socket>(ctx_, Socket::Type::dealer, so);
    monitor_ = std::make_unique<HandshakeMonitor>(ctx_, *sock_);
    sock_->connect(broker);
  }
  ~StatusClient() { monitor_->stop(); }
  StatusClient(const StatusClient&) = delete;
  StatusClient& operator=(const StatusClient&) = delete;

  bool ask(std::chrono::milliseconds timeout, v1::StatusReply& reply) {
    return ion::ask(*sock_, codec_, ++id_, timeout, reply);
  }
  // Why there was no answer.
  std::string diagnose() {
    bool succeeded = false;
    const std::optional<HandshakeFailure> f = monitor_->poll(succeeded);
    if (f && f->kind == HandshakeFailure::Kind::mechanism_mismatch) {
      return curve_ ? "that broker does not use CURVE encryption; drop --key and --broker-key"
                    : "that broker requires CURVE encryption; give --key and --broker-key";
    }
    if (f && f->kind == HandshakeFailure::Kind::refused) return "the broker refused this key: it is not on its allowlist";
    if (!monitor_->ever_connected()) return "nothing is listening there (is the broker running, and is this its address?)";
    return curve_ ? "check --broker-key and that this key is on the allowlist"
                  : "something accepted the connection but did not answer as an IoN broker";
  }

 private:
  zmq::context_t ctx_;
  bool curve_;
  std::unique_ptr<Socket> sock_;
  std::unique_ptr<HandshakeMonitor> monitor_;
  Codec codec_{{.max_message_bytes = 64u << 20, .max_events_per_batch = 1}};
  uint64_t id_ = 0;
};

}  // namespace

std::optional<v1::StatusReply> fetch_status(const std::string& broker,
                                            const std::optional<CurveClientKeys>& curve,
                                            std::chrono::milliseconds timeout, std::string& why) {
  if (const std::string bad = endpoint_problem(broker); !bad.empty()) {
    why = "--broker " + bad;
    return std::nullopt;
  }
  StatusClient client(broker, curve);
  v1::StatusReply r;
  if (client.ask(timeout, r)) return r;
  why = "no answer from " + broker + " within " + std::to_string(timeout.count()) + " ms: " + client.diagnose();
  return std::nullopt;
}

int run_status(const StatusOptions& o, std::ostream& out, const std::atomic<bool>* stop) {
  if (const std::string why = endpoint_problem(o.broker); !why.empty()) {
    out << "ion status: --broker " << why << "\n";
    return 2;
  }
  StatusClient client(o.broker, o.curve);
  v1::StatusReply r;
  while (true) {
    if (!client.ask(o.timeout, r)) {
      out << "ion status: no answer from " << o.broker << " within " << o.timeout.count()
          << " ms: " << client.diagnose() << "\n";
      return 2;
    }
    if (o.watch && !o.json) out << "\x1b[H\x1b[2J";  // redraw in place
    out << (o.json ? status_json(r) + "\n" : status_table(r, o.broker));
    out.flush();
    if (!o.watch) return 0;
    const auto next = std::chrono::steady_clock::now() + o.interval;
    while (std::chrono::steady_clock::now() < next) {
      if (stop != nullptr && stop->load()) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace ion

namespace ion::cli {
namespace {

class StatusCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& ctx) override {
    CLI::App* c = parent.add_subcommand("status", "ask a running broker for its per-node counters");
    c->add_option("--broker", o_.broker, "broker endpoint")->capture_default_str();
    c->add_option("--timeout-ms", timeout_ms_, "how long to wait for the answer")
        ->check(CLI::Range(1, 600000))->capture_default_str();
    c->add_flag("--json", o_.json, "print one JSON object");
    c->add_flag("--watch", o_.watch, "redraw every second until Ctrl-C (--json: a line each)");
    c->add_option("--interval", interval_s_, "seconds between redraws with --watch")
        ->check(CLI::Range(0.05, 3600.0))->capture_default_str();
    ctx.add_client_keys(c);
    return c;
  }
  int run(Context& ctx) override {
    o_.curve = ctx.client_keys();
    o_.timeout = std::chrono::milliseconds(timeout_ms_);
    o_.interval = std::chrono::milliseconds(static_cast<int64_t>(interval_s_ * 1000));
    ctx.catch_signals();
    return run_status(o_, ctx.out, &ctx.stop);
  }

 private:
  StatusOptions o_;
  int64_t timeout_ms_ = 3000;
  double interval_s_ = 1.0;
};

}  // namespace

std::unique_ptr<Command> make_status_command() { return std::make_unique<StatusCommand>(); }

}  // namespace ion::cli
