#!/usr/bin/env bash
# bench_insert.sh - bulk `archival insert --jsonl -` of N short passages with
# the offline embedder, then `archival search` from fresh processes: wall
# time (p50, p95) and peak RSS (bench/README.md, section 14).
#
#   bench/bench_insert.sh [MEMGPT_BIN] [N] [SEARCHES]
#
# Passages are 12-20 words of the Zipf vocabulary of gen_corpus.py (fixed
# seed), one JSON object per line. The data dir goes under $TMPDIR and is
# deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/memgpt}
N=${2:-100000}
SEARCHES=${3:-30}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-insert.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

python3 - "$N" > "$WORK/passages.jsonl" <<'PY'
import json, random, sys
sys.path.insert(0, "bench")
from gen_corpus import vocabulary
rng = random.Random(7)
words = vocabulary(rng)
weights = [1.0 / (i + 1) for i in range(len(words))]
for _ in range(int(sys.argv[1])):
    text = " ".join(rng.choices(words, weights, k=rng.randint(12, 20)))
    print(json.dumps({"text": text.capitalize() + "."}))
PY

"$BIN" --home "$WORK/home" agents create bench > /dev/null
/usr/bin/time -f "insert: %e s wall, %U s user, %S s sys, peak RSS %M KB" \
  "$BIN" --home "$WORK/home" archival insert --agent bench --jsonl - < "$WORK/passages.jsonl"
# Fresh processes, each one search (queries of 3-7 words of the same
# vocabulary, fixed seed); wall time from fork to exit, peak RSS from wait4.
python3 - "$BIN" "$WORK/home" "$SEARCHES" <<'PY'
import os, random, subprocess, sys, time
sys.path.insert(0, "bench")
from gen_corpus import vocabulary
bin_, home, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(11)
words = vocabulary(random.Random(7))
weights = [1.0 / (i + 1) for i in range(len(words))]
queries = [" ".join(rng.choices(words, weights, k=rng.randint(3, 7))) for _ in range(n)]
walls, rss = [], []
for q in queries:
    t = time.perf_counter()
    p = subprocess.Popen([bin_, "--home", home, "archival", "search", "--agent", "bench",
                          "--json", "--limit", "5", q], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    walls.append((time.perf_counter() - t) * 1000)
    rss.append(usage.ru_maxrss / 1024)
    assert status == 0, status
def pct(v, f):
    v = sorted(v)
    return v[min(len(v) - 1, int(f * len(v)))]
print("search, fresh process x %d: p50 %.1f ms, p95 %.1f ms; peak RSS p50 %.1f MB, max %.1f MB"
      % (n, pct(walls, 0.5), pct(walls, 0.95), pct(rss, 0.5), max(rss)))
PY
