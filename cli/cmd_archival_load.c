/*
 * cmd_archival_load.c - `memgpt archival load` and `memgpt archival reembed`.
 *
 * Both can run for minutes, so both show where they are. When stdout is a
 * terminal a one-line progress bar is drawn there (carriage return, erase to
 * end of line), redrawn at most ten times a second whatever the library's
 * callback rate, with the rate and an ETA. When stdout is not a terminal
 * (a pipe, a file, CI) nothing is drawn and one summary line is printed at
 * the end, the same line the terminal gets after its bar. Each file that
 * fails is one "memgpt: PATH: why" line on stderr; the bar is erased first
 * so the two never share a line.
 *
 * Exit status of load: 0 when every file loaded, 1 when some failed (the
 * summary says how many) or the load had to stop, 2 for usage errors.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ------------------------------------------------------------ options */

typedef struct opt {
    const char *name;
    const char **value; /* options with a value */
    int *flag;          /* flags */
} opt;

/* Splits argv into the options of `table` and positionals (at most
 * argc of them, stored in pos). "--" ends options. */
static int parse(int argc, char **argv, const opt *table, char **pos, int *npos)
{
    *npos = 0;
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        if (only_positional || argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--") == 0) {
            only_positional = 1;
            continue;
        }
        const opt *o = table;
        while (o->name && strcmp(o->name, argv[i]) != 0)
            o++;
        if (!o->name) return cli_usage("unknown option %s", argv[i]);
        if (o->flag) {
            *o->flag = 1;
        } else {
            if (i + 1 >= argc) return cli_usage("%s needs a value", argv[i]);
            *o->value = argv[++i];
        }
    }
    return EXIT_OK;
}

static int parse_count(const char *text, const char *what, int min, int max, int *out)
{
    if (!text) return EXIT_OK;
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < min || v > max)
        return cli_usage("%s must be a whole number from %d to %d", what, min, max);
    *out = (int)v;
    return EXIT_OK;
}

/* ---------------------------------------------------------- the bar */

typedef struct bar {
    int tty;          /* stdout is a terminal: draw */
    int drawn;        /* a bar is on the screen now */
    double last_draw; /* monotonic seconds */
} bar;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

static void bar_clear(bar *b)
{
    if (!b->drawn) return;
    fputs("\r\033[K", stdout);
    fflush(stdout);
    b->drawn = 0;
}

/* Redraws at most every 0.1 s unless `force`. */
static void bar_draw(bar *b, double fraction, const char *detail, int force)
{
    if (!b->tty) return;
    double t = now_seconds();
    if (!force && b->drawn && t - b->last_draw < 0.1) return;
    b->last_draw = t;
    if (fraction < 0) fraction = 0;
    if (fraction > 1) fraction = 1;
    int width = terminal_width();
    char line[512];
    int cells = width >= 70 ? 24 : 10, filled = (int)(fraction * cells + 0.5);
    int n = snprintf(line, sizeof line, "\r[");
    for (int i = 0; i < cells && n < (int)sizeof line - 1; i++)
        line[n++] = i < filled ? '#' : '.';
    snprintf(line + n, sizeof line - (size_t)n, "] %3d%%  %s", (int)(fraction * 100), detail);
    /* Never wrap: a wrapped line would not be overwritten by the next \r. */
    if ((int)strlen(line) > width) line[width] = '\0';
    fputs(line, stdout);
    fputs("\033[K", stdout);
    fflush(stdout);
    b->drawn = 1;
}

static void format_eta(double seconds, char *out, size_t size)
{
    if (seconds < 0 || seconds > 359999) {
        snprintf(out, size, "--:--");
        return;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, size, "%d:%02d", s / 60, s % 60);
}

/* Prints a path with control characters made harmless (file names may hold
 * escape sequences). */
static void put_safe(const char *text, FILE *out)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, out);
}

/* ---------------------------------------------------------- load */

typedef struct load_ui {
    bar bar;
} load_ui;

static void on_load(const mg_load_event *ev, void *user)
{
    load_ui *ui = user;
    const mg_load_stats *s = ev->stats;
    if (ev->type == MG_LOAD_FILE_ERROR) {
        bar_clear(&ui->bar);
        fputs("memgpt: ", stderr);
        put_safe(ev->path ? ev->path : "?", stderr);
        if (ev->line) fprintf(stderr, ":%d", ev->line);
        fprintf(stderr, ": %s\n",
                ev->error && ev->error->message[0] ? ev->error->message : "cannot load");
        fflush(stderr);
        return;
    }
    double rate = s->seconds > 0 ? s->bytes_done / s->seconds : 0;
    char eta[32], detail[256];
    format_eta(rate > 0 ? (s->bytes_total - s->bytes_done) / rate : -1, eta, sizeof eta);
    snprintf(detail, sizeof detail,
             "%.1f/%.1f MB  %.1f MB/s  ETA %s  files %lld/%lld  +%lld chunks", s->bytes_done / 1e6,
             s->bytes_total / 1e6, rate / 1e6, eta, (long long)s->files_done,
             (long long)s->files_total, (long long)s->chunks_added);
    bar_draw(&ui->bar, s->bytes_total > 0 ? (double)s->bytes_done / s->bytes_total : 0, detail, 0);
}

