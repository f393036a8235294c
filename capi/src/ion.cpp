// libion: the C API over the node (include/ion/ion.h). Every entry point catches everything:
// nothing throws across the C boundary.
#include "ion/ion.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "api_driver.h"
#include "ion/core/codec.h"
#include "ion/core/config.h"
#include "ion/core/log.h"
#include "ion/core/record.h"
#include "ion/core/security.h"
#include "ion/core/transport.h"
#include "ion/node/node.h"

namespace {

thread_local std::string t_last_error;

int fail(int code, std::string message) noexcept {
  try {
    t_last_error = std::move(message);
  } catch (...) {
  }
  return code;
}

// Runs `f`, turning every exception into an error code with its message.
template <typename F>
int guarded(const char* what, F&& f) noexcept {
  try {
    return f();
  } catch (const ion::ConfigError& e) {
    return fail(ION_ERR_CONFIG, e.what());
  } catch (const ion::SecurityError& e) {
    return fail(ION_ERR_SECURITY, e.what());
  } catch (const std::bad_alloc&) {
    return fail(ION_ERR_NO_MEMORY, std::string(what) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(ION_ERR_INTERNAL, std::string(what) + ": " + e.what());
  } catch (...) {
    return fail(ION_ERR_INTERNAL, std::string(what) + ": unknown failure");
  }
}

// Copies min(ours, theirs) bytes of a struct the library fills: older callers get a prefix.
template <typename T>
int copy_out(const T& ours, void* out, size_t out_size, const char* what) noexcept {
  if (out == nullptr) return fail(ION_ERR_ARGUMENT, std::string(what) + ": out is NULL");
  if (out_size == 0) return fail(ION_ERR_ARGUMENT, std::string(what) + ": out_size is 0");
  std::memcpy(out, &ours, std::min(sizeof(T), out_size));
  return ION_OK;
}

// Library log lines go to stderr (a program's stdout is its own), set up once per process.
void init_logging(const char* level) {
  static std::once_flag once;
  std::call_once(once, [] {
    // spdlog's stock default logger (unnamed, on stdout) becomes one on stderr; a host program
    // that set its own default logger keeps it, and gets the node's lines there.
    if (!spdlog::default_logger()->name().empty()) return;
    auto logger = spdlog::get("ion");
    if (!logger) logger = spdlog::stderr_color_mt("ion");
    spdlog::set_default_logger(logger);
  });
  const char* l = level == nullptr ? "warn" : level;
  if (!ion::set_log_level(l)) {
    throw ion::ConfigError(std::string("log_level: unknown level '") + l +
                           "' (trace, debug, info, warn, error, critical or off)");
  }
}

int refusal_code(ion::RefusalKind k) noexcept {
  switch (k) {
    case ion::RefusalKind::not_in_topology: return ION_ERR_REFUSED_NAME;
    case ion::RefusalKind::declared_sizes: return ION_ERR_REFUSED_SIZES;
    case ion::RefusalKind::not_authorized:
    case ion::RefusalKind::key_refused: return ION_ERR_REFUSED_AUTH;
    case ion::RefusalKind::version: return ION_ERR_REFUSED_VERSION;
    case ion::RefusalKind::encryption_mismatch:
    case ion::RefusalKind::handshake_failed: return ION_ERR_REFUSED_ENCRYPTION;
    case ion::RefusalKind::name_in_use: return ION_ERR_REFUSED_NAME_IN_USE;
    default: return ION_ERR_REFUSED_OTHER;
  }
}

}  // namespace

struct ion_node {
  std::unique_ptr<ion::Node> node;
  ion::capi::ApiDriver* driver = nullptr;  // owned by node
  std::thread thread;
  std::mutex failure_mu;
  std::string failure;  // why run() ended early (failure_mu)
  std::atomic<bool> ended{false};
  std::mutex receive_mu;  // one receiver at a time; guards `current`
  ion::capi::QueuedDelivery current;
  bool current_pending = false;  // taken from the queue, not yet handed over (capacity too small)
  uint32_t max_events_per_batch = 0;
};

struct ion_recording {
  std::unique_ptr<ion::record::Reader> reader;
  ion::Codec codec{{.max_message_bytes = ion::record::kMaxRecordBytes,
                    .max_events_per_batch = 1u << 22}};
  ion::BatchHeader header;
  ion::EventBatch events;
  uint64_t bad_batches = 0;
};

namespace {

int closed_error(ion_node* n) {
  std::lock_guard lock(n->failure_mu);
  return fail(ION_ERR_CLOSED, n->failure.empty() ? "the node has stopped" : n->failure);
}

// A local clock reading -> network time, once the node has it (the driver got its Emitter).
int to_network(ion_node* node, int64_t local_ns, int64_t* out, const char* what) {
  if (node == nullptr || out == nullptr) {
    return fail(ION_ERR_ARGUMENT, std::string(what) + ": node or out is NULL");
  }
  const ion::Emitter* e = node->driver->emitter();
  if (e == nullptr) {
    return fail(ION_ERR_NOT_READY, std::string(what) + ": no network time yet (not registered)");
  }
  *out = e->to_network_ns(local_ns);
  return ION_OK;
}

int start(std::unique_ptr<ion::Node> node, ion_node** out) {
  auto handle = std::make_unique<ion_node>();
  handle->driver = static_cast<ion::capi::ApiDriver*>(&node->driver());
  handle->driver->set_deadline_hint([n = node.get()] { return n->next_deadline_local_ns(); });
  handle->max_events_per_batch = node->options().limits.max_events_per_batch;
  handle->node = std::move(node);
  ion_node* h = handle.get();
  h->thread = std::thread([h] {
    pthread_setname_np(pthread_self(), "ion-node");
    try {
      h->node->run();
    } catch (const std::exception& e) {
      std::lock_guard lock(h->failure_mu);
      h->failure = std::string("the node stopped: ") + e.what();
      spdlog::error("{}", h->failure);
    } catch (...) {
      std::lock_guard lock(h->failure_mu);
      h->failure = "the node stopped: unknown failure";
    }
    h->ended.store(true);
    h->driver->stop();  // wakes a receiver
  });
  *out = handle.release();
  return ION_OK;
}

// The next delivery into node->current (the caller holds receive_mu): one kept back by a too
// small ion_receive_into first.
int next_delivery(ion_node* node, int64_t timeout_ms, const char* what) {
  if (node->current_pending) {
    node->current_pending = false;
    return ION_OK;
  }
  if (!node->driver->next(node->current, timeout_ms)) {
    if (node->ended.load() || node->driver->stopped()) return closed_error(node);
    return fail(ION_ERR_TIMEOUT, std::string(what) + ": nothing delivered within " +
                                     std::to_string(timeout_ms) + " ms");
  }
  return ION_OK;
}

int open_from(const ion::ConfigNode& root, ion_node** out, const char* log_level) {
  init_logging(log_level);
  root.only_keys({"node", "driver"});
  ion::NodeOptions options = ion::NodeOptions::from_config(root);
  const ion::ConfigNode d = root.child("driver");
  if (d.string("kind") != "api") d.fail("kind", "api (a node opened through libion)");
  auto driver = std::make_unique<ion::capi::ApiDriver>(ion::capi::ApiDriverOptions::from_config(d));
  return start(std::make_unique<ion::Node>(std::move(options), std::move(driver)), out);
}

}  // namespace

extern "C" {

const char* ion_error_name(int code) {
  switch (code) {
    case ION_OK: return "ION_OK";  // == ION_EMIT_QUEUED
    case ION_EMIT_QUEUED_DROPPING_OLDEST: return "ION_EMIT_QUEUED_DROPPING_OLDEST";
    case ION_EMIT_REJECTED: return "ION_EMIT_REJECTED";
    case ION_ERR_ARGUMENT: return "ION_ERR_ARGUMENT";
    case ION_ERR_CONFIG: return "ION_ERR_CONFIG";
    case ION_ERR_SECURITY: return "ION_ERR_SECURITY";
    case ION_ERR_TIMEOUT: return "ION_ERR_TIMEOUT";
    case ION_ERR_NOT_READY: return "ION_ERR_NOT_READY";
    case ION_ERR_CLOSED: return "ION_ERR_CLOSED";
    case ION_ERR_ABI: return "ION_ERR_ABI";
    case ION_ERR_NO_MEMORY: return "ION_ERR_NO_MEMORY";
    case ION_ERR_IO: return "ION_ERR_IO";
    case ION_ERR_REFUSED_NAME: return "ION_ERR_REFUSED_NAME";
    case ION_ERR_REFUSED_SIZES: return "ION_ERR_REFUSED_SIZES";
    case ION_ERR_REFUSED_AUTH: return "ION_ERR_REFUSED_AUTH";
    case ION_ERR_REFUSED_VERSION: return "ION_ERR_REFUSED_VERSION";
    case ION_ERR_REFUSED_ENCRYPTION: return "ION_ERR_REFUSED_ENCRYPTION";
    case ION_ERR_REFUSED_OTHER: return "ION_ERR_REFUSED_OTHER";
    case ION_ERR_REFUSED_NAME_IN_USE: return "ION_ERR_REFUSED_NAME_IN_USE";
    case ION_ERR_INTERNAL: return "ION_ERR_INTERNAL";
    default: return "ION_ERR_UNKNOWN";
  }
}

const char* ion_last_error(void) { return t_last_error.c_str(); }

const char* ion_version(void) { return "0.1.0"; }

int ion_abi_version(void) { return ION_ABI_VERSION; }

int ion_check_abi(int abi_version) {
  if (abi_version == ION_ABI_VERSION) return ION_OK;
  return fail(ION_ERR_ABI, "the program was built for libion ABI " + std::to_string(abi_version) +
                               "; this library (" + ion_version() + ") has ABI " +
                               std::to_string(ION_ABI_VERSION));
}

int ion_node_params_init(ion_node_params* p, size_t size) {
  if (p == nullptr) return fail(ION_ERR_ARGUMENT, "ion_node_params_init: params is NULL");
  ion_node_params d{};
  d.batch_budget_us = -1;
  d.receive_spin_us = -1;
  std::memcpy(p, &d, std::min(sizeof d, size));
  return ION_OK;
}

int ion_open(const ion_node_params* params, size_t params_size, ion_node** out) {
  if (out == nullptr) return fail(ION_ERR_ARGUMENT, "ion_open: out is NULL");
  *out = nullptr;
  if (params == nullptr) return fail(ION_ERR_ARGUMENT, "ion_open: params is NULL");
  ion_node_params p{};
  p.batch_budget_us = -1;
  p.receive_spin_us = -1;
  std::memcpy(&p, params, std::min(sizeof p, params_size));
  if (p.name == nullptr) return fail(ION_ERR_ARGUMENT, "ion_open: params.name is NULL");
  return guarded("ion_open", [&]() -> int {
    // The parameters become a node file, so they are checked exactly like ion-node's.
    YAML::Emitter y;
    y << YAML::BeginMap << YAML::Key << "node" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << p.name;
    if (p.broker != nullptr) y << YAML::Key << "broker" << YAML::Value << YAML::DoubleQuoted << p.broker;
    if ((p.key_file == nullptr) != (p.broker_key == nullptr)) {
      return fail(ION_ERR_ARGUMENT, std::string("ion_open: ") +
                                        (p.key_file == nullptr ? "key_file" : "broker_key") +
                                        " is missing: CURVE needs this node's key and the broker's");
    }
    if (p.key_file != nullptr) {
      y << YAML::Key << "secret_key" << YAML::Value << YAML::DoubleQuoted << p.key_file;
      y << YAML::Key << "broker_key" << YAML::Value << YAML::DoubleQuoted << p.broker_key;
    }
    if (p.insecure != 0) y << YAML::Key << "insecure" << YAML::Value << true;
    if (p.batch_budget_us >= 0) {
      y << YAML::Key << "batch_budget" << YAML::Value << (std::to_string(p.batch_budget_us) + "us");
    }
    y << YAML::EndMap;
    y << YAML::Key << "driver" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "kind" << YAML::Value << "api";
    y << YAML::Key << "channels" << YAML::Value << p.channels;
    y << YAML::Key << "ports" << YAML::Value << p.ports;
    if (p.kind != nullptr) y << YAML::Key << "node_kind" << YAML::Value << YAML::DoubleQuoted << p.kind;
    if (p.receive_queue_events != 0) {
      y << YAML::Key << "receive_queue_events" << YAML::Value << p.receive_queue_events;
    }
    if (p.receive_spin_us >= 0) {
      y << YAML::Key << "receive_spin" << YAML::Value << (std::to_string(p.receive_spin_us) + "us");
    }
    y << YAML::EndMap << YAML::EndMap;
    // Relative key paths are resolved against the working directory.
    return open_from(ion::ConfigNode::parse(y.c_str(), "./ion_open parameters"), out, p.log_level);
  });
}

int ion_open_config(const char* path, ion_node** out) {
  if (out == nullptr) return fail(ION_ERR_ARGUMENT, "ion_open_config: out is NULL");
  *out = nullptr;
  if (path == nullptr) return fail(ION_ERR_ARGUMENT, "ion_open_config: path is NULL");
  return guarded("ion_open_config", [&]() -> int {
    return open_from(ion::ConfigNode::load_file(path), out, nullptr);
  });
}

int ion_close(ion_node* node) {
  if (node == nullptr) return ION_OK;
  return guarded("ion_close", [&]() -> int {
    node->node->stop();
    if (node->thread.joinable()) node->thread.join();
    delete node;
    return ION_OK;
  });
}

int ion_wait_registered(ion_node* node, int64_t timeout_ms) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_wait_registered: node is NULL");
  return guarded("ion_wait_registered", [&]() -> int {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = timeout_ms < 0 ? std::chrono::steady_clock::time_point::max()
                                         : start + std::chrono::milliseconds(timeout_ms);
    while (true) {
      if (node->ended.load()) return closed_error(node);
      const auto now = std::chrono::steady_clock::now();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      // Short slices: a node that fails meanwhile is noticed.
      const auto slice = std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(100));
      ion::Refusal refusal;
      switch (node->node->wait_registration(1, slice, &refusal)) {
        case ion::Registration::registered:
          if (node->driver->emitter() != nullptr) return ION_OK;
          break;  // the node thread starts the driver right after the clock syncs
        case ion::Registration::refused: return fail(refusal_code(refusal.kind), refusal.reason);
        case ion::Registration::timed_out: break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        return fail(ION_ERR_TIMEOUT,
                    "node '" + node->node->options().name + "' not registered with " +
                        node->node->options().broker + " after " + std::to_string(waited.count()) +
                        " ms: no answer from a broker there (is it running, and is this the "
                        "address it listens on?)");
      }
    }
  });
}

