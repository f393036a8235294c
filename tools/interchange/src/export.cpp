#include "ion/interchange/export.h"
#include "ion/interchange/nwb_schema.h"

#include <hdf5.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <tuple>

namespace ion::interchange {
namespace {

struct Unit {
  const SourceData* src;
  uint32_t channel;
  std::string name;
  std::vector<int64_t> times_ns;
};

// Spike sources chosen by the options; units in source order, then channel id order.
std::vector<Unit> units_of(const Dataset& d, const ExportOptions& o, ExportResult& /*r*/) {
  std::vector<const SourceData*> chosen;
  bool any = false;
  for (const auto& s : d.sources) {
    if (!o.source.empty() && s.desc.name() != o.source) continue;
    any = any || s.size() > 0;
    if (s.kind == EventKind::spike) chosen.push_back(&s);
  }
  if (!any) {
    throw std::runtime_error(o.source.empty() ? std::string("the recording holds no events")
                                              : "no source named '" + o.source + "' with events");
  }
  std::vector<Unit> units;
  for (const SourceData* s : chosen) {
    std::map<uint32_t, size_t> by_channel;
    for (size_t i = 0; i < s->size(); ++i) {
      auto [it, fresh] = by_channel.try_emplace(s->channels[i], units.size());
      if (fresh) {
        std::string name = s->channel_name(s->channels[i]);
        if (chosen.size() > 1) name = s->desc.name() + "/" + name;
        units.push_back({s, s->channels[i], name, {}});
      }
      units[it->second].times_ns.push_back(s->times_ns[i]);
    }
  }
  std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) {
    return a.src != b.src ? a.src < b.src : a.channel < b.channel;
  });
  return units;
}

// Events that are not spikes, one series per source, stream, kind and channel: a synapse board's
// weight stream (each read's weight), synaptic inputs with their weights, stimulations with their
// amplitudes, neuromodulator concentrations.
struct Series {
  const SourceData* src;
  uint32_t channel;
  std::string what;  // weight, synaptic_input, stimulation, neuromodulator
  std::string name;  // unique, no '/'
  std::vector<int64_t> times_ns;
  std::vector<float> values;
  std::string node;   // whose it is: the source, or the stimulated node
  std::string where;  // for the description
};

bool is_weight_stream(const SourceData& s) {
  return s.desc.kind() == "synapse" && s.stream != 0 && s.kind == EventKind::synaptic_input;
}

std::vector<Series> series_of(const Dataset& d, const ExportOptions& o) {
  std::vector<Series> out;
  for (const auto& s : d.sources) {
    if (s.kind == EventKind::spike || s.size() == 0) continue;
    if (!o.source.empty() && s.desc.name() != o.source) continue;
    const std::string what = is_weight_stream(s) ? "weight" : to_string(s.kind);
    std::map<uint32_t, size_t> by_channel;
    for (size_t i = 0; i < s.size(); ++i) {
      auto [it, fresh] = by_channel.try_emplace(s.channels[i], out.size());
      if (fresh) {
        std::string name = s.desc.name() + "_" + what + "_" + s.channel_name(s.channels[i]);
        std::replace(name.begin(), name.end(), '/', '_');
        out.push_back({&s, s.channels[i], what, name, {}, {}, s.desc.name(),
                       "IoN source '" + s.desc.name() + "' (" + s.desc.kind() + "), stream " +
                           std::to_string(s.stream) + ", channel " + s.channel_name(s.channels[i])});
      }
      out[it->second].times_ns.push_back(s.times_ns[i]);
      out[it->second].values.push_back(s.payload.empty() ? 1.0F : s.payload[i]);
    }
  }
  return out;
}

// Events routed to an electrode array's ports are stimulations of those electrodes: one series
// per stimulated electrode, at the time it was applied (source time + the connection's delay),
// the value being the event's payload (a synapse's weighted output: the amplitude).
// The connection's delay at source time t: the last change recorded at or before t, else the
// topology's value.
int64_t delay_at(const ExportOptions& o, const ExportRoute& r, int64_t t) noexcept {
  const auto it = o.delays.find(r.connection);
  if (it == o.delays.end() || it->second.empty()) return r.delay_ns;
  const DelayTimeline& tl = it->second;
  const auto after = std::upper_bound(tl.begin(), tl.end(), t,
                                      [](int64_t x, const std::pair<int64_t, int64_t>& p) { return x < p.first; });
  return after == tl.begin() ? r.delay_ns : std::prev(after)->second;
}

