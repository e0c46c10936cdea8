#!/usr/bin/env bash
# bench/bench_load.sh - `memgpt archival load` throughput, end to end.
#
#   ./bench/bench_load.sh [--mb N] [--quick] [--keep]
#
#   --mb N    corpus size in megabytes (10^6 bytes; default 100)
#   --quick   a 10 MB smoke run
#   --keep    keep the scratch directory (corpus, data dir)
#
# Generates an English-like corpus (bench/gen_corpus.py: 1 MB files of
# paragraphs, every tenth Markdown with headings) and loads it with the
# offline embedder into a fresh data dir, as a user would: the real binary,
# stdout not a terminal (so it prints its summary line). Then loads it again
# (every chunk a duplicate). For scale, in the same run, it inserts the same
# passages into a bare FTS5 table (the rows, then their FTS rows directly, no
# trigger) with the tokenizer archival memory uses -
# the part of a load no loader can avoid - from Python's sqlite3 (same
# libsqlite3), single-threaded.
#
# Environment: BENCH_BUILD_DIR (default build-bench), TMPDIR (where the
# scratch directory goes; use a real disk, not tmpfs).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
mb=100
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --mb) mb=$2; shift ;;
    --quick) mb=10 ;;
    --keep) keep=1 ;;
    *) echo "usage: bench/bench_load.sh [--mb N] [--quick] [--keep]" >&2; exit 2 ;;
  esac
  shift
done

echo "== building ($BUILD_DIR, RelWithDebInfo)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target memgpt | tail -1
BIN=$BUILD_DIR/memgpt

WORK=$(mktemp -d "${TMPDIR:-/tmp}/memgpt-bench-load.XXXXXX")
cleanup() {
  if [ "$keep" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== corpus: $mb MB"
python3 bench/gen_corpus.py "$WORK/corpus" "$mb"
"$BIN" --home "$WORK/home" agents create bench >/dev/null

# Runs a load; prints its summary line and "real user sys" seconds.
timed_load() {
  local out times
  out=$(mktemp "$WORK/out.XXXXXX")
  times=$( { TIMEFORMAT='%R %U %S'; time "$BIN" --home "$WORK/home" archival load \
              --agent bench "$WORK/corpus" >"$out"; } 2>&1 )
  cat "$out"
  echo "$times"
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
echo "== load 1: fresh agent"
first=$(timed_load)
echo "$first"
echo "== load 2: the same files again (all duplicates)"
second=$(timed_load)
echo "$second"

echo "== floor: the same passages into a bare FTS5 table (Python sqlite3, one thread)"
floor=$(python3 - "$WORK/home/memgpt.db" "$WORK/floor.db" <<'EOF'
import sqlite3, sys, time
src = sqlite3.connect(sys.argv[1])
texts = [t for (t,) in src.execute("SELECT text FROM passages ORDER BY id")]
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = NORMAL")
db.execute("CREATE TABLE p(id INTEGER PRIMARY KEY, text TEXT)")
db.execute("CREATE VIRTUAL TABLE f USING fts5(text, content='p', content_rowid='id', "
           "tokenize='porter unicode61 remove_diacritics 2')")
# No trigger: the FTS rows are inserted directly, as the loader does since
# migration 6 (a trigger made FTS5 flush a segment per row).
start = time.monotonic()
for i in range(0, len(texts), 256):
    rows = list(enumerate(texts[i:i + 256], i + 1))
    db.execute("BEGIN")
    db.executemany("INSERT INTO p(id, text) VALUES (?, ?)", rows)
    db.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)", rows)
    db.execute("COMMIT")
print(f"{time.monotonic() - start:.2f}")
EOF
)
load_after=$(cut -d' ' -f1 /proc/loadavg)

python3 - "$mb" "$floor" "$load_before" "$load_after" "$WORK" <<EOF
import re, sys, os, platform, subprocess
mb, floor, la0, la1, work = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
runs = []
for block in ("""$first""", """$second"""):
    lines = block.strip().splitlines()
    m = re.search(r"([\d.]+) MB in ([\d.]+) s \(([\d.]+) MB/s\)", lines[0])
    real, user, sys_ = map(float, lines[-1].split())
    runs.append((lines[0], float(m.group(1)), real, user, sys_, float(m.group(2))))
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"],
                     capture_output=True, text=True).stdout.strip() or platform.processor()
mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
fs = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True, text=True).stdout.strip()
print()
print(f"== results: {cpu}, {os.cpu_count()} vCPU, {mem:.1f} GiB RAM, Linux {platform.release()}, "
      f"{fs}; load average {la0} before, {la1} after")
# "storing s" is the load's own clock (its summary line: walking, reading,
# embedding, writing); the rest of the wall time is mostly the vector index
# built at the end for agents of >= 16,384 passages (archival_index_warm).
print(f"{'run':<28} {'MB/s (wall)':>12} {'wall s':>8} {'storing s':>10} {'after s':>8} "
      f"{'CPU s':>8} {'MB per CPU s':>13}")
for name, (line, size, real, user, sys_, own) in zip(("load (new agent)",
                                                      "load again (duplicates)"), runs):
    print(f"{name:<28} {size / real:>12.2f} {real:>8.2f} {own:>10.2f} {real - own:>8.2f} "
          f"{user + sys_:>8.2f} {size / (user + sys_):>13.2f}")
print(f"{'FTS5 insert alone (floor)':<28} {mb / floor:>12.2f} {floor:>8.2f}")
print(f"load / FTS5 floor: {runs[0][2] / floor:.2f}x the time, {floor / runs[0][2]:.2f}x the speed; target: >= 0.8x the speed")
EOF
