#!/usr/bin/env python3
"""Integration tests of the agent's functions and its step loop.

The model is the strict OpenAI mock with scripted replies (self.mock.push),
so each test decides exactly which function calls the "model" makes. Results
are checked three ways: the events `send --json` prints, the memory tiers as
the CLI shows them afterwards, and the requests the binary sent back to the
mock (tool result messages, heartbeats, the system message).
"""

import calendar
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import PROVIDER, MemgptTestCase, main, only_providers  # noqa: E402
from openai_mock import count_prompt_tokens  # noqa: E402  (harness put it on the path)
from openai_mock import formula_prompt_tokens  # noqa: E402

AGENT = "fn"


def call(name, arguments, call_id):
    """One scripted tool call; arguments may be a dict or a raw string."""
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id="say"):
    """A response that ends the turn: send_message without a heartbeat."""
    return {"content": None, "tool_calls": [call("send_message", {"message": text}, call_id)]}


def epoch(year, month, day, hour=12):
    return calendar.timegm((year, month, day, hour, 0, 0))


def of_type(events, message_type):
    return [e for e in events if e.get("message_type") == message_type]


def event_payload(message):
    """The JSON envelope of a user-role message the binary sent."""
    return json.loads(message["content"])


class FunctionTestCase(MemgptTestCase):
    """Helpers shared by the function tests."""

    def create_agent(self, *options, name=AGENT):
        self.run_memgpt("agents", "create", name, *options, check=0)

    def turn(self, text="hi", *responses, agent=AGENT, env=None):
        """Scripts the responses, runs one `send --json` (must exit 0) and
        returns its events."""
        for r in responses:
            self.mock.push(r)
        kwargs = {"env": env} if env else {}
        events = self.send(text, agent=agent, json_out=True, **kwargs)
        self.assertTrue(events, "send --json printed nothing")
        self.assertEqual(events[-1]["message_type"], "usage_statistics",
                         f"usage_statistics must be the last event: {events}")
        return events

    def returns(self, events):
        """tool_call_id -> (event, parsed tool_return JSON)."""
        out = {}
        for e in of_type(events, "tool_return_message"):
            out[e["tool_call_id"]] = (e, json.loads(e["tool_return"]))
        return out

    def tool_message(self, body, call_id):
        """The parsed content of the tool result message for call_id in a request."""
        found = [m for m in body["messages"]
                 if m["role"] == "tool" and m.get("tool_call_id") == call_id]
        self.assertEqual(len(found), 1, f"expected one tool message for {call_id}, "
                         f"found {len(found)}")
        return json.loads(found[0]["content"])

    def system_text(self, body):
        first = body["messages"][0]
        self.assertEqual(first["role"], "system")
        return first["content"]

    def memory(self, agent=AGENT):
        proc = self.run_memgpt("memory", "show", "--agent", agent, "--json", check=0)
        return {b["label"]: b for b in json.loads(proc.stdout)}

    def assert_ok_result(self, events, call_id, *substrings):
        self.assertIn(call_id, self.returns(events), f"no result for {call_id}: {events}")
        ev, result = self.returns(events)[call_id]
        self.assertEqual(result["status"], "OK", result)
        self.assertEqual(ev["status"], "success", ev)
        self.assertIsInstance(result.get("time"), str)
        for s in substrings:
            self.assertIn(s, result["message"])
        return result

    def assert_heartbeat_last(self, body, reason_part=None):
        last = body["messages"][-1]
        self.assertEqual(last["role"], "user", last)
        payload = event_payload(last)
        self.assertEqual(payload["type"], "heartbeat", payload)
        if reason_part:
            self.assertIn(reason_part, payload.get("reason", ""))
        return payload


# --------------------------------------------------------------------------
# Each function doing its job.
# --------------------------------------------------------------------------

