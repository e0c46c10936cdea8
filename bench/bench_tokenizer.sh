#!/usr/bin/env bash
# bench/bench_tokenizer.sh - memgpt's tokenizer against gpt-tokenizer on Node.js,
# side by side on the same text, with identical token ids required.
#
#   ./bench/bench_tokenizer.sh [--rounds N] [--runs N] [--keep]
#
#   --rounds N  alternate the two implementations N times (default 5)
#   --runs N    timed encodes of the whole text per process (default 10,
#               after 3 untimed warm-up encodes)
#   --keep      keep the scratch directory (corpus, ids, JSON results)
#
# Builds bench_tokenizer (EXCLUDE_FROM_ALL, see CMakeLists.txt) in its own
# tree, BENCH_BUILD_DIR (default build-bench), fetches the rank files for it,
# and installs gpt-tokenizer (pinned, the same version the rank files come
# from) with npm into BENCH_BUILD_DIR/bench-node/, which is never committed.
#
# The text: this repository's tracked sources and docs (C, Python, Markdown),
# the license texts in /usr/share/common-licenses (English prose), Python's
# standard library modules (code) up to 1.5 MB, and the samples of the test
# vectors (many scripts, emoji): about 3.4 MB, assembled fresh in a temp dir.
#
# Both sides are single-threaded, read the text before timing, encode it
# whole per run, and produce the ids in memory: mg_tokenizer_encode against
# gpt-tokenizer's encode() with the special-token check off (the same work
# as tiktoken's encode_ordinary). Each round runs the C driver then the Node
# driver; the ids of both are compared byte for byte, every round. MB/s are
# 10^6 bytes of UTF-8 input per second, wall clock; the ratio is of the
# medians over all runs.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
GPT_TOKENIZER=4.0.0
rounds=5
runs=10
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: bench/bench_tokenizer.sh [--rounds N] [--runs N] [--keep]" >&2; exit 2 ;;
  esac
done

echo "== building ($BUILD_DIR, RelWithDebInfo)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target bench_tokenizer | tail -1
scripts/fetch-tokenizer-data.sh "$BUILD_DIR"

node_dir=$BUILD_DIR/bench-node
if [ "$(node -p "require('./$node_dir/node_modules/gpt-tokenizer/package.json').version" \
  2>/dev/null)" != "$GPT_TOKENIZER" ]; then
  echo "== npm install gpt-tokenizer@$GPT_TOKENIZER into $node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
    "gpt-tokenizer@$GPT_TOKENIZER" >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-tokbench.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

corpus=$WORK/corpus.txt
{
  git ls-files -z '*.c' '*.h' '*.py' '*.md' | xargs -0 cat
  cat /usr/share/common-licenses/*
  # (head closes the pipe early; the SIGPIPE that cat gets is expected)
  find /usr/lib/python3* -maxdepth 1 -name '*.py' -print0 2>/dev/null | sort -z | xargs -0 cat |
    head -c 1500000 || true
  sed -n 's/^Sample: //p' "$BUILD_DIR/tokenizer-cache/TestPlans.txt"
} >"$corpus"

machine="$(nproc) vCPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), Linux $(uname -r)"
echo "== corpus: $(wc -c <"$corpus") bytes; machine: $machine"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

for encoding in o200k_base cl100k_base; do
  for round in $(seq 1 "$rounds"); do
    "$BUILD_DIR/bench_tokenizer" --encoding "$encoding" --runs "$runs" --warmup 3 \
      --ids-out "$WORK/c.ids" "$corpus" >>"$WORK/$encoding.c.jsonl"
    node bench/bench_tokenizer.mjs --modules "$node_dir/node_modules" --encoding "$encoding" \
      --runs "$runs" --warmup 3 --ids-out "$WORK/js.ids" "$corpus" >>"$WORK/$encoding.js.jsonl"
    if ! cmp -s "$WORK/c.ids" "$WORK/js.ids"; then
      echo "bench_tokenizer: $encoding: the token ids differ from gpt-tokenizer's" >&2
      exit 1
    fi
  done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK" "$rounds" "$runs" <<'EOF'
import json, statistics, sys
work, rounds, runs_per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
med = statistics.median
def load(enc, impl):
    return [json.loads(line) for line in open(f"{work}/{enc}.{impl}.jsonl")]
def all_runs(rows, key):
    return [x for r in rows for x in r[key]]
print()
print("MB/s = 10^6 bytes of UTF-8 input per second; wall = elapsed time, cpu = the process's")
print(f"CPU time; {rounds} rounds x {runs_per} timed encodes per implementation and encoding.")
print()
print("| encoding | implementation | wall median | wall best | cpu median | tokens | load | peak RSS |")
print("|---|---|---|---|---|---|---|---|")
summary = []
for enc in ("o200k_base", "cl100k_base"):
    stats = {}
    for impl, name in (("c", "memgpt (C, PCRE2 JIT)"), ("js", "gpt-tokenizer (Node.js)")):
        rows = load(enc, impl)
        wall, cpu = all_runs(rows, "encode_mbps"), all_runs(rows, "encode_cpu_mbps")
        stats[impl] = (med(wall), max(wall), med(cpu))
        print(f"| {enc} | {name} | **{med(wall):.1f}** | {max(wall):.1f} | {med(cpu):.1f} | "
              f"{rows[0]['tokens']:,} | {med(r['open_ms'] for r in rows):.0f} ms | "
              f"{max(r['max_rss_kb'] for r in rows) / 1024:.0f} MB |")
    count = all_runs(load(enc, "c"), "count_mbps")
    print(f"| {enc} | memgpt, count only (no id array) | {med(count):.1f} | {max(count):.1f} | | | | |")
    summary.append((enc, [c / j for c, j in zip(stats["c"], stats["js"])]))
print()
for enc, (wall, best, cpu) in summary:
    verdict = "met" if wall >= 5 else "MISSED"
    print(f"{enc}: memgpt / gpt-tokenizer = {wall:.1f}x by wall-clock medians "
          f"(target >= 5x: {verdict}); {best:.1f}x best run to best run; {cpu:.1f}x by CPU time. "
          f"Ids identical in all {rounds} rounds.")
EOF
