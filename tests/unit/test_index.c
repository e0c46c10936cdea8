/*
 * test_index.c - the vector index (src/index/): exact search, HNSW recall,
 * deletes, persistence, crash detection, opening a file in place, the
 * append log.
 *
 * Every answer is checked against brute force (mg_vec_dot + mg_topk over the
 * same vectors), on clustered data from a fixed seed: a Gaussian mixture on
 * the unit sphere (~1,000 vectors a cluster, isotropic spread, as in
 * bench/bench_index.c), so failures reproduce.
 *
 * Sizes: the recall test uses 20,000 x 384 in an optimized build and 2,000
 * under the sanitizers or without optimization, where the same work takes
 * 10-50x longer (MG_TEST_INDEX_N overrides either); the other tests that
 * build graphs shrink to a quarter there too.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#include "embed/vec.h"
#include "index/crc32c.h"
#include "index/index.h"
#include "index/index_impl.h"

#if defined(__SANITIZE_ADDRESS__) || !defined(__OPTIMIZE__)
#define SLOW_BUILD    1
#define DEFAULT_BIG_N 2000
#else
#define SLOW_BUILD    0
#define DEFAULT_BIG_N 20000
#endif

#define DIM  384
#define TOPK 10

/* ------------------------------------------------------------------ data */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_gauss(void)
{
    double u = ((double)(rng_next() >> 11) + 0.5) * 0x1.0p-53;
    double v = ((double)(rng_next() >> 11) + 0.5) * 0x1.0p-53;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* n vectors of a mixture of max(n / 1000, 4) clusters, plus nq queries from
 * the same mixture, in one array (queries at the end). Caller frees. */
static float *clustered(int n, int nq, int dim, uint64_t seed)
{
    rng_state = seed;
    int nc = n / 1000 > 4 ? n / 1000 : 4;
    float *centres = malloc(sizeof(float) * (size_t)nc * (size_t)dim);
    for (int c = 0; c < nc; c++) {
        for (int d = 0; d < dim; d++)
            centres[(size_t)c * (size_t)dim + (size_t)d] = (float)rng_gauss();
        mg_vec_normalize(centres + (size_t)c * (size_t)dim, dim);
    }
    float *v = malloc(sizeof(float) * (size_t)(n + nq) * (size_t)dim);
    double scale = 1.0 / sqrt((double)dim);
    for (int i = 0; i < n + nq; i++) {
        const float *c = centres + (size_t)(rng_next() % (uint64_t)nc) * (size_t)dim;
        float *p = v + (size_t)i * (size_t)dim;
        for (int d = 0; d < dim; d++)
            p[d] = (float)(c[d] + scale * rng_gauss());
        mg_vec_normalize(p, dim);
    }
    free(centres);
    return v;
}

/* Sizes of the other graph-building tests: a quarter when builds are slow. */
static int sized(int n)
{
    return SLOW_BUILD ? n / 4 : n;
}

static int big_n(void)
{
    const char *s = getenv("MG_TEST_INDEX_N");
    int n = s ? atoi(s) : 0;
    return n >= 100 ? n : DEFAULT_BIG_N;
}

/* The reference: top k by mg_vec_dot over vectors whose id i has live[i]
 * (or all when live is NULL); ids are row numbers plus id_base. */
static int brute_force(const float *base, int n, const uint8_t *live, int64_t id_base,
                       const float *q, int dim, int k, int64_t *ids, float *scores)
{
    mg_topk t;
    mg_topk_init(&t, k);
    for (int i = 0; i < n; i++)
        if (!live || live[i])
            mg_topk_push(&t, id_base + i, mg_vec_dot(q, base + (size_t)i * (size_t)dim, dim));
    mg_topk_sort(&t);
    int found = t.count;
    for (int i = 0; i < found; i++) {
        ids[i] = t.ids[i];
        if (scores) scores[i] = t.scores[i];
    }
    mg_topk_free(&t);
    return found;
}

static int overlap(const int64_t *a, int na, const int64_t *b, int nb)
{
    int hits = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (a[i] == b[j]) hits++;
    return hits;
}

/* Two rankings agree: same scores (up to kernel rounding) and the same ids,
 * except where a near-tie lets rounding swap neighbours. */
static void assert_same_ranking(const int64_t *ids, const float *sc, int n, const int64_t *ref,
                                const float *rsc, int rn)
{
    assert_int_equal(n, rn);
    for (int i = 0; i < n; i++) {
        assert_true(fabsf(sc[i] - rsc[i]) <= 1e-5f);
        if (ids[i] == ref[i]) continue;
        int tie = (i > 0 && fabsf(rsc[i] - rsc[i - 1]) <= 2e-5f) ||
                  (i + 1 < n && fabsf(rsc[i] - rsc[i + 1]) <= 2e-5f);
        assert_true(tie);
    }
}

static mg_index *build(const float *v, int n, int dim, const mg_index_params *p, int64_t id_base)
{
    mg_index *x;
    mg_error err = {0};
    assert_int_equal(mg_index_new(dim, p, &x, &err), MG_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(mg_index_add(x, id_base + i, v + (size_t)i * (size_t)dim, &err), MG_OK);
    return x;
}

static void assert_consistent(mg_index *x)
{
    mg_error err = {0};
    mg_status st = idx_check(x, &err);
    if (st != MG_OK) fprintf(stderr, "idx_check: %s\n", err.message);
    assert_int_equal(st, MG_OK);
}

/* Mean recall@10 of graph search at ef over nq queries against brute force. */
static double recall_at(mg_index *x, const float *base, int n, const uint8_t *live,
                        const float *queries, int nq, int ef)
{
    int hits = 0;
    mg_error err = {0};
    for (int i = 0; i < nq; i++) {
        const float *q = queries + (size_t)i * DIM;
        int64_t ids[TOPK], ref[TOPK];
        int found;
        assert_int_equal(mg_index_search(x, q, TOPK, ef, ids, NULL, &found, &err), MG_OK);
        int rn = brute_force(base, n, live, 0, q, DIM, TOPK, ref, NULL);
        hits += overlap(ids, found, ref, rn);
    }
    return hits / (double)(nq * TOPK);
}

/* ------------------------------------------------------------------ files */

static char home[64];

static int files_setup(void **state)
{
    (void)state;
    make_home(home, sizeof(home));
    return 0;
}

static int files_teardown(void **state)
{
    (void)state;
    remove_home(home);
    return 0;
}

static void path_in_home(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", home, name);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Where the sections of a file start, from its header, as index_file.c
 * documents the layout: each at the next multiple of 64 bytes. */
typedef struct sections {
    size_t ids, levels, states, codes, upper, vecs, links, end;
} sections;

static size_t up64(size_t v)
{
    return (v + 63) & ~(size_t)63;
}

static sections sections_of(const unsigned char *b)
{
    size_t dim = get_le(b + 16, 4), m = get_le(b + 20, 4), n = get_le(b + 40, 8);
    sections s;
    s.ids = up64(160);
    s.levels = up64(s.ids + 8 * n);
    s.states = up64(s.levels + n);
    s.codes = up64(s.states + n);
    s.upper = up64(s.codes + (dim + 7) / 8 * n);
    s.vecs = up64(s.upper + 4 * get_le(b + 80, 8));
    s.links = up64(s.vecs + 4 * dim * n);
    s.end = s.links + 4 * (1 + 2 * m) * n;
    return s;
}

/* Recomputes every checksum, so a crafted change reaches the deeper checks. */
static void reseal(unsigned char *b, size_t len)
{
    sections s = sections_of(b);
    assert_int_equal(s.end, len);
    put_le32(b + 128, mg_crc32c(0, b + 160, s.vecs - 160));
    put_le32(b + 140, mg_crc32c(0, b + s.vecs, len - s.vecs));
    put_le32(b + 156, mg_crc32c(0, b, 156));
}

static mg_status try_load(const char *path, int dim, mg_error *err)
{
    mg_index *x = (mg_index *)1;
    mg_status st = mg_index_load(path, dim, &x, err);
    if (st == MG_OK)
        mg_index_free(x);
    else
        assert_null(x);
    return st;
}

/* ------------------------------------------------------------------ API checks */

static void test_params_and_arguments(void **state)
{
    (void)state;
    mg_index *x = NULL;
    mg_error err = {0};
    assert_int_equal(mg_index_new(0, NULL, &x, &err), MG_ERR_USAGE);
    assert_null(x);
    assert_int_equal(mg_index_new(MG_INDEX_MAX_DIM + 1, NULL, &x, &err), MG_ERR_USAGE);
    mg_index_params p = {.m = 1};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "m = 1"));
    p = (mg_index_params){.m = MG_INDEX_MAX_M + 1};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_ERR_USAGE);
    p = (mg_index_params){.ef_construction = MG_INDEX_MAX_EF + 1};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_ERR_USAGE);
    p = (mg_index_params){.ef_search = -3};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_ERR_USAGE);
    p = (mg_index_params){.exact_below = -2};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_ERR_USAGE);
    p = (mg_index_params){.cleanup_ratio = -0.5};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_ERR_USAGE);

    /* Zero fields take the defaults. */
    p = (mg_index_params){.m = 8};
    assert_int_equal(mg_index_new(8, &p, &x, &err), MG_OK);
    mg_index_stats st;
    mg_index_get_stats(x, &st);
    mg_index_params def;
    mg_index_params_default(&def);
    assert_int_equal(st.params.m, 8);
    assert_int_equal(st.params.ef_construction, def.ef_construction);
    assert_int_equal(st.params.ef_search, def.ef_search);
    assert_int_equal(st.dim, 8);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.max_level, -1);
    int64_t max_id = 77;
    assert_int_equal(mg_index_max_id(x, &max_id), 0);
    assert_true(max_id == 77);

    /* Searching an empty index finds nothing. */
    float v[8] = {1, 0, 0, 0, 0, 0, 0, 0}, bad[8] = {0};
    int64_t ids[4];
    float sc[4];
    int found = -1;
    assert_int_equal(mg_index_search(x, v, 4, 0, ids, sc, &found, &err), MG_OK);
    assert_int_equal(found, 0);

    /* Bad vectors and arguments. */
    bad[3] = NAN;
    assert_int_equal(mg_index_add(x, 1, bad, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "NaN"));
    bad[3] = INFINITY;
    assert_int_equal(mg_index_add(x, 1, bad, &err), MG_ERR_USAGE);
    assert_int_equal(mg_index_add(x, 1, NULL, &err), MG_ERR_USAGE);
    assert_int_equal(mg_index_add(x, 1, v, &err), MG_OK);
    assert_int_equal(mg_index_add(x, 1, v, &err), MG_ERR_EXISTS);
    assert_int_equal(mg_index_remove(x, 2, &err), MG_ERR_NOT_FOUND);
    assert_int_equal(mg_index_search(x, v, 0, 0, ids, sc, &found, &err), MG_ERR_USAGE);
    assert_int_equal(mg_index_search(x, v, MG_INDEX_MAX_K + 1, 0, ids, sc, &found, &err),
                     MG_ERR_USAGE);
    assert_int_equal(mg_index_search(x, v, 4, MG_INDEX_MAX_EF + 1, ids, sc, &found, &err),
                     MG_ERR_USAGE);
    assert_int_equal(mg_index_search(x, bad, 4, 0, ids, sc, &found, &err), MG_ERR_USAGE);
    assert_int_equal(mg_index_search_exact(x, v, 4, NULL, sc, &found, &err), MG_ERR_USAGE);

    /* An all-zero vector is valid and scores 0. */
    float zero[8] = {0};
    assert_int_equal(mg_index_add(x, 2, zero, &err), MG_OK);
    assert_int_equal(mg_index_search(x, v, 4, 0, ids, sc, &found, &err), MG_OK);
    assert_int_equal(found, 2);
    assert_true(ids[0] == 1 && sc[0] == 1.0f);
    assert_true(ids[1] == 2 && sc[1] == 0.0f);
    assert_int_equal(mg_index_max_id(x, &max_id), 1);
    assert_true(max_id == 2);
    assert_true(mg_index_contains(x, 2));
    assert_false(mg_index_contains(x, 3));
    mg_index_free(x);
    mg_index_free(NULL);
}