std::vector<Series> stimulations_of(const Dataset& d, const ExportOptions& o) {
  std::map<std::pair<std::string, uint32_t>, std::vector<const ExportRoute*>> by_source;
  for (const ExportRoute& r : o.routes) {
    if (r.target_kind == "mea" && (o.source.empty() || o.source == r.target)) by_source[{r.source, r.channel}].push_back(&r);
  }
  std::vector<Series> out;
  if (by_source.empty()) return out;
  std::map<std::pair<std::string, uint32_t>, size_t> index;  // (target, port) -> series
  for (const auto& s : d.sources) {
    if (is_weight_stream(s)) continue;
    for (size_t i = 0; i < s.size(); ++i) {
      const auto it = by_source.find({s.desc.name(), s.channels[i]});
      if (it == by_source.end()) continue;
      for (const ExportRoute* r : it->second) {
        auto [j, fresh] = index.try_emplace({r->target, r->port}, out.size());
        if (fresh) {
          const bool moved = o.delays.contains(r->connection);
          out.push_back({&s, r->port, "stimulation", r->target + "_stimulation_" + std::to_string(r->port), {}, {},
                         r->target,
                         "electrode " + std::to_string(r->port) + " of '" + r->target + "' stimulated by '" +
                             r->source + "' channel " + std::to_string(r->channel) +
                             ", applied at source time + the connection's delay (" +
                             (moved ? std::string("delay: auto, as the recording's status records show it at each "
                                                  "source time, starting from ") +
                                          format_seconds(r->delay_ns) + " s"
                                    : format_seconds(r->delay_ns) + " s as the topology set it") +
                             ")"});
        }
        out[j->second].times_ns.push_back(s.times_ns[i] + delay_at(o, *r, s.times_ns[i]));
        out[j->second].values.push_back(s.payload.empty() ? 1.0F : s.payload[i]);
      }
    }
  }
  for (Series& x : out) {  // several senders or streams: in time order
    std::vector<size_t> order(x.times_ns.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x.times_ns[a] < x.times_ns[b]; });
    std::vector<int64_t> t;
    std::vector<float> v;
    for (const size_t k : order) {
      t.push_back(x.times_ns[k]);
      v.push_back(x.values[k]);
    }
    x.times_ns = std::move(t);
    x.values = std::move(v);
  }
  return out;
}

// Every series of the export: the sources' own, then the stimulations the topology resolves.
std::vector<Series> all_series_of(const Dataset& d, const ExportOptions& o) {
  std::vector<Series> out = series_of(d, o);
  std::vector<Series> stim = stimulations_of(d, o);
  out.insert(out.end(), std::make_move_iterator(stim.begin()), std::make_move_iterator(stim.end()));
  return out;
}

// What a source's channels are: electrodes of an array (MEA, imported or replayed electrode
// data, anything with positions), or neurons with no electrode (a chip, a generator, a lab's code).
bool has_electrodes(const SourceData& s) {
  const std::string& k = s.desc.kind();
  return k == "mea" || k == "import" || k == "replay" || !s.desc.channel_info().empty();
}

int64_t origin_ns(const Dataset& d) { return d.header.anchor_network_ns(); }

const v1::ChannelInfo* info_of(const SourceData& s, uint32_t id) {
  for (const auto& c : s.desc.channel_info()) {
    if (c.id() == id) return &c;
  }
  return nullptr;
}

}  // namespace

