#!/usr/bin/env python3
"""Tests of the Anthropic mock itself (no memgpt binary needed).

The Anthropic runs of the integration suite are only as good as this mock is
strict: each rule here is a request the real Messages API refuses, and the
mock must refuse it the same way, with the API's error shape.
"""

import copy
import http.client
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402,F401  (puts tests/mock on sys.path)
from anthropic_mock import (MockAnthropic, UnsupportedScript, openai_view,  # noqa: E402
                            sign_thinking)
from openai_mock import count_prompt_tokens  # noqa: E402

KEY = "test-key"
MODEL = "claude-sonnet-4-5"
MOCK = os.path.join(harness.REPO, "tests", "mock", "anthropic_mock.py")

TOOLS = [
    {"name": "send_message", "description": "Say it.",
     "input_schema": {"type": "object", "properties": {"message": {"type": "string"}},
                      "required": ["message"]}},
    {"name": "archival_memory_search", "description": "Search.",
     "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}},
]


def text(t):
    return {"type": "text", "text": t}


def use(call_id, name, args):
    return {"type": "tool_use", "id": call_id, "name": name, "input": args}


def result(call_id, content='{"status":"OK"}'):
    return {"type": "tool_result", "tool_use_id": call_id, "content": content}


def event(kind, **fields):
    return json.dumps({"type": kind, **fields})


def conversation():
    """A well-formed tool loop, shaped like the agent sends it: results and
    the heartbeat after them share one user turn."""
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "system": "You are MemGPT.",
        "messages": [
            {"role": "user", "content": [text(event("user_message", message="find notes"))]},
            {"role": "assistant", "content": [
                text("Searching."),
                use("toolu_a", "archival_memory_search", {"query": "notes"}),
                use("toolu_b", "archival_memory_search", {"query": "more"}),
            ]},
            {"role": "user", "content": [
                result("toolu_a"), result("toolu_b"),
                text(event("heartbeat", reason="continue")),
            ]},
        ],
        "tools": copy.deepcopy(TOOLS),
    }