/* ------------------------------------------------------------------ exact search */

static void test_exact_matches_brute_force(void **state)
{
    (void)state;
    /* Odd sizes exercise the kernel's tails. */
    static const int dims[] = {1, 7, 8, 31, 33, 384, 385};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        int dim = dims[d], n = sized(700), nq = 20;
        float *v = clustered(n, nq, dim, 100 + d);
        mg_index *x = build(v, n, dim, NULL, 1000); /* 700 <= exact_below: exact */
        for (int i = 0; i < nq; i++) {
            const float *q = v + (size_t)(n + i) * (size_t)dim;
            int64_t ids[TOPK], ref[TOPK];
            float sc[TOPK], rsc[TOPK];
            int found;
            mg_error err = {0};
            assert_int_equal(mg_index_search(x, q, TOPK, 0, ids, sc, &found, &err), MG_OK);
            int rn = brute_force(v, n, NULL, 1000, q, dim, TOPK, ref, rsc);
            assert_same_ranking(ids, sc, found, ref, rsc, rn);
        }
        /* k larger than the index: everything, best first. */
        int64_t *ids = malloc(sizeof(int64_t) * 1000);
        float *sc = malloc(sizeof(float) * 1000);
        int found;
        assert_int_equal(mg_index_search(x, v, 1000, 0, ids, sc, &found, NULL), MG_OK);
        assert_int_equal(found, n);
        for (int i = 1; i < found; i++)
            assert_true(sc[i] <= sc[i - 1]);
        free(ids);
        free(sc);
        mg_index_free(x);
        free(v);
    }
}

static void test_exact_on_large_index(void **state)
{
    (void)state;
    int n = sized(5000), nq = 20;
    float *v = clustered(n, nq, DIM, 7);
    mg_index_params p = {.exact_below = -1};
    mg_index *x = build(v, n, DIM, &p, 0);
    for (int i = 0; i < nq; i++) {
        const float *q = v + (size_t)(n + i) * DIM;
        int64_t ids[TOPK], ref[TOPK];
        float sc[TOPK], rsc[TOPK];
        int found;
        assert_int_equal(mg_index_search_exact(x, q, TOPK, ids, sc, &found, NULL), MG_OK);
        int rn = brute_force(v, n, NULL, 0, q, DIM, TOPK, ref, rsc);
        assert_same_ranking(ids, sc, found, ref, rsc, rn);
    }
    mg_index_free(x);
    free(v);
}

