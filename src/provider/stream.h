/*
 * stream.h - incremental parsing of streamed LLM replies.
 *
 * Providers stream a reply as a sequence of small JSON documents: OpenAI and
 * Anthropic frame them as Server-Sent Events, Ollama as newline-delimited
 * JSON. The network cuts that byte stream wherever it likes: inside a line,
 * inside a CRLF, inside a UTF-8 character. The framers below take the bytes
 * in whatever pieces they arrive and hand out whole events (or lines),
 * keeping only the unfinished one.
 *
 * The tool-call arguments inside those events are themselves a JSON object
 * that arrives in pieces ("{\"mess", "age\": \"Hel", "lo\\n\"}").
 * mg_json_string_extractor pulls one top-level string member (send_message's
 * "message") out of that partial text as it grows, decoded, so the reply can
 * be shown while the model is still writing it.
 *
 * Ownership: every struct here is owned by the caller (usually on the stack)
 * and released with its _free function; callbacks receive pointers that are
 * valid only during the call.
 */
#ifndef MG_PROVIDER_STREAM_H
#define MG_PROVIDER_STREAM_H

#include <stddef.h>

#include "util/buf.h"

/* Largest single event (SSE) or line (NDJSON) accepted. A reply is many
 * small events; one this large means a broken or hostile server. */
#define MG_STREAM_MAX_EVENT ((size_t)8 * 1024 * 1024)

/* Returned by the feed functions when an event or line passes
 * MG_STREAM_MAX_EVENT. Callbacks must return other values to stop. */
#define MG_STREAM_TOO_LARGE (-1)

/* ----------------------------------------------------------- plain body */

/* A server that ignores "stream": true answers with one JSON body instead of
 * a stream. The first non-blank byte tells: '{' starts a plain body, which is
 * then kept whole in `body`; anything else is the stream. Zero-initialize;
 * free `body` with buf_free. */
typedef struct mg_plain_body {
    int sniffed; /* the first non-blank byte was seen */
    int plain;   /* ... and it was '{' */
    buf body;
} mg_plain_body;

/* Returns 1 when the bytes belong to a plain body (and were kept), 0 when
 * they are the stream's to parse. */
int mg_plain_body_feed(mg_plain_body *p, const char *data, size_t len);

/* ------------------------------------------------------------------ SSE */

/* Called once per dispatched event. `event` is the last "event:" field of the
 * event, or "" when there was none; `data` is its "data:" lines joined with
 * "\n" (NUL-terminated, `len` bytes). Return 0 to go on, anything else
 * (positive) to stop: the feed function then returns that value. */
typedef int (*mg_sse_event_fn)(void *user, const char *event, const char *data, size_t len);

/* An incremental Server-Sent Events parser, as the WHATWG spec defines the
 * format: lines end in CRLF, LF or CR (a CRLF split across two feeds is still
 * one line end); "field: value" (one space after the colon dropped);
 * several data lines are joined with "\n"; a line starting with ':' is a
 * comment (keep-alive); a blank line dispatches the event, and an event
 * without data is not dispatched. "id" and "retry" are ignored, as is a
 * UTF-8 byte order mark at the very start. */
typedef struct mg_sse_parser {
    mg_sse_event_fn on_event;
    void *user;
    buf line;     /* the unfinished line */
    buf data;     /* data lines of the current event, each followed by \n */
    buf event;    /* event name of the current event */
    int after_cr; /* the last byte was CR: an LF right after it ends the same line */
    int started;  /* a line was processed: a byte order mark can only come before */
} mg_sse_parser;

void mg_sse_init(mg_sse_parser *p, mg_sse_event_fn on_event, void *user);

/* Feeds the next bytes. Returns 0, the callback's stop value, or
 * MG_STREAM_TOO_LARGE. After a nonzero return the parser must not be fed
 * again. */
int mg_sse_feed(mg_sse_parser *p, const char *bytes, size_t len);

/* The stream ended. An event whose lines are all complete but which lacks
 * the final blank line is dispatched (servers that close right after the
 * last event); an unfinished line is dropped, since a stream cut in the
 * middle of a line cannot be trusted. Returns like mg_sse_feed. */
int mg_sse_finish(mg_sse_parser *p);

void mg_sse_free(mg_sse_parser *p);

/* --------------------------------------------------------------- NDJSON */

/* Called once per non-blank line, without its line end (NUL-terminated).
 * Return values as for mg_sse_event_fn. */
typedef int (*mg_ndjson_line_fn)(void *user, const char *line, size_t len);

/* Newline-delimited JSON: lines end in LF (a CR before it is dropped);
 * blank lines are skipped. */
typedef struct mg_ndjson_parser {
    mg_ndjson_line_fn on_line;
    void *user;
    buf line;
} mg_ndjson_parser;

void mg_ndjson_init(mg_ndjson_parser *p, mg_ndjson_line_fn on_line, void *user);
int mg_ndjson_feed(mg_ndjson_parser *p, const char *bytes, size_t len);

/* The stream ended: an unfinished last line is dropped (see mg_sse_finish).
 * Returns 1 if one was, else 0. */
int mg_ndjson_finish(mg_ndjson_parser *p);
void mg_ndjson_free(mg_ndjson_parser *p);

/* ------------------------------------------------- partial JSON strings */

/* Finds the member `key` at the top level of a JSON object given in pieces,
 * and decodes its string value as the pieces arrive.
 *
 * Members before it, whatever they hold (nested objects and arrays, strings
 * containing braces and quotes, numbers), are skipped; only the first member
 * named `key` counts, and only if its value is a string. Escapes are decoded
 * however they are split (\" \\ \/ \b \f \n \r \t \uXXXX, and surrogate
 * pairs even when the two halves arrive in different pieces). Output is
 * always whole UTF-8 characters: a character split between pieces is held
 * back until it is complete.
 *
 * The decoding agrees with what the functions layer will see after
 * mg_json_repair and jansson: invalid UTF-8, \u0000 and lone surrogates
 * become U+FFFD. Text that jansson would refuse (a raw control character in
 * the string, an unknown escape, a malformed object) stops the extraction
 * for good: nothing more is emitted, since the call will fail anyway. */
typedef struct mg_json_string_extractor {
    char key[64];
    size_t key_len;
    int state;                /* where in the object we are (stream.c) */
    int depth;                /* nesting inside a skipped value */
    int in_string;            /* inside a string of a skipped value */
    int escaped;              /* the previous byte of that string was a backslash */
    int key_matches;          /* the key being read is still equal to `key` so far */
    size_t key_seen;          /* bytes of the key being read (escapes decoded) */
    int found;                /* the value is being (or was) extracted */
    unsigned hex;             /* \u escape: the value so far */
    int hex_digits;           /* \u escape: digits read */
    unsigned high;            /* a high surrogate waiting for its low half, or 0 */
    unsigned char pending[4]; /* the start of a UTF-8 character */
    int pending_len;
    int pending_need; /* its full length */
} mg_json_string_extractor;

/* `key` must be at most 63 bytes. */
void mg_jse_init(mg_json_string_extractor *x, const char *key);

/* Feeds the next piece of the object's text; appends the newly decoded
 * characters of the value to *out. Returns the number of bytes appended. */
size_t mg_jse_feed(mg_json_string_extractor *x, const char *text, size_t len, buf *out);

/* 1 once the whole value has been read (its closing quote seen). */
int mg_jse_complete(const mg_json_string_extractor *x);

/* 1 if extraction stopped: the text is not a JSON object, the key's value is
 * not a string, or the text broke JSON's rules. */
int mg_jse_failed(const mg_json_string_extractor *x);

#endif
