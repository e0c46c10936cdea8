"""Streamed answers for the loopback mocks (OpenAI and Anthropic SSE, Ollama
JSON lines), with scriptable hostile delivery.

Each mock builds the whole stream as a list of events (bytes) from a
scripted spec, then write_stream() sends it the way a real server would -
chunked transfer encoding, one network write per piece - but cut up and
disturbed as the spec asks, so tests can check that the client survives
what real networks and servers do:

  "chunk_bytes": N     split the stream into network writes of N bytes, cutting
                       lines, escapes and UTF-8 characters wherever they fall
                       (TCP_NODELAY, so small writes are not merged on the way)
  "chunk_delay": S     sleep S seconds between those writes
  "piece_chars": N     characters of text or argument JSON per event (default
                       4, about a token); 1 cuts every escape sequence of the
                       arguments into separate events
  "keepalive": true    a keep-alive before every event (SSE comment, Anthropic
                       ping event, or a blank line for JSON lines)
  "stream_error": {"message": ..., "type": ..., "after_events": K}
                       after K events (default 2) the provider's mid-stream
                       error event, and the stream ends without its final event
  "cut_after_bytes": N drop the connection after N bytes of the stream, without
                       the chunked encoding's final chunk (the client sees a
                       transfer error)
  "cut_before_end": N  the same, N bytes before the end of the stream (inside
                       its last event, for small N, whatever the reply's size)
  "cut_clean": true    with either cut: end the HTTP response properly instead,
                       so the stream just stops early
  "interleave": true   OpenAI: send the argument pieces of several tool calls
                       interleaved, as parallel calls arrive

Only the Python 3.11 standard library is used.
"""

import json
import socket

STREAM_SPEC_KEYS = frozenset({
    "chunk_bytes", "chunk_delay", "piece_chars", "keepalive", "stream_error",
    "cut_after_bytes", "cut_before_end", "cut_clean", "interleave",
})


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_stream_spec(spec):
    """Catches mistakes in the stream keys of a scripted spec at push() time."""
    for key in ("chunk_bytes", "piece_chars"):
        if key in spec and (not _is_int(spec[key]) or spec[key] < 1):
            raise ValueError(f"scripted {key!r} must be a whole number >= 1: {spec!r}")
    for key in ("cut_after_bytes", "cut_before_end"):
        if key in spec and (not _is_int(spec[key]) or spec[key] < 0):
            raise ValueError(f"scripted {key!r} must be a whole number >= 0: {spec!r}")
    if "cut_after_bytes" in spec and "cut_before_end" in spec:
        raise ValueError("give one of 'cut_after_bytes' and 'cut_before_end'")
    if "chunk_delay" in spec and (not isinstance(spec["chunk_delay"], (int, float))
                                  or spec["chunk_delay"] < 0):
        raise ValueError(f"scripted 'chunk_delay' must be seconds >= 0: {spec!r}")
    err = spec.get("stream_error")
    if err is not None:
        if not isinstance(err, dict) or set(err) - {"message", "type", "after_events"}:
            raise ValueError(f"scripted 'stream_error' must be a dict of message, type, "
                             f"after_events: {err!r}")
        if "after_events" in err and (not _is_int(err["after_events"])
                                      or err["after_events"] < 0):
            raise ValueError("stream_error.after_events must be a whole number >= 0")
    if spec.get("cut_clean") and "cut_after_bytes" not in spec and "cut_before_end" not in spec:
        raise ValueError("'cut_clean' only makes sense with a cut")


def pieces(text, spec):
    """The text as the list of pieces the events carry ([] for "")."""
    n = spec.get("piece_chars", 4)
    return [text[i:i + n] for i in range(0, len(text), n)]


def sse(data, event=None):
    """One Server-Sent Event: optional name, JSON data (raw UTF-8), blank line."""
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (head + f"data: {body}\n\n").encode("utf-8")


def json_line(obj):
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def assemble(events, final, spec, keepalive, error_event):
    """The stream's bytes: `events` (list of bytes), then the `final` bytes
    (end marker), with keep-alives and a mid-stream error as the spec asks.
    error_event(message, type) gives the provider's error event."""
    err = spec.get("stream_error")
    if err is not None:
        events = events[:err.get("after_events", 2)]
        events.append(error_event(err.get("message", "The server had an error while "
                                          "streaming the response."), err.get("type")))
        final = b""
    out = []
    for ev in events:
        if spec.get("keepalive"):
            out.append(keepalive)
        out.append(ev)
    out.append(final)
    return b"".join(out)


def write_stream(handler, payload, content_type, spec, keep_alive, stopping, headers=None):
    """Sends a 200 with `payload` as a chunked body, disturbed per the spec.
    Returns a note for the mock's record (how the stream ended)."""
    handler.send_response(200)
    merged = {"content-type": ("Content-Type", content_type),
              "cache-control": ("Cache-Control", "no-cache")}
    for k, v in (headers or {}).items():
        merged[k.lower()] = (k, str(v))
    for name, value in merged.values():
        handler.send_header(name, value)
    handler.send_header("Transfer-Encoding", "chunked")
    cut = spec.get("cut_after_bytes")
    if "cut_before_end" in spec:
        cut = max(0, len(payload) - spec["cut_before_end"])
    if not keep_alive or (cut is not None and not spec.get("cut_clean")):
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    try:
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    data = payload if cut is None else payload[:cut]
    step = spec.get("chunk_bytes") or max(1, len(data))
    delay = spec.get("chunk_delay") or 0
    try:
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.flush()
            if delay and i + step < len(data) and stopping.wait(delay):
                return "stopped"
        if cut is not None and not spec.get("cut_clean"):
            # Hang up in the middle of the body: no final chunk.
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return f"cut after {len(data)} bytes"
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
    except OSError:
        return "client went away"
    return "cut cleanly" if cut is not None else "complete"
