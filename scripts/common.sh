# shellcheck shell=bash
# Helpers shared by scripts/test.sh and scripts/quickstart.sh. Sourced, never executed.
# packaging/install-agent.sh deliberately does not use this file: it must work on its own when
# piped from curl.

BERTH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# Bold headers on a terminal, plain text in CI logs.
if [ -t 1 ]; then _bold=$'\033[1m' _reset=$'\033[0m'; else _bold="" _reset=""; fi

# Name the command that failed: under `set -e` a script otherwise stops without saying why.
set -E
trap 'printf "error: command failed (exit %s): %s\n" "$?" "$BASH_COMMAND" >&2' ERR

section() { printf '\n%s==> %s%s\n' "$_bold" "$*" "$_reset"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Run a command as root: directly, or through passwordless sudo. Never prompts (CI has no stdin).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "root is needed for: $* (run as root, or set up passwordless sudo)"
  fi
}

# poll_until TIMEOUT_SECONDS COMMAND...: re-run COMMAND every 0.2 s until it succeeds; return 1 when
# the deadline passes first. COMMAND may call die() itself to fail fast (e.g. the process died).
poll_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

dpkg_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# ensure_packages SPEC...: install the Debian packages that are missing, with one apt-get update.
# SPEC is "package" or "package=cmd1,cmd2": with commands, the package also counts as present
# when all of them are on PATH (e.g. Docker from docker-ce instead of Debian's docker.io, which
# would conflict with it).
ensure_packages() {
  local spec pkg cmds cmd ok missing=()
  for spec in "$@"; do
    pkg=${spec%%=*}
    dpkg_installed "$pkg" && continue
    if [[ $spec == *=* ]]; then
      ok=1
      cmds=${spec#*=}
      for cmd in ${cmds//,/ }; do command -v "$cmd" >/dev/null || ok=0; done
      [ "$ok" = 1 ] && continue
    fi
    missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    info "Debian packages: all present"
    return 0
  fi
  command -v apt-get >/dev/null || die "missing packages ${missing[*]}, and no apt-get to install them"
  info "installing Debian packages: ${missing[*]}"
  # dpkg is chatty even with -qq: keep its output in a log and show it only on failure.
  local log
  log=$(mktemp)
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
    ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "apt-get could not install ${missing[*]} (full log: $log)"
  fi
  rm -f "$log"
}

# ensure_dockerd: make `docker info` work, starting the engine when needed.
_dockerd_pid=""
_docker_ready() {
  docker info >/dev/null 2>&1 && return 0
  if [ -n "$_dockerd_pid" ] && ! proc_running "$_dockerd_pid"; then
    tail -n 20 /var/log/berth-dockerd.log >&2 || true
    die "dockerd exited during startup (log above, full log /var/log/berth-dockerd.log)"
  fi
  return 1
}
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then
    info "Docker engine: running"
    return 0
  fi
  if [ -d /run/systemd/system ]; then
    info "starting docker.service"
    as_root systemctl start docker.service
  elif [ -S /var/run/docker.sock ] && [ -d "/proc/$(cat /var/run/docker.pid 2>/dev/null || echo none)" ]; then
    info "dockerd is running but not answering yet"
  else
    # No init system to ask (container, CI): run dockerd ourselves, detached from this shell
    # (setsid) so it outlives the script. setsid and nohup exec, so $! is dockerd's pid.
    info "starting dockerd in the background (log: /var/log/berth-dockerd.log)"
    _dockerd_pid=$(as_root sh -c 'setsid nohup dockerd >>/var/log/berth-dockerd.log 2>&1 </dev/null & echo $!')
  fi
  if ! poll_until 60 _docker_ready; then
    docker info >/dev/null || true # show docker's own explanation (permissions, socket, ...)
    die "the Docker engine did not answer within 60 s (log: /var/log/berth-dockerd.log)"
  fi
  info "Docker engine: running"
}

# ensure_venv PIP_INSTALL_ARGS...: create $BERTH_ROOT/.venv if needed and pip install the project.
# A stamp file skips the install when pyproject.toml did not change since the last install with the
# same arguments; the install is editable, so code changes never need a reinstall.
# BERTH_REINSTALL=1 forces it.
ensure_venv() {
  local venv=$BERTH_ROOT/.venv stamp want args_id
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    info "creating $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
  # One stamp per argument list, so test.sh (dev group) and quickstart.sh (no group) don't undo each
  # other's stamps; the stamp's content is the hash of pyproject.toml at install time.
  args_id=$(printf '%s\n' "$@" | sha256sum | cut -c1-12)
  want=$(sha256sum <"$BERTH_ROOT/pyproject.toml" | cut -d' ' -f1)
  stamp=$venv/.berth-installed-$args_id
  if [ "${BERTH_REINSTALL:-0}" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
    [ -x "$venv/bin/berth-coordinator" ]; then
    info "virtualenv up to date ($venv)"
    return 0
  fi
  # pip's output (and the build backend's warnings) only matter when it fails.
  local log=$venv/.berth-pip.log
  # `--group` (PEP 735 dependency groups) needs pip >= 25.1; Debian 12's venv ships pip 23.
  if ! "$venv/bin/pip" install --help 2>/dev/null | grep -q -- '--group'; then
    info "upgrading pip in $venv (need --group support)"
    "$venv/bin/python" -m pip install --upgrade 'pip>=25.1' >"$log" 2>&1 ||
      { cat "$log" >&2; die "could not upgrade pip in $venv"; }
  fi
  info "pip install $*"
  (cd "$BERTH_ROOT" && "$venv/bin/pip" install "$@") >"$log" 2>&1 ||
    { tail -n 40 "$log" >&2; die "pip install $* failed (full log: $log)"; }
  printf '%s\n' "$want" >"$stamp"
}

# proc_running PID: the process exists and is not a zombie. A child of this shell that died stays
# in /proc as a zombie until reaped, so testing /proc/PID alone would miss its death.
proc_running() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# pid_alive PIDFILE PATTERN: print the pid if PIDFILE names a live process whose command line
# contains PATTERN (guards against a stale pid file whose pid was reused).
pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
  echo "$pid"
}

# build_console: build the web console (console/ -> coordinator/console/dist) with npm, only when
# its sources are newer than the last build. Node.js is needed here only; the coordinator serves
# the built files and needs no Node.js at run time.
build_console() {
  local dir=$BERTH_ROOT/console stamp=$BERTH_ROOT/coordinator/console/dist/BUILD
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    info "npm ci (console/)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in console/"
    touch "$dir/node_modules"
  fi
  if [ -f "$stamp" ] && [ -z "$(find "$dir/src" "$dir/index.html" "$dir/build.mjs" \
    "$dir/package-lock.json" "$dir/tsconfig.json" -newer "$stamp" -print -quit)" ]; then
    info "console up to date: $stamp"
    return 0
  fi
  info "building the web console (npm run build)"
  (cd "$dir" && npm run --silent build) || die "npm run build failed in console/"
}
