#!/usr/bin/env python3
"""Persistence: state survives separate process runs, agents sharing one
home are isolated, and a process killed with SIGKILL at any point leaves a
sound database from which the next run carries on.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import MEMGPT_BIN, MemgptTestCase, main, only_providers  # noqa: E402

MODEL = "gpt-4o-mini"


def system_text(body):
    return body["messages"][0]["content"]


def request_text(body):
    """Everything a chat request carries, as one string (for 'contains' checks)."""
    parts = []
    for m in body["messages"]:
        parts.append(str(m.get("content") or ""))
        for c in m.get("tool_calls") or []:
            parts.append(c["function"]["arguments"])
    return "\n".join(parts)


def user_messages(body):
    out = []
    for m in body["messages"][1:]:
        if m["role"] != "user":
            continue
        try:
            ev = json.loads(m["content"])
        except ValueError:
            continue
        if isinstance(ev, dict) and ev.get("type") == "user_message":
            out.append(ev.get("message"))
    return out


class PersistenceCase(MemgptTestCase):

    @property
    def db_path(self):
        return os.path.join(self.home, "memgpt.db")

    def create(self, name, *extra):
        self.run_memgpt("agents", "create", name, "--idle-seconds", "off",
                        "--reflect-every", "off", *extra, check=0)

    def show(self, agent):
        return json.loads(self.run_memgpt("agents", "show", agent, "--json", check=0).stdout)

    def recall_all(self, agent):
        return json.loads(self.run_memgpt("recall", "list", "--agent", agent, "--json",
                                          "--limit", "100000", check=0).stdout)

    def memory(self, agent):
        blocks = json.loads(self.run_memgpt("memory", "show", "--agent", agent, "--json",
                                            check=0).stdout)
        return {b["label"]: b["value"] for b in blocks}

    def archival_search(self, agent, query):
        return json.loads(self.run_memgpt("archival", "search", "--agent", agent, "--json",
                                          query, check=0).stdout)

    def assert_db_sound(self, context=""):
        """The database opens with the stock sqlite3 module and passes
        PRAGMA integrity_check (which also replays any WAL)."""
        self.assertTrue(os.path.exists(self.db_path), f"no database at {self.db_path}")
        conn = sqlite3.connect(self.db_path, timeout=10)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        self.assertEqual(rows, [("ok",)], f"integrity_check failed {context}: {rows}")

    def start_send(self, text, agent, json_out=False):
        cmd = [MEMGPT_BIN, "--home", self.home, "send", "--agent", agent]
        if json_out:
            cmd.append("--json")
        cmd.append(text)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.memgpt_env())

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self.addCleanup(cleanup)
        return proc

    def wait_for_requests(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.mock.requests) < count:
            if time.monotonic() > deadline:
                self.fail(f"the mock never got request #{count}\n{self.describe_requests()}")
            time.sleep(0.01)

    @staticmethod
    def kill9(proc):
        """SIGKILL the process; returns (stdout, stderr) it wrote before dying."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        return out, err


