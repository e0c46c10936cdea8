#!/usr/bin/env python3
"""Agents that message each other: Letta's three functions, enabled per
agent. The mock LLM answers every agent's requests from one queue, so each
test scripts them in the order the turns happen (the sender's step, the
receiver's turn, the sender's next step)."""

import fcntl
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import MemgptTestCase, main  # noqa: E402

WAIT = "send_message_to_agent_and_wait_for_reply"
ASYNC = "send_message_to_agent_async"
TAGS = "send_message_to_agents_matching_tags"


def call(name, arguments, call_id):
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id="say"):
    return {"content": None, "tool_calls": [call("send_message", {"message": text}, call_id)]}


def ask(name, call_id, **args):
    return {"content": None, "tool_calls": [call(name, {**args, "request_heartbeat": True},
                                                 call_id)]}


class AgentMessagingTest(MemgptTestCase):
    providers = ("openai",)

    def setUp(self):
        super().setUp()
        self.ids = {}
        for name in ("alice", "bob", "carol"):
            self.run_memgpt("agents", "create", name, check=0)
            shown = json.loads(self.run_memgpt("agents", "show", name, "--json", check=0).stdout)
            self.ids[name] = shown["id"]
        self.run_memgpt("tools", "attach", "--agent", "alice", WAIT, ASYNC, TAGS, check=0)

    def alice(self, *responses, env=None):
        for r in responses:
            self.mock.push(r)
        return self.send("go", agent="alice", json_out=True, env=env)

    def test_wait_for_reply_runs_the_other_agents_turn(self):
        events = self.alice(ask(WAIT, "w1", message="What is 2+2?", other_agent_id=self.ids["bob"]),
                            say("Four, Alice.", "bob-say"),
                            say("Bob says four."))
        bob_request = self.mock.chat_requests()[1]
        envelope = json.loads(bob_request["messages"][-1]["content"])
        self.assertEqual(envelope["type"], "agent_message")
        self.assertEqual(envelope["from_agent"], "alice")
        self.assertEqual(envelope["from_agent_id"], self.ids["alice"])
        self.assertEqual(envelope["message"], "What is 2+2?")
        result = json.loads(self.tool_results()["w1"]["message"])
        self.assertEqual(result, {"agent": "bob", "agent_id": self.ids["bob"],
                                  "reply": "Four, Alice."})
        # Alice's events are hers; Bob's reply is stored in Bob's history.
        replies = [e["content"] for e in events if e.get("message_type") == "assistant_message"]
        self.assertEqual(replies, ["Bob says four."])
        bob = self.run_memgpt("recall", "search", "--agent", "bob", "--all", "--json", "2+2",
                              check=0).stdout
        self.assertIn("What is 2+2?", bob)
        self.assert_all_requests_valid()

    def test_cycles_and_self_are_refused(self):
        self.run_memgpt("tools", "attach", "--agent", "bob", WAIT, check=0)
        self.alice(ask(WAIT, "w1", message="Ask me back", other_agent_id=self.ids["bob"]),
                   ask(WAIT, "w2", message="Back to you", other_agent_id=self.ids["alice"]),
                   say("Cannot ask Alice back.", "bob-say"),
                   ask(WAIT, "w3", message="Me?", other_agent_id=self.ids["alice"]),
                   say("Done."))
        results = self.tool_results()
        self.assertEqual(results["w2"]["status"], "Failed")
        self.assertIn("a cycle", results["w2"]["message"])
        self.assertEqual(json.loads(results["w1"]["message"])["reply"], "Cannot ask Alice back.")
        self.assertEqual(results["w3"]["status"], "Failed")
        self.assertIn("cannot message itself", results["w3"]["message"])

    def test_tags_reach_every_matching_agent(self):
        for name, tags in (("bob", ["helper"]), ("carol", ["helper", "cook"])):
            self.set_tags(name, tags)
        self.alice(ask(TAGS, "t1", message="Lunch ideas?", match_all=["helper"]),
                   say("Soup.", "b"), say("Curry.", "c"),
                   ask(TAGS, "t2", message="Who cooks?", match_all=["helper"],
                       match_some=["cook"]),
                   say("I do.", "c2"),
                   ask(TAGS, "t3", message="Anyone?", match_all=[]),
                   say("Done."))
        first = json.loads(self.tool_results()["t1"]["message"])
        self.assertEqual(first["matched"], 2)
        self.assertEqual({r["agent"]: r["reply"] for r in first["replies"]},
                         {"bob": "Soup.", "carol": "Curry."})
        second = json.loads(self.tool_results()["t2"]["message"])
        self.assertEqual([r["agent"] for r in second["replies"]], ["carol"])
        self.assertEqual(self.tool_results()["t3"]["status"], "Failed")

    def set_tags(self, name, tags):
        """Tags are set through the API (PATCH tags); the CLI has no flag for
        them, so this writes the column the API writes."""
        import sqlite3
        db = sqlite3.connect(os.path.join(self.home, "memgpt.db"))
        db.execute("UPDATE agents SET tags = ? WHERE name = ?", (json.dumps(tags), name))
        db.commit()
        db.close()

    def test_async_runs_after_the_senders_turn(self):
        events = self.alice(ask(ASYNC, "a1", message="FYI: the meeting moved.",
                                other_agent_id=self.ids["bob"]),
                            say("Told Bob."),
                            say("Noted, thanks.", "bob-say"))
        self.assertIn("sent to bob", self.tool_results()["a1"]["message"])
        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 3)
        last = json.loads(requests[2]["messages"][-1]["content"])
        self.assertEqual((last["type"], last["from_agent"]), ("agent_message", "alice"))
        replies = [e["content"] for e in events if e.get("message_type") == "assistant_message"]
        self.assertEqual(replies, ["Told Bob."])

    def test_an_async_receiver_may_answer_the_same_way(self):
        self.run_memgpt("tools", "attach", "--agent", "bob", ASYNC, check=0)
        self.alice(ask(ASYNC, "a1", message="Ping.", other_agent_id=self.ids["bob"]),
                   say("Pinged Bob."),
                   ask(ASYNC, "b1", message="Pong.", other_agent_id=self.ids["alice"]),
                   say("Ponged.", "bob-say"),
                   say("Got Bob's pong.", "alice-again"))
        requests = self.mock.chat_requests()
        self.assertEqual(len(requests), 5)
        self.assertIn("sent to alice", self.tool_results()["b1"]["message"])
        last = json.loads(requests[4]["messages"][-1]["content"])
        self.assertEqual((last["type"], last["from_agent"], last["message"]),
                         ("agent_message", "bob", "Pong."))

    def test_ids_are_compared_as_the_store_knows_them(self):
        self.alice(ask(WAIT, "w1", message="Me?", other_agent_id=self.ids["alice"].upper()
                       .replace("AGENT-", "agent-")),
                   say("Done."))
        self.assertIn("cannot message itself", self.tool_results()["w1"]["message"])

    def test_busy_receiver_is_waited_for_then_given_up(self):
        lock_dir = os.path.join(self.home, "locks")
        os.makedirs(lock_dir, exist_ok=True)
        with open(os.path.join(lock_dir, f"{self.ids['bob']}.lock"), "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            self.alice(ask(WAIT, "w1", message="Are you there?", other_agent_id=self.ids["bob"]),
                       say("Bob is busy."), env={"MEMGPT_AGENT_WAIT": "1"})
        result = self.tool_results()["w1"]
        self.assertEqual(result["status"], "Failed")
        self.assertIn("bob could not answer: agent 'bob' is busy", result["message"])

    def test_functions_are_opt_in(self):
        self.mock.push(ask(WAIT, "w1", message="hi", other_agent_id=self.ids["alice"]))
        self.mock.push(say("ok"))
        self.send("go", agent="bob", json_out=True)
        self.assertIn("no function named", self.tool_results()["w1"]["message"])
        offered = [t["function"]["name"] for t in self.mock.chat_requests()[0]["tools"]]
        self.assertNotIn(WAIT, offered)


if __name__ == "__main__":
    main()
