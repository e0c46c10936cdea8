/*
 * fuzz_sse.c - the Server-Sent Events framer (mg_sse_*, provider/stream.c)
 * and the plain-body sniffer in front of it (mg_plain_body_feed).
 *
 * Input: byte 0 seeds the cuts, byte 1 names the event whose callback
 * stops the parser (1-7; 0 or 8+: none), the rest is the stream as a
 * server sends it.
 *
 * Properties:
 *  - the stream fed whole, one byte at a time, and cut where byte 0 says
 *    gives the same events, the same stop value and the same result of
 *    mg_sse_finish: the network decides the cuts, never the meaning;
 *  - those events are the ones a small reference parser written from the
 *    format's rules (below, over the whole text at once) finds: lines end
 *    in CRLF, CR or LF; a blank line dispatches; data lines join with LF;
 *    comments, unknown fields, "id" and "retry" are ignored; one leading
 *    byte order mark is dropped; a cut-off last line loses its event;
 *  - an event name never holds a line end, data never holds a CR;
 *  - after the callback stops the parser, no further event arrives;
 *  - the sniffer that keeps the body of a server that ignored "stream"
 *    decides the same way for every cut, and keeps the same body (up to
 *    the blank bytes before its '{').
 */
#include "fuzz.h"

#include "provider/stream.h"
#include "util/buf.h"

/* What a run saw: events as NAME \0 DATA \1, and how it ended. */
typedef struct seen {
    buf events;
    int count;
    int stop_at; /* return 7 from this event (1-based), 0: never */
    int stopped; /* the callback returned nonzero */
} seen;

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    seen *s = user;
    FZ_CHECK(!s->stopped, "an event arrived after the callback stopped the parser");
    FZ_CHECK(!strpbrk(event, "\r\n"), "event name '%s' holds a line end", event);
    FZ_CHECK(!memchr(data, '\r', len), "data holds a CR");
    FZ_CHECK(data[len] == '\0', "data is not NUL-terminated at its length");
    buf_puts(&s->events, event);
    buf_putc(&s->events, '\0');
    buf_append(&s->events, data, len);
    buf_putc(&s->events, '\1');
    if (++s->count == s->stop_at) {
        s->stopped = 1;
        return 7;
    }
    return 0;
}

/* One run over the given pieces: the events, and the feed's and finish's
 * results (finish only when the feed did not stop). */
typedef struct outcome {
    seen s;
    int fed, finished;
} outcome;

static void run(const uint8_t *text, size_t len, const fz_pieces *cuts, int stop_at, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->s.stop_at = stop_at;
    mg_sse_parser p;
    mg_sse_init(&p, on_event, &o->s);
    for (size_t i = 0; i < cuts->n && !o->fed; i++)
        o->fed = mg_sse_feed(&p, (const char *)text + cuts->off[i], cuts->lens[i]);
    if (!o->fed) o->finished = mg_sse_finish(&p);
    mg_sse_free(&p);
}

static void same(const outcome *a, const outcome *b, const char *how)
{
    FZ_CHECK(a->s.count == b->s.count, "%s: %d events, whole: %d", how, b->s.count, a->s.count);
    FZ_CHECK(a->s.events.len == b->s.events.len &&
                 memcmp(buf_str(&a->s.events), buf_str(&b->s.events), a->s.events.len) == 0,
             "%s: the events differ from those of the whole stream", how);
    FZ_CHECK(a->fed == b->fed && a->finished == b->finished,
             "%s: feed/finish returned %d/%d, whole: %d/%d", how, b->fed, b->finished, a->fed,
             a->finished);
}

/* ------------------------------------------------------- the reference */

