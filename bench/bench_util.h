/*
 * bench_util.h - the small helpers every benchmark needs: a monotonic clock,
 * a seeded generator (so runs are reproducible) and a comparison for qsort
 * of timings. Header-only: each benchmark is one file plus the library.
 */
#ifndef MG_BENCH_UTIL_H
#define MG_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64: the next value of the generator whose state is *s (not 0). */
static inline uint64_t bench_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* A uniform double in [0, 1) from the generator *s. */
static inline double bench_rng_unit(uint64_t *s)
{
    return (double)(bench_rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* qsort comparison of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
