#pragma once
// Spike data in memory, by source: what importers produce, exporters and replay consume, and
// recordings hold. Times are int64 nanoseconds of network time (for imports: from the start of
// the recording, on its sample grid when it has one).
#include <cstdint>
#include <string>
#include <vector>

#include "ion/core/event_batch.h"
#include "ion/core/record.h"

namespace ion {

struct SourceData {
  v1::SourceDescription desc;  // name, kind, channel count, sample rate, channel names/positions
  uint32_t stream = 0;
  EventKind kind = EventKind::spike;
  std::vector<uint32_t> channels;
  std::vector<int64_t> times_ns;
  std::vector<float> payload;  // empty, or one per event

  [[nodiscard]] size_t size() const noexcept { return times_ns.size(); }
  // Name of channel `id` (its channel_info name, else the number).
  [[nodiscard]] std::string channel_name(uint32_t id) const;
  // Sorts the events by time (stable: equal times keep their order).
  void sort_by_time();
};

struct Dataset {
  v1::RecordHeader header;
  std::vector<SourceData> sources;
};

struct LoadStats {
  uint64_t batches = 0;
  uint64_t events = 0;
  uint64_t bad_batches = 0;  // records whose envelope did not decode (counted, skipped)
  bool torn = false;
  std::string tail_reason;
};

// Every event of a recording, one SourceData per (source node, stream, kind), each sorted by
// time. `only_source`: keep just that source (empty: all).
Dataset load_recording(const std::string& path, LoadStats* stats = nullptr,
                       const std::string& only_source = {});

// Writes a dataset as a recording: one batch record per at most `batch_events` events of one
// source, interleaved by time across sources; arrival time = the batch's last event time.
// Throws std::runtime_error on I/O errors.
void write_recording(const std::string& path, const Dataset& data, size_t batch_events = 4096);

// Parses a decimal number of seconds ("12.345678") into integer nanoseconds exactly (no binary
// floating point on the way); false if it is not a plain decimal number or out of range.
bool parse_seconds_ns(std::string_view text, int64_t& ns) noexcept;
// Formats nanoseconds as exact decimal seconds, trailing zeros trimmed ("12.34568").
std::string format_seconds(int64_t ns);

// Snaps times in seconds to a sample grid: finds the lowest of the usual acquisition rates (or
// `rate_hz` if given) on whose grid every time lies within 1e-6 of a tick, and returns the
// times in ns (tick * 1e9 / rate, exact when that is an integer). rate_hz is set to the grid
// found, or 0 if none (times then rounded to the nearest ns).
std::vector<int64_t> seconds_to_ns_on_grid(const std::vector<double>& seconds, double& rate_hz);

}  // namespace ion
