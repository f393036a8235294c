#include "ion/interchange/import.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <csignal>
#include <filesystem>

#include <hdf5.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>
#include <iomanip>
#include <map>
#include <random>
#include <stdexcept>

#include "ion/core/names.h"
#include "ion/core/clock.h"
#include "ion/core/counter.h"

namespace ion::interchange {
namespace {

std::string stem(const std::string& path) {
  std::string s = path.substr(path.find_last_of('/') + 1);
  for (const char* ext : {".gz", ".csv", ".h5", ".hdf5", ".txt"}) {
    if (s.size() > std::strlen(ext) && s.ends_with(ext)) s.resize(s.size() - std::strlen(ext));
  }
  return s;
}

// Lines of a text file, gzip or plain.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (f_ == nullptr) throw std::runtime_error("cannot open " + path);
  }
  ~LineReader() { gzclose(f_); }
  bool next(std::string& line) {
    line.clear();
    char buf[4096];
    while (gzgets(f_, buf, sizeof buf) != nullptr) {
      line += buf;
      if (!line.empty() && line.back() == '\n') break;
      if (line.size() > (1u << 20)) throw std::runtime_error(where() + ": line longer than 1 MiB");
    }
    if (line.empty()) return false;
    ++lineno_;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return true;
  }
  [[nodiscard]] std::string where() const { return path_ + ":" + std::to_string(lineno_); }

 private:
  std::string path_;
  gzFile f_;
  int lineno_ = 0;
};

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> f;
  std::string cur;
  bool quoted = false;
  for (const char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      f.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  f.push_back(cur);
  for (auto& x : f) {
    while (!x.empty() && (x.front() == ' ' || x.front() == '\t')) x.erase(x.begin());
    while (!x.empty() && (x.back() == ' ' || x.back() == '\t')) x.pop_back();
  }
  return f;
}

// Names sorted naturally (digit runs by value), so "ch_2" < "ch_10".
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0;
  size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) != 0 && std::isdigit(static_cast<unsigned char>(b[j])) != 0) {
      size_t ie = i;
      size_t je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie])) != 0) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je])) != 0) ++je;
      const std::string x = a.substr(i, ie - i);
      const std::string y = b.substr(j, je - j);
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}


// Builds one source from named-channel events; channel ids in natural name order.
SourceData make_source(const std::string& name, const std::string& kind,
                       const std::vector<std::string>& channel_of_event,
                       std::vector<int64_t> times_ns, std::vector<float> values, double rate_hz,
                       const std::map<std::string, std::pair<double, double>>& positions = {}) {
  std::vector<std::string> names;
  {
    std::map<std::string, int> seen;
    for (const auto& c : channel_of_event) seen[c] = 0;
    for (const auto& p : positions) seen[p.first] = 0;
    for (const auto& [k, v] : seen) names.push_back(k);
    std::sort(names.begin(), names.end(), natural_less);
  }
  std::map<std::string, uint32_t> id;
  SourceData s;
  s.desc.set_name(valid_utf8(name));  // a file's bytes, not necessarily UTF-8 (protobuf needs it)
  s.desc.set_kind(kind);
  s.desc.set_sample_rate_hz(rate_hz);
  s.desc.set_channels(static_cast<uint32_t>(names.size()));
  for (uint32_t i = 0; i < names.size(); ++i) {
    id[names[i]] = i;
    v1::ChannelInfo* c = s.desc.add_channel_info();
    c->set_id(i);
    c->set_name(valid_utf8(names[i]));
    if (auto p = positions.find(names[i]); p != positions.end()) {
      c->set_x_um(p->second.first);
      c->set_y_um(p->second.second);
    }
  }
  s.channels.reserve(channel_of_event.size());
  for (const auto& c : channel_of_event) s.channels.push_back(id[c]);
  s.times_ns = std::move(times_ns);
  s.payload = std::move(values);
  s.sort_by_time();
  return s;
}

