/*
 * cmd_tools.c - `memgpt mcp ...` (the data directory's MCP servers) and
 * `memgpt tools ...` (what an agent is offered, and attaching MCP tools).
 *
 *   mcp add NAME [--env K=V]... [--timeout S] -- COMMAND [ARGS...]
 *   mcp add NAME --url URL [--header K=V]... [--timeout S]
 *   mcp list [--json] | tools NAME [--json] | remove NAME
 *   tools list [--agent NAME] [--json]
 *   tools attach [--agent NAME] SERVER/TOOL|FUNCTION...
 *   tools detach [--agent NAME] TOOL|FUNCTION...
 *   tools enable-python [--agent NAME] | disable-python [--agent NAME]
 *
 * Names and descriptions come from MCP servers, so control characters are
 * replaced before they reach a terminal.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_clean(const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c && n < max; c++, n++)
        putchar(*c < 0x20 || *c == 0x7f ? ' ' : *c);
}

/* Adds K=V to object `map`. Returns an exit code. */
static int add_pair(json_t *map, const char *pair, const char *what)
{
    const char *eq = strchr(pair, '=');
    if (!eq || eq == pair) return cli_usage("%s takes KEY=VALUE, not '%s'", what, pair);
    char *key = strndup(pair, (size_t)(eq - pair));
    json_object_set_new(map, key, json_string(eq + 1));
    free(key);
    return 0;
}

static int mcp_add(cli *c, int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') return cli_usage("mcp add needs a NAME");
    const char *name = argv[0];
    json_t *config = json_object(), *env = json_object(), *headers = json_object();
    const char *url = NULL;
    int rc = 0, i = 1;
    for (; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (i + 1 >= argc) {
            rc = cli_usage("%s needs a value", a);
        } else if (strcmp(a, "--url") == 0) {
            url = argv[++i];
        } else if (strcmp(a, "--env") == 0) {
            rc = add_pair(env, argv[++i], "--env");
        } else if (strcmp(a, "--header") == 0) {
            rc = add_pair(headers, argv[++i], "--header");
        } else if (strcmp(a, "--timeout") == 0) {
            char *end;
            long s = strtol(argv[++i], &end, 10);
            if (*end || s < 1 || s > 3600) rc = cli_usage("--timeout takes 1-3600 seconds");
            json_object_set_new(config, "timeout_seconds", json_integer(s));
        } else {
            rc = cli_usage("unknown option %s", a);
        }
    }
    int has_command = i < argc - 1;
    if (!rc && !url == !has_command)
        rc = cli_usage("mcp add needs either --url URL or -- COMMAND [ARGS...]");
    if (!rc && url) {
        json_object_set_new(config, "mcp_server_type", json_string("streamable_http"));
        json_object_set_new(config, "server_url", json_string(url));
        json_object_set(config, "custom_headers", headers);
        if (json_object_size(env)) rc = cli_usage("--env is for servers started by a command");
    } else if (!rc) {
        json_object_set_new(config, "mcp_server_type", json_string("stdio"));
        json_object_set_new(config, "command", json_string(argv[i + 1]));
        json_t *args = json_array();
        for (int k = i + 2; k < argc; k++)
            json_array_append_new(args, json_string(argv[k]));
        json_object_set_new(config, "args", args);
        json_object_set(config, "env", env);
        if (json_object_size(headers)) rc = cli_usage("--header is for servers given by --url");
    }
    char *text = json_dumps(config, JSON_COMPACT);
    json_decref(config);
    json_decref(env);
    json_decref(headers);
    if (!rc) rc = cli_open_store(c);
    if (!rc) {
        mg_error err = {0};
        char *id = NULL;
        if (mg_mcp_add(c->store, name, text, &id, &err))
            rc = cli_fail(&err);
        else
            printf("added MCP server %s (%s)\n", name, id);
        mg_free(id);
    }
    free(text);
    return rc;
}

static void print_servers(const char *json)
{
    json_t *list = json_loads(json, 0, NULL);
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        json_t *config = json_object_get(s, "config");
        const char *type = json_string_value(json_object_get(config, "mcp_server_type"));
        print_clean(json_string_value(json_object_get(s, "name")), 64);
        printf("  %s  ", type ? type : "?");
        if (json_object_get(config, "server_url")) {
            print_clean(json_string_value(json_object_get(config, "server_url")), 400);
        } else {
            print_clean(json_string_value(json_object_get(config, "command")), 400);
            size_t k;
            json_t *a;
            json_array_foreach(json_object_get(config, "args"), k, a)
            {
                putchar(' ');
                print_clean(json_string_value(a), 400);
            }
        }
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(config, "env"), key, v)
            printf("  %s=%s", key, json_string_value(v));
        json_object_foreach(json_object_get(config, "custom_headers"), key, v)
            printf("  %s: %s", key, json_string_value(v));
        printf("  (%lld tools attached)\n",
               (long long)json_integer_value(json_object_get(s, "attached_tools")));
    }
    if (!json_array_size(list)) printf("no MCP servers (memgpt mcp add NAME ... adds one)\n");
    json_decref(list);
}

