#!/usr/bin/env python3
"""Archival search through the vector index, with the real binary, after
`memgpt archival load` is killed with SIGKILL at random points.

MEMGPT_ARCHIVAL_INDEX_MIN=0 makes every search go through the index (the
memories here are small). A load inserts in batches and, at its end, brings
the index up to date and may save it, so a kill lands between a commit and
the index, in the log, or in a save. Afterwards every stored passage must be
found by its vector alone: the query is the passage's three unique made-up
words with two letters swapped in each, which BM25 cannot match but the
offline embedder's letter n-grams can, so a passage missing from the index
would be missing from the results. Each check runs the query through the
exact scan too (MEMGPT_ARCHIVAL_INDEX_MIN above the passage count): what it
finds, the index must find.
"""
import json
import os
import random
import signal
import sqlite3
import string
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MEMGPT_BIN, MemgptTestCase, main, only_providers  # noqa: E402

ENV = {"MEMGPT_ARCHIVAL_INDEX_MIN": "0"}


def made_up_word(rng):
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(10))


def swap_two(word):
    return word[:3] + word[4] + word[3] + word[5:]


@only_providers("openai")
class ArchivalIndexTest(MemgptTestCase):

    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", "a", "--idle-seconds", "off",
                        "--reflect-every", "off", check=0)
        self.rng = random.Random(int(os.environ.get("MEMGPT_TEST_SEED", "7")))

    def write_jsonl(self, name, lines):
        path = os.path.join(self.home, name)
        with open(path, "w") as f:
            for i in range(lines):
                words = " ".join(made_up_word(self.rng) for _ in range(3))
                f.write(json.dumps({"text": f"{words} noted as item {i} of {name}"}) + "\n")
        return path

    def load(self, path, check=0):
        return self.run_memgpt("archival", "load", "--agent", "a", "--batch", "50", path,
                               env=ENV, check=check)

    def stored(self):
        conn = sqlite3.connect(os.path.join(self.home, "memgpt.db"), timeout=10)
        try:
            return conn.execute("SELECT id, text FROM passages ORDER BY id").fetchall()
        finally:
            conn.close()

    def search_ids(self, query, env=ENV):
        out = self.run_memgpt("archival", "search", "--agent", "a", "--json", "--limit", "10",
                              query, env=env, check=0).stdout
        return [r["id"] for r in json.loads(out)["results"]]

    def assert_all_found(self, context, sample=30):
        rows = self.stored()
        self.assertTrue(rows, context)
        # The newest rows are the ones a kill can have left out of the index.
        picked = rows[-sample // 2:] + self.rng.sample(rows, min(sample // 2, len(rows)))
        exact_found = 0
        for pid, text in picked:
            query = " ".join(swap_two(w) for w in text.split()[:3])
            if pid not in self.search_ids(query, env={"MEMGPT_ARCHIVAL_INDEX_MIN": 10**9}):
                continue  # the words alone do not single it out
            exact_found += 1
            self.assertIn(pid, self.search_ids(query),
                          f"{context}: passage {pid} ({text!r}) not found by {query!r}")
        # The check means something: the exact scan finds many passages this way.
        self.assertGreaterEqual(exact_found, len(picked) // 3, context)

    def test_kill_9_during_load(self):
        started = time.monotonic()
        self.load(self.write_jsonl("first.jsonl", 300))
        # Kill points spread over how long a load takes on this machine, so
        # they land inside the loads however fast it is.
        expected = (time.monotonic() - started) * 1500 / 300
        self.search_ids("anything")  # builds and saves the index
        index_dir = os.path.join(self.home, "memgpt.db.index")
        self.assertTrue(any(n.endswith(".mgx") for n in os.listdir(index_dir)))

        # Four loads, and more (up to eight) until one was killed; a load
        # that ran to its end gives the estimate for the next kill point.
        killed = parts = 0
        while parts < 4 or (killed == 0 and parts < 8):
            path = self.write_jsonl(f"part{parts}.jsonl", 1500)
            began = time.monotonic()
            proc = subprocess.Popen(
                [MEMGPT_BIN, "--home", self.home, "archival", "load", "--agent", "a",
                 "--batch", "50", path],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=self.memgpt_env(ENV))
            time.sleep(self.rng.uniform(0.05, 0.9) * expected)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed += 1
            else:
                expected = time.monotonic() - began
            _, err = proc.communicate(timeout=30)
            self.assertIn(proc.returncode, (0, -signal.SIGKILL), err)
            self.assert_all_found(f"after load {parts} (rc {proc.returncode})")
            parts += 1
        self.assertGreater(killed, 0, "no load was ever killed: the kill points miss")

        # Finishing the loads (stored turns are skipped) leaves everything findable.
        for k in range(parts):
            self.load(os.path.join(self.home, f"part{k}.jsonl"))
        self.assertEqual(len(self.stored()), 300 + parts * 1500)
        self.assert_all_found("after finishing the loads")

    def index_files(self):
        return sorted(n for n in os.listdir(os.path.join(self.home, "memgpt.db.index"))
                      if n.endswith(".mgx"))

    def test_reembed_replaces_index(self):
        self.load(self.write_jsonl("first.jsonl", 40))
        self.search_ids("anything")
        offline = self.index_files()
        self.assertEqual(len(offline), 1)
        self.run_memgpt("agents", "set", "a", "--embedder", "openai/text-embedding-3-small",
                        check=0)
        self.run_memgpt("archival", "reembed", "--agent", "a", env=ENV, check=0)
        self.assertEqual(self.index_files(), [])  # the old vectors are gone with their spec
        out = json.loads(self.run_memgpt("archival", "search", "--agent", "a", "--json",
                                         "noted item", env=ENV, check=0).stdout)
        self.assertTrue(out["results"])
        self.assertGreater(out["results"][0]["similarity"], 0)  # compared by the new vectors
        rebuilt = self.index_files()
        self.assertEqual(len(rebuilt), 1)
        self.assertNotEqual(rebuilt, offline)  # the new spec's index

    def peak_rss_kb(self, *args, env=ENV):
        """Runs `memgpt ARGS` and returns its peak resident memory in kB,
        through bench_spawn_rss: a child forked by Python itself would
        start out with Python's memory (see bench/spawn_rss.c)."""
        spawn_rss = os.path.join(os.path.dirname(MEMGPT_BIN), "bench_spawn_rss")
        report = os.path.join(self.home, "rss.txt")
        proc = subprocess.run([spawn_rss, report, MEMGPT_BIN, "--home", self.home, *args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=self.memgpt_env(env),
                              timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(report) as f:
            return int(f.read().split()[0])

    def test_fresh_search_maps_the_index(self):
        """A search from a fresh process reads what it needs of the index
        file, not the file: its peak memory exceeds that of the same search
        by table scan (which streams the rows) by a fraction of the file's
        size. When the file was read whole, it exceeded it by all of it."""
        lines = "".join(json.dumps({"text": f"{made_up_word(self.rng)} {made_up_word(self.rng)} "
                                            f"noted as item {i}"}) + "\n" for i in range(10000))
        self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-", input=lines,
                        env=ENV, timeout=300, check=0)
        self.assertEqual(len(self.index_files()), 1)  # the insert built and saved it
        size_kb = os.path.getsize(os.path.join(self.home, "memgpt.db.index",
                                               self.index_files()[0])) // 1024
        args = ("archival", "search", "--agent", "a", "--json", "noted item 77")
        scan_kb = self.peak_rss_kb(*args, env={"MEMGPT_ARCHIVAL_INDEX_MIN": str(10**9)})
        index_kb = self.peak_rss_kb(*args)
        self.assertLess(index_kb - scan_kb, size_kb // 3,
                        f"index file {size_kb} kB; peak RSS {index_kb} kB through the index, "
                        f"{scan_kb} kB by scan")

    def test_delete_agent_removes_index(self):
        self.load(self.write_jsonl("first.jsonl", 50))
        self.search_ids("anything")
        index_dir = os.path.join(self.home, "memgpt.db.index")
        self.assertTrue(os.listdir(index_dir))
        self.run_memgpt("agents", "delete", "a", check=0)
        self.assertEqual(os.listdir(index_dir), [])


if __name__ == "__main__":
    main()
