#!/usr/bin/env bash
# Run Berth on this machine: a coordinator plus a local agent, ready to try.
#
# Usage: bash scripts/quickstart.sh          start (or check) everything; safe to re-run
#        bash scripts/quickstart.sh stop     stop the agent and the coordinator
#        bash scripts/quickstart.sh reset    stop, then delete $BERTH_HOME (all local Berth data)
#
# On a fresh Debian 12 machine it installs what is missing (docker.io, python3-venv, curl), starts
# the Docker engine, creates .venv with Berth, builds the wheel agents install from, starts the
# coordinator, creates the first admin and a server named "local", enrolls a local agent, starts
# it, and waits until the server shows "online".
#
# Environment:
#   BERTH_HOME         where data, logs, pid files and the admin token live (default: ./.berth)
#   BERTH_LISTEN       HOST:PORT for the coordinator (default: 127.0.0.1:7420)
#   BERTH_ADMIN_EMAIL  first admin's email (default: admin@example.com)
#   BERTH_EDGE_LISTEN  HOST:PORT where the edge proxy (Caddy) serves deployed apps
#                      (default: 127.0.0.1:7480)
#   BERTH_EDGE_ADMIN   HOST:PORT of that Caddy's admin API (default: 127.0.0.1:7421)
#   BERTH_AGENT_SAMPLE_SECONDS    the local agent's usage sample interval (default: 15)
#   BERTH_AGENT_ALLOW_HOST_SHELL  1 lets `berth terminal local` open a shell on this machine
#                                 (default: 0; resource terminals work either way)
#   BERTH_DB_IMAGES    1 builds PostgreSQL, Redis and MariaDB images from Debian packages
#                      (scripts/build-db-images.sh, a few minutes once, then cached) and starts
#                      the coordinator with them for `berth db create` (default: 0, which uses
#                      the official images postgres:16, redis:7, mariadb:11 from a registry)
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$BERTH_ROOT"

BERTH_HOME=${BERTH_HOME:-$BERTH_ROOT/.berth}
mkdir -p "$BERTH_HOME"
BERTH_HOME=$(cd "$BERTH_HOME" && pwd)
LISTEN=${BERTH_LISTEN:-127.0.0.1:7420}
VENV=$BERTH_ROOT/.venv

COORD_DATA=$BERTH_HOME/coordinator
COORD_LOG=$BERTH_HOME/coordinator.log
COORD_PID=$BERTH_HOME/coordinator.pid
AGENT_STATE=$BERTH_HOME/agent
AGENT_LOG=$BERTH_HOME/agent.log
AGENT_PID=$BERTH_HOME/agent.pid
TOKEN_FILE=$BERTH_HOME/admin-token
SERVER_ID_FILE=$BERTH_HOME/server-id
# The coordinator serves DATA_DIR/dist/*.whl at GET /agent/v1/package.
WHEEL_DIR=$COORD_DATA/dist
# `reset` deletes BERTH_HOME only if this marker says the directory is ours.
MARKER=$BERTH_HOME/.berth-quickstart

# The quickstart runs its own Caddy on its own ports, so a Caddy the distribution package may
# have started (on :80 and admin :2019) is left alone.
EDGE_LISTEN=${BERTH_EDGE_LISTEN:-127.0.0.1:7480}
EDGE_ADMIN=${BERTH_EDGE_ADMIN:-127.0.0.1:7421}
EDGE_CONFIG=$BERTH_HOME/caddy.json
EDGE_LOG=$BERTH_HOME/caddy.log
EDGE_PID=$BERTH_HOME/caddy.pid
DEMO_IMAGE=berth-demo/busybox:latest

# The URL clients use: a wildcard listen address is reachable locally as 127.0.0.1.
listen_host=${LISTEN%:*}
case $listen_host in
  '' | 0.0.0.0 | '[::]' | '::') listen_host=127.0.0.1 ;;
esac
URL=http://$listen_host:${LISTEN##*:}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Everything here talks to this machine: keep a configured HTTP(S) proxy out of it (curl below,
# and the coordinator/agent processes started from this shell).
export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1,localhost,::1" no_proxy="${no_proxy:+$no_proxy,}127.0.0.1,localhost,::1"

