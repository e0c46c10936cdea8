/*
 * fuzz.h - what the fuzz targets share: failing loudly, reading the input
 * field by field, and cutting bytes into the pieces a network might deliver.
 *
 * A target checks properties, not just survival, so a broken property must
 * stop the run the way a crash does: FZ_CHECK prints what failed and calls
 * abort(), which libFuzzer reports (and saves the input for), and which the
 * replay driver turns into a failed test.
 *
 * Cutting: a stream parser must give the same result however its input is
 * split. fz_cuts draws piece lengths from a small generator seeded by input
 * bytes, so the fuzzer steers the cuts with the same mutations it uses on
 * the data, and every seed is replayed with the same cuts. Empty pieces are
 * drawn too: feeding nothing must change nothing.
 */
#ifndef MG_FUZZ_FUZZ_H
#define MG_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include <stdarg.h>

/* Set by targets that make temporary files: run before a property's abort,
 * which skips atexit handlers. */
static void (*fz_cleanup)(void);

__attribute__((noreturn, format(printf, 4, 5))) static inline void
fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "%s:%d: property violated: %s\n  ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (fz_cleanup) fz_cleanup();
    abort();
}

/* Aborts with a message when `cond` does not hold. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                              \
    } while (0)

/* The unread rest of an input. */
typedef struct fz_input {
    const uint8_t *p;
    size_t n;
} fz_input;

/* The next byte, or 0 once the input is used up. */
static inline unsigned fz_byte(fz_input *in)
{
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

/* The next piece up to the byte `sep` (not included; consumed), or the
 * rest. Returns its length; *out points into the input. */
static inline size_t fz_field(fz_input *in, uint8_t sep, const uint8_t **out)
{
    const uint8_t *end = memchr(in->p, sep, in->n);
    size_t n = end ? (size_t)(end - in->p) : in->n;
    *out = in->p;
    in->p += n;
    in->n -= n;
    if (end) in->p++, in->n--;
    return n;
}

/* A copy of p[0..n) with a NUL after it (caller frees). */
static inline char *fz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* xorshift32: small, fast and the same everywhere. */
static inline uint32_t fz_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Pieces of a text of `len` bytes: piece i is [off[i], off[i] + lens[i]). */
typedef struct fz_pieces {
    size_t n;
    size_t *off, *lens;
} fz_pieces;

/* Cuts `len` bytes into pieces whose lengths follow from `seed`: mostly 1
 * to 8 bytes, sometimes empty, sometimes up to 64. seed 0 gives one byte
 * per piece. Free with fz_pieces_free. */
static inline fz_pieces fz_cuts(size_t len, uint32_t seed)
{
    fz_pieces c = {0, malloc((len + 1) * 2 * sizeof(size_t)),
                   malloc((len + 1) * 2 * sizeof(size_t))};
    if (!c.off || !c.lens) abort();
    uint32_t state = seed * 2654435761u + 1;
    size_t at = 0;
    int was_empty = 0; /* two empty pieces in a row would say nothing new */
    while (at < len) {
        size_t n = 1;
        if (seed) {
            uint32_t r = fz_next(&state);
            n = (r & 3) == 0 ? (r >> 8) % 65 : 1 + (r >> 8) % 8;
            if (n > len - at) n = len - at;
            if (n == 0 && was_empty) n = 1;
        }
        was_empty = n == 0;
        c.off[c.n] = at;
        c.lens[c.n++] = n;
        at += n;
    }
    return c;
}

static inline void fz_pieces_free(fz_pieces *c)
{
    free(c->off);
    free(c->lens);
}

#endif
