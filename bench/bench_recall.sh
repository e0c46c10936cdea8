#!/usr/bin/env bash
# bench/bench_recall.sh - recall memory at a million messages: bulk insert
# rate and text search latency, each against a bare FTS5 reference in the
# same run (see bench/bench_recall.c for what is measured and how).
#
#   ./bench/bench_recall.sh [--quick] [--messages N] [--queries N] [--keep]
#   ./bench/bench_recall.sh --reuse DIR [--queries N]
#
#   --quick       50,000 messages, 60 queries (~30 s)
#   --messages N  default 1,000,000 (~1 GB in $TMPDIR, ~2 min to insert on a
#                 2-vCPU VM)
#   --queries N   default 300 (each runs six ways, twice: warm-up and timed)
#   --keep        keep the scratch directory (stores, reference, JSON)
#   --reuse DIR   search only, on a scratch directory an earlier run kept
#                 (--keep prints it): no insert, the stores are not rebuilt
#
# The text comes from the LoCoMo conversations in ../shared/data/locomo-dev
# (relative to the repository; LOCOMO_DIR overrides).
# Environment: BENCH_BUILD_DIR (default build-bench: its own RelWithDebInfo
# tree), TMPDIR (where the scratch directory goes: a real disk, not tmpfs).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
LOCOMO_DIR=${LOCOMO_DIR:-../shared/data/locomo-dev}
args=()
keep=0
reuse=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) args+=(--messages 50000 --queries 60 --single 10000) ;;
    --messages) args+=(--messages "$2"); shift ;;
    --queries) args+=(--queries "$2"); shift ;;
    --keep) keep=1 ;;
    --reuse) reuse=$2; shift ;;
    *) echo "usage: bench/bench_recall.sh [--quick] [--messages N] [--queries N] [--keep]" \
            "| --reuse DIR [--queries N]" >&2
       exit 2 ;;
  esac
  shift
done
[ -d "$LOCOMO_DIR" ] || { echo "bench_recall.sh: no LoCoMo data in $LOCOMO_DIR" >&2; exit 1; }

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target bench_recall | tail -1

echo "== bench_recall ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -sr)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg))"
if [ -n "$reuse" ]; then
  [ -d "$reuse/run/store" ] || { echo "bench_recall.sh: no kept run in $reuse" >&2; exit 1; }
  "$BUILD_DIR/bench_recall" --reuse "${args[@]}" --json "$reuse/recall-reuse.json" \
    "$LOCOMO_DIR" "$reuse/run"
  echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-bench-recall.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$BUILD_DIR/bench_recall" "${args[@]}" --json "$WORK/recall.json" "$LOCOMO_DIR" "$WORK/run"
echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