Dataset single_source(SourceData s, const std::string& origin, int64_t anchor_utc_ns = 0) {
  Dataset d;
  d.header.set_session_id(random_epoch());
  d.header.set_software("ion 0.1.0");
  d.header.set_origin(origin);
  d.header.set_anchor_network_ns(0);
  d.header.set_anchor_utc_ns(anchor_utc_ns);
  d.header.set_created_utc_ns(utc_now_ns());
  *d.header.add_sources() = s.desc;
  d.sources.push_back(std::move(s));
  return d;
}

std::string grid_note(double rate_hz) {
  if (rate_hz > 0) {
    return "times lie on a " + std::to_string(static_cast<int64_t>(rate_hz)) +
           " Hz sample grid: carried as exact integer ticks";
  }
  return "times are on no common sample grid: rounded to the nearest nanosecond";
}

}  // namespace

ImportResult import_csv(const std::string& path, const ImportOptions& o) {
  LineReader in(path);
  std::string line;
  if (!in.next(line)) throw std::runtime_error(path + ": empty file");
  const auto head = split_csv(line);
  if (head.size() < 2 || head[0] != "channel" || head[1] != "time_s") {
    throw std::runtime_error(in.where() + ": expected the header channel,time_s[,value]");
  }
  const bool with_value = head.size() >= 3;
  std::vector<std::string> ch;
  std::vector<int64_t> t;
  std::vector<float> v;
  bool all_exact = true;
  std::vector<double> secs;
  while (in.next(line)) {
    if (line.empty()) continue;
    const auto f = split_csv(line);
    if (f.size() != head.size()) {
      throw std::runtime_error(in.where() + ": expected " + std::to_string(head.size()) + " fields, got " +
                               std::to_string(f.size()));
    }
    if (f[0].empty()) throw std::runtime_error(in.where() + ": empty channel name");
    int64_t ns = 0;
    if (!parse_seconds_ns(f[1], ns)) {
      throw std::runtime_error(in.where() + ": time_s '" + f[1] + "' is not a decimal number of seconds");
    }
    ch.push_back(f[0]);
    t.push_back(ns);
    secs.push_back(static_cast<double>(ns) * 1e-9);
    if (with_value) {
      char* end = nullptr;
      const double x = std::strtod(f[2].c_str(), &end);
      if (end == f[2].c_str() || *end != '\0' || !std::isfinite(x)) {
        throw std::runtime_error(in.where() + ": value '" + f[2] + "' is not a finite number");
      }
      v.push_back(static_cast<float>(x));
    }
  }
  (void)all_exact;
  // Decimal text parses exactly; the grid is only detected to describe the data.
  double rate = o.sample_rate_hz;
  (void)seconds_to_ns_on_grid(secs, rate);
  ImportResult r;
  r.notes.push_back("times parsed exactly from their decimal text");
  if (rate > 0) r.notes.push_back(grid_note(rate));
  r.data = single_source(make_source(o.source_name.empty() ? stem(path) : o.source_name, "import", ch,
                                     std::move(t), std::move(v), rate),
                         "ion import csv " + path);
  return r;
}

