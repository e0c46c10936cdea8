"""Running `memgpt serve` in tests: start it on a free port against the
test's mock LLM, talk to it (raw HTTP, or Letta's SDK through
tests/sdk/scenarios.mjs), stop it.

    class MyTest(ServerTestCase):
        def test_it(self):
            self.start_server()
            status, body = self.http("GET", "/v1/health/")
            self.sdk("basic")
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from harness import MEMGPT_BIN, REPO, MemgptTestCase

SDK_DIR = os.path.join(REPO, "tests", "sdk")


class Server:
    """A running `memgpt serve`; its stderr is collected in `log`."""

    def __init__(self, home, env, args=()):
        self.log = []
        self.proc = subprocess.Popen(
            [MEMGPT_BIN, "--home", home, "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, text=True)
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"serving .* on http://[^ ]*:(\d+)/", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        ready.wait(20)
        if self.port is None:
            self.proc.kill()
            raise AssertionError("memgpt serve did not start:\n" + "\n".join(self.log))
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.reader.join(5)
        return code


class ServerTestCase(MemgptTestCase):
    """A MemgptTestCase with `start_server`, `http` and `sdk`. The API
    tests are about HTTP, not a provider's wire format: OpenAI's mock only."""

    providers = ("openai",)

    def start_server(self, args=(), env=None):
        self.server = Server(self.home, self.memgpt_env(env), args)
        self.addCleanup(self.server.stop, signal.SIGKILL)
        return self.server

    def http(self, method, path, body=None, headers=None, password=None, timeout=30):
        """One request; returns (status, parsed JSON or raw text, headers)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=timeout)
        hdrs = dict(headers or {})
        if password:
            hdrs["Authorization"] = f"Bearer {password}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")
        return resp.status, data, dict(resp.getheaders())

    def sdk(self, scenario, arg=None, password=None, timeout=300):
        """Runs one scenario of tests/sdk/scenarios.mjs (Letta's SDK) against
        the server and returns its JSON result."""
        return self.node_scenario(SDK_DIR, "scenarios.mjs",
                                  "@letta-ai", scenario, arg, password, timeout)

    def node_scenario(self, folder, script, package, scenario, arg=None, password=None,
                      timeout=300, env=None):
        """Runs `node folder/script scenario [json arg]` with MEMGPT_URL set
        and returns the JSON of its last line; fails the test with its
        output if it fails. `package` must be installed in folder (make
        test installs it: npm ci)."""
        node = shutil.which("node")
        if not node or not os.path.isdir(os.path.join(folder, "node_modules", package)):
            self.fail(f"Node.js and {package} in {folder}/node_modules are needed (make test "
                      "installs them with npm ci)")
        run_env = dict(os.environ, MEMGPT_URL=self.server.url, **(env or {}))
        if password:
            run_env["MEMGPT_PASSWORD"] = password
        cmd = [node, os.path.join(folder, script), scenario]
        if arg is not None:
            cmd.append(json.dumps(arg))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout,
                              cwd=folder)
        if proc.returncode != 0:
            self.fail(f"scenario {scenario} failed:\n{proc.stderr}\n--- server log ---\n"
                      + "\n".join(self.server.log[-40:]))
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def wait_for(self, predicate, seconds=20):
        end = time.time() + seconds
        while time.time() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()
