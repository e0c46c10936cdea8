/*
 * test_stream.c - the SSE and NDJSON framers and the partial-JSON string
 * extractor (src/provider/stream.c).
 *
 * The network may cut a stream anywhere, so every test input is fed three
 * ways and must give the same result: whole, split in two at every byte
 * offset, and one byte at a time (and, for the framers, split in three at
 * every pair of offsets). The extractor's output is also checked piece by
 * piece: each piece it emits must be whole UTF-8 characters, and for inputs
 * that are valid JSON the result must equal what jansson decodes after
 * mg_json_repair, which is what the functions layer will send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/stream.h"
#include "util/buf.h"
#include "util/text.h"

/* ------------------------------------------------------------------ SSE */

/* Events as "name|data" lines, so a whole run compares as one string. */
typedef struct collected {
    buf text;
    int count;
    int stop_at; /* return 7 from this event (1-based), 0 = never */
} collected;

static int collect_event(void *user, const char *event, const char *data, size_t len)
{
    collected *c = user;
    assert_int_equal(strlen(data), len); /* NUL-terminated at len */
    buf_printf(&c->text, "%s|%s\n", event, data);
    c->count++;
    return c->stop_at && c->count == c->stop_at ? 7 : 0;
}

/* Feeds `in` cut at the given offsets (ascending, up to 2) and finishes. */
static char *sse_run(const char *in, size_t n, const size_t *cuts, int ncuts)
{
    collected c = {BUF_INIT, 0, 0};
    mg_sse_parser p;
    mg_sse_init(&p, collect_event, &c);
    size_t from = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        assert_int_equal(mg_sse_feed(&p, in + from, to - from), 0);
        from = to;
    }
    assert_int_equal(mg_sse_finish(&p), 0);
    mg_sse_free(&p);
    return buf_take(&c.text);
}

static char *sse_bytewise(const char *in, size_t n)
{
    collected c = {BUF_INIT, 0, 0};
    mg_sse_parser p;
    mg_sse_init(&p, collect_event, &c);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mg_sse_feed(&p, in + i, 1), 0);
    assert_int_equal(mg_sse_finish(&p), 0);
    mg_sse_free(&p);
    return buf_take(&c.text);
}

/* The same events however `in` is cut. */
static void check_sse(const char *in, const char *expected)
{
    size_t n = strlen(in);
    char *whole = sse_run(in, n, NULL, 0);
    assert_string_equal(whole, expected);
    free(whole);
    for (size_t i = 0; i <= n; i++) {
        char *two = sse_run(in, n, &i, 1);
        if (strcmp(two, expected) != 0) fail_msg("cut at %zu: got\n%s", i, two);
        free(two);
    }
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j += 3) {
            size_t cuts[2] = {i, j};
            char *three = sse_run(in, n, cuts, 2);
            if (strcmp(three, expected) != 0) fail_msg("cuts at %zu,%zu: got\n%s", i, j, three);
            free(three);
        }
    char *bytes = sse_bytewise(in, n);
    assert_string_equal(bytes, expected);
    free(bytes);
}

static void test_sse_fields(void **state)
{
    (void)state;
    check_sse("event: a\ndata: x\n\n", "a|x\n");
    check_sse("data: one\ndata: two\n\n", "|one\ntwo\n");
    check_sse("data:tight\n\ndata:  two spaces\n\n", "|tight\n| two spaces\n");
    check_sse(": ping\n\n: another comment\ndata: after\n\n", "|after\n");
    check_sse("event: lonely\n\n", ""); /* no data: not dispatched */
    check_sse("data\n\n", "|\n");       /* a field without a colon has an empty value */
    check_sse("id: 5\nretry: 100\nfoo: bar\ndata: d\n\n", "|d\n");
    check_sse("event: a\nevent: b\ndata: d\n\n", "b|d\n");      /* the last event name wins */
    check_sse("data: a:b: c\n\n", "|a:b: c\n");                 /* only the first colon splits */
    check_sse("event: x\ndata: 1\n\ndata: 2\n\n", "x|1\n|2\n"); /* names do not carry over */
}

static void test_sse_line_ends(void **state)
{
    (void)state;
    check_sse("data: crlf\r\n\r\ndata: cr\r\rdata: lf\n\n", "|crlf\n|cr\n|lf\n");
    /* CR then LF as two line ends would dispatch "a" alone. */
    check_sse("data: a\r\ndata: b\r\n\r\n", "|a\nb\n");
    check_sse("\xEF\xBB\xBF"
              "data: after bom\n\n",
              "|after bom\n");
    check_sse("data: \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80\n\n",
              "|\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80\n");
}

