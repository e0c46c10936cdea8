#!/usr/bin/env python3
"""bench_server.py - `memgpt serve` measured against references run in the
same session (results in bench/README.md, "The server").

    python3 bench/bench_server.py [--build DIR] [--quick] [--json FILE]

1. Reads: GET /v1/agents/{id} with 64 keep-alive connections, driven by wrk
   (Debian's package) for 10 s in turns of 2 s alternating with hello_mhd
   (bench/hello_mhd.c: the same HTTP library and threading mode, a fixed
   answer).
   Reported: requests/s of each and their ratio (target: at least 0.5).
2. Cost per turn: 300 sequential turns through the server (its own time for
   each, from its JSON access log) against 300 through the library
   (bench_turn: mg_agent_send), one of each in turn, both against the same
   instant mock LLM.
   Reported: p50 of each and the difference (target: at most 1 ms).
3. Scale: 1,000 agents; rounds of 100 concurrent streamed turns on 100
   different agents. Reported: p50/p99 time from request to the first SSE
   event, errors, and the server's peak RSS (VmHWM; target under 100 MB).

The mock LLM is tests/mock/openai_mock.py (standalone, keep-alive), which
answers each request at once with a send_message call.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


class Server:
    """memgpt serve with its stderr in a file, read only when asked: a
    reader of every line would take CPU from the servers under wrk."""

    def __init__(self, binary, home, env, workers, log_format="text"):
        self.log_path = os.path.join(home, f"serve-{time.monotonic_ns()}.log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--home", home, "serve", "--port", "0", "--workers", str(workers),
             "--log-format", log_format],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log_file, env=env)
        self.port = None
        end = time.time() + 20
        while not self.port and time.time() < end and self.proc.poll() is None:
            time.sleep(0.05)
            m = re.search(r"serving .* on http://[^ ]*:(\d+)/", self.lines_text())
            self.port = int(m.group(1)) if m else None
        if not self.port:
            raise SystemExit("memgpt serve did not start:\n" + self.lines_text())

    def lines_text(self):
        with open(self.log_path) as f:
            return f.read()

    def json_lines(self):
        return [json.loads(x) for x in self.lines_text().splitlines() if x.startswith("{")]

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log_file.close()


def request(port, method, path, body=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"} if body is not None else {})
    r = c.getresponse()
    data = r.read()
    if not conn:
        c.close()
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return json.loads(data) if data else None


def wrk(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(errors.group(1)) if errors else 0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def bench_reads(build, server, agent, seconds):
    """wrk against each in turns of 2 s, alternating, `seconds` each in all:
    load on the machine that changes during the run falls on both alike."""
    port = free_port()
    hello = subprocess.Popen([os.path.join(build, "hello_mhd"), str(port)])
    hello_rps, ours_rps, errors = [], [], 0
    try:
        wait_port(port)
        for _ in range(max(1, seconds // 2)):
            hello_rps.append(wrk(f"http://127.0.0.1:{port}/v1/agents/x", 2)[0])
            rps, err = wrk(f"http://127.0.0.1:{server.port}/v1/agents/{agent}", 2)
            ours_rps.append(rps)
            errors += err
    finally:
        hello.send_signal(signal.SIGTERM)
        hello.wait()
    hello_mean, ours_mean = statistics.mean(hello_rps), statistics.mean(ours_rps)
    return {"hello_rps": hello_mean, "server_rps": ours_mean, "ratio": ours_mean / hello_mean,
            "server_errors": errors}


WARMUP = 64


def bench_turns(build, server, agent, env, turns):
    """Both sides on an agent with reflection off: WARMUP untimed turns (on
    the server every worker has had one, and keeps its provider's
    connection and its tokenizer for the next agent it opens), then
    `turns` timed ones with the same text, a server turn and a library turn
    (bench_turn --serve, one process) one after the other, so load on the
    machine falls on both sides alike."""
    home = tempfile.mkdtemp(prefix="bench-turn-")
    lib = subprocess.Popen([os.path.join(build, "bench_turn"), home, "--serve"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)

    def server_turn(text):
        request(server.port, "POST", f"/v1/agents/{agent}/messages",
                {"messages": [{"role": "user", "content": text}]}, conn)

    def library_turn():
        lib.stdin.write("turn\n")
        lib.stdin.flush()
        return float(lib.stdout.readline())

    try:
        for _ in range(WARMUP):
            server_turn("warm up")
            library_turn()
        time.sleep(0.5)
        before = len(server.json_lines())
        lib_ms = []
        for _ in range(turns):
            server_turn("hello there, how are you today?")
            lib_ms.append(library_turn())
        time.sleep(0.5)  # the last access-log line follows its answer
        lines = server.json_lines()[before:]
    finally:
        conn.close()
        lib.stdin.close()
        lib.wait()
        shutil.rmtree(home, True)
    ms = [x["ms"] for x in lines if x["method"] == "POST"][-turns:]
    p50, lib_p50 = statistics.median(ms), statistics.median(lib_ms)
    return {"server_p50_ms": p50, "server_p95_ms": percentile(ms, 95),
            "library_p50_ms": lib_p50, "library_p95_ms": percentile(lib_ms, 95),
            "difference_p50_ms": p50 - lib_p50}


def first_event(port, agent, out, errors, lock):
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("POST", f"/v1/agents/{agent}/messages",
                  body=json.dumps({"messages": [{"role": "user", "content": "hi"}],
                                   "streaming": True, "include_pings": False}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}")
        first = None
        buf = b""
        done = False
        while not done:
            chunk = r.read1(65536)
            if not chunk:
                break
            if first is None:
                first = time.perf_counter() - t0
            buf += chunk
            done = b"data: [DONE]" in buf
        c.close()
        if not done or b'"error_message"' in buf:
            raise RuntimeError("stream did not end cleanly")
        with lock:
            out.append(first * 1000)
    except Exception as exc:  # noqa: BLE001 - every failure is counted
        with lock:
            errors.append(str(exc))


def bench_scale(server, agents, concurrent, rounds):
    ids = []
    for i in range(agents):
        ids.append(request(server.port, "POST", "/v1/agents/",
                           {"name": f"scale-{i}", "model": "openai/gpt-4o-mini"})["id"])
    times, errors, lock = [], [], threading.Lock()
    t0 = time.time()
    for r in range(rounds):
        batch = ids[(r * concurrent) % agents:][:concurrent]
        threads = [threading.Thread(target=first_event,
                                    args=(server.port, a, times, errors, lock)) for a in batch]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return {"agents": agents, "concurrent": concurrent, "turns": concurrent * rounds,
            "seconds": time.time() - t0,
            "first_event_p50_ms": statistics.median(times) if times else None,
            "first_event_p99_ms": percentile(times, 99) if times else None,
            "errors": len(errors), "error_samples": errors[:3],
            "peak_rss_mb": server.peak_rss_mb()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    for target in ("memgpt", "hello_mhd", "bench_turn"):
        subprocess.run(["cmake", "--build", args.build, "--target", target], check=True,
                       stdout=subprocess.DEVNULL)
    mock_port = free_port()
    mock = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "mock", "openai_mock.py"),
                             "--port", str(mock_port), "--no-auth", "--keep-alive",
                             "--window", "128000"], stdout=subprocess.DEVNULL)
    wait_port(mock_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEMGPT_"))}
    env.update(OPENAI_BASE_URL=f"http://127.0.0.1:{mock_port}/v1", OPENAI_API_KEY="bench")
    home = tempfile.mkdtemp(prefix="bench-server-")
    results = {"machine": os.uname().nodename, "cpus": os.cpu_count(),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        server = Server(os.path.join(args.build, "memgpt"), home, env,
                        workers=100)
        agent = request(server.port, "POST", "/v1/agents/",
                        {"name": "reader", "model": "openai/gpt-4o-mini",
                         "memory_blocks": [{"label": "human", "value": "Name: Ana"}]})["id"]
        for _ in range(3):
            request(server.port, "POST", f"/v1/agents/{agent}/messages",
                    {"messages": [{"role": "user", "content": "warm up"}]})
        results["reads"] = bench_reads(args.build, server, agent, 3 if args.quick else 10)
        print("reads:", json.dumps(results["reads"]), flush=True)
        server.stop()
        # The cost per turn on a server with the default number of workers,
        # on an agent made as bench_turn makes its own (reflection off).
        subprocess.run([os.path.join(args.build, "memgpt"), "--home", home, "agents", "create",
                        "turner", "--reflect-every", "off"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        server = Server(os.path.join(args.build, "memgpt"), home, env, workers=16,
                        log_format="json")
        turner = request(server.port, "GET", "/v1/agents/?name=turner")[0]["id"]
        results["turns"] = bench_turns(args.build, server, turner, env, 50 if args.quick else 300)
        print("turns:", json.dumps(results["turns"]), flush=True)
        server.stop()
        server = Server(os.path.join(args.build, "memgpt"), home, env, workers=100)
        results["scale"] = bench_scale(server, 200 if args.quick else 1000, 100,
                                       2 if args.quick else 5)
        print("scale:", json.dumps(results["scale"]), flush=True)
        server.stop()
    finally:
        mock.send_signal(signal.SIGTERM)
        mock.wait()
        shutil.rmtree(home, True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
