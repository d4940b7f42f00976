#!/usr/bin/env bash
# Offline checks of the observability and deployment files, run by scripts/test.sh:
#   promtool check config / check rules / test rules   (prometheus/)
#   docker-compose config                               (docker-compose.yml; needs no engine)
#   the dashboards are JSON
#   every pinned server version matches scripts/versions.env         (scripts/check-versions.sh)
# Installs Prometheus (with promtool) and docker-compose from Debian's packages when missing.
# The live check (a real Prometheus scraping Boxoffice and evaluating every dashboard query) is
# the Rust test tests/backbone/observability.rs, which uses the prometheus binary installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  echo "observability: installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq
  # No service is started by the package in this environment; the tests start their own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

promtool check config prometheus/prometheus.yml
promtool check rules prometheus/rules/*.yml
promtool test rules prometheus/tests/*.yml
docker-compose -f docker-compose.yml config --quiet && echo "docker-compose.yml: valid"
scripts/check-versions.sh
for f in grafana/dashboards/*.json; do
  python3 -m json.tool "$f" >/dev/null && echo "$f: valid JSON"
done
