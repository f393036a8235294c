// Fuzz target for the envelope and batch decoders.
// With libFuzzer (clang -fsanitize=fuzzer -DION_LIBFUZZER): explores freely.
// Without it, main() builds a seed corpus of valid frames of every message type and replays it
// with deterministic, seeded mutations (bit flips, truncations, splices, varint bombs), so CI runs
// it as an ordinary test; under the asan preset it is a memory-safety check of every decode path.
// Promise 4: garbage costs counters, never a crash.
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ion/core/codec.h"
#include "ion/v1/ion.pb.h"
#include "replay_main.h"

namespace {

void decode_one(const uint8_t* data, size_t size) {
  static ion::Codec codec({.max_message_bytes = 1 << 16, .max_events_per_batch = 4096});
  const ion::Decoded d = codec.decode({data, size});
  if (d.body == ion::Body::spike_batch) {
    ion::BatchHeader h;
    ion::EventBatch e;
    ion::BatchChecks checks;
    checks.channel_limit = 64;
    checks.check_time_window = (size & 1) != 0;
    checks.window_lo_ns = -1'000'000'000;
    checks.window_hi_ns = 1'000'000'000;
    const ion::Reject r = codec.take_batch(checks, h, e);
    if (r == ion::Reject::none && (e.channels.size() != e.times_ns.size() ||
                                   (!e.payload.empty() && e.payload.size() != e.size()))) {
      std::abort();  // a batch that passed validation must be consistent
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  decode_one(data, size);
  return 0;
}

#ifndef ION_LIBFUZZER
namespace {

std::vector<std::string> seeds() {
  ion::Codec c;
  std::vector<std::string> out;
  std::string f;
  ion::EventBatch b;
  for (int i = 0; i < 40; ++i) b.push(static_cast<uint32_t>(i % 70), i * 1000 - 20'000, 0.5F * static_cast<float>(i));
  ion::BatchHeader h;
  h.source_node = "padova";
  h.complete = true;
  if (c.encode_batch(h, b, f)) out.push_back(f);
  b.payload.clear();
  if (c.encode_batch({}, b, f)) out.push_back(f);
  ion::v1::Hello hello;
  hello.set_node_name("zurich");
  hello.set_protocol_version(1);
  if (c.encode(hello, f)) out.push_back(f);
  ion::v1::Welcome w;
  w.set_node_id(3);
  if (c.encode(w, f)) out.push_back(f);
  ion::v1::TimeReply tr;
  tr.set_t0_ns(1);
  if (c.encode(tr, f)) out.push_back(f);
  ion::v1::Error e;
  e.set_message("x");
  if (c.encode(e, f)) out.push_back(f);
  ion::v1::StatusReply sr;
  sr.add_nodes()->set_name("n");
  (*sr.mutable_rejects())["malformed"] = 3;
  if (c.encode(sr, f)) out.push_back(f);
  out.emplace_back();                                   // empty frame
  out.emplace_back("\x08\x01\x3a\xff\xff\xff\xff\x0f", 8);  // body length far past the end
  return out;
}

}  // namespace

int main() { return ion::fuzz::replay("fuzz_envelope", seeds(), 200000, 20261122); }
#endif
