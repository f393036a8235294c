#include "ion/mea/acquisition_sources.h"

#include <arpa/inet.h>
#include <array>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "ion/core/clock.h"
#include "ion/core/inet.h"
#include "ion/mea/frame_stream.h"

static_assert(std::endian::native == std::endian::little, "frames are int16 little-endian");

namespace ion::mea {

// ---------------------------------------------------------------- raw file

RawFileSource::RawFileSource(RawFileOptions options) : opts_(std::move(options)) {
  if (opts_.channels == 0) throw std::runtime_error("raw file: channels must be >= 1");
  if (!(opts_.sample_rate_hz > 0)) throw std::runtime_error("raw file: sample_rate_hz must be > 0");
  file_ = std::fopen(opts_.path.c_str(), "rb");
  if (file_ == nullptr) {
    throw std::runtime_error("raw file '" + opts_.path + "': " + std::strerror(errno));
  }
  std::fseek(file_, 0, SEEK_END);
  const long bytes = std::ftell(file_);
  std::fseek(file_, 0, SEEK_SET);
  const uint64_t frame_bytes = uint64_t{opts_.channels} * sizeof(int16_t);
  if (bytes <= 0 || static_cast<uint64_t>(bytes) % frame_bytes != 0) {
    std::fclose(file_);
    file_ = nullptr;
    throw std::runtime_error("raw file '" + opts_.path + "': " + std::to_string(bytes) +
                             " bytes is not a whole number of " + std::to_string(opts_.channels) +
                             "-channel int16 frames (" + std::to_string(frame_bytes) +
                             " bytes each): wrong channel count or a truncated file");
  }
  total_frames_ = static_cast<uint64_t>(bytes) / frame_bytes;
}

RawFileSource::~RawFileSource() {
  if (file_ != nullptr) std::fclose(file_);
}

SignalFormat RawFileSource::format() const {
  return {opts_.channels, opts_.sample_rate_hz, opts_.uv_per_bit, opts_.offset_bits};
}

ReadResult RawFileSource::read(std::span<int16_t> out, std::chrono::milliseconds /*timeout*/) noexcept {
  ReadResult r{0, next_sample_, false};
  size_t want = out.size() / opts_.channels;
  while (r.frames < want) {
    if (position_ == total_frames_) {
      if (!opts_.loop) break;
      std::fseek(file_, 0, SEEK_SET);
      position_ = 0;
      loops_.fetch_add(1);
    }
    const size_t n = std::min<uint64_t>(want - r.frames, total_frames_ - position_);
    const size_t got = std::fread(out.data() + r.frames * opts_.channels,
                                  sizeof(int16_t) * opts_.channels, n, file_);
    if (got != n) {
      read_errors_.fetch_add(1);
      r.frames += got;
      position_ = total_frames_;
      r.end = true;
      break;
    }
    position_ += got;
    r.frames += got;
  }
  next_sample_ += r.frames;
  if (position_ == total_frames_ && !opts_.loop) r.end = true;
  return r;
}

std::map<std::string, int64_t> RawFileSource::counters() const {
  return {{"file_loops", static_cast<int64_t>(loops_.load())},
          {"file_read_errors", static_cast<int64_t>(read_errors_.load())}};
}

// ---------------------------------------------------------------- TCP frame stream

namespace {

void send_all(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return;
    p += k;
    n -= static_cast<size_t>(k);
  }
}

}  // namespace

TcpStreamSource::TcpStreamSource(TcpStreamOptions options) : opts_(std::move(options)) {
  if (opts_.channels == 0 || opts_.channels > 65535) throw std::runtime_error("tcp stream: channels must be 1..65535");
  if (!(opts_.sample_rate_hz > 0)) throw std::runtime_error("tcp stream: sample_rate_hz must be > 0");
  if (opts_.max_queued_frames == 0) opts_.max_queued_frames = static_cast<size_t>(opts_.sample_rate_hz);
  sockaddr_in addr = parse_ipv4_endpoint(opts_.listen, "tcp stream: listen");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 1) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listen_fd_);
    throw std::runtime_error("tcp stream: cannot listen on " + opts_.listen + ": " + why);
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { serve(); });
}

