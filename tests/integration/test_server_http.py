"""`memgpt serve` under hostile and unusual HTTP, signals and crashes.

Raw sockets and http.client, no SDK: malformed and oversized bodies,
invalid UTF-8, deep nesting, slow and half-closed connections, a flood of
connections, the per-agent queue bound, CORS, the access log, SIGTERM in
the middle of a turn, `kill -9` in the middle of streamed turns, a client
that goes away mid-stream, and the CLI writing to the same data directory
while the server runs. After each, the server must still serve others.
"""

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from harness import main
from serve import Server, ServerTestCase

PASSWORD = "another-test-password"


def sse_events(resp):
    """Yields the JSON of each `data:` line of a streamed answer."""
    buf = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            return
        buf += chunk
        while b"\n\n" in buf:
            frame, buf = buf.split(b"\n\n", 1)
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    data = line[6:]
                    yield None if data == b"[DONE]" else json.loads(data)


class HostileHttpTest(ServerTestCase):
    def setUp(self):
        super().setUp()
        self.start_server(args=("--timeout", "2"))

    def assert_alive(self):
        status, body, _ = self.http("GET", "/v1/health/")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")

    def raw(self, data, read=True, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=timeout)
        s.sendall(data)
        out = b""
        if read:
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except socket.timeout:
                pass
        s.close()
        return out

    def test_bad_bodies(self):
        status, body, headers = self.http("POST", "/v1/agents/", body="{not json",
                                          headers={"Content-Type": "application/json"})
        self.assertEqual(status, 422)
        self.assertIsInstance(body["detail"], list)
        self.assertEqual(body["detail"][0]["loc"][0], "body")
        self.assertEqual(headers.get("x-should-retry"), "false")
        status, body, _ = self.http("POST", "/v1/agents/", body=b'{"name": "\xff\xfe"}',
                                    headers={"Content-Type": "application/json"})
        self.assertEqual(status, 422)
        status, body, _ = self.http("POST", "/v1/agents/", body="[" * 100000 + "]" * 100000)
        self.assertEqual(status, 422)
        status, body, _ = self.http("POST", "/v1/agents/", body=[1, 2])
        self.assertEqual(status, 422)
        status, _, _ = self.http("GET", "/v1/nowhere")
        self.assertEqual(status, 404)
        status, _, _ = self.http("PUT", "/v1/agents/")
        self.assertEqual(status, 405)
        status, body, _ = self.http("GET", "/v1/agents/?limit=0")
        self.assertEqual(status, 422)
        status, body, _ = self.http("GET", "/v1/agents/?order=sideways")
        self.assertEqual(status, 422)
        self.assert_alive()

    def test_body_limit(self):
        # Refused from Content-Length alone, before the body is sent.
        t = time.time()
        reply = self.raw(b"POST /v1/agents/ HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 40000000\r\n\r\n")
        self.assertIn(b" 413 ", reply.split(b"\r\n")[0])
        self.assertLess(time.time() - t, 5)
        # A chunked body that grows past the limit is cut off as it arrives.
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=20)
        s.sendall(b"POST /v1/agents/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
        got = b""
        try:
            for _ in range(40):
                s.sendall(chunk)
        except OSError:
            pass
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += data
        except OSError:
            pass
        s.close()
        # The answer is a 413, unless the connection was reset before the
        # client read it (the server closes with the client's data unread).
        self.assertTrue(got == b"" or b" 413 " in got.split(b"\r\n")[0], got[:200])
        self.assert_alive()

    def test_huge_header(self):
        reply = self.raw(b"GET /v1/health/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000
                         + b"\r\n\r\n")
        self.assertNotIn(b" 200 ", reply.split(b"\r\n")[0])
        self.assert_alive()

    def test_slow_and_half_closed_clients(self):
        slow = socket.create_connection(("127.0.0.1", self.server.port))
        slow.sendall(b"POST /v1/agents/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na")
        half = socket.create_connection(("127.0.0.1", self.server.port))
        half.sendall(b"POST /v1/agents/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")
        half.shutdown(socket.SHUT_WR)
        # Others are served meanwhile.
        self.assert_alive()
        # Both are dropped once the timeout (2 s here) passes.
        for s in (slow, half):
            s.settimeout(10)
            t = time.time()
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            self.assertLess(time.time() - t, 9)
            s.close()
        self.assert_alive()

    def test_connection_flood(self):
        socks = []
        for _ in range(600):
            try:
                socks.append(socket.create_connection(("127.0.0.1", self.server.port), timeout=2))
            except OSError:
                break
        self.assertIsNone(self.server.proc.poll(), "the server survived the flood")
        for s in socks:
            s.close()
        self.assertTrue(self.wait_for(lambda: self.try_health(), 15))

    def test_too_many_connections_get_503(self):
        socks = [socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                 for _ in range(530)]
        try:
            self.assertTrue(self.wait_for(lambda: self.busy_answer() is not None, 10))
            status, retry = self.busy_answer()
            self.assertEqual(status, 503)
            self.assertEqual(retry, "1")
        finally:
            for s in socks:
                s.close()
        self.assertTrue(self.wait_for(lambda: self.try_health(), 15))

    def busy_answer(self):
        try:
            status, _, headers = self.http("GET", "/v1/health/", timeout=3)
        except OSError:
            return None
        return (status, headers.get("Retry-After")) if status == 503 else None

    def try_health(self):
        try:
            return self.http("GET", "/v1/health/", timeout=2)[0] == 200
        except OSError:
            return False

    def test_queue_bound(self):
        self.run_memgpt("agents", "create", "busy", check=0)
        agent = json.loads(self.run_memgpt("agents", "show", "busy", "--json", check=0).stdout)["id"]
        for _ in range(40):
            self.mock.push({"delay": 0.5, "content": "slowly",
                            "tool_calls": [{"name": "send_message",
                                            "arguments": json.dumps({"message": "done"})}]})
        statuses, retry = [], []
        for _ in range(20):
            status, body, headers = self.http("POST", f"/v1/agents/{agent}/messages/async",
                                              body={"messages": [{"role": "user",
                                                                  "content": "queue me"}]})
            statuses.append(status)
            if status == 429:
                retry.append(headers.get("Retry-After"))
        self.assertIn(429, statuses)
        self.assertIn(200, statuses)
        self.assertTrue(all(r and int(r) >= 1 for r in retry))
        self.assert_alive()

    def test_cors(self):
        _, _, headers = self.http("GET", "/v1/health/", headers={"Origin": "http://app.example"})
        self.assertNotIn("Access-Control-Allow-Origin", headers)
        status, _, headers = self.http("OPTIONS", "/v1/agents/",
                                       headers={"Origin": "http://app.example"})
        self.assertNotIn("Access-Control-Allow-Origin", headers)


class ServerLifeTest(ServerTestCase):
    def agent_id(self, name):
        self.run_memgpt("agents", "create", name, check=0)
        return json.loads(self.run_memgpt("agents", "show", name, "--json", check=0).stdout)["id"]

    def db(self):
        return sqlite3.connect(os.path.join(self.home, "memgpt.db"))

    def test_tools_on_create(self):
        """Letta's `tools` (names) and `tool_ids` name our functions: the
        optional ones are enabled, an unknown one is refused."""
        self.start_server()
        status, tools, _ = self.http("GET", "/v1/tools/")
        rethink = next(t["id"] for t in tools if t["name"] == "memory_rethink")
        status, agent, _ = self.http("POST", "/v1/agents/", body={
            "name": "Tooled Agent", "tools": ["send_message", "memory_insert"],
            "tool_ids": [rethink]})
        self.assertEqual(status, 200, agent)
        names = [t["name"] for t in agent["tools"]]
        self.assertIn("memory_insert", names)
        self.assertIn("memory_rethink", names)
        self.assertNotIn("memory_replace", names)
        self.assertEqual(names.count("send_message"), 1)
        status, offered, _ = self.http("GET", f"/v1/agents/{agent['id']}/tools")
        self.assertEqual(sorted(t["name"] for t in offered), sorted(names))
        for body in ({"name": "x", "tools": ["web_search"]},
                     {"name": "y", "tool_ids": ["tool-00000000-0000-4000-8000-000000000000"]},
                     {"name": "z", "tools": "memory_insert"}):
            status, err, _ = self.http("POST", "/v1/agents/", body=body)
            self.assertEqual(status, 422, body)
            self.assertIn("detail", err)
        status, listed, _ = self.http("GET", "/v1/agents/")
        self.assertEqual([a["name"] for a in listed], ["Tooled Agent"])

    def test_recall_search_and_settings(self):
        """memgpt's additions for the web app: searching recall memory, and
        its own settings read from and written to AgentState."""
        self.start_server()
        status, agent, _ = self.http("POST", "/v1/agents/", body={
            "name": "searcher", "settings": {"step_limit": 7, "warn_fraction": 0.6}})
        self.assertEqual(status, 200, agent)
        self.assertEqual(agent["settings"]["step_limit"], 7)
        self.assertEqual(agent["settings"]["warn_fraction"], 0.6)
        aid = agent["id"]
        for text in ("the lighthouse keeper", "apples and pears"):
            self.http("POST", f"/v1/agents/{aid}/messages",
                      body={"messages": [{"role": "user", "content": text}]})
        status, found, _ = self.http("GET", f"/v1/agents/{aid}/messages/search?query=lighthouse")
        self.assertEqual(status, 200, found)
        # The user's message, and the mock's echo of it.
        self.assertEqual(found["total"], 2)
        self.assertTrue(all("lighthouse" in r["text"] for r in found["results"]))
        hit = next(r for r in found["results"] if r["role"] == "user")
        self.assertEqual(hit["text"], "the lighthouse keeper")
        self.assertRegex(hit["id"], r"^message-[0-9a-f-]{36}$")
        status, msgs, _ = self.http("GET", f"/v1/agents/{aid}/messages?limit=100")
        self.assertIn(hit["id"], [m["id"] for m in msgs])
        status, found, _ = self.http(
            "GET", f"/v1/agents/{aid}/messages/search?include_all=true&limit=2&page=1")
        self.assertEqual(status, 200, found)
        self.assertEqual(found["page"], 1)
        self.assertEqual(len(found["results"]), 2)
        for bad in ("start_datetime=yesterday", "limit=0", "include_all=maybe", "page=-1"):
            status, err, _ = self.http("GET", f"/v1/agents/{aid}/messages/search?{bad}")
            self.assertEqual(status, 422, bad)
        status, _, _ = self.http(
            "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/messages/search")
        self.assertEqual(status, 404)
        status, agent, _ = self.http("PATCH", f"/v1/agents/{aid}", body={
            "settings": {"reflect_every": -1, "flush_fraction": 0.9}})
        self.assertEqual(status, 200, agent)
        self.assertEqual(agent["settings"]["reflect_every"], -1)
        self.assertEqual(agent["settings"]["flush_fraction"], 0.9)
        self.assertEqual(agent["settings"]["step_limit"], 7)
        for bad in ({"warn_fraction": 2}, {"step_limit": 0}, {"reflect_every": 0}, "fast"):
            status, err, _ = self.http("PATCH", f"/v1/agents/{aid}", body={"settings": bad})
            self.assertEqual(status, 422, bad)

    def test_refuses_open_address_without_password(self):
        proc = self.run_memgpt("serve", "--host", "0.0.0.0", "--port", "0")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("password", proc.stderr)

    def test_cors_and_json_log(self):
        self.start_server(args=("--cors-origin", "http://app.example", "--log-format", "json"))
        status, _, headers = self.http("OPTIONS", "/v1/agents/",
                                       headers={"Origin": "http://app.example",
                                                "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 204)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "http://app.example")
        self.assertIn("Authorization", headers["Access-Control-Allow-Headers"])
        _, _, headers = self.http("GET", "/v1/health/", headers={"Origin": "http://app.example"})
        self.assertIn("X-Memgpt-Page-End", headers["Access-Control-Expose-Headers"])
        _, _, headers = self.http("GET", "/v1/health/", headers={"Origin": "http://evil.example"})
        self.assertNotIn("Access-Control-Allow-Origin", headers)
        agent = self.agent_id("logged")
        secret = "my secret lighthouse"
        self.http("POST", f"/v1/agents/{agent}/messages",
                  body={"messages": [{"role": "user", "content": secret}]})
        # A request is logged once it has completed, just after its answer.
        def posted():
            lines = [json.loads(line) for line in self.server.log if line.startswith("{")]
            return [x for x in lines if x["method"] == "POST"]

        self.assertTrue(self.wait_for(posted, 10))
        posted = posted()
        for x in posted:
            self.assertEqual(set(x), {"time", "method", "path", "status", "bytes", "ms"})
        self.assertFalse(any(secret in line for line in self.server.log))

    def test_access_log_has_every_request(self):
        """Lines are written in batches: none is lost, torn or mixed with
        another, and those still buffered are written before a SIGTERM exit."""
        agent = self.agent_id("busy")
        self.start_server()

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            for i in range(n):
                conn.request("GET", f"/v1/agents/{agent}" if i % 2 else "/v1/health/")
                conn.getresponse().read()
            conn.close()

        threads = [threading.Thread(target=client, args=(100,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(self.server.stop(signal.SIGTERM), 0)
        pattern = re.compile(r"^GET (/v1/health/|/v1/agents/agent-[0-9a-f-]{36}) 200 \d+ "
                             r"\d+\.\dms$")
        logged = [line for line in self.server.log if line.startswith("GET ")]
        self.assertEqual(len(logged), 800, logged[:3])
        self.assertTrue(all(pattern.match(line) for line in logged),
                        [line for line in logged if not pattern.match(line)][:3])

    def test_sigterm_finishes_the_step(self):
        agent = self.agent_id("steady")
        self.start_server()
        self.mock.push({"delay": 1.0, "content": "thinking", "tool_calls": [
            {"name": "send_message", "arguments": json.dumps({"message": "finished"})}]})
        result = {}

        def send():
            result["answer"] = self.http("POST", f"/v1/agents/{agent}/messages",
                                         body={"messages": [{"role": "user", "content": "go"}]})

        t = threading.Thread(target=send)
        t.start()
        self.assertTrue(self.wait_for(lambda: len(self.mock.requests) > 0, 10))
        self.assertEqual(self.server.stop(signal.SIGTERM), 0)
        t.join(10)
        status, body, _ = result["answer"]
        self.assertEqual(status, 200)
        texts = [m.get("content") for m in body["messages"]]
        self.assertIn("finished", texts)
        # The step was committed before the exit.
        self.assertIn("finished", self.run_memgpt("recall", "search", "--agent", "steady",
                                                  "--json", "finished", check=0).stdout)

    def test_provider_failure_mid_stream(self):
        agent = self.agent_id("unlucky")
        self.start_server(env={"MEMGPT_MAX_RETRIES": "1"})
        self.mock.push({"content": "first step", "tool_calls": [
            {"name": "conversation_search",
             "arguments": json.dumps({"query": "x", "request_heartbeat": True})}]})
        self.mock.push({"status": 500})
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        conn.request("POST", f"/v1/agents/{agent}/messages/stream",
                     body=json.dumps({"messages": [{"role": "user", "content": "go"}]}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        events = list(sse_events(resp))
        conn.close()
        types = [e["message_type"] if e else "[DONE]" for e in events]
        # The first step arrives, then the error, then the stream ends cleanly.
        self.assertIn("tool_call_message", types)
        self.assertEqual(types[-4:], ["error_message", "stop_reason", "usage_statistics",
                                      "[DONE]"])
        error = events[-4]
        self.assertEqual(error["error_type"], "llm_api_error")
        self.assertTrue(error["run_id"].startswith("run-"))
        self.assertEqual(events[-3]["stop_reason"], "llm_api_error")
        # The step before the failure is stored.
        status, msgs, _ = self.http("GET", f"/v1/agents/{agent}/messages?order=asc")
        self.assertIn("tool_call_message", [m["message_type"] for m in msgs])
        # A whole-answer request with a failing provider is a 502 naming it.
        self.mock.push({"status": 500})
        status, body, _ = self.http("POST", f"/v1/agents/{agent}/messages",
                                    body={"messages": [{"role": "user", "content": "again"}]})
        self.assertEqual(status, 502)
        self.assertIn("the turn failed", body["detail"])

    def test_message_pages_say_where_they_end(self):
        agent = self.agent_id("paged")
        self.start_server()
        for i in range(3):
            self.http("POST", f"/v1/agents/{agent}/messages",
                      body={"messages": [{"role": "user", "content": f"hello {i}"}]})
        path = f"/v1/agents/{agent}/messages"
        status, everything, headers = self.http("GET", f"{path}?order=asc&limit=1000")
        self.assertEqual(headers.get("X-Memgpt-Page-End"), "true")
        stored = list(dict.fromkeys(m["id"] for m in everything))
        self.assertGreaterEqual(len(stored), 6)
        # Two stored messages a page: only the last page says so.
        seen, after, ends = [], "", []
        while not ends or not ends[-1]:
            status, page, headers = self.http("GET", f"{path}?order=asc&limit=2&after={after}")
            self.assertEqual(status, 200)
            ends.append(headers.get("X-Memgpt-Page-End") == "true")
            for m in page:
                if m["id"] not in seen:
                    seen.append(m["id"])
            if page:
                after = page[-1]["id"]
        self.assertEqual(seen, stored)
        self.assertEqual(ends.count(True), 1)
        self.assertGreaterEqual(len(ends), len(stored) // 2)
        # Newest first, the same.
        status, page, headers = self.http("GET", f"{path}?limit=2")
        self.assertNotIn("X-Memgpt-Page-End", headers)
        status, page, headers = self.http("GET", f"{path}?limit=2&after={stored[1]}")
        self.assertEqual([m["id"] for m in page], [stored[0]] * len(page))
        self.assertEqual(headers.get("X-Memgpt-Page-End"), "true")

    def test_client_disconnect_does_not_lose_the_turn(self):
        agent = self.agent_id("patient")
        self.start_server()
        self.mock.push({"delay": 0.8, "content": "slow thought", "tool_calls": [
            {"name": "send_message", "arguments": json.dumps({"message": "still delivered"})}]})
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.request("POST", f"/v1/agents/{agent}/messages/stream",
                     body=json.dumps({"messages": [{"role": "user", "content": "hi"}],
                                      "include_pings": False}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()

        def stored():
            status, msgs, _ = self.http("GET", f"/v1/agents/{agent}/messages?order=asc")
            return any(m.get("content") == "still delivered" for m in msgs)

        self.assertTrue(self.wait_for(stored, 15))

    def server_cpu_seconds(self):
        with open(f"/proc/{self.server.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_client_gone_mid_stream_leaves_server_idle(self):
        """A client that goes away in the middle of a streamed turn must not
        leave a thread spinning on its connection: the turn runs on, the
        server stays idle but for it, and the request ends (is logged) once
        the stream's next write finds the client gone."""
        agent = self.agent_id("deserted")
        self.start_server()
        for i in range(6):
            self.mock.push({"delay": 0.4, "content": f"step {i}", "tool_calls": [
                {"name": "core_memory_append",
                 "arguments": json.dumps({"label": "human", "content": f"fact {i}",
                                          "request_heartbeat": True})}]})
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.request("POST", f"/v1/agents/{agent}/messages",
                     body=json.dumps({"messages": [{"role": "user", "content": "go"}],
                                      "streaming": True, "stream_tokens": True,
                                      "include_pings": False}),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertIsNotNone(next(sse_events(resp)))
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        cpu_before, start = self.server_cpu_seconds(), time.time()

        def logged():
            return any(re.search(rf"POST /v1/agents/{agent}/messages 200 ", line)
                       for line in self.server.log)

        self.assertTrue(self.wait_for(logged, 15), "\n".join(self.server.log))
        # The rest of the turn (its requests to the mock, its steps) after
        # the client left; a spinning thread would use about a core.
        self.assertTrue(self.wait_for(lambda: len(self.mock.chat_requests()) >= 7, 15))
        time.sleep(1)
        spent, elapsed = self.server_cpu_seconds() - cpu_before, time.time() - start
        self.assertLess(spent, 0.25 * elapsed, f"{spent:.2f} s of CPU in {elapsed:.1f} s")
        self.assert_alive()

    def assert_alive(self):
        status, body, _ = self.http("GET", "/v1/health/")
        self.assertEqual(status, 200)

    def test_kill_9_during_streams(self):
        agents = [self.agent_id(f"victim{i}") for i in range(4)]
        self.start_server()
        # Slow streamed steps, each asking for another, so turns are mid-way
        # when the server dies.
        for i in range(60):
            self.mock.push({"chunk_delay": 0.02, "content": f"thinking {i}", "tool_calls": [
                {"name": "core_memory_append",
                 "arguments": json.dumps({"label": "human", "content": f"fact {i}",
                                          "request_heartbeat": True})}]})
        seen = []
        lock = threading.Lock()

        def stream(agent):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
                conn.request("POST", f"/v1/agents/{agent}/messages",
                             body=json.dumps({"messages": [{"role": "user", "content": "go"}],
                                              "streaming": True, "include_pings": False}),
                             headers={"Content-Type": "application/json"})
                for ev in sse_events(conn.getresponse()):
                    # Runtime notices (memory pressure, flushes) are system
                    # messages of the stream only, never rows: skip them.
                    if ev and ev.get("id", "").startswith("message-") \
                            and ev.get("message_type") != "system_message":
                        with lock:
                            seen.append(ev["id"])
            except (OSError, http.client.HTTPException, ValueError):
                pass

        threads = [threading.Thread(target=stream, args=(a,)) for a in agents]
        for t in threads:
            t.start()
        self.assertTrue(self.wait_for(lambda: len(seen) >= 8, 20), f"saw {seen}")
        self.server.proc.kill()
        self.server.proc.wait()
        for t in threads:
            t.join(10)
        with lock:
            sent = set(seen)
        db = self.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        stored = {f"message-{u}" for (u,) in db.execute("SELECT uuid FROM messages")}
        db.close()
        self.assertTrue(sent)
        self.assertFalse(sent - stored, "messages sent to a client but not stored")
        # The next start serves the same agents.
        self.start_server()
        status, listed, _ = self.http("GET", "/v1/agents/?limit=10")
        self.assertEqual(sorted(a["id"] for a in listed), sorted(agents))

    def test_background_run_survives_kill_9(self):
        agent = self.agent_id("patient2")
        self.start_server()
        # A slow turn first, so the background one waits in the queue.
        self.mock.push({"delay": 3, "content": "slow", "tool_calls": [
            {"name": "send_message", "arguments": json.dumps({"message": "first done"})}]})
        def first():
            try:  # the server is killed under it
                self.http("POST", f"/v1/agents/{agent}/messages",
                          body={"messages": [{"role": "user", "content": "first"}]})
            except (OSError, http.client.HTTPException):
                pass

        threading.Thread(target=first, daemon=True).start()
        self.assertTrue(self.wait_for(lambda: len(self.mock.requests) > 0, 10))
        status, run, _ = self.http("POST", f"/v1/agents/{agent}/messages/async",
                                   body={"messages": [{"role": "user",
                                                       "content": "acknowledged later"}]})
        self.assertEqual(status, 200)
        self.assertEqual(run["status"], "created")
        self.server.proc.kill()
        self.server.proc.wait()
        # The next start runs it; its id still answers.
        server = self.start_server()
        self.assertTrue(self.wait_for(
            lambda: any("resuming 1 background run" in line for line in server.log), 10),
            server.log)

        def done():
            status, body, _ = self.http("GET", f"/v1/runs/{run['id']}")
            return status == 200 and body["status"] == "completed"

        self.assertTrue(self.wait_for(done, 20))
        status, msgs, _ = self.http("GET", f"/v1/agents/{agent}/messages?order=asc&limit=1000")
        said = [m["content"] for m in msgs if m["message_type"] == "user_message"]
        self.assertEqual(said.count("acknowledged later"), 1)
        # It was answered (by whichever reply the mock had next: the killed
        # turn may or may not have taken its scripted one).
        at = next(i for i, m in enumerate(msgs) if m.get("content") == "acknowledged later")
        self.assertIn("assistant_message", [m["message_type"] for m in msgs[at + 1:]])
        db = self.db()
        self.assertEqual(db.execute("SELECT count(*) FROM pending_inputs").fetchone()[0], 0)
        db.close()
        # Run again: nothing is pending, nothing runs twice.
        self.server.stop()
        server = self.start_server()
        self.assertFalse(any("resuming" in line for line in server.log))

    def test_multi_message_background_run_survives_kill_9(self):
        """Each input of a background run is stored as its own row and taken
        when it starts: after a crash mid-run, the inputs not yet started run
        under the same run id, and none runs twice."""
        agent = self.agent_id("several")
        self.start_server()
        self.mock.push({"delay": 3, "content": "slow", "tool_calls": [
            {"name": "send_message", "arguments": json.dumps({"message": "one done"})}]})
        status, run, _ = self.http("POST", f"/v1/agents/{agent}/messages/async",
                                   body={"messages": [{"role": "user", "content": c}
                                                      for c in ("one", "two", "three")]})
        self.assertEqual(status, 200)
        self.assertTrue(self.wait_for(lambda: len(self.mock.requests) > 0, 10))
        self.server.proc.kill()
        self.server.proc.wait()
        db = self.db()
        self.assertEqual(db.execute("SELECT count(*) FROM pending_inputs").fetchone()[0], 2)
        db.close()
        server = self.start_server()
        self.assertTrue(self.wait_for(
            lambda: any("resuming 1 background run" in line for line in server.log), 10),
            server.log)

        def done():
            status, body, _ = self.http("GET", f"/v1/runs/{run['id']}")
            return status == 200 and body["status"] == "completed"

        self.assertTrue(self.wait_for(done, 20))
        status, msgs, _ = self.http("GET", f"/v1/agents/{agent}/messages?order=asc&limit=1000")
        said = [m["content"] for m in msgs if m["message_type"] == "user_message"]
        self.assertEqual(said, ["one", "two", "three"])
        db = self.db()
        self.assertEqual(db.execute("SELECT count(*) FROM pending_inputs").fetchone()[0], 0)
        db.close()

    def test_background_run_outlives_sigterm_and_its_outcome_a_restart(self):
        """A stop lets the running turn finish its step and keeps a queued
        background run for the next start; a finished run's outcome is
        stored and still answers after a restart."""
        agent = self.agent_id("enduring")
        self.start_server()
        self.mock.push({"delay": 1.5, "content": "slow", "tool_calls": [
            {"name": "send_message", "arguments": json.dumps({"message": "first done"})}]})

        def first():
            try:
                self.http("POST", f"/v1/agents/{agent}/messages",
                          body={"messages": [{"role": "user", "content": "first"}]})
            except (OSError, http.client.HTTPException):
                pass

        threading.Thread(target=first, daemon=True).start()
        self.assertTrue(self.wait_for(lambda: len(self.mock.requests) > 0, 10))
        status, run, _ = self.http("POST", f"/v1/agents/{agent}/messages/async",
                                   body={"messages": [{"role": "user", "content": "queued"}]})
        self.assertEqual(status, 200)
        self.assertEqual(self.server.stop(signal.SIGTERM), 0)
        db = self.db()
        self.assertEqual(db.execute("SELECT count(*) FROM pending_inputs").fetchone()[0], 1)
        db.close()
        server = self.start_server()
        self.assertTrue(self.wait_for(
            lambda: any("resuming 1 background run" in line for line in server.log), 10),
            server.log)

        def finished():
            status, body, _ = self.http("GET", f"/v1/runs/{run['id']}")
            return body if status == 200 and body["status"] == "completed" else None

        self.assertTrue(self.wait_for(finished, 20))
        live = finished()
        self.assertEqual(self.server.stop(signal.SIGTERM), 0)
        self.start_server()
        status, stored, _ = self.http("GET", f"/v1/runs/{run['id']}")
        self.assertEqual(status, 200)
        self.assertEqual(stored, live)
        self.assertEqual(stored["stop_reason"], "end_turn")
        status, _, _ = self.http("GET", "/v1/runs/run-01a242d3-0000-4000-8000-00000000dead")
        self.assertEqual(status, 404)
        # The outcome goes with its agent.
        self.http("DELETE", f"/v1/agents/{agent}")
        status, _, _ = self.http("GET", f"/v1/runs/{run['id']}")
        self.assertEqual(status, 404)

    def test_run_not_wholly_stored_is_dropped(self):
        """Rows of a run whose last input was never stored (a crash while
        storing it, before the acknowledgement) do not run."""
        agent = self.agent_id("unsure")
        db = self.db()
        internal = db.execute("SELECT id FROM agents WHERE name = 'unsure'").fetchone()[0]
        row = {"input": {"role": "user", "text": "never acknowledged"}, "index": 0, "count": 2,
               "max_steps": 0, "use_assistant_message": True}
        db.execute("INSERT INTO pending_inputs(uuid, agent_id, request, created_at) "
                   "VALUES ('01a242d3-0000-4000-8000-000000000001', ?, ?, 0)",
                   (internal, json.dumps(row)))
        db.commit()
        db.close()
        server = self.start_server()
        status, _, _ = self.http("GET", "/v1/health/")
        self.assertEqual(status, 200)
        self.assertFalse(any("resuming" in line for line in server.log))
        db = self.db()
        self.assertEqual(db.execute("SELECT count(*) FROM pending_inputs").fetchone()[0], 0)
        db.close()
        status, msgs, _ = self.http("GET", f"/v1/agents/{agent}/messages?limit=1000")
        self.assertNotIn("never acknowledged", [m.get("content") for m in msgs])

    def test_cli_and_server_share_a_home(self):
        served = self.agent_id("served")
        self.run_memgpt("agents", "create", "local", check=0)
        self.start_server()
        errors = []

        def api_turns():
            for i in range(15):
                status, body, _ = self.http("POST", f"/v1/agents/{served}/messages",
                                            body={"messages": [{"role": "user",
                                                                "content": f"api {i}"}]})
                if status != 200:
                    errors.append((status, body))

        t = threading.Thread(target=api_turns)
        t.start()
        for i in range(8):
            self.send(f"cli {i}", agent="local")
            self.send(f"cli to served {i}", agent="served")
        t.join(60)
        self.assertEqual(errors, [], f"server exit code {self.server.proc.poll()}")
        db = self.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        db.close()
        status, msgs, _ = self.http("GET", f"/v1/agents/{served}/messages?limit=1000")
        said = {m["content"] for m in msgs if m["message_type"] == "user_message"}
        self.assertEqual(said, {f"api {i}" for i in range(15)} | {f"cli to served {i}"
                                                                    for i in range(8)})
        # A cached answer gives way at once to a change made by another
        # process (the wal-index moved; store/watch.c).
        for _ in range(2):
            status, state, _ = self.http("GET", f"/v1/agents/{served}")
            self.assertEqual(status, 200)
        self.run_memgpt("memory", "set", "--agent", "served", "human", "Name: Changed By CLI",
                        check=0)
        status, state, _ = self.http("GET", f"/v1/agents/{served}")
        human = [b for b in state["memory"]["blocks"] if b["label"] == "human"]
        self.assertEqual(human[0]["value"], "Name: Changed By CLI")
        # An agent made by the CLI while the server runs is served at once.
        self.run_memgpt("agents", "create", "latecomer", check=0)
        status, listed, _ = self.http("GET", "/v1/agents/?name=latecomer")
        self.assertEqual([a["name"] for a in listed], ["latecomer"])


if __name__ == "__main__":
    main()
