#!/usr/bin/env bash
# IoN's TSPE against Elephant's, the reference implementation (PyPI, in a venv this test makes),
# on an emulated culture's spike trains (tests/scripts/check_connectome_elephant.py).
# usage: connectome_elephant_test.sh ION_BINARY ; exit 77 (skipped) when PyPI is unreachable.
set -euo pipefail
ion="$1"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source "$here/pip_or_skip.sh"
/usr/bin/python3 -m venv "$work/venv"
pip_or_skip "$work/venv" "$work/pip.log" elephant
"$ion" connectome simulate -o "$work/culture.ionrec" --truth "$work/truth.csv" --neurons 60 --minutes 5 --seed 3
"$ion" export "$work/culture.ionrec" --format csv -o "$work/spikes.csv"
"$ion" connectome infer "$work/culture.ionrec" -o "$work/map.csv" --method tspe --min-spikes 1
"$work/venv/bin/python" "$here/check_connectome_elephant.py" "$work/spikes.csv" "$work/map.csv" "$work/truth.csv"