class SendMessageTest(FunctionTestCase):
    def test_send_message_reaches_user(self):
        self.create_agent()
        self.mock.push(say("Hello there, Ada.", "c1"))
        proc = self.send("hi", agent=AGENT)
        self.assertEqual(proc.stdout, "Hello there, Ada.\n")

        self.mock.push(say("Second reply.", "c2"))
        events = self.turn("again")
        assistant = of_type(events, "assistant_message")
        self.assertEqual([e["content"] for e in assistant], ["Second reply."])
        calls = of_type(events, "tool_call_message")
        self.assertEqual(calls[0]["tool_call"]["name"], "send_message")
        self.assertEqual(calls[0]["tool_call"]["tool_call_id"], "c2")
        self.assertEqual(json.loads(calls[0]["tool_call"]["arguments"]),
                         {"message": "Second reply."})
        self.assert_ok_result(events, "c2")
        self.assertEqual(events[-1]["step_count"], 1)
        # No heartbeat was asked for: one LLM call per turn.
        self.assertEqual(len(self.mock.chat_requests()), 2)
        # The user message reached the model as a JSON envelope.
        user = self.mock.chat_requests()[1]["messages"][-1]
        payload = event_payload(user)
        self.assertEqual(payload["type"], "user_message")
        self.assertEqual(payload["message"], "again")
        self.assert_all_requests_valid()

    def test_stdout_has_each_message_on_its_own_line(self):
        self.create_agent()
        self.mock.push({"content": "thinking, not for the user", "tool_calls": [
            call("send_message", {"message": "Grüße 👋"}, "u1"),
            call("send_message", {"message": "line one\nline two"}, "u2")]})
        proc = self.send("hi", agent=AGENT)
        self.assertEqual(proc.stdout, "Grüße 👋\nline one\nline two\n")
        self.assert_all_requests_valid()

    def test_missing_tool_call_ids_are_filled_in(self):
        # Some OpenAI-compatible servers send empty ids; results must still pair up.
        self.create_agent()
        events = self.turn("hi", {"content": None, "tool_calls": [
            call("archival_memory_insert", {"content": "id-less one",
                                            "request_heartbeat": True}, ""),
            call("archival_memory_insert", {"content": "id-less two"}, "")]},
            say("done"))
        ids = [e["tool_call"]["tool_call_id"] for e in of_type(events, "tool_call_message")]
        self.assertEqual(len(ids), 3)
        self.assertTrue(all(ids), ids)
        self.assertEqual(len(set(ids[:2])), 2, ids)
        self.assertEqual(len(self.mock.chat_requests()), 2)
        self.assert_all_requests_valid()

    def test_plain_text_not_delivered_after_send_message(self):
        self.create_agent()
        events = self.turn("hi", {"content": None, "tool_calls": [call(
            "send_message", {"message": "The real reply.", "request_heartbeat": True}, "t1")]},
            {"content": "Private afterthought."})
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                         ["The real reply."])
        self.assertEqual(len(self.mock.chat_requests()), 2)
        # Without a send_message earlier in the turn, the text is the reply.
        events = self.turn("again", {"content": None, "tool_calls": [call(
            "archival_memory_insert", {"content": "note", "request_heartbeat": True}, "t2")]},
            {"content": "Plain answer after a step."})
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                         ["Plain answer after a step."])
        self.assert_all_requests_valid()

    def test_plain_text_reply_fallback(self):
        self.create_agent()
        self.mock.push({"content": "Just plain words, no function."})
        proc = self.send("hi", agent=AGENT)
        self.assertEqual(proc.stdout, "Just plain words, no function.\n")
        self.mock.push({"content": "Plain again."})
        events = self.turn("hi again")
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                         ["Plain again."])
        self.assertFalse(of_type(events, "tool_call_message"))
        self.assertEqual(events[-1]["step_count"], 1)
        self.assertEqual(len(self.mock.chat_requests()), 2)
        self.assert_all_requests_valid()


