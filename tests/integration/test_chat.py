"""Integration tests of `memgpt chat`: slash commands, login, timed heartbeats
while the user is idle, pause_heartbeats, a missing provider, a real
terminal (pty) with libedit, and input that ends or fails: a terminal that
closes (SIGHUP ignored or not), a terminal read that fails, a pipe."""

import json
import os
import signal
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

    # ------------------------------------------------ input that ends or fails

    def stored_texts(self):
        rows = json.loads(self.run_memgpt("recall", "list", "--agent", "a", "--json",
                                          "--limit", "1000", check=0).stdout)
        return [r["text"] for r in rows]

    def talk(self, t, text):
        """Sends one line on terminal `t` and waits for its reply and the next prompt."""
        self.assertTrue(t.read_until(lambda o: o.endswith(b"you> ")), t.output)
        t.type(text.encode() + b"\r")
        self.assertTrue(t.read_until(lambda o: b"You said: " + text.encode() in o
                                     and o.endswith(b"you> ")), t.output)

    def wait_after(self, t, cpu_before, seconds=5):
        """Waits for the chat to end after its input ended or failed, and
        checks it did not keep a core busy meanwhile. Returns its exit code.
        (The CPU allowance covers closing the store, and a sanitizer's
        leak check at exit; a chat spinning on a dead terminal fails the
        deadline first, with the CPU it burned in the message.)"""
        code, cpu = t.wait(seconds)
        if code is None:
            self.fail(f"the chat still runs {seconds} s after its input ended, having used "
                      f"{t.cpu_seconds() - cpu_before:.1f} s of CPU meanwhile\n{t.output!r}")
        self.assertLess(cpu - cpu_before, 2.0, "busy after its input ended")
        return code

    def assert_committed(self, sent, unsent=None):
        """`sent` is stored and in the line history; `unsent` is not stored."""
        texts = self.stored_texts()
        self.assertTrue(any(sent in x for x in texts), texts)
        if unsent:
            self.assertFalse(any(unsent in x for x in texts), texts)
        with open(os.path.join(self.home, "chat_history")) as f:
            self.assertIn(sent.replace(" ", "\\040"), f.read())

    def test_ctrl_d_on_terminal(self):
        """Ctrl-D on an empty line is the user leaving: status 0, the line
        history saved (a terminal that closes is not: see below)."""
        self.create()
        with Terminal(["--home", self.home, "chat", "--agent", "a"], self.memgpt_env()) as t:
            self.talk(t, "sent before ctrl-d")
            t.type(b"\x04")
            code, _ = t.wait(10)
        self.assertEqual(code, 0, t.output)
        self.assert_committed("sent before ctrl-d")

    def test_closed_terminal_with_sighup_ignored(self):
        """A chat that ignores SIGHUP (nohup, or a parent that keeps it
        ignored) gets no signal when its terminal closes, only reads that end
        or fail: it must end then, not spin. What was sent stays stored and
        the line history is saved; the half-typed line was never sent.
        Exit 1: the chat ended because its input failed, not by choice."""
        self.create()
        with Terminal(["--home", self.home, "chat", "--agent", "a"], self.memgpt_env(),
                      ignore=(signal.SIGHUP,)) as t:
            self.talk(t, "sent before the terminal closed")
            t.type(b"half typed")
            self.assertTrue(t.read_until(lambda o: o.endswith(b"half typed")), t.output)
            cpu_before = t.cpu_seconds()
            t.hang_up()
            self.assertEqual(self.wait_after(t, cpu_before), 1)
        self.assert_committed("sent before the terminal closed", "half typed")

    def test_closed_terminal_with_sighup_default(self):
        """With SIGHUP at its default the chat ends too: by the signal (the
        kernel sends it to the terminal's session leader, here the chat),
        or by the failed read if that comes first. Each step was committed
        when it ran, so what was sent is stored either way."""
        self.create()
        with Terminal(["--home", self.home, "chat", "--agent", "a"], self.memgpt_env()) as t:
            self.talk(t, "sent before the terminal closed")
            cpu_before = t.cpu_seconds()
            t.hang_up()
            self.assertIn(self.wait_after(t, cpu_before), (1, -signal.SIGHUP))
        self.assertIn("sent before the terminal closed", "\n".join(self.stored_texts()))

    def test_terminal_read_error(self):
        """A terminal whose reads fail (EIO; here because the chat runs in a
        background process group with SIGTTIN ignored, so the kernel refuses
        it the terminal instead of stopping it) ends the chat with status 1
        and the reason, rather than retrying the read forever."""
        self.create()
        with Terminal(["--home", self.home, "chat", "--agent", "a"], self.memgpt_env(),
                      ignore=(signal.SIGTTIN, signal.SIGTTOU), background=True) as t:
            self.assertTrue(t.read_until(lambda o: o.endswith(b"you> ")), t.output)
            cpu_before = t.cpu_seconds()
            t.type(b"x")  # stdin becomes readable; reading it fails
            self.assertEqual(self.wait_after(t, cpu_before), 1)
            t.read_until(lambda o: b"Input/output error" in o, 2)
            self.assertIn(b"memgpt: cannot read input: Input/output error", t.output)

    def test_pipe_closed_mid_line(self):
        """Piped input that stops without a final newline: its last line
        is still a message, and the chat ends with status 0."""
        self.create()
        proc = self.run_memgpt("chat", "--agent", "a", input="first line\nlast, unfinished")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        texts = "\n".join(self.stored_texts())
        self.assertIn("first line", texts)
        self.assertIn("last, unfinished", texts)

    def test_input_read_error(self):
        """Input that cannot be read (a directory: read fails with EISDIR)
        is an error, status 1, not an end of input that looks normal."""
        self.create()
        fd = os.open(self.home, os.O_RDONLY)
        try:
            proc = subprocess.run([MEMGPT_BIN, "--home", self.home, "chat", "--agent", "a"],
                                  stdin=fd, capture_output=True, text=True,
                                  env=self.memgpt_env(), timeout=30)
        finally:
            os.close(fd)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("memgpt: cannot read input: Is a directory", proc.stderr)


if __name__ == "__main__":
    main()
