#!/usr/bin/env bash
# IoN's TSPE against Elephant's, the reference implementation (PyPI, in a venv this test makes),
# on an emulated culture's spike trains (tests/scripts/check_connectome_elephant.py).
# usage: connectome_elephant_test.sh ION_BINARY ; exit 77 (skipped) when PyPI is unreachable.
set -euo pipefail
ion="$1"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m venv "$work/venv"
if ! "$work/venv/bin/pip" install -q --disable-pip-version-check --timeout 30 --retries 2 elephant 2>"$work/pip.log"; then
  if grep -qiE "connection|resolve|network|timed out" "$work/pip.log"; then
    echo "SKIP: PyPI unreachable: $(tail -1 "$work/pip.log")"; exit 77
  fi
  cat "$work/pip.log"; exit 1
fi
"$ion" connectome simulate -o "$work/culture.ionrec" --truth "$work/truth.csv" --neurons 60 --minutes 5 --seed 3
"$ion" export "$work/culture.ionrec" --format csv -o "$work/spikes.csv"
"$ion" connectome infer "$work/culture.ionrec" -o "$work/map.csv" --method tspe --min-spikes 1
"$work/venv/bin/python" "$here/check_connectome_elephant.py" "$work/spikes.csv" "$work/map.csv" "$work/truth.csv"
