#!/usr/bin/env python3
"""bench_web.py - the web app's size and speed in Debian's headless chromium
(results in bench/README.md, "The web app").

    python3 bench/bench_web.py [--build DIR] [--json FILE]

Needs what `make test` installs (chromium, tests/web/node_modules). Runs
scenarios of tests/web/app.mjs through the test harness (memgpt serve and
the strict OpenAI mock on loopback) and reports:

1. the app's files: bytes, and bytes gzip -9 compressed (target: under
   150 KB compressed in all);
2. the first screen: ms from the start of the navigation until the agent
   and its latest messages are shown, 10 fresh loads each of an agent with a
   short conversation and of one with 10,200 stored messages, with the
   app's files in the browser's cache (warm) and with the cache off (cold)
   (target: under 300 ms);
3. the longest task on the page's main thread while a ~2,000-token reply
   streams in, in 8-character pieces (target: none over 50 ms);
4. scrolling back through the 10,200 messages and forward again: the most
   rows in the page at once and the longest task meanwhile.
"""
import argparse
import gzip
import json
import os
import statistics
import sys
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

RESULTS = {}


def asset_sizes():
    raw = packed = 0
    for root, _, files in os.walk(os.path.join(REPO, "web")):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            raw += len(data)
            packed += len(gzip.compress(data, 9))
    return {"files_bytes": raw, "files_gzip_bytes": packed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--json")
    args = ap.parse_args()
    os.environ["MEMGPT_BIN"] = os.path.join(args.build, "memgpt")
    from test_web_app import WebAppTest, say  # noqa: E402 (needs MEMGPT_BIN set)

    class Bench(WebAppTest):
        def test_bench(self):
            RESULTS["assets"] = asset_sizes()
            short = self.new_agent("short")
            for i in range(5):
                self.http("POST", f"/v1/agents/{short}/messages",
                          body={"messages": [{"role": "user", "content": f"hello {i}"}]})
            long_agent = self.import_history("long", 3400)
            for name, agent in (("short", short), ("long", long_agent)):
                for cache in ("warm", "cold"):
                    times = self.browser("first_screen", {"agent_id": agent, "times": 10,
                                                          "cold": cache == "cold"})
                    times = times["first_screen_ms"]
                    RESULTS[f"first_screen_{name}_{cache}_ms"] = {
                        "median": statistics.median(times), "max": max(times),
                        "all": [round(t) for t in times]}
            reply = " ".join(f"word{i}" for i in range(1500))
            self.mock.push({**say(reply), "chunk_bytes": 400, "chunk_delay": 0.005,
                            "piece_chars": 8})
            RESULTS["stream_2000_tokens"] = self.browser("long_reply",
                                                         {"agent_id": short, "reply": reply})
            RESULTS["scroll_10200_messages"] = self.browser(
                "long_history", {"agent_id": long_agent, "turns": 3400, "pages_up": 40})

    suite = unittest.TestSuite([Bench("test_bench")])
    if not unittest.TextTestRunner(verbosity=0).run(suite).wasSuccessful():
        sys.exit(1)
    RESULTS.update(machine=os.uname().nodename, cpus=os.cpu_count(),
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(json.dumps(RESULTS, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(RESULTS, f, indent=2)


if __name__ == "__main__":
    main()
