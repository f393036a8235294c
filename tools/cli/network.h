#pragma once
// One in-process network: a broker serving on its own thread and nodes on theirs, each node's
// deliveries checked from outside by the audit (audit.h). The minimal and three-lab demos, the
// timing benchmark, replay into a broker and the integration tests build on it instead of each
// wiring threads, endpoints and stop order by hand.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/audit.h"
#include "ion/broker/broker.h"
#include "ion/node/node_thread.h"

namespace ion {

// How far from its deadline an event may be handed over before the audit calls it late
// (uncounted) or early: the scheduler's stated worst case on a shared machine.
struct AuditTolerance {
  int64_t late_ns = 5'000'000;
  int64_t early_ns = 1'000'000;
};

class InProcessNetwork {
 public:
  // Starts the broker; an empty `listen` becomes tcp://127.0.0.1:* (a free loopback port).
  explicit InProcessNetwork(BrokerOptions options);
  ~InProcessNetwork() { stop(); }
  InProcessNetwork(const InProcessNetwork&) = delete;
  InProcessNetwork& operator=(const InProcessNetwork&) = delete;

  [[nodiscard]] const std::string& endpoint() const { return broker_.endpoint(); }
  [[nodiscard]] Broker& broker() { return broker_.broker(); }

  struct NodeSetup {
    std::optional<AuditTolerance> audit = AuditTolerance{};  // none: the driver as it is
    std::string via;  // an endpoint in front of the broker (a link emulator); empty: none
    const Clock* clock = nullptr;  // the node's clock; null: the steady clock
  };
  // Starts a node on its own thread, connected to this network's broker (options.broker is
  // replaced) or to `setup.via`. Throws what Node's constructor throws.
  Node& add_node(NodeOptions options, std::unique_ptr<Driver> driver, NodeSetup setup);
  Node& add_node(NodeOptions options, std::unique_ptr<Driver> driver) {
    return add_node(std::move(options), std::move(driver), NodeSetup{});
  }

  // By name; throws std::out_of_range for a name never added.
  [[nodiscard]] Node& node(const std::string& name);
  [[nodiscard]] NodeThread& thread(const std::string& name);
  [[nodiscard]] const AuditDriver* audit(const std::string& name) const;  // null: not audited
  [[nodiscard]] std::vector<std::string> names() const;

  // Whether every node added so far registered and has network time within `timeout`; the
  // first that did not is named in `late` (if given).
  bool wait_registered(std::chrono::milliseconds timeout, std::string* late = nullptr);
  // The audits of every audited node, summed (error quantiles: the worst node's).
  [[nodiscard]] AuditCounts audit_total() const;

  // Nodes in the reverse order they were added, then the broker. Idempotent.
  void stop_nodes() noexcept;
  void stop() noexcept;

 private:
  struct Member {
    std::string name;
    const AuditDriver* audit = nullptr;
    std::unique_ptr<NodeThread> thread;
  };
  static BrokerOptions with_listen(BrokerOptions o);
  [[nodiscard]] const Member& member(const std::string& name) const;

  BrokerThread broker_;
  std::vector<Member> members_;
};

}  // namespace ion