class CoreMemoryTest(FunctionTestCase):
    def test_append_visible_in_next_system_message(self):
        self.create_agent("--human", "Name: unknown")
        events = self.turn(
            "my name is Ada",
            {"content": "Saving the name.", "tool_calls": [call(
                "core_memory_append",
                {"label": "human", "content": "Name: Ada Lovelace", "request_heartbeat": True},
                "c1")]},
            say("Nice to meet you, Ada."))
        self.assert_ok_result(events, "c1", "human")
        reasoning = of_type(events, "reasoning_message")
        self.assertIn("Saving the name.", [e["reasoning"] for e in reasoning])

        block = self.memory()["human"]
        self.assertEqual(block["value"], "Name: unknown\nName: Ada Lovelace")
        self.assertEqual(block["chars"], len(block["value"]))

        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 2)
        self.assertNotIn("Ada Lovelace", self.system_text(requests[0]))
        system = self.system_text(requests[1])
        self.assertIn("## Core memory", system)
        expected = (f'<block label="human" chars="{block["chars"]}/{block["limit"]}">')
        self.assertIn(expected, system)
        start = system.index(expected)
        rendered = system[start:system.index("</block>", start)]
        self.assertIn("<value>\nName: unknown\nName: Ada Lovelace\n</value>", rendered)
        self.assertEqual(self.tool_message(requests[1], "c1")["status"], "OK")
        self.assert_all_requests_valid()

    def test_limits_count_characters_not_bytes(self):
        self.create_agent("--human", "Zoë")
        limit = self.memory()["human"]["limit"]
        accents = "é" * (limit - 5)  # 2 bytes each: over the limit in bytes, not in characters
        events = self.turn("hi", {"content": None, "tool_calls": [
            call("core_memory_append", {"label": "human", "content": accents}, "u1"),
            call("send_message", {"message": "ok"}, "u2")]})
        self.assert_ok_result(events, "u1")
        block = self.memory()["human"]
        self.assertEqual(block["value"], "Zoë\n" + accents)
        self.assertEqual(block["chars"], len("Zoë\n" + accents))
        self.assert_all_requests_valid()

    def test_replace_and_delete(self):
        self.create_agent("--human", "Name: Bob\nLikes: tea")
        events = self.turn(
            "I switched to coffee",
            {"content": None, "tool_calls": [call(
                "core_memory_replace",
                {"label": "human", "old_content": "tea", "new_content": "coffee",
                 "request_heartbeat": True}, "r1")]},
            say("Noted."))
        self.assert_ok_result(events, "r1", "Replaced")
        self.assertEqual(self.memory()["human"]["value"], "Name: Bob\nLikes: coffee")
        system = self.system_text(self.mock.chat_requests()[1])
        self.assertIn("Likes: coffee", system)
        self.assertNotIn("Likes: tea", system)

        events = self.turn(
            "forget what I like",
            {"content": None, "tool_calls": [call(
                "core_memory_replace",
                {"label": "human", "old_content": "\nLikes: coffee", "new_content": "",
                 "request_heartbeat": True}, "r2")]},
            say("Forgotten."))
        self.assert_ok_result(events, "r2", "Deleted")
        block = self.memory()["human"]
        self.assertEqual(block["value"], "Name: Bob")
        self.assertEqual(block["chars"], len("Name: Bob"))
        system = self.system_text(self.mock.chat_requests()[-1])
        self.assertNotIn("Likes:", system)
        self.assertIn(f'<block label="human" chars="9/{block["limit"]}">', system)
        self.assert_all_requests_valid()


