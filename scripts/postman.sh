#!/usr/bin/env bash
# Runs the Postman collection the server ships (GET /postman.json, src/http/postman.rs) with
# newman (npm), as a user would after importing it: against a fresh server, with an environment
# that holds only what the user fills in (the base URL and the admin's log-in), from the first
# request to the last. Part of the test command.
#
# Every answer is checked: no request is refused as malformed (400, 413, 415, 422: a body, header
# or parameter of the collection the server does not take, like the empty Idempotency-Key it once
# sent), none gets a 5xx, and every request that carries the token gets past it (no 401: "Log in"
# ran first and stored it). Other answers are the API's to give: a placeholder id is a 404, a
# second sign-up with the example account a 409, a log-in with the old systems' example
# credentials a 401. Left out of the run: the event streams (they never end) and the log-outs
# (they would end the session the rest of the run uses); tests/api covers both.
#
# NEWMAN in scripts/versions.env pins the version, installed under ~/.cache/boxoffice;
# BOXOFFICE_BIN runs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice/target}

prefix=$HOME/.cache/boxoffice/newman-$NEWMAN
newman=$prefix/node_modules/.bin/newman
if [ ! -x "$newman" ]; then
  command -v npm >/dev/null || { echo "postman: npm is needed to install newman" >&2; exit 1; }
  echo "postman: installing newman $NEWMAN into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "newman@$NEWMAN" >/dev/null
fi

bin=${BOXOFFICE_BIN:-}
if [ -z "$bin" ]; then
  cargo build -q --bin boxoffice
  bin=$CARGO_TARGET_DIR/debug/boxoffice
fi
out=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
admin_password=newman-passphrase-$RANDOM
server=
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$out"; }
trap cleanup EXIT

# The embedded defaults (compat routes on, demo data), cheap hashing, and no per-address limit on
# log-ins and sign-ups (the collection has a dozen; the limit is tested in tests/api/sessions.rs).
(cd "$out" && BOXOFFICE_CONFIG="$out/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$port BOXOFFICE_GRPC__ADDR=127.0.0.1:0 \
  BOXOFFICE_ADMIN__PASSWORD="$admin_password" BOXOFFICE_AUTH__ARGON2_MEMORY_KIB=64 \
  BOXOFFICE_AUTH__ARGON2_ITERATIONS=1 BOXOFFICE_LIMITS__AUTH_PER_ADDRESS_PER_MINUTE=0 \
  BOXOFFICE_PAYMENT__SLOW_MS=200 RUST_LOG=warn exec "$bin" serve >"$out/server.log" 2>&1) &
server=$!
for _ in $(seq 1 300); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/readyz" >/dev/null || { echo "postman: the server did not start" >&2; cat "$out/server.log" >&2; exit 1; }

curl -fsS "$base/postman.json" >"$out/shipped.json"
# The collection as shipped, less the requests left out above, plus the checks; and the
# environment a user would fill in.
python3 - "$out" "$base" "$admin_password" <<'EOF'
import json, sys
out, base, password = sys.argv[1:]
collection = json.load(open(f"{out}/shipped.json"))
CHECKS = [
    "const code = pm.response.code;",
    "pm.test('not refused as malformed (400, 413, 415, 422)', () => pm.expect([400, 413, 415, 422]).to.not.include(code));",
    "pm.test('no server error', () => pm.expect(code).to.be.below(500));",
]
TOKEN_CHECK = ["pm.test('the token is accepted (no 401)', () => pm.expect(pm.response.code).to.not.equal(401));"]
left_out = []
for folder in collection["item"]:
    kept = []
    for item in folder["item"]:
        path = "/".join(item["request"]["url"]["path"])
        if path.endswith("stream") or path.endswith("logout"):
            left_out.append(f'{item["request"]["method"]} /{path}')
            continue
        if item["request"].get("auth", {}).get("type") != "noauth":
            item.setdefault("event", []).append({"listen": "test", "script": {"type": "text/javascript", "exec": TOKEN_CHECK}})
        kept.append(item)
    folder["item"] = kept
collection["event"] = collection.get("event", []) + [{"listen": "test", "script": {"type": "text/javascript", "exec": CHECKS}}]
json.dump(collection, open(f"{out}/run.json", "w"))
environment = {
    "name": "fresh Boxoffice",
    "values": [
        {"key": "baseUrl", "value": base, "enabled": True},
        {"key": "login", "value": "admin", "enabled": True},
        {"key": "password", "value": password, "enabled": True},
    ],
}
json.dump(environment, open(f"{out}/environment.json", "w"))
print(f"postman: left out of the run: {', '.join(left_out)}")
EOF

echo "== newman $NEWMAN: the Postman collection from /postman.json =="
status=0
# Its failure table keeps terminal colours even with `--color off`; a CI log has no use for them.
"$newman" run "$out/run.json" -e "$out/environment.json" --reporters cli,json --reporter-json-export "$out/report.json" \
  --timeout-request 20000 --color off --disable-unicode | sed 's/\x1b\[[0-9;]*m//g' || status=1
python3 - "$out/report.json" <<'EOF'
import collections, json, sys
run = json.load(open(sys.argv[1]))["run"]
stats = run["stats"]
codes = collections.Counter(e["response"]["code"] for e in run["executions"] if e.get("response"))
print(f"postman: {stats['requests']['total']} requests ({dict(sorted(codes.items()))}), "
      f"{stats['assertions']['total'] - stats['assertions']['failed']} of {stats['assertions']['total']} checks passed")
EOF
if grep -qiE 'panicked|internal error' "$out/server.log"; then
  echo "postman: the server logged a panic or an internal error:" >&2
  grep -iE 'panicked|internal error' "$out/server.log" | head -20 >&2
  status=1
fi
exit "$status"
