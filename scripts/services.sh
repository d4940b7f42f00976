#!/usr/bin/env bash
# Real backing services for tests and local runs, as plain processes on loopback (no Docker).
#
#   scripts/services.sh up       install what is missing, start everything, wait until ready
#   scripts/services.sh down     stop everything
#   scripts/services.sh status   say what runs
#   scripts/services.sh env      print the variables that point Boxoffice and the tests at them
#
# State lives in .services/ (git-ignored). Today: PostgreSQL from Debian's packages.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SVC=${BOXOFFICE_SERVICES_DIR:-$ROOT/.services}
PG_PORT=${BOXOFFICE_PG_PORT:-55432}
PG_DATA=${BOXOFFICE_PG_DATA:-$SVC/postgres}

log() { echo "services: $*" >&2; }

as_postgres() {
  # The server refuses to run as root; Debian's package provides the postgres user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

pg_install() {
  if [ -z "$(pg_bin)" ]; then
    log "installing PostgreSQL from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
}

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

pg_up() {
  pg_install
  local bin; bin=$(pg_bin)
  mkdir -p "$SVC"
  # The postgres user must reach its data directory; a checkout under a private home may not.
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$SVC"; then
    PG_DATA=${BOXOFFICE_PG_DATA:-/tmp/boxoffice-postgres-$PG_PORT}
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $PG_DATA"
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DATA"
    as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --no-sync >/dev/null
  fi
  if pg_ready; then
    log "PostgreSQL already up on 127.0.0.1:$PG_PORT"
    return
  fi
  as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=300" >/dev/null
  for _ in $(seq 1 60); do pg_ready && break; sleep 0.5; done
  pg_ready || { log "PostgreSQL did not start; see $PG_DATA/server.log"; exit 1; }
  log "PostgreSQL up on 127.0.0.1:$PG_PORT"
}

pg_down() {
  local bin; bin=$(pg_bin)
  if [ -n "$bin" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
    log "PostgreSQL stopped"
  fi
}

case "${1:-}" in
  up) pg_up ;;
  down) pg_down ;;
  status)
    if [ -n "$(pg_bin)" ] && pg_ready; then echo "postgres: up (127.0.0.1:$PG_PORT)"; else echo "postgres: down"; fi
    ;;
  env)
    echo "export BOXOFFICE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "export BOXOFFICE_DATABASE__URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
