#!/usr/bin/env python3
"""Tests of the OpenAI mock itself (no memgpt binary needed).

The integration tests are only as good as the mock is strict: each rule here
is a request the real API refuses, and the mock must refuse it the same way.
"""

import base64
import copy
import http.client
import json
import math
import os
import socket
import struct
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  (also puts tests/mock on sys.path)
from openai_mock import MockOpenAI, count_prompt_tokens, embed_text  # noqa: E402

KEY = "test-key"
MODEL = "gpt-4o-mini"


def tool(name, props=None, required=None):
    params = {"type": "object", "properties": props or {}}
    if required is not None:
        params["required"] = required
    return {"type": "function",
            "function": {"name": name, "description": f"The {name} function.",
                         "parameters": params}}


TOOLS = [
    tool("send_message", {"message": {"type": "string"}}, ["message"]),
    tool("archival_memory_search", {"query": {"type": "string"},
                                    "page": {"type": "integer"}}, ["query"]),
]


def call(call_id, name, args):
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


def user_event(text):
    return json.dumps({"type": "user_message", "message": text})


def conversation():
    """A well-formed multi-step tool conversation, like an agent sends."""
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are MemGPT."},
            {"role": "user", "content": user_event("find my notes")},
            {"role": "assistant", "content": "Searching.", "tool_calls": [
                call("call_a", "archival_memory_search", {"query": "notes"}),
                call("call_b", "archival_memory_search", {"query": "notes", "page": 1}),
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": '{"status":"OK"}'},
            {"role": "tool", "tool_call_id": "call_b", "content": '{"status":"OK"}'},
            {"role": "assistant", "content": None, "tool_calls": [
                call("call_c", "send_message", {"message": "Found them."}),
            ]},
            {"role": "tool", "tool_call_id": "call_c", "content": "None"},
            {"role": "user", "content": [{"type": "text", "text": user_event("thanks")}]},
        ],
        "tools": copy.deepcopy(TOOLS),
        "tool_choice": "auto",
        "temperature": 0.7,
        "max_tokens": 512,
    }


