#!/usr/bin/env python3
"""A strict loopback mock of the OpenAI chat-completions API.

The integration tests run the real `memgpt` binary against this server. The
mock is deliberately strict: it rejects malformed requests with the same
status codes, error shape and (where known) messages as the real API, because
a mock that accepts anything would let client bugs through that only show up
against the real service.

Responses are either scripted (MockOpenAI.push) or produced by a small
deterministic default policy, so tests can drive whole agent conversations
without scripting every step.

Streaming: a request with "stream": true is answered with Server-Sent Events
of chat.completion.chunk objects, as the real API sends them: a role chunk,
content pieces, for each tool call a first chunk with its index, id and name
and then argument pieces, a chunk with the finish_reason, with
stream_options.include_usage a last chunk with the usage and no choices, and
"data: [DONE]". stream_options is refused without stream, as the API does.
The scripted spec can make the delivery hostile; see stream_util.py for the
keys (chunk_bytes, chunk_delay, piece_chars, keepalive, stream_error,
cut_after_bytes, cut_clean, interleave).

parallel_tool_calls is accepted only with tools; for the models named in
MockOpenAI(no_parallel_models=...) it is refused with a 400
"unsupported_parameter", as reasoning models refuse it.

Standalone use (manual trials, benchmarks):

    python3 tests/mock/openai_mock.py --port 8089 [--api-key KEY] [--window N]

Only the Python 3.11 standard library is used.
"""

import base64
import hashlib
import json
import math
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mock_base import COMMON_SPEC_KEYS, FixedWindows, MockError, MockServer, Reply  # noqa: E402
from mock_base import default_answer  # noqa: E402
from mock_base import ceil_div4 as _ceil_div4  # noqa: E402
from mock_base import check_spec, json_kind, keyed_mock_main, load_json_strict  # noqa: E402
from mock_base import media_type  # noqa: E402
from mock_base import is_int as _is_int  # noqa: E402
from mock_base import is_number as _is_number  # noqa: E402
from mock_base import utf8_len as _utf8_len  # noqa: E402
from stream_util import STREAM_SPEC_KEYS, assemble, pieces, sse  # noqa: E402
import bpe_count  # noqa: E402

__all__ = [
    "MockOpenAI",
    "ApiError",
    "count_prompt_tokens",
    "embed_text",
    "validate_chat_request",
]

# ------------------------------------------------------------------ constants

CHAT_KEYS = frozenset({
    "model", "messages", "tools", "tool_choice", "temperature", "top_p", "n",
    "stream", "stream_options", "stop", "max_tokens", "max_completion_tokens",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "user", "seed", "response_format", "parallel_tool_calls",
    "metadata", "store", "reasoning_effort", "service_category",
    # The real API's spelling; accepted as well so a correct client passes.
    "service_tier",
})

ROLES = ("system", "developer", "user", "assistant", "tool")

# The real API validates message keys per role (a user message may not carry
# tool_calls, for instance), so the mock does too.
MESSAGE_KEYS = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "tool_calls", "refusal"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_DIMS = 3072
DEFAULT_EMBEDDING_DIMS = 64

JSON_PARSE_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means "
    "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
    "payload, but what was sent was not valid JSON. If you have trouble figuring "
    "out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)

# Default bodies for scripted error statuses, worded like the real service.
DEFAULT_ERRORS = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.",
          "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests",
          "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.",
          "server_error", None),
}

SPEC_KEYS = COMMON_SPEC_KEYS | STREAM_SPEC_KEYS


class ApiError(MockError):
    """An error answer in the OpenAI shape; raised anywhere while handling."""

    def __init__(self, status, message, type_="invalid_request_error", param=None,
                 code=None, headers=None):
        super().__init__(status, message, headers)
        self.type = type_
        self.param = param
        self.code = code

    def body(self, request_id=None):
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


def _bad(message, param=None, code=None):
    return ApiError(400, message, "invalid_request_error", param, code)


# ------------------------------------------------------------ small helpers

def _type_name(value):
    """JSON type names, as the real API words its 'got X instead' messages."""
    kind = json_kind(value)
    return {"bool": "boolean", "int": "integer", "float": "decimal"}.get(kind, kind)


def _invalid_type(param, expected, value):
    return _bad(f"Invalid type for '{param}': expected {expected}, but got "
                f"{_type_name(value)} instead.", param, "invalid_type")


