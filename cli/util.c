/*
 * util.c - helpers shared by the CLI commands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const mg_error *err)
{
    fprintf(stderr, "memgpt: %s\n", err->message[0] ? err->message : mg_status_name(err->code));
    return err->code == MG_ERR_USAGE ? EXIT_USAGE : EXIT_RUNTIME;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("memgpt: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see memgpt --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_open_store(cli *c)
{
    if (c->store) return EXIT_OK;
    c->home = mg_home_resolve(c->home_arg);
    if (!c->home) {
        fprintf(stderr, "memgpt: no data directory: set --home, MEMGPT_HOME or HOME\n");
        return EXIT_RUNTIME;
    }
    mg_error err = {0};
    if (mg_store_open(c->home, &c->store, &err)) return cli_fail(&err);
    return EXIT_OK;
}

void cli_one_shot(cli *c)
{
    /* 256 KiB: the fastest of 64-2,000 KiB for a search at 100k passages
     * (bench/README.md, section 14); a failure only costs speed. Not for
     * bulk inserts: they ran 20-30% slower with it. */
    if (c->store) mg_store_set_cache_size(c->store, 256, NULL);
}

int cli_open_agent(cli *c, const char *name, mg_agent **out)
{
    int rc = cli_open_store(c);
    if (rc) return rc;
    if (!name || !*name) name = getenv("MEMGPT_AGENT");
    if (!name || !*name) name = "default";
    mg_error err = {0};
    mg_status st = mg_agent_open(c->store, name, out, &err);
    if (st == MG_ERR_NOT_FOUND && strcmp(name, "default") == 0) {
        mg_error create_err = {0};
        if (mg_agent_create(c->store, name, NULL, &create_err) != MG_OK &&
            create_err.code != MG_ERR_EXISTS)
            return cli_fail(&create_err);
        st = mg_agent_open(c->store, name, out, &err);
    }
    if (st == MG_ERR_NOT_FOUND)
        snprintf(err.message, sizeof err.message,
                 "no agent named '%s' (create it with: memgpt agents create %s)", name, name);
    return st ? cli_fail(&err) : EXIT_OK;
}

/* Doubles the buffer of read_stream. 0 when out of memory (data freed). */
static int grow(char **data, size_t *cap)
{
    char *bigger = realloc(*data, *cap * 2);
    if (!bigger) {
        free(*data);
        *data = NULL;
        return 0;
    }
    *data = bigger;
    *cap *= 2;
    return 1;
}

/* All of `f`, or NULL after saying why on stderr. A read error must not
 * pass for the end of the input: a message or document cut short would be
 * sent or stored as if whole. A read cut short by a signal is made again. */
static char *read_stream(FILE *f, const char *name)
{
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    while (data) {
        size_t n = fread(data + len, 1, cap - len - 1, f);
        len += n;
        if (n) {
            if (cap - len - 1 == 0 && !grow(&data, &cap)) break;
            continue;
        }
        if (!ferror(f) || errno != EINTR) break;
        clearerr(f);
    }
    if (!data) {
        fprintf(stderr, "memgpt: cannot read %s: out of memory\n", name);
        return NULL;
    }
    if (ferror(f)) {
        fprintf(stderr, "memgpt: cannot read %s: %s\n", name, strerror(errno));
        free(data);
        return NULL;
    }
    data[len] = '\0';
    return data;
}

int cli_learn_context_window(const char *model, const char *fallback)
{
    int tokens = 0;
    mg_error err = {0};
    mg_status st = mg_model_context_window_query(model, &tokens, &err);
    /* A bad handle or a missing key is reported by the command itself. */
    if (st && st != MG_ERR_USAGE && st != MG_ERR_AUTH)
        fprintf(stderr,
                "memgpt: note: could not learn the context window of %s (%s); %s (set "
                "--context-window to choose)\n",
                model, err.message, fallback);
    return tokens;
}

char *cli_read_stdin(void)
{
    return read_stream(stdin, "stdin");
}

char *cli_text_arg_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "memgpt: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *text = read_stream(f, path);
    fclose(f);
    return text;
}

char *cli_text_arg(const char *arg)
{
    return arg[0] == '@' ? cli_text_arg_file(arg + 1) : strdup(arg);
}

char *cli_join(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *out = malloc(len);
    if (!out) {
        fprintf(stderr, "memgpt: out of memory\n");
        return NULL;
    }
    out[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i) strcat(out, " ");
        strcat(out, argv[i]);
    }
    return out;
}

void cli_print_event(const mg_event *ev, FILE *out, int verbose)
{
    switch (ev->type) {
    case MG_EVENT_ASSISTANT:
        fprintf(out, "%s\n", ev->text);
        break;
    case MG_EVENT_REASONING:
        if (verbose) fprintf(out, "  (thinking) %s\n", ev->text);
        break;
    case MG_EVENT_TOOL_CALL:
        if (verbose) fprintf(out, "  -> %s(%s)\n", ev->tool_name, ev->tool_args);
        break;
    case MG_EVENT_TOOL_RETURN:
        if (verbose) fprintf(out, "  <- %s\n", ev->text);
        break;
    case MG_EVENT_SYSTEM:
        fprintf(verbose ? out : stderr, "  [system] %s\n", ev->text);
        break;
    case MG_EVENT_USAGE:
        if (verbose)
            fprintf(out, "  [usage] %d steps, %d prompt + %d completion tokens\n", ev->step_count,
                    ev->prompt_tokens, ev->completion_tokens);
        break;
    case MG_EVENT_ASSISTANT_DELTA:
        fputs(ev->text, out); /* a piece of a reply: its line is not over */
        break;
    }
    fflush(out);
}

int cli_print_answer(mg_status st, char *json, const mg_error *err, int raw,
                     void (*render)(const char *))
{
    if (st) return cli_fail(err);
    if (raw || !render)
        printf("%s\n", json);
    else
        render(json);
    mg_free(json);
    return EXIT_OK;
}
