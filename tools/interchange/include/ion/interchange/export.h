#pragma once
// Exporters: an IoN recording -> the formats analysis tools read. A unit is one channel of one
// source (spike events only). Errors throw std::runtime_error naming the file.
//   csv  `channel,time_s` (header line; exact decimal seconds; sorted by time); with several
//        sources the channel is "source/channel"
//   npy  phy/Kilosort style folder: spike_times.npy (uint64 samples), spike_clusters.npy
//        (int32 unit), channel_map.npy, channel_positions.npy, cluster_info.tsv, params.py
//   nwb  NWB 2.5 HDF5 file: session start time, electrodes table, Units table with spike times
//        in seconds (from the session start) and each unit's electrode
#include <string>
#include <vector>

#include "ion/interchange/dataset.h"

namespace ion::interchange {

struct ExportOptions {
  std::string source;         // only this source (empty: every spike source)
  double sample_rate_hz = 0;  // npy: samples per second when the source has no grid (default 30 kHz)
  std::string session_description = "IoN recording";
};

struct ExportResult {
  uint64_t units = 0;
  uint64_t events = 0;
  std::vector<std::string> notes;
};

ExportResult export_csv(const Dataset& d, const std::string& out, const ExportOptions& o = {});
ExportResult export_npy(const Dataset& d, const std::string& out_dir, const ExportOptions& o = {});
ExportResult export_nwb(const Dataset& d, const std::string& out, const ExportOptions& o = {});
ExportResult export_file(const std::string& format, const Dataset& d, const std::string& out,
                         const ExportOptions& o = {});

// Writes a NumPy .npy file (format 1.0, little-endian) of a 1-D or 2-D array.
void write_npy(const std::string& path, const std::string& descr, const std::vector<size_t>& shape,
               const void* data, size_t bytes);

}  // namespace ion::interchange
