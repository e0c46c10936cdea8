#!/usr/bin/env python3
"""A strict loopback mock of the Anthropic Messages API (POST /v1/messages).

The integration tests run the real `memgpt` binary against this server, as
they do against openai_mock.py. It is strict in the same spirit: it refuses
the requests the real API refuses, with its status codes, its error shape
({"type": "error", "error": {"type", "message"}}) and, where known, its
wording. In particular it refuses:

  - a missing or wrong x-api-key (401 authentication_error), a missing or
    unknown anthropic-version header;
  - unknown top-level fields, a missing max_tokens or model, a "system" role
    inside messages (the system prompt is a top-level field);
  - turns that do not alternate between user and assistant, or a first turn
    that is not the user's;
  - a tool_use whose id has no tool_result in the very next user turn, a
    tool_result whose id matches no tool_use of the assistant turn before it,
    tool_result blocks after other blocks in that turn, duplicate ids, tool
    blocks in a request without tools;
  - empty or blank text blocks, thinking blocks whose signature this mock did
    not issue for that exact text, and a turn with tool_use that the mock
    answered with thinking blocks but that comes back without them;
  - a prompt over the model's window: 400 invalid_request_error
    "prompt is too long: N tokens > W maximum".

Deliberately stricter than the real service in one place: the API used to
refuse non-alternating roles and a first turn that is not the user's, and
now documents that it merges consecutive same-role turns instead. A client
that leans on the merging lets the server decide where its tool results and
events go, so the mock keeps the older, stricter rules.

Scripting is the same as MockOpenAI's, so a test suite written for one runs
against the other unchanged: push(spec) queues responses in the OpenAI-style
spec ({"content", "tool_calls": [{"name", "arguments", "id"}], "usage",
"finish_reason", "status", "headers", "body", "raw_body", "drop", "delay",
"context_length_exceeded"}), which the mock turns into content blocks (text,
then tool_use). Anthropic-only keys: "thinking" (text or list of texts: signed
thinking blocks, placed first), "redacted_thinking" (list of data strings),
"stop_reason", and "blocks" (the content array, used as given).

Streaming ("stream": true) answers with the API's typed Server-Sent Events:
message_start, a ping, for each content block content_block_start, its
deltas (text_delta, input_json_delta with the tool input's JSON text in
pieces, thinking_delta, then one signature_delta) and content_block_stop,
then message_delta (stop_reason, output usage) and message_stop. The scripted
spec can make the delivery hostile; see stream_util.py for the keys
(chunk_bytes, chunk_delay, piece_chars, keepalive = a ping event before every
event, stream_error = an error event, cut_after_bytes, cut_clean).

Requests are recorded with the wire body under "wire" and, under "body", a
provider-neutral view in the OpenAI chat shape (system message first, user
text, assistant content + tool_calls, tool results as role "tool"), so that
assertions written against MockOpenAI's records read the same fields.
chat_requests() returns those views; messages_requests() the wire bodies.
Prompt tokens are openai_mock.count_prompt_tokens of the view, so windows mean
the same thing for both mocks.

Standalone use:

    python3 tests/mock/anthropic_mock.py --port 8090 [--api-key KEY] [--window N]

Only the Python 3.11 standard library is used.
"""

import hashlib
import hmac
import json
import os
import re
import sys
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mock_base import COMMON_SPEC_KEYS, FixedWindows, MockError, MockServer, Reply  # noqa: E402
from mock_base import default_answer  # noqa: E402
from mock_base import ceil_div4 as _ceil_div4  # noqa: E402
from mock_base import check_spec, keyed_mock_main, load_json_strict, media_type  # noqa: E402
from mock_base import is_int as _is_int  # noqa: E402
from mock_base import is_number as _is_number  # noqa: E402
from openai_mock import content_text, count_prompt_tokens  # noqa: E402
from stream_util import STREAM_SPEC_KEYS, assemble, pieces, sse  # noqa: E402

__all__ = ["MockAnthropic", "ApiError", "openai_view", "validate_messages_request"]

# ------------------------------------------------------------------ constants

API_VERSIONS = frozenset({"2023-06-01", "2023-01-01"})

