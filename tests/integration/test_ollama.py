#!/usr/bin/env python3
"""The Ollama provider, end to end: the real binary against
tests/mock/ollama_mock.py (a strict loopback Ollama).

Covers what is particular to Ollama: OLLAMA_HOST in its accepted forms,
options.num_ctx from the agent's window (and the agent keeping every request
under it, since Ollama truncates silently instead of refusing), tool calls
whose arguments are objects and that may lack ids, tool results carrying
tool_name, /api/embed embeddings, `memgpt models`, and the advice in error
messages (`ollama serve`, `ollama pull`). The whole generic suite also runs
against this mock through the harness (MEMGPT_TEST_PROVIDER=ollama).
"""

import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "mock"))

from harness import MemgptTestCase, main  # noqa: E402
from ollama_mock import MockOllama  # noqa: E402

MODEL = "llama3.2"
HANDLE = "ollama/" + MODEL


def user_event(text):
    return json.dumps({"type": "user_message", "message": text})


def closed_port():
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class OllamaCase(MemgptTestCase):
    """self.ollama is a started MockOllama; the binary is pointed at it.
    (self.mock, the harness's default mock, is left alone.)"""

    ollama_kwargs = {}
    # Runs once, in the default run: it starts its own Ollama mock, and uses
    # self.mock as the OpenAI endpoint (`memgpt models`).
    providers = ("openai",)

    def setUp(self):
        super().setUp()
        self.ollama = MockOllama(**self.ollama_kwargs).start()
        self.addCleanup(self.ollama.stop)

    def memgpt_env(self, env=None):
        base = {k: None for k in os.environ if k.startswith("OLLAMA_")}
        base["OLLAMA_HOST"] = self.ollama.host  # the bare host:port form
        base.update(env or {})
        return super().memgpt_env(base)

    def create(self, name="a", window=8000, *extra, model=HANDLE):
        self.run_memgpt("agents", "create", name, "--model", model, "--context-window", window,
                        "--idle-seconds", "off", *extra, check=0)

    def wire(self):
        return self.ollama.chat_requests(raw=True)

    def assert_ollama_valid(self):
        bad = self.ollama.invalid_requests()
        self.assertFalse(bad, "the Ollama mock refused or flagged requests:\n" + "\n".join(
            f"{r['method']} {r['path']} -> {r['status']}: {r['error']}" for r in bad))
        self.assertEqual(self.ollama.truncations(), [], "Ollama had to truncate a prompt")

    def fail_one_line(self, proc, *fragments):
        """Exit 1 with one 'memgpt: ' line on stderr containing every fragment."""
        self.assertEqual(proc.returncode, 1, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("memgpt: "), lines[0])
        for f in fragments:
            self.assertIn(f, lines[0])
        return lines[0]


