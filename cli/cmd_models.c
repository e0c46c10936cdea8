/*
 * cmd_models.c - `memgpt models [--provider P] [--json]`: the models the
 * configured endpoint of a provider offers.
 *
 * Text output is one model id per line, so it pipes into grep or fzf; the
 * ids come from the network, so control characters are replaced before they
 * reach a terminal. --json prints the library's JSON array unchanged. The
 * command needs no data directory and never opens one.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Prints one id, with control characters (escape sequences, newlines) made
 * harmless: a hostile server must not be able to drive the terminal. */
static void print_id(const char *id)
{
    for (const unsigned char *c = (const unsigned char *)id; *c; c++)
        putchar(*c < 0x20 || *c == 0x7f ? '?' : *c);
    putchar('\n');
}

static void print_models(const char *json)
{
    json_t *list = json_loads(json, 0, NULL);
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (id) print_id(id);
    }
    json_decref(list);
}

int cmd_models(cli *c, int argc, char **argv)
{
    (void)c;
    const char *provider = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--provider") == 0) {
            if (i + 1 >= argc) return cli_usage("--provider needs a value");
            provider = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage("unknown option %s", argv[i]);
        } else {
            return cli_usage("models takes no arguments (use --provider NAME)");
        }
    }
    char *text = NULL;
    mg_error err = {0};
    mg_status st = mg_models_list(provider, &text, &err);
    return cli_print_answer(st, text, &err, json, print_models);
}
