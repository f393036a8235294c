#pragma once
// A bounded FIFO of encoded frames with drop-oldest. Bounded both in frames and in bytes; slots
// keep their capacity, so a ring in steady state does not allocate.
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
  };

  // Appends a copy of `frame` tagged with `events`; drops the oldest frames to make room.
  // A frame larger than max_bytes alone is dropped itself.
  PushResult push(std::string_view frame, uint32_t events) {
    PushResult r;
    if (frame.size() > max_bytes_) {
      r.dropped_frames = 1;
      r.dropped_events = events;
      return r;
    }
    while (size_ == slots_.size() || bytes_ + frame.size() > max_bytes_) {
      r.dropped_events += slots_[head_].events;
      ++r.dropped_frames;
      pop();
    }
    Slot& s = slots_[(head_ + size_) % slots_.size()];
    s.data.assign(frame.data(), frame.size());
    s.events = events;
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
  };
  std::vector<Slot> slots_;
  size_t max_bytes_;
  size_t head_ = 0;
  size_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace ion
