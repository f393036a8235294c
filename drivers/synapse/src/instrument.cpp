#include "ion/synapse/instrument.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "ion/synapse/tspcm.h"

namespace ion::synapse {
namespace {

constexpr size_t kMaxLine = 256;  // longer replies or commands are refused, not buffered

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    const size_t j = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') ++i;
    if (i > j) out.push_back(s.substr(j, i - j));
  }
  return out;
}

template <class T>
bool parse(std::string_view s, T& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string format_op(const InstrumentOp& op) {
  char buf[kMaxLine];
  if (op.kind == InstrumentOp::Kind::read) {
    std::snprintf(buf, sizeof buf, "READ %u %u\n", op.cell.wordline, op.cell.bitline);
  } else {
    std::snprintf(buf, sizeof buf, "PULSE %u %u %.6g %lld\n", op.cell.wordline, op.cell.bitline,
                  op.volts, static_cast<long long>(std::llround(op.width_s * 1e9)));
  }
  return buf;
}

bool write_all(int fd, std::string_view s) noexcept {
  while (!s.empty()) {
    const ssize_t k = ::write(fd, s.data(), s.size());
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    s.remove_prefix(static_cast<size_t>(k));
  }
  return true;
}

}  // namespace

// --- Crossbar ---------------------------------------------------------------------------------

Crossbar::Crossbar(const CrossbarOptions& o)
    : wordlines_(o.wordlines), bitlines_(o.bitlines), read_rng_(o.device.seed ^ 0x5eadULL) {
  if (o.wordlines == 0 || o.bitlines == 0 || o.wordlines > 4096 || o.bitlines > 4096) {
    throw std::invalid_argument("crossbar wordlines and bitlines must be in 1..4096");
  }
  o.device.validate();
  const uint32_t n = o.wordlines * o.bitlines;
  cells_.reserve(n);
  c2c_rng_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    cells_.push_back(make_device(o.device, i));
    c2c_rng_.emplace_back(o.device.seed * 0x9e3779b97f4a7c15ULL + i + 1);
  }
}

void Crossbar::pulse(CellAddress c, double volts, double width_s, int64_t t_ns) noexcept {
  const uint32_t i = index(c);
  cells_[i]->pulse(volts, width_s, t_ns, c2c_rng_[i]);
}

bool Crossbar::drive(CellAddress c, double current_a, int64_t t_start_ns, int64_t t_end_ns,
                     std::vector<int64_t>& spikes) noexcept {
  if (!contains(c)) return false;
  const uint32_t i = index(c);
  auto* cell = dynamic_cast<TsPcmCell*>(cells_[i].get());
  return cell != nullptr && cell->drive(current_a, t_start_ns, t_end_ns, c2c_rng_[i], spikes);
}

double Crossbar::read_ohm(CellAddress c, int64_t t_ns) noexcept {
  return cells_[index(c)]->read_ohm(t_ns, read_rng_);
}

double Crossbar::resistance_ohm(CellAddress c, int64_t t_ns) const noexcept {
  return cells_[index(c)]->resistance_ohm(t_ns);
}

// --- EmulatedInstrument -----------------------------------------------------------------------

EmulatedInstrument::EmulatedInstrument(const CrossbarOptions& crossbar, InstrumentTiming timing)
    : crossbar_(crossbar), timing_(timing) {}

EmulatedInstrument::~EmulatedInstrument() { stop(); }

void EmulatedInstrument::start(TimeSource now, Completion done) {
  now_ = std::move(now);
  done_ = std::move(done);
  thread_ = std::thread([this] { loop(); });
}

bool EmulatedInstrument::submit(const InstrumentOp& op) noexcept {
  if (!crossbar_.contains(op.cell)) return false;
  {
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= timing_.queue_capacity) return false;
    queue_.push_back(op);
  }
  cv_.notify_one();
  return true;
}

