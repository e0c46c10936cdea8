"""Integration tests of `memgpt chat`: slash commands, login, timed heartbeats
while the user is idle, pause_heartbeats, a missing provider, and a real
terminal (pty) with libedit."""

import json
import os
import subprocess
import time

from harness import MEMGPT_BIN, MemgptTestCase, Terminal, main, only_providers


def last_user_event(body):
    """The JSON envelope of the last user-role message of a chat request."""
    for msg in reversed(body["messages"]):
        if msg["role"] == "user":
            try:
                return json.loads(msg["content"])
            except ValueError:
                return {}
    return {}


class ChatTest(MemgptTestCase):
    def create(self, *extra):
        self.run_memgpt("agents", "create", "a", *extra, check=0)

    def chat(self, lines, env=None, timeout=30):
        return self.run_memgpt("chat", "--agent", "a", input="".join(l + "\n" for l in lines),
                               env=env, timeout=timeout)

    def test_login_then_messages_and_slash_commands(self):
        self.create()
        proc = self.chat(["hello there", "/memory", "/context", "/search hello", "/help",
                          "/frobnicate", "/exit"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        kinds = [last_user_event(b).get("type") for b in self.mock.chat_requests()]
        self.assertEqual(kinds[:2], ["login", "user_message"])
        self.assertIn("a> You said: hello there", proc.stdout)
        self.assertIn("== persona (", proc.stdout)          # /memory
        self.assertIn("core_memory", proc.stdout)            # /context
        self.assertIn("user: hello there", proc.stdout)      # /search
        self.assertIn("/rethink TEXT", proc.stdout)          # /help
        self.assertIn("unknown command /frobnicate", proc.stdout)
        self.assert_all_requests_valid()

    def test_eof_ends_chat(self):
        self.create()
        proc = self.chat(["hi"])
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_timed_heartbeat_when_idle_and_pause(self):
        self.create("--idle-seconds", "1")
        # Answer the login, then the first timed heartbeat pauses heartbeats.
        self.mock.push({"content": "logged in"})
        self.mock.push({"content": "quiet time",
                        "tool_calls": [{"name": "pause_heartbeats", "arguments": {"minutes": 5}}]})
        self.mock.push({"content": "paused"})
        proc = subprocess.Popen([MEMGPT_BIN, "--home", self.home, "chat", "--agent", "a"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.memgpt_env())
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                beats = [b for b in self.mock.chat_requests()
                         if last_user_event(b).get("type") == "heartbeat"]
                if beats:
                    break
                time.sleep(0.1)
            self.assertTrue(beats, "no timed heartbeat arrived while idle")
            self.assertIn("Timed heartbeat", last_user_event(beats[0])["reason"])
            time.sleep(3)  # paused: no more timed heartbeats may come
            timed = [b for b in self.mock.chat_requests()
                     if "Timed heartbeat" in last_user_event(b).get("reason", "")]
            self.assertEqual(len(timed), 1)
            out, err = proc.communicate("/exit\n", timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)

    @only_providers("openai")  # names OPENAI_API_KEY
    def test_no_provider_configured(self):
        self.create()
        proc = self.chat(["/memory", "/exit"],
                         env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("OPENAI_API_KEY", proc.stderr)
        self.assertIn("Ollama", proc.stderr)
        self.assertIn("== persona (", proc.stdout)
        self.assertEqual(self.mock.requests, [])

    def test_terminal_session(self):
        """A real terminal: libedit prompt, a reply, history saved on exit."""
        self.create()
        with Terminal(["--home", self.home, "chat", "--agent", "a"], self.memgpt_env()) as t:
            self.assertTrue(t.read_until(lambda o: b"you> " in o), t.output)
            t.type(b"ping from a terminal\r")
            self.assertTrue(t.read_until(lambda o: b"You said: ping from a terminal" in o),
                            t.output)
            t.type(b"/exit\r")
            self.assertEqual(t.exit_code(), 0)
        with open(os.path.join(self.home, "chat_history")) as f:
            self.assertIn("ping\\040from\\040a\\040terminal", f.read())  # libedit escapes spaces


if __name__ == "__main__":
    main()
