#!/usr/bin/env python3
"""A strict loopback mock of Ollama's native API: /api/chat, /api/embed,
/api/tags and /api/show.

It answers the way a current Ollama server does, and it is strict where the
real server is, so that a client bug shows up here and not first against a
real Ollama:

- Bodies are decoded the way Ollama's Go server decodes them into its request
  structs: a value of the wrong JSON type is a 400 with a Go-style message
  ("json: cannot unmarshal string into Go struct field ... of type ..."). In
  particular tool-call `arguments` must be a JSON object, not JSON text.
- A model the server does not have is a 404
  {"error": "model \"x\" not found, try pulling it first"} for chat and
  {"error": "model 'x' not found"} for embeddings, as Ollama words them.
- An option of the wrong type is a 500 {"error": "option \"num_ctx\" must be
  of type integer"}, as Ollama's options decoder answers.
- A prompt longer than the window is not refused: like Ollama, the mock drops
  the oldest non-system messages until it fits and answers normally. It
  records that it did (record["truncated"], MockOllama.truncations(), and as
  a problem, below), so tests can assert it never happens.
- A request without "stream": false is answered as a stream of JSON lines,
  as Ollama does by default: content and thinking in pieces, the tool calls
  whole in one line of their own, then the last line with "done": true and
  the counts. The scripted spec can make the delivery hostile; see
  stream_util.py for the keys (chunk_bytes, chunk_delay, piece_chars,
  stream_error = an {"error": ...} line, cut_after_bytes, cut_clean, and
  keepalive = blank lines between the objects, which Ollama does not send
  but a robust client skips).

Where Ollama is lenient in ways that would hide a client bug, the mock
serves the request like Ollama but records a *problem*, and a request with
problems counts as invalid (invalid_requests()): a truncated prompt, unknown
fields (Go's decoder
silently drops them, so whatever the client meant is lost), unknown options
(Ollama only logs them), a missing or non-integral options.num_ctx (Ollama
would fall back to its small default window), null tool-call arguments, and
a request that does not say "stream": false or "stream": true (relying on
the default).

Where the facts were not certain, the mock is stricter than Ollama and says
so in its error text ("(mock: stricter than Ollama)"): message roles must be
exactly system/user/assistant/tool (Ollama lower-cases and does not check);
tool results must follow the assistant message whose calls they answer,
name one of those calls in tool_name and, if they carry tool_call_id, match
an unanswered call id; tool definitions must have type "function", a valid
name and an object schema whose "required" names are in "properties".

Scripting follows MockOpenAI (tests/mock/openai_mock.py): push(spec) queues
OpenAI-style specs (content, tool_calls [{name, arguments, id}], usage
{prompt_tokens, completion_tokens}, finish_reason, status, body, raw_body,
headers, drop, delay; plus thinking) that are mapped to Ollama's shape;
without a script a deterministic default policy answers, and requests
without tools are answered as summaries.

Requests are recorded like MockAnthropic's: the parsed wire body under
"wire" and, under "body", the same request in the OpenAI chat shape once it
was served (arguments as JSON text, tool calls with type "function", tool
results with tool_call_id, options.num_predict as max_tokens), so tests
written against MockOpenAI read the same fields. chat_requests() returns
those views, chat_requests(raw=True) the wire bodies. Records also say what
the server did with the window: "num_ctx" (the window used), "prompt_tokens"
and "truncated".

/api/embed takes "input" as a string or an array of strings and answers
{"embeddings": [[...], ...]}, one vector per input in order. Like Ollama it
refuses an input of another type, or an array with a non-string item (400
"invalid input type"), and answers an empty input with no embeddings; the
mock records that as a problem, and also an empty string among the inputs
and more than MAX_EMBED_INPUTS of them (stricter than Ollama, which takes
any number: a client should batch).

/api/show {"model"} answers the model's details and model_info, with
"general.architecture" (ARCHITECTURES, default "llama") and
"<architecture>.context_length": the model's window as set_window() gives it,
else the default window, else DEFAULT_TRAINED_WINDOW. push(spec, "show")
scripts it (status, body, raw_body, drop, delay).

Standalone use (manual trials):

    python3 tests/mock/ollama_mock.py --port 11434 [--window N]

Only the Python 3.11 standard library is used.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_base import COMMON_SPEC_KEYS, MockError, MockServer, Reply, default_answer  # noqa: E402
from mock_base import ceil_div4 as _ceil_div4  # noqa: E402
from mock_base import check_spec, json_kind, load_json_strict  # noqa: E402
from mock_base import is_int as _is_int  # noqa: E402
from mock_base import is_number as _is_number  # noqa: E402
from mock_base import utf8_len as _utf8_len  # noqa: E402
from openai_mock import embed_text  # noqa: E402  (the same deterministic embedding)
from stream_util import STREAM_SPEC_KEYS, assemble, json_line, pieces  # noqa: E402

__all__ = ["MockOllama", "OllamaError", "count_prompt_tokens", "validate_chat_request"]

# ------------------------------------------------------------------ constants

# api.ChatRequest's JSON fields in a current Ollama.
CHAT_KEYS = frozenset({
    "model", "messages", "stream", "format", "keep_alive", "tools", "options",
    "think", "truncate", "shift", "logprobs", "top_logprobs", "_debug_render_only",
})
# api.Message.
MESSAGE_KEYS = frozenset({
    "role", "content", "thinking", "images", "tool_calls", "tool_name", "tool_call_id",
})
TOOL_CALL_KEYS = frozenset({"id", "function"})
TOOL_CALL_FUNCTION_KEYS = frozenset({"index", "name", "arguments"})
TOOL_KEYS = frozenset({"type", "items", "function"})
TOOL_FUNCTION_KEYS = frozenset({"name", "description", "parameters"})
EMBED_KEYS = frozenset({"model", "input", "truncate", "dimensions", "keep_alive", "options"})
ROLES = ("system", "user", "assistant", "tool")

# api.Options (with its embedded Runner), by the kind FromMap checks.
INT_OPTIONS = frozenset({
    "num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx",
    "num_batch", "num_gpu", "main_gpu", "num_thread",
})
FLOAT_OPTIONS = frozenset({
    "top_p", "min_p", "typical_p", "temperature", "repeat_penalty",
    "presence_penalty", "frequency_penalty",
})
BOOL_OPTIONS = frozenset({"use_mmap"})
LIST_OPTIONS = frozenset({"stop"})

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_NUM_CTX = 4096
DEFAULT_EMBEDDING_DIMS = 64
# More inputs than this in one /api/embed request is a problem (Ollama takes
# any number; OpenAI's cap, so a client batching for both stays inside it).
MAX_EMBED_INPUTS = 2048
# /api/show: the architecture of a model (default "llama") and the context
# length it states when the test set no window for it.
ARCHITECTURES = {"qwen3:8b": "qwen3", "nomic-embed-text": "nomic-bert"}
DEFAULT_TRAINED_WINDOW = 131072
SHOW_KEYS = frozenset({"model", "name", "verbose", "system", "template", "options"})

SPEC_KEYS = ((COMMON_SPEC_KEYS - {"context_length_exceeded"}) | {"thinking"}
             | STREAM_SPEC_KEYS)

DEFAULT_ERRORS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "model not found",
    429: "too many requests",
    500: "an error was encountered while running the model",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
}

STRICTER = " (mock: stricter than Ollama)"


class OllamaError(MockError):
    """An error answer in Ollama's shape: {"error": "text"}."""

    def body(self, request_id=None):
        return {"error": self.message}


