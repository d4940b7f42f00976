#!/usr/bin/env bash
# Validates the REST API's own description (/openapi.json, OpenAPI 3.1) with openapi-spec-validator,
# then fuzzes the API from it with schemathesis (both from PyPI), bounded, once with a customer's
# token and once with an admin's, with every check schemathesis has (server errors, status codes,
# content types and headers the document does not declare, response schemas, schema-valid
# requests rejected, schema-invalid ones accepted, ...): an invalid document or any failed check
# fails the run. scripts/fuzz_hooks.py teaches it the rules a schema cannot state. Part of the
# test command. FUZZ_EXAMPLES (default 25) bounds the examples per operation; FUZZ_CHECKS (default
# all) picks the checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice/target}

venv=$HOME/.cache/boxoffice/schemathesis-$SCHEMATHESIS
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "fuzz: installing schemathesis $SCHEMATHESIS into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS"
fi
# The validator in a venv of its own: its dependencies must not move schemathesis's.
validator=$HOME/.cache/boxoffice/openapi-spec-validator-$OPENAPI_SPEC_VALIDATOR
if [ ! -x "$validator/bin/openapi-spec-validator" ]; then
  echo "fuzz: installing openapi-spec-validator $OPENAPI_SPEC_VALIDATOR into $validator"
  python3 -m venv "$validator"
  "$validator/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR"
fi

cargo build -q --bin boxoffice
bin=$CARGO_TARGET_DIR/debug/boxoffice
out=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
admin_password=fuzz-passphrase-$RANDOM
server=
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$out"; }
trap cleanup EXIT

# The embedded defaults, with demo data to find, cheap hashing, and no per-address limit (every
# request comes from here; the limit itself is tested in tests/api/sessions.rs).
(cd "$out" && BOXOFFICE_CONFIG="$out/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$port BOXOFFICE_GRPC__ADDR=127.0.0.1:0 \
  BOXOFFICE_ADMIN__PASSWORD="$admin_password" BOXOFFICE_AUTH__ARGON2_MEMORY_KIB=64 \
  BOXOFFICE_AUTH__ARGON2_ITERATIONS=1 BOXOFFICE_LIMITS__AUTH_PER_ADDRESS_PER_MINUTE=0 \
  BOXOFFICE_PAYMENT__SLOW_MS=200 RUST_LOG=warn "$bin" serve >"$out/server.log" 2>&1) &
server=$!
for _ in $(seq 1 300); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/readyz" >/dev/null || { echo "fuzz: the server did not start" >&2; cat "$out/server.log" >&2; exit 1; }

token() { # login password
  curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"login\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
curl -fsS -XPOST "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"fuzz@example.com","username":"fuzzer","password":"correct horse battery staple"}' >/dev/null
user_token=$(token fuzzer "correct horse battery staple")
admin_token=$(token admin "$admin_password")

echo "== openapi-spec-validator $OPENAPI_SPEC_VALIDATOR: /openapi.json =="
curl -fsS "$base/openapi.json" >"$out/openapi.json"
"$validator/bin/openapi-spec-validator" "$out/openapi.json"

status=0
for who in user admin; do
  if [ "$who" = user ]; then t=$user_token; else t=$admin_token; fi
  echo "== schemathesis $SCHEMATHESIS as $who: checks ${FUZZ_CHECKS:-all} =="
  # Streams never end and logout would end the token the run uses; both have their own tests.
  # One worker: with two, schemathesis now and then dies in CPython's AST compiler ("SystemError:
  # AST constructor recursion depth mismatch", two threads compiling at once), failing the run
  # for nothing the API did.
  SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="$PWD/scripts" "$venv/bin/schemathesis" run "$base/openapi.json" --checks "${FUZZ_CHECKS:-all}" \
    --max-examples "${FUZZ_EXAMPLES:-25}" --workers 1 --seed 20261202 --request-timeout 20 \
    --suppress-health-check all --exclude-path-regex 'stream|logout' \
    -H "Authorization: Bearer $t" --warnings off || status=1
done
if grep -qiE 'panicked|internal error' "$out/server.log"; then
  echo "fuzz: the server logged a panic or an internal error:" >&2
  grep -iE 'panicked|internal error' "$out/server.log" | head -20 >&2
  status=1
fi
exit "$status"
