#!/usr/bin/env python3
"""Context overflow: the memory-pressure warning, flushes (eviction plus a
recursive summary), long conversations in a small window, the provider's
context_length_exceeded error, and /summarize in chat.

The mock counts tokens deterministically (see count_prompt_tokens) and
refuses any request larger than the model's window, so a client that lets
its context grow past the window fails loudly here.
"""

import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CHAT_PATH, MemgptTestCase, main, only_providers  # noqa: E402

MODEL = "gpt-4o-mini"
PRESSURE = "Memory pressure"
FLUSH = "Context flush"
SUMMARY_HEADER = "Summary of earlier conversation"
TURN1 = "FACT: zanzibar my sister's name is Quiltrude"
FAKE_NOW = 1_750_000_000  # 2025-06-15; each turn gets its own minute


def is_summarizer(body):
    return not body.get("tools")


def system_text(body):
    content = body["messages"][0]["content"]
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content)
    return content


def event_of(msg):
    """The JSON event a user-role message carries, or None."""
    if msg.get("role") != "user" or not isinstance(msg.get("content"), str):
        return None
    try:
        event = json.loads(msg["content"])
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def pressure_alerts(body):
    """The memory-pressure system_alert messages (raw content) in a request."""
    out = []
    for msg in body["messages"][1:]:
        event = event_of(msg)
        if (event and event.get("type") == "system_alert"
                and PRESSURE in str(event.get("message", ""))):
            out.append(msg["content"])
    return out


class OverflowCase(MemgptTestCase):
    """Helpers shared by the overflow tests."""

    def create_agent(self, name, window, *extra):
        self.mock.set_window(MODEL, window)
        self.run_memgpt("agents", "create", name, "--context-window", window,
                        "--idle-seconds", "off", *extra, check=0)

    def turn(self, text, agent, now=None, check=0):
        """One `send --json` turn; returns its events."""
        env = {"MEMGPT_FAKE_NOW": now} if now is not None else None
        return self.send(text, agent=agent, json_out=True, check=check, env=env)

    def context(self, agent):
        return json.loads(self.run_memgpt("context", "--agent", agent, "--json",
                                          check=0).stdout)

    def show(self, agent):
        return json.loads(self.run_memgpt("agents", "show", agent, "--json",
                                          check=0).stdout)

    def recall_all(self, agent):
        out = self.run_memgpt("recall", "list", "--agent", agent, "--json",
                              "--limit", "100000", check=0).stdout
        return json.loads(out)

    @staticmethod
    def system_notes(events, needle):
        return [e["content"] for e in events
                if e.get("message_type") == "system_message" and needle in e.get("content", "")]

    def assert_no_refusals(self):
        """Every request valid and answered 200 (no scripted errors in play)."""
        self.assert_all_requests_valid()
        bad = [r for r in self.mock.requests if r["status"] != 200]
        self.assertFalse(bad, "requests not answered 200:\n" + self.describe_requests())


