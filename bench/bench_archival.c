/*
 * bench_archival.c - archival search at 100k-1M passages: the vector index
 * against the exact scan of the table, in one run.
 *
 *   bench_archival [--passages N] [--queries Q] [--random] [--reuse] DATA_DIR
 *
 * 1. Populate (unless --reuse): agent `arch` in DATA_DIR gets N passages
 *    (default 100,000) of made-up prose (words of a synthetic 5,000-word
 *    vocabulary, Zipf-like frequencies, 8-40 words), five minutes apart in
 *    runs of 6 with a day between runs, in transactions of 5,000. By default
 *    each passage is embedded by the offline embedder through
 *    archival_insert, as an agent stores it; --random stores random unit
 *    vectors instead (SQL straight into `passages`), which is what makes a
 *    million passages affordable here (the vector ranking then means
 *    nothing, but its cost is the same).
 * 2. Exact: Q searches (default 50; queries of 2-4 words from the same
 *    vocabulary) through archival_search with the index disabled
 *    (archival_index_set_min(INT64_MAX)): the scan of every passage.
 * 3. Index, first use: the first search builds the index from the table and
 *    saves it (time reported apart), then the same Q searches; the overlap of
 *    each top 10 with the exact top 10 is reported.
 * 4. Reopen: mg_store_close (saves), mg_store_open, and the first search,
 *    which loads the file (no rebuild: checked); that is what a new process
 *    (`memgpt archival search`, `memgpt send`) pays once. Then Q searches.
 *
 * Times are wall clock, p50/p95 over the Q searches after one warm-up.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "agent/agent.h"
#include "embed/vec.h"
#include "index/index.h"
#include "memory/archival.h"
#include "memory/archival_index.h"
#include "memory/passages_db.h"
#include "store/store.h"
#include "util/buf.h"

#define VOCAB    5000
#define TOP      10
#define BATCH    5000
#define START_MS 1600000000000LL

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void die(const char *what, const mg_error *err)
{
    fprintf(stderr, "bench_archival: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static void word(buf *b)
{
    static const char *const syll[] = {"ka", "ro", "mi", "te", "su", "na", "lo", "vi",
                                       "de", "ba", "gu", "po", "fe", "zi", "ha", "ju"};
    double u = (double)(next() % 1000000) / 1e6;
    int w = (int)(VOCAB * u * u * u); /* skewed to the common words */
    int n = 2 + w % 3;
    for (int i = 0; i < n; i++) {
        buf_puts(b, syll[(w + i * 5) % 16]);
        w = w / 16 + i;
    }
}

static char *text_of(int min_words, int max_words)
{
    buf b = BUF_INIT;
    int n = min_words + (int)(next() % (uint64_t)(max_words - min_words + 1));
    for (int i = 0; i < n; i++) {
        if (i) buf_putc(&b, ' ');
        word(&b);
    }
    return buf_take(&b);
}

static void populate(mg_store *store, mg_agent *agent, int n, int random)
{
    mg_error err = {0};
    passages_db db;
    if (passages_db_open(&db, store, agent->id, &err)) die("passages_db_open", &err);
    float vec[384];
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        if (i % BATCH == 0 && store_begin(store, &err)) die("begin", &err);
        char *text = text_of(8, 40);
        int64_t when = START_MS + (int64_t)(i / 6) * 86400000LL + (int64_t)(i % 6) * 300000LL;
        if (random) {
            double norm = 0;
            for (int d = 0; d < 384; d++) {
                vec[d] = (float)((double)(next() % 2000001) / 1e6 - 1.0);
                norm += (double)vec[d] * vec[d];
            }
            for (int d = 0; d < 384; d++)
                vec[d] = (float)(vec[d] / sqrt(norm));
            passage_new p = {.text = text,
                             .time_ms = when,
                             .position = -1,
                             .embedder = "offline",
                             .vec = vec,
                             .dim = 384};
            if (passages_db_insert(&db, &p, &err) ||
                passages_db_count_added(store, agent->id, 1, &err))
                die("insert", &err);
        } else if (archival_insert(store, agent->id, agent->embedder, text, NULL, when, NULL,
                                   &err)) {
            die("archival_insert", &err);
        }
        free(text);
        if ((i + 1) % BATCH == 0 || i + 1 == n) {
            if (store_commit(store, &err)) die("commit", &err);
            fprintf(stderr, "\r  %d / %d passages", i + 1, n);
        }
    }
    passages_db_close(&db);
    double s = bench_now() - t0;
    fprintf(stderr, "\n");
    printf("populate: %d passages in %.1f s (%.0f/s, %s)\n", n, s, n / s,
           random ? "random unit vectors" : "offline embedder");
}

/* One search; its top ids into ids[]; returns the seconds it took. */
static double search(mg_store *store, mg_agent *agent, archival_mode mode, const char *q,
                     int64_t *ids, int *n)
{
    mg_search s = {.query = q, .limit = TOP};
    json_t *found;
    mg_error err = {0};
    double t0 = bench_now();
    if (archival_search_mode(store, agent->id, agent->embedder, &s, mode, &found, &err))
        die("search", &err);
    double t = bench_now() - t0;
    json_t *results = json_object_get(found, "results");
    *n = 0;
    for (size_t i = 0; i < json_array_size(results) && i < TOP; i++)
        ids[(*n)++] = json_integer_value(json_object_get(json_array_get(results, i), "id"));
    json_decref(found);
    return t;
}

typedef struct run {
    double p50, p95;
    int64_t (*ids)[TOP];
    int *n;
} run;

