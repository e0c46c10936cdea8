#!/usr/bin/env python3
"""Provider failures: transient errors are retried (honouring Retry-After),
permanent ones end the turn with exit 1 and a one-line error, and nothing
crashes or loses the user's message along the way.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CHAT_PATH, MemgptTestCase, main, only_providers  # noqa: E402


class ProviderErrorCase(MemgptTestCase):

    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", "a", "--reflect-every", "off",
                        "--idle-seconds", "off", check=0)

    def attempts(self):
        """Chat-completion requests that reached the mock (answered or not)."""
        return [r for r in self.mock.requests if r["path"] == CHAT_PATH]

    def user_texts(self):
        out = self.run_memgpt("recall", "list", "--agent", "a", "--json", "--limit", "1000",
                              check=0).stdout
        return [m["text"] for m in json.loads(out) if m["kind"] == "user_message"]

    def assert_succeeds_after(self, specs, text, attempts, env=None):
        for spec in specs:
            self.mock.push(spec)
        proc = self.send(text, agent="a", env=env)
        self.assertEqual(proc.stdout, f"You said: {text}\n")
        self.assertEqual(self.mock.pending(), 0)
        self.assertEqual(len(self.attempts()), attempts, self.describe_requests())
        self.assertEqual(self.attempts()[-1]["status"], 200)
        # Each retry resends the same request.
        bodies = [r["body"] for r in self.attempts()]
        for body in bodies[1:]:
            self.assertEqual(body["messages"][1:], bodies[0]["messages"][1:])
        self.assertEqual(self.user_texts(), [text], "the turn should be stored exactly once")
        return proc

    def assert_clean_failure(self, proc, *needles):
        """Exit 1, exactly one stderr line starting 'memgpt: ', nothing on
        stdout, and no sign of a crash."""
        self.assertEqual(proc.returncode, 1,
                         f"expected exit 1, got {proc.returncode}\n{proc.stderr}")
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"expected a one-line error, got:\n{proc.stderr}")
        self.assertTrue(lines[0].startswith("memgpt: "), lines[0])
        self.assertLess(len(lines[0]), 1000, "error line is unreasonably long")
        self.assertEqual(proc.stdout, "")
        for word in ("Segmentation", "Aborted", "core dumped", "AddressSanitizer"):
            self.assertNotIn(word, proc.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])
        return lines[0]

    def assert_recovers(self, failed_text):
        """The next turn works, its request is valid and still holds the
        message whose turn failed."""
        self.mock.reset()
        proc = self.send("next turn", agent="a")
        self.assertEqual(proc.stdout, "You said: next turn\n")
        body = self.mock.chat_requests()[-1]
        self.assertIn(failed_text, json.dumps(body["messages"]))
        self.assert_all_requests_valid()


class RetryTest(ProviderErrorCase):

    def test_429_with_retry_after_zero_then_success(self):
        start = time.monotonic()
        self.assert_succeeds_after([{"status": 429, "headers": {"Retry-After": "0"}}],
                                   "rate limited once", 2)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual([r["status"] for r in self.attempts()], [429, 200])

    def test_429_retry_after_is_honoured(self):
        start = time.monotonic()
        self.assert_succeeds_after([{"status": 429, "headers": {"Retry-After": "1"}}],
                                   "rate limited politely", 2)
        self.assertGreaterEqual(time.monotonic() - start, 0.9,
                                "Retry-After: 1 was not waited for")

    def test_500_then_success(self):
        self.assert_succeeds_after([{"status": 500}], "server hiccup", 2)
        self.assertEqual([r["status"] for r in self.attempts()], [500, 200])

    def test_503_twice_then_success(self):
        self.assert_succeeds_after([{"status": 503}, {"status": 503}], "overloaded", 3)
        self.assertEqual([r["status"] for r in self.attempts()], [503, 503, 200])

    def test_dropped_connection_then_success(self):
        self.assert_succeeds_after([{"drop": True}], "connection dropped", 2)
        self.assertEqual([r["status"] for r in self.attempts()], [None, 200])

    def test_timeout_is_retried(self):
        start = time.monotonic()
        self.assert_succeeds_after([{"delay": 4.0}], "slow server", 2,
                                   env={"MEMGPT_HTTP_TIMEOUT": "1"})
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 3.9, "the client waited for the slow answer instead of "
                                      "timing out after MEMGPT_HTTP_TIMEOUT=1")


class PermanentFailureTest(ProviderErrorCase):

    def test_persistent_500_exhausts_retries(self):
        for _ in range(6):
            self.mock.push({"status": 500})
        proc = self.send("doomed message", agent="a", check=None,
                         env={"MEMGPT_MAX_RETRIES": "3"})
        self.assert_clean_failure(proc, "500")
        self.assertEqual([r["status"] for r in self.attempts()], [500, 500, 500])
        self.assertEqual(self.user_texts(), ["doomed message"])
        self.assert_recovers("doomed message")

    def test_default_retry_count_is_five_attempts(self):
        for _ in range(7):
            self.mock.push({"status": 502})
        proc = self.send("also doomed", agent="a", check=None)
        self.assert_clean_failure(proc)
        self.assertEqual(len(self.attempts()), 5, self.describe_requests())
        self.assertEqual(self.user_texts(), ["also doomed"])

    def test_timeouts_exhaust_retries(self):
        self.mock.push({"delay": 4.0})
        self.mock.push({"delay": 4.0})
        start = time.monotonic()
        proc = self.send("never answered", agent="a", check=None,
                         env={"MEMGPT_HTTP_TIMEOUT": "1", "MEMGPT_MAX_RETRIES": "2"})
        self.assertLess(time.monotonic() - start, 3.9)
        self.assert_clean_failure(proc)
        self.assertEqual(len(self.attempts()), 2, self.describe_requests())
        self.assertEqual(self.user_texts(), ["never answered"])

    @only_providers("openai")  # names OPENAI_API_KEY
    def test_401_wrong_key(self):
        proc = self.send("hello", agent="a", check=None, env={"OPENAI_API_KEY": "sk-wrong-key-123"})
        self.assert_clean_failure(proc, "OPENAI_API_KEY")
        self.assertEqual([r["status"] for r in self.attempts()], [401],
                         "an authentication failure must not be retried")
        self.assertNotIn("sk-wrong-key-123", proc.stderr, "the key itself must not be printed")
        self.assert_recovers("hello")

    @only_providers("openai")  # names OPENAI_API_KEY
    def test_403_mentions_key(self):
        self.mock.push({"status": 403})
        proc = self.send("forbidden", agent="a", check=None)
        self.assert_clean_failure(proc, "OPENAI_API_KEY")
        self.assertEqual(len(self.attempts()), 1)

    def test_body_not_json(self):
        # Enough bad answers that a retrying client still ends up failing.
        for _ in range(5):
            self.mock.push({"raw_body": "<html><body>Bad gateway, kind of</body></html>",
                            "headers": {"Content-Type": "text/html"}})
        proc = self.send("garbled", agent="a", check=None, env={"MEMGPT_MAX_RETRIES": "3"})
        self.assert_clean_failure(proc)
        self.assertEqual(self.user_texts(), ["garbled"])
        self.assert_recovers("garbled")

    def test_truncated_json_body(self):
        for _ in range(5):
            self.mock.push({"raw_body": '{"id": "chatcmpl-1", "choices": [{"index": 0, "mess'})
        proc = self.send("truncated", agent="a", check=None, env={"MEMGPT_MAX_RETRIES": "3"})
        self.assert_clean_failure(proc)

    def test_unexpected_shape(self):
        for _ in range(5):
            self.mock.push({"body": {"foo": 1}, "status": 200})
        proc = self.send("odd shape", agent="a", check=None, env={"MEMGPT_MAX_RETRIES": "3"})
        self.assert_clean_failure(proc)
        self.assertEqual(self.user_texts(), ["odd shape"])
        self.assert_recovers("odd shape")

    def test_other_unexpected_shapes(self):
        shapes = [
            {"choices": []},
            {"choices": [{"index": 0, "message": "not an object"}]},
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": None,
                                                  "tool_calls": "nope"}}]},
            [1, 2, 3],
            None,
        ]
        for shape in shapes:
            with self.subTest(shape=shape):
                self.mock.reset()
                for _ in range(5):
                    self.mock.push({"body": shape, "status": 200})
                proc = self.send("shape test", agent="a", check=None,
                                 env={"MEMGPT_MAX_RETRIES": "3"})
                self.assert_clean_failure(proc)

    @only_providers("openai")  # names OPENAI_API_KEY
    def test_no_provider_configured(self):
        proc = self.send("anyone there?", agent="a", check=None,
                         env={"OPENAI_BASE_URL": None, "OPENAI_API_KEY": None})
        self.assert_clean_failure(proc, "OPENAI_API_KEY")
        self.assertEqual(self.mock.requests, [])


class SummarizerErrorTest(ProviderErrorCase):
    """Errors on the summarizer call made by a flush. The provider's
    context_length_exceeded answer forces the flush deterministically."""

    def warm_up(self):
        for i in range(5):
            self.send(f"warm-up {i}", agent="a")
        self.base = len(self.attempts())

    def agent_info(self):
        return json.loads(self.run_memgpt("agents", "show", "a", "--json", check=0).stdout)

    @only_providers("openai", "anthropic")  # Ollama truncates instead of refusing
    def test_summarizer_retried_after_503(self):
        self.warm_up()
        self.mock.push({"context_length_exceeded": True})
        self.mock.push({"status": 503})
        proc = self.send("needs a flush", agent="a")
        self.assertEqual(proc.stdout, "You said: needs a flush\n")
        new = self.attempts()[self.base:]
        shape = [(r["status"], bool(r["body"].get("tools"))) for r in new]
        self.assertEqual(shape, [(400, True), (503, False), (200, False), (200, True)])
        self.assertEqual(len(self.mock.summaries), 1)
        self.assertGreater(self.agent_info()["summarized"], 0)

    @only_providers("openai", "anthropic")  # Ollama truncates instead of refusing
    def test_summarizer_failing_for_good_loses_nothing(self):
        self.warm_up()
        before = self.agent_info()
        self.mock.push({"context_length_exceeded": True})
        for _ in range(5):
            self.mock.push({"status": 500})
        proc = self.send("flush will fail", agent="a", check=None,
                         env={"MEMGPT_MAX_RETRIES": "3"})
        self.assert_clean_failure(proc, "500")
        new = self.attempts()[self.base:]
        shape = [(r["status"], bool(r["body"].get("tools"))) for r in new]
        self.assertEqual(shape, [(400, True), (500, False), (500, False), (500, False)])
        after = self.agent_info()
        self.assertEqual(after["summarized"], before["summarized"],
                         "messages counted as summarized although the summary failed")
        self.assertEqual(self.user_texts(), [f"warm-up {i}" for i in range(5)]
                         + ["flush will fail"])
        # Nothing was evicted: the next turn still sees the whole conversation.
        self.mock.reset()
        self.send("try again", agent="a")
        last = self.mock.chat_requests()[-1]
        dumped = json.dumps(last["messages"])
        for i in range(5):
            self.assertIn(f"warm-up {i}", dumped)
        self.assertIn("No messages have left your view yet.", last["messages"][0]["content"])
        self.assert_all_requests_valid()


if __name__ == "__main__":
    main()
