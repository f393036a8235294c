#include "ion/node/dealer_link.h"

#include <spdlog/spdlog.h>

namespace ion {

DealerLink::DealerLink(std::string endpoint, SocketOptions options, std::string who)
    : endpoint_(std::move(endpoint)), options_(std::move(options)), who_(std::move(who)) {}

DealerLink::~DealerLink() { close(); }

bool DealerLink::open() noexcept {
  close();
  try {
    socket_ = std::make_unique<Socket>(ctx_, Socket::Type::dealer, options_);
    monitor_ = std::make_unique<HandshakeMonitor>(ctx_, *socket_);
    socket_->connect(endpoint_);
    return true;
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", who_, e.what());
    close();
    return false;
  }
}

void DealerLink::close() noexcept {
  monitor_.reset();  // the monitor stops before its socket closes
  if (socket_) socket_->close();
  socket_.reset();
}

void DealerLink::close_flushing(std::chrono::milliseconds linger) noexcept {
  if (socket_) {
    try {
      socket_->raw().set(zmq::sockopt::linger, static_cast<int>(linger.count()));
    } catch (const zmq::error_t&) {  // a socket that cannot take it is closed as it is
    }
  }
  close();  // the context, destroyed with the link, waits at most `linger` for what is queued
}

bool DealerLink::send(const std::string& frame) noexcept {
  return socket_ && socket_->send(frame) == IoStatus::ok;
}

bool DealerLink::connected_now() const noexcept { return monitor_ && monitor_->connected_now(); }

std::optional<HandshakeFailure> DealerLink::poll_handshake(bool& succeeded) noexcept {
  if (!monitor_) return std::nullopt;
  return monitor_->poll(succeeded);
}

uint32_t DealerLink::take_disconnects() noexcept {
  return monitor_ ? monitor_->take_disconnects() : 0;
}

std::optional<std::string> DealerLink::peer_mechanism() noexcept {
  return greeting_mechanism(endpoint_, 500);  // a broker greets within a round trip
}

}  // namespace ion
