#!/usr/bin/env bash
# bench/bench_index.sh - the vector index (src/index/) against exact search and
# FAISS's IndexHNSWFlat, on the same clustered vectors, one thread each.
#
#   ./bench/bench_index.sh [--quick] [--sizes "100000 1000000"] [--keep] [--no-faiss]
#
#   --quick     20,000 vectors only, 200 queries (~20 s)
#   --sizes     the data set sizes to run (default "100000 1000000"; the 1M
#               run needs ~8 GB of RAM and ~3.5 GB in $TMPDIR, and FAISS's
#               build alone takes ~12 min on a 2-vCPU VM)
#   --keep      keep the scratch directory (vectors, ground truth, JSON)
#   --no-faiss  skip FAISS
#
# For each size: bench_index generates the vectors (a Gaussian mixture,
# isotropic, ~1,000 vectors a cluster, normalized: see bench/bench_index.c),
# builds our index, times exact and graph search and writes base.f32,
# queries.f32 and gt.i32; then bench_index_faiss.py builds IndexHNSWFlat with
# the same M and ef_construction from those files and times it at the same
# ef values against the same ground truth. At 100k a second data set, a
# low-rank mixture (each cluster spread along 16 directions, plus small
# isotropic noise), is run too. bench_index_report.py prints the tables.
#
# FAISS comes from Debian's python3-faiss, for /usr/bin/python3 (not a
# pyenv or venv python): installed here with apt-get when missing and we are
# root, else the FAISS columns are skipped.
#
# Environment: BENCH_BUILD_DIR (default build-bench: its own RelWithDebInfo
# tree), TMPDIR (where the scratch directory goes), M (16), EFC (40),
# EF ("16,32,64,128,256,512").
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
M=${M:-16}
EFC=${EFC:-40}
EF=${EF:-16,32,64,128,256,512}
sizes="100000 1000000"
queries=1000
keep=0
faiss=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) sizes=20000; queries=200 ;;
    --sizes) sizes=$2; shift ;;
    --keep) keep=1 ;;
    --no-faiss) faiss=0 ;;
    *) echo "usage: bench/bench_index.sh [--quick] [--sizes \"N ...\"] [--keep] [--no-faiss]" >&2; exit 2 ;;
  esac
  shift
done

PY=/usr/bin/python3
if [ "$faiss" = 1 ] && ! "$PY" -c 'import faiss' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing python3-faiss (Debian) for the comparison"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-faiss >/dev/null
  else
    echo "python3-faiss is missing and cannot be installed here: FAISS columns skipped" >&2
    faiss=0
  fi
fi

started=$(date +%s)
echo "== building ($BUILD_DIR, RelWithDebInfo)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target bench_index | tail -1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-bench-index.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# run NAME N [bench_index options...]: ours, then FAISS on the same files.
run() {
  local name=$1 n=$2
  shift 2
  local dir="$WORK/$name"
  mkdir -p "$dir"
  local exact=$queries
  [ "$n" -ge 500000 ] && exact=100 # a 1M exact scan is ~0.2 s a query
  local deletes=0.1
  [ "$n" -ge 500000 ] && deletes=0 # keeps the 1M run short (a cleanup pass there: ~10-15 s)
  echo
  echo "== $name: ours ($n vectors, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BUILD_DIR/bench_index" --n "$n" --queries "$queries" --exact-queries "$exact" \
    --m "$M" --efc "$EFC" --ef "$EF" --deletes "$deletes" "$@" --json "$dir/ours.json" "$dir"
  if [ "$faiss" = 1 ]; then
    echo "== $name: FAISS IndexHNSWFlat (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    "$PY" bench/bench_index_faiss.py --dir "$dir" --m "$M" --efc "$EFC" --ef "$EF" \
      --json "$dir/faiss.json"
  fi
  rm -f "$dir"/*.f32 # the vectors: up to 1.5 GB each
}

for n in $sizes; do
  run "gmm-$n" "$n"
  if [ "$n" = 100000 ]; then run "lowrank-$n" "$n" --rank 16 --noise 0.1; fi
done

echo
echo "== results ($(date -u +%Y-%m-%dT%H:%MZ), $(( $(date +%s) - started )) s in all)"
python3 bench/bench_index_report.py "$WORK"