/* ------------------------------------------------------------------ HNSW */

static void test_hnsw_recall(void **state)
{
    (void)state;
    int n = big_n(), nq = 200;
    float *v = clustered(n, nq, DIM, 11);
    mg_index_params p = {.exact_below = -1};
    mg_index *x = build(v, n, DIM, &p, 0);
    assert_consistent(x);
    mg_index_stats st;
    mg_index_get_stats(x, &st);
    assert_int_equal(st.count, n);
    assert_true(st.max_level >= 1);
    /* Level 0 must be (nearly) one connected graph. */
    assert_true(hnsw_reachable(x) >= n - n / 500);

    double r = recall_at(x, v, n, NULL, v + (size_t)n * DIM, nq, 64);
    fprintf(stderr, "  recall@10 at ef 64, %d x %d: %.4f\n", n, DIM, r);
    assert_true(r >= 0.95);
    /* A larger ef must not do worse. */
    assert_true(recall_at(x, v, n, NULL, v + (size_t)n * DIM, nq, 200) >= r - 0.005);

    /* Stored vectors find themselves first (a rare one may be unreachable). */
    int self = 0;
    for (int i = 0; i < 50; i++) {
        int64_t ids[1];
        int found, at = i * (n / 50);
        assert_int_equal(mg_index_search(x, v + (size_t)at * DIM, 1, 64, ids, NULL, &found, NULL),
                         MG_OK);
        assert_int_equal(found, 1);
        self += ids[0] == at;
    }
    assert_true(self >= 48);

    /* Memory: vectors once, compact links. */
    assert_true((double)st.memory_bytes <= 1.3 * (double)st.vector_bytes);
    mg_index_free(x);
    free(v);
}

static void test_same_seed_same_graph(void **state)
{
    (void)state;
    int n = sized(3000), nq = 30;
    float *v = clustered(n, nq, DIM, 5);
    mg_index_params p = {.exact_below = -1, .seed = 99};
    mg_index *a = build(v, n, DIM, &p, 0), *b = build(v, n, DIM, &p, 0);
    for (int i = 0; i < nq; i++) {
        int64_t ia[TOPK], ib[TOPK];
        float sa[TOPK], sb[TOPK];
        int fa, fb;
        const float *q = v + (size_t)(n + i) * DIM;
        mg_index_search(a, q, TOPK, 16, ia, sa, &fa, NULL);
        mg_index_search(b, q, TOPK, 16, ib, sb, &fb, NULL);
        assert_int_equal(fa, fb);
        assert_memory_equal(ia, ib, sizeof(int64_t) * (size_t)fa);
        assert_memory_equal(sa, sb, sizeof(float) * (size_t)fa);
    }
    assert_memory_equal(a->levels, b->levels, (size_t)n);
    mg_index_free(a);
    mg_index_free(b);
    free(v);
}

/* A lazy index stores vectors without linking them while it answers
 * exactly, catches up from 3/4 of exact_below, and is fully linked once it
 * crosses the threshold; its answers are right all the way. */
static void test_lazy_graph(void **state)
{
    (void)state;
    const int below = 800, n = 1200, nq = 40;
    float *v = clustered(n, nq, DIM, 31);
    const float *queries = v + (size_t)n * DIM;
    mg_index_params p = {.exact_below = below, .lazy_graph = 1};
    mg_index *x = build(v, 600, DIM, &p, 0);
    mg_index_stats st;
    mg_index_get_stats(x, &st);
    assert_int_equal(st.unlinked, 600);
    assert_int_equal(st.max_level, -1);
    assert_int_equal(hnsw_reachable(x), 0);
    assert_consistent(x);
    for (int i = 0; i < nq; i++) { /* exact while small */
        int64_t ids[TOPK], ref[TOPK];
        float sc[TOPK], rsc[TOPK];
        int found;
        assert_int_equal(
            mg_index_search(x, queries + (size_t)i * DIM, TOPK, 0, ids, sc, &found, NULL), MG_OK);
        int rn = brute_force(v, 600, NULL, 0, queries + (size_t)i * DIM, DIM, TOPK, ref, rsc);
        assert_same_ranking(ids, sc, found, ref, rsc, rn);
    }

    /* Deletes before anything is linked: tombstones, then free slots that
     * the next adds take, still unlinked. */
    for (int i = 0; i < 600; i += 5)
        assert_int_equal(mg_index_remove(x, i, NULL), MG_OK);
    mg_index_cleanup(x);
    for (int i = 0; i < 600; i += 5)
        assert_int_equal(mg_index_add(x, i, v + (size_t)i * DIM, NULL), MG_OK);
    mg_index_get_stats(x, &st);
    assert_int_equal(st.unlinked, 600);
    assert_int_equal(st.free_slots, 0);
    assert_consistent(x);

    /* Catching up: each add that leaves more than 600 live (3/4 of 800)
     * links 8 stored vectors. */
    assert_int_equal(mg_index_add(x, 600, v + (size_t)600 * DIM, NULL), MG_OK);
    assert_int_equal(mg_index_add(x, 601, v + (size_t)601 * DIM, NULL), MG_OK);
    mg_index_get_stats(x, &st);
    assert_int_equal(st.unlinked, 602 - 2 * 8);
    assert_true(st.max_level >= 0);
    assert_consistent(x);
    for (int i = 602; i <= below; i++)
        assert_int_equal(mg_index_add(x, i, v + (size_t)i * DIM, NULL), MG_OK);
    mg_index_get_stats(x, &st);
    assert_int_equal(st.unlinked, 0);
    assert_int_equal(hnsw_reachable(x), below + 1);
    for (int i = below + 1; i < n; i++)
        assert_int_equal(mg_index_add(x, i, v + (size_t)i * DIM, NULL), MG_OK);
    assert_consistent(x);
    assert_int_equal(hnsw_reachable(x), n);
    double r = recall_at(x, v, n, NULL, queries, nq, 64);
    printf("  recall@10 at ef 64 of a lazy index past its threshold: %.4f\n", r);
    assert_true(r >= 0.9);
    mg_index_free(x);
    free(v);
}

/* A lazy index saved with a backlog keeps it; one that finds itself above
 * its threshold when loaded (here: a file edited to a lower threshold)
 * links the backlog before its first graph search. */
static void test_lazy_graph_file(void **state)
{
    (void)state;
    const int n = 700, nq = 20;
    float *v = clustered(n, nq, DIM, 32);
    const float *queries = v + (size_t)n * DIM;
    char path[128];
    path_in_home(path, sizeof(path), "lazy.idx");
    mg_index_params p = {.exact_below = 4000, .lazy_graph = 1};
    mg_index *x = build(v, n, DIM, &p, 0);
    assert_int_equal(mg_index_save(x, path, NULL), MG_OK);
    mg_index_free(x);

    mg_index_stats st;
    assert_int_equal(mg_index_load(path, DIM, &x, NULL), MG_OK);
    mg_index_get_stats(x, &st);
    assert_int_equal(st.unlinked, n);
    assert_int_equal(st.params.lazy_graph, 1);
    mg_index_free(x);

    size_t len;
    unsigned char *b = read_all(path, &len);
    put_le32(b + 32, 100); /* exact_below */
    reseal(b, len);
    write_all(path, b, len);
    free(b);
    assert_int_equal(mg_index_load(path, DIM, &x, NULL), MG_OK);
    double r = recall_at(x, v, n, NULL, queries, nq, 64);
    mg_index_get_stats(x, &st);
    assert_int_equal(st.unlinked, 0);
    assert_int_equal(hnsw_reachable(x), n);
    assert_consistent(x);
    assert_true(r >= 0.9);
    mg_index_free(x);
    free(v);
}

