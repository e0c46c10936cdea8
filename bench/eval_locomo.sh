#!/usr/bin/env bash
# bench/eval_locomo.sh - archival retrieval quality on LoCoMo: build, run, print the table.
#
#   ./bench/eval_locomo.sh [EVAL_LOCOMO OPTIONS]
#
# Runs bench/eval_locomo.c over the five development conversations and prints
# recall@5 and recall@10 per conversation and over all questions, for the
# hybrid search agents get, plain BM25 and the offline embedder alone, then
# the same by question category. Extra options go to eval_locomo (e.g.
# --no-speaker, --typos, --misses --modes hybrid). A few seconds in all.
#
# Environment: LOCOMO_DIR (default ../shared/data/locomo-dev, relative to the
# repository root; the data is never copied into the repository),
# BENCH_BUILD_DIR (default build-bench, the benchmarks' own RelWithDebInfo
# tree), TMPDIR (where the throw-away data directories go).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
DATA=${LOCOMO_DIR:-../shared/data/locomo-dev}

files=()
for conv in conv-26 conv-30 conv-41 conv-42 conv-43; do
  if [ ! -r "$DATA/$conv.json" ]; then
    echo "eval_locomo.sh: $DATA/$conv.json not found (set LOCOMO_DIR)" >&2
    exit 1
  fi
  files+=("$DATA/$conv.json")
done

echo "== building eval_locomo ($BUILD_DIR, RelWithDebInfo)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target eval_locomo | tail -1

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
echo
echo "== LoCoMo archival retrieval, $(date -u +%Y-%m-%dT%H:%MZ), ${cpu:-unknown CPU}, $(nproc) CPUs"
echo "   recall@k = share of a question's evidence turns in the top k, mean over questions"
echo "   (hybrid = what agents get; text = plain BM25; vector = offline embedder alone)"
echo
started=$(date +%s%N)
"$BUILD_DIR/eval_locomo" --by-category "$@" "${files[@]}"
echo
awk -v ns=$(( $(date +%s%N) - started )) 'BEGIN { printf "(%.1f s)\n", ns / 1e9 }'