class ChatTest(OllamaCase):
    def test_turn_uses_the_native_api(self):
        self.create(window=6000)
        events = self.send("hello there", agent="a", json_out=True)
        replies = [e["content"] for e in events if e["message_type"] == "assistant_message"]
        self.assertEqual(replies, ["You said: hello there"])
        self.assertEqual(self.mock.requests, [], "nothing may go to the OpenAI endpoint")
        (body,) = self.wire()
        self.assertEqual(body["model"], MODEL)
        self.assertIs(body["stream"], False)
        self.assertEqual(body["options"], {"num_ctx": 6000})
        self.assertEqual(body["messages"][0]["role"], "system")
        self.assertEqual(json.loads(body["messages"][-1]["content"])["message"], "hello there")
        names = [t["function"]["name"] for t in body["tools"]]
        self.assertIn("send_message", names)
        self.assertTrue(all(t["type"] == "function" for t in body["tools"]))
        usage = events[-1]
        self.assertEqual(usage["message_type"], "usage_statistics")
        self.assertEqual(usage["prompt_tokens"], self.ollama.requests[0]["prompt_tokens"])
        self.assert_ollama_valid()

    def test_calls_without_ids_get_unique_ids_that_pair_results(self):
        self.create()
        self.ollama.push({"content": "Two things.", "tool_calls": [
            {"name": "core_memory_append",
             "arguments": {"label": "human", "content": "Likes tea.",
                           "request_heartbeat": True}},
            {"name": "send_message", "arguments": {"message": "Noted!"}}]})
        self.ollama.push({"content": "Done.", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "Anything else?"}}]})
        events = self.send("I like tea", agent="a", json_out=True)
        calls = [e["tool_call"] for e in events if e["message_type"] == "tool_call_message"]
        returns = [e for e in events if e["message_type"] == "tool_return_message"]
        self.assertEqual(len(calls), 3)
        ids = [c["tool_call_id"] for c in calls]
        self.assertEqual(len(set(ids)), 3, ids)
        self.assertTrue(all(ids), ids)
        self.assertEqual([r["tool_call_id"] for r in returns], ids)
        self.assertEqual(json.loads(calls[0]["arguments"]),
                         {"label": "human", "content": "Likes tea.", "request_heartbeat": True})

        # The second request carries the first step back in Ollama's shape.
        second = self.wire()[1]["messages"]
        asst = next(m for m in second if m.get("tool_calls"))
        self.assertEqual([c["id"] for c in asst["tool_calls"]], ids[:2])
        self.assertEqual(asst["tool_calls"][0]["function"]["arguments"],
                         {"label": "human", "content": "Likes tea.", "request_heartbeat": True})
        results = [m for m in second if m["role"] == "tool"]
        self.assertEqual([(m["tool_name"], m["tool_call_id"]) for m in results],
                         [("core_memory_append", ids[0]), ("send_message", ids[1])])
        self.assertEqual(json.loads(results[0]["content"])["status"], "OK")
        self.assert_ollama_valid()

        # Ids stay unique across turns and processes.
        self.ollama.push({"content": "", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "again"}}]})
        later = self.send("hi", agent="a", json_out=True)
        new_id = [e for e in later if e["message_type"] == "tool_call_message"][0]
        self.assertNotIn(new_id["tool_call"]["tool_call_id"], ids)

    def test_server_ids_are_kept(self):
        self.ollama.tool_call_ids = True
        self.create()
        events = self.send("hello", agent="a", json_out=True)
        call = [e for e in events if e["message_type"] == "tool_call_message"][0]
        self.assertTrue(call["tool_call"]["tool_call_id"].startswith("call_"))
        # And reach the server again with the result.
        self.ollama.push({"content": "", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "x"}, "id": "call_fixed"}]})
        self.send("again", agent="a")
        msgs = self.wire()[-1]["messages"]
        self.assertIn(call["tool_call"]["tool_call_id"],
                      [m.get("tool_call_id") for m in msgs if m["role"] == "tool"])
        self.assert_ollama_valid()

    def test_model_mistakes_stay_model_mistakes(self):
        """Arguments that are not an object (a server that is not quite Ollama)
        are a Failed function result, not a crash; the next request sends
        them back as a valid empty object."""
        self.create()
        self.ollama.push({"content": "", "tool_calls": [
            {"name": "send_message", "arguments": "not json"}]})
        self.ollama.push({"content": "", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "fixed"}}]})
        events = self.send("hi", agent="a", json_out=True)
        returns = [e for e in events if e["message_type"] == "tool_return_message"]
        self.assertEqual(returns[0]["status"], "error")
        self.assertEqual(returns[1]["status"], "success")
        asst = [m for m in self.wire()[1]["messages"] if m.get("tool_calls")][-1]
        self.assertEqual(asst["tool_calls"][0]["function"]["arguments"], {})
        self.assert_ollama_valid()

    def test_thinking_stands_in_for_empty_monologue(self):
        self.create()
        self.ollama.push({"content": "", "thinking": "The user greets me.", "tool_calls": [
            {"name": "send_message", "arguments": {"message": "Hi!"}}]})
        events = self.send("hi", agent="a", json_out=True)
        reasoning = [e["reasoning"] for e in events if e["message_type"] == "reasoning_message"]
        self.assertEqual(reasoning, ["The user greets me."])

    def test_host_forms(self):
        self.create()
        for host in (self.ollama.host, self.ollama.base_url, self.ollama.base_url + "/",
                     f"  {self.ollama.host}  "):
            with self.subTest(host=host):
                self.send("hi", agent="a", env={"OLLAMA_HOST": host})
        proc = self.send("hi", agent="a", env={"OLLAMA_HOST": "ftp://x"}, check=None)
        self.fail_one_line(proc, "OLLAMA_HOST", "ftp://x")
        self.assert_ollama_valid()

    def test_api_key_is_sent(self):
        self.ollama.api_key = "sekret"
        self.create()
        proc = self.send("hi", agent="a", check=None)
        self.fail_one_line(proc, "OLLAMA_API_KEY")
        self.send("hi", agent="a", env={"OLLAMA_API_KEY": "sekret"})
        self.assertEqual(self.ollama.requests[-1]["headers"]["authorization"], "Bearer sekret")