def _bad(message):
    return OllamaError(400, message)


# ------------------------------------------------------------ small helpers

def _go_type(value):
    """JSON type names as Go's encoding/json words them."""
    kind = json_kind(value)
    return "number" if kind in ("int", "float") else kind


def _unmarshal_error(value, field, go_type):
    return _bad(f"json: cannot unmarshal {_go_type(value)} into Go struct field {field} "
                f"of type {go_type}")


def _compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def message_tokens(msg):
    """4 + ceil(content bytes / 4), plus ceil((name + compact arguments) / 4)
    per tool call: the same rule as MockOpenAI's count, so a conversation
    costs the same on both mocks."""
    if not isinstance(msg, dict):
        return 0
    content = msg.get("content") if isinstance(msg.get("content"), str) else ""
    total = 4 + _ceil_div4(_utf8_len(content))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            name = fn.get("name") if isinstance(fn.get("name"), str) else ""
            args = fn.get("arguments")
            args = args if isinstance(args, str) else _compact(args if args is not None else {})
            total += _ceil_div4(_utf8_len(name) + _utf8_len(args))
    return total


def count_prompt_tokens(body, messages=None):
    """The mock's deterministic prompt size of a chat body (or of `messages`
    with the body's tools): the per-message rule above plus ceil(len(json.dumps
    (tools)) / 4). Not a tokenizer; stable, so tests can aim at a window."""
    total = sum(message_tokens(m) for m in (body.get("messages") or []
                                             if messages is None else messages))
    if body.get("tools"):
        total += _ceil_div4(len(json.dumps(body["tools"])))
    return total