class MemoryPressureTest(OverflowCase):

    def test_warning_inserted_once_per_fill_up(self):
        self.create_agent("a", 3400, "--reflect-every", "off")
        marks = []  # per turn: "W" (warning), "F" (flush), "WF"/"FW", or ""
        multi_step_done = False
        for i in range(36):
            events = self.turn(f"turn {i}: FACT: word{i} tell me something nice",
                               "a", now=FAKE_NOW + 60 * i)
            warned = self.system_notes(events, PRESSURE)
            flushed = self.system_notes(events, FLUSH)
            self.assertLessEqual(len(warned), 1, f"turn {i}: two warnings in one turn: {events}")
            self.assertLessEqual(len(flushed), 1, f"turn {i}: {events}")
            mark = ""
            for e in events:
                if e.get("message_type") == "system_message":
                    if PRESSURE in e["content"]:
                        mark += "W"
                    elif FLUSH in e["content"]:
                        mark += "F"
            marks.append(mark)

            if mark == "W" and not multi_step_done:
                # Right after a warning the context is far from the flush
                # point: a two-step turn must not get a second warning.
                multi_step_done = True
                before = len(self.mock.chat_requests())
                self.mock.push({"content": "Saving something.", "tool_calls": [{
                    "name": "archival_memory_insert",
                    "arguments": {"content": "FACT: sparrow likes tea",
                                  "request_heartbeat": True}}]})
                events = self.turn("another message while warned", "a",
                                   now=FAKE_NOW + 60 * i + 30)
                self.assertEqual(self.mock.pending(), 0)
                reqs = self.mock.chat_requests()[before:]
                self.assertEqual(len(reqs), 2, "expected a two-step turn")
                self.assertFalse(self.system_notes(events, PRESSURE),
                                 f"warning repeated within the same fill-up: {events}")
                for body in reqs:
                    self.assertFalse(is_summarizer(body))
                    self.assertEqual(len(pressure_alerts(body)), 1,
                                     "each step of the turn should carry the one warning")
                marks.append("")

        seq = "".join(marks)
        self.assertGreaterEqual(seq.count("W"), 2, f"warn/flush sequence: {marks}")
        self.assertGreaterEqual(seq.count("F"), 2, f"warn/flush sequence: {marks}")
        self.assertEqual(seq[0], "W", f"the first fill-up should warn before flushing: {marks}")
        self.assertNotIn("WW", seq, f"warned twice without a flush in between: {marks}")
        self.assertNotIn("FF", seq, f"flushed twice with no warning in between: {marks}")

        # The wire view: each warning is a new system_alert message (unique,
        # since every turn has its own pinned time), first seen only after a
        # flush (a summarizer call) has happened since the previous one.
        seen = set()
        summarized_since_last = True
        new_alerts = 0
        for body in self.mock.chat_requests():
            if is_summarizer(body):
                summarized_since_last = True
                continue
            alerts = pressure_alerts(body)
            self.assertLessEqual(len(alerts), 1,
                                 "more than one memory-pressure alert in view at once")
            for alert in alerts:
                if alert in seen:
                    continue
                seen.add(alert)
                new_alerts += 1
                self.assertTrue(summarized_since_last,
                                "a second memory-pressure alert was inserted before any flush")
                summarized_since_last = False
        self.assertEqual(new_alerts, seq.count("W"))

        # The alerts are stored as messages too: one per fill-up.
        stored = [m for m in self.recall_all("a")
                  if m["kind"] == "system_alert" and PRESSURE in m["text"]]
        self.assertEqual(len(stored), seq.count("W"), stored)
        self.assert_no_refusals()

    def test_warning_appears_in_request_and_is_stored(self):
        self.create_agent("a", 3400, "--reflect-every", "off")
        for i in range(12):
            events = self.turn(f"hello number {i}", "a", now=FAKE_NOW + 60 * i)
            if self.system_notes(events, PRESSURE):
                break
        else:
            self.fail("no memory-pressure warning within 12 turns in a 3400-token window")
        last = self.mock.chat_requests()[-1]
        self.assertEqual(len(pressure_alerts(last)), 1,
                         "the request after the warning should carry the system_alert")
        ctx = self.context("a")
        self.assertTrue(ctx["warned"], ctx)
        self.assertGreater(ctx["total"], ctx["warn_at"] - 200, ctx)
        self.assert_no_refusals()


