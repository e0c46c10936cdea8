/*
 * bench_embed.c - the offline embedder's throughput, against two references
 * measured in the same run on the same passages.
 *
 *   bench_embed [--passage BYTES] [--seconds S] FILE...
 *
 * The files' text is cut into passages of about BYTES bytes (default 1,000,
 * about what `archival load` stores: 300 tokens of English) at spaces, and
 * each of three passes goes over all of them, repeated for at least S
 * seconds (default 2) of wall clock, five times; the figure is the median
 * round's MB/s (1 MB = 10^6 bytes of text):
 *
 *  - embed: mg_embed_offline into 384 floats, as every stored passage and
 *    every query with the offline embedder is;
 *  - fts5: an INSERT into an in-memory FTS5 table with archival memory's
 *    tokenizer (porter unicode61 remove_diacritics 2), one transaction a
 *    round: the text indexing every stored passage gets anyway;
 *  - sha256: the content hash `archival load` computes for duplicates.
 *
 * One thread. Timings are wall clock on an otherwise idle process; run it
 * through bench/bench_embed.sh, which generates the text.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "embed/embed.h"
#include "util/sha256.h"

#define ROUNDS 5

typedef struct passages {
    const char **text;
    size_t *len;
    int n;
    size_t bytes;
} passages;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_embed: %s: %s\n", what, detail);
    exit(1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, "cannot open");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) die(path, "cannot read");
    fclose(f);
    data[size] = '\0';
    *len = (size_t)size;
    return data;
}

/* Cuts text into passages of about `target` bytes, at the first space after
 * that many (the text stays in place; the cuts become NULs). */
static void cut(char *text, size_t len, size_t target, passages *p)
{
    size_t at = 0;
    while (at < len) {
        size_t end = at + target < len ? at + target : len;
        while (end < len && text[end] != ' ' && text[end] != '\n')
            end++;
        p->text = realloc(p->text, (size_t)(p->n + 1) * sizeof *p->text);
        p->len = realloc(p->len, (size_t)(p->n + 1) * sizeof *p->len);
        if (!p->text || !p->len) die("cut", "out of memory");
        if (end < len) text[end] = '\0';
        p->text[p->n] = text + at;
        p->len[p->n] = end - at;
        p->bytes += end - at;
        p->n++;
        at = end + 1;
    }
}

typedef void (*pass_fn)(const passages *p, void *ctx);

static void embed_pass(const passages *p, void *ctx)
{
    float *vec = ctx;
    for (int i = 0; i < p->n; i++)
        mg_embed_offline(p->text[i], p->len[i], vec, MG_EMBED_OFFLINE_DIM);
}

static void sha_pass(const passages *p, void *ctx)
{
    unsigned char *digest = ctx;
    for (int i = 0; i < p->n; i++) {
        mg_sha256 h;
        mg_sha256_init(&h);
        mg_sha256_update(&h, p->text[i], p->len[i]);
        mg_sha256_final(&h, digest);
    }
}

static void fts_pass(const passages *p, void *ctx)
{
    sqlite3 *db = ctx;
    sqlite3_stmt *ins;
    if (sqlite3_exec(db, "DELETE FROM t; BEGIN", 0, 0, 0) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO t(text) VALUES (?)", -1, &ins, NULL) != SQLITE_OK)
        die("fts5", sqlite3_errmsg(db));
    for (int i = 0; i < p->n; i++) {
        sqlite3_bind_text(ins, 1, p->text[i], (int)p->len[i], SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE) die("fts5 insert", sqlite3_errmsg(db));
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (sqlite3_exec(db, "COMMIT", 0, 0, 0) != SQLITE_OK) die("fts5", sqlite3_errmsg(db));
}

/* The median over ROUNDS rounds of MB/s, each round repeating the pass for
 * at least `seconds`. */
static double measure(const passages *p, pass_fn pass, void *ctx, double seconds)
{
    double rates[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double start = bench_now(), elapsed;
        int reps = 0;
        do {
            pass(p, ctx);
            reps++;
            elapsed = bench_now() - start;
        } while (elapsed < seconds);
        rates[r] = (double)p->bytes * reps / elapsed / 1e6;
    }
    qsort(rates, ROUNDS, sizeof rates[0], bench_cmp_double);
    return rates[ROUNDS / 2];
}

int main(int argc, char **argv)
{
    size_t target = 1000;
    double seconds = 2;
    int first = 1;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first += 2) {
        if (first + 1 >= argc) die(argv[first], "needs a value");
        if (strcmp(argv[first], "--passage") == 0)
            target = (size_t)atol(argv[first + 1]);
        else if (strcmp(argv[first], "--seconds") == 0)
            seconds = atof(argv[first + 1]);
        else
            die(argv[first], "unknown option");
    }
    if (first >= argc || target < 16 || seconds <= 0) {
        fprintf(stderr, "usage: bench_embed [--passage BYTES] [--seconds S] FILE...\n");
        return 2;
    }
    passages p = {0};
    char **texts = calloc((size_t)argc, sizeof *texts);
    for (int i = first; i < argc; i++) {
        size_t len;
        texts[i] = read_file(argv[i], &len);
        cut(texts[i], len, target, &p);
    }

    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE VIRTUAL TABLE t USING fts5(text, tokenize = 'porter unicode61 "
                     "remove_diacritics 2')",
                     0, 0, 0) != SQLITE_OK)
        die("fts5", sqlite3_errmsg(db));
    float *vec = malloc(MG_EMBED_OFFLINE_DIM * sizeof *vec);
    unsigned char digest[32];

    printf("%d passages of ~%zu bytes, %.1f MB; median of %d rounds of >= %.1f s\n", p.n, target,
           (double)p.bytes / 1e6, ROUNDS, seconds);
    double embed = measure(&p, embed_pass, vec, seconds);
    double fts = measure(&p, fts_pass, db, seconds);
    double sha = measure(&p, sha_pass, digest, seconds);
    printf("offline embedder (mg_embed_offline, 384-d)   %8.1f MB/s\n", embed);
    printf("reference: FTS5 insert, archival tokenizer   %8.1f MB/s\n", fts);
    printf("reference: SHA-256                           %8.1f MB/s\n", sha);
    printf("embedder / FTS5: %.2fx the rate; target >= 20 MB/s: %s\n", embed / fts,
           embed >= 20 ? "met" : "missed");

    sqlite3_close(db);
    free(vec);
    for (int i = first; i < argc; i++)
        free(texts[i]);
    free(texts);
    free(p.text);
    free(p.len);
    return 0;
}
