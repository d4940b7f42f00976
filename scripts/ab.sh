#!/usr/bin/env bash
# Same-run A/B of the hot path: the `hold` scenario against a base revision and the working tree,
# on SQLite and on PostgreSQL, rounds interleaved (the order of the two builds alternates each
# round) so a noisy machine's slow phases hit both alike. One load generator for both: the
# working tree's `boxoffice loadtest`, against each build's `boxoffice serve`. Prints medians.
#
#   scripts/ab.sh 6ae2c74                       # 8 s per run, 64 connections, 3 rounds
#   DURATION=10 CONCURRENCY="64 256" REPEAT=5 scripts/ab.sh HEAD~3
#   BACKENDS=postgres SKIP_BUILD=1 REPEAT=5 scripts/ab.sh 6ae2c74   # again, same binaries
#
# The base is built in a git worktree under $OUT with the same target directory, so only the
# boxoffice crate itself is compiled again, not its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:?usage: scripts/ab.sh BASE_REVISION}
DURATION=${DURATION:-8}
CONCURRENCY=${CONCURRENCY:-64}
REPEAT=${REPEAT:-3}
BACKENDS=${BACKENDS:-"sqlite postgres"}
OUT=${OUT:-$PWD/target/ab}
PORT=18180
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
rm -rf "$OUT/runs" && mkdir -p "$OUT/runs"

if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -x "$OUT/new" ] || [ ! -x "$OUT/base" ]; then
  echo "== building the working tree and $BASE (release) =="
  cargo build --release --quiet
  cp "$CARGO_TARGET_DIR/release/boxoffice" "$OUT/new"
  git worktree remove --force "$OUT/base-src" 2>/dev/null || rm -rf "$OUT/base-src"
  git worktree add --detach --force "$OUT/base-src" "$BASE" >/dev/null
  (cd "$OUT/base-src" && cargo build --release --quiet)
  cp "$CARGO_TARGET_DIR/release/boxoffice" "$OUT/base"
  git worktree remove --force "$OUT/base-src"
  # The base's build left its binary at target/release/boxoffice: put the working tree's back.
  cp "$OUT/new" "$CARGO_TARGET_DIR/release/boxoffice"
fi

scripts/services.sh up postgres
# A known admin password for the harness (a fresh database would otherwise get a random one).
ADMIN_PASSWORD=bench-passphrase-2026
PG_ADMIN=$(scripts/services.sh env | sed -n 's/^export BOXOFFICE_TEST_POSTGRES_URL=//p')
PG_BASE=${PG_ADMIN%/*}

SERVER_PID=
stop_server() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; fi; }
trap stop_server EXIT

# Each build runs on its own compiled-in defaults (config.toml is built into the binary), not on
# the working tree's config.toml, which an older build may not understand.
serve() { # $1 binary, $2 database url
  BOXOFFICE_CONFIG="$OUT/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$PORT BOXOFFICE_GRPC__ADDR=127.0.0.1:0 BOXOFFICE_DATABASE__URL="$2" BOXOFFICE_SEED__DEMO_DATA=false BOXOFFICE_ADMIN__PASSWORD="$ADMIN_PASSWORD" \
    BOXOFFICE_MAIL__DIR="$OUT/mail" BOXOFFICE_DATABASE__MAX_CONNECTIONS=16 RUST_LOG=warn \
    "$1" serve >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server did not become ready" >&2; exit 1
}

run() { # $1 build (base|new), $2 backend, $3 round
  local url
  if [ "$2" = sqlite ]; then
    rm -f "$OUT"/ab.db*
    url="sqlite://$OUT/ab.db?mode=rwc"
  else
    psql -q "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS boxoffice_ab' -c 'CREATE DATABASE boxoffice_ab'
    url="$PG_BASE/boxoffice_ab"
  fi
  serve "$OUT/$1" "$url"
  for c in $CONCURRENCY; do
    "$OUT/new" loadtest --url "http://127.0.0.1:$PORT" --scenario hold -c "$c" -d "$DURATION" --users 64 --admin-password "$ADMIN_PASSWORD" --quiet \
      --label "$1 $2 c=$c" --json "$OUT/runs/$1-$2-c$c-r$3.json" --database-url "$url" | tail -n 3
  done
  stop_server
}

for round in $(seq 1 "$REPEAT"); do
  echo "#### round $round of $REPEAT"
  if [ $((round % 2)) -eq 1 ]; then order="base new"; else order="new base"; fi
  for backend in $BACKENDS; do
    for build in $order; do run "$build" "$backend" "$round"; done
  done
done

python3 - "$OUT/runs" "$BASE" <<'PY'
import glob, json, statistics, sys
runs = {}
for f in sorted(glob.glob(f"{sys.argv[1]}/*.json")):
    d = json.load(open(f)); runs.setdefault(d["label"], []).append(d)
print()
print(f"| connections | backend | build | granted holds/s per round | median | p99 ms per round | invariant |")
print("|---|---|---|---|---|---|---|")
for label in sorted(runs, key=lambda l: (int(l.rsplit('c=', 1)[1]), l.split()[1], l.split()[0])):
    build, backend, c = label.split()
    rs = runs[label]
    holds = [d["granted_per_s"] for d in rs]
    p99 = [d["latency"]["p99_ms"] for d in rs]
    inv = "holds in every round" if all(d["invariant"] and d["invariant"]["holds"] for d in rs) else "VIOLATED"
    name = f"{sys.argv[2]} (base)" if build == "base" else "working tree"
    print(f"| {c[2:]} | {backend} | {name} | {' / '.join(f'{h:,.0f}' for h in holds)} | {statistics.median(holds):,.0f} | "
          f"{' / '.join(f'{p:.1f}' for p in p99)} | {inv} |")
PY
