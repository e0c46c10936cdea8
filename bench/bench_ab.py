#!/usr/bin/env python3
"""bench_ab.py - two builds of memgpt compared on one machine, interleaved.

    python3 bench/bench_ab.py search HOME QUERIES N BUILD_A BUILD_B
    python3 bench/bench_ab.py send   HOME QUERIES N BUILD_A BUILD_B

A shared VM's speed drifts by more than most changes are worth, so the two
builds take turns (A B, then B A, ...), and each figure is a median over N
turns of each. `search` times `memgpt archival search --json --limit 5`
from fork to exit on HOME (a data dir with an agent named "bench", e.g. one
bench_insert.sh made); `send` times a `memgpt send` turn whose model (the
loopback LLM of bench_send.py) calls archival_memory_search first, from
fork to the arrival of the turn's second request, each build on its own
copy of HOME. QUERIES holds one query a line (gen_passages.py --queries).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_send  # noqa: E402


def search_turn(build, home, query):
    t = time.perf_counter()
    subprocess.run([os.path.join(build, "memgpt"), "--home", home, "archival", "search",
                    "--agent", "bench", "--json", "--limit", "5", query],
                   stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t) * 1000


def start_llm():
    """Starts bench_send.py's loopback LLM on a thread; returns (server, base URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), bench_send.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d/v1" % server.server_address[1]


def send_turn(build, home, query, url):
    """One `memgpt send` turn whose model searches for `query` first: ms from
    fork to the arrival of the turn's second request."""
    env = dict(os.environ, OPENAI_API_KEY="bench", MEMGPT_HOME=home, OPENAI_BASE_URL=url)
    bench_send.SEARCH_QUERY = query
    bench_send.RECORDER.reset()
    t = time.perf_counter()
    subprocess.run([os.path.join(build, "memgpt"), "send", "--agent", "bench",
                    "what about " + query], env=env, stdout=subprocess.DEVNULL, check=True)
    times = bench_send.RECORDER.request_times
    if len(times) < 2 or bench_send.RECORDER.errors:
        sys.exit("the turn did not search: %s" % bench_send.RECORDER.errors)
    return (times[1] - t) * 1000


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in ("search", "send"):
        sys.exit(__doc__)
    mode, home, queries, n, builds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \
        sys.argv[5:]
    qs = open(queries).read().splitlines()
    homes = {b: home for b in builds}
    scratch = None
    url = None
    if mode == "send":
        scratch = tempfile.mkdtemp(prefix="memgpt-ab.")
        for i, b in enumerate(builds):
            homes[b] = os.path.join(scratch, str(i))
            shutil.copytree(home, homes[b])
        url = start_llm()[1]
    took = {b: [] for b in builds}
    try:
        for i in range(n):
            q = qs[i % len(qs)]
            for b in builds if i % 2 == 0 else builds[::-1]:
                took[b].append(search_turn(b, homes[b], q) if mode == "search"
                               else send_turn(b, homes[b], q, url))
    finally:
        if scratch:
            shutil.rmtree(scratch)
    for b in builds:
        v = sorted(took[b])
        print("%s: %s x %d, p50 %.1f ms, p95 %.1f ms" % (b, mode, n, v[len(v) // 2],
                                                      v[min(len(v) - 1, int(len(v) * 0.95))]))


if __name__ == "__main__":
    main()