static void test_sse_mixed_stream(void **state)
{
    (void)state;
    /* An Anthropic-like stream with keep-alives and every line end. */
    const char *in = ": hello\r\n"
                     "event: message_start\r\n"
                     "data: {\"type\":\"message_start\"}\r\n\r\n"
                     "event: ping\n"
                     "data: {\"type\": \"ping\"}\n\n"
                     "event: content_block_delta\r"
                     "data: {\"text\":\"caf\xC3\xA9\"}\r\r"
                     ":\n"
                     "data: [DONE]\n\n";
    check_sse(in, "message_start|{\"type\":\"message_start\"}\n"
                  "ping|{\"type\": \"ping\"}\n"
                  "content_block_delta|{\"text\":\"caf\xC3\xA9\"}\n"
                  "|[DONE]\n");
}

static void test_sse_finish(void **state)
{
    (void)state;
    /* Complete lines but no final blank line: dispatched at the end. */
    check_sse("data: last\n", "|last\n");
    check_sse("data: last\r", "|last\n");
    /* A line cut in the middle: the event is dropped. */
    check_sse("data: whole\n\ndata: cut", "|whole\n");
    check_sse("data: a\ndata: cu", "");
}

static void test_sse_stop_and_limits(void **state)
{
    (void)state;
    collected c = {BUF_INIT, 0, 2};
    mg_sse_parser p;
    mg_sse_init(&p, collect_event, &c);
    const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(mg_sse_feed(&p, in, strlen(in)), 7);
    assert_int_equal(c.count, 2);
    mg_sse_free(&p);
    buf_free(&c.text);

    /* One event larger than the limit, however it arrives. */
    collected d = {BUF_INIT, 0, 0};
    mg_sse_init(&p, collect_event, &d);
    size_t chunk = 1 << 20;
    char *big = malloc(chunk);
    memset(big, 'x', chunk);
    int rc = mg_sse_feed(&p, "data: ", 6);
    for (int i = 0; i < 10 && rc == 0; i++) {
        rc = mg_sse_feed(&p, big, chunk);
        if (rc == 0) rc = mg_sse_feed(&p, "\ndata: ", 7); /* many lines of one event */
    }
    assert_int_equal(rc, MG_STREAM_TOO_LARGE);
    assert_int_equal(d.count, 0);
    free(big);
    mg_sse_free(&p);
    buf_free(&d.text);
}

/* --------------------------------------------------------------- NDJSON */

static int collect_line(void *user, const char *line, size_t len)
{
    collected *c = user;
    assert_int_equal(strlen(line), len);
    buf_printf(&c->text, "[%s]", line);
    c->count++;
    return c->stop_at && c->count == c->stop_at ? 7 : 0;
}

static char *ndjson_run(const char *in, size_t n, size_t cut, int bytewise, int *dropped)
{
    collected c = {BUF_INIT, 0, 0};
    mg_ndjson_parser p;
    mg_ndjson_init(&p, collect_line, &c);
    if (bytewise) {
        for (size_t i = 0; i < n; i++)
            assert_int_equal(mg_ndjson_feed(&p, in + i, 1), 0);
    } else {
        assert_int_equal(mg_ndjson_feed(&p, in, cut), 0);
        assert_int_equal(mg_ndjson_feed(&p, in + cut, n - cut), 0);
    }
    *dropped = mg_ndjson_finish(&p);
    mg_ndjson_free(&p);
    return buf_take(&c.text);
}

static void check_ndjson(const char *in, const char *expected, int expect_dropped)
{
    size_t n = strlen(in);
    int dropped;
    for (size_t i = 0; i <= n; i++) {
        char *got = ndjson_run(in, n, i, 0, &dropped);
        if (strcmp(got, expected) != 0) fail_msg("cut at %zu: got %s", i, got);
        assert_int_equal(dropped, expect_dropped);
        free(got);
    }
    char *got = ndjson_run(in, n, 0, 1, &dropped);
    assert_string_equal(got, expected);
    assert_int_equal(dropped, expect_dropped);
    free(got);
}

static void test_ndjson(void **state)
{
    (void)state;
    check_ndjson("{\"a\":1}\n{\"b\":\"\xE2\x82\xAC\"}\n", "[{\"a\":1}][{\"b\":\"\xE2\x82\xAC\"}]",
                 0);
    check_ndjson("{\"a\":1}\r\n\r\n  \n{\"b\":2}\r\n", "[{\"a\":1}][{\"b\":2}]", 0);
    check_ndjson("{\"a\":1}\n{\"cut", "[{\"a\":1}]", 1);
    check_ndjson("\n\n", "", 0);

    collected c = {BUF_INIT, 0, 1};
    mg_ndjson_parser p;
    mg_ndjson_init(&p, collect_line, &c);
    assert_int_equal(mg_ndjson_feed(&p, "1\n2\n", 4), 7);
    assert_int_equal(c.count, 1);
    mg_ndjson_free(&p);
    buf_free(&c.text);
}

