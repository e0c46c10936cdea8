/*
 * test_vec.c - dot products, normalization, top-k selection, BLOB encoding.
 *
 * The dot product and top-k are checked against the obvious slow versions
 * (a double-precision loop, a full sort) on pseudo-random data from a fixed
 * seed, so failures reproduce.
 */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/vec.h"

/* A small deterministic generator (64-bit LCG, high bits) so the tests do
 * not depend on the libc rand() sequence. */
static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint32_t rng_next(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static float rng_float(void) /* in [-1, 1) */
{
    return (float)rng_next() / (float)(1u << 30) - 1.0f;
}

/* ------------------------------------------------------------------ dot / normalize */

static void test_dot_matches_naive(void **state)
{
    (void)state;
    static const int dims[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 383, 384, 385, 1001};
    float a[1001], b[1001];

    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        int dim = dims[d];
        double ref = 0.0, mag = 0.0;
        for (int i = 0; i < dim; i++) {
            a[i] = rng_float();
            b[i] = rng_float();
            ref += (double)a[i] * b[i];
            mag += fabs((double)a[i] * b[i]);
        }
        float got = mg_vec_dot(a, b, dim);
        /* Float summation error grows with the sum of magnitudes. */
        assert_true(fabs(got - ref) <= 1e-5 * (mag + 1.0));
    }
}

static void test_dot_exact_small(void **state)
{
    (void)state;
    const float a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    const float b[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1};
    assert_true(mg_vec_dot(a, b, 11) == 55.0f - 11.0f);
    assert_true(mg_vec_dot(a, b, 3) == 6.0f);
    assert_true(mg_vec_dot(a, b, 0) == 0.0f);
    assert_true(mg_vec_dot(a, b, -4) == 0.0f);
}

static void test_normalize(void **state)
{
    (void)state;
    float v[385];
    for (int i = 0; i < 385; i++)
        v[i] = rng_float() * 100.0f;
    float before0 = v[0], before1 = v[1];
    mg_vec_normalize(v, 385);
    assert_true(fabs(mg_vec_dot(v, v, 385) - 1.0) < 1e-5);
    /* Direction is kept: ratios between components do not change. */
    assert_true(fabs(v[0] / v[1] - before0 / before1) < 1e-3 * fabs(before0 / before1) + 1e-6);

    float w[3] = {3, 0, 4};
    mg_vec_normalize(w, 3);
    assert_true(fabs(w[0] - 0.6f) < 1e-6 && w[1] == 0.0f && fabs(w[2] - 0.8f) < 1e-6);
}

static void test_normalize_zero_stays_zero(void **state)
{
    (void)state;
    float z[7] = {0};
    mg_vec_normalize(z, 7);
    for (int i = 0; i < 7; i++)
        assert_true(z[i] == 0.0f);
    mg_vec_normalize(z, 0); /* must not touch anything */
}

/* ------------------------------------------------------------------ top-k */

typedef struct cand {
    int64_t id;
    float score;
} cand;

/* The reference order: higher score first, then larger id first. */
static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->id != b->id) return a->id > b->id ? -1 : 1;
    return 0;
}

/* Pushes n candidates in the given order and checks the sorted top-k against
 * a full sort of the same candidates. */
static void check_topk(const cand *c, int n, int k)
{
    mg_topk t;
    mg_topk_init(&t, k);
    for (int i = 0; i < n; i++)
        mg_topk_push(&t, c[i].id, c[i].score);
    mg_topk_sort(&t);

    cand *ref = malloc(sizeof(cand) * (size_t)(n ? n : 1));
    memcpy(ref, c, sizeof(cand) * (size_t)n);
    qsort(ref, (size_t)n, sizeof(cand), cand_cmp);

    int want = n < k ? n : k;
    assert_int_equal(t.count, want);
    for (int i = 0; i < want; i++) {
        assert_true(t.ids[i] == ref[i].id);
        assert_true(t.scores[i] == ref[i].score);
    }
    free(ref);
    mg_topk_free(&t);
}

