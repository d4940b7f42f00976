#!/usr/bin/env bash
# Reproduces the table in BENCHMARKS.md: the hot-event `hold` scenario on Boxoffice (SQLite and
# PostgreSQL), the row-lock baseline driven by pgbench, and the ceiling (a trivial axum
# endpoint), at each concurrency, all in one run on this machine. Prints a Markdown table.
#
#   scripts/bench.sh                    # 10 s per row, concurrency 64 and 256
#   DURATION=30 CONCURRENCY="8 64 256" scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"64 256"}
OUT=${OUT:-target/bench}
PORT=18080
CEILING_PORT=18090
rm -rf "$OUT" && mkdir -p "$OUT"

cargo build --release --quiet
BIN=target/release/boxoffice
scripts/services.sh up
PG_ADMIN=$(scripts/services.sh env | sed -n 's/^export BOXOFFICE_TEST_POSTGRES_URL=//p')
PG_BASE=${PG_ADMIN%/*}
PG_PORT=${PG_BASE##*:}
psql -q "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS boxoffice_bench' -c 'CREATE DATABASE boxoffice_bench'
psql -q "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS rowlock_bench' -c 'CREATE DATABASE rowlock_bench'

SERVER_PID=
stop_server() { if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; fi; }
trap stop_server EXIT

wait_ready() {
  for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server at $1 did not become ready" >&2; exit 1
}

start_boxoffice() { # $1 = database url
  BOXOFFICE_HTTP__ADDR=127.0.0.1:$PORT BOXOFFICE_DATABASE__URL="$1" BOXOFFICE_SEED__DEMO_DATA=false \
    BOXOFFICE_MAIL__DIR="$OUT/mail" BOXOFFICE_DATABASE__MAX_CONNECTIONS=16 RUST_LOG=warn \
    "$BIN" serve >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT/readyz"
}

loadtest() { # $1 label, $2 url, $3 scenario, $4 concurrency, [$5 database url]
  local file="$OUT/$(echo "$1" | tr ' =/' '___').json"
  "$BIN" loadtest --url "$2" --scenario "$3" -c "$4" -d "$DURATION" --users 64 --quiet \
    --label "$1" --json "$file" ${5:+--database-url "$5"} | tee -a "$OUT/loadtest.log"
}

echo "== ceiling: trivial axum endpoint =="
"$BIN" ceiling-server --addr 127.0.0.1:$CEILING_PORT >"$OUT/ceiling.log" 2>&1 &
CEILING_PID=$!
sleep 0.5
for c in $CONCURRENCY; do loadtest "ceiling c=$c" "http://127.0.0.1:$CEILING_PORT" ceiling "$c"; done
kill "$CEILING_PID"; wait "$CEILING_PID" 2>/dev/null || true

echo "== Boxoffice, embedded (SQLite) =="
SQLITE_URL="sqlite://$PWD/$OUT/boxoffice.db?mode=rwc"
start_boxoffice "$SQLITE_URL"
for c in $CONCURRENCY; do loadtest "boxoffice sqlite c=$c" "http://127.0.0.1:$PORT" hold "$c" "$SQLITE_URL"; done
stop_server

echo "== Boxoffice on PostgreSQL =="
start_boxoffice "$PG_BASE/boxoffice_bench"
for c in $CONCURRENCY; do loadtest "boxoffice postgres c=$c" "http://127.0.0.1:$PORT" hold "$c" "$PG_BASE/boxoffice_bench"; done
stop_server

echo "== baseline: PostgreSQL row lock (UPDATE ... WHERE available >= q; INSERT), pgbench =="
psql -q "$PG_BASE/rowlock_bench" <<'SQL'
CREATE TABLE events (id int PRIMARY KEY, available int NOT NULL);
CREATE TABLE registrations (id bigserial PRIMARY KEY, event_id int NOT NULL, user_id int NOT NULL,
                            created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO events VALUES (1, 1000000000);
SQL
cat >"$OUT/rowlock.sql" <<'SQL'
\set user random(1, 100000)
BEGIN;
UPDATE events SET available = available - 1 WHERE id = 1 AND available >= 1;
INSERT INTO registrations (event_id, user_id) VALUES (1, :user);
COMMIT;
SQL
for c in $CONCURRENCY; do
  rm -f "$OUT"/pgbench_log*
  pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "$c" -j 2 -T "$DURATION" -f "$OUT/rowlock.sql" \
    -l --log-prefix="$OUT/pgbench_log" rowlock_bench >"$OUT/pgbench-$c.txt" 2>&1
  python3 - "$OUT" "$c" <<'PY'
import glob, json, sys
out, c = sys.argv[1], int(sys.argv[2])
lat = sorted(int(l.split()[2]) for f in glob.glob(f"{out}/pgbench_log*") for l in open(f))
text = open(f"{out}/pgbench-{c}.txt").read()
tps = float(next(l for l in text.splitlines() if l.startswith("tps")).split()[2])
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
json.dump({"label": f"rowlock pgbench c={c}", "concurrency": c, "requests_per_s": tps, "granted_per_s": tps,
           "latency": {"p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": lat[-1] / 1000},
           "statuses": {}, "invariant": None}, open(f"{out}/rowlock_pgbench_c_{c}.json", "w"))
print(f"rowlock pgbench c={c}: {tps:.0f} tps, p99 {q(0.99):.2f} ms")
PY
done

python3 - "$OUT" "$CONCURRENCY" <<'PY'
import json, sys, glob
out, conc = sys.argv[1], sys.argv[2].split()
r = {}
for f in glob.glob(f"{out}/*.json"):
    d = json.load(open(f)); r[d["label"]] = d
print()
print(f"| connections | system | requests/s | granted holds/s | p50 ms | p99 ms | vs row-lock | vs ceiling | invariant |")
print(f"|---|---|---|---|---|---|---|---|---|")
for c in conc:
    base = r.get(f"rowlock pgbench c={c}", {}).get("granted_per_s")
    ceil = r.get(f"ceiling c={c}", {}).get("requests_per_s")
    for label in [f"ceiling c={c}", f"boxoffice sqlite c={c}", f"boxoffice postgres c={c}", f"rowlock pgbench c={c}"]:
        d = r.get(label)
        if not d: continue
        g = d["granted_per_s"]
        inv = d.get("invariant")
        inv_s = "—" if not inv else ("holds" if inv["holds"] else "VIOLATED")
        vb = f"{g / base:.1f}×" if base and label.startswith("boxoffice") else ""
        vc = f"{d['requests_per_s'] / ceil:.2f}" if ceil and label.startswith("boxoffice") else ""
        print(f"| {c} | {label.rsplit(' c=', 1)[0]} | {d['requests_per_s']:.0f} | {g:.0f} | {d['latency']['p50_ms']:.2f} | {d['latency']['p99_ms']:.2f} | {vb} | {vc} | {inv_s} |")
PY