int ion_emit(ion_node* node, const uint32_t* channels, const int64_t* times_ns,
             const float* payload, size_t count, int kind, uint32_t stream) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_emit: node is NULL");
  if (count == 0) return ION_EMIT_QUEUED;
  if (channels == nullptr) return fail(ION_ERR_ARGUMENT, "ion_emit: channels is NULL");
  if (kind < 0 || kind >= ion::kEventKindCount) {
    return fail(ION_ERR_ARGUMENT, "ion_emit: kind " + std::to_string(kind) +
                                      " is not an ion_event_kind (0-3)");
  }
  if (node->ended.load()) return closed_error(node);
  ion::Emitter* e = node->driver->emitter();
  if (e == nullptr) {
    return fail(ION_ERR_NOT_READY, "ion_emit: node '" + node->node->options().name +
                                       "' has no network time yet: wait for its registration");
  }
  return guarded("ion_emit", [&]() -> int {
    const uint32_t declared = node->driver->options().channels;
    int result = ION_EMIT_QUEUED;
    size_t bad = count;
    for (size_t i = 0; i < count; ++i) {
      if (channels[i] >= declared) {
        bad = i;
        break;
      }
    }
    thread_local ion::EventBatch batch;
    const size_t chunk = std::max<size_t>(1, node->max_events_per_batch);
    const int64_t now = times_ns == nullptr ? e->network_now_ns() : 0;
    for (size_t first = 0; first < count; first += chunk) {
      const size_t n = std::min(chunk, count - first);
      batch.clear();
      batch.stream = stream;
      batch.kind = static_cast<ion::EventKind>(kind);
      batch.channels.assign(channels + first, channels + first + n);
      if (times_ns == nullptr) {
        batch.times_ns.assign(n, now);
      } else {
        batch.times_ns.assign(times_ns + first, times_ns + first + n);
        int64_t t_now = INT64_MIN;
        for (auto& t : batch.times_ns) {
          if (t == ION_TIME_NOW) {
            if (t_now == INT64_MIN) t_now = e->network_now_ns();
            t = t_now;
          }
        }
      }
      if (payload != nullptr) batch.payload.assign(payload + first, payload + first + n);
      // A batch with a channel beyond those declared goes to the node anyway: it counts it.
      const ion::EmitStatus s = e->emit(batch);
      if (s == ion::EmitStatus::rejected) {
        result = ION_EMIT_REJECTED;
      } else if (s == ion::EmitStatus::queued_dropping_oldest && result == ION_EMIT_QUEUED) {
        result = ION_EMIT_QUEUED_DROPPING_OLDEST;
      }
    }
    if (bad < count) {
      return fail(ION_EMIT_REJECTED, "ion_emit: channel " + std::to_string(channels[bad]) +
                                         " (event " + std::to_string(bad) + ") is beyond the " +
                                         std::to_string(declared) +
                                         " output channels this node declared; its batch was "
                                         "dropped (counted)");
    }
    if (result == ION_EMIT_REJECTED) {
      return fail(ION_EMIT_REJECTED, "ion_emit: the node rejected the batch (counted as dropped)");
    }
    return result;
  });
}

