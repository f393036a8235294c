#!/usr/bin/env bash
# The three-lab network in docker-compose: builds debian:bookworm locally when missing (no image
# registry here), builds the project image, brings the network up, checks that spikes cross all
# three labs and that the recording is written, and tears everything down.
# Exit 77 (ctest: skipped) when no Docker Engine or docker-compose answers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! docker info >/dev/null 2>&1; then echo "SKIP: no Docker Engine answers"; exit 77; fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); elif command -v docker-compose >/dev/null; then compose=(docker-compose); else echo "SKIP: no docker-compose"; exit 77; fi

bash tests/docker/base_image.sh debian:bookworm
export ION_IMAGE="ion:compose-test"
echo "building $ION_IMAGE"
docker build -q -f docker/Dockerfile -t "$ION_IMAGE" . >/dev/null
project="iontest$$"
dc=("${compose[@]}" -p "$project" -f docker/docker-compose.yml)
cleanup() { "${dc[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT
# The dashboard is published on the host's loopback; a free port, in case 8080 is taken here.
export ION_DASHBOARD_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${dc[@]}" up -d >/dev/null

# Spikes must cross all three labs in both directions: every lab sends to and receives from the
# broker (Padova: spikes out, stimulation in; Zurich: spikes out, synaptic input in; Southampton:
# weighted events out, spikes in).
ok=""
for _ in $(seq 1 90); do
  status="$("${dc[@]}" exec -T broker ion status --broker tcp://127.0.0.1:5555 --json \
            --key /keys/operator.key --broker-key /keys/broker.pub 2>/dev/null || true)"
  if python3 - "$status" <<'PY'
import json, sys
try:
    s = json.loads(sys.argv[1])
except Exception:
    sys.exit(1)
n = {x["name"]: x for x in s["nodes"]}
if not s["security"]["curve"]:
    print("FAIL: the broker runs without CURVE", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if all(n.get(l, {}).get("events_in", 0) > 0 and n.get(l, {}).get("events_out", 0) > 0
                  for l in ("padova", "zurich", "southampton")) else 1)
PY
  then ok=1; break; fi
  sleep 1
done
if [ -z "$ok" ]; then
  echo "FAIL: spikes did not cross all three labs; last status: $status"
  "${dc[@]}" logs --tail 20
  exit 1
fi
echo "spikes cross all three labs: $status"
# "docker-compose exposes the dashboard on the host's loopback": the page and /api/status answer
# there, and the port is bound to 127.0.0.1 only.
python3 - "$ION_DASHBOARD_PORT" <<'PY'
import json, sys, urllib.request
port = sys.argv[1]
page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
assert "<html" in page.lower(), page[:200]
status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10))
assert {n["name"] for n in status["nodes"]} == {"padova", "zurich", "southampton"}, status["nodes"]
print(f"dashboard on http://127.0.0.1:{port}/ answers")
PY
binding="$("${dc[@]}" port broker 8080)"
case "$binding" in 127.0.0.1:*) ;; *) echo "FAIL: the dashboard is published on $binding, not the loopback"; exit 1;; esac
events="$("${dc[@]}" exec -T recorder ion inspect /data/session.ionrec --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_events"])')"
if [ "${events:-0}" -le 0 ]; then echo "FAIL: the recording holds no events"; exit 1; fi
echo "recording: $events events in the recordings volume"
"${dc[@]}" stop -t 10 >/dev/null
echo "PASS"