class LongConversationTest(OverflowCase):

    TURNS = 200

    def test_two_hundred_turns_in_a_small_window(self):
        self.create_agent("a", 3400)
        texts = [TURN1] + [f"turn {i}: FACT: item{i} the weather is fine today"
                           for i in range(2, self.TURNS + 1)]
        for i, text in enumerate(texts, 1):
            events = self.turn(text, "a")
            self.assertEqual(events[-1]["message_type"], "usage_statistics",
                             f"turn {i}: {events}")

        summaries = self.mock.summaries
        self.assertTrue(summaries, "200 turns in a 3400-token window never flushed")
        bodies = self.mock.chat_requests()
        summarizer_calls = [b for b in bodies if is_summarizer(b)]
        self.assertEqual(len(summarizer_calls), len(summaries))
        self.assertGreaterEqual(len(summaries), 5)
        for body in summarizer_calls:
            text = "".join(str(m.get("content")) for m in body["messages"])
            self.assertIn("Previous summary:", text)
            self.assertIn("Messages leaving the context window:", text)

        # The newest summary is in the system message of every later request.
        produced = 0
        for body in bodies:
            if is_summarizer(body):
                produced += 1
                continue
            system = system_text(body)
            self.assertIn(SUMMARY_HEADER, system)
            if produced:
                self.assertIn(summaries[produced - 1], system,
                              f"request after summary #{produced} does not show it")
                self.assertIn("older messages have left your view", system)
            else:
                self.assertIn("No messages have left your view yet.", system)

        # Every request passed the mock's validation: tool pairing intact
        # after every eviction, and never over the window.
        self.assert_no_refusals()
        for body in bodies:
            self.assertFalse(any(m["role"] == "tool" for m in body["messages"][1:2]),
                             "a request's queue starts with an orphaned tool result")

        # Nothing lost: every user message is still in recall memory.
        recall = self.recall_all("a")
        users = [m["text"] for m in recall if m["kind"] == "user_message"]
        self.assertEqual(len(users), self.TURNS)
        self.assertEqual(users, texts)
        self.assertEqual(len({m["id"] for m in recall}), len(recall))
        show = self.show("a")
        self.assertEqual(show["messages"], len(recall))
        self.assertGreater(show["summarized"], 0)
        self.assertLess(show["in_context"], len(recall))

        found = json.loads(self.run_memgpt("recall", "search", "--agent", "a", "--json",
                                           "Quiltrude", check=0).stdout)
        self.assertGreaterEqual(found["total"], 1)
        self.assertIn(TURN1, [r["text"] for r in found["results"]])

        # Get to just after a flush so the next turn cannot trigger one
        # (a summarizer call would consume the scripted response).
        for i in range(40):
            events = self.turn(f"filler {i}", "a")
            if self.system_notes(events, FLUSH):
                break
        else:
            self.fail("no flush within 40 more turns")
        self.assertFalse(any(TURN1 in str(m.get("content"))
                             for m in self.mock.chat_requests()[-1]["messages"]),
                         "turn 1 should be long out of view")

        before = len(self.mock.chat_requests())
        self.mock.push({"content": "The user asks about family; searching.", "tool_calls": [{
            "name": "conversation_search",
            "arguments": {"query": "Quiltrude", "request_heartbeat": True}}]})
        events = self.turn("what is my sister called?", "a")
        self.assertEqual(self.mock.pending(), 0)
        returns = [e for e in events if e["message_type"] == "tool_return_message"]
        self.assertEqual(len(returns), 1, events)
        self.assertEqual(returns[0]["name"], "conversation_search")
        self.assertEqual(returns[0]["status"], "success", returns[0])
        result = json.loads(returns[0]["tool_return"])
        self.assertEqual(result["status"], "OK")
        self.assertIn("my sister's name is Quiltrude", json.dumps(result["message"]))

        # The model got the same result as a tool message on the next step.
        later = self.mock.chat_requests()[before:]
        self.assertGreaterEqual(len(later), 2)
        tool_msgs = [m for m in later[1]["messages"] if m["role"] == "tool"]
        self.assertTrue(tool_msgs)
        self.assertIn("Quiltrude", tool_msgs[-1]["content"])
        self.assert_no_refusals()


class AfterFlushTest(OverflowCase):

    def test_context_well_under_warn_after_flush(self):
        self.create_agent("a", 8000, "--reflect-every", "off")
        padding = "lorem ipsum dolor sit amet " * 12
        flushed_at = None
        for i in range(60):
            events = self.turn(f"turn {i}: {padding}", "a")
            if self.system_notes(events, FLUSH):
                flushed_at = i
                break
        self.assertIsNotNone(flushed_at, "no flush within 60 long turns in 8000 tokens")
        ctx = self.context("a")
        self.assertFalse(ctx["warned"], ctx)
        self.assertLess(ctx["total"], ctx["warn_at"], ctx)
        self.assertLessEqual(ctx["total"], 0.8 * ctx["warn_at"],
                             f"after a flush the context should be well under warn_at: {ctx}")
        self.assertGreater(ctx["tokens"]["summary"], 0, ctx)
        self.assertGreaterEqual(ctx["messages_in_view"], 3, ctx)
        # The binary's own estimate agrees with what it then sends.
        self.turn("one more", "a")
        last = self.mock.chat_requests()[-1]
        self.assertIn(self.mock.summaries[-1], system_text(last))
        self.assert_no_refusals()