# ------------------------------------------------------ request validation

def _check_string(value, field, problems=None):
    if value is not None and not isinstance(value, str):
        raise _unmarshal_error(value, field, "string")


def _check_unknown(obj, allowed, where, problems):
    for key in obj:
        if key not in allowed:
            problems.append(f"unknown field {where}{key!r}: Ollama silently ignores it")


def _check_tool_call(call, i, j, problems):
    field = "ChatRequest.messages.tool_calls"
    if not isinstance(call, dict):
        raise _unmarshal_error(call, field, "api.ToolCall")
    _check_unknown(call, TOOL_CALL_KEYS, f"messages[{i}].tool_calls[{j}].", problems)
    _check_string(call.get("id"), f"{field}.id")
    fn = call.get("function")
    if fn is None:
        raise _bad(f"messages[{i}].tool_calls[{j}] has no function" + STRICTER)
    if not isinstance(fn, dict):
        raise _unmarshal_error(fn, f"{field}.function", "api.ToolCallFunction")
    _check_unknown(fn, TOOL_CALL_FUNCTION_KEYS, f"messages[{i}].tool_calls[{j}].function.",
                   problems)
    if "index" in fn and fn["index"] is not None and not _is_int(fn["index"]):
        raise _unmarshal_error(fn["index"], f"{field}.function.index", "int")
    _check_string(fn.get("name"), f"{field}.function.name")
    if not fn.get("name"):
        raise _bad(f"messages[{i}].tool_calls[{j}].function.name is empty" + STRICTER)
    args = fn.get("arguments")
    if args is None:
        problems.append(f"messages[{i}].tool_calls[{j}].function.arguments is null")
    elif not isinstance(args, dict):
        # The classic client bug: sending OpenAI's JSON text instead of the object.
        raise _unmarshal_error(args, f"{field}.function.arguments",
                               "api.ToolCallFunctionArguments")


def _check_message(i, msg, problems):
    field = "ChatRequest.messages"
    if not isinstance(msg, dict):
        raise _unmarshal_error(msg, field, "api.Message")
    _check_unknown(msg, MESSAGE_KEYS, f"messages[{i}].", problems)
    for key in ("role", "content", "thinking", "tool_name", "tool_call_id"):
        _check_string(msg.get(key), f"{field}.{key}")
    images = msg.get("images")
    if images is not None and (not isinstance(images, list)
                               or not all(isinstance(x, str) for x in images)):
        raise _unmarshal_error(images, f"{field}.images", "[]api.ImageData")
    role = msg.get("role")
    if role not in ROLES:
        raise _bad(f"messages[{i}]: invalid role {json.dumps(role)}; expected one of "
                   "system, user, assistant, tool" + STRICTER)
    if msg.get("content") is None:
        problems.append(f"messages[{i}].content is missing or null")
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _unmarshal_error(calls, f"{field}.tool_calls", "[]api.ToolCall")
        if calls and role != "assistant":
            raise _bad(f"messages[{i}]: only assistant messages carry tool_calls" + STRICTER)
        ids = set()
        for j, call in enumerate(calls):
            _check_tool_call(call, i, j, problems)
            cid = call.get("id")
            if cid:
                if cid in ids:
                    raise _bad(f"messages[{i}].tool_calls[{j}]: duplicate id {cid!r}" + STRICTER)
                ids.add(cid)
    if role != "tool" and (msg.get("tool_name") or msg.get("tool_call_id")):
        problems.append(f"messages[{i}]: tool_name/tool_call_id on a {role} message")


def _check_tool_results(messages):
    """Each tool result follows the assistant message whose calls it answers,
    names one of them, and (with an id) answers an unanswered call."""
    pending = None  # {"names": set, "ids": {id: answered?}}
    for i, msg in enumerate(messages):
        role = msg["role"]
        if role == "tool":
            if pending is None:
                raise _bad(f"messages[{i}]: a tool result must follow an assistant message "
                           "with tool_calls" + STRICTER)
            name = msg.get("tool_name")
            if not name:
                raise _bad(f"messages[{i}]: a tool result needs tool_name (the function's "
                           "name), which the model's template shows it" + STRICTER)
            if name not in pending["names"]:
                raise _bad(f"messages[{i}]: tool_name {name!r} is not one of the calls "
                           f"{sorted(pending['names'])}" + STRICTER)
            cid = msg.get("tool_call_id")
            if cid:
                if cid not in pending["ids"]:
                    raise _bad(f"messages[{i}]: tool_call_id {cid!r} answers no call of the "
                               "preceding assistant message" + STRICTER)
                if pending["ids"][cid]:
                    raise _bad(f"messages[{i}]: tool_call_id {cid!r} is answered twice"
                               + STRICTER)
                pending["ids"][cid] = True
            continue
        pending = None
        if role == "assistant" and msg.get("tool_calls"):
            calls = msg["tool_calls"]
            pending = {"names": {c["function"]["name"] for c in calls},
                       "ids": {c["id"]: False for c in calls if c.get("id")}}


