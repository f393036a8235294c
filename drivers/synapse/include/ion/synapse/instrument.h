#pragma once
// The instrument that programs and reads the crossbar. Every operation takes time (the 2017
// instrument needed >= 15 ms per update over USB serial), so operations queue and complete
// asynchronously on the instrument's own thread; a full queue refuses (counted by the caller),
// it never blocks the caller.
//   EmulatedInstrument  device models in a W x B array, each operation held for its duration;
//   LineInstrument      a real instrument speaking the line protocol below over TCP or a serial
//                       port; InstrumentServer serves that protocol from an emulated crossbar
//                       (for tests, and for trying the protocol without hardware).
// Line protocol (ASCII, one command per line, one reply per command, in order):
//   READ <wl> <bl>                      ->  R <wl> <bl> <ohms>
//   PULSE <wl> <bl> <volts> <width_ns>  ->  P <wl> <bl>
//   any error                           ->  ERR <text>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ion/synapse/device.h"

namespace ion::synapse {

struct CellAddress {
  uint32_t wordline = 0;
  uint32_t bitline = 0;
  bool operator==(const CellAddress&) const = default;
};

struct InstrumentOp {
  enum class Kind : uint8_t { pulse, read };
  Kind kind = Kind::read;
  CellAddress cell;
  double volts = 0;
  double width_s = 0;
};

struct InstrumentResult {
  InstrumentOp op;
  bool ok = false;
  double r_ohm = 0;       // reads
  int64_t done_ns = 0;    // network time the operation completed
};

// Network time, for stamping completions.
using TimeSource = std::function<int64_t()>;
using Completion = std::function<void(const InstrumentResult&)>;

class Instrument {
 public:
  virtual ~Instrument() = default;
  // Starts the instrument thread; `done` is called on it for every completed operation.
  virtual void start(TimeSource now, Completion done) = 0;
  // Queues an operation; false when the queue is full (nothing queued). Never blocks.
  virtual bool submit(const InstrumentOp& op) noexcept = 0;
  virtual void stop() noexcept = 0;
  [[nodiscard]] virtual size_t queued() const noexcept = 0;
  [[nodiscard]] virtual std::map<std::string, int64_t> counters() const = 0;
};

struct CrossbarOptions {
  uint32_t wordlines = 32;
  uint32_t bitlines = 32;
  DeviceOptions device;
};

// W x B device models; cell index = wordline * bitlines + bitline. Not thread-safe.
class Crossbar {
 public:
  explicit Crossbar(const CrossbarOptions& o);
  [[nodiscard]] bool contains(CellAddress c) const noexcept {
    return c.wordline < wordlines_ && c.bitline < bitlines_;
  }
  [[nodiscard]] uint32_t index(CellAddress c) const noexcept { return c.wordline * bitlines_ + c.bitline; }
  void pulse(CellAddress c, double volts, double width_s, int64_t t_ns) noexcept;
  [[nodiscard]] double read_ohm(CellAddress c, int64_t t_ns) noexcept;
  [[nodiscard]] double resistance_ohm(CellAddress c, int64_t t_ns) const noexcept;
  [[nodiscard]] Memristor& device(CellAddress c) noexcept { return *cells_[index(c)]; }
  // A TS-PCM cell's drive (see EmulatedInstrument::drive); false for other models.
  bool drive(CellAddress c, double current_a, int64_t t_start_ns, int64_t t_end_ns,
             std::vector<int64_t>& spikes) noexcept;

 private:
  uint32_t wordlines_;
  uint32_t bitlines_;
  std::vector<std::unique_ptr<Memristor>> cells_;
  std::vector<Rng> c2c_rng_;  // one stream per cell: other cells' traffic never shifts it
  Rng read_rng_;
};

struct InstrumentTiming {
  std::chrono::microseconds pulse_time{10000};  // a pulse, including the instrument's pauses
  std::chrono::microseconds read_time{5000};
  size_t queue_capacity = 1024;
};

class EmulatedInstrument final : public Instrument {
 public:
  EmulatedInstrument(const CrossbarOptions& crossbar, InstrumentTiming timing);
  ~EmulatedInstrument() override;
  void start(TimeSource now, Completion done) override;
  bool submit(const InstrumentOp& op) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] size_t queued() const noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;
  // The true resistance of a cell (touch only when the instrument is idle or stopped).
  [[nodiscard]] double true_resistance_ohm(CellAddress c, int64_t t_ns) const;
  // TS-PCM cells: a constant drive current over [t_start, t_end] (TsPcmCell::drive), between the
  // instrument's operations. False if the cell is not a TS-PCM cell or stopped at its firing cap.
  bool drive(CellAddress c, double current_a, int64_t t_start_ns, int64_t t_end_ns,
             std::vector<int64_t>& spikes) noexcept;

 private:
  void loop();
  Crossbar crossbar_;
  InstrumentTiming timing_;
  TimeSource now_;
  Completion done_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<InstrumentOp> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> pulses_{0}, reads_{0};
};

struct LineInstrumentOptions {
  std::string tcp;          // host:port, or
  std::string serial;       // a tty path (raw 8N1 at `baud`)
  uint32_t baud = 115200;
  std::chrono::milliseconds reply_timeout{1000};
  size_t queue_capacity = 1024;
};

class LineInstrument final : public Instrument {
 public:
  explicit LineInstrument(LineInstrumentOptions o);  // opens the link; throws with the reason
  ~LineInstrument() override;
  void start(TimeSource now, Completion done) override;
  bool submit(const InstrumentOp& op) noexcept override;
  void stop() noexcept override;
  [[nodiscard]] size_t queued() const noexcept override;
  [[nodiscard]] std::map<std::string, int64_t> counters() const override;

 private:
  void loop();
  bool reopen() noexcept;
  // One command and its reply line; empty on timeout or a broken link.
  std::string transact(const std::string& line) noexcept;
  LineInstrumentOptions o_;
  int fd_ = -1;
  std::string inbuf_;
  TimeSource now_;
  Completion done_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<InstrumentOp> queue_;
  bool stop_ = false;
  std::atomic<uint64_t> pulses_{0}, reads_{0}, timeouts_{0}, bad_replies_{0}, errors_{0},
      reconnects_{0};
};

// Serves the line protocol from an emulated crossbar: on a TCP port (127.0.0.1, ephemeral when
// 0) or on a pseudo-terminal whose slave path it reports (a serial port for tests).
class InstrumentServer {
 public:
  enum class Transport : uint8_t { tcp, pty };
  InstrumentServer(const CrossbarOptions& crossbar, Transport transport, uint16_t port = 0);
  ~InstrumentServer();
  [[nodiscard]] uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const std::string& pty_path() const noexcept { return pty_path_; }
  [[nodiscard]] uint64_t commands() const noexcept { return commands_.load(); }
  [[nodiscard]] uint64_t errors() const noexcept { return errors_.load(); }
  // The true resistance of a cell (touch only when no command is in flight).
  [[nodiscard]] double true_resistance_ohm(CellAddress c) const;

 private:
  void serve();
  void serve_fd(int fd);
  std::string answer(const std::string& line);
  Crossbar crossbar_;
  Transport transport_;
  int listen_fd_ = -1;
  int pty_master_ = -1;
  uint16_t port_ = 0;
  std::string pty_path_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  mutable std::mutex mu_;
  std::atomic<uint64_t> commands_{0}, errors_{0};
};

}  // namespace ion::synapse