class ContextLengthExceededTest(OverflowCase):

    @only_providers("openai", "anthropic")  # Ollama truncates instead of refusing
    def warmed_up_agent(self):
        """Agent "a" (window 6000) after six turns, nothing flushed yet."""
        self.create_agent("a", 6000, "--reflect-every", "off")
        for i in range(6):
            self.turn(f"warm-up {i}: FACT: pebble{i} something to remember", "a")

    def test_provider_refusal_forces_flush_and_retry(self):
        self.warmed_up_agent()
        self.assertEqual(self.mock.summaries, [])
        n_before = len(self.mock.requests)

        self.mock.push({"context_length_exceeded": True})
        proc = self.send("are you still there?", agent="a")
        self.assertEqual(proc.stdout.strip(), "You said: are you still there?")

        new = self.mock.requests[n_before:]
        statuses = [(r["status"], bool(r["body"].get("tools"))) for r in new]
        self.assertEqual(new[0]["status"], 400, statuses)
        self.assertEqual(new[-1]["status"], 200, statuses)
        self.assertTrue(any(not r["body"].get("tools") for r in new[1:-1]),
                        f"no summarizer call between the refusal and the retry: {statuses}")
        self.assertEqual(len(self.mock.summaries), 1)
        self.assertTrue(all(r["status"] == 200 for r in new[1:]), statuses)
        refused, retried = new[0]["body"], new[-1]["body"]
        self.assertLess(len(retried["messages"]), len(refused["messages"]))
        self.assertIn(self.mock.summaries[-1], system_text(retried))
        self.assertIn("are you still there?", retried["messages"][-1]["content"])
        # Nothing lost, the turn stored once.
        users = [m["text"] for m in self.recall_all("a") if m["kind"] == "user_message"]
        self.assertEqual(users.count("are you still there?"), 1)
        self.assertEqual(len(users), 7)
        self.assertGreater(self.show("a")["summarized"], 0)
        self.assert_all_requests_valid()

    @only_providers("openai", "anthropic")  # Ollama truncates instead of refusing
    def test_summarizer_refusal_sends_smaller_chunks(self):
        # The provider counts a summarizer request over its window (a
        # coarser count than ours): the same messages go again, in chunks
        # half the size, and the turn goes on.
        self.warmed_up_agent()
        n_before = len(self.mock.requests)
        self.mock.push({"context_length_exceeded": True})  # the agent's request
        self.mock.push({"context_length_exceeded": True})  # the summarizer's
        proc = self.send("still there?", agent="a")
        self.assertEqual(proc.stdout.strip(), "You said: still there?")
        new = self.mock.requests[n_before:]
        summarizer = [r for r in new if not r["body"].get("tools")]
        self.assertEqual(summarizer[0]["status"], 400, self.describe_requests())
        retried = [r for r in summarizer[1:] if r["status"] == 200]
        self.assertGreaterEqual(len(retried), 1, self.describe_requests())
        refused_len = len(summarizer[0]["body"]["messages"][-1]["content"])
        self.assertLess(len(retried[0]["body"]["messages"][-1]["content"]), refused_len)
        # Every fact of the refused chunk reached the summaries.
        for i in range(2):
            self.assertTrue(any(f"pebble{i}" in s for s in self.mock.summaries),
                            self.mock.summaries)
        self.assertEqual(new[-1]["status"], 200)
        self.assert_all_requests_valid()


