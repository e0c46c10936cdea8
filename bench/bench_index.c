/*
 * bench_index.c - the vector index (src/index/) on clustered synthetic data:
 * build rate, memory, search latency and recall against exact search.
 *
 *   bench_index [--n N] [--queries Q] [--dim D] [--clusters C] [--spread S]
 *               [--rank R] [--noise E] [--m M] [--efc E] [--ef LIST]
 *               [--exact-queries Q2] [--deletes FRACTION] [--seed S]
 *               [--json FILE] WORK_DIR
 *
 * Defaults: N 100,000, Q 1,000, D 384, C = N / 1000, S 1, R 0, m 16,
 * ef_construction 40, ef 16,32,64,128,256, no deletes, seed 42.
 *
 * Data: a Gaussian mixture on the unit sphere, standing in for text
 * embeddings (topics, and passages scattered around each). C centres drawn
 * from the standard normal in D dimensions and normalized (~1,000 vectors a
 * cluster at every N); each vector picks a centre uniformly and is
 * normalize(centre + S * g / sqrt(D)), g standard normal. With S = 1, a
 * vector's cosine to its centre is ~0.71, to another of its cluster ~0.5,
 * to one of another cluster ~0. This isotropic noise is the hard case for
 * graph search: inside a cluster all neighbours are nearly equidistant, and
 * between clusters there is no gradient to follow. With --rank R the offset
 * from the centre lies along R random directions of the cluster instead
 * (plus E * g / sqrt(D) of isotropic noise, default 0.1): data of low
 * intrinsic dimension, the easier case. Queries are Q further vectors drawn
 * the same way (not in the index). Fixed seed: runs repeat.
 *
 * Steps, all on one thread:
 *  1. generate; write WORK_DIR/base.f32, queries.f32 (raw little-endian
 *     float32, row-major) for bench_index_faiss.py;
 *  2. build: mg_index_add of every vector (ids 0..N-1, in order), timed;
 *     memory from mg_index_get_stats against the raw vectors;
 *  3. ground truth: the exact top 10 of every query by a blocked scan (16
 *     queries per pass over the base, same dot kernel as the index), written
 *     to WORK_DIR/gt.i32 (Q x 10 int32 ids);
 *  4. exact search latency, per query, on the first Q2 queries (default all):
 *     mg_index_search_exact (the index's SIMD scan), and the scan archival
 *     memory does today minus SQLite (mg_vec_dot + mg_topk over the array);
 *  5. graph search for every ef in LIST, one untimed pass then one timed:
 *     latency per query (p50/p95/p99) and recall@10 = |found top 10 & exact
 *     top 10| / 10, averaged;
 *  6. save to WORK_DIR/index.bin and load it back, timed; the loaded index
 *     must return identical results (checked on 100 queries);
 *  7. if FRACTION > 0: remove that fraction of the vectors (random ids;
 *     cleanups run as they trigger), timed, then recall@10 at each ef
 *     against the exact answer over the remaining vectors.
 * Prints one line per figure and, with --json, writes them all.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_util.h"
#include "embed/vec.h"
#include "index/index.h"
#include "index/index_impl.h"

#define TOPK    10
#define MAX_EFS 16

/* ------------------------------------------------------------ utilities */

static void die(const char *what, const mg_error *err)
{
    fprintf(stderr, "bench_index: %s: %s\n", what,
            err && err->message[0] ? err->message : "failed");
    exit(1);
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_uniform(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) * 0x1.0p-53;
}

/* Box-Muller, both outputs used. */
static double rng_gauss(void)
{
    static int have;
    static double spare;
    if (have) {
        have = 0;
        return spare;
    }
    double r = sqrt(-2.0 * log(rng_uniform())), t = 2.0 * M_PI * rng_uniform();
    spare = r * sin(t);
    have = 1;
    return r * cos(t);
}

/* Nearest-rank percentile of v[0..n), which it sorts. */
static double percentile(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    int i = (int)ceil(p * n) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}

typedef struct lat {
    double p50, p95, p99, mean;
} lat;