class MockTestCase(unittest.TestCase):
    mock_kwargs = {}

    def setUp(self):
        kwargs = {"api_key": KEY}
        kwargs.update(self.mock_kwargs)
        self.mock = MockOpenAI(**kwargs).start()
        self.addCleanup(self.mock.stop)

    def http(self, method, path, body=None, raw=None, key=KEY, content_type="application/json",
             headers=None, timeout=5):
        """Returns (status, headers, parsed JSON or raw text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.mock.port}{path}",
                                     data=data, method=method)
        if content_type and data is not None:
            req.add_header("Content-Type", content_type)
        if key is not None:
            req.add_header("Authorization", f"Bearer {key}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, hdrs, text = resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as err:
            status, hdrs, text = err.code, err.headers, err.read().decode()
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text

    def chat(self, body, **kwargs):
        return self.http("POST", "/v1/chat/completions", body, **kwargs)

    def assertError(self, result, status, fragment=None, code=None, param=None, type_=None):
        got_status, _, body = result
        self.assertEqual(got_status, status, body)
        # Every error must have exactly the OpenAI shape.
        self.assertEqual(set(body), {"error"}, body)
        self.assertEqual(set(body["error"]), {"message", "type", "param", "code"}, body)
        err = body["error"]
        self.assertIsInstance(err["message"], str)
        if status == 400:
            self.assertEqual(err["type"], "invalid_request_error")
        if type_ is not None:
            self.assertEqual(err["type"], type_)
        if fragment is not None:
            self.assertIn(fragment, err["message"])
        if code is not None:
            self.assertEqual(err["code"], code)
        if param is not None:
            self.assertEqual(err["param"], param)
        return err


class ValidationTest(MockTestCase):
    """Each case breaks one rule of an otherwise valid conversation."""

    def check_cases(self, cases):
        for name, mutate, fragment, param in cases:
            with self.subTest(name):
                body = conversation()
                mutate(body)
                self.assertError(self.chat(body), 400, fragment, param=param)

    def test_body_must_be_a_json_object(self):
        msg = "We could not parse the JSON body of your request"
        good = json.dumps(conversation()).encode()
        self.assertError(self.chat(None, raw=good, content_type="text/plain"), 400, msg)
        self.assertError(self.chat(None, raw=good, content_type=None), 400, msg)
        self.assertError(self.chat(None, raw=b'{"model": '), 400, msg)
        self.assertError(self.chat(None, raw=b"[1, 2]"), 400, msg)
        self.assertError(self.chat(None, raw=b'{"model": NaN}'), 400, msg)
        self.assertError(self.chat(None, raw=b"\xff\xfe{}"), 400, msg)
        self.assertError(self.chat(None, raw=b""), 400, msg)
        # A charset parameter is fine.
        status, _, _ = self.chat(None, raw=good, content_type="application/json; charset=utf-8")
        self.assertEqual(status, 200)

    def test_top_level_arguments(self):
        def drop(key):
            return lambda b: b.pop(key)

        def put(key, value):
            return lambda b: b.__setitem__(key, value)

        self.check_cases([
            ("unknown key", put("functions", []),
             "Unrecognized request argument supplied: functions", None),
            ("missing model", drop("model"), "model", "model"),
            ("empty model", put("model", ""), "model", "model"),
            ("model not a string", put("model", 4), "model", "model"),
            ("missing messages", drop("messages"), "messages", "messages"),
            ("empty messages", put("messages", []), "empty array", "messages"),
            ("messages not an array", put("messages", {"role": "user"}), "messages",
             "messages"),
            ("stream not a boolean", put("stream", "yes"), "stream", "stream"),
            ("stream_options without stream", put("stream_options", {"include_usage": True}),
             "stream_options", "stream_options"),
            ("stream_options with stream false",
             lambda b: b.update(stream=False, stream_options={"include_usage": True}),
             "stream_options", "stream_options"),
            ("unknown stream option",
             lambda b: b.update(stream=True, stream_options={"include_everything": True}),
             "stream_options.include_everything", "stream_options"),
            ("include_usage not a boolean",
             lambda b: b.update(stream=True, stream_options={"include_usage": "yes"}),
             "include_usage", "stream_options.include_usage"),
            ("max_tokens zero", put("max_tokens", 0), "max_tokens", "max_tokens"),
            ("max_tokens negative", put("max_tokens", -5), "max_tokens", "max_tokens"),
            ("max_tokens string", put("max_tokens", "100"), "max_tokens", "max_tokens"),
            ("max_tokens bool", put("max_tokens", True), "max_tokens", "max_tokens"),
            ("max_tokens float", put("max_tokens", 1.5), "max_tokens", "max_tokens"),
            ("max_completion_tokens zero", put("max_completion_tokens", 0),
             "max_completion_tokens", "max_completion_tokens"),
            ("temperature too high", put("temperature", 2.5), "temperature", "temperature"),
            ("temperature string", put("temperature", "hot"), "temperature", "temperature"),
            ("n > 1", put("n", 2), "n != 1", "n"),
            ("stop too long", put("stop", ["a", "b", "c", "d", "e"]), "stop", "stop"),
            ("json_object without the word json",
             put("response_format", {"type": "json_object"}), "must contain the word 'json'",
             "messages"),
        ])

    def test_messages_shape(self):
        def msg(i, **changes):
            def mutate(b):
                for k, v in changes.items():
                    if v is KeyError:
                        b["messages"][i].pop(k)
                    else:
                        b["messages"][i][k] = v
            return mutate

        def replace(i, value):
            return lambda b: b["messages"].__setitem__(i, value)

        self.check_cases([
            ("message not an object", replace(0, "hello"), "messages[0]", "messages[0]"),
            ("missing role", msg(0, role=KeyError), "role", "messages[0].role"),
            ("unknown role", msg(0, role="bot"), "Invalid value", "messages[0].role"),
            ("legacy function role", msg(0, role="function"), "Invalid value",
             "messages[0].role"),
            ("unknown message key", msg(1, timestamp="now"),
             "Unrecognized request argument supplied", "messages[1]"),
            ("tool_calls on a user message", msg(1, tool_calls=[]),
             "Unrecognized request argument supplied", "messages[1]"),
            ("tool_call_id on an assistant message", msg(2, tool_call_id="x"),
             "Unrecognized request argument supplied", "messages[2]"),
            ("bad name", msg(1, name="not allowed!"), "pattern", "messages[1].name"),
            ("system content null", msg(0, content=None), "content", "messages[0].content"),
            ("system content missing", msg(0, content=KeyError), "content",
             "messages[0].content"),
            ("user content a number", msg(1, content=42), "content", "messages[1].content"),
            ("user content an object", msg(1, content={"text": "hi"}), "content",
             "messages[1].content"),
            ("empty content parts", msg(1, content=[]), "empty array", "messages[1].content"),
            ("image part", msg(1, content=[{"type": "image_url", "image_url": {"url": "x"}}]),
             "Invalid value", "messages[1].content[0].type"),
            ("part text not a string", msg(1, content=[{"type": "text", "text": 3}]),
             "text", "messages[1].content[0].text"),
            ("assistant with neither content nor tool_calls",
             replace(7, {"role": "assistant", "content": None}),
             "either 'content' or 'tool_calls'", "messages[7]"),
            ("assistant content a number", msg(2, content=1), "content",
             "messages[2].content"),
            ("tool message without tool_call_id", msg(3, tool_call_id=KeyError),
             "tool_call_id", "messages[3].tool_call_id"),
            ("tool message content null", msg(3, content=None), "content",
             "messages[3].content"),
            ("tool message id not a string", msg(3, tool_call_id=7), "tool_call_id",
             "messages[3].tool_call_id"),
        ])

    def test_tool_call_shape(self):
        def tc(j, mutate_call):
            def mutate(b):
                mutate_call(b["messages"][2]["tool_calls"][j])
            return mutate

        def setfn(key, value):
            return lambda c: c["function"].__setitem__(key, value)

        base = "messages[2].tool_calls"
        self.check_cases([
            ("empty tool_calls", lambda b: b["messages"][2].__setitem__("tool_calls", []),
             "empty array", base),
            ("tool_calls not an array",
             lambda b: b["messages"][2].__setitem__("tool_calls", {"id": "x"}),
             "array", base),
            ("arguments as an object", tc(0, setfn("arguments", {"query": "notes"})),
             "expected a string", f"{base}[0].function.arguments"),
            ("arguments null", tc(0, setfn("arguments", None)),
             "expected a string", f"{base}[0].function.arguments"),
            ("missing arguments", tc(0, lambda c: c["function"].pop("arguments")),
             "arguments", f"{base}[0].function.arguments"),
            ("missing id", tc(0, lambda c: c.pop("id")), "id", f"{base}[0].id"),
            ("id not a string", tc(0, lambda c: c.__setitem__("id", 5)), "id",
             f"{base}[0].id"),
            ("missing type", tc(0, lambda c: c.pop("type")), "type", f"{base}[0].type"),
            ("wrong type", tc(0, lambda c: c.__setitem__("type", "tool")), "Invalid value",
             f"{base}[0].type"),
            ("extra key in call", tc(0, lambda c: c.__setitem__("index", 0)),
             "Unrecognized", f"{base}[0]"),
            ("extra key in function", tc(0, setfn("description", "x")), "Unrecognized",
             f"{base}[0].function"),
            ("name not a string", tc(0, setfn("name", None)), "name",
             f"{base}[0].function.name"),
            ("duplicate ids", tc(1, lambda c: c.__setitem__("id", "call_a")), "duplicate",
             f"{base}[1].id"),
        ])

    def test_tool_message_ordering(self):
        preceding = ("messages with role 'tool' must be a response to a preceeding "
                     "message with 'tool_calls'")
        missing = ("An assistant message with 'tool_calls' must be followed by tool "
                   "messages responding to each 'tool_call_id'. The following "
                   "tool_call_ids did not have response messages: ")
        m = conversation()["messages"]

        def msgs(*items):
            return lambda b: b.__setitem__("messages", list(items))

        self.check_cases([
            ("tool message first", msgs(m[3], m[1]), preceding, "messages.[0].role"),
            ("tool message after a user message", msgs(m[0], m[1], m[3]), preceding,
             "messages.[2].role"),
            ("tool message after a plain assistant message",
             msgs(m[1], {"role": "assistant", "content": "hi"}, m[3]), preceding,
             "messages.[2].role"),
            ("unknown tool_call_id",
             msgs(m[1], m[2], m[3], m[4], {"role": "tool", "tool_call_id": "call_zzz",
                                           "content": "x"}), preceding,
             "messages.[4].role"),
            ("answer to an older assistant message",
             msgs(m[1], m[2], m[3], m[4], m[5], m[3], m[6]), preceding,
             "messages.[5].role"),
            ("tool message after the run was interrupted",
             msgs(m[1], m[2], m[3], m[1], m[4]), missing + "call_b",
             "messages.[1].role"),
            ("unanswered call at the end", msgs(m[1], m[2], m[3]), missing + "call_b",
             "messages.[1].role"),
            ("no answers before the next user message", msgs(m[1], m[2], m[7]),
             missing + "call_a, call_b", "messages.[1].role"),
            ("two tool_calls messages in a row", msgs(m[1], m[2], m[5], m[6]),
             missing + "call_a, call_b", "messages.[1].role"),
            ("duplicate tool result", msgs(m[1], m[2], m[3], m[3], m[4]), "duplicate",
             None),
        ])

    def test_tools_shape(self):
        def tools(value):
            return lambda b: b.__setitem__("tools", value)

        def fn(i, **changes):
            def mutate(b):
                for k, v in changes.items():
                    if v is KeyError:
                        b["tools"][i]["function"].pop(k)
                    else:
                        b["tools"][i]["function"][k] = v
            return mutate

        def params(i, value):
            return fn(i, parameters=value)

        self.check_cases([
            ("tools not an array", tools({"send_message": {}}), "array", "tools"),
            ("empty tools", tools([]), "empty array", "tools"),
            ("tool not an object", tools(["send_message"]), "tools[0]", "tools[0]"),
            ("wrong tool type", lambda b: b["tools"][0].__setitem__("type", "retrieval"),
             "Invalid value", "tools[0].type"),
            ("bare function (legacy shape)", tools([TOOLS[0]["function"]]),
             "Unrecognized", "tools[0]"),
            ("name with a space", fn(0, name="send message"), "pattern",
             "tools[0].function.name"),
            ("name too long", fn(0, name="x" * 65), "pattern", "tools[0].function.name"),
            ("missing name", fn(0, name=KeyError), "pattern", "tools[0].function.name"),
            ("description not a string", fn(0, description=["x"]), "description",
             "tools[0].function.description"),
            ("unknown function key", fn(0, returns="string"), "Unrecognized",
             "tools[0].function"),
            ("missing parameters", fn(0, parameters=KeyError), "Invalid schema",
             "tools[0].function.parameters"),
            ("parameters type array", params(0, {"type": "array", "items": {}}),
             "Invalid schema", "tools[0].function.parameters"),
            ("parameters without properties", params(0, {"type": "object"}),
             "properties", "tools[0].function.parameters"),
            ("properties not an object", params(0, {"type": "object", "properties": []}),
             "properties", "tools[0].function.parameters"),
            ("required names an unknown property",
             params(0, {"type": "object", "properties": {}, "required": ["message"]}),
             "required", "tools[0].function.parameters"),
            ("duplicate names", fn(1, name="send_message"), "duplicate", "tools"),
        ])

    def test_tool_choice_and_parallel_tool_calls(self):
        def put(key, value):
            return lambda b: b.__setitem__(key, value)

        def without_tools(key, value):
            def mutate(b):
                b.pop("tools")
                b.pop("tool_choice")
                b["messages"] = [{"role": "user", "content": "hi"}]
                b[key] = value
            return mutate

        self.check_cases([
            ("unknown string", put("tool_choice", "sometimes"), "Invalid value",
             "tool_choice"),
            ("unknown function", put("tool_choice",
                                     {"type": "function", "function": {"name": "nope"}}),
             "nope", "tool_choice"),
            ("malformed object", put("tool_choice", {"name": "send_message"}),
             "tool_choice", "tool_choice"),
            ("tool_choice without tools", without_tools("tool_choice", "auto"),
             "only allowed when 'tools' are specified", "tool_choice"),
            ("parallel_tool_calls without tools",
             without_tools("parallel_tool_calls", False),
             "only allowed when 'tools' are specified", "parallel_tool_calls"),
        ])
        for choice in ("none", "auto", "required",
                       {"type": "function", "function": {"name": "send_message"}}):
            body = conversation()
            body["tool_choice"] = choice
            body["parallel_tool_calls"] = False
            self.assertEqual(self.chat(body)[0], 200, choice)

    def test_rejected_requests_do_not_consume_the_script(self):
        self.mock.push({"content": "scripted"})
        bad = conversation()
        bad["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"q": 1}
        self.assertEqual(self.chat(bad)[0], 400)
        self.assertEqual(self.mock.pending(), 1)
        status, _, body = self.chat(conversation())
        self.assertEqual(status, 200)
        self.assertEqual(body["choices"][0]["message"]["content"], "scripted")
        self.assertEqual(self.mock.pending(), 0)


class AcceptanceTest(MockTestCase):
    def test_well_formed_conversation_is_accepted(self):
        status, headers, body = self.chat(conversation())
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(body["object"], "chat.completion")
        self.assertTrue(body["id"].startswith("chatcmpl-"))
        self.assertIsInstance(body["created"], int)
        self.assertEqual(body["model"], MODEL)
        self.assertEqual(len(body["choices"]), 1)
        choice = body["choices"][0]
        self.assertEqual(choice["index"], 0)
        self.assertIsNone(choice["logprobs"])
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertIsNone(choice["message"]["refusal"])
        usage = body["usage"]
        self.assertEqual(usage["prompt_tokens"], count_prompt_tokens(conversation()))
        self.assertGreater(usage["completion_tokens"], 0)
        self.assertEqual(usage["total_tokens"],
                         usage["prompt_tokens"] + usage["completion_tokens"])

    def test_optional_parameters_accepted(self):
        body = conversation()
        body.update({"top_p": 1, "n": 1, "stop": ["\n\n"], "presence_penalty": 0,
                     "frequency_penalty": 0.5, "logit_bias": {"50256": -100},
                     "user": "u1", "seed": 7, "metadata": {"k": "v"}, "store": False,
                     "max_completion_tokens": 100, "parallel_tool_calls": True,
                     "response_format": {"type": "text"}, "logprobs": False,
                     "service_category": "default"})
        self.assertEqual(self.chat(body)[0], 200)
        # null means "use the default" for optional parameters.
        body = conversation()
        body.update({"temperature": None, "max_tokens": None, "stop": None})
        self.assertEqual(self.chat(body)[0], 200)

    def test_developer_role_names_and_empty_assistant_content(self):
        body = {"model": MODEL, "tools": TOOLS, "messages": [
            {"role": "developer", "content": "Be brief.", "name": "ops"},
            {"role": "user", "content": "hi", "name": "alice-1"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "json please"},
        ], "response_format": {"type": "json_object"}}
        self.assertEqual(self.chat(body)[0], 200)

    def test_records(self):
        self.chat(conversation())
        self.chat({"model": MODEL, "messages": []})
        self.http("GET", "/v1/models")
        reqs = self.mock.requests
        self.assertEqual([r["path"] for r in reqs],
                         ["/v1/chat/completions", "/v1/chat/completions", "/v1/models"])
        self.assertEqual([r["status"] for r in reqs], [200, 400, 200])
        self.assertIsNone(reqs[0]["error"])
        self.assertIn("empty array", reqs[1]["error"])
        self.assertEqual(reqs[0]["headers"]["authorization"], f"Bearer {KEY}")
        self.assertEqual(reqs[0]["headers"]["content-type"], "application/json")
        self.assertEqual(reqs[0]["body"], conversation())
        self.assertIsNone(reqs[2]["body"])
        self.assertEqual(self.mock.chat_requests(), [conversation()])
        self.assertEqual(len(self.mock.invalid_requests()), 1)
        self.mock.reset()
        self.assertEqual(self.mock.requests, [])
        self.assertEqual(self.mock.chat_requests(), [])


def sse_data(text):
    """The data of each event of an SSE body, in order."""
    return [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]


class StreamTest(MockTestCase):
    """"stream": true: chat.completion.chunk events as the real API sends them."""

    def stream(self, spec=None, **extra):
        if spec is not None:
            self.mock.push(spec)
        body = conversation()
        body.update(stream=True, **extra)
        status, hdrs, text = self.chat(body)
        self.assertEqual(status, 200, text)
        self.assertTrue(hdrs["Content-Type"].startswith("text/event-stream"))
        return sse_data(text)

    def test_chunks_reassemble_to_the_reply(self):
        data = self.stream({"content": "Let me answer.", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "caf\u00e9 \U0001F600"}},
            {"name": "archival_memory_search", "arguments": {"query": "x"}}],
            "interleave": True, "piece_chars": 3},
            stream_options={"include_usage": True})
        self.assertEqual(data[-1], "[DONE]")
        chunks = [json.loads(d) for d in data[:-1]]
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        self.assertIsNone(chunks[0]["usage"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"],
                         count_prompt_tokens(conversation()))
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        self.assertEqual("".join(d.get("content") or "" for d in deltas), "Let me answer.")
        args, seen = {}, []
        for d in deltas:
            for tc in d.get("tool_calls", []):
                seen.append(tc["index"])
                args[tc["index"]] = args.get(tc["index"], "") + tc["function"]["arguments"]
        self.assertEqual(json.loads(args[0]), {"message": "caf\u00e9 \U0001F600"})
        self.assertEqual(json.loads(args[1]), {"query": "x"})
        self.assertNotEqual(seen, sorted(seen))  # interleaved, as parallel calls arrive
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        self.assertEqual(finish[-1], "tool_calls")

    def test_no_usage_chunk_without_include_usage(self):
        data = self.stream({"content": "hi"})
        chunks = [json.loads(d) for d in data[:-1]]
        self.assertTrue(all(c["choices"] and "usage" not in c for c in chunks))

    def test_keepalive_and_error_event(self):
        self.mock.push({"content": "hello there", "keepalive": True})
        _, _, text = self.chat(dict(conversation(), stream=True))
        self.assertEqual(text.count(": keep-alive\n\n"), len(sse_data(text)) - 1)
        self.mock.push({"content": "hello there", "stream_error": {"message": "boom",
                                                                   "after_events": 1}})
        data = self.stream()
        self.assertEqual(len(data), 2)
        self.assertEqual(json.loads(data[1])["error"]["message"], "boom")

    def test_cut_after_bytes(self):
        self.mock.push({"content": "hello there", "cut_after_bytes": 40})
        body = dict(conversation(), stream=True)
        with self.assertRaises(Exception):  # http.client.IncompleteRead
            self.chat(body)
        # The server thread records how the stream ended after hanging up.
        deadline = time.time() + 5
        while "stream" not in self.mock.requests[-1] and time.time() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.mock.requests[-1].get("stream"), "cut after 40 bytes")

    def test_parallel_tool_calls_refused_for_some_models(self):
        mock = MockOpenAI(api_key=KEY, no_parallel_models=["o3-mini"]).start()
        self.addCleanup(mock.stop)
        body = dict(conversation(), model="o3-mini", parallel_tool_calls=True)
        req = urllib.request.Request(mock.base_url + "/chat/completions",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {KEY}"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        err = json.loads(cm.exception.read())["error"]
        self.assertEqual((err["code"], err["param"]), ("unsupported_parameter",
                                                        "parallel_tool_calls"))
        self.assertEqual(self.chat(dict(conversation(), parallel_tool_calls=True))[0], 200)


class AuthTest(MockTestCase):
    def test_missing_and_wrong_keys(self):
        for path, method, body in (("/v1/chat/completions", "POST", conversation()),
                                   ("/v1/models", "GET", None),
                                   ("/v1/embeddings", "POST", {"model": "e", "input": "x"}),
                                   ("/v1/nowhere", "GET", None)):
            with self.subTest(path):
                self.assertError(self.http(method, path, body, key=None), 401,
                                 code="invalid_api_key")
                err = self.assertError(self.http(method, path, body, key="sk-wrong-key-123"),
                                       401, "Incorrect API key provided",
                                       code="invalid_api_key", type_="invalid_request_error")
                # The real API masks the key it echoes back.
                self.assertNotIn("sk-wrong-key-123", err["message"])
        self.assertEqual(self.mock.chat_requests(), [])
        self.assertEqual({r["status"] for r in self.mock.requests}, {401})

    def test_scheme_must_be_bearer(self):
        self.assertError(self.http("GET", "/v1/models", key=None,
                                   headers={"Authorization": f"Basic {KEY}"}), 401,
                         code="invalid_api_key")


class NoAuthTest(MockTestCase):
    mock_kwargs = {"api_key": None}

    def test_any_key_accepted(self):
        self.assertEqual(self.http("GET", "/v1/models", key=None)[0], 200)
        self.assertEqual(self.chat(conversation(), key="whatever")[0], 200)


class ContextLengthTest(MockTestCase):
    mock_kwargs = {"context_windows": {"tiny-model": 50}, "default_window": 8192}

    def test_token_count_formula(self):
        # A model without a published tokenizer is billed by the formula.
        body = {"model": "tiny-model", "messages": [
            {"role": "user", "content": "abcdefgh"},           # 4 + 2
            {"role": "user", "content": "é"},                 # 4 + ceil(2/4) = 5
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c", "type": "function",
                 "function": {"name": "abc", "arguments": "{}"}}]},  # 4 + 0 + ceil(5/4)
            {"role": "tool", "tool_call_id": "c", "content": [
                {"type": "text", "text": "abc"}, {"type": "text", "text": "de"}]},  # 4 + 2
        ]}
        self.assertEqual(count_prompt_tokens(body), 6 + 5 + 6 + 6)
        body["tools"] = TOOLS
        self.assertEqual(count_prompt_tokens(body),
                         23 + math.ceil(len(json.dumps(TOOLS)) / 4))

    def test_exact_error_shape(self):
        body = {"model": "tiny-model", "messages": [{"role": "user", "content": "x" * 400}]}
        n = count_prompt_tokens(body)
        self.assertEqual(n, 104)
        status, _, answer = self.chat(body)
        self.assertEqual(status, 400)
        self.assertEqual(answer, {"error": {
            "message": "This model's maximum context length is 50 tokens. However, your "
                       "messages resulted in 104 tokens. Please reduce the length of the "
                       "messages.",
            "type": "invalid_request_error", "param": "messages",
            "code": "context_length_exceeded"}})
        self.assertEqual(self.mock.chat_requests(), [])

    def test_boundary_and_set_window(self):
        body = {"model": "tiny-model", "messages": [{"role": "user", "content": "x" * 184}]}
        self.assertEqual(count_prompt_tokens(body), 50)
        self.assertEqual(self.chat(body)[0], 200)          # exactly the window fits
        self.mock.set_window("tiny-model", 49)
        self.assertError(self.chat(body), 400, "maximum context length is 49 tokens",
                         code="context_length_exceeded")
        # Other models use the default window.
        body["model"] = MODEL
        self.assertEqual(self.chat(body)[0], 200)

    def test_scripted_context_error_even_when_it_fits(self):
        self.mock.push({"context_length_exceeded": True})
        err = self.assertError(self.chat(conversation()), 400, code="context_length_exceeded",
                               param="messages")
        self.assertIn("maximum context length is 8192 tokens", err["message"])
        self.assertEqual(self.chat(conversation())[0], 200)


class ScriptTest(MockTestCase):
    def test_scripted_assistant_messages_fifo(self):
        self.mock.push({"content": "thinking...", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "hi"}},
            {"name": "archival_memory_search", "arguments": '{"query": broken',
             "id": "call_custom"},
        ]})
        self.mock.push({"tool_calls": [{"name": "send_message",
                                        "arguments": {"message": "again"}}],
                        "usage": {"completion_tokens": 99}})
        self.mock.push({"content": "done", "finish_reason": "length"})

        _, _, first = self.chat(conversation())
        msg = first["choices"][0]["message"]
        self.assertEqual(first["choices"][0]["finish_reason"], "tool_calls")
        self.assertEqual(msg["content"], "thinking...")
        self.assertEqual(len(msg["tool_calls"]), 2)
        a, b = msg["tool_calls"]
        self.assertEqual(a["type"], "function")
        self.assertEqual(json.loads(a["function"]["arguments"]), {"message": "hi"})
        self.assertEqual(b["id"], "call_custom")
        self.assertEqual(b["function"]["arguments"], '{"query": broken')  # verbatim

        _, _, second = self.chat(conversation())
        msg = second["choices"][0]["message"]
        self.assertIsNone(msg["content"])
        self.assertNotEqual(msg["tool_calls"][0]["id"], a["id"])  # ids are unique
        usage = second["usage"]
        self.assertEqual(usage["completion_tokens"], 99)
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"] + 99)

        _, _, third = self.chat(conversation())
        self.assertEqual(third["choices"][0]["finish_reason"], "length")
        self.assertEqual(third["choices"][0]["message"]["content"], "done")
        self.assertNotIn("tool_calls", third["choices"][0]["message"])
        self.assertNotEqual(first["id"], second["id"])

    def test_error_statuses(self):
        self.mock.push({"status": 429, "headers": {"Retry-After": "0"}})
        self.mock.push({"status": 500})
        self.mock.push({"status": 503})
        self.mock.push({"status": 429, "body": {"error": {"message": "custom", "type": "tokens",
                                                          "param": None, "code": None}}})
        status, headers, _ = result = self.chat(conversation())
        self.assertError(result, 429, code="rate_limit_exceeded", type_="requests")
        self.assertEqual(headers["Retry-After"], "0")
        self.assertError(self.chat(conversation()), 500, type_="server_error")
        self.assertError(self.chat(conversation()), 503, type_="server_error")
        self.assertError(self.chat(conversation()), 429, "custom", type_="tokens")
        self.assertEqual(self.chat(conversation())[0], 200)
        self.assertEqual([r["status"] for r in self.mock.requests], [429, 500, 503, 429, 200])
        # Scripted failures still count as well-formed requests.
        self.assertEqual(len(self.mock.chat_requests()), 5)

    def test_dropped_connection(self):
        self.mock.push({"drop": True})
        with self.assertRaises((ConnectionError, http.client.HTTPException,
                                urllib.error.URLError)):
            self.chat(conversation())
        self.assertIsNone(self.mock.requests[0]["status"])
        self.assertEqual(self.chat(conversation())[0], 200)

    def test_raw_body(self):
        self.mock.push({"raw_body": "not json at all", "status": 200})
        self.mock.push({"raw_body": "<html>Bad Gateway</html>", "status": 502,
                        "headers": {"Content-Type": "text/html"}})
        status, _, body = self.chat(conversation())
        self.assertEqual((status, body), (200, "not json at all"))
        status, headers, body = self.chat(conversation())
        self.assertEqual((status, body), (502, "<html>Bad Gateway</html>"))
        self.assertEqual(headers["Content-Type"], "text/html")

    def test_delay(self):
        self.mock.push({"delay": 0.3, "content": "late"})
        start = time.monotonic()
        _, _, body = self.chat(conversation())
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertEqual(body["choices"][0]["message"]["content"], "late")
        # A delay longer than the client's patience looks like a timeout.
        self.mock.push({"delay": 2.0})
        with self.assertRaises((TimeoutError, socket.timeout, urllib.error.URLError)):
            self.chat(conversation(), timeout=0.3)

    def test_bad_specs_rejected_at_push(self):
        with self.assertRaises(ValueError):
            self.mock.push({"contents": "typo"})
        with self.assertRaises(ValueError):
            self.mock.push({"tool_calls": [{"arguments": {}}]})


class DefaultPolicyTest(MockTestCase):
    def reply(self, last, tools=True, extra=()):
        body = {"model": MODEL, "messages": [{"role": "system", "content": "sys"},
                                             *extra, last]}
        if tools:
            body["tools"] = TOOLS
        status, _, answer = self.chat(body)
        self.assertEqual(status, 200, answer)
        return answer["choices"][0]

    def test_user_message_gets_send_message(self):
        choice = self.reply({"role": "user", "content": user_event("hello there")})
        msg = choice["message"]
        self.assertEqual(choice["finish_reason"], "tool_calls")
        self.assertEqual(msg["content"], "User said something; replying.")
        self.assertEqual(len(msg["tool_calls"]), 1)
        self.assertEqual(msg["tool_calls"][0]["function"]["name"], "send_message")
        self.assertEqual(json.loads(msg["tool_calls"][0]["function"]["arguments"]),
                         {"message": "You said: hello there"})

    def test_other_events_and_tool_results(self):
        for kind in ("heartbeat", "system_alert", "login"):
            choice = self.reply({"role": "user", "content": json.dumps({"type": kind})})
            self.assertEqual(choice["message"]["content"], f"Noted the {kind} event.")
            self.assertNotIn("tool_calls", choice["message"])
            self.assertEqual(choice["finish_reason"], "stop")
        m = conversation()["messages"]
        choice = self.reply(m[6], extra=m[1:6])
        self.assertEqual(choice["message"]["content"], "Function returned; nothing more to do.")
        self.assertNotIn("tool_calls", choice["message"])
        self.assertEqual(self.reply({"role": "user", "content": "plain text"})
                         ["message"]["content"], "ok")
        self.assertEqual(self.reply({"role": "assistant", "content": "hmm"})
                         ["message"]["content"], "ok")

    def test_summaries(self):
        history = [{"role": "user", "content": user_event("FACT: zebra lives here")},
                   {"role": "assistant", "content": None, "tool_calls": [
                       call("c1", "send_message", {"message": "FACT: kiwi, FACT: zebra"})]},
                   {"role": "tool", "tool_call_id": "c1", "content": "None"}]
        choice = self.reply({"role": "user", "content": "Summarize. FACT: mango"},
                            tools=False, extra=history)
        self.assertEqual(choice["message"]["content"], "Summary #1: zebra, kiwi, mango")
        self.assertNotIn("tool_calls", choice["message"])
        choice = self.reply({"role": "user", "content": "Summarize."}, tools=False)
        self.assertEqual(choice["message"]["content"], "Summary #2: no facts")
        self.assertEqual(self.mock.summaries,
                         ["Summary #1: zebra, kiwi, mango", "Summary #2: no facts"])

    def test_summary_list_is_capped(self):
        facts = " ".join(f"FACT: word{i:03d}" for i in range(100))
        choice = self.reply({"role": "user", "content": facts}, tools=False)
        listing = choice["message"]["content"][len("Summary #1: "):]
        self.assertLessEqual(len(listing), 300)
        self.assertTrue(listing.startswith("word000, word001"))
        self.assertFalse(listing.endswith(","))


class EmbeddingsTest(MockTestCase):
    def embed(self, **body):
        return self.http("POST", "/v1/embeddings", body)

    def test_shape_and_determinism(self):
        status, _, body = self.embed(model="text-embedding-3-small",
                                     input=["the cat sat", "the cat sat on the mat",
                                            "quantum chromodynamics"],
                                     encoding_format="float")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["object"], "list")
        self.assertEqual(body["model"], "text-embedding-3-small")
        self.assertEqual([d["index"] for d in body["data"]], [0, 1, 2])
        self.assertTrue(all(d["object"] == "embedding" for d in body["data"]))
        vecs = [d["embedding"] for d in body["data"]]
        for v in vecs:
            self.assertEqual(len(v), 64)
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in v)), 1.0, places=6)
        dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
        self.assertGreater(dot(vecs[0], vecs[1]), dot(vecs[0], vecs[2]) + 0.3)
        self.assertEqual(vecs[0], embed_text("the cat sat"))
        self.assertEqual(body["usage"]["prompt_tokens"], body["usage"]["total_tokens"])
        _, _, single = self.embed(model="m", input="the cat sat")
        self.assertEqual(single["data"][0]["embedding"], vecs[0])

    def test_dimensions_and_base64(self):
        _, _, body = self.embed(model="m", input="hello", dimensions=16,
                                encoding_format="base64")
        raw = base64.b64decode(body["data"][0]["embedding"])
        vec = struct.unpack("<16f", raw)
        self.assertAlmostEqual(sum(x * x for x in vec), 1.0, places=5)

    def test_validation(self):
        cases = [
            ({"model": "m", "input": ""}, "input"),
            ({"model": "m", "input": []}, "input"),
            ({"model": "m", "input": ["ok", ""]}, "input"),
            ({"model": "m", "input": ["x"] * 2049}, "input"),
            ({"model": "m", "input": [1, 2, 3]}, "input"),
            ({"model": "m"}, "input"),
            ({"input": "x"}, "model"),
            ({"model": "m", "input": "x", "encoding_format": "hex"}, "encoding_format"),
            ({"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
            ({"model": "m", "input": "x", "extra": 1}, None),
        ]
        for body, param in cases:
            with self.subTest(body=str(body)[:60]):
                self.assertError(self.embed(**body), 400, param=param)
        self.assertEqual(self.embed(model="m", input=["x"] * 2048)[0], 200)
        self.assertError(self.http("POST", "/v1/embeddings", raw=b"nope"), 400,
                         "could not parse the JSON body")

    def test_scripted_embedding_failure_uses_its_own_queue(self):
        self.mock.push({"status": 500}, endpoint="embeddings")
        self.mock.push({"content": "chat reply"})
        self.assertError(self.embed(model="m", input="x"), 500)
        self.assertEqual(self.embed(model="m", input="x")[0], 200)
        _, _, body = self.chat(conversation())
        self.assertEqual(body["choices"][0]["message"]["content"], "chat reply")


class RoutingTest(MockTestCase):
    def test_models(self):
        self.mock.set_window("custom-model", 1000)
        status, _, body = self.http("GET", "/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        ids = [m["id"] for m in body["data"]]
        self.assertIn(MODEL, ids)
        self.assertIn("custom-model", ids)
        for m in body["data"]:
            self.assertEqual(set(m), {"id", "object", "created", "owned_by"})
            self.assertEqual((m["object"], m["owned_by"]), ("model", "mock"))

    def test_unknown_paths_and_methods(self):
        self.assertError(self.http("GET", "/v1/completions"), 404, "Invalid URL")
        self.assertError(self.http("POST", "/v1/responses", {"model": MODEL}), 404)
        self.assertError(self.http("GET", "/v1/chat/completions"), 404)
        self.assertError(self.http("POST", "/chat/completions", conversation()), 404)
        self.assertEqual(self.http("GET", "/v1/models?limit=5")[0], 200)


class TransportTest(MockTestCase):
    """HTTP details libcurl relies on."""

    def raw_request(self, body, extra_headers=""):
        sock = socket.create_connection(("127.0.0.1", self.mock.port), timeout=2)
        self.addCleanup(sock.close)
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{extra_headers}\r\n")
        sock.sendall(head.encode())
        return sock

    def test_expect_100_continue_is_answered_at_once(self):
        # Without an interim 100, curl waits a second before sending the body.
        body = json.dumps(conversation()).encode()
        sock = self.raw_request(body, "Expect: 100-continue\r\n")
        self.assertTrue(sock.recv(64).startswith(b"HTTP/1.1 100"))
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])

    def test_chunked_request_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=5)
        self.addCleanup(conn.close)
        body = json.dumps(conversation()).encode()
        conn.request("POST", "/v1/chat/completions", body=iter([body[:50], body[50:]]),
                     headers={"Authorization": f"Bearer {KEY}",
                              "Content-Type": "application/json"}, encode_chunked=True)
        self.assertEqual(conn.getresponse().status, 200)

    def test_connection_close_by_default(self):
        _, headers, _ = self.http("GET", "/v1/models")
        self.assertEqual(headers["Connection"], "close")


class KeepAliveTest(MockTestCase):
    mock_kwargs = {"keep_alive": True}

    def test_two_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=5)
        self.addCleanup(conn.close)
        for _ in range(2):
            conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)


class StandaloneTest(unittest.TestCase):
    def test_cli_serves_and_prints_base_url(self):
        script = os.path.join(harness.REPO, "tests", "mock", "openai_mock.py")
        proc = subprocess.Popen([sys.executable, script, "--port", "0", "--api-key", "k",
                                 "--window", "100"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        base = proc.stdout.readline().strip()
        self.assertRegex(base, r"^http://127\.0\.0\.1:\d+/v1$")
        req = urllib.request.Request(base + "/chat/completions", method="POST",
                                     data=json.dumps({"model": "m", "messages": [
                                         {"role": "user", "content": "x" * 800}]}).encode(),
                                     headers={"Authorization": "Bearer k",
                                              "Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as ctx:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(json.loads(ctx.exception.read())["error"]["code"],
                         "context_length_exceeded")
        ctx.exception.close()


if __name__ == "__main__":
    harness.main()
