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
 * Stored embeddings are one byte a dimension. An embedding's BLOB is a
 * 4-byte mark, a float32 scale and then each element divided by the scale
 * and rounded to an int8 (the scale makes the largest element 127). Float32
 * was four times the bytes for ranking that does not need them: at 100,000
 * loaded passages the table held 150 MB of vectors, written twice through
 * the WAL, and the database shrank from 475 to 274 MB (bench/README.md,
 * section 6). The error of an element is at most half a step, 1/254 of the
 * largest; the table is the truth, so whatever reads an embedding (the
 * scan, the vector index, its checks) decodes the same floats. BLOBs written
 * before are plain little-endian float32 and are still read: the mark is a
 * NaN, which no embedding holds (embedders check every element is finite),
 * so a float32 BLOB never starts with it. Numbers go through memcpy to a
 * uint32_t, free of aliasing and alignment problems, and little-endian
 * whatever the host's order.
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

/* A quiet NaN with a payload: the first 4 bytes of a one-byte-a-dimension BLOB. */
#define BLOB_MARK  0x7fc07138u
#define BLOB_HEAD  8 /* the mark, the scale */
#define BLOB_STEPS 127.0f

static void put_u32(unsigned char *out, uint32_t u)
{
    out[0] = (unsigned char)(u & 0xff);
    out[1] = (unsigned char)((u >> 8) & 0xff);
    out[2] = (unsigned char)((u >> 16) & 0xff);
    out[3] = (unsigned char)(u >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float get_f32(const unsigned char *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int mg_vec_blob_size(int dim)
{
    return dim > 0 ? dim + BLOB_HEAD : BLOB_HEAD;
}

void mg_vec_to_blob(const float *v, int dim, unsigned char *out)
{
    float largest = 0;
    for (int i = 0; i < dim; i++)
        if (isfinite(v[i]) && fabsf(v[i]) > largest) largest = fabsf(v[i]);
    float scale = largest / BLOB_STEPS;
    if (!(scale > 0) || !isfinite(scale)) scale = 1.0f; /* all zeros, or no finite element */
    uint32_t u;
    memcpy(&u, &scale, sizeof u);
    put_u32(out, BLOB_MARK);
    put_u32(out + 4, u);
    for (int i = 0; i < dim; i++) {
        float q = isfinite(v[i]) ? roundf(v[i] / scale) : 0;
        q = q > BLOB_STEPS ? BLOB_STEPS : q < -BLOB_STEPS ? -BLOB_STEPS : q;
        out[BLOB_HEAD + i] = (unsigned char)(signed char)q;
    }
}

static int has_mark(const unsigned char *p, int bytes)
{
    return bytes >= BLOB_HEAD && get_u32(p) == BLOB_MARK;
}

int mg_vec_blob_dim(const void *blob, int bytes)
{
    if (!blob || bytes <= 0) return 0;
    if (has_mark(blob, bytes)) return bytes - BLOB_HEAD;
    return bytes % 4 == 0 ? bytes / 4 : 0;
}

int mg_vec_from_blob(const void *blob, int bytes, float *out, int dim)
{
    const unsigned char *p = blob;
    if (!p || dim <= 0 || mg_vec_blob_dim(blob, bytes) != dim) return 0;
    if (has_mark(p, bytes)) {
        float scale = get_f32(p + 4);
        if (!isfinite(scale)) return 0;
        for (int i = 0; i < dim; i++)
            out[i] = (float)(signed char)p[BLOB_HEAD + i] * scale;
        return 1;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The stored order is the machine's: one copy (the blob may be unaligned). */
    memcpy(out, blob, (size_t)bytes);
    return 1;
#endif
    for (int i = 0; i < dim; i++)
        out[i] = get_f32(p + 4 * i);
    return 1;
}