/* The events of the whole stream by the format's rules, for comparison. */
static void reference(const uint8_t *t, size_t n, seen *out)
{
    buf data = BUF_INIT, event = BUF_INIT;
    size_t start = 0;
    int first = 1;
    for (size_t i = 0; i < n && !out->stopped; i++) {
        if (t[i] != '\r' && t[i] != '\n') continue;
        const char *line = (const char *)t + start;
        size_t len = i - start;
        if (t[i] == '\r' && i + 1 < n && t[i + 1] == '\n') i++;
        start = i + 1;
        if (first && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3, len -= 3;
        first = 0;
        if (len == 0) {
            if (data.len) {
                data.data[--data.len] = '\0'; /* the LF after the last data line */
                on_event(out, buf_str(&event), buf_str(&data), data.len);
            }
            buf_reset(&data);
            buf_reset(&event);
            continue;
        }
        if (line[0] == ':') continue;
        const char *colon = memchr(line, ':', len);
        size_t name = colon ? (size_t)(colon - line) : len;
        const char *value = colon ? colon + 1 : line + len;
        size_t vlen = (size_t)(line + len - value);
        if (vlen && value[0] == ' ') value++, vlen--;
        if (name == 4 && memcmp(line, "data", 4) == 0) {
            buf_append(&data, value, vlen);
            buf_putc(&data, '\n');
        } else if (name == 5 && memcmp(line, "event", 5) == 0) {
            buf_reset(&event);
            buf_append(&event, value, vlen);
        }
    }
    /* The end: an event whose lines all ended is dispatched, unless a line
     * was cut off (the stream broke inside it). */
    if (!out->stopped && start == n && data.len) {
        data.data[--data.len] = '\0';
        on_event(out, buf_str(&event), buf_str(&data), data.len);
    }
    buf_free(&data);
    buf_free(&event);
}

/* The whole run must have found what the reference finds. */
static void check_reference(const uint8_t *text, size_t len, int stop_at, const outcome *whole)
{
    seen ref = {.stop_at = stop_at};
    reference(text, len, &ref);
    FZ_CHECK(ref.count == whole->s.count, "the parser found %d events, the reference %d",
             whole->s.count, ref.count);
    FZ_CHECK(ref.events.len == whole->s.events.len &&
                 memcmp(buf_str(&ref.events), buf_str(&whole->s.events), ref.events.len) == 0,
             "the events differ from the reference's");
    FZ_CHECK(ref.stopped == (whole->fed == 7 || whole->finished == 7),
             "the stop value did not come back");
    buf_free(&ref.events);
}

/* ------------------------------------------------------ the plain body */

typedef struct sniffed {
    int plain;
    buf body;
} sniffed;

static void sniff(const uint8_t *text, const fz_pieces *cuts, sniffed *out)
{
    mg_plain_body p = {0};
    for (size_t i = 0; i < cuts->n; i++)
        mg_plain_body_feed(&p, (const char *)text + cuts->off[i], cuts->lens[i]);
    out->plain = p.plain;
    /* Blank pieces before the '{' go to the stream parser, which skips
     * them, so only the body from its first non-blank byte must agree. */
    size_t skip = 0;
    while (skip < p.body.len && strchr(" \t\r\n", p.body.data[skip]))
        skip++;
    out->body = (buf)BUF_INIT;
    if (p.body.len) buf_append(&out->body, p.body.data + skip, p.body.len - skip);
    buf_free(&p.body);
}

static void check_sniffer(const uint8_t *text, size_t len, const fz_pieces *cuts)
{
    fz_pieces whole = {1, (size_t[]){0}, (size_t[]){len}};
    sniffed a, b;
    sniff(text, &whole, &a);
    sniff(text, cuts, &b);
    FZ_CHECK(a.plain == b.plain, "the sniffer decided %d whole, %d cut", a.plain, b.plain);
    FZ_CHECK(a.body.len == b.body.len &&
                 memcmp(buf_str(&a.body), buf_str(&b.body), a.body.len) == 0,
             "the sniffer kept different bodies whole and cut");
    buf_free(&a.body);
    buf_free(&b.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    uint32_t seed = fz_byte(&in);
    int stop_at = (int)(fz_byte(&in) & 0xf);
    if (stop_at > 7) stop_at = 0;
    const uint8_t *text = in.p;
    size_t len = in.n;

    fz_pieces whole = {1, (size_t[]){0}, (size_t[]){len}};
    fz_pieces bytes = fz_cuts(len, 0);
    fz_pieces cuts = fz_cuts(len, seed ? seed : 1);
    outcome a, b, c;
    run(text, len, &whole, stop_at, &a);
    run(text, len, &bytes, stop_at, &b);
    run(text, len, &cuts, stop_at, &c);
    same(&a, &b, "one byte at a time");
    same(&a, &c, "cut");
    check_reference(text, len, stop_at, &a);
    check_sniffer(text, len, &cuts);
    buf_free(&a.s.events);
    buf_free(&b.s.events);
    buf_free(&c.s.events);
    fz_pieces_free(&bytes);
    fz_pieces_free(&cuts);
    return 0;
}
