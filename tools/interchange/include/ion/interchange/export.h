#pragma once
// Exporters: an IoN recording -> the formats analysis tools read. A unit is one channel of one
// spike source; a series is one channel of a source of other events (a synapse board's weights,
// synaptic inputs, stimulations, neuromodulators). Errors throw std::runtime_error naming the file.
//   csv  `channel,time_s` (header line; exact decimal seconds; sorted by time); with several
//        sources the channel is "source/channel". Series go beside it, in NAME.events.csv:
//        `node,stream,kind,channel,time_s,value` (kind `weight` for a synapse's weight stream;
//        kind `stimulation`: `node` was stimulated on electrode `channel` at `time_s`)
//   npy  phy/Kilosort style folder: spike_times.npy (uint64 samples), spike_clusters.npy
//        (int32 unit), channel_map.npy, channel_positions.npy, cluster_info.tsv, params.py
//   nwb  NWB HDF5 file (2.5.0 layout; the cached schema's version when one is found, nwb_schema.h):
//        session start time, electrodes table (electrode sources only), Units
//        table with spike times in seconds (from the session start) and each electrode unit's
//        electrode (a silicon neuron has none), and each series as a TimeSeries in /acquisition;
//        stimulations (from `routes`) per electrode in /stimulus/presentation
#include <map>
#include <string>
#include <vector>

#include "ion/core/dataset.h"

namespace ion::interchange {

// Where a source channel's events went, from the recording's topology (the CLI reads it): events
// routed to an electrode array (kind "mea") are stimulations of those electrodes.
struct ExportRoute {
  std::string source;
  uint32_t channel = 0;
  std::string target;
  std::string target_kind;
  uint32_t port = 0;
  int64_t delay_ns = 0;  // as the topology set it (`delay: auto` moves from there)
  uint32_t connection = 0;  // index in the topology's connection list
};

// A `delay: auto` connection's delay over the recording: (network time, delay) at each status
// record where it changed, oldest first.
using DelayTimeline = std::vector<std::pair<int64_t, int64_t>>;

struct ExportOptions {
  std::string source;         // only this source (empty: every spike source)
  std::vector<ExportRoute> routes;  // csv and nwb: stimulations of electrode arrays
  // Connections whose delay moved (`delay: auto`): a stimulation is stamped with the delay in
  // effect at its source time, as the status records show it (to their interval's resolution).
  std::map<uint32_t, DelayTimeline> delays;
  double sample_rate_hz = 0;  // npy: samples per second when the source has no grid (default 30 kHz)
  std::string session_description = "IoN recording";
  // nwb: where to find the NWB schema to cache in the file (nwb_schema.h); empty: the default
  // places. Given folders without a usable schema are an error; the default places a note.
  std::vector<std::string> nwb_schema_dirs;
};

struct ExportResult {
  uint64_t units = 0;
  uint64_t events = 0;          // spikes
  uint64_t series = 0;
  uint64_t series_events = 0;
  std::vector<std::string> notes;
};

ExportResult export_csv(const Dataset& d, const std::string& out, const ExportOptions& o = {});
ExportResult export_npy(const Dataset& d, const std::string& out_dir, const ExportOptions& o = {});
ExportResult export_nwb(const Dataset& d, const std::string& out, const ExportOptions& o = {});
ExportResult export_file(const std::string& format, const Dataset& d, const std::string& out,
                         const ExportOptions& o = {});

// Where export_csv writes the events that are not spikes: out.csv -> out.events.csv.
[[nodiscard]] std::string events_csv_path(const std::string& spikes_csv);

// Writes a NumPy .npy file (format 1.0, little-endian) of a 1-D or 2-D array.
void write_npy(const std::string& path, const std::string& descr, const std::vector<size_t>& shape,
               const void* data, size_t bytes);

}  // namespace ion::interchange
