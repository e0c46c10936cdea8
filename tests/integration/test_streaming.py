"""Integration tests of streamed replies: `send --stream`, `send --json
--stream` and `chat`, against each provider's mock (the harness runs this
file once per provider).

The mocks deliver the stream as hostile networks and servers do: in one-byte
writes (cutting UTF-8 characters, escapes and line ends), with keep-alives,
with an error event mid-stream, or cut off. Each test checks what the user
sees (the pieces, in order, adding up to the reply exactly) and what is
stored (the reply once, or nothing of a broken stream).
"""

import json
import time

from harness import (CHAT_PATH, PROVIDER, MemgptTestCase, Terminal, main, only_providers,
                     parse_json_lines)

# Every escape JSON has, and characters of 2, 3 and 4 UTF-8 bytes (the last
# one a surrogate pair when escaped).
TRICKY = 'He said "hi" \\ back\nthen\ttabbed / caf\u00e9 \u20ac5 \u4e2d\u6587 \U0001F600 end'
NOTICE = "the reply stream was interrupted; retrying"


def reply(message, **stream):
    """A scripted step: some monologue and one send_message."""
    spec = {"content": "Replying.",
            "tool_calls": [{"name": "send_message", "arguments": {"message": message}}]}
    spec.update(stream)
    return spec


def of_type(events, kind):
    return [e for e in events if e["message_type"] == kind]


def deltas_by_call(events):
    out = {}
    for e in of_type(events, "assistant_message_delta"):
        out[e["tool_call_id"]] = out.get(e["tool_call_id"], "") + e["delta"]
    return out


