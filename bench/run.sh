#!/usr/bin/env bash
# bench/run.sh - build, run every benchmark, print the results table, clean up.
#
#   ./bench/run.sh [--quick] [--keep]
#
#   --quick   a smoke run: 20k messages, 2k passages, 300 turns, 10 send runs
#   --keep    keep the scratch directory (data dirs and JSON results)
#
# Environment: BENCH_BUILD_DIR (default build-bench: its own RelWithDebInfo
# tree, so a concurrent build in build/ is left alone), TMPDIR (where the
# scratch directory goes; it should be on a real disk, not tmpfs, for the
# commit/fsync costs to be realistic).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
step_args=()
send_args=(--runs 30)
keep=0
for arg in "$@"; do
  case "$arg" in
    --quick)
      step_args=(--messages 20000 --passages 2000 --turns 300 --searches 5 --search-budget 20)
      send_args=(--runs 10)
      ;;
    --keep) keep=1 ;;
    *) echo "usage: bench/run.sh [--quick] [--keep]" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
echo "== building ($BUILD_DIR, RelWithDebInfo)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target memgpt bench_step bench_spawn_rss | tail -1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-bench.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo
echo "== 1. bench_step: populate, then time steps with an in-process provider"
"$BUILD_DIR/bench_step" "${step_args[@]}" --json "$WORK/step.json" "$WORK/big"

echo
echo "== 2+3. bench_send.py: \`memgpt send\` to first byte, and peak RSS"
python3 bench/bench_send.py --bin "$BUILD_DIR/memgpt" --big-home "$WORK/big" --full-agent full \
  --work "$WORK" --json "$WORK/send.json" "${send_args[@]}"

echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - started )) s in all)"
python3 bench/report.py "$WORK/step.json" "$WORK/send.json" --data-dir "$WORK"