int ion_receive(ion_node* node, ion_delivery* out, size_t out_size, int64_t timeout_ms) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_receive: node is NULL");
  if (out == nullptr || out_size == 0) return fail(ION_ERR_ARGUMENT, "ion_receive: out is NULL");
  std::lock_guard lock(node->receive_mu);
  if (const int rc = next_delivery(node, timeout_ms, "ion_receive"); rc != ION_OK) return rc;
  ion_delivery d{};
  ion::capi::fill_delivery(node->current.header, node->current.events, node->current.delivery, d);
  return copy_out(d, out, out_size, "ion_receive");
}

int ion_receive_into(ion_node* node, ion_delivery* out, size_t out_size, uint32_t* ports,
                     int64_t* times_ns, float* payload, size_t capacity, int64_t timeout_ms) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_receive_into: node is NULL");
  if (out == nullptr || out_size == 0 || ports == nullptr || times_ns == nullptr) {
    return fail(ION_ERR_ARGUMENT, "ion_receive_into: out, ports or times_ns is NULL");
  }
  std::lock_guard lock(node->receive_mu);
  if (const int rc = next_delivery(node, timeout_ms, "ion_receive_into"); rc != ION_OK) return rc;
  const ion::EventBatch& e = node->current.events;
  const size_t n = e.size();
  if (n > capacity) {
    node->current_pending = true;
    return fail(ION_ERR_ARGUMENT, "ion_receive_into: a delivery of " + std::to_string(n) +
                                      " events does not fit in " + std::to_string(capacity) +
                                      "; it is kept for the next call");
  }
  std::memcpy(ports, e.channels.data(), n * sizeof(uint32_t));
  std::memcpy(times_ns, e.times_ns.data(), n * sizeof(int64_t));
  ion_delivery d{};
  ion::capi::fill_delivery(node->current.header, e, node->current.delivery, d);
  d.ports = ports;
  d.times_ns = times_ns;
  d.payload = nullptr;
  if (payload != nullptr && e.has_payload()) {
    std::memcpy(payload, e.payload.data(), n * sizeof(float));
    d.payload = payload;
  }
  return copy_out(d, out, out_size, "ion_receive_into");
}