def content_text(content):
    """The plain text of a message `content` (string, text parts, or null)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_prompt_tokens(body):
    """The prompt tokens the mock bills for a chat request body: for models
    whose tokenizer OpenAI publishes (gpt-4o, gpt-4, ...) real tokens, as
    the API bills them (bpe_count.py; memgpt counts those exactly); for any
    other model, formula_prompt_tokens."""
    enc = bpe_count.encoding_for(body.get("model"))
    if enc:
        return bpe_count.count_chat_request(body, enc, content_text)
    return formula_prompt_tokens(body)


def formula_prompt_tokens(body):
    """The mock's deterministic prompt-token count for a chat request body.

    Per message: 4 + ceil(utf8 bytes of the content text / 4), plus for each
    tool call ceil((name bytes + arguments bytes) / 4); plus ceil(len(json.dumps
    (tools)) / 4) when tools are given. It is not a real tokenizer: it only has
    to be stable so tests can aim at (or past) a context window on purpose.
    """
    total = 0
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        total += 4 + _ceil_div4(_utf8_len(content_text(msg.get("content"))))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                name = fn.get("name") if isinstance(fn.get("name"), str) else ""
                args = fn.get("arguments") if isinstance(fn.get("arguments"), str) else ""
                total += _ceil_div4(_utf8_len(name) + _utf8_len(args))
    if body.get("tools"):
        total += _ceil_div4(len(json.dumps(body["tools"])))
    return total


def embed_text(text, dims=DEFAULT_EMBEDDING_DIMS):
    """Deterministic, L2-normalised embedding from hashed character trigrams.

    Signed feature hashing keeps unrelated strings near-orthogonal while
    strings sharing many trigrams stay close, which is all the archival-search
    tests need. hashlib (not hash()) keeps it stable across processes.
    """
    norm = " ".join(text.lower().split())
    padded = f" {norm} "
    vec = [0.0] * dims
    for i in range(len(padded) - 2):
        digest = hashlib.blake2b(padded[i:i + 3].encode("utf-8"), digest_size=8).digest()
        h = int.from_bytes(digest, "little")
        vec[h % dims] += 1.0 if (h >> 63) & 1 else -1.0
    length = math.sqrt(sum(x * x for x in vec))
    if length == 0.0:
        # Whitespace-only input has no trigrams; any fixed unit vector will do.
        vec[0] = 1.0
        return vec
    return [x / length for x in vec]


# ------------------------------------------------------ request validation

def _check_text_parts(parts, param):
    if not parts:
        raise _bad(f"Invalid '{param}': empty array. Expected an array with minimum "
                   "length 1, but got an empty array instead.", param, "empty_array")
    for j, part in enumerate(parts):
        p = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise _invalid_type(p, "an object", part)
        if part.get("type") != "text":
            # The mock only understands text; images and audio are out of scope.
            raise _bad(f"Invalid value: {json.dumps(part.get('type'))}. Supported values "
                       "are: 'text'.", f"{p}.type", "invalid_value")
        extra = set(part) - {"type", "text"}
        if extra:
            raise _bad(f"Unrecognized request argument supplied: {p}.{sorted(extra)[0]}",
                       p, "unknown_parameter")
        if not isinstance(part.get("text"), str):
            raise _invalid_type(f"{p}.text", "a string", part.get("text"))


def _check_content(msg, param, allow_null):
    if "content" not in msg or msg["content"] is None:
        if allow_null:
            return
        raise _bad(f"Missing required parameter: '{param}.content'.",
                   f"{param}.content", "missing_required_parameter")
    content = msg["content"]
    if isinstance(content, str):
        return
    if isinstance(content, list):
        _check_text_parts(content, f"{param}.content")
        return
    raise _invalid_type(f"{param}.content", "one of a string or array of objects", content)


def _check_tool_calls(calls, param):
    if not isinstance(calls, list):
        raise _invalid_type(param, "an array", calls)
    if not calls:
        raise _bad(f"Invalid '{param}': empty array. Expected an array with minimum "
                   "length 1, but got an empty array instead.", param, "empty_array")
    seen = set()
    for j, call in enumerate(calls):
        p = f"{param}[{j}]"
        if not isinstance(call, dict):
            raise _invalid_type(p, "an object", call)
        extra = set(call) - {"id", "type", "function"}
        if extra:
            raise _bad(f"Unrecognized request argument supplied: {p}.{sorted(extra)[0]}",
                       p, "unknown_parameter")
        for key in ("id", "type", "function"):
            if key not in call:
                raise _bad(f"Missing required parameter: '{p}.{key}'.", f"{p}.{key}",
                           "missing_required_parameter")
        if not isinstance(call["id"], str) or not call["id"]:
            raise _invalid_type(f"{p}.id", "a non-empty string", call["id"])
        if call["id"] in seen:
            raise _bad(f"Invalid '{p}.id': duplicate tool call id '{call['id']}'.",
                       f"{p}.id", "invalid_value")
        seen.add(call["id"])
        if call["type"] != "function":
            raise _bad(f"Invalid value: {json.dumps(call['type'])}. Supported values "
                       "are: 'function'.", f"{p}.type", "invalid_value")
        fn = call["function"]
        if not isinstance(fn, dict):
            raise _invalid_type(f"{p}.function", "an object", fn)
        extra = set(fn) - {"name", "arguments"}
        if extra:
            raise _bad(f"Unrecognized request argument supplied: {p}.function."
                       f"{sorted(extra)[0]}", f"{p}.function", "unknown_parameter")
        for key in ("name", "arguments"):
            if key not in fn:
                raise _bad(f"Missing required parameter: '{p}.function.{key}'.",
                           f"{p}.function.{key}", "missing_required_parameter")
        if not isinstance(fn["name"], str):
            raise _invalid_type(f"{p}.function.name", "a string", fn["name"])
        # The classic client bug: echoing the arguments back as a JSON object.
        if not isinstance(fn["arguments"], str):
            raise _invalid_type(f"{p}.function.arguments", "a string", fn["arguments"])


def _check_message(i, msg):
    param = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise _invalid_type(param, "an object", msg)
    if "role" not in msg:
        raise _bad(f"Missing required parameter: '{param}.role'.", f"{param}.role",
                   "missing_required_parameter")
    role = msg["role"]
    if role not in ROLES:
        raise _bad(f"Invalid value: {json.dumps(role)}. Supported values are: 'system', "
                   "'assistant', 'user', 'tool', and 'developer'.", f"{param}.role",
                   "invalid_value")
    extra = set(msg) - MESSAGE_KEYS[role]
    if extra:
        raise _bad(f"Unrecognized request argument supplied: {param}.{sorted(extra)[0]}",
                   param, "unknown_parameter")
    if "name" in msg and (not isinstance(msg["name"], str) or not NAME_RE.match(msg["name"])):
        raise _bad(f"Invalid '{param}.name': string does not match pattern. Expected a "
                   "string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                   f"{param}.name", "invalid_value")

    if role in ("system", "developer", "user"):
        _check_content(msg, param, allow_null=False)
    elif role == "assistant":
        _check_content(msg, param, allow_null=True)
        if "refusal" in msg and msg["refusal"] is not None and not isinstance(msg["refusal"], str):
            raise _invalid_type(f"{param}.refusal", "a string", msg["refusal"])
        has_calls = "tool_calls" in msg and msg["tool_calls"] is not None
        if has_calls:
            _check_tool_calls(msg["tool_calls"], f"{param}.tool_calls")
        if msg.get("content") is None and not has_calls:
            raise _bad(f"Invalid value for '{param}': an assistant message must have "
                       "either 'content' or 'tool_calls'.", param, "invalid_value")
    else:  # tool
        if "tool_call_id" not in msg:
            raise _bad(f"Missing required parameter: '{param}.tool_call_id'.",
                       f"{param}.tool_call_id", "missing_required_parameter")
        if not isinstance(msg["tool_call_id"], str):
            raise _invalid_type(f"{param}.tool_call_id", "a string", msg["tool_call_id"])
        _check_content(msg, param, allow_null=False)


def _check_tool_order(messages):
    """Tool results must directly follow the assistant turn that asked for them.

    `pending` maps the tool_call ids of the latest assistant tool_calls message
    to "answered yet?"; it only lives for the contiguous run of tool messages
    right after that assistant message, exactly like the real API enforces.
    """
    pending = None
    pending_at = None

    def missing_error():
        ids = ", ".join(k for k, done in pending.items() if not done)
        return _bad("An assistant message with 'tool_calls' must be followed by tool "
                    "messages responding to each 'tool_call_id'. The following "
                    f"tool_call_ids did not have response messages: {ids}",
                    f"messages.[{pending_at}].role")

    for i, msg in enumerate(messages):
        if msg["role"] == "tool":
            call_id = msg["tool_call_id"]
            if pending is None or call_id not in pending:
                raise _bad("Invalid parameter: messages with role 'tool' must be a "
                           "response to a preceeding message with 'tool_calls'.",
                           f"messages.[{i}].role")
            if pending[call_id]:
                raise _bad(f"Invalid parameter: duplicate tool message for tool_call_id "
                           f"'{call_id}'.", f"messages.[{i}].tool_call_id")
            pending[call_id] = True
            continue
        if pending is not None and not all(pending.values()):
            raise missing_error()
        pending = None
        if msg["role"] == "assistant" and msg.get("tool_calls"):
            pending = {c["id"]: False for c in msg["tool_calls"]}
            pending_at = i
    if pending is not None and not all(pending.values()):
        raise missing_error()


def _check_tools(tools):
    if not isinstance(tools, list):
        raise _invalid_type("tools", "an array", tools)
    if not tools:
        raise _bad("Invalid 'tools': empty array. Expected an array with minimum length 1, "
                   "but got an empty array instead.", "tools", "empty_array")
    names = set()
    for i, tool in enumerate(tools):
        p = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _invalid_type(p, "an object", tool)
        extra = set(tool) - {"type", "function"}
        if extra:
            raise _bad(f"Unrecognized request argument supplied: {p}.{sorted(extra)[0]}",
                       p, "unknown_parameter")
        if tool.get("type") != "function":
            raise _bad(f"Invalid value: {json.dumps(tool.get('type'))}. Supported values "
                       "are: 'function'.", f"{p}.type", "invalid_value")
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise _invalid_type(f"{p}.function", "an object", fn)
        extra = set(fn) - {"name", "description", "parameters", "strict"}
        if extra:
            raise _bad(f"Unrecognized request argument supplied: {p}.function."
                       f"{sorted(extra)[0]}", f"{p}.function", "unknown_parameter")
        name = fn.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _bad(f"Invalid '{p}.function.name': string does not match pattern. "
                       "Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                       f"{p}.function.name", "invalid_value")
        if name in names:
            raise _bad(f"Invalid 'tools': duplicate function name '{name}'.", "tools",
                       "invalid_value")
        names.add(name)
        if "description" in fn and not isinstance(fn["description"], str):
            raise _invalid_type(f"{p}.function.description", "a string", fn["description"])
        if "strict" in fn and fn["strict"] is not None and not isinstance(fn["strict"], bool):
            raise _invalid_type(f"{p}.function.strict", "a boolean", fn["strict"])
        _check_parameters_schema(fn.get("parameters"), f"{p}.function.parameters")
    return names


def _check_parameters_schema(schema, param):
    def invalid(why):
        return _bad(f"Invalid schema for function: {why}", param, "invalid_function_parameters")

    if not isinstance(schema, dict):
        raise invalid(f"'{param}' must be a JSON schema object, got {_type_name(schema)}.")
    if schema.get("type") != "object":
        raise invalid("schema must be a JSON Schema of 'type: \"object\"', got "
                      f"'type: {json.dumps(schema.get('type'))}'.")
    props = schema.get("properties")
    if not isinstance(props, dict):
        raise invalid("'properties' must be an object.")
    for key, sub in props.items():
        if not isinstance(sub, dict):
            raise invalid(f"property '{key}' must be a schema object.")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise invalid("'required' must be an array of strings.")
    for r in required:
        if r not in props:
            # A tool schema naming a parameter it never defines is a client bug.
            raise invalid(f"'required' names '{r}', which is not in 'properties'.")


def _check_tool_choice(choice, tool_names):
    if tool_names is None:
        raise _bad("Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                   "'tools' are specified.", "tool_choice")
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _bad(f"Invalid value: {json.dumps(choice)}. Supported values are: "
                       "'none', 'auto', and 'required'.", "tool_choice", "invalid_value")
        return
    if not isinstance(choice, dict):
        raise _invalid_type("tool_choice", "one of a string or object", choice)
    fn = choice.get("function")
    if (set(choice) != {"type", "function"} or choice.get("type") != "function"
            or not isinstance(fn, dict) or set(fn) != {"name"}
            or not isinstance(fn.get("name"), str)):
        raise _bad("Invalid value for 'tool_choice': expected {\"type\": \"function\", "
                   "\"function\": {\"name\": ...}}.", "tool_choice", "invalid_value")
    if fn["name"] not in tool_names:
        raise _bad(f"Invalid value for 'tool_choice': function '{fn['name']}' is not "
                   "one of the supplied 'tools'.", "tool_choice", "invalid_value")


def _check_number(body, key, lo, hi):
    if body.get(key) is None:
        return
    value = body[key]
    if not _is_number(value):
        raise _invalid_type(key, "a decimal", value)
    if not lo <= value <= hi:
        raise _bad(f"Invalid '{key}': {value} is out of range; expected a value between "
                   f"{lo} and {hi}.", key, "invalid_value")


def _check_scalars(body):
    """Type checks for the optional sampling parameters. JSON null means
    'use the default', which the real API accepts for all of them."""
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not _is_int(value):
            raise _invalid_type(key, "an integer", value)
        if value < 1:
            raise _bad(f"Invalid '{key}': integer below minimum value. Expected a value "
                       f">= 1, but got {value} instead.", key, "integer_below_min_value")

    _check_number(body, "temperature", 0, 2)
    _check_number(body, "top_p", 0, 1)
    _check_number(body, "presence_penalty", -2, 2)
    _check_number(body, "frequency_penalty", -2, 2)

    if body.get("n") is not None:
        if not _is_int(body["n"]):
            raise _invalid_type("n", "an integer", body["n"])
        if body["n"] != 1:
            raise _bad("n != 1 is not supported by this mock.", "n", "unsupported_value")
    if body.get("seed") is not None and not _is_int(body["seed"]):
        raise _invalid_type("seed", "an integer", body["seed"])
    for key in ("user", "reasoning_effort", "service_tier", "service_category"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _invalid_type(key, "a string", body[key])
    if body.get("reasoning_effort") is not None and \
            body["reasoning_effort"] not in ("minimal", "low", "medium", "high"):
        raise _bad(f"Invalid value: {json.dumps(body['reasoning_effort'])}. Supported "
                   "values are: 'minimal', 'low', 'medium', and 'high'.",
                   "reasoning_effort", "invalid_value")
    for key in ("logprobs", "store", "parallel_tool_calls"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise _invalid_type(key, "a boolean", body[key])
    if body.get("top_logprobs") is not None:
        if not _is_int(body["top_logprobs"]) or not 0 <= body["top_logprobs"] <= 20:
            raise _bad("Invalid 'top_logprobs': expected an integer between 0 and 20.",
                       "top_logprobs", "invalid_value")
        if body.get("logprobs") is not True:
            raise _bad("Invalid value for 'top_logprobs': 'logprobs' must be set to true "
                       "when 'top_logprobs' is used.", "top_logprobs")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _invalid_type("stop", "one of a string or array of strings", stop)
        if len(stop) > 4:
            raise _bad("Invalid 'stop': array too long. Expected an array with maximum "
                       f"length 4, but got an array with length {len(stop)} instead.",
                       "stop", "array_above_max_length")
    if body.get("logit_bias") is not None:
        bias = body["logit_bias"]
        if not isinstance(bias, dict) or not all(_is_number(v) and -100 <= v <= 100
                                                 for v in bias.values()):
            raise _bad("Invalid 'logit_bias': expected an object mapping token ids to "
                       "numbers between -100 and 100.", "logit_bias", "invalid_value")
    if body.get("metadata") is not None:
        meta = body["metadata"]
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise _invalid_type("metadata", "an object of strings", meta)
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise _bad("The 'stream_options' parameter is only allowed when 'stream' is "
                   "enabled.", "stream_options")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _invalid_type("stream_options", "an object", options)
        extra = set(options) - {"include_usage", "include_obfuscation"}
        if extra:
            raise _bad(f"Unrecognized request argument supplied: stream_options."
                       f"{sorted(extra)[0]}", "stream_options", "unknown_parameter")
        for key in ("include_usage", "include_obfuscation"):
            if options.get(key) is not None and not isinstance(options[key], bool):
                raise _invalid_type(f"stream_options.{key}", "a boolean", options[key])


def _check_response_format(fmt, messages):
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _invalid_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad(f"Invalid value: {json.dumps(kind)}. Supported values are: 'text', "
                   "'json_object', and 'json_schema'.", "response_format.type",
                   "invalid_value")
    if kind == "json_schema" and not isinstance(fmt.get("json_schema"), dict):
        raise _bad("Missing required parameter: 'response_format.json_schema'.",
                   "response_format.json_schema", "missing_required_parameter")
    if kind == "json_object" and not any(
            "json" in content_text(m.get("content")).lower() for m in messages):
        # A real-API rule that surprises clients; worth reproducing.
        raise _bad("'messages' must contain the word 'json' in some form, to use "
                   "'response_format' of type 'json_object'.", "messages")


def validate_chat_request(body):
    """Raises ApiError for anything the real API would refuse (before the
    context-length check, which needs the mock's per-model windows)."""
    if not isinstance(body, dict):
        raise _bad(JSON_PARSE_MESSAGE)
    for key in body:
        if key not in CHAT_KEYS:
            raise _bad(f"Unrecognized request argument supplied: {key}")

    if "model" not in body:
        raise _bad("you must provide a model parameter", "model",
                   "missing_required_parameter")
    if not isinstance(body["model"], str) or not body["model"]:
        raise _invalid_type("model", "a non-empty string", body["model"])
    if "messages" not in body:
        raise _bad("Missing required parameter: 'messages'.", "messages",
                   "missing_required_parameter")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise _bad("Invalid 'messages': empty array. Expected an array with minimum "
                   "length 1, but got an empty array instead.", "messages", "empty_array")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _invalid_type("stream", "a boolean", body["stream"])

    for i, msg in enumerate(messages):
        _check_message(i, msg)
    _check_tool_order(messages)

    tool_names = None
    if body.get("tools") is not None:
        tool_names = _check_tools(body["tools"])
    if body.get("tool_choice") is not None:
        _check_tool_choice(body["tool_choice"], tool_names)
    if body.get("parallel_tool_calls") is not None and tool_names is None:
        raise _bad("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only "
                   "allowed when 'tools' are specified.", "parallel_tool_calls")

    _check_scalars(body)
    _check_response_format(body.get("response_format"), messages)


def validate_embeddings_request(body):
    if not isinstance(body, dict):
        raise _bad(JSON_PARSE_MESSAGE)
    for key in body:
        if key not in ("model", "input", "encoding_format", "dimensions", "user"):
            raise _bad(f"Unrecognized request argument supplied: {key}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _bad("you must provide a model parameter", "model",
                   "missing_required_parameter")
    if "input" not in body:
        raise _bad("Missing required parameter: 'input'.", "input",
                   "missing_required_parameter")
    inputs = body["input"]
    if isinstance(inputs, str):
        inputs = [inputs]
    elif not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
        # The real API also takes token arrays; the client under test never sends them.
        raise _invalid_type("input", "one of a string or array of strings", body["input"])
    if not inputs:
        raise _bad("'$.input' is invalid. Please check the API reference: "
                   "https://platform.openai.com/docs/api-reference.", "input",
                   "empty_array")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise _bad(f"'$.input' is invalid: at most {MAX_EMBEDDING_INPUTS} inputs are "
                   f"allowed, got {len(inputs)}.", "input", "array_above_max_length")
    for i, text in enumerate(inputs):
        if not text:
            raise _bad(f"'$.input[{i}]' is invalid: input strings must be non-empty.",
                       "input", "invalid_value")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise _bad(f"Invalid value: {json.dumps(fmt)}. Supported values are: 'float' and "
                   "'base64'.", "encoding_format", "invalid_value")
    dims = body.get("dimensions")
    if dims is not None and (not _is_int(dims) or not 1 <= dims <= MAX_EMBEDDING_DIMS):
        raise _bad(f"Invalid 'dimensions': expected an integer between 1 and "
                   f"{MAX_EMBEDDING_DIMS}.", "dimensions", "invalid_value")
    return inputs


def _mask_key(key):
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


# ------------------------------------------------------------------ server

class MockOpenAI(FixedWindows, MockServer):
    """A loopback OpenAI server. See the module docstring and push().

    push(spec, endpoint="embeddings") scripts the embeddings endpoint from a
    separate queue, so embedding calls never eat responses meant for chat
    turns (there only status, body, headers, drop, raw_body and delay are
    meaningful)."""

    NAME = "openai-mock"
    SERVER_VERSION = "openai-mock/1.0"
    ERROR = ApiError
    ENDPOINTS = ("chat", "embeddings")
    ENDPOINT_ERROR = "endpoint must be 'chat' or 'embeddings'"
    REQUEST_ID_HEADER = "x-request-id"
    MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "text-embedding-3-small")

    def __init__(self, api_key="test-key", context_windows=None, default_window=8192,
                 keep_alive=False, verbose=False, no_parallel_models=()):
        """keep_alive: see MockServer. no_parallel_models: models that refuse
        parallel_tool_calls."""
        super().__init__(keep_alive, verbose)
        self.api_key = api_key
        self.no_parallel_models = set(no_parallel_models)
        self.context_windows = dict(context_windows or {})
        self.default_window = default_window
        self.embedding_dims = DEFAULT_EMBEDDING_DIMS
        self._completion_seq = 0
        self._call_seq = 0

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    # ----------------------------------------------------------- scripting

    def chat_requests(self):
        """Bodies of the chat-completion requests that passed validation."""
        with self._lock:
            return [r["body"] for r in self._records
                    if r["path"] == "/v1/chat/completions" and r["valid"]]

    def embedding_requests(self):
        """Records of the /v1/embeddings requests, valid or not, in order."""
        return self.requests_to("/v1/embeddings")

    def _check_spec(self, spec):
        check_spec(spec, SPEC_KEYS)

    # ------------------------------------------------------------ handling

    def _route(self, method, path, headers, raw, record):
        if method == "POST" and path == "/v1/chat/completions":
            return self._chat(headers, raw, record)
        if method == "POST" and path == "/v1/embeddings":
            return self._embeddings(headers, raw, record)
        if method == "GET" and path == "/v1/models":
            return self._models(record)
        raise ApiError(404, f"Invalid URL ({method} {path})", "invalid_request_error")

    def _internal_error(self, exc):
        return ApiError(500, f"openai-mock internal error: {exc!r}", "server_error")

    def _status_error(self, status, headers):
        message, type_, code = DEFAULT_ERRORS.get(
            status, ("The server had an error processing your request.", "server_error", None))
        return ApiError(status, message, type_, None, code, headers)

    def _check_headers(self, headers):
        if self.api_key is None:
            return
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(401, "You didn't provide an API key. You need to provide your API "
                           "key in an Authorization header using Bearer auth (i.e. "
                           "Authorization: Bearer YOUR_KEY), or as the password field "
                           "(with blank username) if you're accessing the API from your "
                           "browser and are prompted for a username and password. You "
                           "can obtain an API key from "
                           "https://platform.openai.com/account/api-keys.",
                           "invalid_request_error", None, "invalid_api_key")
        key = auth[7:].strip()
        if key != self.api_key:
            raise ApiError(401, f"Incorrect API key provided: {_mask_key(key)}. You can "
                           "find your API key at https://platform.openai.com/account/api-keys.",
                           "invalid_request_error", None, "invalid_api_key")

    @staticmethod
    def _parse_json_object(headers, raw):
        if media_type(headers) != "application/json":
            raise _bad(JSON_PARSE_MESSAGE)
        try:
            body = load_json_strict(raw)
        except (UnicodeDecodeError, ValueError):
            raise _bad(JSON_PARSE_MESSAGE) from None
        if not isinstance(body, dict):
            raise _bad(JSON_PARSE_MESSAGE)
        return body

    # ----------------------------------------------------------- endpoints

    def _context_error(self, window, tokens):
        return ApiError(400, f"This model's maximum context length is {window} tokens. "
                        f"However, your messages resulted in {tokens} tokens. Please "
                        "reduce the length of the messages.", "invalid_request_error",
                        "messages", "context_length_exceeded")

    def _chat(self, headers, raw, record):
        body = self._parse_json_object(headers, raw)
        validate_chat_request(body)
        if "parallel_tool_calls" in body and body["model"] in self.no_parallel_models:
            raise ApiError(400, "Unsupported parameter: 'parallel_tool_calls' is not supported "
                           "with this model.", "invalid_request_error", "parallel_tool_calls",
                           "unsupported_parameter")
        window = self.window_for(body["model"])
        prompt_tokens = count_prompt_tokens(body)
        if prompt_tokens > window:
            raise self._context_error(window, prompt_tokens)

        record["valid"] = True
        spec = self._pop("chat") or {}
        self._sleep(spec)
        if spec.get("context_length_exceeded"):
            # Keep the numbers self-consistent ("N > W") in case the client
            # parses them to decide how much to trim.
            raise self._context_error(window, max(prompt_tokens, window + 1))
        reply = self._scripted_transport(spec)
        if reply is not None:
            return reply

        if "content" in spec or "tool_calls" in spec:
            content = spec.get("content")
            calls = [self._make_call(c.get("name"), c.get("arguments", {}), c.get("id"))
                     for c in spec.get("tool_calls") or []]
        else:
            content, calls = self._default_reply(body)
        message = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        message["refusal"] = None

        out_text = (content or "") + "".join(
            c["function"]["name"] + c["function"]["arguments"] for c in calls)
        usage = {"prompt_tokens": prompt_tokens,
                 "completion_tokens": max(1, _ceil_div4(_utf8_len(out_text)))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if spec.get("usage"):
            usage.update(spec["usage"])
            if "total_tokens" not in spec["usage"]:
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

        with self._lock:
            self._completion_seq += 1
            completion_id = f"chatcmpl-{self._completion_seq}"
        finish = spec.get("finish_reason", "tool_calls" if calls else "stop")
        if body.get("stream"):
            return Reply(200, stream=self._stream(body, completion_id, content, calls, usage,
                                                   finish, spec), spec=spec)
        return Reply.json(200, {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }],
            "usage": usage,
            "system_fingerprint": "fp_mock",
        })

    @staticmethod
    def _stream(body, completion_id, content, calls, usage, finish, spec):
        """The reply as the API streams it (see the module docstring)."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": completion_id, "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body["model"],
                "system_fingerprint": "fp_mock"}

        def chunk(delta, finish_reason=None):
            out = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                       "finish_reason": finish_reason}])
            if include_usage:
                out["usage"] = None
            return sse(out)

        events = [chunk({"role": "assistant", "content": "" if content or not calls else None,
                         "refusal": None})]
        events += [chunk({"content": p}) for p in pieces(content or "", spec)]
        per_call = []
        for i, call in enumerate(calls):
            head = chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"],
                                                       "arguments": ""}}]})
            args = [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                    for p in pieces(call["function"]["arguments"], spec)]
            per_call.append([head] + args)
        if spec.get("interleave"):
            while any(per_call):
                for queue in per_call:
                    if queue:
                        events.append(queue.pop(0))
        else:
            for queue in per_call:
                events += queue
        events.append(chunk({}, finish))
        if include_usage:
            events.append(sse(dict(base, choices=[], usage=usage)))

        def error_event(message, type_):
            return sse({"error": {"message": message, "type": type_ or "server_error",
                                  "param": None, "code": None}})

        return assemble(events, sse("[DONE]"), spec, b": keep-alive\n\n", error_event)

    def _make_call(self, name, arguments, call_id=None):
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        if call_id is None:
            with self._lock:
                self._call_seq += 1
                call_id = f"call_{self._call_seq}"
        return {"id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments}}

    def _default_reply(self, body):
        """Deterministic stand-in for a model; returns (content, tool_calls)."""
        messages = body["messages"]
        if not body.get("tools"):
            return self._summarize(messages), []

        last = messages[-1]
        text, args = default_answer(last["role"], content_text(last.get("content")))
        return text, [self._make_call("send_message", args)] if args else []

    def _summarize(self, messages):
        return self._record_summary(
            text for msg in messages
            for text in [content_text(msg.get("content"))]
            + [c["function"]["arguments"] for c in msg.get("tool_calls") or []])

    def _embeddings(self, headers, raw, record):
        body = self._parse_json_object(headers, raw)
        inputs = validate_embeddings_request(body)
        record["valid"] = True
        reply = self._embedding_override(len(inputs))
        if reply is not None:
            return reply

        dims = body.get("dimensions") or self.embedding_dims
        data = []
        for i, text in enumerate(inputs):
            vec = embed_text(text, dims)
            if body.get("encoding_format") == "base64":
                vec = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": vec})
        tokens = sum(_ceil_div4(_utf8_len(t)) for t in inputs)
        return Reply.json(200, {"object": "list", "data": data, "model": body["model"],
                                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _models(self, record):
        record["valid"] = True
        with self._lock:
            ids = sorted(set(self.MODELS) | set(self.context_windows))
        return Reply.json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"}
            for m in ids]})


# -------------------------------------------------------------- standalone

def main(argv=None):
    return keyed_mock_main(MockOpenAI, argv, "Strict loopback mock of the OpenAI API.", 8089,
                           "required Bearer key (default: test-key)")


if __name__ == "__main__":
    sys.exit(main())
