#!/bin/sh
# Entrypoint of Berth's local MariaDB image (scripts/build-db-images.sh), for the `mysql` kind.
# Takes the official mariadb image's settings: MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD
# (root is reachable only through the local socket). The first start initialises /var/lib/mysql
# and creates the database and user through --init-file, before any client can connect.
set -eu
# The official image takes `mariadbd ARGS`; accept the same command.
if [ "${1:-}" = mariadbd ] || [ "${1:-}" = mysqld ]; then shift; fi
install -d -o mysql -g mysql -m 0755 /run/mysqld
install -d -o mysql -g mysql -m 0750 /var/lib/mysql
init=""
if [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
    --auth-root-authentication-method=socket >/dev/null
  init=/run/mysqld/init.sql
  (
    umask 077
    : >"$init"
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;" >>"$init"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '${MARIADB_PASSWORD:?}';" >>"$init"
      if [ -n "${MARIADB_DATABASE:-}" ]; then
        echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';" >>"$init"
      fi
    fi
  )
  chown mysql "$init"
fi
exec mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 --skip-name-resolve \
  --socket=/run/mysqld/mysqld.sock ${init:+--init-file=$init} "$@"
