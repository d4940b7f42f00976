#!/usr/bin/env bash
# Checks every pinned server version against the one list, scripts/versions.env. Run by
# scripts/observability.sh (part of the test command).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
source scripts/versions.env

fail=0
check() { # what, found, wanted
  if [ "$2" = "$3" ]; then
    echo "versions: $1 $2"
  else
    echo "versions: $1 is ${2:-missing}, scripts/versions.env says $3" >&2
    fail=1
  fi
}
image() { sed -n "s|^ *image: $1:v\{0,1\}\(.*\)$|\1|p" docker-compose.yml | head -n1; }
gomod() { sed -n "s|^[[:space:]]*$1 v\([0-9.]*\).*|\1|p" "$2" | head -n1; }

check "scripts/kafka/pom.xml kafka.version" "$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' scripts/kafka/pom.xml)" "$KAFKA"
check "docker-compose.yml apache/kafka" "$(image apache/kafka)" "$KAFKA"
check "scripts/mailpit/go.mod" "$(gomod github.com/axllent/mailpit scripts/mailpit/go.mod)" "$MAILPIT"
check "docker-compose.yml axllent/mailpit" "$(image axllent/mailpit)" "$MAILPIT"
check "scripts/ferretdb/go.mod" "$(gomod 'require github.com/FerretDB/FerretDB' scripts/ferretdb/go.mod)" "$FERRETDB"
check "docker-compose.yml mongo" "$(image mongo)" "$MONGODB"
exit "$fail"