ImportResult import_axion_csv(const std::string& path, const ImportOptions& o) {
  LineReader in(path);
  std::string line;
  if (!in.next(line)) throw std::runtime_error(path + ": empty file");
  const auto head = split_csv(line);
  // Columns 1-2 carry the instrument's settings; the spikes are in the named columns.
  int col_t = -1;
  int col_e = -1;
  int col_a = -1;
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == "Time (s)") col_t = static_cast<int>(i);
    if (head[i] == "Electrode") col_e = static_cast<int>(i);
    if (head[i].starts_with("Amplitude")) col_a = static_cast<int>(i);
  }
  if (col_t < 0 || col_e < 0) {
    throw std::runtime_error(in.where() + ": not an Axion spike list (no 'Time (s)' and 'Electrode' columns)");
  }
  std::vector<std::string> ch;
  std::vector<int64_t> t;
  std::vector<float> amp;
  double rate = 0;
  std::string start;
  while (in.next(line)) {
    const auto f = split_csv(line);
    if (f.size() >= 2 && f[0] == "Sampling Frequency") rate = std::strtod(f[1].c_str(), nullptr);
    if (f.size() >= 2 && f[0] == "Experiment Start Time") start = f[1];
    if (static_cast<int>(f.size()) <= std::max(col_t, col_e) || f[static_cast<size_t>(col_t)].empty()) continue;
    int64_t ns = 0;
    if (!parse_seconds_ns(f[static_cast<size_t>(col_t)], ns)) {
      // The vendor appends summary blocks after the spikes; anything non-numeric ends them.
      if (t.empty()) throw std::runtime_error(in.where() + ": time '" + f[static_cast<size_t>(col_t)] + "' is not a number");
      break;
    }
    const std::string& e = f[static_cast<size_t>(col_e)];
    if (e.empty()) throw std::runtime_error(in.where() + ": empty electrode name");
    ch.push_back(e);
    t.push_back(ns);
    if (col_a >= 0 && static_cast<int>(f.size()) > col_a) {
      amp.push_back(static_cast<float>(std::strtod(f[static_cast<size_t>(col_a)].c_str(), nullptr)));
    }
  }
  if (amp.size() != t.size()) amp.clear();
  if (o.sample_rate_hz > 0) rate = o.sample_rate_hz;
  // Positions inside a well (Maestro: electrode "<well>_<col><row>", 4x4 at 350 um).
  std::map<std::string, std::pair<double, double>> pos;
  for (const auto& e : ch) {
    const size_t u = e.find('_');
    if (u != std::string::npos && e.size() == u + 3 && std::isdigit(static_cast<unsigned char>(e[u + 1])) != 0 &&
        std::isdigit(static_cast<unsigned char>(e[u + 2])) != 0) {
      pos[e] = {(e[u + 1] - '1') * 350.0, (e[u + 2] - '1') * 350.0};
    }
  }
  ImportResult r;
  r.notes.push_back("times parsed exactly from their decimal text");
  if (rate > 0) {
    r.notes.push_back("sampling frequency " + std::to_string(static_cast<int64_t>(rate)) + " Hz (from the file)");
  }
  if (!start.empty()) r.notes.push_back("experiment start time in the file: " + start + " (local time, not converted)");
  r.notes.push_back("amplitudes kept as event values, in mV; positions are within each well (350 um pitch)");
  r.data = single_source(make_source(o.source_name.empty() ? stem(path) : o.source_name, "import", ch,
                                     std::move(t), std::move(amp), rate, pos),
                         "ion import axion-csv " + path);
  return r;
}

