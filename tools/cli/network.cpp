#include "cli/network.h"

#include <algorithm>
#include <stdexcept>

namespace ion {

BrokerOptions InProcessNetwork::with_listen(BrokerOptions o) {
  if (o.listen.empty()) o.listen = "tcp://127.0.0.1:*";
  return o;
}

InProcessNetwork::InProcessNetwork(BrokerOptions options) : broker_(with_listen(std::move(options))) {}

Node& InProcessNetwork::add_node(NodeOptions options, std::unique_ptr<Driver> driver,
                                 NodeSetup setup) {
  options.broker = setup.via.empty() ? endpoint() : setup.via;
  Member m;
  m.name = options.name;
  if (setup.audit) {
    auto a = std::make_unique<AuditDriver>(std::move(driver), setup.audit->late_ns,
                                           setup.audit->early_ns);
    m.audit = a.get();
    driver = std::move(a);
  }
  const Clock& clock = setup.clock != nullptr ? *setup.clock : SteadyClock::instance();
  m.thread = std::make_unique<NodeThread>(std::move(options), std::move(driver), clock);
  members_.push_back(std::move(m));
  return members_.back().thread->node();
}

const InProcessNetwork::Member& InProcessNetwork::member(const std::string& name) const {
  for (const Member& m : members_) {
    if (m.name == name) return m;
  }
  throw std::out_of_range("no node '" + name + "' in this network");
}

Node& InProcessNetwork::node(const std::string& name) { return thread(name).node(); }

NodeThread& InProcessNetwork::thread(const std::string& name) { return *member(name).thread; }

const AuditDriver* InProcessNetwork::audit(const std::string& name) const { return member(name).audit; }

std::vector<std::string> InProcessNetwork::names() const {
  std::vector<std::string> out;
  for (const Member& m : members_) out.push_back(m.name);
  return out;
}

bool InProcessNetwork::wait_registered(std::chrono::milliseconds timeout, std::string* late) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (const Member& m : members_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (!m.thread->node().wait_registered(1, std::max(left, std::chrono::milliseconds(0)))) {
      if (late != nullptr) *late = m.name;
      return false;
    }
  }
  return true;
}

AuditCounts InProcessNetwork::audit_total() const {
  AuditCounts t;
  for (const Member& m : members_) {
    if (m.audit == nullptr) continue;
    const AuditCounts c = m.audit->counts();
    t.delivered += c.delivered;
    t.flagged_late += c.flagged_late;
    t.late_uncounted += c.late_uncounted;
    t.early += c.early;
    t.out_of_order += c.out_of_order;
    t.error_p50_ns = std::max(t.error_p50_ns, c.error_p50_ns);
    t.error_p99_ns = std::max(t.error_p99_ns, c.error_p99_ns);
    t.error_max_ns = std::max(t.error_max_ns, c.error_max_ns);
  }
  return t;
}

void InProcessNetwork::stop_nodes() noexcept {
  // Stop every node first (each then stops its driver), then join: no node waits on another.
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) it->thread->node().stop();
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) it->thread->stop();
}

void InProcessNetwork::stop() noexcept {
  stop_nodes();
  broker_.stop();
}

}  // namespace ion
