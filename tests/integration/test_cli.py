#!/usr/bin/env python3
"""Integration tests of the `memgpt` command line: agents, memory, recall,
archival and context commands, exit codes, error messages, bad input, and
data files it must refuse to touch.
"""

import calendar
import hashlib
import json
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import MEMGPT_BIN, MemgptTestCase, main, only_providers  # noqa: E402


def epoch(year, month, day, hour=12):
    return calendar.timegm((year, month, day, hour, 0, 0))


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class CliTestCase(MemgptTestCase):
    def create(self, name, *options, check=0):
        return self.run_memgpt("agents", "create", name, *options, check=check)

    def json_of(self, *args, **kwargs):
        proc = self.run_memgpt(*args, check=0, **kwargs)
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            self.fail(f"memgpt {' '.join(map(str, args))} printed non-JSON ({exc}):\n"
                      f"{proc.stdout}")

    def assert_error(self, proc, code, *substrings):
        """Exit status `code`, nothing on stdout, and exactly one stderr line
        starting "memgpt: " that contains each substring (case-insensitive)."""
        self.assertEqual(proc.returncode, code,
                         f"exit {proc.returncode}, expected {code}\nstdout: {proc.stdout!r}\n"
                         f"stderr: {proc.stderr!r}")
        self.assertEqual(proc.stdout, "", "an error must not print on stdout")
        self.assertTrue(proc.stderr.startswith("memgpt: "), repr(proc.stderr))
        self.assertTrue(proc.stderr.endswith("\n"), repr(proc.stderr))
        self.assertEqual(proc.stderr.count("\n"), 1, f"error must be one line: {proc.stderr!r}")
        for s in substrings:
            self.assertIn(s.lower(), proc.stderr.lower())

    def run_bytes(self, args, stdin_bytes, env=None, timeout=60):
        """Runs the binary with raw bytes on stdin (and bytes-capable argv)."""
        cmd = [os.fsencode(MEMGPT_BIN), b"--home", os.fsencode(self.home)]
        cmd += [a if isinstance(a, bytes) else str(a).encode() for a in args]
        proc = subprocess.run(cmd, input=stdin_bytes, capture_output=True,
                              env=self.memgpt_env(env), timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode,
                                           proc.stdout.decode("utf-8", "replace"),
                                           proc.stderr.decode("utf-8", "replace"))

    def names(self):
        return [a["name"] for a in self.json_of("agents", "list", "--json")]

    def recall(self, agent):
        return self.json_of("recall", "list", "--agent", agent, "--json", "--limit", "1000")

    def memory(self, agent):
        return {b["label"]: b for b in self.json_of("memory", "show", "--agent", agent, "--json")}


# --------------------------------------------------------------------------

