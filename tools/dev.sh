#!/usr/bin/env bash
# The README's two commands go through here:
#   bash tools/dev.sh demo [ion demo options]   install what is missing, build, run `ion demo`
#   bash tools/dev.sh test [ctest options]      install what is missing, build, run the test suite
# ION_PRESET picks the CMake preset (default: release for demo, debug for test).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cmd="${1:-}"
shift || true

build() {
  local preset="$1"
  bash tools/setup-deps.sh
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
}

case "$cmd" in
  demo)
    preset="${ION_PRESET:-release}"
    build "$preset"
    exec "build/$preset/bin/ion" demo "$@"
    ;;
  test)
    preset="${ION_PRESET:-debug}"
    build "$preset"
    exec ctest --preset "$preset" --label-exclude 'soak|chaos|docker' -j2 "$@"
    ;;
  build)
    build "${ION_PRESET:-debug}"
    ;;
  *)
    echo "usage: bash tools/dev.sh demo|test|build [args]" >&2
    exit 2
    ;;
esac
