#!/usr/bin/env bash
# End-to-end tests of the web page in a real browser: Debian's headless Chromium driven by
# Playwright (playwright-core, pinned in tests/web/package-lock.json). Installs Chromium and the
# npm packages when missing, builds the boxoffice binary, then runs tests/web/*.test.mjs, which
# start their own Boxoffice (embedded mode) on a free loopback port.
#   SCREENSHOT_DIR=docs scripts/web-test.sh   refreshes the screenshots in docs/
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "web-test: installing chromium from Debian's packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
command -v node >/dev/null || { echo "web-test: node is required" >&2; exit 1; }
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
node --test --test-concurrency=1 booking.test.mjs
