"""Promise 3 and 4 under a producer faster than the broker: a node emitting as fast as the C API
allows never brings the broker down, and others still register beside it.

Before the fix (ZMTP heartbeats replaced by TCP keepalive, core/src/transport.cpp) the broker
aborted inside libzmq 4.3.4 ("Assertion failed: !_io_error") in about one flood in four here."""
from __future__ import annotations

import subprocess

import pytest

import ion
from conftest import BIN


def test_a_flooding_node_never_crashes_the_broker(broker):
    capi_bench = BIN.parent / "bench" / "capi_bench"
    if not capi_bench.exists():
        pytest.skip("capi_bench not built (ION_BUILD_BENCH=OFF)")
    b = broker({"flood": "{kind: external, channels: 256}", "lab": "{kind: external, channels: 4}"}, [])
    for round_ in range(4):
        out = subprocess.run([str(capi_bench), "emit", b.endpoint, "flood", "1.5", "256"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert b.daemon.proc.poll() is None, f"broker died in round {round_}:\n{b.daemon.text()[-2000:]}"
        with ion.Node("lab", broker=b.endpoint, channels=4, timeout_s=20) as node:
            assert node.stats()["registered"]
    assert b.daemon.proc.poll() is None
