/*
 * bench_mcp.c - what memgpt adds to an MCP tool call over stdio.
 *
 *   bench_mcp DATA_DIR SERVER_JS [CALLS]
 *
 * Two clients call the same tool (`echo` of server-everything, run by
 * `node SERVER_JS stdio`) CALLS times each (default 2,000), in alternating
 * rounds of 100 so that load on the machine falls on both alike:
 *
 *   direct   a minimal client: one JSON-RPC line written, lines read until
 *            the answer with that id; nothing else.
 *   memgpt   the agent's whole path for one call (tools_run_external): the
 *            arguments parsed and checked, the server's row read, the
 *            client found, the request built, the answer's content turned
 *            into text, the tool message formatted for the model.
 *
 * Each client has its own server process. Then the start-up cost that a
 * process pays once per server: 5 times, a fresh store and agent whose
 * first call starts the server (spawn, Node.js loading, initialize) and
 * calls it. Prints one JSON object: p50 and p95 per call in ms for both
 * clients, the difference of the p50s, and the median first call.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "bench_util.h"
#include "memgpt.h"
#include "tools/tools.h"

#define ROUND 100

extern char **environ;

typedef struct direct {
    pid_t pid;
    int fd;
    char buf[1 << 16];
    size_t len;
    long id;
} direct;

static void direct_send(direct *d, const char *line)
{
    size_t n = strlen(line), done = 0;
    while (done < n) {
        ssize_t w = write(d->fd, line + done, n - done);
        if (w <= 0) {
            perror("bench_mcp: write");
            exit(1);
        }
        done += (size_t)w;
    }
}

/* Reads lines until one holds `"id":ID`: the answer. */
static void direct_wait(direct *d, long id)
{
    char want[48];
    snprintf(want, sizeof want, "\"id\":%ld", id);
    for (;;) {
        char *nl;
        while ((nl = memchr(d->buf, '\n', d->len))) {
            *nl = '\0';
            int found = strstr(d->buf, want) != NULL;
            size_t used = (size_t)(nl - d->buf) + 1;
            memmove(d->buf, nl + 1, d->len - used);
            d->len -= used;
            if (found) return;
        }
        ssize_t got = read(d->fd, d->buf + d->len, sizeof d->buf - d->len);
        if (got <= 0) {
            fprintf(stderr, "bench_mcp: the direct server went away\n");
            exit(1);
        }
        d->len += (size_t)got;
    }
}

static void direct_call(direct *d, const char *method, const char *params)
{
    char line[512];
    long id = ++d->id;
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"%s\",\"params\":%s}\n", id, method,
             params);
    direct_send(d, line);
    direct_wait(d, id);
}

static void direct_start(direct *d, const char *js)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) exit(1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"node", (char *)js, "stdio", NULL};
    if (posix_spawnp(&d->pid, "node", &fa, NULL, argv, environ)) exit(1);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    d->fd = sv[0];
    direct_call(d, "initialize",
                "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                "\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"}}");
    direct_send(d, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
}

static void report(const char *name, double *ms, int n, FILE *out)
{
    qsort(ms, (size_t)n, sizeof *ms, bench_cmp_double);
    fprintf(out, "\"%s\": {\"p50_ms\": %.4f, \"p95_ms\": %.4f}", name, ms[n / 2], ms[n * 95 / 100]);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bench_mcp DATA_DIR SERVER_JS [CALLS]\n");
        return 2;
    }
    int calls = argc == 4 ? atoi(argv[3]) : 2000;
    if (calls < ROUND) calls = ROUND;
    calls -= calls % ROUND;
    mg_store *store;
    mg_agent *agent;
    mg_error err = {0};
    char config[1024];
    snprintf(config, sizeof config,
             "{\"mcp_server_type\":\"stdio\",\"command\":\"node\",\"args\":[\"%s\",\"stdio\"]}",
             argv[2]);
    mg_agent_config c = {.reflect_every = -1};
    if (mg_store_open(argv[1], &store, &err) || mg_mcp_add(store, "every", config, NULL, &err) ||
        mg_agent_create(store, "bench", &c, &err) ||
        mg_agent_tool_attach(store, "bench", "every", "echo", &err) ||
        mg_agent_open(store, "bench", &agent, &err)) {
        fprintf(stderr, "bench_mcp: %s\n", err.message);
        return 1;
    }
    direct d = {0};
    direct_start(&d, argv[2]);
    mg_tool_call call = {.id = "c1", .name = "echo", .arguments = "{\"message\":\"ping\"}"};
    double *mine = calloc((size_t)calls, sizeof *mine),
           *theirs = calloc((size_t)calls, sizeof *theirs);
    for (int i = -ROUND; i < calls; i += ROUND) { /* the first round warms both up */
        for (int k = 0; k < ROUND; k++) {
            double t0 = bench_now();
            direct_call(&d, "tools/call",
                        "{\"name\":\"echo\",\"arguments\":{\"message\":\"ping\"}}");
            if (i >= 0) theirs[i + k] = (bench_now() - t0) * 1e3;
        }
        for (int k = 0; k < ROUND; k++) {
            mg_fn_outcome out = {0};
            double t0 = bench_now();
            if (tools_run_external(agent, agent->external, &call, 1, &out, &err) || !out.ok) {
                fprintf(stderr, "bench_mcp: the call failed: %s\n",
                        out.result ? out.result : err.message);
                return 1;
            }
            if (i >= 0) mine[i + k] = (bench_now() - t0) * 1e3;
            mg_fn_outcome_clear(&out);
        }
    }
    printf("{\"calls\": %d, ", calls);
    report("direct", theirs, calls, stdout);
    printf(", ");
    report("memgpt", mine, calls, stdout);
    printf(", \"extra_p50_ms\": %.4f", mine[calls / 2] - theirs[calls / 2]);
    kill(d.pid, SIGKILL);
    waitpid(d.pid, NULL, 0);
    free(mine);
    free(theirs);
    mg_agent_free(agent);
    mg_store_close(store); /* ends its server */
    double first[5];
    for (int k = 0; k < 5; k++) {
        mg_fn_outcome out = {0};
        if (mg_store_open(argv[1], &store, &err) || mg_agent_open(store, "bench", &agent, &err))
            return 1;
        double t0 = bench_now();
        if (tools_run_external(agent, agent->external, &call, 1, &out, &err) || !out.ok) return 1;
        first[k] = (bench_now() - t0) * 1e3;
        mg_fn_outcome_clear(&out);
        mg_agent_free(agent);
        mg_store_close(store);
    }
    qsort(first, 5, sizeof *first, bench_cmp_double);
    printf(", \"first_call_ms\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}}\n", first[2],
           first[0], first[4]);
    return 0;
}
