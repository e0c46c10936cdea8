/*
 * pretokenize.c - cutting text into pieces with the encoding's regex.
 *
 * tiktoken splits text with one regular expression per encoding and never
 * merges across the pieces it finds. The two patterns below say what
 * tiktoken's do (see tiktoken_ext/openai_public.py), in PCRE2 syntax:
 *
 *   o200k_base, seven alternatives, the first that matches wins:
 *     1. a word: capitals, then at least one lower-case letter ("Hello",
 *        "HTTPServer"; "camelCase" is two), optionally led by one
 *        non-letter, non-digit, non-newline character (so " Hello" and
 *        "(Hello" stay whole), and optionally followed by an English
 *        contraction ('s 't 're 've 'm 'll 'd, any case);
 *     2. the same for a word of capitals only;
 *     3. one to three digits;
 *     4. a run of punctuation, optionally led by a space and followed by
 *        newlines or slashes;
 *     5. white space up to and including the last newline in it;
 *     6. white space not followed by a non-space (so the last space of a run
 *        is left to lead the next word);
 *     7. any other white space.
 *   cl100k_base: a contraction; an optionally led run of letters (any case);
 *     1-3 digits; punctuation with trailing newlines; white space at the end
 *     of the text; white space through a newline; then 6 and 7 as above.
 *
 * What "white space", "letter" and "end" mean must match tiktoken's regex
 * engine, not PCRE2's defaults:
 *   - \s there is Unicode White_Space. PCRE2's \s (10.42, with UCP) also
 *     takes U+180E, white space no more since Unicode 6.3, so the class is
 *     spelled out (WS below).
 *   - $ there is the end of the text. PCRE2's $ also matches before a final
 *     newline, so \z is used.
 *   - \p{L}, \p{N}, \p{Lu}... are the same Unicode general categories, from
 *     PCRE2's Unicode tables (14.0 in 10.42): a letter added to Unicode later
 *     counts as punctuation here and may split differently from tiktoken.
 *   - (?i) on the contractions folds case by Unicode rules in both, so 'ſ
 *     (long s) counts as 's.
 * Equivalent rewrites make the JIT code faster without changing a match: ASCII
 * ranges in front of the property classes (settled by the class's bitmap,
 * without a Unicode property lookup), and
 * possessive quantifiers where the next item can never take back what they
 * gave up. The unit tests compare every piece against the plain transcription
 * of tiktoken's patterns on real and random text.
 *
 * Matching. The regex is compiled once per tokenizer with PCRE2_UTF and
 * JIT-compiled; each piece is one anchored match at the end of the previous
 * one (every character matches some alternative, so pieces tile the text).
 * A call to PCRE2 costs about as much as the matching itself, so the
 * compiled pattern is the encoding's pattern twice, (?>(P))(?:(?>(P)))?:
 * two capture groups, each atomic, so the first holds exactly the piece P
 * finds at the start and the second the piece after it (or nothing at the
 * end). One call yields two pieces; that is ~12% faster than one each,
 * and three per call gain nothing more.
 * PCRE2 requires valid UTF-8 and checks the whole subject on every call
 * unless told not to, which would make a long text quadratic. So the text is
 * walked in segments: a maximal valid UTF-8 stretch, validated once here and
 * then matched with PCRE2_NO_UTF_CHECK as a subject of its own, or a maximal
 * run of bytes that start no valid sequence, which becomes one piece without
 * the regex. tiktoken cannot see such bytes (it takes Python strings); this
 * way any byte string encodes, and decodes back to itself. An invalid run
 * acts like the end of the text for the valid text around it ($ and (?!\S)
 * match there).
 *
 * ASCII first. Most text is ASCII, where every class of the patterns is a
 * byte test, so ascii_piece cuts a piece there in C, transcribing the
 * alternatives rule by rule, and hands the position to PCRE2 whenever a
 * byte it would have to classify is not ASCII. It halves the cost of this
 * stage on the benchmark's text (59 -> 27 ns a piece, mostly the PCRE2 call
 * it saves); the unit tests hold it against tiktoken's patterns on random
 * ASCII and mixed text.
 *
 * The match limit is lifted: the patterns are linear (the worst backtrack,
 * \s*[\r\n]+ over a long run of spaces, is one pass over the run per piece),
 * and PCRE2's default limit would otherwise cut a many-megabyte run of
 * spaces into wrong pieces.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"

/* Unicode White_Space: what \s means to tiktoken. */
#define WS                                                                                         \
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"  \
    "\\x{205F}\\x{3000}"