int ion_set_callback(ion_node* node, ion_delivery_fn fn, void* user) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_set_callback: node is NULL");
  node->driver->set_callback(fn, user);
  return ION_OK;
}

int ion_network_time_ns(ion_node* node, int64_t* out) {
  return to_network(node, ion::SteadyClock::instance().now_ns(), out, "ion_network_time_ns");
}

int ion_local_time_ns(ion_node* node, int64_t* out) {
  if (node == nullptr || out == nullptr) {
    return fail(ION_ERR_ARGUMENT, "ion_local_time_ns: node or out is NULL");
  }
  *out = ion::SteadyClock::instance().now_ns();
  return ION_OK;
}

int ion_to_network_ns(ion_node* node, int64_t local_ns, int64_t* out) {
  return to_network(node, local_ns, out, "ion_to_network_ns");
}

int ion_clock_estimate(ion_node* node, ion_clock* out, size_t out_size) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_clock_estimate: node is NULL");
  const ion::ClockEstimate e = node->node->clock_estimate(ion::SteadyClock::instance().now_ns());
  ion_clock c{};
  c.synced = e.valid ? 1 : 0;
  c.offset_ns = e.offset_ns;
  c.uncertainty_ns = e.uncertainty_ns;
  c.drift_ppm = e.drift_ppm;
  c.min_rtt_ns = e.min_rtt_ns;
  return copy_out(c, out, out_size, "ion_clock_estimate");
}

