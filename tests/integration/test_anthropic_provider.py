#!/usr/bin/env python3
"""The anthropic/ provider end to end: the real binary against the strict
Anthropic mock, for what the provider-neutral suite cannot see: the wire
format itself, the key variable, Anthropic's error statuses (529 overloaded,
"prompt is too long"), malformed replies and thinking blocks passed back.

These run in the Anthropic run of the suite only:

    MEMGPT_TEST_PROVIDER=anthropic MEMGPT_BIN=build/memgpt \
        python3 tests/integration/test_anthropic_provider.py
"""

import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CHAT_PATH, MemgptTestCase, main  # noqa: E402

AGENT = "a"


def call(name, arguments, call_id):
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id):
    return {"tool_calls": [call("send_message", {"message": text}, call_id)]}


class AnthropicCase(MemgptTestCase):
    providers = ("anthropic",)

    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", AGENT, "--reflect-every", "off",
                        "--idle-seconds", "off", check=0)

    def attempts(self):
        return [r for r in self.mock.requests if r["path"] == CHAT_PATH]

    def assert_clean_failure(self, proc, *needles):
        self.assertEqual(proc.returncode, 1, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("memgpt: "), lines[0])
        self.assertEqual(proc.stdout, "")
        for word in ("Segmentation", "Aborted", "core dumped", "AddressSanitizer"):
            self.assertNotIn(word, proc.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])
        return lines[0]

    def assert_recovers(self):
        self.mock.reset()
        proc = self.send("next turn", agent=AGENT)
        self.assertEqual(proc.stdout, "You said: next turn\n")
        self.assert_all_requests_valid()


