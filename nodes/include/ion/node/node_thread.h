#pragma once
// A node serving on its own thread. The daemon (ion-node) runs its node on main; the demos,
// benchmarks, replay into a broker, the C API and the tests run several in one process, each
// through this. stop() (or the destructor) stops the node and joins the thread.
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ion/node/node.h"

namespace ion {

class NodeThread {
 public:
  // Constructs the node (throws what Node's constructor throws) and starts it.
  NodeThread(NodeOptions options, std::unique_ptr<Driver> driver,
             const Clock& clock = SteadyClock::instance());
  ~NodeThread() { stop(); }
  NodeThread(const NodeThread&) = delete;
  NodeThread& operator=(const NodeThread&) = delete;

  void stop() noexcept;
  [[nodiscard]] Node& node() noexcept { return node_; }
  [[nodiscard]] const Node& node() const noexcept { return node_; }
  // Empty unless run() failed (a driver that could not start): its one-line reason.
  [[nodiscard]] std::string error() const;

 private:
  Node node_;
  mutable std::mutex mu_;
  std::string error_;
  std::thread thread_;  // last: started once the rest is built
};

}  // namespace ion
