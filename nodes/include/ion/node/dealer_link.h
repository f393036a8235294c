#pragma once
// The daemons' SessionLink: a ZeroMQ dealer socket connected to the broker, with a handshake
// monitor. Owned by the session's thread; the owner polls and receives on socket().
#include <memory>
#include <string>

#include "ion/core/transport.h"
#include "ion/node/session.h"

namespace ion {

class DealerLink final : public SessionLink {
 public:
  // `who` names the participant in the line said when a socket cannot be made.
  DealerLink(std::string endpoint, SocketOptions options, std::string who);
  ~DealerLink() override;
  DealerLink(const DealerLink&) = delete;
  DealerLink& operator=(const DealerLink&) = delete;

  bool open() noexcept override;
  void close() noexcept override;
  void close_flushing(std::chrono::milliseconds linger) noexcept override;
  [[nodiscard]] bool is_open() const noexcept override { return socket_ != nullptr; }
  bool send(const std::string& frame) noexcept override;
  [[nodiscard]] bool connected_now() const noexcept override;
  std::optional<HandshakeFailure> poll_handshake(bool& succeeded) noexcept override;
  uint32_t take_disconnects() noexcept override;
  [[nodiscard]] std::optional<std::string> peer_mechanism() noexcept override;

  // Null while closed.
  [[nodiscard]] Socket* socket() noexcept { return socket_.get(); }

 private:
  const std::string endpoint_;
  const SocketOptions options_;
  const std::string who_;
  zmq::context_t ctx_{1};
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;
};

}  // namespace ion
