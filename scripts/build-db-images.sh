#!/usr/bin/env bash
# Build local database images (PostgreSQL, Redis, MariaDB) from Debian's packages, for machines that cannot
# reach a Docker registry (CI, the test suite, air-gapped servers).
#
# Usage: bash scripts/build-db-images.sh [--force] [KIND...]  (KIND: postgres, redis, mysql; default all)
#
# Each image is `mmdebstrap ... | docker import`, tagged berth-local/KIND:<hash> where the hash
# covers the package list, the build options, the entrypoint and the apt sources: a cached image
# is reused (`docker image inspect` finds the tag) until one of them changes. The entrypoints take
# the official images' settings (POSTGRES_USER/PASSWORD/DB and /var/lib/postgresql/data;
# `redis-server ARGS` and /data; MARIADB_USER/PASSWORD/DATABASE and /var/lib/mysql), so the
# coordinator runs them exactly like postgres:16 / redis:7 / mariadb:11. Point the coordinator
# at them with BERTH_DEPENDENCY_IMAGE_POSTGRES / _REDIS / _MYSQL.
#
# stdout: one line "KIND IMAGE" per built or cached image; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf 'build-db-images: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'build-db-images: %s\n' "$*" >&2; }

force=0
kinds=()
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    postgres | redis | mysql) kinds+=("$arg") ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (usage: build-db-images.sh [--force] [postgres|redis|mysql ...])" ;;
  esac
done
[ ${#kinds[@]} -gt 0 ] || kinds=(postgres redis mysql)

command -v docker >/dev/null || die "docker is not installed (Debian: apt-get install docker.io)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (Debian: apt-get install mmdebstrap)"
# The host's own apt sources, so the images use exactly the mirror apt uses; without that file
# (an older sources.list layout) mmdebstrap picks Debian's default mirrors itself.
sources=${BERTH_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
mirror=()
if [ -r "$sources" ]; then
  mirror=("$sources")
elif [ -n "${BERTH_APT_SOURCES:-}" ]; then
  die "$sources not found (BERTH_APT_SOURCES must name a deb822 .sources file)"
else
  sources=/dev/null
fi
suite=${BERTH_DEBIAN_SUITE:-bookworm}

# Smaller images: no recommends, docs, man pages or locales.
trim=(--variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='APT::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias')

# shellcheck disable=SC2016 # '$1' in a hook is the chroot, expanded by mmdebstrap
build() {
  local kind=$1 entry=$here/db-images/$1-entry.sh
  local -a extra changes
  case $kind in
    postgres)
      # No JIT (drops LLVM, ~130 MB) and no default cluster: the entrypoint creates one.
      extra=('--include=postgresql-15,postgresql-client-15'
        --dpkgopt='path-exclude=/usr/lib/postgresql/15/lib/bitcode/*'
        --dpkgopt='path-exclude=/usr/lib/postgresql/15/lib/llvmjit*'
        --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM-14.so*'
        --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libz3.so*'
        --essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/no-main.conf"')
      changes=(--change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        --change 'EXPOSE 5432' --change 'VOLUME /var/lib/postgresql/data') ;;
    redis)
      extra=('--include=redis-server,redis-tools')
      changes=(--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'EXPOSE 6379' --change 'VOLUME /data') ;;
    mysql)
      # The package's postinst initialises a data directory; the entrypoint makes its own.
      extra=('--include=mariadb-server,mariadb-client' --customize-hook='rm -rf "$1"/var/lib/mysql/*')
      changes=(--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'EXPOSE 3306' --change 'VOLUME /var/lib/mysql') ;;
  esac
  local hash tag
  hash=$({ printf '%s\n' "$kind" "$suite" "${trim[@]}" "${extra[@]}" "${changes[@]}"; cat "$entry" "$sources"; } |
    sha256sum | cut -c1-12)
  tag=berth-local/$kind:$hash
  if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    say "$tag already exists"
  else
    say "building $tag (about a minute)"
    mmdebstrap --quiet "${trim[@]}" "${extra[@]}" \
      --customize-hook="upload $entry /usr/local/bin/entrypoint" \
      --customize-hook='chmod 755 "$1/usr/local/bin/entrypoint"' \
      "$suite" - "${mirror[@]}" |
      docker import "${changes[@]}" --change 'ENV LANG=C.UTF-8' \
        --change 'ENTRYPOINT ["/usr/local/bin/entrypoint"]' --change 'LABEL berth.db-image=1' \
        --message "Berth local $kind image (Debian $suite packages)" - "$tag" >/dev/null
    say "built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
  fi
  printf '%s %s\n' "$kind" "$tag"
}

for kind in "${kinds[@]}"; do build "$kind"; done
