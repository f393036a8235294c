#pragma once
// An HTML report of a recording: one self-contained page (inline SVG, no scripts, no network)
// with the spike raster of every site on a shared network-time axis, the synaptic weight
// trajectories, the source-to-hub latency histograms, the clock-offset traces with their bounds,
// and the final counters. `ion demo` writes one; `ion report FILE -o PAGE` makes one for any
// recording.
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ion {

// The functional connectivity of two networks over the same channels (ion connectome
// copy-paste): drawn at the top of the report as a scatter of every pair and the two matrices.
struct FcComparison {
  std::string reference_name = "culture (copied)";
  std::string pasted_name = "pasted network";
  std::string method;                     // how FC was measured, one line
  std::vector<std::string> channels;
  std::vector<double> reference, pasted;  // n x n, row-major; NaN where a channel never fired
  std::vector<double> control;            // the silicon network without the paste (may be empty)
  double correlation = 0;                 // Pearson, reference against pasted, over the pairs
  std::optional<double> control_correlation;
};

struct ReportOptions {
  std::string title = "IoN recording";
  std::string verdict;  // one line shown at the top (e.g. the demo's promise check)
  bool verdict_ok = true;
  std::vector<std::pair<std::string, std::string>> facts;  // extra rows of the summary table
  size_t max_points_per_site = 40000;  // raster points drawn per site (evenly thinned beyond)
  std::map<std::string, std::string> labels;  // "source/k" -> name of synapse k (e.g. "bio->si0")
  std::optional<FcComparison> fc;
};

struct ReportStats {
  size_t sites = 0;
  size_t raster_points = 0;
  size_t weight_series = 0;
  size_t modulator_series = 0;  // neuromodulator concentration traces
  size_t latency_histograms = 0;
  size_t clock_traces = 0;
  size_t fc_pairs = 0;  // pairs drawn in the functional-connectivity scatter
};

// The report's functional-connectivity section (report_fc.cpp); returns the pairs drawn.
size_t write_fc_section(std::ostringstream& html, const FcComparison& fc);

// Throws std::runtime_error when the recording cannot be read or the page cannot be written.
ReportStats write_report(const std::string& recording, const std::string& html_path,
                         const ReportOptions& options = {});

}  // namespace ion
