/*
 * fuzz_bpe.c - the exact BPE tokenizer (mg_tokenizer_encode/_decode,
 * tokenizer/: pretokenize.c's pieces, bpe.c's merges).
 *
 * memgpt.h promises that any bytes encode, valid UTF-8 as tiktoken does and
 * each run of bytes that is not valid UTF-8 as a piece of its own, "so
 * decode(encode(x)) == x for every x". That is the property asserted here,
 * for every input, valid UTF-8 or not.
 *
 * Input: byte 0 picks the encoding (even: cl100k_base, odd: o200k_base),
 * the rest is the text.
 *
 * The rank files are looked up as memgpt does (share/memgpt beside the
 * binary, or ../share/memgpt: the build tree's, which `make` fetches).
 * Without them the target builds a small rank table of its own (all 256
 * bytes and a few hundred merges) under the real pre-tokenizer, so the same
 * code is fuzzed on any machine, only with fewer merges.
 *
 * Properties:
 *  - decode(encode(x)) == x, byte for byte; every id is in the encoding;
 *    mg_tokenizer_count agrees with the number of ids;
 *  - the pieces of the pre-tokenizer cover the text in order, without gaps,
 *    and each is valid UTF-8 or a run of bytes where no valid UTF-8 starts;
 *  - the two merge algorithms (the quadratic scan and the heap) and the
 *    cached path give the same ids for every piece the scan handles;
 *  - ids read from the input either decode (and the text they make
 *    re-encodes and decodes to itself) or are refused as not in the
 *    encoding.
 */
#include "fuzz.h"

#include "tokenizer/tokenizer.h"
#include "util/buf.h"
#include "util/text.h"

static mg_tokenizer *toks[2];

/* ------------------------------------------------- a rank table of our own */

static void base64(buf *out, const uint8_t *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        buf_putc(out, abc[v >> 18 & 63]);
        buf_putc(out, abc[v >> 12 & 63]);
        buf_putc(out, i + 1 < n ? abc[v >> 6 & 63] : '=');
        buf_putc(out, i + 2 < n ? abc[v & 63] : '=');
    }
}

/* Tokens a small English-ish vocabulary would merge to, pairs first. */
static const char *const merges[] = {"th",
                                     "he",
                                     "in",
                                     "er",
                                     "an",
                                     "re",
                                     "on",
                                     " t",
                                     " a",
                                     "at",
                                     "en",
                                     "nd",
                                     "es",
                                     "or",
                                     "is",
                                     "ou",
                                     "it",
                                     "te",
                                     "ed",
                                     "ar",
                                     " s",
                                     " w",
                                     " o",
                                     "  ",
                                     "\n\n",
                                     "\xc3\xa9",
                                     "\xe2\x82",
                                     "the",
                                     " the",
                                     "ing",
                                     "ion",
                                     "and",
                                     " and",
                                     "tion",
                                     " is",
                                     " it",
                                     "ent",
                                     "ter",
                                     "her",
                                     "hello",
                                     " world",
                                     "   ",
                                     "    ",
                                     "\xe2\x82\xac",
                                     " th",
                                     " in",
                                     " on",
                                     "ation",
                                     "er ",
                                     "12",
                                     "123",
                                     "00",
                                     "000",
                                     "//",
                                     "{\"",
                                     "\":",
                                     "\xf0\x9f",
                                     "\xf0\x9f\x98",
                                     "\xf0\x9f\x98\x80"};

static mg_tokenizer *own_tokenizer(const char *encoding)
{
    buf ranks = BUF_INIT;
    uint32_t rank = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        base64(&ranks, &byte, 1);
        buf_printf(&ranks, " %u\n", rank++);
    }
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        base64(&ranks, (const uint8_t *)merges[i], strlen(merges[i]));
        buf_printf(&ranks, " %u\n", rank++);
    }
    mg_tokenizer *tok = mg_xcalloc(1, sizeof *tok);
    snprintf(tok->encoding, sizeof tok->encoding, "%s", encoding);
    mg_error err = {0};
    if (bpe_ranks_parse(&tok->ranks, ranks.data, ranks.len, 0, &err) ||
        pretok_open(encoding, &tok->pt, &err)) {
        fprintf(stderr, "fuzz_bpe: %s\n", err.message);
        abort();
    }
    tok->exact = 1;
    buf_free(&ranks);
    return tok;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *names[2] = {"cl100k_base", "o200k_base"};
    for (int i = 0; i < 2; i++) {
        mg_error err = {0};
        if (mg_tokenizer_open(names[i], &toks[i], &err)) abort();
        if (!mg_tokenizer_exact(toks[i])) {
            fprintf(stderr, "fuzz_bpe: %s: no rank file found, using a rank table of our own\n",
                    names[i]);
            mg_tokenizer_free(toks[i]);
            toks[i] = own_tokenizer(names[i]);
        }
    }
    return 0;
}

