#!/bin/sh
# Entrypoint of Berth's local Redis image (scripts/build-db-images.sh): append-only persistence in
# /data (the official image's volume path), a password when REDIS_PASSWORD is set, run as redis.
set -eu
# The official image takes `redis-server ARGS`; accept the same command.
if [ "${1:-}" = redis-server ]; then shift; fi
install -d -o redis -g redis -m 0750 /data
if [ -n "${REDIS_PASSWORD:-}" ]; then set -- --requirepass "$REDIS_PASSWORD" "$@"; fi
exec setpriv --reuid=redis --regid=redis --init-groups redis-server --bind 0.0.0.0 --port 6379 \
  --protected-mode no --dir /data --appendonly yes --save 60 1000 --daemonize no --logfile '' "$@"