int ion_get_stats(ion_node* node, ion_stats* out, size_t out_size) {
  if (node == nullptr) return fail(ION_ERR_ARGUMENT, "ion_get_stats: node is NULL");
  return guarded("ion_get_stats", [&]() -> int {
    const ion::NodeStats s = node->node->stats();
    ion_stats r{};
    r.registered = s.registered ? 1 : 0;
    r.registrations = s.registrations;
    r.broker_restarts = s.broker_restarts;
    r.emitted = s.emitted_events;
    r.dropped = s.dropped_events;
    r.received = s.received_events;
    r.lost = s.lost_events;
    r.late = s.late_events;
    r.late_dropped = s.late_dropped;
    r.overrun = s.playout_overrun;
    r.on_time = s.on_time_events;
    r.duplicates = s.duplicate_or_reordered;
    r.source_restarts = s.source_restarts;
    r.playout_overflow = s.playout_overflow;
    r.receive_overflow = node->driver->receive_overflow();
    r.rejected_frames = s.rejected_frames;
    r.delivery_error_p50_ns = s.delivery_error_p50_ns;
    r.delivery_error_p99_ns = s.delivery_error_p99_ns;
    r.delivery_error_max_ns = s.delivery_error_max_ns;
    r.latency_p50_ns = s.latency_p50_ns;
    r.latency_p99_ns = s.latency_p99_ns;
    r.latency_max_ns = s.latency_max_ns;
    return copy_out(r, out, out_size, "ion_get_stats");
  });
}

