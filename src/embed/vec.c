/*
 * vec.c - dot products, normalization, top-k selection and BLOB encoding.
 *
 * Archival search is a brute-force scan: every stored embedding is decoded,
 * dotted with the query and offered to a bounded top-k. That keeps the
 * database schema trivial and is fast enough for the tens of thousands of
 * passages a personal agent accumulates, provided the two inner pieces are
 * cheap:
 *
 *  - The dot product keeps eight independent partial sums. A single running
 *    sum is a serial dependency chain the compiler may not reorder (float
 *    addition is not associative and we do not build with -ffast-math); eight
 *    named lanes give GCC a pattern it turns into SIMD adds at -O2 and also
 *    fix the summation order, so results are reproducible everywhere.
 *
 *  - Top-k is a min-heap of size k whose root is the worst kept candidate, so
 *    most pushes during a scan are one comparison against the root. Sorting
 *    at the end is an in-place heapsort: repeatedly moving the worst entry to
 *    the back leaves the array ordered best first without extra memory.
 *
 * BLOBs are little-endian float32 regardless of host order. The conversion
 * goes through memcpy to a uint32_t so it is free of aliasing and alignment
 * problems; on little-endian hosts the compiler reduces it to a copy.
 */
#include "embed/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* ------------------------------------------------------------------ math */

float mg_vec_dot(const float *a, const float *b, int dim)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;

    for (; i + 8 <= dim; i += 8) {
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    }
    /* The tail goes into the lanes too, so the combine below is the only
     * place where order matters. */
    for (int j = 0; i < dim; i++, j++)
        acc[j] += a[i] * b[i];

    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void mg_vec_normalize(float *v, int dim)
{
    /* Accumulate in double: a float sum of many small squares loses the
     * low-order contributions, and this runs once per vector, not per pair. */
    double ss = 0.0;
    for (int i = 0; i < dim; i++)
        ss += (double)v[i] * (double)v[i];
    if (!(ss > 0.0) || !isfinite(ss)) return;

    double inv = 1.0 / sqrt(ss);
    for (int i = 0; i < dim; i++)
        v[i] = (float)(v[i] * inv);
}

/* ------------------------------------------------------------------ top-k */

/* Is (ida, sa) strictly better than (idb, sb)? Higher score wins; on equal
 * scores the larger (newer) id wins. */
static int topk_better(int64_t ida, float sa, int64_t idb, float sb)
{
    if (sa != sb) return sa > sb;
    return ida > idb;
}

static void topk_swap(mg_topk *t, int i, int j)
{
    int64_t id = t->ids[i];
    float s = t->scores[i];
    t->ids[i] = t->ids[j];
    t->scores[i] = t->scores[j];
    t->ids[j] = id;
    t->scores[j] = s;
}

/* Restores the min-heap property below node i within the first n entries:
 * every parent must be worse than (not better than) its children. */
static void topk_sift_down(mg_topk *t, int i, int n)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && topk_better(t->ids[worst], t->scores[worst], t->ids[l], t->scores[l]))
            worst = l;
        if (r < n && topk_better(t->ids[worst], t->scores[worst], t->ids[r], t->scores[r]))
            worst = r;
        if (worst == i) return;
        topk_swap(t, i, worst);
        i = worst;
    }
}

static void topk_sift_up(mg_topk *t, int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!topk_better(t->ids[parent], t->scores[parent], t->ids[i], t->scores[i])) return;
        topk_swap(t, i, parent);
        i = parent;
    }
}

void mg_topk_init(mg_topk *t, int k)
{
    if (k < 1) k = 1;
    t->k = k;
    t->count = 0;
    t->ids = mg_xmalloc(sizeof(*t->ids) * (size_t)k);
    t->scores = mg_xmalloc(sizeof(*t->scores) * (size_t)k);
}

void mg_topk_push(mg_topk *t, int64_t id, float score)
{
    /* NaN compares false with everything and would corrupt the heap order. */
    if (isnan(score)) return;

    if (t->count < t->k) {
        t->ids[t->count] = id;
        t->scores[t->count] = score;
        topk_sift_up(t, t->count++);
        return;
    }
    if (!topk_better(id, score, t->ids[0], t->scores[0])) return;
    t->ids[0] = id;
    t->scores[0] = score;
    topk_sift_down(t, 0, t->count);
}

void mg_topk_sort(mg_topk *t)
{
    /* Heapsort with the min-heap: the root (worst) goes to the back, so the
     * front ends up holding the best. */
    for (int n = t->count; n > 1; n--) {
        topk_swap(t, 0, n - 1);
        topk_sift_down(t, 0, n - 1);
    }
}

void mg_topk_free(mg_topk *t)
{
    free(t->ids);
    free(t->scores);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------ blobs */

void mg_vec_to_blob(const float *v, int dim, unsigned char *out)
{
    for (int i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof(u));
        out[4 * i + 0] = (unsigned char)(u & 0xff);
        out[4 * i + 1] = (unsigned char)((u >> 8) & 0xff);
        out[4 * i + 2] = (unsigned char)((u >> 16) & 0xff);
        out[4 * i + 3] = (unsigned char)(u >> 24);
    }
}

int mg_vec_from_blob(const void *blob, int bytes, float *out, int dim)
{
    if (dim < 0 || bytes < 0 || (int64_t)bytes != 4 * (int64_t)dim) return 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The stored order is the machine's: one copy (the blob may be unaligned). */
    memcpy(out, blob, (size_t)bytes);
    return 1;
#endif
    const unsigned char *p = blob;
    for (int i = 0; i < dim; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &u, sizeof(u));
    }
    return 1;
}
