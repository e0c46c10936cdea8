"""Shared helpers for the integration tests (unittest, standard library only).

Every test gets a fresh loopback OpenAI mock and a fresh data directory, and
runs the real `memgpt` binary with an environment scrubbed of the developer's
own provider settings, so results never depend on the machine they run on.

The same suite runs against other providers' mocks: MEMGPT_TEST_PROVIDER=
anthropic starts tests/mock/anthropic_mock.py instead, points ANTHROPIC_* at
it, and gives agents created without --model an anthropic/ model; =ollama
does the same with tests/mock/ollama_mock.py, OLLAMA_HOST and ollama/
gpt-4o-mini. Those mocks take the same scripts (push) and records requests in the same shape, so tests
run unchanged. A case that is about one wire format lists it in `providers`
and is skipped in the other runs.

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
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "mock"))

from anthropic_mock import MockAnthropic  # noqa: E402  (needs the path above)
from ollama_mock import MockOllama  # noqa: E402
from openai_mock import MockOpenAI  # noqa: E402

# CTest passes the freshly built binary; by hand, fall back to the default build.
MEMGPT_BIN = os.environ.get("MEMGPT_BIN") or os.path.join(REPO, "build", "memgpt")

API_KEY = "test-key"

# The provider whose mock the provider-neutral tests run against.
PROVIDER = os.environ.get("MEMGPT_TEST_PROVIDER") or "openai"


class _AnthropicForSuite(MockAnthropic):
    """MockAnthropic for tests written against MockOpenAI: the model those
    tests name (gpt-4o-mini, the default agent's) stands for the model agents
    get in this run, so set_window and context_windows keep their meaning."""

    def __init__(self, context_windows=None, **kwargs):
        super().__init__(context_windows={MODEL_ALIASES.get(k, k): v for k, v in
                                          (context_windows or {}).items()}, **kwargs)

    def set_window(self, model, tokens):
        super().set_window(MODEL_ALIASES.get(model, model), tokens)


# Per provider: the mock, the environment that points the binary at it, the
# model given to `agents create` when a test names none (None: the binary's
# own default), and the path of its chat endpoint.
PROVIDERS = {
    "openai": {"mock": MockOpenAI, "model": None, "path": "/v1/chat/completions",
               "env": lambda mock: {"OPENAI_API_KEY": API_KEY,
                                    "OPENAI_BASE_URL": mock.base_url}},
    "anthropic": {"mock": _AnthropicForSuite, "model": "anthropic/claude-sonnet-4-5",
                  "path": "/v1/messages",
                  "env": lambda mock: {"ANTHROPIC_API_KEY": API_KEY,
                                       "ANTHROPIC_BASE_URL": mock.base_url}},
    # Ollama takes no key; its mock serves gpt-4o-mini, so windows keep their names.
    "ollama": {"mock": lambda api_key=None, **kwargs: MockOllama(**kwargs),
               "model": "ollama/gpt-4o-mini", "path": "/api/chat",
               "env": lambda mock: {"OLLAMA_HOST": mock.host}},
}
MODEL_ALIASES = {"gpt-4o-mini": "claude-sonnet-4-5"}
if PROVIDER not in PROVIDERS:
    raise SystemExit(f"MEMGPT_TEST_PROVIDER={PROVIDER!r}: expected one of "
                     f"{', '.join(PROVIDERS)}")

# Where this run's agent requests go (for filtering self.mock.requests).
CHAT_PATH = PROVIDERS[PROVIDER]["path"]


def only_providers(*names):
    """Decorates a test that is about one wire format (its key variable, its
    default model, a reply only it can express): skipped in the other
    providers' runs. Whole cases set the `providers` class attribute."""
    return unittest.skipUnless(PROVIDER in names, f"specific to {', '.join(names)}; this "
                               f"run is MEMGPT_TEST_PROVIDER={PROVIDER}")


# Variables from the developer's shell that could point the binary at a real
# provider, a real data directory, or change its retry/timeout behaviour.
SCRUBBED_PREFIXES = ("OPENAI_", "ANTHROPIC_", "OLLAMA_", "MEMGPT_")


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

    `providers` names the providers a case can run against; the default is
    all of them. A case about one wire format (its error bodies, its key
    variable) sets e.g. `providers = ("openai",)` and is skipped in the runs
    for the others (MEMGPT_TEST_PROVIDER).
    """

    mock_kwargs = {}
    providers = tuple(PROVIDERS)

    def setUp(self):
        super().setUp()
        if not os.access(MEMGPT_BIN, os.X_OK):
            # Fail rather than skip: a skipped suite would pass CTest silently.
            self.fail(f"memgpt binary not found at {MEMGPT_BIN}; build it first "
                      "or set MEMGPT_BIN")
        if PROVIDER not in self.providers:
            self.skipTest(f"specific to {', '.join(self.providers)}; this run is "
                          f"MEMGPT_TEST_PROVIDER={PROVIDER}")
        kwargs = {"api_key": API_KEY}
        kwargs.update(self.mock_kwargs)
        self.mock = PROVIDERS[PROVIDER]["mock"](**kwargs).start()
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
        out.update(PROVIDERS[PROVIDER]["env"](self.mock))
        out.update({
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
        `agents create` without --model gets this run's model (see PROVIDERS).
        """
        args = [str(a) for a in args]
        model = PROVIDERS[PROVIDER]["model"]
        if model and args[:2] == ["agents", "create"] and "--model" not in args:
            args[2:2] = ["--model", model]
        cmd = [MEMGPT_BIN, "--home", self.home, *args]
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

    def tool_results(self):
        """tool_call_id -> the parsed tool message ({"status", "message",
        "time"}) the model was sent, over every chat request so far."""
        out = {}
        for body in self.mock.chat_requests():
            for m in body["messages"]:
                if m["role"] == "tool":
                    out[m["tool_call_id"]] = json.loads(m["content"])
        return out

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


class Terminal:
    """`memgpt ARGS` on a pseudo-terminal, as a person runs it. Use as a
    context manager: leaving it kills the process if it still runs.

    `ignore` lists signals the process starts with ignored, as `nohup`
    leaves SIGHUP. With `background`, memgpt runs in a process group of its
    own, not the terminal's foreground group (a job started with `&`): the
    process `pid` names is then its parent, which waits for it and exits
    with its status (128 + N if signal N ended it)."""

    def __init__(self, args, env, ignore=(), background=False):
        self.output = b""
        self.background = background
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            _exec_on_terminal(args, env, ignore, background)

    def read_until(self, predicate, seconds=20):
        """Reads output until predicate(output) holds or time runs out, and
        returns whether it holds."""
        end = time.time() + seconds
        while not predicate(self.output) and time.time() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.output += os.read(self.fd, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
        return predicate(self.output)

    def type(self, data):
        os.write(self.fd, data)

    def memgpt_pid(self):
        """The id of the memgpt process (in the background, our child's child)."""
        if not self.background:
            return self.pid
        with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
            return int(f.read().split()[0])

    def cpu_seconds(self):
        """CPU time (user + system) the memgpt process has used so far."""
        with open(f"/proc/{self.memgpt_pid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def hang_up(self):
        """Closes the terminal's master end, as closing a terminal window does."""
        os.close(self.fd)
        self.fd = -1

    def wait(self, seconds):
        """Waits up to `seconds` for the process to end. Returns (exit code,
        CPU seconds it used in all), or (None, None) if it still runs."""
        end = time.time() + seconds
        while True:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
            if time.time() >= end:
                return None, None
            time.sleep(0.05)

    def exit_code(self):
        """Waits for the process to end and returns its exit code."""
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pid:
            if self.background:
                try:
                    os.killpg(self.memgpt_pid(), 9)
                except (OSError, IndexError):  # gone already
                    pass
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        if self.fd >= 0:
            os.close(self.fd)


def _exec_on_terminal(args, env, ignore, background):
    """The child side of Terminal, on the terminal already; never returns."""
    try:
        if background:
            child = os.fork()
            if child:
                _, status = os.waitpid(child, 0)
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)
            os.setpgid(0, 0)
        for sig in ignore:
            signal.signal(sig, signal.SIG_IGN)
        os.execve(MEMGPT_BIN, [MEMGPT_BIN, *args], env)
    finally:
        os._exit(127)


def main():
    """Runs the calling module's tests verbosely; exits non-zero on failure."""
    program = unittest.main(module="__main__", verbosity=2, exit=False)
    sys.exit(0 if program.result.wasSuccessful() else 1)
