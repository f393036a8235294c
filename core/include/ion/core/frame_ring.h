#pragma once
// A bounded FIFO of encoded frames with drop-oldest. Bounded both in frames and in bytes; slots
// keep their capacity, so a ring in steady state does not allocate. Frames pushed with `keep`
// (neuromodulator samples: slow, never to be lost to a flood) are not evicted to make room for
// other frames: the oldest ordinary frame goes instead, and an ordinary frame that finds only kept
// ones is dropped itself. Order is kept.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ion {

class FrameRing {
 public:
  FrameRing(size_t max_frames, size_t max_bytes)
      : slots_(max_frames == 0 ? 1 : max_frames), max_bytes_(max_bytes) {}

  struct PushResult {
    uint64_t dropped_frames = 0;
    uint64_t dropped_events = 0;
    uint64_t dropped_kept_frames = 0;  // of them, frames pushed with `keep`
  };

  // Appends a copy of `frame` tagged with `events`; drops the oldest frames to make room.
  // A frame larger than max_bytes alone is dropped itself.
  PushResult push(std::string_view frame, uint32_t events, bool keep = false) {
    PushResult r;
    if (frame.size() > max_bytes_) {
      r.dropped_frames = 1;
      r.dropped_events = events;
      if (keep) r.dropped_kept_frames = 1;
      return r;
    }
    while (size_ == slots_.size() || bytes_ + frame.size() > max_bytes_) {
      size_t victim = 0;  // the oldest frame that is not kept
      while (victim < size_ && at(victim).keep) ++victim;
      if (victim == size_) {
        if (!keep) {  // only kept frames here: an ordinary one does not displace them
          r.dropped_frames += 1;
          r.dropped_events += events;
          return r;
        }
        victim = 0;  // full of kept frames: the oldest of them goes (counted)
        ++r.dropped_kept_frames;
      }
      r.dropped_events += at(victim).events;
      ++r.dropped_frames;
      erase(victim);
    }
    Slot& s = slots_[(head_ + size_) % slots_.size()];
    s.data.assign(frame.data(), frame.size());
    s.events = events;
    s.keep = keep;
    bytes_ += frame.size();
    ++size_;
    return r;
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::string_view front() const noexcept { return slots_[head_].data; }
  [[nodiscard]] uint32_t front_events() const noexcept { return slots_[head_].events; }

  void pop() noexcept {
    if (size_ == 0) return;
    bytes_ -= slots_[head_].data.size();
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }
  [[nodiscard]] bool front_kept() const noexcept { return slots_[head_].keep; }

  // Calls f(frame, events) for every frame, oldest first.
  template <class F>
  void for_each(F f) const {
    for (size_t i = 0; i < size_; ++i) {
      const Slot& s = slots_[(head_ + i) % slots_.size()];
      f(std::string_view(s.data), s.events);
    }
  }

  // Drops everything, returning what was dropped.
  PushResult clear() noexcept {
    PushResult r;
    while (size_ > 0) {
      r.dropped_events += slots_[head_].events;
      ++r.dropped_frames;
      pop();
    }
    return r;
  }

 private:
  struct Slot {
    std::string data;
    uint32_t events = 0;
    bool keep = false;
  };
  Slot& at(size_t i) noexcept { return slots_[(head_ + i) % slots_.size()]; }
  // Removes the i-th frame from the head, keeping the others' order: the i frames before it move
  // back one slot (buffers swapped, not copied) and the head advances. O(i), and i is the number
  // of kept frames ahead of the oldest ordinary one: few, as kept streams are slow.
  void erase(size_t i) noexcept {
    for (size_t k = i; k > 0; --k) {
      std::swap(at(k).data, at(k - 1).data);
      std::swap(at(k).events, at(k - 1).events);
      std::swap(at(k).keep, at(k - 1).keep);
    }
    pop();
  }
  std::vector<Slot> slots_;
  size_t max_bytes_;
  size_t head_ = 0;
  size_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace ion
