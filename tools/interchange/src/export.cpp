#include "ion/interchange/export.h"

#include <hdf5.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>

namespace ion::interchange {
namespace {

struct Unit {
  const SourceData* src;
  uint32_t channel;
  std::string name;
  std::vector<int64_t> times_ns;
};

// Spike sources chosen by the options; units in source order, then channel id order.
std::vector<Unit> units_of(const Dataset& d, const ExportOptions& o, ExportResult& r) {
  std::vector<const SourceData*> chosen;
  for (const auto& s : d.sources) {
    if (s.kind != EventKind::spike) {
      r.notes.push_back("skipped " + s.desc.name() + " stream " + std::to_string(s.stream) + " (" +
                        to_string(s.kind) + " events)");
      continue;
    }
    if (!o.source.empty() && s.desc.name() != o.source) continue;
    chosen.push_back(&s);
  }
  if (chosen.empty()) {
    throw std::runtime_error(o.source.empty() ? std::string("the recording holds no spike events")
                                              : "no spike source named '" + o.source + "'");
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
  return r;
}

ExportResult export_npy(const Dataset& d, const std::string& dir, const ExportOptions& o) {
  ExportResult r;
  const std::vector<Unit> units = units_of(d, o, r);
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
  const int64_t start_utc = d.header.anchor_utc_ns();
  if (start_utc == 0) r.notes.push_back("the recording has no UTC anchor: session_start_time is 1970-01-01");
  NwbWriter w(out);
  const hid_t root = w.file();
  w.attr(root, "nwb_version", "2.5.0");
  w.typed(root, "NWBFile", "core");
  const int64_t now_utc = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  H5Dclose(w.strings(root, "file_create_date", {iso8601(now_utc)}));
  H5Dclose(w.scalar_string(root, "identifier", std::to_string(d.header.session_id())));
  H5Dclose(w.scalar_string(root, "session_description", o.session_description));
  H5Dclose(w.scalar_string(root, "session_start_time", iso8601(start_utc)));
  H5Dclose(w.scalar_string(root, "timestamps_reference_time", iso8601(start_utc)));
  for (const char* g : {"acquisition", "analysis", "processing"}) H5Gclose(w.group(root, g));
  const hid_t stim = w.group(root, "stimulus");
  H5Gclose(w.group(stim, "presentation"));
  H5Gclose(w.group(stim, "templates"));
  H5Gclose(stim);

  // One device and one electrode group per source; one electrode per unit.
  const hid_t general = w.group(root, "general");
  const hid_t devices = w.group(general, "devices");
  const hid_t ecephys = w.group(general, "extracellular_ephys");
  std::vector<const SourceData*> sources;
  for (const Unit& u : units) {
    if (std::find(sources.begin(), sources.end(), u.src) == sources.end()) sources.push_back(u.src);
  }
  for (const SourceData* s : sources) {
    const hid_t dev = w.group(devices, s->desc.name());
    w.typed(dev, "Device", "core");
    w.attr(dev, "description", "IoN source '" + s->desc.name() + "' (" + s->desc.kind() + ")");
    H5Gclose(dev);
    const hid_t eg = w.group(ecephys, s->desc.name());
    w.typed(eg, "ElectrodeGroup", "core");
    w.attr(eg, "description", "electrodes of " + s->desc.name());
    w.attr(eg, "location", "unknown");
    check(H5Lcreate_soft(("/general/devices/" + s->desc.name()).c_str(), eg, "device", H5P_DEFAULT, H5P_DEFAULT),
          "link the device");
    H5Gclose(eg);
  }
  const hid_t el = w.group(ecephys, "electrodes");
  w.typed(el, "DynamicTable", "hdmf-common");
  w.attr(el, "description", "one electrode per exported unit (a channel of a source)");
  w.attr_strings(el, "colnames", {"x", "y", "location", "group", "group_name", "label"});
  std::vector<int64_t> ids;
  std::vector<double> xs;
  std::vector<double> ys;
  std::vector<std::string> loc;
  std::vector<std::string> grp;
  std::vector<std::string> grp_name;
  std::vector<std::string> label;
  for (size_t i = 0; i < units.size(); ++i) {
    ids.push_back(static_cast<int64_t>(i));
    const v1::ChannelInfo* c = info_of(*units[i].src, units[i].channel);
    xs.push_back(c != nullptr ? c->x_um() : NAN);
    ys.push_back(c != nullptr ? c->y_um() : NAN);
    loc.emplace_back("unknown");
    grp.push_back("/general/extracellular_ephys/" + units[i].src->desc.name());
    grp_name.push_back(units[i].src->desc.name());
    label.push_back(units[i].name);
  }
  auto column = [&](hid_t dset, const std::string& desc) {
    w.typed(dset, "VectorData", "hdmf-common");
    w.attr(dset, "description", desc);
    H5Dclose(dset);
  };
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
  H5Gclose(devices);
  H5Gclose(general);

  // Units: spike times in seconds from the session start (the recording's network-time anchor).
  const hid_t ug = w.group(root, "units");
  w.typed(ug, "Units", "core");
  w.attr(ug, "description", "one unit per channel of each IoN source, spikes as recorded");
  w.attr_strings(ug, "colnames", {"spike_times", "electrodes"});
  std::vector<int64_t> uid;
  std::vector<double> times;
  std::vector<uint64_t> index;  // VectorIndex: unsigned, as the schema requires
  std::vector<int64_t> electrodes;
  std::vector<uint64_t> electrodes_index;
  const int64_t t0 = origin_ns(d);
  for (size_t i = 0; i < units.size(); ++i) {
    uid.push_back(static_cast<int64_t>(i));
    for (int64_t t : units[i].times_ns) times.push_back(static_cast<double>(t - t0) * 1e-9);
    index.push_back(times.size());
    electrodes.push_back(static_cast<int64_t>(i));
    electrodes_index.push_back(electrodes.size());
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
  {
    const hid_t e = w.numbers(ug, "electrodes", H5T_STD_I64LE, H5T_NATIVE_INT64, electrodes);
    w.typed(e, "DynamicTableRegion", "hdmf-common");
    w.attr(e, "description", "the unit's electrode");
    w.attr_ref(e, "table", "/general/extracellular_ephys/electrodes");
    H5Dclose(e);
    const hid_t ei = w.numbers(ug, "electrodes_index", H5T_STD_U64LE, H5T_NATIVE_UINT64, electrodes_index);
    w.typed(ei, "VectorIndex", "hdmf-common");
    w.attr(ei, "description", "index into electrodes");
    w.attr_ref(ei, "target", "/units/electrodes");
    H5Dclose(ei);
  }
  H5Gclose(ug);
  r.units = units.size();
  r.events = times.size();
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
