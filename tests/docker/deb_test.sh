#!/usr/bin/env bash
# The Debian package as a lab PC gets it: built in a Debian 12 container (the Dockerfile's build
# stage runs cpack), checked with lintian (no errors; manual pages present and clean), installed with apt in a clean Debian 12
# container, where a broker and two nodes run from the installed files as the `ion` user the
# package created, and the Python package imports libion from where the package put it.
# Exit 77 (ctest: skipped) when no Docker Engine answers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if ! docker info >/dev/null 2>&1; then echo "SKIP: no Docker Engine answers"; exit 77; fi

bash tests/docker/base_image.sh debian:bookworm
tag="ion:deb-test-$$"
out="$(mktemp -d /tmp/ion-deb.XXXXXX)"
cid=""
cleanup() {
  [ -n "$cid" ] && docker rm -f "$cid" >/dev/null 2>&1 || true
  docker image rm -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
echo "building the package (docker build --target build)"
docker build -q -f docker/Dockerfile --target build -t "$tag" . >/dev/null
cid="$(docker create "$tag" true)"
docker cp "$cid:/deb/." "$out/"
deb="$(cd "$out" && ls ion_*.deb)"
echo "package: $deb ($(du -h "$out/$deb" | cut -f1))"

echo "lintian"
docker run --rm -v "$out:/deb:ro" debian:bookworm bash -ec '
  set -o pipefail
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
  lintian --fail-on error /deb/'"$deb"' | tee /tmp/lintian.log || { echo "FAIL: lintian errors"; exit 1; }
  if grep -q "no-manual-page\|manpage-has" /tmp/lintian.log; then echo "FAIL: manual pages"; exit 1; fi'

echo "install and run in a clean Debian 12"
docker run --rm -v "$out:/deb:ro" debian:bookworm bash -ec '
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /deb/'"$deb"' python3-numpy >/dev/null
  id ion
  for f in /usr/bin/ion /usr/bin/ion-broker /usr/bin/ion-node /usr/include/ion/ion.h \
           /lib/systemd/system/ion-broker.service /lib/systemd/system/ion-node@.service \
           /usr/share/ion/configs/broker.yaml /usr/share/doc/ion/lab-guide.md /usr/share/doc/ion/copyright \
           /usr/share/man/man1/ion.1.gz /usr/share/man/man1/ion-broker.1.gz /usr/share/man/man1/ion-node.1.gz; do
    test -e "$f" || { echo "FAIL: $f is not installed"; exit 1; }
  done
  test "$(stat -c %U:%G:%a /etc/ion)" = root:ion:750 || { echo "FAIL: /etc/ion is $(stat -c %U:%G:%a /etc/ion)"; exit 1; }
  cd /var/lib/ion
  configs=/usr/share/ion/configs
  runuser -u ion -- ion-broker --config $configs/generator-sink-broker.yaml >/tmp/broker.log 2>&1 &
  runuser -u ion -- ion-node --config $configs/sink.yaml >/tmp/sink.log 2>&1 &
  runuser -u ion -- ion-node --config $configs/generator.yaml >/tmp/generator.log 2>&1 &
  for i in $(seq 1 60); do
    if ion status --broker tcp://127.0.0.1:5555 --json 2>/dev/null | python3 -c "
import json, sys
n = {x[\"name\"]: x for x in json.load(sys.stdin)[\"nodes\"]}
sys.exit(0 if n[\"sink\"][\"events_out\"] > 0 and n[\"gen\"][\"events_in\"] > 0 else 1)"; then
      echo "events flow from the installed generator to the installed sink"
      break
    fi
    [ "$i" = 60 ] && { echo "FAIL: no events flowed"; tail -n 5 /tmp/*.log; exit 1; }
    sleep 1
  done
  python3 -c "import ion; print(\"python: libion\", ion.library_version())"
  ion --version'
echo "PASS"
