#include "cli/report.h"
#include "cli/svg.h"
#include <ostream>
#include "cli/command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "ion/core/codec.h"
#include "ion/core/device_description.h"
#include "ion/core/record.h"
#include "ion/core/dataset.h"
#include "ion/v1/ion.pb.h"

namespace ion {
namespace {

using svg::Axis;
using svg::esc;
using svg::num;
using svg::x_axis;
using svg::y_axis;

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                   "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"};

struct Site {
  std::string name;
  std::string kind;
  std::vector<std::pair<int64_t, uint32_t>> events;  // (time, channel)
};

}  // namespace

namespace {

// "2026-12-05 14:03:07 UTC" for ns since 1970.
std::string utc_text(int64_t utc_ns) {
  const time_t s = static_cast<time_t>(utc_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

ReportStats write_report(const std::string& recording, const std::string& html_path, const ReportOptions& o) {
  record::Reader rd(recording);
  const v1::RecordHeader& header = rd.header();
  std::map<std::string, std::string> kind_of;
  std::map<std::string, uint32_t> channels_of;
  for (const auto& s : header.sources()) {
    kind_of[s.name()] = s.kind();
    channels_of[s.name()] = s.channels();
  }
  Codec codec({.max_message_bytes = record::kMaxRecordBytes, .max_events_per_batch = 1u << 22});
  BatchHeader bh;
  EventBatch ev;
  std::map<std::string, Site> sites;                                     // spikes and transmissions
  std::map<std::pair<std::string, uint32_t>, std::vector<std::pair<int64_t, float>>> weights;
  std::map<std::pair<std::string, uint32_t>, std::vector<std::pair<int64_t, float>>> concentrations;
  std::map<std::string, std::vector<int64_t>> latency;                   // source -> hub, per event
  struct ClockPoint {
    int64_t t;
    int64_t offset;
    int64_t bound;
  };
  std::map<std::string, std::vector<ClockPoint>> clocks;
  v1::StatusReply last_status;
  bool have_status = false;
  std::map<std::string, uint64_t> recorded_from;  // events of each node in this recording
  int64_t t_min = INT64_MAX;
  int64_t t_max = INT64_MIN;
  record::Record r;
  while (rd.next(r)) {
    if (r.type == record::RecordType::status) {
      v1::RecordStatus st;
      if (!st.ParseFromArray(r.body.data(), static_cast<int>(r.body.size()))) continue;
      for (const auto& n : st.status().nodes()) {
        if (n.has_health() && n.health().clock_synced()) {
          clocks[n.name()].push_back({st.network_ns(), n.health().clock_offset_ns(), n.health().clock_uncertainty_ns()});
        }
      }
      last_status = st.status();
      have_status = true;
      continue;
    }
    if (r.type != record::RecordType::batch) continue;
    if (!codec.decode(r.body).ok() || codec.take_batch({}, bh, ev) != Reject::none) continue;
    const std::string& src = bh.source_node;
    recorded_from[src] += ev.size();
    const bool synapse_weights = kind_of[src] == "synapse" && ev.stream != 0 && ev.has_payload();
    const bool modulator = ev.kind == EventKind::neuromodulator && ev.has_payload();
    for (size_t i = 0; i < ev.size(); ++i) {
      const int64_t t = ev.times_ns[i];
      t_min = std::min(t_min, t);
      t_max = std::max(t_max, t);
      if (modulator) {  // concentration samples: a trace, not raster points
        concentrations[{src, ev.channels[i]}].emplace_back(t, ev.payload[i]);
      } else if (synapse_weights) {
        const uint32_t s = channels_of[src] / 2;
        const uint32_t k = ev.channels[i] >= s ? ev.channels[i] - s : ev.channels[i];
        weights[{src, k}].emplace_back(t, ev.payload[i]);
      } else {
        Site& site = sites[src];
        site.name = src;
        site.kind = kind_of[src];
        site.events.emplace_back(t, ev.channels[i]);
        if (bh.broker_time_ns != 0) latency[src].push_back(bh.broker_time_ns - t);
      }
    }
  }
  if (t_min == INT64_MAX) t_min = t_max = 0;
  const int64_t origin = header.anchor_network_ns();
  const double t0 = static_cast<double>(t_min - origin) * 1e-9;
  const double t1 = std::max(t0 + 1e-3, static_cast<double>(t_max - origin) * 1e-9);
  ReportStats stats;
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" << esc(o.title) << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}"
    << "h1{font-size:22px}h2{font-size:17px;margin-top:28px}"
    << "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    << "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    << "svg{font-size:11px;background:#fff}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}"
    << ".note{color:#666;font-size:12px}</style></head><body>";
  h << "<h1>" << esc(o.title) << "</h1>";
  if (!o.verdict.empty()) h << "<p class='" << (o.verdict_ok ? "ok" : "bad") << "'>" << esc(o.verdict) << "</p>";
  h << "<table><tr><th>recording</th><td>" << esc(recording) << "</td></tr><tr><th>origin</th><td>"
    << esc(header.origin()) << "</td></tr><tr><th>span (network time from the broker's anchor)</th><td>"
    << num(t0, 3) << " s to " << num(t1, 3) << " s</td></tr>";
  if (header.anchor_utc_ns() != 0) {
    h << "<tr><th>recorded (UTC)</th><td>"
      << esc(utc_text(header.anchor_utc_ns() + (t_min - origin))) << " to "
      << esc(utc_text(header.anchor_utc_ns() + (t_max - origin))) << "</td></tr>";
  }
  // Each connection's delay; a network with many (a pasted crossbar: one per cell) gets one row
  // per source node with its delays' range.
  constexpr int kConnectionRows = 16;
  if (last_status.connections_size() <= kConnectionRows) {
    for (const auto& c : last_status.connections()) {
      h << "<tr><th>connection " << c.index() << " from " << esc(c.from()) << "</th><td>delay "
        << num(static_cast<double>(c.delay_ns()) / 1e6, 3) << " ms"
        << (c.auto_delay() ? " (auto: " + std::to_string(c.raises()) + " raises, " + std::to_string(c.lowers()) + " lowers)" : "")
        << "</td></tr>";
    }
  } else {
    struct Range {
      int count = 0, autos = 0;
      int64_t lo = INT64_MAX, hi = INT64_MIN;
    };
    std::map<std::string, Range> by_node;
    for (const auto& c : last_status.connections()) {
      Range& r = by_node[c.from().substr(0, c.from().find(':'))];
      ++r.count;
      r.autos += c.auto_delay() ? 1 : 0;
      r.lo = std::min(r.lo, c.delay_ns());
      r.hi = std::max(r.hi, c.delay_ns());
    }
    for (const auto& [node, r] : by_node) {
      h << "<tr><th>" << r.count << " connection" << (r.count > 1 ? "s" : "") << " from " << esc(node)
        << "</th><td>delay " << num(static_cast<double>(r.lo) / 1e6, 3);
      if (r.hi != r.lo) h << " to " << num(static_cast<double>(r.hi) / 1e6, 3);
      h << " ms" << (r.autos > 0 ? " (" + std::to_string(r.autos) + " auto)" : "") << "</td></tr>";
    }
  }
  for (const auto& [k, v] : o.facts) h << "<tr><th>" << esc(k) << "</th><td>" << esc(v) << "</td></tr>";
  // A device on its own time base or with simulation-scaled values says so where its data is read.
  std::set<std::string> described;
  for (const auto& src : header.sources()) {
    if (src.has_device() && described.insert(src.name()).second) {
      h << "<tr><th>" << esc(src.name()) << "</th><td>" << esc(device_line(src.device())) << "</td></tr>";
    }
  }
  for (const auto& n : last_status.nodes()) {
    if (n.has_device() && described.insert(n.name()).second) {
      h << "<tr><th>" << esc(n.name()) << "</th><td>" << esc(device_line(n.device())) << "</td></tr>";
    }
  }
  if (rd.torn()) h << "<tr><th>torn tail</th><td class='bad'>" << esc(rd.tail_reason()) << "</td></tr>";
  h << "</table>";

  // --- Raster: one panel per site, channels as rows, shared time axis.
  if (o.fc) stats.fc_pairs = write_fc_section(h, *o.fc);

  h << "<h2>Spike raster per site (shared network-time axis)</h2>";
  const double W = 1000;
  const double left = 90;
  const double right = W - 20;
  Axis x{t0, t1, left, right};
  size_t color = 0;
  for (auto& [name, site] : sites) {
    std::set<uint32_t> chans;
    for (const auto& e : site.events) chans.insert(e.second);
    std::map<uint32_t, size_t> row;
    for (const uint32_t c : chans) row.emplace(c, row.size());
    const double rows = static_cast<double>(row.size());
    const double ph = std::clamp(rows * 6.0, 60.0, 320.0);
    const double top = 10;
    const double H = top + ph + 45;
    h << "<svg width='" << W << "' height='" << H << "' role='img' aria-label='raster " << esc(name)
      << "' class='raster'><text x='" << left << "' y='" << top + 2 << "' font-weight='bold'>" << esc(name)
      << " (" << esc(site.kind) << ", " << site.events.size() << " events on " << row.size() << " channels)</text>";
    const size_t stride = std::max<size_t>(1, site.events.size() / o.max_points_per_site + 1);
    const char* c = kColors[color++ % 10];
    h << "<g stroke='" << c << "' stroke-width='1'>";
    for (size_t i = 0; i < site.events.size(); i += stride) {
      const double px = x.at(static_cast<double>(site.events[i].first - origin) * 1e-9);
      const double py = top + 8 + (rows <= 1 ? ph / 2 : static_cast<double>(row[site.events[i].second]) / (rows - 1) * (ph - 8));
      h << "<line x1='" << num(px, 1) << "' y1='" << num(py - 2, 1) << "' x2='" << num(px, 1) << "' y2='" << num(py + 2, 1) << "'/>";
      ++stats.raster_points;
    }
    h << "</g>";
    x_axis(h, x, top + ph + 6, "network time (s)");
    h << "<text x='" << left - 8 << "' y='" << top + ph / 2 << "' text-anchor='end'>channels</text>";
    if (!chans.empty()) {  // the channel numbers of the first and last rows
      h << "<text x='" << left - 4 << "' y='" << num(top + 8 + (rows <= 1 ? ph / 2 : 0) + 3, 1)
        << "' text-anchor='end'>" << *chans.begin() << "</text>";
      if (rows > 1) {
        h << "<text x='" << left - 4 << "' y='" << num(top + ph + 3, 1) << "' text-anchor='end'>"
          << *chans.rbegin() << "</text>";
      }
    }
    h << "</svg>";
    if (stride > 1) h << "<p class='note'>" << esc(name) << ": every " << stride << "th event drawn.</p>";
    ++stats.sites;
  }
  if (sites.empty()) h << "<p class='note'>No spikes in this recording.</p>";

  // --- Weights.
  h << "<h2>Synaptic weights</h2>";
  if (weights.empty()) {
    h << "<p class='note'>No synapse board in this recording.</p>";
  } else {
    const double H = 260;
    Axis y{0, 1, H - 45, 20};
    for (const auto& [k, v] : weights) {
      for (const auto& p : v) y.hi = std::max(y.hi, static_cast<double>(p.second));
    }
    h << "<svg width='" << W << "' height='" << H << "' role='img' aria-label='weights' class='weights'>";
    y_axis(h, y, left, "weight");
    x_axis(h, x, H - 45, "network time (s)");
    color = 0;
    double ly = 24;
    for (const auto& [key, v] : weights) {
      const char* c = kColors[color++ % 10];
      h << "<polyline fill='none' stroke='" << c << "' stroke-width='1.5' points='";
      for (const auto& [t, w] : v) h << num(x.at(static_cast<double>(t - origin) * 1e-9), 1) << "," << num(y.at(w), 1) << " ";
      h << "'/>";
      if (stats.weight_series < 8) {  // a legend for the first few; all are drawn
        const auto label = o.labels.find(key.first + "/" + std::to_string(key.second));
        h << "<text x='" << left + 10 << "' y='" << ly << "' fill='" << c << "'>" << esc(key.first) << " synapse "
          << key.second << (label != o.labels.end() ? " (" + esc(label->second) + ")" : std::string()) << ": "
          << num(v.front().second, 3) << " &#8594; " << num(v.back().second, 3) << "</text>";
        ly += 14;
      } else if (stats.weight_series == 8) {
        h << "<text x='" << left + 10 << "' y='" << ly << "' fill='#666'>and " << weights.size() - 8
          << " more synapses</text>";
      }
      ++stats.weight_series;
    }
    h << "</svg>";
  }

  // --- Neuromodulator concentrations (e.g. a chemical neuron's dopamine samples).
  if (!concentrations.empty()) {
    h << "<h2>Neuromodulator concentrations</h2><p class='note'>Samples as the node reported them "
         "(payload of its neuromodulator events, e.g. uM of dopamine).</p>";
    const double H = 220;
    Axis y{0, 1e-9, H - 45, 20};
    for (const auto& [k, v] : concentrations) {
      for (const auto& p : v) y.hi = std::max(y.hi, static_cast<double>(p.second));
    }
    y.hi *= 1.05;
    h << "<svg width='" << W << "' height='" << H << "' role='img' aria-label='concentrations' class='concentrations'>";
    y_axis(h, y, left, "concentration");
    x_axis(h, x, H - 45, "network time (s)");
    color = 0;
    double ly = 24;
    for (const auto& [key, v] : concentrations) {
      const char* c = kColors[color++ % 10];
      h << "<polyline fill='none' stroke='" << c << "' stroke-width='1.5' points='";
      for (const auto& [t, w] : v) h << num(x.at(static_cast<double>(t - origin) * 1e-9), 1) << "," << num(y.at(w), 1) << " ";
      h << "'/>";
      float lo = v.front().second, hi = v.front().second;
      for (const auto& p : v) {
        lo = std::min(lo, p.second);
        hi = std::max(hi, p.second);
      }
      h << "<text x='" << left + 10 << "' y='" << ly << "' fill='" << c << "'>" << esc(key.first) << " channel "
        << key.second << ": " << v.size() << " samples, " << num(lo, 3) << " to " << num(hi, 3) << "</text>";
      ly += 14;
      ++stats.modulator_series;
    }
    h << "</svg>";
  }

  // --- Latency histograms: source -> hub (broker receive - source time).
  h << "<h2>Latency from each site to the hub</h2><p class='note'>Broker receive time minus the "
       "event's source time, network time; what each connection's delay must exceed.</p>";
  for (auto& [name, v] : latency) {
    if (v.empty()) continue;
    std::sort(v.begin(), v.end());
    const double p50 = static_cast<double>(v[v.size() / 2]) / 1e6;
    const double p99 = static_cast<double>(v[std::min(v.size() - 1, v.size() * 99 / 100)]) / 1e6;
    const double vmax = static_cast<double>(v.back()) / 1e6;
    const double hi = std::max(1.0, std::min(vmax, p99 * 3));
    constexpr int kBins = 50;
    std::vector<size_t> bins(kBins, 0);
    size_t beyond = 0;
    for (const int64_t l : v) {
      const double ms = static_cast<double>(l) / 1e6;
      if (ms > hi) {
        ++beyond;
        continue;
      }
      bins[static_cast<size_t>(std::clamp(ms / hi * kBins, 0.0, kBins - 1.0))]++;
    }
    const size_t top = *std::max_element(bins.begin(), bins.end());
    const double H = 200;
    Axis bx{0, hi, left, W / 2};
    Axis by{0, static_cast<double>(std::max<size_t>(1, top)), H - 45, 24};
    h << "<svg width='" << W / 2 + 30 << "' height='" << H << "' role='img' aria-label='latency " << esc(name)
      << "' class='latency'><text x='" << left << "' y='14' font-weight='bold'>" << esc(name) << ": p50 " << num(p50, 3)
      << " ms, p99 " << num(p99, 3) << " ms, max " << num(vmax, 3) << " ms</text>";
    for (int b = 0; b < kBins; ++b) {
      if (bins[static_cast<size_t>(b)] == 0) continue;
      const double x0 = bx.at(hi * b / kBins);
      const double x1 = bx.at(hi * (b + 1) / kBins);
      const double y0 = by.at(static_cast<double>(bins[static_cast<size_t>(b)]));
      h << "<rect x='" << num(x0, 1) << "' y='" << num(y0, 1) << "' width='" << num(std::max(1.0, x1 - x0 - 1), 1)
        << "' height='" << num(H - 45 - y0, 1) << "' fill='#4a7ab5'/>";
    }
    x_axis(h, bx, H - 45, "latency (ms)" + (beyond > 0 ? " — " + std::to_string(beyond) + " beyond the axis" : std::string()), 2);
    y_axis(h, by, left, "events", 0);
    h << "</svg>";
    ++stats.latency_histograms;
  }

  // --- Clock offsets with their bounds.
  h << "<h2>Clock offset of each node (network − node clock) with its proven bound</h2>";
  if (clocks.empty()) {
    h << "<p class='note'>No clock reports in this recording.</p>";
  } else {
    const double H = 260;
    double lo = 0;
    double hi = 0;
    for (const auto& [n, v] : clocks) {
      for (const auto& p : v) {
        lo = std::min(lo, static_cast<double>(p.offset - p.bound) / 1e3);
        hi = std::max(hi, static_cast<double>(p.offset + p.bound) / 1e3);
      }
    }
    Axis y{lo, std::max(hi, lo + 1), H - 45, 20};
    h << "<svg width='" << W << "' height='" << H << "' role='img' aria-label='clock offsets' class='clocks'>";
    y_axis(h, y, left, "offset (us)", 0);
    x_axis(h, x, H - 45, "network time (s)");
    color = 0;
    double ly = 24;
    for (const auto& [n, v] : clocks) {
      const char* c = kColors[color++ % 10];
      h << "<polygon fill='" << c << "' fill-opacity='0.15' stroke='none' points='";
      for (const auto& p : v) h << num(x.at(static_cast<double>(p.t - origin) * 1e-9), 1) << "," << num(y.at(static_cast<double>(p.offset + p.bound) / 1e3), 1) << " ";
      for (auto it = v.rbegin(); it != v.rend(); ++it) {
        h << num(x.at(static_cast<double>(it->t - origin) * 1e-9), 1) << "," << num(y.at(static_cast<double>(it->offset - it->bound) / 1e3), 1) << " ";
      }
      h << "'/><polyline fill='none' stroke='" << c << "' stroke-width='1.5' points='";
      for (const auto& p : v) h << num(x.at(static_cast<double>(p.t - origin) * 1e-9), 1) << "," << num(y.at(static_cast<double>(p.offset) / 1e3), 1) << " ";
      h << "'/><text x='" << left + 10 << "' y='" << ly << "' fill='" << c << "'>" << esc(n) << "</text>";
      ly += 14;
      ++stats.clock_traces;
    }
    h << "</svg>";
  }

  // --- Final counters.
  if (have_status) {
    h << "<h2>Counters at the end (broker and each node's own report)</h2><table><tr><th>node</th><th>events from node</th><th>of them in this recording</th>"
         "<th>events to node</th><th>dropped at broker</th><th>received</th><th>lost</th><th>late</th>"
         "<th>device trouble</th><th>clock offset (us)</th><th>bound (us)</th></tr>";
    for (const auto& n : last_status.nodes()) {
      const auto& hl = n.health();
      const bool bad = hl.lost_events() > 0 || n.dropped_events() > 0;
      // Late: every delivery flagged late (after the deadline, or beyond the playout's precision).
      const uint64_t late = hl.late_events() + hl.playout_overrun();
      std::string trouble;
      for (const auto& t : hl.trouble_counters()) {
        const auto it = hl.driver_counters().find(t);
        if (it != hl.driver_counters().end() && it->second > 0) {
          trouble += (trouble.empty() ? " (" : ", ") + t + " " + std::to_string(it->second);
        }
      }
      if (!trouble.empty()) trouble += ")";
      const auto rec = recorded_from.find(n.name());
      const uint64_t recorded = rec == recorded_from.end() ? 0 : rec->second;
      h << "<tr><td>" << esc(n.name()) << "</td><td>" << n.events_in() << "</td><td"
        << (recorded > n.events_in() ? " class='bad'" : "") << ">" << recorded << "</td><td>" << n.events_out() << "</td><td"
        << (n.dropped_events() > 0 ? " class='bad'" : "") << ">" << n.dropped_events() << "</td><td>" << hl.received_events()
        << "</td><td" << (bad ? " class='bad'" : "") << ">" << hl.lost_events() << "</td><td"
        << (late > 0 ? " class='bad'" : "") << ">" << late << "</td><td"
        << (hl.device_trouble() > 0 ? " class='bad'" : "") << ">" << hl.device_trouble() << esc(trouble)
        << "</td><td>" << num(static_cast<double>(hl.clock_offset_ns()) / 1e3, 1) << "</td><td>"
        << num(static_cast<double>(hl.clock_uncertainty_ns()) / 1e3, 1) << "</td></tr>";
    }
    h << "</table><p class='note'>Events from node: what the node sent, accepted by the broker, over the "
         "broker's life; of them in this recording: what the raster and traces above hold (fewer when "
         "the recorder joined late or left early, never more); events to node: what the broker sent "
         "it (the same words as ion status and the dashboard). Received, lost and late are the node's "
         "own report.</p>";
  }
  h << "<p class='note'>Made by ion from " << esc(recording) << ". Late and lost counts in red are counted, "
       "never silent; see docs/timing.md for what each means.</p></body></html>\n";
  std::ofstream f(html_path);
  if (!f) throw std::runtime_error("cannot create " + html_path);
  f << h.str();
  if (!f) throw std::runtime_error("cannot write " + html_path);
  return stats;
}

}  // namespace ion

namespace ion::cli {
namespace {

class ReportCommand final : public Command {
 public:
  CLI::App* add(CLI::App& parent, Context& ctx) override {
    CLI::App* c = parent.add_subcommand(
        "report", "write an HTML page (raster, weights, latency, clocks) of a recording");
    c->add_option("file", in_, "recording")->required();
    c->add_option("-o,--out", out_, "HTML file to write")->required();
    ctx.add_force(c);
    return c;
  }
  int run(Context& ctx) override {
    ctx.check_output(out_, {in_}, "-o");
    ReportOptions ro;
    ro.title = "IoN recording " + in_;
    const auto st = write_report(in_, out_, ro);
    ctx.out << "ion report: " << out_ << " (" << st.sites << " sites, " << st.weight_series
            << " weight traces, " << st.latency_histograms << " latency histograms, "
            << st.clock_traces << " clock traces)\n";
    return 0;
  }

 private:
  std::string in_, out_;
};

}  // namespace

std::unique_ptr<Command> make_report_command() { return std::make_unique<ReportCommand>(); }

}  // namespace ion::cli