class AgentsTest(CliTestCase):
    @only_providers("openai")  # names openai/ models
    def test_create_list_show_delete(self):
        proc = self.create("alpha", "--model", "openai/gpt-4o", "--context-window", "4096",
                           "--step-limit", "3", "--reflect-every", "5")
        self.assertIn("alpha", proc.stdout)
        self.create("beta")

        text = self.run_memgpt("agents", "list", check=0).stdout
        self.assertIn("alpha", text)
        self.assertIn("beta", text)
        listed = self.json_of("agents", "list", "--json")
        self.assertIsInstance(listed, list)
        by_name = {a["name"]: a for a in listed}
        self.assertEqual(set(by_name), {"alpha", "beta"})
        alpha = by_name["alpha"]
        self.assertEqual(alpha["model"], "openai/gpt-4o")
        self.assertEqual(alpha["context_window"], 4096)
        self.assertEqual(alpha["settings"]["step_limit"], 3)
        self.assertEqual(alpha["settings"]["reflect_every"], 5)
        self.assertEqual(by_name["beta"]["model"], "openai/gpt-4o-mini")

        shown = self.json_of("agents", "show", "alpha", "--json")
        self.assertEqual(shown, alpha)
        text = self.run_memgpt("agents", "show", "alpha", check=0).stdout
        self.assertIn("alpha", text)
        self.assertIn("4096", text)

        # A message shows up in the counts.
        self.send("hello alpha", agent="alpha")
        self.assertEqual(self.mock.chat_requests()[0]["model"], "gpt-4o")
        self.assertGreaterEqual(self.json_of("agents", "show", "alpha", "--json")["messages"], 1)

        self.run_memgpt("agents", "delete", "alpha", check=0)
        self.assertEqual(self.names(), ["beta"])
        self.assert_error(self.run_memgpt("agents", "show", "alpha"), 1, "no agent named")
        # Its memory went with it: a new agent of the same name starts empty.
        self.create("alpha")
        self.assertEqual(self.recall("alpha"), [])
        self.run_memgpt("agents", "delete", "alpha", check=0)
        self.run_memgpt("agents", "delete", "beta", check=0)
        self.assertEqual(self.json_of("agents", "list", "--json"), [])
        self.assertEqual(self.run_memgpt("agents", "list", check=0).returncode, 0)
        self.assert_all_requests_valid()

    def test_agents_are_isolated(self):
        self.create("one")
        self.create("two")
        self.send("the secret word is marmalade", agent="one")
        self.run_memgpt("archival", "insert", "--agent", "one", "marmalade recipe", check=0)
        self.run_memgpt("memory", "set", "--agent", "one", "human", "likes marmalade", check=0)
        self.assertEqual(self.json_of("recall", "search", "--agent", "two", "--json",
                                      "marmalade")["total"], 0)
        self.assertEqual(self.json_of("archival", "search", "--agent", "two", "--json",
                                      "marmalade")["total"], 0)
        self.assertNotIn("marmalade", self.memory("two")["human"]["value"])
        self.assertEqual(self.recall("two"), [])
        self.assertGreater(self.json_of("recall", "search", "--agent", "one", "--json",
                                        "marmalade")["total"], 0)
        # Deleting an agent removes its passages too.
        self.run_memgpt("agents", "delete", "one", check=0)
        self.create("one")
        self.assertEqual(self.json_of("agents", "show", "one", "--json")["passages"], 0)
        self.assertEqual(self.json_of("archival", "search", "--agent", "one", "--json",
                                      "marmalade")["total"], 0)

    def test_duplicate_name(self):
        self.create("dup", "--persona", "first persona")
        self.assert_error(self.create("dup", "--persona", "second persona", check=None), 1,
                          "already exists", "dup")
        self.assertEqual(self.names(), ["dup"])
        self.assertEqual(self.memory("dup")["persona"]["value"], "first persona")

    def test_unknown_name(self):
        self.create("real")
        for args in (("agents", "show", "ghost"), ("agents", "show", "ghost", "--json"),
                     ("agents", "delete", "ghost"), ("send", "--agent", "ghost", "hi"),
                     ("memory", "show", "--agent", "ghost"),
                     ("memory", "set", "--agent", "ghost", "human", "x"),
                     ("recall", "list", "--agent", "ghost"),
                     ("archival", "insert", "--agent", "ghost", "text"),
                     ("context", "--agent", "ghost")):
            with self.subTest(args=args):
                self.assert_error(self.run_memgpt(*args), 1, "no agent named", "ghost")
        self.assertEqual(self.names(), ["real"])
        self.assertEqual(self.mock.chat_requests(), [])

    def test_invalid_names(self):
        for name in ("", " lead", "trail ", "x" * 101, "tab\tname", "new\nline", "del\x7f"):
            with self.subTest(name=name):
                self.assert_error(self.create(name, check=None), 2)
        self.assertEqual(self.names(), [])
        # The edges of what is allowed: any one line of text, as Letta's
        # names are ("My Assistant"); names are never paths.
        for name in ("x" * 100, "a", "A.b_c-9", "-dash", ".dot", "has space", "a/b", "../up",
                     "naïve ✓", "semi;colon", "quote'd", "star*"):
            with self.subTest(name=name):
                proc = self.run_memgpt("agents", "create", "--", name) if name.startswith("-") \
                    else self.create(name, check=None)
                self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("x" * 100, self.names())
        self.assertIn("../up", self.names())

    def test_persona_and_human_from_file(self):
        persona = os.path.join(self.home, "persona.txt")
        text = "I am Sage.\nI speak in haiku. ✿ Über-calm."
        with open(persona, "w", encoding="utf-8") as f:
            f.write(text)
        human = os.path.join(self.home, "human.txt")
        with open(human, "w", encoding="utf-8") as f:
            f.write("The user is called Lin.")
        self.create("sage", "--persona", "@" + persona, "--human", "@" + human)
        blocks = self.memory("sage")
        self.assertEqual(blocks["persona"]["value"], text)
        self.assertEqual(blocks["persona"]["chars"], len(text))
        self.assertEqual(blocks["human"]["value"], "The user is called Lin.")

        self.send("hi", agent="sage")
        system = self.mock.chat_requests()[0]["messages"][0]["content"]
        self.assertIn(text, system)
        self.assertIn("The user is called Lin.", system)

        # Literal text (no @) is used as is.
        self.create("plain", "--persona", "Just text.")
        self.assertEqual(self.memory("plain")["persona"]["value"], "Just text.")

        # A missing file is an error and creates nothing.
        proc = self.create("broken", "--persona", "@" + os.path.join(self.home, "missing.txt"),
                           check=None)
        self.assertIn(proc.returncode, (1, 2))
        self.assert_error(proc, proc.returncode, "missing.txt")
        self.assertNotIn("broken", self.names())
        self.assert_all_requests_valid()

    @only_providers("openai")  # the default agent is openai/gpt-4o-mini
    def test_default_agent_auto_created(self):
        self.assertEqual(self.names(), [])
        events = self.send("hello default", json_out=True)
        self.assertEqual(events[-1]["message_type"], "usage_statistics")
        listed = self.json_of("agents", "list", "--json")
        self.assertEqual([a["name"] for a in listed], ["default"])
        self.assertEqual(listed[0]["model"], "openai/gpt-4o-mini")
        self.assertEqual(self.mock.chat_requests()[0]["model"], "gpt-4o-mini")
        # Later commands without --agent use it.
        texts = [r["text"] for r in self.json_of("recall", "list", "--json")]
        self.assertIn("hello default", texts)
        self.send("second")
        self.assertEqual(self.names(), ["default"])
        self.assert_all_requests_valid()

    def test_memgpt_agent_env(self):
        self.create("bob")
        self.create("carol")
        self.send("for bob", env={"MEMGPT_AGENT": "bob"})
        self.assertIn("for bob", [r["text"] for r in self.recall("bob")])
        self.assertEqual(self.recall("carol"), [])
        self.assertNotIn("default", self.names(), "MEMGPT_AGENT must replace the default")
        # --agent wins over the environment.
        self.send("for carol", agent="carol", env={"MEMGPT_AGENT": "bob"})
        self.assertIn("for carol", [r["text"] for r in self.recall("carol")])
        self.assertNotIn("for carol", [r["text"] for r in self.recall("bob")])
        # Other commands honour it too.
        shown = json.loads(self.run_memgpt("memory", "show", "--json", check=0,
                                           env={"MEMGPT_AGENT": "carol"}).stdout)
        self.assertEqual({b["label"] for b in shown}, {"persona", "human"})
        # A named agent that does not exist is an error, never auto-created.
        self.assert_error(self.send("hi", check=None, env={"MEMGPT_AGENT": "ghost"}), 1,
                          "no agent named", "ghost")
        self.assertEqual(sorted(self.names()), ["bob", "carol"])


# --------------------------------------------------------------------------

