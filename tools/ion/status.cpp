#include "ion/status.h"

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

int run_status(const StatusOptions& o, std::ostream& out, const std::atomic<bool>* stop) {
  if (const std::string why = endpoint_problem(o.broker); !why.empty()) {
    out << "ion status: --broker " << why << "\n";
    return 2;
  }
  zmq::context_t ctx(1);
  SocketOptions so;
  so.immediate = false;  // queue the request until the connection is up
  so.max_message_bytes = 64 << 20;
  so.curve_client = o.curve;
  Socket sock(ctx, Socket::Type::dealer, so);
  HandshakeMonitor monitor(ctx, sock);
  sock.connect(o.broker);
  Codec codec({.max_message_bytes = 64u << 20, .max_events_per_batch = 1});
  v1::StatusReply r;
  for (uint64_t id = 1;; ++id) {
    if (!ask(sock, codec, id, o.timeout, r)) {
      bool succeeded = false;
      const std::optional<HandshakeFailure> f = monitor.poll(succeeded);
      out << "ion status: no answer from " << o.broker << " within " << o.timeout.count() << " ms: ";
      if (f && f->kind == HandshakeFailure::Kind::mechanism_mismatch) {
        out << (o.curve ? "that broker does not use CURVE encryption; drop --key and --broker-key"
                        : "that broker requires CURVE encryption; give --key and --broker-key");
      } else if (f && f->kind == HandshakeFailure::Kind::refused) {
        out << "the broker refused this key: it is not on its allowlist";
      } else if (!monitor.ever_connected()) {
        out << "nothing is listening there (is the broker running, and is this its address?)";
      } else {
        out << (o.curve ? "check --broker-key and that this key is on the allowlist"
                        : "something accepted the connection but did not answer as an IoN broker");
      }
      out << "\n";
      monitor.stop();
      return 2;
    }
    if (o.watch && !o.json) out << "\x1b[H\x1b[2J";  // redraw in place
    out << (o.json ? status_json(r) + "\n" : status_table(r, o.broker));
    out.flush();
    if (!o.watch) {
      monitor.stop();
      return 0;
    }
    const auto next = std::chrono::steady_clock::now() + o.interval;
    while (std::chrono::steady_clock::now() < next) {
      if (stop != nullptr && stop->load()) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace ion
