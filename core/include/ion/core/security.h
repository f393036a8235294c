#pragma once
// CurveZMQ keys and the broker's authenticator. Every link to a broker reachable from outside the
// machine is encrypted and authenticated: the broker has a key pair, each node has one, and the
// broker admits only the public keys on its allowlist. The name an allowlist gives a key is the
// node's identity (ZAP User-Id); a node cannot claim another name in its Hello.
//
// Files (docs/security.md): `NAME.key` holds the name and both halves of the pair, mode 0600;
// `NAME.pub` holds the one line `NAME PUBLICKEY`; an allowlist is such lines (several files'
// lines concatenated), `#` comments allowed. Keys are Z85 text, 40 characters.
#include <zmq.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ion/core/counter.h"
#include "ion/core/log.h"

namespace ion {

class SecurityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CurveKeyPair {
  std::string name;
  std::string public_z85;
  std::string secret_z85;
};

// What a client socket needs: its own pair and the server's public key.
struct CurveClientKeys {
  std::string public_z85;
  std::string secret_z85;
  std::string server_public_z85;
  std::string name;  // the name the key file gives (the broker goes by its allowlist's)
};

// Whether this libzmq was built with CURVE (Debian's is, with libsodium).
[[nodiscard]] bool curve_available() noexcept;
// Throws SecurityError when CURVE is not available.
void require_curve(std::string_view who);

[[nodiscard]] bool valid_key_name(std::string_view name) noexcept;  // [A-Za-z0-9._-]{1,64}
[[nodiscard]] bool valid_z85_key(std::string_view key) noexcept;    // 40 Z85 characters

// A fresh key pair from libsodium's random source. Throws SecurityError.
[[nodiscard]] CurveKeyPair generate_keypair(const std::string& name);

struct KeyFiles {
  std::string secret_path;
  std::string public_path;
};
// Writes DIR/NAME.key (created with mode 0600 before anything is written) and DIR/NAME.pub.
// Refuses to replace existing files unless `overwrite`. Throws SecurityError.
KeyFiles write_keypair(const CurveKeyPair& pair, const std::string& dir, bool overwrite = false);
// The allowlist line for a public key: "NAME KEY".
[[nodiscard]] std::string allowlist_line(const CurveKeyPair& pair);

// Reads a secret key file; refuses one that group or others may read, and one whose halves do not
// belong together. Throws SecurityError naming the file (never the key).
[[nodiscard]] CurveKeyPair load_secret_key(const std::string& path);
// A public key given as a `.pub` file or as the 40-character key itself.
[[nodiscard]] std::string load_public_key(const std::string& path_or_key);
// A client's keys: its secret key file, and the broker's public key (file or key).
[[nodiscard]] CurveClientKeys load_client_keys(const std::string& secret_key_file,
                                               const std::string& broker_key);
// The same from the command line's `--key FILE --broker-key FILE|KEY`: both or neither (none:
// plaintext). Throws SecurityError.
[[nodiscard]] std::optional<CurveClientKeys> client_keys(const std::string& key_file,
                                                         const std::string& broker_key);

// Public key -> name: the nodes a broker admits.
class Allowlist {
 public:
  // Throws SecurityError with file:line for a malformed line or a key listed twice.
  static Allowlist load_file(const std::string& path);
  static Allowlist parse(std::string_view text, const std::string& where);
  void add(const std::string& name, const std::string& public_z85);
  [[nodiscard]] bool has_name(const std::string& name) const noexcept;

  // The name for a binary public key (32 bytes), or nullptr.
  [[nodiscard]] const std::string* find(std::string_view key_bytes) const noexcept;
  [[nodiscard]] size_t size() const noexcept { return by_key_.size(); }

 private:
  std::unordered_map<std::string, std::string> by_key_;  // 32 key bytes -> name
};

// Why connections were refused before they could send anything (counted, never only logged).
struct AuthStats {
  uint64_t accepted = 0;           // handshakes that passed ZAP
  uint64_t unknown_key = 0;        // a client key not on the allowlist
  uint64_t plaintext_refused = 0;  // a client without CURVE (mechanism mismatch)
  uint64_t crypto_failed = 0;      // boxes that did not open: wrong server key, tampering
  uint64_t other_failed = 0;       // any other handshake failure
  uint64_t disconnects = 0;        // connections dropped (oversized frame, peer gone, ...)
  uint64_t reloads = 0;            // allowlist reloads that took effect
  uint64_t reload_failures = 0;    // reloads refused (the old list stays)
  uint64_t allowed_keys = 0;
};

// The ZAP handler (RFC 27) of one ZeroMQ context plus a monitor of the server socket's
// handshakes. It binds inproc://zeromq.zap.01 in its constructor, so make it before `server`
// binds: then no handshake can happen without it (Debian's libzmq 4.3 admits any key when no
// handler is bound). Serves requests on its own thread.
class ZapAuthenticator {
 public:
  ZapAuthenticator(zmq::context_t& ctx, zmq::socket_t& server, Allowlist allowlist,
                   std::string allowlist_path);
  ~ZapAuthenticator();
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

  // Async-signal-safe: the allowlist file is read again on the handler's thread. A file that does
  // not load leaves the old list in force (logged and counted).
  void request_reload() noexcept;
  // Increments each time a reload took effect (the broker then re-checks registered nodes).
  [[nodiscard]] uint64_t generation() const noexcept { return generation_.load(); }
  // Whether any key for `name` is still listed. A connection is bound to its name, not its key,
  // so after a reload the broker cuts off the registered nodes whose name is gone.
  [[nodiscard]] bool name_allowed(const std::string& name) const;
  [[nodiscard]] AuthStats stats() const noexcept;

 private:
  void serve() noexcept;
  void answer(zmq::socket_t& zap) noexcept;
  void on_monitor_event() noexcept;
  void reload() noexcept;
  void log_refusal(const std::string& from, const std::string& why) noexcept;

  zmq::socket_t zap_;
  zmq::socket_t monitor_;
  std::string allowlist_path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Allowlist> allowlist_;
  std::atomic<bool> reload_requested_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  LogLimiter refusal_log_;
  Counter accepted_, unknown_key_, plaintext_, crypto_, other_, disconnects_, reloads_,
      reload_failures_;
  std::thread thread_;
};

// Whether an endpoint can only be reached from this machine (loopback TCP, ipc, inproc).
[[nodiscard]] bool local_only_endpoint(std::string_view endpoint) noexcept;

}  // namespace ion
