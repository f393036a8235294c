#!/usr/bin/env bash
# Makes the debian:bookworm image locally when it is missing (these machines reach no image
# registry): debootstrap a minimal Debian 12 into a folder, import it and tag it.
set -euo pipefail
image="${1:-debian:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
root="$(mktemp -d /tmp/ion-bookworm.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "base image $image imported"
