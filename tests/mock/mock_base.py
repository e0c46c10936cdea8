"""What the three loopback mocks (openai_mock.py, anthropic_mock.py,
ollama_mock.py) share: the HTTP server, the request records, the scripted
response queues, the scripted transport failures, and the small checks
every wire format needs.

Each mock is a MockServer subclass that owns only its wire format: which
paths it serves (_route), how it refuses a request (an error class derived
from MockError, whose body() is the API's error shape), which headers it
requires (_check_headers), and the default error bodies of scripted
statuses (_status_error). Everything that is about being a strict loopback
server rather than about one API lives here once, so a fix to it (the
Expect: 100-continue stall, chunked request bodies, a deterministic drop)
reaches all three mocks.

A request is handled in one place, MockServer._handle: the record is made
and appended first (so even a request that crashes the mock is counted),
the body is read (plain or chunked) and kept parsed in the record, the
headers are checked, the route answers or raises the mock's error, and the
reply is written, streamed (stream_util.write_stream) or dropped. The mock
never crashes on a request: a bug in it becomes a loud 500 and a traceback.

Only the Python 3.11 standard library is used.
"""

import argparse
import collections
import json
import math
import re
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from stream_util import check_stream_spec, write_stream

# Every mock's default policy remembers the words after "FACT:" and lists them
# in the summaries it writes, so tests can see what a summary kept.
FACT_RE = re.compile(r"FACT:\s*([\w'-]+)")
SUMMARY_LIST_LIMIT = 300

# Keys every mock's scripted responses take (see each mock's push()).
COMMON_SPEC_KEYS = frozenset({
    "content", "tool_calls", "usage", "finish_reason", "status", "headers",
    "body", "drop", "raw_body", "delay", "context_length_exceeded",
})


# ------------------------------------------------------------ small helpers

def is_int(value):
    # bool is a subclass of int in Python but not an integer in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def ceil_div4(n):
    return (n + 3) // 4


def utf8_len(text):
    return len(text.encode("utf-8"))


def json_kind(value):
    """The JSON type of a decoded value: "null", "bool", "int", "float",
    "string", "array" or "object". Each mock words them its API's way."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def media_type(headers):
    """The Content-Type of a request without parameters, lower case."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def load_json_strict(raw):
    """json.loads of UTF-8 bytes, refusing NaN and Infinity, which Python
    accepts and JSON (and every real API) does not. Raises
    UnicodeDecodeError or ValueError (json.JSONDecodeError where the text
    itself is broken)."""
    def reject_constant(name):
        raise ValueError(name)

    return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)


def default_answer(last_role, last_text):
    """The deterministic stand-in for a model that every mock answers with
    when nothing is scripted and tools were offered, given the role and text
    of the conversation's last message: (inner monologue, the arguments of a
    send_message call or None). A user turn holding a user_message event is
    answered with "You said: ..."; other events are noted."""
    if last_role == "tool":
        return "Function returned; nothing more to do.", None
    if last_role == "user":
        try:
            event = json.loads(last_text)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            if event["type"] == "user_message" and isinstance(event.get("message"), str):
                return "User said something; replying.", {"message": "You said: "
                                                          + event["message"]}
            if event["type"] != "user_message":
                return f"Noted the {event['type']} event.", None
    return "ok", None


class FixedWindows:
    """set_window/window_for for the mocks whose API refuses a prompt over the
    model's window (OpenAI, Anthropic); needs context_windows,
    default_window and _lock."""

    def set_window(self, model, tokens):
        with self._lock:
            self.context_windows[model] = tokens

    def window_for(self, model):
        with self._lock:
            return self.context_windows.get(model, self.default_window)


def check_spec(spec, keys):
    """The checks of a scripted response every mock makes at push() time, so
    a typo in a test fails there rather than mid-run."""
    if not isinstance(spec, dict):
        raise TypeError("a scripted response must be a dict")
    unknown = set(spec) - keys
    if unknown:
        raise ValueError(f"unknown scripted-response keys: {sorted(unknown)}")
    if not is_int(spec.get("status", 200)):
        raise ValueError(f"scripted 'status' must be an integer: {spec!r}")
    if not is_number(spec.get("delay", 0)):
        raise ValueError(f"scripted 'delay' must be a number of seconds: {spec!r}")
    for call in spec.get("tool_calls") or []:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise ValueError(f"scripted tool call needs a 'name': {call!r}")
        if set(call) - {"name", "arguments", "id"}:
            raise ValueError(f"unknown scripted tool-call keys: {call!r}")
    check_stream_spec(spec)


