#!/usr/bin/env bash
# docs/c-api.md's promise: "cmake --install installs the header, the library, a pkg-config file
# and a CMake package config", and its C example compiles against the installed library (through
# pkg-config and through find_package(ion)) and runs against a broker: every event received at its
# deadline, none late, none lost. Also: only ion_* symbols leave libion.so; its SONAME is versioned.
# usage: example_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
work="$(mktemp -d)"
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir="$prefix/lib"
[ -d "$prefix/lib/x86_64-linux-gnu" ] && libdir="$prefix/lib/x86_64-linux-gnu"
for f in "$prefix/include/ion/ion.h" "$libdir/libion.so" "$libdir/pkgconfig/ion.pc" \
         "$libdir/cmake/ion/ionConfig.cmake" "$prefix/bin/ion-broker"; do
  [ -e "$f" ] || { echo "FAIL: cmake --install did not install $f"; exit 1; }
done

soname="$(readelf -d "$libdir/libion.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')"
abi="$(sed -n 's/^#define ION_ABI_VERSION \([0-9]*\).*/\1/p' "$src/include/ion/ion.h")"
[ "$soname" = "libion.so.$abi" ] || { echo "FAIL: SONAME '$soname', expected libion.so.$abi"; exit 1; }
leaked="$(nm -D --defined-only "$libdir/libion.so" | awk '$2 ~ /[TDBRVW]/ && $3 !~ /^ion_/ {print $3}' | head -5)"
[ -z "$leaked" ] || { echo "FAIL: libion.so exports more than ion_*: $leaked"; exit 1; }

# The example, exactly as the documentation shows it.
awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' "$src/docs/c-api.md" > "$work/c_lab.c"
[ -s "$work/c_lab.c" ] || { echo "FAIL: no C example in docs/c-api.md"; exit 1; }
cc=$(command -v cc || command -v gcc)
PKG_CONFIG_PATH="$libdir/pkgconfig" "$cc" -std=c11 -Wall -Wextra -Werror "$work/c_lab.c" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs ion) -Wl,-rpath,"$libdir" \
  -o "$work/c_lab_pc"
mkdir -p "$work/consumer"
cp "$work/c_lab.c" "$work/consumer/"
cat > "$work/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(c_lab LANGUAGES C)
find_package(ion 0.1 REQUIRED)
add_executable(c_lab c_lab.c)
target_link_libraries(c_lab PRIVATE ion::ion)
CM
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$work/consumer/build" >/dev/null

# A broker on a free port, from the installed binaries.
"$prefix/bin/ion-broker" --config "$src/configs/c-lab-broker.yaml" --listen 'tcp://127.0.0.1:*' \
  >"$work/broker.log" 2>&1 &
broker_pid=$!
endpoint=""
for _ in $(seq 1 200); do
  endpoint="$(sed -n 's/.*broker listening on \(tcp:[^ ]*\).*/\1/p' "$work/broker.log" | head -1)"
  [ -n "$endpoint" ] && break
  kill -0 "$broker_pid" 2>/dev/null || { cat "$work/broker.log"; exit 1; }
  sleep 0.05
done
[ -n "$endpoint" ] || { echo "FAIL: the broker did not start"; cat "$work/broker.log"; exit 1; }

"$work/c_lab_pc" "$endpoint"
"$work/consumer/build/c_lab" "$endpoint"
echo "PASS: installed, built through pkg-config and find_package, ran against $endpoint"
