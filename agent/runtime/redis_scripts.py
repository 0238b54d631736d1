"""The shell scripts of Redis backups, run with ``docker exec`` in the Redis container.

A dump is ``BGSAVE`` (waiting until ``LASTSAVE`` moves and the save reported ok), then the
RDB file is written to stdout. A restore prepares the RDB as the base of a fresh multi-part
AOF directory (Berth runs Redis with ``--appendonly yes``, so Redis loads the AOF, never
``dump.rdb``, at start) and swaps it in for the current one; the agent then stops and starts the
container, and Redis loads exactly the backup. The password is in ``REDISCLI_AUTH``.
"""

from typing import Final

_CLI: Final = 'c="redis-cli -h 127.0.0.1 --no-auth-warning"; '

# Waits at most an hour for the save (36,000 polls of 0.1 s), then fails (exit 3).
DUMP: Final = (
    "set -e; " + _CLI + "before=$($c LASTSAVE); $c BGSAVE >/dev/null 2>&1 || "
    "$c BGSAVE SCHEDULE >/dev/null; n=0; "
    'while [ "$($c LASTSAVE)" = "$before" ]; do n=$((n + 1)); '
    '[ $n -lt 36000 ] || { echo "BGSAVE did not finish" >&2; exit 3; }; sleep 0.1; done; '
    '$c INFO persistence | grep -q "rdb_last_bgsave_status:ok" '
    '|| { echo "BGSAVE failed" >&2; exit 4; }; '
    "d=$($c CONFIG GET dir | tail -n 1); f=$($c CONFIG GET dbfilename | tail -n 1); "
    'cat "$d/$f"'
)

# "$0" is the uploaded RDB. Leaves the previous AOF directory as "$d/.berth-old-aof".
PREPARE: Final = (
    "set -e; " + _CLI + '[ "$($c CONFIG GET appendonly | tail -n 1)" = yes ] '
    '|| { echo "Redis runs without appendonly: not restorable by Berth" >&2; exit 5; }; '
    "d=$($c CONFIG GET dir | tail -n 1); a=$($c CONFIG GET appenddirname | tail -n 1); "
    'f=$($c CONFIG GET appendfilename | tail -n 1); n="$d/.berth-new-aof"; '
    'rm -rf "$n" "$d/.berth-old-aof"; mkdir "$n"; mv "$0" "$n/$f.1.base.rdb"; '
    'printf "file %s seq 1 type b\\n" "$f.1.base.rdb" > "$n/$f.manifest"; '
    'chown -R "$(stat -c %u:%g "$d")" "$n"; '
    'if [ -e "$d/$a" ]; then mv "$d/$a" "$d/.berth-old-aof"; fi; mv "$n" "$d/$a"'
)

# After the restart: the previous AOF directory is no longer needed.
CLEANUP: Final = (
    "set -e; " + _CLI + 'd=$($c CONFIG GET dir | tail -n 1); rm -rf "$d/.berth-old-aof"'
)

PING: Final = _CLI + "$c ping"

# Non-empty databases and their keys ("dbs|keys"), from INFO keyspace.
COUNTS: Final = (
    _CLI + "$c INFO keyspace | tr -d '\\r' | "
    "awk -F'[:=,]' '/^db[0-9]+:/ {n++; k += $3} END {print n + 0 \"|\" k + 0}'"
)
