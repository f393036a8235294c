#pragma once
// A relaxed atomic counter written by one loop and read from any thread (stats, metrics).
#include <atomic>
#include <cstdint>
#include <random>

namespace ion {

struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) noexcept { v.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

// A random non-zero 64-bit value: epochs of node and broker processes.
[[nodiscard]] inline uint64_t random_epoch() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  uint64_t e = 0;
  while (e == 0) e = gen();
  return e;
}

}  // namespace ion
