/*
 * bench_turn.c - whole turns through the library, for bench/bench_server.py:
 * the reference the server's own cost per turn is compared with.
 *
 *   bench_turn DATA_DIR TURNS [WARMUP]
 *   bench_turn DATA_DIR --serve
 *
 * Creates agent "lib" (openai/gpt-4o-mini, reflection off) in DATA_DIR and
 * runs WARMUP untimed turns (default 0), then TURNS calls of mg_agent_send
 * against the OpenAI endpoint the
 * environment names (OPENAI_BASE_URL: the mock, answering at once), timing
 * each call. Prints one JSON object: the p50 and p95 in milliseconds.
 * With --serve it runs one turn per line read from stdin and prints its
 * time in milliseconds, so a driver can interleave library turns with the
 * server's and load on the machine falls on both alike. The
 * server's turns make the same provider calls, so the difference between
 * its figure and this one is what the server adds (HTTP, queueing, opening
 * the agent afresh, Letta's JSON).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "memgpt.h"

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bench_turn DATA_DIR TURNS [WARMUP] | DATA_DIR --serve\n");
        return 2;
    }
    int serve = strcmp(argv[2], "--serve") == 0;
    int turns = serve ? 0 : atoi(argv[2]), warmup = argc == 4 ? atoi(argv[3]) : 0;
    mg_store *store;
    mg_agent *agent;
    mg_error err = {0};
    mg_agent_config c = {.model = "openai/gpt-4o-mini", .reflect_every = -1};
    if (mg_store_open(argv[1], &store, &err) || mg_agent_create(store, "lib", &c, &err) ||
        mg_agent_open(store, "lib", &agent, &err)) {
        fprintf(stderr, "bench_turn: %s\n", err.message);
        return 1;
    }
    char line[256];
    while (serve && fgets(line, sizeof line, stdin)) {
        double t0 = bench_now();
        if (mg_agent_send(agent, "hello there, how are you today?", NULL, NULL, &err)) {
            fprintf(stderr, "bench_turn: %s\n", err.message);
            return 1;
        }
        printf("%.3f\n", (bench_now() - t0) * 1e3);
        fflush(stdout);
    }
    if (serve) {
        mg_agent_free(agent);
        mg_store_close(store);
        return 0;
    }
    for (int i = 0; i < warmup; i++)
        if (mg_agent_send(agent, "warm up", NULL, NULL, &err)) {
            fprintf(stderr, "bench_turn: warm-up: %s\n", err.message);
            return 1;
        }
    double *ms = calloc((size_t)turns, sizeof *ms);
    for (int i = 0; i < turns; i++) {
        double t0 = bench_now();
        if (mg_agent_send(agent, "hello there, how are you today?", NULL, NULL, &err)) {
            fprintf(stderr, "bench_turn: turn %d: %s\n", i, err.message);
            return 1;
        }
        ms[i] = (bench_now() - t0) * 1e3;
    }
    qsort(ms, (size_t)turns, sizeof *ms, bench_cmp_double);
    printf("{\"turns\": %d, \"p50_ms\": %.3f, \"p95_ms\": %.3f}\n", turns, ms[turns / 2],
           ms[(int)(turns * 0.95)]);
    free(ms);
    mg_agent_free(agent);
    mg_store_close(store);
    return 0;
}
