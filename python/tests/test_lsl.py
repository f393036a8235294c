"""The Lab Streaming Layer bridge against the real liblsl (the pylsl wheel), both directions."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import ion
from conftest import eventually

pylsl = pytest.importorskip("pylsl")
from ion import lsl as bridge  # noqa: E402


def _collect(node, want, timeout_s=10.0):
    got = []
    def enough():
        d = node.receive(timeout_s=0.05)
        if d is not None:
            got.append(d)
        return sum(len(x) for x in got) >= want
    assert eventually(enough, timeout_s, 0), f"{sum(len(x) for x in got)} of {want}"
    return got


def test_an_lsl_spike_stream_joins_the_network(broker):
    """LSL -> IoN: every sample of an LSL outlet reaches an IoN node as a spike on its channel,
    stamped with the sample's LSL timestamp mapped to network time (through LSL's own clock
    correction), and is delivered at that time + the connection's delay."""
    b = broker({"lsl-in": "{kind: external, channels: 32}", "pysink": "{kind: external, ports: 32}"},
               ['{from: "lsl-in:*", to: ["pysink:*"], delay: 100ms}'])
    outlet = bridge.spike_outlet("ion-test-in", "ion-test-in-1")
    inlet = bridge.open_inlet("ion-test-in")
    with ion.Node("pysink", broker=b.endpoint, ports=32) as sink, \
         ion.Node("lsl-in", broker=b.endpoint, channels=32) as src:
        stop = threading.Event()
        clock = bridge.ClockMap(src)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("n", bridge.to_ion(src, inlet, stop, clock=clock)))
        t.start()
        rng = np.random.default_rng(2)
        chans = rng.integers(0, 32, 600).astype(np.int32)
        stamps = []
        for k in range(0, 600, 20):
            now = pylsl.local_clock()
            ts = now - 0.001 + np.arange(20) * 2e-5  # acquired 1 ms ago, 20 us apart
            outlet.push_chunk(chans[k:k + 20].reshape(-1, 1).tolist(), ts.tolist())
            stamps.extend(ts)
        got = _collect(sink, 600)
        stop.set()
        t.join(10)
        assert result["n"] == 600
        ports = np.concatenate([d.ports for d in got])
        times = np.concatenate([d.times_ns for d in got])
        expected = clock.lsl_to_network_ns(np.array(stamps))
        assert np.array_equal(ports, chans.astype(np.uint32))
        # Same mapping, read twice: they differ only by the node's drift between the reads.
        assert np.abs(times - expected).max() < 200_000, np.abs(times - expected).max()
        s = sink.stats()
        assert s["received"] == 600 and s["late"] == 0 and s["lost"] == 0


def test_deliveries_go_out_on_an_lsl_outlet(broker):
    """IoN -> LSL: each event delivered to the bridge's node goes out on an LSL outlet with its
    port as the sample and its deadline (network time, mapped to the LSL clock) as timestamp."""
    b = broker({"pygen": "{kind: external, channels: 8}", "lsl-out": "{kind: external, ports: 8}"},
               ['{from: "pygen:*", to: ["lsl-out:*"], delay: 50ms}'])
    with ion.Node("lsl-out", broker=b.endpoint, ports=8) as out_node, \
         ion.Node("pygen", broker=b.endpoint, channels=8) as gen:
        outlet = bridge.spike_outlet("ion-test-out", "ion-test-out-1")
        inlet = bridge.open_inlet("ion-test-out")
        stop = threading.Event()
        clock = bridge.ClockMap(out_node)
        t = threading.Thread(target=bridge.from_ion, args=(out_node, outlet, stop), kwargs={"clock": clock})
        t.start()
        t0 = gen.network_time_ns()
        times = t0 + np.arange(300, dtype=np.int64) * 500_000
        chans = np.arange(300) % 8
        gen.emit(chans, times)
        samples, stamps = [], []
        def enough():
            s, ts = inlet.pull_chunk(timeout=0.1)
            samples.extend(x[0] for x in s)
            stamps.extend(ts)
            return len(stamps) >= 300
        assert eventually(enough, 15, 0), len(stamps)
        stop.set()
        t.join(10)
        expected = clock.network_to_lsl_s(times + 50_000_000)
    assert samples == list(chans)
    err_us = (np.array(stamps) - expected) * 1e6
    assert np.abs(err_us).max() < 200, np.abs(err_us).max()


def test_an_lsl_stream_joins_the_three_lab_network(daemons, tmp_path):
    """The shipped three-lab topology with one more lab, fed by LSL through the bridge: its spikes
    reach the Zurich chip's synaptic inputs, every one of them, none late or lost."""
    from conftest import BIN, ROOT, stopped_counts
    topo = (ROOT / "configs" / "three-lab-topology.yaml").read_text()
    topo = topo.replace("connections:\n", "  lsl-lab:     {kind: external, channels: 16}\nconnections:\n"
                        '  - {from: "lsl-lab:*", to: ["zurich:16-31"], delay: 100ms}\n', 1)
    (tmp_path / "three-lab-topology.yaml").write_text(topo)
    (tmp_path / "broker.yaml").write_text(
        "broker:\n  listen: tcp://127.0.0.1:5555\n  topology: three-lab-topology.yaml\n")
    broker = daemons([str(BIN / "ion-broker"), "--config", str(tmp_path / "broker.yaml"), "--listen",
                      "tcp://127.0.0.1:*"], tmp_path / "broker.log")
    endpoint = broker.wait_for(r"broker listening on (tcp://\S+)").group(1)
    zurich = daemons([str(BIN / "ion-node"), "--config", str(ROOT / "configs" / "zurich-chip.yaml"),
                      "--broker", endpoint], tmp_path / "zurich.log")
    broker.wait_for(r"node 'zurich' .*registered")
    outlet = bridge.spike_outlet("ion-test-three-lab", "ion-test-three-lab-1")
    inlet = bridge.open_inlet("ion-test-three-lab")
    with ion.Node("lsl-lab", broker=endpoint, channels=16) as src:
        stop = threading.Event()
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("n", bridge.to_ion(src, inlet, stop)))
        t.start()
        for k in range(0, 400, 8):
            outlet.push_chunk([[c % 16] for c in range(k, k + 8)], [pylsl.local_clock()] * 8)
        assert eventually(lambda: src.stats()["emitted"] >= 400, 10)
        stop.set()
        t.join(10)
    assert result["n"] == 400
    from conftest import status_received
    assert eventually(lambda: status_received(endpoint, "zurich") >= 400, 10)
    zurich.stop()
    counts = stopped_counts(zurich.text())
    assert counts["received"] == 400 and counts["lost"] == 0 and counts["late"] == 0, counts
