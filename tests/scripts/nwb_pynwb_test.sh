#!/usr/bin/env bash
# Every export kind against pynwb, the NWB reference reader (PyPI, in a venv this test makes):
# a three-lab recording (ion demo: MEA spikes, silicon-neuron spikes, synaptic inputs, synapse
# weights) and an import with --session-start, exported to NWB and CSV; pynwb's validator finds
# no errors, and every field read back agrees with the recording (tests/scripts/check_nwb_pynwb.py);
# the NWB schema is cached in the files (from pynwb's own copy, named or found through the venv).
# usage: nwb_pynwb_test.sh BUILD_DIR SOURCE_DIR ; exit 77 (skipped) when PyPI is unreachable.
set -euo pipefail
build="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source "$(dirname "$0")/pip_or_skip.sh"
/usr/bin/python3 -m venv "$work/venv"
pip_or_skip "$work/venv" "$work/pip.log" pynwb
ion="$build/bin/ion"
"$ion" demo --duration 4 --no-emulated-wan --plaintext --out "$work/demo" >"$work/demo.log" 2>&1 ||
  { cat "$work/demo.log"; exit 1; }
schema="$(echo "$work"/venv/lib/python3*/site-packages/pynwb/nwb-schema)"
"$ion" export "$work/demo/recording.ionrec" --format nwb -o "$work/demo.nwb" --nwb-schema "$schema" | tee "$work/export.log"
grep -q "NWB schema .* cached in the file" "$work/export.log"
# No schema anywhere it looks: written uncached, and it says so.
env -u VIRTUAL_ENV -u ION_NWB_SCHEMA HOME="$work" "$ion" export "$work/demo/recording.ionrec" --format nwb \
  -o "$work/uncached.nwb" | tee "$work/uncached.log"
grep -q "the NWB schema is not cached" "$work/uncached.log"
"$ion" export "$work/demo/recording.ionrec" --format csv -o "$work/demo.csv"
printf 'channel,time_s\ne1,0.5\ne2,0.75\ne1,1.25\n' >"$work/in.csv"
"$ion" import csv "$work/in.csv" -o "$work/imported.ionrec" --session-start 2017-05-02T16:03:00+02:00
VIRTUAL_ENV="$work/venv" "$ion" export "$work/imported.ionrec" --format nwb -o "$work/imported.nwb"
ION_LIBRARY="$build/lib/libion.so.1" PYTHONPATH="$src/python" \
  "$work/venv/bin/python" "$src/tests/scripts/check_nwb_pynwb.py" "$work"
