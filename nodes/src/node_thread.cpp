#include "ion/node/node_thread.h"

#include <spdlog/spdlog.h>

namespace ion {

NodeThread::NodeThread(NodeOptions options, std::unique_ptr<Driver> driver, const Clock& clock)
    : node_(std::move(options), std::move(driver), clock), thread_([this] {
        try {
          node_.run();
        } catch (const std::exception& e) {
          spdlog::error("node '{}': {}", node_.options().name, e.what());
          std::lock_guard lock(mu_);
          error_ = e.what();
        }
      }) {}

void NodeThread::stop() noexcept {
  if (!thread_.joinable()) return;
  node_.stop();
  thread_.join();
}

std::string NodeThread::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

}  // namespace ion