BODY_KEYS = frozenset({
    "model", "messages", "max_tokens", "system", "tools", "tool_choice", "metadata",
    "stop_sequences", "stream", "temperature", "top_p", "top_k", "thinking",
    "service_tier", "container", "mcp_servers", "context_management",
})

TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

# Keys each content block may carry, by role and type.
BLOCK_KEYS = {
    "text": frozenset({"type", "text", "cache_control", "citations"}),
    "tool_use": frozenset({"type", "id", "name", "input", "cache_control"}),
    "tool_result": frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
    "thinking": frozenset({"type", "thinking", "signature"}),
    "redacted_thinking": frozenset({"type", "data"}),
}
USER_BLOCKS = ("text", "tool_result")
ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking")

DEFAULT_ERRORS = {
    400: ("invalid_request_error",
          "There was an issue with the format or content of your request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error",
          "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}

SPEC_KEYS = COMMON_SPEC_KEYS | frozenset({
    # Anthropic-only
    "thinking", "redacted_thinking", "stop_reason", "blocks",
}) | STREAM_SPEC_KEYS

# GET /v1/models: models per page by default, and the most a request may ask.
MODELS_DEFAULT_LIMIT = 20
MODELS_MAX_LIMIT = 1000

FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                  "content_filter": "refusal"}

# Signatures are an HMAC of the thinking text under a per-process key, so a
# client can only pass validation by sending back exactly what it received.
_SIGNING_KEY = os.urandom(16)


class UnsupportedScript(ValueError):
    """A scripted response the Anthropic wire format cannot express (tool_use
    input is always a JSON object, so there are no unparseable arguments)."""


class ApiError(MockError):
    """An error answer in the Anthropic shape; raised anywhere while handling."""

    def __init__(self, status, message, type_="invalid_request_error", headers=None):
        super().__init__(status, message, headers)
        self.type = type_

    def body(self, request_id=None):
        out = {"type": "error", "error": {"type": self.type, "message": self.message}}
        if request_id:
            out["request_id"] = request_id
        return out


def _bad(message):
    return ApiError(400, message, "invalid_request_error")


# ------------------------------------------------------------ small helpers

def sign_thinking(text):
    return hmac.new(_SIGNING_KEY, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _blocks(content):
    """A message's content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content


# ------------------------------------------------------ request validation

def _extra_keys(obj, allowed, param):
    extra = sorted(set(obj) - allowed)
    if extra:
        raise _bad(f"{param}.{extra[0]}: Extra inputs are not permitted")


def _check_text(block, param):
    if not isinstance(block.get("text"), str):
        raise _bad(f"{param}.text: Input should be a valid string")
    if not block["text"]:
        raise _bad("messages: text content blocks must be non-empty")
    if not block["text"].strip():
        raise _bad("messages: text content blocks must contain non-whitespace text")


def _check_block(block, role, param):
    if not isinstance(block, dict):
        raise _bad(f"{param}: Input should be a valid dictionary or object to extract fields from")
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        # Images, documents and server tools are real but out of this mock's scope.
        raise _bad(f"{param}.type: Input tag {json.dumps(kind)} found using 'type' does not "
                   f"match any of the expected tags: {', '.join(repr(a) for a in allowed)}")
    _extra_keys(block, BLOCK_KEYS[kind], f"{param}.{kind}")
    if kind == "text":
        _check_text(block, param)
    elif kind == "tool_use":
        for key in ("id", "name", "input"):
            if key not in block:
                raise _bad(f"{param}.tool_use.{key}: Field required")
        if not isinstance(block["id"], str) or not TOOL_ID_RE.match(block["id"]):
            raise _bad(f"{param}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        if not isinstance(block["name"], str) or not block["name"]:
            raise _bad(f"{param}.tool_use.name: Input should be a valid string")
        if not isinstance(block["input"], dict):
            raise _bad(f"{param}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise _bad(f"{param}.tool_result.tool_use_id: Field required")
        if not TOOL_ID_RE.match(block["tool_use_id"]):
            raise _bad(f"{param}.tool_result.tool_use_id: String should match pattern "
                       "'^[a-zA-Z0-9_-]+$'")
        content = block.get("content")
        if isinstance(content, list):
            for k, part in enumerate(content):
                p = f"{param}.tool_result.content.{k}"
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise _bad(f"{p}.type: only text content is supported by this mock")
                _extra_keys(part, BLOCK_KEYS["text"], p)
                _check_text(part, p)
        elif content is not None and not isinstance(content, str):
            raise _bad(f"{param}.tool_result.content: Input should be a valid string or list")
        if "is_error" in block and not isinstance(block["is_error"], bool):
            raise _bad(f"{param}.tool_result.is_error: Input should be a valid boolean")
    elif kind == "thinking":
        for key in ("thinking", "signature"):
            if not isinstance(block.get(key), str):
                raise _bad(f"{param}.thinking.{key}: Field required")
        if not hmac.compare_digest(block["signature"], sign_thinking(block["thinking"])):
            raise _bad(f"{param}: Invalid `signature` in `thinking` block")
    elif not isinstance(block.get("data"), str):  # redacted_thinking
        raise _bad(f"{param}.redacted_thinking.data: Field required")


def _check_message(i, msg):
    param = f"messages.{i}"
    if not isinstance(msg, dict):
        raise _bad(f"{param}: Input should be a valid dictionary")
    role = msg.get("role")
    if role == "system":
        raise _bad('messages: Unexpected role "system". The Messages API accepts a top-level '
                   '`system` parameter, not "system" as an input message role.')
    if role not in ("user", "assistant"):
        raise _bad(f"{param}.role: Input should be 'user' or 'assistant'")
    _extra_keys(msg, frozenset({"role", "content"}), param)
    if "content" not in msg:
        raise _bad(f"{param}.content: Field required")
    content = msg["content"]
    if isinstance(content, str):
        if not content:
            raise _bad("messages: text content blocks must be non-empty")
        return
    if not isinstance(content, list):
        raise _bad(f"{param}.content: Input should be a valid list")
    for j, block in enumerate(content):
        _check_block(block, role, f"{param}.content.{j}")


def _check_turns(messages):
    """Alternation, first turn, non-empty content, tool_use/tool_result pairs."""
    if messages[0]["role"] != "user":
        raise _bad('messages: first message must use the "user" role')
    for i in range(1, len(messages)):
        if messages[i]["role"] == messages[i - 1]["role"]:
            raise _bad('messages: roles must alternate between "user" and "assistant", but '
                       f'found multiple "{messages[i]["role"]}" roles in a row')
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        if not _blocks(msg["content"]) and not (i == last and msg["role"] == "assistant"):
            raise _bad(f"messages.{i}: all messages must have non-empty content except for "
                       "the optional final assistant message")
    final = messages[last]
    if final["role"] == "assistant":
        text = "".join(b.get("text", "") for b in _blocks(final["content"])
                       if b.get("type") == "text")
        if text and text != text.rstrip():
            raise _bad("messages: final assistant content cannot end with trailing whitespace")

    seen_ids = set()
    for i, msg in enumerate(messages):
        blocks = _blocks(msg["content"])
        if msg["role"] == "assistant":
            for j, b in enumerate(blocks):
                if b["type"] == "tool_use":
                    if b["id"] in seen_ids:
                        raise _bad(f"messages.{i}.content.{j}: `tool_use` ids must be unique")
                    seen_ids.add(b["id"])
            continue
        prev = messages[i - 1] if i > 0 else None
        calls = [b["id"] for b in _blocks(prev["content"]) if b["type"] == "tool_use"] \
            if prev else []
        # The results answering the previous turn must lead this turn.
        lead = []
        for b in blocks:
            if b["type"] != "tool_result":
                break
            lead.append(b["tool_use_id"])
        missing = [c for c in calls if c not in lead]
        if missing:
            raise _bad(f"messages.{i - 1}: `tool_use` ids were found without `tool_result` "
                       f"blocks immediately after: {', '.join(missing)}. Each `tool_use` "
                       "block must have a corresponding `tool_result` block in the next "
                       "message.")
        answered = set()
        for j, b in enumerate(blocks):
            if b["type"] != "tool_result":
                continue
            if b["tool_use_id"] not in calls or b["tool_use_id"] in answered:
                raise _bad(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                           f"`tool_result` blocks: {b['tool_use_id']}. Each `tool_result` "
                           "block must have a corresponding `tool_use` block in the previous "
                           "message.")
            answered.add(b["tool_use_id"])
    if final["role"] == "assistant":
        pending = [b["id"] for b in _blocks(final["content"]) if b["type"] == "tool_use"]
        if pending:
            raise _bad(f"messages.{last}: `tool_use` ids were found without `tool_result` "
                       f"blocks immediately after: {', '.join(pending)}. Each `tool_use` "
                       "block must have a corresponding `tool_result` block in the next "
                       "message.")


def _check_tools(tools):
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    names = set()
    for i, tool in enumerate(tools):
        p = f"tools.{i}"
        if not isinstance(tool, dict):
            raise _bad(f"{p}: Input should be a valid dictionary")
        if tool.get("type", "custom") != "custom":
            raise _bad(f"{p}.type: only custom tools are supported by this mock")
        _extra_keys(tool, frozenset({"type", "name", "description", "input_schema",
                                     "cache_control"}), f"{p}.custom")
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            raise _bad(f"{p}.custom.name: String should match pattern "
                       "'^[a-zA-Z0-9_-]{1,128}$'")
        if name in names:
            raise _bad("tools: Tool names must be unique.")
        names.add(name)
        if "description" in tool and not isinstance(tool["description"], str):
            raise _bad(f"{p}.custom.description: Input should be a valid string")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"{p}.custom.input_schema: Field required")
        if schema.get("type") != "object":
            raise _bad(f"{p}.custom.input_schema.type: Input should be 'object'")
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise _bad(f"{p}.custom.input_schema.properties: Input should be a valid "
                       "dictionary")
        for r in schema.get("required", []):
            if r not in props:
                raise _bad(f"{p}.custom.input_schema: 'required' names '{r}', which is not "
                           "in 'properties'")
    return names


def _check_tool_choice(choice, names):
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool",
                                                                  "none"):
        raise _bad("tool_choice: Input tag found using 'type' does not match any of the "
                   "expected tags: 'auto', 'any', 'tool', 'none'")
    if names is None and choice["type"] != "none":
        raise _bad("tool_choice: tool_choice may only be specified while providing tools.")
    if choice["type"] == "tool" and choice.get("name") not in (names or ()):
        raise _bad(f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in "
                   "provided tools")


def _check_scalars(body):
    if "max_tokens" not in body:
        raise _bad("max_tokens: Field required")
    if not _is_int(body["max_tokens"]):
        raise _bad("max_tokens: Input should be a valid integer")
    if body["max_tokens"] < 1:
        raise _bad("max_tokens: Input should be greater than or equal to 1")
    if "model" not in body:
        raise _bad("model: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise _bad("model: Input should be a valid string")
    for key, lo, hi in (("temperature", 0, 1), ("top_p", 0, 1)):
        if key in body:
            if not _is_number(body[key]):
                raise _bad(f"{key}: Input should be a valid number")
            if not lo <= body[key] <= hi:
                raise _bad(f"{key}: range: {lo}..{hi}")
    if "top_k" in body and (not _is_int(body["top_k"]) or body["top_k"] < 0):
        raise _bad("top_k: Input should be a valid non-negative integer")
    stop = body.get("stop_sequences")
    if stop is not None and (not isinstance(stop, list)
                             or not all(isinstance(s, str) for s in stop)):
        raise _bad("stop_sequences: Input should be a valid list of strings")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("stream: Input should be a valid boolean")
    meta = body.get("metadata")
    if meta is not None and (not isinstance(meta, dict) or set(meta) - {"user_id"}):
        raise _bad("metadata: only user_id is allowed")
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
            raise _bad("thinking: Input tag found using 'type' does not match any of the "
                       "expected tags: 'enabled', 'disabled'")
        if thinking["type"] == "enabled":
            budget = thinking.get("budget_tokens")
            if not _is_int(budget) or budget < 1024:
                raise _bad("thinking.enabled.budget_tokens: Input should be greater than or "
                           "equal to 1024")
            if budget >= body["max_tokens"]:
                raise _bad("`max_tokens` must be greater than `thinking.budget_tokens`")


def _check_system(system):
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _bad("system: Input should be a valid string or list of text blocks")
    for k, part in enumerate(system):
        p = f"system.{k}"
        if not isinstance(part, dict) or part.get("type") != "text":
            raise _bad(f"{p}.type: Input should be 'text'")
        _extra_keys(part, BLOCK_KEYS["text"], p)
        _check_text(part, p)


def validate_messages_request(body):
    """Raises ApiError for anything the real API refuses (apart from the
    window, the signatures of redacted thinking and the thinking passthrough,
    which need the server's state)."""
    if not isinstance(body, dict):
        raise _bad("Input should be a valid dictionary or object to extract fields from")
    for key in body:
        if key not in BODY_KEYS:
            raise _bad(f"{key}: Extra inputs are not permitted")
    _check_scalars(body)
    if "messages" not in body:
        raise _bad("messages: Field required")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    _check_system(body.get("system"))
    for i, msg in enumerate(messages):
        _check_message(i, msg)
    _check_turns(messages)
    names = _check_tools(body["tools"]) if "tools" in body else None
    if "tool_choice" in body:
        _check_tool_choice(body["tool_choice"], names)
    if names is None and any(b["type"] in ("tool_use", "tool_result")
                             for m in messages for b in _blocks(m["content"])):
        raise _bad("Requests which include `tool_use` or `tool_result` blocks must define "
                   "tools.")


# ------------------------------------------------------------ neutral view

def _result_text(block):
    content = block.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content)
    return content if isinstance(content, str) else ""


def openai_view(body):
    """The request as an OpenAI chat body: what assertions and the default
    policy read. Thinking blocks are not part of that shape and are left out
    (they are in the wire body)."""
    messages = []
    system = body.get("system")
    if isinstance(system, list):
        system = "".join(p.get("text", "") for p in system)
    if system is not None:
        messages.append({"role": "system", "content": system})
    for msg in body["messages"]:
        blocks = _blocks(msg["content"])
        if msg["role"] == "user":
            for b in blocks:
                if b["type"] == "tool_result":
                    messages.append({"role": "tool", "tool_call_id": b["tool_use_id"],
                                     "content": _result_text(b)})
                else:
                    messages.append({"role": "user", "content": b["text"]})
            continue
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        out = {"role": "assistant", "content": text or None}
        calls = [{"id": b["id"], "type": "function",
                  "function": {"name": b["name"], "arguments": json.dumps(b["input"])}}
                 for b in blocks if b["type"] == "tool_use"]
        if calls:
            out["tool_calls"] = calls
        messages.append(out)
    view = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    if "tools" in body:
        view["tools"] = [{"type": "function", "function": {
            "name": t["name"], "description": t.get("description", ""),
            "parameters": t["input_schema"]}} for t in body["tools"]]
    return view


def _check_spec(spec):
    """Catch typos (and scripts this wire format cannot carry) at push() time."""
    check_spec(spec, SPEC_KEYS)
    for call in spec.get("tool_calls") or []:
        args = call.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                args = None
        if not isinstance(args, dict):
            raise UnsupportedScript(
                f"tool call {call['name']!r}: Anthropic tool_use input is always a JSON "
                f"object, so {call.get('arguments')!r} cannot be scripted")
    thinking = spec.get("thinking")
    if thinking is not None and not isinstance(thinking, (str, list)):
        raise ValueError("scripted 'thinking' must be a string or a list of strings")


# ------------------------------------------------------------------ server

class MockAnthropic(FixedWindows, MockServer):
    """A loopback Anthropic server. See the module docstring and push().

    GET /v1/models lists `models` (default MODELS) plus the models given
    windows, in pages (limit 1-1000, default 20; after_id or before_id), as
    the API does; push(spec, "models") scripts it (status, body, raw_body,
    drop, delay)."""

    NAME = "anthropic-mock"
    SERVER_VERSION = "anthropic-mock/1.0"
    ERROR = ApiError
    ENDPOINTS = ("chat", "models")
    ENDPOINT_ERROR = ("the Anthropic API has no embeddings endpoint: endpoint must be 'chat' "
                      "or 'models'")
    REQUEST_ID_HEADER = "request-id"
    RECORD_FIELDS = {"wire": None}
    MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")

    def __init__(self, api_key="test-key", context_windows=None, default_window=8192,
                 keep_alive=False, verbose=False):
        """Same arguments as MockOpenAI."""
        super().__init__(keep_alive, verbose)
        self.api_key = api_key
        self.context_windows = dict(context_windows or {})
        self.default_window = default_window
        self.models = list(self.MODELS)
        self._issued_thinking = {}  # tool_use id -> the thinking blocks sent with it
        self._issued_redacted = set()
        self._message_seq = 0
        self._call_seq = 0

    @property
    def base_url(self):
        """What ANTHROPIC_BASE_URL should be (the SDKs' form, without /v1)."""
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------- scripting

    @staticmethod
    def _check_spec(spec):
        _check_spec(spec)

    @property
    def requests(self):
        """Every request received, in arrival order: method, path, query,
        headers, wire (the parsed JSON body), body (the neutral view once the
        request validated, else the wire body), status, error, valid."""
        return super().requests

    def chat_requests(self):
        """Neutral views (OpenAI chat shape) of the valid /v1/messages requests."""
        with self._lock:
            return [r["body"] for r in self._records
                    if r["path"] == "/v1/messages" and r["valid"]]

    def messages_requests(self):
        """Wire bodies of the valid /v1/messages requests."""
        with self._lock:
            return [r["wire"] for r in self._records
                    if r["path"] == "/v1/messages" and r["valid"]]

    # ------------------------------------------------------------ handling

    def _route(self, method, path, headers, raw, record):
        if method == "POST" and path == "/v1/messages":
            return self._messages(headers, raw, record)
        if method == "GET" and path == "/v1/models":
            return self._models(record)
        raise ApiError(404, "Not Found", "not_found_error")

    def _internal_error(self, exc):
        return ApiError(500, f"anthropic-mock internal error: {exc!r}", "api_error")

    def _status_error(self, status, headers):
        type_, message = DEFAULT_ERRORS.get(
            status, DEFAULT_ERRORS[500] if status >= 500 else DEFAULT_ERRORS[400])
        return ApiError(status, message, type_, headers)

    def _check_headers(self, headers):
        if self.api_key is not None:
            key = headers.get("x-api-key")
            if not key:
                raise ApiError(401, "x-api-key header is required", "authentication_error")
            if not hmac.compare_digest(key.encode(), self.api_key.encode()):
                raise ApiError(401, "invalid x-api-key", "authentication_error")
        version = headers.get("anthropic-version")
        if not version:
            raise _bad("anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise _bad(f"anthropic-version: {json.dumps(version)} is not a valid version")

    @staticmethod
    def _parse_json_object(headers, raw):
        if media_type(headers) != "application/json":
            raise _bad("Content-Type must be application/json")
        try:
            body = load_json_strict(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad(f"There was an error parsing the body of your request: {exc}") from None
        return body

    def _check_issued(self, body):
        """State-dependent rules: redacted thinking must be data this mock
        issued, and the last assistant turn, if the mock answered its tool_use
        with thinking blocks, must carry those blocks unchanged and first (as
        the API requires of the turn in an ongoing tool-use loop; thinking in
        older turns may be dropped, but must be valid where present)."""
        with self._lock:
            issued = dict(self._issued_thinking)
            redacted = set(self._issued_redacted)
        last = max((i for i, m in enumerate(body["messages"]) if m["role"] == "assistant"),
                   default=-1)
        for i, msg in enumerate(body["messages"]):
            if msg["role"] != "assistant":
                continue
            blocks = _blocks(msg["content"])
            for j, b in enumerate(blocks):
                if b["type"] == "redacted_thinking" and b["data"] not in redacted:
                    raise _bad(f"messages.{i}.content.{j}: Invalid `data` in "
                               "`redacted_thinking` block")
            if i != last:
                continue
            expected = next((issued[b["id"]] for b in blocks
                             if b["type"] == "tool_use" and b["id"] in issued), None)
            if expected is None:
                continue
            lead = [b for b in blocks if b["type"] in ("thinking", "redacted_thinking")]
            first = blocks[0]["type"] if blocks else "nothing"
            if first not in ("thinking", "redacted_thinking"):
                raise _bad(f"messages.{i}.content.0: Expected `thinking` or "
                           f"`redacted_thinking`, but found `{first}`. When `thinking` is "
                           "enabled, a final `assistant` message must start with a thinking "
                           "block.")
            if lead != expected:
                raise _bad(f"messages.{i}: the thinking blocks of this turn were modified; "
                           "they must be passed back exactly as they were received")

    def _prompt_too_long(self, tokens, window):
        return _bad(f"prompt is too long: {tokens} tokens > {window} maximum")

    def _messages(self, headers, raw, record):
        body = self._parse_json_object(headers, raw)
        validate_messages_request(body)
        self._check_issued(body)
        view = openai_view(body)
        record["body"] = view
        window = self.window_for(body["model"])
        prompt_tokens = count_prompt_tokens(view)
        if prompt_tokens > window:
            raise self._prompt_too_long(prompt_tokens, window)
        record["valid"] = True

        spec = self._pop() or {}
        self._sleep(spec)
        if spec.get("context_length_exceeded"):
            raise self._prompt_too_long(max(prompt_tokens, window + 1), window)
        reply = self._scripted_transport(spec)
        if reply is not None:
            return reply

        if "blocks" in spec:
            content = spec["blocks"]
        elif {"content", "tool_calls", "thinking", "redacted_thinking"} & set(spec):
            content = self._scripted_blocks(spec)
        else:
            content = self._default_blocks(view)
        self._remember_thinking(content)
        uses_tools = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
        stop = spec.get("stop_reason") or FINISH_TO_STOP.get(spec.get("finish_reason")) or (
            "tool_use" if uses_tools else "end_turn")
        out_text = "".join(b.get("text", "") + b.get("thinking", "") + b.get("name", "")
                           + json.dumps(b.get("input", "")) for b in content
                           if isinstance(b, dict))
        usage = {"input_tokens": prompt_tokens,
                 "output_tokens": max(1, _ceil_div4(len(out_text.encode("utf-8"))))}
        for key, value in (spec.get("usage") or {}).items():
            usage[{"prompt_tokens": "input_tokens",
                   "completion_tokens": "output_tokens"}.get(key, key)] = value
        usage.pop("total_tokens", None)
        with self._lock:
            self._message_seq += 1
            message_id = f"msg_mock_{self._message_seq}"
        if body.get("stream"):
            return Reply(200, stream=self._stream(body["model"], message_id, content, stop,
                                                   usage, spec), spec=spec)
        return Reply.json(200, {
            "id": message_id, "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage,
        })

    @staticmethod
    def _stream(model, message_id, content, stop, usage, spec):
        """The message as the API streams it (see the module docstring)."""
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"}
        start_usage["output_tokens"] = 1
        events = [sse({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
            "message_start"), sse({"type": "ping"}, "ping")]
        for index, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                start = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"], spec)]
            elif kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": p}
                          for p in pieces(block["thinking"], spec)]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "tool_use":
                start = {"type": "tool_use", "id": block.get("id"), "name": block.get("name"),
                         "input": {}}
                text = json.dumps(block.get("input"))
                deltas = [{"type": "input_json_delta", "partial_json": p}
                          for p in pieces(text, spec)]
            else:  # redacted_thinking and anything scripted verbatim: whole at the start
                start, deltas = block, []
            events.append(sse({"type": "content_block_start", "index": index,
                               "content_block": start}, "content_block_start"))
            events += [sse({"type": "content_block_delta", "index": index, "delta": d},
                           "content_block_delta") for d in deltas]
            events.append(sse({"type": "content_block_stop", "index": index},
                              "content_block_stop"))
        events.append(sse({"type": "message_delta",
                           "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": {"output_tokens": usage.get("output_tokens", 1)}},
                          "message_delta"))

        def error_event(message, type_):
            return sse({"type": "error", "error": {"type": type_ or "overloaded_error",
                                                   "message": message}}, "error")

        return assemble(events, sse({"type": "message_stop"}, "message_stop"), spec,
                        sse({"type": "ping"}, "ping"), error_event)

    def _new_call_id(self):
        with self._lock:
            self._call_seq += 1
            return f"toolu_mock_{self._call_seq:04d}"

    def _thinking_blocks(self, spec):
        texts = spec.get("thinking")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        out = [{"type": "thinking", "thinking": t, "signature": sign_thinking(t)} for t in texts]
        for data in spec.get("redacted_thinking") or []:
            out.append({"type": "redacted_thinking", "data": data})
        return out

    def _scripted_blocks(self, spec):
        blocks = self._thinking_blocks(spec)
        if spec.get("content"):
            blocks.append({"type": "text", "text": spec["content"]})
        for call in spec.get("tool_calls") or []:
            args = call.get("arguments", {})
            if isinstance(args, str):
                args = json.loads(args)
            blocks.append({"type": "tool_use", "id": call.get("id") or self._new_call_id(),
                           "name": call["name"], "input": args})
        return blocks

    def _remember_thinking(self, content):
        thinking = [b for b in content if isinstance(b, dict)
                    and b.get("type") in ("thinking", "redacted_thinking")]
        if not thinking:
            return
        with self._lock:
            for b in thinking:
                if b["type"] == "redacted_thinking" and isinstance(b.get("data"), str):
                    self._issued_redacted.add(b["data"])
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_use":
                    self._issued_thinking[b.get("id")] = thinking

    def _default_blocks(self, view):
        """Deterministic stand-in for a model, with MockOpenAI's policy."""
        messages = view["messages"]
        if not view.get("tools"):
            return [{"type": "text", "text": self._summarize(messages)}]
        last = messages[-1]
        text, args = default_answer(last["role"], content_text(last.get("content")))
        blocks = [{"type": "text", "text": text}]
        if args:
            blocks.append({"type": "tool_use", "id": self._new_call_id(),
                           "name": "send_message", "input": args})
        return blocks

    def _summarize(self, messages):
        return self._record_summary(
            text for msg in messages
            for text in [content_text(msg.get("content"))]
            + [c["function"]["arguments"] for c in msg.get("tool_calls") or []])

    def _models(self, record):
        """GET /v1/models: one page, newest first in the real API, sorted by
        id here. Query parameters are checked as the API checks them."""
        query = parse_qs(record["query"] or "", keep_blank_values=True)
        unknown = set(query) - {"limit", "after_id", "before_id"}
        if unknown:
            raise _bad(f"{sorted(unknown)[0]}: Extra inputs are not permitted")
        for key, values in query.items():
            if len(values) > 1:
                raise _bad(f"{key}: given more than once")
        limit = MODELS_DEFAULT_LIMIT
        if "limit" in query:
            text = query["limit"][0]
            if not text.isdigit() or not 1 <= int(text) <= MODELS_MAX_LIMIT:
                raise _bad(f"limit: Input should be an integer from 1 to {MODELS_MAX_LIMIT}")
            limit = int(text)
        if "after_id" in query and "before_id" in query:
            raise _bad("after_id and before_id cannot be used together")
        with self._lock:
            ids = sorted(set(self.models) | set(self.context_windows))
        for key in ("after_id", "before_id"):
            if key in query and query[key][0] not in ids:
                raise ApiError(404, f"{key}: model {json.dumps(query[key][0])} not found",
                               "not_found_error")
        if "before_id" in query:
            end = ids.index(query["before_id"][0])
            start = max(0, end - limit)
            more = start > 0
        else:
            start = ids.index(query["after_id"][0]) + 1 if "after_id" in query else 0
            end = min(len(ids), start + limit)
            more = end < len(ids)
        page = ids[start:end]
        record["valid"] = True
        _, reply = self._take_script("models")
        if reply is not None:
            return reply
        data = [{"type": "model", "id": m, "display_name": m,
                 "created_at": "2025-01-01T00:00:00Z"} for m in page]
        return Reply.json(200, {"data": data, "has_more": more,
                                "first_id": page[0] if page else None,
                                "last_id": page[-1] if page else None})


# -------------------------------------------------------------- standalone

def main(argv=None):
    return keyed_mock_main(MockAnthropic, argv, "Strict loopback mock of the Anthropic API.",
                           8090, "required x-api-key (default: test-key)")


if __name__ == "__main__":
    sys.exit(main())
