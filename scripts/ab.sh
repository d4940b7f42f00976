#!/usr/bin/env bash
# Same-run A/B of the hot path against a base revision: builds the base and the working tree,
# then runs bench.sh's Boxoffice rows on both (BASELINE_BIN), the base's right before the working
# tree's in each round, so a noisy machine's slow phases hit both alike. One load generator for
# both: the working tree's `boxoffice loadtest`. Prints medians and per-round ratios.
#
#   scripts/ab.sh 6ae2c74                       # 8 s per run, 64 connections, 3 rounds
#   DURATION=10 CONCURRENCY="64 256" REPEAT=5 scripts/ab.sh HEAD~3
#   BACKENDS=postgres SKIP_BUILD=1 REPEAT=5 scripts/ab.sh 6ae2c74   # again, same binaries
#
# The base is built in a git worktree under $OUT with the same target directory, so only the
# boxoffice crate itself is compiled again, not its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:?usage: scripts/ab.sh BASE_REVISION}
DURATION=${DURATION:-8}
CONCURRENCY=${CONCURRENCY:-64}
REPEAT=${REPEAT:-3}
BACKENDS=${BACKENDS:-"sqlite postgres"}
OUT=${OUT:-$PWD/target/ab}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
rm -rf "$OUT/runs" && mkdir -p "$OUT/runs"

if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -x "$OUT/new" ] || [ ! -x "$OUT/base" ]; then
  echo "== building the working tree and $BASE (release) =="
  cargo build --release --quiet
  cp "$CARGO_TARGET_DIR/release/boxoffice" "$OUT/new"
  git worktree remove --force "$OUT/base-src" 2>/dev/null || rm -rf "$OUT/base-src"
  git worktree add --detach --force "$OUT/base-src" "$BASE" >/dev/null
  (cd "$OUT/base-src" && cargo build --release --quiet)
  cp "$CARGO_TARGET_DIR/release/boxoffice" "$OUT/base"
  git worktree remove --force "$OUT/base-src"
  # The base's build left its binary at target/release/boxoffice: put the working tree's back.
  cp "$OUT/new" "$CARGO_TARGET_DIR/release/boxoffice"
fi

# The measuring is bench.sh's (its Boxoffice rows, the base's "before" right before this build's
# in every round, with CPU per hold and the per-round ratios).
BIN="$OUT/new" BASELINE_BIN="$OUT/base" ROWS="$BACKENDS" DURATION=$DURATION CONCURRENCY=$CONCURRENCY REPEAT=$REPEAT \
  OUT="$OUT/runs" scripts/bench.sh
