#!/usr/bin/python3
"""ion bench python: the Python package's figures against the C++ node in the same run.

1. emit: numpy batches of 256 events from Python (ion.Node.emit) vs the same loop in C++ through
   the same C API (bench/capi_bench), in alternating rounds; events/s and the ratio.
2. delivery error: a C++ generator at 1000 events/s; the error (hand-over time - deadline, network
   time) measured at a Python receiver (ion.Node.receive) and at a C++ receiver (capi_bench), and
   the node's own playout error; p50/p99/max and the ratio of the p99s.
3. LSL (when pylsl is installed): latency of a plain LSL outlet -> inlet, and of LSL -> ion-lsl
   bridge -> broker -> IoN node (arrival - LSL timestamp), at 1000 samples/s.
Figures, not pass/fail: machines are shared and noisy; compare the ratios.
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import ion  # noqa: E402

TOPOLOGY = """nodes:
  cemit:  {kind: external, channels: 256}
  pyemit: {kind: external, channels: 256}
  gen:    {kind: generator, channels: 16}
  crecv:  {kind: external, ports: 256}
  pyrecv: {kind: external, ports: 256}
  lslin:  {kind: external, channels: 256}
connections:
  - {from: "gen:*", to: ["crecv:*", "pyrecv:*"], delay: 20ms}
  - {from: "lslin:*", to: ["pyrecv:*"], delay: 20ms}
