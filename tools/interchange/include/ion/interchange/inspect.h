#pragma once
// `ion inspect`: what a recording holds — streams, per-channel counts, time span, rates, gaps,
// losses, late events and clock-sync quality as the nodes reported them, markers, and whether
// the tail is torn.
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace ion::interchange {

struct ChannelSummary {
  std::string source;
  std::string name;
  uint32_t id = 0;
  uint64_t count = 0;
  int64_t first_ns = 0;
  int64_t last_ns = 0;
};

struct StreamSummary {
  std::string source;
  uint32_t stream = 0;
  std::string kind;           // event kind
  uint64_t events = 0;
  uint64_t batches = 0;
  int64_t first_ns = 0;
  int64_t last_ns = 0;
  uint64_t lost_events = 0;   // first_index gaps seen in the recording (upstream of the tap)
  uint64_t restarts = 0;      // new source epochs
  int64_t longest_gap_ns = 0; // between consecutive events
};

struct NodeSummary {
  std::string name;
  uint64_t late_events = 0;   // as the node last reported
  uint64_t lost_events = 0;
  uint64_t received_events = 0;
  int64_t clock_offset_ns = 0;            // last reported
  int64_t clock_uncertainty_max_ns = 0;   // worst reported while recording
  int64_t clock_offset_min_ns = 0;
  int64_t clock_offset_max_ns = 0;
  uint64_t clock_reports = 0;
};

struct Inspection {
  std::string file;
  uint32_t format_version = 0;
  uint64_t session_id = 0;
  std::string origin;
  int64_t anchor_network_ns = 0;
  int64_t anchor_utc_ns = 0;
  uint64_t file_bytes = 0;
  uint64_t valid_bytes = 0;
  bool torn = false;
  std::string tail_reason;
  uint64_t total_events = 0;
  uint64_t batches = 0;
  uint64_t bad_batches = 0;
  uint64_t status_records = 0;
  uint64_t index_records = 0;
  uint64_t tap_dropped_batches = 0;  // what the broker dropped for this recorder
  int64_t first_ns = 0;
  int64_t last_ns = 0;
  std::map<std::string, uint64_t> markers;
  std::vector<StreamSummary> streams;
  std::vector<ChannelSummary> channels;
  std::vector<NodeSummary> nodes;
  // Sources that declared their own time base and units: (name, what they mean).
  std::vector<std::pair<std::string, std::string>> devices;
};

// Reads the whole recording (throws std::runtime_error if it is not one).
Inspection inspect(const std::string& path);
// Events per second over the recording's span (first to last event of any source): the rates
// print_text and print_json show for streams and channels.
[[nodiscard]] double span_rate_hz(const Inspection& x, uint64_t events) noexcept;
void print_text(const Inspection& x, std::ostream& out);
void print_json(const Inspection& x, std::ostream& out);

}  // namespace ion::interchange