static lat summarize(double *ms, int n)
{
    lat l = {0, 0, 0, 0};
    for (int i = 0; i < n; i++)
        l.mean += ms[i] / n;
    l.p50 = percentile(ms, n, 0.50);
    l.p95 = percentile(ms, n, 0.95);
    l.p99 = percentile(ms, n, 0.99);
    return l;
}

static void write_file(const char *dir, const char *name, const void *data, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "bench_index: cannot write %s\n", path);
        exit(1);
    }
}

/* ------------------------------------------------------------ data */

/* The mixture: centres[c] (unit), and with rank > 0 each cluster's `rank`
 * unit directions in axes[c * rank ...]. */
typedef struct mixture {
    int dim, nclusters, rank;
    double spread, noise;
    float *centres, *axes;
} mixture;

static void unit_gauss(float *v, int dim)
{
    for (int d = 0; d < dim; d++)
        v[d] = (float)rng_gauss();
    mg_vec_normalize(v, dim);
}

static void make_mixture(mixture *mx)
{
    size_t dim = (size_t)mx->dim;
    mx->centres = malloc((size_t)mx->nclusters * dim * sizeof(float));
    mx->axes = malloc((size_t)mx->nclusters * (size_t)mx->rank * dim * sizeof(float) + 1);
    if (!mx->centres || !mx->axes) die("out of memory", NULL);
    for (int c = 0; c < mx->nclusters; c++)
        unit_gauss(mx->centres + (size_t)c * dim, mx->dim);
    for (size_t a = 0; a < (size_t)mx->nclusters * (size_t)mx->rank; a++)
        unit_gauss(mx->axes + a * dim, mx->dim);
}

/* Isotropic (rank 0): centre + spread * g / sqrt(dim). Low-rank: centre +
 * spread * (sum of rank axes * N(0,1)) / sqrt(rank) + noise * g / sqrt(dim).
 * Either way the offset from the centre has expected length `spread`. */
static float *make_vectors(const mixture *mx, int n)
{
    size_t dim = (size_t)mx->dim;
    float *v = malloc((size_t)n * dim * sizeof(float));
    if (!v) die("out of memory", NULL);
    double iso = (mx->rank ? mx->noise : mx->spread) / sqrt((double)dim);
    double along = mx->rank ? mx->spread / sqrt((double)mx->rank) : 0.0;
    for (int i = 0; i < n; i++) {
        size_t c = (size_t)(rng_next() % (uint64_t)mx->nclusters);
        float *p = v + (size_t)i * dim;
        const float *centre = mx->centres + c * dim;
        for (size_t d = 0; d < dim; d++)
            p[d] = (float)(centre[d] + iso * rng_gauss());
        for (int k = 0; k < mx->rank; k++) {
            const float *axis = mx->axes + (c * (size_t)mx->rank + (size_t)k) * dim;
            float z = (float)(along * rng_gauss());
            for (size_t d = 0; d < dim; d++)
                p[d] += z * axis[d];
        }
        mg_vec_normalize(p, mx->dim);
    }
    return v;
}

/* Exact top 10 of every query, 16 queries per pass over the base so each
 * base vector is read from memory once per block, not once per query. */
static void ground_truth(mg_index *x, const float *base, int n, const float *q, int nq, int32_t *gt)
{
    enum { BLOCK = 16 };
    int dim = x->dim;
    for (int q0 = 0; q0 < nq; q0 += BLOCK) {
        int nb = nq - q0 < BLOCK ? nq - q0 : BLOCK;
        mg_topk t[BLOCK];
        for (int j = 0; j < nb; j++)
            mg_topk_init(&t[j], TOPK);
        for (int i = 0; i < n; i++) {
            const float *v = base + (size_t)i * (size_t)dim;
            for (int j = 0; j < nb; j++)
                mg_topk_push(&t[j], i, x->dot(q + (size_t)(q0 + j) * (size_t)dim, v, dim));
        }
        for (int j = 0; j < nb; j++) {
            mg_topk_sort(&t[j]);
            for (int r = 0; r < TOPK; r++)
                gt[(size_t)(q0 + j) * TOPK + r] = r < t[j].count ? (int32_t)t[j].ids[r] : -1;
            mg_topk_free(&t[j]);
        }
    }
}

