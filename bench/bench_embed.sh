#!/usr/bin/env bash
# bench/bench_embed.sh - the offline embedder's throughput against FTS5
# indexing and SHA-256 of the same passages, in one run (bench/bench_embed.c).
#
#   ./bench/bench_embed.sh [--mb N]     # corpus size, default 20 MB
#
# The text is bench/gen_corpus.py's (English-like paragraphs, as for
# bench_load.sh); passages of ~1,000 bytes (what `archival load` stores) and
# of ~300 bytes (a chat message, a query).
# Environment: BENCH_BUILD_DIR (default build-bench), TMPDIR.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
mb=20
while [ $# -gt 0 ]; do
  case "$1" in
    --mb) mb=$2; shift ;;
    *) echo "usage: bench/bench_embed.sh [--mb N]" >&2; exit 2 ;;
  esac
  shift
done

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target bench_embed | tail -1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-bench-embed.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 bench/gen_corpus.py "$WORK/corpus" "$mb" >/dev/null

echo "== bench_embed ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg))"
for size in 1000 300; do
  "$BUILD_DIR/bench_embed" --passage "$size" $(find "$WORK/corpus" -type f | sort)
done
echo "== done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
