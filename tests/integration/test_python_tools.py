#!/usr/bin/env python3
"""Python tools from Agent Files: kept but never run on import, offered and
run in a limited python3 process once the user allows it, with only the
agent's own variables in the environment, and every way a tool can fail
(an exception, a loop, a memory hog) coming back to the model as a failed
result."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import API_KEY, MemgptTestCase, main  # noqa: E402
from serve import ServerTestCase  # noqa: E402

AGENT = "pythonista"


def call(name, arguments, call_id):
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id="say"):
    return {"content": None, "tool_calls": [call("send_message", {"message": text}, call_id)]}


def tool(name, source, properties=None, required=()):
    return {"id": f"tool-{name}", "name": name, "tool_type": "custom", "source_type": "python",
            "description": f"the {name} tool", "source_code": source, "tags": [],
            "json_schema": {"name": name, "description": f"the {name} tool", "parameters": {
                "type": "object", "properties": properties or {}, "required": list(required)}}}


class PythonToolsTest(MemgptTestCase):
    providers = ("openai",)

    def setUp(self):
        super().setUp()
        self.import_agent()

    def import_agent(self):
        self.marker = os.path.join(self.home, "module-level-code-ran")
        tools = [
            tool("roll", "import os\n"
                         f"open({self.marker!r}, 'w').close()\n"
                         "def roll(sides: int) -> str:\n"
                         "    return f\"rolled a d{sides}, seed {os.environ.get('DICE_SEED')}\"\n",
                 {"sides": {"type": "integer"}}, ["sides"]),
            tool("show_env", "import os\ndef show_env(agent_state: 'AgentState'):\n"
                             "    return {'env': sorted(os.environ), 'cwd': os.getcwd(),\n"
                             "            'agent_state': agent_state}\n"),
            tool("boom", "def boom(why: str):\n    raise ValueError(why)\n",
                 {"why": {"type": "string"}}),
            tool("chatty", "def chatty() -> str:\n    print('{\"ok\": true, \"result\": \"fake\"}')\n"
                           "    return 'the real result'\n"),
            tool("spin", "def spin():\n    while True:\n        pass\n"),
            tool("hog", "def hog():\n    return len(bytearray(8 << 30))\n"),
        ]
        doc = {"agents": [{"id": "agent-0", "name": AGENT, "system": "You are a test agent.",
                           "llm_config": {"model": "gpt-4o-mini", "model_endpoint_type": "openai",
                                          "context_window": 128000},
                           "tool_ids": [t["id"] for t in tools],
                           "tool_exec_environment_variables": {"DICE_SEED": "42"},
                           "messages": [], "in_context_message_ids": []}],
               "blocks": [], "tools": tools}
        path = os.path.join(self.home, "python.af")
        with open(path, "w") as f:
            json.dump(doc, f)
        self.imported = self.run_memgpt("agents", "import", path, check=0).stdout
        self.agent_file = path

    def offered(self):
        out = self.run_memgpt("tools", "list", "--agent", AGENT, "--json", check=0).stdout
        return {t["name"]: t for t in json.loads(out)}

    def turn(self, *calls, env=None):
        self.mock.push({"content": None, "tool_calls": [
            call(name, {**args, "request_heartbeat": True}, cid) for name, args, cid in calls]})
        self.mock.push(say("Done."))
        self.send("go", agent=AGENT, json_out=True, env=env)
        return self.tool_results()

    def test_kept_not_run_until_allowed(self):
        self.assertIn("Python tools are kept but never run", self.imported)
        self.assertNotIn("roll", self.offered())
        shown = json.loads(self.run_memgpt("agents", "show", AGENT, "--json", check=0).stdout)
        self.assertEqual(shown["tool_env"], {"DICE_SEED": "****"})
        self.assertFalse(shown["python_tools"])
        # A model that calls it anyway gets an unknown function.
        results = self.turn(("roll", {"sides": 6}, "r1"))
        self.assertEqual(results["r1"]["status"], "Failed")
        self.assertIn("no function named 'roll'", results["r1"]["message"])
        self.assertFalse(os.path.exists(self.marker), "imported code ran")

    def test_allowed_tools_run_with_their_own_environment(self):
        self.run_memgpt("tools", "enable-python", "--agent", AGENT, check=0)
        offered = self.offered()
        self.assertIn("request_heartbeat", offered["roll"]["parameters"]["properties"])
        results = self.turn(("roll", {"sides": 20}, "r1"), ("show_env", {}, "e1"),
                            ("chatty", {}, "c1"), ("boom", {"why": "no dice"}, "b1"),
                            env={"ANTHROPIC_API_KEY": "sk-stays-home"})
        self.assertEqual(results["r1"], {**results["r1"], "status": "OK",
                                         "message": "rolled a d20, seed 42"})
        seen = json.loads(results["e1"]["message"])
        self.assertIn("DICE_SEED", seen["env"])
        for leaked in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PATH", "HOME"):
            self.assertNotIn(leaked, seen["env"])
        self.assertNotIn(API_KEY, results["e1"]["message"])
        self.assertIsNone(seen["agent_state"])
        self.assertIn("memgpt-tool-", seen["cwd"])
        self.assertFalse(os.path.exists(seen["cwd"]), "the scratch folder is removed")
        self.assertEqual(results["c1"]["message"], "the real result")
        self.assertEqual(results["b1"]["status"], "Failed")
        self.assertEqual(results["b1"]["message"], "ValueError: no dice")
        with open(os.path.join(self.home, "logs", "python-tools.log")) as f:
            self.assertIn('"result": "fake"', f.read())

    def test_limits_stop_runaway_tools(self):
        self.run_memgpt("tools", "enable-python", "--agent", AGENT, check=0)
        results = self.turn(("spin", {}, "s1"), ("hog", {}, "h1"),
                            env={"MEMGPT_PYTHON_TIMEOUT": "2"})
        self.assertEqual(results["s1"]["status"], "Failed")
        self.assertIn("ran out of time (2 s)", results["s1"]["message"])
        self.assertEqual(results["h1"]["status"], "Failed")
        self.assertIn("MemoryError", results["h1"]["message"])
        self.run_memgpt("tools", "disable-python", "--agent", AGENT, check=0)
        self.assertNotIn("spin", self.offered())

    def test_tool_variables_are_set_and_removed(self):
        self.run_memgpt("agents", "set", AGENT, "--tool-env", "REGION=eu", "--tool-env",
                        "DICE_SEED=", check=0)
        shown = json.loads(self.run_memgpt("agents", "show", AGENT, "--json", check=0).stdout)
        self.assertEqual(shown["tool_env"], {"REGION": "****"})
        self.run_memgpt("tools", "enable-python", "--agent", AGENT, check=0)
        results = self.turn(("show_env", {}, "e1"))
        self.assertEqual(json.loads(results["e1"]["message"])["env"], ["REGION"])


class PythonToolsApiTest(ServerTestCase, PythonToolsTest):
    """The same switch and variables through the API's settings and secrets."""

    def test_api_settings_and_secrets(self):
        self.start_server()
        status, agents, _ = self.http("GET", f"/v1/agents/?name={AGENT}")
        agent = agents[0]["id"]
        self.assertEqual(agents[0]["secrets"][0]["key"], "DICE_SEED")
        self.assertEqual(agents[0]["secrets"][0]["value"], "****")
        status, body, _ = self.http("PATCH", f"/v1/agents/{agent}", body={
            "settings": {"python_tools": True}, "secrets": {"DICE_SEED": "7"}})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["settings"]["python_tools"])
        self.assertNotIn('"7"', json.dumps(body["secrets"]))
        self.assertIn("roll", [t["name"] for t in body["tools"]])
        self.mock.push({"content": None, "tool_calls": [
            call("roll", {"sides": 4, "request_heartbeat": True}, "r1")]})
        self.mock.push(say("Rolled."))
        status, reply, _ = self.http("POST", f"/v1/agents/{agent}/messages", body={
            "messages": [{"role": "user", "content": "roll"}]})
        self.assertEqual(status, 200, reply)
        self.assertEqual(self.tool_results()["r1"]["message"], "rolled a d4, seed 7")
        status, tools, _ = self.http("GET", f"/v1/agents/{agent}/tools")
        roll = next(t for t in tools if t["name"] == "roll")
        self.assertEqual((roll["tool_type"], roll["source_type"]), ("custom", "python"))
        status, body, _ = self.http("PATCH", f"/v1/agents/{agent}/tools/detach/{roll['id']}")
        self.assertEqual(status, 422, body)
        self.assertIn("switched on and off together", json.dumps(body))
        status, body, _ = self.http("PATCH", f"/v1/agents/{agent}",
                                    body={"settings": {"python_tools": "yes"}})
        self.assertEqual(status, 422, body)
        status, body, _ = self.http("PATCH", f"/v1/agents/{agent}",
                                    body={"secrets": {"A": 1}})
        self.assertEqual(status, 422, body)

    # The CLI cases run once, in PythonToolsTest.
    test_kept_not_run_until_allowed = None
    test_allowed_tools_run_with_their_own_environment = None
    test_limits_stop_runaway_tools = None
    test_tool_variables_are_set_and_removed = None


if __name__ == "__main__":
    main()
