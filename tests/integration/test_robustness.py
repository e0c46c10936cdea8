"""Hostile or odd provider answers and inputs: each must end in a clear
result, never a crash, a multi-line error or a stuck agent."""

import json

from harness import MemgptTestCase, main

ANSWER = {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini"}


def completion(message, usage=None):
    body = dict(ANSWER)
    body["choices"] = [{"index": 0, "message": message, "finish_reason": "stop"}]
    body["usage"] = usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return body


class ProviderAnswers(MemgptTestCase):
    providers = ("openai",)

    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", "a", check=0)

    def test_repeated_tool_call_ids_do_not_break_the_agent(self):
        self.mock.push({"tool_calls": [
            {"id": "dup", "name": "send_message", "arguments": {"message": "one"}},
            {"id": "dup", "name": "send_message", "arguments": {"message": "two"}}]})
        proc = self.send("hello", agent="a")
        self.assertEqual(proc.stdout.splitlines(), ["one", "two"])
        self.send("and again", agent="a")   # the next request must still be valid
        self.assert_all_requests_valid()

    def test_absurd_usage_figures(self):
        huge = {"prompt_tokens": 2000000000, "completion_tokens": 2000000000,
                "total_tokens": 4000000000}
        self.mock.push({"content": "x", "usage": huge,
                        "tool_calls": [{"name": "send_message",
                                        "arguments": {"message": "hi", "request_heartbeat": True}}]})
        self.mock.push({"content": "done", "usage": huge})
        events = self.send("hello", agent="a", json_out=True)
        usage = events[-1]
        self.assertEqual(usage["message_type"], "usage_statistics")
        self.assertGreaterEqual(usage["prompt_tokens"], 0)
        ctx = json.loads(self.run_memgpt("context", "--agent", "a", "--json", check=0).stdout)
        self.assertLess(ctx["token_scale"], 2.0)   # one bogus figure must not skew the budget

    def test_llama_cpp_context_error_flushes_and_retries(self):
        for i in range(6):
            self.send(f"message {i}", agent="a")
        self.mock.push({"status": 400, "body": {"error": {
            "code": 400, "type": "exceed_context_size_error",
            "message": "the request exceeds the available context size, try increasing it"}}})
        proc = self.send("one more", agent="a")
        self.assertIn("You said: one more", proc.stdout)
        self.assertTrue(self.mock.summaries, "no flush happened")

    def test_invalid_utf8_and_bad_escapes_in_the_answer(self):
        body = json.dumps(completion({"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {
                "name": "send_message", "arguments": json.dumps({"message": "caf\u00e9 XX"})}}]}))
        raw = body.encode().replace(b"XX", b"\xff\\\\ud800 \\\\u0000")
        self.mock.push({"raw_body": raw})
        proc = self.send("hello", agent="a")
        self.assertIn("caf\u00e9", proc.stdout)
        self.assertIn("\ufffd", proc.stdout)

    def test_multi_line_provider_error_is_one_line(self):
        self.mock.push({"status": 400, "body": {"error": {
            "message": "Traceback (most recent call last):\n  File x\nValueError: nope",
            "type": "invalid_request_error", "param": None, "code": None}}})
        proc = self.send("hello", agent="a", check=1)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("ValueError: nope", proc.stderr)


class Inputs(MemgptTestCase):
    def test_window_too_small_for_the_instructions(self):
        # The fixed parts take ~1,500 tokens counted exactly (OpenAI models),
        # more estimated; a long persona takes them past 75% of the smallest
        # window either way.
        proc = self.run_memgpt("agents", "create", "tiny", "--context-window", "2048",
                               "--persona", "I remember everything. " * 60, check=2)
        self.assertIn("too small", proc.stderr)
        self.run_memgpt("agents", "show", "tiny", check=1)   # nothing was created

    def test_out_of_range_time_in_jsonl(self):
        self.run_memgpt("agents", "create", "a", check=0)
        proc = self.run_memgpt("archival", "insert", "--agent", "a", "--jsonl", "-",
                               input='{"text": "x", "time": 9223372036854775807}\n', check=2)
        self.assertIn("out of range", proc.stderr)

    def test_long_piped_chat_line_stays_one_message(self):
        self.run_memgpt("agents", "create", "a", check=0)
        self.mock.set_window("gpt-4o-mini", 128000)
        line = "word " * 14000   # 70 KB, more than one read of the pipe
        proc = self.run_memgpt("chat", "--agent", "a", input=line + "\n/exit\n", timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        users = []
        for body in self.mock.chat_requests():
            for msg in body["messages"]:
                if msg["role"] == "user" and '"user_message"' in msg["content"]:
                    users.append(json.loads(msg["content"])["message"])
        self.assertTrue(users, "the long line never reached the model")
        self.assertTrue(all(u == line for u in users),
                        f"the line was split: lengths {[len(u) for u in users]}")


if __name__ == "__main__":
    main()
