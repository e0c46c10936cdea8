#!/usr/bin/env python3
"""bench_send.py - `memgpt send`: time to the first byte sent to the LLM, and peak RSS.

    python3 bench/bench_send.py --bin build/memgpt --big-home DIR [--runs 30] [--json FILE]

A loopback HTTP server (threaded, stdlib only) plays the OpenAI API: it notes
time.perf_counter() the moment the first byte of a connection's request
arrives (a blocking MSG_PEEK, before any parsing), then answers a valid chat
completion whose one tool call is send_message, with "usage". Each run starts

    memgpt --home DIR send --agent A hi

with OPENAI_BASE_URL pointing at that server, noting perf_counter() just
before Popen; the figure is (first byte - start).

Peak RSS is ru_maxrss (KiB) from os.wait4, but taken in separate runs (one
per timing run, interleaved) made through spawn_rss (bench/spawn_rss.c): a
child forked straight from this ~20 MB Python process inherits its memory
until execve, and Linux keeps that high-water mark in ru_maxrss, so even
/bin/true would report ~20 MB. spawn_rss is a small C process that forks,
execs the command and reports wait4's ru_maxrss.

Cases, interleaved run by run so that noise on a shared machine hits them
alike:
  - true:  /bin/true through the same Popen + wait4 path: the process spawn
           floor (start to exit), the reference for the ratios;
  - version: `memgpt --version`, start to exit: what any memgpt process pays
           before main() does anything (exec, loading and relocating its ~40
           shared libraries, their constructors);
  - big:   agent "big" in --big-home (bench_step's data dir: 100k messages,
           10k passages, ~20 in context);
  - small: a fresh agent made here in its own data dir;
  - full:  (with --full-agent) an agent in --big-home whose context window is
           60% full (bench_step makes one named "full"): the largest request
           a 128k-window agent sends routinely. Not part of the targets' own
           definition; it shows how the figures move with the context size.
  - big-est, small-est, full-est (with --ab-estimate): the same sends with
           MEMGPT_TOKENIZER_DIR pointing at an empty directory, so the agents
           (OpenAI models) count with the estimate, as before exact counting:
           the cost of the tokenizer, measured in the same run.
The first --warmup runs of each case are discarded.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    """First-byte times of requests, per run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.first_bytes = []
            self.request_times = []  # each request's arrival (keep-alive ones too)
            self.request_sizes = []
            self.errors = []


RECORDER = Recorder()

# When set, the agent's turn opens with archival_memory_search(SEARCH_QUERY)
# and a heartbeat, and its second request gets the reply (bench_insert.sh).
SEARCH_QUERY = None


def completion(request):
    """A valid chat completion for `request` (a parsed body)."""
    tools = request.get("tools")
    last = (request.get("messages") or [{}])[-1]
    if tools and SEARCH_QUERY and last.get("role") == "user" and \
            '"type":"user_message"' in str(last.get("content")):
        message = {
            "role": "assistant", "content": "Let me look that up.",
            "tool_calls": [{
                "id": "call_bench_%d" % int(time.time() * 1e6), "type": "function",
                "function": {"name": "archival_memory_search", "arguments": json.dumps(
                    {"query": SEARCH_QUERY, "request_heartbeat": True})},
            }],
        }
        finish = "tool_calls"
    elif tools:
        message = {
            "role": "assistant",
            "content": "The user says hi; I will greet them back.",
            "tool_calls": [{
                "id": "call_bench_%d" % int(time.time() * 1e6),
                "type": "function",
                "function": {
                    "name": "send_message",
                    "arguments": json.dumps({"message": "Hello! Good to hear from you."}),
                },
            }],
        }
        finish = "tool_calls"
    else:  # the summarizer
        message = {"role": "assistant", "content": "A short summary of earlier talk."}
        finish = "stop"
    prompt_tokens = max(1, len(json.dumps(request)) // 4)
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "gpt-4o-mini"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 24,
                  "total_tokens": prompt_tokens + 24},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle(self):
        # Block until the client's first byte is here, without consuming it.
        try:
            if self.connection.recv(1, socket.MSG_PEEK):
                t = time.perf_counter()
                with RECORDER.lock:
                    RECORDER.first_bytes.append(t)
        except OSError:
            return
        super().handle()

    def do_POST(self):
        with RECORDER.lock:
            RECORDER.request_times.append(time.perf_counter())
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            request = json.loads(body)
            if not self.path.endswith("/chat/completions"):
                raise ValueError("unexpected path " + self.path)
            if not isinstance(request.get("messages"), list):
                raise ValueError("no messages")
            answer = json.dumps(completion(request)).encode()
            status = 200
        except (ValueError, TypeError) as e:
            with RECORDER.lock:
                RECORDER.errors.append(str(e))
            answer = json.dumps({"error": {"message": str(e), "type": "invalid_request_error"}}).encode()
            status = 400
        with RECORDER.lock:
            RECORDER.request_sizes.append(length)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, fmt, *args):
        pass


