#!/usr/bin/env python3
"""MCP tools: real MCP servers from npm (tests/mcp/package.json, pinned by
its lockfile) given to an agent, with the strict mock LLM scripted to call
them. server-everything runs over stdio and over Streamable HTTP,
server-filesystem on a temporary folder. Each test checks what the model
was sent back (the tool result in the next request), and what the CLI shows.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import API_KEY, REPO, MemgptTestCase, main  # noqa: E402
from serve import ServerTestCase  # noqa: E402

MCP_DIR = os.path.join(REPO, "tests", "mcp", "node_modules", "@modelcontextprotocol")
EVERYTHING = os.path.join(MCP_DIR, "server-everything", "dist", "index.js")
MCP_MOCK = os.path.join(REPO, "tests", "mock", "mcp_mock.py")
FILESYSTEM = os.path.join(MCP_DIR, "server-filesystem", "dist", "index.js")
AGENT = "toolsmith"


def call(name, arguments, call_id):
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id="say"):
    return {"content": None, "tool_calls": [call("send_message", {"message": text}, call_id)]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class McpTestCase(MemgptTestCase):
    def setUp(self):
        super().setUp()
        if not os.path.exists(EVERYTHING):
            self.fail("the MCP test servers are missing: make test-deps installs them")
        self.memgpt("agents", "create", AGENT)

    def memgpt(self, *args, check=0, **kwargs):
        return self.run_memgpt(*args, check=check, **kwargs)

    def add_everything(self, name="every", *options):
        self.memgpt("mcp", "add", name, *options, "--", "node", EVERYTHING, "stdio")

    def attach(self, *tools):
        self.memgpt("tools", "attach", "--agent", AGENT, *tools)

    def turn(self, *responses, text="go", check=0, **kwargs):
        for r in responses:
            self.mock.push(r)
        return self.send(text, agent=AGENT, json_out=True, check=check, **kwargs)

    def offered(self, body):
        return {t["function"]["name"]: t["function"] for t in body.get("tools", [])}


class McpStdioTest(McpTestCase):
    providers = ("openai",)

    def test_servers_list_without_secrets_and_tools_attach(self):
        self.add_everything("every", "--env", "SECRET_TOKEN=hunter2-value")
        listed = self.memgpt("mcp", "list").stdout
        self.assertIn("every  stdio  node", listed)
        self.assertIn("SECRET_TOKEN=****", listed)
        self.assertNotIn("hunter2-value", listed)
        as_json = self.memgpt("mcp", "list", "--json").stdout
        self.assertNotIn("hunter2-value", as_json)
        self.assertEqual(json.loads(as_json)[0]["config"]["env"], {"SECRET_TOKEN": "****"})
        tools = json.loads(self.memgpt("mcp", "tools", "every", "--json").stdout)
        names = {t["name"] for t in tools}
        self.assertTrue({"echo", "get-sum", "get-env", "get-tiny-image"} <= names, names)
        self.attach("every/echo", "every/get-sum")
        offered = json.loads(self.memgpt("tools", "list", "--agent", AGENT, "--json").stdout)
        by_name = {t["name"]: t for t in offered}
        self.assertIn("send_message", by_name)
        self.assertIn("request_heartbeat", by_name["echo"]["parameters"]["properties"])
        self.assertIn("message", by_name["echo"]["parameters"]["properties"])
        # Refusals: a second time, one of our names, an unknown tool or server.
        self.assertIn("already has a tool named 'echo'",
                      self.memgpt("tools", "attach", "--agent", AGENT, "every/echo",
                                  check=1).stderr)
        self.assertIn("no tool 'nope'",
                      self.memgpt("tools", "attach", "--agent", AGENT, "every/nope",
                                  check=1).stderr)
        self.assertIn("no MCP server 'gone'",
                      self.memgpt("tools", "attach", "--agent", AGENT, "gone/echo",
                                  check=1).stderr)
        self.memgpt("tools", "detach", "--agent", AGENT, "echo")
        offered = json.loads(self.memgpt("tools", "list", "--agent", AGENT, "--json").stdout)
        self.assertNotIn("echo", {t["name"] for t in offered})
        removed = self.memgpt("mcp", "remove", "every").stdout
        self.assertIn("1 attached tools detached", removed)
        offered = json.loads(self.memgpt("tools", "list", "--agent", AGENT, "--json").stdout)
        self.assertNotIn("get-sum", {t["name"] for t in offered})

    def test_model_quotes_a_tool_result_back(self):
        self.add_everything("every", "--env", "MCP_PROBE=visible")
        self.attach("every/echo", "every/get-env")
        events = self.turn(
            {"content": "Let me echo.", "tool_calls": [
                call("echo", {"message": "sea otters hold hands", "request_heartbeat": True}, "e1"),
                call("get-env", {}, "e2")]},
            say("The server said: Echo: sea otters hold hands"),
            env={"ANTHROPIC_API_KEY": "sk-never-leaves-memgpt"})
        first, second = self.mock.chat_requests()
        tools = self.offered(first)
        self.assertIn("echo", tools)
        self.assertNotIn("$schema", tools["echo"]["parameters"])
        results = self.tool_results()
        self.assertEqual(results["e1"]["status"], "OK")
        self.assertEqual(results["e1"]["message"], "Echo: sea otters hold hands")
        # The server's environment: its own variables, never memgpt's keys.
        env_text = results["e2"]["message"]
        self.assertIn("MCP_PROBE", env_text)
        self.assertNotIn("sk-never-leaves-memgpt", env_text)
        self.assertNotIn("OPENAI_API_KEY", env_text)
        self.assertNotIn(API_KEY, env_text)
        replies = [e["content"] for e in events if e.get("message_type") == "assistant_message"]
        self.assertEqual(replies, ["The server said: Echo: sea otters hold hands"])
        returns = [e for e in events if e.get("message_type") == "tool_return_message"]
        self.assertEqual(returns[0]["name"], "echo")
        self.assertEqual(returns[0]["status"], "success")
        # The server's stderr went to its log, not to the model or the terminal.
        with open(os.path.join(self.home, "logs", "mcp-every.log")) as f:
            self.assertIn("STDIO", f.read())
        self.assert_all_requests_valid()

    def test_error_results_and_other_content(self):
        self.add_everything()
        self.attach("every/get-sum", "every/get-tiny-image")
        self.turn(
            {"content": None, "tool_calls": [
                call("get-sum", {"a": "three", "b": 4}, "s1"),
                call("get-tiny-image", {}, "i1"),
                call("get-sum", "{not json", "s2")]},
            say("Done."))
        results = self.tool_results()
        self.assertEqual(results["s1"]["status"], "Failed", results["s1"])
        self.assertIn("a", results["s1"]["message"])
        self.assertEqual(results["i1"]["status"], "OK")
        self.assertRegex(results["i1"]["message"], r"\[image: image/png, \d+ bytes\]")
        self.assertEqual(results["s2"]["status"], "Failed")
        self.assertIn("not a JSON object", results["s2"]["message"])
        # A failed call wakes the model, as a failed function does.
        last = self.mock.chat_requests()[1]["messages"][-1]
        self.assertEqual(json.loads(last["content"])["type"], "heartbeat")

    def test_agent_file_carries_mcp_tools_without_secrets(self):
        self.add_everything("every", "--env", "API_TOKEN=do-not-export")
        self.attach("every/echo")
        path = os.path.join(self.home, "toolsmith.af")
        self.memgpt("agents", "export", AGENT, "-o", path)
        with open(path) as f:
            text = f.read()
        self.assertNotIn("do-not-export", text)
        doc = json.loads(text)
        echo = [t for t in doc["tools"] if t["name"] == "echo"]
        self.assertEqual(len(echo), 1)
        self.assertEqual(echo[0]["tool_type"], "external_mcp")
        self.assertEqual(echo[0]["metadata_"]["mcp"]["server_name"], "every")
        self.assertEqual(doc["mcp_servers"][0]["server_name"], "every")
        self.assertEqual(doc["mcp_servers"][0]["stdio_config"]["env"], {"API_TOKEN": "****"})
        # Imported elsewhere the tool is kept, not offered, with a hint.
        out = self.memgpt("agents", "import", path, "--name", "copy").stdout
        self.assertIn("'echo' is a tool of the MCP server 'every'", out)
        offered = json.loads(self.memgpt("tools", "list", "--agent", "copy", "--json").stdout)
        self.assertNotIn("echo", {t["name"] for t in offered})
        self.assertEqual(len(json.loads(self.memgpt("mcp", "list", "--json").stdout)), 1)

    def test_pages_banners_and_requests_of_the_servers_own(self):
        self.memgpt("mcp", "add", "paged", "--", sys.executable, MCP_MOCK, "--pages", "4",
                    "--banner", "--chatty")
        tools = json.loads(self.memgpt("mcp", "tools", "paged", "--json").stdout)
        self.assertEqual(len(tools), 13, [t["name"] for t in tools])
        self.assertEqual(tools[11]["name"], "tool_11")
        self.attach("paged/tool_11", "paged/violations")
        self.turn({"content": None, "tool_calls": [
            call("tool_11", {"x": "deep", "request_heartbeat": True}, "p1"),
            call("violations", {}, "v1")]}, say("Fine."))
        results = self.tool_results()
        self.assertEqual(results["p1"]["message"], 'tool_11 got {"x": "deep"}')
        self.assertEqual(json.loads(results["v1"]["message"]), [])

    def test_unknown_protocol_version_is_refused(self):
        self.memgpt("mcp", "add", "future", "--", sys.executable, MCP_MOCK, "--version",
                    "2099-01-01")
        err = self.memgpt("mcp", "tools", "future", check=1).stderr
        self.assertIn("speaks protocol version 2099-01-01, which memgpt does not", err)

    def test_huge_result_is_cut(self):
        self.add_everything()
        self.attach("every/echo")
        huge = "otter " * 2000  # the call itself must fit the test window
        self.turn({"content": None, "tool_calls": [call("echo", {"message": huge, "request_heartbeat": True}, "h1")]},
                  say("That was long."))
        results = self.tool_results()
        self.assertIn("h1", results, self.describe_requests())
        message = results["h1"]["message"]
        self.assertLess(len(message), 7000)
        self.assertIn("[cut: this result was 12006 bytes", message)

    def test_server_killed_between_calls_is_started_again(self):
        pidfile = os.path.join(self.home, "server.pid")
        self.memgpt("mcp", "add", "every", "--", "sh", "-c",
                    f'echo $$ > {pidfile}; exec node {EVERYTHING} stdio')
        self.attach("every/echo")
        self.mock.push({"content": None, "tool_calls": [
            call("echo", {"message": "one", "request_heartbeat": True}, "k1")]})
        # While the model "thinks" about its second step, the server dies.
        self.mock.push({"delay": 1.5, "content": None, "tool_calls": [
            call("echo", {"message": "two", "request_heartbeat": True}, "k2")]})
        self.mock.push({"delay": 0.8, "content": None, "tool_calls": [
            call("echo", {"message": "three", "request_heartbeat": True}, "k3")]})
        self.mock.push(say("Back."))
        proc = subprocess.Popen(
            [os.environ.get("MEMGPT_BIN") or os.path.join(REPO, "build", "memgpt"),
             "--home", self.home, "send", "--agent", AGENT, "--json", "go"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.memgpt_env())
        deadline = time.time() + 30
        while len(self.mock.chat_requests()) < 2 and time.time() < deadline:
            time.sleep(0.05)
        with open(pidfile) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        results = self.tool_results()
        self.assertEqual(results["k1"]["message"], "Echo: one")
        self.assertEqual(results["k2"]["status"], "Failed")
        self.assertIn("killed by signal 9", results["k2"]["message"])
        self.assertEqual(results["k3"]["message"], "Echo: three")
        self.assertIn("Back.", out)

    def test_server_that_never_answers_or_cannot_start(self):
        self.memgpt("mcp", "add", "mute", "--timeout", "1", "--", "sleep", "30")
        self.memgpt("mcp", "add", "absent", "--", "no-such-mcp-server-binary")
        started = time.time()
        err = self.memgpt("mcp", "tools", "mute", check=1).stderr
        self.assertIn("no answer within 1 s", err)
        self.assertLess(time.time() - started, 10)
        self.assertIn("cannot run no-such-mcp-server-binary",
                      self.memgpt("mcp", "tools", "absent", check=1).stderr)
        # Attached tools whose server stops answering fail the call, not the turn.
        # (3 s: Node's start-up alone can take more than 1 s on a busy machine.)
        self.add_everything("every", "--timeout", "3")
        self.attach("every/trigger-long-running-operation")
        events = self.turn(
            {"content": None, "tool_calls": [call("trigger-long-running-operation",
                                                  {"duration": 8, "steps": 1}, "t1")]},
            say("It timed out."))
        self.assertEqual(self.tool_results()["t1"]["status"], "Failed")
        self.assertIn("no answer within 3 s", self.tool_results()["t1"]["message"])
        self.assertIn("It timed out.", [e.get("content") for e in events])

    def test_filesystem_server(self):
        folder = os.path.join(self.home, "notes")
        os.mkdir(folder)
        with open(os.path.join(folder, "tide.txt"), "w") as f:
            f.write("High tide at 14:05 on Saturday.\n")
        self.memgpt("mcp", "add", "fs", "--", "node", FILESYSTEM, folder)
        self.attach("fs/read_text_file", "fs/list_directory")
        self.turn(
            {"content": None, "tool_calls": [
                call("list_directory", {"path": folder}, "l1"),
                call("read_text_file", {"path": os.path.join(folder, "tide.txt")}, "r1"),
                call("read_text_file", {"path": "/etc/passwd"}, "r2")]},
            say("High tide is at 14:05."))
        results = self.tool_results()
        self.assertIn("tide.txt", results["l1"]["message"])
        self.assertEqual(results["r1"]["message"].strip(), "High tide at 14:05 on Saturday.")
        self.assertEqual(results["r2"]["status"], "Failed")
        self.assertIn("denied", results["r2"]["message"].lower())


class McpHttpTest(McpTestCase):
    """Streamable HTTP, on every provider's mock: the schemas of MCP tools
    go through each provider's tool format."""

    def setUp(self):
        super().setUp()
        self.port = free_port()
        env = dict(os.environ, PORT=str(self.port))
        self.server = subprocess.Popen(["node", EVERYTHING, "streamableHttp"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.server.wait)
        self.addCleanup(self.server.kill)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.fail("server-everything did not start listening")

    def test_http_server_tool_call(self):
        url = f"http://127.0.0.1:{self.port}/mcp"
        self.memgpt("mcp", "add", "web", "--url", url, "--header", "X-Team-Token=t0ps3cret")
        self.assertNotIn("t0ps3cret", self.memgpt("mcp", "list").stdout)
        self.attach("web/echo", "web/get-sum")
        events = self.turn(
            {"content": None, "tool_calls": [
                call("get-sum", {"a": 19, "b": 23, "request_heartbeat": True}, "g1")]},
            say("19 + 23 = 42"))
        returns = [e for e in events if e.get("message_type") == "tool_return_message"
                   and e["name"] == "get-sum"]
        self.assertEqual(len(returns), 1, events)
        self.assertEqual(returns[0]["status"], "success")
        self.assertIn("42", json.loads(returns[0]["tool_return"])["message"])
        replies = [e["content"] for e in events if e.get("message_type") == "assistant_message"]
        self.assertEqual(replies, ["19 + 23 = 42"])
        self.assert_all_requests_valid()


class McpServerApiTest(ServerTestCase):
    """The API's MCP routes through Letta's TypeScript SDK (tests/sdk), and
    the same data directory seen by the CLI."""

    def setUp(self):
        super().setUp()
        if not os.path.exists(EVERYTHING):
            self.fail("the MCP test servers are missing: make test-deps installs them")
        self.start_server()

    def test_sdk_adds_a_server_and_attaches_its_tool(self):
        self.mock.push({"content": None, "tool_calls": [
            call("echo", {"message": "from the sdk", "request_heartbeat": True}, "e1")]})
        self.mock.push(say("It echoed."))
        result = self.sdk("mcp", {"everything": EVERYTHING, "reply": "It echoed."})
        self.assertGreater(result["tools"], 5)
        first = self.mock.chat_requests()[0]
        self.assertIn("echo", {t["function"]["name"] for t in first["tools"]})
        self.assert_all_requests_valid()

    def test_routes_refuse_bad_input(self):
        status, body, _ = self.http("POST", "/v1/mcp-servers/", body={"server_name": "x"})
        self.assertEqual(status, 422, body)
        status, body, _ = self.http("POST", "/v1/mcp-servers/", body={
            "server_name": "../etc", "config": {"mcp_server_type": "stdio", "command": "node",
                                                "args": []}})
        self.assertEqual(status, 422, body)
        status, body, _ = self.http("POST", "/v1/mcp-servers/", body={
            "server_name": "x", "config": {"mcp_server_type": "stdio", "command": "node",
                                           "args": [1]}})
        self.assertEqual(status, 422, body)
        status, _, _ = self.http("GET", "/v1/mcp-servers/not-an-id")
        self.assertEqual(status, 422)
        status, _, _ = self.http("GET", "/v1/mcp-servers/mcp_server-" + "0" * 8 + "-0000-4000-8000-"
                                 + "0" * 12)
        self.assertEqual(status, 404)
        # A configuration read back (secrets as ****) and sent back keeps them.
        self.run_memgpt("mcp", "add", "kept", "--env", "TOKEN=real-secret", "--", "node",
                        EVERYTHING, "stdio", check=0)
        status, servers, _ = self.http("GET", "/v1/mcp-servers/")
        kept = next(x for x in servers if x["server_name"] == "kept")
        config = {k: kept[k] for k in ("mcp_server_type", "command", "args", "env")}
        status, body, _ = self.http("PATCH", f"/v1/mcp-servers/{kept['id']}",
                                    body={"config": config})
        self.assertEqual(status, 200, body)
        db = sqlite3.connect(os.path.join(self.home, "memgpt.db"))
        stored = json.loads(db.execute("SELECT config FROM mcp_servers WHERE name = 'kept'")
                            .fetchone()[0])
        db.close()
        self.assertEqual(stored["env"], {"TOKEN": "real-secret"})
        self.run_memgpt("mcp", "remove", "kept", check=0)
        # The CLI's servers are the API's, secrets hidden in both.
        self.run_memgpt("mcp", "add", "shared", "--env", "TOKEN=abc123", "--", "node", EVERYTHING,
                        "stdio", check=0)
        status, servers, _ = self.http("GET", "/v1/mcp-servers/")
        self.assertEqual(status, 200)
        self.assertEqual([s["server_name"] for s in servers], ["shared"])
        self.assertEqual(servers[0]["env"], {"TOKEN": "****"})
        status, _, _ = self.http("DELETE", f"/v1/mcp-servers/{servers[0]['id']}")
        self.assertEqual(status, 204)
        self.assertIn("no MCP servers", self.run_memgpt("mcp", "list", check=0).stdout)


if __name__ == "__main__":
    main()
