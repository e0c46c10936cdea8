/*
 * cmd_tokenize.c - `memgpt tokenize`: count or list the tokens of a text.
 *
 *   memgpt tokenize [--encoding cl100k_base|o200k_base] [--ids] [FILE|-]
 *
 * Prints the number of tokens (a line with one number) or, with --ids, the
 * token ids separated by spaces on one line. The text is FILE's bytes, or
 * stdin with "-" or no FILE; it is taken as bytes, so a file that is not
 * UTF-8 still encodes (see mg_tokenizer_encode). The default encoding is
 * o200k_base (GPT-4o and later).
 *
 * Without the rank files the count is the library's estimate, and stderr
 * says so once; --ids then fails, since an estimate has no ids. The command
 * needs no data directory and no agent.
 *
 * cli_tokens_notice, here because it is the same message for the agent's
 * counter, prints it once per process for the commands that count (send,
 * chat, context).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_tokens_notice(mg_agent *agent)
{
    static int shown;
    if (shown || !agent) return;
    const char *notice = mg_agent_tokens_notice(agent);
    if (!notice) return;
    shown = 1;
    fprintf(stderr, "memgpt: notice: %s\n", notice);
}

/* All of `f` as bytes (NUL bytes included). Caller frees *data. 0 or -1. */
static int read_all(FILE *f, char **data, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    while (out) {
        size_t got = fread(out + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
        if (n == cap) {
            char *bigger = realloc(out, cap * 2);
            if (!bigger) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
            cap *= 2;
        }
    }
    if (!out || ferror(f)) {
        free(out);
        return -1;
    }
    *data = out;
    *len = n;
    return 0;
}

static int read_input(const char *path, char **data, size_t *len)
{
    if (!path || strcmp(path, "-") == 0) {
        if (read_all(stdin, data, len) == 0) return EXIT_OK;
        fprintf(stderr, "memgpt: cannot read stdin\n");
        return EXIT_RUNTIME;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "memgpt: %s: %s\n", path, strerror(errno));
        return EXIT_RUNTIME;
    }
    int bad = read_all(f, data, len);
    fclose(f);
    if (bad) {
        fprintf(stderr, "memgpt: %s: read failed\n", path);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static int print_ids(mg_tokenizer *tok, const char *text, size_t len)
{
    uint32_t *ids;
    size_t n;
    mg_error err = {0};
    if (mg_tokenizer_encode(tok, text, len, &ids, &n, &err)) return cli_fail(&err);
    for (size_t i = 0; i < n; i++)
        printf(i ? " %u" : "%u", ids[i]);
    putchar('\n');
    mg_free(ids);
    return EXIT_OK;
}

int cmd_tokenize(cli *c, int argc, char **argv)
{
    (void)c;
    const char *encoding = "o200k_base", *path = NULL;
    int ids = 0, only_positional = 0, npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = 1;
        } else if (!only_positional && strcmp(a, "--ids") == 0) {
            ids = 1;
        } else if (!only_positional && strcmp(a, "--encoding") == 0) {
            if (i + 1 >= argc) return cli_usage("--encoding needs a value");
            encoding = argv[++i];
        } else if (!only_positional && a[0] == '-' && a[1] != '\0') {
            return cli_usage("unknown option %s", a);
        } else {
            path = a;
            npos++;
        }
    }
    if (npos > 1) return cli_usage("tokenize takes one FILE (or - for stdin)");

    mg_tokenizer *tok;
    mg_error err = {0};
    if (mg_tokenizer_open(encoding, &tok, &err)) return cli_fail(&err);
    char *text = NULL;
    size_t len = 0;
    int rc = read_input(path, &text, &len);
    if (!rc && ids) {
        rc = print_ids(tok, text, len);
    } else if (!rc) {
        if (!mg_tokenizer_exact(tok)) fprintf(stderr, "memgpt: %s\n", mg_tokenizer_status(tok));
        printf("%zu\n", mg_tokenizer_count(tok, text, len));
    }
    if (!rc && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "memgpt: cannot write the output\n");
        rc = EXIT_RUNTIME;
    }
    free(text);
    mg_tokenizer_free(tok);
    return rc;
}