static void test_topk_random_against_sort(void **state)
{
    (void)state;
    enum { N = 2000 };
    cand *c = malloc(sizeof(cand) * N);

    for (int round = 0; round < 20; round++) {
        int n = 1 + (int)(rng_next() % N);
        for (int i = 0; i < n; i++) {
            c[i].id = (int64_t)i * 7 + (round % 3); /* distinct ids */
            /* Half the rounds draw from few values, to force many ties. */
            c[i].score = round % 2 ? rng_float() : (float)(rng_next() % 8) / 8.0f;
        }
        /* Shuffle so insertion order does not follow id order. */
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next() % (uint32_t)(i + 1));
            cand tmp = c[i];
            c[i] = c[j];
            c[j] = tmp;
        }
        static const int ks[] = {1, 2, 5, 10, 64};
        for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++)
            check_topk(c, n, ks[ki]);
        check_topk(c, n, n);
        check_topk(c, n, n + 10);
    }
    free(c);
}

static void test_topk_k_larger_than_n(void **state)
{
    (void)state;
    mg_topk t;
    mg_topk_init(&t, 10);
    mg_topk_push(&t, 1, 0.5f);
    mg_topk_push(&t, 2, 0.9f);
    mg_topk_push(&t, 3, -0.1f);
    mg_topk_sort(&t);
    assert_int_equal(t.count, 3);
    assert_true(t.ids[0] == 2 && t.ids[1] == 1 && t.ids[2] == 3);
    mg_topk_free(&t);
    mg_topk_free(&t); /* freeing twice is allowed */

    mg_topk_init(&t, 4); /* nothing pushed */
    mg_topk_sort(&t);
    assert_int_equal(t.count, 0);
    mg_topk_free(&t);
}

static void test_topk_ties_prefer_newer(void **state)
{
    (void)state;
    mg_topk t;
    mg_topk_init(&t, 2);
    mg_topk_push(&t, 5, 0.7f);
    mg_topk_push(&t, 9, 0.7f);
    mg_topk_push(&t, 1, 0.7f); /* older than both kept: rejected */
    mg_topk_push(&t, 7, 0.7f); /* newer than 5: replaces it */
    mg_topk_sort(&t);
    assert_int_equal(t.count, 2);
    assert_true(t.ids[0] == 9 && t.ids[1] == 7);
    mg_topk_free(&t);
}

static void test_topk_edge_inputs(void **state)
{
    (void)state;
    mg_topk t;
    mg_topk_init(&t, 0); /* treated as 1 */
    assert_int_equal(t.k, 1);
    mg_topk_push(&t, 1, NAN); /* ignored */
    assert_int_equal(t.count, 0);
    mg_topk_push(&t, 2, -INFINITY);
    mg_topk_push(&t, 3, NAN);
    mg_topk_push(&t, 4, 1e30f);
    mg_topk_sort(&t);
    assert_int_equal(t.count, 1);
    assert_true(t.ids[0] == 4);
    mg_topk_free(&t);
}

/* ------------------------------------------------------------------ blobs */

