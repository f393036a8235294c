#!/usr/bin/env bash
# docs/python.md's promise: `pip install ./python` into a venv gives a working `ion` package
# (pure Python: no compiler at install time) that finds libion through ION_LIBRARY and says
# what it looked for when it cannot; the whole Python suite then runs against the installed
# package, including the LSL bridge against the real liblsl (the pylsl wheel from PyPI).
# usage: python_venv_test.sh BUILD_DIR SOURCE_DIR ; exit 77 (skipped) when PyPI is unreachable.
set -euo pipefail
build="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
# Test-side checkers: pylsl (ships liblsl); neo and quantities pinned to releases that work with
# Debian's numpy 1.24 (newer ones pull numpy 2 into the venv).
source "$(dirname "$0")/pip_or_skip.sh"
pip_or_skip "$venv" "$work/pip.log" pylsl
pip_or_skip "$venv" "$work/pip.log" --no-deps "neo==0.13.4" "quantities==0.15.0"
# The package itself needs nothing from PyPI (numpy comes from Debian through the venv). It is
# installed from a copy: building writes build/ and *.egg-info beside the sources.
cp -r "$src/python" "$work/python-src"
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps "$work/python-src"
cd "$work"
"$venv/bin/python" - <<'PY'
import ion, sys
assert "site-packages" in ion.__file__, ion.__file__
try:
    ion.library_version()
except ion.LibraryNotFound as e:
    msg = str(e)
    assert "ION_LIBRARY" in msg and "libion.so.1" in msg, msg
    print("without ION_LIBRARY:", msg.splitlines()[0])
else:
    sys.exit("FAIL: found a libion without being told where (outside any build tree)")
PY
export ION_LIBRARY="$build/lib/libion.so.1" ION_BIN_DIR="$build/bin" PYTHONDONTWRITEBYTECODE=1
"$venv/bin/python" -c "import ion; print('installed ion', ion.__file__, 'on libion', ion.library_version())"
"$venv/bin/ion-lsl" --help >/dev/null
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$src/python/tests"