void write_npy(const std::string& path, const std::string& descr, const std::vector<size_t>& shape,
               const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  if (shape.size() > 1 && dims.back() == ',') dims.pop_back();
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot create " + path);
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  f.write(magic, 8);
  const auto len = static_cast<uint16_t>(header.size());
  const char l[2] = {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
  f.write(l, 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!f) throw std::runtime_error("cannot write " + path);
}

ExportResult export_csv(const Dataset& d, const std::string& out, const ExportOptions& o) {
  ExportResult r;
  const std::vector<Unit> units = units_of(d, o, r);
  // Merge by time; ties in unit order.
  std::vector<std::pair<int64_t, uint32_t>> all;
  for (uint32_t u = 0; u < units.size(); ++u) {
    for (int64_t t : units[u].times_ns) all.emplace_back(t, u);
  }
  std::stable_sort(all.begin(), all.end());
  std::FILE* f = std::fopen(out.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot create " + out);
  std::fputs("channel,time_s\n", f);
  const int64_t t0 = origin_ns(d);
  for (const auto& [t, u] : all) {
    const std::string& name = units[u].name;
    const bool quote = name.find_first_of(",\"") != std::string::npos;
    std::fprintf(f, quote ? "\"%s\",%s\n" : "%s,%s\n", name.c_str(), format_seconds(t - t0).c_str());
  }
  if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + out);
  r.units = units.size();
  r.events = all.size();
  const std::vector<Series> series = all_series_of(d, o);
  if (!series.empty()) {
    // Weights, synaptic inputs, stimulations: beside the spikes, one row per event.
    const std::string events_path = events_csv_path(out);
    std::vector<std::tuple<int64_t, size_t, size_t>> rows;  // time, series, index
    for (size_t k = 0; k < series.size(); ++k) {
      for (size_t i = 0; i < series[k].times_ns.size(); ++i) rows.emplace_back(series[k].times_ns[i], k, i);
    }
    std::stable_sort(rows.begin(), rows.end());
    std::FILE* e = std::fopen(events_path.c_str(), "w");
    if (e == nullptr) throw std::runtime_error("cannot create " + events_path);
    std::fputs("node,stream,kind,channel,time_s,value\n", e);
    for (const auto& [t, k, i] : rows) {
      const Series& x = series[k];
      const bool stim = x.what == "stimulation" && x.node != x.src->desc.name();
      std::string ch = stim ? std::to_string(x.channel) : x.src->channel_name(x.channel);
      if (ch.find_first_of(",\"") != std::string::npos) ch = "\"" + ch + "\"";
      std::fprintf(e, "%s,%u,%s,%s,%s,%.9g\n", x.node.c_str(), stim ? 0U : x.src->stream, x.what.c_str(),
                   ch.c_str(), format_seconds(t - t0).c_str(), static_cast<double>(x.values[i]));
    }
    if (std::fclose(e) != 0) throw std::runtime_error("cannot write " + events_path);
    r.series = series.size();
    r.series_events = rows.size();
    r.notes.push_back(std::to_string(rows.size()) + " events that are not spikes (weights, synaptic inputs, "
                      "stimulations) in " + events_path);
  }
  return r;
}

std::string events_csv_path(const std::string& spikes_csv) {
  const std::string stem = spikes_csv.size() > 4 && spikes_csv.ends_with(".csv")
                               ? spikes_csv.substr(0, spikes_csv.size() - 4) : spikes_csv;
  return stem + ".events.csv";
}

ExportResult export_npy(const Dataset& d, const std::string& dir, const ExportOptions& o) {
  ExportResult r;
  const std::vector<Unit> units = units_of(d, o, r);
  if (units.empty()) throw std::runtime_error("phy holds spike sorting results: the recording has no spike events");
  if (!series_of(d, o).empty()) {
    r.notes.push_back("phy holds spikes only: weights, synaptic inputs and stimulations are in the csv and nwb exports");
  }
  ::mkdir(dir.c_str(), 0755);
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw std::runtime_error("cannot create folder " + dir);
  double fs = o.sample_rate_hz;
  if (fs <= 0) {
    for (const Unit& u : units) fs = std::max(fs, u.src->desc.sample_rate_hz());
  }
  if (fs <= 0) {
    fs = 30000;
    r.notes.push_back("no sample grid in the recording: spike_times in samples of 30 kHz (--sample-rate to choose)");
  }
  std::vector<std::pair<int64_t, int32_t>> all;
  for (size_t u = 0; u < units.size(); ++u) {
    for (int64_t t : units[u].times_ns) all.emplace_back(t, static_cast<int32_t>(u));
  }
  std::stable_sort(all.begin(), all.end());
  const int64_t t0 = origin_ns(d);
  std::vector<uint64_t> samples;
  std::vector<int32_t> clusters;
  bool inexact = false;
  for (const auto& [t, u] : all) {
    const double k = static_cast<double>(t - t0) * fs / 1e9;
    const double rk = std::nearbyint(k);
    if (std::fabs(k - rk) > 1e-6) inexact = true;
    samples.push_back(static_cast<uint64_t>(std::max(0.0, rk)));
    clusters.push_back(u);
  }
  if (inexact) r.notes.push_back("some times are between samples of the chosen rate: rounded to the nearest sample");
  write_npy(dir + "/spike_times.npy", "<u8", {samples.size()}, samples.data(), samples.size() * 8);
  write_npy(dir + "/spike_clusters.npy", "<i4", {clusters.size()}, clusters.data(), clusters.size() * 4);
  std::vector<int32_t> map(units.size());
  std::vector<double> posxy;
  for (size_t u = 0; u < units.size(); ++u) {
    map[u] = static_cast<int32_t>(u);
    const v1::ChannelInfo* c = info_of(*units[u].src, units[u].channel);
    posxy.push_back(c != nullptr ? c->x_um() : 0.0);
    posxy.push_back(c != nullptr ? c->y_um() : 0.0);
  }
  write_npy(dir + "/channel_map.npy", "<i4", {map.size()}, map.data(), map.size() * 4);
  write_npy(dir + "/channel_positions.npy", "<f8", {units.size(), 2}, posxy.data(), posxy.size() * 8);
  std::ofstream info(dir + "/cluster_info.tsv");
  info << "cluster_id\tch\tname\tn_spikes\n";
  for (size_t u = 0; u < units.size(); ++u) {
    info << u << "\t" << u << "\t" << units[u].name << "\t" << units[u].times_ns.size() << "\n";
  }
  std::ofstream params(dir + "/params.py");
  params << "dat_path = ''\nn_channels_dat = " << units.size() << "\ndtype = 'int16'\noffset = 0\n"
         << "sample_rate = " << fs << "\nhp_filtered = True\n";
  if (!info || !params) throw std::runtime_error("cannot write " + dir);
  r.units = units.size();
  r.events = all.size();
  return r;
}

// --- NWB ------------------------------------------------------------------------------------------

namespace {

class H5Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) throw H5Error("HDF5: cannot " + what);
  return id;
}
void check(herr_t e, const std::string& what) {
  if (e < 0) throw H5Error("HDF5: cannot " + what);
}

