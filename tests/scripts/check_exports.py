#!/usr/bin/python3
"""Independent readers check IoN's exports: h5py opens the NWB file, numpy the phy .npy files.

Usage: check_exports.py ION_BINARY WORK_DIR [SJEMEA_FILE]
With a sjemea file (the real hiPSN culture in ../shared/data) the exported spike times are
compared with the original file's, channel by channel; without one, a synthetic CSV is used.
"""
import subprocess
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np


def run(*args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def main():
    ion, work = sys.argv[1], Path(sys.argv[2])
    if work.exists():  # outputs of an earlier run: ion never writes over a file without --force
        shutil.rmtree(work)
    work.mkdir(parents=True)
    src = sys.argv[3] if len(sys.argv) > 3 and Path(sys.argv[3]).exists() else None
    expected = {}  # channel name -> spike times (s)
    if src:
        with h5py.File(src, "r") as f:
            spikes, counts = f["spikes"][:], f["sCount"][:]
            names = [n.decode() if isinstance(n, bytes) else n for n in f["names"][:]]
        k = 0
        for name, c in zip(names, counts):
            expected[name] = np.sort(spikes[k:k + c])
            k += c
        run(ion, "import", "sjemea", src, "-o", str(work / "in.ionrec"))
    else:
        rng = np.random.default_rng(1)
        rows = []
        for ch in range(8):
            t = np.sort(rng.integers(0, 25000 * 60, 500)) / 25000.0
            expected[f"e{ch}"] = t
            rows += [(f"e{ch}", x) for x in t]
        rows.sort(key=lambda r: r[1])
        (work / "in.csv").write_text("channel,time_s\n" + "".join(f"{c},{t:.6f}\n" for c, t in rows))
        run(ion, "import", "csv", str(work / "in.csv"), "-o", str(work / "in.ionrec"))

    # NWB: units table, one unit per channel, spike times in seconds.
    run(ion, "export", str(work / "in.ionrec"), "--format", "nwb", "-o", str(work / "out.nwb"))
    with h5py.File(work / "out.nwb", "r") as f:
        assert f.attrs["neurodata_type"] == "NWBFile", dict(f.attrs)
        assert str(f.attrs["nwb_version"]).startswith("2."), f.attrs["nwb_version"]
        units = f["units"]
        n_units = len(units["id"])
        index = units["spike_times_index"][:]
        times = units["spike_times"][:]
        labels = [x.decode() if isinstance(x, bytes) else x
                  for x in f["general/extracellular_ephys/electrodes/label"][:]]
        electrode_of_unit = units["electrodes"][:]
        assert "session_start_time" in f
    assert n_units == len(expected), (n_units, len(expected))
    assert index[-1] == sum(len(v) for v in expected.values()), (index[-1],)
    start = 0
    for u in range(n_units):
        got = times[start:index[u]]
        start = index[u]
        want = expected[labels[electrode_of_unit[u]]]
        assert len(got) == len(want), (labels[u], len(got), len(want))
        assert np.max(np.abs(got - want)) < 1e-9, (labels[u], np.max(np.abs(got - want)))

    # phy: spike_times in samples of the recording's grid, one cluster per channel.
    run(ion, "export", str(work / "in.ionrec"), "--format", "npy", "-o", str(work / "phy"))
    st = np.load(work / "phy" / "spike_times.npy")
    sc = np.load(work / "phy" / "spike_clusters.npy")
    cm = np.load(work / "phy" / "channel_map.npy")
    pos = np.load(work / "phy" / "channel_positions.npy")
    params = (work / "phy" / "params.py").read_text()
    fs = float(params.split("sample_rate = ")[1].split()[0])
    assert st.dtype == np.uint64 and sc.dtype == np.int32, (st.dtype, sc.dtype)
    assert len(st) == len(sc) == sum(len(v) for v in expected.values())
    assert np.all(np.diff(st.astype(np.int64)) >= 0), "spike_times sorted"
    assert len(cm) == n_units and pos.shape == (n_units, 2)
    counts = np.bincount(sc, minlength=n_units)
    assert sorted(counts.tolist()) == sorted(len(v) for v in expected.values())
    all_expected = np.sort(np.concatenate(list(expected.values())))
    assert np.array_equal(st, np.rint(all_expected * fs).astype(np.uint64)), "sample indices exact"
    print(f"ok: {n_units} units, {len(st)} spikes; NWB and npy agree with the source at {fs:.0f} Hz")


if __name__ == "__main__":
    main()