class StreamingTest(MemgptTestCase):
    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", "a", check=0)

    def send_stream(self, text, json_out=True, check=0, **kwargs):
        args = ["send", "--agent", "a", "--stream"] + (["--json"] if json_out else []) + [text]
        proc = self.run_memgpt(*args, check=check, **kwargs)
        if not json_out:
            return proc
        return parse_json_lines(proc.stdout)

    def wire_requests(self):
        """The chat requests as sent (not the mocks' neutral views)."""
        return [r.get("wire") or r["body"] for r in self.mock.requests
                if r["path"] == CHAT_PATH and r["status"] is not None]

    def stored(self):
        proc = self.run_memgpt("recall", "list", "--agent", "a", "--json", "--limit", "100",
                               check=0)
        return json.loads(proc.stdout)

    def assert_reply_streamed(self, events, message):
        """The pieces add up to the reply, come before the step's other
        events, and the final event names the same call."""
        finals = of_type(events, "assistant_message")
        self.assertEqual([e["content"] for e in finals], [message], events)
        self.assertEqual(deltas_by_call(events), {finals[0]["tool_call_id"]: message})
        kinds = [e["message_type"] for e in events]
        last_delta = max(i for i, k in enumerate(kinds) if k == "assistant_message_delta")
        self.assertLess(last_delta, kinds.index("tool_call_message"), kinds)
        self.assertEqual(kinds[-1], "usage_statistics")
        for e in of_type(events, "assistant_message_delta"):
            self.assertTrue(e["delta"], "an empty piece was sent")
            self.assertNotIn("\ufffd", e["delta"], "a character was cut in half")

    # --------------------------------------------------------------- basics

    def test_pieces_add_up_to_the_reply(self):
        message = "Streaming works: " + " ".join(f"word{i}" for i in range(40))
        self.mock.push(reply(message, piece_chars=3))
        events = self.send_stream("hello")
        self.assert_reply_streamed(events, message)
        pieces = len(of_type(events, "assistant_message_delta"))
        if PROVIDER == "ollama":
            self.assertEqual(pieces, 1)  # Ollama sends a tool call whole
        else:
            self.assertGreater(pieces, 20)
        body = self.wire_requests()[-1]
        self.assertIs(body["stream"], True)
        if PROVIDER == "openai":
            self.assertEqual(body["stream_options"], {"include_usage": True})
        self.assert_all_requests_valid()
        # The reply is stored once, as without streaming.
        replies = [m for m in self.stored() if message in m["text"]]
        self.assertEqual(len(replies), 1, replies)

    def test_text_output_prints_the_reply_once(self):
        self.mock.push(reply("Just once, please.", piece_chars=2))
        proc = self.send_stream("hello", json_out=False)
        self.assertEqual(proc.stdout, "Just once, please.\n")
        self.assertEqual(proc.stderr, "")

    def test_without_stream_nothing_changes(self):
        self.mock.push(reply("plain"))
        events = self.send("hello", agent="a", json_out=True)
        self.assertEqual(of_type(events, "assistant_message_delta"), [])
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")], ["plain"])
        body = self.wire_requests()[-1]
        self.assertNotEqual(body.get("stream"), True)
        self.assertNotIn("stream_options", body)

    def test_usage_is_reported(self):
        self.mock.push(reply("counted"))
        usage = self.send_stream("hello")[-1]
        self.assertGreater(usage["prompt_tokens"], 0)
        self.assertGreater(usage["completion_tokens"], 0)

    # ---------------------------------------------------- hostile delivery

    def test_every_byte_boundary_in_escapes_and_utf8(self):
        # Arguments escaped to ASCII (\uXXXX, surrogate pairs), cut into
        # one-character pieces, and the stream into one-byte network writes.
        self.mock.push(reply(TRICKY, piece_chars=1, chunk_bytes=1))
        events = self.send_stream("hello")
        self.assert_reply_streamed(events, TRICKY)
        # Arguments as raw UTF-8 text, pieces of 2, network writes of 3.
        raw = json.dumps({"message": TRICKY}, ensure_ascii=False)
        self.mock.push({"tool_calls": [{"name": "send_message", "arguments": raw}],
                        "piece_chars": 2, "chunk_bytes": 3})
        events = self.send_stream("again")
        self.assert_reply_streamed(events, TRICKY)
        self.mock.push(reply(TRICKY, piece_chars=1, chunk_bytes=1))
        proc = self.send_stream("as text", json_out=False)
        self.assertEqual(proc.stdout, TRICKY + "\n")
        self.assert_all_requests_valid()

    def test_keepalives_are_skipped(self):
        self.mock.push(reply("alive and well", keepalive=True, chunk_bytes=5, piece_chars=2))
        events = self.send_stream("hello")
        self.assert_reply_streamed(events, "alive and well")

    def test_two_replies_in_one_step(self):
        self.mock.push({"content": "Two things.", "piece_chars": 2, "interleave": True,
                        "tool_calls": [
                            {"name": "send_message", "arguments": {"message": "First one."}},
                            {"name": "send_message", "arguments": {"message": "Second one."}}]}
                       if PROVIDER == "openai" else
                       {"content": "Two things.", "piece_chars": 2, "tool_calls": [
                           {"name": "send_message", "arguments": {"message": "First one."}},
                           {"name": "send_message", "arguments": {"message": "Second one."}}]})
        events = self.send_stream("hello")
        finals = of_type(events, "assistant_message")
        self.assertEqual([e["content"] for e in finals], ["First one.", "Second one."])
        pieces = deltas_by_call(events)
        self.assertEqual(pieces, {e["tool_call_id"]: e["content"] for e in finals})
        # The step's events come in their usual order after the pieces.
        kinds = [e["message_type"] for e in events if e["message_type"] !=
                 "assistant_message_delta"]
        self.assertEqual(kinds[:7], ["reasoning_message", "tool_call_message",
                                     "assistant_message", "tool_return_message",
                                     "tool_call_message", "assistant_message",
                                     "tool_return_message"])
        self.mock.push({"content": "Two things.", "piece_chars": 2, "tool_calls": [
            {"name": "send_message", "arguments": {"message": "First one."}},
            {"name": "send_message", "arguments": {"message": "Second one."}}]})
        proc = self.send_stream("as text", json_out=False)
        self.assertEqual(proc.stdout, "First one.\nSecond one.\n")

    # ------------------------------------------------------------- failures

    def test_error_event_fails_cleanly(self):
        before = self.stored()
        # After a few events, so part of the reply has been shown.
        after = {"openai": 5, "anthropic": 6, "ollama": 2}[PROVIDER]
        self.mock.push(reply("This reply will never be finished", piece_chars=8,
                             stream_error={"message": "Overloaded right now",
                                           "type": "overloaded_error", "after_events": after}))
        proc = self.send_stream("hello", json_out=False, check=1)
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("memgpt: "), lines[0])
        self.assertIn("Overloaded right now", lines[0])
        # Whatever was previewed ends its line; nothing else is printed.
        self.assertTrue(proc.stdout == "" or proc.stdout.endswith("\n"), proc.stdout)
        self.assertTrue("This reply will never be finished\n".startswith(proc.stdout),
                        proc.stdout)
        # Only the user message was stored; no half reply, no call.
        after_rows = self.stored()
        new = after_rows[len(before):]
        self.assertEqual([m["role"] for m in new], ["user"], new)
        self.assertFalse(any("never be finished" in m["text"] for m in after_rows))
        self.assertEqual(len(self.wire_requests()), 1)  # an error is not retried
        # The agent goes on normally.
        self.mock.push(reply("Recovered."))
        events = self.send_stream("again")
        self.assert_reply_streamed(events, "Recovered.")

    def test_cut_off_stream_is_asked_again(self):
        before = self.stored()
        # Cut inside the last event: every provider has shown the whole reply.
        self.mock.push(reply("A first draft that is lost", piece_chars=4, cut_before_end=20))
        self.mock.push(reply("The reply that counts", piece_chars=4))
        # A pinned clock: the system prompt shows the time to the second, and
        # the second try may start in the next one.
        events = self.send_stream("hello", env={"MEMGPT_FAKE_NOW": 1_750_000_000})
        kinds = [e["message_type"] for e in events]
        notice = kinds.index("system_message")
        self.assertEqual(events[notice]["content"], NOTICE)
        self.assertEqual(kinds.count("system_message"), 1)
        # The preview before the notice is discarded; after it, the real reply.
        self.assertEqual("".join(deltas_by_call(events[:notice]).values()),
                         "A first draft that is lost")
        self.assert_reply_streamed(events[notice + 1:], "The reply that counts")
        # Asked twice with the same request; stored once.
        requests = self.wire_requests()
        self.assertEqual(len(requests), 2)
        self.assertEqual(requests[0]["messages"], requests[1]["messages"])
        rows = self.stored()[len(before):]
        self.assertFalse(any("first draft" in m["text"] for m in rows), rows)
        self.assertEqual(len([m for m in rows if "The reply that counts" in m["text"]]), 1)
        deadline = time.time() + 5  # recorded by the server thread after it hangs up
        while "stream" not in self.mock.requests[0] and time.time() < deadline:
            time.sleep(0.01)
        self.assertTrue(self.mock.requests[0].get("stream", "").startswith("cut after"),
                        self.mock.requests[0])

    @only_providers("openai", "anthropic")  # Ollama never splits tool calls
    def test_cut_in_the_middle_of_the_arguments(self):
        message = "x" * 140 + " middle " + "y" * 140
        # Events are a few hundred bytes: this is a few dozen characters in.
        self.mock.push(reply(message, piece_chars=4, cut_after_bytes=4000, chunk_bytes=100))
        self.mock.push(reply(message, piece_chars=4))
        proc = self.send_stream("hello", json_out=False)
        self.assertIn(NOTICE, proc.stderr)
        # The partial preview's line was ended before the retry's reply.
        lines = proc.stdout.split("\n")
        self.assertEqual(lines[-2:], [message, ""])
        self.assertTrue(message.startswith(lines[0]) and lines[0] != message, lines)

    def test_clean_end_without_the_final_event_is_asked_again(self):
        # The server closes properly, but before the reply is complete.
        cut = {"cut_after_bytes": 700} if PROVIDER != "ollama" else {"cut_before_end": 20}
        self.mock.push(reply("Unfinished business", cut_clean=True, **cut))
        self.mock.push(reply("Finished business"))
        events = self.send_stream("hello")
        self.assertEqual([e["content"] for e in of_type(events, "system_message")], [NOTICE])
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                         ["Finished business"])

    def test_gives_up_after_two_retries(self):
        before = self.stored()
        for _ in range(3):
            self.mock.push(reply("Never whole", cut_before_end=10))
        proc = self.run_memgpt("send", "--agent", "a", "--json", "--stream", "hello", check=1)
        events = parse_json_lines(proc.stdout)
        self.assertEqual([e["content"] for e in of_type(events, "system_message")], [NOTICE] * 2)
        self.assertEqual(of_type(events, "assistant_message"), [])
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("cut off", proc.stderr)
        self.assertEqual(len(self.wire_requests()), 3)
        self.assertEqual([m["role"] for m in self.stored()[len(before):]], ["user"])

    # ------------------------------------------------------------------ chat

    def test_chat_streams_in_a_pipe(self):
        proc = self.run_memgpt("chat", "--agent", "a", input="hello there\n/exit\n", check=0)
        self.assertIn("a> You said: hello there\n", proc.stdout)
        self.assertEqual(proc.stdout.count("You said: hello there"), 1)
        self.assertIs(self.wire_requests()[-1]["stream"], True)

    @only_providers("openai", "anthropic")  # Ollama sends a tool call whole
    def test_chat_on_a_terminal_shows_the_reply_as_it_comes(self):
        message = "Streaming one word after another until the grand finale"
        self.mock.push({"content": "Hello."})  # the login
        self.mock.push(reply(message, piece_chars=4, chunk_bytes=64, chunk_delay=0.04))
        with Terminal(["--home", self.home, "chat", "--agent", "a"], self.memgpt_env()) as t:
            self.assertTrue(t.read_until(lambda o: b"you> " in o), t.output)
            t.type(b"tell me\r")
            # Part of the reply is on screen while the rest is still coming.
            self.assertTrue(t.read_until(lambda o: b"a> Streaming one" in o), t.output)
            partial = t.output.split(b"a> Streaming one", 1)[1]
            self.assertNotIn(b"finale", partial, "the reply appeared all at once")
            self.assertTrue(t.read_until(lambda o: message.encode() + b"\r\n" in o), t.output)
            t.type(b"/exit\r")
            self.assertEqual(t.exit_code(), 0)
        self.assertEqual(t.output.count(message.encode()), 1)