def _check_tools(tools, problems):
    field = "ChatRequest.tools"
    if not isinstance(tools, list):
        raise _unmarshal_error(tools, field, "api.Tools")
    names = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _unmarshal_error(tool, field, "api.Tool")
        _check_unknown(tool, TOOL_KEYS, f"tools[{i}].", problems)
        _check_string(tool.get("type"), f"{field}.type")
        if tool.get("type") != "function":
            raise _bad(f"tools[{i}].type must be \"function\"" + STRICTER)
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise _unmarshal_error(fn, f"{field}.function", "api.ToolFunction")
        _check_unknown(fn, TOOL_FUNCTION_KEYS, f"tools[{i}].function.", problems)
        _check_string(fn.get("name"), f"{field}.function.name")
        _check_string(fn.get("description"), f"{field}.function.description")
        name = fn.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _bad(f"tools[{i}].function.name {name!r} must match "
                       "^[a-zA-Z0-9_-]{1,64}$" + STRICTER)
        if name in names:
            raise _bad(f"tools: duplicate function name {name!r}" + STRICTER)
        names.add(name)
        params = fn.get("parameters")
        if not isinstance(params, dict):
            raise _unmarshal_error(params, f"{field}.function.parameters",
                                   "api.ToolFunctionParameters")
        props = params.get("properties")
        if params.get("type") != "object" or not isinstance(props, dict):
            raise _bad(f"tools[{i}].function.parameters must be an object schema with "
                       "properties" + STRICTER)
        for key, sub in props.items():
            if not isinstance(sub, dict):
                raise _unmarshal_error(sub, f"{field}.function.parameters.properties",
                                       "api.ToolProperty")
        required = params.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise _unmarshal_error(required, f"{field}.function.parameters.required",
                                   "[]string")
        for r in required:
            if r not in props:
                raise _bad(f"tools[{i}]: required parameter {r!r} is not in properties"
                           + STRICTER)


def _check_options(options, problems):
    """Returns the num_ctx the client asked for (None if none). Type errors
    are Ollama's 500 from its options decoder."""
    if options is None:
        problems.append("no options.num_ctx: Ollama would use its default window")
        return None
    if not isinstance(options, dict):
        raise _unmarshal_error(options, "ChatRequest.options", "map[string]interface {}")
    for key, value in options.items():
        if value is None:
            continue
        if key in INT_OPTIONS:
            if not _is_number(value):
                raise OllamaError(500, f"option {json.dumps(key)} must be of type integer")
            if not _is_int(value) and value != int(value):
                problems.append(f"options.{key} = {value} is not a whole number; Ollama "
                                "truncates it")
        elif key in FLOAT_OPTIONS:
            if not _is_number(value):
                raise OllamaError(500, f"option {json.dumps(key)} must be of type float32")
        elif key in BOOL_OPTIONS:
            if not isinstance(value, bool):
                raise OllamaError(500, f"option {json.dumps(key)} must be of type boolean")
        elif key in LIST_OPTIONS:
            if not isinstance(value, list):
                raise OllamaError(500, f"option {json.dumps(key)} must be of type array")
            if not all(isinstance(s, str) for s in value):
                raise OllamaError(500, f"option {json.dumps(key)} must be of an array of "
                                  "strings")
        else:
            problems.append(f"unknown option {key!r}: Ollama logs 'invalid option provided' "
                            "and ignores it")
    num_ctx = options.get("num_ctx")
    if num_ctx is None:
        problems.append("no options.num_ctx: Ollama would use its default window")
        return None
    if int(num_ctx) < 1:
        problems.append(f"options.num_ctx = {num_ctx}: Ollama would use its default window")
        return None
    return int(num_ctx)