class MemoryTest(CliTestCase):
    def test_set_and_show(self):
        self.create("m", "--human", "unknown")
        self.assertEqual(self.run_memgpt("memory", "set", "--agent", "m", "human",
                                         "Name: Ada", check=0).returncode, 0)
        blocks = self.json_of("memory", "show", "--agent", "m", "--json")
        self.assertIsInstance(blocks, list)
        for b in blocks:
            self.assertEqual(set(b), {"id", "label", "value", "limit", "chars", "description",
                                      "read_only"})
            self.assertRegex(b["id"], r"^block-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                                      r"[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            self.assertIsInstance(b["limit"], int)
            self.assertIsInstance(b["read_only"], bool)
        human = {b["label"]: b for b in blocks}["human"]
        self.assertEqual(human["value"], "Name: Ada")
        self.assertEqual(human["chars"], 9)
        self.assertFalse(human["read_only"])

        text = self.run_memgpt("memory", "show", "--agent", "m", check=0).stdout
        self.assertIn("human", text)
        self.assertIn("Name: Ada", text)
        self.assertIn("persona", text)

        # The edit reaches the model.
        self.send("hi", agent="m")
        self.assertIn("Name: Ada", self.mock.chat_requests()[0]["messages"][0]["content"])
        self.assert_all_requests_valid()

    def test_set_from_file(self):
        self.create("m")
        path = os.path.join(self.home, "persona.md")
        value = "Line one.\nLine two — with unicode ☃.\n\nLine four."
        with open(path, "w", encoding="utf-8") as f:
            f.write(value)
        self.run_memgpt("memory", "set", "--agent", "m", "persona", "@" + path, check=0)
        block = self.memory("m")["persona"]
        self.assertEqual(block["value"], value)
        self.assertEqual(block["chars"], len(value))
        proc = self.run_memgpt("memory", "set", "--agent", "m", "persona",
                               "@" + path + ".nope")
        self.assertIn(proc.returncode, (1, 2))
        self.assert_error(proc, proc.returncode, ".nope")
        self.assertEqual(self.memory("m")["persona"]["value"], value)

    def test_set_over_limit(self):
        self.create("m", "--human", "short")
        limit = self.memory("m")["human"]["limit"]
        proc = self.run_memgpt("memory", "set", "--agent", "m", "human", "y" * (limit + 1))
        self.assertIn(proc.returncode, (1, 2))
        self.assert_error(proc, proc.returncode, "limit")
        self.assertEqual(self.memory("m")["human"]["value"], "short")
        # Exactly at the limit is fine, counted in characters.
        self.run_memgpt("memory", "set", "--agent", "m", "human", "é" * limit, check=0)
        self.assertEqual(self.memory("m")["human"]["chars"], limit)
        path = os.path.join(self.home, "big.txt")
        with open(path, "w") as f:
            f.write("z" * (limit + 50))
        proc = self.run_memgpt("memory", "set", "--agent", "m", "human", "@" + path)
        self.assertIn(proc.returncode, (1, 2))
        self.assert_error(proc, proc.returncode, "limit")
        self.assertEqual(self.memory("m")["human"]["value"], "é" * limit)

    def test_usage_errors(self):
        self.create("m")
        for args in (("memory",), ("memory", "frobnicate"), ("memory", "set", "--agent", "m"),
                     ("memory", "set", "--agent", "m", "human"),
                     ("memory", "show", "--agent", "m", "extra"),
                     ("memory", "show", "--bogus")):
            with self.subTest(args=args):
                self.assert_error(self.run_memgpt(*args), 2)


# --------------------------------------------------------------------------

class RecallTest(CliTestCase):
    def setUp(self):
        super().setUp()
        self.create("r")
        for day, text in ((1, "apple pie on the first"), (2, "banana bread on the second"),
                          (3, "apple crumble on the third"), (4, "cherry tart on the fourth")):
            self.send(text, agent="r", env={"MEMGPT_FAKE_NOW": epoch(2024, 6, day)})

    def test_list(self):
        rows = self.json_of("recall", "list", "--agent", "r", "--json")
        self.assertEqual(len(rows), 12)  # each turn: user message, assistant, tool result
        for row in rows:
            self.assertEqual(set(row), {"id", "message_id", "time", "role", "kind", "text"})
            self.assertRegex(row["message_id"], r"^message-[0-9a-f-]{36}$")
        self.assertEqual([r["id"] for r in rows], sorted(r["id"] for r in rows))
        self.assertEqual(rows[0]["text"], "apple pie on the first")
        self.assertEqual(rows[0]["role"], "user")
        self.assertEqual(rows[0]["kind"], "user_message")
        self.assertTrue(rows[0]["time"].startswith("2024-06-01"), rows[0])

        last2 = self.json_of("recall", "list", "--agent", "r", "--json", "--limit", "2")
        self.assertEqual([r["id"] for r in last2], [r["id"] for r in rows[-2:]])
        text = self.run_memgpt("recall", "list", "--agent", "r", check=0).stdout
        self.assertIn("cherry tart on the fourth", text)

    def test_search(self):
        found = self.json_of("recall", "search", "--agent", "r", "--json", "apple")
        self.assertEqual(set(found), {"total", "page", "pages", "results"})
        # Two user messages and the mock's two "You said: ..." replies.
        self.assertEqual(found["total"], 4)
        self.assertEqual(found["page"], 0)
        self.assertEqual(found["pages"], 1)
        for r in found["results"]:
            self.assertEqual(set(r), {"id", "message_id", "time", "role", "kind", "text", "score"})
            self.assertIn("apple", r["text"])

        limited = self.json_of("recall", "search", "--agent", "r", "--json", "--limit", "3",
                               "apple")
        self.assertEqual((limited["total"], limited["pages"], len(limited["results"])),
                         (4, 2, 3))
        page1 = self.json_of("recall", "search", "--agent", "r", "--json", "--limit", "3",
                             "--page", "1", "apple")
        self.assertEqual((page1["page"], len(page1["results"])), (1, 1))
        seen = {r["id"] for r in limited["results"]} | {r["id"] for r in page1["results"]}
        self.assertEqual(seen, {r["id"] for r in found["results"]})

        ranged = self.json_of("recall", "search", "--agent", "r", "--json", "--from",
                              "2024-06-02", "--to", "2024-06-03", "apple")
        self.assertEqual(ranged["total"], 2)
        self.assertTrue(all(r["time"].startswith("2024-06-03") for r in ranged["results"]))
        # A date range alone lists what was said then.
        dated = self.json_of("recall", "search", "--agent", "r", "--json", "--from",
                             "2024-06-02", "--to", "2024-06-02")
        self.assertEqual(dated["total"], 2)
        self.assertTrue(all("banana" in r["text"] for r in dated["results"]))
        since = self.json_of("recall", "search", "--agent", "r", "--json", "--from",
                             "2024-06-04", "on")
        self.assertTrue(since["results"])
        self.assertTrue(all("cherry" in r["text"] for r in since["results"]))

        text = self.run_memgpt("recall", "search", "--agent", "r", "apple", check=0).stdout
        self.assertIn("apple crumble", text)
        none = self.json_of("recall", "search", "--agent", "r", "--json", "durian")
        self.assertEqual((none["total"], none["results"]), (0, []))

    def test_search_all(self):
        # The mock's monologue ("User said something; replying.") and the
        # send_message results ("Sent.") are found only with --all.
        default = self.json_of("recall", "search", "--agent", "r", "--json", "replying")
        self.assertEqual((default["total"], default["results"]), (0, []))
        found = self.json_of("recall", "search", "--agent", "r", "--json", "--all", "replying")
        self.assertEqual(found["total"], 4)
        for r in found["results"]:
            self.assertEqual(set(r), {"id", "message_id", "time", "role", "kind", "text", "inner",
                                     "score"})
            self.assertEqual(r["role"], "assistant")
            self.assertTrue(r["text"].startswith("You said: "), r)
            self.assertEqual(r["inner"], "User said something; replying.")
        results = self.json_of("recall", "search", "--agent", "r", "--json", "--all", "sent")
        self.assertEqual(results["total"], 4)
        self.assertTrue(all((r["role"], r["text"], r["inner"]) == ("tool", "", "send_message: Sent.")
                            for r in results["results"]), results)
        self.assertEqual(self.json_of("recall", "search", "--agent", "r", "--json", "sent")["total"],
                         0)
        # Words said are found the same way, now with the inner text beside them.
        apple = self.json_of("recall", "search", "--agent", "r", "--json", "--all", "apple")
        self.assertEqual(apple["total"], 4)
        # Dates combine with it, with and without words.
        dated = self.json_of("recall", "search", "--agent", "r", "--json", "--all", "--from",
                             "2024-06-02", "--to", "2024-06-02", "replying")
        self.assertEqual(dated["total"], 1)
        self.assertTrue(dated["results"][0]["time"].startswith("2024-06-02"))
        day = self.json_of("recall", "search", "--agent", "r", "--json", "--all", "--from",
                           "2024-06-02", "--to", "2024-06-02")
        self.assertEqual([r["role"] for r in day["results"]], ["user", "assistant", "tool"])
        # Paging is stable.
        pages = [self.json_of("recall", "search", "--agent", "r", "--json", "--all",
                              "--limit", "3", "--page", str(p), "replying")["results"]
                 for p in (0, 1)]
        self.assertEqual(sorted(r["id"] for page in pages for r in page),
                         sorted(r["id"] for r in found["results"]))
        text = self.run_memgpt("recall", "search", "--agent", "r", "--all", "replying",
                               check=0).stdout
        self.assertIn("assistant: You said: apple pie on the first", text)
        self.assertIn("(assistant) User said something; replying.", text)
        for query in ('"replying', "replying*", "inner_text:replying", "{inner_text}: replying",
                      "NEAR(replying said)", "replying AND NOT"):
            with self.subTest(query=query):
                proc = self.run_memgpt("recall", "search", "--agent", "r", "--json", "--all",
                                       query)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertGreaterEqual(json.loads(proc.stdout)["total"], 4)
                proc = self.run_memgpt("recall", "search", "--agent", "r", "--json", query)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertFalse(any("replying" in r["text"]
                                     for r in json.loads(proc.stdout)["results"]))
        self.assert_error(self.run_memgpt("recall", "list", "--agent", "r", "--all"), 2, "--all")
        self.assert_error(self.run_memgpt("archival", "search", "--agent", "r", "--all", "x"),
                          2, "--all")
        usage = self.run_memgpt("--help", check=0)
        self.assertIn("--all", usage.stdout + usage.stderr)

    def test_search_with_fts_syntax(self):
        for query in ('"apple', "apple*", "(apple", "apple)", "apple OR", "NEAR(apple pie)",
                      "apple AND NOT", "text:apple", "^apple", "apple + -banana", "'apple'"):
            with self.subTest(query=query):
                proc = self.run_memgpt("recall", "search", "--agent", "r", "--json", query)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                found = json.loads(proc.stdout)
                self.assertGreaterEqual(found["total"], 4, found)
                self.assertTrue(any("apple" in r["text"] for r in found["results"]))
        for query in ('"', "*", "()", "NEAR", "OR", "AND NOT", '"*"'):
            with self.subTest(query=query):
                proc = self.run_memgpt("recall", "search", "--agent", "r", "--json", query)
                self.assertIn(proc.returncode, (0, 2), proc.stderr)
                if proc.returncode:
                    self.assert_error(proc, 2)
                else:
                    self.assertIn("total", json.loads(proc.stdout))
                for leak in ("fts5", "syntax error", "sqlite"):
                    self.assertNotIn(leak, proc.stderr.lower())
        archival = self.run_memgpt("archival", "search", "--agent", "r", "--json",
                                   '"apple* OR (NEAR')
        self.assertEqual(archival.returncode, 0, archival.stderr)

    def test_bad_options(self):
        for args in (("--from", "June 2"), ("--to", "2024-02-30"), ("--limit", "0"),
                     ("--limit", "many"), ("--page", "-1"), ("--from",)):
            with self.subTest(args=args):
                self.assert_error(self.run_memgpt("recall", "search", "--agent", "r", *args,
                                                  "apple"), 2)
        self.assert_error(self.run_memgpt("recall", "search", "--agent", "r"), 2)
        self.assert_error(self.run_memgpt("recall", "list", "--agent", "r", "query"), 2)
        self.assert_error(self.run_memgpt("recall", "frob"), 2)


# --------------------------------------------------------------------------

class ArchivalCliTest(CliTestCase):
    def setUp(self):
        super().setUp()
        self.create("a")

    def search(self, query, *options):
        return self.json_of("archival", "search", "--agent", "a", "--json", *options, query)

    def passages(self):
        return self.json_of("agents", "show", "a", "--json")["passages"]

    def test_insert_text(self):
        proc = self.run_memgpt("archival", "insert", "--agent", "a",
                               "The capital of Australia is Canberra.", check=0)
        self.assertIn("1", proc.stdout)
        found = self.search("Canberra")
        self.assertEqual(set(found), {"total", "page", "pages", "results"})
        self.assertEqual(found["total"], 1)
        r = found["results"][0]
        self.assertEqual(set(r), {"id", "passage_id", "time", "text", "tags", "score",
                                  "similarity"})
        self.assertRegex(r["passage_id"], r"^passage-[0-9a-f-]{36}$")
        self.assertEqual(r["text"], "The capital of Australia is Canberra.")
        self.assertEqual(r["tags"], [])
        # Several words join into one passage.
        self.run_memgpt("archival", "insert", "--agent", "a", "two", "words", check=0)
        self.assertEqual(self.search("two words")["results"][0]["text"], "two words")
        self.assertEqual(self.passages(), 2)
        text = self.run_memgpt("archival", "search", "--agent", "a", "Canberra", check=0).stdout
        self.assertIn("Canberra", text)
        self.assert_error(self.run_memgpt("archival", "insert", "--agent", "a"), 2)
        self.assert_error(self.run_memgpt("archival", "search", "--agent", "a"), 2)

    def test_tags(self):
        insert = ("archival", "insert", "--agent", "a")
        self.run_memgpt(*insert, "--tag", "trip", "--tag", "2024", "Hiking in the Alps", check=0)
        self.run_memgpt(*insert, "--tag", "trip", "Hiking in Patagonia next year", check=0)
        self.run_memgpt(*insert, "--tag", "trip", "-",
                        input="a train trip to Oslo\na hiking boot sale\n", check=0)
        self.run_memgpt(*insert, "Hiking boots need new laces", check=0)
        def texts(*options):
            return sorted(r["text"] for r in self.search("hiking", *options)["results"])
        self.assertIn("Hiking boots need new laces", texts())
        # Only tagged passages (the hybrid ranking may add the Oslo trip by
        # similarity), every hiking one among them.
        tagged = texts("--tag", "trip")
        self.assertLessEqual({"Hiking in Patagonia next year", "Hiking in the Alps",
                              "a hiking boot sale"}, set(tagged))
        self.assertNotIn("Hiking boots need new laces", tagged)
        self.assertEqual(texts("--tag", "trip", "--tag", "2024"), ["Hiking in the Alps"])
        self.assertEqual(texts("--tag", "Trip"), [])  # exact, case-sensitive
        found = self.search("hiking", "--tag", "2024")["results"][0]
        self.assertEqual(sorted(found["tags"]), ["2024", "trip"])
        self.assertEqual(texts("--tag", "trip", "--to", "2001-01-01"), [])
        self.assert_error(self.run_memgpt("recall", "search", "--agent", "a", "--tag", "x", "y"),
                          2)
        self.assert_error(self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl",
                                          "--tag", "x", "-", input="{}"), 2)
        self.assert_error(self.run_memgpt("archival", "search", "--agent", "a", "--tag"), 2)
        self.assert_error(self.run_memgpt(*insert, "--tag", os.fsdecode(b"bad\xff"), "zebra"), 2)

    def test_insert_from_stdin(self):
        lines = "first passage about owls\n\nsecond passage about otters\r\n\n\n" \
                "third passage about ospreys\n"
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "-", input=lines, check=0)
        self.assertIn("3", proc.stdout)
        self.assertEqual(self.passages(), 3)
        self.assertEqual(self.search("otters")["results"][0]["text"],
                         "second passage about otters")
        owls = self.search("owls")
        self.assertEqual(owls["results"][0]["text"], "first passage about owls")

    def test_insert_from_stdin_skips_blank_lines(self):
        # "One passage per non-empty line": a line of only spaces holds no
        # passage (the binary itself calls it "empty"), so it is skipped too.
        lines = "owls hoot\n   \n\t\nherons wade\n"
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "-", input=lines)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.passages(), 2)

    def test_insert_jsonl(self):
        lines = "\n".join([
            json.dumps({"text": "Met Priya at the Lisbon conference.",
                        "tags": ["people", "travel"], "time": "2023-05-01"}),
            json.dumps({"text": "Priya likes green tea.", "time": 1700000000}),
            json.dumps({"text": "Untimed, untagged note about Lisbon trams."}),
        ])
        self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-", input=lines,
                        check=0)
        self.assertEqual(self.passages(), 3)
        found = {r["text"]: r for r in self.search("Priya Lisbon", "--limit", "10")["results"]}
        first = found["Met Priya at the Lisbon conference."]
        self.assertEqual(first["tags"], ["people", "travel"])
        self.assertTrue(first["time"].startswith("2023-05-01"), first)
        tea = found["Priya likes green tea."]
        self.assertEqual(tea["time"], "2023-11-14T22:13:20Z")
        self.assertEqual(tea["tags"], [])

    def test_insert_jsonl_malformed(self):
        good = json.dumps({"text": "a fine passage"})
        for bad in ('{"text": "unterminated', "not json at all", '["text", "array"]',
                    json.dumps({"tags": ["no text"]}),
                    json.dumps({"text": "bad tags", "tags": "notalist"}),
                    json.dumps({"text": "bad time", "time": "last tuesday"})):
            with self.subTest(bad=bad):
                proc = self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-",
                                       input=good + "\n" + bad + "\n")
                self.assertIn(proc.returncode, (1, 2), proc.stderr)
                self.assertTrue(proc.stderr.startswith("memgpt: "), proc.stderr)
                self.assertEqual(proc.stderr.count("\n"), 1, proc.stderr)
                self.assertIn("line 2", proc.stderr)
        self.assert_error(self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl",
                                          "text"), 2)

    def test_insert_jsonl_in_batches(self):
        # Passages go in by the thousand; a bad line past the first batches
        # keeps every line before it and none after it.
        lines = [json.dumps({"text": f"ledger entry {i} about harbour dues"})
                 for i in range(2500)]
        lines[2344] = '{"text": "broken'
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-",
                               input="\n".join(lines) + "\n")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("line 2345", proc.stderr)
        self.assertIn("the 2344 passages before it were stored", proc.stderr)
        self.assertEqual(self.passages(), 2344)
        texts = [r["text"] for r in self.search("ledger entry 2343 harbour",
                                                "--limit", "3")["results"]]
        self.assertIn("ledger entry 2343 about harbour dues", texts)
        # The rest, once mended, goes in after them.
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-",
                               input="\n".join(lines[2345:]) + "\n", check=0)
        self.assertIn("inserted 155 passages", proc.stdout)
        self.assertEqual(self.passages(), 2499)

    def test_malformed_line_number_counts_blank_lines(self):
        # The error must name the line of the input, blank lines included.
        good = json.dumps({"text": "a fine passage"})
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-",
                               input=good + "\n\n\n" + "{broken\n")
        self.assertIn(proc.returncode, (1, 2), proc.stderr)
        self.assertIn("line 4", proc.stderr)

    def test_search_pages(self):
        lines = "\n".join(f"heron fact number {i}" for i in range(7))
        self.run_memgpt("archival", "insert", "--agent", "a", "-", input=lines, check=0)
        first = self.search("heron fact", "--limit", "5")
        self.assertEqual((first["total"], first["pages"], len(first["results"])), (7, 2, 5))
        second = self.search("heron fact", "--limit", "5", "--page", "1")
        self.assertEqual(len(second["results"]), 2)
        ids = {r["id"] for r in first["results"]} | {r["id"] for r in second["results"]}
        self.assertEqual(len(ids), 7)
        past = self.search("heron fact", "--limit", "5", "--page", "5")
        self.assertEqual(past["results"], [])


