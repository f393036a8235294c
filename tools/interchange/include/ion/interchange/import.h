#pragma once
// Importers: public spike formats -> an IoN dataset (then a recording). Channel names and
// positions are kept; times become integer nanoseconds exactly (times on a sample grid become
// integer ticks first, so an hour of data does not drift). Errors name the file, the line or
// dataset, and what was wrong (std::runtime_error).
//   csv        `channel,time_s[,value]` with that header; channel names are any text
//   axion-csv  Axion AxIS spike list (Time (s), Electrode, Amplitude(mV)), settings mixed into
//              the first columns of the first rows; gzip accepted
//   sjemea     the community MEA HDF5 layout (Eglen et al. 2014): /spikes, /sCount, /names, /epos
#include <span>
#include <string>
#include <vector>

#include "ion/core/dataset.h"

namespace ion::interchange {

struct ImportOptions {
  std::string source_name;  // default: the input file's stem
  double sample_rate_hz = 0;  // 0: the file's own, else detected from the times
  // sjemea: CPU seconds the HDF5 reader may use before the file is declared unreadable (it runs in
  // a child process); 0: 60 s plus 1 s per MiB of file.
  uint32_t max_cpu_s = 0;
};

struct ImportResult {
  Dataset data;
  std::vector<std::string> notes;  // what the importer decided (grid found, labels not trusted)
};

ImportResult import_csv(const std::string& path, const ImportOptions& options = {});
ImportResult import_axion_csv(const std::string& path, const ImportOptions& options = {});
ImportResult import_sjemea(const std::string& path, const ImportOptions& options = {});
// The same read in this process, which import_sjemea runs in a child process with a CPU-time
// limit because libhdf5 can hang or crash on a corrupt file. For the fuzz target (coverage).
ImportResult import_sjemea_in_process(const std::string& path, const ImportOptions& options = {});
// The same read on an HDF5 file image in memory (`label` names it in messages), in this process:
// the fuzz target's fast path, with no file written per input.
ImportResult import_sjemea_image(std::span<const uint8_t> image, const std::string& label,
                                 const ImportOptions& options = {});

// By format name: "csv", "axion-csv", "sjemea".
ImportResult import_file(const std::string& format, const std::string& path,
                         const ImportOptions& options = {});

// An ISO 8601 date and time with its zone ("2017-05-02T14:03:00Z", "2017-05-02T16:03:00.5+02:00",
// or a date alone, midnight UTC) as ns since 1970 UTC: the session start of an import whose file
// has none. Throws std::invalid_argument saying what is expected.
[[nodiscard]] int64_t parse_session_start(const std::string& text);

}  // namespace ion::interchange