static const char *plural(int64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void print_load_summary(const mg_load_stats *s)
{
    double secs = s->seconds > 0 ? s->seconds : 1e-9;
    printf("%lld %s, %lld %s added, %lld skipped as %s, %lld %s, %.2f MB in %.2f s (%.2f MB/s)",
           (long long)s->files_done, plural(s->files_done, "file", "files"),
           (long long)s->chunks_added, plural(s->chunks_added, "chunk", "chunks"),
           (long long)s->chunks_skipped, plural(s->chunks_skipped, "duplicate", "duplicates"),
           (long long)s->errors, plural(s->errors, "error", "errors"), s->bytes_done / 1e6,
           s->seconds, s->bytes_done / 1e6 / secs);
    if (s->files_failed)
        printf("; %lld %s failed", (long long)s->files_failed,
               plural(s->files_failed, "file", "files"));
    if (s->files_ignored)
        printf("; %lld %s of other types ignored", (long long)s->files_ignored,
               plural(s->files_ignored, "file", "files"));
    printf("\n");
    fflush(stdout);
}

int cmd_archival_load(cli *c, int argc, char **argv)
{
    const char *agent_name = NULL, *chunk = NULL, *overlap = NULL, *batch = NULL, *timeout = NULL;
    opt table[] = {{"--agent", &agent_name, NULL},    {"--chunk-tokens", &chunk, NULL},
                   {"--overlap", &overlap, NULL},     {"--batch", &batch, NULL},
                   {"--pdf-timeout", &timeout, NULL}, {0}};
    char **paths = calloc((size_t)argc + 1, sizeof *paths);
    int npaths = 0, overlap_tokens = -2;
    mg_load_options o = {0};
    int rc = paths ? parse(argc, argv, table, paths, &npaths) : EXIT_RUNTIME;
    if (!rc && npaths == 0) rc = cli_usage("archival load needs at least one FILE or DIRECTORY");
    if (!rc) rc = parse_count(chunk, "--chunk-tokens", 16, 8192, &o.chunk_tokens);
    if (!rc) rc = parse_count(overlap, "--overlap", 0, 4095, &overlap_tokens);
    if (!rc && overlap) o.overlap_tokens = overlap_tokens == 0 ? -1 : overlap_tokens;
    if (!rc) rc = parse_count(batch, "--batch", 1, 10000, &o.batch_size);
    if (!rc) rc = parse_count(timeout, "--pdf-timeout", 1, 86400, &o.pdf_timeout_seconds);
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, agent_name, &agent);
    if (!rc) {
        load_ui ui = {.bar = {.tty = isatty(STDOUT_FILENO)}};
        mg_load_stats stats;
        mg_error err = {0};
        mg_status st = mg_archival_load(agent, (const char *const *)paths, npaths, &o, on_load, &ui,
                                        &stats, &err);
        bar_clear(&ui.bar);
        if (st == MG_ERR_USAGE) {
            rc = cli_fail(&err);
        } else {
            print_load_summary(&stats);
            if (st)
                rc = cli_fail(&err);
            else if (stats.files_failed)
                rc = EXIT_RUNTIME;
        }
    }
    mg_agent_free(agent);
    free(paths);
    return rc;
}

/* ------------------------------------------------------------ reembed */

static void on_reembed(const mg_reembed_stats *s, void *user)
{
    bar *b = user;
    double rate = s->seconds > 0 ? s->done / s->seconds : 0;
    char eta[32], detail[200];
    format_eta(rate > 0 ? (s->total - s->done) / rate : -1, eta, sizeof eta);
    snprintf(detail, sizeof detail, "%lld/%lld passages  %.0f/s  ETA %s", (long long)s->done,
             (long long)s->total, rate, eta);
    bar_draw(b, s->total > 0 ? (double)s->done / s->total : 1, detail, 0);
}

/* The agent's embedder spec, from its description. Caller frees. */
static char *embedder_of(mg_agent *agent)
{
    char *text = NULL;
    mg_error err = {0};
    if (mg_agent_describe(agent, &text, &err)) return strdup("?");
    json_t *obj = json_loads(text, 0, NULL);
    mg_free(text);
    const char *spec = json_string_value(json_object_get(obj, "embedder"));
    char *out = strdup(spec ? spec : "?");
    json_decref(obj);
    return out;
}

int cmd_archival_reembed(cli *c, int argc, char **argv)
{
    const char *agent_name = NULL, *batch = NULL;
    opt table[] = {{"--agent", &agent_name, NULL}, {"--batch", &batch, NULL}, {0}};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0, batch_size = 0;
    int rc = pos ? parse(argc, argv, table, pos, &npos) : EXIT_RUNTIME;
    if (!rc && npos) rc = cli_usage("archival reembed takes no arguments");
    if (!rc) rc = parse_count(batch, "--batch", 1, 10000, &batch_size);
    free(pos);
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, agent_name, &agent);
    if (!rc) {
        bar b = {.tty = isatty(STDOUT_FILENO)};
        mg_reembed_stats s;
        mg_error err = {0};
        mg_status st = mg_archival_reembed(agent, batch_size, on_reembed, &b, &s, &err);
        bar_clear(&b);
        char *spec = embedder_of(agent);
        double secs = s.seconds > 0 ? s.seconds : 1e-9;
        if (!st || s.done)
            printf("re-embedded %lld of %lld %s with %s, %lld already current, in %.2f s (%.0f "
                   "passages/s)\n",
                   (long long)s.done, (long long)s.total, plural(s.total, "passage", "passages"),
                   spec, (long long)s.current, s.seconds, s.done / secs);
        fflush(stdout);
        free(spec);
        if (st) rc = cli_fail(&err);
    }
    mg_agent_free(agent);
    return rc;
}
