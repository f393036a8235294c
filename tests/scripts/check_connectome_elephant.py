"""IoN's TSPE against Elephant's (the reference implementation, PyPI) on the same spike trains.

usage: check_connectome_elephant.py SPIKES.csv MAP.csv TRUTH.csv

SPIKES.csv is `ion export --format csv` of an emulated culture (channel,time_s), MAP.csv is
`ion connectome infer --method tspe` of the same recording (every scored pair), TRUTH.csv the
culture's wiring. Both implementations bin at 1 ms from the earliest spike. Passes when the two
connectivity matrices correlate at >= 0.95 (issue 22); prints both excitatory ROC AUCs.
"""
import csv
import logging
import sys

import numpy as np
import quantities as pq
from elephant.conversion import BinnedSpikeTrain
from elephant.functional_connectivity import total_spiking_probability_edges
from neo import SpikeTrain


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def auc(pos, neg):
    neg = np.sort(np.asarray(neg))
    wins = 0.0
    for p in pos:
        lo = np.searchsorted(neg, p, side="left")
        hi = np.searchsorted(neg, p, side="right")
        wins += lo + 0.5 * (hi - lo)
    return wins / (len(pos) * len(neg))


def main() -> int:
    # Elephant says when it moves a spike that lies on a bin edge (within float error) into the
    # following bin, as IoN's integer binning does: expected, not worth a line per channel.
    logging.getLogger("elephant").setLevel(logging.ERROR)
    spikes_csv, map_csv, truth_csv = sys.argv[1:4]
    times: dict[str, list[float]] = {}
    for r in rows(spikes_csv):
        times.setdefault(r["channel"], []).append(float(r["time_s"]))
    names = sorted(times, key=lambda n: int(n[1:]))
    index = {n: i for i, n in enumerate(names)}
    first = min(min(t) for t in times.values())
    last = max(max(t) for t in times.values())
    n_bins = int(np.floor((last - first) / 1e-3 + 1e-9)) + 1
    t_stop = first + n_bins * 1e-3
    trains = [SpikeTrain(np.asarray(times[n]) * pq.s, t_start=first * pq.s, t_stop=t_stop * pq.s)
              for n in names]
    binned = BinnedSpikeTrain(trains, bin_size=1 * pq.ms, t_start=first * pq.s, t_stop=t_stop * pq.s)
    conn, _delay = total_spiking_probability_edges(binned)
    # Elephant's element [i, j] scores j -> i (row i lags column j); IoN's maps pre -> post.
    theirs = np.asarray(conn).T
    n = len(names)
    ours = np.zeros((n, n))
    for r in rows(map_csv):
        ours[index[r["pre"]], index[r["post"]]] = float(r["strength"])
    off = ~np.eye(n, dtype=bool)
    corr = float(np.corrcoef(ours[off], theirs[off])[0, 1])
    exc = np.zeros((n, n), dtype=bool)
    for r in rows(truth_csv):
        if int(r["sign"]) > 0:
            exc[index[r["pre"]], index[r["post"]]] = True
    pos, neg = exc & off, ~exc & off
    auc_ours, auc_theirs = auc(ours[pos], ours[neg]), auc(theirs[pos], theirs[neg])
    print(f"{n} channels, {int(sum(len(t) for t in times.values()))} spikes, {n_bins} bins")
    print(f"TSPE matrices, IoN against Elephant: correlation {corr:.4f}")
    print(f"excitatory ROC AUC: IoN {auc_ours:.4f}, Elephant {auc_theirs:.4f}")
    if not corr >= 0.95:
        print("FAIL: the two TSPE matrices correlate below 0.95")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