static double recall_of(const int64_t *found, int nfound, const int32_t *truth)
{
    int hits = 0;
    for (int a = 0; a < nfound; a++)
        for (int b = 0; b < TOPK; b++)
            if (truth[b] >= 0 && found[a] == truth[b]) hits++;
    return hits / (double)TOPK;
}

/* ------------------------------------------------------------ JSON out */

static FILE *json;
static int json_first = 1;

static void jnum(const char *key, double v)
{
    if (!json) return;
    fprintf(json, "%s\n  \"%s\": %.6g", json_first ? "{" : ",", key, v);
    json_first = 0;
}

static void jstr(const char *key, const char *v)
{
    if (!json) return;
    fprintf(json, "%s\n  \"%s\": \"%s\"", json_first ? "{" : ",", key, v);
    json_first = 0;
}

static void jlat(const char *prefix, lat l)
{
    char k[128];
    snprintf(k, sizeof(k), "%s_p50_ms", prefix);
    jnum(k, l.p50);
    snprintf(k, sizeof(k), "%s_p95_ms", prefix);
    jnum(k, l.p95);
    snprintf(k, sizeof(k), "%s_p99_ms", prefix);
    jnum(k, l.p99);
    snprintf(k, sizeof(k), "%s_mean_ms", prefix);
    jnum(k, l.mean);
}

/* ------------------------------------------------------------ steps */

typedef struct opts {
    int n, nq, dim, nclusters, rank, m, efc, nexact;
    int efs[MAX_EFS], nefs;
    double spread, noise, deletes;
    uint64_t seed;
    const char *json_path, *dir;
} opts;

/* Graph search of every query at ef: latencies and mean recall. With
 * `alive` (after deletes), truth is recomputed over the live ids. */
static double run_searches(mg_index *x, const float *q, int nq, int ef, const int32_t *gt, lat *out)
{
    double *ms = malloc((size_t)nq * sizeof(double)), rsum = 0;
    int64_t ids[TOPK];
    float scores[TOPK];
    mg_error err = {0};
    for (int i = 0; i < nq; i++) {
        int found;
        double t0 = bench_now();
        if (mg_index_search(x, q + (size_t)i * (size_t)x->dim, TOPK, ef, ids, scores, &found,
                            &err) != MG_OK)
            die("search", &err);
        ms[i] = (bench_now() - t0) * 1e3;
        rsum += recall_of(ids, found, gt + (size_t)i * TOPK);
    }
    if (out) *out = summarize(ms, nq);
    free(ms);
    return rsum / nq;
}

static void bench_exact(mg_index *x, const float *base, const float *q, const opts *o,
                        const int32_t *gt)
{
    double *ms = malloc((size_t)o->nexact * sizeof(double));
    int64_t ids[TOPK];
    float scores[TOPK];
    mg_error err = {0};
    int agree = 0;
    for (int i = 0; i < o->nexact; i++) {
        int found;
        double t0 = bench_now();
        if (mg_index_search_exact(x, q + (size_t)i * (size_t)o->dim, TOPK, ids, scores, &found,
                                  &err) != MG_OK)
            die("exact search", &err);
        ms[i] = (bench_now() - t0) * 1e3;
        agree += recall_of(ids, found, gt + (size_t)i * TOPK) == 1.0;
    }
    lat l = summarize(ms, o->nexact);
    printf("exact, index SIMD scan:   p50 %8.3f ms  p95 %8.3f ms  (%d/%d queries match the "
           "ground truth)\n",
           l.p50, l.p95, agree, o->nexact);
    jlat("exact_simd", l);
    jnum("exact_checked", o->nexact);
    jnum("exact_agree", agree);

    /* What archival.c does per passage today, minus SQLite: mg_vec_dot and
     * mg_topk over every vector. */
    for (int i = 0; i < o->nexact; i++) {
        const float *qq = q + (size_t)i * (size_t)o->dim;
        double t0 = bench_now();
        mg_topk t;
        mg_topk_init(&t, TOPK);
        for (int v = 0; v < o->n; v++)
            mg_topk_push(&t, v, mg_vec_dot(qq, base + (size_t)v * (size_t)o->dim, o->dim));
        mg_topk_sort(&t);
        mg_topk_free(&t);
        ms[i] = (bench_now() - t0) * 1e3;
    }
    l = summarize(ms, o->nexact);
    printf("exact, mg_vec_dot scan:   p50 %8.3f ms  p95 %8.3f ms\n", l.p50, l.p95);
    jlat("exact_vecdot", l);
    free(ms);
}

