#pragma once
// The broker's status in the forms people and tools read: one JSON object (`ion status --json`,
// `/api/status`), Prometheus text exposition (`/metrics`) and a terminal table (`ion status`).
// All three are made from the same StatusReply, so they always agree.
#include <cstdint>
#include <string>

namespace ion {

namespace v1 {
class StatusReply;
}

// Figures of the HTTP side that the StatusReply does not carry.
struct HttpFigures {
  uint64_t clients = 0;          // connected now (pages, API, live streams)
  uint64_t live_clients = 0;     // live streams (server-sent events)
  uint64_t requests = 0;
  uint64_t refused = 0;          // bad requests, too many clients, timeouts
  uint64_t frames_skipped = 0;   // live frames not sent to a slow client (it got a later one)
  uint64_t events_thinned = 0;   // spike events left out of live frames
};

[[nodiscard]] std::string status_json(const v1::StatusReply& r);
// Prometheus text format 0.0.4; every metric name starts with `ion_`.
[[nodiscard]] std::string prometheus_metrics(const v1::StatusReply& r, const HttpFigures* http);
// `ion status`: a table per node, then recorders, connections, refusals.
[[nodiscard]] std::string status_table(const v1::StatusReply& r, const std::string& broker);

}  // namespace ion
