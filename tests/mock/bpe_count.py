"""Prompt tokens the way the OpenAI API bills them, for the mock.

memgpt counts its context budget exactly for OpenAI models whose encoding
is known (o200k_base, cl100k_base), so a mock that charged bytes / 4 would
refuse requests the real API accepts. This module counts like the API: the
encoding's published pre-tokenization pattern (tiktoken's, run with the
`regex` package, which has the Unicode classes the stdlib `re` lacks) and
byte pair merges over the rank file, written independently of the C
tokenizer so the mock stays a referee, not a copy.

Billing, per OpenAI's published guidance for chat models: each message
costs 3 tokens of framing plus 1 for its role plus its content; each
function call in an assistant message its name and arguments; the reply's
opening 3. Function schemas are billed in an internal rendering; the mock
charges the compact JSON of the function objects, which is close to it.

The rank files are the ones memgpt uses: share/memgpt beside $MEMGPT_BIN
(else $MEMGPT_TOKENIZER_DIR, for the mock run on its own). When they are
missing, `encoding_for` returns None and the caller keeps its own formula;
memgpt then estimates too, since it reads the same files. Without `regex`
(Debian: python3-regex, which `make deps` installs) the mock cannot count
like the API, and the tests that aim at a window would fail.
"""

import base64
import json
import os

try:
    import regex
except ImportError:  # the mock falls back to its formula
    regex = None

# tiktoken's patterns, as published.
_PATTERNS = {
    "o200k_base": "|".join([
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]),
    "cl100k_base": r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"
                   r"| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s",
}

# Model name prefixes (longest wins), as memgpt's table has them.
_MODELS = [
    ("gpt-5", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"),
    ("gpt-4o", "o200k_base"), ("chatgpt-4o", "o200k_base"), ("o1", "o200k_base"),
    ("o3", "o200k_base"), ("o4", "o200k_base"), ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"),
]

_encoders = {}


def _rank_dir():
    # The place the binary under test looks (the harness runs it without
    # MEMGPT_* variables); the variable only for the mock run on its own.
    binary = os.environ.get("MEMGPT_BIN")
    if binary:
        return os.path.join(os.path.dirname(os.path.abspath(binary)), "share", "memgpt")
    return os.environ.get("MEMGPT_TOKENIZER_DIR")


class Encoder:
    def __init__(self, name, path):
        self.ranks = {}
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    token, rank = line.split()
                    self.ranks[base64.b64decode(token)] = int(rank)
        self.pattern = regex.compile(_PATTERNS[name])
        self.memo = {}

    def _merge(self, piece):
        parts = [piece[i:i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            best, at = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        return len(parts)

    def count(self, text):
        n = 0
        for m in self.pattern.finditer(text):
            piece = m.group().encode("utf-8")
            if piece in self.ranks:
                n += 1
                continue
            k = self.memo.get(piece)
            if k is None:
                k = self.memo[piece] = self._merge(piece)
            n += k
        return n


def encoding_for(model):
    """The Encoder for an OpenAI model name, or None (unknown model, no rank
    files, no `regex`)."""
    if regex is None or not isinstance(model, str):
        return None
    best = None
    for prefix, name in _MODELS:
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, name)
    if best is None:
        return None
    name = best[1]
    if name not in _encoders:
        directory = _rank_dir()
        path = os.path.join(directory, name + ".tiktoken") if directory else None
        if not (path and os.path.isfile(path)):
            return None  # not remembered: the files may arrive (CTest's setup)
        _encoders[name] = Encoder(name, path)
    return _encoders[name]


def count_chat_request(body, enc, content_text):
    """Billed prompt tokens of a chat-completions body."""
    total = 3  # the reply's opening
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        total += 4 + enc.count(content_text(msg.get("content")))
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                for key in ("name", "arguments"):
                    if isinstance(fn.get(key), str):
                        total += enc.count(fn[key])
    tools = body.get("tools")
    if tools:
        functions = [t.get("function") for t in tools if isinstance(t, dict)]
        total += enc.count(json.dumps(functions, separators=(",", ":"), ensure_ascii=False))
    return total
