#!/usr/bin/env bash
# bench_scan.sh - recall@10 and time of the vector index's scan of codes
# against its exact scan, on N short passages of the offline embedder
# (bench/README.md, section 14).
#
#   bench/bench_scan.sh [BUILD_DIR] [N] [QUERIES]
#
# Builds bench_scan in BUILD_DIR (default build); N defaults to 100,000,
# QUERIES to 200.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-100000}
Q=${3:-200}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-scan.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cmake --build "$BUILD" --target bench_scan > /dev/null
(cd bench && python3 gen_passages.py "$N" > "$WORK/passages.txt" &&
  python3 gen_passages.py "$Q" --queries > "$WORK/queries.txt")
"$BUILD/bench_scan" "$WORK/passages.txt" "$WORK/queries.txt"
