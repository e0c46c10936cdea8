/*
 * fuzz_json_args.c - what becomes of a tool call's argument text: the
 * repair every path applies before parsing it (mg_json_repair,
 * mg_utf8_repair, util/text.c) and the extractor that shows send_message's
 * "message" while the arguments are still streaming in
 * (mg_json_string_extractor, provider/stream.c).
 *
 * Input: byte 0 seeds the cuts, the rest is the argument text a model
 * wrote.
 *
 * Properties:
 *  - repair makes valid UTF-8 without NUL bytes, changes nothing in text
 *    jansson already accepts, and repairing twice changes nothing more;
 *  - the extractor gives the same text whole, one byte at a time and cut
 *    where byte 0 says, and every piece it emits is whole UTF-8 characters;
 *  - it agrees with the functions layer (mg_functions_call: repair, then
 *    jansson with duplicate keys refused): when both read a "message"
 *    string, they read the same text; when the functions layer reads one,
 *    the extractor has read it whole too (its preview is the message sent);
 *    when the extractor has failed, the functions layer reads no string
 *    there.
 */
#include "fuzz.h"

#include <jansson.h>

#include "provider/stream.h"
#include "util/buf.h"
#include "util/text.h"

static void check_repair(const char *text, size_t len)
{
    char *once = mg_json_repair(text, len);
    size_t n = strlen(once);
    FZ_CHECK(mg_utf8_valid(once, n), "mg_json_repair left invalid UTF-8");
    char *twice = mg_json_repair(once, n);
    FZ_CHECK(strcmp(once, twice) == 0, "repairing twice changed the text again");
    /* (jansson takes a NUL byte for the end of the text: leave those out) */
    json_t *strict = memchr(text, '\0', len) ? NULL : json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (strict)
        FZ_CHECK(n == len && memcmp(once, text, len) == 0,
                 "mg_json_repair changed text that jansson accepts");
    json_decref(strict);
    char *utf8 = mg_utf8_repair(text, len);
    FZ_CHECK(mg_utf8_valid(utf8, strlen(utf8)), "mg_utf8_repair left invalid UTF-8");
    if (mg_utf8_valid(text, len) && !memchr(text, '\0', len))
        FZ_CHECK(strlen(utf8) == len && memcmp(utf8, text, len) == 0,
                 "mg_utf8_repair changed valid UTF-8");
    free(utf8);
    free(once);
    free(twice);
}

/* The extractor over the given pieces: its text, and how it ended. */
typedef struct extracted {
    buf text;
    int complete, failed;
} extracted;

static void extract(const char *text, const fz_pieces *cuts, extracted *out)
{
    mg_json_string_extractor x;
    mg_jse_init(&x, "message");
    out->text = (buf)BUF_INIT;
    buf piece = BUF_INIT;
    for (size_t i = 0; i < cuts->n; i++) {
        buf_reset(&piece);
        size_t n = mg_jse_feed(&x, text + cuts->off[i], cuts->lens[i], &piece);
        FZ_CHECK(n == piece.len, "mg_jse_feed said %zu bytes, appended %zu", n, piece.len);
        FZ_CHECK(mg_utf8_valid(buf_str(&piece), piece.len),
                 "the extractor emitted part of a character");
        buf_append(&out->text, buf_str(&piece), piece.len);
    }
    buf_free(&piece);
    out->complete = mg_jse_complete(&x);
    out->failed = mg_jse_failed(&x);
    FZ_CHECK(!(out->complete && out->failed), "complete and failed at once");
}

static void same(const extracted *a, const extracted *b, const char *how)
{
    FZ_CHECK(a->text.len == b->text.len &&
                 memcmp(buf_str(&a->text), buf_str(&b->text), a->text.len) == 0,
             "%s: extracted other text than whole", how);
    FZ_CHECK(a->complete == b->complete && a->failed == b->failed,
             "%s: complete/failed %d/%d, whole %d/%d", how, b->complete, b->failed, a->complete,
             a->failed);
}

/* What the functions layer reads, as mg_functions_call parses arguments. */
static void check_agreement(const char *text, size_t len, const extracted *x)
{
    char *repaired = mg_json_repair(text, len);
    json_t *args = json_loads(repaired, JSON_REJECT_DUPLICATES, NULL);
    free(repaired);
    json_t *message = json_object_get(args, "message");
    if (json_is_string(message)) {
        FZ_CHECK(x->complete, "the functions layer reads a message the extractor %s",
                 x->failed ? "gave up on" : "did not finish");
        FZ_CHECK(json_string_length(message) == x->text.len &&
                     memcmp(json_string_value(message), buf_str(&x->text), x->text.len) == 0,
                 "the extractor read '%s', the functions layer '%s'", buf_str(&x->text),
                 json_string_value(message));
    }
    json_decref(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    uint32_t seed = fz_byte(&in);
    const char *text = (const char *)in.p;
    size_t len = in.n;
    check_repair(text, len);

    fz_pieces whole = {1, (size_t[]){0}, (size_t[]){len}};
    fz_pieces bytes = fz_cuts(len, 0);
    fz_pieces cuts = fz_cuts(len, seed ? seed : 1);
    extracted a, b, c;
    extract(text, &whole, &a);
    extract(text, &bytes, &b);
    extract(text, &cuts, &c);
    same(&a, &b, "one byte at a time");
    same(&a, &c, "cut");
    check_agreement(text, len, &a);
    buf_free(&a.text);
    buf_free(&b.text);
    buf_free(&c.text);
    fz_pieces_free(&bytes);
    fz_pieces_free(&cuts);
    return 0;
}
