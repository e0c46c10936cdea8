"""`memgpt serve` driven by Letta's official TypeScript SDK
(@letta-ai/letta-client, pinned in tests/sdk/package.json), against the
strict OpenAI mock. Each test runs one scenario of tests/sdk/scenarios.mjs;
the assertions about what the SDK sees are there."""

import json
import sqlite3
import os

from harness import main
from serve import ServerTestCase

PASSWORD = "s3cret-test-password"
AGENT_FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                           "shared", "data", "agent-files")


class SdkTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def test_create_send_read(self):
        agent = self.sdk("basic")["agent_id"]
        self.assert_all_requests_valid()
        # The CLI sees the agent the server made, by name, with its id.
        shown = json.loads(self.run_memgpt("agents", "show", "basic", "--json", check=0).stdout)
        self.assertEqual(shown["id"], agent)

    def test_streaming(self):
        self.assertGreater(self.sdk("stream")["pieces"], 1)
        self.assert_all_requests_valid()

    def test_paging_500_messages(self):
        result = self.sdk("paging", {"turns": 170})
        self.assertGreaterEqual(result["messages"], 500)

    def test_memory_and_archival(self):
        self.sdk("memory")

    def test_context_tools_models(self):
        self.sdk("context")

    def test_agents_update_list_delete(self):
        self.sdk("agents")

    def test_typed_errors(self):
        self.sdk("errors")

    def test_async_run(self):
        self.sdk("async_run")

    def test_concurrent_clients(self):
        self.assertEqual(self.sdk("concurrent")["agents"], 21)

    def test_agent_files(self):
        files = [os.path.join(AGENT_FILES, f) for f in ("memgpt_agent.af",
                                                        "deep_research_agent.af", "loop.af")]
        report = self.sdk("agentfile", {"files": files})
        loop = report["loop.af"]
        self.assertEqual(loop["blocks"], 9)
        self.assertIn("memory_rethink", loop["tools"])
        self.assertNotIn("web_search", loop["tools"])
        self.assertEqual(report["memgpt_agent.af"]["blocks"], 2)

    def test_reset_and_summarize(self):
        self.sdk("reset")

    def test_cancel(self):
        proc = self.run_memgpt("agents", "create", "slow", check=0)
        agent = json.loads(self.run_memgpt("agents", "show", "slow", "--json", check=0).stdout)["id"]
        # Every step calls a function and asks for another step, slowly: the
        # turn would go on to the step limit unless cancelled.
        for i in range(10):
            self.mock.push({"delay": 0.3, "content": f"step {i}", "tool_calls": [
                {"name": "conversation_search",
                 "arguments": json.dumps({"query": "anything", "request_heartbeat": True})}]})
        self.sdk("cancel", {"agent_id": agent})
        self.assertGreater(self.mock.pending(), 0, "the turn stopped early")
        self.assertIsNotNone(proc)


class AuthTest(ServerTestCase):
    def test_password(self):
        self.start_server(env={"MEMGPT_SERVER_PASSWORD": PASSWORD})
        self.sdk("auth", password=PASSWORD)
        # The password never reaches the log.
        self.assertFalse(any(PASSWORD in line for line in self.server.log))


if __name__ == "__main__":
    main()
