"""The examples run for real: a Brian2 network as a lab against the emulated MEA, and the Python
closed-loop controller."""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import start_node, ROOT, driver_counts, eventually, status_received, stopped_counts


def _mea_driver(seed: int = 1) -> str:
    text = (ROOT / "configs" / "padova-mea.yaml").read_text()
    return text.split("driver:\n", 1)[1]


def test_brian2_lab_against_the_emulated_mea(broker, daemons, tmp_path):
    """Flow both ways for 10 s: the culture's spikes drive the Brian2 network (received, none late
    or lost), and Brian2's neuron 0 stimulates electrode 55 (stimulations applied by the MEA)."""
    if subprocess.run(["/usr/bin/python3", "-c", "import brian2"], capture_output=True).returncode:
        pytest.skip("python3-brian is not installed")
    topo = (ROOT / "configs" / "brian2-topology.yaml").read_text()
    b = broker({"padova": "{kind: mea, channels: 60, ports: 60}",
                "brian": "{kind: external, channels: 100, ports: 60}"},
               ['{from: "padova:*", to: ["brian:*"], delay: 100ms}',
                '{from: "brian:0", to: ["padova:55"], delay: 100ms}'])
    assert "brian:0" in topo  # the shipped topology is the one tested here
    brian = daemons(["/usr/bin/python3", str(ROOT / "examples" / "brian2_lab.py"), "--broker",
                     b.endpoint, "--duration", "10", "--wait-input", "60", "--json"],
                    tmp_path / "brian.log")
    b.daemon.wait_for(r"node 'brian' .*registered", 60)
    mea = start_node(daemons, tmp_path, "padova", b.endpoint,
            _mea_driver())
    assert brian.proc.wait(120) == 0, brian.text()
    mea.stop()
    summary = json.loads(brian.text().strip().splitlines()[-1])
    print(brian.text().strip().splitlines()[-2])
    drv = driver_counts(mea.text())
    print(f"MEA: {stopped_counts(mea.text())['emitted']} spikes out, {drv['stim_received']} "
          f"stimulations from Brian2 ({drv['stim_late']} applied late by the MEA's processing)")
    assert summary["received"] > 100, summary
    assert summary["late"] == 0 and summary["lost"] == 0 and summary["dropped"] == 0, summary
    assert summary["emitted"] > 100, summary
    assert drv["stim_received"] > 0 and drv["stim_rejected_electrode"] == 0
    # Brian2 starts when the culture's first spikes arrive (--wait-input): the MEA is registered,
    # so no stimulation waits for it at the broker past its deadline (before, spikes of the
    # ~100 ms the MEA took to start arrived late: counted, but avoidable). Brian2's spikes carry
    # their simulated time: they can be late at the MEA only if the simulation fell behind real
    # time by about the connection's delay (and then are counted).
    mea_late = stopped_counts(mea.text())["late"]
    if summary["max_behind_real_time_ms"] < 100 - 10:
        # A shared machine's scheduling stall (tens of ms, rarely more) can still make one late:
        # it is counted, never passed off as on time; more than 1 % would be a real fault.
        assert mea_late <= max(1, drv["stim_received"] // 100), (mea_late, summary)
    else:
        print(f"Brian2 fell {summary['max_behind_real_time_ms']:.0f} ms behind: {mea_late} late at the MEA (counted)")


def test_closed_loop_stimulates_bursts(broker, daemons, tmp_path):
    """examples/closed_loop.py against the emulated MEA: bursts are detected from the delivered
    spikes, each gives exactly one stimulation that the MEA applies, and the reaction time printed
    (burst onset -> stimulus at the MEA) is at least the two connections' delays."""
    b = broker({"padova": "{kind: mea, channels: 60, ports: 60}",
                "controller": "{kind: external, channels: 60, ports: 60}"},
               ['{from: "padova:*", to: ["controller:*"], delay: 10ms}',
                '{from: "controller:*", to: ["padova:*"], delay: 10ms}'])
    ctl = daemons(["/usr/bin/python3", str(ROOT / "examples" / "closed_loop.py"), "--broker",
                   b.endpoint, "--duration", "12", "--json"], tmp_path / "controller.log")
    b.daemon.wait_for(r"node 'controller' .*registered", 60)
    mea = start_node(daemons, tmp_path, "padova", b.endpoint,
            _mea_driver())
    assert ctl.proc.wait(120) == 0, ctl.text()
    summary = json.loads(ctl.text().strip().splitlines()[-1])
    print(ctl.text().strip().splitlines()[-2])
    assert summary["bursts"] >= 1, ctl.text()
    assert summary["lost"] == 0
    assert summary["reaction_ms_p50"] >= 20.0  # 10 ms there + 10 ms back, at least
    # Every stimulus the controller sent is applied by the MEA (the controller flushed on close;
    # the last one is due 10 ms after it was sent).
    assert eventually(lambda: status_received(b.endpoint, "padova") >= summary["stimuli"], 10)
    mea.stop()
    assert driver_counts(mea.text())["stim_received"] == summary["stimuli"]

