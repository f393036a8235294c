/* libion: the IoN node as a plain C library (docs/c-api.md).
 *
 * A program joins an IoN network as a lab: it opens a node (the same node as `ion-node`: clock
 * sync, playout at deadlines, adaptive batching, loss accounting, CURVE), emits events stamped in
 * network time, and receives the events routed to it at their deadlines.
 *
 * Conventions
 * - Every function returns an int: ION_OK (0) or a negative ion_error, except where stated.
 *   After a failure, ion_last_error() gives a one-line message (per thread).
 * - Nothing throws or aborts across this boundary; a NULL handle is ION_ERR_ARGUMENT.
 * - Times are int64 nanoseconds. "Network time" is the broker's clock, shared by every node.
 * - Structs that the library fills are passed with their size (sizeof as the caller knows it),
 *   so a program built against an older header keeps working with a newer library.
 * - Thread safety is stated per function. ion_close() ends a handle: no other call on that
 *   handle may run during or after it (like free()).
 */
#ifndef ION_ION_H
#define ION_ION_H

#include <stddef.h>
#include <stdint.h>

#define ION_VERSION_MAJOR 0
#define ION_VERSION_MINOR 1
#define ION_VERSION_PATCH 0
/* The ABI this header describes; the library's SONAME is libion.so.<ION_ABI_VERSION>. */
#define ION_ABI_VERSION 1

#if defined(__GNUC__)
#define ION_API __attribute__((visibility("default")))
#else
#define ION_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ion_error {
  ION_OK = 0,
  ION_ERR_ARGUMENT = -1,    /* a bad argument (NULL, length, range); nothing was done */
  ION_ERR_CONFIG = -2,      /* the node file or the parameters are invalid */
  ION_ERR_SECURITY = -3,    /* key files unusable, or plaintext to a remote broker refused */
  ION_ERR_TIMEOUT = -4,     /* nothing happened within the timeout */
  ION_ERR_NOT_READY = -5,   /* no network time yet: wait for registration first */
  ION_ERR_CLOSED = -6,      /* the node has stopped (it failed; see ion_last_error) */
  ION_ERR_ABI = -7,         /* the program was built for another ABI version */
  ION_ERR_NO_MEMORY = -8,
  ION_ERR_IO = -9,          /* a file could not be read */
  /* Registration refused; the message carries the broker's reason. The node keeps retrying
   * (slowly) until closed, so an operator can fix the broker's side meanwhile. */
  ION_ERR_REFUSED_NAME = -20,       /* the broker's topology has no node of this name */
  ION_ERR_REFUSED_SIZES = -21,      /* more channels or fewer ports than the topology says */
  ION_ERR_REFUSED_AUTH = -22,       /* key not on the allowlist, or not allowed this name */
  ION_ERR_REFUSED_VERSION = -23,    /* the broker speaks another protocol version */
  ION_ERR_REFUSED_ENCRYPTION = -24, /* CURVE on one side only, or a wrong broker key */
  ION_ERR_REFUSED_OTHER = -25,      /* e.g. too many nodes */
  ION_ERR_REFUSED_NAME_IN_USE = -26, /* another live process holds this name (docs/cli.md) */
  ION_ERR_INTERNAL = -99
} ion_error;

/* Thread-safe. A static name for an ion_error or ion_emit_result ("ION_ERR_TIMEOUT"). */
ION_API const char* ion_error_name(int code);
/* Thread-safe. The message of the last failing call made by this thread ("" if none). Valid
 * until this thread's next call into the library. */
ION_API const char* ion_last_error(void);

/* Thread-safe. "0.1.0". */
ION_API const char* ion_version(void);
/* Thread-safe. The library's ABI version. */
ION_API int ion_abi_version(void);
/* Thread-safe. ION_OK if a program built with ION_ABI_VERSION == abi_version can use this
 * library; else ION_ERR_ABI with a message. Call ion_check_abi(ION_ABI_VERSION) first. */
ION_API int ion_check_abi(int abi_version);

typedef struct ion_node ion_node;

typedef enum ion_event_kind {
  ION_KIND_SPIKE = 0,           /* a neuron or electrode fired */
  ION_KIND_SYNAPTIC_INPUT = 1,  /* payload = weight */
  ION_KIND_STIMULATION = 2,     /* payload = amplitude */
  ION_KIND_NEUROMODULATOR = 3   /* payload = concentration */
} ion_event_kind;

