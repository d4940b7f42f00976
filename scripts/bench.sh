#!/usr/bin/env bash
# Reproduces the table in BENCHMARKS.md: the hot-event `hold` scenario on Boxoffice (SQLite over
# REST and over gRPC, PostgreSQL), the row-lock baseline driven by pgbench, and the ceiling (a
# trivial axum endpoint), at each concurrency, all in one run on this machine. Prints a Markdown
# table.
#
#   scripts/bench.sh                    # 10 s per row, concurrency 64 and 256, 3 rounds
#   DURATION=30 CONCURRENCY="8 64 256" REPEAT=5 scripts/bench.sh
#   ROWS="ceiling sqlite postgres" scripts/bench.sh        # only these rows (default: all five)
#   BASELINE_BIN=/tmp/boxoffice-before scripts/bench.sh    # same-run A/B of a change
#   BIN=/tmp/boxoffice-after BASELINE_BIN=/tmp/boxoffice-before scripts/bench.sh
#
# Every row is measured REPEAT times, the rounds interleaved so slow phases of a noisy machine
# hit all systems alike; the table shows medians. With BASELINE_BIN (a `boxoffice` built before
# the change), each round also runs the Boxoffice rows on that binary, labelled "before", right
# before this build's: an A/B measured in one run, with the ratio per round.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-"64 256"}
REPEAT=${REPEAT:-3}
ROWS=${ROWS:-"ceiling sqlite grpc postgres rowlock"}
BASELINE_BIN=${BASELINE_BIN:-}
ROUND=1
OUT=${OUT:-target/bench}
PORT=18080
GRPC_PORT=18051
CEILING_PORT=18090
rm -rf "$OUT" && mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)

# BIN: a given binary to measure (it is then not rebuilt), e.g. one of several builds of an A/B.
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release/boxoffice
fi
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

has_row() { [[ " $ROWS " == *" $1 "* ]]; }

# A server left over from an interrupted run would answer in place of the one being measured
# (the new one cannot bind its port and exits): each port must be free before its server starts.
port_free() { # $1 port
  curl -s -o /dev/null "http://127.0.0.1:$1/" || return 0
  echo "something already answers on 127.0.0.1:$1 (a server left over from an earlier run?)" >&2
  exit 1
}

# A server that exited right after starting must stop the run too.
alive() { # $1 pid, $2 what, $3 its log
  kill -0 "$1" 2>/dev/null && return 0
  echo "$2 exited at start; the end of $3:" >&2
  tail -n 3 "$3" >&2
  exit 1
}

start_boxoffice() { # $1 = database url, [$2 = binary]
  port_free "$PORT"
  BOXOFFICE_CONFIG="$OUT/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$PORT BOXOFFICE_GRPC__ADDR=127.0.0.1:$GRPC_PORT BOXOFFICE_DATABASE__URL="$1" BOXOFFICE_SEED__DEMO_DATA=false BOXOFFICE_ADMIN__PASSWORD="$ADMIN_PASSWORD" \
    BOXOFFICE_MAIL__DIR="$OUT/mail" BOXOFFICE_DATABASE__MAX_CONNECTIONS=16 RUST_LOG=warn \
    "${2:-$BIN}" serve >>"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  wait_ready "http://127.0.0.1:$PORT/readyz"
}

# Every row reports the CPU its measured phase cost, per granted hold: the server process's
# (--server-pid), PostgreSQL's (all its processes) and the harness's own, as all share 2 cores.
loadtest() { # $1 label, $2 url, $3 scenario, $4 concurrency, $5 server pid, [$6 database url], [more loadtest flags]
  local file="$OUT/$(echo "$1" | tr ' =/' '___')-r$ROUND.json"
  "$BIN" loadtest --url "$2" --scenario "$3" -c "$4" -d "$DURATION" --users 64 --admin-password "$ADMIN_PASSWORD" --quiet \
    --label "$1" --json "$file" --server-pid "$5" --database-process postgres ${6:+--database-url "$6"} "${@:7}" \
    | tee -a "$OUT/loadtest.log"
}