void EmulatedInstrument::loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const InstrumentOp op = queue_.front();
    // The operation occupies the instrument for its duration; it takes effect at the end.
    const auto busy = op.kind == InstrumentOp::Kind::pulse ? timing_.pulse_time : timing_.read_time;
    if (cv_.wait_for(lock, busy, [&] { return stop_; })) return;
    queue_.pop_front();
    InstrumentResult r;
    r.op = op;
    r.ok = true;
    r.done_ns = now_();
    if (op.kind == InstrumentOp::Kind::pulse) {
      crossbar_.pulse(op.cell, op.volts, op.width_s, r.done_ns);
      pulses_.fetch_add(1);
    } else {
      r.r_ohm = crossbar_.read_ohm(op.cell, r.done_ns);
      reads_.fetch_add(1);
    }
    lock.unlock();
    done_(r);
    lock.lock();
  }
}

void EmulatedInstrument::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t EmulatedInstrument::queued() const noexcept {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::map<std::string, int64_t> EmulatedInstrument::counters() const {
  return {{"instrument_pulses", static_cast<int64_t>(pulses_.load())},
          {"instrument_reads", static_cast<int64_t>(reads_.load())},
          {"instrument_queued", static_cast<int64_t>(queued())}};
}

bool EmulatedInstrument::drive(CellAddress c, double current_a, int64_t t_start_ns,
                               int64_t t_end_ns, std::vector<int64_t>& spikes) noexcept {
  std::lock_guard lock(mu_);  // the loop holds it only while an operation takes effect
  return crossbar_.drive(c, current_a, t_start_ns, t_end_ns, spikes);
}

double EmulatedInstrument::true_resistance_ohm(CellAddress c, int64_t t_ns) const {
  std::lock_guard lock(mu_);
  return crossbar_.resistance_ohm(c, t_ns);
}

// --- LineInstrument ---------------------------------------------------------------------------

namespace {

int open_tcp(const std::string& hostport, std::string& why) {
  const size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    why = "expected host:port, got '" + hostport + "'";
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string host = hostport.substr(0, colon);
  const std::string port = hostport.substr(colon + 1);
  if (const int e = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); e != 0) {
    why = std::string("cannot resolve ") + hostport + ": " + gai_strerror(e);
    return -1;
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool ok = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  ::freeaddrinfo(res);
  if (!ok) {
    why = "cannot connect to " + hostport + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

speed_t baud_constant(uint32_t baud) {
  switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return B0;
  }
}

int open_serial(const std::string& path, uint32_t baud, std::string& why) {
  const speed_t speed = baud_constant(baud);
  if (speed == B0) {
    why = "unsupported baud rate " + std::to_string(baud);
    return -1;
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    why = "cannot open serial port " + path + ": " + std::strerror(errno);
    return -1;
  }
  termios t{};
  if (::tcgetattr(fd, &t) != 0) {
    why = path + " is not a serial port: " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  ::cfmakeraw(&t);  // 8N1, no echo, no line editing: the protocol's bytes pass unchanged
  ::cfsetispeed(&t, speed);
  ::cfsetospeed(&t, speed);
  t.c_cflag |= CLOCAL | CREAD;
  ::tcsetattr(fd, TCSANOW, &t);
  return fd;
}

}  // namespace

LineInstrument::LineInstrument(LineInstrumentOptions o) : o_(std::move(o)) {
  if (o_.tcp.empty() == o_.serial.empty()) {
    throw std::invalid_argument("instrument: give exactly one of tcp (host:port) or serial (path)");
  }
  std::string why;
  fd_ = o_.tcp.empty() ? open_serial(o_.serial, o_.baud, why) : open_tcp(o_.tcp, why);
  if (fd_ < 0) throw std::runtime_error("instrument: " + why);
}

LineInstrument::~LineInstrument() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

void LineInstrument::start(TimeSource now, Completion done) {
  now_ = std::move(now);
  done_ = std::move(done);
  thread_ = std::thread([this] { loop(); });
}

bool LineInstrument::submit(const InstrumentOp& op) noexcept {
  {
    std::lock_guard lock(mu_);
    if (stop_ || queue_.size() >= o_.queue_capacity) return false;
    queue_.push_back(op);
  }
  cv_.notify_one();
  return true;
}

bool LineInstrument::reopen() noexcept {
  if (fd_ >= 0) ::close(fd_);
  inbuf_.clear();
  std::string why;
  fd_ = o_.tcp.empty() ? open_serial(o_.serial, o_.baud, why) : open_tcp(o_.tcp, why);
  reconnects_.fetch_add(1);
  return fd_ >= 0;
}

std::string LineInstrument::transact(const std::string& line) noexcept {
  if (fd_ < 0 && !reopen()) return {};
  if (!write_all(fd_, line)) {
    ::close(fd_);
    fd_ = -1;
    return {};
  }
  const int64_t deadline = steady_ns() + std::chrono::nanoseconds(o_.reply_timeout).count();
  while (true) {
    if (const size_t nl = inbuf_.find('\n'); nl != std::string::npos) {
      std::string reply = inbuf_.substr(0, nl);
      inbuf_.erase(0, nl + 1);
      return reply;
    }
    if (inbuf_.size() > kMaxLine) {  // garbage without a newline: resynchronise
      inbuf_.clear();
      bad_replies_.fetch_add(1);
    }
    const int64_t left_ms = (deadline - steady_ns()) / 1'000'000;
    if (left_ms <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    const int k = ::poll(&p, 1, static_cast<int>(left_ms));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    char buf[512];
    const ssize_t got = ::read(fd_, buf, sizeof buf);
    if (got <= 0) {
      ::close(fd_);
      fd_ = -1;
      return {};
    }
    inbuf_.append(buf, static_cast<size_t>(got));
  }
  timeouts_.fetch_add(1);
  // A late reply would be taken for the next command's: start the link afresh.
  ::close(fd_);
  fd_ = -1;
  return {};
}

void LineInstrument::loop() {
  while (true) {
    InstrumentOp op;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      op = queue_.front();
      queue_.pop_front();
    }
    const std::string reply = transact(format_op(op));
    InstrumentResult r;
    r.op = op;
    r.done_ns = now_();
    const auto f = split(reply);
    uint32_t wl = 0;
    uint32_t bl = 0;
    const bool same_cell = f.size() >= 3 && parse(f[1], wl) && parse(f[2], bl) &&
                           wl == op.cell.wordline && bl == op.cell.bitline;
    if (reply.empty()) {
      errors_.fetch_add(1);
    } else if (!f.empty() && f[0] == "ERR") {
      errors_.fetch_add(1);
    } else if (op.kind == InstrumentOp::Kind::read && f.size() == 4 && f[0] == "R" && same_cell &&
               parse(f[3], r.r_ohm) && r.r_ohm > 0) {
      r.ok = true;
      reads_.fetch_add(1);
    } else if (op.kind == InstrumentOp::Kind::pulse && f.size() == 3 && f[0] == "P" && same_cell) {
      r.ok = true;
      pulses_.fetch_add(1);
    } else {
      bad_replies_.fetch_add(1);
    }
    done_(r);
  }
}

void LineInstrument::stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t LineInstrument::queued() const noexcept {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::map<std::string, int64_t> LineInstrument::counters() const {
  auto v = [](const std::atomic<uint64_t>& a) { return static_cast<int64_t>(a.load()); };
  return {{"instrument_pulses", v(pulses_)},         {"instrument_reads", v(reads_)},
          {"instrument_timeouts", v(timeouts_)},     {"instrument_bad_replies", v(bad_replies_)},
          {"instrument_errors", v(errors_)},         {"instrument_reconnects", v(reconnects_)},
          {"instrument_queued", static_cast<int64_t>(queued())}};
}

// --- InstrumentServer -------------------------------------------------------------------------

InstrumentServer::InstrumentServer(const CrossbarOptions& crossbar, Transport transport,
                                   uint16_t port)
    : crossbar_(crossbar), transport_(transport) {
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("instrument server: pipe failed");
  if (transport == Transport::tcp) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error(std::string("instrument server: cannot listen: ") + std::strerror(errno));
    }
    port_ = ntohs(a.sin_port);
  } else {
    pty_master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pty_master_ < 0 || ::grantpt(pty_master_) != 0 || ::unlockpt(pty_master_) != 0) {
      throw std::runtime_error("instrument server: no pseudo-terminal");
    }
    pty_path_ = ::ptsname(pty_master_);
    // Raw mode on the line discipline before any client opens it, so nothing is echoed back.
    const int slave = ::open(pty_path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave >= 0) {
      termios t{};
      ::tcgetattr(slave, &t);
      ::cfmakeraw(&t);
      ::tcsetattr(slave, TCSANOW, &t);
      ::close(slave);
    }
    termios m{};
    ::tcgetattr(pty_master_, &m);
    ::cfmakeraw(&m);
    ::tcsetattr(pty_master_, TCSANOW, &m);
  }
  thread_ = std::thread([this] { serve(); });
}

InstrumentServer::~InstrumentServer() {
  (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (const int fd : {listen_fd_, pty_master_, wake_[0], wake_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

double InstrumentServer::true_resistance_ohm(CellAddress c) const {
  std::lock_guard lock(mu_);
  return crossbar_.resistance_ohm(c, steady_ns());
}

std::string InstrumentServer::answer(const std::string& line) {
  commands_.fetch_add(1);
  const auto f = split(line);
  uint32_t wl = 0;
  uint32_t bl = 0;
  auto err = [&](const char* what) {
    errors_.fetch_add(1);
    return std::string("ERR ") + what + "\n";
  };
  if (f.size() < 3 || !parse(f[1], wl) || !parse(f[2], bl)) return err("expected READ|PULSE <wl> <bl> ...");
  const CellAddress c{wl, bl};
  if (!crossbar_.contains(c)) return err("cell outside the array");
  std::lock_guard lock(mu_);
  if (f[0] == "READ" && f.size() == 3) {
    char buf[kMaxLine];
    std::snprintf(buf, sizeof buf, "R %u %u %.9g\n", wl, bl, crossbar_.read_ohm(c, steady_ns()));
    return buf;
  }
  double volts = 0;
  int64_t width_ns = 0;
  if (f[0] == "PULSE" && f.size() == 5 && parse(f[3], volts) && parse(f[4], width_ns) &&
      width_ns > 0 && std::fabs(volts) <= 20) {
    crossbar_.pulse(c, volts, static_cast<double>(width_ns) * 1e-9, steady_ns());
    return "P " + std::to_string(wl) + " " + std::to_string(bl) + "\n";
  }
  return err("bad command");
}

void InstrumentServer::serve_fd(int fd) {
  std::string buf;
  while (true) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    char chunk[512];
    const ssize_t k = ::read(fd, chunk, sizeof chunk);
    if (k <= 0) {
      if (transport_ == Transport::pty && k < 0 && errno == EIO) {
        // No client has the terminal open right now: wait for one.
        pollfd w{wake_[0], POLLIN, 0};
        if (::poll(&w, 1, 20) > 0) return;
        continue;
      }
      return;
    }
    buf.append(chunk, static_cast<size_t>(k));
    size_t nl = 0;
    while ((nl = buf.find('\n')) != std::string::npos) {
      const std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!write_all(fd, answer(line))) return;
    }
    if (buf.size() > kMaxLine) {
      buf.clear();
      if (!write_all(fd, "ERR line too long\n")) return;
      errors_.fetch_add(1);
    }
  }
}

void InstrumentServer::serve() {
  if (transport_ == Transport::pty) {
    serve_fd(pty_master_);
    return;
  }
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve_fd(fd);
    ::close(fd);
    pollfd w{wake_[0], POLLIN, 0};
    if (::poll(&w, 1, 0) > 0) return;
  }
}

}  // namespace ion::synapse
