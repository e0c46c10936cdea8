/*
 * fuzz_ndjson.c - the JSON-lines framer of Ollama's streamed replies
 * (mg_ndjson_*, provider/stream.c).
 *
 * Input: byte 0 seeds the cuts, byte 1 names the line whose callback stops
 * the parser (1-7; 0 or 8+: none), the rest is the stream.
 *
 * Properties:
 *  - fed whole, one byte at a time, and cut where byte 0 says, the stream
 *    gives the same lines, the same stop value and the same result of
 *    mg_ndjson_finish;
 *  - those lines are the ones the format's rules give over the whole text
 *    (a small reference below): split at LF, one CR before the LF dropped,
 *    blank lines (spaces, tabs, CRs) skipped, an unfinished last line
 *    dropped and reported by finish when it is not blank;
 *  - a line handed out holds no LF, is not blank and is NUL-terminated at
 *    its length;
 *  - after the callback stops the parser, no further line arrives.
 */
#include "fuzz.h"

#include "provider/stream.h"
#include "util/buf.h"

typedef struct seen {
    buf lines; /* each line then \1 */
    int count, stop_at, stopped;
} seen;

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static int on_line(void *user, const char *line, size_t len)
{
    seen *s = user;
    FZ_CHECK(!s->stopped, "a line arrived after the callback stopped the parser");
    FZ_CHECK(!memchr(line, '\n', len), "a line holds an LF");
    FZ_CHECK(!blank(line, len), "a blank line was handed out");
    FZ_CHECK(line[len] == '\0', "a line is not NUL-terminated at its length");
    buf_append(&s->lines, line, len);
    buf_putc(&s->lines, '\1');
    if (++s->count == s->stop_at) {
        s->stopped = 1;
        return 5;
    }
    return 0;
}

typedef struct outcome {
    seen s;
    int fed, finished;
} outcome;

static void run(const uint8_t *text, const fz_pieces *cuts, int stop_at, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->s.stop_at = stop_at;
    mg_ndjson_parser p;
    mg_ndjson_init(&p, on_line, &o->s);
    for (size_t i = 0; i < cuts->n && !o->fed; i++)
        o->fed = mg_ndjson_feed(&p, (const char *)text + cuts->off[i], cuts->lens[i]);
    o->finished = o->fed ? -1 : mg_ndjson_finish(&p);
    mg_ndjson_free(&p);
}

static void same(const outcome *a, const outcome *b, const char *how)
{
    FZ_CHECK(a->s.count == b->s.count && a->s.lines.len == b->s.lines.len &&
                 memcmp(buf_str(&a->s.lines), buf_str(&b->s.lines), a->s.lines.len) == 0,
             "%s: the lines differ from those of the whole stream", how);
    FZ_CHECK(a->fed == b->fed && a->finished == b->finished,
             "%s: feed/finish returned %d/%d, whole: %d/%d", how, b->fed, b->finished, a->fed,
             a->finished);
}

/* The lines of the whole text by the format's rules. */
static void check_reference(const uint8_t *t, size_t n, int stop_at, const outcome *whole)
{
    seen ref = {.stop_at = stop_at};
    size_t start = 0;
    for (size_t i = 0; i < n && !ref.stopped; i++) {
        if (t[i] != '\n') continue;
        size_t len = i - start;
        const char *line = (const char *)t + start;
        start = i + 1;
        if (len && line[len - 1] == '\r') len--;
        if (blank(line, len)) continue;
        char *copy = fz_strndup((const uint8_t *)line, len);
        on_line(&ref, copy, len);
        free(copy);
    }
    int dropped = !ref.stopped && !blank((const char *)t + start, n - start);
    FZ_CHECK(ref.count == whole->s.count && ref.lines.len == whole->s.lines.len &&
                 memcmp(buf_str(&ref.lines), buf_str(&whole->s.lines), ref.lines.len) == 0,
             "the lines differ from the reference's (%d, reference %d)", whole->s.count, ref.count);
    FZ_CHECK(ref.stopped == (whole->fed == 5), "the stop value did not come back");
    if (!ref.stopped)
        FZ_CHECK(whole->finished == dropped, "finish said %d, the unfinished line is%s blank",
                 whole->finished, dropped ? " not" : "");
    buf_free(&ref.lines);
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
    run(text, &whole, stop_at, &a);
    run(text, &bytes, stop_at, &b);
    run(text, &cuts, stop_at, &c);
    same(&a, &b, "one byte at a time");
    same(&a, &c, "cut");
    check_reference(text, len, stop_at, &a);
    buf_free(&a.s.lines);
    buf_free(&b.s.lines);
    buf_free(&c.s.lines);
    fz_pieces_free(&bytes);
    fz_pieces_free(&cuts);
    return 0;
}
