"""Lab Streaming Layer bridge: an LSL spike stream joins an IoN network, and deliveries to an IoN
node go out on an LSL outlet.

    ion-lsl to-ion   --stream NAME --node NODE --broker EP --channels N   # LSL -> IoN
    ion-lsl from-ion --node NODE --broker EP --ports N [--outlet NAME]    # IoN -> LSL

A spike stream on LSL is an irregular-rate stream of one channel whose samples are channel ids
(int32, like Open Ephys' and most spike sorters' event outlets). Timestamps: LSL's own clock
correction (time_correction, applied by the inlet) maps the sender's clock to this machine's LSL
clock; the bridge maps that clock to the node's clock (both monotonic, offset measured), and the
node maps its clock to network time. Outbound, each event's deadline (network time) becomes its
LSL timestamp. Needs pylsl (pip install pylsl; its wheel ships liblsl).
"""
from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, Optional, Tuple

import numpy as np

from .node import IonError, Node


def _pylsl() -> Any:
    try:
        import pylsl  # type: ignore
    except ImportError:
        raise ImportError("the LSL bridge needs pylsl: pip install pylsl") from None
    return pylsl


class ClockMap:
    """LSL's local clock (s) <-> the node's local clock (ns): both monotonic on this machine, with
    an offset measured by bracketing reads (the tightest of a few is kept; error ≤ its half-width,
    a few µs)."""

    def __init__(self, node: Node, samples: int = 16):
        lsl = _pylsl()
        best = None
        for _ in range(samples):
            a = node.local_time_ns()
            t = lsl.local_clock()
            b = node.local_time_ns()
            if best is None or b - a < best[0]:
                best = (b - a, (a + b) // 2 - int(round(t * 1e9)))
        assert best is not None
        self.bound_ns = best[0] // 2
        self.offset_ns = best[1]  # node local ns - LSL local ns
        self.node = node

    def lsl_to_network_ns(self, lsl_s: np.ndarray) -> np.ndarray:
        """LSL timestamps (s, this machine's LSL clock) -> network time (ns)."""
        local = np.rint(np.asarray(lsl_s, dtype=np.float64) * 1e9).astype(np.int64) + self.offset_ns
        ref = self.node.local_time_ns()
        return local + (self.node.to_network_ns(ref) - ref)

    def network_to_lsl_s(self, network_ns: np.ndarray) -> np.ndarray:
        """Network time (ns) -> LSL timestamps (s, this machine's LSL clock)."""
        ref = self.node.local_time_ns()
        local = np.asarray(network_ns, dtype=np.int64) - (self.node.to_network_ns(ref) - ref)
        return (local - self.offset_ns).astype(np.float64) / 1e9


def _check_spike_stream(info: Any) -> None:
    lsl = _pylsl()
    ints = {lsl.cf_int8, lsl.cf_int16, lsl.cf_int32, lsl.cf_int64}
    if info.channel_count() != 1:
        raise ValueError(f"LSL stream '{info.name()}' has {info.channel_count()} channels: a spike "
                         "stream has one, whose samples are channel ids")
    if info.channel_format() not in ints:
        raise ValueError(f"LSL stream '{info.name()}' is not an integer stream: its samples must "
                         "be channel ids (int32)")


def _pull(inlet: Any, timeout_s: float, chunk: int) -> Tuple[list, list]:
    """What the inlet holds, waiting up to timeout_s for the first sample. (liblsl's pull_chunk
    with a timeout waits for a full chunk or the whole timeout: latency, not throughput.)"""
    first, ts = inlet.pull_sample(timeout=timeout_s)
    if ts is None:
        return [], []
    samples, stamps = inlet.pull_chunk(timeout=0.0, max_samples=chunk - 1)
    return [first] + list(samples), [ts] + list(stamps)


def to_ion(node: Node, inlet: Any, stop: threading.Event, *, chunk: int = 4096,
           clock: Optional[ClockMap] = None) -> int:
    """Moves an LSL spike stream into the node until `stop` is set; returns events emitted.
    The inlet should be opened with processing_flags=proc_clocksync (LSL's clock correction)."""
    _check_spike_stream(inlet.info())
    clock = clock or ClockMap(node)
    emitted = 0
    draining = False
    while True:
        if stop.is_set():
            draining = True  # what the inlet already holds still goes
        samples, stamps = _pull(inlet, 0.0 if draining else 0.05, chunk)
        if not stamps:
            if draining:
                break
            continue
        channels = np.asarray(samples, dtype=np.int64).reshape(len(stamps), -1)[:, 0]
        node.emit(channels, clock.lsl_to_network_ns(np.asarray(stamps, dtype=np.float64)))
        emitted += len(stamps)
    return emitted


def from_ion(node: Node, outlet: Any, stop: threading.Event, *,
             clock: Optional[ClockMap] = None) -> int:
    """Pushes each delivery to the node out on an LSL outlet (int32 ports, the deadline as
    timestamp) until `stop` is set; returns events pushed."""
    clock = clock or ClockMap(node)
    pushed = 0
    while not stop.is_set():
        d = node.receive(timeout_s=0.05)
        if d is None:
            continue
        stamps = clock.network_to_lsl_s(d.deadlines_ns)
        outlet.push_chunk(d.ports.astype(np.int32).reshape(-1, 1), stamps.tolist())
        pushed += len(d)
    return pushed


def open_inlet(name: str, timeout_s: float = 10.0) -> Any:
    """Finds the LSL stream `name`, opens an inlet with LSL's clock correction, and waits for the
    first correction estimate: until it exists liblsl holds samples back (about a second)."""
    lsl = _pylsl()
    found = lsl.resolve_byprop("name", name, 1, timeout_s)
    if not found:
        raise LookupError(f"no LSL stream named '{name}' within {timeout_s} s")
    _check_spike_stream(found[0])
    inlet = lsl.StreamInlet(found[0], max_buflen=360, processing_flags=lsl.proc_clocksync)
    inlet.open_stream(timeout_s)
    inlet.time_correction(timeout_s)
    return inlet


def spike_outlet(name: str, source_id: str) -> Any:
    """An LSL outlet for spike events: irregular rate, one int32 channel (the channel id)."""
    lsl = _pylsl()
    info = lsl.StreamInfo(name, "Spikes", 1, lsl.IRREGULAR_RATE, lsl.cf_int32, source_id)
    return lsl.StreamOutlet(info, chunk_size=0, max_buffered=360)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="ion-lsl", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="direction", required=True)
    for name, help_ in (("to-ion", "an LSL spike stream becomes a node's output"),
                        ("from-ion", "deliveries to a node go out on an LSL outlet")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--node", required=True, help="the node's name in the broker's topology")
        s.add_argument("--broker", default="tcp://127.0.0.1:5555")
        s.add_argument("--key", help="this node's secret key file (CURVE)")
        s.add_argument("--broker-key", help="the broker's public key (file or Z85)")
        s.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C)")
    ti = sub.choices["to-ion"]
    ti.add_argument("--stream", required=True, help="the LSL stream's name")
    ti.add_argument("--channels", type=int, required=True, help="output channels the node declares")
    ti.add_argument("--resolve-timeout", type=float, default=10.0, help="seconds to find the stream")
    fi = sub.choices["from-ion"]
    fi.add_argument("--ports", type=int, required=True, help="input ports the node declares")
    fi.add_argument("--outlet", help="the LSL outlet's name (default: ion-NODE)")
    a = p.parse_args(argv)
    try:
        _pylsl()  # fails early, with the install hint
    except ImportError as e:
        print(f"ion-lsl: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    if a.duration > 0:
        timer = threading.Timer(a.duration, stop.set)
        timer.daemon = True  # Ctrl-C before the end does not wait for it
        timer.start()
    try:
        if a.direction == "to-ion":
            inlet = open_inlet(a.stream, a.resolve_timeout)
            with Node(a.node, broker=a.broker, channels=a.channels, key=a.key,
                      broker_key=a.broker_key) as node:
                print(f"ion-lsl: LSL '{a.stream}' -> node '{a.node}' at {a.broker}", file=sys.stderr)
                n = to_ion(node, inlet, stop)
                print(f"ion-lsl: {n} events emitted; node counters {node.stats()}", file=sys.stderr)
        else:
            with Node(a.node, broker=a.broker, ports=a.ports, key=a.key,
                      broker_key=a.broker_key) as node:
                outlet = spike_outlet(a.outlet or f"ion-{a.node}", f"ion:{a.node}")
                print(f"ion-lsl: node '{a.node}' -> LSL outlet '{a.outlet or 'ion-' + a.node}'",
                      file=sys.stderr)
                n = from_ion(node, outlet, stop)
                print(f"ion-lsl: {n} events pushed; node counters {node.stats()}", file=sys.stderr)
    except KeyboardInterrupt:
        stop.set()
    except (ValueError, OSError, LookupError, IonError) as e:
        print(f"ion-lsl: {e}", file=sys.stderr)  # a refusal carries the broker's reason
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
