#pragma once
// The corpus replay every fuzz target uses when it is built without libFuzzer: the seeds, then
// deterministic seeded mutations of them (bit flips, truncations, splices, extreme bytes, random
// bytes), each fed to LLVMFuzzerTestOneInput. CI runs it as an ordinary test; under the asan
// preset it is a memory-safety check of every decode path.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace ion::fuzz {

inline int replay(const char* name, const std::vector<std::string>& corpus, int mutations, uint64_t seed) {
  // tools/fuzz.sh seeds libFuzzer with these inputs: ION_FUZZ_WRITE_CORPUS=DIR writes them there.
  if (const char* dir = std::getenv("ION_FUZZ_WRITE_CORPUS")) {
    for (size_t i = 0; i < corpus.size(); ++i) {
      const std::string path = std::string(dir) + "/" + name + "-seed-" + std::to_string(i);
      std::FILE* f = std::fopen(path.c_str(), "wb");
      if (f == nullptr) return 1;
      if (!corpus[i].empty()) std::fwrite(corpus[i].data(), 1, corpus[i].size(), f);
      std::fclose(f);
    }
    return 0;
  }
  std::mt19937_64 rng(seed);
  size_t runs = 0;
  auto run = [&](const std::string& s) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    ++runs;
  };
  for (const auto& s : corpus) run(s);
  for (int i = 0; i < mutations; ++i) {
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
    run(m);
  }
  std::printf("%s: %zu inputs handled without a crash\n", name, runs);
  return 0;
}

}  // namespace ion::fuzz
