"""`memgpt tokenize`, and the agent's exact token budget, from the real binary.

The expected ids are gpt-tokenizer's test vectors (data/TestPlans.txt),
which scripts/fetch-tokenizer-data.sh puts in BUILD/tokenizer-cache/ next to
the binary; CTest runs that script first. Without them these tests fail.
`tokenize` talks to no provider; the agent tests run against the OpenAI mock
(whose model names have published tokenizers), so this file runs once, not
once per provider.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import MEMGPT_BIN, SCRUBBED_PREFIXES, MemgptTestCase, main

import bpe_count  # noqa: E402  (tests/mock, which harness put on the path)
from openai_mock import content_text, count_prompt_tokens  # noqa: E402

CACHE = os.path.join(os.path.dirname(os.path.abspath(MEMGPT_BIN)), "tokenizer-cache")


def read_plans():
    """[(encoding, sample, [ids])] from TestPlans.txt."""
    path = os.path.join(CACHE, "TestPlans.txt")
    with open(path, encoding="utf-8") as f:
        blocks = f.read().split("\n\n")
    plans = []
    for block in blocks:
        lines = block.strip("\n").split("\n")
        fields = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                      for line in lines)
        ids = [int(x) for x in fields["Encoded"].strip("[]").split(",") if x.strip()]
        plans.append((fields["EncodingName"], fields["Sample"], ids))
    return plans


class TokenizeTest(unittest.TestCase):
    def setUp(self):
        if not os.access(MEMGPT_BIN, os.X_OK):
            self.fail(f"memgpt binary not found at {MEMGPT_BIN}; build it or set MEMGPT_BIN")

    def tokenize(self, *args, data=b"", check=0, env=None):
        """Runs `memgpt tokenize ARGS` with `data` (bytes) on stdin, in an
        environment without the developer's MEMGPT_* settings plus `env`."""
        cmd = [MEMGPT_BIN, "tokenize", *args]
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        run_env.update(env or {})
        proc = subprocess.run(cmd, input=data, capture_output=True, env=run_env, timeout=120)
        if check is not None:
            self.assertEqual(proc.returncode, check,
                             f"{cmd} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def ids(self, data, encoding="o200k_base"):
        out = self.tokenize("--ids", "--encoding", encoding, data=data).stdout.decode()
        self.assertTrue(out.endswith("\n"))
        return [int(x) for x in out.split()]

    def count(self, data, *args):
        proc = self.tokenize(*args, data=data)
        self.assertEqual(proc.stderr, b"")
        return int(proc.stdout)

    def test_test_vectors(self):
        plans = read_plans()
        for encoding in ("cl100k_base", "o200k_base"):
            mine = [p for p in plans if p[0] == encoding]
            self.assertGreaterEqual(len(mine), 50, encoding)
            for _, sample, want in mine:
                data = sample.encode("utf-8")
                self.assertEqual(self.ids(data, encoding), want, f"{encoding}: {sample!r}")
            # Counts agree with the ids (one sample per encoding is enough).
            self.assertEqual(self.count(mine[5][1].encode(), "--encoding", encoding),
                             len(mine[5][2]))

    def test_defaults_and_inputs(self):
        text = "Hello, World! How are you today? \U0001F30D".encode()
        want = [13225, 11, 5922, 0, 3253, 553, 481, 4044, 30, 130321, 235]
        self.assertEqual(self.ids(text), want)  # o200k_base is the default
        proc = self.tokenize("--ids", data=text)
        self.assertEqual(proc.stdout.decode(), " ".join(map(str, want)) + "\n")
        self.assertEqual(self.count(text), len(want))
        self.assertEqual(self.count(text, "-"), len(want))
        with tempfile.NamedTemporaryFile(suffix=".txt") as f:
            f.write(text)
            f.flush()
            self.assertEqual(self.count(b"", f.name), len(want))
            self.assertEqual(self.count(b"", "--", f.name), len(want))
        self.assertEqual(self.ids(b"hello", "cl100k_base"), [15339])
        self.assertEqual(self.count(b""), 0)
        self.assertEqual(self.tokenize("--ids", data=b"").stdout, b"\n")

    def test_bytes_not_text(self):
        # NUL bytes are text like any other: nothing is cut at them.
        self.assertGreater(self.count(b"ab\0cd"), self.count(b"ab"))
        # Invalid UTF-8: each bad run is a piece of its own between the
        # pieces of the valid text around it.
        whole = self.ids(b"ab\xffcd")
        self.assertEqual(whole, self.ids(b"ab") + self.ids(b"\xff") + self.ids(b"cd"))
        self.assertEqual(len(self.ids(b"\xff")), 1)
        self.assertEqual(self.count(b"\xc0\xaf\xed\xa0\x80"), len(self.ids(b"\xc0\xaf\xed\xa0\x80")))

    def test_large_input(self):
        line = ("The quick brown fox jumps over the lazy dog; \u00e9t\u00e9 \u4e2d\u6587 "
                "\U0001F600 1234567 {\"k\": [1, 2]}\n    indented\t\ttabs\n").encode()
        data = (line * (1_000_000 // len(line) + 1))[:1_000_000]
        ids = self.ids(data)
        self.assertEqual(self.count(data), len(ids))
        self.assertGreater(len(ids), 100_000)
        self.assertEqual(self.count(b" " * 1_000_000 + b"x"), len(self.ids(b" " * 1_000_000 + b"x")))

    def test_usage_errors(self):
        for args, message in [
            (["--encoding", "p50k_base"], "unknown encoding 'p50k_base'"),
            (["--encoding"], "--encoding needs a value"),
            (["--frobnicate"], "unknown option --frobnicate"),
            (["a.txt", "b.txt"], "tokenize takes one FILE"),
        ]:
            proc = self.tokenize(*args, check=2)
            self.assertEqual(proc.stdout, b"")
            self.assertIn(message, proc.stderr.decode())
            self.assertTrue(proc.stderr.decode().startswith("memgpt: "))
        proc = self.tokenize("/nonexistent/file.txt", check=1)
        self.assertIn("memgpt: /nonexistent/file.txt: No such file", proc.stderr.decode())
        help_text = subprocess.run([MEMGPT_BIN, "--help"], capture_output=True, text=True).stdout
        self.assertIn("tokenize [--encoding E] [--ids] [FILE|-]", help_text)

    def test_fallback_without_rank_files(self):
        empty = tempfile.mkdtemp(prefix="memgpt-tok-")
        self.addCleanup(shutil.rmtree, empty, True)
        env = {"MEMGPT_TOKENIZER_DIR": empty}
        text = b"The quick brown fox jumps over the lazy dog."
        proc = self.tokenize(data=text, env=env)
        # The estimate errs high, and stderr says so exactly once.
        self.assertGreaterEqual(int(proc.stdout), len(self.ids(text)))
        lines = proc.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"no o200k_base.tiktoken in {empty}", lines[0])
        self.assertIn("token counts are estimates", lines[0])
        proc = self.tokenize("--ids", data=text, env=env, check=1)
        self.assertEqual(proc.stdout, b"")
        self.assertIn("token counts are estimates", proc.stderr.decode())
        # The variable, when set, is the only place looked in.
        with open(os.path.join(empty, "o200k_base.tiktoken"), "wb") as f:
            f.write(b"QQ== 0\n!!!! 1\n")
        proc = self.tokenize(data=text, env=env)
        self.assertIn("is malformed: line 2: the token is not base64", proc.stderr.decode())
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(MEMGPT_BIN)), "share", "memgpt",
                                 "o200k_base.tiktoken"), empty)
        proc = self.tokenize(data=text, env=env)
        self.assertEqual(proc.stderr, b"")
        self.assertEqual(int(proc.stdout), len(self.ids(text)))