# --------------------------------------------------------------------------

class ContextTest(CliTestCase):
    def test_context_json_shape(self):
        self.create("c", "--context-window", "16000")
        ctx = self.json_of("context", "--agent", "c", "--json")
        self.assertEqual(set(ctx), {"tokens", "total", "context_window", "warn_at", "flush_at",
                                    "messages_in_view", "token_scale", "counter", "warned"})
        self.assertEqual(set(ctx["tokens"]), {"system_instructions", "core_memory",
                                              "memory_statistics", "summary", "messages",
                                              "tools"})
        for v in ctx["tokens"].values():
            self.assertIsInstance(v, int)
            self.assertGreaterEqual(v, 0)
        self.assertEqual(ctx["total"], sum(ctx["tokens"].values()))
        self.assertEqual(ctx["context_window"], 16000)
        self.assertEqual(ctx["warn_at"], 12000)
        self.assertEqual(ctx["flush_at"], 16000)
        self.assertEqual(ctx["messages_in_view"], 0)
        self.assertEqual(ctx["tokens"]["messages"], 0)
        self.assertIsInstance(ctx["token_scale"], (int, float))
        self.assertIsInstance(ctx["counter"], str)
        self.assertIs(ctx["warned"], False)

        self.send("hello context", agent="c")
        after = self.json_of("context", "--agent", "c", "--json")
        self.assertEqual(after["messages_in_view"], 3)  # user, assistant, tool result
        self.assertGreater(after["tokens"]["messages"], 0)
        self.assertEqual(after["total"], sum(after["tokens"].values()))

        text = self.run_memgpt("context", "--agent", "c", check=0).stdout
        self.assertIn("total", text)
        self.assertIn("16000", text)
        self.assert_error(self.run_memgpt("context", "--agent", "c", "extra"), 2)


