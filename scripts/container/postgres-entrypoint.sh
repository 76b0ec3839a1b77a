#!/bin/sh
# The environment contract of the official postgres image (POSTGRES_PASSWORD, POSTGRES_USER,
# POSTGRES_DB, PGDATA), for the stand-in image scripts/container builds from Debian's
# packages where the real one cannot be pulled. Used only to run compose.yaml here.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
PGDATA=${PGDATA:-/var/lib/postgresql/data}
USER_NAME=${POSTGRES_USER:-postgres}
DB_NAME=${POSTGRES_DB:-$USER_NAME}
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "Error: Database is uninitialized and superuser password is not specified (POSTGRES_PASSWORD)." >&2
  exit 1
fi
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /run/postgresql/pwfile
  chown postgres /run/postgresql/pwfile
  runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U "$USER_NAME" \
    --pwfile=/run/postgresql/pwfile -A scram-sha-256 -E UTF8 --no-locale >/dev/null
  rm /run/postgresql/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  if [ "$DB_NAME" != postgres ]; then
    echo "CREATE DATABASE \"$DB_NAME\"" | runuser -u postgres -- "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA"
