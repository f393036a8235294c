"""ion.read_recording: every event of a recording into numpy, the same as the C++ tools see it."""
from __future__ import annotations

import signal
import subprocess
from decimal import Decimal

import numpy as np
import pytest

import ion
from conftest import BIN, eventually


def test_imported_recording_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(0, 10, 700))
    chans = rng.integers(0, 60, 700)
    text = "".join(f"{c},{t:.6f}\n" for c, t in zip(chans, times))
    (tmp_path / "spikes.csv").write_text("channel,time_s\n" + text)
    rec = tmp_path / "spikes.ionrec"
    subprocess.run([str(BIN / "ion"), "import", "csv", str(tmp_path / "spikes.csv"), "-o", str(rec),
                    "--name", "culture"], check=True, capture_output=True)
    ev = ion.read_recording(rec, format="numpy")
    expected_ns = [int(Decimal(line.split(",")[1]) * 10**9) for line in text.splitlines()]
    assert ev.size == 700
    assert np.array_equal(ev["time_ns"], np.array(expected_ns, dtype=np.int64))
    assert np.array_equal(ev["channel"], chans.astype(np.uint32))
    assert set(ev["node"]) == {"culture"} and (ev["kind"] == 0).all()
    assert np.isnan(ev["payload"]).all()
    assert not ion.read_recording.info["torn"]


def test_live_recording_of_a_python_node(broker, daemons, tmp_path):
    """What a Python node emits, a recorder writes and read_recording gives back: same channels,
    source times and payloads, the node's name, arrival after the source time."""
    b = broker({"pygen": "{kind: external, channels: 4}"}, [])
    rec = tmp_path / "live.ionrec"
    recorder = daemons([str(BIN / "ion"), "record", "--broker", b.endpoint, "-o", str(rec),
                        "--flush-ms", "20"], tmp_path / "recorder.log")
    b.daemon.wait_for(r"tap '\S+' .*registered")
    with ion.Node("pygen", broker=b.endpoint, channels=4) as node:
        t0 = node.network_time_ns()
        times = t0 + np.arange(100, dtype=np.int64) * 250_000
        chans = np.arange(100) % 4
        node.emit(chans, times, payload=np.linspace(0, 1, 100), kind="stimulation")

    def complete():
        try:
            return ion.read_recording(rec, format="numpy").size >= 100
        except (OSError, ion.IonError):
            return False
    assert eventually(complete, 20)
    recorder.stop(signal.SIGINT)
    ev = ion.read_recording(rec, format="numpy")
    ev = ev[ev["node"] == "pygen"]
    assert ev.size == 100
    assert np.array_equal(ev["time_ns"], times)
    assert np.array_equal(ev["channel"], chans.astype(np.uint32))
    assert np.allclose(ev["payload"], np.linspace(0, 1, 100).astype(np.float32))
    assert (ev["kind"] == int(ion.EventKind.STIMULATION)).all()
    assert (ev["arrival_ns"] >= ev["time_ns"].min()).all()


def test_not_a_recording_is_a_clear_error(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(OSError, match="notes.txt"):
        ion.read_recording(p)
    with pytest.raises(OSError, match="missing.ionrec"):
        ion.read_recording(tmp_path / "missing.ionrec")


def test_to_neo_gives_a_spiketrain_per_channel(tmp_path):
    neo = pytest.importorskip("neo")
    import quantities as pq
    (tmp_path / "s.csv").write_text("channel,time_s\n0,0.5\n1,0.75\n0,1.25\n3,2.0\n")
    rec = tmp_path / "s.ionrec"
    subprocess.run([str(BIN / "ion"), "import", "csv", str(tmp_path / "s.csv"), "-o", str(rec),
                    "--name", "culture"], check=True, capture_output=True)
    block = ion.to_neo(ion.read_recording(rec, format="numpy"), t_start_ns=0)
    assert isinstance(block, neo.Block)
    trains = {st.name: st for st in block.segments[0].spiketrains}
    # The importer numbers channels by first appearance (names "0", "1", "3" -> ids 0, 1, 2).
    assert sorted(trains) == ["culture:0", "culture:1", "culture:2"]
    assert np.allclose(trains["culture:0"].rescale(pq.s).magnitude, [0.5, 1.25])
    assert np.allclose(trains["culture:2"].rescale(pq.s).magnitude, [2.0])
