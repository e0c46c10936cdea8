"""Agent Files (.af) through the CLI: `memgpt agents export` and `memgpt
agents import`, with Letta's published files (both forms), the round trip,
hostile files, and Letta's memory tools (memory_insert, memory_replace,
memory_rethink) working as our functions."""

import json
import os
import sqlite3
import tempfile

from harness import CHAT_PATH, main, MemgptTestCase

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                      "data", "agent-files")


def published(name):
    return os.path.join(SHARED, name)


def load(path):
    with open(path) as f:
        return json.load(f)


class AgentFileTest(MemgptTestCase):
    providers = ("openai",)

    def write(self, doc, name="test.af"):
        path = os.path.join(self.home, name)
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def show(self, name):
        return json.loads(self.run_memgpt("agents", "show", name, "--json", check=0).stdout)

    def memory(self, name):
        blocks = json.loads(self.run_memgpt("memory", "show", "--agent", name, "--json",
                                            check=0).stdout)
        return {b["label"]: b for b in blocks}

    def agent_names(self):
        return [a["name"] for a in json.loads(self.run_memgpt("agents", "list", "--json",
                                                              check=0).stdout)]

    def test_published_files(self):
        out = self.run_memgpt("agents", "import", published("memgpt_agent.af"), check=0).stdout
        self.assertIn("imported agent memgpt_agent", out)
        out = self.run_memgpt("agents", "import", published("deep_research_agent.af"),
                              check=0).stdout
        self.assertIn("web_search", out)  # reported as not available
        out = self.run_memgpt("agents", "import", published("loop.af"), check=0).stdout
        self.assertIn("2 messages, 2 in context", out)

        deep = self.show("deep-thought-research-agent")
        self.assertEqual(deep["model"], "anthropic/claude-sonnet-4-5-20250929")
        self.assertEqual(deep["context_window"], 100000)
        self.assertEqual(sorted(deep["unavailable_tools"]),
                         ["create_research_plan", "memory", "reset_research", "web_search"])
        blocks = self.memory("deep-thought-research-agent")
        self.assertTrue(blocks["persona"]["read_only"])
        self.assertEqual(blocks["research_citations"]["limit"], 5000)
        self.assertEqual(set(blocks), {"human", "persona", "research_citations", "research_plan"})

        loop = self.show("Loop")
        self.assertEqual(sorted(loop["functions"]),
                         ["memory_insert", "memory_replace", "memory_rethink"])
        self.assertTrue(loop["custom_system_prompt"])
        self.assertEqual(loop["tags"], ["origin:letta-chat", "view:letta-chat"])
        self.assertEqual(len(self.memory("Loop")), 9)
        self.assertNotIn("human", self.memory("Loop"), "no block the file does not have")
        # The greeting is back in the window as the call it was, with its result.
        recall = json.loads(self.run_memgpt("recall", "list", "--agent", "Loop", "--json",
                                            check=0).stdout)
        self.assertEqual([m["role"] for m in recall], ["assistant", "tool"])

    def test_round_trip(self):
        self.run_memgpt("agents", "create", "ana", "--persona", "I am Ana's assistant.",
                        check=0)
        self.run_memgpt("memory", "set", "--agent", "ana", "--limit", "300", "--read-only",
                        "notes", "Ana likes tea.", check=0)
        self.send("My sister lives in Oslo.", agent="ana")
        self.send("She is called Quiltrude.", agent="ana")
        first = os.path.join(self.home, "ana.af")
        self.run_memgpt("agents", "export", "ana", "-o", first, check=0)
        other = tempfile.mkdtemp(prefix="memgpt-test-other-")
        self.addCleanup(__import__("shutil").rmtree, other, True)
        env = {"MEMGPT_HOME": other}
        proc = self.run_memgpt("--home", other, "agents", "import", first, env=env)
        # run_memgpt puts its own --home first; use the other home explicitly.
        self.assertEqual(proc.returncode, 0, proc.stderr)
        second = os.path.join(self.home, "ana2.af")
        self.run_memgpt("--home", other, "agents", "export", "ana", "-o", second, check=0)
        a, b = (load(p) for p in (first, second))
        for d in (a, b):  # timestamps of the file and of the agent (its system message)
            d.pop("created_at")
            d["agents"][0]["messages"][0].pop("created_at")
        self.assertEqual(a, b)
        agent = a["agents"][0]
        self.assertEqual(len(agent["messages"]), 1 + 6)  # the system message, then 2 turns
        self.assertEqual(agent["in_context_message_ids"][0], "message-0")
        notes = [x for x in a["blocks"] if x["label"] == "notes"][0]
        self.assertEqual((notes["limit"], notes["read_only"]), (300, True))

    def test_hostile_files_leave_nothing(self):
        good = load(published("loop.af"))
        cases = {
            "not json": "{agents: [",
            "wrong top type": "[1, 2]",
            "no agents": {"agents": []},
            "agent not an object": {"agents": [5]},
            "missing agent id": {"agents": [{"name": "x"}]},
            "dangling block": {"agents": [{"id": "a", "block_ids": ["block-9"]}], "blocks": []},
            "dangling tool": {"agents": [{"id": "a", "tool_ids": ["tool-9"]}], "tools": []},
            "dangling context id": {"agents": [{"id": "a", "in_context_message_ids": ["m-1"],
                                                "messages": []}]},
            "bad role": {"agents": [{"id": "a", "messages": [
                {"id": "m", "role": "wizard", "content": "x"}]}]},
            "result without call": {"agents": [{"id": "a", "messages": [
                {"id": "m", "role": "tool", "content": "x", "tool_call_id": "c1"}]}]},
            "call without result in context": {"agents": [{"id": "a", "messages": [
                {"id": "m", "role": "assistant", "content": "x", "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "send_message", "arguments": "{}"}}]}],
                "in_context_message_ids": ["m"]}]},
            "over the limit": {"agents": [{"id": "a", "block_ids": ["b"]}], "blocks": [
                {"id": "b", "label": "human", "value": "x" * 20, "limit": 10}]},
            "wrong block type": {"agents": [{"id": "a", "block_ids": ["b"]}], "blocks": [
                {"id": "b", "label": "human", "value": 7}]},
            "unknown provider": {"agents": [{"id": "a", "model": "nowhere/model"}]},
            "too big for the window": {"agents": [{"id": "a", "block_ids": ["b"],
                                                   "context_window_limit": 8192}],
                                       "blocks": [{"id": "b", "label": "human",
                                                   "value": "word " * 2000000,
                                                   "limit": 20000000}]},
            "deep nesting": "[" * 100000 + "]" * 100000,
            "later agent bad": {"agents": [good["agents"][0], {"id": "b", "block_ids": ["zz"]}],
                                "blocks": good["blocks"], "tools": good["tools"]},
        }
        for what, doc in cases.items():
            with self.subTest(what):
                proc = self.run_memgpt("agents", "import", self.write(doc))
                self.assertEqual(proc.returncode, 2, f"{what}: {proc.stdout} {proc.stderr}")
                self.assertIn("memgpt:", proc.stderr)
                self.assertEqual(self.agent_names(), [], f"{what} left an agent behind")
        # The messages say where the problem is.
        proc = self.run_memgpt("agents", "import", self.write(cases["dangling block"]))
        self.assertIn("agents[0].block_ids[0]", proc.stderr)
        self.assertIn("block-9", proc.stderr)
        db = sqlite3.connect(os.path.join(self.home, "memgpt.db"))
        self.assertEqual(db.execute("SELECT count(*) FROM messages").fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT count(*) FROM blocks").fetchone()[0], 0)
        db.close()

    def test_both_forms_and_names(self):
        doc = load(published("loop.af"))
        self.run_memgpt("agents", "import", self.write(json.dumps(json.dumps(doc)), "s.af"),
                        check=0)
        self.run_memgpt("agents", "import", self.write(doc), check=0)
        self.run_memgpt("agents", "import", self.write(doc), "--name", "loop_three", check=0)
        self.assertEqual(sorted(self.agent_names()), ["Loop", "Loop-2", "loop_three"])
        proc = self.run_memgpt("agents", "import", self.write(doc), "--name", "loop_three")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("already exists", proc.stderr)

    def test_memory_tools_of_letta_agents(self):
        self.run_memgpt("agents", "import", published("loop.af"), "--model",
                        "openai/gpt-4o-mini", check=0)
        self.mock.push({"content": "noting", "tool_calls": [
            {"name": "memory_insert", "arguments": json.dumps(
                {"label": "scratchpad", "new_str": "INSERTED LINE", "insert_line": 0,
                 "request_heartbeat": True})}]})
        self.mock.push({"content": "fixing", "tool_calls": [
            {"name": "memory_replace", "arguments": json.dumps(
                {"label": "scratchpad", "old_str": "INSERTED LINE", "new_str": "REPLACED",
                 "request_heartbeat": True})}]})
        self.mock.push({"content": "rewriting", "tool_calls": [
            {"name": "memory_rethink", "arguments": json.dumps(
                {"label": "soul", "new_memory": "A new soul.", "request_heartbeat": True})}]})
        self.mock.push({"content": "unknown", "tool_calls": [
            {"name": "web_search", "arguments": json.dumps({"query": "x"})}]})
        self.mock.push({"content": "done", "tool_calls": [
            {"name": "send_message", "arguments": json.dumps({"message": "All set."})}]})
        events = self.send("please tidy up", agent="Loop", json_out=True)
        returns = [e for e in events if e["message_type"] == "tool_return_message"]
        self.assertEqual([r["name"] for r in returns],
                         ["memory_insert", "memory_replace", "memory_rethink", "web_search",
                          "send_message"])
        self.assertTrue(all(r["status"] == "success" for r in returns[:3]), returns)
        self.assertEqual(returns[3]["status"], "error", "a kept tool is never run")
        blocks = self.memory("Loop")
        self.assertTrue(blocks["scratchpad"]["value"].startswith("REPLACED\n"))
        self.assertEqual(blocks["soul"]["value"], "A new soul.")
        # The model is offered Letta's memory tools, and none of the kept ones.
        offered = {t["function"]["name"] for t in self.mock.requests_to(CHAT_PATH)[0]["body"]["tools"]}
        self.assertTrue({"memory_insert", "memory_replace", "memory_rethink"} <= offered)
        self.assertFalse({"web_search", "fetch_webpage", "note"} & offered)
        self.assert_all_requests_valid()


if __name__ == "__main__":
    main()
