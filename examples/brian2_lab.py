#!/usr/bin/python3
"""A Brian2 network as a lab in an IoN network, in real time.

Its neurons' spikes go out as the node's channels (neuron i -> channel i), stamped in network
time; spikes delivered to the node's ports drive its input (port p excites neuron p mod N by
--weight-mv), at their deadlines. Runs with Debian's python3-brian (numpy target).

    ion-broker --config configs/brian2-broker.yaml
    ion-node --config configs/padova-mea.yaml      # the emulated culture
    /usr/bin/python3 examples/brian2_lab.py --duration 10

The simulation is paced by network time: at every --step of simulated time it waits until the
network clock has reached the same instant, then sends the spikes of that step and takes the
deliveries that are due. So a spike at simulated time t leaves stamped t0 + t, and an input
delivered at deadline D acts at the first step after D (at most --step late; reported).

With --wait-input S the simulation starts only when the first spikes from another lab arrive
(within S seconds, or it exits 1). Otherwise the spikes it sends to a lab that has not registered
yet wait for it at the broker (start-up grace) and reach it after their deadlines: counted late
there, but avoidable.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))  # a source checkout
import ion  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", default="tcp://127.0.0.1:5555")
    p.add_argument("--node", default="brian", help="the node's name in the topology")
    p.add_argument("--neurons", type=int, default=100)
    p.add_argument("--ports", type=int, default=60, help="input ports (e.g. the MEA's electrodes)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of network time")
    p.add_argument("--step", type=float, default=1.0, help="ms between exchanges with the network")
    p.add_argument("--weight-mv", type=float, default=4.0, help="mV added per input spike")
    p.add_argument("--wait-input", type=float, default=0.0, metavar="S",
                   help="start when the first input arrives, waiting at most S seconds (0: start now)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    a = p.parse_args()

    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.5 * b2.ms
    b2.seed(7)
    n = a.neurons
    # Leaky integrate-and-fire neurons with noisy drive (spontaneous firing of a few Hz) and
    # sparse excitatory recurrence.
    eqs = "dv/dt = (v_rest - v + mu)/tau + sigma*sqrt(2/tau)*xi : volt (unless refractory)"
    g = b2.NeuronGroup(n, eqs, threshold="v > v_th", reset="v = v_reset", refractory=2 * b2.ms,
                       method="euler",
                       namespace={"v_rest": -65 * b2.mV, "mu": 12 * b2.mV, "tau": 20 * b2.ms,
                                  "sigma": 4 * b2.mV, "v_th": -50 * b2.mV, "v_reset": -65 * b2.mV})
    g.v = "v_rest + rand()*10*mV"
    s = b2.Synapses(g, g, on_pre="v += 0.5*mV", delay=2 * b2.ms)
    s.connect(p=0.05)
    mon = b2.SpikeMonitor(g)

    with ion.Node(a.node, broker=a.broker, kind="external", channels=n, ports=a.ports) as node:
        state = {"t0": None, "sent": 0, "last": 0, "received": 0, "max_lag_ns": 0, "lags": [], "input_delay_ns": []}
        if a.wait_input > 0:  # an event to wait for, not a fixed pause: the partner lab is live
            first = node.receive(timeout_s=a.wait_input)
            if first is None:
                print(f"brian2 lab '{a.node}': no input within {a.wait_input} s; is the other lab "
                      "running and connected to this node's ports?", file=sys.stderr)
                return 1
            state["received"] += len(first)
        step_ns = int(a.step * 1e6)

        @b2.network_operation(dt=a.step * b2.ms, when="end")
        def exchange(t):
            t_ns = int(round(float(t / b2.second) * 1e9))
            if state["t0"] is None:  # the first step: network time of simulated time 0
                state["t0"] = node.network_time_ns() - t_ns
            t0 = state["t0"]
            target = t0 + t_ns + step_ns
            now = node.network_time_ns()
            while now < target:  # pace: never ahead of the network clock
                time.sleep(min(0.0005, (target - now) / 1e9))
                now = node.network_time_ns()
            state["max_lag_ns"] = max(state["max_lag_ns"], now - target)
            state["lags"].append(now - target)
            k = mon.num_spikes
            if k > state["last"]:
                i = np.asarray(mon.i[state["last"]:k])
                ts = t0 + np.rint(np.asarray(mon.t[state["last"]:k] / b2.second) * 1e9).astype(np.int64)
                node.emit(i, ts)
                state["sent"] += k - state["last"]
                state["last"] = k
            while (d := node.receive(timeout_s=0)) is not None:
                hits = np.bincount((d.ports % n).astype(np.int64), minlength=n)
                np.add(v_volts, hits * (a.weight_mv * 1e-3), out=v_volts)
                state["received"] += len(d)
                state["input_delay_ns"].append(now - int(d.deadlines_ns.max()))

        net = b2.Network(g, s, mon, exchange)
        # The membrane potentials in volts, by reference (numpy target): adding to them is cheap,
        # where `g.v = ...` goes through Brian2's unit machinery on every delivery.
        v_volts = g.variables["v"].get_value()
        gc.collect()
        gc.freeze()  # a full collection over Brian2's objects would stall real time
        net.run(a.duration * b2.second)
        stats = node.stats()
    d = np.array(state["input_delay_ns"] or [0]) / 1e6
    summary = {"node": a.node, "neurons": n, "duration_s": a.duration, "emitted": int(state["sent"]),
               "received": int(state["received"]), "late": stats["late"], "lost": stats["lost"],
               "dropped": stats["dropped"], "max_behind_real_time_ms": state["max_lag_ns"] / 1e6,
               "behind_real_time_ms_p99": float(np.percentile(np.array(state["lags"] or [0]) / 1e6, 99)),
               "input_applied_after_deadline_ms_p99": float(np.percentile(d, 99))}
    print(f"brian2 lab '{a.node}': {n} neurons for {a.duration} s: sent {state['sent']} spikes, "
          f"received {state['received']} (late {stats['late']}, lost {stats['lost']}); "
          f"inputs acted {summary['input_applied_after_deadline_ms_p99']:.2f} ms after their "
          f"deadline (p99); at most {summary['max_behind_real_time_ms']:.1f} ms behind real time")
    if a.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