static void print_tools(const char *json)
{
    json_t *list = json_loads(json, 0, NULL);
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        print_clean(json_string_value(json_object_get(t, "name")), 64);
        json_t *server = json_object_get(t, "mcp_server");
        if (server) {
            printf("  [MCP ");
            print_clean(json_string_value(json_object_get(server, "name")), 64);
            putchar(']');
        }
        const char *d = json_string_value(json_object_get(t, "description"));
        if (d && *d) {
            printf("  ");
            print_clean(d, strcspn(d, "\n") < 100 ? strcspn(d, "\n") : 100);
        }
        putchar('\n');
    }
    json_decref(list);
}

/* `--json` and at most one positional: returns an exit code. */
static int json_and_name(int argc, char **argv, int *json, const char **name, const char *what)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = 1;
        else if (argv[i][0] == '-')
            return cli_usage("unknown option %s", argv[i]);
        else if (name && !*name)
            *name = argv[i];
        else
            return cli_usage("%s: unexpected '%s'", what, argv[i]);
    }
    if (name && !*name) return cli_usage("%s needs a server NAME", what);
    return 0;
}

int cmd_mcp(cli *c, int argc, char **argv)
{
    if (argc < 1) return cli_usage("mcp needs a subcommand: add, list, tools or remove");
    const char *sub = argv[0];
    if (strcmp(sub, "add") == 0) return mcp_add(c, argc - 1, argv + 1);
    int json = 0, rc;
    const char *name = NULL;
    mg_error err = {0};
    char *text = NULL;
    if (strcmp(sub, "list") == 0) {
        if ((rc = json_and_name(argc - 1, argv + 1, &json, NULL, "mcp list")) ||
            (rc = cli_open_store(c)))
            return rc;
        mg_status st = mg_mcp_list(c->store, &text, &err);
        return cli_print_answer(st, text, &err, json, print_servers);
    }
    if (strcmp(sub, "tools") == 0) {
        if ((rc = json_and_name(argc - 1, argv + 1, &json, &name, "mcp tools")) ||
            (rc = cli_open_store(c)))
            return rc;
        mg_status st = mg_mcp_tools(c->store, name, &text, &err);
        return cli_print_answer(st, text, &err, json, print_tools);
    }
    if (strcmp(sub, "remove") == 0) {
        if ((rc = json_and_name(argc - 1, argv + 1, &json, &name, "mcp remove")) ||
            (rc = cli_open_store(c)))
            return rc;
        int detached = 0;
        if (mg_mcp_remove(c->store, name, &detached, &err)) return cli_fail(&err);
        printf("removed MCP server %s (%d attached tools detached)\n", name, detached);
        return EXIT_OK;
    }
    return cli_usage("unknown mcp subcommand '%s'", sub);
}

/* ------------------------------------------------------------- tools */

/* If `fn` is one of memgpt's optional functions (or, to detach, one the
 * agent has), enables or disables it for agent `name` and returns 1 with
 * the outcome in *st; else returns 0. */
static int set_function(cli *c, const char *name, const char *fn, int on, mg_status *st,
                        mg_error *err)
{
    char *text = NULL;
    if (mg_tools_json(&text, err)) return 0;
    json_t *all = json_loads(text, 0, NULL);
    mg_free(text);
    int known = 0;
    size_t i;
    json_t *t;
    json_array_foreach(all, i, t) known |=
        strcmp(json_string_value(json_object_get(t, "name")), fn) == 0;
    json_decref(all);
    if (!known) return 0;
    mg_agent *agent;
    if ((*st = mg_agent_open(c->store, name, &agent, err))) return 1;
    *st = mg_agent_describe(agent, &text, err);
    mg_agent_free(agent);
    if (*st) return 1;
    json_t *state = json_loads(text, 0, NULL);
    mg_free(text);
    json_t *functions = json_array();
    int had = 0;
    json_array_foreach(json_object_get(state, "functions"), i, t)
    {
        if (strcmp(json_string_value(t), fn) == 0)
            had = 1;
        else
            json_array_append(functions, t);
    }
    json_decref(state);
    if (!on && !had) {
        json_decref(functions);
        return 0; /* not one it enabled: maybe an MCP tool of that name */
    }
    if (on) json_array_append_new(functions, json_string(fn));
    char *list = json_dumps(functions, JSON_COMPACT);
    json_decref(functions);
    mg_agent_config changes = {.functions_json = list};
    *st = mg_agent_configure(c->store, name, &changes, err);
    free(list);
    return 1;
}