TcpStreamSource::~TcpStreamSource() {
  stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void TcpStreamSource::stop() noexcept {
  if (stop_.exchange(true)) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SignalFormat TcpStreamSource::format() const {
  std::lock_guard lock(mu_);
  return {opts_.channels, opts_.sample_rate_hz, uv_per_bit_, offset_bits_};
}

// Reads exactly n bytes, waking up for stop(); false on close, error or stop.
bool TcpStreamSource::read_exact(int fd, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return false;
    if (stop_.load()) return false;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

void TcpStreamSource::serve() {
  while (!stop_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (stop_.load()) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connections_.fetch_add(1);
    auto refuse = [&](const std::string& why) {
      refused_.fetch_add(1);
      spdlog::error("mea tcp stream: refused a connection: {}", why);
      const std::vector<char> msg = encode_error(why);
      send_all(fd, msg.data(), msg.size());
      ::close(fd);
    };
    StreamHeader h;
    std::array<char, kStreamHeaderBytes> hb{};
    if (!read_exact(fd, hb.data(), hb.size())) {
      ::close(fd);
      continue;
    }
    if (const std::string err = decode_stream_header(hb.data(), h); !err.empty()) {
      malformed_.fetch_add(1);
      refuse(err);
      continue;
    }
    if (h.channels != opts_.channels) {
      refuse("stream has " + std::to_string(h.channels) + " channels, this node is configured for " +
             std::to_string(opts_.channels));
      continue;
    }
    if (std::abs(h.sample_rate_hz - opts_.sample_rate_hz) > 1e-6 * opts_.sample_rate_hz) {
      refuse("stream samples at " + std::to_string(h.sample_rate_hz) + " Hz, this node is configured for " +
             std::to_string(opts_.sample_rate_hz) + " Hz");
      continue;
    }
    {
      std::lock_guard lock(mu_);
      uv_per_bit_ = h.uv_per_bit;
      offset_bits_ = h.offset_bits;
    }
    client_fd_.store(fd);
    spdlog::info("mea tcp stream: acquisition connected ({} channels, {} Hz)", h.channels, h.sample_rate_hz);
    uint64_t expected = 0;
    bool first = true;
    while (!stop_.load()) {
      std::array<char, kChunkHeaderBytes> cb{};
      if (!read_exact(fd, cb.data(), cb.size())) break;
      ChunkHeader c;
      if (const std::string err = decode_chunk_header(cb.data(), opts_.max_chunk_frames, c); !err.empty()) {
        malformed_.fetch_add(1);
        spdlog::error("mea tcp stream: {}; closing the connection", err);
        break;
      }
      if (!first && c.first_sample < expected) {
        malformed_.fetch_add(1);
        spdlog::error("mea tcp stream: chunk starts at sample {} but {} was expected (backwards); "
                      "closing the connection", c.first_sample, expected);
        break;
      }
      Chunk chunk{c.first_sample, 0, std::vector<int16_t>(size_t{c.frames} * opts_.channels)};
      if (!read_exact(fd, chunk.frames.data(), chunk.frames.size() * sizeof(int16_t))) break;
      chunk.arrival_ns = SteadyClock::instance().now_ns();
      first = false;
      expected = c.first_sample + c.frames;
      chunks_.fetch_add(1);
      frames_.fetch_add(c.frames);
      {
        std::lock_guard lock(mu_);
        queued_frames_ += c.frames;
        queue_.push_back(std::move(chunk));
        while (queued_frames_ > opts_.max_queued_frames && queue_.size() > 1) {
          // The reader fell behind by more than the queue bound: drop oldest, counted.
          dropped_frames_.fetch_add(queue_.front().frames.size() / opts_.channels);
          queued_frames_ -= queue_.front().frames.size() / opts_.channels;
          queue_.pop_front();
        }
      }
      cv_.notify_one();
    }
    {
      std::lock_guard lock(send_mu_);
      client_fd_.store(-1);
      ::close(fd);
    }
    spdlog::info("mea tcp stream: acquisition disconnected");
  }
}

ReadResult TcpStreamSource::read(std::span<int16_t> out, std::chrono::milliseconds timeout) noexcept {
  ReadResult r;
  const size_t want = out.size() / opts_.channels;
  if (want == 0) return r;
  if (current_pos_ * opts_.channels >= current_.frames.size()) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || stop_.load(); })) return r;
    if (queue_.empty()) {
      r.end = true;
      return r;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    queued_frames_ -= current_.frames.size() / opts_.channels;
    current_pos_ = 0;
  }
  const size_t avail = current_.frames.size() / opts_.channels - current_pos_;
  r.frames = std::min(want, avail);
  r.first_sample = current_.first_sample + current_pos_;
  std::memcpy(out.data(), current_.frames.data() + current_pos_ * opts_.channels,
              r.frames * opts_.channels * sizeof(int16_t));
  current_pos_ += r.frames;
  last_arrival_ns_ = current_.arrival_ns;
  return r;
}

StimResult TcpStreamSource::stimulate(const StimCommand& command) noexcept {
  if (command.electrode >= opts_.channels) return StimResult::out_of_range;
  const std::array<char, kStimBytes> msg = encode_stim(command);
  std::lock_guard lock(send_mu_);
  const int fd = client_fd_.load();
  if (fd < 0) {
    stim_send_failed_.fetch_add(1);
    return StimResult::unsupported;
  }
  send_all(fd, msg.data(), msg.size());
  stim_sent_.fetch_add(1);
  return StimResult::applied;
}

std::map<std::string, int64_t> TcpStreamSource::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return static_cast<int64_t>(a.load()); };
  return {{"tcp_connections", v(connections_)},   {"tcp_refused", v(refused_)},
          {"tcp_malformed", v(malformed_)},       {"tcp_chunks", v(chunks_)},
          {"tcp_frames", v(frames_)},             {"tcp_dropped_frames", v(dropped_frames_)},
          {"tcp_stim_sent", v(stim_sent_)},       {"tcp_stim_unsent", v(stim_send_failed_)}};
}

}  // namespace ion::mea