class WireFormatTest(AnthropicCase):
    def test_request_shape_and_headers(self):
        self.assertEqual(self.send("hello", agent=AGENT).stdout, "You said: hello\n")
        record = self.attempts()[0]
        self.assertEqual(record["headers"]["anthropic-version"], "2023-06-01")
        self.assertEqual(record["headers"]["x-api-key"], "test-key")
        self.assertEqual(record["headers"]["content-type"], "application/json")
        body = self.mock.messages_requests()[0]
        self.assertEqual(set(body), {"model", "max_tokens", "system", "messages", "tools"})
        self.assertEqual(body["model"], "claude-sonnet-4-5")
        self.assertEqual(body["max_tokens"], 4096)
        self.assertIn("## Core memory", body["system"])
        for tool in body["tools"]:
            self.assertEqual(set(tool) - {"description"}, {"name", "input_schema"}, tool)
        self.assertIn("send_message", [t["name"] for t in body["tools"]])
        self.assertEqual(body["messages"][0]["role"], "user")
        self.assertEqual(json.loads(body["messages"][-1]["content"][-1]["text"])["message"],
                         "hello")

    def test_claude_window_is_the_default(self):
        show = json.loads(self.run_memgpt("agents", "show", AGENT, "--json",
                                          check=0).stdout)
        self.assertEqual(show["model"], "anthropic/claude-sonnet-4-5")
        self.assertEqual(show["context_window"], 200000)

    def test_results_and_heartbeat_share_one_user_turn(self):
        self.mock.push({"content": "Saving and searching.", "tool_calls": [
            call("core_memory_append", {"label": "human", "content": "Likes tea.",
                                        "request_heartbeat": True}, "toolu_1"),
            call("conversation_search", {"query": "tea", "request_heartbeat": True},
                 "toolu_2"),
        ]})
        self.mock.push(say("Noted.", "toolu_3"))
        self.assertEqual(self.send("I like tea", agent=AGENT).stdout, "Noted.\n")
        second = self.mock.messages_requests()[1]["messages"]
        roles = [m["role"] for m in second]
        self.assertEqual(roles, ["user", "assistant"] * (len(roles) // 2) + ["user"])
        assistant, last = second[-2], second[-1]
        self.assertEqual([b["type"] for b in assistant["content"]],
                         ["text", "tool_use", "tool_use"])
        self.assertEqual(assistant["content"][1]["input"]["content"], "Likes tea.")
        self.assertEqual([b["type"] for b in last["content"]],
                         ["tool_result", "tool_result", "text"])
        self.assertEqual([b["tool_use_id"] for b in last["content"][:2]],
                         ["toolu_1", "toolu_2"])
        self.assertEqual(json.loads(last["content"][2]["text"])["type"], "heartbeat")
        self.assert_all_requests_valid()

    def test_tool_call_arguments_are_compact_json(self):
        self.mock.push({"content": "Replying.", "tool_calls": [
            call("send_message", {"message": "Hi there"}, "toolu_9")]})
        events = self.send("hi", agent=AGENT, json_out=True)
        calls = [e for e in events if e["message_type"] == "tool_call_message"]
        self.assertEqual(calls[0]["tool_call"]["arguments"], '{"message":"Hi there"}')
        self.assertEqual(calls[0]["tool_call"]["tool_call_id"], "toolu_9")
        reasoning = [e for e in events if e["message_type"] == "reasoning_message"]
        self.assertEqual(reasoning[0]["reasoning"], "Replying.")

    def test_base_url_with_v1_suffix(self):
        proc = self.send("suffix", agent=AGENT,
                         env={"ANTHROPIC_BASE_URL": self.mock.base_url + "/v1/"})
        self.assertEqual(proc.stdout, "You said: suffix\n")
        self.assertEqual(self.attempts()[0]["path"], "/v1/messages")


class ErrorTest(AnthropicCase):
    def test_wrong_key_names_the_variable(self):
        proc = self.send("hello", agent=AGENT, check=None,
                         env={"ANTHROPIC_API_KEY": "sk-ant-wrong-123"})
        line = self.assert_clean_failure(proc, "ANTHROPIC_API_KEY", "invalid x-api-key")
        self.assertNotIn("sk-ant-wrong-123", line)
        self.assertEqual([r["status"] for r in self.attempts()], [401],
                         "an authentication failure must not be retried")
        self.assert_recovers()

    def test_403_is_an_auth_error(self):
        self.mock.push({"status": 403})
        proc = self.send("forbidden", agent=AGENT, check=None)
        self.assert_clean_failure(proc, "ANTHROPIC_API_KEY", "403")
        self.assertEqual(len(self.attempts()), 1)

    def test_no_key_for_the_real_api(self):
        proc = self.send("anyone?", agent=AGENT, check=None,
                         env={"ANTHROPIC_API_KEY": None, "ANTHROPIC_BASE_URL": None})
        self.assert_clean_failure(proc, "ANTHROPIC_API_KEY")
        self.assertEqual(self.mock.requests, [])

    def test_overloaded_and_rate_limited_are_retried(self):
        self.mock.push({"status": 529})
        self.mock.push({"status": 429, "headers": {"Retry-After": "0"}})
        self.mock.push({"status": 529})
        proc = self.send("busy", agent=AGENT)
        self.assertEqual(proc.stdout, "You said: busy\n")
        self.assertEqual([r["status"] for r in self.attempts()], [529, 429, 529, 200])
        bodies = [r["wire"] for r in self.attempts()]
        self.assertTrue(all(b == bodies[0] for b in bodies), "retries must resend the request")

    def test_overloaded_for_good(self):
        for _ in range(3):
            self.mock.push({"status": 529})
        proc = self.send("still busy", agent=AGENT, check=None,
                         env={"MEMGPT_MAX_RETRIES": "3"})
        self.assert_clean_failure(proc, "529", "overloaded_error")
        self.assertEqual(len(self.attempts()), 3)
        self.assert_recovers()

    def test_prompt_too_long_flushes_and_retries(self):
        for i in range(4):
            self.send(f"FACT: warm{i} up", agent=AGENT)
        base = len(self.attempts())
        self.mock.push({"context_length_exceeded": True})
        proc = self.send("needs room", agent=AGENT)
        self.assertEqual(proc.stdout, "You said: needs room\n")
        shape = [(r["status"], "tools" in r["wire"]) for r in self.attempts()[base:]]
        self.assertEqual(shape, [(400, True), (200, False), (200, True)])
        self.assertIn("prompt is too long", self.attempts()[base]["error"])
        self.assertEqual(len(self.mock.summaries), 1)
        self.assertIn(self.mock.summaries[0], self.mock.messages_requests()[-1]["system"])
        self.assert_all_requests_valid()

    def test_malformed_replies_fail_cleanly(self):
        shapes = [
            {"body": {"foo": 1}},
            {"body": {"type": "message", "content": "not a list"}},
            {"body": {"type": "message", "content": [{"type": "tool_use", "id": "x",
                                                      "name": "send_message",
                                                      "input": "{}"}]}},
            {"body": {"type": "message", "content": [{"text": "untyped"}]}},
            {"body": [1, 2, 3]},
            {"raw_body": '{"type": "message", "content": [{"type": "te'},
            {"raw_body": "<html>bad gateway</html>", "status": 200,
             "headers": {"Content-Type": "text/html"}},
        ]
        for spec in shapes:
            with self.subTest(spec=spec):
                self.mock.reset()
                self.mock.push(spec)
                proc = self.send("shape test", agent=AGENT, check=None)
                self.assert_clean_failure(proc)
        self.assert_recovers()


class ThinkingTest(AnthropicCase):
    def test_thinking_blocks_go_back_unchanged_across_processes(self):
        self.mock.push({"thinking": "The user wants tea remembered.",
                        "redacted_thinking": ["opaque-redacted-1"],
                        "content": "Saving it.",
                        "tool_calls": [call("core_memory_append",
                                            {"label": "human", "content": "Likes tea.",
                                             "request_heartbeat": True}, "toolu_th")]})
        self.mock.push(say("Saved.", "toolu_say"))
        events = self.send("remember: tea", agent=AGENT, json_out=True)
        reasoning = [e["reasoning"] for e in events if e["message_type"] == "reasoning_message"]
        self.assertEqual(reasoning[0], "The user wants tea remembered.\n\nSaving it.")
        self.assertIn("Saved.", [e["content"] for e in events
                                 if e["message_type"] == "assistant_message"])
        # The heartbeat step already had to send the signed blocks back (the
        # mock refuses the turn otherwise); the next process reads them from disk.
        self.send("and coffee?", agent=AGENT)
        self.assert_all_requests_valid()
        for body in self.mock.messages_requests()[1:]:
            turn = next(m for m in body["messages"] if m["role"] == "assistant"
                        and any(b.get("id") == "toolu_th" for b in m["content"]))
            self.assertEqual(turn["content"][0]["type"], "thinking")
            self.assertEqual(turn["content"][0]["thinking"], "The user wants tea remembered.")
            self.assertEqual(turn["content"][1], {"type": "redacted_thinking",
                                                  "data": "opaque-redacted-1"})
            self.assertEqual(turn["content"][2], {"type": "text", "text": "Saving it."})
        # Stored once, as the content array, only for the message that had thinking.
        db = sqlite3.connect(os.path.join(self.home, "memgpt.db"))
        self.addCleanup(db.close)
        rows = db.execute("SELECT raw_content FROM messages WHERE raw_content IS NOT NULL") \
            .fetchall()
        self.assertEqual(len(rows), 1)
        self.assertEqual(json.loads(rows[0][0])[0]["thinking"], "The user wants tea remembered.")


class ModelsTest(AnthropicCase):
    """`memgpt models --provider anthropic`: GET /v1/models, every page."""

    def listing(self):
        return [r for r in self.mock.requests if r["path"] == "/v1/models"]

    def test_every_page_is_listed(self):
        self.mock.models = [f"claude-m{i:04d}" for i in range(2345)]
        self.mock.models.append("claude-evil\x1b[2J")
        proc = self.run_memgpt("models", "--provider", "anthropic", check=0)
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 2346 + len(self.mock.context_windows))
        self.assertEqual(len(set(lines)), len(lines))
        self.assertIn("claude-m0000", lines)
        self.assertIn("claude-m2344", lines)
        self.assertIn("claude-evil?[2J", lines)  # no escape reaches the terminal
        self.assertNotIn("\x1b", proc.stdout)
        reqs = self.listing()
        self.assertEqual(len(reqs), 3)  # 1000 per page
        ids = sorted(set(self.mock.models) | set(self.mock.context_windows))
        self.assertEqual(reqs[0]["query"], "limit=1000")
        self.assertEqual(reqs[1]["query"], f"limit=1000&after_id={ids[999]}")
        self.assertEqual(reqs[2]["query"], f"limit=1000&after_id={ids[1999]}")
        for r in reqs:
            self.assertEqual(r["method"], "GET")
            self.assertEqual(r["headers"]["x-api-key"], "test-key")
            self.assertEqual(r["headers"]["anthropic-version"], "2023-06-01")
            self.assertNotIn("authorization", r["headers"])
        self.assert_all_requests_valid()

    def test_json_keeps_the_api_fields(self):
        listed = json.loads(self.run_memgpt("models", "--provider", "anthropic", "--json",
                                            check=0).stdout)
        self.assertIn("claude-sonnet-4-5", [m["id"] for m in listed])
        for m in listed:
            self.assertEqual(set(m), {"type", "id", "display_name", "created_at"})

    def test_refused_and_malformed_listings(self):
        proc = self.run_memgpt("models", "--provider", "anthropic", check=1,
                               env={"ANTHROPIC_API_KEY": "wrong"})
        self.assert_clean_failure(proc, "ANTHROPIC_API_KEY", "401")
        for body, says in [
            ({"data": "x", "has_more": False}, "no data list"),
            ({"data": [{"id": "claude-a"}], "has_more": True}, "no last_id"),
            ({"data": [{"id": "claude-a"}]}, "no has_more"),
        ]:
            with self.subTest(body=body):
                self.mock.push({"body": body}, endpoint="models")
                proc = self.run_memgpt("models", "--provider", "anthropic", check=1)
                self.assert_clean_failure(proc, "/v1/models", says)
        # A server that pages in a circle is stopped, not followed forever.
        self.mock.models.append("claude-a")
        loop = {"data": [{"id": "claude-a"}], "has_more": True, "first_id": "claude-a",
                "last_id": "claude-a"}
        self.mock.push({"body": loop}, endpoint="models")
        self.mock.push({"body": loop}, endpoint="models")
        proc = self.run_memgpt("models", "--provider", "anthropic", check=1)
        self.assert_clean_failure(proc, "same last_id twice")
        # Retried like chat: a 529 and then the list.
        self.mock.push({"status": 529}, endpoint="models")
        proc = self.run_memgpt("models", "--provider", "anthropic", check=0)
        self.assertIn("claude-sonnet-4-5", proc.stdout.splitlines())


if __name__ == "__main__":
    main()
