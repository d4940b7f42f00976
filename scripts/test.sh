#!/usr/bin/env bash
# The test command. Runs every test on the embedded path (SQLite), then the HTTP suite again
# against a real PostgreSQL started by scripts/services.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh up
pg_url=$(scripts/services.sh env | sed -n 's/^export BOXOFFICE_TEST_POSTGRES_URL=//p')

echo "== tests on SQLite (embedded) =="
env -u BOXOFFICE_TEST_POSTGRES_URL cargo test --all-targets

echo "== HTTP suite on PostgreSQL ($pg_url) =="
BOXOFFICE_TEST_POSTGRES_URL="$pg_url" cargo test --test api