namespace {

// HDF5 handles closed on scope exit; errors throw naming the file and dataset.
struct H5 {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~H5() {
    if (id >= 0 && close != nullptr) close(id);
  }
  H5(const H5&) = delete;
  H5& operator=(const H5&) = delete;
};

bool has(hid_t file, const char* name) { return H5Lexists(file, name, H5P_DEFAULT) > 0; }

// A dataset's extent is the file's claim; what it stores is the file's content. An extent far
// beyond the stored bytes (unwritten fill values, or a corrupt header) would make us allocate
// gigabytes for nothing: refused, with the bound stated. Compression up to 64x is allowed.
void check_extent(hid_t ds, hssize_t n, size_t element_bytes, const char* name,
                  const std::string& path) {
  constexpr uint64_t kFloorBytes = 1u << 20;
  constexpr uint64_t kMaxBytes = uint64_t{1} << 30;
  if (n < 0 || element_bytes == 0 || element_bytes > 65536) {
    throw std::runtime_error(path + ": " + name + " has a bad size");
  }
  const uint64_t stored = H5Dget_storage_size(ds);
  // Divided, not multiplied: a corrupt extent near 2^62 must not wrap around to a small size.
  const bool too_many = static_cast<uint64_t>(n) > kMaxBytes / element_bytes;
  const uint64_t want = too_many ? kMaxBytes : static_cast<uint64_t>(n) * element_bytes;
  if (too_many || (want > kFloorBytes && want / 64 > stored)) {
    throw std::runtime_error(path + ": " + name + " claims " + std::to_string(n) + " elements but the file stores " +
                             std::to_string(stored) + " bytes of them");
  }
}

std::vector<double> read_doubles(hid_t file, const char* name, const std::string& path) {
  H5 ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (ds.id < 0) throw std::runtime_error(path + ": no dataset " + name);
  H5 sp(H5Dget_space(ds.id), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(sp.id);
  check_extent(ds.id, n, sizeof(double), name, path);
  std::vector<double> v(static_cast<size_t>(n));
  if (n > 0 && H5Dread(ds.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) {
    throw std::runtime_error(path + ": cannot read " + name + " as numbers");
  }
  return v;
}

std::vector<std::string> read_strings(hid_t file, const char* name, const std::string& path) {
  H5 ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (ds.id < 0) throw std::runtime_error(path + ": no dataset " + name);
  H5 type(H5Dget_type(ds.id), H5Tclose);
  if (H5Tget_class(type.id) != H5T_STRING) throw std::runtime_error(path + ": " + name + " is not text");
  H5 sp(H5Dget_space(ds.id), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(sp.id);
  const bool variable = H5Tis_variable_str(type.id) > 0;
  check_extent(ds.id, n, variable ? sizeof(char*) : H5Tget_size(type.id), name, path);
  std::vector<std::string> out;
  if (variable) {
    std::vector<char*> p(static_cast<size_t>(n), nullptr);
    H5 mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.id, H5T_VARIABLE);
    if (n > 0 && H5Dread(ds.id, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) < 0) {
      throw std::runtime_error(path + ": cannot read " + name);
    }
    for (char* s : p) out.emplace_back(s == nullptr ? "" : s);
    H5Dvlen_reclaim(mem.id, sp.id, H5P_DEFAULT, p.data());
  } else {
    const size_t size = H5Tget_size(type.id);
    std::vector<char> buf(static_cast<size_t>(n) * size + 1, '\0');
    if (n > 0 && H5Dread(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
      throw std::runtime_error(path + ": cannot read " + name);
    }
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + static_cast<size_t>(i) * size;
      out.emplace_back(s, strnlen(s, size));
    }
  }
  return out;
}

}  // namespace

namespace {

// A distance for a message: a corrupt file's positions may be beyond any integer (no cast: UB).
std::string fmt_number(double v) {
  std::ostringstream s;
  s << std::setprecision(6) << v;
  return s.str();
}

// The sjemea read on an open file; `path` names it in messages and gives the default source name.
ImportResult read_sjemea(const H5& file, const std::string& path, const ImportOptions& o) {
  for (const char* need : {"/spikes", "/sCount"}) {
    if (!has(file.id, need)) throw std::runtime_error(path + ": not a sjemea file (no " + std::string(need) + ")");
  }
  const std::vector<double> spikes = read_doubles(file.id, "/spikes", path);
  const std::vector<double> counts = read_doubles(file.id, "/sCount", path);
  std::vector<std::string> names;
  if (has(file.id, "/names")) names = read_strings(file.id, "/names", path);
  ImportResult r;
  if (names.size() != counts.size()) {
    if (!names.empty()) r.notes.push_back("/names does not match /sCount: channels numbered instead");
    names.clear();
    for (size_t i = 0; i < counts.size(); ++i) names.push_back("ch_" + std::to_string(i));
  }
  double total = 0;
  for (double c : counts) {
    if (c < 0 || c != std::floor(c)) throw std::runtime_error(path + ": /sCount holds a negative or fractional count");
    total += c;
  }
  if (total != static_cast<double>(spikes.size())) {
    // Printed as a number, not converted: a corrupt count may be beyond any integer (UB).
    std::ostringstream sum;
    sum << std::setprecision(15) << total;
    throw std::runtime_error(path + ": sum(/sCount) = " + sum.str() + " but /spikes holds " +
                             std::to_string(spikes.size()));
  }
  std::map<std::string, std::pair<double, double>> pos;
  if (has(file.id, "/epos")) {
    const std::vector<double> e = read_doubles(file.id, "/epos", path);
    const size_t n = counts.size();
    if (e.size() == 2 * n) {  // 2 x N: row 0 = x, row 1 = y
      for (size_t i = 0; i < n; ++i) pos[names[i]] = {e[i], e[n + i]};
    } else {
      r.notes.push_back("/epos is not 2 x channels: positions not kept");
    }
  }
  if (has(file.id, "/array")) {
    const auto label = read_strings(file.id, "/array", path);
    double pitch = 0;
    for (const auto& [k, a] : pos) {
      for (const auto& [k2, b] : pos) {
        const double d = std::hypot(a.first - b.first, a.second - b.second);
        if (d > 0 && (pitch == 0 || d < pitch)) pitch = d;
      }
    }
    if (!label.empty()) {
      // A label like "MCS_8x8_100um" states a pitch; when the positions disagree, say so and
      // keep the positions (the data), not the label.
      double label_pitch = 0;
      const size_t um = label[0].rfind("um");
      const size_t us = label[0].rfind('_', um);
      if (um != std::string::npos && us != std::string::npos && um > us + 1) {
        label_pitch = std::strtod(label[0].substr(us + 1, um - us - 1).c_str(), nullptr);
      }
      if (pitch > 0 && label_pitch > 0 && std::fabs(label_pitch - pitch) > 0.5) {
        r.notes.push_back("the file's /array label says '" + label[0] + "' but its " +
                          std::to_string(counts.size()) + " channels sit " +
                          fmt_number(pitch) +
                          " um apart: the positions are kept, the label is not trusted");
      } else {
        r.notes.push_back("array '" + label[0] + "'");
      }
    }
  }
  std::vector<std::string> ch;
  ch.reserve(spikes.size());
  size_t k = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    for (size_t j = 0; j < static_cast<size_t>(counts[i]); ++j, ++k) ch.push_back(names[i]);
  }
  for (double s : spikes) {
    if (!std::isfinite(s) || s < -1e6 || s > 1e7) throw std::runtime_error(path + ": /spikes holds a non-finite or absurd time");
  }
  double rate = o.sample_rate_hz;
  std::vector<int64_t> ns = seconds_to_ns_on_grid(spikes, rate);
  if (o.sample_rate_hz > 0 && rate == 0) {
    r.notes.push_back("the times are not on the given " + std::to_string(o.sample_rate_hz) + " Hz grid");
  }
  r.notes.push_back(grid_note(rate));
  r.data = single_source(make_source(o.source_name.empty() ? stem(path) : o.source_name, "import", ch,
                                     std::move(ns), {}, rate, pos),
                         "ion import sjemea " + path);
  return r;
}

}  // namespace

ImportResult import_sjemea_in_process(const std::string& path, const ImportOptions& o) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors come back as our messages, not stderr
  if (H5Fis_hdf5(path.c_str()) <= 0) throw std::runtime_error(path + ": not an HDF5 file");
  H5 file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file.id < 0) throw std::runtime_error("cannot open " + path);
  return read_sjemea(file, path, o);
}

