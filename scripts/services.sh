#!/usr/bin/env bash
# Real backing services for tests and local runs, as plain processes on loopback (no Docker).
#
#   scripts/services.sh up [NAME...]     install what is missing, start, wait until ready
#   scripts/services.sh down [NAME...]   stop
#   scripts/services.sh status           say what runs
#   scripts/services.sh env              print the variables that point Boxoffice and the tests at them
#
# NAME is postgres, kafka, mongodb or smtp; none means all four.
#   postgres  PostgreSQL from Debian's packages                       127.0.0.1:25432
#   kafka     Apache Kafka 4.1 (KRaft, one node), its jars fetched
#             from Maven Central by mvn (scripts/kafka/pom.xml)        127.0.0.1:29092
#   mongodb   FerretDB 1.24 on SQLite, built from the Go module proxy
#             (scripts/ferretdb/) - a MongoDB wire-protocol server      127.0.0.1:27117
#   smtp      Mailpit 1.27, built from the Go module proxy
#             (scripts/mailpit/): SMTP, and an HTTP API to read mail    127.0.0.1:21025, http://127.0.0.1:28025
#
# Everything is cached in .services/ (git-ignored): binaries, jars, data, logs and pid files.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SVC=${BOXOFFICE_SERVICES_DIR:-$ROOT/.services}
# Below the kernel's ephemeral range (32768-60999): a client retrying a stopped server's port
# from an ephemeral port can connect to itself (TCP simultaneous open) and then hold the port, so
# the server cannot bind it again when an outage test restarts it.
PG_PORT=${BOXOFFICE_PG_PORT:-25432}
PG_DATA=${BOXOFFICE_PG_DATA:-$SVC/postgres}
KAFKA_PORT=${BOXOFFICE_KAFKA_PORT:-29092}
KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
MONGO_PORT=${BOXOFFICE_MONGO_PORT:-27117}
SMTP_PORT=${BOXOFFICE_SMTP_PORT:-21025}
MAILPIT_HTTP_PORT=${BOXOFFICE_MAILPIT_HTTP_PORT:-28025}

log() { echo "services: $*" >&2; }