class SurvivesRestartTest(PersistenceCase):

    def test_core_memory_edits_survive(self):
        self.create("a")
        self.run_memgpt("memory", "set", "--agent", "a", "human",
                        "Name: Ottoline. Likes: herons.", check=0)
        self.assertEqual(self.memory("a")["human"], "Name: Ottoline. Likes: herons.")

        # The model edits core memory in one process...
        self.mock.push({"content": "Remember this.", "tool_calls": [
            {"name": "core_memory_append",
             "arguments": {"label": "human", "content": "Allergic to walnuts."}},
            {"name": "send_message", "arguments": {"message": "Noted!"}}]})
        proc = self.send("I am allergic to walnuts", agent="a")
        self.assertEqual(proc.stdout.strip(), "Noted!")
        self.mock.push({"content": "Fix persona.", "tool_calls": [
            {"name": "core_memory_replace",
             "arguments": {"label": "persona", "old_content": "long memory",
                           "new_content": "very long memory"}},
            {"name": "send_message", "arguments": {"message": "Done."}}]})
        self.send("be yourself", agent="a")

        # ...and a later process sees both edits, in `memory show` and in
        # the system message it sends.
        mem = self.memory("a")
        self.assertIn("Name: Ottoline. Likes: herons.", mem["human"])
        self.assertIn("Allergic to walnuts.", mem["human"])
        self.assertIn("very long memory", mem["persona"])
        self.send("hello again", agent="a")
        system = system_text(self.mock.chat_requests()[-1])
        self.assertIn("Allergic to walnuts.", system)
        self.assertIn("Name: Ottoline", system)
        self.assertIn("very long memory", system)
        self.assert_all_requests_valid()

    def test_messages_survive(self):
        self.create("a")
        texts = ["first visit: my cat is Pumpernickel", "second visit", "third visit"]
        for t in texts:
            self.send(t, agent="a")
        self.send("fourth visit", agent="a")
        last = self.mock.chat_requests()[-1]
        self.assertEqual(user_messages(last), texts + ["fourth visit"])
        body = request_text(last)
        for t in texts:
            self.assertIn(f"You said: {t}", body, "earlier replies missing from the request")
        recall = self.recall_all("a")
        self.assertEqual([m["text"] for m in recall if m["kind"] == "user_message"],
                         texts + ["fourth visit"])
        show = json.loads(self.run_memgpt("agents", "show", "a", "--json", check=0).stdout)
        self.assertEqual(show["messages"], len(recall))
        self.assert_all_requests_valid()

    def test_summary_survives(self):
        self.mock.set_window(MODEL, 3400)
        self.create("a", "--context-window", "3400")
        for i in range(30):
            events = self.send(f"turn {i}: FACT: lantern{i} is lit", agent="a", json_out=True)
            if any("Context flush" in e.get("content", "") for e in events
                   if e["message_type"] == "system_message"):
                break
        else:
            self.fail("no flush within 30 turns in a 3400-token window")
        summary = self.mock.summaries[-1]
        # A fresh process shows the stored summary to the model.
        self.send("what did we talk about?", agent="a")
        system = system_text(self.mock.chat_requests()[-1])
        self.assertIn(summary, system)
        self.assertIn("older messages have left your view", system)
        show = json.loads(self.run_memgpt("agents", "show", "a", "--json", check=0).stdout)
        self.assertGreater(show["summarized"], 0)
        ctx = json.loads(self.run_memgpt("context", "--agent", "a", "--json", check=0).stdout)
        self.assertGreater(ctx["tokens"]["summary"], 0)
        # And the evicted messages are all still in recall memory.
        users = [m["text"] for m in self.recall_all("a") if m["kind"] == "user_message"]
        self.assertEqual(users[0], "turn 0: FACT: lantern0 is lit")
        self.assertEqual(users[-1], "what did we talk about?")
        self.assert_all_requests_valid()

    def test_archival_survives(self):
        self.create("a")
        self.run_memgpt("archival", "insert", "--agent", "a",
                        "The lighthouse keeper's name is Barnaby Quench.", check=0)
        self.run_memgpt("archival", "insert", "--agent", "a", "-",
                        input="Tomatoes grow well in July.\nThe boat is painted teal.\n",
                        check=0)
        self.assertEqual(self.show("a")["passages"], 3)
        found = self.archival_search("a", "lighthouse keeper name")
        self.assertGreaterEqual(found["total"], 1)
        self.assertEqual(found["results"][0]["text"],
                         "The lighthouse keeper's name is Barnaby Quench.")

        # The model inserts a passage in one process and finds all of them later.
        self.mock.push({"tool_calls": [
            {"name": "archival_memory_insert",
             "arguments": {"content": "The user's bicycle is called Whirligig."}},
            {"name": "send_message", "arguments": {"message": "Saved."}}]})
        self.send("remember my bicycle is Whirligig", agent="a")
        self.mock.push({"tool_calls": [
            {"name": "archival_memory_search",
             "arguments": {"query": "bicycle name", "request_heartbeat": True}}]})
        events = self.send("what is my bicycle called?", agent="a", json_out=True)
        returns = [e for e in events if e["message_type"] == "tool_return_message"]
        self.assertEqual(len(returns), 1, events)
        self.assertEqual(returns[0]["status"], "success", returns)
        self.assertIn("Whirligig", returns[0]["tool_return"])
        self.assertIn("Archival memory: 4 passages", system_text(self.mock.chat_requests()[-1]))
        self.assertEqual(self.show("a")["passages"], 4)
        self.assertEqual(self.archival_search("a", "boat painted teal")["results"][0]["text"],
                         "The boat is painted teal.")
        self.assert_all_requests_valid()