# ---------------------------------------------------------------------------------------------
# HTTP helpers (curl + python3's json module; no jq needed)

TOKEN=""
set_token() {
  TOKEN=$1
  # The header goes through a 0600 file (mktemp -d is 0700) so the token never appears in `ps`.
  printf 'Authorization: Bearer %s\n' "$TOKEN" >"$TMP/auth-header"
}

# api METHOD PATH [JSON_BODY]: sets HTTP_STATUS ("000" when unreachable) and HTTP_BODY.
api() {
  local args=(-sS -o "$TMP/body" -w '%{http_code}' -X "$1" -H 'Accept: application/json' --max-time 10)
  if [ -n "${3:-}" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$3"); fi
  if [ -n "$TOKEN" ]; then args+=(-H "@$TMP/auth-header"); fi
  : >"$TMP/body"
  HTTP_STATUS=$(curl "${args[@]}" "$URL$2" 2>/dev/null) || HTTP_STATUS=000
  HTTP_BODY=$(cat "$TMP/body")
}

# json_get DOTTED.KEY: read JSON on stdin, print the value (empty when absent or not JSON).
json_get() {
  python3 -c '
import json, sys
try:
    value = json.load(sys.stdin)
except ValueError:
    value = None
for key in sys.argv[1].split("."):
    value = value.get(key) if isinstance(value, dict) else None
print("" if value is None else value)' "$1"
}

# api_error WHAT: die with the HTTP status and the error envelope's message.
api_error() {
  local message
  message=$(json_get message <<<"$HTTP_BODY")
  die "$1 failed: HTTP $HTTP_STATUS${message:+: $message}"
}

# ---------------------------------------------------------------------------------------------
# Processes

pid_gone() { ! proc_running "$1"; }

# stop_process NAME PIDFILE PATTERN: SIGTERM (graceful shutdown), wait up to 20 s, then SIGKILL.
stop_process() {
  local name=$1 pidfile=$2 pattern=$3 pid
  if ! pid=$(pid_alive "$pidfile" "$pattern"); then
    info "$name: not running"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! poll_until 20 pid_gone "$pid"; then
    warn "$name (pid $pid) did not stop within 20 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  info "$name: stopped"
}

# start_process PIDFILE LOGFILE COMMAND...: run COMMAND detached (setsid: closing the terminal or
# Ctrl-C here does not reach it), appending to LOGFILE. setsid and nohup exec, so $! is its pid.
start_process() {
  local pidfile=$1 logfile=$2
  shift 2
  setsid nohup "$@" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$pidfile"
}

# fail_if_dead NAME PIDFILE LOGFILE HINT: used inside poll loops to fail fast with the log tail.
fail_if_dead() {
  local pid rc
  pid=$(cat "$2")
  proc_running "$pid" && return 0
  # The exit status is only known for a process this run started (127: not our child).
  wait "$pid" 2>/dev/null && rc=0 || rc=$?
  echo "--- last lines of $3 ---" >&2
  tail -n 20 "$3" >&2 || true
  if [ "$rc" = 127 ]; then die "$1 (pid $pid) exited. $4"; fi
  die "$1 exited with status $rc before it was ready. $4"
}

coordinator_ready() {
  fail_if_dead coordinator "$COORD_PID" "$COORD_LOG" "Is $LISTEN free? Set BERTH_LISTEN=HOST:PORT to use another."
  api GET /bootstrap/auth/status
  [ "$HTTP_STATUS" = 200 ]
}

agent_online() {
  fail_if_dead agent "$AGENT_PID" "$AGENT_LOG" \
    "Status 78 means its credentials or protocol were rejected: 'bash scripts/quickstart.sh reset' starts over."
  api GET "/servers/$SERVER_ID"
  [ "$HTTP_STATUS" = 200 ] && [ "$(json_get server.agent.status <<<"$HTTP_BODY")" = online ]
}

# ---------------------------------------------------------------------------------------------
# Steps

build_wheel() {
  # Rebuild only when the sources are newer than the wheel we have (re-runs stay fast).
  local wheel
  wheel=$(find "$WHEEL_DIR" -maxdepth 1 -name 'berth-*.whl' -print -quit 2>/dev/null || true)
  if [ -n "$wheel" ] &&
    [ -z "$(find pyproject.toml coordinator agent shared packaging -type f ! -name '*.pyc' \
      -newer "$wheel" -print -quit 2>/dev/null)" ]; then
    info "wheel up to date: $wheel"
    return 0
  fi
  mkdir -p "$WHEEL_DIR"
  rm -f "$WHEEL_DIR"/berth-*.whl
  info "building the wheel agents install from ($WHEEL_DIR)"
  "$VENV/bin/pip" wheel --quiet --no-deps . -w "$WHEEL_DIR" >"$TMP/wheel.log" 2>&1 || {
    cat "$TMP/wheel.log" >&2
    die "pip wheel failed"
  }
}

start_coordinator() {
  local pid
  if pid=$(pid_alive "$COORD_PID" berth-coordinator); then
    info "coordinator already running (pid $pid)"
  else
    # Something else answering on our address would be mistaken for our coordinator below.
    api GET /bootstrap/auth/status
    if [ "$HTTP_STATUS" != 000 ]; then
      die "something else already answers on $URL; stop it, or set BERTH_LISTEN=HOST:PORT"
    fi
    info "starting the coordinator on $URL (log: $COORD_LOG)"
    start_process "$COORD_PID" "$COORD_LOG" "$VENV/bin/berth-coordinator" serve \
      --data-dir "$COORD_DATA" --listen "$LISTEN" --public-url "$URL"
  fi
  poll_until 60 coordinator_ready ||
    die "the coordinator did not answer GET $URL/bootstrap/auth/status within 60 s (log: $COORD_LOG)"
  info "coordinator: answering"
}

# Sets NEW_TOKEN=1 when the first admin was created by this run (the token is shown once).
ensure_admin_token() {
  NEW_TOKEN=0
  if [ -s "$TOKEN_FILE" ]; then
    set_token "$(cat "$TOKEN_FILE")"
    api GET /servers
    if [ "$HTTP_STATUS" = 200 ]; then
      info "admin token: reusing $TOKEN_FILE"
      return 0
    fi
    # The saved token may predate a wiped coordinator database: then bootstrapping again works.
    info "the saved admin token was rejected (HTTP $HTTP_STATUS); trying to bootstrap again"
    TOKEN=""
  fi
  api POST /bootstrap/auth/first-admin "$(python3 -c '
import json, sys
print(json.dumps({"email": sys.argv[1], "displayName": "Admin"}))' "${BERTH_ADMIN_EMAIL:-admin@example.com}")"
  case $HTTP_STATUS in
    200 | 201) ;;
    409) die "this coordinator already has an admin, but $TOKEN_FILE has no valid token for it. Put the admin's API token in that file (chmod 600), or start over with 'bash scripts/quickstart.sh reset'" ;;
    *) api_error "POST /bootstrap/auth/first-admin" ;;
  esac
  local token
  token=$(json_get apiToken <<<"$HTTP_BODY")
  [ -n "$token" ] || die "POST /bootstrap/auth/first-admin returned no apiToken"
  (umask 077 && printf '%s\n' "$token" >"$TOKEN_FILE")
  chmod 0600 "$TOKEN_FILE"
  set_token "$token"
  NEW_TOKEN=1
  info "admin created; API token saved to $TOKEN_FILE (0600)"
}

