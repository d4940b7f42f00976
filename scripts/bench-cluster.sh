#!/usr/bin/env bash
# Cluster mode measured (BENCHMARKS.md, "Cluster"): the hot-event `hold` scenario on PostgreSQL
# against one node (single-node mode), a cluster of one (leases and the commit fence, nothing
# forwarded) and three nodes with the connections spread over all three (two thirds of the holds
# forwarded to the event's owner); the round trip of a forwarded call from the nodes' own
# histogram; and the time from `kill -9` of an event's owner to that event answering again
# through another node. All on this machine, rounds interleaved, medians printed.
#
#   scripts/bench-cluster.sh                        # 8 s per row, 64 connections, 3 rounds
#   DURATION=10 CONCURRENCY=256 REPEAT=5 scripts/bench-cluster.sh
#
# Three nodes on two cores show what forwarding costs, not a speed-up.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8}
CONCURRENCY=${CONCURRENCY:-64}
REPEAT=${REPEAT:-3}
LEASE_TTL_MS=${LEASE_TTL_MS:-5000}
OUT=${OUT:-target/bench-cluster}
rm -rf "$OUT" && mkdir -p "$OUT"

cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/boxoffice
scripts/services.sh up postgres
ADMIN_PASSWORD=bench-passphrase-2026
JWT=bench-cluster-secret-0123456789abcdefghijkl
PG_ADMIN=$(scripts/services.sh env | sed -n 's/^export BOXOFFICE_TEST_POSTGRES_URL=//p')
PG_BASE=${PG_ADMIN%/*}
DB="$PG_BASE/boxoffice_cluster_bench"

PIDS=()
stop_nodes() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap stop_nodes EXIT

wait_ready() {
  for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server at $1 did not become ready" >&2; exit 1
}

fresh_db() {
  psql -q "$PG_ADMIN" -c 'DROP DATABASE IF EXISTS boxoffice_cluster_bench WITH (FORCE)' -c 'CREATE DATABASE boxoffice_cluster_bench'
}

# start_node NAME HTTP_PORT CLUSTER_PORT ENABLED SEEDS
start_node() {
  BOXOFFICE_CONFIG="$OUT/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$2 BOXOFFICE_GRPC__ADDR=127.0.0.1:0 BOXOFFICE_DATABASE__URL="$DB" \
    BOXOFFICE_SEED__DEMO_DATA=false BOXOFFICE_ADMIN__PASSWORD="$ADMIN_PASSWORD" BOXOFFICE_AUTH__JWT_SECRET="$JWT" \
    BOXOFFICE_MAIL__DIR="$OUT/mail-$1" BOXOFFICE_DATABASE__MAX_CONNECTIONS=16 BOXOFFICE_LIMITS__AUTH_PER_ADDRESS_PER_MINUTE=0 \
    BOXOFFICE_CLUSTER__ENABLED="$4" BOXOFFICE_CLUSTER__NODE_NAME="$1" BOXOFFICE_CLUSTER__LISTEN=127.0.0.1:$3 \
    BOXOFFICE_CLUSTER__SEEDS="$5" BOXOFFICE_CLUSTER__COOKIE=bench-cookie BOXOFFICE_CLUSTER__LEASE_TTL_MS="$LEASE_TTL_MS" \
    RUST_LOG=warn "$BIN" serve >>"$OUT/node-$1.log" 2>&1 &
  PIDS+=($!)
  echo "$1 $!" >>"$OUT/pids"
}

loadtest() { # $1 label, then --url arguments
  local label=$1; shift
  local file="$OUT/$(echo "$label" | tr ' =/' '___')-r$ROUND.json"
  "$BIN" loadtest "$@" --scenario hold -c "$CONCURRENCY" -d "$DURATION" --users 64 --admin-password "$ADMIN_PASSWORD" \
    --quiet --label "$label" --json "$file" --database-url "$DB" | tee -a "$OUT/loadtest.log" ||
    echo "(this row saw 5xx or errors: it is in the table with its count)"
}

SEEDS=127.0.0.1:14701,127.0.0.1:14702,127.0.0.1:14703
for ROUND in $(seq 1 "$REPEAT"); do
  echo "#### round $ROUND of $REPEAT"

  echo "== one node (single-node mode) =="
  fresh_db; : >"$OUT/pids"
  start_node one 18081 14701 false ""
  wait_ready http://127.0.0.1:18081/readyz
  loadtest "one node" --url http://127.0.0.1:18081
  stop_nodes

  echo "== a cluster of one (leases and the fence) =="
  fresh_db; : >"$OUT/pids"
  start_node solo 18081 14701 true 127.0.0.1:14701
  wait_ready http://127.0.0.1:18081/readyz
  loadtest "cluster of one" --url http://127.0.0.1:18081
  stop_nodes

  echo "== three nodes, connections spread over all three =="
  fresh_db; : >"$OUT/pids"
  start_node a 18081 14701 true "$SEEDS"
  wait_ready http://127.0.0.1:18081/readyz
  start_node b 18082 14702 true "$SEEDS"
  start_node c 18083 14703 true "$SEEDS"
  wait_ready http://127.0.0.1:18082/readyz
  wait_ready http://127.0.0.1:18083/readyz
  sleep 2 # the members see each other up (pings), so placement spreads over three
  loadtest "three nodes" --url http://127.0.0.1:18081 --url http://127.0.0.1:18082 --url http://127.0.0.1:18083
  # The forwarded calls' round trip, from the nodes' histograms; then kill -9 an owner.
  python3 - "$OUT" "$ROUND" "$ADMIN_PASSWORD" <<'PY'
import json, os, re, signal, sys, time, urllib.error, urllib.request, uuid
out, rnd, password = sys.argv[1], sys.argv[2], sys.argv[3]
ports = {"a": 18081, "b": 18082, "c": 18083}
pids = dict(l.split() for l in open(f"{out}/pids"))

buckets, count = {}, 0.0
for port in ports.values():
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for m in re.finditer(r'^boxoffice_cluster_forward_duration_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)$', text, re.M):
        buckets[float(m.group(1))] = buckets.get(float(m.group(1)), 0.0) + float(m.group(2))
bounds = sorted(buckets)
total = buckets[bounds[-1]] if bounds else 0
def quantile(q):  # linear inside the bucket, as histogram_quantile does
    rank, lo, below = q * total, 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == float("inf"): return lo
            return lo + (b - lo) * (rank - below) / max(buckets[b] - below, 1e-9)
        lo, below = b, buckets[b]
    return lo
fwd = {"forwarded": total, "p50_ms": quantile(0.5) * 1000, "p99_ms": quantile(0.99) * 1000}
print(f"forwarded calls: {total:.0f}, round trip p50 {fwd['p50_ms']:.2f} ms, p99 {fwd['p99_ms']:.2f} ms (histogram)")

def call(port, method, path, body=None, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r: return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e: return e.code, None
    except OSError: return 0, None
_, b = call(18081, "POST", "/api/v1/auth/login", {"login": "admin", "password": password}); admin = b["access_token"]
_, cat = call(18081, "POST", "/api/v1/categories", {"name": f"k-{uuid.uuid4()}", "kind": "paid"}, admin)
_, ev = call(18081, "POST", "/api/v1/events", {"name": f"kill-{uuid.uuid4()}", "category_id": cat["id"], "price_cents": 1000,
             "currency": "EUR", "starts_at": "2030-01-01T20:00:00Z", "total_slots": 100000, "max_per_order": 4,
             "hold_seconds": 600, "max_per_person": 0}, admin)
name = f"k{uuid.uuid4().hex[:10]}"
call(18081, "POST", "/api/v1/auth/register", {"username": name, "email": f"{name}@example.com", "password": "Corr3ct-Horse-Battery"})
_, b = call(18081, "POST", "/api/v1/auth/login", {"login": name, "password": "Corr3ct-Horse-Battery"}); fan = b["access_token"]
order = lambda port: call(port, "POST", "/api/v1/orders", {"event_id": ev["id"], "quantity": 1}, fan)[0]
assert order(18081) == 201
_, own = call(18081, "GET", f"/api/v1/cluster/owner/{ev['id']}", None, admin)
owner = own["owner"]; survivor = next(p for n, p in ports.items() if n != owner)
os.kill(int(pids[owner]), signal.SIGKILL)
killed = time.monotonic()
while order(survivor) not in (201, 409):
    time.sleep(0.02)
served = time.monotonic() - killed
print(f"kill -9 of {owner} (owner) -> served again through another node after {served:.2f} s (lease TTL {os.environ.get('LEASE_TTL_MS', '5000')} ms)")
json.dump({"forward": fwd, "kill_to_served_s": served}, open(f"{out}/cluster-r{rnd}.json", "w"))
PY
  stop_nodes
done

python3 - "$OUT" "$CONCURRENCY" "$LEASE_TTL_MS" <<'PY'
import glob, json, statistics, sys
out, c, ttl = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for f in glob.glob(f"{out}/*-r*.json"):
    if "/cluster-r" in f: continue
    d = json.load(open(f)); runs.setdefault(d["label"], []).append(d)
med = lambda label, f: statistics.median(f(d) for d in runs[label])
one = med("one node", lambda d: d["granted_per_s"])
print()
print("| connections | system | rounds | granted holds/s | p50 ms | p99 ms | vs one node | 5xx | invariant |")
print("|---|---|---|---|---|---|---|---|---|")
for label in ["one node", "cluster of one", "three nodes"]:
    g = med(label, lambda d: d["granted_per_s"])
    five = sum(n for d in runs[label] for s, n in d["statuses"].items() if s.startswith("5"))
    inv = "holds in every round" if all(d["invariant"] and d["invariant"]["holds"] for d in runs[label]) else "VIOLATED"
    print(f"| {c} | {label} | {len(runs[label])} | {g:.0f} | {med(label, lambda d: d['latency']['p50_ms']):.2f} | "
          f"{med(label, lambda d: d['latency']['p99_ms']):.2f} | {g / one:.2f} | {five} | {inv} |")
cl = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/cluster-r*.json"))]
print()
print(f"Forwarded call round trip (three nodes, c={c}, nodes' histogram, median of {len(cl)} rounds): "
      f"p50 {statistics.median(x['forward']['p50_ms'] for x in cl):.2f} ms, p99 {statistics.median(x['forward']['p99_ms'] for x in cl):.2f} ms")
print(f"kill -9 of the owner to served again (lease TTL {ttl} ms): "
      + ", ".join(f"{x['kill_to_served_s']:.2f} s" for x in cl) + f"; median {statistics.median(x['kill_to_served_s'] for x in cl):.2f} s")
PY