def keyed_mock_main(mock_class, argv, description, port, key_help):
    """Standalone use of a mock that takes an API key and a window."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=port)
    ap.add_argument("--api-key", default="test-key", help=key_help)
    ap.add_argument("--no-auth", action="store_true", help="accept any (or no) key")
    ap.add_argument("--window", type=int, default=8192,
                    help="context window in tokens for every model (default: 8192)")
    ap.add_argument("--keep-alive", action="store_true",
                    help="keep connections open between requests")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args(argv)
    mock = mock_class(api_key=None if args.no_auth else args.api_key,
                      default_window=args.window, keep_alive=args.keep_alive,
                      verbose=args.verbose)
    return mock.serve_standalone(args.port)


# ------------------------------------------------------------------ server

class MockError(Exception):
    """An error answer; raised anywhere while handling a request. Each mock
    derives its own with body() in its API's shape."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self, request_id=None):
        raise NotImplementedError


class Reply:
    """What to write back: status + JSON (or raw) body + extra headers, or a
    stream (its bytes, and the spec that says how to deliver them), or
    nothing at all (drop). content_type None: the mock's default."""

    __slots__ = ("status", "payload", "headers", "error", "drop", "content_type", "stream",
                 "spec")

    def __init__(self, status=200, payload=b"", headers=None, error=None, drop=False,
                 content_type=None, stream=None, spec=None):
        self.status = status
        self.payload = payload
        self.headers = headers or {}
        self.error = error
        self.drop = drop
        self.content_type = content_type
        self.stream = stream  # the bytes of a streamed answer (then payload is unused)
        self.spec = spec or {}

    @classmethod
    def json(cls, status, obj, headers=None, error=None):
        return cls(status, json.dumps(obj).encode("utf-8"), headers, error)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 matters: with 1.0 the server never answers "Expect: 100-continue",
    # and curl then stalls a full second before sending any large POST body.
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return self.server.mock.SERVER_VERSION

    def do_GET(self):
        self.server.mock._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def do_HEAD(self):
        if not self.server.mock.SERVES_HEAD:
            # What BaseHTTPRequestHandler answers for a method it has no do_ for.
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        self.server.mock._handle(self)

    def log_message(self, format, *args):  # noqa: A002 - base-class signature
        if self.server.mock.verbose:
            sys.stderr.write("%s: %s\n" % (self.server.mock.NAME, format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a burst of clients (the server's
    # benchmarks open a hundred at once) overflows it, and each dropped SYN
    # costs its client a one-second retransmit.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # Clients that give up (timeouts) or sockets closed on purpose are
        # normal here; only report real bugs in the mock.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class MockServer:
    """A loopback server with request records and scripted responses.

    Subclasses set the class attributes below and implement _route,
    _check_headers, _status_error and _internal_error (and _check_spec for
    push). ENDPOINTS names the scripted queues: push(spec, endpoint) fills
    one, the route pops from it (_pop)."""

    NAME = "mock"                     # log prefix and thread name
    SERVER_VERSION = "mock/1.0"       # the Server header
    ERROR = MockError                 # the error class the routes raise
    ENDPOINTS = ("chat",)
    ENDPOINT_ERROR = "endpoint must be 'chat'"
    CONTENT_TYPE = "application/json"
    STREAM_CONTENT_TYPE = "text/event-stream; charset=utf-8"
    REQUEST_ID_HEADER = None          # e.g. "x-request-id": sent with every answer
    SERVES_HEAD = False
    RECORD_FIELDS = {}                # extra fields of every record, with defaults
    MALFORMED_CHUNKED = "Malformed chunked request body."
    BAD_CONTENT_LENGTH = "Invalid Content-Length header."

    def __init__(self, keep_alive=False, verbose=False):
        """keep_alive=False answers every request with "Connection: close".
        That makes a scripted drop deterministic: curl silently retries a
        request whose *reused* connection died, which would hide the drop."""
        self.keep_alive = keep_alive
        self.verbose = verbose
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._queues = {name: collections.deque() for name in self.ENDPOINTS}
        self._records = []
        self._summaries = []
        self._request_seq = 0
        self._server = None
        self._thread = None
        # A cap on inputs per embeddings request below the API's own, as the
        # servers in front of many models have: text-embeddings-inference
        # (--max-client-batch-size, 32 by default) answers 413, a compatible
        # server may answer 400 as OpenAI does over its cap (set
        # embedding_cap_status). None: no such cap. reset() keeps it.
        self.embedding_input_cap = None
        self.embedding_cap_status = 413

    def _embedding_override(self, n):
        """The answer to a valid embeddings request of n inputs when it is
        not the default one: the refusal of a request over
        embedding_input_cap (in the shape of the server that sends it), else
        a scripted reply; None for neither."""
        cap = self.embedding_input_cap
        if cap is None or n <= cap:
            return self._take_script("embeddings")[1]
        if self.embedding_cap_status == 413:  # text-embeddings-inference's words
            return Reply.json(413, {"error": f"batch size {n} > maximum allowed batch size "
                                             f"{cap}", "error_type": "validation"})
        return Reply.json(400, {"error": {
            "message": f"'$.input' is invalid: at most {cap} inputs are allowed, got {n}.",
            "type": "invalid_request_error", "param": "input",
            "code": "array_above_max_length"}})

    # ---------------------------------------------------------- lifecycle

    def start(self):
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.mock = self
        # A short poll interval keeps stop() (and so every test's tearDown) fast.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=self.NAME, daemon=True)
        self._thread.start()
        return self

    def _serve_on(self, port):
        """Standalone mode: bind a fixed port and serve in the calling thread."""
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.mock = self
        return self._server

    def serve_standalone(self, port):
        """Serves on `port` until interrupted, printing the base URL first."""
        server = self._serve_on(port)
        print(self.base_url, flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0

    def stop(self):
        self._stopping.set()  # wakes handlers sleeping on a scripted delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    # ----------------------------------------------------------- scripting

    def _check_spec(self, spec):
        raise NotImplementedError

    def push(self, spec, endpoint="chat"):
        """Queues one scripted response (FIFO) for `endpoint`."""
        if endpoint not in self._queues:
            raise ValueError(self.ENDPOINT_ERROR)
        self._check_spec(spec)
        with self._lock:
            self._queues[endpoint].append(dict(spec))
        return self

    def pending(self):
        """How many scripted chat responses have not been used yet."""
        with self._lock:
            return len(self._queues["chat"])

    def reset(self):
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._records.clear()
            self._summaries.clear()

    @property
    def requests(self):
        """Snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._records)

    def requests_to(self, path, method=None):
        """The records of the requests to `path` (and `method`), in order."""
        with self._lock:
            return [r for r in self._records
                    if r["path"] == path and (method is None or r["method"] == method)]

    def invalid_requests(self):
        """Records of requests the mock refused (handy in assertion messages)."""
        with self._lock:
            return [r for r in self._records if not r["valid"]]

    @property
    def summaries(self):
        with self._lock:
            return list(self._summaries)

    def _pop(self, endpoint="chat"):
        with self._lock:
            queue = self._queues[endpoint]
            return queue.popleft() if queue else None

    def _sleep(self, spec):
        delay = spec.get("delay") if spec else None
        if delay:
            self._stopping.wait(float(delay))

    def _record_summary(self, texts):
        """The default policy's summary of `texts`: the FACT words in them,
        in order, each once, as many as fit SUMMARY_LIST_LIMIT."""
        words = []
        for text in texts:
            for word in FACT_RE.findall(text):
                if word not in words:
                    words.append(word)
        listing = ""
        for word in words:
            candidate = f"{listing}, {word}" if listing else word
            if len(candidate) > SUMMARY_LIST_LIMIT:
                break
            listing = candidate
        with self._lock:
            text = f"Summary #{len(self._summaries) + 1}: {listing or 'no facts'}"
            self._summaries.append(text)
        return text

    def _take_script(self, endpoint):
        """Pops the next scripted response for `endpoint`, waits out its delay,
        and returns (spec, the reply it fixes or None)."""
        spec = self._pop(endpoint) or {}
        self._sleep(spec)
        return spec, self._scripted_transport(spec)

    def _status_error(self, status, headers):
        """The error a scripted status >= 400 answers with, by default."""
        raise NotImplementedError

    def _scripted_transport(self, spec):
        """Replies a spec fixes regardless of endpoint: drop, raw, error, body."""
        if spec.get("drop"):
            return Reply(drop=True)
        headers = spec.get("headers") or {}
        status = spec.get("status", 200)
        if "raw_body" in spec:
            raw = spec["raw_body"]
            payload = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
            return Reply(status, payload, headers,
                         f"raw body ({status})" if status >= 400 else None)
        if "body" in spec:
            body = spec["body"]
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                error = error.get("message")
            return Reply.json(status, body, headers, error if isinstance(error, str) else None)
        if status >= 400:
            return self._error_reply(self._status_error(status, headers), None)
        return None

    # ------------------------------------------------------------ handling

    def _route(self, method, path, headers, raw, record):
        raise NotImplementedError

    def _check_headers(self, headers):
        """Raises the mock's error for missing or wrong credentials etc."""

    def _internal_error(self, exc):
        raise NotImplementedError

    def _finish_record(self, record, reply):
        """Last look at a record before the answer goes out."""

    def _error_reply(self, err, request_id):
        return Reply.json(err.status, err.body(request_id), err.headers, err.message)

    def _handle(self, handler):
        method = handler.command
        url = urlsplit(handler.path)
        path = url.path
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = {"method": method, "path": path, "query": url.query, "headers": headers,
                  "body": None, "status": None, "error": None, "valid": False}
        for key, default in self.RECORD_FIELDS.items():
            record[key] = default() if callable(default) else default
        with self._lock:
            self._records.append(record)
            self._request_seq += 1
            request_id = f"req_mock_{self._request_seq}"
        try:
            raw = self._read_body(handler, headers)
            try:
                record["body"] = json.loads(raw) if raw else None
            except ValueError:
                pass
            if "wire" in record:
                record["wire"] = record["body"]
            self._check_headers(headers)
            reply = self._route(method, path, headers, raw, record)
        except MockError as err:
            reply = self._error_reply(err, request_id)
        except Exception as exc:  # a bug in the mock: make it loud, not a hang-up
            traceback.print_exc()
            reply = self._error_reply(self._internal_error(exc), request_id)

        self._finish_record(record, reply)
        record["status"] = None if reply.drop else reply.status
        record["error"] = reply.error
        if reply.drop:
            # Say nothing and hang up: the client sees an empty reply.
            handler.close_connection = True
            return
        extra = {self.REQUEST_ID_HEADER: request_id} if self.REQUEST_ID_HEADER else {}
        if reply.stream is not None:
            record["stream"] = write_stream(handler, reply.stream,
                                            reply.content_type or self.STREAM_CONTENT_TYPE,
                                            reply.spec, self.keep_alive, self._stopping,
                                            dict(reply.headers, **extra))
            return
        self._write(handler, reply, method, extra)

    def _write(self, handler, reply, method, extra):
        # Spec headers may override ours (e.g. Content-Type for raw bodies),
        # so merge case-insensitively.
        merged = {"content-type": ("Content-Type", reply.content_type or self.CONTENT_TYPE)}
        for k, v in extra.items():
            merged[k.lower()] = (k, v)
        for k, v in reply.headers.items():
            merged[k.lower()] = (k, str(v))
        handler.send_response(reply.status)
        for name, value in merged.values():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.payload)))
        if not self.keep_alive:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(reply.payload)

    def _read_body(self, handler, headers):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                line = handler.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise self._bad_request(self.MALFORMED_CHUNKED) from None
                if size == 0:
                    # Skip optional trailers up to the blank line.
                    while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline(65537)
        length = headers.get("content-length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise self._bad_request(self.BAD_CONTENT_LENGTH) from None
        return handler.rfile.read(n)

    def _bad_request(self, message):
        """A 400 in the mock's error shape."""
        return self.ERROR(400, message)