class WindowTest(OllamaCase):
    """Ollama never refuses an over-long prompt; it drops its start. So the
    agent's own budget must keep every request under num_ctx."""

    ollama_kwargs = {"default_window": 100000}

    def test_long_conversation_never_overflows_num_ctx(self):
        window = 3400
        self.create("a", window, "--reflect-every", "5")
        padding = "and the weather is fine today, " * 6
        for i in range(60):
            if i % 7 == 3:  # now and then a big function result mid-turn
                self.ollama.push({"content": "Searching.", "tool_calls": [
                    {"name": "conversation_search",
                     "arguments": {"query": "weather", "request_heartbeat": True}}]})
            events = self.send(f"turn {i}: FACT: item{i} {padding}", agent="a", json_out=True)
            self.assertEqual(events[-1]["message_type"], "usage_statistics")

        records = [r for r in self.ollama.requests if r["path"] == "/api/chat"]
        self.assertGreater(len(records), 60)
        summarizer = [r for r in records if not r["wire"].get("tools")]
        self.assertTrue(summarizer, "the conversation never flushed: the test is too short")
        for r in records:
            self.assertEqual(r["wire"]["options"]["num_ctx"], window)
            self.assertEqual(r["num_ctx"], window)
            self.assertLessEqual(r["prompt_tokens"], window,
                                 "a request exceeded num_ctx by the mock's count")
        for r in summarizer:  # the summarizer's reply budget goes as num_predict
            self.assertGreater(r["wire"]["options"]["num_predict"], 0)
        self.assert_ollama_valid()
        peak = max(r["prompt_tokens"] for r in records)
        self.assertGreater(peak, window // 2, "the window was never really used")

    def test_model_window_smaller_than_agent_window_is_caught_by_the_mock(self):
        """The mock's truncation record is what the test above relies on: a
        model whose real window is below the agent's shows up there."""
        self.ollama.set_window(MODEL, 300)
        self.create("a", 8000)
        self.send("hello", agent="a")
        self.assertTrue(self.ollama.truncations())


class EmbeddingTest(OllamaCase):
    def test_archival_memory_with_ollama_embeddings(self):
        self.create("a", 8000, "--embedder", "ollama/nomic-embed-text")
        self.run_memgpt("archival", "insert", "--agent", "a",
                        "The lighthouse keeper's cat is called Biscuit.", check=0)
        self.run_memgpt("archival", "insert", "--agent", "a",
                        "Quarterly revenue grew by four percent.", check=0)
        out = self.run_memgpt("archival", "search", "--agent", "a", "--json",
                              "lighthouse cat Biscuit", check=0).stdout
        results = json.loads(out)["results"]
        self.assertIn("Biscuit", results[0]["text"])
        embeds = [r for r in self.ollama.requests if r["path"] == "/api/embed"]
        self.assertEqual(len(embeds), 3)
        # Inputs go as an array, even one (the batched form, see test_archival_load).
        self.assertEqual(embeds[0]["wire"], {"model": "nomic-embed-text",
                                             "input": ["The lighthouse keeper's cat is called "
                                                       "Biscuit."]})
        self.assert_ollama_valid()

    def test_embedding_errors(self):
        self.create("a", 8000, "--embedder", "ollama/missing-embedder")
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "text", check=None)
        self.fail_one_line(proc, "ollama pull missing-embedder")

        self.create("b", 8000, "--embedder", "ollama/nomic-embed-text")
        for bad in ('{"model": "m", "embeddings": []}', '{"embeddings": [["x"]]}',
                    '{"embeddings": [[]]}', '{"embeddings": "no"}', "not json"):
            with self.subTest(body=bad):
                self.ollama.push({"raw_body": bad}, endpoint="embeddings")
                proc = self.run_memgpt("archival", "insert", "--agent", "b", "t", check=None)
                self.fail_one_line(proc, "/api/embed")

        # Retried like chat: a 503 then success.
        self.ollama.push({"status": 503}, endpoint="embeddings")
        self.run_memgpt("archival", "insert", "--agent", "b", "fine", check=0)


