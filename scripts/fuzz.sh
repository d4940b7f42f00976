#!/usr/bin/env bash
# Validates the REST API's own description (/openapi.json, OpenAPI 3.1) with openapi-spec-validator,
# then fuzzes the API from it with schemathesis (both from PyPI), bounded, once with a customer's
# token and once with an admin's, with every check schemathesis has (server errors, status codes,
# content types and headers the document does not declare, response schemas, schema-valid
# requests rejected, schema-invalid ones accepted, ...): an invalid document or any failed check
# fails the run. scripts/fuzz_hooks.py teaches it the rules a schema cannot state. Part of the
# test command.
#
# Both databases: a server on SQLite (the embedded default), and, when BOXOFFICE_TEST_POSTGRES_URL
# is set (scripts/test.sh sets it), one on a new database of that PostgreSQL server, dropped at
# the end. Each phase runs with credentials of its own, made just before it (a new account for
# the customer, a fresh log-in for the admin), and the run cannot end its own session: log-outs
# are left out, and the hooks keep the run's account from being deleted or given a new password.
# A run that lost its token anyway fails: more than FUZZ_MAX_401_PERCENT (default 5) of the
# answers to requests that carried the phase's token were 401. (It once changed its own password
# early on; 43 % of the cases after were 401 "token revoked", and it still said "No issues
# found".)
#
# FUZZ_EXAMPLES (default 25) bounds the examples per operation; FUZZ_CHECKS (default all) picks
# the checks; BOXOFFICE_BIN runs that binary instead of building one.
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

bin=${BOXOFFICE_BIN:-}
if [ -z "$bin" ]; then
  cargo build -q --bin boxoffice
  bin=$CARGO_TARGET_DIR/debug/boxoffice
fi
work=$(mktemp -d)
server=
pg_admin_url=${BOXOFFICE_TEST_POSTGRES_URL:-}
pg_database=
stop_server() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=; fi; }
cleanup() {
  stop_server
  if [ -n "$pg_database" ]; then psql -q "$pg_admin_url" -c "DROP DATABASE IF EXISTS $pg_database" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start_server() { # directory [database-url (default: the embedded SQLite under directory/var)]
  local out=$1 port database=()
  if [ -n "${2:-}" ]; then database=(BOXOFFICE_DATABASE__URL="$2"); fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base=http://127.0.0.1:$port
  admin_password=fuzz-passphrase-$RANDOM
  mkdir -p "$out"
  # The embedded defaults, with demo data to find, cheap hashing, and no per-address limit (every
  # request comes from here; the limit itself is tested in tests/api/sessions.rs).
  (cd "$out" && exec env "${database[@]}" BOXOFFICE_CONFIG="$out/none.toml" BOXOFFICE_HTTP__ADDR=127.0.0.1:$port \
    BOXOFFICE_GRPC__ADDR=127.0.0.1:0 BOXOFFICE_ADMIN__PASSWORD="$admin_password" BOXOFFICE_AUTH__ARGON2_MEMORY_KIB=64 \
    BOXOFFICE_AUTH__ARGON2_ITERATIONS=1 BOXOFFICE_LIMITS__AUTH_PER_ADDRESS_PER_MINUTE=0 \
    BOXOFFICE_PAYMENT__SLOW_MS=200 RUST_LOG=warn "$bin" serve >"$out/server.log" 2>&1) &
  server=$!
  for _ in $(seq 1 300); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$base/readyz" >/dev/null || { echo "fuzz: the server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
}

login() { # login password: prints the access token
  curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"login\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
subject() { # token: prints its account's id (the `sub` claim)
  python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["sub"])' "$1"
}

# Which share of the answers to the phase's own token were 401, and whether that is too many.
count_401s() { # answers-file label
  python3 - "$1" "$2" "${FUZZ_MAX_401_PERCENT:-5}" <<'EOF'
import collections, json, sys
path, label, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
answers = [json.loads(line) for line in open(path, encoding="utf-8")] if path else []
own = [a for a in answers if a["own_token"]]
refused = [a for a in own if a["status"] == 401]
share = 100 * len(refused) / len(own) if own else 100.0
print(f"fuzz: {label}: {len(answers)} answers, {len(own)} to the phase's token, {len(refused)} of those 401 ({share:.1f} %)")
if share > limit:
    worst = collections.Counter(a["operation"] for a in refused).most_common(5)
    print(f"fuzz: {label}: more than {limit:g} % of the answers to its token were 401: the run lost its session "
          f"(most on {worst})", file=sys.stderr)
    sys.exit(1)
EOF
}

status=0
backends=sqlite
if [ -n "$pg_admin_url" ]; then backends="sqlite postgres"; fi
for backend in $backends; do
  if [ "$backend" = postgres ]; then
    command -v psql >/dev/null || { echo "fuzz: psql is needed to create the PostgreSQL database" >&2; exit 1; }
    pg_database=bx_fuzz_$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
    psql -q -v ON_ERROR_STOP=1 "$pg_admin_url" -c "CREATE DATABASE $pg_database" >/dev/null
    start_server "$work/$backend" "${pg_admin_url%/*}/$pg_database"
  else
    start_server "$work/$backend"
  fi

  echo "== openapi-spec-validator $OPENAPI_SPEC_VALIDATOR: /openapi.json ($backend) =="
  curl -fsS "$base/openapi.json" >"$work/openapi.json"
  "$validator/bin/openapi-spec-validator" "$work/openapi.json" || status=1

  for who in user admin; do
    # Credentials of the phase's own, made now: nothing an earlier phase did can have spent them.
    if [ "$who" = user ]; then
      curl -fsS -XPOST "$base/api/v1/auth/register" -H 'content-type: application/json' \
        -d '{"email":"fuzz@example.com","username":"fuzzer","password":"correct horse battery staple"}' >/dev/null
      t=$(login fuzzer "correct horse battery staple")
    else
      t=$(login admin "$admin_password")
    fi
    answers=$work/$backend-$who.answers
    : >"$answers"
    echo "== schemathesis $SCHEMATHESIS on $backend as $who: checks ${FUZZ_CHECKS:-all} =="
    # Streams never end and log-outs would end the token the run uses; both have their own tests.
    # One worker: with two, schemathesis now and then dies in CPython's AST compiler ("SystemError:
    # AST constructor recursion depth mismatch", two threads compiling at once), failing the run
    # for nothing the API did.
    FUZZ_SELF_ID=$(subject "$t") FUZZ_AUTHORIZATION="Bearer $t" FUZZ_ANSWERS=$answers \
      SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="$PWD/scripts" "$venv/bin/schemathesis" run "$base/openapi.json" \
      --checks "${FUZZ_CHECKS:-all}" --max-examples "${FUZZ_EXAMPLES:-25}" --workers 1 --seed 20261202 \
      --request-timeout 20 --suppress-health-check all --exclude-path-regex 'stream|logout' \
      -H "Authorization: Bearer $t" --warnings off || status=1
    count_401s "$answers" "$backend as $who" || status=1
  done

  stop_server
  if grep -qiE 'panicked|internal error' "$work/$backend/server.log"; then
    echo "fuzz: the server on $backend logged a panic or an internal error:" >&2
    grep -iE 'panicked|internal error' "$work/$backend/server.log" | head -20 >&2
    status=1
  fi
done
exit "$status"