/* ------------------------------------------------------------------ deletes */

/* Removes a random 30% and checks: removed ids are never returned (graph
 * and exact), recall over the survivors holds, counts and invariants. */
static void check_deletes(double cleanup_ratio)
{
    int n = sized(6000), nq = 100;
    float *v = clustered(n, nq, DIM, 21);
    mg_index_params p = {.exact_below = -1, .cleanup_ratio = cleanup_ratio};
    mg_index *x = build(v, n, DIM, &p, 0);
    uint8_t *live = malloc((size_t)n);
    memset(live, 1, (size_t)n);
    int removed = 0;
    mg_error err = {0};
    while (removed < n * 3 / 10) {
        int i = (int)(rng_next() % (uint64_t)n);
        if (!live[i]) continue;
        assert_int_equal(mg_index_remove(x, i, &err), MG_OK);
        assert_int_equal(mg_index_remove(x, i, &err), MG_ERR_NOT_FOUND);
        assert_false(mg_index_contains(x, i));
        live[i] = 0;
        removed++;
    }
    assert_consistent(x);
    assert_int_equal(mg_index_count(x), n - removed);

    const float *queries = v + (size_t)n * DIM;
    for (int i = 0; i < nq; i++) {
        int64_t ids[50];
        int found;
        assert_int_equal(
            mg_index_search(x, queries + (size_t)i * DIM, 50, 64, ids, NULL, &found, &err), MG_OK);
        assert_int_equal(found, 50);
        for (int j = 0; j < found; j++)
            assert_true(live[ids[j]]);
        assert_int_equal(
            mg_index_search_exact(x, queries + (size_t)i * DIM, 50, ids, NULL, &found, &err),
            MG_OK);
        for (int j = 0; j < found; j++)
            assert_true(live[ids[j]]);
    }
    double r = recall_at(x, v, n, live, queries, nq, 64);
    fprintf(stderr, "  recall@10 at ef 64 after 30%% deletes (cleanup_ratio %.2f): %.4f\n",
            cleanup_ratio, r);
    assert_true(r >= 0.95);

    if (cleanup_ratio >= 1.0) {
        /* Only tombstones so far; an explicit cleanup frees them. */
        mg_index_stats st;
        mg_index_get_stats(x, &st);
        assert_int_equal(st.deleted, removed);
        mg_index_cleanup(x);
        mg_index_get_stats(x, &st);
        assert_int_equal(st.deleted, 0);
        assert_int_equal(st.free_slots, removed);
        assert_consistent(x);
        assert_true(hnsw_reachable(x) >= (n - removed) - (n - removed) / 500);
        r = recall_at(x, v, n, live, queries, nq, 64);
        fprintf(stderr, "  recall@10 at ef 64 after the cleanup: %.4f\n", r);
        assert_true(r >= 0.95);
    }

    /* Re-adding removed ids reuses their slots: no growth. */
    mg_index_cleanup(x);
    size_t mem = mg_index_memory(x);
    int32_t slots = x->n;
    for (int i = 0; i < n; i++) {
        if (live[i]) continue;
        assert_int_equal(mg_index_add(x, i, v + (size_t)i * DIM, &err), MG_OK);
        live[i] = 1;
    }
    assert_int_equal(x->n, slots);
    assert_true(mg_index_memory(x) <= mem + mem / 100);
    assert_int_equal(mg_index_count(x), n);
    assert_consistent(x);
    r = recall_at(x, v, n, live, queries, nq, 64);
    fprintf(stderr, "  recall@10 at ef 64 after re-adding them: %.4f\n", r);
    assert_true(r >= 0.95);
    free(live);
    mg_index_free(x);
    free(v);
}

static void test_delete_with_cleanups(void **state)
{
    (void)state;
    check_deletes(0.1); /* cleanups run as tombstones pass 10% */
}

static void test_delete_tombstones_only(void **state)
{
    (void)state;
    check_deletes(1.0); /* no automatic cleanup */
}

