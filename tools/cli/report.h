#pragma once
// An HTML report of a recording: one self-contained page (inline SVG, no scripts, no network)
// with the spike raster of every site on a shared network-time axis, the synaptic weight
// trajectories, the source-to-hub latency histograms, the clock-offset traces with their bounds,
// and the final counters. `ion demo` writes one; `ion report FILE -o PAGE` makes one for any
// recording.
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ion {

struct ReportOptions {
  std::string title = "IoN recording";
  std::string verdict;  // one line shown at the top (e.g. the demo's promise check)
  bool verdict_ok = true;
  std::vector<std::pair<std::string, std::string>> facts;  // extra rows of the summary table
  size_t max_points_per_site = 40000;  // raster points drawn per site (evenly thinned beyond)
  std::map<std::string, std::string> labels;  // "source/k" -> name of synapse k (e.g. "bio->si0")
};

struct ReportStats {
  size_t sites = 0;
  size_t raster_points = 0;
  size_t weight_series = 0;
  size_t modulator_series = 0;  // neuromodulator concentration traces
  size_t latency_histograms = 0;
  size_t clock_traces = 0;
};

// Throws std::runtime_error when the recording cannot be read or the page cannot be written.
ReportStats write_report(const std::string& recording, const std::string& html_path,
                         const ReportOptions& options = {});

}  // namespace ion
