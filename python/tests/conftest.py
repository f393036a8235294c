"""Fixtures: real IoN daemons (ion-broker, ion-node, ion) from the build tree, on free ports."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bin_dir() -> Path:
    env = os.environ.get("ION_BIN_DIR")
    if env:
        return Path(env)
    for preset in ("debug", "release"):
        d = ROOT / "build" / preset / "bin"
        if (d / "ion-broker").exists():
            return d
    pytest.skip("no IoN build found (set ION_BIN_DIR)")


BIN = _bin_dir()


class Daemon:
    """A child process whose log is a file; waits for log lines rather than sleeping."""

    def __init__(self, args: List[str], log: Path, env: Optional[Dict[str, str]] = None):
        self.log = log
        self.args = args
        self._f = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=self._f, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout_s: float = 20.0) -> re.Match:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.args[0]} exited ({self.proc.returncode}):\n{self.text()}")
            time.sleep(0.02)
        raise AssertionError(f"no /{pattern}/ from {self.args[0]} within {timeout_s} s:\n{self.text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._f.close()
        return self.proc.returncode


@pytest.fixture
def daemons():
    started: List[Daemon] = []

    def start(args: List[str], log: Path) -> Daemon:
        d = Daemon(args, log)
        started.append(d)
        return d

    yield start
    for d in reversed(started):
        d.stop(signal.SIGKILL if d.proc.poll() is None else signal.SIGTERM)


def write_topology(tmp: Path, nodes: Dict[str, str], connections: List[str], name: str = "broker") -> Path:
    topo = tmp / f"{name}-topology.yaml"
    lines = ["nodes:"] + [f"  {n}: {spec}" for n, spec in nodes.items()] + \
            (["connections:"] + [f"  - {c}" for c in connections] if connections else ["connections: []"])
    topo.write_text("\n".join(lines) + "\n")
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(f"broker:\n  listen: tcp://127.0.0.1:5555\n  topology: {topo.name}\n"
                   "  heartbeat_interval: 200ms\n  heartbeat_timeout: 2s\n")
    return cfg


@pytest.fixture
def broker(daemons, tmp_path) -> Callable[..., "BrokerHandle"]:
    def start(nodes: Dict[str, str], connections: List[str], extra: Optional[List[str]] = None,
              listen: str = "tcp://127.0.0.1:*") -> BrokerHandle:
        cfg = write_topology(tmp_path, nodes, connections)
        return BrokerHandle(daemons, cfg, tmp_path, extra or [], listen)
    return start


class BrokerHandle:
    def __init__(self, daemons, cfg: Path, tmp: Path, extra: List[str], listen: str):
        self.daemons, self.cfg, self.tmp, self.extra = daemons, cfg, tmp, extra
        self.runs = 0
        self.endpoint = listen
        self.start()

    def start(self) -> None:
        self.runs += 1
        self.daemon = self.daemons([str(BIN / "ion-broker"), "--config", str(self.cfg), "--listen",
                                    self.endpoint, *self.extra], self.tmp / f"broker-{self.runs}.log")
        self.endpoint = self.daemon.wait_for(r"broker listening on (tcp://\S+)").group(1)


def node_config(tmp: Path, name: str, broker: str, driver: str) -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(f"node:\n  name: {name}\n  broker: {broker}\n  heartbeat_interval: 200ms\n"
                 f"  reconnect_max: 500ms\ndriver:\n{driver}")
    return p


def start_node(daemons, tmp: Path, name: str, broker: str, driver: str) -> Daemon:
    """ion-node for `name` with the given `driver:` mapping (YAML lines), its log in tmp."""
    return daemons([str(BIN / "ion-node"), "--config", str(node_config(tmp, name, broker, driver))],
                   tmp / f"{name}.log")


def stopped_counts(log: str) -> Dict[str, int]:
    """ion-node's last words: 'node stopped: emitted=N dropped=N received=N lost=N late=N ...'."""
    m = re.search(r"node stopped: (.*)", log)
    assert m, log
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def driver_counts(log: str) -> Dict[str, int]:
    m = re.search(r"driver counters: (.*)", log)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", m.group(1))} if m else {}


def eventually(pred: Callable[[], bool], timeout_s: float = 20.0, every_s: float = 0.02) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every_s)
    return pred()


def status_received(endpoint: str, name: str) -> int:
    """What node `name` reported it received, from `ion status --json` (-1: not known yet)."""
    import json
    out = subprocess.run([str(BIN / "ion"), "status", "--broker", endpoint, "--json"],
                         capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        return -1
    for n in json.loads(out.stdout.strip().splitlines()[-1])["nodes"]:
        if n["name"] == name:
            return int(n.get("received_events", 0))
    return -1