class ErrorTest(OllamaCase):
    def test_server_not_running(self):
        self.create()
        port = closed_port()
        proc = self.send("hi", agent="a", check=None,
                         env={"OLLAMA_HOST": f"127.0.0.1:{port}", "MEMGPT_MAX_RETRIES": 2})
        line = self.fail_one_line(proc, "OLLAMA_HOST", "ollama serve", str(port))
        self.assertIn("connection refused", line)

    def test_model_not_pulled(self):
        self.create(model="ollama/mistral-nemo")
        proc = self.send("hi", agent="a", check=None)
        self.fail_one_line(proc, "ollama pull mistral-nemo")

    def test_model_without_tools(self):
        self.ollama.no_tools.add(MODEL)
        self.create()
        proc = self.send("hi", agent="a", check=None)
        self.fail_one_line(proc, "cannot call tools")

    def test_retries(self):
        self.create()
        self.ollama.push({"status": 500, "body": {"error": "runner crashed"}})
        self.ollama.push({"drop": True})
        self.send("hi", agent="a")
        self.assertEqual([r["status"] for r in self.ollama.requests], [500, None, 200])

        self.ollama.push({"status": 500, "body": {"error": "runner crashed"}})
        self.ollama.push({"status": 500, "body": {"error": "runner crashed"}})
        proc = self.send("hi", agent="a", check=None, env={"MEMGPT_MAX_RETRIES": 2})
        self.fail_one_line(proc, "runner crashed")

    def test_malformed_answers_fail_cleanly(self):
        self.create()
        bodies = [
            "not json",
            "[]",
            "{}",
            '{"message": 5, "done": true}',
            '{"message": {"content": 7}, "done": true}',
            '{"message": {"content": "x", "tool_calls": "bad"}, "done": true}',
            '{"message": {"tool_calls": [{"function": {"arguments": {}}}]}, "done": true}',
            '{"message": {"tool_calls": [7]}, "done": true}',
            '{"message": {"content": "x"}, "done": false}',
            '{"error": "something broke"}',
            '{"message": {"content": "' + "\\ud800" + '"}',
            '{"message": {"content": "cut',
            "[" * 10000 + "]" * 10000,
        ]
        for body in bodies:
            with self.subTest(body=body[:60]):
                self.ollama.push({"raw_body": body})
                proc = self.send("hi", agent="a", check=None)
                self.fail_one_line(proc)
        # Still usable afterwards.
        self.send("hello", agent="a")

    def test_streamed_answer_is_named(self):
        self.create()
        stream = (json.dumps({"message": {"role": "assistant", "content": "Hi"},
                              "done": False}) + "\n" +
                  json.dumps({"message": {"role": "assistant", "content": ""},
                              "done": True}) + "\n")
        self.ollama.push({"raw_body": stream, "headers": {"Content-Type": "application/x-ndjson"}})
        proc = self.send("hi", agent="a", check=None)
        self.fail_one_line(proc, "stream")

    def test_handle_needs_a_model(self):
        proc = self.run_memgpt("agents", "create", "x", "--model", "ollama/", check=2)
        self.assertIn("ollama/MODEL", proc.stderr)