# Sets SERVER_ID, and JOIN_TOKEN when the server was created by this run.
ensure_server() {
  JOIN_TOKEN=""
  SERVER_ID=$(cat "$SERVER_ID_FILE" 2>/dev/null || true)
  if [ -n "$SERVER_ID" ]; then
    api GET "/servers/$SERVER_ID"
    case $HTTP_STATUS in
      200) info "server 'local': $SERVER_ID" && return 0 ;;
      404) info "saved server $SERVER_ID no longer exists; creating a new one" ;;
      *) api_error "GET /servers/$SERVER_ID" ;;
    esac
  fi
  api POST /servers '{"name": "local"}'
  [ "$HTTP_STATUS" = 201 ] || api_error "POST /servers"
  SERVER_ID=$(json_get id <<<"$HTTP_BODY")
  JOIN_TOKEN=$(json_get joinToken <<<"$HTTP_BODY")
  if [ -z "$SERVER_ID" ] || [ -z "$JOIN_TOKEN" ]; then die "POST /servers answered without id/joinToken"; fi
  printf '%s\n' "$SERVER_ID" >"$SERVER_ID_FILE"
  info "server 'local' created: $SERVER_ID"
  # An enrollment left from an older server would be rejected: enroll afresh for the new one.
  if [ -e "$AGENT_STATE" ]; then
    info "forgetting the agent enrollment for the previous server"
    stop_process agent "$AGENT_PID" berth-agent
    rm -rf "$AGENT_STATE"
  fi
}

