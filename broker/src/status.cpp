// What the broker shows: its counters as stats, the StatusReply that `ion status`, /api/status,
// /metrics and the dashboard are made from, and the live feed of recent events for the dashboard.
#include <spdlog/spdlog.h>

#include "core.h"

namespace ion::broker_impl {

NodeHealthStats health_stats(bool reported, const v1::NodeHealth& h) {
  NodeHealthStats x;
  x.reported = reported;
  x.clock_synced = h.clock_synced();
  x.clock_offset_ns = h.clock_offset_ns();
  x.clock_uncertainty_ns = h.clock_uncertainty_ns();
  x.clock_drift_ppb = h.clock_drift_ppb();
#define ION_FROM_HEALTH(name) x.name = h.name();
  ION_NODE_HEALTH_COUNTERS(ION_FROM_HEALTH)
#undef ION_FROM_HEALTH
  x.device_trouble = h.device_trouble();
  x.driver_counters.insert(h.driver_counters().begin(), h.driver_counters().end());
  x.trouble_counters.assign(h.trouble_counters().begin(), h.trouble_counters().end());
  for (const v1::Gauge& g : h.gauges()) x.gauges[g.name()].assign(g.values().begin(), g.values().end());
  return x;
}

std::vector<BrokerNodeStats> BrokerCore::node_stats() const {
  std::vector<BrokerNodeStats> out;
  for (const auto& s : slots_) {
    BrokerNodeStats n;
    n.name = s->name;
    n.kind = s->kind;
    n.connected = s->connected.load(std::memory_order_relaxed);
#define ION_FROM_SLOT(name) n.name = s->name.get();
    ION_BROKER_NODE_COUNTERS(ION_FROM_SLOT)
#undef ION_FROM_SLOT
    n.ingress_latency_p50_ns = s->ingress_latency.quantile_ns(0.5);
    n.ingress_latency_p99_ns = s->ingress_latency.quantile_ns(0.99);
    n.ingress_latency_max_ns = s->ingress_latency.max_ns();
    n.ingress_latency_count = s->ingress_latency.count();
    n.ingress_latency_sum_ns = s->ingress_latency.sum_ns();
    const auto le = s->ingress_latency.counts_at_bounds();
    n.ingress_latency_le.assign(le.begin(), le.end());
    {
      std::lock_guard lock(s->health_mu);
      n.health = health_stats(s->health_reported, s->health);
    }
    // The dashboard's weight traces: whatever driver reports a "weight" gauge (a synapse board).
    if (const auto w = n.health.gauges.find("weight"); w != n.health.gauges.end()) n.weights = w->second;
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<TapStats> BrokerCore::tap_stats() const {
  std::vector<TapStats> out;
  std::lock_guard lock(taps_mu_);
  for (const auto& t : taps_) {
    if (!t->in_use) continue;
    TapStats x;
    x.name = t->name;
    x.connected = t->connected.load(std::memory_order_relaxed);
#define ION_FROM_TAP(name) x.name = t->name.get();
    ION_BROKER_TAP_COUNTERS(ION_FROM_TAP)
#undef ION_FROM_TAP
    out.push_back(std::move(x));
  }
  return out;
}

void BrokerCore::on_status(std::string_view rid) {
  v1::StatusReply r;
  const v1::StatusRequest& q = codec_.status_request();
  std::set<std::string> channels_of(q.channels_of().begin(), q.channels_of().end());
  fill_status(r, q.include_topology(), q.include_channels(), channels_of);
  r.set_request_id(codec_.status_request().request_id());
  if (status_codec_.encode(r, scratch_)) send_direct(rid, scratch_);
}

void BrokerCore::fill_status(v1::StatusReply& r, bool include_topology, bool include_channels,
                             const std::set<std::string>& channels_of) const {
  r.set_broker_epoch(epoch_);
  r.set_network_ns(clock_.now_ns());
  r.set_anchor_network_ns(anchor_network_ns_);
  r.set_anchor_utc_ns(anchor_utc_ns_);
  if (include_topology) r.set_topology_yaml(topology_yaml_);
  v1::SecurityStatus* sec = r.mutable_security();
  sec->set_curve(auth_ != nullptr);
  sec->set_insecure(insecure());
  if (auth_) {
    const AuthStats a = auth_->stats();
    sec->set_allowed_keys(a.allowed_keys);
    sec->set_accepted(a.accepted);
    auto& refused = *sec->mutable_refused();
    refused["unknown_key"] = a.unknown_key;
    refused["plaintext"] = a.plaintext_refused;
    refused["crypto_failed"] = a.crypto_failed;
    refused["other"] = a.other_failed;
    sec->set_disconnects(a.disconnects);
    sec->set_reloads(a.reloads);
    sec->set_reload_failures(a.reload_failures);
  }
  for (const auto& t : tap_stats()) {
    v1::TapStatus* x = r.add_taps();
    x->set_name(t.name);
    x->set_connected(t.connected);
#define ION_TO_STATUS(name) x->set_##name(t.name);
    ION_BROKER_TAP_COUNTERS(ION_TO_STATUS)
#undef ION_TO_STATUS
  }
  constexpr size_t kMaxDescribedChannels = 16384;
  size_t described_channels = 0;
  for (const auto& n : node_stats()) {
    v1::NodeStatus* s = r.add_nodes();
    s->set_name(n.name);
    s->set_kind_name(n.kind);
    {
      const auto id = table_.find_node(n.name);
      const NodeSpec& spec = table_.node(static_cast<uint32_t>(id));
      s->set_topology_channels(spec.channels);
      s->set_topology_ports(spec.ports);
      const NodeSlot& slot = *slots_[static_cast<size_t>(id)];
      std::lock_guard lock(slot.health_mu);
      if (slot.health_reported) *s->mutable_health() = slot.health;
      if (slot.device.ByteSizeLong() > 0) *s->mutable_device() = slot.device;
      // Bounded so the reply stays well inside max_message_bytes (about 26 bytes each: 16 384
      // channels are ~430 KB); nodes beyond the bound are left undescribed in this reply, and
      // channels_described tells the asker so (it asks again).
      s->set_channels_described(static_cast<uint32_t>(slot.channel_info.size()));
      const bool asked = include_channels || channels_of.contains(n.name);
      if (asked && described_channels + slot.channel_info.size() <= kMaxDescribedChannels) {
        for (const auto& c : slot.channel_info) *s->add_channel_info() = c;
        described_channels += slot.channel_info.size();
      }
    }
    s->set_connected(n.connected);
#define ION_TO_STATUS(name) s->set_##name(n.name);
    ION_BROKER_NODE_COUNTERS(ION_TO_STATUS)
#undef ION_TO_STATUS
    s->set_ingress_latency_p50_ns(n.ingress_latency_p50_ns);
    s->set_ingress_latency_p99_ns(n.ingress_latency_p99_ns);
    s->set_ingress_latency_max_ns(n.ingress_latency_max_ns);
    for (const uint64_t c : n.ingress_latency_le) s->add_ingress_latency_le(c);
    s->set_ingress_latency_count(n.ingress_latency_count);
    s->set_ingress_latency_sum_ns(static_cast<int64_t>(n.ingress_latency_sum_ns));
    for (const float w : n.weights) s->add_weights(w);
  }
  for (const auto& sp : slots_) {
    std::lock_guard lock(sp->links_mu);
    for (const auto& l : sp->links) {
      v1::LinkLatencyStatus* x = r.add_links();
      x->set_from(slots_[l.source]->name);
      x->set_to(sp->name);
      for (const uint64_t c : l.le) x->add_le(c);
      x->set_count(l.count);
      x->set_sum_ns(l.sum_ns);
    }
  }
  for (const auto& c : connection_stats()) {
    v1::ConnectionStatus* cs = r.add_connections();
    cs->set_index(c.index);
    cs->set_from(c.from);
    cs->set_delay_ns(c.delay_ns);
    cs->set_auto_delay(c.auto_delay);
    cs->set_raises(c.raises);
    cs->set_lowers(c.lowers);
  }
  for (size_t i = 1; i < kRejectCount; ++i) {
    const auto why = static_cast<Reject>(i);
    if (rejects_.get(why) > 0)
      (*r.mutable_rejects())[std::string(to_string(why))] = rejects_.get(why);
  }
}

}  // namespace ion::broker_impl

namespace ion {

LiveFeed::LiveFeed(size_t nodes, size_t cap_per_node) : buf_(nodes), samples_(nodes), cap_(cap_per_node) {
  for (auto& b : buf_) b.reserve(cap_);
}

void LiveFeed::watch(bool on) noexcept {
  watchers_.fetch_add(on ? 1 : -1, std::memory_order_relaxed);
}

void LiveFeed::offer(uint32_t node, const EventBatch& ev) noexcept {
  const size_t n = ev.size();
  if (ev.kind == EventKind::neuromodulator && ev.has_payload()) {
    // Waits for a reader's swap (a few pointer moves) rather than thin a slow stream.
    std::lock_guard lock(mu_);
    if (node >= samples_.size()) return;
    auto& b = samples_[node];
    for (size_t i = 0; i < n; ++i) {
      if (b.size() >= kMaxSamples) {
        dropped_samples_.fetch_add(n - i, std::memory_order_relaxed);
        break;
      }
      b.push_back({ev.times_ns[i], ev.channels[i], ev.payload[i]});
    }
    return;
  }
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || node >= buf_.size()) {  // a reader is swapping: skip, never wait
    thinned_.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  auto& b = buf_[node];
  const size_t room = cap_ - std::min(cap_, b.size());
  // Evenly spaced over the batch when it does not fit, so the raster stays representative.
  const size_t stride = room == 0 ? 0 : (n + room - 1) / room;
  size_t kept = 0;
  for (size_t i = 0; stride != 0 && i < n; i += stride, ++kept)
    b.push_back({ev.times_ns[i], ev.channels[i]});
  thinned_.fetch_add(n - kept, std::memory_order_relaxed);
}

void LiveFeed::take(std::vector<std::vector<LiveEvent>>& out, std::vector<std::vector<LiveSample>>& samples) {
  out.resize(buf_.size());
  for (auto& o : out) o.clear();
  samples.resize(samples_.size());
  for (auto& o : samples) o.clear();
  std::lock_guard lock(mu_);
  buf_.swap(out);
  samples_.swap(samples);
  for (auto& b : buf_) b.reserve(cap_);
}

}  // namespace ion