static run searches(mg_store *store, mg_agent *agent, archival_mode mode, char **queries, int q)
{
    run r = {0, 0, calloc((size_t)q, sizeof *r.ids), calloc((size_t)q, sizeof *r.n)};
    double *t = calloc((size_t)q, sizeof *t);
    int64_t warm[TOP];
    int wn;
    search(store, agent, mode, queries[0], warm, &wn);
    for (int i = 0; i < q; i++)
        t[i] = search(store, agent, mode, queries[i], r.ids[i], &r.n[i]);
    qsort(t, (size_t)q, sizeof *t, bench_cmp_double);
    r.p50 = t[q / 2] * 1e3;
    r.p95 = t[(int)(q * 0.95)] * 1e3;
    free(t);
    return r;
}

static double overlap(const run *a, const run *b, int q)
{
    double sum = 0;
    for (int i = 0; i < q; i++) {
        int common = 0;
        for (int x = 0; x < a->n[i]; x++)
            for (int y = 0; y < b->n[i]; y++)
                common += a->ids[i][x] == b->ids[i][y];
        sum += a->n[i] ? (double)common / a->n[i] : 1;
    }
    return sum / q;
}

static void free_run(run *r)
{
    free(r->ids);
    free(r->n);
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = 100000, q = 50, random = 0, reuse = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--passages") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            q = atoi(argv[++i]);
        else if (strcmp(argv[i], "--random") == 0)
            random = 1;
        else if (strcmp(argv[i], "--reuse") == 0)
            reuse = 1;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            dir = NULL, i = argc;
    }
    if (!dir || n < 1 || q < 2) {
        fprintf(stderr, "usage: bench_archival [--passages N] [--queries Q] [--random] "
                        "[--reuse] DATA_DIR\n");
        return 2;
    }
    mg_error err = {0};
    mg_store *store;
    mg_agent *agent;
    if (mg_store_open(dir, &store, &err)) die("open", &err);
    if (!reuse) {
        mg_agent_config cfg = {.context_window = 8192};
        if (mg_agent_create(store, "arch", &cfg, &err)) die("create (use --reuse?)", &err);
    }
    if (mg_agent_open(store, "arch", &agent, &err)) die("open agent", &err);
    if (!reuse) populate(store, agent, n, random);
    int64_t count;
    archival_count(store, agent->id, &count, &err);
    printf("agent arch: %lld passages\n", (long long)count);

    char **queries = calloc((size_t)q, sizeof *queries);
    for (int i = 0; i < q; i++)
        queries[i] = text_of(2, 4);

    archival_index_set_min(store, INT64_MAX);
    run exact = searches(store, agent, ARCHIVAL_HYBRID, queries, q);
    printf("exact scan:           p50 %8.2f ms  p95 %8.2f ms\n", exact.p50, exact.p95);
    run exact_vec = searches(store, agent, ARCHIVAL_VECTOR, queries, q);
    printf("  vector ranking only: p50 %8.2f ms  p95 %8.2f ms\n", exact_vec.p50, exact_vec.p95);

    archival_index_set_min(store, 0);
    mg_index *idx;
    archival_index_info info;
    double t0 = bench_now();
    if (archival_index_get(store, agent->id, agent->embedder, &idx, &info, &err))
        die("index", &err);
    printf("index first use:      %.2f s (%s; %lld added from the table, %.0f MB in memory)\n",
           bench_now() - t0, info.from_file ? "loaded from file" : "built from the table",
           (long long)info.added, mg_index_memory(idx) / 1048576.0);
    run via = searches(store, agent, ARCHIVAL_HYBRID, queries, q);
    printf("index:                p50 %8.2f ms  p95 %8.2f ms  top-10 overlap with exact %.3f\n",
           via.p50, via.p95, overlap(&exact, &via, q));
    run via_vec = searches(store, agent, ARCHIVAL_VECTOR, queries, q);
    printf("  vector ranking only: p50 %8.2f ms  p95 %8.2f ms  top-10 overlap with exact %.3f\n",
           via_vec.p50, via_vec.p95, overlap(&exact_vec, &via_vec, q));

    t0 = bench_now();
    mg_agent_free(agent);
    mg_store_close(store);
    double close_s = bench_now() - t0;
    t0 = bench_now();
    if (mg_store_open(dir, &store, &err) || mg_agent_open(store, "arch", &agent, &err))
        die("reopen", &err);
    archival_index_set_min(store, 0);
    int64_t ids[TOP];
    int found;
    double first = search(store, agent, ARCHIVAL_HYBRID, queries[0], ids, &found);
    double reopen_s = bench_now() - t0;
    if (archival_index_get(store, agent->id, agent->embedder, &idx, &info, &err))
        die("index", &err);
    printf("close (save): %.2f s; reopen + first search: %.2f s (the search %.2f s; %s, %lld "
           "replayed, %lld added)\n",
           close_s, reopen_s, first, info.from_file ? "loaded from file" : "REBUILT",
           (long long)info.replayed, (long long)info.added);
    run again = searches(store, agent, ARCHIVAL_HYBRID, queries, q);
    printf("index after reopen:   p50 %8.2f ms  p95 %8.2f ms  top-10 overlap with exact %.3f\n",
           again.p50, again.p95, overlap(&exact, &again, q));
    printf("peak RSS: %ld MB\n", peak_rss_mb());

    free_run(&exact);
    free_run(&via);
    free_run(&exact_vec);
    free_run(&via_vec);
    free_run(&again);
    for (int i = 0; i < q; i++)
        free(queries[i]);
    free(queries);
    mg_agent_free(agent);
    mg_store_close(store);
    return 0;
}
