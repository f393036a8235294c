"""Finds libion.so and declares its C API (include/ion/ion.h) for ctypes."""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
from pathlib import Path
from typing import List, Optional

ABI_VERSION = 1  # ION_ABI_VERSION of the header this module mirrors
_SONAME = f"libion.so.{ABI_VERSION}"


class LibraryNotFound(ImportError):
    """libion.so could not be found or loaded; the message lists every place tried."""


def _build_tree_candidates(start: Path) -> List[Path]:
    out: List[Path] = []
    for d in [start, *start.parents]:
        for preset in ("release", "debug"):
            out.append(d / "build" / preset / "lib" / _SONAME)
        out.extend(Path(p) for p in sorted(glob.glob(str(d / "build" / "*" / "lib" / _SONAME))))
    return out


def _candidates() -> List[str]:
    tried: List[str] = []
    env = os.environ.get("ION_LIBRARY")
    if env:
        p = Path(env)
        tried.append(str(p / _SONAME) if p.is_dir() else str(p))
    here = Path(__file__).resolve().parent
    tried.append(str(here / _SONAME))  # a wheel that bundles the library
    # Build trees (a source checkout): the most recently built first, so a stale preset's
    # library is not picked over the one just built.
    trees: List[Path] = []
    for start in (here, Path.cwd().resolve()):
        trees.extend(_build_tree_candidates(start))
    existing = sorted({p for p in trees if p.exists()}, key=lambda p: p.stat().st_mtime, reverse=True)
    tried.extend(str(p) for p in existing)
    tried.extend(str(p) for p in trees if p not in existing)
    found = ctypes.util.find_library("ion")
    if found:
        tried.append(found)
    for prefix in {sys.prefix, "/usr/local", "/usr"}:
        for sub in ("lib", "lib/x86_64-linux-gnu", "lib64"):
            tried.append(str(Path(prefix) / sub / _SONAME))
    seen = set()
    return [t for t in tried if not (t in seen or seen.add(t))]


def load() -> ctypes.CDLL:
    errors: List[str] = []
    for path in _candidates():
        if "/" in path and not os.path.exists(path):
            errors.append(f"{path} (absent)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path} ({e})")
            continue
        _declare(lib)
        if lib.ion_check_abi(ABI_VERSION) != 0:
            errors.append(f"{path} ({lib.ion_last_error().decode()})")
            continue
        lib._ion_path = path  # type: ignore[attr-defined]
        return lib
    raise LibraryNotFound(
        "cannot load libion (the IoN C library). Build it (bash tools/dev.sh build), install it "
        "(cmake --install), or set ION_LIBRARY to its path. Looked for:\n  " + "\n  ".join(errors))


class NodeParams(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("broker", ctypes.c_char_p),
        ("kind", ctypes.c_char_p),
        ("channels", ctypes.c_uint32),
        ("ports", ctypes.c_uint32),
        ("key_file", ctypes.c_char_p),
        ("broker_key", ctypes.c_char_p),
        ("insecure", ctypes.c_int),
        ("batch_budget_us", ctypes.c_int64),
        ("receive_queue_events", ctypes.c_uint64),
        ("log_level", ctypes.c_char_p),
        ("receive_spin_us", ctypes.c_int64),
    ]


class Delivery(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_size_t),
        ("ports", ctypes.POINTER(ctypes.c_uint32)),
        ("times_ns", ctypes.POINTER(ctypes.c_int64)),
        ("payload", ctypes.POINTER(ctypes.c_float)),
        ("delay_ns", ctypes.c_int64),
        ("release_ns", ctypes.c_int64),
        ("kind", ctypes.c_int),
        ("late", ctypes.c_int),
        ("stream", ctypes.c_uint32),
        ("source_node_id", ctypes.c_uint32),
        ("source_node", ctypes.c_char_p),
    ]


class Clock(ctypes.Structure):
    _fields_ = [
        ("synced", ctypes.c_int),
        ("offset_ns", ctypes.c_int64),
        ("uncertainty_ns", ctypes.c_int64),
        ("drift_ppm", ctypes.c_double),
        ("min_rtt_ns", ctypes.c_int64),
    ]