/* ------------------------------------------------- partial JSON strings */

typedef struct extracted {
    char *text;
    int complete;
    int failed;
} extracted;

/* Feeds `in` in pieces ending at the given offsets; every piece of output
 * must be whole UTF-8. */
static extracted extract(const char *key, const char *in, size_t n, const size_t *cuts, int ncuts)
{
    mg_json_string_extractor x;
    mg_jse_init(&x, key);
    buf out = BUF_INIT;
    size_t from = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        size_t before = out.len;
        size_t added = mg_jse_feed(&x, in + from, to - from, &out);
        assert_int_equal(added, out.len - before);
        if (!mg_utf8_valid(out.data + before, added))
            fail_msg("piece %d of %s (cut at %zu) emitted half a character", i, in, to);
        from = to;
    }
    extracted r = {buf_take(&out), mg_jse_complete(&x), mg_jse_failed(&x)};
    return r;
}

static void check_extract(const char *in, const char *expected, int complete)
{
    size_t n = strlen(in);
    extracted whole = extract("message", in, n, NULL, 0);
    if (strcmp(whole.text, expected) != 0) fail_msg("%s: got '%s'", in, whole.text);
    assert_int_equal(whole.complete, complete);
    for (size_t i = 0; i <= n; i++) {
        extracted two = extract("message", in, n, &i, 1);
        if (strcmp(two.text, expected) != 0) fail_msg("%s cut at %zu: got '%s'", in, i, two.text);
        assert_int_equal(two.complete, whole.complete);
        assert_int_equal(two.failed, whole.failed);
        free(two.text);
    }
    size_t *every = malloc((n ? n : 1) * sizeof *every);
    for (size_t i = 0; i < n; i++)
        every[i] = i;
    extracted bytes = extract("message", in, n, every, (int)n);
    assert_string_equal(bytes.text, expected);
    assert_int_equal(bytes.complete, whole.complete);
    free(bytes.text);
    free(every);

    /* Where the input is JSON, the functions layer reads the same text. */
    char *repaired = mg_json_repair(in, n);
    json_t *v = json_loads(repaired, JSON_REJECT_DUPLICATES, NULL);
    free(repaired);
    const char *decoded = json_string_value(json_object_get(v, "message"));
    if (decoded && complete) assert_string_equal(decoded, expected);
    json_decref(v);
    free(whole.text);
}

static void test_extract_basic(void **state)
{
    (void)state;
    check_extract("{\"message\":\"hello\"}", "hello", 1);
    check_extract("  {\n \"message\" :\t\"spaced\" , \"x\": 1 }", "spaced", 1);
    check_extract("{\"request_heartbeat\":true,\"message\":\"after\"}", "after", 1);
    check_extract("{\"n\":-1.5e+3,\"f\":false,\"z\":null,\"message\":\"m\"}", "m", 1);
    check_extract("{\"messages\":\"no\",\"messag\":\"no\",\"message\":\"yes\"}", "yes", 1);
    check_extract("{\"mess\\u0061ge\":\"escaped key\"}", "escaped key", 1);
    check_extract("{\"a\":\"not \\\"message\\\": \\\\\",\"message\":\"ok\"}", "ok", 1);
    check_extract("{\"a\":{\"message\":\"nested\",\"b\":[1,{\"c\":\"}]\"}]},\"message\":\"top\"}",
                  "top", 1);
    check_extract("{\"a\":[[],{}],\"message\":\"\"}", "", 1);
    check_extract("{\"message\":\"first\",\"message\":\"second\"}", "first", 1);
}

static void test_extract_escapes(void **state)
{
    (void)state;
    check_extract("{\"message\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\"}", "q\"b\\s/n\nr\rt\tb\bf\f",
                  1);
    check_extract("{\"message\":\"\\u00e9\\u20AC\\ud83d\\ude00!\"}",
                  "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80!", 1);
    /* Lone surrogates and NUL become U+FFFD, as mg_json_repair makes them. */
    check_extract("{\"message\":\"a\\ud83dx\"}", "a\xEF\xBF\xBDx", 1);
    check_extract("{\"message\":\"a\\ud83d\\n\"}", "a\xEF\xBF\xBD\n", 1);
    check_extract("{\"message\":\"a\\ud83d\\u0041\"}",
                  "a\xEF\xBF\xBD"
                  "A",
                  1);
    check_extract("{\"message\":\"\\ude00\\u0000\"}", "\xEF\xBF\xBD\xEF\xBF\xBD", 1);
    check_extract("{\"message\":\"end\\ud83d\"}", "end\xEF\xBF\xBD", 1);
    check_extract("{\"message\":\"\\ud83d\\ud83d\\ude00\"}", "\xEF\xBF\xBD\xF0\x9F\x98\x80", 1);
}