class ContextWindowTest(OllamaCase):
    """An ollama/ model we do not know gets the window the server states
    (POST /api/show), asked once at create time and stored."""

    def make(self, name, model, *extra, check=0, env=None):
        return self.run_memgpt("agents", "create", name, "--model", model, "--idle-seconds",
                               "off", *extra, check=check, env=env)

    def window(self, name):
        out = self.run_memgpt("agents", "show", name, "--json", check=0).stdout
        return json.loads(out)["context_window"]

    def shows(self):
        return [r for r in self.ollama.requests if r["path"] == "/api/show"]

    def test_window_from_the_server_is_stored(self):
        self.ollama.set_window("llama3.2", 16384)
        proc = self.make("a", "ollama/llama3.2")
        self.assertEqual(proc.stderr, "")
        self.assertEqual(self.window("a"), 16384)
        self.assertEqual([r["wire"] for r in self.shows()], [{"model": "llama3.2"}])
        self.send("hello", agent="a")
        self.assertEqual(self.wire()[-1]["options"]["num_ctx"], 16384)
        self.assertEqual(len(self.shows()), 1)  # not asked again on send
        self.assert_ollama_valid()

    def test_large_windows_are_capped(self):
        self.make("a", "ollama/qwen3:8b")  # the mock states 131072
        self.assertEqual(self.window("a"), 32768)

    def test_known_models_and_explicit_windows_ask_nothing(self):
        self.make("a", "ollama/gpt-4o-mini")  # in the table of known windows
        self.assertEqual(self.window("a"), 128000)
        self.make("b", "ollama/llama3.2", "--context-window", "9000")
        self.assertEqual(self.window("b"), 9000)
        self.assertEqual(self.shows(), [])

    def test_changing_model_learns_the_new_window(self):
        self.make("a", "ollama/gpt-4o-mini")
        self.ollama.set_window("llama3.2", 16384)
        self.run_memgpt("agents", "set", "a", "--model", "ollama/llama3.2")
        self.assertEqual(self.window("a"), 16384)
        self.assertEqual(len(self.shows()), 1)
        # A window the server cannot state keeps the agent's, and says so.
        self.ollama.push({"status": 500}, endpoint="show")
        self.ollama.push({"status": 500}, endpoint="show")
        proc = self.run_memgpt("agents", "set", "a", "--model", "ollama/mistral", check=0)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("could not learn the context window of ollama/mistral", proc.stderr)
        self.assertIn("keeping the agent's window", proc.stderr)
        self.assertEqual(self.window("a"), 16384)
        # An explicit window asks nothing.
        asked = len(self.shows())
        self.run_memgpt("agents", "set", "a", "--model", "ollama/phi3", "--context-window",
                        "9000")
        self.assertEqual(self.window("a"), 9000)
        self.assertEqual(len(self.shows()), asked)

    def test_failures_keep_the_default_and_say_so(self):
        cases = [
            ({"status": 500}, "HTTP 500"),
            ({"body": {"model_info": {}}}, "general.architecture"),
            ({"body": {"model_info": {"general.architecture": "llama"}}},
             "llama.context_length"),
        ]
        for i, (spec, says) in enumerate(cases):
            with self.subTest(spec=spec):
                for _ in range(2):  # asked at most twice
                    self.ollama.push(spec, endpoint="show")
                proc = self.make(f"a{i}", "ollama/llama3.2")
                self.assertIn("note: could not learn the context window of ollama/llama3.2",
                              proc.stderr)
                self.assertIn(says, proc.stderr)
                self.assertIn("8192", proc.stderr)
                self.assertEqual(self.window(f"a{i}"), 8192)
                self.ollama.reset()
        proc = self.make("down", "ollama/llama3.2",
                         env={"OLLAMA_HOST": f"127.0.0.1:{closed_port()}"})
        self.assertIn("ollama serve", proc.stderr)
        self.assertEqual(self.window("down"), 8192)

    def test_unknown_model(self):
        proc = self.make("a", "ollama/not-pulled")
        self.assertIn("ollama pull not-pulled", proc.stderr)
        self.assertEqual(self.window("a"), 8192)


