#pragma once
// Receiver-side accounting of one sequenced stream: gaps (lost), duplicates or reorders, and
// restarts of the source (new epoch) are counted separately.
#include <cstdint>

namespace ion {

struct SequenceCounts {
  uint64_t accepted = 0;                // frames taken as new and in order (or after a gap)
  uint64_t lost = 0;                    // sequence numbers skipped
  uint64_t duplicate_or_reordered = 0;  // frames at or below the last sequence seen
  uint64_t restarts = 0;                // epoch changes after the first frame
};

class SequenceTracker {
 public:
  enum class Verdict : uint8_t { first, in_order, gap, duplicate_or_reordered, restarted };

  // `expected_first` is the sequence a fresh epoch starts with (0 for node streams).
  Verdict observe(uint64_t epoch, uint64_t sequence) noexcept {
    if (!started_ || epoch != epoch_) {
      const Verdict v = started_ ? Verdict::restarted : Verdict::first;
      if (started_) ++counts_.restarts;
      started_ = true;
      epoch_ = epoch;
      next_ = sequence + 1;
      last_gap_ = 0;
      ++counts_.accepted;
      return v;
    }
    if (sequence < next_) {
      ++counts_.duplicate_or_reordered;
      last_gap_ = 0;
      return Verdict::duplicate_or_reordered;
    }
    last_gap_ = sequence - next_;
    counts_.lost += last_gap_;
    next_ = sequence + 1;
    ++counts_.accepted;
    return last_gap_ == 0 ? Verdict::in_order : Verdict::gap;
  }

  [[nodiscard]] const SequenceCounts& counts() const noexcept { return counts_; }
  [[nodiscard]] uint64_t last_gap() const noexcept { return last_gap_; }
  [[nodiscard]] uint64_t epoch() const noexcept { return epoch_; }
  [[nodiscard]] bool started() const noexcept { return started_; }
  [[nodiscard]] uint64_t next_expected() const noexcept { return next_; }

 private:
  bool started_ = false;
  uint64_t epoch_ = 0;
  uint64_t next_ = 0;
  uint64_t last_gap_ = 0;
  SequenceCounts counts_;
};

}  // namespace ion