/* ------------------------------------------------------------- the checks */

static void check_pieces(mg_tokenizer *tok, const char *text, size_t len)
{
    pretok_iter it;
    pretok_begin(&it, text, len);
    size_t start, end, at = 0;
    uint32_t small[BPE_SMALL_PIECE], heap[BPE_SMALL_PIECE], cached[BPE_SMALL_PIECE];
    while (pretok_next(tok->pt, &it, &start, &end)) {
        FZ_CHECK(start == at && end > start && end <= len,
                 "piece [%zu, %zu) does not follow the last one, which ended at %zu", start, end,
                 at);
        at = end;
        const uint8_t *p = (const uint8_t *)text + start;
        size_t n = end - start;
        FZ_CHECK(mg_utf8_valid((const char *)p, n) || pretok_invalid_run(p, n) == n,
                 "piece [%zu, %zu) mixes valid UTF-8 and invalid bytes", start, end);
        if (n > BPE_SMALL_PIECE) continue;
        size_t a = bpe_merge_small(&tok->ranks, p, n, small);
        size_t b = bpe_merge_heap(&tok->ranks, &tok->scratch, p, n, heap);
        size_t c = bpe_encode_piece(&tok->ranks, &tok->scratch, p, n, cached);
        FZ_CHECK(a == b && memcmp(small, heap, a * sizeof *small) == 0,
                 "the scan and the heap merge [%zu, %zu) differently", start, end);
        FZ_CHECK(a == c && memcmp(small, cached, a * sizeof *small) == 0,
                 "bpe_encode_piece differs from the scan on [%zu, %zu)", start, end);
    }
    FZ_CHECK(at == len, "the pieces end at %zu of %zu bytes", at, len);
}

static void check_round_trip(mg_tokenizer *tok, const char *text, size_t len)
{
    uint32_t *ids;
    size_t n;
    mg_error err = {0};
    FZ_CHECK(mg_tokenizer_encode(tok, text, len, &ids, &n, &err) == MG_OK, "encode failed: %s",
             err.message);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(ids[i] < tok->ranks.n, "id %u is not in the encoding", ids[i]);
    FZ_CHECK(mg_tokenizer_count(tok, text, len) == n, "count says %zu, encode gave %zu ids",
             mg_tokenizer_count(tok, text, len), n);
    char *back;
    size_t back_len;
    FZ_CHECK(mg_tokenizer_decode(tok, ids, n, &back, &back_len, &err) == MG_OK, "decode failed: %s",
             err.message);
    FZ_CHECK(back_len == len && memcmp(back, text, len) == 0,
             "decode(encode(x)) != x (%zu bytes back for %zu)", back_len, len);
    mg_free(back);
    mg_free(ids);
}

/* The input's bytes read as ids (some of them out of range). */
static void check_ids(mg_tokenizer *tok, const uint8_t *p, size_t len)
{
    size_t n = len / 3;
    uint32_t *ids = mg_xmalloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = ((uint32_t)p[3 * i] << 16 | (uint32_t)p[3 * i + 1] << 8 | p[3 * i + 2]) %
                 (tok->ranks.n + 64);
    char *text;
    size_t text_len;
    mg_error err = {0};
    mg_status st = mg_tokenizer_decode(tok, ids, n, &text, &text_len, &err);
    int out_of_range = 0;
    for (size_t i = 0; i < n; i++)
        out_of_range |= ids[i] >= tok->ranks.n;
    FZ_CHECK(out_of_range ? st == MG_ERR_USAGE : st == MG_OK, "decode of %s ids: %s",
             out_of_range ? "bad" : "good", st ? err.message : "ok");
    if (!st) {
        check_round_trip(tok, text, text_len);
        mg_free(text);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    mg_tokenizer *tok = toks[fz_byte(&in) & 1];
    const char *text = (const char *)in.p;
    check_pieces(tok, text, in.n);
    check_round_trip(tok, text, in.n);
    check_ids(tok, in.p, in.n);
    return 0;
}