int ion_recording_open(const char* path, ion_recording** out) {
  if (out == nullptr) return fail(ION_ERR_ARGUMENT, "ion_recording_open: out is NULL");
  *out = nullptr;
  if (path == nullptr) return fail(ION_ERR_ARGUMENT, "ion_recording_open: path is NULL");
  try {
    auto r = std::make_unique<ion_recording>();
    r->reader = std::make_unique<ion::record::Reader>(path);
    *out = r.release();
    return ION_OK;
  } catch (const std::bad_alloc&) {
    return fail(ION_ERR_NO_MEMORY, "ion_recording_open: out of memory");
  } catch (const std::exception& e) {
    return fail(ION_ERR_IO, e.what());
  } catch (...) {
    return fail(ION_ERR_IO, std::string("cannot read ") + path);
  }
}

int ion_recording_next(ion_recording* rec, ion_recording_batch* out, size_t out_size) {
  if (rec == nullptr) return fail(ION_ERR_ARGUMENT, "ion_recording_next: rec is NULL");
  return guarded("ion_recording_next", [&]() -> int {
    ion::record::Record r;
    while (rec->reader->next(r)) {
      if (r.type != ion::record::RecordType::batch) continue;
      const ion::Decoded dec = rec->codec.decode(r.body);
      if (!dec.ok() || dec.body != ion::Body::spike_batch ||
          rec->codec.take_batch({}, rec->header, rec->events) != ion::Reject::none) {
        ++rec->bad_batches;
        continue;
      }
      ion_recording_batch b{};
      b.count = rec->events.size();
      b.channels = rec->events.channels.data();
      b.times_ns = rec->events.times_ns.data();
      b.payload = rec->events.has_payload() ? rec->events.payload.data() : nullptr;
      b.arrival_ns = r.arrival_ns;
      b.kind = static_cast<int>(rec->events.kind);
      b.stream = rec->events.stream;
      b.source_node = rec->header.source_node.c_str();
      return copy_out(b, out, out_size, "ion_recording_next");
    }
    return 1;
  });
}

int ion_recording_info_get(ion_recording* rec, ion_recording_info* out, size_t out_size) {
  if (rec == nullptr) return fail(ION_ERR_ARGUMENT, "ion_recording_info_get: rec is NULL");
  const auto& h = rec->reader->header();
  ion_recording_info i{};
  i.anchor_network_ns = h.anchor_network_ns();
  i.anchor_utc_ns = h.anchor_utc_ns();
  i.origin = h.origin().c_str();
  i.torn = rec->reader->torn() ? 1 : 0;
  i.tail_reason = rec->reader->tail_reason().c_str();
  i.bad_batches = rec->bad_batches;
  return copy_out(i, out, out_size, "ion_recording_info_get");
}

void ion_recording_close(ion_recording* rec) { delete rec; }

}  // extern "C"
