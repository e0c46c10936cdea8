#!/usr/bin/env python3
"""`memgpt check`: a healthy home passes, and each kind of damage it is
meant to find is found, named, and makes it exit 1.

The damage is done the way bugs or crashes would leave it: straight into
the database file with sqlite3 (bypassing memgpt), into the vector index
file, or as the temporary file of a save that died.
"""
import fcntl
import glob
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MemgptTestCase, main, only_providers  # noqa: E402

ENV = {"MEMGPT_ARCHIVAL_INDEX_MIN": "0"}  # every search through the index


@only_providers("openai")
class CheckTest(MemgptTestCase):

    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", "a", "--idle-seconds", "off",
                        "--reflect-every", "off", check=0)
        lines = "".join(json.dumps({"text": f"passage number {i} about topic {i % 7}"}) + "\n"
                        for i in range(40))
        self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-", input=lines,
                        env=ENV, check=0)
        # A turn with a function call and its result, then a reply.
        self.mock.push({"tool_calls": [{"name": "core_memory_append", "arguments": json.dumps(
            {"label": "human", "content": "likes tea", "request_heartbeat": True})}]})
        self.send("hello", agent="a")
        self.run_memgpt("archival", "search", "--agent", "a", "topic", env=ENV, check=0)

    def check(self, status):
        proc = self.run_memgpt("check", "--json", env=ENV, check=status)
        return json.loads(proc.stdout)

    def db(self):
        return sqlite3.connect(os.path.join(self.home, "memgpt.db"))

    def assert_problem(self, report, words):
        self.assertFalse(report["ok"], report)
        self.assertTrue(any(words in p for p in report["problems"]),
                        f"no problem mentions {words!r}: {report['problems']}")

    def index_file(self):
        files = glob.glob(os.path.join(self.home, "memgpt.db.index", "agent-*.mgx"))
        self.assertEqual(len(files), 1, files)
        return files[0]

    def test_healthy_home_passes(self):
        report = self.check(0)
        self.assertEqual(report["problems"], [])
        agent = report["agents"][0]
        self.assertEqual(agent["name"], "a")
        self.assertEqual(agent["passages"], 40)
        self.assertGreaterEqual(agent["messages"], 5)
        self.assertEqual(len(agent["indexes"]), 1, agent)
        self.assertEqual(agent["indexes"][0]["embedder"], "offline")
        self.assertEqual(agent["indexes"][0]["vectors"], 40)
        self.assertEqual(agent["indexes"][0]["missing"], 0)
        human = self.run_memgpt("check", env=ENV, check=0).stdout
        self.assertIn("no problems found", human)

    def test_function_result_lost(self):
        with self.db() as con:
            con.execute("DELETE FROM messages WHERE role = 'tool' AND in_context = 1 AND id = "
                        "(SELECT min(id) FROM messages WHERE role = 'tool')")
            con.execute("UPDATE agents SET message_count = message_count")  # keeps counts true
        self.assert_problem(self.check(1), "has no result in context")

    def test_result_without_call(self):
        with self.db() as con:
            con.execute("UPDATE messages SET tool_calls = NULL WHERE id = "
                        "(SELECT min(id) FROM messages WHERE tool_calls IS NOT NULL)")
        self.assert_problem(self.check(1), "answers no call")

    def test_kept_count_wrong(self):
        with self.db() as con:
            con.execute("UPDATE agents SET passage_count = passage_count + 1")
        self.assert_problem(self.check(1), "passage_count is 41, but it has 40 passages")

    def test_full_text_index_out_of_step(self):
        with self.db() as con:
            rowid, text = con.execute("SELECT id, search_text FROM messages "
                                      "WHERE search_text != '' LIMIT 1").fetchone()
            con.execute("INSERT INTO messages_fts(messages_fts, rowid, search_text) "
                        "VALUES ('delete', ?, ?)", (rowid, text))
        self.assert_problem(self.check(1), "messages_fts disagrees")

    def test_vector_changed_behind_the_index(self):
        with self.db() as con:
            # The first passage gets the second one's vector.
            blob, = con.execute("SELECT embedding FROM passages ORDER BY id LIMIT 1 OFFSET 1"
                                ).fetchone()
            con.execute("UPDATE passages SET embedding = ? WHERE id = "
                        "(SELECT min(id) FROM passages)", (blob,))
        self.assert_problem(self.check(1), "disagrees with the table")

    def test_damaged_index_file(self):
        path = self.index_file()
        with open(path, "r+b") as f:
            size = os.path.getsize(path)
            f.seek(size - 8)
            tail = f.read(8)
            f.seek(size - 8)
            f.write(bytes(b ^ 0x5A for b in tail))
        self.assert_problem(self.check(1), "the index file")

    def test_stray_temporary_removed(self):
        stray = self.index_file() + ".tmp-AbC123"
        with open(stray, "wb") as f:
            f.write(b"half a save")
        report = self.check(0)
        self.assertEqual(report["stray_files_removed"], 1, report)
        self.assertFalse(os.path.exists(stray))

    def test_temporary_of_a_live_save_kept(self):
        live = self.index_file() + ".tmp-LiVe12"
        with open(live, "wb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # as a save in progress holds it
            report = self.check(0)
            self.assertTrue(os.path.exists(live))
            self.assertEqual(report["stray_files_removed"], 0, report)

    def test_unknown_file_in_index_folder(self):
        with open(os.path.join(self.home, "memgpt.db.index", "notes.txt"), "w") as f:
            f.write("not ours")
        self.assert_problem(self.check(1), "files no agent uses")

if __name__ == "__main__":
    main()