typedef struct ion_node_params {
  const char* name;        /* required: the node's name in the broker's topology (1-64 chars) */
  const char* broker;      /* NULL: "tcp://127.0.0.1:5555" */
  const char* kind;        /* what the node stands for: NULL or "external" (default),
                              "generator", "sink", "mea", "chip", "synapse", "replay" */
  uint32_t channels;       /* output channels (ids 0..channels-1 may be emitted) */
  uint32_t ports;          /* input ports (deliveries carry ids 0..ports-1) */
  const char* key_file;    /* this node's secret key file (ion keygen), or NULL */
  const char* broker_key;  /* the broker's public key: Z85 text or its .pub file, or NULL */
  int insecure;            /* nonzero: allow plaintext to a broker off loopback (never WAN) */
  int64_t batch_budget_us; /* adaptive batching budget; < 0: default (1000 us); 0: off */
  uint64_t receive_queue_events; /* events held for ion_receive; 0: default (1 << 20) */
  const char* log_level;   /* the node's log lines on stderr: "trace".."off"; NULL: "warn".
                              (spdlog's process-wide level: a host using spdlog shares it) */
  int64_t receive_spin_us; /* ion_receive stays awake (spins) from this long before the next
                              known deadline, so the scheduler's wake-up does not delay it;
                              < 0: default (0: never spin; worth it only with a core to
                              spare, or the spin delays the node's own playout thread) */
} ion_node_params;

/* Thread-safe. Fills *params with the defaults; params_size = sizeof(ion_node_params). */
ION_API int ion_node_params_init(ion_node_params* params, size_t params_size);

/* Thread-safe. Opens a node and starts connecting to the broker (it returns at once; see
 * ion_wait_registered). On failure *out is NULL. */
ION_API int ion_open(const ion_node_params* params, size_t params_size, ion_node** out);
/* Thread-safe. The same from a node YAML file: the `node:` mapping of ion-node's config files
 * (docs/config.md) and `driver: {kind: api, channels: N, ports: M, node_kind: external,
 * receive_queue_events: E}`. */
ION_API int ion_open_config(const char* path, ion_node** out);
/* Flushes what was emitted, says goodbye to the broker, stops the node and frees the handle.
 * Deliveries still waiting for their deadline are counted as abandoned. NULL is a no-op.
 * Not concurrent with any other call on this handle. */
ION_API int ion_close(ion_node* node);

/* Thread-safe. Waits until the node is registered and has network time. ION_OK; or one of
 * ION_ERR_REFUSED_* as soon as the broker (or the handshake) refused it, with the reason in
 * ion_last_error(); or ION_ERR_TIMEOUT; or ION_ERR_CLOSED. timeout_ms < 0 waits forever. */
ION_API int ion_wait_registered(ion_node* node, int64_t timeout_ms);

typedef enum ion_emit_result {
  ION_EMIT_QUEUED = 0,                  /* taken; sent when the broker is reachable */
  ION_EMIT_QUEUED_DROPPING_OLDEST = 1,  /* taken; older queued batches were dropped (counted) */
  ION_EMIT_REJECTED = 2                 /* invalid (a channel beyond those declared): counted
                                           as dropped, not sent; the reason in ion_last_error() */
} ion_emit_result;

/* For times_ns entries: stamp the event with the network time of the call. */
#define ION_TIME_NOW INT64_MIN

/* Thread-safe; never blocks. Emits `count` events of one kind on stream `stream` (0 for most
 * uses): channels[i] at source time times_ns[i] (network ns). times_ns NULL: all "now".
 * payload NULL: none. Batches beyond the node's per-batch limit are split. Returns an
 * ion_emit_result (>= 0) or a negative ion_error (ION_ERR_NOT_READY before the first
 * registration). */
ION_API int ion_emit(ion_node* node, const uint32_t* channels, const int64_t* times_ns,
                     const float* payload, size_t count, int kind, uint32_t stream);

/* A batch of events routed to this node, handed over at its deadline. */
typedef struct ion_delivery {
  size_t count;
  const uint32_t* ports;    /* input ports of this node */
  const int64_t* times_ns;  /* source times, network ns; deadline of event i = times_ns[i] + delay_ns */
  const float* payload;     /* NULL when the batch carries none */
  int64_t delay_ns;         /* the connection's delay */
  int64_t release_ns;       /* network time at which the node handed the batch over */
  int kind;                 /* ion_event_kind */
  int late;                 /* nonzero: arrived after its deadline, handed over at once (counted) */
  uint32_t stream;
  uint32_t source_node_id;
  const char* source_node;  /* the sending node's name */
} ion_delivery;

/* Waits up to timeout_ms (< 0: forever, 0: poll) for the next delivery. ION_OK with *out
 * filled; its arrays stay valid until the next ion_receive on this node or ion_close.
 * ION_ERR_TIMEOUT; ION_ERR_CLOSED. Deliveries are queued at their deadline by the node's playout
 * thread, so the caller's loop adds only its wake-up, not its period, to the timing. One thread
 * at a time receives (calls are serialised); other calls may run beside it. */
ION_API int ion_receive(ion_node* node, ion_delivery* out, size_t out_size, int64_t timeout_ms);

/* The same, copying the delivery's columns into the caller's arrays (capacity events each;
 * payload may be NULL to skip it): the form for bindings that own their buffers (numpy). In
 * *out the array pointers are the caller's, and `payload` is NULL when the batch carries none.
 * A delivery larger than capacity is not lost: ION_ERR_ARGUMENT says so and the next call
 * returns it (it never exceeds the node's events per batch, 65536 by default). */
