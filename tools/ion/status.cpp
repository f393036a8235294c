#include "ion/status.h"

#include <iomanip>
#include <ostream>
#include <sstream>

#include "ion/core/codec.h"
#include "ion/core/transport.h"
#include "ion/v1/ion.pb.h"

namespace ion {

int run_status(const StatusOptions& o, std::ostream& out) {
  zmq::context_t ctx(1);
  SocketOptions so;
  so.immediate = false;  // queue the request until the connection is up
  so.max_message_bytes = 64 << 20;
  so.curve_client = o.curve;
  Socket sock(ctx, Socket::Type::dealer, so);
  sock.connect(o.broker);
  Codec codec({.max_message_bytes = 64u << 20, .max_events_per_batch = 1});
  v1::StatusRequest req;
  req.set_request_id(1);
  std::string frame;
  if (!codec.encode(req, frame) || sock.send(frame) != IoStatus::ok) {
    out << "ion status: cannot send to " << o.broker << "\n";
    return 2;
  }
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  Frame reply;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (poll_readable(sock, -1, static_cast<int>(std::max<int64_t>(left.count(), 1))) == 0) continue;
    if (sock.recv(reply) != IoStatus::ok) continue;
    if (codec.decode(bytes_of(reply)).body != Body::status_reply) continue;
    const v1::StatusReply& r = codec.status_reply();
    if (o.json) {
      out << "{\"broker_epoch\":" << r.broker_epoch() << ",\"network_ns\":" << r.network_ns()
          << ",\"nodes\":[";
      for (int i = 0; i < r.nodes_size(); ++i) {
        const auto& n = r.nodes(i);
        out << (i == 0 ? "" : ",") << "{\"name\":\"" << n.name() << "\",\"connected\":"
            << (n.connected() ? "true" : "false") << ",\"events_in\":" << n.events_in()
            << ",\"events_out\":" << n.events_out() << ",\"dropped_events\":"
            << n.dropped_events() << ",\"lost_upstream_batches\":" << n.lost_upstream_batches()
            << ",\"rejected\":" << n.rejected_batches() << ",\"registrations\":"
            << n.registrations();
        if (n.has_health()) {
          const auto& h = n.health();
          out << ",\"clock_synced\":" << (h.clock_synced() ? "true" : "false")
              << ",\"clock_offset_ns\":" << h.clock_offset_ns()
              << ",\"clock_uncertainty_ns\":" << h.clock_uncertainty_ns()
              << ",\"received_events\":" << h.received_events() << ",\"lost_events\":" << h.lost_events()
              << ",\"late_events\":" << h.late_events();
        }
        out << "}";
      }
      out << "],\"taps\":[";
      for (int i = 0; i < r.taps_size(); ++i) {
        const auto& t = r.taps(i);
        out << (i == 0 ? "" : ",") << "{\"name\":\"" << t.name() << "\",\"connected\":"
            << (t.connected() ? "true" : "false") << ",\"events_out\":" << t.events_out()
            << ",\"dropped_events\":" << t.dropped_events() << "}";
      }
      out << "],\"rejects\":{";
      bool first = true;
      for (const auto& [why, count] : r.rejects()) {
        out << (first ? "" : ",") << "\"" << why << "\":" << count;
        first = false;
      }
      const auto& sec = r.security();
      out << "},\"security\":{\"curve\":" << (sec.curve() ? "true" : "false")
          << ",\"insecure\":" << (sec.insecure() ? "true" : "false")
          << ",\"allowed_keys\":" << sec.allowed_keys() << ",\"accepted\":" << sec.accepted()
          << ",\"disconnects\":" << sec.disconnects() << ",\"refused\":{";
      first = true;
      for (const auto& [why, count] : sec.refused()) {
        out << (first ? "" : ",") << "\"" << why << "\":" << count;
        first = false;
      }
      out << "}}}\n";
      return 0;
    }
    const auto& sec = r.security();
    out << "broker " << o.broker << " (epoch " << std::hex << r.broker_epoch() << std::dec
        << ", "
        << (sec.curve() ? "CURVE, " + std::to_string(sec.allowed_keys()) + " node keys"
                        : sec.insecure() ? std::string("INSECURE: plaintext, unauthenticated")
                                         : std::string("plaintext, this machine only"))
        << ")\n  " << std::left << std::setw(16) << "node" << std::setw(6) << "up" << std::right
        << std::setw(12) << "events in" << std::setw(12) << "events out" << std::setw(10)
        << "dropped" << std::setw(10) << "gaps in" << std::setw(10) << "rejected"
        << std::setw(16) << "in p99 (ms)" << std::setw(10) << "late" << std::setw(9) << "lost"
        << std::setw(24) << "clock offset (us)" << "\n";
    for (const auto& n : r.nodes()) {
      out << "  " << std::left << std::setw(16) << n.name() << std::setw(6)
          << (n.connected() ? "yes" : "no") << std::right << std::setw(12) << n.events_in()
          << std::setw(12) << n.events_out() << std::setw(10) << n.dropped_events()
          << std::setw(10) << n.lost_upstream_batches() << std::setw(10) << n.rejected_batches()
          << std::setw(16) << std::fixed << std::setprecision(3)
          << static_cast<double>(n.ingress_latency_p99_ns()) / 1e6;
      if (n.has_health() && n.health().clock_synced()) {
        const auto& h = n.health();
        std::ostringstream clock;
        clock << std::fixed << std::setprecision(1) << static_cast<double>(h.clock_offset_ns()) / 1e3
              << " +/- " << static_cast<double>(h.clock_uncertainty_ns()) / 1e3;
        out << std::setw(10) << h.late_events() << std::setw(9) << h.lost_events() << std::setw(24)
            << clock.str();
      }
      out << "\n";
    }
    for (const auto& t : r.taps()) {
      out << "  recorder " << t.name() << (t.connected() ? "" : " (gone)") << ": " << t.events_out()
          << " events sent, " << t.dropped_events() << " dropped (its ring was full)\n";
    }
    for (const auto& c : r.connections()) {
      out << "  connection " << c.index() << " from " << c.from() << ": delay "
          << static_cast<double>(c.delay_ns()) / 1e6 << " ms"
          << (c.auto_delay() ? " (auto, " + std::to_string(c.raises()) + " raises, " +
                                   std::to_string(c.lowers()) + " lowers)"
                             : "")
          << "\n";
    }
    for (const auto& [why, count] : r.rejects()) out << "  rejected " << why << ": " << count << "\n";
    for (const auto& [why, count] : sec.refused()) {
      if (count > 0) out << "  connections refused, " << why << ": " << count << "\n";
    }
    return 0;
  }
  out << "ion status: no answer from " << o.broker << " within " << o.timeout.count() << " ms\n";
  return 2;
}

}  // namespace ion