"""


def start(args, log):
    f = open(log, "wb")
    return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT)


def wait_log(path, pattern, timeout_s=20.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = re.search(pattern, Path(path).read_text(errors="replace"))
        if m:
            return m
        time.sleep(0.02)
    raise SystemExit(f"ion bench python: no /{pattern}/ in {path}:\n{Path(path).read_text()}")


def py_emit(endpoint, seconds, batch):
    with ion.Node("pyemit", broker=endpoint, channels=256) as node:
        ch = (np.arange(batch) % 256).astype(np.uint32)
        base = node.network_time_ns() + np.arange(batch, dtype=np.int64)
        events = 0
        dropping = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for _ in range(64):
                r = node.emit(ch, base + events)
                dropping += r == ion.EmitResult.QUEUED_DROPPING_OLDEST
                events += batch
    return {"events_per_s": events / elapsed, "batches_dropping_oldest": int(dropping)}


def c_run(capi_bench, *args):
    out = subprocess.run([str(capi_bench), *map(str, args)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit(f"capi_bench failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def py_receive(endpoint, seconds, spin_us=0):
    errors = []
    with ion.Node("pyrecv", broker=endpoint, ports=256, receive_spin_us=spin_us) as node:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            d = node.receive(timeout_s=0.1)
            if d is None:
                continue
            now = node.network_time_ns()
            errors.extend((now - d.deadlines_ns).tolist())
        s = node.stats()
    e = np.array(errors or [0])
    return {"events": len(errors), "p50_ns": int(np.percentile(e, 50)), "p99_ns": int(np.percentile(e, 99)),
            "max_ns": int(e.max()), "node_p99_ns": s["delivery_error_p99_ns"], "late": s["late"], "lost": s["lost"]}


def lsl_figures(endpoint, seconds):
    try:
        import pylsl
    except ImportError:
        return None
    from ion import lsl as bridge
    rate = 1000

    def pump(outlet, stop):
        # Like an acquisition loop: wake every ms, push the samples due, stamped now.
        k = 0
        t0 = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            due = int((time.perf_counter() - t0) * rate)
            now = pylsl.local_clock()
            while k < due:
                outlet.push_sample([k % 256], now)
                k += 1

    # Plain LSL: outlet -> inlet, latency = pull time - timestamp.
    outlet = bridge.spike_outlet("bench-plain", "bench-plain-1")
    inlet = bridge.open_inlet("bench-plain")
    stop = threading.Event()
    t = threading.Thread(target=pump, args=(outlet, stop))
    t.start()
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _, ts = bridge._pull(inlet, 0.05, 4096)  # as the bridge pulls
        now = pylsl.local_clock()
        lat.extend(now - x for x in ts)
    stop.set()
    t.join()
    plain = np.array(lat or [0]) * 1e9
    # Bridge: LSL -> to_ion -> broker -> pyrecv; the node's arrival - source time.
    outlet2 = bridge.spike_outlet("bench-bridge", "bench-bridge-1")
    inlet2 = bridge.open_inlet("bench-bridge")
    with ion.Node("pyrecv", broker=endpoint, ports=256) as rx, \
         ion.Node("lslin", broker=endpoint, channels=256) as src:
        stop = threading.Event()
        bt = threading.Thread(target=bridge.to_ion, args=(src, inlet2, stop))
        bt.start()
        pt = threading.Thread(target=pump, args=(outlet2, stop))
        pt.start()
        got = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            d = rx.receive(timeout_s=0.1)
            got += len(d) if d is not None else 0
        stop.set()
        pt.join()
        bt.join()
        s = rx.stats()
    return {"plain_p50_ns": int(np.percentile(plain, 50)), "plain_p99_ns": int(np.percentile(plain, 99)),
            "bridge_p50_ns": s["latency_p50_ns"], "bridge_p99_ns": s["latency_p99_ns"],
            "bridge_events": got, "bridge_late": s["late"], "bridge_lost": s["lost"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin-dir", required=True, help="folder of ion-broker and ion-node")
    p.add_argument("--capi-bench", required=True, help="the capi_bench program")
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    p.add_argument("--rounds", type=int, default=2, help="emit rounds (best of each side kept)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    bins = Path(a.bin_dir)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "topology.yaml").write_text(TOPOLOGY)
        (tmp / "broker.yaml").write_text("broker:\n  listen: tcp://127.0.0.1:5555\n  topology: topology.yaml\n")
        broker = start([str(bins / "ion-broker"), "--config", str(tmp / "broker.yaml"), "--listen",
                        "tcp://127.0.0.1:*"], tmp / "broker.log")
        procs = [broker]
        try:
            endpoint = wait_log(tmp / "broker.log", r"broker listening on (tcp://\S+)").group(1)
            res = {"emit": {}}
            for batch in (256, 1024):
                runs = {"cpp": [], "python": []}
                for _ in range(a.rounds):
                    runs["cpp"].append(c_run(a.capi_bench, "emit", endpoint, "cemit", a.seconds, batch))
                    runs["python"].append(py_emit(endpoint, a.seconds, batch))
                c_best = max(r["events_per_s"] for r in runs["cpp"])
                py_best = max(r["events_per_s"] for r in runs["python"])
                res["emit"][batch] = {**runs, "ratio": py_best / c_best}
                print(f"emit, batches of {batch}: Python {py_best / 1e6:.2f} M events/s, C++ "
                      f"{c_best / 1e6:.2f} M events/s (best of {a.rounds} rounds each): ratio "
                      f"{py_best / c_best:.2f}")
            (tmp / "gen.yaml").write_text(
                f"node:\n  name: gen\n  broker: {endpoint}\ndriver:\n  kind: generator\n  channels: 16\n"
                "  rate_hz: 62.5\n  seed: 1\n  batch_interval: 1ms\n")
            procs.append(start([str(bins / "ion-node"), "--config", str(tmp / "gen.yaml")], tmp / "gen.log"))
            wait_log(tmp / "gen.log", r"registered")
            res["receive"] = {"cpp": c_run(a.capi_bench, "receive", endpoint, "crecv", a.seconds),
                              "python": py_receive(endpoint, a.seconds),
                              "python_spin200": py_receive(endpoint, a.seconds, 200)}
            c, py = res["receive"]["cpp"], res["receive"]["python"]
            for name, r in (("C++", c), ("Python", py),
                            ("Python (receive_spin_us=200)", res["receive"]["python_spin200"])):
                print(f"delivery error at a {name} receiver, 1000 events/s: p50 {r['p50_ns'] / 1e3:.0f} us, "
                      f"p99 {r['p99_ns'] / 1e3:.0f} us, max {r['max_ns'] / 1e3:.0f} us ({r['events']} events; "
                      f"the node's playout p99 {r['node_p99_ns'] / 1e3:.0f} us; late {r['late']}, lost {r['lost']})")
            print(f"  Python p99 / C++ receiver p99: {py['p99_ns'] / max(c['p99_ns'], 1):.2f}; "
                  f"/ the C++ node's playout p99: {py['p99_ns'] / max(c['node_p99_ns'], 1):.2f}")
            procs[-1].send_signal(signal.SIGTERM)
            lsl = lsl_figures(endpoint, a.seconds)
            res["lsl"] = lsl
            if lsl is None:
                print("LSL: pylsl is not installed (pip install pylsl): skipped")
            else:
                print(f"LSL at 1000 samples/s: plain outlet -> inlet p50 {lsl['plain_p50_ns'] / 1e3:.0f} us, "
                      f"p99 {lsl['plain_p99_ns'] / 1e3:.0f} us; LSL -> bridge -> IoN node p50 "
                      f"{lsl['bridge_p50_ns'] / 1e3:.0f} us, p99 {lsl['bridge_p99_ns'] / 1e3:.0f} us "
                      f"({lsl['bridge_events']} events, late {lsl['bridge_late']}, lost {lsl['bridge_lost']})")
            if a.json:
                print(json.dumps(res))
        finally:
            for pr in procs:
                if pr.poll() is None:
                    pr.send_signal(signal.SIGTERM)
                    try:
                        pr.wait(10)
                    except subprocess.TimeoutExpired:
                        pr.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
