/*
 * fuzz_embed.c - the offline embedder's tokenizer and vector
 * (mg_embed_offline, mg_embed_offline_weighted, embed/offline.c).
 *
 * Input: byte 0 picks the dimension (0: 384, else 4 times it), the rest is
 * text, valid UTF-8 or not.
 *
 * Properties (embed.h's promises):
 *  - the vector is unit length when the call returns 1 and all zeros when
 *    it returns 0, and it is the same bits on every call;
 *  - invalid bytes and NUL bytes are separators: replacing each with a
 *    space gives the very same vector;
 *  - weighting every word by 1 gives the very same vector as no weights;
 *  - the words the weight function is shown are what the tokenizer keeps:
 *    1 to 64 bytes of valid UTF-8 whose only ASCII bytes are lower-case
 *    letters and digits; each whole word (60 bytes or less, which no cut
 *    long token can be) is shown once.
 */
#include "fuzz.h"

#include <math.h>

#include "embed/embed.h"
#include "util/text.h"

#define MAX_DIM 1020

/* The words a weighted call was shown, back to back, each after its length. */
typedef struct shown {
    char *words;
    size_t len, cap;
} shown;

static float weigh(void *ctx, const char *word, size_t n)
{
    shown *s = ctx;
    FZ_CHECK(n >= 1 && n <= 64, "a word of %zu bytes", n);
    FZ_CHECK(mg_utf8_valid(word, n), "a word that is not valid UTF-8");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)word[i];
        FZ_CHECK(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'),
                 "a word holds the byte 0x%02x", c);
    }
    if (n <= 60) {
        for (size_t at = 0; at < s->len;) {
            size_t m = (unsigned char)s->words[at];
            FZ_CHECK(m != n || memcmp(s->words + at + 1, word, n) != 0,
                     "the word '%.*s' was weighed twice", (int)n, word);
            at += 1 + m;
        }
    }
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->words = realloc(s->words, s->cap);
        if (!s->words) abort();
    }
    s->words[s->len++] = (char)n;
    memcpy(s->words + s->len, word, n);
    s->len += n;
    return 1.0f;
}

static void check_vector(const float *v, int dim, int any)
{
    double ss = 0;
    for (int i = 0; i < dim; i++) {
        FZ_CHECK(isfinite(v[i]), "component %d is not finite", i);
        ss += (double)v[i] * v[i];
    }
    if (any)
        FZ_CHECK(fabs(ss - 1.0) < 1e-4, "returned 1 with a norm of %g", sqrt(ss));
    else
        FZ_CHECK(ss == 0.0, "returned 0 with a nonzero vector");
}

/* Length of the valid UTF-8 sequence at p (RFC 3629), 0 if none starts. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        need = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    return v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? 0 : need;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    unsigned d = fz_byte(&in);
    int dim = d ? (int)d * 4 : 384;
    const char *text = (const char *)in.p;
    size_t len = in.n;
    static float a[MAX_DIM], b[MAX_DIM], c[MAX_DIM];

    int any = mg_embed_offline(text, len, a, dim);
    check_vector(a, dim, any);
    FZ_CHECK(mg_embed_offline(text, len, b, dim) == any && memcmp(a, b, sizeof(float) * dim) == 0,
             "a second call gave another vector");

    shown words = {0};
    FZ_CHECK(mg_embed_offline_weighted(text, len, c, dim, weigh, &words) == any &&
                 memcmp(a, c, sizeof(float) * dim) == 0,
             "weights of 1 changed the vector");
    free(words.words);

    /* Separators: every byte no valid character starts at, and NUL. */
    char *spaced = fz_strndup(in.p, len);
    int changed = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(in.p + i, len - i);
        if (n && in.p[i]) {
            i += n;
            continue;
        }
        spaced[i++] = ' ';
        changed = 1;
    }
    if (changed) {
        FZ_CHECK(mg_embed_offline(spaced, len, b, dim) == any &&
                     memcmp(a, b, sizeof(float) * dim) == 0,
                 "invalid or NUL bytes did not act as spaces");
    }
    free(spaced);
    return 0;
}