def run_rss(spawn_rss, report, argv, env, errfile):
    """Runs argv under spawn_rss; returns (peak RSS in KiB, exit code)."""
    errfile.seek(0)
    errfile.truncate()
    proc = subprocess.Popen([spawn_rss, report] + argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=errfile)
    os.wait4(proc.pid, 0)
    with open(report) as f:
        rss, code = f.read().split()
    proc.returncode = int(code)
    return int(rss), int(code)


def run_once(argv, env, errfile):
    """Runs argv; returns (start, end, rusage, exit code)."""
    errfile.seek(0)
    errfile.truncate()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=errfile)
    _, status, rusage = os.wait4(proc.pid, 0)
    end = time.perf_counter()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return start, end, rusage, proc.returncode


def pct(values, q):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 1)) - 1))
    return v[k]


def describe(values):
    return {
        "n": len(values),
        "p50": pct(values, 0.50),
        "p95": pct(values, 0.95),
        "max": max(values),
        "min": min(values),
        "median": statistics.median(values),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the memgpt binary")
    ap.add_argument("--big-home", required=True, help="data dir holding agent 'big' (bench_step)")
    ap.add_argument("--big-agent", default="big")
    ap.add_argument("--full-agent", help="also measure this agent of --big-home (a full context)")
    ap.add_argument("--spawn-rss", help="the spawn_rss helper (default: bench_spawn_rss next to --bin)")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--work", help="scratch dir (default: a new temp dir, removed at the end)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--ab-estimate", action="store_true",
                    help="also run big and small with the rank files hidden (estimated counts)")
    args = ap.parse_args()

    memgpt = os.path.abspath(args.bin)
    spawn_rss = os.path.abspath(args.spawn_rss or
                                os.path.join(os.path.dirname(memgpt), "bench_spawn_rss"))
    if not os.access(spawn_rss, os.X_OK):
        sys.exit("bench_send: no spawn_rss helper at %s (build target bench_spawn_rss)" % spawn_rss)
    own_work = args.work is None
    work = args.work or tempfile.mkdtemp(prefix="memgpt-bench-send.")
    small_home = os.path.join(work, "small")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    env = dict(os.environ)
    for k in ("MEMGPT_HOME", "MEMGPT_AGENT", "MEMGPT_FAKE_NOW"):
        env.pop(k, None)
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:%d/v1" % port
    env["OPENAI_API_KEY"] = "x"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)

    try:
        made = subprocess.run([memgpt, "--home", small_home, "agents", "create", "small",
                               "--reflect-every", "off"], env=env, capture_output=True, text=True)
        if made.returncode != 0:
            sys.exit("bench_send: creating the small agent failed: " + made.stderr.strip())

        cases = {
            "true": ["/bin/true"],
            "version": [memgpt, "--version"],
            "big": [memgpt, "--home", args.big_home, "send", "--agent", args.big_agent, "hi"],
            "small": [memgpt, "--home", small_home, "send", "--agent", "small", "hi"],
        }
        if args.full_agent:
            cases["full"] = [memgpt, "--home", args.big_home, "send", "--agent", args.full_agent, "hi"]
        case_env = {}
        if args.ab_estimate:
            no_ranks = os.path.join(work, "no-rank-files")
            os.makedirs(no_ranks, exist_ok=True)
            for name in [n for n in ("big", "small", "full") if n in cases]:
                cases[name + "-est"] = cases[name]
                case_env[name + "-est"] = dict(env, MEMGPT_TOKENIZER_DIR=no_ranks)
        first_byte = {k: [] for k in cases}
        wall = {k: [] for k in cases}
        rss = {k: [] for k in cases}
        request_bytes = {k: [] for k in cases}
        with tempfile.TemporaryFile() as errfile:
            for r in range(args.warmup + args.runs):
                for name, argv in cases.items():
                    RECORDER.reset()
                    start, end, _, code = run_once(argv, case_env.get(name, env), errfile)
                    with RECORDER.lock:
                        firsts = list(RECORDER.first_bytes)
                        sizes = list(RECORDER.request_sizes)
                        errors = list(RECORDER.errors)
                    peak, code2 = run_rss(spawn_rss, os.path.join(work, "rss"), argv,
                                          case_env.get(name, env), errfile)
                    for c in (code, code2):
                        if c != 0:
                            errfile.seek(0)
                            sys.exit("bench_send: %s exited %d: %s" %
                                     (" ".join(argv), c,
                                      errfile.read().decode(errors="replace").strip()))
                    if errors:
                        sys.exit("bench_send: the server rejected a request: " + errors[0])
                    if name not in ("true", "version") and not firsts:
                        sys.exit("bench_send: %s sent nothing to the server" % name)
                    if r < args.warmup:
                        continue
                    wall[name].append((end - start) * 1e3)
                    rss[name].append(peak)
                    if firsts:
                        first_byte[name].append((min(firsts) - start) * 1e3)
                        request_bytes[name].append(sizes[0] if sizes else 0)
    finally:
        server.shutdown()
        if own_work:
            shutil.rmtree(work, ignore_errors=True)

    results = {"runs": args.runs, "cases": {}}
    floor = statistics.median(wall["true"])
    for name in cases:
        c = {"wall_ms": describe(wall[name]), "maxrss_kib": describe(rss[name])}
        if first_byte[name]:
            c["first_byte_ms"] = describe(first_byte[name])
            c["first_byte_over_spawn_floor"] = statistics.median(first_byte[name]) / floor
            c["request_bytes"] = statistics.median(request_bytes[name])
        results["cases"][name] = c

    print("memgpt send (%d runs each, interleaved, after %d warm-up runs), ms:" % (args.runs, args.warmup))
    print("  %-34s %9s %9s %9s %11s %10s %10s" % ("case", "p50", "p95", "max", "x floor", "RSS p50", "RSS max"))
    labels = (("true", "/bin/true, start to exit (floor)"),
              ("version", "memgpt --version, start to exit"),
              ("small", "small agent, start to first byte"),
              ("big", "big agent, start to first byte"),
              ("full", "full-context agent, to first byte"),
              ("small-est", "small agent, estimated counts"),
              ("big-est", "big agent, estimated counts"),
              ("full-est", "full-context, estimated counts"))
    for name, label in labels:
        if name not in results["cases"]:
            continue
        c = results["cases"][name]
        d = c.get("first_byte_ms", c["wall_ms"])
        ratio = d["median"] / floor
        print("  %-34s %9.2f %9.2f %9.2f %10.1fx %7.1f MB %7.1f MB" %
              (label, d["p50"], d["p95"], d["max"], ratio,
               c["maxrss_kib"]["median"] / 1024, c["maxrss_kib"]["max"] / 1024))
    for name in ("small", "big", "full", "small-est", "big-est", "full-est"):
        if name not in results["cases"]:
            continue
        c = results["cases"][name]
        print("  %-34s %9.2f %9.2f %9.2f   (whole process; request %.0f KB)" %
              (name + " agent, start to exit", c["wall_ms"]["p50"], c["wall_ms"]["p95"],
               c["wall_ms"]["max"], c["request_bytes"] / 1024))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
