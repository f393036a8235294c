#!/usr/bin/env bash
# Installs the Debian 12 packages IoN builds and tests with. Idempotent: when every package is
# already installed it changes nothing and does not touch the network.
set -euo pipefail

# What building the daemons and the `ion` tool needs (`--build-only`: just these, e.g. in docker/).
build_packages=(
  cmake make pkg-config g++
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  libasio-dev libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev
  libhdf5-dev zlib1g-dev  # sjemea import, NWB export; gzip'd vendor exports
  dpkg-dev file  # cpack's Debian package: the binaries' library dependencies
  help2man       # the commands' manual pages, from their --help
)
# What the test suite and the C++ tools need besides.
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format clang-tidy
  iproute2       # the multi-host test puts each lab in its own network namespace
  python3-brian  # test side: the reference simulator the emulated chip is checked against
  python3-h5py python3-numpy  # test side: independent readers of exported NWB and .npy files
  python3-pytest python3-venv gcc  # the Python package's tests; its venv install; the C example
  python3-prometheus-client   # test side: the reference parser of the /metrics text
  chromium chromium-driver python3-selenium  # test side: the dashboard in a headless browser
)
packages=("${build_packages[@]}")
if [ "${1:-}" != "--build-only" ]; then
  packages+=("${test_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
