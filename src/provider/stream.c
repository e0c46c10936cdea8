/*
 * stream.c - framers for streamed replies, and a decoder for one string
 * member of a JSON object that is still being written.
 *
 * Both framers are push parsers: the HTTP layer hands them bytes in whatever
 * pieces the network delivered, and they keep exactly one unfinished line
 * between calls. Nothing else is buffered, so memory stays proportional to
 * the largest event, not to the reply, and MG_STREAM_MAX_EVENT bounds even
 * that. Line ends are found with memchr-style scans over each piece and the
 * spans between them are appended whole, so the per-byte cost is a compare.
 *
 * The hard part of SSE is not the grammar but the boundaries: a CRLF may be
 * split so that CR ends one piece and LF starts the next, and the LF must
 * then not count as a second (blank) line, or every event would be
 * dispatched early. `after_cr` carries that one bit across calls.
 *
 * The extractor is a byte-at-a-time state machine over the argument text of
 * a tool call. It only needs to understand enough JSON to find a top-level
 * key: strings (with escapes, so a quote or brace inside one is not taken
 * for structure), nesting depth of skipped values, and the punctuation
 * between members. Once inside the wanted string it decodes escapes and
 * checks UTF-8, emitting each character only when it is whole; the partial
 * state (a started \u escape, a high surrogate waiting for its low half, the
 * first bytes of a multibyte character) lives in the struct, so a piece may
 * end anywhere. Anything that is not JSON stops it for good rather than
 * guessing: the functions layer would refuse such arguments, and showing
 * text that will never be sent is worse than showing less.
 */
#include "provider/stream.h"

#include <string.h>

#include "util/text.h"

/* ----------------------------------------------------------- plain body */

int mg_plain_body_feed(mg_plain_body *p, const char *data, size_t len)
{
    if (!p->sniffed) {
        size_t i = 0;
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
            i++;
        if (i < len) {
            p->sniffed = 1;
            p->plain = data[i] == '{';
        }
    }
    if (!p->plain) return 0;
    buf_append(&p->body, data, len);
    return 1;
}

/* ------------------------------------------------------------------ SSE */

void mg_sse_init(mg_sse_parser *p, mg_sse_event_fn on_event, void *user)
{
    memset(p, 0, sizeof *p);
    p->on_event = on_event;
    p->user = user;
}

void mg_sse_free(mg_sse_parser *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->event);
}

static int sse_dispatch(mg_sse_parser *p)
{
    int rc = 0;
    if (p->data.len) {
        p->data.len--; /* the \n after the last data line */
        p->data.data[p->data.len] = '\0';
        rc = p->on_event(p->user, buf_str(&p->event), buf_str(&p->data), p->data.len);
    }
    buf_reset(&p->data);
    buf_reset(&p->event);
    return rc;
}

static int sse_line(mg_sse_parser *p)
{
    const char *s = buf_str(&p->line);
    size_t n = p->line.len;
    if (!p->started) {
        p->started = 1;
        if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, n -= 3;
    }
    if (n == 0) return sse_dispatch(p);
    if (s[0] == ':') return 0; /* a comment: servers send them to keep the line alive */
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *value = colon ? colon + 1 : s + n;
    size_t value_len = (size_t)(s + n - value);
    if (value_len && *value == ' ') value++, value_len--;
    if (name_len == 4 && memcmp(s, "data", 4) == 0) {
        buf_append(&p->data, value, value_len);
        buf_putc(&p->data, '\n');
    } else if (name_len == 5 && memcmp(s, "event", 5) == 0) {
        buf_reset(&p->event);
        buf_append(&p->event, value, value_len);
    }
    return 0;
}

int mg_sse_feed(mg_sse_parser *p, const char *bytes, size_t len)
{
    const char *end = bytes + len;
    while (bytes < end) {
        if (p->after_cr) {
            p->after_cr = 0;
            if (*bytes == '\n') {
                bytes++;
                continue;
            }
        }
        const char *stop = bytes;
        while (stop < end && *stop != '\r' && *stop != '\n')
            stop++;
        size_t span = (size_t)(stop - bytes);
        if (p->line.len + span + p->data.len > MG_STREAM_MAX_EVENT) return MG_STREAM_TOO_LARGE;
        buf_append(&p->line, bytes, span);
        bytes = stop;
        if (bytes == end) break;
        p->after_cr = *bytes == '\r';
        bytes++;
        int rc = sse_line(p);
        buf_reset(&p->line);
        if (rc) return rc;
    }
    return 0;
}

