#!/usr/bin/python3
"""The emulated iontronic neuron against SciPy's solve_ivp, an independent integrator of the same
equations (docs/devices/iontronic-neuron.md).

Promise checked (issue 20): "the two-channel neuron against an independent integration (SciPy's
solve_ivp from Debian) of the same equations":
  C dV/dt = I - g_na (V - E_na) - g_k (V - E_k),  dg_x/dt = (g0 + g1_x |V/v0|^alpha - g_x)/tau_x.
`iontronic_reference` (C++) prints the chip model's spike times and membrane extremes for five
currents with its parameters; this script integrates the same equations with LSODA (rtol 1e-10)
and compares, in device time: every inter-spike interval within 1 %, the spike counts within one,
the membrane's extremes within 2 % of E_na, rest at I = 0 and the block at I = 0.1.

Runs with Debian's python3-scipy (/usr/bin/python3). Exit 77 (skipped) when SciPy is absent.
Usage: iontronic_scipy_reference.py PATH/TO/iontronic_reference [--preset NAME]
"""
import json
import subprocess
import sys

try:
    import numpy as np
    from scipy.integrate import solve_ivp
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: SciPy is not importable ({e}); install python3-scipy", file=sys.stderr)
    sys.exit(77)


def reference(p, bias, duration):
    """Spike times (device time units), extremes in the second half, final V."""
    def f(_t, y):
        v, gna, gk = y
        law = abs(v / p["v0"]) ** p["alpha"]
        return [(bias - gna * (v - p["e_na"]) - gk * (v - p["e_k"])) / p["c"],
                (p["g0"] + p["g1_na"] * law - gna) / p["tau_na"],
                (p["g0"] + p["g1_k"] * law - gk) / p["tau_k"]]
    s = solve_ivp(f, (0, duration), [0.0, p["g0"], p["g0"]], method="LSODA", rtol=1e-10,
                  atol=1e-12 * max(1.0, abs(p["e_na"])), max_step=p["tau_na"] / 10)
    t, v = s.t, s.y[0]
    up = np.where((v[1:] > p["v_spike"]) & (v[:-1] <= p["v_spike"]))[0]
    times = t[up] + (p["v_spike"] - v[up]) / (v[up + 1] - v[up]) * (t[up + 1] - t[up])
    half = t >= duration / 2
    return times, v[half].max(), v[half].min(), v[-1]


def main():
    tool = sys.argv[1]
    args = sys.argv[2:]
    p = json.loads(subprocess.run([tool] + args, check=True, capture_output=True, text=True).stdout)
    # Network seconds -> device time units.
    to_device = 1.0 / (p["time_scale"] * p["unit_s"])
    failures = []
    e = p["e_na"]
    print(f"preset {p['preset']}: device time unit {p['unit_s']} s, time scale {p['time_scale']}, "
          f"step {p['step_ms']} ms of network time")
    print(f"{'I (norm.)':>10} {'spikes ion/scipy':>17} {'ISI ion':>10} {'ISI scipy':>10} {'max ion/scipy':>20} {'min ion/scipy':>20}")
    for run in p["runs"]:
        ion_t = np.array(run["spikes_s"]) * to_device
        ref_t, vmax, vmin, vend = reference(p, run["bias"], p["duration_s"] * to_device)
        isi_ion = np.diff(ion_t)[-1] if len(ion_t) > 2 else float("nan")
        isi_ref = np.diff(ref_t)[-1] if len(ref_t) > 2 else float("nan")
        print(f"{run['current']:>10} {len(ion_t):>8}/{len(ref_t):<8} {isi_ion:>10.4f} {isi_ref:>10.4f} "
              f"{run['v_max']:>9.4f}/{vmax:<10.4f} {run['v_min']:>9.4f}/{vmin:<10.4f}")
        if abs(len(ion_t) - len(ref_t)) > 1:
            failures.append(f"I={run['current']}: {len(ion_t)} spikes, reference {len(ref_t)}")
        if len(ref_t) > 2 and not (abs(isi_ion - isi_ref) <= 0.01 * isi_ref):
            failures.append(f"I={run['current']}: ISI {isi_ion:.4f}, reference {isi_ref:.4f} (> 1 %)")
        if abs(run["v_max"] - vmax) > 0.02 * e or abs(run["v_min"] - vmin) > 0.02 * e:
            failures.append(f"I={run['current']}: extremes {run['v_max']:.4f}/{run['v_min']:.4f}, "
                            f"reference {vmax:.4f}/{vmin:.4f} (> 2 % of E_na)")
        if run["current"] == 0 and (len(ion_t) or abs(run["v_end"]) > 1e-9 * e):
            failures.append("I=0: not at rest")
        if run["current"] >= 0.1 and not (abs(run["v_end"] - vend) <= 0.02 * e and len(ref_t) <= 2):
            failures.append(f"I={run['current']}: block at {run['v_end']:.4f}, reference {vend:.4f}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK: the chip's iontronic neuron agrees with SciPy's LSODA on the same equations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