def validate_chat_request(body, problems):
    """Raises OllamaError for what Ollama (or the mock, where stricter) refuses;
    appends to `problems` what Ollama would silently accept but a correct
    client never sends. Returns the requested num_ctx (or None)."""
    if not isinstance(body, dict):
        raise _bad(f"json: cannot unmarshal {_go_type(body)} into Go value of type "
                   "api.ChatRequest")
    _check_unknown(body, CHAT_KEYS, "", problems)
    _check_string(body.get("model"), "ChatRequest.model")
    if not body.get("model"):
        raise _bad("model is required")
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise _unmarshal_error(messages, "ChatRequest.messages", "[]api.Message")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _unmarshal_error(stream, "ChatRequest.stream", "bool")
    if not isinstance(stream, bool):
        problems.append("\"stream\" is not given, so Ollama streams JSON lines by default")
    for i, msg in enumerate(messages or []):
        _check_message(i, msg, problems)
    _check_tool_results(messages or [])
    if body.get("tools") is not None:
        _check_tools(body["tools"], problems)
    return _check_options(body.get("options"), problems)


def _check_spec(spec):
    """Catches typos in test scripts at push() time rather than mid-run."""
    if not isinstance(spec, dict):
        raise TypeError("a scripted response must be a dict")
    if "context_length_exceeded" in spec:
        raise ValueError("Ollama never reports an over-long prompt, it truncates it: skip "
                         "the test in the ollama run (harness.only_providers), or let "
                         "set_window() make the model's window small")
    check_spec(spec, SPEC_KEYS)


def to_openai_shape(body):
    """An Ollama chat body as the equivalent OpenAI chat-completions body, for
    tests written against MockOpenAI: arguments become JSON text, tool calls
    get type "function" (and their id, when the client sent one), tool results
    keep tool_call_id (tool_name stays in the wire body), options.num_predict
    becomes max_tokens. Options and stream are left out."""
    out = {"model": body.get("model"), "messages": []}
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    if options.get("num_predict"):
        out["max_tokens"] = options["num_predict"]
    for msg in body.get("messages") or []:
        m = {"role": msg.get("role"), "content": msg.get("content")}
        if msg.get("tool_calls"):
            m["tool_calls"] = [{
                "id": c.get("id"), "type": "function",
                "function": {"name": c["function"].get("name"),
                             "arguments": _compact(c["function"].get("arguments") or {})}}
                for c in msg["tool_calls"]]
        if msg.get("role") == "tool":
            m["tool_call_id"] = msg.get("tool_call_id")
        out["messages"].append(m)
    if body.get("tools"):
        out["tools"] = body["tools"]
    return out


# ------------------------------------------------------------------ server

