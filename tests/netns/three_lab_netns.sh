#!/usr/bin/env bash
# The three-lab network across network namespaces, as on separate hosts: the broker (the hub)
# in one namespace, Padova, Zurich and Southampton each in their own, joined to the hub by veth
# pairs with addresses that exist only inside the namespaces this test makes. Padova's and
# Zurich's links run through the link emulator (their sites' presets) inside their namespaces.
# Usage: three_lab_netns.sh BIN_DIR CONFIG_DIR SECONDS. Exit 77 (skipped) without root or netns.
set -euo pipefail
bin="$1"; configs="$2"; seconds="${3:-20}"
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root for ip netns"; exit 77; fi
if ! command -v ip >/dev/null; then echo "SKIP: no ip (iproute2)"; exit 77; fi
tag="ion$$"
hub="${tag}hub"
if ! ip netns add "$hub" 2>/dev/null; then echo "SKIP: ip netns not permitted here"; exit 77; fi
work="$(mktemp -d /tmp/ion-netns.XXXXXX)"
pids=()
namespaces=("$hub" "${tag}pd" "${tag}zh" "${tag}sh")
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # Whatever still runs inside the namespaces goes too: deleting a namespace does not stop it.
  for ns in "${namespaces[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  done
  wait 2>/dev/null || true
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
ip netns exec "$hub" ip link set lo up
n=0
for lab in pd zh sh; do
  n=$((n + 1))
  ns="${tag}${lab}"
  ip netns add "$ns"
  ip netns exec "$ns" ip link set lo up
  ip link add "${tag}h${lab}" type veth peer name "${tag}l${lab}"
  ip link set "${tag}h${lab}" netns "$hub"
  ip link set "${tag}l${lab}" netns "$ns"
  ip netns exec "$hub" ip addr add "10.231.${n}.1/24" dev "${tag}h${lab}"
  ip netns exec "$hub" ip link set "${tag}h${lab}" up
  ip netns exec "$ns" ip addr add "10.231.${n}.2/24" dev "${tag}l${lab}"
  ip netns exec "$ns" ip link set "${tag}l${lab}" up
done

# Every link is encrypted and authenticated (CURVE): a key pair per participant, and the
# broker admits the labs', the recorder's and the operator's public keys.
keys="$work/keys"
mkdir -m 700 "$keys"
for who in broker padova zurich southampton recorder operator; do
  "$bin/ion" keygen "$who" --dir "$keys" >/dev/null
done
cat "$keys"/{padova,zurich,southampton,recorder,operator}.pub >"$keys/allowlist"
client() { echo --key "$keys/$1.key" --broker-key "$keys/broker.pub"; }

ip netns exec "$hub" "$bin/ion-broker" --config "$configs/broker.yaml" --listen tcp://0.0.0.0:5555 \
  --key "$keys/broker.key" --allowlist "$keys/allowlist" >"$work/broker.log" 2>&1 &
pids+=($!)
ip netns exec "$hub" "$bin/ion" record --broker tcp://127.0.0.1:5555 -o "$work/session.ionrec" $(client recorder) >"$work/record.log" 2>&1 &
pids+=($!)
# Southampton reaches the hub directly; Padova and Zurich through their WAN presets.
ip netns exec "${tag}sh" "$bin/ion-node" --config "$configs/southampton-synapse.yaml" --broker tcp://10.231.3.1:5555 $(client southampton) >"$work/sh.log" 2>&1 &
pids+=($!)
ip netns exec "${tag}zh" "$bin/ion" linkem --preset southampton-zurich --listen 127.0.0.1:6002 --connect 10.231.2.1:5555 >"$work/zh-link.log" 2>&1 &
pids+=($!)
ip netns exec "${tag}zh" "$bin/ion-node" --config "$configs/zurich-chip.yaml" --broker tcp://127.0.0.1:6002 $(client zurich) >"$work/zh.log" 2>&1 &
pids+=($!)
ip netns exec "${tag}pd" "$bin/ion" linkem --preset southampton-padova --listen 127.0.0.1:6001 --connect 10.231.1.1:5555 >"$work/pd-link.log" 2>&1 &
pids+=($!)
ip netns exec "${tag}pd" "$bin/ion-node" --config "$configs/padova-mea.yaml" --broker tcp://127.0.0.1:6001 $(client padova) >"$work/pd.log" 2>&1 &
pids+=($!)

sleep "$seconds"
status="$(ip netns exec "$hub" "$bin/ion" status --broker tcp://127.0.0.1:5555 --json $(client operator))"
# Stop the labs and the recorder cleanly (SIGTERM), then check what they say.
for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=()
python3 - "$status" "$work" "$bin" <<'PY'
import json, subprocess, sys
status, work, bin_dir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
nodes = {n["name"]: n for n in status["nodes"]}
problems = []
if not status["security"]["curve"]:
    problems.append("the broker ran without CURVE")
for lab in ("padova", "zurich", "southampton"):
    n = nodes.get(lab, {})
    if not n.get("connected"):
        problems.append(f"{lab} not connected")
    if n.get("events_in", 0) <= 0 or n.get("events_out", 0) <= 0:
        problems.append(f"{lab}: events in {n.get('events_in')} out {n.get('events_out')}")
    if n.get("late_events", 0) > 0 or n.get("lost_events", 0) > 0:
        problems.append(f"{lab}: {n.get('late_events')} late, {n.get('lost_events')} lost")
rec = json.loads(subprocess.run([f"{bin_dir}/ion", "inspect", f"{work}/session.ionrec", "--json"],
                                capture_output=True, text=True, check=True).stdout)
if rec["total_events"] <= 0:
    problems.append("empty recording")
sources = {s["source"] for s in rec["streams"]}
if not {"padova", "zurich", "southampton"} <= sources:
    problems.append(f"recording holds {sorted(sources)}")
if problems:
    print("FAIL: " + "; ".join(problems))
    for f in ("broker", "pd", "zh", "sh", "record"):
        print(f"--- {f}.log"); print(open(f"{work}/{f}.log").read()[-1500:])
    sys.exit(1)
print("PASS: spikes crossed all three labs across namespaces;",
      ", ".join(f"{k} in {nodes[k]['events_in']} out {nodes[k]['events_out']}" for k in ("padova", "zurich", "southampton")),
      f"; recording {rec['total_events']} events")
PY