# --------------------------------------------------------------------------

class ExitCodeTest(CliTestCase):
    def test_usage_errors_exit_2(self):
        for args in (("frobnicate",), ("--bogus", "agents", "list"), ("agents",),
                     ("agents", "frob"), ("agents", "create"), ("agents", "create", "a", "b"),
                     ("agents", "create", "a", "--context-window", "big"),
                     ("agents", "create", "a", "--step-limit", "0"),
                     ("agents", "create", "a", "--warn-fraction", "2"),
                     ("agents", "create", "a", "--model"),
                     ("agents", "show"), ("agents", "delete"), ("agents", "list", "extra"),
                     ("send",), ("send", "--agent"), ("send", "--nope", "hi"),
                     ("recall",), ("archival",), ("archival", "frob"), ("context", "--x")):
            with self.subTest(args=args):
                self.assert_error(self.run_memgpt(*args), 2)
        self.assertEqual(self.mock.chat_requests(), [])

    def test_no_command(self):
        proc = self.run_memgpt()
        self.assertEqual(proc.returncode, 2)
        self.assertIn("usage", proc.stderr.lower())

    def test_help_and_ok(self):
        proc = self.run_memgpt("--help", check=0)
        self.assertIn("usage", proc.stdout.lower())
        self.assertEqual(proc.stderr, "")
        proc = self.create("ok")
        self.assertEqual(proc.stderr, "")
        proc = self.send("hi", agent="ok")
        self.assertEqual(proc.stderr, "")
        self.assertEqual(proc.stdout, "You said: hi\n")

    def test_memgpt_home_env(self):
        # Without --home, MEMGPT_HOME names the data directory.
        home = os.path.join(self.home, "via-env")
        env = self.memgpt_env({"MEMGPT_HOME": home})
        proc = subprocess.run([MEMGPT_BIN, "agents", "create", "envy"], capture_output=True,
                              text=True, env=env, stdin=subprocess.DEVNULL, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(os.path.isfile(os.path.join(home, "memgpt.db")))
        self.assertEqual(self.names(), [])  # not in --home
        proc = self.run_memgpt("agents", "list", "--json", check=0, env={"MEMGPT_HOME": home})
        self.assertEqual(json.loads(proc.stdout), [], "--home must win over MEMGPT_HOME")

    @only_providers("openai")  # names OPENAI_API_KEY
    def test_runtime_errors_exit_1(self):
        self.create("x")
        self.assert_error(self.create("x", check=None), 1, "already exists")
        self.assert_error(self.run_memgpt("agents", "delete", "nobody"), 1, "no agent named")
        # No key and no base URL: the default provider needs OPENAI_API_KEY.
        proc = self.send("hi", agent="x", check=None,
                         env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None})
        self.assert_error(proc, 1, "OPENAI_API_KEY")
        self.assertEqual(self.recall("x"), [], "a send that cannot run stores nothing")


