// The broker's options from its config file (docs/config.md) and its CURVE keys.
#include "ion/broker/broker.h"
#include "ion/core/config.h"
#include "ion/core/security.h"

namespace ion {

BrokerOptions BrokerOptions::from_config(const ConfigNode& root) {
  root.only_keys({"broker"});
  const ConfigNode b = root.child("broker");
  b.only_keys({"listen",
               "http",
               "topology",
               "heartbeat_interval",
               "heartbeat_timeout",
               "startup_grace",
               "max_nodes",
               "max_streams_per_node",
               "ring_frames",
               "ring_bytes",
               "send_hwm",
               "socket_send_buffer",
               "max_message_bytes",
               "max_events_per_batch",
               "max_past",
               "max_future",
               "stats_interval",
               "max_taps",
               "tap_ring_frames",
               "tap_ring_bytes",
               "secret_key",
               "allowlist",
               "max_channels_per_node",
               "max_routes",
               "control_rate",
               "control_burst"});
  BrokerOptions o;
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  o.listen = b.string("listen", o.listen);
  o.http = b.string("http", "");
  o.heartbeat_interval = std::chrono::duration_cast<milliseconds>(
      b.duration("heartbeat_interval", o.heartbeat_interval, milliseconds(10), seconds(60)));
  o.heartbeat_timeout = std::chrono::duration_cast<milliseconds>(
      b.duration("heartbeat_timeout", o.heartbeat_timeout, milliseconds(50), seconds(600)));
  if (o.heartbeat_timeout <= o.heartbeat_interval) {
    b.fail("heartbeat_timeout", "a duration longer than heartbeat_interval");
  }
  o.max_nodes = static_cast<uint32_t>(b.integer("max_nodes", o.max_nodes, 1, 65536));
  o.max_streams_per_node =
      static_cast<uint32_t>(b.integer("max_streams_per_node", o.max_streams_per_node, 1, 1024));
  o.ring_frames = static_cast<size_t>(b.integer("ring_frames", 4096, 1, 1 << 24));
  o.ring_bytes = static_cast<size_t>(b.integer("ring_bytes", 16 << 20, 1024, int64_t{1} << 34));
  o.send_hwm = static_cast<int>(b.integer("send_hwm", o.send_hwm, 1, 1 << 20));
  o.socket_send_buffer = static_cast<int>(b.integer("socket_send_buffer", 0, 0, int64_t{1} << 30));
  o.limits.max_message_bytes =
      static_cast<size_t>(b.integer("max_message_bytes", 1 << 20, 256, 64 << 20));
  o.limits.max_events_per_batch = static_cast<uint32_t>(
      b.integer("max_events_per_batch", o.limits.max_events_per_batch, 1, 1 << 22));
  o.max_past = b.duration("max_past", o.max_past, milliseconds(1), std::chrono::hours(24));
  o.max_future = b.duration("max_future", o.max_future, milliseconds(1), std::chrono::hours(24));
  o.stats_interval = std::chrono::duration_cast<milliseconds>(
      b.duration("stats_interval", o.stats_interval, milliseconds(0), std::chrono::hours(1)));
  o.startup_grace = std::chrono::duration_cast<milliseconds>(
      b.duration("startup_grace", o.startup_grace, milliseconds(0), seconds(600)));
  o.max_taps = static_cast<uint32_t>(b.integer("max_taps", o.max_taps, 0, 64));
  o.tap_ring_frames = static_cast<size_t>(b.integer("tap_ring_frames", 16384, 1, 1 << 24));
  o.tap_ring_bytes =
      static_cast<size_t>(b.integer("tap_ring_bytes", 64 << 20, 1024, int64_t{1} << 34));
  o.max_channels_per_node = static_cast<uint32_t>(
      b.integer("max_channels_per_node", o.max_channels_per_node, 1, 1 << 24));
  o.max_routes = static_cast<size_t>(
      b.integer("max_routes", static_cast<int64_t>(o.max_routes), 1, int64_t{1} << 30));
  o.control_rate_hz = b.number("control_rate", o.control_rate_hz, 1, 1e6);
  o.control_burst = b.number("control_burst", o.control_burst, 1, 1e6);
  if (b.has("secret_key") != b.has("allowlist")) {
    b.fail(b.has("secret_key") ? "allowlist" : "secret_key",
           "both secret_key and allowlist (CURVE needs the broker's key and the nodes' keys)");
  }
  if (b.has("secret_key")) {
    try {
      o.security = BrokerSecurity::load(b.resolve_path(b.string("secret_key")),
                                        b.resolve_path(b.string("allowlist")));
    } catch (const SecurityError& e) {
      throw ConfigError(b.where("secret_key") + ": " + e.what());
    }
  }
  o.topology = load_topology_file(b.resolve_path(b.string("topology")));
  return o;
}

BrokerSecurity BrokerSecurity::load(const std::string& secret_key_file,
                                    const std::string& allowlist_file) {
  BrokerSecurity s;
  s.key = load_secret_key(secret_key_file);
  s.allowlist = Allowlist::load_file(allowlist_file);
  s.allowlist_file = allowlist_file;
  return s;
}

BrokerOptions BrokerOptions::from_file(const std::string& path) {
  return from_config(ConfigNode::load_file(path));
}

}  // namespace ion
