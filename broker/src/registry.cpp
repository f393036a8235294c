// Who holds which name: a node's Hello (protocol, key, topology, sizes), the one-holder rule
// shared by nodes and recorders, unregistering, and cutting off names that left the allowlist.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "ion/core/names.h"

#include "core.h"

namespace ion::broker_impl {

NodeSlot* BrokerCore::find_slot(std::string_view rid) noexcept {
  const auto it = by_routing_id_.find(rid);
  return it == by_routing_id_.end() ? nullptr : slots_[it->second].get();
}

void BrokerCore::on_health(NodeSlot& s) noexcept {
  if (!codec_.heartbeat().has_health()) return;
  std::lock_guard lock(s.health_mu);
  s.health = codec_.heartbeat().health();  // as reported: one copy, no field-by-field relay
  s.health_reported = true;
}

// A refused Hello: counted, logged (rate-limited, naming the peer and the name it claimed)
// and answered with the reason, so the refused process can say what went wrong.
void BrokerCore::refuse_hello(std::string_view rid, std::string_view peer, std::string_view name,
                              Reject why, v1::Error::Code code, const std::string& reason,
                              uint32_t retry_after_ms) noexcept {
  rejects_.add(why);
  uint64_t suppressed = 0;
  if (hello_log_.allow(clock_.now_ns(), suppressed)) {
    spdlog::warn("refused a Hello as '{}' from {}: {} ({} more refused Hellos since the last line)",
                 name, peer, reason, suppressed);
  }
  reply_error(rid, code, reason, retry_after_ms);
}

// One holder per name, for nodes and taps alike: the live holder keeps it; the same process
// (same epoch) on a new connection takes it back; another process only with `replace`, and
// the holder is then told it was replaced. A holder is live until it says goodbye or stays
// silent beyond heartbeat_timeout. Returns whether the claimant may take the name.
bool BrokerCore::may_hold(Holder& s, const char* what, std::string_view rid, std::string_view peer,
                          const v1::Hello& h, int64_t now) noexcept {
  if (!s.registered || s.routing_id == rid || s.epoch == h.epoch()) return true;
  // Messages are handled after a drain, so a holder's last message may be stamped after this.
  const auto secs = [](int64_t ns) {
    return fmt::format("{:.1f} s", static_cast<double>(std::max<int64_t>(ns, 0)) / 1e9);
  };
  if (!h.replace()) {
    refuse_hello(rid, peer, h.node_name(), Reject::name_in_use, v1::Error::NAME_IN_USE,
                 fmt::format("{} '{}' is held by a live connection from {} (registered {} ago, "
                             "last heard {} ago); stop that process, or start this one with "
                             "--replace (a holder silent for {} ms is released)",
                             what, h.node_name(), s.peer, secs(now - s.registered_ns),
                             secs(now - s.last_seen_ns), opts_.heartbeat_timeout.count()),
                 static_cast<uint32_t>(std::clamp<int64_t>(
                     (ms_to_ns(opts_.heartbeat_timeout) - (now - s.last_seen_ns)) / 1'000'000, 1,
                     opts_.heartbeat_timeout.count())));
    return false;
  }
  spdlog::warn("{} '{}' replaced: the connection from {} took it over from {} (--replace)", what,
               h.node_name(), peer, s.peer);
  reply_error(s.routing_id, v1::Error::NAME_IN_USE,
              fmt::format("{} '{}' was taken over by a connection from {} started with --replace",
                          what, h.node_name(), peer));
  return true;
}

void BrokerCore::on_hello(std::string_view rid, std::string_view user, std::string_view peer,
                          int64_t t_recv) {
  const v1::Hello& h = codec_.hello();
  if (h.protocol_version() != kProtocolVersion) {
    refuse_hello(rid, peer, h.node_name(), Reject::version_mismatch, v1::Error::VERSION_MISMATCH,
                 "this broker speaks IoN protocol " + std::to_string(kProtocolVersion) +
                     "; node '" + h.node_name() + "' speaks " +
                     std::to_string(h.protocol_version()));
    return;
  }
  if (auth_ && !auth_->name_allowed(std::string(user))) {
    refuse_hello(rid, peer, h.node_name(), Reject::revoked, v1::Error::NOT_AUTHORIZED,
                 "the key of '" + std::string(user) + "' is no longer on the allowlist");
    return;
  }
  if (auth_ && h.node_name() != user) {
    // The identity is the key's name on the allowlist, never the name a payload claims.
    refuse_hello(rid, peer, h.node_name(), Reject::impersonation, v1::Error::NOT_AUTHORIZED,
                 "this connection's key is listed as '" + std::string(user) +
                     "'; it cannot register as '" + h.node_name() + "'");
    return;
  }
  if (h.tap()) {
    on_tap_hello(rid, peer, t_recv);
    return;
  }
  const int64_t id = table_.find_node(h.node_name());
  if (id < 0) {
    std::vector<std::string> known;
    for (size_t i = 0; i < table_.node_count(); ++i) {
      known.push_back(table_.node(static_cast<uint32_t>(i)).name);
    }
    refuse_hello(rid, peer, h.node_name(), Reject::unknown_node, v1::Error::NOT_IN_TOPOLOGY,
                 "node '" + h.node_name() + "' is not in this broker's topology" +
                     closest_names(h.node_name(), known));
    return;
  }
  const NodeSpec& spec = table_.node(static_cast<uint32_t>(id));
  NodeSlot& slot = *slots_[static_cast<size_t>(id)];
  // A name held by another live process is refused as such first, whatever else is wrong.
  if (!may_hold(slot, "node", rid, peer, h, t_recv)) return;
  if (h.output_channels() > spec.channels || h.input_ports() < spec.ports) {
    slot.rejected_batches.add();
    refuse_hello(rid, peer, h.node_name(), Reject::declared_too_large, v1::Error::REJECTED,
                 "node '" + spec.name + "' declares " + std::to_string(h.output_channels()) +
                     " output channels and " + std::to_string(h.input_ports()) +
                     " input ports; the topology needs at most " + std::to_string(spec.channels) +
                     " channels and at least " + std::to_string(spec.ports) + " ports");
    return;
  }
  if (slot.registered && slot.routing_id != rid) {
    spdlog::info("node '{}' registered again from a new connection ({}); the old one is dropped",
                 slot.name, peer);
    by_routing_id_.erase(slot.routing_id);
  }
  if (slot.epoch != 0 && slot.epoch != h.epoch()) {
    spdlog::info("node '{}' restarted (epoch {:016x} -> {:016x})", slot.name, slot.epoch,
                 h.epoch());
  }
  if (!slot.registered || slot.routing_id != rid) slot.registered_ns = t_recv;
  slot.routing_id = std::string(rid);
  slot.peer = std::string(peer);
  by_routing_id_[slot.routing_id] = static_cast<uint32_t>(id);
  slot.registered = true;
  slot.connected.store(true, std::memory_order_relaxed);
  slot.registrations.add();
  slot.epoch = h.epoch();
  slot.declared_channels = h.output_channels();
  slot.declared_ports = h.input_ports();
  {
    std::lock_guard lock(slot.health_mu);
    slot.device = h.device();
    slot.channel_info.assign(h.channel_info().begin(), h.channel_info().end());
  }
  slot.last_seen_ns = t_recv;

  send_welcome(rid, static_cast<uint32_t>(id));
  spdlog::info("node '{}' ({}) registered from {}: {} channels, {} ports", slot.name, h.software(),
               peer, h.output_channels(), h.input_ports());
}

void BrokerCore::unregister(NodeSlot& slot) noexcept {
  by_routing_id_.erase(slot.routing_id);
  slot.registered = false;
  slot.connected.store(false, std::memory_order_relaxed);
  const auto dropped = slot.ring.clear();
  slot.drop(dropped.dropped_frames, dropped.dropped_events);
}

// After an allowlist reload: nodes and taps whose name is no longer listed are cut off, and
// their Hello is refused from then on.
void BrokerCore::enforce_allowlist() noexcept {
  if (!auth_ || auth_->generation() == auth_generation_) return;
  auth_generation_ = auth_->generation();
  for (auto& sp : slots_) {
    if (!sp->registered || auth_->name_allowed(sp->name)) continue;
    spdlog::warn("node '{}' is no longer on the allowlist: cut off", sp->name);
    rejects_.add(Reject::revoked);
    reply_error(sp->routing_id, v1::Error::NOT_AUTHORIZED, "your key left the allowlist");
    unregister(*sp);
  }
  for (auto& tp : taps_) {
    if (!tp->registered || auth_->name_allowed(tp->name)) continue;
    spdlog::warn("tap '{}' is no longer on the allowlist: cut off", tp->name);
    rejects_.add(Reject::revoked);
    unregister_tap(*tp);
  }
}

}  // namespace ion::broker_impl
