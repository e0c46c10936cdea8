"""The web app that `memgpt serve` serves at /, in a real headless browser:
Debian's chromium driven by puppeteer-core (pinned in tests/web/package.json)
against the strict OpenAI mock. Each test scripts the mock, then runs one
scenario of tests/web/app.mjs, where the assertions about the page are; every
scenario also fails on any error in the browser's console."""

import json
import os
import re
import shutil

from harness import REPO, main
from serve import ServerTestCase

WEB_DIR = os.path.join(REPO, "tests", "web")
WEB_SRC = os.path.join(REPO, "web")  # the app's own files


def call(name, arguments, call_id):
    return {"name": name, "arguments": arguments, "id": call_id}


def say(text, call_id="say"):
    return {"content": None, "tool_calls": [call("send_message", {"message": text}, call_id)]}


class WebAppTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        if not shutil.which("chromium") and not os.environ.get("CHROMIUM"):
            self.fail("chromium is needed (make test installs Debian's package)")
        self.start_server()

    def browser(self, scenario, arg=None, **kwargs):
        return self.node_scenario(WEB_DIR, "app.mjs", "puppeteer-core", scenario, arg,
                                  timeout=120, **kwargs)

    def new_agent(self, name, **fields):
        status, agent, _ = self.http("POST", "/v1/agents/", body={"name": name, **fields})
        self.assertEqual(status, 200, agent)
        return agent["id"]

    def test_serves_the_app(self):
        status, page, headers = self.http("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Cache-Control"], "no-cache")
        # Every file the page names is under the build's version, and may
        # be kept for good; the page itself is asked for every time.
        app_js = re.search(r'<script type="module" src="(/v/([0-9a-f]{16})/app.js)">', page)
        self.assertTrue(app_js, page[:600])
        version = app_js.group(2)
        # The modules are joined into app.js at build time: the page
        # preloads nothing else, and the modules are not served one by one.
        self.assertNotIn("modulepreload", page)
        self.assertNotIn('href="/app.css"', page)
        csp = headers["Content-Security-Policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        status, script, headers = self.http("GET", app_js.group(1))
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/javascript"))
        self.assertEqual(headers["Cache-Control"], "public, max-age=31536000, immutable")
        self.assertNotRegex(script, r"(?m)^\s*(import|export)\b")
        for module in os.listdir(os.path.join(WEB_SRC, "js")):
            self.assertIn(f"// js/{module}\n", script)
            self.assertEqual(self.http("GET", f"/js/{module}")[0], 404, module)
        self.assertEqual(self.http("GET", "/app.js")[1], script)
        self.assertEqual(self.http("GET", "/app.js")[2]["Cache-Control"], "no-cache")
        # Another version's address (a page from before an upgrade) gets
        # today's file, not to be kept.
        status, other, headers = self.http("GET", "/v/0123456789abcdef/app.js")
        self.assertEqual((status, other, headers["Cache-Control"]), (200, script, "no-cache"))
        status, _, _ = self.http("GET", "/app.js", headers={"If-None-Match": headers["ETag"]})
        self.assertEqual(status, 304)
        for path in ("/../memgpt.db", "/v/../../memgpt.db", "/.hidden", "/nope.js", "//app.js",
                     "/%2e%2e/memgpt.db", f"/v/{version}", f"/v/{version}/", f"/v/{version}/../memgpt.db",
                     f"/v/{version}//app.js", f"/v/{version}/.hidden", "/v//app.js"):
            status, _, _ = self.http("GET", path)
            self.assertEqual(status, 404, path)
        # The page is public; the API behind it is not.
        self.server.stop()
        self.start_server(args=("--password", "pw"))
        self.assertEqual(self.http("GET", "/")[0], 200)
        self.assertEqual(self.http("GET", "/v1/agents/")[0], 401)
        # From a folder (--ui-dir, for work on the app): files as they are
        # on disk, the modules one by one, read again on every request,
        # none kept for good.
        self.server.stop()
        self.start_server(args=("--ui-dir", WEB_SRC))
        status, page, _ = self.http("GET", "/")
        self.assertIn('<script type="module" src="/js/main.js">', page)
        self.assertIn('<link rel="modulepreload" href="/js/api.js">', page)
        with open(os.path.join(WEB_SRC, "js", "main.js")) as f:
            on_disk = f.read()
        status, script, headers = self.http("GET", f"/v/{version}/js/main.js")
        self.assertEqual((status, script, headers["Cache-Control"]), (200, on_disk, "no-cache"))
        self.assertEqual(self.http("GET", "/app.js")[0], 404)

    def test_chat_streams_the_reply(self):
        reply = "Hello Ada, nice to meet you. " * 4
        # Slowly, in small pieces, so that the page shows it growing.
        self.mock.push({**say(reply.strip()), "chunk_bytes": 120, "chunk_delay": 0.02,
                        "piece_chars": 8})
        result = self.browser("chat", {"reply": reply.strip()})
        self.assertGreater(result["pieces"], 1)
        self.assert_all_requests_valid()

    def test_tool_call_folds(self):
        agent = self.new_agent("folding")
        self.mock.push({"content": "Saving that.", "tool_calls": [
            call("core_memory_append", {"label": "human", "content": "likes tea",
                                        "request_heartbeat": True}, "c1")]})
        self.mock.push(say("Noted."))
        self.browser("fold", {"agent_id": agent})

    def test_keyboard_alone(self):
        self.new_agent("keyed")
        self.mock.push({"content": "Checking memory.", "tool_calls": [
            call("core_memory_append", {"label": "human", "content": "writes two lines",
                                        "request_heartbeat": True}, "c1")]})
        self.mock.push(say("Both lines arrived."))
        self.browser("keyboard", {"name": "keyed", "reply": "Both lines arrived."})

    def test_panes(self):
        agent = self.new_agent("searcher")
        self.new_agent("bystander")
        said = "My sister Maribel plays the cello"
        self.mock.push({"content": "Saving that.", "tool_calls": [
            call("core_memory_append", {"label": "human", "content": "sister Maribel, cello",
                                        "request_heartbeat": True}, "c1")]})
        self.mock.push(say("Noted."))
        status, body, _ = self.http("POST", f"/v1/agents/{agent}/messages",
                                    body={"messages": [{"role": "user", "content": said}]})
        self.assertEqual(status, 200, body)
        with open(os.path.join(REPO, "..", "shared", "data", "agent-files", "loop.af")) as f:
            agent_file = f.read()
        self.browser("panes", {"agent_id": agent, "name": "searcher", "other": "bystander",
                               "word": "Maribel", "said": said, "agent_file": agent_file,
                               "imported_name": "Loop"})

    def test_block_edit(self):
        agent = self.new_agent("editable", memory_blocks=[
            {"label": "human", "value": "Name: unknown"},
            {"label": "locked", "value": "fixed", "read_only": True}])
        self.browser("block_edit", {"agent_id": agent})

    def test_context_bar_adds_up(self):
        agent = self.new_agent("measured")
        self.browser("context", {"agent_id": agent})

    def test_model_text_is_never_html(self):
        name = '<img src=n onerror="window.__xss=6">'
        block = '<script>window.__xss=7</script><a href="javascript:window.__xss=8">b</a>'
        passage = 'beacon <img src=p onerror="window.__xss=9"> <iframe src="javascript:1">'
        agent = self.new_agent(name, memory_blocks=[{"label": "human", "value": block}])
        status, body, _ = self.http("POST", f"/v1/agents/{agent}/archival-memory",
                                    body={"text": passage})
        self.assertEqual(status, 200, body)
        evil = ['<script>window.__xss=2</script>', '<img src=x onerror="window.__xss=3">',
                '[click](javascript:window.__xss=4)', '<a href="javascript:alert(1)">x</a>']
        self.mock.push({"content": "<b>thinking</b><img src=y onerror=\"window.__xss=5\">",
                        "tool_calls": [call("send_message", {"message": " ".join(evil)}, "s")]})
        self.browser("xss", {"agent_id": agent, "evil": evil, "name": name, "block": block,
                             "passage": passage})

    def test_flush_marker_and_summary(self):
        agent = self.new_agent("flushed")
        for i in range(6):
            self.http("POST", f"/v1/agents/{agent}/messages",
                      body={"messages": [{"role": "user", "content": f"fact number {i}"}]})
        summary = "Ada listed six facts; none needs keeping."
        self.mock.push({"content": summary})
        status, body, _ = self.http("POST", f"/v1/agents/{agent}/summarize")
        self.assertEqual(status, 200, body)
        self.browser("flush", {"agent_id": agent, "summary": summary})

    def test_cancel(self):
        agent = self.new_agent("patient")
        self.mock.push({"delay": 1.5, "content": "Searching first.", "tool_calls": [
            call("conversation_search", {"query": "x", "request_heartbeat": True}, "c1")]})
        self.browser("cancel", {"agent_id": agent})

    def test_history_pages(self):
        agent = self.new_agent("talkative")
        turns = 70
        for i in range(turns):
            self.http("POST", f"/v1/agents/{agent}/messages",
                      body={"messages": [{"role": "user", "content": f"message {i}"}]})
        self.browser("history", {"agent_id": agent, "turns": turns})

    def test_archival_pane(self):
        agent = self.new_agent("archivist")
        self.browser("archival", {"agent_id": agent})

    def test_agent_file_export_import_delete(self):
        agent = self.new_agent("traveller")
        loop = os.path.join(REPO, "..", "shared", "data", "agent-files", "loop.af")
        self.browser("agent_file", {"agent_id": agent, "name": "traveller", "dir": self.home,
                                    "import": os.path.abspath(loop), "imported_name": "Loop"})

    def test_password_prompt(self):
        self.server.stop()
        self.start_server(args=("--password", "hunter2-but-longer"))
        status, _, _ = self.http("POST", "/v1/agents/", body={"name": "guarded"},
                                 password="hunter2-but-longer")
        self.assertEqual(status, 200)
        # The failed attempts are the page's own 401s, which the console reports.
        self.browser("password", {"password": "hunter2-but-longer", "name": "guarded",
                                  "allowConsoleErrors": True})

    def test_screenshots(self):
        """The README's pictures: an agent that learnt something and said so,
        on a desktop and a phone, light and dark. `make screenshots` writes
        them to docs/img (MEMGPT_SCREENSHOTS_DIR); the suite to a temporary
        folder, and checks they are pictures of the sizes asked for."""
        agent = self.new_agent("Sailing coach", memory_blocks=[
            {"label": "persona", "value": "I am a patient sailing coach. I keep notes on my "
                                          "student and plan lessons around the weather."},
            {"label": "human", "value": "Name: unknown"}])
        self.mock.push({"content": "A new student. I should note the name and boat.",
                        "tool_calls": [call("core_memory_replace", {
                            "label": "human", "old_content": "Name: unknown",
                            "new_content": "Name: Ada. Sails a 6 m dinghy on weekends.",
                            "request_heartbeat": True}, "c1")]})
        self.mock.push(say("Welcome aboard, Ada! A 6 m dinghy is a fine boat to learn on. "
                           "What would you like to practise first?"))
        status, body, _ = self.http("POST", f"/v1/agents/{agent}/messages", body={"messages": [
            {"role": "user", "content": "Hi! I'm Ada, I sail a 6 m dinghy on weekends."}]})
        self.assertEqual(status, 200, body)
        status, body, _ = self.http("POST", f"/v1/agents/{agent}/archival-memory",
                                    body={"text": "Ada capsized twice in gusts over 18 knots."})
        self.assertEqual(status, 200, body)
        out = os.environ.get("MEMGPT_SCREENSHOTS_DIR") or self.home
        os.makedirs(out, exist_ok=True)
        shots = self.browser("screenshots", {"agent_id": agent, "dir": os.path.abspath(out)})
        sizes = {"desktop": (1440, 900), "phone": (360, 740)}
        self.assertEqual(len(shots["shots"]), 4)
        for path in shots["shots"]:
            with open(path, "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n", path)
            width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            want = sizes["phone" if "phone" in path else "desktop"]
            # A phone page is drawn at its device scale factor.
            self.assertEqual((width % want[0], height % want[1]), (0, 0), (path, width, height))

    def import_history(self, name, turns):
        """An agent with `turns` exchanges, made by importing a generated
        Agent File (one transaction, instead of a turn each)."""
        messages = [{"type": "message", "id": "message-0", "role": "system",
                     "content": [{"type": "text", "text": "You are a test agent."}]}]
        for i in range(turns):
            n = len(messages)
            when = f"2026-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z"
            messages += [
                {"type": "message", "id": f"message-{n}", "role": "user", "created_at": when,
                 "content": [{"type": "text", "text": json.dumps(
                     {"type": "user_message", "message": f"message {i}"})}]},
                {"type": "message", "id": f"message-{n + 1}", "role": "assistant",
                 "created_at": when, "content": [{"type": "text", "text": "Replying."}],
                 "tool_calls": [{"id": f"call_{i}", "type": "function", "function": {
                     "name": "send_message", "arguments": json.dumps({"message": f"reply {i}"})}}]},
                {"type": "message", "id": f"message-{n + 2}", "role": "tool", "created_at": when,
                 "tool_call_id": f"call_{i}", "name": "send_message",
                 "content": [{"type": "text", "text": '{"status": "OK"}'}]}]
        doc = {"agents": [{"id": "agent-0", "name": name, "system": "You are a test agent.",
                           "llm_config": {"model": "gpt-4o-mini", "model_endpoint_type": "openai",
                                          "context_window": 128000},
                           "messages": messages, "in_context_message_ids":
                               ["message-0"] + [m["id"] for m in messages[-30:]]}],
               "blocks": [], "tools": []}
        path = os.path.join(self.home, f"{name}.af")
        with open(path, "w") as f:
            json.dump(doc, f)
        out = self.run_memgpt("agents", "import", path, check=0).stdout
        self.assertIn(f"imported agent {name}", out)
        status, listed, _ = self.http("GET", f"/v1/agents/?name={name}")
        return listed[0]["id"]

    def test_long_history_keeps_a_window(self):
        agent = self.import_history("archive", 3400)  # 10,200 stored messages
        result = self.browser("long_history", {"agent_id": agent, "turns": 3400,
                                               "pages_up": 25})
        self.assertLessEqual(result["most_rows"], 450)

    def test_long_reply(self):
        agent = self.new_agent("verbose")
        reply = " ".join(f"word{i}" for i in range(1500))  # ~2,000 tokens
        self.mock.push({**say(reply), "chunk_bytes": 400, "chunk_delay": 0.005,
                        "piece_chars": 8})
        self.browser("long_reply", {"agent_id": agent, "reply": reply})


if __name__ == "__main__":
    main()
