#pragma once
// What a stepped BrokerCore sends, kept for the test to read (broker_core_test, session_test).
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core.h"

namespace ion::broker_impl {

struct Sent {
  std::string to;
  std::string frame;
};

// Records every frame; `blocked` peers would block (a stalled node), as a ROUTER socket says.
class RecordingOutbox final : public Outbox {
 public:
  IoStatus send_to(std::string_view rid, std::string_view frame) noexcept override {
    if (blocked.contains(std::string(rid))) return IoStatus::would_block;
    sent.push_back({std::string(rid), std::string(frame)});
    return IoStatus::ok;
  }
  std::vector<Sent> take(std::string_view rid) {
    std::vector<Sent> out;
    std::deque<Sent> rest;
    for (auto& s : sent) (s.to == rid ? out.emplace_back(std::move(s)) : rest.emplace_back(std::move(s)));
    sent = std::move(rest);
    return out;
  }
  std::deque<Sent> sent;
  std::set<std::string> blocked;
};

}  // namespace ion::broker_impl