class MockTestCase(unittest.TestCase):
    mock_kwargs = {}

    def setUp(self):
        kwargs = {"api_key": KEY}
        kwargs.update(self.mock_kwargs)
        self.mock = MockAnthropic(**kwargs).start()
        self.addCleanup(self.mock.stop)

    def http(self, method, path, body=None, key=KEY, version="2023-06-01",
             content_type="application/json", headers=None, timeout=5):
        """Returns (status, headers, parsed JSON or raw text)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.mock.base_url}{path}", data=data, method=method)
        if content_type and data is not None:
            req.add_header("Content-Type", content_type)
        if key is not None:
            req.add_header("x-api-key", key)
        if version is not None:
            req.add_header("anthropic-version", version)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, hdrs, raw = resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as err:
            status, hdrs, raw = err.code, err.headers, err.read().decode()
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw

    def messages(self, body, **kwargs):
        return self.http("POST", "/v1/messages", body, **kwargs)

    def assertOk(self, result_):
        status, _, body = result_
        self.assertEqual(status, 200, body)
        return body

    def assertError(self, result_, status, fragment=None, type_=None):
        got, _, body = result_
        self.assertEqual(got, status, body)
        # Every error has exactly the Anthropic shape.
        self.assertEqual(set(body) - {"request_id"}, {"type", "error"}, body)
        self.assertEqual(body["type"], "error")
        self.assertEqual(set(body["error"]), {"type", "message"}, body)
        if status == 400:
            self.assertEqual(body["error"]["type"], "invalid_request_error")
        if type_ is not None:
            self.assertEqual(body["error"]["type"], type_)
        if fragment is not None:
            self.assertIn(fragment, body["error"]["message"])
        return body["error"]


class AcceptanceTest(MockTestCase):
    def test_well_formed_conversation(self):
        body = self.assertOk(self.messages(conversation()))
        self.assertEqual(set(body), {"id", "type", "role", "model", "content", "stop_reason",
                                     "stop_sequence", "usage"})
        self.assertEqual((body["type"], body["role"], body["model"]),
                         ("message", "assistant", MODEL))
        self.assertIsNone(body["stop_sequence"])
        self.assertEqual(set(body["usage"]), {"input_tokens", "output_tokens"})
        self.assertEqual(body["usage"]["input_tokens"],
                         count_prompt_tokens(openai_view(conversation())))
        self.assertTrue(body["id"].startswith("msg_"))
        self.assertEqual(len(self.mock.messages_requests()), 1)

    def test_string_content_and_system_blocks(self):
        body = {"model": MODEL, "max_tokens": 10, "system": [text("sys")],
                "messages": [{"role": "user", "content": "hello"}]}
        self.assertOk(self.messages(body))

    def test_final_assistant_prefill_is_allowed(self):
        body = conversation()
        body["messages"].append({"role": "assistant", "content": [text("Partial")]})
        self.assertOk(self.messages(body))
        body["messages"][-1]["content"] = [text("Partial ")]
        self.assertError(self.messages(body), 400, "trailing whitespace")

    def test_models_endpoint(self):
        status, _, body = self.http("GET", "/v1/models")
        self.assertEqual(status, 200)
        self.assertIn(MODEL, [m["id"] for m in body["data"]])
        self.assertFalse(body["has_more"])


class ModelsTest(MockTestCase):
    """GET /v1/models: paging with limit, after_id and before_id, and the
    same header checks as /v1/messages."""

    def models(self, query="", **kwargs):
        return self.http("GET", f"/v1/models{query}", **kwargs)

    def test_pages(self):
        self.mock.models = [f"claude-m{i:02d}" for i in range(25)]
        first = self.assertOk(self.models())
        self.assertEqual(len(first["data"]), 20)  # the API's default limit
        self.assertTrue(first["has_more"])
        self.assertEqual((first["first_id"], first["last_id"]), ("claude-m00", "claude-m19"))
        for m in first["data"]:
            self.assertEqual(set(m), {"type", "id", "display_name", "created_at"})
            self.assertEqual(m["type"], "model")
        rest = self.assertOk(self.models("?limit=1000&after_id=claude-m19"))
        self.assertEqual([m["id"] for m in rest["data"]],
                         [f"claude-m{i}" for i in range(20, 25)])
        self.assertFalse(rest["has_more"])
        small = self.assertOk(self.models("?limit=2&after_id=claude-m02"))
        self.assertEqual([m["id"] for m in small["data"]], ["claude-m03", "claude-m04"])
        self.assertTrue(small["has_more"])
        back = self.assertOk(self.models("?limit=2&before_id=claude-m02"))
        self.assertEqual([m["id"] for m in back["data"]], ["claude-m00", "claude-m01"])
        self.assertFalse(back["has_more"])
        self.assertEqual(self.mock.requests[1]["query"], "limit=1000&after_id=claude-m19")

    def test_bad_queries(self):
        for query, status, fragment in [
            ("?limit=0", 400, "limit"),
            ("?limit=1001", 400, "limit"),
            ("?limit=ten", 400, "limit"),
            ("?limit=1&limit=2", 400, "more than once"),
            ("?after_id=a&before_id=b", 400, "cannot be used together"),
            ("?after_id=claude-nope", 404, "claude-nope"),
            ("?page=2", 400, "page"),
        ]:
            with self.subTest(query=query):
                self.assertError(self.models(query), status, fragment)

    def test_headers(self):
        self.assertError(self.models(key=None), 401, "x-api-key", type_="authentication_error")
        self.assertError(self.models(key="nope"), 401, type_="authentication_error")
        self.assertError(self.models(version=None), 400, "anthropic-version")
        self.assertEqual(len(self.mock.invalid_requests()), 3)


class HeaderTest(MockTestCase):
    def test_missing_key(self):
        err = self.assertError(self.messages(conversation(), key=None), 401,
                               type_="authentication_error")
        self.assertIn("x-api-key", err["message"])

    def test_wrong_key(self):
        self.assertError(self.messages(conversation(), key="nope"), 401, "invalid x-api-key",
                         type_="authentication_error")

    def test_bearer_is_not_x_api_key(self):
        self.assertError(self.messages(conversation(), key=None,
                                       headers={"Authorization": f"Bearer {KEY}"}),
                         401, type_="authentication_error")

    def test_missing_or_unknown_version(self):
        self.assertError(self.messages(conversation(), version=None), 400,
                         "anthropic-version: header is required")
        self.assertError(self.messages(conversation(), version="2099-01-01"), 400,
                         "is not a valid version")

    def test_refused_requests_are_recorded(self):
        self.messages(conversation(), key="nope")
        self.assertEqual(len(self.mock.invalid_requests()), 1)
        self.assertEqual(self.mock.requests[0]["status"], 401)
        self.assertEqual(self.mock.chat_requests(), [])


class NoAuthTest(MockTestCase):
    mock_kwargs = {"api_key": None}

    def test_any_key_accepted(self):
        self.assertOk(self.messages(conversation(), key=None))


class ValidationTest(MockTestCase):
    def refused(self, body, fragment):
        return self.assertError(self.messages(body), 400, fragment)

    def test_top_level_fields(self):
        body = conversation()
        body["tool_choice_mode"] = "auto"
        self.refused(body, "tool_choice_mode: Extra inputs are not permitted")
        body = conversation()
        del body["max_tokens"]
        self.refused(body, "max_tokens: Field required")
        body = conversation()
        body["max_tokens"] = 0
        self.refused(body, "max_tokens")
        body = conversation()
        del body["model"]
        self.refused(body, "model: Field required")
        body = conversation()
        body["messages"] = []
        self.refused(body, "at least one message")
        body = conversation()
        body["stream"] = "yes"
        self.refused(body, "stream")
        body = conversation()
        body["temperature"] = 1.5
        self.refused(body, "temperature")

    def test_system_role_in_messages(self):
        body = conversation()
        body["messages"].insert(0, {"role": "system", "content": "no"})
        self.refused(body, 'Unexpected role "system"')

    def test_roles_must_alternate(self):
        body = conversation()
        body["messages"].insert(1, {"role": "user", "content": [text("again")]})
        self.refused(body, 'found multiple "user" roles in a row')
        body = conversation()
        body["messages"].insert(2, {"role": "assistant", "content": [text("twice")]})
        self.refused(body, 'found multiple "assistant" roles in a row')

    def test_first_message_must_be_user(self):
        body = conversation()
        body["messages"] = body["messages"][1:]
        self.refused(body, 'first message must use the "user" role')

    def test_tool_result_must_match_a_tool_use(self):
        body = conversation()
        body["messages"][2]["content"].insert(2, result("toolu_zzz"))
        self.refused(body, "unexpected `tool_use_id` found in `tool_result` blocks: toolu_zzz")
        body = conversation()
        body["messages"][2]["content"].insert(2, result("toolu_a"))
        self.refused(body, "unexpected `tool_use_id`")

    def test_tool_use_needs_a_result_in_the_next_turn(self):
        body = conversation()
        del body["messages"][2]["content"][1]
        err = self.refused(body, "`tool_use` ids were found without `tool_result` blocks "
                                 "immediately after: toolu_b")
        self.assertTrue(err["message"].startswith("messages.1:"), err)
        body = conversation()
        body["messages"] = body["messages"][:2]
        self.refused(body, "without `tool_result` blocks immediately after: toolu_a, toolu_b")

    def test_tool_results_must_lead_their_turn(self):
        body = conversation()
        c = body["messages"][2]["content"]
        body["messages"][2]["content"] = [c[2], c[0], c[1]]
        self.refused(body, "without `tool_result` blocks immediately after")

    def test_tool_blocks_need_tools(self):
        body = conversation()
        del body["tools"]
        self.refused(body, "must define tools")

    def test_blocks(self):
        for block, fragment in [
                (text(""), "must be non-empty"),
                (text("  \n"), "non-whitespace"),
                ({"type": "image", "source": {}}, "does not match any of the expected tags"),
                ({"type": "text", "text": "x", "extra": 1}, "Extra inputs are not permitted"),
                ({"type": "text"}, "Input should be a valid string")]:
            with self.subTest(block=block):
                body = conversation()
                body["messages"][2]["content"].append(block)
                self.refused(body, fragment)
        body = conversation()
        body["messages"][1]["content"][1]["input"] = '{"query": "notes"}'
        self.refused(body, "Input should be a valid dictionary")
        body = conversation()
        body["messages"][1]["content"][1]["id"] = "call.1"
        body["messages"][2]["content"][0]["tool_use_id"] = "call.1"
        self.refused(body, "String should match pattern")
        body = conversation()
        body["messages"][1]["content"][2]["id"] = "toolu_a"
        self.refused(body, "ids must be unique")
        body = conversation()
        body["messages"][0]["content"] = []
        self.refused(body, "non-empty content")
        body = conversation()
        body["messages"][0]["content"] = ""
        self.refused(body, "must be non-empty")
        body = conversation()
        body["messages"][0]["name"] = "ada"
        self.refused(body, "messages.0.name: Extra inputs are not permitted")

    def test_tools(self):
        body = conversation()
        body["tools"][0]["name"] = "send.message"
        self.refused(body, "tools.0.custom.name: String should match pattern")
        body = conversation()
        body["tools"][1]["name"] = "send_message"
        self.refused(body, "Tool names must be unique")
        body = conversation()
        body["tools"][0]["parameters"] = body["tools"][0].pop("input_schema")
        self.refused(body, "Extra inputs are not permitted")
        body = conversation()
        body["tools"][0] = {"type": "function", "function": {"name": "x"}}
        self.refused(body, "tools.0")
        body = conversation()
        body["tool_choice"] = "auto"
        self.refused(body, "tool_choice")
        body = conversation()
        body["tool_choice"] = {"type": "auto"}
        self.assertOk(self.messages(body))

    def test_openai_shaped_request_is_refused(self):
        body = {"model": MODEL, "max_tokens": 10, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": []},
        ]}
        self.refused(body, "tool_calls: Extra inputs are not permitted")
        body = {"model": MODEL, "max_tokens": 10, "tools": TOOLS, "messages": [
            {"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}
        self.refused(body, "Input should be 'user' or 'assistant'")

    def test_not_json(self):
        status, _, body = self.http("POST", "/v1/messages", None)
        self.assertEqual(status, 400, body)
        req = urllib.request.Request(f"{self.mock.base_url}/v1/messages", data=b"{nope",
                                     method="POST", headers={
                                         "Content-Type": "application/json", "x-api-key": KEY,
                                         "anthropic-version": "2023-06-01"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 400)

    def test_unknown_path(self):
        self.assertError(self.http("POST", "/v1/chat/completions", conversation()), 404,
                         type_="not_found_error")


class WindowTest(MockTestCase):
    mock_kwargs = {"context_windows": {MODEL: 60}}

    def test_prompt_too_long(self):
        tokens = count_prompt_tokens(openai_view(conversation()))
        self.assertGreater(tokens, 60)
        self.assertError(self.messages(conversation()), 400,
                         f"prompt is too long: {tokens} tokens > 60 maximum")
        self.assertEqual(self.mock.chat_requests(), [])
        self.mock.set_window(MODEL, tokens)
        self.assertOk(self.messages(conversation()))

    def test_scripted_context_error(self):
        self.mock.set_window(MODEL, 100000)
        self.mock.push({"context_length_exceeded": True})
        err = self.assertError(self.messages(conversation()), 400, "prompt is too long")
        self.assertIn("> 100000 maximum", err["message"])
        self.assertOk(self.messages(conversation()))


class ScriptTest(MockTestCase):
    def test_openai_style_script_becomes_blocks(self):
        self.mock.push({"content": "thinking aloud", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "hi"}, "id": "c1"},
            {"name": "archival_memory_search", "arguments": '{"query": "x"}'},
        ], "usage": {"completion_tokens": 99}})
        self.mock.push({"content": "done", "finish_reason": "length"})
        body = self.assertOk(self.messages(conversation()))
        self.assertEqual(body["stop_reason"], "tool_use")
        self.assertEqual(body["content"][0], text("thinking aloud"))
        self.assertEqual(body["content"][1], use("c1", "send_message", {"message": "hi"}))
        second = body["content"][2]
        self.assertEqual((second["name"], second["input"]), ("archival_memory_search",
                                                             {"query": "x"}))
        self.assertRegex(second["id"], r"^toolu_[A-Za-z0-9_]+$")
        self.assertEqual(body["usage"]["output_tokens"], 99)
        body = self.assertOk(self.messages(conversation()))
        self.assertEqual((body["stop_reason"], body["content"]), ("max_tokens", [text("done")]))
        self.assertEqual(self.mock.pending(), 0)

    def test_unexpressible_scripts_are_refused_at_push(self):
        with self.assertRaises(UnsupportedScript):
            self.mock.push({"tool_calls": [{"name": "f", "arguments": "{broken"}]})
        with self.assertRaises(UnsupportedScript):
            self.mock.push({"tool_calls": [{"name": "f", "arguments": "[1, 2]"}]})
        with self.assertRaises(ValueError):
            self.mock.push({"contents": "typo"})
        with self.assertRaises(ValueError):
            self.mock.push({"status": 500}, endpoint="embeddings")

    def test_error_statuses(self):
        self.mock.push({"status": 529})
        self.mock.push({"status": 429, "headers": {"Retry-After": "0"}})
        self.mock.push({"status": 500})
        self.assertError(self.messages(conversation()), 529, "Overloaded",
                         type_="overloaded_error")
        status, headers, _ = res = self.messages(conversation())
        self.assertError(res, 429, type_="rate_limit_error")
        self.assertEqual(headers["Retry-After"], "0")
        self.assertError(self.messages(conversation()), 500, type_="api_error")
        self.assertOk(self.messages(conversation()))
        self.assertEqual([r["status"] for r in self.mock.requests], [529, 429, 500, 200])

    def test_transport_scripts(self):
        self.mock.push({"raw_body": "<html>oops</html>", "status": 502,
                        "headers": {"Content-Type": "text/html"}})
        self.mock.push({"body": {"foo": 1}})
        self.mock.push({"drop": True})
        self.mock.push({"delay": 0.3, "content": "late"})
        status, _, body = self.messages(conversation())
        self.assertEqual((status, body), (502, "<html>oops</html>"))
        self.assertEqual(self.assertOk(self.messages(conversation())), {"foo": 1})
        with self.assertRaises((ConnectionError, http.client.HTTPException,
                                urllib.error.URLError)):
            self.messages(conversation())
        self.assertIsNone(self.mock.requests[2]["status"])
        start = time.monotonic()
        body = self.assertOk(self.messages(conversation()))
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertEqual(body["content"], [text("late")])


class ThinkingTest(MockTestCase):
    def turn_with_thinking(self):
        self.mock.push({"thinking": "I should search.", "redacted_thinking": ["opaque-1"],
                        "tool_calls": [{"name": "archival_memory_search",
                                        "arguments": {"query": "q"}, "id": "toolu_t"}]})
        reply = self.assertOk(self.messages(conversation()))
        self.assertEqual(reply["content"][0], {
            "type": "thinking", "thinking": "I should search.",
            "signature": sign_thinking("I should search.")})
        self.assertEqual(reply["content"][1], {"type": "redacted_thinking", "data": "opaque-1"})
        body = conversation()
        body["messages"] += [
            {"role": "assistant", "content": reply["content"]},
            {"role": "user", "content": [result("toolu_t")]},
        ]
        return body

    def test_blocks_sent_back_unchanged_are_accepted(self):
        body = self.turn_with_thinking()
        self.assertOk(self.messages(body))
        view = self.mock.chat_requests()[-1]
        self.assertNotIn("thinking", json.dumps(view["messages"][-2]))

    def test_modified_thinking_is_refused(self):
        body = self.turn_with_thinking()
        body["messages"][-2]["content"][0]["thinking"] = "I should not search."
        self.assertError(self.messages(body), 400, "Invalid `signature` in `thinking` block")
        body = self.turn_with_thinking()
        body["messages"][-2]["content"][1]["data"] = "forged"
        self.assertError(self.messages(body), 400, "redacted_thinking")
        body = self.turn_with_thinking()
        del body["messages"][-2]["content"][0]["signature"]
        self.assertError(self.messages(body), 400, "signature: Field required")

    def test_dropped_thinking_is_refused(self):
        body = self.turn_with_thinking()
        body["messages"][-2]["content"] = body["messages"][-2]["content"][2:]
        self.assertError(self.messages(body), 400, "Expected `thinking` or `redacted_thinking`")
        body = self.turn_with_thinking()
        del body["messages"][-2]["content"][1]
        self.assertError(self.messages(body), 400, "must be passed back exactly")

    def test_thinking_of_older_turns_may_be_dropped(self):
        body = self.turn_with_thinking()
        body["messages"][-2]["content"] = body["messages"][-2]["content"][2:]
        body["messages"] += [{"role": "assistant", "content": [text("ok")]},
                             {"role": "user", "content": [text("next")]}]
        self.assertOk(self.messages(body))


def sse_events(text):
    """(event name, parsed data) of each event of an SSE body, in order."""
    out = []
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if data:
            out.append((name, json.loads(data)))
    return out


class StreamTest(MockTestCase):
    """"stream": true: the typed events of the Messages API."""

    def stream(self, spec):
        self.mock.push(spec)
        status, hdrs, raw = self.messages(dict(conversation(), stream=True))
        self.assertEqual(status, 200, raw)
        self.assertTrue(hdrs["Content-Type"].startswith("text/event-stream"))
        return sse_events(raw)

    def test_events_reassemble_to_the_message(self):
        events = self.stream({"thinking": "hmm \u00e9", "content": "Replying.",
                              "tool_calls": [{"name": "send_message",
                                              "arguments": {"message": "hi \U0001F600"}}],
                              "piece_chars": 2})
        names = [n for n, _ in events]
        self.assertEqual(names[:2], ["message_start", "ping"])
        self.assertEqual(names[-2:], ["message_delta", "message_stop"])
        self.assertTrue(all(n == d["type"] for n, d in events))
        blocks = {}
        for _, d in events:
            if d["type"] == "content_block_start":
                blocks[d["index"]] = dict(d["content_block"], _json="")
            elif d["type"] == "content_block_delta":
                b, delta = blocks[d["index"]], d["delta"]
                kind = delta["type"]
                if kind == "text_delta":
                    b["text"] += delta["text"]
                elif kind == "thinking_delta":
                    b["thinking"] += delta["thinking"]
                elif kind == "signature_delta":
                    b["signature"] += delta["signature"]
                elif kind == "input_json_delta":
                    b["_json"] += delta["partial_json"]
        self.assertEqual(blocks[0]["thinking"], "hmm \u00e9")
        self.assertTrue(blocks[0]["signature"])
        self.assertEqual(blocks[1]["text"], "Replying.")
        self.assertEqual(json.loads(blocks[2]["_json"]), {"message": "hi \U0001F600"})
        self.assertEqual(events[-2][1]["delta"]["stop_reason"], "tool_use")
        # The thinking block, reassembled, passes the signature check.
        call = blocks[2]
        body = conversation()
        body["messages"] += [
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": blocks[0]["thinking"],
                 "signature": blocks[0]["signature"]},
                {"type": "tool_use", "id": call["id"], "name": call["name"],
                 "input": json.loads(call["_json"])}]},
            {"role": "user", "content": [result(call["id"])]}]
        self.assertOk(self.messages(body))

    def test_keepalive_and_error_event(self):
        events = self.stream({"content": "hello there", "keepalive": True})
        self.assertGreater([n for n, _ in events].count("ping"), 5)
        events = self.stream({"content": "hello there",
                              "stream_error": {"message": "Overloaded", "after_events": 3}})
        self.assertEqual(events[-1], ("error", {"type": "error", "error": {
            "type": "overloaded_error", "message": "Overloaded"}}))
        self.assertEqual(len(events), 4)


class DefaultPolicyTest(MockTestCase):
    def reply(self, messages, tools=True):
        body = {"model": MODEL, "max_tokens": 100, "system": "sys", "messages": messages}
        if tools:
            body["tools"] = TOOLS
        return self.assertOk(self.messages(body))

    def test_user_message_gets_send_message(self):
        body = self.reply([{"role": "user", "content": [text(event("user_message",
                                                                   message="hello"))]}])
        self.assertEqual(body["stop_reason"], "tool_use")
        self.assertEqual(body["content"][0], text("User said something; replying."))
        self.assertEqual(body["content"][1]["name"], "send_message")
        self.assertEqual(body["content"][1]["input"], {"message": "You said: hello"})

    def test_events_and_results(self):
        body = self.reply(conversation()["messages"])
        self.assertEqual(body["content"], [text("Noted the heartbeat event.")])
        self.assertEqual(body["stop_reason"], "end_turn")
        messages = conversation()["messages"]
        messages[2]["content"] = messages[2]["content"][:2]
        body = self.reply(messages)
        self.assertEqual(body["content"], [text("Function returned; nothing more to do.")])

    def test_summaries(self):
        body = self.reply([{"role": "user", "content": "Summarize. FACT: kiwi FACT: mango"}],
                          tools=False)
        self.assertEqual(body["content"], [text("Summary #1: kiwi, mango")])
        self.assertEqual(self.mock.summaries, ["Summary #1: kiwi, mango"])


class ViewTest(MockTestCase):
    def test_view_has_the_openai_shape(self):
        self.assertOk(self.messages(conversation()))
        view = self.mock.chat_requests()[0]
        self.assertEqual([m["role"] for m in view["messages"]],
                         ["system", "user", "assistant", "tool", "tool", "user"])
        self.assertEqual(view["messages"][0]["content"], "You are MemGPT.")
        calls = view["messages"][2]["tool_calls"]
        self.assertEqual([c["id"] for c in calls], ["toolu_a", "toolu_b"])
        self.assertEqual(json.loads(calls[0]["function"]["arguments"]), {"query": "notes"})
        self.assertEqual(view["messages"][3]["tool_call_id"], "toolu_a")
        self.assertEqual(view["tools"][0]["function"]["parameters"],
                         TOOLS[0]["input_schema"])
        self.assertEqual(self.mock.messages_requests()[0], conversation())
        self.assertEqual(self.mock.requests[0]["wire"], conversation())


class StandaloneTest(unittest.TestCase):
    def test_serves_on_the_given_port(self):
        proc = subprocess.Popen([sys.executable, MOCK, "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(proc.wait, 5)
        self.addCleanup(proc.kill)
        base = proc.stdout.readline().strip()
        self.assertRegex(base, r"^http://127\.0\.0\.1:\d+$")
        req = urllib.request.Request(f"{base}/v1/messages", method="POST",
                                     data=json.dumps(conversation()).encode(),
                                     headers={"Content-Type": "application/json",
                                              "x-api-key": KEY,
                                              "anthropic-version": "2023-06-01"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            self.assertEqual(json.loads(resp.read())["type"], "message")


if __name__ == "__main__":
    unittest.main(verbosity=2)