class IsolationTest(PersistenceCase):

    def test_many_agents_in_one_home_are_isolated(self):
        names = [f"agent{i}" for i in range(6)]
        for n in names:
            self.create(n)
        for n in names:
            self.run_memgpt("memory", "set", "--agent", n, "human", f"Secret word: {n}-kumquat",
                            check=0)
            self.run_memgpt("archival", "insert", "--agent", n, f"Archived note of {n} zebra",
                            check=0)
        # Interleave turns across agents.
        for turn in range(3):
            for n in names:
                self.send(f"{n} turn {turn}", agent=n)

        listed = json.loads(self.run_memgpt("agents", "list", "--json", check=0).stdout)
        listed_names = sorted(a["name"] if isinstance(a, dict) else a for a in listed)
        self.assertEqual(listed_names, sorted(names))

        for n in names:
            users = [m["text"] for m in self.recall_all(n) if m["kind"] == "user_message"]
            self.assertEqual(users, [f"{n} turn {t}" for t in range(3)])
            self.assertEqual(self.memory(n)["human"], f"Secret word: {n}-kumquat")
            arch = self.archival_search(n, "archived note zebra")
            self.assertEqual([r["text"] for r in arch["results"]], [f"Archived note of {n} zebra"])
            found = json.loads(self.run_memgpt("recall", "search", "--agent", n, "--json",
                                               "turn", "--limit", "50", check=0).stdout)
            for r in found["results"]:
                self.assertIn(n, r["text"], f"{n} sees another agent's message")

        # Each request carries only its own agent's memory and messages.
        for body in self.mock.chat_requests():
            system = system_text(body)
            owners = [n for n in names if f"{n}-kumquat" in system]
            self.assertEqual(len(owners), 1, system)
            owner = owners[0]
            for text in user_messages(body):
                self.assertTrue(text.startswith(owner + " "),
                                f"{owner}'s request carries {text!r}")

        # Deleting one agent leaves the others intact.
        self.run_memgpt("agents", "delete", "agent0", check=0)
        self.run_memgpt("recall", "list", "--agent", "agent0", check=1)
        self.assertEqual(len(self.recall_all("agent1")), 9)
        self.assertEqual(self.show("agent1")["passages"], 1)
        self.assertEqual(self.archival_search("agent1", "Archived note of agent1 zebra")
                         ["results"][0]["text"], "Archived note of agent1 zebra")
        self.assert_db_sound()
        self.assert_all_requests_valid()


    def test_concurrent_sends_to_different_agents(self):
        # Separate processes writing to the same database at the same time
        # (different agents) must all succeed: SQLite busy waits, not errors.
        names = [f"par{i}" for i in range(8)]
        for n in names:
            self.create(n)
        for rnd in range(3):
            procs = [(n, self.start_send(f"{n} parallel {rnd}", n)) for n in names]
            for n, proc in procs:
                out, err = proc.communicate(timeout=60)
                self.assertEqual(proc.returncode, 0, f"{n} round {rnd}: {err}")
                self.assertEqual(out, f"You said: {n} parallel {rnd}\n")
        for n in names:
            users = [m["text"] for m in self.recall_all(n) if m["kind"] == "user_message"]
            self.assertEqual(users, [f"{n} parallel {r}" for r in range(3)])
        for body in self.mock.chat_requests():
            owners = {t.split()[0] for t in user_messages(body)}
            self.assertEqual(len(owners), 1, f"a request mixes agents: {owners}")
        self.assert_db_sound()
        self.assert_all_requests_valid()