static int tools_attach_detach(cli *c, int attach, int argc, char **argv)
{
    const char *agent_name = NULL;
    int rc = 0, n = 0;
    for (int i = 0; i < argc && !rc; i++) {
        if (strcmp(argv[i], "--agent") == 0) {
            if (i + 1 >= argc) return cli_usage("--agent needs a value");
            agent_name = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage("unknown option %s", argv[i]);
        } else {
            n++;
        }
    }
    if (!n)
        return cli_usage(attach ? "tools attach needs SERVER/TOOL..."
                                : "tools detach needs TOOL...");
    mg_agent *agent;
    if ((rc = cli_open_agent(c, agent_name, &agent))) return rc;
    char *name = strdup(mg_agent_name(agent));
    mg_agent_free(agent);
    for (int i = 0; i < argc && !rc; i++) {
        if (strcmp(argv[i], "--agent") == 0) {
            i++;
            continue;
        }
        mg_error err = {0};
        mg_status st;
        const char *slash = strrchr(argv[i], '/');
        int optional = !slash && set_function(c, name, argv[i], attach, &st, &err);
        if (optional) {
            /* one of memgpt's optional functions: done above */
        } else if (attach && !slash) {
            rc = cli_usage("'%s': name an MCP tool as SERVER/TOOL (memgpt's optional functions "
                           "by their names)",
                           argv[i]);
            break;
        } else if (attach) {
            char *server = strndup(argv[i], (size_t)(slash - argv[i]));
            st = mg_agent_tool_attach(c->store, name, server, slash + 1, &err);
            free(server);
        } else {
            st = mg_agent_tool_detach(c->store, name, slash ? slash + 1 : argv[i], &err);
        }
        if (st)
            rc = cli_fail(&err);
        else
            printf("%s %s %s %s\n", attach ? "attached" : "detached", argv[i],
                   attach ? "to" : "from", name);
    }
    free(name);
    return rc;
}

static int tools_list(cli *c, int argc, char **argv)
{
    const char *agent_name = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
            agent_name = argv[++i];
        } else {
            return cli_usage("tools list takes [--agent NAME] [--json]");
        }
    }
    mg_agent *agent;
    int rc = cli_open_agent(c, agent_name, &agent);
    if (rc) return rc;
    char *text = NULL;
    mg_error err = {0};
    mg_status st = mg_agent_tools_json(agent, &text, &err);
    mg_agent_free(agent);
    return cli_print_answer(st, text, &err, json, print_tools);
}

/* Allows (on) or forbids an agent's Python tools to run. */
static int python_tools(cli *c, int on, int argc, char **argv)
{
    const char *agent_name = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc)
            agent_name = argv[++i];
        else
            return cli_usage("tools %s-python takes [--agent NAME]", on ? "enable" : "disable");
    }
    mg_agent *agent;
    int rc = cli_open_agent(c, agent_name, &agent);
    if (rc) return rc;
    char *name = strdup(mg_agent_name(agent));
    mg_agent_free(agent);
    mg_error err = {0};
    mg_agent_config changes = {.python_tools = on ? 1 : -1};
    if (mg_agent_configure(c->store, name, &changes, &err))
        rc = cli_fail(&err);
    else
        printf("%s: Python tools %s\n", name,
               on ? "allowed (they run as you, in a limited process: see the README)"
                  : "no longer run");
    free(name);
    return rc;
}

int cmd_tools(cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_usage(
            "tools needs a subcommand: list, attach, detach, enable-python or disable-python");
    if (strcmp(argv[0], "list") == 0) return tools_list(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "attach") == 0) return tools_attach_detach(c, 1, argc - 1, argv + 1);
    if (strcmp(argv[0], "detach") == 0) return tools_attach_detach(c, 0, argc - 1, argv + 1);
    if (strcmp(argv[0], "enable-python") == 0) return python_tools(c, 1, argc - 1, argv + 1);
    if (strcmp(argv[0], "disable-python") == 0) return python_tools(c, 0, argc - 1, argv + 1);
    return cli_usage("unknown tools subcommand '%s'", argv[0]);
}
