#include "ion/core/security.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ion/core/log.h"

namespace ion {

namespace {

constexpr size_t kZ85KeyChars = 40;
constexpr size_t kKeyBytes = 32;
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string key_bytes_of(const std::string& z85) {
  std::array<uint8_t, kKeyBytes> raw{};
  if (!valid_z85_key(z85) || zmq_z85_decode(raw.data(), z85.c_str()) == nullptr) {
    throw SecurityError("not a CURVE key (40 Z85 characters)");
  }
  return {reinterpret_cast<const char*>(raw.data()), raw.size()};
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// Calls `f(line_no, line)` for each line of a key file that is not blank or a `#` comment,
// trimmed; stops early when `f` returns false.
template <class F>
void for_each_entry(std::string_view text, F&& f) {
  std::istringstream in{std::string(text)};
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    if (!f(line_no, t)) return;
  }
}

// Splits "a b" on the first run of blanks; false unless exactly two fields.
bool two_fields(const std::string& line, std::string& a, std::string& b) {
  std::istringstream in(line);
  std::string extra;
  return static_cast<bool>(in >> a >> b) && !(in >> extra);
}

std::string read_small_file(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw SecurityError("cannot read " + std::string(what) + " '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1u << 20)) throw SecurityError(std::string(what) + " '" + path + "' is larger than 1 MiB");
  return ss.str();
}

void write_all(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw SecurityError("cannot write '" + path + "': " + why);
    }
    done += static_cast<size_t>(n);
  }
}

void write_file(const std::string& path, const std::string& text, mode_t mode, bool overwrite) {
  // The mode is set at creation, so the secret is never readable by others even for a moment.
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      throw SecurityError("'" + path + "' exists; not replacing a key (pass --force to replace it)");
    }
    throw SecurityError("cannot create '" + path + "': " + std::strerror(errno));
  }
  if (overwrite && ::fchmod(fd, mode) != 0) {
    ::close(fd);
    throw SecurityError("cannot set the mode of '" + path + "': " + std::strerror(errno));
  }
  write_all(fd, text, path);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    throw SecurityError("cannot write '" + path + "': " + std::strerror(errno));
  }
}

}  // namespace

bool curve_available() noexcept { return zmq_has("curve") != 0; }

void require_curve(std::string_view who) {
  if (!curve_available()) {
    throw SecurityError(std::string(who) +
                        ": this libzmq was built without CURVE (libsodium); encrypted links are "
                        "impossible. Install Debian's libzmq5, which has it.");
  }
}

