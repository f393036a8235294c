"""A node of an IoN network run by Python code: emit spikes, receive them at their deadlines."""
from __future__ import annotations

import ctypes
import enum
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Union

import numpy as np

from . import _lib

ArrayLike = Any

OK = 0
ERR_ARGUMENT, ERR_CONFIG, ERR_SECURITY, ERR_TIMEOUT, ERR_NOT_READY, ERR_CLOSED = -1, -2, -3, -4, -5, -6
_REFUSALS = {-20: "name", -21: "sizes", -22: "auth", -23: "version", -24: "encryption", -25: "other",
             -26: "name_in_use"}


class IonError(Exception):
    """A failure reported by libion: `code` (an ion_error), `code_name` and the message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.code_name = _lib.lib().ion_error_name(code).decode()


class RefusedError(IonError):
    """The broker (or the connection's handshake) refused the node. `reason` is the broker's own
    message; `kind` is one of name, sizes, auth, version, encryption, name_in_use, other."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.reason = message
        self.kind = _REFUSALS.get(code, "other")


class NotReadyError(IonError):
    """The node has no network time yet (it is not registered)."""


class ClosedError(IonError):
    """The node is closed, or stopped after a failure."""


class SecurityError(IonError, PermissionError):
    """Keys unusable, or plaintext to a broker off loopback refused (docs/security.md)."""


class RegistrationTimeout(IonError, TimeoutError):
    """No broker answered within the timeout."""


def _raise(code: int) -> None:
    msg = _lib.lib().ion_last_error().decode(errors="replace")
    if code in _REFUSALS:
        raise RefusedError(code, msg)
    if code == ERR_NOT_READY:
        raise NotReadyError(code, msg)
    if code == ERR_CLOSED:
        raise ClosedError(code, msg)
    if code == ERR_TIMEOUT:
        raise RegistrationTimeout(code, msg)
    if code == ERR_SECURITY:
        raise SecurityError(code, msg)
    if code in (ERR_ARGUMENT, ERR_CONFIG):
        raise ValueError(msg)
    raise IonError(code, msg)


class EventKind(enum.IntEnum):
    SPIKE = 0
    SYNAPTIC_INPUT = 1  # payload = weight
    STIMULATION = 2  # payload = amplitude
    NEUROMODULATOR = 3  # payload = concentration


class EmitResult(enum.IntEnum):
    QUEUED = 0
    QUEUED_DROPPING_OLDEST = 1  # taken; older queued batches were dropped (counted)
    REJECTED = 2


_KIND_NAMES = {k.name.lower(): int(k) for k in EventKind}
_EMIT_RESULTS = tuple(EmitResult)


def _kind(kind: Union[str, int, EventKind]) -> int:
    k = _KIND_NAMES.get(kind) if isinstance(kind, str) else None  # the common case, fast
    if k is not None:
        return k
    if isinstance(kind, str):
        try:
            return int(EventKind[kind.upper()])
        except KeyError:
            raise ValueError(f"kind {kind!r}: one of {', '.join(k.name.lower() for k in EventKind)}") from None
    if isinstance(kind, (int, np.integer)) and int(kind) in {k.value for k in EventKind}:
        return int(kind)
    raise ValueError(f"kind {kind!r}: an EventKind, its name or its value 0-3")


_KINDS = tuple(EventKind)
_SOURCES: Dict[bytes, str] = {}


def _source_name(raw: Optional[bytes]) -> str:
    name = _SOURCES.get(raw or b"")
    if name is None:
        name = _SOURCES[raw or b""] = (raw or b"").decode(errors="replace")
    return name


@dataclass
class Delivery:
    """Events routed to this node, handed over at their deadline.

    ports: uint32 input ports of this node; times_ns: int64 source times (network ns);
    payload: float32 values or None; late: bool per event (arrived after its deadline, counted);
    delay_ns: the connection's delay (deadline = times_ns + delay_ns); release_ns: network time
    the node handed the batch over; source: the sending node's name."""

    ports: np.ndarray
    times_ns: np.ndarray
    payload: Optional[np.ndarray]
    late: np.ndarray
    delay_ns: int
    release_ns: int
    kind: EventKind
    stream: int
    source: str
    source_id: int

    @property
    def deadlines_ns(self) -> np.ndarray:
        """Each event's deadline in network ns (source time + the connection's delay)."""
        return self.times_ns + self.delay_ns

    def __len__(self) -> int:
        return int(self.ports.size)


def _copy(ptr: Any, n: int, dtype: Any) -> np.ndarray:
    # memmove into a fresh array: np.ctypeslib.as_array makes a ctypes type per length (slow).
    out = np.empty(n, dtype=dtype)
    if n:
        ctypes.memmove(out.__array_interface__["data"][0], ptr, n * out.itemsize)
    return out


def _delivery_from(d: _lib.Delivery) -> Delivery:
    n = int(d.count)
    ports = _copy(d.ports, n, np.uint32)
    times = _copy(d.times_ns, n, np.int64)
    payload = _copy(d.payload, n, np.float32) if (n and d.payload) else None
    return Delivery(ports=ports, times_ns=times, payload=payload, late=np.full(n, bool(d.late)),
                    delay_ns=int(d.delay_ns), release_ns=int(d.release_ns), kind=EventKind(d.kind),
                    stream=int(d.stream), source=(d.source_node or b"").decode(errors="replace"),
                    source_id=int(d.source_node_id))


def _as_channels(channels: ArrayLike) -> np.ndarray:
    a = np.asarray(channels)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"channels: a 1-D array, got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise TypeError(f"channels: integer channel ids, got dtype {a.dtype}")
    if a.size and a.dtype.kind == "i" and a.min() < 0:
        raise ValueError(f"channels: ids are >= 0, got {int(a.min())}")
    return np.ascontiguousarray(a, dtype=np.uint32)


def _as_times(times_ns: ArrayLike, n: int) -> np.ndarray:
    a = np.asarray(times_ns)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.ndim != 1:
        raise ValueError(f"times_ns: a 1-D array, got shape {a.shape}")
    if a.size != n:
        raise ValueError(f"times_ns has {a.size} entries for {n} channels: one time per event")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"times_ns[{i}] is {a[i]}: times are finite network-time nanoseconds")
        if a.size and np.abs(a).max() >= 2.0 ** 63:
            raise ValueError("times_ns: beyond int64 nanoseconds")
        a = np.rint(a)
    elif a.size and a.dtype.kind not in "iu":
        raise TypeError(f"times_ns: integer (or float) nanoseconds, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _as_payload(payload: ArrayLike, n: int) -> np.ndarray:
    a = np.asarray(payload)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.ndim != 1 or a.size != n:
        raise ValueError(f"payload has {a.size} entries for {n} channels: one value per event")
    if a.size and a.dtype.kind not in "iuf":
        raise TypeError(f"payload: numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"payload[{i}] is {a[i]}: values must be finite")
    return a


class Node:
    """One lab in an IoN network, run by this process.

    Node(name, broker=..., channels=N, ports=M) opens the node and (with wait=True) waits until
    the broker has registered it and the clock is synced; a refusal raises RefusedError with the
    broker's reason. Use it as a context manager, or call close().

    name: the node's name in the broker's topology. broker: its ZeroMQ endpoint. kind: what the
    node stands for (external, mea, chip, synapse, ...). channels: output channels (ids that may
    be emitted). ports: input ports. key, broker_key: this node's secret key file and the broker's
    public key (file or Z85) for CURVE. batch_budget_us: adaptive batching budget in µs.
    receive_spin_us: receive() stays awake this long (µs) before the next known deadline
    (default 0: sleeps; with a core to spare, ~200 takes the scheduler's wake-up out).
    timeout_s: how long to wait for registration (seconds). config: a node YAML file instead of
    the parameters."""

    def __init__(self, name: Optional[str] = None, broker: str = "tcp://127.0.0.1:5555", *,
                 kind: str = "external", channels: int = 0, ports: int = 0,
                 key: Optional[str] = None, broker_key: Optional[str] = None,
                 insecure: bool = False, batch_budget_us: Optional[int] = None,
                 receive_queue_events: Optional[int] = None, receive_spin_us: Optional[int] = None,
                 log_level: str = "warn",
                 config: Optional[str] = None, wait: bool = True, timeout_s: float = 10.0):
        lib = _lib.lib()
        self._lib = lib
        handle = ctypes.c_void_p()
        if config is not None:
            rc = lib.ion_open_config(str(config).encode(), ctypes.byref(handle))
        else:
            if not isinstance(name, str) or not name:
                raise ValueError("name: the node's name in the broker's topology (a non-empty str)")
            for label, v in (("channels", channels), ("ports", ports)):
                if not isinstance(v, (int, np.integer)) or v < 0 or v >= 2 ** 32:
                    raise ValueError(f"{label}: a count >= 0, got {v!r}")
            p = _lib.NodeParams()
            lib.ion_node_params_init(ctypes.byref(p), ctypes.sizeof(p))
            keep = [s.encode() if s is not None else None
                    for s in (name, broker, kind, key, broker_key, log_level)]
            p.name, p.broker, p.kind, p.key_file, p.broker_key, p.log_level = keep
            p.channels, p.ports = int(channels), int(ports)
            p.insecure = 1 if insecure else 0
            if batch_budget_us is not None:
                p.batch_budget_us = int(batch_budget_us)
            if receive_queue_events is not None:
                p.receive_queue_events = int(receive_queue_events)
            if receive_spin_us is not None:
                p.receive_spin_us = int(receive_spin_us)
            rc = lib.ion_open(ctypes.byref(p), ctypes.sizeof(p), ctypes.byref(handle))
        if rc != OK:
            _raise(rc)
        self._handle: Optional[int] = handle.value
        self.name = name if name is not None else str(config)
        self.channels = int(channels)
        self.ports = int(ports)
        self._callback = None
        self._close_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, lib.ion_close, handle.value)
        self._alloc_rx(4096)
        if wait:
            try:
                self.wait_registered(timeout_s)
            except BaseException:
                self.close()
                raise

    # --- life cycle ---
    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise ClosedError(ERR_CLOSED, f"node '{self.name}' is closed")
        return h

    def wait_registered(self, timeout_s: Optional[float] = 10.0) -> None:
        """Waits until registered with network time (seconds; None: forever). Raises
        RefusedError with the broker's reason, or RegistrationTimeout."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while True:  # slices, so that Ctrl-C is seen between them
            left = 250 if end is None else min(250, max(0, int((end - time.monotonic()) * 1000)))
            rc = self._lib.ion_wait_registered(self._h(), left)
            if rc != ERR_TIMEOUT or (end is not None and time.monotonic() >= end):
                break
        if rc != OK:
            _raise(rc)

    def close(self) -> None:
        """Sends what was emitted, says goodbye to the broker and frees the node. Idempotent."""
        with self._close_lock:
            if self._handle is None:
                return
            self._handle = None
            self._finalizer()  # ion_close, once

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- emit ---
    def emit(self, channels: ArrayLike, times_ns: Optional[ArrayLike] = None,
             payload: Optional[ArrayLike] = None, kind: Union[str, int] = "spike",
             stream: int = 0) -> EmitResult:
        """Emits events: channels[i] at source time times_ns[i] (network-time ns; None: now).
        payload: optional float per event. Never blocks. Raises TypeError/ValueError for bad
        input (nothing is emitted then; a channel beyond those declared is refused by the node,
        which counts the batch as dropped); returns QUEUED or QUEUED_DROPPING_OLDEST."""
        h = self._h()
        k = _kind(kind)
        ch = _as_channels(channels)
        n = ch.size
        if n == 0:
            return EmitResult.QUEUED
        t = _as_times(times_ns, n) if times_ns is not None else None
        pl = _as_payload(payload, n) if payload is not None else None
        rc = self._lib.ion_emit(h, ch.ctypes.data, t.ctypes.data if t is not None else None,
                                pl.ctypes.data if pl is not None else None, n, k, int(stream))
        if rc == 0:
            return EmitResult.QUEUED
        if rc < 0:
            _raise(rc)
        if rc == EmitResult.REJECTED:
            raise ValueError(self._lib.ion_last_error().decode(errors="replace"))
        return _EMIT_RESULTS[rc]

    # --- receive ---
    def receive(self, timeout_s: Optional[float] = None) -> Optional[Delivery]:
        """The next delivery, handed over at its deadline; None if nothing came within timeout_s
        seconds (None: wait until something comes). Ctrl-C interrupts the wait."""
        h = self._h()
        if timeout_s is not None and timeout_s <= 0.25:
            rc = self._receive_into(h, max(0, int(timeout_s * 1000)))
        else:
            # Slices, so that signals (Ctrl-C) are seen between them.
            end = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                left = 250 if end is None else min(250, max(0, int((end - time.monotonic()) * 1000)))
                rc = self._receive_into(self._h(), left)
                if rc != ERR_TIMEOUT or (end is not None and time.monotonic() >= end):
                    break
        if rc == ERR_TIMEOUT:
            return None
        if rc != OK:
            _raise(rc)
        d = self._rx
        n = int(d.count)
        return Delivery(self._rx_ports[:n].copy(), self._rx_times[:n].copy(),
                        self._rx_payload[:n].copy() if d.payload else None,
                        np.full(n, d.late != 0), d.delay_ns, d.release_ns, _KINDS[d.kind],
                        d.stream, _source_name(d.source_node), d.source_node_id)

    def _receive_into(self, h: int, timeout_ms: int) -> int:
        """One ion_receive_into into this node's buffers (grown once if a delivery is larger)."""
        rc = self._lib.ion_receive_into(h, self._rx_ref, self._rx_size, self._rx_ptrs[0],
                                        self._rx_ptrs[1], self._rx_ptrs[2], self._rx_ports.size,
                                        timeout_ms)
        if rc == ERR_ARGUMENT and int(self._rx.count) > self._rx_ports.size:
            self._alloc_rx(int(self._rx.count))
            return self._receive_into(h, 0)
        return rc

    def _alloc_rx(self, capacity: int) -> None:
        self._rx = _lib.Delivery()
        self._rx_ref = ctypes.byref(self._rx)
        self._rx_size = ctypes.sizeof(self._rx)
        self._rx_ports = np.empty(capacity, np.uint32)
        self._rx_times = np.empty(capacity, np.int64)
        self._rx_payload = np.empty(capacity, np.float32)
        self._rx_ptrs = (self._rx_ports.ctypes.data, self._rx_times.ctypes.data,
                         self._rx_payload.ctypes.data)

    def __iter__(self) -> Iterator[Delivery]:
        """Deliveries as they come, until the node is closed."""
        while not self.closed:
            try:
                d = self.receive(0.25)
            except ClosedError:
                return
            if d is not None:
                yield d

    def on_delivery(self, fn: Optional[Callable[[Delivery], None]]) -> None:
        """Calls fn(delivery) from the node's playout thread at each deadline, instead of
        queueing for receive(); None goes back to receive(). fn must return quickly."""
        h = self._h()
        if fn is None:
            self._lib.ion_set_callback(h, _lib.DELIVERY_FN(), None)
            self._callback = None
            return

        def trampoline(ptr: Any, _user: Any) -> None:
            try:
                fn(_delivery_from(ptr.contents))
            except Exception as e:  # never let an exception unwind into C
                import sys
                print(f"ion: on_delivery callback raised {e!r}", file=sys.stderr)

        cb = _lib.DELIVERY_FN(trampoline)
        self._lib.ion_set_callback(h, cb, None)
        self._callback = cb  # keep it alive while the library holds it

    # --- time and counters ---
    def network_time_ns(self) -> int:
        """Network time now (the broker's clock), in ns."""
        out = ctypes.c_int64()
        rc = self._lib.ion_network_time_ns(self._h(), ctypes.byref(out))
        if rc != OK:
            _raise(rc)
        return out.value

    def local_time_ns(self) -> int:
        """The node's monotonic clock (CLOCK_MONOTONIC), in ns."""
        out = ctypes.c_int64()
        self._lib.ion_local_time_ns(self._h(), ctypes.byref(out))
        return out.value

    def to_network_ns(self, local_ns: int) -> int:
        """A reading of local_time_ns() mapped to network time (ns)."""
        out = ctypes.c_int64()
        rc = self._lib.ion_to_network_ns(self._h(), int(local_ns), ctypes.byref(out))
        if rc != OK:
            _raise(rc)
        return out.value

    def clock(self) -> Dict[str, Any]:
        """The clock estimate: synced, offset_ns (network - local), uncertainty_ns (proven
        bound), drift_ppm, min_rtt_ns."""
        c = _lib.Clock()
        self._lib.ion_clock_estimate(self._h(), ctypes.byref(c), ctypes.sizeof(c))
        return {f: (bool(getattr(c, f)) if f == "synced" else getattr(c, f)) for f, _ in c._fields_}

    def stats(self) -> Dict[str, int]:
        """The node's counters: emitted, received, lost, late, dropped and more (events; *_ns in
        nanoseconds)."""
        s = _lib.Stats()
        rc = self._lib.ion_get_stats(self._h(), ctypes.byref(s), ctypes.sizeof(s))
        if rc != OK:
            _raise(rc)
        out = {f: int(getattr(s, f)) for f, _ in s._fields_}
        out["registered"] = bool(out["registered"])
        return out

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<ion.Node {self.name!r} {state}, {self.channels} channels, {self.ports} ports>"