# --------------------------------------------------------------------------

class InputErrorTest(CliTestCase):
    def setUp(self):
        super().setUp()
        self.create("in")

    def assert_nothing_stored(self):
        self.assertEqual(self.recall("in"), [])
        self.assertEqual(self.mock.chat_requests(), [])

    def test_empty_message(self):
        for text in ("", "   ", "\n\t "):
            with self.subTest(text=text):
                self.assert_error(self.send(text, agent="in", check=None), 2)
        self.assert_error(self.run_memgpt("send", "--agent", "in", "-", input=""), 2)
        self.assert_error(self.run_memgpt("send", "--agent", "in", "-", input=" \n \n"), 2)
        self.assert_nothing_stored()

    def test_huge_message(self):
        big = ("lorem ipsum dolor sit amet " * 40000)[:1_000_000]
        proc = self.run_memgpt("send", "--agent", "in", "-", input=big)
        self.assert_error(proc, 1)
        self.assert_nothing_stored()
        proc_json = self.run_memgpt("send", "--agent", "in", "--json", "-", input=big)
        self.assert_error(proc_json, 1)
        self.assert_nothing_stored()
        # The agent still works afterwards.
        self.send("small one", agent="in")
        self.assertEqual(len(self.mock.chat_requests()), 1)
        # The reference's wording: a "too large" error.
        self.assertIn("too large", proc.stderr.lower())
        self.assertIn("too large", proc_json.stderr.lower())

    def test_invalid_utf8(self):
        for raw in (b"caf\xe9 au lait", b"\xff\xfe\xfd", b"ok then \xc3", b"\xed\xa0\x80 surrogate",
                    b"overlong \xc0\xaf"):
            with self.subTest(raw=raw):
                self.assert_error(self.run_bytes(["send", "--agent", "in", "-"], raw), 2,
                                  "utf-8")
                self.assert_error(self.run_bytes(["send", "--agent", "in", raw], b""), 2,
                                  "utf-8")
        self.assert_nothing_stored()

    def test_stdin_message(self):
        proc = self.run_bytes(["send", "--agent", "in", "-"],
                              "multi-line\nmessage with ünïcode".encode("utf-8"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        texts = [r["text"] for r in self.recall("in")]
        self.assertTrue(any(t.startswith("multi-line\nmessage with ünïcode") for t in texts),
                        texts)

    def test_stdin_read_error(self):
        """stdin that cannot be read (a directory: read fails with EISDIR)
        is an error, status 1, for every command that reads it; a read
        error must not pass for the end of the input, or a message or
        document cut short would be used as if whole."""
        commands = (("send", "--agent", "in", "-"),
                    ("archival", "insert", "--agent", "in", "-"),
                    ("archival", "insert", "--agent", "in", "--jsonl", "-"),
                    ("agents", "import", "-"))
        for args in commands:
            with self.subTest(args=args):
                fd = os.open(self.home, os.O_RDONLY)
                try:
                    proc = subprocess.run([MEMGPT_BIN, "--home", self.home, *args], stdin=fd,
                                          capture_output=True, text=True,
                                          env=self.memgpt_env(), timeout=30)
                finally:
                    os.close(fd)
                self.assert_error(proc, 1, "cannot read stdin", "is a directory")
        self.assert_nothing_stored()
        self.assertEqual(self.json_of("agents", "show", "in", "--json")["passages"], 0)
        self.assertEqual(self.names(), ["in"])


# --------------------------------------------------------------------------

class DataFileTest(CliTestCase):
    def db(self):
        return os.path.join(self.home, "memgpt.db")

    def assert_refused(self, *expect):
        path = self.db()
        before = file_digest(path)
        size = os.path.getsize(path)
        for args in (("agents", "list"), ("agents", "create", "new"), ("send", "hi"),
                     ("memory", "show"), ("archival", "insert", "text")):
            with self.subTest(args=args):
                self.assert_error(self.run_memgpt(*args), 1, *expect)
                self.assertEqual(file_digest(path), before, "the file must be left untouched")
                self.assertEqual(os.path.getsize(path), size)
        self.assertFalse(os.path.exists(path + "-wal"))
        self.assertFalse(os.path.exists(path + "-journal"))
        self.assertEqual(self.mock.chat_requests(), [])

    def test_random_bytes_refused(self):
        data = b"\x00garbage" + os.urandom(8192)
        with open(self.db(), "wb") as f:
            f.write(data)
        self.assert_refused("memgpt.db")

    def test_short_text_file_refused(self):
        with open(self.db(), "w") as f:
            f.write("hello\n")
        self.assert_refused("memgpt.db")

    def test_sqlite_header_then_garbage_refused(self):
        with open(self.db(), "wb") as f:
            f.write(b"SQLite format 3\x00" + os.urandom(9000))
        self.assert_refused("memgpt.db")

    def test_truncated_memgpt_database_refused(self):
        self.create("t")
        for i in range(5):
            self.run_memgpt("archival", "insert", "--agent", "t", f"passage {i} " * 200,
                            check=0)
        with open(self.db(), "rb") as f:
            data = f.read()
        self.assertFalse(os.path.exists(self.db() + "-wal") and
                         os.path.getsize(self.db() + "-wal") > 0,
                         "the database should be checkpointed after the binary exits")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.db() + suffix):
                os.remove(self.db() + suffix)
        with open(self.db(), "wb") as f:
            f.write(data[:len(data) // 2])
        self.assert_refused("memgpt.db")

    def test_foreign_sqlite_refused(self):
        con = sqlite3.connect(self.db())
        con.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
        con.executemany("INSERT INTO notes(body) VALUES (?)", [("a",), ("b",)])
        con.commit()
        con.close()
        self.assert_refused("memgpt.db", "not a memgpt")
        con = sqlite3.connect(self.db())
        self.assertEqual(con.execute("SELECT count(*) FROM notes").fetchone()[0], 2)
        con.close()

    def test_foreign_sqlite_with_agents_table_refused(self):
        # Someone else's database that happens to use the same table name.
        con = sqlite3.connect(self.db())
        con.execute("CREATE TABLE agents(name TEXT)")
        con.execute("PRAGMA user_version = 1")
        con.commit()
        con.close()
        self.assert_refused("memgpt.db")

    def test_unwritable_data_directory(self):
        # A data directory that cannot be created (a file is in the way):
        # fails even for root.
        blocker = os.path.join(self.home, "plainfile")
        with open(blocker, "w") as f:
            f.write("x")
        proc = subprocess.run([MEMGPT_BIN, "--home", os.path.join(blocker, "sub"),
                               "agents", "list"], capture_output=True, text=True,
                              env=self.memgpt_env(), stdin=subprocess.DEVNULL, timeout=30)
        self.assert_error(proc, 1, "plainfile")

        # The database path cannot be opened (it is a directory).
        os.mkdir(self.db())
        self.assert_error(self.run_memgpt("agents", "list"), 1, "memgpt.db")
        self.assert_error(self.send("hi", check=None), 1, "memgpt.db")
        self.assertEqual(os.listdir(self.db()), [])
        self.assertEqual(self.mock.chat_requests(), [])

    # The read-only cases need a user that file permissions apply to. As root
    # (common in containers) they run the binary as "nobody" instead.
    NOBODY = 65534

    def unprivileged(self):
        """Keyword arguments for subprocess.run that drop root, or {}."""
        if os.geteuid() != 0:
            return {}
        return {"user": self.NOBODY, "group": self.NOBODY, "extra_groups": []}

    def give_home_away(self):
        """As root: hands the data directory to the unprivileged user."""
        if os.geteuid() != 0:
            return
        for root, dirs, files in os.walk(self.home):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, self.NOBODY, self.NOBODY)

    def run_limited(self, *args, home=None):
        cmd = [MEMGPT_BIN, "--home", home or self.home, *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=self.memgpt_env(),
                                  stdin=subprocess.DEVNULL, timeout=30, **self.unprivileged())
        except PermissionError as exc:  # cannot switch user here
            self.skipTest(f"cannot run the binary as an unprivileged user: {exc}")

    def check_unprivileged_can_write(self):
        """Skips when permissions would not stop the process (root without a
        way to drop privileges)."""
        probe = os.path.join(self.home, "probe")
        os.mkdir(probe)
        self.give_home_away()
        os.chmod(probe, 0o555)
        proc = self.run_limited("agents", "list", home=os.path.join(probe, "x"))
        os.chmod(probe, 0o755)
        os.rmdir(os.path.join(probe, "x")) if os.path.isdir(os.path.join(probe, "x")) else None
        os.rmdir(probe)
        if proc.returncode == 0:
            self.skipTest("file permissions do not stop this process from writing "
                          "(running as root without a usable unprivileged user)")

    def test_read_only_data_directory(self):
        self.check_unprivileged_can_write()
        self.give_home_away()
        self.addCleanup(os.chmod, self.home, 0o755)
        os.chmod(self.home, 0o555)
        for args in (("agents", "list"), ("agents", "create", "x"), ("send", "hi")):
            with self.subTest(args=args):
                proc = self.run_limited(*args)
                self.assert_error(proc, 1, self.home)
                # A clear error says why, not only that opening failed.
                self.assertTrue(any(w in proc.stderr.lower() for w in
                                    ("read-only", "read only", "permission", "not writable")),
                                f"the error does not say the directory is read-only: "
                                f"{proc.stderr!r}")
        self.assertEqual(os.listdir(self.home), [])
        # A home that would have to be created inside the read-only directory.
        sub = os.path.join(self.home, "sub")
        self.assert_error(self.run_limited("agents", "list", home=sub), 1, sub)
        self.assertEqual(self.mock.chat_requests(), [])

    def test_read_only_existing_database(self):
        self.check_unprivileged_can_write()
        self.create("ro")
        self.send("before", agent="ro")
        db = self.db()
        files = [db + s for s in ("", "-wal", "-shm") if os.path.exists(db + s)]
        before = {f: file_digest(f) for f in files}
        self.give_home_away()
        self.addCleanup(os.chmod, self.home, 0o755)
        for f in files:
            self.addCleanup(os.chmod, f, 0o644)
            os.chmod(f, 0o444)
        os.chmod(self.home, 0o555)
        requests = len(self.mock.chat_requests())
        proc = self.run_limited("send", "--agent", "ro", "after")
        self.assert_error(proc, 1)
        self.assertEqual({f: file_digest(f) for f in files}, before)
        self.assertEqual(len(self.mock.chat_requests()), requests)
        # Reading still works, or fails with one clear line.
        proc = self.run_limited("memory", "show", "--agent", "ro")
        if proc.returncode:
            self.assert_error(proc, 1)


if __name__ == "__main__":
    main()