ensure_enrolled() {
  if [ -f "$AGENT_STATE/state.json" ]; then
    info "agent: already enrolled ($AGENT_STATE)"
    return 0
  fi
  if [ -z "$JOIN_TOKEN" ]; then
    # Server from an earlier run whose enrollment never completed: mint a fresh join token.
    api POST "/servers/$SERVER_ID/agent-enrollments" '{}'
    [ "$HTTP_STATUS" = 201 ] || api_error "POST /servers/$SERVER_ID/agent-enrollments"
    JOIN_TOKEN=$(json_get joinToken <<<"$HTTP_BODY")
  fi
  info "enrolling the local agent ($AGENT_STATE)"
  "$VENV/bin/berth-agent" enroll --coordinator "$URL" --token "$JOIN_TOKEN" --state-dir "$AGENT_STATE" ||
    die "berth-agent enroll failed (message above)"
}

edge_ready() { curl -fsS --max-time 2 "http://$EDGE_ADMIN/config/" >/dev/null 2>&1; }

start_edge() {
  local pid
  if pid=$(pid_alive "$EDGE_PID" caddy); then
    info "edge proxy (Caddy) already running (pid $pid)"
  else
    printf '{"admin": {"listen": "%s"}}\n' "$EDGE_ADMIN" >"$EDGE_CONFIG"
    info "starting the edge proxy: Caddy, admin $EDGE_ADMIN, apps on $EDGE_LISTEN (log: $EDGE_LOG)"
    # HOME/XDG_DATA_HOME: Caddy keeps its state under BERTH_HOME, not the user's home.
    start_process "$EDGE_PID" "$EDGE_LOG" env HOME="$BERTH_HOME" XDG_DATA_HOME="$BERTH_HOME/caddy-data" \
      caddy run --config "$EDGE_CONFIG"
  fi
  poll_until 20 edge_ready || die "Caddy's admin API on $EDGE_ADMIN did not answer within 20 s (log: $EDGE_LOG)"
}

build_db_images() {
  [ "${BERTH_DB_IMAGES:-0}" = 1 ] || return 0
  section "Database images"
  local kind image
  # Exported for the coordinator started below (an already running one keeps its images).
  while read -r kind image; do
    export "BERTH_DEPENDENCY_IMAGE_${kind^^}=$image"
    info "$kind: $image"
  done < <(bash "$BERTH_ROOT/scripts/build-db-images.sh")
}

build_demo_image() {
  # No registry is needed: a tiny busybox image built locally, used by the deploy example.
  BERTH_TEST_IMAGE=$DEMO_IMAGE bash "$BERTH_ROOT/scripts/build-test-image.sh"
}

start_agent() {
  local pid
  if pid=$(pid_alive "$AGENT_PID" berth-agent); then
    info "agent already running (pid $pid)"
  else
    info "starting the agent (log: $AGENT_LOG)"
    start_process "$AGENT_PID" "$AGENT_LOG" env BERTH_AGENT_EDGE_ADMIN_URL="http://$EDGE_ADMIN" \
      BERTH_AGENT_EDGE_LISTEN="$EDGE_LISTEN" \
      BERTH_AGENT_SAMPLE_SECONDS="${BERTH_AGENT_SAMPLE_SECONDS:-15}" \
      BERTH_AGENT_ALLOW_HOST_SHELL="${BERTH_AGENT_ALLOW_HOST_SHELL:-0}" \
      PYTHONOPTIMIZE=2 "$VENV/bin/berth-agent" run --state-dir "$AGENT_STATE"
  fi
  poll_until 30 agent_online ||
    die "server $SERVER_ID is not online after 30 s (agent log: $AGENT_LOG, coordinator log: $COORD_LOG)"
  info "server 'local' is online"
}

