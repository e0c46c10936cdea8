#!/usr/bin/env bash
# bench_insert.sh - bulk `archival insert --jsonl -` of N short passages with
# the offline embedder, then `archival search` from fresh processes: wall
# time (p50, p95) and peak RSS (bench/README.md, section 14); then SEARCHES
# `memgpt send` turns whose model calls archival_memory_search first, against
# bench_send.py's loopback LLM: process start to the arrival of the turn's
# second LLM request (the one carrying the search's result).
#
#   bench/bench_insert.sh [BUILD_DIR] [N] [SEARCHES]
#
# BUILD_DIR (default build) holds memgpt and bench_spawn_rss. Passages are
# 12-20 words of the Zipf vocabulary of gen_corpus.py, queries 3-7 words
# (bench/gen_passages.py, fixed seeds). The data dir goes under $TMPDIR and
# is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
N=${2:-100000}
SEARCHES=${3:-30}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-insert.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

(cd bench && python3 gen_passages.py "$N" --json > "$WORK/passages.jsonl" &&
  python3 gen_passages.py "$SEARCHES" --queries > "$WORK/queries.txt")
"$BUILD/memgpt" --home "$WORK/home" agents create bench > /dev/null
/usr/bin/time -f "insert: %e s wall, %U s user, %S s sys, peak RSS %M KB" \
  "$BUILD/memgpt" --home "$WORK/home" archival insert --agent bench --jsonl - \
  < "$WORK/passages.jsonl"
ls -l "$WORK/home/memgpt.db" "$WORK/home/memgpt.db.index"/*.mgx 2>/dev/null | awk '{print $5, $NF}' \
  || true # no index file below the index threshold

# One search per fresh process; wall time from fork to exit, peak RSS from
# bench_spawn_rss (a child of Python would start with Python's memory).
python3 - "$BUILD" "$WORK" <<'PY'
import os, subprocess, sys, time
build, work = sys.argv[1:]
walls, rss = [], []
for q in open(os.path.join(work, "queries.txt")).read().splitlines():
    report = os.path.join(work, "rss")
    t = time.perf_counter()
    subprocess.run([os.path.join(build, "bench_spawn_rss"), report, os.path.join(build, "memgpt"),
                    "--home", os.path.join(work, "home"), "archival", "search", "--agent", "bench",
                    "--json", "--limit", "5", q], stdout=subprocess.DEVNULL, check=True)
    walls.append((time.perf_counter() - t) * 1000)
    rss.append(int(open(report).read().split()[0]) / 1024)
def pct(v, f):
    v = sorted(v)
    return v[min(len(v) - 1, int(f * len(v)))]
print("first search after the insert: %.1f ms, peak RSS %.1f MB" % (walls[0], rss[0]))
print("search, fresh process x %d: p50 %.1f ms, p95 %.1f ms; peak RSS p50 %.1f MB, max %.1f MB"
      % (len(walls), pct(walls, 0.5), pct(walls, 0.95), pct(rss, 0.5), max(rss)))

# Turns whose model searches archival memory first.
sys.path.insert(0, "bench")
import bench_ab
server, url = bench_ab.start_llm()
turns = [bench_ab.send_turn(build, os.path.join(work, "home"), q, url)
         for q in open(os.path.join(work, "queries.txt")).read().splitlines()]
server.shutdown()
print("send turn calling archival_memory_search x %d, start to the second LLM request: "
      "p50 %.1f ms, p95 %.1f ms" % (len(turns), pct(turns, 0.5), pct(turns, 0.95)))
PY
