/*
 * cmd_agent_file.c - `memgpt agents export NAME [-o FILE]` and `memgpt
 * agents import FILE [--name NEW] [--model HANDLE]`: Agent Files (.af),
 * Letta's format for moving agents between servers (mg_agent_export and
 * mg_agent_import). "-" is stdout for export and stdin for import.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_agents_export(cli *c, int argc, char **argv)
{
    const char *out_path = NULL, *name = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc) return cli_usage("%s needs a file", argv[i]);
            out_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("unknown option %s", argv[i]);
        } else if (name) {
            return cli_usage("agents export takes one NAME");
        } else {
            name = argv[i];
        }
    }
    if (!name) return cli_usage("agents export needs a NAME");
    int rc = cli_open_store(c);
    if (rc) return rc;
    mg_agent *agent;
    mg_error err = {0};
    if (mg_agent_open(c->store, name, &agent, &err)) return cli_fail(&err);
    char *doc;
    mg_status st = mg_agent_export(agent, &doc, &err);
    mg_agent_free(agent);
    if (st) return cli_fail(&err);
    FILE *f = !out_path || strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "wb");
    int ok = f && fputs(doc, f) >= 0 && fputc('\n', f) != EOF;
    if (f && f != stdout) ok = fclose(f) == 0 && ok;
    mg_free(doc);
    if (!ok) {
        mg_error io = {.code = MG_ERR_IO};
        snprintf(io.message, sizeof io.message, "cannot write %s", out_path ? out_path : "stdout");
        return cli_fail(&io);
    }
    if (f != stdout) fprintf(stderr, "exported agent %s to %s\n", name, out_path);
    return EXIT_OK;
}

int cmd_agents_import(cli *c, int argc, char **argv)
{
    mg_import_options opt = {0};
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        const char **value = strcmp(argv[i], "--name") == 0    ? &opt.name
                             : strcmp(argv[i], "--model") == 0 ? &opt.model
                                                               : NULL;
        if (value) {
            if (i + 1 >= argc) return cli_usage("%s needs a value", argv[i]);
            *value = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("unknown option %s", argv[i]);
        } else if (path) {
            return cli_usage("agents import takes one FILE");
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_usage("agents import needs a FILE (an .af Agent File, or - for stdin)");
    char *data = strcmp(path, "-") == 0 ? cli_read_stdin() : cli_text_arg_file(path);
    if (!data) return EXIT_RUNTIME;
    int rc = cli_open_store(c);
    if (rc) {
        free(data);
        return rc;
    }
    char *report;
    mg_error err = {0};
    mg_status st = mg_agent_import(c->store, data, strlen(data), &opt, &report, &err);
    free(data);
    if (st) return cli_fail(&err);
    json_t *r = json_loads(report, 0, NULL);
    mg_free(report);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(r, "agents"), i, a)
    {
        printf("imported agent %s (%s): %lld messages, %lld in context\n",
               json_string_value(json_object_get(a, "name")),
               json_string_value(json_object_get(a, "id")),
               (long long)json_integer_value(json_object_get(a, "messages")),
               (long long)json_integer_value(json_object_get(a, "in_context")));
        json_t *missing = json_object_get(a, "unavailable_tools");
        if (json_array_size(missing)) {
            printf("  tools kept but not available here (never offered to the model):");
            size_t k;
            json_t *t;
            json_array_foreach(missing, k, t) printf("%s %s", k ? "," : "", json_string_value(t));
            printf("\n");
        }
        size_t k;
        json_t *note;
        json_array_foreach(json_object_get(a, "notes"), k, note)
            printf("  note: %s\n", json_string_value(note));
    }
    json_decref(r);
    return EXIT_OK;
}