class ModelsCommandTest(OllamaCase):
    def test_ollama_text_and_json(self):
        self.ollama.add_model("evil\x1b[2Jname")
        proc = self.run_memgpt("models", "--provider", "ollama", check=0)
        lines = proc.stdout.splitlines()
        self.assertIn("llama3.2:latest", lines)
        self.assertIn("qwen3:8b", lines)
        self.assertNotIn("\x1b", proc.stdout)
        self.assertIn("evil?[2Jname:latest", lines)
        self.assertEqual(proc.stderr, "")
        listed = json.loads(self.run_memgpt("models", "--provider", "ollama", "--json",
                                            check=0).stdout)
        self.assertEqual([m["id"].replace("\x1b", "?") for m in listed], lines)
        self.assertTrue(all("digest" in m for m in listed))
        self.assertEqual([r["path"] for r in self.ollama.requests], ["/api/tags"] * 2)
        self.assertEqual(self.ollama.requests[0]["method"], "GET")

    def test_openai_is_the_default(self):
        self.mock.set_window("custom-model", 1000)
        proc = self.run_memgpt("models", check=0)
        lines = proc.stdout.splitlines()
        self.assertIn("gpt-4o-mini", lines)
        self.assertIn("custom-model", lines)
        self.assertEqual([r["path"] for r in self.mock.requests], ["/v1/models"])
        self.assertEqual(self.mock.requests[0]["headers"]["authorization"], "Bearer test-key")
        both = self.run_memgpt("models", "--provider", "openai", "--json", check=0)
        self.assertIn("custom-model", [m["id"] for m in json.loads(both.stdout)])

    def test_usage_and_errors(self):
        for args in (["extra"], ["--provider"], ["--bogus"]):
            with self.subTest(args=args):
                self.run_memgpt("models", *args, check=2)
        proc = self.run_memgpt("models", "--provider", "nosuch", check=2)
        self.assertIn("unknown provider 'nosuch'", proc.stderr)
        proc = self.run_memgpt("models", "--provider", "ollama", check=1,
                               env={"OLLAMA_HOST": f"127.0.0.1:{closed_port()}",
                                    "MEMGPT_MAX_RETRIES": 1})
        self.assertIn("ollama serve", proc.stderr)
        # The home directory is never needed.
        self.assertEqual(os.listdir(self.home), [])

    def test_anthropic_lists_from_its_own_endpoint(self):
        """Every provider lists models now (Anthropic: GET /v1/models, see
        test_anthropic_provider.ModelsTest), each from its own endpoint."""
        from anthropic_mock import MockAnthropic
        anthropic = MockAnthropic(api_key="k").start()
        self.addCleanup(anthropic.stop)
        proc = self.run_memgpt("models", "--provider", "anthropic", check=0,
                               env={"ANTHROPIC_API_KEY": "k",
                                    "ANTHROPIC_BASE_URL": anthropic.base_url})
        self.assertIn("claude-sonnet-4-5", proc.stdout.splitlines())
        self.assertEqual([r["path"] for r in anthropic.requests], ["/v1/models"])
        self.assertEqual(self.ollama.requests, [])

    def test_malformed_listing(self):
        for body, ok in (('{"models": "x"}', False), ('{"models": null}', True),
                         ('{"models": [{"name": 5}, 7, {"name": "ok"}]}', True)):
            with self.subTest(body=body):
                server = _OneShot(body)
                proc = self.run_memgpt("models", "--provider", "ollama", check=None,
                                       env={"OLLAMA_HOST": server.host})
                server.close()
                if ok:
                    self.assertEqual(proc.returncode, 0, proc.stderr)
                else:
                    self.fail_one_line(proc, "models list")
        self.assertEqual(proc.stdout, "ok\n")


class _OneShot:
    """A server that answers one HTTP request with a fixed JSON body."""

    def __init__(self, body):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.host = "127.0.0.1:%d" % self.sock.getsockname()[1]
        payload = body.encode()
        self.reply = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload)) + payload
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(self.reply)

    def close(self):
        self.sock.close()
        self.thread.join(timeout=5)


if __name__ == "__main__":
    main()