print_summary() {
  section "Berth is running"
  cat <<EOF
    API URL:        $URL
    Web console:    $URL/console/ (sign in with the admin API token)
    Coordinator:    pid $(cat "$COORD_PID"), data $COORD_DATA, log $COORD_LOG
    Agent:          pid $(cat "$AGENT_PID"), state $AGENT_STATE, log $AGENT_LOG
    Server 'local': $SERVER_ID (online)
    Edge proxy:     Caddy pid $(cat "$EDGE_PID"), apps on http://$EDGE_LISTEN, log $EDGE_LOG
EOF
  if [ "$NEW_TOKEN" = 1 ]; then
    cat <<EOF

    Admin API token (shown only this once; a copy is stored in $TOKEN_FILE, mode 0600):
        $TOKEN
EOF
  else
    echo
    echo "    Admin API token: stored in $TOKEN_FILE (mode 0600)"
  fi
  cat <<EOF

Next, try:
    export BERTH_URL=$URL BERTH_TOKEN=\$(cat $TOKEN_FILE)
    .venv/bin/berth servers list
    .venv/bin/berth servers add web-1
    curl -H "Authorization: Bearer \$BERTH_TOKEN" \$BERTH_URL/servers

Deploy something (the image $DEMO_IMAGE was built locally):
    .venv/bin/berth projects create demo
    .venv/bin/berth envs create demo production
    .venv/bin/berth resources create demo production hello --image $DEMO_IMAGE --port 8080 \\
        --start-command 'mkdir -p /www && echo hello from Berth > /www/index.html && exec httpd -f -p 8080 -h /www'
    .venv/bin/berth deploy demo/production/hello --server local
    curl -H 'Host: hello.production.demo.localhost' http://$EDGE_LISTEN/

Stop everything with 'bash scripts/quickstart.sh stop'; start over with 'bash scripts/quickstart.sh reset'.
EOF
}

cmd_start() {
  # Claim BERTH_HOME only if it is new (or ours): `reset` deletes the directory it marks.
  if [ ! -f "$MARKER" ] && [ -n "$(ls -A "$BERTH_HOME")" ]; then
    die "BERTH_HOME=$BERTH_HOME already contains other files; choose an empty or new directory"
  fi
  touch "$MARKER"
  section "Debian packages"
  local packages=('docker.io=docker,dockerd' curl=curl ca-certificates caddy=caddy busybox-static
    nodejs=node npm=npm)
  # Debian ships `python3 -m venv` support separately; only needed to create .venv.
  if [ ! -x "$VENV/bin/python" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    packages+=(python3-venv)
  fi
  if [ "${BERTH_DB_IMAGES:-0}" = 1 ]; then packages+=(mmdebstrap); fi
  ensure_packages "${packages[@]}"
  section "Docker engine"
  ensure_dockerd
  build_demo_image
  build_db_images
  section "Edge proxy"
  start_edge
  section "Web console (npm)"
  build_console
  section "Python virtualenv (.venv)"
  ensure_venv -e '.[all]'
  build_wheel
  section "Coordinator"
  start_coordinator
  ensure_admin_token
  section "Local agent"
  ensure_server
  ensure_enrolled
  start_agent
  print_summary
}

cmd_stop() {
  section "Stopping Berth"
  # The agent first, so it does not spend the coordinator's shutdown reconnecting.
  stop_process agent "$AGENT_PID" berth-agent
  stop_process coordinator "$COORD_PID" berth-coordinator
  stop_process "edge proxy" "$EDGE_PID" caddy
}

cmd_reset() {
  [ -f "$MARKER" ] || die "$BERTH_HOME was not created by quickstart.sh ($MARKER missing); not deleting it"
  cmd_stop
  rm -rf "$BERTH_HOME"
  info "deleted $BERTH_HOME"
}

case ${1:-start} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  reset) cmd_reset ;;
  -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (use: start, stop, reset)" ;;
esac