#define SPACE     "[" WS "]"
#define NOT_SPACE "[^" WS "]"
/* One non-letter, non-digit, non-newline character leading a word. */
#define LEAD  "[^\\r\\n\\p{L}\\p{N}]"
#define DIGIT "[0-9\\p{N}]"
#define PUNCT "[^" WS "\\p{L}\\p{N}]"

#define O200K_UPPER "[A-Z\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define O200K_LOWER "[a-z\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
#define CONTRACTION "(?i:'s|'t|'re|'ve|'m|'ll|'d)"

/* The lead is not possessive here: it can be a mark (\p{M}), which the word
 * classes also take, so giving it back can be what lets a word match. */
#define O200K                                                                                      \
    LEAD "?" O200K_UPPER "*" O200K_LOWER "+" CONTRACTION "?"                                       \
         "|" LEAD "?" O200K_UPPER "+" O200K_LOWER "*" CONTRACTION "?"                              \
         "|" DIGIT "{1,3}"                                                                         \
         "|\\x20?" PUNCT "++[\\r\\n/]*+"                                                           \
         "|" SPACE "*[\\r\\n]++"                                                                   \
         "|" SPACE "+(?!" NOT_SPACE ")"                                                            \
         "|" SPACE "++"

#define CL100K                                                                                     \
    "'(?i:[sdmt]|ll|ve|re)"                                                                        \
    "|" LEAD "?+[A-Za-z\\p{L}]++"                                                                  \
    "|" DIGIT "{1,3}"                                                                              \
    "|\\x20?" PUNCT "++[\\r\\n]*+"                                                                 \
    "|" SPACE "++\\z"                                                                              \
    "|" SPACE "*[\\r\\n]"                                                                          \
    "|" SPACE "+(?!" NOT_SPACE ")"                                                                 \
    "|" SPACE

/* Two pieces per match: see "Matching" above. */
#define TWICE(p) "(?>(" p "))(?:(?>(" p ")))?"

static const char o200k_pattern[] = TWICE(O200K);
static const char cl100k_pattern[] = TWICE(CL100K);

struct pretok {
    pcre2_code *code;
    pcre2_match_data *match;
    pcre2_match_context *context;
    pcre2_jit_stack *stack;
    int jit;
    int o200k; /* which ASCII transcription applies (ascii_piece) */
};

void pretok_free(pretok *pt)
{
    if (!pt) return;
    pcre2_match_data_free(pt->match);
    pcre2_match_context_free(pt->context);
    pcre2_jit_stack_free(pt->stack);
    pcre2_code_free(pt->code);
    free(pt);
}

mg_status pretok_open(const char *encoding, pretok **out, mg_error *err)
{
    *out = NULL;
    const char *pattern;
    if (strcmp(encoding, "o200k_base") == 0)
        pattern = o200k_pattern;
    else if (strcmp(encoding, "cl100k_base") == 0)
        pattern = cl100k_pattern;
    else
        return mg_err_set(err, MG_ERR_USAGE,
                          "unknown encoding '%s' (known: cl100k_base, o200k_base)", encoding);
    pretok *pt = mg_xcalloc(1, sizeof *pt);
    pt->o200k = pattern == o200k_pattern;
    int code;
    PCRE2_SIZE offset;
    pt->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                             &code, &offset, NULL);
    if (!pt->code) {
        PCRE2_UCHAR text[256];
        pcre2_get_error_message(code, text, sizeof text);
        pretok_free(pt);
        return mg_err_set(err, MG_ERR_INTERNAL, "%s pattern: %s at %zu", encoding, (char *)text,
                          (size_t)offset);
    }
    pt->match = pcre2_match_data_create(3, NULL);
    pt->context = pcre2_match_context_create(NULL);
    if (!pt->match || !pt->context) {
        pretok_free(pt);
        return mg_err_set(err, MG_ERR_NOMEM, "out of memory compiling the %s pattern", encoding);
    }
    pcre2_set_match_limit(pt->context, UINT32_MAX);
    /* Without the JIT (no executable memory allowed, say) the interpreter
     * gives the same matches, only slower. */
    if (pcre2_jit_compile(pt->code, PCRE2_JIT_COMPLETE) == 0) {
        pt->stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        if (pt->stack) {
            pcre2_jit_stack_assign(pt->context, NULL, pt->stack);
            pt->jit = 1;
        }
    }
    *out = pt;
    return MG_OK;
}