ION_API int ion_receive_into(ion_node* node, ion_delivery* out, size_t out_size, uint32_t* ports,
                             int64_t* times_ns, float* payload, size_t capacity,
                             int64_t timeout_ms);

/* Called with each delivery instead of queueing it: from the node's playout thread at the
 * deadline, or from its receive thread for late events, so two calls may overlap. It must
 * return quickly and must not call ion_close. The delivery is valid during the call only. */
typedef void (*ion_delivery_fn)(const ion_delivery* delivery, void* user);
/* Thread-safe. Sets (or, with fn NULL, removes) the callback; deliveries then queue again. */
ION_API int ion_set_callback(ion_node* node, ion_delivery_fn fn, void* user);

/* Thread-safe. Network time now (ION_ERR_NOT_READY before the clock is synced). */
ION_API int ion_network_time_ns(ion_node* node, int64_t* out);
/* Thread-safe. The node's monotonic clock (CLOCK_MONOTONIC), and its mapping to network time:
 * for stamping acquisitions made earlier than the call. */
ION_API int ion_local_time_ns(ion_node* node, int64_t* out);
ION_API int ion_to_network_ns(ion_node* node, int64_t local_ns, int64_t* out);

typedef struct ion_clock {
  int synced;
  int64_t offset_ns;       /* network - local */
  int64_t uncertainty_ns;  /* |true offset - offset_ns| <= this */
  double drift_ppm;
  int64_t min_rtt_ns;
} ion_clock;
/* Thread-safe. */
ION_API int ion_clock_estimate(ion_node* node, ion_clock* out, size_t out_size);

typedef struct ion_stats {
  int registered;
  uint64_t registrations;
  uint64_t broker_restarts;
  uint64_t emitted;           /* events taken from the caller */
  uint64_t dropped;           /* dropped here: send queue full (drop-oldest) or rejected */
  uint64_t received;          /* handed over (queued for ion_receive or given to the callback) */
  uint64_t lost;              /* exact gaps in the source streams routed here */
  uint64_t late;              /* arrived after their deadline */
  uint64_t late_dropped;      /* ... and dropped by the connection's policy */
  uint64_t overrun;           /* arrived in time, handed over later than the node's stated
                                 precision (its playout thread was held up): flagged late too */
  uint64_t on_time;
  uint64_t duplicates;        /* batches not delivered because already seen */
  uint64_t source_restarts;
  uint64_t playout_overflow;  /* dropped: too many events waiting for their deadline */
  uint64_t receive_overflow;  /* dropped: ion_receive's queue was full (a caller too slow) */
  uint64_t rejected_frames;   /* frames from the broker that failed validation */
  int64_t delivery_error_p50_ns; /* hand-over - deadline of on-time events, at the node */
  int64_t delivery_error_p99_ns;
  int64_t delivery_error_max_ns;
  int64_t latency_p50_ns;     /* arrival - source time */
  int64_t latency_p99_ns;
  int64_t latency_max_ns;
} ion_stats;
/* Thread-safe. */
ION_API int ion_get_stats(ion_node* node, ion_stats* out, size_t out_size);

/* --- Recordings (.ionrec, docs/record-format.md), read-only --- */
typedef struct ion_recording ion_recording;

typedef struct ion_recording_info {
  int64_t anchor_network_ns;  /* network time at which ... */
  int64_t anchor_utc_ns;      /* ... the broker read this UTC time (ns since 1970) */
  const char* origin;         /* "ion record tcp://...", "ion import ..." */
  int torn;                   /* nonzero when reading stopped at a torn tail */
  const char* tail_reason;
  uint64_t bad_batches;       /* records whose batch did not decode (skipped, counted) */
} ion_recording_info;

/* One batch of a recording, in file order. */
typedef struct ion_recording_batch {
  size_t count;
  const uint32_t* channels;
  const int64_t* times_ns;  /* source times, network ns */
  const float* payload;     /* NULL when none */
  int64_t arrival_ns;       /* network time the recorder received it */
  int kind;
  uint32_t stream;
  const char* source_node;
} ion_recording_batch;

/* A recording handle is used by one thread at a time. */
ION_API int ion_recording_open(const char* path, ion_recording** out);
/* ION_OK with the next batch, 1 at the end (or a torn tail), or a negative ion_error. The
 * arrays stay valid until the next call on this handle. */
ION_API int ion_recording_next(ion_recording* rec, ion_recording_batch* out, size_t out_size);
/* Valid after the last ion_recording_next for `torn`, `tail_reason` and `bad_batches`. */
ION_API int ion_recording_info_get(ion_recording* rec, ion_recording_info* out, size_t out_size);
ION_API void ion_recording_close(ion_recording* rec);

#ifdef __cplusplus
}
#endif

#endif /* ION_ION_H */