class KillTest(PersistenceCase):

    def test_kill_9_mid_request(self):
        self.create("a")
        self.send("before the crash: my dog is Biscuit", agent="a")
        n = len(self.mock.requests)

        self.mock.push({"delay": 3.0, "tool_calls": [
            {"name": "send_message", "arguments": {"message": "too late"}}]})
        proc = self.start_send("the message that was in flight", "a")
        self.wait_for_requests(n + 1)
        time.sleep(0.2)
        self.assertIsNone(proc.poll(), "send finished although its request was delayed")
        out, _ = self.kill9(proc)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertNotIn("too late", out)

        self.assert_db_sound("after kill -9 mid-request")
        users = [m["text"] for m in self.recall_all("a") if m["kind"] == "user_message"]
        self.assertEqual(users, ["before the crash: my dog is Biscuit",
                                 "the message that was in flight"])

        proc = self.send("are you there after the crash?", agent="a")
        self.assertEqual(proc.stdout.strip(), "You said: are you there after the crash?")
        last = self.mock.chat_requests()[-1]
        text = request_text(last)
        self.assertIn("before the crash: my dog is Biscuit", text)
        self.assertIn("You said: before the crash: my dog is Biscuit", text)
        self.assertIn("the message that was in flight", text)
        self.assertNotIn("too late", text)
        self.assert_db_sound("after the next send")
        self.assert_all_requests_valid()

    @only_providers("openai", "anthropic")  # Ollama truncates instead of refusing
    def test_kill_9_during_flush(self):
        self.mock.set_window(MODEL, 6000)
        self.create("a", "--context-window", "6000")
        texts = [f"early turn {i}: FACT: acorn{i}" for i in range(6)]
        for t in texts:
            self.send(t, agent="a")
        before = self.show("a")
        n = len(self.mock.requests)
        # The provider refuses the request as too long, so the binary
        # flushes; the summarizer call hangs and the process is killed.
        self.mock.push({"context_length_exceeded": True})
        self.mock.push({"delay": 3.0})
        proc = self.start_send("the turn that forced a flush", "a")
        self.wait_for_requests(n + 2)
        time.sleep(0.2)
        self.assertFalse(self.mock.requests[n + 1]["body"].get("tools"),
                         "the second request should be the summarizer call")
        self.kill9(proc)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assert_db_sound("after kill -9 during a flush")

        after = self.show("a")
        self.assertEqual(after["summarized"], before["summarized"],
                         "a summary that was never produced is recorded as done")
        recall = self.recall_all("a")
        users = [m["text"] for m in recall if m["kind"] == "user_message"]
        self.assertEqual(users, texts + ["the turn that forced a flush"])

        self.mock.reset()
        proc = self.send("after the interrupted flush", agent="a")
        self.assertEqual(proc.stdout.strip(), "You said: after the interrupted flush")
        last = self.mock.chat_requests()[-1]
        body = request_text(last)
        # Nothing was evicted, so the whole conversation is still in view.
        for t in texts:
            self.assertIn(t, body)
        self.assertIn("No messages have left your view yet.", system_text(last))
        self.assert_all_requests_valid()
        self.assert_db_sound("after the next send")

    def test_kill_9_at_random_points(self):
        seed = int(os.environ.get("MEMGPT_TEST_SEED", "20240611"))
        rng = random.Random(seed)
        self.create("a")
        self.send("setup turn", agent="a")

        def script(k):
            step = 0.12
            self.mock.push({"delay": step, "content": f"turn {k} step one", "tool_calls": [
                {"name": "send_message", "arguments": {"message": f"reply {k}.1"}},
                {"name": "core_memory_append",
                 "arguments": {"label": "human", "content": f"note {k}.",
                               "request_heartbeat": True}}]})
            self.mock.push({"delay": step, "content": f"turn {k} step two", "tool_calls": [
                {"name": "send_message", "arguments": {"message": f"reply {k}.2"}},
                {"name": "archival_memory_insert",
                 "arguments": {"content": f"passage {k}", "request_heartbeat": True}}]})
            self.mock.push({"delay": step, "content": f"turn {k} step three", "tool_calls": [
                {"name": "send_message", "arguments": {"message": f"reply {k}.3"}}]})

        # How long one whole turn takes here (a sanitizer build on a busy
        # machine starts several times slower): kills fall anywhere in it.
        script("calibration")
        started = time.monotonic()
        self.send("calibration turn", agent="a")
        span = (time.monotonic() - started) * 1.1
        printed = []
        for k in range(10):
            self.assert_all_requests_valid()
            self.mock.reset()  # drop specs a killed turn left unused
            script(k)
            proc = self.start_send(f"user turn {k}", "a")
            wait = rng.uniform(0.0, span)
            time.sleep(wait)
            out, err = self.kill9(proc)
            where = f"(iteration {k}, kill after {wait:.3f}s, seed {seed}, rc {proc.returncode})"
            self.assertIn(proc.returncode, (0, -signal.SIGKILL), f"{where}\n{err}")
            self.assert_db_sound(where)

            lines = [line for line in out.splitlines() if line.strip()]
            for line in lines:
                self.assertRegex(line, r"^reply \d+\.\d$", where)
            printed.extend(lines)
            recall = self.recall_all("a")
            texts = [m["text"] for m in recall]
            for line in printed:
                self.assertTrue(any(line in t for t in texts),
                                f"{where}: {line!r} was printed but is not in recall memory")
            if self.mock.requests:
                self.assertIn(f"user turn {k}", texts,
                              f"{where}: the request went out but the user message is not stored")
            if f"reply {k}.2" in lines:
                # Step one's tool calls committed with it.
                self.assertIn(f"note {k}.", self.memory("a")["human"], where)

        self.assert_all_requests_valid()
        self.mock.reset()
        proc = self.send("all calm now", agent="a")
        self.assertEqual(proc.stdout.strip(), "You said: all calm now")
        last = self.mock.chat_requests()[-1]
        # No flush happened (the window is large), so the whole surviving
        # conversation is in view: every reply printed before a kill too.
        self.assertIn("setup turn", request_text(last))
        for line in printed:
            self.assertIn(line, request_text(last))
        self.assertIn("all calm now", request_text(last))
        self.assert_all_requests_valid()
        self.assert_db_sound("at the end")
        self.assertTrue(printed, "no reply was ever printed before a kill; the kill points "
                                 "are too early to test anything")


if __name__ == "__main__":
    main()
