/*
 * bench_tokenizer.c - single-threaded throughput of mg_tokenizer.
 *
 *   bench_tokenizer [--encoding E] [--runs N] [--warmup N] [--ids-out FILE] TEXT_FILE
 *
 * Reads TEXT_FILE (bytes), opens the tokenizer once (timed), then encodes the
 * whole text `warmup` times untimed and `runs` times timed, and counts it
 * `runs` times timed (mg_tokenizer_count: no id array). Prints one JSON
 * object: MB/s of each timed run (MB = 10^6 bytes of input) by the wall
 * clock and by the process's CPU time (which a busy machine's preemptions do
 * not inflate), the medians, the token count, the open time and the peak
 * RSS. --ids-out writes the ids of the last encode as little-endian uint32,
 * for bench_tokenizer.sh to compare byte for byte with gpt-tokenizer's.
 *
 * Uses only include/memgpt.h. Exits 1 if the rank files are missing: a
 * benchmark of the estimate would be meaningless.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "memgpt.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, by_value);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0, got;
    char *data = malloc(cap);
    while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) data = realloc(data, cap *= 2);
    }
    fclose(f);
    *len = n;
    return data;
}

static void print_runs(const char *name, const double *v, int n)
{
    printf("\"%s\": [", name);
    for (int i = 0; i < n; i++)
        printf(i ? ", %.2f" : "%.2f", v[i]);
    printf("], ");
}

int main(int argc, char **argv)
{
    const char *encoding = "o200k_base", *ids_out = NULL, *path = NULL;
    int runs = 10, warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--encoding") == 0 && i + 1 < argc)
            encoding = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ids-out") == 0 && i + 1 < argc)
            ids_out = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            path = NULL, i = argc;
    }
    if (!path || runs < 1 || warmup < 0) {
        fprintf(stderr, "usage: bench_tokenizer [--encoding E] [--runs N] [--warmup N] "
                        "[--ids-out FILE] TEXT_FILE\n");
        return 2;
    }
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", path);
        return 1;
    }

    mg_tokenizer *tok;
    mg_error err = {0};
    double t0 = now_s();
    if (mg_tokenizer_open(encoding, &tok, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.message);
        return 1;
    }
    double open_ms = (now_s() - t0) * 1e3;
    if (!mg_tokenizer_exact(tok)) {
        fprintf(stderr, "bench_tokenizer: %s\n", mg_tokenizer_status(tok));
        return 1;
    }

    uint32_t *ids = NULL;
    size_t n = 0;
    for (int i = 0; i < warmup; i++) {
        mg_free(ids);
        mg_tokenizer_encode(tok, text, len, &ids, &n, &err);
    }
    double *enc = malloc((size_t)runs * sizeof *enc), *cnt = malloc((size_t)runs * sizeof *cnt);
    double *enc_cpu = malloc((size_t)runs * sizeof *enc_cpu);
    for (int i = 0; i < runs; i++) {
        mg_free(ids);
        double a = now_s(), c = cpu_s();
        mg_tokenizer_encode(tok, text, len, &ids, &n, &err);
        enc[i] = (double)len / (now_s() - a) / 1e6;
        enc_cpu[i] = (double)len / (cpu_s() - c) / 1e6;
    }
    size_t counted = 0;
    for (int i = 0; i < runs; i++) {
        double a = now_s();
        counted = mg_tokenizer_count(tok, text, len);
        cnt[i] = (double)len / (now_s() - a) / 1e6;
    }
    if (counted != n) {
        fprintf(stderr, "bench_tokenizer: count %zu != encode %zu\n", counted, n);
        return 1;
    }
    if (ids_out) {
        FILE *f = fopen(ids_out, "wb");
        for (size_t i = 0; f && i < n; i++) {
            unsigned char le[4] = {(unsigned char)ids[i], (unsigned char)(ids[i] >> 8),
                                   (unsigned char)(ids[i] >> 16), (unsigned char)(ids[i] >> 24)};
            fwrite(le, 1, 4, f);
        }
        if (!f || fclose(f) != 0) {
            fprintf(stderr, "bench_tokenizer: cannot write %s\n", ids_out);
            return 1;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\": \"memgpt\", \"encoding\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, ",
           encoding, len, n);
    print_runs("encode_mbps", enc, runs);
    print_runs("encode_cpu_mbps", enc_cpu, runs);
    print_runs("count_mbps", cnt, runs);
    printf("\"encode_median_mbps\": %.2f, \"count_median_mbps\": %.2f, \"open_ms\": %.2f, "
           "\"max_rss_kb\": %ld}\n",
           median(enc, runs), median(cnt, runs), open_ms, ru.ru_maxrss);
    mg_free(ids);
    free(enc);
    free(enc_cpu);
    free(cnt);
    free(text);
    mg_tokenizer_free(tok);
    return 0;
}
