"""Reading IoN recordings (.ionrec) into numpy, through libion's reader."""
from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, List, Optional

import numpy as np

from . import _lib
from .node import IonError

KIND_NAMES = ("spike", "synaptic_input", "stimulation", "neuromodulator")


def read_recording(path: "os.PathLike[str] | str", *, format: str = "auto") -> Any:
    """Every event of a recording, sorted by source time (stable).

    Returns a numpy structured array with fields time_ns (int64, source time in network ns),
    node (str), stream (uint32), channel (uint32), kind (uint8: 0 spike, 1 synaptic input,
    2 stimulation, 3 neuromodulator), payload (float32; NaN where the batch had none) and
    arrival_ns (int64, network time the recorder received it). format="auto" returns a pandas
    DataFrame instead when pandas is installed; "numpy" or "pandas" choose. The array's
    `info` (see recording_info) is in read_recording.info of the last call."""
    if format not in ("auto", "numpy", "pandas"):
        raise ValueError("format: auto, numpy or pandas")
    lib = _lib.lib()
    handle = ctypes.c_void_p()
    rc = lib.ion_recording_open(os.fspath(path).encode(), ctypes.byref(handle))
    if rc != 0:
        msg = lib.ion_last_error().decode(errors="replace")
        if rc == -9:
            raise OSError(msg)
        raise IonError(rc, msg)
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in
                                          ("time_ns", "node", "stream", "channel", "kind", "payload", "arrival_ns")}
    names: List[str] = []
    name_ids: Dict[bytes, int] = {}
    b = _lib.RecordingBatch()
    try:
        while True:
            rc = lib.ion_recording_next(handle, ctypes.byref(b), ctypes.sizeof(b))
            if rc == 1:
                break
            if rc != 0:
                raise IonError(rc, lib.ion_last_error().decode(errors="replace"))
            n = int(b.count)
            if n == 0:
                continue
            src = b.source_node or b""
            if src not in name_ids:
                name_ids[src] = len(names)
                names.append(src.decode(errors="replace"))
            parts["time_ns"].append(np.ctypeslib.as_array(b.times_ns, shape=(n,)).copy())
            parts["channel"].append(np.ctypeslib.as_array(b.channels, shape=(n,)).copy())
            parts["payload"].append(np.ctypeslib.as_array(b.payload, shape=(n,)).copy()
                                    if b.payload else np.full(n, np.nan, np.float32))
            parts["node"].append(np.full(n, name_ids[src], np.int32))
            parts["stream"].append(np.full(n, b.stream, np.uint32))
            parts["kind"].append(np.full(n, b.kind, np.uint8))
            parts["arrival_ns"].append(np.full(n, b.arrival_ns, np.int64))
        info = _lib.RecordingInfo()
        lib.ion_recording_info_get(handle, ctypes.byref(info), ctypes.sizeof(info))
        read_recording.info = {  # type: ignore[attr-defined]
            "anchor_network_ns": info.anchor_network_ns, "anchor_utc_ns": info.anchor_utc_ns,
            "origin": (info.origin or b"").decode(errors="replace"), "torn": bool(info.torn),
            "tail_reason": (info.tail_reason or b"").decode(errors="replace"),
            "bad_batches": int(info.bad_batches)}
    finally:
        lib.ion_recording_close(handle)

    width = max([1] + [len(s) for s in names])
    dtype = np.dtype([("time_ns", np.int64), ("node", f"U{width}"), ("stream", np.uint32),
                      ("channel", np.uint32), ("kind", np.uint8), ("payload", np.float32),
                      ("arrival_ns", np.int64)])
    total = sum(a.size for a in parts["time_ns"])
    out = np.empty(total, dtype=dtype)
    if total:
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        order = np.argsort(cat["time_ns"], kind="stable")
        for k in ("time_ns", "stream", "channel", "kind", "payload", "arrival_ns"):
            out[k] = cat[k][order]
        out["node"] = np.asarray(names, dtype=f"U{width}")[cat["node"][order]]
    if format == "numpy":
        return out
    try:
        import pandas as pd  # type: ignore
    except ImportError:
        if format == "pandas":
            raise ImportError("format='pandas' needs pandas (apt install python3-pandas)") from None
        return out
    return pd.DataFrame.from_records(out)


def to_neo(events: Any, *, t_start_ns: Optional[int] = None) -> Any:
    """A neo.Block (one Segment) with a SpikeTrain per (node, stream, channel) of the spike
    events of read_recording's result (times in s from t_start_ns, default the first event).
    Needs neo and quantities."""
    try:
        import neo  # type: ignore
        import quantities as pq  # type: ignore
    except ImportError:
        raise ImportError("to_neo needs neo (pip install neo)") from None
    ev = events.to_records(index=False) if hasattr(events, "to_records") else events
    spikes = ev[ev["kind"] == 0]
    t0 = int(spikes["time_ns"].min()) if (t_start_ns is None and spikes.size) else int(t_start_ns or 0)
    t_stop = (int(spikes["time_ns"].max()) - t0) / 1e9 + 1e-6 if spikes.size else 1e-6
    block = neo.Block(name="ion recording")
    seg = neo.Segment(name="recording")
    block.segments.append(seg)
    keys = sorted({(str(r["node"]), int(r["stream"]), int(r["channel"])) for r in spikes})
    for node, stream, channel in keys:
        m = (spikes["node"] == node) & (spikes["stream"] == stream) & (spikes["channel"] == channel)
        t = (spikes["time_ns"][m] - t0) / 1e9
        st = neo.SpikeTrain(t * pq.s, t_start=0 * pq.s, t_stop=t_stop * pq.s,
                            name=f"{node}:{channel}", node=node, stream=stream, channel=channel)
        seg.spiketrains.append(st)
    return block
