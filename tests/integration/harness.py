"""Shared helpers for the integration tests (unittest, standard library only).

Every test gets a fresh loopback OpenAI mock and a fresh data directory, and
runs the real `memgpt` binary with an environment scrubbed of the developer's
own provider settings, so results never depend on the machine they run on.

    from harness import MemgptTestCase, main

    class SendTest(MemgptTestCase):
        def test_reply(self):
            self.run_memgpt("create", "--name", "a", check=0)
            events = self.send("hello", agent="a", json_out=True)
            ...

    if __name__ == "__main__":
        main()
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "mock"))

from openai_mock import MockOpenAI  # noqa: E402  (needs the path above)

# CTest passes the freshly built binary; by hand, fall back to the default build.
MEMGPT_BIN = os.environ.get("MEMGPT_BIN") or os.path.join(REPO, "build", "memgpt")

API_KEY = "test-key"

# Variables from the developer's shell that could point the binary at a real
# provider, a real data directory, or change its retry/timeout behaviour.
SCRUBBED_PREFIXES = ("OPENAI_", "ANTHROPIC_", "MEMGPT_")


def _text(data):
    """TimeoutExpired may carry bytes even in text mode; normalise for messages."""
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def parse_json_lines(text):
    """Parses one JSON value per non-blank line; raises ValueError naming the line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise ValueError(f"line {n} is not JSON ({exc}): {line!r}") from None
    return out


class MemgptTestCase(unittest.TestCase):
    """A test case with `self.mock` (a started MockOpenAI) and `self.home`
    (an empty temporary data directory), both cleaned up afterwards.

    Subclasses may set `mock_kwargs` to configure the mock, for example
    `mock_kwargs = {"context_windows": {"gpt-4o-mini": 2000}}`.
    """

    mock_kwargs = {}

    def setUp(self):
        super().setUp()
        if not os.access(MEMGPT_BIN, os.X_OK):
            # Fail rather than skip: a skipped suite would pass CTest silently.
            self.fail(f"memgpt binary not found at {MEMGPT_BIN}; build it first "
                      "or set MEMGPT_BIN")
        kwargs = {"api_key": API_KEY}
        kwargs.update(self.mock_kwargs)
        self.mock = MockOpenAI(**kwargs).start()
        # addCleanup (not only tearDown) so cleanup still happens when a
        # subclass's setUp fails after ours, or overrides tearDown.
        self.addCleanup(self.mock.stop)
        self.home = tempfile.mkdtemp(prefix="memgpt-test-")
        self.addCleanup(shutil.rmtree, self.home, True)

    def tearDown(self):
        # The real work is in the cleanups registered by setUp; they run after
        # tearDown, whether or not subclasses call super().tearDown().
        super().tearDown()

    # -------------------------------------------------------------- running

    def memgpt_env(self, env=None):
        """The environment the binary runs with (see run_memgpt)."""
        out = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        out.update({
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": self.mock.base_url,
            # Keep retry back-off and timeouts short so error-path tests are fast.
            "MEMGPT_RETRY_BASE_MS": "5",
            "MEMGPT_HTTP_TIMEOUT": "5",
        })
        for key, value in (env or {}).items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = str(value)
        return out

    def run_memgpt(self, *args, input=None, env=None, timeout=60, check=None):  # noqa: A002
        """Runs `memgpt --home HOME ARGS...` and returns the CompletedProcess.

        stdin is the given text, or /dev/null so nothing can block on a
        terminal. If `check` is an int, the exit status must equal it.
        """
        cmd = [MEMGPT_BIN, "--home", self.home, *[str(a) for a in args]]
        try:
            proc = subprocess.run(
                cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True, text=True, env=self.memgpt_env(env), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.fail(f"{' '.join(cmd)} timed out after {timeout}s\n"
                      f"--- stdout ---\n{_text(exc.stdout)}\n"
                      f"--- stderr ---\n{_text(exc.stderr)}\n"
                      f"--- mock requests ---\n{self.describe_requests()}")
        if check is not None:
            self.assertEqual(
                proc.returncode, check,
                f"{' '.join(cmd)} exited {proc.returncode}, expected {check}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}\n"
                f"--- mock requests ---\n{self.describe_requests()}")
        return proc

    def send(self, text, agent=None, json_out=False, check=0, **kwargs):
        """`memgpt send [--agent A] [--json] TEXT`.

        Returns the CompletedProcess, or with json_out the parsed JSON lines
        of stdout. The exit status must be `check` (0 by default; None skips).
        Extra keyword arguments (env, timeout, input) go to run_memgpt.
        """
        args = ["send"]
        if agent is not None:
            args += ["--agent", agent]
        if json_out:
            args.append("--json")
        args.append(text)
        proc = self.run_memgpt(*args, check=check, **kwargs)
        if not json_out:
            return proc
        try:
            return parse_json_lines(proc.stdout)
        except ValueError as exc:
            self.fail(f"memgpt send --json printed non-JSON output: {exc}\n"
                      f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")

    # ----------------------------------------------------------- assertions

    def describe_requests(self):
        """One line per request the mock saw, for failure messages."""
        lines = []
        for i, r in enumerate(self.mock.requests):
            lines.append(f"[{i}] {r['method']} {r['path']} -> {r['status']}"
                         + (f" ({r['error']})" if r["error"] else ""))
        return "\n".join(lines) or "(none)"

    def assert_all_requests_valid(self):
        """Every request the binary made passed the mock's validation: the
        strongest evidence that it speaks the wire format correctly."""
        bad = self.mock.invalid_requests()
        self.assertFalse(bad, "the mock refused requests:\n" + "\n".join(
            f"{r['method']} {r['path']} -> {r['status']}: {r['error']}" for r in bad))


def main():
    """Runs the calling module's tests verbosely; exits non-zero on failure."""
    program = unittest.main(module="__main__", verbosity=2, exit=False)
    sys.exit(0 if program.result.wasSuccessful() else 1)