int mg_sse_finish(mg_sse_parser *p)
{
    if (p->line.len) {
        /* Cut inside a line: the event it belongs to is incomplete. */
        buf_reset(&p->line);
        buf_reset(&p->data);
        return 0;
    }
    return sse_dispatch(p);
}

/* --------------------------------------------------------------- NDJSON */

void mg_ndjson_init(mg_ndjson_parser *p, mg_ndjson_line_fn on_line, void *user)
{
    memset(p, 0, sizeof *p);
    p->on_line = on_line;
    p->user = user;
}

void mg_ndjson_free(mg_ndjson_parser *p)
{
    buf_free(&p->line);
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

int mg_ndjson_feed(mg_ndjson_parser *p, const char *bytes, size_t len)
{
    const char *end = bytes + len;
    while (bytes < end) {
        const char *nl = memchr(bytes, '\n', (size_t)(end - bytes));
        const char *stop = nl ? nl : end;
        size_t span = (size_t)(stop - bytes);
        if (p->line.len + span > MG_STREAM_MAX_EVENT) return MG_STREAM_TOO_LARGE;
        buf_append(&p->line, bytes, span);
        if (!nl) break;
        bytes = nl + 1;
        size_t n = p->line.len;
        if (n && p->line.data[n - 1] == '\r') p->line.data[--n] = '\0';
        int rc = 0;
        if (!blank(buf_str(&p->line), n)) rc = p->on_line(p->user, buf_str(&p->line), n);
        buf_reset(&p->line);
        if (rc) return rc;
    }
    return 0;
}

int mg_ndjson_finish(mg_ndjson_parser *p)
{
    int dropped = !blank(buf_str(&p->line), p->line.len);
    buf_reset(&p->line);
    return dropped;
}

/* ------------------------------------------------- partial JSON strings */

enum {
    JSE_BEGIN,       /* before the object's '{' */
    JSE_KEY_OR_END,  /* after '{': a key or '}' */
    JSE_KEY_NEXT,    /* after ',': a key */
    JSE_KEY,         /* inside a key */
    JSE_KEY_ESC,     /* after a backslash in a key */
    JSE_KEY_HEX,     /* inside a \u escape in a key */
    JSE_COLON,       /* after a key */
    JSE_VALUE,       /* after the colon */
    JSE_SKIP,        /* inside a value that is not the one wanted */
    JSE_SKIP_SCALAR, /* inside a number or literal that is not wanted */
    JSE_AFTER_VALUE, /* after a value: ',' or '}' */
    JSE_STRING,      /* inside the wanted string */
    JSE_ESC,         /* after a backslash in it */
    JSE_HEX,         /* inside a \u escape in it */
    JSE_DONE,        /* the object, or the wanted value, ended */
    JSE_FAILED
};

#define REPLACEMENT "\xEF\xBF\xBD"

void mg_jse_init(mg_json_string_extractor *x, const char *key)
{
    memset(x, 0, sizeof *x);
    size_t n = strlen(key);
    if (n >= sizeof x->key) n = sizeof x->key - 1;
    memcpy(x->key, key, n);
    x->key_len = n;
    x->state = JSE_BEGIN;
}

int mg_jse_complete(const mg_json_string_extractor *x)
{
    return x->state == JSE_DONE && x->found;
}

int mg_jse_failed(const mg_json_string_extractor *x)
{
    return x->state == JSE_FAILED || (x->state == JSE_DONE && !x->found);
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* UTF-8 of a code point (not a surrogate); returns its length. */
static int encode_utf8(unsigned cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Compares the next decoded byte of a key with the wanted key. */
static void key_byte(mg_json_string_extractor *x, unsigned char c)
{
    if (x->key_seen >= x->key_len || (unsigned char)x->key[x->key_seen] != c) x->key_matches = 0;
    x->key_seen++;
}

static int key_is_wanted(const mg_json_string_extractor *x)
{
    return x->key_matches && x->key_seen == x->key_len;
}

/* A high surrogate that is not followed by its low half is a lone one. */
static void drop_lone_high(mg_json_string_extractor *x, buf *out)
{
    if (x->high) {
        buf_append(out, REPLACEMENT, 3);
        x->high = 0;
    }
}

/* A multibyte character that stopped before its end, or was invalid when
 * whole: one U+FFFD per byte, as mg_utf8_repair does (it replaces the lead
 * byte, then each continuation byte is a stray of its own). */
static void drop_partial_char(mg_json_string_extractor *x, buf *out)
{
    for (int i = 0; i < x->pending_len; i++)
        buf_append(out, REPLACEMENT, 3);
    x->pending_len = 0;
}

static void emit_code_point(mg_json_string_extractor *x, unsigned cp, buf *out)
{
    if (x->high) {
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            char u[4];
            unsigned full = 0x10000 + ((x->high - 0xD800) << 10) + (cp - 0xDC00);
            buf_append(out, u, (size_t)encode_utf8(full, u));
            x->high = 0;
            return;
        }
        drop_lone_high(x, out);
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        x->high = cp;
    } else if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
        buf_append(out, REPLACEMENT, 3); /* what mg_json_repair makes of them */
    } else {
        char u[4];
        buf_append(out, u, (size_t)encode_utf8(cp, u));
    }
}

/* Length of the UTF-8 sequence a lead byte starts, 0 if it cannot start one. */
static int utf8_length(unsigned char c)
{
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* One raw (unescaped) byte of the wanted string, >= 0x80. */
static void string_high_byte(mg_json_string_extractor *x, unsigned char c, buf *out)
{
    if (x->pending_len) {
        if ((c & 0xC0) == 0x80) {
            x->pending[x->pending_len++] = c;
            if (x->pending_len < x->pending_need) return;
            /* Whole: still check overlongs, surrogates and the range. */
            if (mg_utf8_valid((const char *)x->pending, (size_t)x->pending_len)) {
                buf_append(out, (const char *)x->pending, (size_t)x->pending_len);
                x->pending_len = 0;
            } else {
                drop_partial_char(x, out);
            }
            return;
        }
        drop_partial_char(x, out);
    }
    int need = utf8_length(c);
    if (!need) {
        buf_append(out, REPLACEMENT, 3);
        return;
    }
    x->pending[0] = c;
    x->pending_len = 1;
    x->pending_need = need;
}

static void string_byte(mg_json_string_extractor *x, unsigned char c, buf *out)
{
    if (c >= 0x80) {
        drop_lone_high(x, out);
        string_high_byte(x, c, out);
        return;
    }
    drop_partial_char(x, out);
    if (c == '"') {
        drop_lone_high(x, out);
        x->state = JSE_DONE;
    } else if (c == '\\') {
        x->state = JSE_ESC;
    } else if (c == 0) {
        /* mg_utf8_repair drops NUL bytes. */
    } else if (c < 0x20) {
        x->state = JSE_FAILED; /* jansson refuses raw control characters */
    } else {
        drop_lone_high(x, out);
        buf_putc(out, (char)c);
    }
}

/* The byte an escape letter stands for, or -1 (for 'u' too). */
static int simple_escape(unsigned char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '/':
        return c;
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return -1;
    }
}

static void string_escape(mg_json_string_extractor *x, unsigned char c, buf *out)
{
    int e = simple_escape(c);
    if (e >= 0) {
        drop_lone_high(x, out);
        buf_putc(out, (char)e);
        x->state = JSE_STRING;
    } else if (c == 'u') {
        x->hex = 0;
        x->hex_digits = 0;
        x->state = JSE_HEX;
    } else {
        x->state = JSE_FAILED;
    }
}

/* Reads one hex digit of a \u escape; 1 when the escape is complete. */
static int hex_digit(mg_json_string_extractor *x, unsigned char c)
{
    int v = hex_value(c);
    if (v < 0) {
        x->state = JSE_FAILED;
        return 0;
    }
    x->hex = x->hex * 16 + (unsigned)v;
    return ++x->hex_digits == 4;
}

/* A byte of a skipped value: strings, nesting, or the end of a scalar. */
static void skip_byte(mg_json_string_extractor *x, unsigned char c)
{
    if (x->in_string) {
        if (x->escaped)
            x->escaped = 0;
        else if (c == '\\')
            x->escaped = 1;
        else if (c == '"') {
            x->in_string = 0;
            if (x->depth == 0) x->state = JSE_AFTER_VALUE;
        }
        return;
    }
    if (c == '"') {
        x->in_string = 1;
    } else if (c == '{' || c == '[') {
        x->depth++;
    } else if (c == '}' || c == ']') {
        if (--x->depth == 0) x->state = JSE_AFTER_VALUE;
    }
}

static void scalar_byte(mg_json_string_extractor *x, unsigned char c)
{
    if (is_ws(c))
        x->state = JSE_AFTER_VALUE;
    else if (c == ',')
        x->state = JSE_KEY_NEXT;
    else if (c == '}')
        x->state = JSE_DONE;
    else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' ||
               c == '.' || c == 'E'))
        x->state = JSE_FAILED;
}