static void test_delete_everything(void **state)
{
    (void)state;
    int n = 300;
    float *v = clustered(n, 1, 16, 3);
    mg_index_params p = {.exact_below = -1};
    mg_index *x = build(v, n, 16, &p, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(mg_index_remove(x, i, NULL), MG_OK);
    mg_index_cleanup(x);
    assert_consistent(x);
    int64_t ids[4];
    int found = -1;
    assert_int_equal(mg_index_search(x, v, 4, 0, ids, NULL, &found, NULL), MG_OK);
    assert_int_equal(found, 0);
    assert_int_equal(mg_index_add(x, 5, v, NULL), MG_OK);
    assert_int_equal(mg_index_search(x, v, 4, 0, ids, NULL, &found, NULL), MG_OK);
    assert_int_equal(found, 1);
    assert_true(ids[0] == 5);
    mg_index_free(x);
    free(v);
}

/* ------------------------------------------------------------------ persistence */

static void same_results_dim(mg_index *a, mg_index *b, const float *queries, int nq, int dim)
{
    for (int i = 0; i < nq; i++) {
        const float *q = queries + (size_t)i * (size_t)dim;
        int64_t ia[TOPK], ib[TOPK];
        float sa[TOPK], sb[TOPK];
        int fa, fb;
        assert_int_equal(mg_index_search(a, q, TOPK, 64, ia, sa, &fa, NULL), MG_OK);
        assert_int_equal(mg_index_search(b, q, TOPK, 64, ib, sb, &fb, NULL), MG_OK);
        assert_int_equal(fa, fb);
        assert_memory_equal(ia, ib, sizeof(int64_t) * (size_t)fa);
        assert_memory_equal(sa, sb, sizeof(float) * (size_t)fa);
    }
}

static void assert_same_results(mg_index *a, mg_index *b, const float *queries, int nq)
{
    same_results_dim(a, b, queries, nq, DIM);
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    int n = sized(4000), more = n / 8, nq = 50;
    float *v = clustered(n + more, nq, DIM, 31);
    const float *queries = v + (size_t)(n + more) * DIM;
    /* Tombstones, free slots and live vectors all in the file. */
    mg_index_params p = {.exact_below = -1, .cleanup_ratio = 1.0, .m = 12, .seed = 4};
    mg_index *x = build(v, n, DIM, &p, 1);
    for (int i = 1; i <= n / 10; i++)
        assert_int_equal(mg_index_remove(x, i * 7, NULL), MG_OK);
    mg_index_cleanup(x);
    for (int i = 1; i <= n / 20; i++)
        if (mg_index_contains(x, i * 11 + 1))
            assert_int_equal(mg_index_remove(x, i * 11 + 1, NULL), MG_OK);
    assert_true(x->dead > n / 30 && x->n_free == n / 10);

    char path[128];
    path_in_home(path, sizeof(path), "round.idx");
    mg_error err = {0};
    assert_int_equal(mg_index_save(x, path, &err), MG_OK);
    mg_index *y;
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_consistent(y);

    mg_index_stats sx, sy;
    mg_index_get_stats(x, &sx);
    mg_index_get_stats(y, &sy);
    assert_int_equal(sx.count, sy.count);
    assert_int_equal(sx.deleted, sy.deleted);
    assert_int_equal(sx.free_slots, sy.free_slots);
    assert_int_equal(sx.max_level, sy.max_level);
    assert_true(sx.max_id == sy.max_id && sy.has_max_id);
    assert_int_equal(sy.params.m, 12);
    assert_true(sy.params.seed == 4 && sy.params.cleanup_ratio == 1.0);
    assert_same_results(x, y, queries, nq);

    /* The live ids, for reconciling with the source of truth. */
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
    assert_int_equal(mg_index_ids(y, ids, n), sx.count);
    assert_int_equal(mg_index_ids(y, ids, 3), sx.count); /* short buffer: count only */
    assert_int_equal(mg_index_ids(y, ids, n), sx.count);
    int64_t live = 0;
    for (int64_t id = 1; id <= n; id++)
        live += mg_index_contains(y, id);
    assert_int_equal(live, sx.count);
    for (int64_t i = 0; i < sx.count; i++)
        assert_true(mg_index_contains(y, ids[i]) && !(ids[i] % 7 == 0 && ids[i] <= 7 * (n / 10)));
    free(ids);

    /* Both go on identically: the level generator's state was saved. */
    for (int i = n; i < n + more; i++) {
        assert_int_equal(mg_index_add(x, i + 1, v + (size_t)i * DIM, NULL), MG_OK);
        assert_int_equal(mg_index_add(y, i + 1, v + (size_t)i * DIM, NULL), MG_OK);
    }
    assert_same_results(x, y, queries, nq);
    assert_memory_equal(x->levels, y->levels, (size_t)x->n);

    /* An empty index round-trips too. */
    mg_index *e, *e2;
    assert_int_equal(mg_index_new(DIM, NULL, &e, NULL), MG_OK);
    assert_int_equal(mg_index_save(e, path, &err), MG_OK);
    assert_int_equal(mg_index_load(path, DIM, &e2, &err), MG_OK);
    assert_int_equal(mg_index_count(e2), 0);
    int64_t max_id;
    assert_int_equal(mg_index_max_id(e2, &max_id), 0);
    mg_index_free(e);
    mg_index_free(e2);
    mg_index_free(x);
    mg_index_free(y);
    free(v);
}

/* A file saved after rows 1..1000 of a table that now has 1..1500: the
 * header's max id says which rows to re-add, and the result is the index
 * that saw all 1500 (same seed, same order). */
static void test_stale_file_replay(void **state)
{
    (void)state;
    int total = sized(3000), saved = total * 2 / 3, nq = 40;
    float *v = clustered(total, nq, DIM, 41);
    mg_index_params p = {.exact_below = -1};
    mg_index *x = build(v, saved, DIM, &p, 1);
    char path[128];
    path_in_home(path, sizeof(path), "stale.idx");
    assert_int_equal(mg_index_save(x, path, NULL), MG_OK);
    mg_index_free(x);

    mg_index *y;
    assert_int_equal(mg_index_load(path, DIM, &y, NULL), MG_OK);
    int64_t max_id;
    assert_int_equal(mg_index_max_id(y, &max_id), 1);
    assert_true(max_id == saved);
    for (int64_t id = max_id + 1; id <= total; id++)
        assert_int_equal(mg_index_add(y, id, v + (size_t)(id - 1) * DIM, NULL), MG_OK);

    mg_index *full = build(v, total, DIM, &p, 1);
    assert_same_results(full, y, v + (size_t)total * DIM, nq);
    mg_index_free(full);
    mg_index_free(y);
    free(v);
}

static void test_dimension_mismatch(void **state)
{
    (void)state;
    float *v = clustered(50, 0, 64, 1);
    mg_index *x = build(v, 50, 64, NULL, 0);
    char path[128];
    path_in_home(path, sizeof(path), "dim.idx");
    assert_int_equal(mg_index_save(x, path, NULL), MG_OK);
    mg_error err = {0};
    assert_int_equal(try_load(path, 384, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "64-dimensional"));
    assert_non_null(strstr(err.message, "384"));
    assert_int_equal(try_load(path, 0, &err), MG_ERR_USAGE);
    assert_int_equal(try_load(path, 64, &err), MG_OK);
    mg_index_free(x);
    free(v);
}

/* Saves a small index with tombstones and upper levels; returns the file. */
static unsigned char *saved_file(const char *path, size_t *len)
{
    float *v = clustered(600, 0, 16, 2);
    mg_index_params p = {.exact_below = -1, .m = 4, .cleanup_ratio = 1.0};
    mg_index *x = build(v, 600, 16, &p, 0);
    for (int i = 0; i < 600; i += 9)
        mg_index_remove(x, i, NULL);
    assert_int_equal(mg_index_save(x, path, NULL), MG_OK);
    assert_true(x->max_level >= 2);
    mg_index_free(x);
    free(v);
    return read_all(path, len);
}

static void expect_corrupt(const char *path, const unsigned char *b, size_t len, const char *what)
{
    write_all(path, b, len);
    mg_error err = {0};
    mg_status st = try_load(path, 16, &err);
    if (st != MG_ERR_CORRUPT) fprintf(stderr, "%s: got %d (%s)\n", what, st, err.message);
    assert_int_equal(st, MG_ERR_CORRUPT);
    assert_true(err.message[0] != '\0');
}

static void test_damaged_files(void **state)
{
    (void)state;
    char path[128], bad[128];
    path_in_home(path, sizeof(path), "good.idx");
    path_in_home(bad, sizeof(bad), "bad.idx");
    size_t len;
    unsigned char *good = saved_file(path, &len);
    unsigned char *b = malloc(len + 16);
    mg_error err = {0};
    mg_index *x0 = NULL;

    assert_int_equal(try_load(path, 16, &err), MG_OK);
    assert_int_equal(try_load(bad, 16, &err), MG_ERR_NOT_FOUND);
    assert_int_equal(try_load(home, 16, &err), MG_ERR_IO); /* a directory */

    /* Torn writes: every kind of truncation. */
    size_t cuts[] = {0, 1, 100, 159, 160, 161, len / 3, len / 2, len - 4, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        expect_corrupt(bad, good, cuts[i], "truncated");
    write_all(bad, good, len / 2);
    try_load(bad, 16, &err);
    assert_non_null(strstr(err.message, "truncated"));

    /* Trailing garbage. */
    memcpy(b, good, len);
    memset(b + len, 0xab, 16);
    expect_corrupt(bad, b, len + 16, "longer");

    /* Not an index at all. */
    memset(b, 'x', len);
    expect_corrupt(bad, b, len, "garbage");
    try_load(bad, 16, &err);
    assert_non_null(strstr(err.message, "magic"));

    /* A newer format version, and an older one (unaligned, rebuilt by the
     * index's owner), with valid header checksums. */
    memcpy(b, good, len);
    put_le32(b + 8, 4);
    reseal(b, len);
    expect_corrupt(bad, b, len, "version");
    try_load(bad, 16, &err);
    assert_non_null(strstr(err.message, "version 4"));
    put_le32(b + 8, 2);
    reseal(b, len);
    expect_corrupt(bad, b, len, "old version");
    assert_int_equal(mg_index_open(bad, 16, &x0, &err), MG_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "version 2"));

    /* The graph's line: beyond the slots, or below a slot that has links. */
    memcpy(b, good, len);
    put_le32(b + 136, 601);
    reseal(b, len);
    expect_corrupt(bad, b, len, "linked beyond the slots");
    memcpy(b, good, len);
    put_le32(b + 136, 300);
    reseal(b, len);
    expect_corrupt(bad, b, len, "links above the line");
    memcpy(b, good, len);
    put_le32(b + 132, 2);
    reseal(b, len);
    expect_corrupt(bad, b, len, "lazy_graph flag");

    /* Any single damaged byte is caught by a checksum. */
    uint64_t seed = 77;
    for (int i = 0; i < 300; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t at = (size_t)(seed >> 33) % len;
        memcpy(b, good, len);
        b[at] ^= (unsigned char)(1 + (seed >> 20) % 255);
        expect_corrupt(bad, b, len, "flipped byte");
    }

    /* A stale header: the header of one save over the payload of another
     * save of the same index with more vectors. */
    float *v = clustered(700, 0, 16, 2);
    mg_index_params p = {.exact_below = -1, .m = 4, .cleanup_ratio = 1.0};
    mg_index *x = build(v, 600, 16, &p, 0);
    char path2[128];
    path_in_home(path2, sizeof(path2), "later.idx");
    for (int i = 600; i < 700; i++)
        mg_index_add(x, i, v + (size_t)i * 16, NULL);
    assert_int_equal(mg_index_save(x, path2, NULL), MG_OK);
    size_t len2;
    unsigned char *later = read_all(path2, &len2);
    unsigned char *mix = malloc(len2);
    memcpy(mix, later, len2);
    memcpy(mix, good, 160);
    expect_corrupt(bad, mix, len2, "stale header, longer payload");
    memcpy(mix, good, len < len2 ? len : len2);
    memcpy(mix, later, 160);
    expect_corrupt(bad, mix, len, "newer header, older payload");
    free(mix);
    free(later);
    mg_index_free(x);
    free(v);

    /* Valid checksums over inconsistent contents: the structural checks. */
    const size_t link0 = 1 + 2 * 4;
    const sections sec = sections_of(good);
    const size_t off_levels = sec.levels, off_state = sec.states, off_vecs = sec.vecs,
                 off_links = sec.links, off_ids = sec.ids;
    memcpy(b, good, len);
    put_le32(b + off_links + 4 * link0 + 4, 100000); /* slot 1's first link out of range */
    reseal(b, len);
    expect_corrupt(bad, b, len, "link out of range");
    try_load(bad, 16, &err);
    assert_non_null(strstr(err.message, "inconsistent"));

    memcpy(b, good, len);
    put_le32(b + off_links + 4 * link0, 99); /* a link count above capacity */
    reseal(b, len);
    expect_corrupt(bad, b, len, "link count");

    memcpy(b, good, len);
    b[off_state + 5] = 7; /* unknown slot state */
    reseal(b, len);
    expect_corrupt(bad, b, len, "state");

    memcpy(b, good, len);
    b[off_state + 1] = b[off_state + 1] == 0 ? 1 : 0; /* live/deleted counts disagree */
    reseal(b, len);
    expect_corrupt(bad, b, len, "counts");

    memcpy(b, good, len);
    put_le32(b + off_vecs + 4 * 3, 0x7fc00000u); /* NaN */
    reseal(b, len);
    expect_corrupt(bad, b, len, "nan");

    memcpy(b, good, len);
    memcpy(b + off_ids + 16, b + off_ids + 8, 8); /* live slot 2 gets live slot 1's id */
    reseal(b, len);
    expect_corrupt(bad, b, len, "duplicate id");

    memcpy(b, good, len);
    b[off_levels + 3] = (unsigned char)(b[off_levels + 3] + 1); /* levels vs upper blocks */
    reseal(b, len);
    expect_corrupt(bad, b, len, "levels");

    memcpy(b, good, len);
    size_t low = 1;
    while (b[off_levels + low] != 0)
        low++;
    put_le32(b + 76, (uint32_t)low); /* entry point not on the top level */
    reseal(b, len);
    expect_corrupt(bad, b, len, "entry");

    /* The good file is still fine after all this. */
    assert_int_equal(try_load(path, 16, &err), MG_OK);
    free(b);
    free(good);
}

/* ------------------------------------------------------------------ opening in place */

/* An opened file is used where it lies: the same answers as the index that
 * was saved, and it grows, shrinks and saves like an index built in memory.
 * What grows is copied out of the mapping first (the partial last chunk, the
 * per-slot arrays, the upper pool), and so is a mapped chunk whose slot is
 * reused; the file itself never changes. */
static void test_open_in_place(void **state)
{
    (void)state;
    const int dim = 32, n = 3 * IDX_CHUNK_SLOTS + 100, more = 3000, nq = 30;
    float *v = clustered(n + more, nq, dim, 51);
    const float *queries = v + (size_t)(n + more) * (size_t)dim;
    mg_index_params p = {
        .exact_below = -1, .m = 8, .ef_construction = 20, .seed = 9, .cleanup_ratio = 0.05};
    mg_index *x = build(v, n, dim, &p, 1), *y, *w;
    char path[128];
    path_in_home(path, sizeof(path), "open.idx");
    mg_error err = {0};
    assert_int_equal(mg_index_save(x, path, &err), MG_OK);
    size_t len, len2;
    unsigned char *saved = read_all(path, &len);

    assert_int_equal(mg_index_open(path, dim, &y, &err), MG_OK);
    assert_true(y->map && y->meta_mapped && y->upper_mapped && y->map_fd >= 0);
    for (int c = 0; c < 4; c++)
        assert_true(idx_chunk_mapped(y, c));
    same_results_dim(x, y, queries, nq, dim);
    assert_true(y->map_stale); /* searches need no id map */

    for (int i = n; i < n + more; i++) {
        assert_int_equal(mg_index_add(x, i + 1, v + (size_t)i * (size_t)dim, NULL), MG_OK);
        assert_int_equal(mg_index_add(y, i + 1, v + (size_t)i * (size_t)dim, NULL), MG_OK);
    }
    assert_true(idx_chunk_mapped(y, 0) && !idx_chunk_mapped(y, 3));
    assert_true(!y->meta_mapped && !y->upper_mapped);
    same_results_dim(x, y, queries, nq, dim);
    assert_consistent(y);

    for (int id = 2; id <= n; id += 7) {
        assert_int_equal(mg_index_remove(x, id, NULL), MG_OK);
        assert_int_equal(mg_index_remove(y, id, NULL), MG_OK);
    }
    assert_true(y->n_free > 0 && y->free_list[y->n_free - 1] == 1);
    assert_true(idx_chunk_mapped(y, 0));
    assert_int_equal(mg_index_add(x, n + more + 1, v, NULL), MG_OK);
    assert_int_equal(mg_index_add(y, n + more + 1, v, NULL), MG_OK); /* into slot 1 */
    assert_false(idx_chunk_mapped(y, 0));
    same_results_dim(x, y, queries, nq, dim);
    assert_consistent(y);

    unsigned char *now = read_all(path, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(saved, now, len);

    assert_int_equal(mg_index_save(y, path, &err), MG_OK); /* over the file it maps */
    assert_int_equal(mg_index_load(path, dim, &w, &err), MG_OK);
    same_results_dim(y, w, queries, nq, dim);
    mg_index_free(w);
    mg_index_free(y);
    mg_index_free(x);
    free(now);
    free(saved);
    free(v);
}

/* A field of /proc/self/io (rchar: bytes read by read(2) and its kin). */
static long long proc_io(const char *field)
{
    FILE *f = fopen("/proc/self/io", "r");
    assert_non_null(f);
    char line[128];
    long long v = -1;
    size_t len = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') v = atoll(line + len + 1);
    fclose(f);
    return v;
}

/* Resident kB of this process's mapping of path (/proc/self/smaps). */
static long mapped_rss_kb(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    long kb = 0;
    int in = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = strstr(line, path) != NULL;
        else if (in && strncmp(line, "Rss:", 4) == 0)
            kb += atol(line + 4);
    }
    fclose(f);
    return kb;
}

/* Opening and searching once reads what the search needs, not the file: the
 * header and the small sections, then the codes and the few thousand
 * vectors a large scan re-scores. Counted in bytes, not time: read(2)
 * bytes from /proc/self/io and the file's pages resident in the process
 * from /proc/self/smaps, against the file's size. (Later searches of the
 * same process read through the mapping: see rerank_vec in index.c.) */
static void test_open_reads_little(void **state)
{
    (void)state;
    const int n = 20000, nq = 5;
    float *v = clustered(n, nq, DIM, 61);
    mg_index_params p = {.exact_below = 1 << 30, .lazy_graph = 1}; /* a scan: no graph */
    mg_index *x = build(v, n, DIM, &p, 1), *y;
    char path[128];
    path_in_home(path, sizeof(path), "big.idx");
    assert_int_equal(mg_index_save(x, path, NULL), MG_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    long long before = proc_io("rchar");
    assert_true(before >= 0);

    assert_int_equal(mg_index_open(path, DIM, &y, NULL), MG_OK);
    long long read_at_open = proc_io("rchar") - before;
    long rss_at_open = mapped_rss_kb(path), rss_after_one = 0;
    long long read_after_one = 0;
    for (int i = 0; i < nq; i++) {
        int64_t ids[TOPK], ref[TOPK];
        int found;
        const float *q = v + (size_t)(n + i) * DIM;
        assert_int_equal(mg_index_search(y, q, TOPK, 0, ids, NULL, &found, NULL), MG_OK);
        assert_int_equal(brute_force(v, n, NULL, 1, q, DIM, TOPK, ref, NULL), found);
        assert_true(overlap(ids, found, ref, found) >= found * 8 / 10);
        if (i > 0) continue;
        /* What a process that searches once pays. */
        read_after_one = proc_io("rchar") - before;
        rss_after_one = mapped_rss_kb(path);
    }
    fprintf(stderr,
            "  file %lld kB: read(2) %lld kB at open, %lld kB after a search; "
            "resident %ld kB at open, %ld kB after a search\n",
            (long long)sb.st_size / 1024, read_at_open / 1024, read_after_one / 1024, rss_at_open,
            rss_after_one);
    assert_true(read_at_open < 4096);
    assert_true(read_after_one < (long long)sb.st_size / 4);
    assert_true(rss_after_one > 0 && rss_after_one * 1024L < (long)sb.st_size / 8);
    mg_index_free(y);
    mg_index_free(x);
    free(v);
}

/* The big sections are not read at open, so their damage (or a hostile
 * file's, with valid checksums) is met by searches and changes: they stay
 * in bounds (the sanitizer builds check that) and flag the index, and
 * mg_index_load, which reads everything, refuses such a file. */
static void test_open_damaged_is_safe(void **state)
{
    (void)state;
    char path[128], bad[128];
    path_in_home(path, sizeof(path), "good.idx");
    path_in_home(bad, sizeof(bad), "bad.idx");
    size_t len;
    unsigned char *good = saved_file(path, &len);
    const sections sec = sections_of(good);
    unsigned char *b = malloc(len);
    float *more = clustered(20, 5, 16, 71);
    mg_error err = {0};
    mg_index *y;

    /* Damage in the small sections is found at open. */
    memcpy(b, good, len);
    b[sec.codes + 3] ^= 0x10;
    write_all(bad, b, len);
    assert_int_equal(mg_index_open(bad, 16, &y, &err), MG_ERR_CORRUPT);

    uint64_t seed = 99;
    for (int round = 0; round < 200; round++) {
        memcpy(b, good, len);
        for (int k = 0; k < 1 + round % 8; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = sec.vecs + (size_t)(seed >> 33) % ((len - sec.vecs) / 4) * 4;
            uint32_t word = (uint32_t)(seed >> 7);
            if (round % 3 == 0) word %= 700; /* near the real slot numbers */
            put_le32(b + at, word);
        }
        write_all(bad, b, len);
        assert_int_equal(mg_index_open(bad, 16, &y, &err), MG_OK);
        for (int i = 0; i < 5; i++) {
            int64_t ids[TOPK];
            int found;
            assert_int_equal(
                mg_index_search(y, more + (size_t)(20 + i) * 16, TOPK, 32, ids, NULL, &found, NULL),
                MG_OK);
            assert_true(found <= TOPK);
        }
        for (int i = 0; i < 20; i++)
            mg_index_add(y, 1000 + i, more + (size_t)i * 16, NULL);
        for (int id = 1; id < 600; id += 5)
            mg_index_remove(y, id, NULL);
        mg_index_cleanup(y);
        mg_index_free(y);
    }

    /* Every first level-0 link out of range: the first search flags it. */
    memcpy(b, good, len);
    for (size_t s = 0; s < 600; s++)
        if (get_le(b + sec.links + s * 36, 4) > 0) put_le32(b + sec.links + s * 36 + 4, 100000);
    write_all(bad, b, len);
    assert_int_equal(mg_index_open(bad, 16, &y, &err), MG_OK);
    assert_false(mg_index_damaged(y));
    int64_t ids[TOPK];
    int found;
    assert_int_equal(mg_index_search(y, more + 20 * 16, TOPK, 32, ids, NULL, &found, NULL), MG_OK);
    assert_true(mg_index_damaged(y));
    mg_index_free(y);
    assert_int_equal(mg_index_load(bad, 16, &y, &err), MG_ERR_CORRUPT);
    free(more);
    free(b);
    free(good);
}

static void test_save_is_atomic(void **state)
{
    (void)state;
    float *v = clustered(200, 0, 16, 9);
    mg_index *x = build(v, 200, 16, NULL, 0);
    mg_error err = {0};
    char path[128];

    /* No such directory. */
    path_in_home(path, sizeof(path), "nodir/x.idx");
    assert_int_equal(mg_index_save(x, path, &err), MG_ERR_IO);
    assert_non_null(strstr(err.message, "nodir"));

    /* The target is a directory: the rename fails, nothing is left behind
     * and the directory is untouched. */
    char sub[128];
    path_in_home(sub, sizeof(sub), "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    char inner[160];
    snprintf(inner, sizeof(inner), "%s/keep", sub);
    write_all(inner, "k", 1);
    assert_int_equal(mg_index_save(x, sub, &err), MG_ERR_IO);
    assert_non_null(strstr(err.message, "rename"));
    struct stat sb;
    assert_int_equal(stat(inner, &sb), 0);

    /* A good save replaces the old file in one step: no temporary remains. */
    path_in_home(path, sizeof(path), "a.idx");
    write_all(path, "old contents", 12);
    assert_int_equal(mg_index_save(x, path, &err), MG_OK);
    assert_int_equal(try_load(path, 16, &err), MG_OK);
    int temps = 0;
    DIR *d = opendir(home);
    for (struct dirent *e; (e = readdir(d));)
        temps += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    assert_int_equal(temps, 0);
    mg_index_free(x);
    free(v);
}

/* ------------------------------------------------------------------ append log */

static void test_log_replay(void **state)
{
    (void)state;
    int n = sized(3000), extra = n / 10, nq = 30;
    float *v = clustered(n + extra, nq, DIM, 51);
    const float *queries = v + (size_t)(n + extra) * DIM;
    mg_index_params p = {.exact_below = -1};
    char path[128], logp[128];
    path_in_home(path, sizeof(path), "log.idx");
    path_in_home(logp, sizeof(logp), "log.idx.log");
    mg_error err = {0};
    mg_index_log_info info;

    /* A fresh index starts a new log; the changes after the save go in it. */
    mg_index *x = build(v, n, DIM, &p, 0);
    assert_int_equal(mg_index_log_attach(x, logp, &info, &err), MG_OK);
    assert_int_equal(info.reset, 1);
    assert_int_equal(mg_index_save(x, path, &err), MG_OK);
    for (int i = n; i < n + extra; i++)
        assert_int_equal(mg_index_add(x, i, v + (size_t)i * DIM, &err), MG_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(mg_index_remove(x, i * 13, &err), MG_OK);
    assert_int_equal(mg_index_log_sync(x, &err), MG_OK);
    size_t log_len;
    free(read_all(logp, &log_len));

    /* "Crash": x is the reference, never saved again. Reload and replay. */
    mg_index *y;
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_count(y), n);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_OK);
    assert_int_equal(info.reset, 0);
    assert_int_equal(info.replayed_adds, extra);
    assert_int_equal(info.replayed_removes, 50);
    assert_int_equal(info.torn_bytes, 0);
    assert_consistent(y);
    assert_same_results(x, y, queries, nq);
    mg_index_free(y);

    /* A torn last record: everything before it is replayed, the tail cut. */
    unsigned char *logb = read_all(logp, &log_len);
    size_t rec = 16 + 4; /* the last record is a remove */
    write_all(logp, logb, log_len - rec / 2);
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_OK);
    assert_int_equal(info.replayed_adds, extra);
    assert_int_equal(info.replayed_removes, 49);
    assert_int_equal((size_t)info.torn_bytes, rec - rec / 2);
    assert_true(mg_index_contains(y, 49 * 13)); /* the lost remove */
    /* Appends continue after the last good record. */
    assert_int_equal(mg_index_remove(y, 49 * 13, &err), MG_OK);
    mg_index_free(y);
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_OK);
    assert_int_equal(info.replayed_removes, 50);
    assert_int_equal(info.torn_bytes, 0);
    assert_same_results(x, y, queries, nq);

    /* A damaged record in the middle ends the replay there. */
    mg_index_free(y);
    write_all(logp, logb, log_len);
    logb[32 + 20] ^= 0x40; /* inside the first record's vector */
    write_all(logp, logb, log_len);
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_OK);
    assert_int_equal(info.replayed_adds + info.replayed_removes, 0);
    assert_int_equal((size_t)info.torn_bytes, log_len - 32);
    mg_index_free(y);

    /* A record that contradicts the index (an add of a live id). */
    write_all(logp, logb, 32); /* header only */
    unsigned char r[16 + 4 * DIM + 4] = {0};
    put_le32(r, 1);
    r[8] = 5; /* id 5, live in the file */
    memcpy(r + 16, v, 4 * DIM);
    put_le32(r + 16 + 4 * DIM, mg_crc32c(0, r, 16 + 4 * DIM));
    FILE *f = fopen(logp, "ab");
    fwrite(r, 1, sizeof(r), f);
    fclose(f);
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "does not fit"));
    assert_int_equal(mg_index_log_sync(y, &err), MG_OK); /* nothing attached */
    mg_index_free(y);

    /* After a new save, the log belongs to the new file; an old log is
     * discarded, never replayed onto a file that already holds it. */
    logb[32 + 20] ^= 0x40; /* logb: the intact log of the first save again */
    assert_int_equal(mg_index_save(x, path, &err), MG_OK); /* x holds everything */
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_OK);
    /* x's log handle restarted the file at the save, so y's attach finds an
     * empty log of the new generation. */
    assert_int_equal(info.reset, 0);
    assert_int_equal(info.replayed_adds + info.replayed_removes, 0);
    mg_index_free(y);
    write_all(logp, logb, log_len); /* put the old-generation log back */
    assert_int_equal(mg_index_load(path, DIM, &y, &err), MG_OK);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_OK);
    assert_int_equal(info.reset, 1);
    assert_int_equal(info.replayed_adds + info.replayed_removes, 0);
    assert_same_results(x, y, queries, nq);
    assert_int_equal(mg_index_log_attach(y, logp, &info, &err), MG_ERR_USAGE);
    mg_index_free(y);

    free(logb);
    mg_index_free(x);
    free(v);
}