static void bench_persist(mg_index **xp, const float *q, const opts *o)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/index.bin", o->dir);
    mg_error err = {0};
    double t0 = bench_now();
    if (mg_index_save(*xp, path, &err) != MG_OK) die("save", &err);
    double t_save = bench_now() - t0;
    struct stat sb;
    stat(path, &sb);

    t0 = bench_now();
    mg_index *y;
    if (mg_index_load(path, o->dim, &y, &err) != MG_OK) die("load", &err);
    double t_load = bench_now() - t0;

    int same = 1, nq = o->nq < 100 ? o->nq : 100;
    for (int i = 0; i < nq && same; i++) {
        int64_t a[TOPK], b[TOPK];
        float sa[TOPK], sb2[TOPK];
        int fa, fb;
        const float *qq = q + (size_t)i * (size_t)o->dim;
        mg_index_search(*xp, qq, TOPK, 64, a, sa, &fa, &err);
        mg_index_search(y, qq, TOPK, 64, b, sb2, &fb, &err);
        same = fa == fb && memcmp(a, b, sizeof(int64_t) * (size_t)fa) == 0 &&
               memcmp(sa, sb2, sizeof(float) * (size_t)fa) == 0;
    }
    printf("save %.2f s (%.1f MB, fsync included), load %.2f s (checksum and checks "
           "included); results after load %s\n",
           t_save, sb.st_size / 1e6, t_load, same ? "identical" : "DIFFER");
    jnum("save_s", t_save);
    jnum("load_s", t_load);
    jnum("file_bytes", (double)sb.st_size);
    jnum("load_identical", same);
    remove(path);
    mg_index_free(*xp);
    *xp = y; /* go on with the loaded one */
}

