#pragma once
// Raw-signal sources besides the emulator: an int16 file and a live TCP frame stream.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "ion/mea/signal_source.h"

namespace ion::mea {

// int16 little-endian frames, channels interleaved, as written by most acquisition systems.
struct RawFileOptions {
  std::string path;
  uint32_t channels = 0;
  double sample_rate_hz = 0;
  double uv_per_bit = 1.0;
  double offset_bits = 0;
  bool loop = false;  // start again at the end (sample numbers keep increasing)
};

class RawFileSource final : public SignalSource {
 public:
  // Throws std::runtime_error naming the file if it cannot be opened or its size is not a whole
  // number of frames (a wrong channel count would silently misalign every channel).
  explicit RawFileSource(RawFileOptions options);
  ~RawFileSource() override;
  RawFileSource(const RawFileSource&) = delete;
  RawFileSource& operator=(const RawFileSource&) = delete;

  [[nodiscard]] SignalFormat format() const override;
  [[nodiscard]] bool paced() const noexcept override { return true; }
  ReadResult read(std::span<int16_t> out, std::chrono::milliseconds timeout) noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] uint64_t total_frames() const noexcept { return total_frames_; }

 private:
  RawFileOptions opts_;
  std::FILE* file_ = nullptr;
  uint64_t total_frames_ = 0;
  uint64_t position_ = 0;  // frame within the file
  uint64_t next_sample_ = 0;
  std::atomic<uint64_t> loops_{0};
  std::atomic<uint64_t> read_errors_{0};
};

// Live frames from an acquisition computer over TCP (docs/devices/mea.md, "Frame stream"):
// the node listens; the acquisition side connects, sends a stream header (magic "IONM", version,
// channels, sample rate, µV per bit, offset), then chunks (magic "IONC", frame count, first
// sample number, frames). Stimulation commands go back on the same connection. A header whose
// channel count or rate differs from the configuration is refused (counted, connection closed).
struct TcpStreamOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  uint32_t channels = 0;
  double sample_rate_hz = 0;
  uint32_t max_chunk_frames = 65536;
  size_t max_queued_frames = 0;  // 0 = one second of data; beyond it the oldest chunks are dropped
};

class TcpStreamSource final : public SignalSource {
 public:
  explicit TcpStreamSource(TcpStreamOptions options);  // binds; throws on failure
  ~TcpStreamSource() override;
  TcpStreamSource(const TcpStreamSource&) = delete;
  TcpStreamSource& operator=(const TcpStreamSource&) = delete;

  [[nodiscard]] SignalFormat format() const override;
  [[nodiscard]] bool paced() const noexcept override { return false; }
  ReadResult read(std::span<int16_t> out, std::chrono::milliseconds timeout) noexcept override;
  StimResult stimulate(const StimCommand& command) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  // Host monotonic time (steady clock, ns) at which the chunk a read() returned arrived.
  [[nodiscard]] int64_t last_arrival_ns() const noexcept { return last_arrival_ns_; }

 private:
  struct Chunk {
    uint64_t first_sample;
    int64_t arrival_ns;
    std::vector<int16_t> frames;
  };
  void serve();
  bool read_exact(int fd, void* buf, size_t n);

  TcpStreamOptions opts_;
  int listen_fd_ = -1;
  std::atomic<int> client_fd_{-1};
  uint16_t port_ = 0;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  size_t queued_frames_ = 0;
  Chunk current_;
  size_t current_pos_ = 0;  // frames of current_ already returned
  double uv_per_bit_ = 1.0;
  double offset_bits_ = 0;
  int64_t last_arrival_ns_ = 0;
  std::mutex send_mu_;
  std::atomic<uint64_t> connections_{0}, refused_{0}, malformed_{0}, chunks_{0}, frames_{0},
      dropped_frames_{0}, stim_sent_{0}, stim_send_failed_{0};
};

}  // namespace ion::mea
