#!/usr/bin/env bash
# Connectivity inference on real culture recordings: the shared sjemea cultures and the Axion
# 48-well plate (one well at a time: wells are separate cultures). Checks that each run completes
# with a map, and prints the connections found and the time taken.
# usage: connectome_real_data.sh ION_BINARY DATA_DIR ; exit 77 (skipped) when the data is absent.
set -euo pipefail
ion="$1"
data="$2"
[ -d "$data" ] || { echo "SKIP: no $data"; exit 77; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ran=0
run() {  # NAME RECORDING [infer options...]
  local name="$1" rec="$2"
  shift 2
  for method in tspe ccg; do
    local start end
    start=$(date +%s%N)
    "$ion" connectome infer "$rec" -o "$work/$name.$method.csv" --method "$method" "$@" | tee "$work/out.txt"
    end=$(date +%s%N)
    grep -q "significant connections" "$work/out.txt"
    [ -s "$work/$name.$method.csv" ]
    printf '%s %s: %s rows in the map, %d ms wall\n' "$name" "$method" \
      "$(grep -vc '^#' "$work/$name.$method.csv")" "$(( (end - start) / 1000000 ))"
  done
  ran=$((ran + 1))
}
for f in "$data"/*.h5; do
  [ -e "$f" ] || continue
  n="$(basename "$f" .h5)"
  "$ion" import sjemea "$f" -o "$work/$n.ionrec" >/dev/null
  run "$n" "$work/$n.ionrec"
done
for f in "$data"/axion*.csv.gz; do
  [ -e "$f" ] || continue
  "$ion" import axion-csv "$f" -o "$work/axion.ionrec" >/dev/null
  run axion-B2 "$work/axion.ionrec" --channel-prefix B2_
done
[ "$ran" -gt 0 ] || { echo "SKIP: no sjemea or Axion file in $data"; exit 77; }
echo "inference completed on $ran real recordings"
