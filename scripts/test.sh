#!/usr/bin/env bash
# The test command. Starts the real servers (scripts/services.sh: PostgreSQL, Kafka, FerretDB,
# Mailpit) and checks the Prometheus, Grafana and compose files, then runs every test with the
# embedded database (SQLite), and the HTTP and backbone
# suites again against PostgreSQL, with the three-node cluster tests (real processes). The backbone tests use Kafka, MongoDB's protocol and SMTP in
# both passes; in CI they fail rather than skip if the servers are missing. Then the API is fuzzed
# from its OpenAPI document on both databases (scripts/fuzz.sh, schemathesis), the Postman
# collection it ships is run with newman (scripts/postman.sh), and last come the web page's
# end-to-end tests in Debian's headless Chromium (scripts/web-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# Its output must read well in a CI log: no terminal escape codes (Maven wrote some once).
services_log=$(mktemp)
scripts/services.sh up 2>&1 | tee "$services_log"
if grep -q $'\x1b' "$services_log"; then
  echo "scripts/services.sh wrote terminal escape codes to its output" >&2
  exit 1
fi
# promtool, docker-compose config, dashboards as JSON; installs the prometheus binary that the
# backbone suite's live dashboard test runs.
scripts/observability.sh
# Only the test variables: the apps under test are configured by the tests themselves.
eval "$(scripts/services.sh env | grep '^export BOXOFFICE_TEST_')"
pg_url=$BOXOFFICE_TEST_POSTGRES_URL

echo "== all tests, SQLite (embedded database) =="
# The three-node cluster tests need PostgreSQL (cluster mode refuses SQLite): they run below.
env -u BOXOFFICE_TEST_POSTGRES_URL cargo test --workspace --all-targets -- --skip three_nodes

echo "== HTTP and backbone suites, and three-node clusters, on PostgreSQL ($pg_url) =="
BOXOFFICE_TEST_POSTGRES_URL="$pg_url" cargo test --test api --test backbone --test cluster

echo "== the API fuzzed from its OpenAPI document (schemathesis, every check; SQLite and PostgreSQL) =="
BOXOFFICE_TEST_POSTGRES_URL="$pg_url" scripts/fuzz.sh

echo "== the shipped Postman collection, run with newman =="
scripts/postman.sh

echo "== web page in headless Chromium (Playwright) =="
scripts/web-test.sh