int pretok_is_jit(const pretok *pt)
{
    return pt->jit;
}

/* ---------------------------------------------------------------- UTF-8 */

static inline int is_cont(uint8_t c)
{
    return (c & 0xC0) == 0x80;
}

/* The length of the well-formed UTF-8 sequence at p[0..n) (1-4), or 0. */
static size_t sequence_length(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0; /* a continuation byte, or an overlong 2-byte lead */
    if (c < 0xE0) return n >= 2 && is_cont(p[1]) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || !is_cont(p[2])) return 0;
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80; /* E0: no overlongs */
        uint8_t hi = c == 0xED ? 0x9F : 0xBF; /* ED: no surrogates */
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c < 0xF5) {
        if (n < 4 || !is_cont(p[2]) || !is_cont(p[3])) return 0;
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80; /* F0: no overlongs */
        uint8_t hi = c == 0xF4 ? 0x8F : 0xBF; /* F4: nothing past U+10FFFF */
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

size_t pretok_valid_prefix(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, sizeof w);
            if (!(w & 0x8080808080808080ull)) { /* eight ASCII bytes */
                i += 8;
                continue;
            }
        }
        size_t k = sequence_length(p + i, n - i);
        if (!k) break;
        i += k;
    }
    return i;
}

size_t pretok_invalid_run(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && sequence_length(p + i, n - i) == 0)
        i++;
    return i;
}

/* ---------------------------------------------------------------- pieces */

void pretok_begin(pretok_iter *it, const char *text, size_t len)
{
    memset(it, 0, sizeof *it);
    it->text = (const uint8_t *)text;
    it->len = len;
}

/* --------------------------------------------------------- ASCII pieces */

/* The patterns above, transcribed for ASCII text. The regex stage costs
 * ~39 ns a piece, ~15 ns of it the call into PCRE2; most text is ASCII, and
 * on ASCII the classes are plain byte tests: letters [A-Za-z] (upper and
 * lower), digits [0-9], white space \t \n \v \f \r and space; anything
 * else is punctuation (\p{Lm}, \p{Lo}, \p{M} and the other digits and
 * spaces are all outside ASCII). ascii_piece returns the end of the piece
 * at `at`, or 0 whenever a byte it would have to classify is not ASCII (a
 * run that ends at one, a lookahead that sees one, the letter after an
 * apostrophe, which (?i) could fold: 'ſ is 's), and PCRE2 decides. The
 * unit tests hold the pieces against tiktoken's patterns run by PCRE2. */

enum { C_OTHER, C_UPPER, C_LOWER, C_DIGIT, C_SPACE, C_NEWLINE, C_HIGH };

