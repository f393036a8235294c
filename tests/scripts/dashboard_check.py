#!/usr/bin/python3
"""The live dashboard while `ion demo` runs the three-lab network (docs/dashboard.md).

  dashboard_check.py ION_BIN ARTIFACT_DIR http      /metrics through prometheus_client's parser,
                                                    /api/status through json: valid, and showing
                                                    the three labs live
  dashboard_check.py ION_BIN ARTIFACT_DIR browser [MIN_FRAMES]  the page in headless Chromium: the raster has
                                                    drawn events, the counters are shown; saves
                                                    ARTIFACT_DIR/dashboard.png. Exit 77 (skipped)
                                                    without chromium, chromedriver or selenium.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

LABS = ("padova", "zurich", "southampton")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def check_http(base):
    from prometheus_client.parser import text_string_to_metric_families

    def labs_live():
        st = json.loads(fetch(base + "/api/status")[2])
        nodes = {n["name"]: n for n in st["nodes"]}
        ok = all(nodes.get(l, {}).get("events_in", 0) > 0 and nodes[l].get("clock_synced") for l in LABS)
        weights = [w for w in nodes.get("southampton", {}).get("weights", []) if w is not None]
        return st if ok and weights else None

    st = wait_for(labs_live, 40, "the three labs live in /api/status, with weights")
    # Every link's end-to-end histogram, once each target has had events from it and reported.
    want = {("padova", "southampton"), ("zurich", "southampton"), ("southampton", "zurich"),
            ("southampton", "padova")}

    def all_links():
        st = json.loads(fetch(base + "/api/status")[2])
        return want <= {(l["from"], l["to"]) for l in st["links"] if l["count"] > 0}

    wait_for(all_links, 40, "an end-to-end latency histogram for every link")
    code, ctype, text = fetch(base + "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4"), (code, ctype)
    families = {f.name: f for f in text_string_to_metric_families(text)}  # raises on bad syntax
    for name in families:
        assert name.startswith("ion_"), name
    # The client library drops the _total suffix from counter family names.
    for need in ("ion_events_received", "ion_events_sent", "ion_node_late_events", "ion_node_lost_events",
                 "ion_events_dropped", "ion_clock_offset_seconds", "ion_clock_uncertainty_seconds",
                 "ion_ingress_latency_seconds", "ion_link_latency_seconds", "ion_synapse_weight",
                 "ion_curve", "ion_node_playout_overrun", "ion_node_device_trouble", "ion_driver_counter"):
        assert need in families, f"{need} missing from /metrics"
    received = {s.labels["node"]: s.value for s in families["ion_events_received"].samples
                if s.name == "ion_events_received_total"}
    for lab in LABS:
        assert received.get(lab, 0) > 0, f"ion_events_received_total{{node={lab}}} = {received.get(lab)}"
    hist = families["ion_ingress_latency_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["node"] == "padova"]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf", "buckets not cumulative"
    links = {(s.labels["from"], s.labels["to"]) for s in families["ion_link_latency_seconds"].samples
             if s.name.endswith("_count") and s.value > 0}
    assert want <= links, f"end-to-end histograms in /metrics: {sorted(links)}"
    # Device trouble travels in heartbeats (issue: "the device counters were printed only when the
    # nodes stopped"): every lab's driver counters are there while it runs, trouble ones flagged.
    dc = families["ion_driver_counter"].samples
    for lab in LABS:
        mine = {s.labels["counter"]: s for s in dc if s.labels["node"] == lab}
        assert mine, f"no driver counters for {lab} in /metrics"
        assert any(s.labels["trouble"] == "1" for s in mine.values()), f"{lab} declares no trouble counters"
    weights = [s for s in families["ion_synapse_weight"].samples if s.labels["node"] == "southampton"]
    assert len(weights) >= 2 and all(0 <= s.value <= 1 for s in weights), weights
    assert [s.value for s in families["ion_curve"].samples] == [1.0], "the demo runs with CURVE"
    print(f"PASS: /metrics parsed ({len(families)} families); /api/status has {len(st['nodes'])} nodes; "
          f"events received {', '.join(f'{k} {int(v)}' for k, v in sorted(received.items()))}; "
          f"weights {', '.join(f'{s.value:.3f}' for s in weights)}")


def check_browser(base, artifacts, min_frames):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if not chromium or not driver or webdriver is None:
        print("SKIP: headless browser test needs Debian's chromium, chromium-driver and python3-selenium")
        return 77
    profile = tempfile.mkdtemp(prefix="ion-chromium-")
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              f"--user-data-dir={profile}", "--window-size=1400,1700"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        drv.set_page_load_timeout(30)
        drv.get(base + "/")

        def drawn():
            return drv.execute_script(
                "const d = window.ionDashboard; if (!d || d.eventsDrawn <= 0) return null;"
                "const rows = [...document.querySelectorAll('#counters tbody tr')].map(r => r.dataset.node);"
                "const counters = document.querySelectorAll('#counters td.counter').length;"
                "const weights = document.querySelectorAll('#weights-legend span').length;"
                "const clocks = document.querySelectorAll('#clock-legend span').length;"
                "const rasters = [...document.querySelectorAll('#rasters canvas')]"
                "  .map(c => [c.id, +c.dataset.eventsDrawn, +c.dataset.rows]);"
                "return {frames: d.frames, drawn: d.eventsDrawn, rows, counters, weights, clocks, rasters,"
                "        state: document.getElementById('link-state').textContent,"
                "        security: document.getElementById('security').textContent};")

        def ready():
            r = drawn()
            if not r or r["frames"] < min_frames or r["weights"] < 2 or r["clocks"] < 3:
                return None
            return r

        r = wait_for(ready, 40 + min_frames / 4, "the dashboard to draw the network")
        assert set(LABS) <= set(r["rows"]), r
        assert r["counters"] >= 5 * len(LABS), r
        assert r["state"] == "live" and r["security"].startswith("CURVE"), r
        lit = [name for name, n, _ in r["rasters"] if n > 0]
        assert any("padova" in x for x in lit) and any("zurich" in x for x in lit), r
        # A row per active channel: the chip's few firing neurons of 256 are a few rows, not a strip.
        rows = {name: k for name, _, k in r["rasters"]}
        assert 0 < rows["raster-zurich"] < 64, rows
        os.makedirs(artifacts, exist_ok=True)
        shot = os.path.join(artifacts, "dashboard.png")
        drv.save_screenshot(shot)
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
        print(f"PASS: dashboard live after {r['frames']} frames: {r['drawn']} events drawn "
              f"({', '.join(f'{k} {v} in {n} rows' for k, v, n in r['rasters'])}), {r['counters']} counters, "
              f"{r['weights']} weight traces, {r['clocks']} clock traces; screenshot {shot}")
        return 0
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    ion, artifacts, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    min_frames = int(sys.argv[4]) if len(sys.argv) > 4 else 8  # 4 per second
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = tempfile.mkdtemp(prefix="ion-dashboard-demo-")
    demo = subprocess.Popen([ion, "demo", "--duration", "60", "--http", f"127.0.0.1:{port}", "--out", out],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rc = 1
    try:
        wait_for(lambda: fetch(base + "/api/status")[0] == 200, 30, "the demo's dashboard")
        rc = check_http(base) or 0 if mode == "http" else check_browser(base, artifacts, min_frames)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
        if rc not in (0, 77):
            print(demo.stdout.read()[-3000:])
        shutil.rmtree(out, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
