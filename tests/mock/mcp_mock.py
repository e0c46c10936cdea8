#!/usr/bin/env python3
"""A strict MCP server over stdio for the client's edge cases, which the
reference servers do not exercise: tools listed over several pages, a
banner line on stdout, notifications and requests of the server's own
(ping, and one we must refuse) in the middle of a call, and a protocol
version we do not speak.

    mcp_mock.py [--pages N] [--banner] [--chatty] [--version V]

It checks what the client sends, as a real server would: JSON-RPC 2.0
framing, `initialize` first, `notifications/initialized` before any other
request, known methods only, `arguments` an object; anything else is
answered with a JSON-RPC error (and counted: tool `violations` reports
them). Every tool echoes its own name and arguments."""

import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=1)
    ap.add_argument("--banner", action="store_true")
    ap.add_argument("--chatty", action="store_true")
    ap.add_argument("--version")
    args = ap.parse_args()
    tools = [{"name": f"tool_{i}", "description": f"tool number {i}",
              "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}}
             for i in range(3 * args.pages)]
    tools.append({"name": "violations", "description": "protocol errors seen",
                  "inputSchema": {"type": "object"}})
    state = {"initialized": False, "started": False, "violations": [], "pending_ping": None}
    out = sys.stdout

    def send(msg):
        out.write(json.dumps(msg) + "\n")
        out.flush()

    def error(rid, code, text):
        state["violations"].append(text)
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": text}})

    if args.banner:
        out.write("mcp-mock starting up (not JSON)\n")
        out.flush()
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            state["violations"].append("a line that is not JSON")
            continue
        if msg.get("jsonrpc") != "2.0":
            error(msg.get("id"), -32600, "jsonrpc must be 2.0")
            continue
        method, rid = msg.get("method"), msg.get("id")
        if method is None:
            # An answer to one of our requests.
            if rid == state["pending_ping"] and msg.get("result") == {}:
                state["pending_ping"] = None
            elif rid != "refuse-me" or "error" not in msg:
                state["violations"].append(f"unexpected answer {msg}")
            continue
        if rid is not None and not isinstance(rid, (int, str)):
            error(rid, -32600, "id must be a number or a string")
            continue
        if method == "initialize":
            state["started"] = True
            version = args.version or msg["params"]["protocolVersion"]
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": version, "capabilities": {"tools": {}},
                "serverInfo": {"name": "mcp-mock", "version": "1"}}})
        elif method == "notifications/initialized":
            state["initialized"] = True
        elif not state["started"] or not state["initialized"]:
            error(rid, -32002, f"{method} before the initialization finished")
        elif method == "tools/list":
            cursor = (msg.get("params") or {}).get("cursor")
            page = int(cursor) if cursor else 0
            chunk = tools[page * 3:(page + 1) * 3] if page < args.pages - 1 else tools[page * 3:]
            result = {"tools": chunk}
            if page < args.pages - 1:
                result["nextCursor"] = str(page + 1)
            send({"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "tools/call":
            params = msg.get("params") or {}
            if not isinstance(params.get("arguments", {}), dict):
                error(rid, -32602, "arguments must be an object")
                continue
            if args.chatty:
                send({"jsonrpc": "2.0", "method": "notifications/message",
                      "params": {"level": "info", "data": "working"}})
                state["pending_ping"] = "ping-1"
                send({"jsonrpc": "2.0", "id": "ping-1", "method": "ping"})
                send({"jsonrpc": "2.0", "id": "refuse-me", "method": "sampling/createMessage",
                      "params": {}})
                # The answer to the ping must come before we go on.
                reply = json.loads(sys.stdin.readline())
                if reply.get("id") != "ping-1" or reply.get("result") != {}:
                    state["violations"].append(f"no pong: {reply}")
                state["pending_ping"] = None
            name = params.get("name")
            if name == "violations":
                text = json.dumps(state["violations"])
            else:
                text = f"{name} got {json.dumps(params.get('arguments', {}), sort_keys=True)}"
            send({"jsonrpc": "2.0", "id": rid, "result": {"content": [
                {"type": "text", "text": text}]}})
        elif rid is not None:
            error(rid, -32601, f"unknown method {method}")


if __name__ == "__main__":
    main()