class ConversationSearchTest(FunctionTestCase):
    def test_include_all_searches_inner_monologue_and_function_traffic(self):
        self.create_agent()
        self.turn("remember this quietly",
                  {"content": "Privately noting the word heliotrope.", "tool_calls": [call(
                      "core_memory_append", {"label": "human", "content": "Likes marigolds",
                                             "request_heartbeat": True}, "m1")]},
                  say("Noted."))
        events = self.turn(
            "what did you think about?",
            {"content": None, "tool_calls": [call(
                "conversation_search", {"query": "heliotrope marigolds",
                                        "request_heartbeat": True}, "s1")]},
            {"content": None, "tool_calls": [call(
                "conversation_search", {"query": "heliotrope marigolds", "include_all": True,
                                        "request_heartbeat": True}, "s2")]},
            say("I thought about heliotrope."))
        self.assert_ok_result(events, "s1", "No results")
        # Function traffic includes these searches' own calls.
        found = self.assert_ok_result(events, "s2", "3 results",
                                      "(inner monologue / function call) Privately noting the "
                                      "word heliotrope.\ncore_memory_append(", "Likes marigolds")
        self.assertNotIn("I thought about", found["message"])
        # On the command line too.
        cli = json.loads(self.run_memgpt("recall", "search", "--agent", AGENT, "--json", "--all",
                                         "heliotrope", check=0).stdout)
        self.assertGreaterEqual(cli["total"], 2)
        self.assert_all_requests_valid()

    def test_search_finds_earlier_message_with_totals_and_pages(self):
        self.create_agent()
        for i in range(7):
            self.send(f"note {i}: the pineapple crate number {i}", agent=AGENT)
        self.send("something unrelated about weather", agent=AGENT)
        cli = json.loads(self.run_memgpt("recall", "search", "--agent", AGENT, "--json",
                                         "pineapple", check=0).stdout)
        # 7 user messages, plus the mock's 7 "You said: ..." replies.
        self.assertEqual(cli["total"], 14)

        events = self.turn(
            "what did I say about fruit?",
            {"content": None, "tool_calls": [call(
                "conversation_search",
                {"query": "pineapple", "request_heartbeat": True}, "s1")]},
            {"content": None, "tool_calls": [call(
                "conversation_search",
                {"query": "pineapple", "page": 2, "request_heartbeat": True}, "s2")]},
            say("You told me about pineapple crates."))
        first = self.assert_ok_result(events, "s1", "pineapple", "14 results",
                                      "page 0 of 3")
        self.assertNotIn("weather", first["message"])
        last = self.assert_ok_result(events, "s2", "14 results", "page 2 of 3")
        # Page 2 of 3 holds the remaining 4 of 14 (5 per page).
        self.assertEqual(last["message"].count("pineapple"), 4, last["message"])

        requests = self.mock.chat_requests()
        result = self.tool_message(requests[-2], "s1")
        self.assertEqual(result, first)
        self.assert_heartbeat_last(requests[-2])
        self.assertEqual(events[-1]["step_count"], 3)
        self.assert_all_requests_valid()

    def test_search_by_date(self):
        self.create_agent()
        self.send("alpha event on the first", agent=AGENT,
                  env={"MEMGPT_FAKE_NOW": epoch(2024, 3, 1)})
        self.send("beta event on the fifth", agent=AGENT,
                  env={"MEMGPT_FAKE_NOW": epoch(2024, 3, 5)})
        self.send("gamma event on the ninth", agent=AGENT,
                  env={"MEMGPT_FAKE_NOW": epoch(2024, 3, 9)})
        later = {"MEMGPT_FAKE_NOW": epoch(2024, 3, 20)}

        listed = json.loads(self.run_memgpt("recall", "list", "--agent", AGENT, "--json",
                                            check=0).stdout)
        beta = [r for r in listed if "beta" in r["text"]]
        self.assertTrue(beta)
        self.assertTrue(all(r["time"].startswith("2024-03-05") for r in beta), beta)

        events = self.turn(
            "what happened that week?",
            {"content": None, "tool_calls": [call(
                "conversation_search_date",
                {"start_date": "2024-03-04", "end_date": "2024-03-06",
                 "request_heartbeat": True}, "d1")]},
            {"content": None, "tool_calls": [call(
                "conversation_search_date",
                {"start_date": "2024-03-01", "end_date": "2024-03-09",
                 "request_heartbeat": True}, "d2")]},
            say("Beta happened."), env=later)
        one = self.assert_ok_result(events, "d1", "beta", "2024-03-05", "2 results")
        for other in ("alpha", "gamma", "2024-03-01", "2024-03-09", "2024-03-20"):
            self.assertNotIn(other, one["message"])
        both = self.assert_ok_result(events, "d2", "6 results", "alpha", "beta", "gamma")
        # A single day: both dates are inclusive.
        events = self.turn("and on the fifth?", {"content": None, "tool_calls": [call(
            "conversation_search_date",
            {"start_date": "2024-03-05", "end_date": "2024-03-05", "request_heartbeat": True},
            "d3")]}, say("Beta."), env=later)
        day = self.assert_ok_result(events, "d3", "2 results", "beta")
        self.assertNotIn("alpha", day["message"])
        # Oldest first.
        text = both["message"]
        self.assertLess(text.index("alpha"), text.index("beta"))
        self.assertLess(text.index("beta"), text.index("gamma"))
        # The time of the results is the clock MEMGPT_FAKE_NOW pinned.
        self.assertIn("2024-03-20", one["time"])
        self.assert_all_requests_valid()


class ArchivalTest(FunctionTestCase):
    def test_insert_then_search(self):
        self.create_agent()
        events = self.turn(
            "remember my dog",
            {"content": None, "tool_calls": [call(
                "archival_memory_insert",
                {"content": "The user's dog is a beagle named Biscuit.",
                 "request_heartbeat": True}, "a1")]},
            {"content": None, "tool_calls": [call(
                "archival_memory_search",
                {"query": "dog named Biscuit", "request_heartbeat": True}, "a2")]},
            say("Biscuit the beagle, got it."))
        self.assert_ok_result(events, "a1", "archival")
        found = self.assert_ok_result(events, "a2", "Biscuit", "1 result")
        self.assertIn("beagle", found["message"])

        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 3)
        self.assertIn("Archival memory: 0 passages", self.system_text(requests[0]))
        self.assertIn("Archival memory: 1 passages", self.system_text(requests[1]))
        self.assertEqual(self.tool_message(requests[2], "a2"), found)

        cli = json.loads(self.run_memgpt("archival", "search", "--agent", AGENT, "--json",
                                         "Biscuit", check=0).stdout)
        self.assertEqual(cli["total"], 1)
        self.assertEqual(cli["results"][0]["text"], "The user's dog is a beagle named Biscuit.")
        self.assert_all_requests_valid()