# CPU ticks (user + system, 1/100 s) of every PostgreSQL process, with the children each has
# reaped (pgbench's backends exit with their connections; the postmaster collects their time).
postgres_cpu() {
  local total=0 pid
  for pid in $(pgrep -x postgres); do
    total=$((total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

for ROUND in $(seq 1 "$REPEAT"); do
echo "#### round $ROUND of $REPEAT"

if has_row ceiling; then
echo "== ceiling: trivial axum endpoint =="
port_free "$CEILING_PORT"
"$BIN" ceiling-server --addr 127.0.0.1:$CEILING_PORT >"$OUT/ceiling.log" 2>&1 &
CEILING_PID=$!
sleep 0.5
alive "$CEILING_PID" "the ceiling server" "$OUT/ceiling.log"
for c in $CONCURRENCY; do loadtest "ceiling c=$c" "http://127.0.0.1:$CEILING_PORT" ceiling "$c" "$CEILING_PID"; done
kill "$CEILING_PID"; wait "$CEILING_PID" 2>/dev/null || true
fi

# The Boxoffice rows, on the baseline binary first when there is one ("before"), then this build.
for WHO in ${BASELINE_BIN:+before} boxoffice; do
SERVER_BIN=$BIN
[ "$WHO" = before ] && SERVER_BIN=$BASELINE_BIN

if has_row sqlite || has_row grpc; then
echo "== $WHO, embedded (SQLite) =="
SQLITE_URL="sqlite://$OUT/boxoffice.db?mode=rwc"
rm -f "$OUT"/boxoffice.db*
start_boxoffice "$SQLITE_URL" "$SERVER_BIN"
for c in $CONCURRENCY; do
  has_row sqlite && loadtest "$WHO sqlite c=$c" "http://127.0.0.1:$PORT" hold "$c" "$SERVER_PID" "$SQLITE_URL"
  # The same hold over the gRPC API, on the same server, right after.
  has_row grpc && loadtest "$WHO sqlite grpc c=$c" "http://127.0.0.1:$PORT" hold "$c" "$SERVER_PID" "$SQLITE_URL" --grpc --grpc-url "http://127.0.0.1:$GRPC_PORT"
done
stop_server
fi

if has_row postgres; then
echo "== $WHO on PostgreSQL =="
psql -q "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS boxoffice_bench' -c 'CREATE DATABASE boxoffice_bench'
start_boxoffice "$PG_BASE/boxoffice_bench" "$SERVER_BIN"
for c in $CONCURRENCY; do loadtest "$WHO postgres c=$c" "http://127.0.0.1:$PORT" hold "$c" "$SERVER_PID" "$PG_BASE/boxoffice_bench"; done
stop_server
fi
done

if has_row rowlock; then
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
  PG_CPU_BEFORE=$(postgres_cpu)
  pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "$c" -j 2 -T "$DURATION" -f "$OUT/rowlock.sql" \
    -l --log-prefix="$OUT/pgbench_log" rowlock_bench >"$OUT/pgbench-$c.txt" 2>&1
  PG_TICKS=$(($(postgres_cpu) - PG_CPU_BEFORE))
  python3 - "$OUT" "$c" "$ROUND" "$PG_TICKS" <<'PY'
import glob, json, sys
out, c, rnd, ticks = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
lat = sorted(int(l.split()[2]) for f in glob.glob(f"{out}/pgbench_log*") for l in open(f))
text = open(f"{out}/pgbench-{c}.txt").read()
tps = float(next(l for l in text.splitlines() if l.startswith("tps")).split()[2])
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000
done_tx = len(lat)
cpu = {"database_s": ticks / 100, "database_us_per_granted": ticks / 100 * 1e6 / max(done_tx, 1)}
json.dump({"label": f"rowlock pgbench c={c}", "concurrency": c, "requests_per_s": tps, "granted_per_s": tps, "cpu": cpu,
           "latency": {"p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": lat[-1] / 1000},
           "statuses": {}, "invariant": None}, open(f"{out}/rowlock_pgbench_c_{c}-r{rnd}.json", "w"))
print(f"rowlock pgbench c={c}: {tps:.0f} tps, p99 {q(0.99):.2f} ms, postgres {cpu['database_us_per_granted']:.0f} µs/tx")
PY
done
fi

done

python3 - "$OUT" "$CONCURRENCY" <<'PY'
import glob, json, statistics, sys
out, conc = sys.argv[1], sys.argv[2].split()
runs = {}
for f in glob.glob(f"{out}/*-r*.json"):
    d = json.load(open(f)); d["_round"] = int(f.rsplit("-r", 1)[1].split(".")[0])
    runs.setdefault(d["label"], []).append(d)
def med(label, key, sub=None):
    vals = [(d[sub][key] if sub else d[key]) for d in runs.get(label, [])]
    return statistics.median(vals) if vals else None
print()
def cpu(label, key):
    vals = [d["cpu"][key] for d in runs.get(label, []) if d.get("cpu", {}).get(key) is not None]
    return f"{statistics.median(vals):.0f}" if vals else ""
print("| connections | system | rounds | requests/s | granted holds/s | p50 ms | p99 ms | vs row-lock | vs ceiling | server µs/hold | postgres µs/hold | harness µs/req | invariant |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for c in conc:
    base = med(f"rowlock pgbench c={c}", "granted_per_s")
    ceil = med(f"ceiling c={c}", "requests_per_s")
    systems = ["sqlite", "sqlite grpc", "postgres"]
    labels = [f"{who} {s} c={c}" for s in systems for who in ("before", "boxoffice")]
    for label in [f"ceiling c={c}", *labels, f"rowlock pgbench c={c}"]:
        if label not in runs: continue
        g, rps = med(label, "granted_per_s"), med(label, "requests_per_s")
        invs = [d.get("invariant") for d in runs[label] if d.get("invariant")]
        inv_s = "—" if not invs else ("holds in every round" if all(i["holds"] for i in invs) else "VIOLATED")
        boxo = label.startswith(("boxoffice", "before"))
        vb = f"{g / base:.1f}×" if base and boxo else ""
        vc = f"{rps / ceil:.2f}" if ceil and boxo else ""
        print(f"| {c} | {label.rsplit(' c=', 1)[0]} | {len(runs[label])} | {rps:.0f} | {g:.0f} | "
              f"{med(label, 'p50_ms', 'latency'):.2f} | {med(label, 'p99_ms', 'latency'):.2f} | {vb} | {vc} | "
              f"{cpu(label, 'server_us_per_granted')} | {cpu(label, 'database_us_per_granted')} | {cpu(label, 'harness_us_per_request')} | {inv_s} |")
# A/B: this build over the baseline, per round (rounds are interleaved, so each ratio compares
# two runs seconds apart), then the median of those ratios.
by_round = lambda label: {d["_round"]: d for d in runs.get(label, [])}
for c in conc:
    for s in systems:
        a, b = by_round(f"before {s} c={c}"), by_round(f"boxoffice {s} c={c}")
        rounds = sorted(set(a) & set(b))
        if not rounds: continue
        hold = [b[r]["granted_per_s"] / a[r]["granted_per_s"] for r in rounds]
        cpu_r = [b[r]["cpu"]["server_us_per_granted"] / a[r]["cpu"]["server_us_per_granted"] for r in rounds
                 if a[r].get("cpu", {}).get("server_us_per_granted") and b[r].get("cpu", {}).get("server_us_per_granted")]
        print(f"A/B {s} c={c}: holds/s after/before per round " + ", ".join(f"{x:.2f}" for x in hold)
              + f" (median {statistics.median(hold):.2f})"
              + (f"; server CPU per hold after/before " + ", ".join(f"{x:.2f}" for x in cpu_r)
                 + f" (median {statistics.median(cpu_r):.2f})" if cpu_r else ""))
PY