static void bench_deletes(mg_index *x, const float *base, const float *q, const opts *o)
{
    int ndel = (int)(o->deletes * o->n);
    int *order = malloc((size_t)o->n * sizeof(int));
    for (int i = 0; i < o->n; i++)
        order[i] = i;
    for (int i = o->n - 1; i > 0; i--) {
        int j = (int)(rng_next() % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    mg_error err = {0};
    double worst = 0, t0 = bench_now();
    for (int i = 0; i < ndel; i++) {
        double t1 = bench_now();
        if (mg_index_remove(x, order[i], &err) != MG_OK) die("remove", &err);
        double dt = bench_now() - t1;
        if (dt > worst) worst = dt;
    }
    double total = bench_now() - t0;
    mg_index_stats st;
    mg_index_get_stats(x, &st);
    printf("removed %d (%.0f%%): %.1f us per remove on average incl. cleanups, slowest %.2f s "
           "(a cleanup pass); %lld tombstones left\n",
           ndel, o->deletes * 100, total / ndel * 1e6, worst, (long long)st.deleted);
    jnum("deleted", ndel);
    jnum("remove_mean_us", total / ndel * 1e6);
    jnum("remove_max_s", worst);

    /* Truth over the survivors: exact search on the index itself. */
    int32_t *gt = malloc((size_t)o->nq * TOPK * sizeof(int32_t));
    for (int i = 0; i < o->nq; i++) {
        int64_t ids[TOPK];
        int found;
        mg_index_search_exact(x, q + (size_t)i * (size_t)o->dim, TOPK, ids, NULL, &found, &err);
        for (int r = 0; r < TOPK; r++)
            gt[(size_t)i * TOPK + r] = r < found ? (int32_t)ids[r] : -1;
    }
    for (int e = 0; e < o->nefs; e++) {
        lat l;
        double r = run_searches(x, q, o->nq, o->efs[e], gt, &l);
        printf("after deletes  ef %4d:  recall@10 %.4f  p50 %.3f ms  p95 %.3f ms\n", o->efs[e], r,
               l.p50, l.p95);
        char k[64];
        snprintf(k, sizeof(k), "del_ef%d_recall", o->efs[e]);
        jnum(k, r);
        snprintf(k, sizeof(k), "del_ef%d", o->efs[e]);
        jlat(k, l);
    }
    (void)base;
    free(gt);
    free(order);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_index [--n N] [--queries Q] [--dim D] [--clusters C] "
                    "[--spread S] [--m M] [--efc E] [--ef LIST] [--exact-queries Q2] "
                    "[--deletes FRACTION] [--seed S] [--json FILE] WORK_DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts o = {.n = 100000,
              .nq = 1000,
              .dim = 384,
              .m = 16,
              .efc = 40,
              .nexact = -1,
              .spread = 1.0,
              .noise = 0.1,
              .seed = 42,
              .efs = {16, 32, 64, 128, 256},
              .nefs = 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (more && !strcmp(a, "--n"))
            o.n = atoi(argv[++i]);
        else if (more && !strcmp(a, "--queries"))
            o.nq = atoi(argv[++i]);
        else if (more && !strcmp(a, "--dim"))
            o.dim = atoi(argv[++i]);
        else if (more && !strcmp(a, "--clusters"))
            o.nclusters = atoi(argv[++i]);
        else if (more && !strcmp(a, "--spread"))
            o.spread = atof(argv[++i]);
        else if (more && !strcmp(a, "--rank"))
            o.rank = atoi(argv[++i]);
        else if (more && !strcmp(a, "--noise"))
            o.noise = atof(argv[++i]);
        else if (more && !strcmp(a, "--m"))
            o.m = atoi(argv[++i]);
        else if (more && !strcmp(a, "--efc"))
            o.efc = atoi(argv[++i]);
        else if (more && !strcmp(a, "--exact-queries"))
            o.nexact = atoi(argv[++i]);
        else if (more && !strcmp(a, "--deletes"))
            o.deletes = atof(argv[++i]);
        else if (more && !strcmp(a, "--seed"))
            o.seed = strtoull(argv[++i], NULL, 10);
        else if (more && !strcmp(a, "--json"))
            o.json_path = argv[++i];
        else if (more && !strcmp(a, "--ef")) {
            o.nefs = 0;
            for (char *s = argv[++i]; *s && o.nefs < MAX_EFS;) {
                o.efs[o.nefs++] = (int)strtol(s, &s, 10);
                if (*s == ',') s++;
            }
        } else if (a[0] == '-' || o.dir)
            usage();
        else
            o.dir = a;
    }
    if (!o.dir || o.n < TOPK || o.nq < 1 || o.dim < 1) usage();
    if (o.nclusters <= 0) o.nclusters = o.n / 1000 > 10 ? o.n / 1000 : 10;
    if (o.nexact < 0 || o.nexact > o.nq) o.nexact = o.nq;
    if (o.json_path && !(json = fopen(o.json_path, "w"))) die("cannot write the JSON file", NULL);
    rng_state = o.seed;

    if (o.rank)
        printf("data: %d x %d-d, Gaussian mixture of %d clusters, each spread %.2f along %d "
               "directions plus %.2f isotropic noise, normalized; %d queries\n",
               o.n, o.dim, o.nclusters, o.spread, o.rank, o.noise, o.nq);
    else
        printf("data: %d x %d-d, Gaussian mixture of %d clusters, isotropic spread %.2f, "
               "normalized; %d queries\n",
               o.n, o.dim, o.nclusters, o.spread, o.nq);
    jnum("rank", o.rank);
    jnum("noise", o.rank ? o.noise : 0.0);
    jnum("n", o.n);
    jnum("dim", o.dim);
    jnum("queries", o.nq);
    jnum("clusters", o.nclusters);
    jnum("spread", o.spread);
    jnum("m", o.m);
    jnum("ef_construction", o.efc);

    mixture mx = {o.dim, o.nclusters, o.rank, o.spread, o.noise, NULL, NULL};
    make_mixture(&mx);
    float *base = make_vectors(&mx, o.n);
    float *q = make_vectors(&mx, o.nq);
    write_file(o.dir, "base.f32", base, (size_t)o.n * (size_t)o.dim * sizeof(float));
    write_file(o.dir, "queries.f32", q, (size_t)o.nq * (size_t)o.dim * sizeof(float));

    /* 2. build */
    mg_index_params p = {.m = o.m, .ef_construction = o.efc, .exact_below = -1};
    mg_index *x;
    mg_error err = {0};
    if (mg_index_new(o.dim, &p, &x, &err) != MG_OK) die("new", &err);
    double t0 = bench_now(), next_report = 0.1;
    for (int i = 0; i < o.n; i++) {
        if (mg_index_add(x, i, base + (size_t)i * (size_t)o.dim, &err) != MG_OK) die("add", &err);
        if (i + 1 >= next_report * o.n) {
            fprintf(stderr, "  built %d (%.0f/s)\r", i + 1, (i + 1) / (bench_now() - t0));
            next_report += 0.1;
        }
    }
    double t_build = bench_now() - t0;
    fprintf(stderr, "\n");
    mg_index_stats st;
    mg_index_get_stats(x, &st);
    printf("build (m %d, ef_construction %d): %.1f s, %.0f inserts/s\n", o.m, o.efc, t_build,
           o.n / t_build);
    printf("memory: index %.1f MB, raw vectors %.1f MB: %.3fx\n", st.memory_bytes / 1e6,
           st.vector_bytes / 1e6, (double)st.memory_bytes / (double)st.vector_bytes);
    printf("graph: %d levels; level 0 reachable from the entry: %lld of %d\n", st.max_level + 1,
           (long long)hnsw_reachable(x), o.n);
    jnum("build_s", t_build);
    jnum("inserts_per_s", o.n / t_build);
    jnum("memory_bytes", (double)st.memory_bytes);
    jnum("vector_bytes", (double)st.vector_bytes);
    jnum("memory_ratio", (double)st.memory_bytes / (double)st.vector_bytes);

    /* 3. ground truth */
    int32_t *gt = malloc((size_t)o.nq * TOPK * sizeof(int32_t));
    t0 = bench_now();
    ground_truth(x, base, o.n, q, o.nq, gt);
    fprintf(stderr, "  ground truth: %.1f s\n", bench_now() - t0);
    write_file(o.dir, "gt.i32", gt, (size_t)o.nq * TOPK * sizeof(int32_t));

    /* 4. exact */
    bench_exact(x, base, q, &o, gt);

    /* 5. graph */
    char efs[128] = "";
    for (int e = 0; e < o.nefs; e++) {
        lat l;
        run_searches(x, q, o.nq, o.efs[e], gt, NULL); /* warm-up pass, not timed */
        double r = run_searches(x, q, o.nq, o.efs[e], gt, &l);
        printf("hnsw ef %4d:  recall@10 %.4f  p50 %.3f ms  p95 %.3f ms  p99 %.3f ms\n", o.efs[e], r,
               l.p50, l.p95, l.p99);
        char k[64];
        snprintf(k, sizeof(k), "ef%d_recall", o.efs[e]);
        jnum(k, r);
        snprintf(k, sizeof(k), "ef%d", o.efs[e]);
        jlat(k, l);
        snprintf(efs + strlen(efs), sizeof(efs) - strlen(efs), "%s%d", e ? "," : "", o.efs[e]);
    }
    jstr("efs", efs);

    /* 6. persistence */
    bench_persist(&x, q, &o);

    /* 7. deletes */
    if (o.deletes > 0) bench_deletes(x, base, q, &o);

    if (json) {
        fprintf(json, "\n}\n");
        fclose(json);
    }
    mg_index_free(x);
    free(gt);
    free(base);
    free(q);
    free(mx.centres);
    free(mx.axes);
    return 0;
}
