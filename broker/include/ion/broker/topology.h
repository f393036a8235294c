#pragma once
// The network being built: which nodes exist, and which source channels feed which target ports
// with what delay. Compiled once into a flat routing table the broker indexes per event.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ion/broker/auto_delay.h"
#include "ion/core/config.h"
#include "ion/core/event_batch.h"

namespace ion {

struct NodeSpec {
  std::string name;
  std::string kind;         // informative: generator, sink, mea, chip, synapse, replay
  uint32_t channels = 0;    // output channel ids 0..channels-1
  uint32_t ports = 0;       // input port ids 0..ports-1
};

// "node:*", "node:N" or "node:A-B" (inclusive).
struct EndpointRef {
  std::string node;
  bool wildcard = false;
  uint32_t first = 0;
  uint32_t last = 0;
};

struct ConnectionSpec {
  EndpointRef from;
  std::vector<EndpointRef> to;
  int64_t delay_ns = 0;
  std::string where;  // "file:line" for error messages
  LatePolicy late_policy = LatePolicy::deliver_flagged;
  bool auto_delay = false;  // `delay: auto`: delay_ns is the initial value, then measured
  AutoDelayOptions auto_options;
};

// "from:*" -> "to:*" (channel i to port i) with a fixed delay: the common whole-node connection.
[[nodiscard]] inline ConnectionSpec connect_whole(const std::string& from, const std::string& to,
                                                  int64_t delay_ns, std::string where = "code") {
  ConnectionSpec c;
  c.from = {from, true, 0, 0};
  c.to = {{to, true, 0, 0}};
  c.delay_ns = delay_ns;
  c.where = std::move(where);
  return c;
}

struct Topology {
  std::vector<NodeSpec> nodes;
  std::vector<ConnectionSpec> connections;
};

// Parses "name:*", "name:3", "name:0-15"; throws ConfigError naming `where` on bad syntax.
EndpointRef parse_endpoint(std::string_view text, const std::string& where);

// The topology as a topology file (what a recording keeps of the network it recorded).
[[nodiscard]] std::string to_yaml(const Topology& topology);

// Reads `nodes:` and `connections:` from a topology file (see docs/config.md).
Topology load_topology(const ConfigNode& root);
Topology load_topology_file(const std::string& path);

struct Route {
  uint32_t target_node = 0;
  uint32_t port = 0;
  int64_t delay_ns = 0;  // as compiled; a `delay: auto` connection's current value is the broker's
  LatePolicy late_policy = LatePolicy::deliver_flagged;
  uint32_t connection = 0;  // index in Topology::connections
};

class RoutingTable {
 public:
  // Throws ConfigError when a connection names an unknown node, a channel or port outside what
  // the node declares, or ranges of different lengths.
  static RoutingTable compile(const Topology& topology);

  [[nodiscard]] size_t node_count() const noexcept { return nodes_.size(); }
  [[nodiscard]] const NodeSpec& node(uint32_t id) const noexcept { return nodes_[id]; }
  // Node id for a name, or -1.
  [[nodiscard]] int64_t find_node(std::string_view name) const noexcept;

  [[nodiscard]] std::span<const Route> routes(uint32_t source, uint32_t channel) const noexcept {
    const size_t slot = channel_base_[source] + channel;
    if (channel >= nodes_[source].channels) return {};
    return {routes_.data() + route_begin_[slot], route_begin_[slot + 1] - route_begin_[slot]};
  }
  // True when every channel of `source` reaches `target` exactly once, all with one delay: a
  // batch routed there arrives whole, so first_index gaps are exact event losses.
  [[nodiscard]] bool complete(uint32_t source, uint32_t target) const noexcept {
    return complete_[source * nodes_.size() + target] != 0;
  }
  [[nodiscard]] size_t route_count() const noexcept { return routes_.size(); }

 private:
  std::vector<NodeSpec> nodes_;
  std::vector<size_t> channel_base_;  // per node: index of its channel 0 in route_begin_
  std::vector<size_t> route_begin_;   // per (node, channel) + 1 sentinel: index into routes_
  std::vector<Route> routes_;
  std::vector<uint8_t> complete_;     // nodes x nodes
  std::vector<uint8_t> connection_auto_;  // per connection: delay: auto
};

}  // namespace ion