class MockOllama(MockServer):
    """A loopback Ollama server. See the module docstring and push()."""

    NAME = "ollama-mock"
    SERVER_VERSION = "ollama-mock/1.0"
    ERROR = OllamaError
    ENDPOINTS = ("chat", "embeddings", "show")
    ENDPOINT_ERROR = "endpoint must be 'chat', 'embeddings' or 'show'"
    CONTENT_TYPE = "application/json; charset=utf-8"
    SERVES_HEAD = True
    RECORD_FIELDS = {"wire": None, "problems": list, "truncated": None, "num_ctx": None,
                     "prompt_tokens": None}
    MALFORMED_CHUNKED = "malformed chunked request body"
    BAD_CONTENT_LENGTH = "invalid Content-Length header"
    MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "text-embedding-3-small",
              "llama3.2", "qwen3:8b", "nomic-embed-text")

    def __init__(self, models=None, context_windows=None, default_window=None,
                 default_num_ctx=DEFAULT_NUM_CTX, tool_call_ids=False, no_tools=(),
                 api_key=None, keep_alive=False, verbose=False):
        """models: the names the server has (default MODELS); context_windows:
        each model's trained window, to which num_ctx is clamped (default
        `default_window`, None = unlimited); default_num_ctx: the window used
        when a request gives none; tool_call_ids: give tool calls ids, as
        newer Ollama versions do (older ones give none); no_tools: models
        that refuse tools; api_key: require this Bearer key (real Ollama
        requires none)."""
        super().__init__(keep_alive, verbose)
        self.models = set(models if models is not None else self.MODELS)
        self.context_windows = dict(context_windows or {})
        self.models |= set(self.context_windows)
        self.default_window = default_window
        self.default_num_ctx = default_num_ctx
        self.tool_call_ids = tool_call_ids
        self.no_tools = set(no_tools)
        self.api_key = api_key
        self.embedding_dims = DEFAULT_EMBEDDING_DIMS
        self._call_seq = 0

    @property
    def host(self):
        """The bare host:port form OLLAMA_HOST also accepts."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self):
        """The value for OLLAMA_HOST."""
        return f"http://{self.host}"

    # ----------------------------------------------------------- scripting

    def add_model(self, name, window=None):
        with self._lock:
            self.models.add(name)
            if window is not None:
                self.context_windows[name] = window

    def remove_model(self, name):
        with self._lock:
            self.models.discard(name)

    def set_window(self, model, tokens):
        """The model's trained window: num_ctx above it is clamped to it."""
        self.add_model(model, tokens)

    def window_for(self, model, num_ctx=None):
        """The window a request runs with: num_ctx (or the server default),
        clamped to the model's trained window."""
        with self._lock:
            limit = self.context_windows.get(model, self.default_window)
        window = num_ctx if num_ctx else self.default_num_ctx
        return min(window, limit) if limit else window

    @staticmethod
    def _check_spec(spec):
        _check_spec(spec)

    def chat_requests(self, raw=False):
        """Bodies of the /api/chat requests that were served, oldest first: in
        the OpenAI shape (see to_openai_shape), or as sent with raw=True."""
        with self._lock:
            return [r["wire" if raw else "body"] for r in self._records
                    if r["path"] == "/api/chat" and r["status"] == 200]

    def invalid_requests(self):
        """Requests refused, or served but with problems (see the module
        docstring); record["error"] says why."""
        return super().invalid_requests()

    def embed_requests(self):
        """Records of the /api/embed requests, valid or not, in order."""
        return self.requests_to("/api/embed")

    def truncations(self):
        """Records of chat requests whose prompt did not fit their window."""
        with self._lock:
            return [r for r in self._records if r.get("truncated")]

    # ------------------------------------------------------------ handling

    def _route(self, method, path, headers, raw, record):
        route = (method, path)
        if route == ("POST", "/api/chat"):
            return self._chat(raw, record)
        if route == ("POST", "/api/embed"):
            return self._embed(raw, record)
        if route == ("POST", "/api/show"):
            return self._show(raw, record)
        if route in (("GET", "/api/tags"), ("HEAD", "/api/tags")):
            return self._tags(record)
        if route in (("GET", "/"), ("HEAD", "/")):
            record["valid"] = True
            return Reply(200, b"Ollama is running", content_type="text/plain; charset=utf-8")
        if route == ("GET", "/api/version"):
            record["valid"] = True
            return Reply.json(200, {"version": "0.12.0-mock"})
        if path in ("/api/chat", "/api/embed", "/api/show", "/api/tags", "/api/version"):
            return Reply(405, b"405 method not allowed", content_type="text/plain",
                         error="405 method not allowed")
        return Reply(404, b"404 page not found", content_type="text/plain",
                     error="404 page not found")

    def _internal_error(self, exc):
        return OllamaError(500, f"ollama-mock internal error: {exc!r}")

    def _status_error(self, status, headers):
        return OllamaError(status, DEFAULT_ERRORS.get(status, "an unknown error was encountered"),
                           headers)

    def _finish_record(self, record, reply):
        if record["problems"]:
            record["valid"] = False
            if not reply.error:
                reply.error = "; ".join(record["problems"])

    def _check_headers(self, headers):
        if self.api_key is None:
            return
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            raise OllamaError(401, "unauthorized")

    @staticmethod
    def _parse_json(raw):
        """Decodes a body the way Go's decoder reports failures."""
        if not raw or not raw.strip():
            raise _bad("missing request body")
        try:
            return load_json_strict(raw)
        except UnicodeDecodeError:
            raise _bad("invalid character in string literal") from None
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError) and exc.pos >= len(raw.rstrip()):
                raise _bad("unexpected EOF") from None
            raise _bad("invalid character looking for beginning of value") from None

    # ----------------------------------------------------------- endpoints

    def _has_model(self, name):
        with self._lock:
            if name.endswith(":latest"):
                return name in self.models or name[:-len(":latest")] in self.models
            return name in self.models or f"{name}:latest" in self.models

    def _chat(self, raw, record):
        body = self._parse_json(raw)
        num_ctx = validate_chat_request(body, record["problems"])
        model = body["model"]
        if not self._has_model(model):
            raise OllamaError(404, f"model {json.dumps(model)} not found, try pulling it first")
        if body.get("tools") and model in self.no_tools:
            raise _bad(f"registry.ollama.ai/library/{model}:latest does not support tools")

        messages = list(body.get("messages") or [])
        window = self.window_for(model, num_ctx)
        record["num_ctx"] = window
        full = count_prompt_tokens(body)
        kept = self._truncate(body, messages, window)
        prompt_tokens = count_prompt_tokens(body, kept)
        record["prompt_tokens"] = full
        if len(kept) < len(messages) or full > window:
            # Ollama drops the oldest messages and carries on: nothing tells the client.
            record["truncated"] = {"window": window, "prompt_tokens": full,
                                   "kept_tokens": prompt_tokens,
                                   "dropped_messages": len(messages) - len(kept)}
            record["problems"].append(
                f"prompt of {full} tokens is over the {window}-token window: Ollama "
                f"silently dropped the oldest {len(messages) - len(kept)} message(s)")
        record["valid"] = True
        record["body"] = to_openai_shape(body)

        spec, reply = self._take_script("chat")
        if reply is not None:
            return reply

        if not messages:  # Ollama just loads the model
            return Reply.json(200, {"model": model, "created_at": _now_iso(),
                                     "message": {"role": "assistant", "content": ""},
                                     "done_reason": "load", "done": True})
        if any(k in spec for k in ("content", "tool_calls", "thinking")):
            content = spec.get("content") or ""
            calls = [self._make_call(i, c.get("name"), c.get("arguments", {}), c.get("id"))
                     for i, c in enumerate(spec.get("tool_calls") or [])]
        else:
            content, calls = self._default_reply(body, kept)
        if calls and not body.get("tools"):
            calls = []  # Ollama only parses tool calls when tools were offered
        message = {"role": "assistant", "content": content}
        if spec.get("thinking"):
            message["thinking"] = spec["thinking"]
        if calls:
            message["tool_calls"] = calls
        out_text = content + "".join(c["function"]["name"] + _compact(c["function"]["arguments"])
                                     for c in calls)
        usage = {"prompt_eval_count": prompt_tokens,
                 "eval_count": max(1, _ceil_div4(_utf8_len(out_text)))}
        for ours, theirs in (("prompt_tokens", "prompt_eval_count"),
                             ("completion_tokens", "eval_count")):
            if ours in (spec.get("usage") or {}):
                usage[theirs] = spec["usage"][ours]
        answer = {"model": model, "created_at": _now_iso(), "message": message,
                  "done_reason": spec.get("finish_reason", "stop"), "done": True,
                  "total_duration": 1200000, "load_duration": 100000,
                  "prompt_eval_duration": 500000, "eval_duration": 600000, **usage}
        if body.get("stream") is not False:
            return self._stream(answer, spec)
        return Reply.json(200, answer)

    def _truncate(self, body, messages, window):
        """Ollama's truncation: system messages stay, the oldest others go,
        the last message always stays."""
        kept = list(messages)
        while count_prompt_tokens(body, kept) > window:
            drop = next((i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"), None)
            if drop is None:
                break
            del kept[drop]
        return kept

    @staticmethod
    def _stream(answer, spec):
        """The answer as Ollama streams it (see the module docstring)."""
        base = {"model": answer["model"], "created_at": answer["created_at"]}
        message = answer["message"]

        def line(**fields):
            return json_line(dict(base, message=dict({"role": "assistant", "content": ""},
                                                     **fields), done=False))

        lines = [line(thinking=p) for p in pieces(message.get("thinking") or "", spec)]
        lines += [line(content=p) for p in pieces(message["content"], spec)]
        if message.get("tool_calls"):
            lines.append(line(tool_calls=message["tool_calls"]))
        final = dict(answer, message={"role": "assistant", "content": ""})
        payload = assemble(lines, json_line(final), spec, b"\n",
                           lambda text, _type: json_line({"error": text}))
        return Reply(200, content_type="application/x-ndjson", stream=payload, spec=spec)

    def _make_call(self, index, name, arguments, call_id=None):
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments)
            except ValueError:
                parsed = None
            # Ollama always sends an object; text that is not one is passed
            # through as it is, to exercise the client's robustness.
            arguments = parsed if isinstance(parsed, dict) else arguments
        call = {"function": {"index": index, "name": name, "arguments": arguments}}
        if call_id is None and self.tool_call_ids:
            with self._lock:
                self._call_seq += 1
                call_id = "call_" + hashlib.blake2b(str(self._call_seq).encode(),
                                                    digest_size=4).hexdigest()
        if call_id is not None:
            call["id"] = call_id
        return call

    def _default_reply(self, body, messages):
        if not body.get("tools"):
            return self._summarize(messages), []
        last = messages[-1]
        text, args = default_answer(last.get("role"), last.get("content") or "")
        return text, [self._make_call(0, "send_message", args)] if args else []

    def _summarize(self, messages):
        return self._record_summary(
            text for msg in messages
            for text in [msg.get("content") or ""]
            + [_compact(c["function"].get("arguments") or {}) for c in msg.get("tool_calls") or []])

    def _embed(self, raw, record):
        body = self._parse_json(raw)
        problems = record["problems"]
        if not isinstance(body, dict):
            raise _bad(f"json: cannot unmarshal {_go_type(body)} into Go value of type "
                       "api.EmbedRequest")
        _check_unknown(body, EMBED_KEYS, "", problems)
        _check_string(body.get("model"), "EmbedRequest.model")
        model = body.get("model") or ""
        if body.get("dimensions") is not None and not _is_int(body["dimensions"]):
            raise _unmarshal_error(body["dimensions"], "EmbedRequest.dimensions", "int")
        if not model or not self._has_model(model):
            raise OllamaError(404, f"model '{model}' not found")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs] if inputs else []
        elif isinstance(inputs, list) and all(isinstance(s, str) for s in inputs):
            if "" in inputs:
                problems.append(f"input[{inputs.index('')}] is an empty string{STRICTER}")
            if len(inputs) > MAX_EMBED_INPUTS:
                problems.append(f"{len(inputs)} inputs in one request, more than "
                                f"{MAX_EMBED_INPUTS}{STRICTER}")
        elif inputs is None:
            inputs = []
        else:
            raise _bad("invalid input type")
        if not inputs:
            # Ollama answers {"embeddings": []}; a client never means that.
            problems.append(f"nothing to embed: the input is empty or missing{STRICTER}")
        record["valid"] = True
        reply = self._embedding_override(len(inputs))
        if reply is not None:
            return reply
        dims = body.get("dimensions") or self.embedding_dims
        vectors = [embed_text(t, dims) for t in inputs]
        return Reply.json(200, {"model": model, "embeddings": vectors,
                                 "total_duration": 1000000, "load_duration": 100000,
                                 "prompt_eval_count": sum(_ceil_div4(_utf8_len(t))
                                                          for t in inputs)})

    def _show(self, raw, record):
        """POST /api/show: the model's details and model_info, with its
        architecture and context length (see the module docstring)."""
        body = self._parse_json(raw)
        if not isinstance(body, dict):
            raise _bad(f"json: cannot unmarshal {_go_type(body)} into Go value of type "
                       "api.ShowRequest")
        _check_unknown(body, SHOW_KEYS, "", record["problems"])
        _check_string(body.get("model"), "ShowRequest.model")
        _check_string(body.get("name"), "ShowRequest.name")
        if "name" in body:
            record["problems"].append('"name" is deprecated: send "model"')
        model = body.get("model") or body.get("name") or ""
        if not model:
            raise _bad("model is required")
        if not self._has_model(model):
            raise OllamaError(404, f"model '{model}' not found")
        record["valid"] = True
        _, reply = self._take_script("show")
        if reply is not None:
            return reply
        base = model[:-len(":latest")] if model.endswith(":latest") else model
        arch = ARCHITECTURES.get(base, "llama")
        with self._lock:
            window = self.context_windows.get(base, self.context_windows.get(model))
        window = window or self.default_window or DEFAULT_TRAINED_WINDOW
        return Reply.json(200, {
            "modelfile": f"FROM {base}\n", "parameters": "", "template": "{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": arch,
                        "families": [arch], "parameter_size": "1B",
                        "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": arch, "general.parameter_count": 1000000000,
                           f"{arch}.context_length": window,
                           f"{arch}.embedding_length": 2048},
            "capabilities": ["completion", "tools"],
            "modified_at": "2025-01-01T00:00:00Z"})

    def _tags(self, record):
        record["valid"] = True
        with self._lock:
            names = sorted(self.models)
        models = []
        for name in names:
            full = name if ":" in name else f"{name}:latest"
            digest = hashlib.sha256(full.encode()).hexdigest()
            models.append({
                "name": full, "model": full, "modified_at": "2025-01-01T00:00:00Z",
                "size": 1000000 + len(full), "digest": digest,
                "details": {"parent_model": "", "format": "gguf", "family": "mock",
                            "families": ["mock"], "parameter_size": "1B",
                            "quantization_level": "Q4_K_M"}})
        return Reply.json(200, {"models": models})


# -------------------------------------------------------------- standalone

def main(argv=None):
    ap = argparse.ArgumentParser(description="Strict loopback mock of Ollama's native API.")
    ap.add_argument("--port", type=int, default=11434)
    ap.add_argument("--window", type=int, default=None,
                    help="every model's trained window (num_ctx is clamped to it)")
    ap.add_argument("--tool-call-ids", action="store_true",
                    help="give tool calls ids, as newer Ollama versions do")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    mock = MockOllama(default_window=args.window, tool_call_ids=args.tool_call_ids,
                      verbose=args.verbose)
    return mock.serve_standalone(args.port)


if __name__ == "__main__":
    sys.exit(main())