class StressTest(OverflowCase):

    def test_random_large_messages_stay_valid(self):
        seed = int(os.environ.get("MEMGPT_TEST_SEED", "7"))
        rng = random.Random(seed)
        self.create_agent("a", 8000, "--reflect-every", "off")
        words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
        sent = []
        for i in range(40):
            # Up to ~2000 tokens; the echo doubles it in the next request.
            n = rng.choice([1, 5, 50, 400, 900, 1500])
            text = f"msg {i}: " + " ".join(rng.choice(words) for _ in range(n))
            events = self.turn(text, "a")
            self.assertEqual(events[-1]["message_type"], "usage_statistics",
                             f"seed {seed} turn {i}: {events[-3:]}")
            sent.append(text)
        self.assertTrue(self.mock.summaries, "40 large turns in 8000 tokens never flushed")
        # The binary estimates tokens without the tokenizer (and the mock's
        # count is synthetic), so with message sizes jumping around it may
        # now and then send a request a little over the window. That is what
        # the context_length_exceeded fallback is for: such a refusal must be
        # followed by a flush (summarizer call) and a retry that succeeds.
        # Anything else the mock refused is a real error.
        records = self.mock.requests
        for i, r in enumerate(records):
            if r["valid"]:
                continue
            self.assertIn("maximum context length", r["error"] or "",
                          f"seed {seed}: request {i} refused: {r['error']}")
            self.assertLess(i + 2, len(records))
            self.assertFalse(records[i + 1]["body"].get("tools"),
                             f"seed {seed}: no flush after the refusal of request {i}")
            self.assertEqual(records[i + 1]["status"], 200)
        self.assertLessEqual(sum(not r["valid"] for r in records), 10,
                             f"seed {seed}: the estimate keeps overshooting the window")
        users = [m["text"] for m in self.recall_all("a") if m["kind"] == "user_message"]
        self.assertEqual(users, sent)

    def test_big_tool_results_mid_turn_stay_valid(self):
        # Large search results land mid-turn and push the context past the
        # flush point; every follow-up step must still fit in the window and
        # keep tool calls paired with their results (the mock refuses
        # anything else). A mid-turn flush makes a summarizer call that takes
        # the next scripted response, so each one also carries usable
        # summary text.
        self.create_agent("a", 5000, "--reflect-every", "off")
        long_text = "needle " + "haystack straw " * 120
        for i in range(8):
            self.turn(f"{long_text} #{i}", "a")
        # Enough scripted steps for the summarizer calls of the flush (as many
        # as the evicted text needs chunks) and at least two searches after.
        for i in range(8):
            self.mock.push({"content": f"FACT: hay{i} searching page {i}", "tool_calls": [{
                "name": "conversation_search",
                "arguments": {"query": "needle haystack", "page": i % 3,
                              "request_heartbeat": True}}]})
        events = self.turn("search for the needle please", "a")
        self.assertEqual(events[-1]["message_type"], "usage_statistics", events)
        returns = [e for e in events if e["message_type"] == "tool_return_message"]
        self.assertGreaterEqual(len(returns), 2, events)
        self.assertTrue(all(e["status"] == "success" for e in returns), returns)
        kinds = [("F" if FLUSH in e.get("content", "") else "R")
                 for e in events if e["message_type"] in ("system_message", "tool_return_message")
                 and PRESSURE not in e.get("content", "")]
        self.assertIn("RF", "".join(kinds),
                      f"expected a flush after a tool result, mid-turn: {kinds}")
        self.assert_no_refusals()
        self.mock.reset()
        self.turn("and now?", "a")
        self.assert_no_refusals()

    @only_providers("openai", "anthropic")  # Ollama truncates instead of refusing
    def test_persistent_context_length_exceeded_fails_cleanly(self):
        self.create_agent("a", 6000, "--reflect-every", "off")
        for i in range(5):
            self.turn(f"warm-up {i}", "a")
        n = len(self.mock.requests)
        for _ in range(40):
            self.mock.push({"context_length_exceeded": True})
        proc = self.send("this will never fit", agent="a", check=None, timeout=60)
        self.assertEqual(proc.returncode, 1,
                         f"expected exit 1\n{proc.stdout}\n{proc.stderr}\n"
                         f"{self.describe_requests()}")
        lines = proc.stderr.strip().splitlines()
        self.assertTrue(lines and lines[-1].startswith("memgpt: "), proc.stderr)
        self.assertLess(len(self.mock.requests) - n, 40,
                        "the client kept retrying an over-long request")
        users = [m["text"] for m in self.recall_all("a") if m["kind"] == "user_message"]
        self.assertIn("this will never fit", users)
        self.assertEqual(len(users), 6, "a message was lost")
        # And the agent is usable afterwards.
        self.mock.reset()
        self.turn("does it still work?", "a")
        self.assert_all_requests_valid()


