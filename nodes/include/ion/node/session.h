#pragma once
// The broker session of a participant (a node, a recorder): connect with backoff, Hello, Welcome
// and refusals, the wait for a name a silent holder may release, clock probe bursts, heartbeats,
// liveness, broker restarts, stalls of the owner's loop, and the diagnosis of no answer and of
// failed handshakes. One implementation for every participant, stepped with explicit times: its
// connection is a SessionLink (a ZeroMQ dealer in the daemons, DealerLink; a recording in unit
// tests) and what it learns goes to a SessionOwner. Owned by one thread (the owner's loop).
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "ion/core/clock.h"
#include "ion/core/clock_sync.h"
#include "ion/core/codec.h"
#include "ion/core/handshake.h"
#include "ion/core/log.h"

namespace ion {

// Why the broker (or the connection to it) did not let a participant in.
enum class RefusalKind : uint8_t {
  none,
  not_in_topology,      // the broker's topology has no node of this name
  declared_sizes,       // more output channels or fewer input ports than the topology says
  not_authorized,       // the key is not allowed this name, or left the allowlist
  version,              // the broker speaks another protocol version
  too_many_nodes,
  encryption_mismatch,  // one side uses CURVE, the other plaintext
  key_refused,          // CURVE: the broker's authenticator refused this node's key
  handshake_failed,     // CURVE: the handshake did not decrypt (a wrong broker key?)
  name_in_use,          // another live process holds this name (or took it over with replace)
  other,
};
[[nodiscard]] const char* to_string(RefusalKind kind) noexcept;

struct Refusal {
  RefusalKind kind = RefusalKind::none;
  std::string reason;  // the broker's own words where it gave some, else what the link showed
};

struct SessionOptions {
  std::string broker;  // the endpoint, for messages
  std::string who;     // how log lines and refusals name the participant: "node 'gen'"
  std::string broker_setting = "node.broker";  // where the user set the endpoint (for hints)
  bool curve = false;  // the link uses CURVE (changes what a failed handshake means)
  std::chrono::milliseconds heartbeat_interval{500};  // until the Welcome gives the broker's
  std::chrono::milliseconds broker_timeout{3000};     // until the Welcome gives the broker's
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  uint32_t probe_burst = 8;                        // clock probes per burst
  std::chrono::milliseconds resync_interval{10000};  // between bursts, after the first three
  uint64_t seed = 0;                               // reconnect jitter (0: random)
};

// The connection under the session. Not thread-safe: the session's thread only.
class SessionLink {
 public:
  virtual ~SessionLink() = default;
  // A fresh connection; false if it could not be made (said why; the session retries later).
  virtual bool open() noexcept = 0;
  virtual void close() noexcept = 0;
  // Closes, letting frames already handed to the link go out for at most `linger` (a node that
  // stops sends its last batches and its Goodbye; a plain close() discards them).
  virtual void close_flushing(std::chrono::milliseconds /*linger*/) noexcept { close(); }
  [[nodiscard]] virtual bool is_open() const noexcept = 0;
  // False if the frame could not be queued (no connection yet, or the link is full).
  virtual bool send(const std::string& frame) noexcept = 0;
  // Whether a connection is up now: tells "nothing listens there" from "no answer".
  [[nodiscard]] virtual bool connected_now() const noexcept = 0;
  // The last handshake failure since the previous call; `succeeded` when one succeeded after it.
  virtual std::optional<HandshakeFailure> poll_handshake(bool& succeeded) noexcept = 0;
  // Connections that dropped since the previous call (the peer may come back as a new broker).
  virtual uint32_t take_disconnects() noexcept = 0;
  // The security mechanism the broker greets with ("NULL", "CURVE"), asked over a connection of
  // its own; nullopt if it cannot be told. Asked when a handshake was reset without a reason.
  [[nodiscard]] virtual std::optional<std::string> peer_mechanism() noexcept { return std::nullopt; }
};

// What the session tells its owner, on the session's thread.
class SessionOwner {
 public:
  virtual ~SessionOwner() = default;
  // Name, kind, declared sizes, epoch, tap: everything but the protocol version.
  virtual void fill_hello(v1::Hello& hello) noexcept = 0;
  virtual void fill_heartbeat(v1::Heartbeat& /*hb*/, int64_t /*now_ns*/) noexcept {}
  // Admitted; `broker_restarted` when this broker has another epoch than the last one's (the
  // clock mapping was reset: a new network time axis).
  virtual void on_registered(const v1::Welcome& welcome, bool broker_restarted) noexcept = 0;
  // No longer registered (connection lost, broker silent or restarted, stalled): what the owner
  // sends meanwhile must wait until on_registered.
  virtual void on_unregistered() noexcept {}
  // The clock mapping became usable (first network time since start or since a broker restart).
  virtual void on_synced() noexcept {}
  // Refused (the broker's words, or what the handshake showed). The session retries slowly; an
  // owner that should end on a refusal stops here.
  virtual void on_refused(const Refusal& refusal) noexcept = 0;
};

class BrokerSession {
 public:
  enum class State : uint8_t { closed, hello_pending, registered };

