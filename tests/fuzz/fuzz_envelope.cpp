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

int main() {
  const auto corpus = seeds();
  std::mt19937_64 rng(20261122);
  size_t runs = 0;
  for (const auto& s : corpus) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    ++runs;
  }
  for (int i = 0; i < 200000; ++i) {
    std::string m = corpus[rng() % corpus.size()];
    switch (rng() % 5) {
      case 0:  // flip bits
        for (int k = 0; k < 1 + static_cast<int>(rng() % 4) && !m.empty(); ++k) {
          m[rng() % m.size()] ^= static_cast<char>(1 << (rng() % 8));
        }
        break;
      case 1:  // truncate
        m.resize(m.empty() ? 0 : rng() % m.size());
        break;
      case 2: {  // splice two seeds
        const std::string& o = corpus[rng() % corpus.size()];
        m = m.substr(0, m.empty() ? 0 : rng() % m.size()) + o.substr(o.empty() ? 0 : rng() % o.size());
        break;
      }
      case 3:  // overwrite a byte with a varint-continuation or extreme value
        if (!m.empty()) m[rng() % m.size()] = static_cast<char>((rng() & 1) != 0 ? 0xff : 0x80);
        break;
      default:  // random bytes
        m.resize(rng() % 64);
        for (auto& ch : m) ch = static_cast<char>(rng());
        break;
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(m.data()), m.size());
    ++runs;
  }
  std::printf("fuzz_envelope: %zu inputs decoded without a crash\n", runs);
  return 0;
}
#endif