static void test_extract_utf8(void **state)
{
    (void)state;
    check_extract("{\"message\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD\"}",
                  "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD", 1);
    /* Invalid bytes become U+FFFD, never raw. */
    check_extract("{\"message\":\"a\xFF"
                  "b\"}",
                  "a\xEF\xBF\xBD"
                  "b",
                  1);
    /* One U+FFFD per byte of a broken sequence, as mg_utf8_repair does. */
    check_extract("{\"message\":\"a\xE2\x82"
                  "b\"}",
                  "a\xEF\xBF\xBD\xEF\xBF\xBD"
                  "b",
                  1);
    check_extract("{\"message\":\"\xED\xA0\x80\"}", /* a surrogate in UTF-8 */
                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 1);
    check_extract("{\"message\":\"cut \xE2\x82\"}", "cut \xEF\xBF\xBD\xEF\xBF\xBD", 1);
    check_extract("{\"message\":\"\xE0\x80\x80\xC0\x80\"}", /* overlong forms */
                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 1);
}

static void test_extract_partial_and_invalid(void **state)
{
    (void)state;
    /* Still being written: what is whole so far. */
    check_extract("{\"message\":\"hel", "hel", 0);
    check_extract("{\"message\":\"caf\xC3", "caf", 0);
    check_extract("{\"message\":\"x\\u00", "x", 0);
    check_extract("{\"message\":\"x\\ud83d", "x", 0);
    check_extract("{\"message\":\"x\\", "x", 0);
    check_extract("{\"mes", "", 0);
    /* Not extractable: nothing, or nothing more. */
    check_extract("{\"message\":5}", "", 0);
    check_extract("[\"message\"]", "", 0);
    check_extract("{\"other\":\"x\"}", "", 0);
    check_extract("{\"message\":\"a\nb\"}", "a", 0);  /* raw control character */
    check_extract("{\"message\":\"a\\xb\"}", "a", 0); /* unknown escape */
    check_extract("{\"message\":\"a\\u12g4\"}", "a", 0);
    check_extract("{\"a\" 1,\"message\":\"x\"}", "", 0);
    check_extract("{,\"message\":\"x\"}", "", 0);

    mg_json_string_extractor x;
    mg_jse_init(&x, "message");
    buf out = BUF_INIT;
    mg_jse_feed(&x, "{\"message\":5}", 13, &out);
    assert_true(mg_jse_failed(&x));
    mg_jse_init(&x, "message");
    mg_jse_feed(&x, "{\"message\":\"ok\"}", 16, &out);
    assert_false(mg_jse_failed(&x));
    assert_true(mg_jse_complete(&x));
    assert_string_equal(buf_str(&out), "ok");
    /* After the value, more text changes nothing. */
    assert_int_equal(mg_jse_feed(&x, ",\"message\":\"again\"}", 19, &out), 0);
    buf_free(&out);
}

/* Every printable ASCII character and a few multibyte ones, escaped the way
 * Python's json.dumps does by default (\uXXXX for everything non-ASCII),
 * cut at every offset. */
static void test_extract_roundtrip(void **state)
{
    (void)state;
    buf text = BUF_INIT;
    for (int c = 0x20; c < 0x7f; c++)
        buf_putc(&text, (char)c);
    buf_puts(&text, "\n\t\r\b\f\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xEF\xBF\xBF");
    json_t *s = json_string(buf_str(&text));
    json_t *obj = json_pack("{s:b, s:o}", "request_heartbeat", 0, "message", s);
    char *ascii = json_dumps(obj, JSON_ENSURE_ASCII | JSON_COMPACT);
    char *utf8 = json_dumps(obj, JSON_COMPACT);
    check_extract(ascii, buf_str(&text), 1);
    check_extract(utf8, buf_str(&text), 1);
    free(ascii);
    free(utf8);
    json_decref(obj);
    buf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_fields),
        cmocka_unit_test(test_sse_line_ends),
        cmocka_unit_test(test_sse_mixed_stream),
        cmocka_unit_test(test_sse_finish),
        cmocka_unit_test(test_sse_stop_and_limits),
        cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_extract_basic),
        cmocka_unit_test(test_extract_escapes),
        cmocka_unit_test(test_extract_utf8),
        cmocka_unit_test(test_extract_partial_and_invalid),
        cmocka_unit_test(test_extract_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