  BrokerSession(SessionOptions options, SessionLink& link, SessionOwner& owner,
                const Clock& clock, CodecLimits limits = {});

  // Timers and link events: opens the link when due, sends Hellos until the Welcome, says why
  // nothing answers, checks handshakes and dropped connections, heartbeats, probe bursts, and
  // gives up on a silent broker. Call every turn of the owner's loop.
  void tick(int64_t now_ns) noexcept;
  // A frame the owner decoded with `codec`: true if it was the session's (Welcome, TimeReply,
  // Error, Goodbye, Heartbeat), false if it is the owner's (batches, status replies...).
  bool on_frame(Body body, const Codec& codec, int64_t t_recv_ns) noexcept;
  // The owner's loop did not turn for longer than the broker's timeout (SIGSTOP, a suspended
  // machine): the broker let this participant go, so it registers again before sending.
  // Called at each turn and again just before sending (the stall may fall between the two).
  void check_stall(int64_t now_ns) noexcept;
  // Says goodbye if registered and closes the link (at stop).
  void close(const std::string& reason) noexcept;

  // How long the owner's poll may wait before the next tick is due (0..50 ms).
  [[nodiscard]] int poll_timeout_ms(int64_t now_ns) const noexcept;
  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool registered() const noexcept { return state_ == State::registered; }
  [[nodiscard]] int64_t reconnect_at_ns() const noexcept { return reconnect_at_ns_; }
  [[nodiscard]] uint64_t broker_epoch() const noexcept { return broker_epoch_; }
  [[nodiscard]] uint32_t node_id() const noexcept { return node_id_; }
  [[nodiscard]] uint64_t broker_restarts() const noexcept { return broker_restarts_; }
  [[nodiscard]] int64_t heartbeat_interval_ns() const noexcept { return heartbeat_interval_ns_; }
  [[nodiscard]] int64_t broker_timeout_ns() const noexcept { return broker_timeout_ns_; }
  // The clock mapping: read from any thread (ClockSync is), written only by the session.
  [[nodiscard]] const ClockSync& clock_sync() const noexcept { return clock_sync_; }
  [[nodiscard]] uint32_t probes_sent() const noexcept { return probe_id_; }

 private:
  void open_link(int64_t now) noexcept;
  void close_link() noexcept;
  void unregister(State next) noexcept;
  void schedule_reconnect(int64_t now) noexcept;
  void no_answer(int64_t now) noexcept;
  void lose_broker(int64_t now, const std::string& why) noexcept;
  void register_again(int64_t now, const char* why) noexcept;
  void send_hello(int64_t now) noexcept;
  void send(const std::string& frame) noexcept { (void)link_.send(frame); }
  void on_timers(int64_t now) noexcept;
  void on_welcome(const v1::Welcome& w, int64_t now) noexcept;
  void on_time_reply(const v1::TimeReply& r, int64_t t3) noexcept;
  void on_error(const v1::Error& e, int64_t now) noexcept;
  void refuse_and_back_off(RefusalKind kind, const std::string& reason, int64_t now) noexcept;
  void check_handshakes(int64_t now) noexcept;
  void refuse_mechanism_mismatch() noexcept;
  static RefusalKind refusal_kind(int code) noexcept;

  const SessionOptions opts_;
  SessionLink& link_;
  SessionOwner& owner_;
  const Clock& clock_;
  Codec codec_;  // encodes what the session sends
  std::string scratch_;
  std::mt19937_64 rng_;
  ClockSync clock_sync_;
  LogLimiter error_log_;

  State state_ = State::closed;
  uint64_t broker_epoch_ = 0;
  uint32_t node_id_ = 0;
  uint64_t broker_restarts_ = 0;
  int64_t heartbeat_interval_ns_;
  int64_t broker_timeout_ns_;
  int64_t reconnect_at_ns_ = 0;  // closed: when to open again
  uint32_t backoff_attempt_ = 0;
  int64_t connect_started_ns_ = 0;
  int64_t next_hello_ns_ = 0;
  int64_t last_heard_ns_ = 0;
  int64_t next_heartbeat_ns_ = 0;
  int64_t next_burst_ns_ = 0;
  uint32_t probes_left_ = 0;
  uint32_t bursts_since_welcome_ = 0;
  bool probe_in_flight_ = false;
  uint32_t probe_id_ = 0;
  int64_t probe_sent_ns_ = 0;
  int64_t last_loop_ns_ = 0;          // the owner loop's previous turn: a longer gap is a stall
  int64_t name_wait_until_ns_ = 0;    // NAME_IN_USE: until when a silent holder may be released
  int64_t ambiguous_since_ns_ = 0;    // first of a run of handshakes reset without a reason
  bool asked_mechanism_ = false;      // the broker's greeting was asked for on this link
  std::string said_no_answer_;        // the last no-answer diagnosis logged
};

}  // namespace ion