class PauseHeartbeatsTest(FunctionTestCase):
    def test_pause(self):
        self.create_agent()
        events = self.turn(
            "be quiet for a while",
            {"content": None, "tool_calls": [
                call("pause_heartbeats", {"minutes": 30}, "p1"),
                call("send_message", {"message": "I'll be quiet."}, "p2")]})
        self.assert_ok_result(events, "p1", "30 minutes")
        self.assertEqual(events[-1]["step_count"], 1)
        self.assertEqual(len(self.mock.chat_requests()), 1)
        self.assert_all_requests_valid()


# --------------------------------------------------------------------------
# The step loop.
# --------------------------------------------------------------------------

class LoopTest(FunctionTestCase):
    def test_heartbeat_chaining(self):
        self.create_agent()
        events = self.turn(
            "chain please",
            {"content": "step one", "tool_calls": [call(
                "archival_memory_insert", {"content": "first fact", "request_heartbeat": True},
                "h1")]},
            {"content": "step two", "tool_calls": [call(
                "archival_memory_insert", {"content": "second fact", "request_heartbeat": False},
                "h2")]},
            say("never used"))
        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 2, "request_heartbeat=false must end the turn")
        payload = self.assert_heartbeat_last(requests[1])
        self.assertIn("heartbeat", payload["reason"])
        # The heartbeat follows the tool result of the call that asked for it.
        self.assertEqual(requests[1]["messages"][-2]["role"], "tool")
        self.assertEqual(requests[1]["messages"][-2]["tool_call_id"], "h1")
        self.assertEqual(events[-1]["step_count"], 2)
        self.assertEqual(self.mock.pending(), 1)
        self.assertEqual(of_type(events, "assistant_message"), [])
        self.assert_all_requests_valid()

    def test_several_calls_in_one_response_run_in_order(self):
        self.create_agent("--human", "Name: Kim")
        events = self.turn(
            "I like chess",
            {"content": "Three things.", "tool_calls": [
                call("core_memory_append", {"label": "human", "content": "Likes: chess"}, "m1"),
                call("core_memory_replace", {"label": "human", "old_content": "chess",
                                             "new_content": "chess and go"}, "m2"),
                call("send_message", {"message": "Chess and go, lovely."}, "m3")]})
        kinds = [(e["message_type"], e.get("tool_call_id") or
                  (e.get("tool_call") or {}).get("tool_call_id"))
                 for e in events if e["message_type"] in
                 ("tool_call_message", "tool_return_message")]
        self.assertEqual(kinds, [
            ("tool_call_message", "m1"), ("tool_return_message", "m1"),
            ("tool_call_message", "m2"), ("tool_return_message", "m2"),
            ("tool_call_message", "m3"), ("tool_return_message", "m3")])
        # m2 only succeeds if m1 ran before it.
        self.assert_ok_result(events, "m1")
        self.assert_ok_result(events, "m2", "Replaced")
        self.assert_ok_result(events, "m3")
        self.assertEqual(self.memory()["human"]["value"], "Name: Kim\nLikes: chess and go")
        self.assertEqual(len(self.mock.chat_requests()), 1)

        # The next request carries the assistant message and one result per call, in order.
        self.turn("thanks", say("You're welcome."))
        body = self.mock.chat_requests()[-1]
        roles = [m["role"] for m in body["messages"]]
        i = next(k for k, m in enumerate(body["messages"])
                 if m["role"] == "assistant" and m.get("tool_calls"))
        self.assertEqual([c["id"] for c in body["messages"][i]["tool_calls"]],
                         ["m1", "m2", "m3"])
        self.assertEqual(roles[i + 1:i + 4], ["tool", "tool", "tool"])
        self.assertEqual([body["messages"][i + k]["tool_call_id"] for k in (1, 2, 3)],
                         ["m1", "m2", "m3"])
        self.assert_all_requests_valid()

    def test_failed_call_does_not_stop_later_calls(self):
        self.create_agent()
        events = self.turn(
            "mixed",
            {"content": None, "tool_calls": [
                call("core_memory_append", {"label": "nope", "content": "x"}, "f1"),
                call("archival_memory_insert", {"content": "kept despite the failure"}, "f2"),
                call("send_message", {"message": "partly done"}, "f3")]},
            say("fixed it", "f4"))
        _, first = self.returns(events)["f1"]
        self.assertEqual(first["status"], "Failed")
        self.assert_ok_result(events, "f2")
        self.assert_ok_result(events, "f3")
        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 2, "a failed call means a heartbeat and another step")
        self.assertEqual([m.get("tool_call_id") for m in requests[1]["messages"][-4:-1]],
                         ["f1", "f2", "f3"])
        self.assert_heartbeat_last(requests[1], "fail")
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                         ["partly done", "fixed it"])
        cli = json.loads(self.run_memgpt("archival", "search", "--agent", AGENT, "--json",
                                         "kept despite the failure", check=0).stdout)
        self.assertEqual(cli["total"], 1)
        self.assert_all_requests_valid()

    def assert_usage_matches_requests(self, usage, bodies):
        self.assertEqual(usage["step_count"], len(bodies),
                         "step_count must count every LLM call of this send")
        # The OpenAI mock bills OpenAI models in real tokens; the other
        # mocks bill by the formula, whatever the model is called.
        count = count_prompt_tokens if PROVIDER == "openai" else formula_prompt_tokens
        self.assertEqual(usage["prompt_tokens"], sum(count(b) for b in bodies))
        self.assertEqual(usage["total_tokens"],
                         usage["prompt_tokens"] + usage["completion_tokens"])

    def test_usage_statistics(self):
        self.create_agent()
        events = self.turn(
            "count me",
            {"content": None, "tool_calls": [call(
                "archival_memory_insert", {"content": "one", "request_heartbeat": True}, "k1")]},
            {"content": None, "tool_calls": [call(
                "archival_memory_insert", {"content": "two", "request_heartbeat": True}, "k2")]},
            say("three steps"))
        self.assertEqual(len(of_type(events, "usage_statistics")), 1)
        self.assert_usage_matches_requests(events[-1], self.mock.chat_requests())

    def test_usage_statistics_include_reflection(self):
        self.create_agent("--reflect-every", "1")
        events = self.turn(
            "count me",
            {"content": None, "tool_calls": [call(
                "archival_memory_insert", {"content": "one", "request_heartbeat": True}, "k1")]},
            say("two steps"))  # then the reflection turn (mock default reply)
        bodies = self.mock.chat_requests()
        self.assertEqual(len(bodies), 3)
        self.assertEqual(event_payload(bodies[2]["messages"][-1])["type"], "system_alert")
        self.assertEqual(len(of_type(events, "usage_statistics")), 1)
        self.assert_usage_matches_requests(events[-1], bodies)

    def test_step_limit(self):
        self.create_agent("--step-limit", "2")
        def looping(n):
            return {"content": "again", "tool_calls": [call(
                "conversation_search", {"query": "anything", "request_heartbeat": True},
                f"x{n}")]}
        for n in range(5):
            self.mock.push(looping(n))
        proc = self.send("loop forever", agent=AGENT, json_out=False)
        self.assertEqual(len(self.mock.chat_requests()), 2)
        self.assertEqual(proc.stdout, "", "system notices must not go to stdout")
        self.assertIn("Step limit reached", proc.stderr)

        for n in range(5, 10):
            self.mock.push(looping(n))
        events = self.turn("loop again")
        self.assertEqual(len(self.mock.chat_requests()), 4, "the limit is per event")
        notices = [e["content"] for e in of_type(events, "system_message")]
        self.assertTrue(any("Step limit reached" in n for n in notices), events)
        self.assertEqual(events[-1]["step_count"], 2)
        self.assert_all_requests_valid()

    def test_reflection_turn(self):
        self.create_agent("--reflect-every", "2")
        self.turn("first message")
        self.assertEqual(len(self.mock.chat_requests()), 1)

        events = self.turn("second message")
        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 3, "the second user message must trigger a reflection")
        last = requests[2]["messages"][-1]
        self.assertEqual(last["role"], "user")
        payload = event_payload(last)
        self.assertEqual(payload["type"], "system_alert")
        self.assertIn("core memory", payload["message"])
        self.assertIn("You said: second message",
                      [e["content"] for e in of_type(events, "assistant_message")])

        self.turn("third message")
        self.assertEqual(len(self.mock.chat_requests()), 4, "no reflection after the third")
        self.turn("fourth message")
        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 6, "reflection again after the fourth")
        self.assertEqual(event_payload(requests[5]["messages"][-1])["type"], "system_alert")
        self.assert_all_requests_valid()


