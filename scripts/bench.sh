#!/usr/bin/env bash
# Reproduces the table in BENCHMARKS.md: the hot-event `hold` scenario on Boxoffice (SQLite over
# REST and over gRPC, PostgreSQL), the row-lock baseline driven by pgbench, and the ceiling (a
# trivial axum endpoint), at each concurrency, all in one run on this machine. Prints a Markdown
# table.
#
#   scripts/bench.sh                    # 10 s per row, concurrency 64 and 256, 3 rounds
#   DURATION=30 CONCURRENCY="8 64 256" REPEAT=5 scripts/bench.sh
#
# Every row is measured REPEAT times, the rounds interleaved so slow phases of a noisy machine
# hit all systems alike; the table shows medians.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"64 256"}
REPEAT=${REPEAT:-3}
ROUND=1
OUT=${OUT:-target/bench}
PORT=18080
GRPC_PORT=18051
CEILING_PORT=18090
rm -rf "$OUT" && mkdir -p "$OUT"

cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/boxoffice
# Only PostgreSQL: an idle Kafka broker (a JVM) or FerretDB would take CPU from every row.
scripts/services.sh up postgres
# A known admin password for the harness (a fresh database would otherwise get a random one).
ADMIN_PASSWORD=bench-passphrase-2026
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
  BOXOFFICE_CONFIG="$OUT/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$PORT BOXOFFICE_GRPC__ADDR=127.0.0.1:$GRPC_PORT BOXOFFICE_DATABASE__URL="$1" BOXOFFICE_SEED__DEMO_DATA=false BOXOFFICE_ADMIN__PASSWORD="$ADMIN_PASSWORD" \
    BOXOFFICE_MAIL__DIR="$OUT/mail" BOXOFFICE_DATABASE__MAX_CONNECTIONS=16 RUST_LOG=warn \
    "$BIN" serve >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT/readyz"
}

loadtest() { # $1 label, $2 url, $3 scenario, $4 concurrency, [$5 database url], [more loadtest flags]
  local file="$OUT/$(echo "$1" | tr ' =/' '___')-r$ROUND.json"
  "$BIN" loadtest --url "$2" --scenario "$3" -c "$4" -d "$DURATION" --users 64 --admin-password "$ADMIN_PASSWORD" --quiet \
    --label "$1" --json "$file" ${5:+--database-url "$5"} "${@:6}" | tee -a "$OUT/loadtest.log"
}

for ROUND in $(seq 1 "$REPEAT"); do
echo "#### round $ROUND of $REPEAT"

echo "== ceiling: trivial axum endpoint =="
"$BIN" ceiling-server --addr 127.0.0.1:$CEILING_PORT >"$OUT/ceiling.log" 2>&1 &
CEILING_PID=$!
sleep 0.5
for c in $CONCURRENCY; do loadtest "ceiling c=$c" "http://127.0.0.1:$CEILING_PORT" ceiling "$c"; done
kill "$CEILING_PID"; wait "$CEILING_PID" 2>/dev/null || true

echo "== Boxoffice, embedded (SQLite) =="
SQLITE_URL="sqlite://$PWD/$OUT/boxoffice.db?mode=rwc"
rm -f "$OUT"/boxoffice.db*
start_boxoffice "$SQLITE_URL"
for c in $CONCURRENCY; do
  loadtest "boxoffice sqlite c=$c" "http://127.0.0.1:$PORT" hold "$c" "$SQLITE_URL"
  # The same hold over the gRPC API, on the same server, right after.
  loadtest "boxoffice sqlite grpc c=$c" "http://127.0.0.1:$PORT" hold "$c" "$SQLITE_URL" --grpc --grpc-url "http://127.0.0.1:$GRPC_PORT"
done
stop_server

echo "== Boxoffice on PostgreSQL =="
psql -q "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS boxoffice_bench' -c 'CREATE DATABASE boxoffice_bench'
start_boxoffice "$PG_BASE/boxoffice_bench"
for c in $CONCURRENCY; do loadtest "boxoffice postgres c=$c" "http://127.0.0.1:$PORT" hold "$c" "$PG_BASE/boxoffice_bench"; done
stop_server

echo "== baseline: PostgreSQL row lock (UPDATE ... WHERE available >= q; INSERT), pgbench =="
psql -q "$PG_BASE/rowlock_bench" <<'SQL'
DROP TABLE IF EXISTS events, registrations;
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
  python3 - "$OUT" "$c" "$ROUND" <<'PY'
import glob, json, sys
out, c, rnd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lat = sorted(int(l.split()[2]) for f in glob.glob(f"{out}/pgbench_log*") for l in open(f))
text = open(f"{out}/pgbench-{c}.txt").read()
tps = float(next(l for l in text.splitlines() if l.startswith("tps")).split()[2])
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
json.dump({"label": f"rowlock pgbench c={c}", "concurrency": c, "requests_per_s": tps, "granted_per_s": tps,
           "latency": {"p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": lat[-1] / 1000},
           "statuses": {}, "invariant": None}, open(f"{out}/rowlock_pgbench_c_{c}-r{rnd}.json", "w"))
print(f"rowlock pgbench c={c}: {tps:.0f} tps, p99 {q(0.99):.2f} ms")
PY
done

done

python3 - "$OUT" "$CONCURRENCY" <<'PY'
import glob, json, statistics, sys
out, conc = sys.argv[1], sys.argv[2].split()
runs = {}
for f in glob.glob(f"{out}/*-r*.json"):
    d = json.load(open(f)); runs.setdefault(d["label"], []).append(d)
def med(label, key, sub=None):
    vals = [(d[sub][key] if sub else d[key]) for d in runs.get(label, [])]
    return statistics.median(vals) if vals else None
print()
print("| connections | system | rounds | requests/s | granted holds/s | p50 ms | p99 ms | vs row-lock | vs ceiling | invariant |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in conc:
    base = med(f"rowlock pgbench c={c}", "granted_per_s")
    ceil = med(f"ceiling c={c}", "requests_per_s")
    for label in [f"ceiling c={c}", f"boxoffice sqlite c={c}", f"boxoffice sqlite grpc c={c}", f"boxoffice postgres c={c}", f"rowlock pgbench c={c}"]:
        if label not in runs: continue
        g, rps = med(label, "granted_per_s"), med(label, "requests_per_s")
        invs = [d.get("invariant") for d in runs[label] if d.get("invariant")]
        inv_s = "—" if not invs else ("holds in every round" if all(i["holds"] for i in invs) else "VIOLATED")
        boxo = label.startswith("boxoffice")
        vb = f"{g / base:.1f}×" if base and boxo else ""
        vc = f"{rps / ceil:.2f}" if ceil and boxo else ""
        print(f"| {c} | {label.rsplit(' c=', 1)[0]} | {len(runs[label])} | {rps:.0f} | {g:.0f} | "
              f"{med(label, 'p50_ms', 'latency'):.2f} | {med(label, 'p99_ms', 'latency'):.2f} | {vb} | {vc} | {inv_s} |")
PY