class Stats(ctypes.Structure):
    _fields_ = [
        ("registered", ctypes.c_int),
        ("registrations", ctypes.c_uint64),
        ("broker_restarts", ctypes.c_uint64),
        ("emitted", ctypes.c_uint64),
        ("dropped", ctypes.c_uint64),
        ("received", ctypes.c_uint64),
        ("lost", ctypes.c_uint64),
        ("late", ctypes.c_uint64),
        ("late_dropped", ctypes.c_uint64),
        ("overrun", ctypes.c_uint64),
        ("on_time", ctypes.c_uint64),
        ("duplicates", ctypes.c_uint64),
        ("source_restarts", ctypes.c_uint64),
        ("playout_overflow", ctypes.c_uint64),
        ("receive_overflow", ctypes.c_uint64),
        ("rejected_frames", ctypes.c_uint64),
        ("delivery_error_p50_ns", ctypes.c_int64),
        ("delivery_error_p99_ns", ctypes.c_int64),
        ("delivery_error_max_ns", ctypes.c_int64),
        ("latency_p50_ns", ctypes.c_int64),
        ("latency_p99_ns", ctypes.c_int64),
        ("latency_max_ns", ctypes.c_int64),
    ]


class RecordingInfo(ctypes.Structure):
    _fields_ = [
        ("anchor_network_ns", ctypes.c_int64),
        ("anchor_utc_ns", ctypes.c_int64),
        ("origin", ctypes.c_char_p),
        ("torn", ctypes.c_int),
        ("tail_reason", ctypes.c_char_p),
        ("bad_batches", ctypes.c_uint64),
    ]


class RecordingBatch(ctypes.Structure):
    _fields_ = [
        ("count", ctypes.c_size_t),
        ("channels", ctypes.POINTER(ctypes.c_uint32)),
        ("times_ns", ctypes.POINTER(ctypes.c_int64)),
        ("payload", ctypes.POINTER(ctypes.c_float)),
        ("arrival_ns", ctypes.c_int64),
        ("kind", ctypes.c_int),
        ("stream", ctypes.c_uint32),
        ("source_node", ctypes.c_char_p),
    ]


DELIVERY_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(Delivery), ctypes.c_void_p)


def _declare(lib: ctypes.CDLL) -> None:
    c = ctypes
    vp = c.c_void_p
    sigs = {
        "ion_error_name": (c.c_char_p, [c.c_int]),
        "ion_last_error": (c.c_char_p, []),
        "ion_version": (c.c_char_p, []),
        "ion_abi_version": (c.c_int, []),
        "ion_check_abi": (c.c_int, [c.c_int]),
        "ion_node_params_init": (c.c_int, [c.POINTER(NodeParams), c.c_size_t]),
        "ion_open": (c.c_int, [c.POINTER(NodeParams), c.c_size_t, c.POINTER(vp)]),
        "ion_open_config": (c.c_int, [c.c_char_p, c.POINTER(vp)]),
        "ion_close": (c.c_int, [vp]),
        "ion_wait_registered": (c.c_int, [vp, c.c_int64]),
        "ion_emit": (c.c_int, [vp, vp, vp, vp, c.c_size_t, c.c_int, c.c_uint32]),
        "ion_receive": (c.c_int, [vp, c.POINTER(Delivery), c.c_size_t, c.c_int64]),
        "ion_receive_into": (c.c_int, [vp, c.POINTER(Delivery), c.c_size_t, vp, vp, vp, c.c_size_t,
                                        c.c_int64]),
        "ion_set_callback": (c.c_int, [vp, DELIVERY_FN, vp]),
        "ion_network_time_ns": (c.c_int, [vp, c.POINTER(c.c_int64)]),
        "ion_local_time_ns": (c.c_int, [vp, c.POINTER(c.c_int64)]),
        "ion_to_network_ns": (c.c_int, [vp, c.c_int64, c.POINTER(c.c_int64)]),
        "ion_clock_estimate": (c.c_int, [vp, c.POINTER(Clock), c.c_size_t]),
        "ion_get_stats": (c.c_int, [vp, c.POINTER(Stats), c.c_size_t]),
        "ion_recording_open": (c.c_int, [c.c_char_p, c.POINTER(vp)]),
        "ion_recording_next": (c.c_int, [vp, c.POINTER(RecordingBatch), c.c_size_t]),
        "ion_recording_info_get": (c.c_int, [vp, c.POINTER(RecordingInfo), c.c_size_t]),
        "ion_recording_close": (None, [vp]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


_lib: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use)."""
    global _lib
    if _lib is None:
        _lib = load()
    return _lib
