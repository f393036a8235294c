// Fuzz target for the recording reader (record format, batch decoding, inspect, repair): any
// bytes as a file. Promise 7 and the bad-input rule: a damaged recording is a clear error or a
// torn tail, never a crash, and whatever reads back is consistent.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ion/core/codec.h"
#include "ion/core/record.h"
#include "ion/core/dataset.h"
#include "ion/interchange/inspect.h"
#include "replay_main.h"

namespace {

std::string scratch_path() {
  static const std::string p = "/tmp/ion-fuzz-record-" + std::to_string(::getpid()) + ".ionrec";
  return p;
}

void read_file(const std::string& path) {
  try {
    ion::record::Reader rd(path);
    ion::record::Record r;
    ion::Codec codec({.max_message_bytes = ion::record::kMaxRecordBytes, .max_events_per_batch = 1u << 16});
    ion::BatchHeader h;
    ion::EventBatch e;
    uint64_t last_valid = 0;
    while (rd.next(r)) {
      if (rd.valid_bytes() < last_valid) std::abort();
      last_valid = rd.valid_bytes();
      if (r.type == ion::record::RecordType::batch && codec.decode(r.body).ok()) (void)codec.take_batch({}, h, e);
    }
    if (rd.valid_bytes() > rd.file_bytes()) std::abort();
    (void)rd.seek_time(0);
    (void)ion::interchange::inspect(path);
    (void)ion::load_recording(path);
  } catch (const std::runtime_error&) {
    // not a recording: a clear error is the right answer
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  read_file(path);
  try {
    (void)ion::record::repair(path);
    read_file(path);  // after a repair the file reads clean
  } catch (const std::runtime_error&) {
  }
  return 0;
}

#ifndef ION_LIBFUZZER
int main() {
  // Seeds: a real recording (header, batches with and without values, index records, a marker),
  // the bare magic, and nothing.
  ion::Dataset d;
  d.header.set_origin("fuzz seed");
  for (int k = 0; k < 2; ++k) {
    ion::SourceData s;
    s.desc.set_name(k == 0 ? "culture" : "chip");
    s.desc.set_channels(4);
    for (int i = 0; i < 120; ++i) {
      s.channels.push_back(static_cast<uint32_t>(i % 4));
      s.times_ns.push_back(int64_t{i} * 30'000'000 + k);
      if (k == 1) s.payload.push_back(0.25F * static_cast<float>(i));
    }
    *d.header.add_sources() = s.desc;
    d.sources.push_back(s);
  }
  const std::string seed_path = scratch_path() + ".seed";
  ion::write_recording(seed_path, d, 16);
  std::FILE* f = std::fopen(seed_path.c_str(), "rb");
  std::string bytes;
  char buf[4096];
  size_t k = 0;
  while ((k = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, k);
  std::fclose(f);
  std::remove(seed_path.c_str());
  const std::vector<std::string> corpus = {bytes, std::string(ion::record::kMagic, 8), std::string()};
  const int rc = ion::fuzz::replay("fuzz_record", corpus, 20000, 20261201);
  std::remove(scratch_path().c_str());
  return rc;
}
#endif
