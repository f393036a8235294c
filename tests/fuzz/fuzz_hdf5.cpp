// Fuzz target for the HDF5 importer (`ion import sjemea`): a recording a lab downloads is
// untrusted input. Any bytes as a file give a dataset or a one-line error, never a crash or a
// hang, and an imported dataset is consistent (channels in range, times sorted). The seeds are
// sjemea files written here with the HDF5 library (fixed- and variable-length names, positions,
// an array label).
// Under libFuzzer the reader runs in this process on the input as an in-memory file image
// (coverage, speed; a libhdf5 hang shows as a timeout); the corpus replay in CI goes through import_sjemea, whose child process contains such hangs and
// crashes of the library, and counts them.
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ion/core/dataset.h"
#include "ion/interchange/import.h"
#include "replay_main.h"

namespace {

[[maybe_unused]] std::string scratch_path() {
  static const std::string p = "/tmp/ion-fuzz-hdf5-" + std::to_string(::getpid()) + ".h5";
  return p;
}

void check_import(const ion::interchange::ImportResult& r) {
  for (const auto& s : r.data.sources) {
    if (s.channels.size() != s.times_ns.size()) std::abort();
    for (const uint32_t c : s.channels) {
      if (c >= s.desc.channels()) std::abort();
    }
    for (size_t i = 1; i < s.size(); ++i) {
      if (s.times_ns[i] < s.times_ns[i - 1]) std::abort();
    }
  }
}

}  // namespace

size_t g_contained = 0;  // the library hung or crashed in the child: contained, counted

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
#ifdef ION_LIBFUZZER
    // In memory: no file per input, so libFuzzer runs at libhdf5's speed, not the disk's.
    check_import(ion::interchange::import_sjemea_image({data, size}, "fuzz.h5"));
#else
    {
      std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
      if (f == nullptr) return 0;
      if (size > 0) std::fwrite(data, 1, size, f);
      std::fclose(f);
    }
    ion::interchange::ImportOptions o;
    o.max_cpu_s = 2;
    check_import(ion::interchange::import_sjemea(scratch_path(), o));
#endif
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.find("the HDF5 library") != std::string::npos) ++g_contained;
  }
  return 0;
}

#ifndef ION_LIBFUZZER
namespace {

void write_doubles(hid_t file, const char* name, const std::vector<double>& v, int rows = 1) {
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), v.size() / static_cast<size_t>(rows)};
  const hid_t sp = H5Screate_simple(rows == 1 ? 1 : 2, rows == 1 ? &dims[1] : dims, nullptr);
  const hid_t ds = H5Dcreate2(file, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(ds);
  H5Sclose(sp);
}

void write_strings(hid_t file, const char* name, const std::vector<std::string>& v, bool variable) {
  const hsize_t n = v.size();
  const hid_t sp = H5Screate_simple(1, &n, nullptr);
  const hid_t type = H5Tcopy(H5T_C_S1);
  if (variable) {
    H5Tset_size(type, H5T_VARIABLE);
    std::vector<const char*> p;
    for (const auto& s : v) p.push_back(s.c_str());
    const hid_t ds = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data());
    H5Dclose(ds);
  } else {
    H5Tset_size(type, 8);
    std::string buf(v.size() * 8, '\0');
    for (size_t i = 0; i < v.size(); ++i) buf.replace(i * 8, std::min<size_t>(8, v[i].size()), v[i].substr(0, 8));
    const hid_t ds = H5Dcreate2(file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
    H5Dclose(ds);
  }
  H5Tclose(type);
  H5Sclose(sp);
}

std::string seed(bool variable, bool positions) {
  const std::string path = scratch_path() + ".seed";
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  write_doubles(f, "/spikes", {0.01, 0.5, 1.25, 0.2, 0.3, 2.0});
  write_doubles(f, "/sCount", {3, 2, 1});
  write_strings(f, "/names", {"ch_12", "ch_13", "ch_21"}, variable);
  if (positions) {
    write_doubles(f, "/epos", {0, 100, 0, 0, 0, 100}, 2);
    write_strings(f, "/array", {"MCS_8x8_100um"}, variable);
  }
  H5Fclose(f);
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  std::remove(path.c_str());
  return s.str();
}

}  // namespace

int main() {
  std::vector<std::string> corpus = {seed(false, false), seed(true, true), seed(false, true), ""};
  // The shared test data, when present, as one more seed (a real file from a public dataset).
  std::ifstream real(ION_SOURCE_DIR "/../shared/data/mea-spikes/hiPSN_tc65_d34_spikes6sd.h5", std::ios::binary);
  if (real) {
    std::stringstream s;
    s << real.rdbuf();
    if (s.str().size() < (1u << 20)) corpus.push_back(s.str());
  }
  const int rc = ion::fuzz::replay("fuzz_hdf5", corpus, 3000, 20261202);
  std::printf("fuzz_hdf5: %zu inputs made the HDF5 library hang or crash in the reader's child "
              "process: contained, each a one-line error\n", g_contained);
  std::remove(scratch_path().c_str());
  return rc;
}
#endif
