#!/usr/bin/env python3
"""Tool rules (Letta's, as Agent Files carry them) enforced by the loop: the
tools offered to the model at each step (read from the requests the mock
got), calls that break a rule answered with a failed result instead of
running, and turns continued or ended as the rules say."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import REPO, MemgptTestCase, main  # noqa: E402
from serve import ServerTestCase  # noqa: E402

AGENT = "ruled"
EVERYTHING = os.path.join(REPO, "tests", "mcp", "node_modules", "@modelcontextprotocol",
                          "server-everything", "dist", "index.js")


def call(name, arguments, call_id):
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id="say", heartbeat=False):
    args = {"message": text}
    if heartbeat:
        args["request_heartbeat"] = True
    return {"content": None, "tool_calls": [call("send_message", args, call_id)]}


class ToolRulesTest(MemgptTestCase):
    providers = ("openai",)

    def setUp(self):
        super().setUp()
        self.run_memgpt("agents", "create", AGENT, check=0)

    def rules(self, *rules):
        args = []
        for r in rules:
            args += ["--tool-rule", r]
        self.run_memgpt("agents", "set", AGENT, *args, check=0)

    def turn(self, *responses):
        for r in responses:
            self.mock.push(r)
        return self.send("go", agent=AGENT, json_out=True)

    def offered(self):
        """The tool names of each request, in order."""
        return [[t["function"]["name"] for t in body.get("tools", [])]
                for body in self.mock.chat_requests()]

    def last_heartbeat(self, request):
        payload = json.loads(self.mock.chat_requests()[request]["messages"][-1]["content"])
        self.assertEqual(payload["type"], "heartbeat", payload)
        return payload["reason"]

    def test_run_first_offers_only_that_tool_and_refuses_others(self):
        self.rules("run_first:archival_memory_search")
        events = self.turn(say("Hello without searching.", "early"),
                           {"content": None, "tool_calls": [call(
                               "archival_memory_search",
                               {"query": "hello", "request_heartbeat": True}, "a1")]},
                           say("Now hello."))
        offered = self.offered()
        self.assertEqual(offered[0], ["archival_memory_search"])
        self.assertIn("send_message", offered[1])
        # The refused reply never reached the user; the allowed one did.
        replies = [e["content"] for e in events if e.get("message_type") == "assistant_message"]
        self.assertEqual(replies, ["Now hello."])
        refused = self.tool_results()["early"]
        self.assertEqual(refused["status"], "Failed")
        self.assertIn("tool rules do not allow send_message", refused["message"])
        self.assertIn("archival_memory_search", refused["message"])
        self.assertEqual(self.tool_results()["a1"]["status"], "OK")
        self.assert_all_requests_valid()

    def test_exit_loop_ends_the_turn_even_when_a_heartbeat_is_asked(self):
        self.rules("exit_loop:core_memory_append")
        events = self.turn({"content": None, "tool_calls": [call(
            "core_memory_append", {"label": "human", "content": "likes kites",
                                   "request_heartbeat": True}, "c1")]})
        self.assertEqual(len(self.mock.chat_requests()), 1)
        self.assertEqual(events[-1]["stop_reason"], "end_turn")

    def test_continue_loop_and_required_before_exit_keep_the_turn_going(self):
        self.rules("continue_loop:conversation_search", "required_before_exit:core_memory_append")
        self.turn({"content": None, "tool_calls": [call("conversation_search", {"query": "x"},
                                                        "s1")]},
                  say("Done?"),
                  {"content": None, "tool_calls": [call(
                      "core_memory_append", {"label": "human", "content": "was searched"},
                      "c1")]})
        self.assertEqual(len(self.mock.chat_requests()), 3)
        self.assertIn("always continues", self.last_heartbeat(1))
        self.assertIn("core_memory_append before this turn ends", self.last_heartbeat(2))

    def test_children_parents_and_counts(self):
        self.rules("constrain_child_tools:conversation_search:send_message",
                   "parent_last_tool:archival_memory_search:archival_memory_insert",
                   "max_count_per_step:archival_memory_search:1")
        self.turn({"content": None, "tool_calls": [call("archival_memory_search",
                                                        {"query": "x", "request_heartbeat": True},
                                                        "a1")]},
                  {"content": None, "tool_calls": [call("conversation_search",
                                                        {"query": "y", "request_heartbeat": True},
                                                        "s1")]},
                  {"content": None, "tool_calls": [call("archival_memory_insert",
                                                        {"content": "z"}, "i1")]},
                  say("Fine."))
        first, second, third, fourth = self.offered()
        # Before any call: archival_memory_insert waits for its parent.
        self.assertNotIn("archival_memory_insert", first)
        self.assertIn("archival_memory_search", first)
        # Right after the parent: allowed; the search itself is used up.
        self.assertIn("archival_memory_insert", second)
        self.assertNotIn("archival_memory_search", second)
        # After conversation_search: only its child.
        self.assertEqual(third, ["send_message"])
        self.assertEqual(self.tool_results()["i1"]["status"], "Failed")
        self.assertIn("after conversation_search", self.tool_results()["i1"]["message"])
        self.assertNotIn("archival_memory_search", fourth)
        shown = json.loads(self.run_memgpt("agents", "show", AGENT, "--json", check=0).stdout)
        self.assertEqual(shown["passages"], 0, "a refused call must not run")

    def test_rules_are_checked_when_set(self):
        proc = self.run_memgpt("agents", "set", AGENT, "--tool-rule", "max_count_per_step:x:0")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("max_count_limit must be >= 1", proc.stderr)
        proc = self.run_memgpt("agents", "set", AGENT, "--tool-rules", '[{"type": "nope"}]')
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("needs a tool_name", proc.stderr)
        self.run_memgpt("agents", "set", AGENT, "--tool-rules",
                        '[{"tool_name": "send_message", "type": "exit_loop"}]', check=0)
        shown = json.loads(self.run_memgpt("agents", "show", AGENT, "--json", check=0).stdout)
        self.assertEqual(shown["tool_rules"], [{"tool_name": "send_message", "type": "exit_loop"}])
        self.run_memgpt("agents", "set", AGENT, "--tool-rules", "[]", check=0)
        shown = json.loads(self.run_memgpt("agents", "show", AGENT, "--json", check=0).stdout)
        self.assertEqual(shown["tool_rules"], [])

    def test_conditional_rule_follows_the_tool_output(self):
        if not os.path.exists(EVERYTHING):
            self.fail("the MCP test servers are missing: make test-deps installs them")
        self.run_memgpt("mcp", "add", "every", "--", "node", EVERYTHING, "stdio", check=0)
        self.run_memgpt("tools", "attach", "--agent", AGENT, "every/echo", check=0)
        self.run_memgpt("agents", "set", AGENT, "--tool-rules", json.dumps([{
            "tool_name": "echo", "type": "conditional", "default_child": "send_message",
            "child_output_mapping": {"Echo: left": "core_memory_append",
                                     "Echo: right": "archival_memory_insert"}}]), check=0)
        self.turn({"content": None, "tool_calls": [call("echo", {"message": "right",
                                                                 "request_heartbeat": True}, "e1")]},
                  {"content": None, "tool_calls": [call("archival_memory_insert",
                                                        {"content": "went right",
                                                         "request_heartbeat": True}, "i1")]},
                  {"content": None, "tool_calls": [call("echo", {"message": "elsewhere",
                                                                 "request_heartbeat": True}, "e2")]},
                  say("Done."))
        offered = self.offered()
        self.assertEqual(offered[1], ["archival_memory_insert"])
        self.assertEqual(offered[3], ["send_message"])
        self.assertEqual(self.tool_results()["i1"]["status"], "OK")


class ToolRulesApiTest(ServerTestCase):
    def test_patch_sets_and_checks_rules(self):
        self.start_server()
        status, agent, _ = self.http("POST", "/v1/agents/", body={
            "name": "api-ruled", "tool_rules": [{"tool_name": "send_message",
                                                  "type": "exit_loop"}]})
        self.assertEqual(status, 200, agent)
        self.assertEqual(agent["tool_rules"], [{"tool_name": "send_message", "type": "exit_loop"}])
        rules = [{"tool_name": "conversation_search", "type": "constrain_child_tools",
                  "children": ["send_message"]}]
        status, patched, _ = self.http("PATCH", f"/v1/agents/{agent['id']}",
                                       body={"tool_rules": rules})
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["tool_rules"], rules)
        status, body, _ = self.http("PATCH", f"/v1/agents/{agent['id']}",
                                    body={"tool_rules": [{"tool_name": "x", "type": "bogus"}]})
        self.assertEqual(status, 422, body)
        self.assertIn("unknown type", json.dumps(body))
        status, body, _ = self.http("PATCH", f"/v1/agents/{agent['id']}",
                                    body={"tool_rules": {"not": "a list"}})
        self.assertEqual(status, 422, body)


if __name__ == "__main__":
    main()