static void value_start(mg_json_string_extractor *x, unsigned char c)
{
    int wanted = key_is_wanted(x);
    if (c == '"' && wanted) {
        x->found = 1;
        x->state = JSE_STRING;
    } else if (wanted) {
        x->state = JSE_FAILED; /* the value is not a string */
    } else if (c == '"') {
        x->in_string = 1;
        x->escaped = 0;
        x->depth = 0;
        x->state = JSE_SKIP;
    } else if (c == '{' || c == '[') {
        x->in_string = 0;
        x->depth = 1;
        x->state = JSE_SKIP;
    } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
        x->state = JSE_SKIP_SCALAR;
    } else {
        x->state = JSE_FAILED;
    }
}

static void key_start(mg_json_string_extractor *x)
{
    x->key_matches = 1;
    x->key_seen = 0;
    x->state = JSE_KEY;
}

/* One byte of the structure around the wanted value. */
static void structure_byte(mg_json_string_extractor *x, unsigned char c)
{
    switch (x->state) {
    case JSE_BEGIN:
        x->state = c == '{' ? JSE_KEY_OR_END : JSE_FAILED;
        break;
    case JSE_KEY_OR_END:
    case JSE_KEY_NEXT:
        if (c == '"')
            key_start(x);
        else if (c == '}' && x->state == JSE_KEY_OR_END)
            x->state = JSE_DONE;
        else
            x->state = JSE_FAILED;
        break;
    case JSE_COLON:
        x->state = c == ':' ? JSE_VALUE : JSE_FAILED;
        break;
    case JSE_VALUE:
        value_start(x, c);
        break;
    case JSE_AFTER_VALUE:
        x->state = c == ',' ? JSE_KEY_NEXT : c == '}' ? JSE_DONE : JSE_FAILED;
        break;
    }
}