# --------------------------------------------------------------------------
# Model mistakes: each one a Failed result, then a heartbeat, exit 0.
# --------------------------------------------------------------------------

class BadModelInputTest(FunctionTestCase):
    def setUp(self):
        super().setUp()
        self.create_agent("--human", "Name: Zed")
        # These tests hold one long conversation (dozens of turns) that the
        # agent, with the model's real window, never needs to flush; the
        # mock's own default window (8,192) is smaller than that model's.
        if hasattr(self.mock, "set_window"):
            self.mock.set_window("gpt-4o-mini", 128000)

    def fail_call(self, name, arguments, *expected, text="hi"):
        """Runs a turn whose model makes one bad call; checks the Failed
        result, the heartbeat after it, and returns the result message."""
        before = len(self.mock.chat_requests())
        self.serial = getattr(self, "serial", 0) + 1
        bad, ok = f"bad{self.serial}", f"ok{self.serial}"
        events = self.turn(text, {"content": None, "tool_calls": [call(name, arguments, bad)]},
                           say("recovered", ok))
        self.assertIn(bad, self.returns(events), events)
        ev, result = self.returns(events)[bad]
        self.assertEqual(ev["status"], "error", ev)
        self.assertEqual(result["status"], "Failed", result)
        message = result["message"]
        self.assertTrue(message.strip(), "a Failed result needs a message")
        for s in expected:
            self.assertIn(s.lower(), message.lower())
        for leak in ("sqlite", "fts5", "syntax error", "segmentation", "(null)"):
            self.assertNotIn(leak, message.lower())

        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), before + 2, "a failed call must be followed by "
                                                    "another LLM call")
        follow = requests[-1]
        self.assertEqual(self.tool_message(follow, bad), result)
        self.assert_heartbeat_last(follow, "fail")
        self.assertEqual([e["content"] for e in of_type(events, "assistant_message")],
                         ["recovered"])
        self.assertEqual(events[-1]["step_count"], 2)
        self.assert_all_requests_valid()
        return message

    @only_providers("openai")  # Anthropic tool_use input is always an object
    def test_non_json_arguments(self):
        self.fail_call("core_memory_append", '{"label": "human", content: oops', "json")
        self.assertEqual(self.memory()["human"]["value"], "Name: Zed")

    @only_providers("openai")  # Anthropic tool_use input is always an object
    def test_arguments_not_an_object(self):
        self.fail_call("send_message", '["hello"]', "json object")

    def test_unknown_function(self):
        message = self.fail_call("delete_all_memories", {"really": True},
                                 "delete_all_memories")
        # A useful message names the functions that do exist.
        self.assertIn("send_message", message)

    def test_missing_argument(self):
        self.fail_call("core_memory_append", {"label": "human"}, "content", "missing")
        self.fail_call("send_message", {}, "message")
        self.fail_call("conversation_search_date", {"start_date": "2024-01-01"}, "end_date")

    def test_wrong_typed_argument(self):
        self.fail_call("core_memory_append", {"label": 7, "content": "x"}, "label", "string")
        self.fail_call("conversation_search", {"query": "Zed", "page": "first"}, "page",
                       "integer")
        self.fail_call("conversation_search", {"query": "Zed", "include_all": "maybe"},
                       "include_all", "true or false")
        self.fail_call("conversation_search", {"query": "Zed", "include_all": 1},
                       "include_all", "true or false")
        self.fail_call("send_message", {"message": ["a", "b"]}, "message", "string")
        self.assertEqual(self.memory()["human"]["value"], "Name: Zed")

    def test_over_limit_append(self):
        limit = self.memory()["human"]["limit"]
        self.fail_call("core_memory_append", {"label": "human", "content": "x" * (limit + 1)},
                       "limit", str(limit))
        self.assertEqual(self.memory()["human"]["value"], "Name: Zed")
        self.fail_call("core_memory_replace", {"label": "human", "old_content": "Zed",
                                               "new_content": "z" * limit}, "limit")
        self.assertEqual(self.memory()["human"]["value"], "Name: Zed")

    def test_unknown_label(self):
        message = self.fail_call("core_memory_append", {"label": "hobbies", "content": "chess"},
                                 "hobbies")
        self.assertIn("human", message)  # names the blocks that exist
        self.fail_call("core_memory_replace",
                       {"label": "nope", "old_content": "a", "new_content": "b"}, "nope")
        self.assertEqual(set(self.memory()), {"persona", "human"})

    def test_old_content_absent(self):
        self.fail_call("core_memory_replace",
                       {"label": "human", "old_content": "Name: Alice", "new_content": "x"},
                       "not found")
        self.assertEqual(self.memory()["human"]["value"], "Name: Zed")

    def test_bad_dates(self):
        for start, end in (("yesterday", "2024-01-02"), ("2024-13-01", "2024-12-31"),
                           ("2024-02-30", "2024-03-01"), ("2024-01-01", "")):
            with self.subTest(start=start, end=end):
                self.fail_call("conversation_search_date",
                               {"start_date": start, "end_date": end}, "date")
        self.fail_call("conversation_search_date",
                       {"start_date": "2024-05-01", "end_date": "2024-04-01"}, "before")

    def test_page_past_end(self):
        for i in range(3):
            self.send(f"quokka sighting {i}", agent=AGENT)
        message = self.fail_call("conversation_search", {"query": "quokka", "page": 4},
                                 "page 4", "past the end")
        self.assertIn("2 pages", message)  # 3 user messages + 3 replies
        self.run_memgpt("archival", "insert", "--agent", AGENT, "quokkas live on Rottnest",
                        check=0)
        self.fail_call("archival_memory_search", {"query": "quokka", "page": 3}, "past the end")
        self.fail_call("conversation_search", {"query": "quokka", "page": -1}, "page")

    def test_fts_syntax_in_queries(self):
        self.send("the zebra ate my homework", agent=AGENT)
        self.run_memgpt("archival", "insert", "--agent", AGENT,
                        "A zebra has black and white stripes.", check=0)
        # Queries with a real word in them are searched as plain words.
        n = 0
        for query in ('"zebra', 'zebra*', '(zebra', 'zebra)', 'zebra NEAR homework',
                      'zebra OR', 'NEAR(zebra homework)', 'zebra AND NOT', '^zebra',
                      'search_text:zebra', 'zebra"s "stripes'):
            with self.subTest(query=query):
                for fn in ("conversation_search", "archival_memory_search"):
                    n += 1
                    events = self.turn("look it up", {"content": None, "tool_calls": [call(
                        fn, {"query": query, "request_heartbeat": True}, f"q{n}")]},
                        say("done", f"s{n}"))
                    result = self.assert_ok_result(events, f"q{n}", "zebra")
                    self.assertNotIn("No results", result["message"])
        # Queries that are nothing but syntax fail cleanly.
        for query in ('"', '*', '()', '"*"'):
            with self.subTest(query=query):
                self.fail_call("conversation_search", {"query": query}, "query")
        # Operator words alone are just words (or fail cleanly); never an SQL error.
        for query in ("NEAR", "OR", "AND", "NOT"):
            with self.subTest(query=query):
                n += 1
                events = self.turn("look", {"content": None, "tool_calls": [call(
                    "conversation_search", {"query": query, "request_heartbeat": True},
                    f"w{n}")]}, say("done", f"s{n}"))
                _, result = self.returns(events)[f"w{n}"]
                for leak in ("sqlite", "fts5", "syntax error"):
                    self.assertNotIn(leak, result["message"].lower())
        self.assertEqual(self.mock.pending(), 0)
        self.assert_all_requests_valid()

    def test_huge_page_number(self):
        for i in range(3):
            self.send(f"wombat burrow {i}", agent=AGENT)
        # 2**32 must not wrap around to page 0 (or any other real page).
        self.fail_call("conversation_search", {"query": "wombat", "page": 2 ** 32}, "page")
        self.fail_call("conversation_search", {"query": "wombat", "page": 2 ** 32 + 1}, "page")
        self.run_memgpt("archival", "insert", "--agent", AGENT, "wombats dig burrows", check=0)
        self.fail_call("archival_memory_search", {"query": "wombat", "page": 2 ** 32}, "page")

    def test_empty_edits(self):
        self.fail_call("core_memory_append", {"label": "human", "content": ""}, "empty")
        self.fail_call("core_memory_replace",
                       {"label": "human", "old_content": "", "new_content": "x"}, "old_content")
        self.fail_call("conversation_search", {"query": "  "}, "query")
        self.fail_call("archival_memory_search", {"query": ""}, "query")
        self.fail_call("archival_memory_insert", {"content": " "}, "empty")
        self.assertEqual(self.memory()["human"]["value"], "Name: Zed")

    def test_bad_pause(self):
        self.fail_call("pause_heartbeats", {"minutes": 0}, "minutes")
        self.fail_call("pause_heartbeats", {"minutes": 10000}, "minutes")
        self.fail_call("pause_heartbeats", {}, "minutes")

    def test_empty_message(self):
        self.fail_call("send_message", {"message": "   "}, "empty")


if __name__ == "__main__":
    main()
