#!/usr/bin/env bash
# bench_insert.sh - bulk `archival insert --jsonl -` of N short passages with
# the offline embedder, then `archival search` from fresh processes: wall
# time and peak RSS (bench/README.md, section 14).
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
SEARCHES=${3:-5}
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
for i in $(seq 1 "$SEARCHES"); do
  /usr/bin/time -f "search $i (fresh process): %e s wall, peak RSS %M KB" \
    "$BIN" --home "$WORK/home" archival search --agent bench --json --limit 5 \
    "the harbour ledger of the old town" > /dev/null
done