static void key_char(mg_json_string_extractor *x, unsigned char c)
{
    if (x->state == JSE_KEY_ESC) {
        int e = simple_escape(c);
        if (e >= 0) {
            key_byte(x, (unsigned char)e);
            x->state = JSE_KEY;
        } else if (c == 'u') {
            x->hex = 0;
            x->hex_digits = 0;
            x->state = JSE_KEY_HEX;
        } else {
            x->state = JSE_FAILED;
        }
        return;
    }
    if (x->state == JSE_KEY_HEX) {
        if (!hex_digit(x, c)) return;
        char u[4];
        /* Surrogates cannot spell the wanted key, which is plain text. */
        int n = x->hex >= 0xD800 && x->hex <= 0xDFFF ? 0 : encode_utf8(x->hex, u);
        if (!n) x->key_matches = 0;
        for (int i = 0; i < n; i++)
            key_byte(x, (unsigned char)u[i]);
        x->state = JSE_KEY;
        return;
    }
    if (c == '"')
        x->state = JSE_COLON;
    else if (c == '\\')
        x->state = JSE_KEY_ESC;
    else if (c < 0x20)
        x->state = JSE_FAILED;
    else
        key_byte(x, c);
}

size_t mg_jse_feed(mg_json_string_extractor *x, const char *text, size_t len, buf *out)
{
    size_t before = out->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        /* mg_json_repair drops NUL bytes before jansson reads the text, so
         * outside the wanted string they are not there at all (inside it,
         * string_byte lets one end a partial character, as the repair's
         * decoder does). Found by fuzz/fuzz_json_args.c: a NUL between
         * key and value stopped the preview of a message that was sent. */
        if (c == 0 && x->state != JSE_STRING) continue;
        switch (x->state) {
        case JSE_DONE:
        case JSE_FAILED:
            return out->len - before;
        case JSE_STRING: {
            /* Most of a reply is plain ASCII: append such runs whole. */
            size_t run = i;
            while (!x->pending_len && !x->high && run < len && (unsigned char)text[run] >= 0x20 &&
                   (unsigned char)text[run] < 0x80 && text[run] != '"' && text[run] != '\\')
                run++;
            if (run > i) {
                buf_append(out, text + i, run - i);
                i = run - 1;
            } else {
                string_byte(x, c, out);
            }
            break;
        }
        case JSE_ESC:
            string_escape(x, c, out);
            break;
        case JSE_HEX:
            if (hex_digit(x, c)) {
                emit_code_point(x, x->hex, out);
                x->state = JSE_STRING;
            }
            break;
        case JSE_KEY:
        case JSE_KEY_ESC:
        case JSE_KEY_HEX:
            key_char(x, c);
            break;
        case JSE_SKIP:
            skip_byte(x, c);
            break;
        case JSE_SKIP_SCALAR:
            scalar_byte(x, c);
            break;
        default:
            if (!is_ws(c)) structure_byte(x, c);
            break;
        }
    }
    return out->len - before;
}
