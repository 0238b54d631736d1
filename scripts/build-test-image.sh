#!/usr/bin/env bash
# Build the tiny image that Docker-marked tests run: berth-test/busybox:latest.
#
# Usage: bash scripts/build-test-image.sh [--force]
#
# CI and fresh machines cannot reach a Docker registry, so `docker pull busybox` is not an option.
# Instead we assemble a root filesystem from Debian's statically linked busybox (package
# busybox-static: no shared libraries to copy) and `docker import` it. The result is a ~2 MB image
# with /bin/sh and the usual applets (sleep, echo, cat, nc, httpd, ...).
#
# Idempotent: does nothing when the image already exists, unless --force is given.
set -euo pipefail

IMAGE=${BERTH_TEST_IMAGE:-berth-test/busybox:latest}

die() { printf 'build-test-image: error: %s\n' "$*" >&2; exit 1; }

force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (usage: build-test-image.sh [--force])" ;;
  esac
done

command -v docker >/dev/null || die "docker is not installed (Debian: apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine is not answering (is dockerd running? can $(id -un) use the socket?)"

if [ "$force" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "build-test-image: $IMAGE already exists (use --force to rebuild)"
  exit 0
fi

# The binary must be static: the image contains nothing else, so a dynamically linked busybox
# (Debian package "busybox") would fail with "no such file or directory" at exec time.
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "$busybox not found (Debian: apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install the static build (apt-get install busybox-static)"
fi

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT

mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,proc,sys,dev,home}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 0700 "$rootfs/root"
cp "$busybox" "$rootfs/bin/busybox"

# One symlink per applet. `busybox --list-full` prints paths relative to / (bin/ls, usr/bin/awk);
# creating the links ourselves (rather than `busybox --install -s DIR`) keeps their target an
# absolute /bin/busybox that is valid inside the image, whatever path the host binary has.
while IFS= read -r applet; do
  case $applet in
    '' | linuxrc | bin/busybox) continue ;;
  esac
  ln -sf /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)

# Minimal account databases: `id`, `whoami`, `ls -l` and `docker run --user nobody` look names up here.
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
# Docker bind-mounts its own hosts/hostname/resolv.conf over these; the files just need to exist.
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/resolv.conf"

echo "build-test-image: importing $IMAGE"
# --numeric-owner: the image must not depend on the host's user names. The label lets tests and
# humans find (and clean up) everything that came from this image.
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . |
  docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL berth.test=1' \
    --message 'Berth test image (busybox-static)' \
    - "$IMAGE" >/dev/null

# Smoke test: a broken image would otherwise only show up as confusing test failures later.
out=$(docker run --rm --network none "$IMAGE" /bin/sh -c 'echo ok') ||
  die "the freshly built $IMAGE does not run (docker run failed)"
[ "$out" = ok ] || die "the freshly built $IMAGE printed '$out' instead of 'ok'"
echo "build-test-image: built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
