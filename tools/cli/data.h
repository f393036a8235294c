#pragma once
// `ion import`, `ion export`, `ion inspect`, `ion replay`: recordings in and out.
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ion/core/security.h"

namespace ion {

struct ImportCommand {
  std::string format;  // csv | axion-csv | sjemea
  std::string input;
  std::string out;
  std::string name;    // source name (default: the input's stem)
  double sample_rate_hz = 0;
  std::string session_start;  // ISO 8601 with zone: the UTC time of the file's time 0
};
int run_import(const ImportCommand& c, std::ostream& out);

struct ExportCommand {
  std::string file;
  std::string format;  // csv | npy | nwb
  std::string out;
  std::string source;
  double sample_rate_hz = 0;
  std::vector<std::string> nwb_schema;  // folders holding the NWB schema to cache (nwb)
};
int run_export(const ExportCommand& c, std::ostream& out);

struct InspectCommand {
  std::string file;
  bool json = false;
  bool repair = false;
};
int run_inspect(const InspectCommand& c, std::ostream& out);

struct ReplayCommand {
  std::string file;
  std::string broker;   // live: join this broker, one node per source
  std::string to;       // offline: write the replayed events into this recording
  std::string source;   // only this source
  std::string as;       // node name for a single replayed source
  double speed = 1.0;
  double start_s = 0;   // offset into the recording
  double end_s = 0;     // 0: to the end
  bool loop = false;
  std::string remap;    // "3:0,ch_22_unit_0:55": recorded channel (number or name) -> emitted
  bool merge = false;   // let --remap send two recorded channels to one emitted channel
  // Live: the input ports to declare; -1: those the broker's topology gives the node (standing
  // in for a lab), and its channel count too.
  int64_t ports = -1;
  std::string record_inputs;  // live, one source: write what the node received into this file
  std::optional<CurveClientKeys> curve;  // a CURVE broker: one key, so one source (its name)
};
int run_replay(const ReplayCommand& c, const std::atomic<bool>& stop, std::ostream& out);

}  // namespace ion
