#!/usr/bin/python3
"""Closed loop in Python: stimulate the culture when it bursts.

The controller node receives every electrode's spikes from the MEA lab (at source time + the
connection's delay) and detects network bursts: at least --min-spikes spikes on at least
--min-electrodes electrodes within --window. At each burst onset (outside --refractory after the
last stimulus) it sends a stimulation to --electrode. It prints, per burst, the reaction time:
from the burst's onset (the source time of its first spike) to the stimulus' delivery at the MEA
(its deadline), both in network time — the sum of the two connections' delays, the time the
burst took to cross the threshold, and the controller's own reaction.

    ion-broker --config configs/closed-loop-broker.yaml
    ion-node --config configs/padova-mea.yaml
    /usr/bin/python3 examples/closed_loop.py --duration 20
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))  # a source checkout
import ion  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", default="tcp://127.0.0.1:5555")
    p.add_argument("--node", default="controller")
    p.add_argument("--electrodes", type=int, default=60, help="the MEA's electrodes (ports here)")
    p.add_argument("--electrode", type=int, default=55, help="the electrode to stimulate")
    p.add_argument("--amplitude-mv", type=float, default=800.0)
    p.add_argument("--window-ms", type=float, default=20.0)
    p.add_argument("--min-spikes", type=int, default=15)
    p.add_argument("--min-electrodes", type=int, default=5)
    p.add_argument("--refractory-ms", type=float, default=1000.0)
    p.add_argument("--delay-back-ms", type=float, default=10.0,
                   help="the controller -> MEA connection's delay (as in the topology)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    a = p.parse_args()
    window_ns = int(a.window_ms * 1e6)
    recent: collections.deque = collections.deque()  # (source time ns, electrode)
    reactions_ms = []
    last_stim_ns = None
    with ion.Node(a.node, broker=a.broker, channels=a.electrodes, ports=a.electrodes) as node:
        end = node.network_time_ns() + int(a.duration * 1e9)
        while node.network_time_ns() < end:
            d = node.receive(timeout_s=0.1)
            if d is None:
                continue
            for t, e in zip(d.times_ns.tolist(), d.ports.tolist()):
                recent.append((t, e))
            newest = recent[-1][0]
            while recent and recent[0][0] < newest - window_ns:
                recent.popleft()
            if len(recent) < a.min_spikes or len({e for _, e in recent}) < a.min_electrodes:
                continue
            onset = recent[0][0]
            if last_stim_ns is not None and onset - last_stim_ns < a.refractory_ms * 1e6:
                continue
            now = node.network_time_ns()
            node.emit([a.electrode], [now], payload=[a.amplitude_mv], kind="stimulation")
            last_stim_ns = now
            reaction = (now + a.delay_back_ms * 1e6 - onset) / 1e6
            reactions_ms.append(reaction)
            print(f"burst at {onset / 1e9:.3f} s ({len(recent)} spikes on "
                  f"{len({e for _, e in recent})} electrodes): stimulus due at the MEA "
                  f"{reaction:.1f} ms after the burst's onset", flush=True)
        stats = node.stats()
    r = np.array(reactions_ms or [np.nan])
    summary = {"bursts": len(reactions_ms), "stimuli": len(reactions_ms),
               "reaction_ms_p50": float(np.nanpercentile(r, 50)) if reactions_ms else None,
               "reaction_ms_max": float(np.nanmax(r)) if reactions_ms else None,
               "received": stats["received"], "late": stats["late"], "lost": stats["lost"]}
    print(f"closed loop: {len(reactions_ms)} bursts stimulated; reaction (onset -> stimulus at "
          f"the MEA) p50 {summary['reaction_ms_p50']} ms, max {summary['reaction_ms_max']} ms; "
          f"{stats['received']} spikes received, {stats['late']} late, {stats['lost']} lost")
    if a.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
