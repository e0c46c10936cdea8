#!/usr/bin/env python3
"""Self-tests of tests/mock/ollama_mock.py, over real HTTP.

The mock is only worth something if it refuses what Ollama refuses, answers
in Ollama's shape, and records the silent things (ignored fields, truncated
prompts) that the binary's tests then assert never happen. Each rule gets a
request that breaks it and a request that keeps it.
"""

import json
import os
import sys
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "mock"))

from ollama_mock import MockOllama, count_prompt_tokens  # noqa: E402
from openai_mock import embed_text  # noqa: E402

MODEL = "llama3.2"
TOOLS = [{"type": "function", "function": {
    "name": "send_message", "description": "Say it.",
    "parameters": {"type": "object", "properties": {"message": {"type": "string"}},
                   "required": ["message"]}}}]


def chat_body(**overrides):
    body = {"model": MODEL, "stream": False, "options": {"num_ctx": 8192},
            "messages": [{"role": "system", "content": "sys"},
                         {"role": "user", "content": "hello"}]}
    body.update(overrides)
    return body


class MockCase(unittest.TestCase):
    mock_kwargs = {}

    def setUp(self):
        self.mock = MockOllama(**self.mock_kwargs).start()
        self.addCleanup(self.mock.stop)

    def http(self, method, path, body=None, raw=None, headers=None):
        """(status, content type, parsed JSON or text) of one request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(self.mock.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, ctype, payload = resp.status, resp.headers["Content-Type"], resp.read()
        except urllib.error.HTTPError as exc:
            status, ctype, payload = exc.code, exc.headers["Content-Type"], exc.read()
        text = payload.decode()
        if ctype.startswith("application/json"):
            return status, ctype, json.loads(text)
        return status, ctype, text

    def chat(self, body=None, raw=None):
        return self.http("POST", "/api/chat", body, raw)

    def assertError(self, answer, status, fragment):
        got_status, _, body = answer
        self.assertEqual(got_status, status, body)
        self.assertEqual(set(body), {"error"}, body)
        self.assertIn(fragment, body["error"])


class ChatShapeTest(MockCase):
    def test_plain_answer(self):
        status, ctype, body = self.chat(chat_body())
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("application/json"))
        self.assertEqual(body["model"], MODEL)
        self.assertTrue(body["done"])
        self.assertEqual(body["message"]["role"], "assistant")
        self.assertIsInstance(body["message"]["content"], str)
        self.assertGreater(body["prompt_eval_count"], 0)
        self.assertGreater(body["eval_count"], 0)
        self.assertEqual(self.mock.invalid_requests(), [])

    def test_scripted_tool_calls_are_objects_without_ids(self):
        self.mock.push({"content": "thinking", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "hi"}},
            {"name": "send_message", "arguments": '{"message": "text form"}'}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3}})
        _, _, body = self.chat(chat_body(tools=TOOLS))
        calls = body["message"]["tool_calls"]
        self.assertEqual(calls[0]["function"]["arguments"], {"message": "hi"})
        self.assertEqual(calls[1]["function"]["arguments"], {"message": "text form"})
        self.assertNotIn("id", calls[0])
        self.assertEqual((body["prompt_eval_count"], body["eval_count"]), (11, 3))

    def test_ids_when_asked(self):
        self.mock.tool_call_ids = True
        _, _, body = self.chat(chat_body(tools=TOOLS, messages=[
            {"role": "user", "content": json.dumps({"type": "user_message", "message": "x"})}]))
        call = body["message"]["tool_calls"][0]
        self.assertTrue(call["id"].startswith("call_"))
        self.assertEqual(call["function"]["arguments"], {"message": "You said: x"})

    def test_no_tool_calls_without_tools(self):
        self.mock.push({"content": "x", "tool_calls": [{"name": "a", "arguments": {}}]})
        _, _, body = self.chat(chat_body())
        self.assertNotIn("tool_calls", body["message"])

    def test_summary_without_tools(self):
        _, _, body = self.chat(chat_body(messages=[
            {"role": "user", "content": "FACT: Oslo and FACT: sailing"}]))
        self.assertEqual(body["message"]["content"], "Summary #1: Oslo, sailing")
        self.assertEqual(self.mock.summaries, ["Summary #1: Oslo, sailing"])

    def test_stream_unless_false(self):
        self.mock.push({"content": "one two three"})
        status, ctype, text = self.chat(chat_body(stream=None))
        self.assertEqual(status, 200)
        self.assertEqual(ctype, "application/x-ndjson")
        lines = [json.loads(x) for x in text.splitlines()]
        self.assertGreater(len(lines), 1)
        self.assertEqual("".join(x["message"]["content"] for x in lines), "one two three")
        self.assertTrue(lines[-1]["done"])
        # Served, but a client that forgets stream:false is flagged.
        self.assertIn("stream", self.mock.invalid_requests()[0]["error"])

    def test_explicit_stream_true(self):
        self.mock.push({"thinking": "hm", "content": "Reply.", "piece_chars": 2,
                        "tool_calls": [{"name": "send_message", "arguments": {"message": "x"}}],
                        "keepalive": True})
        status, ctype, text = self.chat(chat_body(stream=True, tools=TOOLS))
        self.assertEqual((status, ctype), (200, "application/x-ndjson"))
        self.assertIn("\n\n", text)  # the keep-alive blank lines
        lines = [json.loads(x) for x in text.splitlines() if x.strip()]
        self.assertEqual("".join(x["message"].get("thinking", "") for x in lines), "hm")
        self.assertEqual("".join(x["message"]["content"] for x in lines), "Reply.")
        calls = [x["message"]["tool_calls"] for x in lines if "tool_calls" in x["message"]]
        self.assertEqual(len(calls), 1)  # whole, in one line of its own
        self.assertEqual(calls[0][0]["function"]["arguments"], {"message": "x"})
        self.assertEqual([x["done"] for x in lines].count(True), 1)
        self.assertTrue(lines[-1]["done"])
        self.assertEqual(self.mock.invalid_requests(), [])  # stream: true is no problem

    def test_stream_error_line(self):
        self.mock.push({"content": "one two three", "stream_error": {"message": "model crashed",
                                                                      "after_events": 1}})
        _, _, text = self.chat(chat_body(stream=True))
        lines = [json.loads(x) for x in text.splitlines()]
        self.assertEqual(lines[-1], {"error": "model crashed"})
        self.assertFalse(any(x.get("done") for x in lines))

    def test_empty_messages_load_the_model(self):
        _, _, body = self.chat(chat_body(messages=[]))
        self.assertEqual(body["done_reason"], "load")

    def test_thinking(self):
        self.mock.push({"content": "", "thinking": "hmm", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "m"}}]})
        _, _, body = self.chat(chat_body(tools=TOOLS))
        self.assertEqual(body["message"]["thinking"], "hmm")

    def test_openai_view_and_wire(self):
        messages = [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "function": {"name": "send_message", "arguments": {"message": "m"}}}]},
            {"role": "tool", "content": "{}", "tool_name": "send_message", "tool_call_id": "c1"},
        ]
        self.chat(chat_body(messages=messages, tools=TOOLS,
                            options={"num_ctx": 2048, "num_predict": 77}))
        view = self.mock.chat_requests()[0]
        self.assertEqual(view["max_tokens"], 77)
        call = view["messages"][2]["tool_calls"][0]
        self.assertEqual(call["type"], "function")
        self.assertEqual(json.loads(call["function"]["arguments"]), {"message": "m"})
        self.assertEqual(view["messages"][3]["tool_call_id"], "c1")
        self.assertEqual(self.mock.chat_requests(raw=True)[0]["messages"], messages)
        self.assertEqual(self.mock.requests[0]["num_ctx"], 2048)


class ChatValidationTest(MockCase):
    def test_model(self):
        self.assertError(self.chat(chat_body(model="")), 400, "model is required")
        self.assertError(self.chat(chat_body(model=None)), 400, "model is required")
        self.assertError(self.chat(chat_body(model=3)), 400,
                         "cannot unmarshal number into Go struct field ChatRequest.model")
        self.assertError(self.chat(chat_body(model="nope")), 404,
                         'model "nope" not found, try pulling it first')
        self.assertEqual(self.chat(chat_body(model="llama3.2:latest"))[0], 200)

    def test_body(self):
        self.assertError(self.chat(raw=b""), 400, "missing request body")
        self.assertError(self.chat(raw=b'{"model": '), 400, "unexpected EOF")
        self.assertError(self.chat(raw=b"nonsense"), 400, "invalid character")
        self.assertError(self.chat(raw=b"[1]"), 400, "cannot unmarshal array into Go value")
        self.assertError(self.chat(raw=b'{"model": NaN}'), 400, "invalid character")

    def test_types(self):
        cases = [
            ({"messages": "x"}, "ChatRequest.messages"),
            ({"messages": [5]}, "ChatRequest.messages"),
            ({"messages": [{"role": "user", "content": 5}]}, "ChatRequest.messages.content"),
            ({"messages": [{"role": "user", "content": "x", "images": "x"}]}, "images"),
            ({"stream": "no"}, "ChatRequest.stream"),
            ({"tools": {}}, "ChatRequest.tools"),
            ({"options": []}, "ChatRequest.options"),
        ]
        for override, fragment in cases:
            with self.subTest(override=override):
                self.assertError(self.chat(chat_body(**override)), 400, fragment)

    def test_roles(self):
        for role in ("developer", "USER", None, "function"):
            with self.subTest(role=role):
                self.assertError(self.chat(chat_body(messages=[
                    {"role": role, "content": "x"}])), 400, "invalid role")

    def test_arguments_must_be_objects(self):
        def with_args(args):
            return chat_body(tools=TOOLS, messages=[
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "send_message", "arguments": args}}]},
                {"role": "tool", "content": "{}", "tool_name": "send_message"}])
        self.assertError(self.chat(with_args('{"message": "m"}')), 400,
                         "cannot unmarshal string into Go struct field "
                         "ChatRequest.messages.tool_calls.function.arguments")
        self.assertError(self.chat(with_args([1])), 400, "arguments")
        self.assertEqual(self.chat(with_args({"message": "m"}))[0], 200)
        self.assertEqual(self.mock.invalid_requests()[-1]["status"], 400)
        self.assertEqual(len(self.mock.invalid_requests()), 2)

    def test_tool_results_follow_their_calls(self):
        call = {"id": "c1", "function": {"name": "send_message", "arguments": {}}}
        asst = {"role": "assistant", "content": "", "tool_calls": [call]}
        good = {"role": "tool", "content": "r", "tool_name": "send_message",
                "tool_call_id": "c1"}
        user = {"role": "user", "content": "u"}
        cases = [
            ([user, good], "must follow an assistant message"),
            ([user, asst, dict(good, tool_name=None)], "needs tool_name"),
            ([user, asst, dict(good, tool_name="other")], "is not one of the calls"),
            ([user, asst, dict(good, tool_call_id="zz")], "answers no call"),
            ([user, asst, good, good], "answered twice"),
            ([user, asst, user, good], "must follow an assistant message"),
            ([user, {"role": "user", "content": "", "tool_calls": [call]}], "only assistant"),
            ([user, {"role": "assistant", "content": "", "tool_calls": [call, call]}],
             "duplicate id"),
            ([user, {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "", "arguments": {}}}]}], "name is empty"),
        ]
        for messages, fragment in cases:
            with self.subTest(fragment=fragment):
                self.assertError(self.chat(chat_body(messages=messages, tools=TOOLS)), 400,
                                 fragment)
        self.assertEqual(self.chat(chat_body(messages=[user, asst, good], tools=TOOLS))[0], 200)

    def test_tools(self):
        fn = TOOLS[0]["function"]
        cases = [
            ([{"type": "other", "function": fn}], "type must be"),
            ([{"type": "function", "function": dict(fn, name="bad name")}], "must match"),
            ([TOOLS[0], TOOLS[0]], "duplicate function name"),
            ([{"type": "function", "function": dict(fn, parameters={"type": "string"})}],
             "object schema"),
            ([{"type": "function", "function": dict(fn, parameters={
                "type": "object", "properties": {}, "required": ["x"]})}], "not in properties"),
            ([{"type": "function", "function": dict(fn, description=5)}], "description"),
        ]
        for tools, fragment in cases:
            with self.subTest(fragment=fragment):
                self.assertError(self.chat(chat_body(tools=tools)), 400, fragment)

    def test_model_without_tool_support(self):
        self.mock.no_tools.add(MODEL)
        self.assertError(self.chat(chat_body(tools=TOOLS)), 400, "does not support tools")
        self.assertEqual(self.chat(chat_body())[0], 200)

    def test_option_types_are_500s(self):
        self.assertError(self.chat(chat_body(options={"num_ctx": "8192"})), 500,
                         'option "num_ctx" must be of type integer')
        self.assertError(self.chat(chat_body(options={"num_ctx": 10, "temperature": "hot"})),
                         500, 'option "temperature" must be of type float32')
        self.assertError(self.chat(chat_body(options={"num_ctx": 10, "stop": "x"})), 500,
                         "must be of type array")

    def test_silent_things_are_flagged(self):
        cases = [
            (chat_body(max_tokens=5), "unknown field 'max_tokens'"),
            (chat_body(options={"num_ctx": 100, "max_tokens": 5}), "unknown option"),
            (chat_body(options={}), "no options.num_ctx"),
            (chat_body(options=None), "no options.num_ctx"),
            (chat_body(options={"num_ctx": 100.5}), "not a whole number"),
            (chat_body(options={"num_ctx": 0}), "default window"),
            (chat_body(messages=[{"role": "user", "content": "x", "name": "n"}]),
             "unknown field messages[0].'name'"),
            (chat_body(messages=[{"role": "user"}]), "content is missing"),
        ]
        for body, fragment in cases:
            with self.subTest(fragment=fragment):
                self.mock.reset()
                self.assertEqual(self.chat(body)[0], 200)  # Ollama serves these...
                bad = self.mock.invalid_requests()  # ...but they are client bugs
                self.assertEqual(len(bad), 1)
                self.assertIn(fragment, bad[0]["error"])

    def test_clean_requests_are_valid(self):
        self.chat(chat_body(tools=TOOLS, options={"num_ctx": 4096, "num_predict": 10,
                                                  "temperature": 0.5, "stop": ["x"]}))
        self.assertEqual(self.mock.invalid_requests(), [])


class TruncationTest(MockCase):
    mock_kwargs = {"context_windows": {"small": 100}}

    def long_body(self, num_ctx):
        messages = [{"role": "system", "content": "S" * 40}]
        messages += [{"role": "user", "content": f"FACT: w{i} " + "x" * 60} for i in range(10)]
        return chat_body(model="small", messages=messages, options={"num_ctx": num_ctx})

    def test_over_long_prompt_is_truncated_not_refused(self):
        body = self.long_body(80)
        full = count_prompt_tokens(body)
        self.assertGreater(full, 80)
        status, _, answer = self.chat(body)
        self.assertEqual(status, 200)
        record = self.mock.truncations()[0]
        self.assertEqual(record["truncated"]["window"], 80)
        self.assertEqual(record["truncated"]["prompt_tokens"], full)
        self.assertLessEqual(answer["prompt_eval_count"], 80)
        self.assertGreater(record["truncated"]["dropped_messages"], 0)
        # The model only saw the newest messages (and the system message).
        self.assertNotIn("w0", answer["message"]["content"])
        self.assertIn("w9", answer["message"]["content"])
        self.assertIn("silently dropped", self.mock.invalid_requests()[0]["error"])

    def test_num_ctx_is_clamped_to_the_model(self):
        self.chat(self.long_body(100000))
        self.assertEqual(self.mock.requests[0]["num_ctx"], 100)
        self.assertTrue(self.mock.truncations())

    def test_fitting_prompt_is_not_truncated(self):
        body = chat_body(model="small", options={"num_ctx": 100})
        self.assertEqual(self.chat(body)[0], 200)
        self.assertEqual(self.mock.truncations(), [])

    def test_default_window_without_num_ctx(self):
        self.mock.default_num_ctx = 50
        self.chat(dict(self.long_body(1), options={}))
        self.assertEqual(self.mock.requests[0]["num_ctx"], 50)


class OtherEndpointsTest(MockCase):
    def embed(self, **body):
        return self.http("POST", "/api/embed", body)

    def test_embed(self):
        status, _, body = self.embed(model="nomic-embed-text", input="the cat sat")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["embeddings"]), 1)
        self.assertEqual(len(body["embeddings"][0]), 64)
        _, _, many = self.embed(model="nomic-embed-text", input=["a", "b"])
        self.assertEqual(len(many["embeddings"]), 2)
        _, _, none = self.embed(model="nomic-embed-text", input="")
        self.assertEqual(none["embeddings"], [])
        self.assertError(self.embed(model="nope", input="x"), 404, "model 'nope' not found")
        self.assertError(self.embed(model="nomic-embed-text", input=[1]), 400,
                         "invalid input type")
        self.assertError(self.embed(model="nomic-embed-text", input={"a": 1}), 400,
                         "invalid input type")
        self.embed(model="nomic-embed-text", input="x", encoding_format="float")
        self.assertIn("encoding_format", self.mock.invalid_requests()[-1]["error"])

    def test_embed_batches(self):
        texts = ["the cat sat", "on the mat", "quantum chromodynamics"]
        status, _, body = self.embed(model="nomic-embed-text", input=texts)
        self.assertEqual(status, 200)
        self.assertEqual(body["embeddings"], [embed_text(t) for t in texts])  # in order
        self.assertEqual(self.mock.invalid_requests(), [])
        self.assertEqual(len(self.mock.embed_requests()), 1)
        # Served as Ollama serves them, but flagged: nothing to embed, an empty
        # item, more inputs than a batching client sends.
        for inputs, fragment in [([], "nothing to embed"), ("", "nothing to embed"),
                                 (None, "nothing to embed"), (["a", ""], "input[1]"),
                                 (["x"] * 2049, "2049 inputs")]:
            with self.subTest(inputs=str(inputs)[:30]):
                body = {"model": "nomic-embed-text"}
                if inputs is not None:
                    body["input"] = inputs
                status, _, answer = self.http("POST", "/api/embed", body)
                self.assertEqual(status, 200)
                self.assertIn(fragment, self.mock.invalid_requests()[-1]["error"])
        self.assertError(self.embed(model="nomic-embed-text", input=["a", 2]), 400,
                         "invalid input type")
        self.assertError(self.embed(model="nomic-embed-text", input=[["a"]]), 400,
                         "invalid input type")

    def test_show(self):
        self.mock.set_window("llama3.2", 8192)
        status, _, body = self.http("POST", "/api/show", {"model": "llama3.2"})
        self.assertEqual(status, 200)
        info = body["model_info"]
        self.assertEqual(info["general.architecture"], "llama")
        self.assertEqual(info["llama.context_length"], 8192)
        _, _, body = self.http("POST", "/api/show", {"model": "qwen3:8b"})
        self.assertEqual(body["model_info"]["qwen3.context_length"], 131072)
        self.assertEqual(self.mock.invalid_requests(), [])
        self.assertError(self.http("POST", "/api/show", {"model": "nope"}), 404,
                         "model 'nope' not found")
        self.assertError(self.http("POST", "/api/show", {}), 400, "model is required")
        self.assertError(self.http("POST", "/api/show", {"model": 3}), 400,
                         "cannot unmarshal number")
        self.assertEqual(self.http("GET", "/api/show")[0], 405)
        self.http("POST", "/api/show", {"name": "llama3.2"})
        self.assertIn("deprecated", self.mock.invalid_requests()[-1]["error"])
        self.mock.push({"status": 500}, endpoint="show")
        self.assertEqual(self.http("POST", "/api/show", {"model": "llama3.2"})[0], 500)

    def test_embed_scripted(self):
        self.mock.push({"status": 500}, endpoint="embeddings")
        self.assertEqual(self.embed(model="nomic-embed-text", input="x")[0], 500)
        self.assertEqual(self.embed(model="nomic-embed-text", input="x")[0], 200)

    def test_tags(self):
        status, _, body = self.http("GET", "/api/tags")
        self.assertEqual(status, 200)
        names = [m["name"] for m in body["models"]]
        self.assertIn("llama3.2:latest", names)
        self.assertIn("qwen3:8b", names)
        for m in body["models"]:
            self.assertEqual(set(m), {"name", "model", "modified_at", "size", "digest",
                                      "details"})

    def test_routes(self):
        self.assertEqual(self.http("GET", "/"), (200, "text/plain; charset=utf-8",
                                                 "Ollama is running"))
        self.assertEqual(self.http("GET", "/api/chat")[0], 405)
        self.assertEqual(self.http("POST", "/v1/chat/completions", {})[0], 404)

    def test_scripted_errors_in_ollama_shape(self):
        self.mock.push({"status": 503})
        self.assertError(self.chat(chat_body()), 503, "server busy")
        self.mock.push({"status": 500, "body": {"error": "boom"}})
        self.assertError(self.chat(chat_body()), 500, "boom")

    def test_push_refuses_what_ollama_cannot_say(self):
        with self.assertRaises(ValueError):
            self.mock.push({"context_length_exceeded": True})
        with self.assertRaises(ValueError):
            self.mock.push({"contnet": "typo"})


class AuthTest(MockCase):
    mock_kwargs = {"api_key": "k"}

    def test_bearer(self):
        self.assertError(self.chat(chat_body()), 401, "unauthorized")
        status, _, _ = self.http("POST", "/api/chat", chat_body(),
                                 headers={"Authorization": "Bearer k"})
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
