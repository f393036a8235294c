// The node's options from its config file (docs/config.md), and the names of refusals.
#include "ion/node/node.h"

#include <spdlog/spdlog.h>

#include "ion/core/config.h"
#include "ion/core/security.h"
#include "ion/core/transport.h"

namespace ion {

const char* to_string(RefusalKind kind) noexcept {
  switch (kind) {
    case RefusalKind::none:
      return "none";
    case RefusalKind::not_in_topology:
      return "not_in_topology";
    case RefusalKind::declared_sizes:
      return "declared_sizes";
    case RefusalKind::not_authorized:
      return "not_authorized";
    case RefusalKind::version:
      return "version";
    case RefusalKind::too_many_nodes:
      return "too_many_nodes";
    case RefusalKind::encryption_mismatch:
      return "encryption_mismatch";
    case RefusalKind::key_refused:
      return "key_refused";
    case RefusalKind::handshake_failed:
      return "handshake_failed";
    case RefusalKind::name_in_use:
      return "name_in_use";
    case RefusalKind::other:
      return "other";
  }
  return "other";
}

NodeOptions NodeOptions::from_config(const ConfigNode& root) {
  const ConfigNode n = root.child("node");
  n.only_keys({"name",
               "broker",
               "heartbeat_interval",
               "broker_timeout",
               "reconnect_min",
               "reconnect_max",
               "send_queue_frames",
               "send_queue_bytes",
               "probe_burst",
               "resync_interval",
               "max_events_per_batch",
               "max_message_bytes",
               "playout_capacity",
               "playout_spin",
               "playout_precision",
               "batch_budget",
               "batch_max_events",
               "secret_key",
               "broker_key",
               "insecure",
               "on_refusal",
               "replace"});
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  const auto ms = [](std::chrono::nanoseconds d) {
    return std::chrono::duration_cast<milliseconds>(d);
  };
  NodeOptions o;
  o.name = n.string("name");
  if (o.name.empty() || o.name.size() > 64) n.fail("name", "a node name of 1 to 64 characters");
  o.broker = n.string("broker", o.broker);
  if (const std::string why = endpoint_problem(o.broker); !why.empty()) n.fail("broker", why);
  const std::string on_refusal = n.string("on_refusal", "exit");
  if (on_refusal != "exit" && on_refusal != "retry") n.fail("on_refusal", "exit or retry");
  o.exit_on_refusal = on_refusal == "exit";
  o.replace = n.boolean("replace", false);
  if (n.has("secret_key") != n.has("broker_key")) {
    n.fail(n.has("secret_key") ? "broker_key" : "secret_key",
           "both secret_key and broker_key (CURVE needs this node's key and the broker's)");
  }
  if (n.has("secret_key")) {
    try {
      const std::string bk = n.string("broker_key");
      o.curve = load_client_keys(n.resolve_path(n.string("secret_key")),
                                 valid_z85_key(bk) ? bk : n.resolve_path(bk));
      if (o.curve->name != o.name) {
        spdlog::warn(
            "node '{}': its key file is named '{}'; the broker will know it by the name "
            "its allowlist gives the key",
            o.name, o.curve->name);
      }
    } catch (const SecurityError& e) {
      throw ConfigError(n.where("secret_key") + ": " + e.what());
    }
  }
  o.insecure = n.boolean("insecure", false);
  o.heartbeat_interval =
      ms(n.duration("heartbeat_interval", o.heartbeat_interval, milliseconds(10), seconds(60)));
  o.broker_timeout =
      ms(n.duration("broker_timeout", o.broker_timeout, milliseconds(50), seconds(600)));
  o.reconnect_min = ms(n.duration("reconnect_min", o.reconnect_min, milliseconds(1), seconds(60)));
  o.reconnect_max = ms(n.duration("reconnect_max", o.reconnect_max, o.reconnect_min, seconds(600)));
  o.send_queue_frames = static_cast<size_t>(n.integer("send_queue_frames", 4096, 1, 1 << 24));
  o.send_queue_bytes =
      static_cast<size_t>(n.integer("send_queue_bytes", 16 << 20, 1024, int64_t{1} << 34));
  o.probe_burst = static_cast<uint32_t>(n.integer("probe_burst", o.probe_burst, 1, 256));
  o.resync_interval =
      ms(n.duration("resync_interval", o.resync_interval, milliseconds(100), seconds(3600)));
  o.limits.max_events_per_batch = static_cast<uint32_t>(
      n.integer("max_events_per_batch", o.limits.max_events_per_batch, 1, 1 << 22));
  o.limits.max_message_bytes =
      static_cast<size_t>(n.integer("max_message_bytes", 1 << 20, 256, 64 << 20));
  o.playout_capacity =
      static_cast<size_t>(n.integer("playout_capacity", 1 << 20, 1, int64_t{1} << 30));
  o.playout_spin = std::chrono::duration_cast<std::chrono::microseconds>(
      n.duration("playout_spin", o.playout_spin, std::chrono::microseconds(0), milliseconds(10)));
  o.playout_precision = std::chrono::duration_cast<std::chrono::microseconds>(
      n.duration("playout_precision", o.playout_precision, std::chrono::microseconds(10),
                 std::chrono::seconds(10)));
  o.batch_budget = std::chrono::duration_cast<std::chrono::microseconds>(
      n.duration("batch_budget", o.batch_budget, std::chrono::microseconds(0), milliseconds(100)));
  o.batch_max_events =
      static_cast<uint32_t>(n.integer("batch_max_events", o.batch_max_events, 1, 1 << 22));
  return o;
}

}  // namespace ion