@only_providers("openai")
class OpenAIStreamingTest(MemgptTestCase):
    """What only the OpenAI-compatible client does: parallel tool calls,
    reasoning-model usage, and servers that do not stream."""

    providers = ("openai",)
    mock_kwargs = {"no_parallel_models": ["o3-mini"]}

    def chat_bodies(self):
        return [r["body"] for r in self.mock.requests if r["path"] == CHAT_PATH]

    def test_parallel_tool_calls_only_with_tools(self):
        self.run_memgpt("agents", "create", "a", check=0)
        for i in range(3):
            self.send(f"FACT: item{i}", agent="a")
        # A context-length refusal makes the agent summarize: a call without tools.
        self.mock.push({"context_length_exceeded": True})
        self.run_memgpt("send", "--agent", "a", "--stream", "one more", check=0)
        bodies = [b for b in self.chat_bodies() if b]
        with_tools = [b for b in bodies if b.get("tools")]
        without = [b for b in bodies if not b.get("tools")]
        self.assertTrue(with_tools and without, "expected a summarizer call too")
        self.assertTrue(all(b.get("parallel_tool_calls") is True for b in with_tools))
        self.assertTrue(all("parallel_tool_calls" not in b for b in without))
        self.assert_all_requests_valid()

    def test_model_that_refuses_parallel_tool_calls(self):
        self.run_memgpt("agents", "create", "r", "--model", "openai/o3-mini", check=0)
        for stream in (True, False):
            # Two steps in one run: the second must not try again.
            self.mock.push({"tool_calls": [{"name": "send_message", "arguments": {
                "message": "thinking more", "request_heartbeat": True}}]})
            self.mock.push({"content": "done"})
            before = len(self.chat_bodies())
            args = ["send", "--agent", "r", "--json"] + (["--stream"] if stream else [])
            proc = self.run_memgpt(*args, "hello", check=0)
            events = parse_json_lines(proc.stdout)
            self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                             ["thinking more"])
            bodies = self.chat_bodies()[before:]
            # Refused once, asked again without it, and not sent again.
            self.assertEqual(len(bodies), 3)
            self.assertIs(bodies[0].get("parallel_tool_calls"), True)
            self.assertTrue(all("parallel_tool_calls" not in b for b in bodies[1:]))
        refused = self.mock.invalid_requests()
        self.assertEqual(len(refused), 2)  # once per process
        self.assertIn("parallel_tool_calls", refused[0]["error"])

    def test_reasoning_usage_fields(self):
        self.run_memgpt("agents", "create", "a", check=0)
        usage = {"completion_tokens_details": {"reasoning_tokens": 7},
                 "prompt_tokens_details": {"cached_tokens": 128}}
        for stream in (True, False):
            self.mock.push(reply("thought about it", usage=usage))
            args = ["send", "--agent", "a", "--json"] + (["--stream"] if stream else [])
            proc = self.run_memgpt(*args, "hello", check=0)
            last = parse_json_lines(proc.stdout)[-1]
            self.assertEqual(last["message_type"], "usage_statistics")
            self.assertEqual((last["reasoning_tokens"], last["cached_tokens"]), (7, 128))
        # Providers that do not report them: no such fields.
        self.mock.push(reply("plain"))
        proc = self.run_memgpt("send", "--agent", "a", "--json", "--stream", "hi", check=0)
        last = parse_json_lines(proc.stdout)[-1]
        self.assertNotIn("reasoning_tokens", last)
        self.assertNotIn("cached_tokens", last)

    def test_server_that_ignores_stream(self):
        self.run_memgpt("agents", "create", "a", check=0)
        message = {"role": "assistant", "content": "Plainly.", "tool_calls": [
            {"id": "call_x", "type": "function",
             "function": {"name": "send_message", "arguments": '{"message": "not streamed"}'}}]}
        self.mock.push({"body": {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
                                 "choices": [{"index": 0, "message": message,
                                              "finish_reason": "tool_calls"}],
                                 "usage": {"prompt_tokens": 5, "completion_tokens": 3}}})
        proc = self.run_memgpt("send", "--agent", "a", "--stream", "hi", check=0)
        self.assertEqual(proc.stdout, "not streamed\n")


@only_providers("anthropic")
class AnthropicStreamingTest(MemgptTestCase):
    providers = ("anthropic",)

    def test_thinking_is_reassembled_with_its_signature(self):
        self.run_memgpt("agents", "create", "a", check=0)
        self.mock.push(dict(reply("Thought it through.", piece_chars=3, chunk_bytes=7,
                                  keepalive=True),
                            thinking="Let me think \u00e9 \"hard\"",
                            tool_calls=[{"name": "send_message", "arguments": {
                                "message": "Thought it through.", "request_heartbeat": True}}]))
        self.mock.push({"content": "done"})
        proc = self.run_memgpt("send", "--agent", "a", "--json", "--stream", "hi", check=0)
        events = parse_json_lines(proc.stdout)
        self.assertIn("Let me think \u00e9 \"hard\"",
                      of_type(events, "reasoning_message")[0]["reasoning"])
        # The heartbeat request carries the thinking block back, signature
        # intact: the mock refuses it otherwise.
        self.assertEqual(len(self.mock.messages_requests()), 2)
        self.assert_all_requests_valid()


if __name__ == "__main__":
    main()