class MockRefereeTest(unittest.TestCase):
    """The OpenAI mock bills real tokens for OpenAI models (bpe_count.py, an
    implementation independent of the C one); it must agree with the test
    vectors, or the budget tests below would prove nothing."""

    def test_mock_counts_match_the_test_vectors(self):
        plans = read_plans()
        checked = 0
        for encoding, model in (("o200k_base", "gpt-4o"), ("cl100k_base", "gpt-4")):
            enc = bpe_count.encoding_for(model)
            self.assertIsNotNone(enc, "the mock found no rank files or no `regex` module")
            for name, sample, want in plans:
                if name == encoding:
                    self.assertEqual(enc.count(sample), len(want), f"{encoding}: {sample!r}")
                    checked += 1
        self.assertGreaterEqual(checked, 100)
        self.assertIsNone(bpe_count.encoding_for("claude-sonnet-4-5"))


NOW = "1790000000"  # MEMGPT_FAKE_NOW: the system message's times stay the same


class AgentCounterTest(MemgptTestCase):
    providers = ("openai",)

    def context(self, agent, env=None):
        proc = self.run_memgpt("context", "--agent", agent, "--json", check=0, env=env)
        return json.loads(proc.stdout), proc.stderr

    def count(self, text):
        proc = subprocess.run([MEMGPT_BIN, "tokenize"], input=text.encode(), capture_output=True,
                              check=True)
        return int(proc.stdout)

    def test_context_reports_the_counter(self):
        self.run_memgpt("agents", "create", "four", check=0)  # openai/gpt-4o-mini
        self.run_memgpt("agents", "create", "old", "--model", "openai/gpt-4", check=0)
        self.run_memgpt("agents", "create", "claude", "--model", "anthropic/claude-sonnet-4-5",
                        check=0)
        ctx, err = self.context("four")
        self.assertEqual(ctx["counter"], "exact (o200k_base)")
        self.assertEqual(err, "")
        self.assertEqual(self.context("old")[0]["counter"], "exact (cl100k_base)")
        ctx, err = self.context("claude")
        self.assertEqual(ctx["counter"], "estimate (scaled by usage, factor 1.00)")
        self.assertEqual(err, "")  # no tokenizer is known for it: nothing to report
        text = self.run_memgpt("context", "--agent", "four", check=0).stdout
        self.assertIn("counter: exact (o200k_base)", text)

    def test_budget_counts_the_request_exactly(self):
        self.run_memgpt("agents", "create", "a", check=0)
        env = {"MEMGPT_FAKE_NOW": NOW}
        self.send("hello there", agent="a", env=env)
        ours, _ = self.context("a", env=env)
        self.mock.reset()
        self.send("and again", agent="a", env=env)
        body = self.mock.chat_requests()[0]
        billed = count_prompt_tokens(body)
        # Ours for that request: the context as measured, plus the new user
        # message (4 tokens of framing and its text).
        new = body["messages"][-1]
        self.assertIn("and again", new["content"])
        mine = ours["total"] + 4 + self.count(content_text(new["content"]))
        # The mock bills what the API bills; memgpt's approximations add, on
        # purpose, 8 tokens and the id per function call and the id of each
        # result. Everything else must match to the token.
        extra = 0
        for m in body["messages"]:
            for call in m.get("tool_calls") or []:
                extra += 8 + self.count(call["id"])
            if m["role"] == "tool":
                extra += self.count(m["tool_call_id"])
        self.assertGreater(extra, 0)
        self.assertEqual(mine, billed + extra, (mine, billed, extra))
        self.assert_all_requests_valid()

    def test_missing_rank_files_notice_once(self):
        empty = tempfile.mkdtemp(prefix="memgpt-no-ranks-")
        self.addCleanup(shutil.rmtree, empty, True)
        env = {"MEMGPT_TOKENIZER_DIR": empty}
        self.run_memgpt("agents", "create", "a", check=0, env=env)
        notice = f"memgpt: notice: no o200k_base.tiktoken in {empty}"
        lines = "\n".join(f"line {i}" for i in range(3)) + "\n"
        proc = self.run_memgpt("chat", "--agent", "a", input=lines, env=env, check=0)
        for i in range(3):
            self.assertIn(f"You said: line {i}", proc.stdout)
        self.assertEqual(proc.stderr.count(notice), 1, proc.stderr)
        self.assertIn("token counts are estimates", proc.stderr)
        proc = self.send("one more", agent="a", env=env)
        self.assertIn("You said: one more", proc.stdout)
        self.assertEqual(proc.stderr.count(notice), 1, proc.stderr)
        ctx, err = self.context("a", env=env)
        self.assertTrue(ctx["counter"].startswith("estimate (scaled by usage, factor "), ctx)
        self.assertIn("o200k_base rank files unavailable", ctx["counter"])
        self.assertEqual(err.count(notice), 1, err)
        self.assertGreater(ctx["total"], 0)
        self.assert_all_requests_valid()
        # With the rank files where they belong, nothing is said.
        proc = self.send("and now", agent="a")
        self.assertNotIn("notice", proc.stderr)
        self.assertEqual(self.context("a")[0]["counter"], "exact (o200k_base)")


if __name__ == "__main__":
    main()
