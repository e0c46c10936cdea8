"""`memgpt tokenize`: token counts and ids from the real binary.

The expected ids are gpt-tokenizer's test vectors (data/TestPlans.txt),
which scripts/fetch-tokenizer-data.sh puts in BUILD/tokenizer-cache/ next to
the binary; CTest runs that script first. Without them these tests fail.
`tokenize` talks to no provider, so these tests start no mock and run once,
not once per provider.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import MEMGPT_BIN, SCRUBBED_PREFIXES, main

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


if __name__ == "__main__":
    main()
