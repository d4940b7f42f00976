#!/usr/bin/env bash
# End-to-end tests of the web page in a real browser: Debian's headless Chromium driven by
# Playwright (playwright-core, pinned in tests/web/package-lock.json). Installs Chromium, Node.js
# and npm from Debian's packages and the npm packages when missing, builds the boxoffice binary, then runs tests/web/*.test.mjs, which
# start their own Boxoffice (embedded mode) on a free loopback port.
#   SCREENSHOT_DIR=docs scripts/web-test.sh   refreshes the screenshots in docs/
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "web-test: installing chromium from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "web-test: installing nodejs and npm from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d tests/web/node_modules/playwright-core ]; then
  (cd tests/web && npm ci --no-audit --no-fund)
fi

cargo build --bin boxoffice
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export BOXOFFICE_BIN="$target_dir/debug/boxoffice"
if [ -n "${SCREENSHOT_DIR:-}" ]; then
  mkdir -p "$SCREENSHOT_DIR"
  SCREENSHOT_DIR=$(cd "$SCREENSHOT_DIR" && pwd)
  export SCREENSHOT_DIR
fi
cd tests/web
# --test-concurrency needs Node 20.10 or later (Debian 12 ships 18); one file runs alone anyway.
concurrency=()
if node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)'; then
  concurrency=(--test-concurrency=1)
fi
node --test "${concurrency[@]}" booking.test.mjs