/* ------------------------------------------------------------------ crc */

static void test_crc32c(void **state)
{
    (void)state;
    assert_true(mg_crc32c(0, "123456789", 9) == 0xe3069283u);
    assert_true(mg_crc32c(0, "", 0) == 0);
    /* Chaining equals one pass, at every split and alignment. */
    unsigned char data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    uint32_t whole = mg_crc32c(0, data, sizeof(data));
    for (size_t cut = 0; cut <= sizeof(data); cut++)
        assert_true(mg_crc32c(mg_crc32c(0, data, cut), data + cut, sizeof(data) - cut) == whole);
    /* Long buffers are computed in three lanes, joined: the same value as
     * short pieces chained, at every length around the lanes' multiples. */
    size_t n = 200000;
    unsigned char *big = malloc(n);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        big[i] = (unsigned char)x;
    }
    static const size_t lens[] = {12287, 12288, 12289, 12295, 12296, 24577, 99999, 200000};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        for (size_t start = 0; start < 3; start++) {
            size_t len = lens[k] - start;
            uint32_t pieces = 0;
            for (size_t at = 0; at < len; at += 1000)
                pieces = mg_crc32c(pieces, big + start + at, len - at < 1000 ? len - at : 1000);
            assert_true(mg_crc32c(0, big + start, len) == pieces);
        }
    }
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_params_and_arguments),
        cmocka_unit_test(test_exact_matches_brute_force),
        cmocka_unit_test(test_exact_on_large_index),
        cmocka_unit_test(test_hnsw_recall),
        cmocka_unit_test(test_same_seed_same_graph),
        cmocka_unit_test(test_lazy_graph),
        cmocka_unit_test_setup_teardown(test_lazy_graph_file, files_setup, files_teardown),
        cmocka_unit_test(test_delete_with_cleanups),
        cmocka_unit_test(test_delete_tombstones_only),
        cmocka_unit_test(test_delete_everything),
        cmocka_unit_test_setup_teardown(test_save_load_round_trip, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_stale_file_replay, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_dimension_mismatch, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_files, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_open_in_place, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_open_reads_little, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_open_damaged_is_safe, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_save_is_atomic, files_setup, files_teardown),
        cmocka_unit_test_setup_teardown(test_log_replay, files_setup, files_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
