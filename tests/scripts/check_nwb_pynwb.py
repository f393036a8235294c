"""pynwb reads IoN's NWB and CSV exports back and they agree with the recording, field by field.

Usage (inside a venv with pynwb; ION_LIBRARY and PYTHONPATH give the ion package): WORK_DIR
holding demo/recording.ionrec, demo.nwb, demo.csv, demo.events.csv, imported.ionrec, imported.nwb
(tests/scripts/nwb_pynwb_test.sh makes them).
"""
import csv
import datetime as dt
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pynwb
from pynwb import NWBHDF5IO

import ion

KINDS = ("spike", "synaptic_input", "stimulation", "neuromodulator")


def validate(path):
    errors = pynwb.validate(path=str(path))
    assert not errors, (path, errors)


def check_cached_schema(path):
    """The NWB schema is cached in the file as pynwb caches it: pynwb finds the namespaces there,
    validates against them without a warning, and reads the file through them."""
    cached = NWBHDF5IO.get_namespaces(str(path))
    assert set(cached) >= {"core", "hdmf-common"}, (path, cached)
    with h5py.File(str(path), "r") as h:
        assert h.attrs["nwb_version"] == cached["core"], (h.attrs["nwb_version"], cached)
        assert h[h.attrs[".specloc"]].name == "/specifications"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "has no cached namespace information" would raise here
        validate(path)
        with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
            assert len(io.read().units) > 0


def main():
    work = Path(sys.argv[1])
    ev = ion.read_recording(work / "demo" / "recording.ionrec", format="numpy")
    info = ion.read_recording.info
    t0 = info["anchor_network_ns"]

    # demo.nwb: the schema named by --nwb-schema; imported.nwb: found through $VIRTUAL_ENV.
    check_cached_schema(work / "demo.nwb")
    check_cached_schema(work / "imported.nwb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # uncached.nwb: no schema around; pynwb uses its own copy
        validate(work / "uncached.nwb")
    with NWBHDF5IO(str(work / "demo.nwb"), "r") as io:
        f = io.read()
        # session_start_time: the broker's UTC anchor.
        want = dt.datetime.fromtimestamp(info["anchor_utc_ns"] // 1000 / 1e6, tz=dt.timezone.utc)
        assert abs((f.session_start_time - want).total_seconds()) < 1e-6, (f.session_start_time, want)
        # Units: every spike of every spike source, per channel; electrodes for the MEA only.
        units = f.units.to_dataframe()
        spikes = ev[ev["kind"] == 0]
        assert sum(len(x) for x in units["spike_times"]) == len(spikes), (len(spikes),)
        electrodes = f.electrodes.to_dataframe()
        for _, u in units.iterrows():
            source = u["source"].split(" (")[0]
            kind = u["source"].split(" (")[1].rstrip(")")
            channel = int(u["unit_name"].split("/")[-1])
            mine = spikes[(spikes["node"] == source) & (spikes["channel"] == channel)]
            got = np.asarray(u["spike_times"])
            assert len(got) == len(mine), (u["unit_name"], len(got), len(mine))
            assert np.max(np.abs(got - (mine["time_ns"] - t0) * 1e-9), initial=0) < 1e-9, u["unit_name"]
            has_electrode = len(u["electrodes"]) > 0
            assert has_electrode == (kind == "mea"), (u["unit_name"], kind, has_electrode)
        assert set(electrodes["group_name"]) == {"padova"}, set(electrodes["group_name"])
        # Series: weights and synaptic inputs, each value and time as recorded.
        others = ev[ev["kind"] != 0]
        assert len(others) > 0, "the demo recording holds synaptic inputs and weights"
        n = 0
        for name, ts in f.acquisition.items():
            source, rest = name.split("_", 1)
            what, channel = rest.rsplit("_", 1)
            sel = (others["node"] == source) & (others["channel"] == int(channel))
            if what == "weight":
                sel &= others["stream"] != 0
            else:
                sel &= (others["stream"] == 0) & (others["kind"] == KINDS.index(what))
            mine = others[sel]
            assert len(ts.data) == len(mine), (name, len(ts.data), len(mine))
            assert np.allclose(ts.timestamps[:], (mine["time_ns"] - t0) * 1e-9, atol=1e-9, rtol=0), name
            assert np.allclose(ts.data[:], mine["payload"], atol=1e-6, rtol=0), name
            n += len(mine)
        assert n == len(others), (n, len(others))
        # Stimulations: the topology in the recording routes synapse 1 (southampton channel 1) to
        # electrode 55 of padova with a 100 ms delay (configs/three-lab-topology.yaml): each of
        # its events is a stimulation of that electrode, applied 100 ms after its source time.
        sent = others[(others["node"] == "southampton") & (others["stream"] == 0) & (others["channel"] == 1)]
        assert len(sent) > 0, "silicon neuron 1 fires at about 2 Hz: synapse 1 transmits"
        stim = f.stimulus["padova_stimulation_55"]
        assert len(stim.data) == len(sent), (len(stim.data), len(sent))
        assert np.allclose(stim.timestamps[:], (sent["time_ns"] + 100_000_000 - t0) * 1e-9, atol=1e-9, rtol=0)
        assert np.allclose(stim.data[:], sent["payload"], atol=1e-6, rtol=0)
        assert set(f.stimulus) == {"padova_stimulation_55"}, set(f.stimulus)
    # CSV: the spikes file and the events file beside it hold the same events.
    with open(work / "demo.csv") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == len(spikes)
    with open(work / "demo.events.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(others) + len(sent), (len(rows), len(others), len(sent))
    weights = [r for r in rows if r["kind"] == "weight"]
    assert weights and all(r["node"] == "southampton" and r["stream"] == "1" for r in weights)
    stims = [r for r in rows if r["kind"] == "stimulation"]
    assert len(stims) == len(sent) and all(r["node"] == "padova" and r["channel"] == "55" for r in stims)
    # An import with --session-start: that instant, to the microsecond.
    with NWBHDF5IO(str(work / "imported.nwb"), "r") as io:
        f = io.read()
        assert f.session_start_time == dt.datetime(2017, 5, 2, 14, 3, tzinfo=dt.timezone.utc), f.session_start_time
        assert f.units is not None and len(f.units) == 2
    print(f"ok: {len(units)} units, {len(spikes)} spikes, {n} other events and {len(sent)} stimulations "
          f"read back as recorded; "
          f"pynwb {pynwb.__version__} finds no errors")


if __name__ == "__main__":
    main()