ImportResult import_sjemea_image(std::span<const uint8_t> image, const std::string& label,
                                 const ImportOptions& o) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  // The core driver reads an in-memory image (libhdf5 copies it): no file is written.
  H5 fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (fapl.id < 0 || H5Pset_fapl_core(fapl.id, 64 * 1024, false) < 0) {
    throw std::runtime_error(label + ": cannot set up an in-memory HDF5 file");
  }
  // An empty image cannot be handed to libhdf5 (it would create a file): it is not HDF5.
  if (image.empty() || H5Pset_file_image(fapl.id, const_cast<uint8_t*>(image.data()), image.size()) < 0) {
    throw std::runtime_error(label + ": not an HDF5 file");
  }
  // libhdf5 refuses an image whose name is an existing file: the name is one no file has.
  static std::atomic<uint64_t> images{0};
  const std::string name = "ion:in-memory-image-" + std::to_string(::getpid()) + "-" + std::to_string(images++);
  H5 file(H5Fopen(name.c_str(), H5F_ACC_RDONLY, fapl.id), H5Fclose);
  if (file.id < 0) throw std::runtime_error(label + ": not an HDF5 file");
  return read_sjemea(file, label, o);
}

namespace {

// The child's answer on a pipe: status byte, then length-prefixed pieces.
void put_bytes(std::string& out, const void* p, size_t n) {
  const uint64_t len = n;
  out.append(reinterpret_cast<const char*>(&len), 8);
  out.append(static_cast<const char*>(p), n);
}
void put_string(std::string& out, const std::string& s) { put_bytes(out, s.data(), s.size()); }

struct Cursor {
  const std::string& in;
  size_t pos = 0;
  std::string_view take() {
    uint64_t len = 0;
    if (in.size() - pos < 8) throw std::runtime_error("the HDF5 reader's answer was cut short");
    std::memcpy(&len, in.data() + pos, 8);
    pos += 8;
    if (in.size() - pos < len) throw std::runtime_error("the HDF5 reader's answer was cut short");
    const std::string_view v(in.data() + pos, len);
    pos += len;
    return v;
  }
  template <class T>
  void take_vector(std::vector<T>& v) {
    const std::string_view b = take();
    v.resize(b.size() / sizeof(T));
    if (!b.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  }
};

std::string encode_result(const ImportResult& r) {
  std::string out;
  put_string(out, r.data.header.SerializeAsString());
  const uint64_t n = r.data.sources.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  for (const auto& s : r.data.sources) {
    put_string(out, s.desc.SerializeAsString());
    const uint32_t meta[2] = {s.stream, static_cast<uint32_t>(s.kind)};
    put_bytes(out, meta, sizeof meta);
    put_bytes(out, s.channels.data(), s.channels.size() * sizeof(uint32_t));
    put_bytes(out, s.times_ns.data(), s.times_ns.size() * sizeof(int64_t));
    put_bytes(out, s.payload.data(), s.payload.size() * sizeof(float));
  }
  const uint64_t notes = r.notes.size();
  out.append(reinterpret_cast<const char*>(&notes), 8);
  for (const auto& note : r.notes) put_string(out, note);
  return out;
}

ImportResult decode_result(const std::string& in) {
  ImportResult r;
  Cursor c{in};
  const std::string_view header = c.take();
  if (!r.data.header.ParseFromArray(header.data(), static_cast<int>(header.size()))) {
    throw std::runtime_error("the HDF5 reader's answer did not decode");
  }
  const auto count = [&] {
    uint64_t n = 0;
    if (in.size() - c.pos < 8) throw std::runtime_error("the HDF5 reader's answer was cut short");
    std::memcpy(&n, in.data() + c.pos, 8);
    c.pos += 8;
    return n;
  };
  for (uint64_t i = count(); i > 0; --i) {
    SourceData s;
    const std::string_view desc = c.take();
    if (!s.desc.ParseFromArray(desc.data(), static_cast<int>(desc.size()))) {
      throw std::runtime_error("the HDF5 reader's answer did not decode");
    }
    std::vector<uint32_t> meta;
    c.take_vector(meta);
    if (meta.size() != 2) throw std::runtime_error("the HDF5 reader's answer did not decode");
    s.stream = meta[0];
    s.kind = static_cast<EventKind>(meta[1]);
    c.take_vector(s.channels);
    c.take_vector(s.times_ns);
    c.take_vector(s.payload);
    r.data.sources.push_back(std::move(s));
  }
  for (uint64_t i = count(); i > 0; --i) r.notes.emplace_back(c.take());
  return r;
}

}  // namespace

// libhdf5 can loop forever or crash on a corrupt file (tests/fuzz/fuzz_hdf5.cpp found a loop in
// 1.10's global-heap reader): the library reads the file in a child process with a CPU-time
// limit, so a bad download costs the user a one-line error, never a hang or a crash.
ImportResult import_sjemea(const std::string& path, const ImportOptions& o) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return import_sjemea_in_process(path, o);  // no pipe: read in place
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  const rlim_t cpu_s = o.max_cpu_s > 0 ? o.max_cpu_s : 60 + (ec ? 0 : static_cast<rlim_t>(bytes >> 20));
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return import_sjemea_in_process(path, o);
  }
  if (pid == 0) {  // the child: read, answer, leave without running the parent's exit handlers
    ::close(fds[0]);
    const struct rlimit cpu{cpu_s, cpu_s + 2};  // SIGXCPU at the limit, SIGKILL 2 s later
    ::setrlimit(RLIMIT_CPU, &cpu);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // libhdf5 believes a corrupt variable-length string's length (fuzzing saw 4 GiB mallocs):
    // bounded address space makes such an allocation fail inside the library, which then
    // reports an error. (Not under sanitizers: their shadow memory is terabytes of address space.)
    const rlim_t as_bytes = (rlim_t{4} << 30) + (ec ? 0 : 4 * static_cast<rlim_t>(bytes));
    const struct rlimit as{as_bytes, as_bytes};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    std::string answer;
    char status = 0;
    try {
      answer = encode_result(import_sjemea_in_process(path, o));
    } catch (const std::exception& e) {
      status = 1;
      answer = e.what();
    }
    const auto write_all = [&](const char* p, size_t n) {
      while (n > 0) {
        const ssize_t w = ::write(fds[1], p, n);
        if (w <= 0) return;
        p += w;
        n -= static_cast<size_t>(w);
      }
    };
    write_all(&status, 1);
    write_all(answer.data(), answer.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string in;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    throw std::runtime_error(path + (sig == SIGXCPU || sig == SIGKILL ? ": the HDF5 library did not finish reading it within " +
                                                          std::to_string(cpu_s) + " s of CPU time (a corrupt file?)"
                                                    : ": the HDF5 library crashed reading it (signal " +
                                                          std::to_string(sig) + "): the file is corrupt"));
  }
  if (in.empty()) throw std::runtime_error(path + ": the HDF5 reader gave no answer");
  if (in[0] != 0) throw std::runtime_error(in.substr(1));
  return decode_result(in.substr(1));
}