class SummarizeCommandTest(OverflowCase):

    def test_summarize_in_chat_forces_flush(self):
        self.create_agent("a", 8000, "--reflect-every", "off")
        for i in range(6):
            self.turn(f"chat warm-up {i}: FACT: marble{i}", "a")
        before_ctx = self.context("a")
        self.assertEqual(self.mock.summaries, [])
        proc = self.run_memgpt("chat", "--agent", "a", input="/summarize\n/exit\n", check=0)
        self.assertEqual(len(self.mock.summaries), 1,
                         f"/summarize made no summarizer call\n{proc.stdout}\n{proc.stderr}")
        self.assertIn(FLUSH, proc.stdout + proc.stderr)
        after_ctx = self.context("a")
        self.assertLess(after_ctx["messages_in_view"], before_ctx["messages_in_view"] + 2)
        self.assertGreater(after_ctx["tokens"]["summary"], before_ctx["tokens"]["summary"])
        self.assertGreater(self.show("a")["summarized"], 0)
        # The summary reaches the model on the next turn.
        self.turn("after the summary", "a")
        system = system_text(self.mock.chat_requests()[-1])
        self.assertIn(self.mock.summaries[-1], system)
        self.assertIn("older messages have left your view", system)
        self.assert_no_refusals()

    def test_piped_chat_runs_one_turn_per_line(self):
        self.create_agent("a", 8000, "--reflect-every", "off")
        lines = [f"piped line {i}" for i in range(5)]
        proc = self.run_memgpt("chat", "--agent", "a", input="\n".join(lines) + "\n", check=0)
        for line in lines:
            self.assertIn(f"You said: {line}", proc.stdout)
        bodies = self.mock.chat_requests()
        first = event_of(bodies[0]["messages"][-1])
        self.assertEqual(first and first.get("type"), "login", "login turn should come first")
        users = [m["text"] for m in self.recall_all("a") if m["kind"] == "user_message"]
        self.assertEqual(users, lines)
        self.assert_no_refusals()




class ChunkedSummaryTest(MemgptTestCase):
    """Evicted material larger than one summarizer call is folded in parts:
    each call gets the summary so far plus the next chunk."""

    def test_flush_summarizes_in_chunks(self):
        self.run_memgpt("agents", "create", "c", "--context-window", "8000",
                        "--reflect-every", "off", check=0)
        self.mock.set_window("gpt-4o-mini", 8000)
        words = " ".join(f"FACT: item{i} lorem ipsum dolor sit amet" for i in range(100))
        for turn in range(8):
            self.send(f"turn {turn}: {words}", agent="c")
        bodies = [r["body"] for r in self.mock.requests
                  if r["path"] == CHAT_PATH and r["status"] == 200]
        runs, current = [], 0
        for body in bodies:
            if "tools" in body:
                if current:
                    runs.append(current)
                current = 0
            else:
                current += 1
        self.assertTrue(any(n >= 2 for n in runs),
                        f"no flush needed more than one summarizer call: {runs}")
        summaries = [b for b in bodies if "tools" not in b]
        # Each later call in a run carries the previous call's summary forward.
        for earlier, later in zip(summaries, summaries[1:]):
            previous = self.mock.summaries[summaries.index(earlier)]
            self.assertIn(previous, later["messages"][-1]["content"])
        self.assert_all_requests_valid()


if __name__ == "__main__":
    main()