as_postgres() {
  # The server refuses to run as root; Debian's package provides the postgres user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

pg_install() {
  [ -n "$(pg_bin)" ] || apt_install postgresql
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

# --- helpers for plain background processes ---------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$SVC/$1.pid" ] && kill -0 "$(cat "$SVC/$1.pid")" 2>/dev/null; }

# start NAME PORT CMD...: runs CMD in the background (own session, log in .services/NAME.log)
# unless its port already answers, then waits up to 90 s for the port.
start_process() {
  local name=$1 port=$2; shift 2
  if port_open "$port"; then
    log "$name already up on 127.0.0.1:$port"
    return
  fi
  setsid "$@" >"$SVC/$name.log" 2>&1 < /dev/null &
  echo $! >"$SVC/$name.pid"
  for _ in $(seq 1 180); do
    port_open "$port" && { log "$name up on 127.0.0.1:$port"; return; }
    pid_alive "$name" || break
    sleep 0.5
  done
  log "$name did not start; last lines of $SVC/$name.log:"
  tail -n 30 "$SVC/$name.log" >&2 || true
  exit 1
}

stop_process() {
  local name=$1 port=$2
  if pid_alive "$name"; then
    local pid; pid=$(cat "$SVC/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    log "$name stopped"
  fi
  rm -f "$SVC/$name.pid"
  for _ in $(seq 1 20); do port_open "$port" || return 0; sleep 0.5; done
}

apt_install() {
  log "installing $* from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Kafka --------------------------------------------------------------------------------

kafka_install() {
  command -v java >/dev/null || apt_install default-jre-headless
  command -v mvn >/dev/null || apt_install maven
  local libs=$SVC/kafka/libs stamp
  stamp=$(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -c1-16)
  if [ ! -f "$libs/.stamp-$stamp" ]; then
    log "fetching the Kafka broker's jars from Maven Central"
    rm -rf "$libs" && mkdir -p "$libs"
    # Maven's own output (with colour codes even in batch mode) goes to a log; shown on failure.
    if ! mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >"$SVC/mvn.log" 2>&1; then
      tail -n 40 "$SVC/mvn.log" >&2
      exit 1
    fi
    touch "$libs/.stamp-$stamp"
  fi
}

kafka_java() {
  java -Xms256m -Xmx768m -XX:+UseG1GC -Dlog4j2.configurationFile="$SVC/kafka/log4j2.properties" \
    -cp "$SVC/kafka/libs/*" "$@"
}

kafka_up() {
  kafka_install
  local dir=$SVC/kafka
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
PROPS
  cat >"$dir/log4j2.properties" <<'PROPS'
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
PROPS
  if [ ! -f "$dir/data/meta.properties" ]; then
    log "formatting Kafka storage in $dir/data"
    local id; id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    kafka_java kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >/dev/null
  fi
  start_process kafka "$KAFKA_PORT" java -Xms256m -Xmx768m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$dir/libs/*" kafka.Kafka "$dir/server.properties"
  # The port opens before the broker has joined its own quorum; wait for the log line.
  for _ in $(seq 1 120); do
    grep -q "Kafka Server started" "$SVC/kafka.log" 2>/dev/null && return
    sleep 0.5
  done
  log "Kafka listens but did not report started; see $SVC/kafka.log"
}

# --- Go-built servers (FerretDB, Mailpit) ---------------------------------------------------

# go_build NAME: builds scripts/NAME (a Go module pinned by its go.mod/go.sum) into .services/bin.
go_build() {
  local name=$1 src=$ROOT/scripts/$1 stamp
  command -v go >/dev/null || apt_install golang-go
  stamp=$(find "$src" -maxdepth 1 -type f \( -name 'go.*' -o -name '*.go' \) -print0 | sort -z | xargs -0 cat |
    sha256sum | cut -c1-16)
  if [ ! -x "$SVC/bin/$name" ] || [ ! -f "$SVC/bin/.$name-$stamp" ]; then
    log "building $name from the Go module proxy (first time takes a few minutes)"
    mkdir -p "$SVC/bin"
    local pkg=.
    [ "$name" = mailpit ] && pkg=github.com/axllent/mailpit
    (cd "$src" && GOFLAGS=-mod=mod go build -o "$SVC/bin/$name" "$pkg")
    rm -f "$SVC/bin/.$name-"* && touch "$SVC/bin/.$name-$stamp"
  fi
}

mongo_up() {
  go_build ferretdb
  start_process mongodb "$MONGO_PORT" "$SVC/bin/ferretdb" --listen-addr "127.0.0.1:$MONGO_PORT" \
    --sqlite-dir "$SVC/ferretdb"
}

smtp_up() {
  go_build mailpit
  start_process smtp "$MAILPIT_HTTP_PORT" "$SVC/bin/mailpit" --smtp "127.0.0.1:$SMTP_PORT" \
    --listen "127.0.0.1:$MAILPIT_HTTP_PORT" --database "$SVC/mailpit.db" --max 0 --smtp-auth-accept-any \
    --smtp-auth-allow-insecure
  for _ in $(seq 1 60); do port_open "$SMTP_PORT" && return; sleep 0.5; done
  log "Mailpit's SMTP port $SMTP_PORT did not open"; exit 1
}

# A server started by a checkout that was deleted since (a CI clone, a worktree) keeps its port,
# and "port open" would then hand the tests a server whose data directory no longer exists (seen:
# FerretDB accepting connections but never storing a document). Such a server is recognised by
# its command line naming a `.services/` directory and its binary or working directory being
# gone; it is stopped so this checkout starts its own.
reap_orphans() {
  local d pid reaped=
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    # The process may end between the glob and the read: its files vanish (errors to /dev/null,
    # set before the input redirection that can fail).
    tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -q '/\.services/' || continue
    if readlink "$d/exe" 2>/dev/null | grep -q ' (deleted)$' || readlink "$d/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
      log "stopping pid $pid, a server left by a deleted checkout: $(tr '\0' ' ' 2>/dev/null <"$d/cmdline" | cut -c1-100)"
      kill -TERM "$pid" 2>/dev/null || true
      reaped="$reaped $pid"
    fi
  done
  for pid in $reaped; do
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# --- commands -----------------------------------------------------------------------------

names() { if [ $# -eq 0 ]; then echo postgres kafka mongodb smtp; else echo "$@"; fi; }

up_one() {
  local started=$SECONDS
  case $1 in
    postgres) pg_up ;;
    kafka) kafka_up ;;
    mongodb) mongo_up ;;
    smtp) smtp_up ;;
    *) echo "unknown service $1 (postgres, kafka, mongodb, smtp)" >&2; exit 2 ;;
  esac
  log "$1 ready ($((SECONDS - started)) s)"
}

down_one() {
  case $1 in
    postgres) pg_down ;;
    kafka) stop_process kafka "$KAFKA_PORT" ;;
    mongodb) stop_process mongodb "$MONGO_PORT" ;;
    smtp) stop_process smtp "$MAILPIT_HTTP_PORT" ;;
    *) echo "unknown service $1 (postgres, kafka, mongodb, smtp)" >&2; exit 2 ;;
  esac
}

mkdir -p "$SVC"
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  up) reap_orphans; for n in $(names "$@"); do up_one "$n"; done ;;
  down) for n in $(names "$@"); do down_one "$n"; done ;;
  status)
    if [ -n "$(pg_bin)" ] && pg_ready; then echo "postgres: up (127.0.0.1:$PG_PORT)"; else echo "postgres: down"; fi
    if port_open "$KAFKA_PORT"; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; fi
    if port_open "$MONGO_PORT"; then echo "mongodb: up (127.0.0.1:$MONGO_PORT, FerretDB)"; else echo "mongodb: down"; fi
    if port_open "$SMTP_PORT"; then
      echo "smtp: up (127.0.0.1:$SMTP_PORT, Mailpit UI and API http://127.0.0.1:$MAILPIT_HTTP_PORT)"
    else echo "smtp: down"; fi
    ;;
  env)
    cat <<ENV
# Boxoffice on the real services (cargo run --release picks these up):
export BOXOFFICE_DATABASE__URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export BOXOFFICE_KAFKA__BROKERS=127.0.0.1:$KAFKA_PORT
export BOXOFFICE_MONGODB__URL=mongodb://127.0.0.1:$MONGO_PORT
export BOXOFFICE_MAIL__TRANSPORT=smtp
export BOXOFFICE_MAIL__SMTP_HOST=127.0.0.1
export BOXOFFICE_MAIL__SMTP_PORT=$SMTP_PORT
# The tests:
export BOXOFFICE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export BOXOFFICE_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export BOXOFFICE_TEST_MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT
export BOXOFFICE_TEST_SMTP=127.0.0.1:$SMTP_PORT
export BOXOFFICE_TEST_MAILPIT_URL=http://127.0.0.1:$MAILPIT_HTTP_PORT
ENV
    ;;
  *) echo "usage: $0 up|down [postgres|kafka|mongodb|smtp ...] | status | env" >&2; exit 2 ;;
esac