bool valid_key_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_z85_key(std::string_view key) noexcept {
  if (key.size() != kZ85KeyChars) return false;
  for (const char c : key) {
    if (kZ85Alphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

CurveKeyPair generate_keypair(const std::string& name) {
  require_curve("ion keygen");
  if (!valid_key_name(name)) {
    throw SecurityError("key name '" + name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
  }
  std::array<char, kZ85KeyChars + 1> pub{};
  std::array<char, kZ85KeyChars + 1> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw SecurityError(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  CurveKeyPair p{name, pub.data(), sec.data()};
  sec.fill(0);
  return p;
}

std::string allowlist_line(const CurveKeyPair& pair) { return pair.name + " " + pair.public_z85; }

KeyFiles write_keypair(const CurveKeyPair& pair, const std::string& dir, bool overwrite) {
  KeyFiles f{dir + "/" + pair.name + ".key", dir + "/" + pair.name + ".pub"};
  write_file(f.secret_path,
             "# IoN CURVE secret key of '" + pair.name +
                 "'. Keep it private: whoever holds it can act as " + pair.name + ".\n"
                 "name " + pair.name + "\npublic " + pair.public_z85 + "\nsecret " +
                 pair.secret_z85 + "\n",
             0600, overwrite);
  write_file(f.public_path, allowlist_line(pair) + "\n", 0644, overwrite);
  return f;
}

CurveKeyPair load_secret_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw SecurityError("secret key '" + path + "': " + std::strerror(errno) +
                        " (make one with `ion keygen NAME`)");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw SecurityError("secret key '" + path + "' has mode " + mode +
                        ": others may read it. Run: chmod 600 '" + path + "'");
  }
  const std::string text = read_small_file(path, "secret key");
  CurveKeyPair p;
  for_each_entry(text, [&](int line_no, const std::string& t) {
    std::string k;
    std::string v;
    if (!two_fields(t, k, v) || (k != "name" && k != "public" && k != "secret")) {
      throw SecurityError(path + ":" + std::to_string(line_no) +
                          ": expected 'name NAME', 'public KEY' or 'secret KEY'");
    }
    (k == "name" ? p.name : k == "public" ? p.public_z85 : p.secret_z85) = v;
    return true;
  });
  if (!valid_key_name(p.name) || !valid_z85_key(p.public_z85) || !valid_z85_key(p.secret_z85)) {
    throw SecurityError("secret key '" + path +
                        "' is incomplete or damaged: it needs a name, a public and a secret key "
                        "(as `ion keygen` writes them)");
  }
  std::array<char, kZ85KeyChars + 1> derived{};
  if (zmq_curve_public(derived.data(), p.secret_z85.c_str()) != 0 ||
      p.public_z85 != derived.data()) {
    throw SecurityError("secret key '" + path + "': its public and secret halves do not belong together");
  }
  return p;
}

std::string load_public_key(const std::string& path_or_key) {
  struct stat st {};
  if (valid_z85_key(path_or_key) && ::stat(path_or_key.c_str(), &st) != 0) return path_or_key;
  std::string found;
  for_each_entry(read_small_file(path_or_key, "public key"), [&](int, const std::string& t) {
    std::string name;
    std::string key;
    if (two_fields(t, name, key) && valid_z85_key(key)) found = key;
    if (valid_z85_key(t)) found = t;
    return false;  // the first entry decides
  });
  if (!found.empty()) return found;
  throw SecurityError("public key '" + path_or_key +
                      "': expected a line 'NAME KEY' (as `ion keygen` writes NAME.pub) or the "
                      "40-character key");
}

CurveClientKeys load_client_keys(const std::string& secret_key_file, const std::string& broker_key) {
  require_curve("ion");
  CurveKeyPair mine = load_secret_key(secret_key_file);
  return {std::move(mine.public_z85), std::move(mine.secret_z85), load_public_key(broker_key),
          std::move(mine.name)};
}

std::optional<CurveClientKeys> client_keys(const std::string& key_file, const std::string& broker_key) {
  if (key_file.empty() && broker_key.empty()) return std::nullopt;
  if (key_file.empty() || broker_key.empty()) {
    throw SecurityError("--key and --broker-key go together: this peer's secret key file and the "
                        "broker's public key");
  }
  return load_client_keys(key_file, broker_key);
}

Allowlist Allowlist::parse(std::string_view text, const std::string& where) {
  Allowlist a;
  for_each_entry(text, [&](int line_no, const std::string& t) {
    const std::string at = where + ":" + std::to_string(line_no) + ": ";
    std::string name;
    std::string key;
    if (!two_fields(t, name, key)) throw SecurityError(at + "expected 'NAME PUBLICKEY'");
    if (!valid_key_name(name)) throw SecurityError(at + "name '" + name + "': use 1 to 64 of A-Z a-z 0-9 . _ -");
    if (!valid_z85_key(key)) throw SecurityError(at + "the key for '" + name + "' is not 40 Z85 characters");
    const std::string bytes = key_bytes_of(key);
    if (const std::string* other = a.find(bytes)) {
      throw SecurityError(at + "this key is already listed for '" + *other + "'");
    }
    a.by_key_.emplace(bytes, name);
    return true;
  });
  return a;
}

Allowlist Allowlist::load_file(const std::string& path) {
  return parse(read_small_file(path, "allowlist"), path);
}

void Allowlist::add(const std::string& name, const std::string& public_z85) {
  if (!valid_key_name(name)) throw SecurityError("allowlist: bad name '" + name + "'");
  by_key_[key_bytes_of(public_z85)] = name;
}

bool Allowlist::has_name(const std::string& name) const noexcept {
  for (const auto& [key, n] : by_key_) {
    if (n == name) return true;
  }
  return false;
}

const std::string* Allowlist::find(std::string_view key_bytes) const noexcept {
  const auto it = by_key_.find(std::string(key_bytes));
  return it == by_key_.end() ? nullptr : &it->second;
}

ZapAuthenticator::ZapAuthenticator(zmq::context_t& ctx, zmq::socket_t& server, Allowlist allowlist,
                                   std::string allowlist_path)
    : zap_(ctx, zmq::socket_type::rep),
      monitor_(ctx, zmq::socket_type::pair),
      allowlist_path_(std::move(allowlist_path)),
      allowlist_(std::make_shared<const Allowlist>(std::move(allowlist))) {
  zap_.set(zmq::sockopt::linger, 0);
  try {
    zap_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    throw SecurityError(std::string("cannot install the authenticator (ZAP): ") + e.what());
  }
  // A unique name per authenticator: several brokers may share a process (tests, demo).
  static std::atomic<uint64_t> instances{0};
  const std::string ep = "inproc://ion-auth-monitor-" + std::to_string(instances.fetch_add(1));
  const int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                     ZMQ_EVENT_DISCONNECTED;
  if (zmq_socket_monitor(server.handle(), ep.c_str(), events) != 0) {
    throw SecurityError(std::string("cannot monitor handshakes: ") + zmq_strerror(zmq_errno()));
  }
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(ep);
  thread_ = std::thread([this] { serve(); });
}

ZapAuthenticator::~ZapAuthenticator() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ZapAuthenticator::request_reload() noexcept { reload_requested_.store(true); }

bool ZapAuthenticator::name_allowed(const std::string& name) const {
  std::lock_guard lock(mu_);
  return allowlist_->has_name(name);
}

AuthStats ZapAuthenticator::stats() const noexcept {
  AuthStats s;
  s.accepted = accepted_.get();
  s.unknown_key = unknown_key_.get();
  s.plaintext_refused = plaintext_.get();
  s.crypto_failed = crypto_.get();
  s.other_failed = other_.get();
  s.disconnects = disconnects_.get();
  s.reloads = reloads_.get();
  s.reload_failures = reload_failures_.get();
  std::lock_guard lock(mu_);
  s.allowed_keys = allowlist_->size();
  return s;
}

void ZapAuthenticator::serve() noexcept {
  pthread_setname_np(pthread_self(), "ion-auth");
  while (!stop_.load()) {
    zmq_pollitem_t items[2] = {{zap_.handle(), 0, ZMQ_POLLIN, 0},
                               {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
    const int n = zmq_poll(items, 2, 100);  // the timeout bounds how late stop and reload are seen
    if (reload_requested_.exchange(false)) reload();
    if (n <= 0) continue;
    if ((items[0].revents & ZMQ_POLLIN) != 0) answer(zap_);
    if ((items[1].revents & ZMQ_POLLIN) != 0) on_monitor_event();
  }
  zap_.close();
  monitor_.close();
}

void ZapAuthenticator::answer(zmq::socket_t& zap) noexcept {
  // RFC 27: version, request id, domain, address, routing id, mechanism, credentials...
  std::vector<zmq::message_t> req;
  try {
    while (true) {
      zmq::message_t m;
      if (!zap.recv(m, zmq::recv_flags::dontwait)) break;
      const bool more = m.more();
      if (req.size() < 16) req.push_back(std::move(m));
      if (!more) break;
    }
  } catch (const zmq::error_t&) {
    return;
  }
  if (req.size() < 2) return;  // cannot even answer; libzmq times the handshake out
  std::string status = "400";
  std::string text = "malformed ZAP request";
  std::string user;
  if (req.size() >= 7 && req[0].to_string_view() == "1.0") {
    const std::string_view mechanism = req[5].to_string_view();
    if (mechanism == "CURVE" && req[6].size() == kKeyBytes) {
      std::shared_ptr<const Allowlist> list;
      {
        std::lock_guard lock(mu_);
        list = allowlist_;
      }
      if (const std::string* name = list->find(req[6].to_string_view())) {
        status = "200";
        text = "OK";
        user = *name;
        accepted_.add();
      } else {
        text = "key not on the allowlist";
        unknown_key_.add();
        log_refusal(req[3].to_string(), "its key is not on the allowlist");
      }
    } else {
      text = "CURVE required";
      plaintext_.add();
    }
  }
  try {
    zap.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
    zap.send(req[1], zmq::send_flags::sndmore);
    zap.send(zmq::buffer(status), zmq::send_flags::sndmore);
    zap.send(zmq::buffer(text), zmq::send_flags::sndmore);
    zap.send(zmq::buffer(user), zmq::send_flags::sndmore);
    zap.send(zmq::message_t(), zmq::send_flags::none);
  } catch (const zmq::error_t&) {
  }
}

void ZapAuthenticator::on_monitor_event() noexcept {
  try {
    zmq::message_t head;
    zmq::message_t addr;
    if (!monitor_.recv(head, zmq::recv_flags::dontwait)) return;
    if (head.more()) (void)monitor_.recv(addr, zmq::recv_flags::dontwait);
    if (head.size() < 6) return;
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    switch (event) {
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
          plaintext_.add();
          log_refusal(addr.to_string(), "it does not use CURVE");
        } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
          crypto_.add();
          log_refusal(addr.to_string(), "its handshake did not decrypt (a wrong broker key?)");
        } else {
          other_.add();
          log_refusal(addr.to_string(), fmt::format("ZMTP protocol error {:#x}", value));
        }
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // E.g. a plaintext peer that hung up before the mechanism mismatch was read.
        other_.add();
        log_refusal(addr.to_string(), fmt::format("handshake failed ({})", std::strerror(static_cast<int>(value))));
        break;
      case ZMQ_EVENT_DISCONNECTED: disconnects_.add(); break;
      default: break;  // SUCCEEDED, and FAILED_AUTH (counted by answer())
    }
  } catch (const zmq::error_t&) {
  }
}

void ZapAuthenticator::log_refusal(const std::string& from, const std::string& why) noexcept {
  // A peer retrying every 100 ms must not flood the log: one line per second, with a count.
  uint64_t suppressed = 0;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (refusal_log_.allow(now, suppressed)) {
    spdlog::warn("refused a connection from {}: {} ({} more refusals since the last line)", from,
                 why, suppressed);
  }
}

void ZapAuthenticator::reload() noexcept {
  try {
    auto fresh = std::make_shared<const Allowlist>(Allowlist::load_file(allowlist_path_));
    if (fresh->size() == 0) throw SecurityError("'" + allowlist_path_ + "' lists no keys");
    const size_t n = fresh->size();
    {
      std::lock_guard lock(mu_);
      allowlist_ = std::move(fresh);
    }
    reloads_.add();
    generation_.fetch_add(1);
    spdlog::info("allowlist reloaded from '{}': {} keys", allowlist_path_, n);
  } catch (const std::exception& e) {
    reload_failures_.add();
    spdlog::error("allowlist not reloaded, the previous one stays in force: {}", e.what());
  }
}

bool local_only_endpoint(std::string_view ep) noexcept {
  if (ep.starts_with("ipc://") || ep.starts_with("inproc://")) return true;
  if (!ep.starts_with("tcp://")) return false;
  std::string_view host = ep.substr(6);
  const auto colon = host.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = host.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  // 127.0.0.0/8, written as a dotted quad: nothing else is loopback for certain.
  if (!host.starts_with("127.")) return false;
  int dots = 0;
  for (const char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

}  // namespace ion
