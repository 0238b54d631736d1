#!/bin/sh
# Entrypoint of Berth's local PostgreSQL image (scripts/build-db-images.sh). Starts as root so a
# named volume gets the right owner, initialises the cluster on first start (no temporary server,
# so readiness is never reported early), then runs postgres as the postgres user.
# POSTGRES_PASSWORD (required), POSTGRES_USER (default postgres), POSTGRES_DB (default the user).
set -eu
# The official image takes `postgres ARGS`; accept the same command.
if [ "${1:-}" = postgres ]; then shift; fi
PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
install -d -o postgres -g postgres -m 2775 /run/postgresql
install -d -o postgres -g postgres -m 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >/run/postgresql/.pw
  chown postgres /run/postgresql/.pw
  setpriv --reuid=postgres --regid=postgres --init-groups initdb -D "$PGDATA" -U "$user" \
    --pwfile=/run/postgresql/.pw --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust \
    --auth-host=scram-sha-256 >/dev/null
  rm -f /run/postgresql/.pw
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode creates the database before any client can connect.
    echo "CREATE DATABASE \"$db\" OWNER \"$user\";" |
      setpriv --reuid=postgres --regid=postgres --init-groups postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*' "$@"
