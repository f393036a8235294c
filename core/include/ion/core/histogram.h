#pragma once
// Log-linear histogram of non-negative nanosecond values (8 sub-buckets per power of two, so a
// reported percentile is within 12.5 % above the true value). Written by one thread, read by any.
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace ion {

// The bounds latency histograms are published with (Prometheus `le`, dashboards, ion status).
inline constexpr std::array<int64_t, 16> kLatencyBoundsNs = {
    100'000,    250'000,     500'000,     1'000'000,   2'500'000,     5'000'000,
    10'000'000, 25'000'000,  50'000'000,  100'000'000, 250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

class Histogram {
 public:
  static constexpr int kSubBits = 3;
  static constexpr int kSub = 1 << kSubBits;
  // Values below kSub get one bucket each; above, (msb - kSubBits + 1) * kSub + sub-bucket, which
  // for msb = 63 ends at 61 * kSub + kSub - 1.
  static constexpr int kBuckets = 62 * kSub;

  // One writer: plain loads and stores (no locked read-modify-write: a batch of 256 events costs
  // 256 records on the broker's hot path); readers on other threads see each value whole.
  void record(int64_t value_ns) noexcept {
    const uint64_t v = value_ns < 0 ? 0 : static_cast<uint64_t>(value_ns);
    auto& b = buckets_[index(v)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
  }

  // Not atomic as a whole: call only from the thread that records.
  void clear() noexcept {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

  [[nodiscard]] uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t sum_ns() const noexcept { return sum_.load(std::memory_order_relaxed); }
  // Values at or below each of kLatencyBoundsNs, to the bucket resolution (the buckets whose
  // upper edge is within), in one pass over the buckets.
  [[nodiscard]] std::array<uint64_t, kLatencyBoundsNs.size()> counts_at_bounds() const noexcept {
    std::array<uint64_t, kLatencyBoundsNs.size()> out{};
    uint64_t n = 0;
    int i = 0;
    for (size_t k = 0; k < kLatencyBoundsNs.size(); ++k) {
      for (; i < kBuckets && upper_edge(i) <= static_cast<uint64_t>(kLatencyBoundsNs[k]); ++i) {
        n += buckets_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
      }
      out[k] = n;
    }
    return out;
  }
  [[nodiscard]] int64_t max_ns() const noexcept {
    return static_cast<int64_t>(max_.load(std::memory_order_relaxed));
  }
  // Upper edge of the bucket holding the q-quantile (0 < q <= 1), capped at the maximum seen.
  [[nodiscard]] int64_t quantile_ns(double q) const noexcept {
    const uint64_t n = count();
    if (n == 0) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(n));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += buckets_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
      if (seen >= rank) {
        const uint64_t edge = upper_edge(i);
        const uint64_t m = max_.load(std::memory_order_relaxed);
        return static_cast<int64_t>(edge < m ? edge : m);
      }
    }
    return max_ns();
  }

  static int index(uint64_t v) noexcept {
    if (v < kSub) return static_cast<int>(v);
    const int msb = 63 - std::countl_zero(v);
    const int shift = msb - kSubBits;
    return (shift + 1) * kSub + static_cast<int>((v >> shift) & (kSub - 1));
  }
  static uint64_t upper_edge(int i) noexcept {
    if (i < kSub) return static_cast<uint64_t>(i);
    const int shift = i / kSub - 1;
    const uint64_t sub = static_cast<uint64_t>(i % kSub) | kSub;
    return ((sub + 1) << shift) - 1;
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace ion