static const uint8_t ascii_class[256] = {
    ['A'] = C_UPPER,
    ['B'] = C_UPPER,
    ['C'] = C_UPPER,
    ['D'] = C_UPPER,
    ['E'] = C_UPPER,
    ['F'] = C_UPPER,
    ['G'] = C_UPPER,
    ['H'] = C_UPPER,
    ['I'] = C_UPPER,
    ['J'] = C_UPPER,
    ['K'] = C_UPPER,
    ['L'] = C_UPPER,
    ['M'] = C_UPPER,
    ['N'] = C_UPPER,
    ['O'] = C_UPPER,
    ['P'] = C_UPPER,
    ['Q'] = C_UPPER,
    ['R'] = C_UPPER,
    ['S'] = C_UPPER,
    ['T'] = C_UPPER,
    ['U'] = C_UPPER,
    ['V'] = C_UPPER,
    ['W'] = C_UPPER,
    ['X'] = C_UPPER,
    ['Y'] = C_UPPER,
    ['Z'] = C_UPPER,
    ['a'] = C_LOWER,
    ['b'] = C_LOWER,
    ['c'] = C_LOWER,
    ['d'] = C_LOWER,
    ['e'] = C_LOWER,
    ['f'] = C_LOWER,
    ['g'] = C_LOWER,
    ['h'] = C_LOWER,
    ['i'] = C_LOWER,
    ['j'] = C_LOWER,
    ['k'] = C_LOWER,
    ['l'] = C_LOWER,
    ['m'] = C_LOWER,
    ['n'] = C_LOWER,
    ['o'] = C_LOWER,
    ['p'] = C_LOWER,
    ['q'] = C_LOWER,
    ['r'] = C_LOWER,
    ['s'] = C_LOWER,
    ['t'] = C_LOWER,
    ['u'] = C_LOWER,
    ['v'] = C_LOWER,
    ['w'] = C_LOWER,
    ['x'] = C_LOWER,
    ['y'] = C_LOWER,
    ['z'] = C_LOWER,
    ['0'] = C_DIGIT,
    ['1'] = C_DIGIT,
    ['2'] = C_DIGIT,
    ['3'] = C_DIGIT,
    ['4'] = C_DIGIT,
    ['5'] = C_DIGIT,
    ['6'] = C_DIGIT,
    ['7'] = C_DIGIT,
    ['8'] = C_DIGIT,
    ['9'] = C_DIGIT,
    ['\t'] = C_SPACE,
    ['\v'] = C_SPACE,
    ['\f'] = C_SPACE,
    [' '] = C_SPACE,
    ['\n'] = C_NEWLINE,
    ['\r'] = C_NEWLINE,
#define HIGH16                                                                                     \
    C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH,        \
        C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH
    [0x80] = HIGH16,
    HIGH16,
    HIGH16,
    HIGH16,
    HIGH16,
    HIGH16,
    HIGH16,
    HIGH16,
#undef HIGH16
};

#define CLASS(i)     ascii_class[t[i]]
#define IS_LETTER(c) ((c) == C_UPPER || (c) == C_LOWER)
#define IS_WS(c)     ((c) == C_SPACE || (c) == C_NEWLINE)

/* After `i`, the end of the contraction there ('s 't 're 've 'm 'll 'd,
 * any case), i if none, or 0 if a byte that decides is not ASCII. */
static size_t contraction(const uint8_t *t, size_t i, size_t end)
{
    if (i >= end || t[i] != '\'') return i;
    if (i + 1 >= end) return i;
    uint8_t a = t[i + 1] | 0x20, b = i + 2 < end ? t[i + 2] | 0x20 : 0;
    if (t[i + 1] >= 0x80) return 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < end && t[i + 2] >= 0x80 && (a == 'r' || a == 'v' || a == 'l')) return 0;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return i;
}

/* The end of the white space piece at `at` (t[at] is white space). */
static size_t space_piece(const uint8_t *t, size_t at, size_t end, int o200k)
{
    size_t j = at, last_newline = SIZE_MAX;
    while (j < end && IS_WS(CLASS(j))) {
        if (CLASS(j) == C_NEWLINE) last_newline = j;
        j++;
    }
    if (j < end && t[j] >= 0x80) return 0; /* the run may go on (U+00A0...) */
    if (!o200k && j == end) return j;      /* \s++\z */
    if (last_newline != SIZE_MAX) {
        /* \s*[\r\n]++ (o200k) or \s*[\r\n] (cl100k): up to the last
         * newline of the run, which for o200k takes the newlines after it:
         * none, as it is the last. */
        return last_newline + 1;
    }
    if (j == end) return j;        /* \s+(?!\S) at the end */
    if (j - at >= 2) return j - 1; /* \s+(?!\S): the last one leads the word */
    return at + 1;                 /* \s+ or \s: one */
}