static void test_blob_round_trip(void **state)
{
    (void)state;
    float v[9] = {1.0f, -2.5f, 0.0f, -0.0f, 3.14159f, 1e-38f, 0.02f, INFINITY, 0.1f};
    assert_int_equal(mg_vec_blob_size(9), 17);
    unsigned char blob[17 + 1];
    float back[9];

    mg_vec_to_blob(v, 9, blob);
    assert_int_equal(mg_vec_blob_dim(blob, 17), 9);
    assert_int_equal(mg_vec_from_blob(blob, 17, back, 9), 1);
    /* Within half a step of the largest finite element (3.14159 / 127). */
    float step = 3.14159f / 127;
    for (int i = 0; i < 9; i++) {
        float want = isfinite(v[i]) ? v[i] : 0.0f; /* not finite: stored as 0 */
        assert_true(fabsf(back[i] - want) <= step / 2 + 1e-6f);
    }
    assert_true(fabsf(back[4] - 3.14159f) < 1e-5f); /* the largest is one whole step count */
    assert_true(back[2] == 0.0f && back[5] == 0.0f);
    assert_true(back[1] < -2.45f && back[1] > -2.55f);

    /* Unaligned source. */
    float again[9];
    memmove(blob + 1, blob, 17);
    assert_int_equal(mg_vec_from_blob(blob + 1, 17, again, 9), 1);
    assert_memory_equal(back, again, sizeof back);

    /* All zeros stay zeros; a unit vector's cosine with itself stays ~1. */
    float zero[4] = {0}, z[4] = {1, 1, 1, 1};
    unsigned char zb[12];
    mg_vec_to_blob(zero, 4, zb);
    assert_int_equal(mg_vec_from_blob(zb, 12, z, 4), 1);
    for (int i = 0; i < 4; i++)
        assert_true(z[i] == 0.0f);
    float u[64], ub[64];
    unsigned char b64[72];
    for (int i = 0; i < 64; i++)
        u[i] = (float)((i * 37) % 11) - 5.0f;
    mg_vec_normalize(u, 64);
    mg_vec_to_blob(u, 64, b64);
    assert_int_equal(mg_vec_from_blob(b64, 72, ub, 64), 1);
    assert_true(fabsf(mg_vec_dot(u, ub, 64) - 1.0f) < 2e-3f);
}

/* BLOBs stored before the one-byte format are still read, bit-exact. */
static void test_blob_legacy_float32(void **state)
{
    (void)state;
    float v[9] = {1.0f, -2.5f, 0.0f, -0.0f, 3.14159f, 1e-38f, 1e38f, 0.5f, 0.1f};
    unsigned char blob[4 * 9 + 1];
    float back[9];
    float32_blob(v, 9, blob);
    assert_int_equal(mg_vec_blob_dim(blob, 36), 9);
    assert_int_equal(mg_vec_from_blob(blob, 36, back, 9), 1);
    assert_memory_equal(v, back, sizeof v); /* including -0.0 */
    memmove(blob + 1, blob, 36);
    memset(back, 0, sizeof back);
    assert_int_equal(mg_vec_from_blob(blob + 1, 36, back, 9), 1);
    assert_memory_equal(v, back, sizeof v);
}

static void test_blob_size_mismatch(void **state)
{
    (void)state;
    unsigned char blob[16] = {0};
    float out[4] = {7, 7, 7, 7};

    assert_int_equal(mg_vec_from_blob(blob, 15, out, 4), 0);
    assert_int_equal(mg_vec_from_blob(blob, 16, out, 3), 0);
    assert_int_equal(mg_vec_from_blob(blob, -4, out, -1), 0);
    assert_int_equal(mg_vec_blob_dim(blob, 15), 0);
    assert_int_equal(mg_vec_blob_dim(NULL, 16), 0);
    for (int i = 0; i < 4; i++)
        assert_true(out[i] == 7.0f);                         /* untouched */
    assert_int_equal(mg_vec_from_blob(blob, 16, out, 4), 1); /* float32 zeros */
    assert_true(out[0] == 0.0f);

    /* A one-byte BLOB is 8 + dim bytes: 16 of them hold 8 dimensions, not 4
     * floats; and one with a scale that is not finite is refused. */
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[8];
    unsigned char q[16];
    mg_vec_to_blob(v, 8, q);
    assert_int_equal(mg_vec_blob_dim(q, 16), 8);
    assert_int_equal(mg_vec_from_blob(q, 16, out, 4), 0);
    assert_int_equal(mg_vec_from_blob(q, 16, w, 9), 0);
    memset(q + 4, 0xff, 4); /* a NaN scale */
    assert_int_equal(mg_vec_from_blob(q, 16, w, 8), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_matches_naive),
        cmocka_unit_test(test_dot_exact_small),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_normalize_zero_stays_zero),
        cmocka_unit_test(test_topk_random_against_sort),
        cmocka_unit_test(test_topk_k_larger_than_n),
        cmocka_unit_test(test_topk_ties_prefer_newer),
        cmocka_unit_test(test_topk_edge_inputs),
        cmocka_unit_test(test_blob_round_trip),
        cmocka_unit_test(test_blob_legacy_float32),
        cmocka_unit_test(test_blob_size_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
