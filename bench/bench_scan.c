/*
 * bench_scan.c - the vector index's scan of codes against its exact scan, on
 * passages embedded by the offline embedder: recall@10 and time per query.
 *
 *   bench_scan PASSAGES_FILE QUERIES_FILE
 *
 * Each file holds one text per line (bench_scan.sh writes them). Every
 * passage is embedded with the offline embedder and added to an index that
 * never builds a graph (exact_below at its maximum), so mg_index_search
 * scans: above 8,192 vectors it scores the sign codes, then re-scores the
 * best few thousand full vectors ("Codes" in src/index/index.c). Each query
 * is embedded the same way and searched both ways; recall@10 is |codes top
 * 10 & exact top 10| / 10, averaged. Archival search embeds its queries with
 * word weights (IDF); these are plain, so the figure is for the vectors, not
 * for a whole archival search. One thread, in memory (no file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "embed/embedder.h"
#include "index/index.h"

#define TOPK  10
#define BATCH 1000

static char **read_lines(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char **lines = NULL, *line = NULL;
    size_t cap = 0, len_cap = 0;
    int count = 0;
    ssize_t len;
    while ((len = getline(&line, &len_cap, f)) > 0) {
        if (line[len - 1] == '\n') line[len - 1] = '\0';
        if ((size_t)count == cap) {
            cap = cap ? 2 * cap : 1024;
            lines = realloc(lines, cap * sizeof *lines);
        }
        lines[count++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n = count;
    return lines;
}

static float *embed(const char *text, int *dim)
{
    float *v;
    mg_error err = {0};
    if (mg_embed_text("offline", text, &v, dim, &err) != MG_OK) {
        fprintf(stderr, "embed: %s\n", err.message);
        exit(1);
    }
    return v;
}

static void search(mg_index *x, const float *q, int exact, int64_t *ids, int *found)
{
    mg_error err = {0};
    mg_status st = exact ? mg_index_search_exact(x, q, TOPK, ids, NULL, found, &err)
                         : mg_index_search(x, q, TOPK, 0, ids, NULL, found, &err);
    if (st != MG_OK) {
        fprintf(stderr, "search: %s\n", err.message);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_scan PASSAGES_FILE QUERIES_FILE\n");
        return 2;
    }
    int np, nq, dim;
    char **passages = read_lines(argv[1], &np), **queries = read_lines(argv[2], &nq);
    /* As archival memory makes them for the offline embedder: no graph. */
    mg_index_params p = {.exact_below = 2147483647, .lazy_graph = 1};
    mg_index *x;
    float *v = embed("x", &dim);
    free(v);
    if (mg_index_new(dim, &p, &x, NULL) != MG_OK) return 1;
    double t0 = bench_now();
    for (int i = 0; i < np; i += BATCH) {
        int k = np - i < BATCH ? np - i : BATCH;
        float *vecs[BATCH];
        mg_error err = {0};
        if (mg_embed_texts("offline", (const char *const *)passages + i, k, vecs, &dim, &err)) {
            fprintf(stderr, "embed: %s\n", err.message);
            return 1;
        }
        for (int j = 0; j < k; j++) {
            if (mg_index_add(x, i + j, vecs[j], NULL) != MG_OK) return 1;
            free(vecs[j]);
        }
    }
    printf("passages: %d, %d dimensions, embedded and added in %.1f s\n", np, dim,
           bench_now() - t0);

    double *t_codes = malloc((size_t)nq * sizeof(double)),
           *t_exact = malloc((size_t)nq * sizeof(double));
    double hits = 0;
    for (int i = 0; i < nq; i++) {
        float *q = embed(queries[i], &dim);
        int64_t a[TOPK], b[TOPK];
        int fa, fb;
        double t = bench_now();
        search(x, q, 0, a, &fa);
        t_codes[i] = bench_now() - t;
        t = bench_now();
        search(x, q, 1, b, &fb);
        t_exact[i] = bench_now() - t;
        int h = 0;
        for (int j = 0; j < fa; j++)
            for (int k = 0; k < fb; k++)
                h += a[j] == b[k];
        hits += fb ? (double)h / fb : 1.0;
        free(q);
    }
    qsort(t_codes, (size_t)nq, sizeof(double), bench_cmp_double);
    qsort(t_exact, (size_t)nq, sizeof(double), bench_cmp_double);
    printf("queries: %d; recall@10 of the codes against the exact scan: %.4f\n", nq, hits / nq);
    printf("per query, p50 / p95: codes %.2f / %.2f ms, exact %.2f / %.2f ms\n",
           t_codes[nq / 2] * 1e3, t_codes[nq * 95 / 100] * 1e3, t_exact[nq / 2] * 1e3,
           t_exact[nq * 95 / 100] * 1e3);
    mg_index_free(x);
    for (int i = 0; i < np; i++)
        free(passages[i]);
    for (int i = 0; i < nq; i++)
        free(queries[i]);
    free(passages);
    free(queries);
    free(t_codes);
    free(t_exact);
    return 0;
}
