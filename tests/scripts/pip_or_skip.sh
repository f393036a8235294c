# Sourced by the tests that check IoN against tools from PyPI, in a venv of their own.
# pip_or_skip VENV LOG ARGS...: pip install ARGS into VENV, pip's messages appended to LOG. When
# PyPI cannot be reached it says so and exits 77 (ctest: skipped); any other failure prints the
# log and exits 1.
pip_or_skip() {
  local venv="$1" log="$2"
  shift 2
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --timeout 30 --retries 2 "$@" 2>>"$log"; then
    if grep -qiE "connection|resolve|network|timed out" "$log"; then
      echo "SKIP: PyPI unreachable: $(tail -1 "$log")"; exit 77
    fi
    cat "$log"; exit 1
  fi
}
