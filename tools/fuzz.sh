#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer (clang, with ASan+UBSan) for a number of executions and
# prints, per target, the executions run, the coverage reached and the crashes found. Not part of
# CI (it takes a while); docs/security.md keeps the figures of the last full run.
#   bash tools/fuzz.sh [RUNS_PER_TARGET=1000000] [TARGET...]
# Seeds come from each target's built-in corpus; crashes are kept in build/fuzz/artifacts/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${1:-1000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_envelope fuzz_record fuzz_text fuzz_config fuzz_http fuzz_hdf5)

if ! command -v clang++-14 >/dev/null || [ ! -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  echo "installing clang-14 and its libFuzzer runtime"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
fi
if [ -z "${ION_FUZZ_NO_BUILD:-}" ]; then  # set it to run what is already built
  bash tools/setup-deps.sh >/dev/null
  cmake --preset debug >/dev/null && cmake --build --preset debug --target "${targets[@]}" >/dev/null
  cmake --preset fuzz >/dev/null && cmake --build --preset fuzz >/dev/null
fi

work="build/fuzz/runs"
mkdir -p "$work" build/fuzz/artifacts
printf "%-14s %12s %8s %8s %8s %9s\n" target executions cov features crashes seconds
for t in "${targets[@]}"; do
  corpus="$work/$t-corpus"
  mkdir -p "$corpus"
  ION_FUZZ_WRITE_CORPUS="$corpus" "build/debug/tests/$t" >/dev/null
  log="$work/$t.log"
  start=$(date +%s)
  set +e
  extra=()
  asan="${ASAN_OPTIONS:-}"
  # libhdf5 itself hangs, crashes and leaks on some corrupt files (docs/security.md): keep going,
  # and check afterwards that every artifact's stack ends in libhdf5, not in IoN's code.
  # Crash reports are not symbolized while fuzzing (symbolizing each took longer than the run
  # itself); the artifacts are triaged, symbolized, afterwards.
  if [ "$t" = fuzz_hdf5 ]; then
    extra=(-fork=1 -ignore_timeouts=1 -ignore_crashes=1 -ignore_ooms=1 -detect_leaks=0 -timeout=1)
    asan="${asan:+$asan:}detect_leaks=0:symbolize=0"
  fi
  ASAN_OPTIONS="$asan" \
  "build/fuzz/tests/$t" -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 "${extra[@]}" \
    -artifact_prefix="build/fuzz/artifacts/$t-" -print_final_stats=1 "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(ls build/fuzz/artifacts/ 2>/dev/null | grep -c "^$t-" || true)
  printf "%-14s %12s %8s %8s %8s %9s\n" "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes" "$secs"
  if [ "$rc" -ne 0 ]; then echo "  $t stopped with status $rc: see $log"; fi
done

# Triage: every crash or out-of-memory artifact of the HDF5 target, run alone and symbolized;
# its first frame outside libc, the C++ runtime, the sanitizers and libFuzzer, counted. A frame
# in IoN's code (not libhdf5) is a bug to fix.
if printf '%s\n' "${targets[@]}" | grep -qx fuzz_hdf5; then
  echo "fuzz_hdf5 artifacts by first frame outside the runtime:"
  for f in build/fuzz/artifacts/fuzz_hdf5-crash-* build/fuzz/artifacts/fuzz_hdf5-oom-*; do
    [ -e "$f" ] || continue
    frame=$(ASAN_OPTIONS=detect_leaks=0:symbolize=1 timeout 20 build/fuzz/tests/fuzz_hdf5 -rss_limit_mb=2048 "$f" 2>&1 |
      grep -E '^ +#[0-9]+ ' |
      grep -v -E 'libc\.so|libstdc\+\+|asan_|ubsan_|sanitizer_common|__interceptor|in __|malloc|calloc|realloc|operator new|memcpy|memmove|fuzzer::|in main ' |
      head -1 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ (in )?//; s/ \(BuildId.*//; s/\+0x[0-9a-f]+\)/)/' || true)
    echo "${frame:-(no frame: does not reproduce alone)}"
  done | sort | uniq -c | sort -rn
fi