std::string uuid4(std::mt19937_64& rng) {
  uint64_t a = rng();
  uint64_t b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  char s[37];
  std::snprintf(s, sizeof s, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
  return s;
}

std::string iso8601(int64_t utc_ns) {
  const time_t s = static_cast<time_t>(utc_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>((utc_ns % 1'000'000'000) / 1000));
  return buf;
}

class NwbWriter {
 public:
  explicit NwbWriter(const std::string& path) : rng_(std::random_device{}()) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    file_ = check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "create " + path);
    vstr_ = H5Tcopy(H5T_C_S1);
    H5Tset_size(vstr_, H5T_VARIABLE);
    H5Tset_cset(vstr_, H5T_CSET_UTF8);
  }
  ~NwbWriter() {
    H5Tclose(vstr_);
    if (file_ >= 0) H5Fclose(file_);
  }
  hid_t file() const { return file_; }

  hid_t group(hid_t parent, const std::string& name) {
    return check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "create group " + name);
  }
  void attr(hid_t obj, const std::string& name, const std::string& value) {
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = check(H5Acreate2(obj, name.c_str(), vstr_, sp, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name);
    const char* p = value.c_str();
    check(H5Awrite(a, vstr_, &p), "write attribute " + name);
    H5Aclose(a);
    H5Sclose(sp);
  }
  void attr_strings(hid_t obj, const std::string& name, const std::vector<std::string>& v) {
    const hsize_t n = v.size();
    const hid_t sp = H5Screate_simple(1, &n, nullptr);
    const hid_t a = check(H5Acreate2(obj, name.c_str(), vstr_, sp, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name);
    std::vector<const char*> p;
    for (const auto& s : v) p.push_back(s.c_str());
    check(H5Awrite(a, vstr_, p.data()), "write attribute " + name);
    H5Aclose(a);
    H5Sclose(sp);
  }
  void attr_ref(hid_t obj, const std::string& name, const std::string& target) {
    hobj_ref_t ref;
    check(H5Rcreate(&ref, file_, target.c_str(), H5R_OBJECT, -1), "reference " + target);
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = check(H5Acreate2(obj, name.c_str(), H5T_STD_REF_OBJ, sp, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name);
    check(H5Awrite(a, H5T_STD_REF_OBJ, &ref), "write attribute " + name);
    H5Aclose(a);
    H5Sclose(sp);
  }
  template <class T>
  void attr_number(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type, T value) {
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = check(H5Acreate2(obj, name.c_str(), file_type, sp, H5P_DEFAULT, H5P_DEFAULT), "attribute " + name);
    check(H5Awrite(a, mem_type, &value), "write attribute " + name);
    H5Aclose(a);
    H5Sclose(sp);
  }
  // neurodata_type, namespace and a fresh object_id on a typed object.
  void typed(hid_t obj, const std::string& type, const std::string& ns) {
    attr(obj, "namespace", ns);
    attr(obj, "neurodata_type", type);
    attr(obj, "object_id", uuid4(rng_));
  }
  hid_t scalar_string(hid_t parent, const std::string& name, const std::string& value) {
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t d = check(H5Dcreate2(parent, name.c_str(), vstr_, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "dataset " + name);
    const char* p = value.c_str();
    check(H5Dwrite(d, vstr_, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), "write " + name);
    H5Sclose(sp);
    return d;
  }
  hid_t strings(hid_t parent, const std::string& name, const std::vector<std::string>& v) {
    const hsize_t n = v.size();
    const hid_t sp = H5Screate_simple(1, &n, nullptr);
    const hid_t d = check(H5Dcreate2(parent, name.c_str(), vstr_, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "dataset " + name);
    std::vector<const char*> p;
    for (const auto& s : v) p.push_back(s.c_str());
    if (n > 0) check(H5Dwrite(d, vstr_, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()), "write " + name);
    H5Sclose(sp);
    return d;
  }
  template <class T>
  hid_t numbers(hid_t parent, const std::string& name, hid_t file_type, hid_t mem_type, const std::vector<T>& v) {
    const hsize_t n = v.size();
    const hid_t sp = H5Screate_simple(1, &n, nullptr);
    const hid_t d = check(H5Dcreate2(parent, name.c_str(), file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "dataset " + name);
    if (n > 0) check(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write " + name);
    H5Sclose(sp);
    return d;
  }
  hid_t refs(hid_t parent, const std::string& name, const std::vector<std::string>& targets) {
    std::vector<hobj_ref_t> r(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      check(H5Rcreate(&r[i], file_, targets[i].c_str(), H5R_OBJECT, -1), "reference " + targets[i]);
    }
    return numbers(parent, name, H5T_STD_REF_OBJ, H5T_STD_REF_OBJ, r);
  }

 private:
  hid_t file_ = -1;
  hid_t vstr_ = -1;
  std::mt19937_64 rng_;
};

}  // namespace

ExportResult export_nwb(const Dataset& d, const std::string& out, const ExportOptions& o) {
  ExportResult r;
  const std::vector<Unit> units = units_of(d, o, r);
  const std::vector<Series> series = all_series_of(d, o);
  const int64_t start_utc = d.header.anchor_utc_ns();
  if (start_utc == 0) {
    r.notes.push_back("the recording has no UTC anchor: session_start_time is 1970-01-01 (ion import "
                      "--session-start sets one)");
  }
  std::string why;
  const std::optional<NwbSchema> schema =
      find_nwb_schema(o.nwb_schema_dirs.empty() ? default_nwb_schema_dirs() : o.nwb_schema_dirs, &why);
  if (!schema && !o.nwb_schema_dirs.empty()) throw std::runtime_error("--nwb-schema: " + why);
  NwbWriter w(out);
  const hid_t root = w.file();
  w.attr(root, "nwb_version", schema ? schema->core_version : "2.5.0");
  if (schema) {
    // As pynwb caches it: /specifications/NAMESPACE/VERSION/SOURCE, JSON text each, found
    // through the root's .specloc reference.
    const hid_t specs = w.group(root, "specifications");
    for (const NwbSpecNamespace& ns : schema->namespaces) {
      const hid_t g = w.group(specs, ns.name);
      const hid_t v = w.group(g, ns.version);
      for (const auto& [name, json] : ns.files) H5Dclose(w.scalar_string(v, name, json));
      H5Gclose(v);
      H5Gclose(g);
    }
    H5Gclose(specs);
    w.attr_ref(root, ".specloc", "/specifications");
    r.notes.push_back("NWB schema " + schema->core_version + " cached in the file (from " + schema->core_dir + ")");
  } else {
    r.notes.push_back("the NWB schema is not cached in the file (pynwb validates against its own copy and warns): " +
                      why + "; --nwb-schema DIR names an installed pynwb's nwb-schema folder");
  }
  w.typed(root, "NWBFile", "core");
  const int64_t now_utc = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  H5Dclose(w.strings(root, "file_create_date", {iso8601(now_utc)}));
  H5Dclose(w.scalar_string(root, "identifier", std::to_string(d.header.session_id())));
  H5Dclose(w.scalar_string(root, "session_description", o.session_description));
  H5Dclose(w.scalar_string(root, "session_start_time", iso8601(start_utc)));
  H5Dclose(w.scalar_string(root, "timestamps_reference_time", iso8601(start_utc)));
  for (const char* g : {"analysis", "processing"}) H5Gclose(w.group(root, g));
  const hid_t acquisition = w.group(root, "acquisition");
  const hid_t stim = w.group(root, "stimulus");
  const hid_t presentation = w.group(stim, "presentation");
  H5Gclose(w.group(stim, "templates"));
  const int64_t t0 = origin_ns(d);

  // A table column: VectorData with its description.
  auto column = [&](hid_t dset, const std::string& desc) {
    w.typed(dset, "VectorData", "hdmf-common");
    w.attr(dset, "description", desc);
    H5Dclose(dset);
  };

  // A device per source; an electrode group per source of electrodes, and an electrode per unit
  // of those. Silicon neurons and the like are units without electrodes.
  const hid_t general = w.group(root, "general");
  const hid_t devices = w.group(general, "devices");
  std::vector<const SourceData*> sources;
  for (const Unit& u : units) {
    if (std::find(sources.begin(), sources.end(), u.src) == sources.end()) sources.push_back(u.src);
  }
  for (const Series& x : series) {
    if (std::find(sources.begin(), sources.end(), x.src) == sources.end()) sources.push_back(x.src);
  }
  std::vector<std::string> device_names;
  for (const SourceData* s : sources) {
    if (std::find(device_names.begin(), device_names.end(), s->desc.name()) != device_names.end()) continue;
    device_names.push_back(s->desc.name());  // a source's streams share one device
    const hid_t dev = w.group(devices, s->desc.name());
    w.typed(dev, "Device", "core");
    w.attr(dev, "description", "IoN source '" + s->desc.name() + "' (" + s->desc.kind() + ")");
    H5Gclose(dev);
  }
  std::vector<size_t> electrode_units;
  for (size_t i = 0; i < units.size(); ++i) {
    if (has_electrodes(*units[i].src)) electrode_units.push_back(i);
  }
  if (!electrode_units.empty()) {
    const hid_t ecephys = w.group(general, "extracellular_ephys");
    std::vector<std::string> groups;
    for (const size_t i : electrode_units) {
      const std::string& name = units[i].src->desc.name();
      if (std::find(groups.begin(), groups.end(), name) != groups.end()) continue;
      groups.push_back(name);
      const hid_t eg = w.group(ecephys, name);
      w.typed(eg, "ElectrodeGroup", "core");
      w.attr(eg, "description", "electrodes of " + name);
      w.attr(eg, "location", "unknown");
      check(H5Lcreate_soft(("/general/devices/" + name).c_str(), eg, "device", H5P_DEFAULT, H5P_DEFAULT),
            "link the device");
      H5Gclose(eg);
    }
    const hid_t el = w.group(ecephys, "electrodes");
    w.typed(el, "DynamicTable", "hdmf-common");
    w.attr(el, "description", "one electrode per exported unit of an electrode source");
    w.attr_strings(el, "colnames", {"x", "y", "location", "group", "group_name", "label"});
    std::vector<int64_t> ids;
    std::vector<double> xs;
    std::vector<double> ys;
    std::vector<std::string> loc;
    std::vector<std::string> grp;
    std::vector<std::string> grp_name;
    std::vector<std::string> label;
    for (size_t k = 0; k < electrode_units.size(); ++k) {
      const Unit& u = units[electrode_units[k]];
      ids.push_back(static_cast<int64_t>(k));
      const v1::ChannelInfo* c = info_of(*u.src, u.channel);
      xs.push_back(c != nullptr ? c->x_um() : NAN);
      ys.push_back(c != nullptr ? c->y_um() : NAN);
      loc.emplace_back("unknown");
      grp.push_back("/general/extracellular_ephys/" + u.src->desc.name());
      grp_name.push_back(u.src->desc.name());
      label.push_back(u.name);
    }
    {
      const hid_t id = w.numbers(el, "id", H5T_STD_I64LE, H5T_NATIVE_INT64, ids);
      w.typed(id, "ElementIdentifiers", "hdmf-common");
      H5Dclose(id);
    }
    column(w.numbers(el, "x", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, xs), "x position (um)");
    column(w.numbers(el, "y", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ys), "y position (um)");
    column(w.strings(el, "location", loc), "location of the electrode");
    column(w.refs(el, "group", grp), "the electrode group");
    column(w.strings(el, "group_name", grp_name), "name of the electrode group");
    column(w.strings(el, "label", label), "channel name in the IoN recording");
    H5Gclose(el);
    H5Gclose(ecephys);
  }
  H5Gclose(devices);
  H5Gclose(general);

  // Units: spike times in seconds from the session start (the recording's network-time anchor);
  // a unit's electrode only where its source has electrodes; its name and source in columns.
  if (!units.empty()) {
    const hid_t ug = w.group(root, "units");
    w.typed(ug, "Units", "core");
    w.attr(ug, "description", "one unit per channel of each IoN spike source, spikes as recorded");
    const bool with_electrodes = !electrode_units.empty();
    std::vector<std::string> colnames = {"spike_times", "unit_name", "source"};
    if (with_electrodes) colnames.emplace_back("electrodes");
    w.attr_strings(ug, "colnames", colnames);
    std::vector<int64_t> uid;
    std::vector<double> times;
    std::vector<uint64_t> index;  // VectorIndex: unsigned, as the schema requires
    std::vector<int64_t> electrodes;
    std::vector<uint64_t> electrodes_index;
    std::vector<std::string> unit_names;
    std::vector<std::string> unit_sources;
    size_t next_electrode = 0;
    for (size_t i = 0; i < units.size(); ++i) {
      uid.push_back(static_cast<int64_t>(i));
      for (int64_t t : units[i].times_ns) times.push_back(static_cast<double>(t - t0) * 1e-9);
      index.push_back(times.size());
      if (has_electrodes(*units[i].src)) electrodes.push_back(static_cast<int64_t>(next_electrode++));
      electrodes_index.push_back(electrodes.size());
      unit_names.push_back(units[i].name);
      unit_sources.push_back(units[i].src->desc.name() + " (" + units[i].src->desc.kind() + ")");
    }
    {
      const hid_t id = w.numbers(ug, "id", H5T_STD_I64LE, H5T_NATIVE_INT64, uid);
      w.typed(id, "ElementIdentifiers", "hdmf-common");
      H5Dclose(id);
    }
    column(w.numbers(ug, "spike_times", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, times), "spike times (s)");
    {
      const hid_t ix = w.numbers(ug, "spike_times_index", H5T_STD_U64LE, H5T_NATIVE_UINT64, index);
      w.typed(ix, "VectorIndex", "hdmf-common");
      w.attr(ix, "description", "index into spike_times");
      w.attr_ref(ix, "target", "/units/spike_times");
      H5Dclose(ix);
    }
    column(w.strings(ug, "unit_name", unit_names), "channel name in the IoN recording");
    column(w.strings(ug, "source", unit_sources), "IoN source (its kind): an electrode array, a chip's neurons, ...");
    if (with_electrodes) {
      const hid_t e = w.numbers(ug, "electrodes", H5T_STD_I64LE, H5T_NATIVE_INT64, electrodes);
      w.typed(e, "DynamicTableRegion", "hdmf-common");
      w.attr(e, "description", "the unit's electrode (none for a neuron that is not on an electrode)");
      w.attr_ref(e, "table", "/general/extracellular_ephys/electrodes");
      H5Dclose(e);
      const hid_t ei = w.numbers(ug, "electrodes_index", H5T_STD_U64LE, H5T_NATIVE_UINT64, electrodes_index);
      w.typed(ei, "VectorIndex", "hdmf-common");
      w.attr(ei, "description", "index into electrodes");
      w.attr_ref(ei, "target", "/units/electrodes");
      H5Dclose(ei);
    }
    H5Gclose(ug);
  }

  // Series: a TimeSeries each, sampled at its events (timestamps in seconds from the session
  // start). Stimulations are stimulus presented; weights, inputs and neuromodulators acquired.
  for (const Series& x : series) {
    const bool stimulus = x.what == "stimulation";
    const hid_t g = w.group(stimulus ? presentation : acquisition, x.name);
    w.typed(g, "TimeSeries", "core");
    const std::string& where = x.where;
    std::string desc;
    std::string unit;
    if (x.what == "weight") {
      desc = "synaptic weight read after each update, as emitted on the weight stream";
      unit = "weight (as the synapse board reports it: docs/devices/memristor.md)";
    } else if (x.what == "synaptic_input") {
      desc = "synaptic input events, the value is the event's weight";
      unit = "weight";
    } else if (x.what == "stimulation") {
      desc = "stimulation events, the value is the amplitude";
      unit = "amplitude (as the source emitted it)";
    } else {
      desc = "neuromodulator samples, the value is the concentration";
      unit = "concentration (as the source emitted it)";
    }
    w.attr(g, "description", desc + "; " + where);
    w.attr(g, "comments", "exported by ion export from an IoN recording");
    std::vector<double> values(x.values.begin(), x.values.end());
    std::vector<double> ts;
    ts.reserve(x.times_ns.size());
    for (const int64_t t : x.times_ns) ts.push_back(static_cast<double>(t - t0) * 1e-9);
    const hid_t data = w.numbers(g, "data", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values);
    w.attr(data, "unit", unit);
    w.attr_number(data, "conversion", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1.0F);
    w.attr_number(data, "resolution", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, -1.0F);
    H5Dclose(data);
    const hid_t tsd = w.numbers(g, "timestamps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, ts);
    w.attr_number(tsd, "interval", H5T_STD_I32LE, H5T_NATIVE_INT32, 1);
    w.attr(tsd, "unit", "seconds");
    H5Dclose(tsd);
    H5Gclose(g);
    r.series_events += x.times_ns.size();
  }
  r.series = series.size();
  H5Gclose(presentation);
  H5Gclose(stim);
  H5Gclose(acquisition);
  r.units = units.size();
  r.events = 0;
  for (const Unit& u : units) r.events += u.times_ns.size();
  return r;
}

ExportResult export_file(const std::string& format, const Dataset& d, const std::string& out,
                         const ExportOptions& o) {
  if (format == "csv") return export_csv(d, out, o);
  if (format == "npy") return export_npy(d, out, o);
  if (format == "nwb") return export_nwb(d, out, o);
  throw std::runtime_error("unknown export format '" + format + "' (csv, npy, nwb)");
}

}  // namespace ion::interchange