ImportResult import_file(const std::string& format, const std::string& path, const ImportOptions& o) {
  if (format == "csv") return import_csv(path, o);
  if (format == "axion-csv") return import_axion_csv(path, o);
  if (format == "sjemea") return import_sjemea(path, o);
  throw std::runtime_error("unknown import format '" + format + "' (csv, axion-csv, sjemea)");
}

int64_t parse_session_start(const std::string& text) {
  const std::string expected = "--session-start: expected a date and time with its zone, e.g. "
                               "2017-05-02T14:03:00Z or 2017-05-02T16:03:00+02:00, got '" + text + "'";
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) {
    throw std::invalid_argument(expected);
  }
  size_t i = 10;
  int64_t frac_ns = 0;
  int64_t offset_s = 0;
  if (i < text.size()) {
    if (text[i] != 'T' && text[i] != ' ') throw std::invalid_argument(expected);
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d%n", &h, &mi, &used) != 2 || used != 5) {
      throw std::invalid_argument(expected);
    }
    i += 6;
    if (i < text.size() && text[i] == ':') {
      if (std::sscanf(text.c_str() + i + 1, "%2d%n", &sec, &used) != 1 || used != 2) throw std::invalid_argument(expected);
      i += 3;
      if (i < text.size() && text[i] == '.') {
        int64_t scale = 100'000'000;
        for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
          frac_ns += (text[i] - '0') * scale;
          scale /= 10;
        }
      }
    }
    if (i >= text.size()) throw std::invalid_argument(expected + " (no zone: add Z for UTC)");
    if (text[i] == 'Z' && i + 1 == text.size()) {
      i += 1;
    } else if ((text[i] == '+' || text[i] == '-') && text.size() == i + 6 && text[i + 3] == ':') {
      int oh = 0, om = 0;
      if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59) {
        throw std::invalid_argument(expected);
      }
      offset_s = (text[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      i = text.size();
    } else {
      throw std::invalid_argument(expected);
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970) {
    throw std::invalid_argument(expected);
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const time_t t = timegm(&tm);
  if (tm.tm_mday != d || tm.tm_mon != mo - 1) throw std::invalid_argument(expected + " (no such day)");
  return (static_cast<int64_t>(t) - offset_s) * 1'000'000'000 + frac_ns;
}

}  // namespace ion::interchange