static size_t ascii_piece(const pretok *pt, const uint8_t *t, size_t at, size_t end)
{
    uint8_t c = CLASS(at);
    if (c == C_HIGH) return 0;
    if (IS_WS(c)) {
        /* White space leads a word (the lead), or a space leads
         * punctuation (\x20?); else the white space rules. */
        uint8_t next = at + 1 < end ? CLASS(at + 1) : C_NEWLINE;
        if (next == C_HIGH) return 0;
        int lead = c == C_SPACE && IS_LETTER(next), space_punct = t[at] == ' ' && next == C_OTHER;
        if (!lead && !space_punct) return space_piece(t, at, end, pt->o200k);
    }
    size_t i = at;
    if (pt->o200k) {
        /* [^\r\n\p{L}\p{N}]? then upper* lower+, or upper+ lower*, then
         * an optional contraction. The lead is tried first and, when the
         * word cannot follow it, given back, but a lead is never a letter. */
        if (c != C_UPPER && c != C_LOWER && c != C_DIGIT && c != C_NEWLINE) i++;
        if (i < end && IS_LETTER(CLASS(i))) {
            while (i < end && CLASS(i) == C_UPPER)
                i++;
            while (i < end && CLASS(i) == C_LOWER)
                i++;
            if (i < end && t[i] >= 0x80) return 0; /* the word may go on */
            return contraction(t, i, end);
        }
        if (i < end && CLASS(i) == C_HIGH) return 0; /* a letter after the lead? */
        i = at;
    } else {
        if (t[at] == '\'') {
            size_t k = contraction(t, at, end);
            if (k != at) return k;
            if (at + 1 < end && t[at + 1] >= 0x80) return 0;
        }
        /* [^\r\n\p{L}\p{N}]?+ \p{L}++ */
        if (c != C_UPPER && c != C_LOWER && c != C_DIGIT && c != C_NEWLINE) i++;
        if (i < end && IS_LETTER(CLASS(i))) {
            while (i < end && IS_LETTER(CLASS(i)))
                i++;
            return i < end && t[i] >= 0x80 ? 0 : i;
        }
        if (i < end && CLASS(i) == C_HIGH) return 0;
        i = at;
    }
    if (c == C_DIGIT) { /* \p{N}{1,3} */
        while (i < end && i - at < 3 && CLASS(i) == C_DIGIT)
            i++;
        return i - at < 3 && i < end && t[i] >= 0x80 ? 0 : i;
    }
    /* \x20? [^\s\p{L}\p{N}]++ then [\r\n/]*+ (o200k) or [\r\n]*+ */
    if (t[i] == ' ') i++;
    size_t first = i;
    while (i < end && CLASS(i) == C_OTHER)
        i++;
    if (i < end && t[i] >= 0x80) return 0;                     /* more punctuation? */
    if (i == first) return space_piece(t, at, end, pt->o200k); /* a lone space */
    while (i < end && (CLASS(i) == C_NEWLINE || (pt->o200k && t[i] == '/')))
        i++;
    return i;
}

/* One anchored match at `at` in the current (valid) segment; returns the
 * end of the piece and leaves the end of the piece after it (if any) in
 * it->next_end. */
static size_t match_at(pretok *pt, pretok_iter *it, size_t at)
{
    PCRE2_SPTR subject = it->text + it->seg_start;
    size_t length = it->seg_end - it->seg_start;
    size_t offset = at - it->seg_start;
    uint32_t options = PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED;
    int rc =
        pt->jit
            ? pcre2_jit_match(pt->code, subject, length, offset, options, pt->match, pt->context)
            : pcre2_match(pt->code, subject, length, offset, options, pt->match, pt->context);
    if (rc > 1) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(pt->match);
        if (ov[3] > offset) {
            if (rc > 2 && ov[4] == ov[3] && ov[5] > ov[4]) it->next_end = it->seg_start + ov[5];
            return it->seg_start + ov[3];
        }
    }
    /* Cannot happen (every character matches an alternative and the match
     * limit is lifted); should PCRE2 still fail, say for lack of memory,
     * one character is a piece rather than the text being lost. */
    size_t k = sequence_length(it->text + at, it->seg_end - at);
    return at + (k ? k : 1);
}

int pretok_next(pretok *pt, pretok_iter *it, size_t *start, size_t *end)
{
    if (it->pos >= it->len) return 0;
    if (it->pos >= it->seg_end) {
        const uint8_t *p = it->text + it->pos;
        size_t rest = it->len - it->pos;
        size_t valid = pretok_valid_prefix(p, rest);
        it->seg_start = it->pos;
        it->seg_valid = valid > 0;
        it->seg_end = it->pos + (valid ? valid : pretok_invalid_run(p, rest));
    }
    *start = it->pos;
    if (it->next_end) {
        *end = it->next_end;
        it->next_end = 0;
    } else if (!it->seg_valid) {
        *end = it->seg_end;
    } else {
        size_t k = ascii_piece(pt, it->text, it->pos, it->seg_end);
        *end = k ? k : match_at(pt, it, it->pos);
    }
    it->pos = *end;
    return 1;
}
