/*
 * main.c - `memgpt`: argument parsing and the one-shot commands.
 *
 * Each command parses its own options with parse_options (a flag table),
 * opens what it needs through cli.h and prints either text for people or,
 * with --json, the library's JSON for scripts. The interactive `chat` lives
 * in chat.c.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const usage_text =
    "usage: memgpt [--home DIR] COMMAND ...\n"
    "\n"
    "  chat [--agent NAME]                         talk interactively (/help inside)\n"
    "  send [--agent NAME] [--json] [--stream] TEXT...  one full turn (\"-\" reads stdin)\n"
    "  agents create NAME [--model HANDLE] [--context-window N] [--persona TEXT|@FILE]\n"
    "                [--human TEXT|@FILE] [--system @FILE] [--embedder offline|openai/MODEL]\n"
    "                [--step-limit N] [--reflect-every N] [--idle-seconds N]\n"
    "                [--warn-fraction F] [--flush-fraction F]\n"
    "  agents set NAME [--model HANDLE] [--context-window N] [--embedder E] [--step-limit N]\n"
    "             [--reflect-every N|off] [--idle-seconds N|off] [--warn-fraction F]\n"
    "             [--flush-fraction F] [--system @FILE|--system-default]\n"
    "             [--tool-rule TYPE:TOOL[:ARG]]... [--tool-rules JSON|@FILE] [--tool-env K=V]...\n"
    "  agents list [--json] | show NAME [--json] | delete NAME\n"
    "  agents export NAME [-o FILE]                an Agent File (.af) of the agent\n"
    "  agents import FILE [--name NEW] [--model HANDLE]  agents from an Agent File\n"
    "  memory show [--agent NAME] [--json]\n"
    "  memory set [--agent NAME] [--limit N] [--description TEXT] [--read-only|--writable]\n"
    "             LABEL [TEXT|@FILE]\n"
    "  recall list [--agent NAME] [--json] [--limit K]\n"
    "  recall search [--agent NAME] [--json] [--limit K] [--page P] [--from DATE] [--to DATE] "
    "[--all] QUERY\n"
    "                what was said; --all adds inner monologue, function calls and results\n"
    "  archival insert [--agent NAME] [--jsonl] TEXT|-\n"
    "  archival search [--agent NAME] [--json] [--limit K] [--page P] QUERY\n"
    "  archival load [--agent NAME] [--chunk-tokens N] [--overlap N] PATH...\n"
    "                files or directories: .txt .md .jsonl .pdf, text without extension\n"
    "  archival reembed [--agent NAME]             embed passages again (after a new embedder)\n"
    "  context [--agent NAME] [--json]\n"
    "  check [--json]                              verify the database, full-text and vector\n"
    "                                              indexes and each agent's context\n"
    "  models [--provider NAME] [--json]           models a provider offers (default openai)\n"
    "  tokenize [--encoding E] [--ids] [FILE|-]    token count/ids (E: o200k_base, cl100k_base)\n"
    "  mcp add NAME [--env K=V]... [--timeout S] -- COMMAND [ARGS...]   an MCP server (stdio)\n"
    "  mcp add NAME --url URL [--header K=V]... [--timeout S]  one over Streamable HTTP\n"
    "  mcp list [--json] | tools NAME [--json] | remove NAME\n"
    "  tools list [--agent NAME] [--json]          what the agent is offered\n"
    "  tools attach [--agent NAME] SERVER/TOOL...  give the agent an MCP server's tools\n"
    "  tools detach [--agent NAME] TOOL...\n"
    "  tools enable-python [--agent NAME] | disable-python [--agent NAME]\n"
    "                                              let an Agent File's Python tools run\n"
    "  serve [--host ADDR] [--port N] [--password TOKEN] [--workers N] [--cors-origin ORIGIN]\n"
    "        [--log-format text|json] [--timeout S] [--ui-dir DIR]\n"
    "                                              Letta's REST and SSE API and the web app\n"
    "                                              at / (default 127.0.0.1:8283)\n"
    "\n"
    "Environment: OPENAI_API_KEY, OPENAI_BASE_URL, MEMGPT_HOME, MEMGPT_AGENT.\n";

/* ------------------------------------------------------------ options */

typedef struct args {
    char **pos;
    int npos;
} args;

typedef struct option {
    const char *name;   /* "--json" */
    const char **value; /* set for options that take a value */
    int *flag;          /* set for flags */
    args *many;         /* set for options that may repeat: every value, in order */
} option;

#define OPT_VALUE(n, v)                                                                            \
    {                                                                                              \
        .name = (n), .value = (v)                                                                  \
    }
#define OPT_FLAG(n, f)                                                                             \
    {                                                                                              \
        .name = (n), .flag = (f)                                                                   \
    }
#define OPT_MANY(n, m)                                                                             \
    {                                                                                              \
        .name = (n), .many = (m)                                                                   \
    }

/* Splits argv into options (per the table) and positionals. "-" and
 * everything after "--" are positional. Returns 0 or EXIT_USAGE. */
static int parse_options(int argc, char **argv, const option *opts, args *out)
{
    out->pos = calloc((size_t)argc + 1, sizeof *out->pos);
    out->npos = 0;
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || strcmp(a, "-") == 0) {
            out->pos[out->npos++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        const option *o = opts;
        while (o->name && strcmp(o->name, a) != 0)
            o++;
        if (!o->name) return cli_usage("unknown option %s", a);
        if (o->flag) {
            *o->flag = 1;
        } else {
            if (i + 1 >= argc) return cli_usage("%s needs a value", a);
            if (o->many) {
                if (!o->many->pos) o->many->pos = calloc((size_t)argc, sizeof *o->many->pos);
                o->many->pos[o->many->npos++] = argv[++i];
            } else {
                *o->value = argv[++i];
            }
        }
    }
    return 0;
}

static int parse_int(const char *text, const char *what, int min, int *out)
{
    char *end;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || !*text || *end || v < min || v > 100000000)
        return cli_usage("%s must be a whole number >= %d", what, min);
    *out = (int)v;
    return 0;
}

/* -------------------------------------------------------------- send */

typedef struct send_output {
    int json;
    int stream;
    cli_replies replies; /* text with --stream */
} send_output;

static void on_send_event(const mg_event *ev, void *user)
{
    send_output *o = user;
    if (o->json) {
        char *line = mg_event_to_json(ev);
        printf("%s\n", line);
        mg_free(line);
        fflush(stdout);
    } else if (o->stream && cli_replies_event(&o->replies, ev)) {
        /* a piece of a reply, or a reply already shown piece by piece */
    } else if (ev->type == MG_EVENT_ASSISTANT || ev->type == MG_EVENT_SYSTEM) {
        cli_print_event(ev, stdout, 0);
    }
}

static int cmd_send(cli *c, int argc, char **argv)
{
    const char *agent_name = NULL;
    int json = 0, stream = 0;
    option opts[] = {OPT_VALUE("--agent", &agent_name),
                     OPT_FLAG("--json", &json),
                     OPT_FLAG("--stream", &stream),
                     {0}};
    args a;
    int rc = parse_options(argc, argv, opts, &a);
    char *text = NULL;
    if (!rc && a.npos == 0) rc = cli_usage("send needs the message text");
    if (!rc) {
        text = (a.npos == 1 && strcmp(a.pos[0], "-") == 0) ? cli_read_stdin()
                                                           : cli_join(a.npos, a.pos);
        if (!text) rc = EXIT_RUNTIME; /* why is on stderr already */
    }
    /* The turn's first request needs libcurl: load it while the store and
     * the agent open. */
    mg_preload *preload = rc ? NULL : mg_preload_http();
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, agent_name, &agent);
    if (!rc) {
        send_output out = {.json = json, .stream = stream, .replies = {.out = stdout}};
        mg_error err = {0};
        mg_agent_set_streaming(agent, stream);
        cli_one_shot(c);
        mg_agent_prefetch(agent); /* while libcurl loads */
        mg_status st = mg_agent_send(agent, text, on_send_event, &out, &err);
        cli_replies_end(&out.replies);
        cli_tokens_notice(agent);
        if (st) rc = cli_fail(&err);
    }
    mg_agent_free(agent);
    mg_preload_finish(preload);
    free(text);
    free(a.pos);
    return rc;
}

/* ------------------------------------------------------------ agents */

static int read_text_option(const char *arg, char **out)
{
    *out = NULL;
    if (!arg) return 0;
    *out = cli_text_arg(arg);
    return *out ? 0 : EXIT_RUNTIME;
}

static int parse_fraction(const char *text, const char *what, double *out)
{
    if (!text) return 0;
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || v <= 0 || v > 1) return cli_usage("%s must be a number in (0, 1]", what);
    *out = v;
    return 0;
}

/* An optional integer setting; -1 turns "off" settings off. */
static int parse_setting(const char *text, const char *what, int *out)
{
    if (!text) return 0;
    if (strcmp(text, "off") == 0 || strcmp(text, "-1") == 0 || strcmp(text, "0") == 0) {
        *out = -1;
        return 0;
    }
    return parse_int(text, what, 1, out);
}

static int agents_create(cli *c, int argc, char **argv)
{
    const char *model = NULL, *window = NULL, *persona = NULL, *human = NULL, *system = NULL,
               *embedder = NULL, *steps = NULL, *reflect = NULL, *idle = NULL, *warn = NULL,
               *flush = NULL;
    option opts[] = {OPT_VALUE("--model", &model),          OPT_VALUE("--context-window", &window),
                     OPT_VALUE("--persona", &persona),      OPT_VALUE("--human", &human),
                     OPT_VALUE("--system", &system),        OPT_VALUE("--embedder", &embedder),
                     OPT_VALUE("--step-limit", &steps),     OPT_VALUE("--reflect-every", &reflect),
                     OPT_VALUE("--idle-seconds", &idle),    OPT_VALUE("--warn-fraction", &warn),
                     OPT_VALUE("--flush-fraction", &flush), {0}};
    args a;
    int rc = parse_options(argc, argv, opts, &a);
    if (!rc && a.npos != 1) rc = cli_usage("agents create needs exactly one NAME");
    mg_agent_config cfg = {.model = model, .embedder = embedder};
    if (!rc && window) rc = parse_int(window, "--context-window", 1, &cfg.context_window);
    if (!rc && steps) rc = parse_int(steps, "--step-limit", 1, &cfg.step_limit);
    if (!rc) rc = parse_setting(reflect, "--reflect-every", &cfg.reflect_every);
    if (!rc) rc = parse_setting(idle, "--idle-seconds", &cfg.idle_seconds);
    if (!rc) rc = parse_fraction(warn, "--warn-fraction", &cfg.warn_fraction);
    if (!rc) rc = parse_fraction(flush, "--flush-fraction", &cfg.flush_fraction);
    if (!rc && system && system[0] != '@') rc = cli_usage("--system takes @FILE");
    char *persona_text = NULL, *human_text = NULL, *system_text = NULL;
    if (!rc) rc = read_text_option(persona, &persona_text);
    if (!rc) rc = read_text_option(human, &human_text);
    if (!rc) rc = read_text_option(system, &system_text);
    if (!rc) rc = cli_open_store(c);
    if (!rc && model && !window)
        cfg.context_window =
            cli_learn_context_window(model, "using the conservative default of 8192 tokens");
    if (!rc) {
        cfg.persona = persona_text;
        cfg.human = human_text;
        cfg.system_prompt = system_text;
        mg_error err = {0};
        if (mg_agent_create(c->store, a.pos[0], &cfg, &err))
            rc = cli_fail(&err);
        else
            printf("created agent %s\n", a.pos[0]);
    }
    free(persona_text);
    free(human_text);
    free(system_text);
    free(a.pos);
    return rc;
}

static void print_agent_line(json_t *agent)
{
    printf("%-20s %-28s %9lld %9lld %9lld\n", json_string_value(json_object_get(agent, "name")),
           json_string_value(json_object_get(agent, "model")),
           (long long)json_integer_value(json_object_get(agent, "context_window")),
           (long long)json_integer_value(json_object_get(agent, "messages")),
           (long long)json_integer_value(json_object_get(agent, "passages")));
}

/* A command that takes --json and nothing else: parses its options, then
 * opens the store. Returns an exit code. */
static int json_only_command(cli *c, int argc, char **argv, const char *name, int *json)
{
    option opts[] = {OPT_FLAG("--json", json), {0}};
    args a;
    int rc = parse_options(argc, argv, opts, &a);
    if (!rc && a.npos) rc = cli_usage("%s takes no arguments", name);
    free(a.pos);
    return rc ? rc : cli_open_store(c);
}

static int agents_list(cli *c, int argc, char **argv)
{
    int json = 0;
    int rc = json_only_command(c, argc, argv, "agents list", &json);
    if (rc) return rc;
    char *text;
    mg_error err = {0};
    mg_status st = mg_agent_list(c->store, &text, &err);
    if (st || json) return cli_print_answer(st, text, &err, 1, NULL);
    json_t *list = json_loads(text, 0, NULL);
    mg_free(text);
    if (json_array_size(list) == 0) {
        printf("no agents yet (create one with: memgpt agents create NAME)\n");
    } else {
        printf("%-20s %-28s %9s %9s %9s\n", "NAME", "MODEL", "WINDOW", "MESSAGES", "PASSAGES");
        size_t i;
        json_t *agent;
        json_array_foreach(list, i, agent) print_agent_line(agent);
    }
    json_decref(list);
    return EXIT_OK;
}

static int agents_show(cli *c, int argc, char **argv)
{
    int json = 0;
    option opts[] = {OPT_FLAG("--json", &json), {0}};
    args a;
    int rc = parse_options(argc, argv, opts, &a);
    if (!rc && a.npos != 1) rc = cli_usage("agents show needs exactly one NAME");
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_store(c);
    mg_error err = {0};
    if (!rc && mg_agent_open(c->store, a.pos[0], &agent, &err)) rc = cli_fail(&err);
    free(a.pos);
    if (rc) return rc;
    char *text;
    mg_status st = mg_agent_describe(agent, &text, &err);
    mg_agent_free(agent);
    if (st || json) return cli_print_answer(st, text, &err, 1, NULL);
    json_t *obj = json_loads(text, 0, NULL);
    mg_free(text);
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        char *v = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%-16s %s\n", key, json_is_string(value) ? json_string_value(value) : v);
        free(v);
    }
    json_decref(obj);
    return EXIT_OK;
}

static int agents_delete(cli *c, int argc, char **argv)
{
    option opts[] = {{0}};
    args a;
    int rc = parse_options(argc, argv, opts, &a);
    if (!rc && a.npos != 1) rc = cli_usage("agents delete needs exactly one NAME");
    if (!rc) rc = cli_open_store(c);
    mg_error err = {0};
    if (!rc && mg_agent_delete(c->store, a.pos[0], &err)) rc = cli_fail(&err);
    if (!rc) printf("deleted agent %s\n", a.pos[0]);
    free(a.pos);
    return rc;
}

static int cmd_agents(cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_usage(
            "agents needs a subcommand: create, set, list, show, delete, export or import");
    if (strcmp(argv[0], "create") == 0) return agents_create(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "set") == 0) return cmd_agents_set(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "list") == 0) return agents_list(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "show") == 0) return agents_show(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "delete") == 0) return agents_delete(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "export") == 0) return cmd_agents_export(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "import") == 0) return cmd_agents_import(c, argc - 1, argv + 1);
    return cli_usage("unknown agents subcommand '%s'", argv[0]);
}

/* ------------------------------------------------------------ memory */

void cli_print_memory(const char *json)
{
    json_t *blocks = json_loads(json, 0, NULL);
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b)
    {
        printf("== %s (%lld/%lld chars%s) ==\n%s\n\n",
               json_string_value(json_object_get(b, "label")),
               (long long)json_integer_value(json_object_get(b, "chars")),
               (long long)json_integer_value(json_object_get(b, "limit")),
               json_is_true(json_object_get(b, "read_only")) ? ", read-only" : "",
               json_string_value(json_object_get(b, "value")));
    }
    json_decref(blocks);
}

static int cmd_memory(cli *c, int argc, char **argv)
{
    if (argc < 1) return cli_usage("memory needs a subcommand: show or set");
    const char *agent_name = NULL, *limit_text = NULL, *description = NULL;
    int json = 0, read_only = 0, writable = 0;
    option opts[] = {OPT_VALUE("--agent", &agent_name),
                     OPT_FLAG("--json", &json),
                     OPT_VALUE("--limit", &limit_text),
                     OPT_VALUE("--description", &description),
                     OPT_FLAG("--read-only", &read_only),
                     OPT_FLAG("--writable", &writable),
                     {0}};
    args a;
    int rc = parse_options(argc - 1, argv + 1, opts, &a);
    int show = strcmp(argv[0], "show") == 0, set = strcmp(argv[0], "set") == 0;
    int configure = limit_text || description || read_only || writable;
    int limit = 0;
    if (!rc && !show && !set) rc = cli_usage("unknown memory subcommand '%s'", argv[0]);
    if (!rc && show && a.npos) rc = cli_usage("memory show takes no arguments");
    if (!rc && set && a.npos != 2 && !(configure && a.npos == 1))
        rc = cli_usage("memory set needs LABEL and TEXT|@FILE");
    if (!rc && read_only && writable) rc = cli_usage("--read-only and --writable conflict");
    if (!rc && limit_text) rc = parse_int(limit_text, "--limit", 1, &limit);
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, agent_name, &agent);
    mg_error err = {0};
    if (!rc && show) {
        char *text = NULL;
        mg_status st = mg_memory_json(agent, &text, &err);
        rc = cli_print_answer(st, text, &err, json, cli_print_memory);
    } else if (!rc) {
        /* Settings first, so a new, larger limit applies to the new text. */
        if (configure && mg_memory_configure(agent, a.pos[0], limit, description,
                                             read_only  ? 1
                                             : writable ? 0
                                                        : -1,
                                             &err))
            rc = cli_fail(&err);
        char *value = !rc && a.npos == 2 ? cli_text_arg(a.pos[1]) : NULL;
        if (!rc && a.npos == 2 && !value)
            rc = EXIT_RUNTIME;
        else if (value && mg_memory_set(agent, a.pos[0], value, &err))
            rc = cli_fail(&err);
        free(value);
    }
    mg_agent_free(agent);
    free(a.pos);
    return rc;
}

/* -------------------------------------------------- recall / archival */

void cli_print_results(const char *json, int show_role)
{
    json_t *found = json_loads(json, 0, NULL);
    json_t *results = json_is_array(found) ? found : json_object_get(found, "results");
    if (json_is_object(found))
        printf("%lld result(s), page %lld of %lld\n",
               (long long)json_integer_value(json_object_get(found, "total")),
               (long long)json_integer_value(json_object_get(found, "page")),
               (long long)json_integer_value(json_object_get(found, "pages")));
    if (json_is_true(json_object_get(found, "older_matches")))
        printf("(only the newest %lld matches, back to %s, were ranked; older messages also "
               "match: use rarer words or --from/--to to reach them)\n",
               (long long)json_integer_value(json_object_get(found, "total")),
               json_string_value(json_object_get(found, "ranked_from")));
    if (json_object_get(found, "text_ranked"))
        printf("(more passages match these words than were ranked by them: the newest %lld, "
               "back to %s; use rarer words, --tag or --from/--to to reach older ones)\n",
               (long long)json_integer_value(json_object_get(found, "text_ranked")),
               json_string_value(json_object_get(found, "text_ranked_from")));
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        printf("[%s]", json_string_value(json_object_get(r, "time")));
        const char *text = json_string_value(json_object_get(r, "text"));
        const char *inner = json_string_value(json_object_get(r, "inner"));
        if (inner && !*text) { /* only inner text (recall search --all) */
            printf(" (%s) %s\n", json_string_value(json_object_get(r, "kind")), inner);
            continue;
        }
        if (show_role) printf(" %s:", json_string_value(json_object_get(r, "role")));
        printf(" %s\n", text);
        if (inner) printf("    (%s) %s\n", json_string_value(json_object_get(r, "kind")), inner);
    }
    json_decref(found);
}

void cli_print_history(const char *json)
{
    cli_print_results(json, 1);
}

void cli_print_passages(const char *json)
{
    cli_print_results(json, 0);
}

typedef struct search_opts {
    const char *agent, *limit, *page, *from, *to;
    int json, all;
    args a, tags;
    mg_search search;
    char *query;
} search_opts;

static int parse_search(int argc, char **argv, search_opts *s)
{
    option opts[] = {OPT_VALUE("--agent", &s->agent),
                     OPT_FLAG("--json", &s->json),
                     OPT_VALUE("--limit", &s->limit),
                     OPT_VALUE("--page", &s->page),
                     OPT_VALUE("--from", &s->from),
                     OPT_VALUE("--to", &s->to),
                     OPT_FLAG("--all", &s->all),
                     OPT_MANY("--tag", &s->tags),
                     {0}};
    int rc = parse_options(argc, argv, opts, &s->a);
    if (!rc && s->limit) rc = parse_int(s->limit, "--limit", 1, &s->search.limit);
    if (!rc && s->page) rc = parse_int(s->page, "--page", 0, &s->search.page);
    mg_error err = {0};
    if (!rc && s->from && mg_parse_time(s->from, 0, &s->search.from_ms, &err)) rc = cli_fail(&err);
    if (!rc && s->to && mg_parse_time(s->to, 1, &s->search.to_ms, &err)) rc = cli_fail(&err);
    s->query = cli_join(s->a.npos, s->a.pos);
    s->search.query = s->query;
    s->search.include_all = s->all;
    s->search.tags = (const char *const *)s->tags.pos;
    s->search.ntags = s->tags.npos;
    return rc;
}

static int cmd_recall(cli *c, int argc, char **argv)
{
    if (argc < 1) return cli_usage("recall needs a subcommand: list or search");
    int list = strcmp(argv[0], "list") == 0, search = strcmp(argv[0], "search") == 0;
    if (!list && !search) return cli_usage("unknown recall subcommand '%s'", argv[0]);
    search_opts s = {0};
    int rc = parse_search(argc - 1, argv + 1, &s);
    if (!rc && list && s.a.npos) rc = cli_usage("recall list takes no query");
    if (!rc && list && s.all) rc = cli_usage("--all is for recall search; recall list shows all");
    if (!rc && s.tags.npos) rc = cli_usage("--tag is for archival search");
    if (!rc && search && !s.a.npos && !s.from && !s.to)
        rc = cli_usage("recall search needs a QUERY or a date range");
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, s.agent, &agent);
    if (!rc) {
        char *text = NULL;
        mg_error err = {0};
        mg_status st = list ? mg_recall_list(agent, s.search.limit, &text, &err)
                            : mg_recall_search(agent, &s.search, &text, &err);
        rc = cli_print_answer(st, text, &err, s.json, cli_print_history);
    }
    mg_agent_free(agent);
    free(s.a.pos);
    free(s.tags.pos);
    free(s.query);
    return rc;
}

/* One passage per non-blank line (or one JSON object per line), stored in
 * batches. Stops at the first bad line, saying how many were stored before
 * it. */
static int insert_lines(mg_agent *agent, char *input, int jsonl, const char *tags)
{
    size_t lines = 1;
    for (const char *p = input; *p; p++)
        lines += *p == '\n';
    const char **items = malloc(lines * sizeof *items);
    int *line_of = malloc(lines * sizeof *line_of), n = 0, line_no = 0;
    if (!items || !line_of) {
        free(items);
        free(line_of);
        fprintf(stderr, "memgpt: out of memory\n");
        return EXIT_RUNTIME;
    }
    for (char *line = input, *next; line && *line; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r') line[len - 1] = '\0';
        if (line[strspn(line, " \t")] == '\0') continue;
        items[n] = line;
        line_of[n++] = line_no;
    }
    mg_error err = {0};
    int count = 0;
    mg_status st = mg_archival_insert_many(agent, items, n, jsonl, tags, &count, &err);
    const char *s = count == 1 ? "" : "s", *were = count == 1 ? "was" : "were";
    if (st == MG_ERR_USAGE)
        fprintf(stderr, "memgpt: line %d: %s (the %d passage%s before it %s stored)\n",
                line_of[count], err.message, count, s, were);
    else if (st)
        fprintf(stderr, "memgpt: %s (%d passage%s %s stored)\n", err.message, count, s, were);
    else
        printf("inserted %d passage%s\n", count, count == 1 ? "" : "s");
    free(items);
    free(line_of);
    return st == MG_ERR_USAGE ? EXIT_USAGE : st ? EXIT_RUNTIME : EXIT_OK;
}

static int cmd_archival(cli *c, int argc, char **argv)
{
    if (argc < 1) return cli_usage("archival needs a subcommand: insert, search, load or reembed");
    if (strcmp(argv[0], "load") == 0) return cmd_archival_load(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "reembed") == 0) return cmd_archival_reembed(c, argc - 1, argv + 1);
    int insert = strcmp(argv[0], "insert") == 0, search = strcmp(argv[0], "search") == 0;
    if (!insert && !search) return cli_usage("unknown archival subcommand '%s'", argv[0]);
    if (search) {
        search_opts s = {0};
        int rc = parse_search(argc - 1, argv + 1, &s);
        if (!rc && !s.a.npos) rc = cli_usage("archival search needs a QUERY");
        if (!rc && s.all) rc = cli_usage("--all is for recall search");
        if (!rc && s.tags.npos > MG_SEARCH_MAX_TAGS)
            rc = cli_usage("archival search takes at most %d --tag options", MG_SEARCH_MAX_TAGS);
        mg_agent *agent = NULL;
        if (!rc) rc = cli_open_agent(c, s.agent, &agent);
        if (!rc) {
            char *text = NULL;
            mg_error err = {0};
            cli_one_shot(c);
            mg_status st = mg_archival_search(agent, &s.search, &text, &err);
            rc = cli_print_answer(st, text, &err, s.json, cli_print_passages);
        }
        mg_agent_free(agent);
        free(s.a.pos);
        free(s.tags.pos);
        free(s.query);
        return rc;
    }
    const char *agent_name = NULL;
    int jsonl = 0;
    args a, tag_args = {0};
    option opts[] = {OPT_VALUE("--agent", &agent_name),
                     OPT_FLAG("--jsonl", &jsonl),
                     OPT_MANY("--tag", &tag_args),
                     {0}};
    int rc = parse_options(argc - 1, argv + 1, opts, &a);
    if (!rc && !a.npos) rc = cli_usage("archival insert needs TEXT, or - to read stdin");
    int from_stdin = !rc && a.npos == 1 && strcmp(a.pos[0], "-") == 0;
    if (!rc && jsonl && !from_stdin) rc = cli_usage("--jsonl reads stdin: pass -");
    if (!rc && jsonl && tag_args.npos) rc = cli_usage("--jsonl lines carry their own tags");
    char *tags = NULL;
    if (!rc && tag_args.npos) {
        json_t *list = json_array();
        for (int i = 0; i < tag_args.npos && !rc; i++) {
            json_t *tag = json_string(tag_args.pos[i]);
            if (!tag)
                rc = cli_usage("--tag %d is not valid UTF-8", i + 1);
            else
                json_array_append_new(list, tag);
        }
        if (!rc) tags = json_dumps(list, JSON_COMPACT);
        json_decref(list);
    }
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, agent_name, &agent);
    if (!rc) {
        char *input = from_stdin ? cli_read_stdin() : cli_join(a.npos, a.pos);
        if (!input) {
            rc = EXIT_RUNTIME; /* why is on stderr already */
        } else if (from_stdin) {
            rc = insert_lines(agent, input, jsonl, tags);
        } else {
            mg_error err = {0};
            if (mg_archival_insert(agent, input, tags, 0, &err))
                rc = cli_fail(&err);
            else
                printf("inserted 1 passage\n");
        }
        free(input);
    }
    mg_agent_free(agent);
    free(a.pos);
    free(tag_args.pos);
    free(tags);
    return rc;
}

/* ----------------------------------------------------------- context */

void cli_print_context(const char *json)
{
    json_t *ctx = json_loads(json, 0, NULL);
    json_t *tokens = json_object_get(ctx, "tokens");
    const char *key;
    json_t *value;
    json_object_foreach(tokens, key, value)
        printf("  %-22s %8lld tokens\n", key, (long long)json_integer_value(value));
    printf("  %-22s %8lld of %lld (warn at %lld, flush at %lld)\n", "total",
           (long long)json_integer_value(json_object_get(ctx, "total")),
           (long long)json_integer_value(json_object_get(ctx, "context_window")),
           (long long)json_integer_value(json_object_get(ctx, "warn_at")),
           (long long)json_integer_value(json_object_get(ctx, "flush_at")));
    printf("  %-22s %8lld\n", "messages in view",
           (long long)json_integer_value(json_object_get(ctx, "messages_in_view")));
    printf("  counter: %s\n", json_string_value(json_object_get(ctx, "counter")));
    json_decref(ctx);
}

static int cmd_context(cli *c, int argc, char **argv)
{
    const char *agent_name = NULL;
    int json = 0;
    option opts[] = {OPT_VALUE("--agent", &agent_name), OPT_FLAG("--json", &json), {0}};
    args a;
    int rc = parse_options(argc, argv, opts, &a);
    if (!rc && a.npos) rc = cli_usage("context takes no arguments");
    free(a.pos);
    mg_agent *agent = NULL;
    if (!rc) rc = cli_open_agent(c, agent_name, &agent);
    if (!rc) {
        char *text = NULL;
        mg_error err = {0};
        mg_status st = mg_context_json(agent, &text, &err);
        cli_tokens_notice(agent);
        rc = cli_print_answer(st, text, &err, json, cli_print_context);
    }
    mg_agent_free(agent);
    return rc;
}

/* ------------------------------------------------------------- check */

static void print_check(const char *json)
{
    json_t *report = json_loads(json, 0, NULL);
    json_t *agents = json_object_get(report, "agents"),
           *problems = json_object_get(report, "problems");
    size_t i;
    json_t *a;
    json_array_foreach(agents, i, a)
    {
        printf("agent %s: %lld messages (%lld in context), %lld passages\n",
               json_string_value(json_object_get(a, "name")),
               (long long)json_integer_value(json_object_get(a, "messages")),
               (long long)json_integer_value(json_object_get(a, "in_context")),
               (long long)json_integer_value(json_object_get(a, "passages")));
        size_t k;
        json_t *x;
        json_array_foreach(json_object_get(a, "indexes"), k, x)
        {
            printf("  index of %s: %lld vectors, %lld log records\n",
                   json_string_value(json_object_get(x, "embedder")),
                   (long long)json_integer_value(json_object_get(x, "vectors")),
                   (long long)json_integer_value(json_object_get(x, "log_records")));
        }
    }
    json_array_foreach(problems, i, a) printf("problem: %s\n", json_string_value(a));
    printf(json_array_size(problems) ? "%zu problems found\n" : "no problems found\n",
           json_array_size(problems));
    json_decref(report);
}

/* Exit 0 when nothing is wrong, 1 when a check failed or could not run. */
static int cmd_check(cli *c, int argc, char **argv)
{
    int json = 0;
    int rc = json_only_command(c, argc, argv, "check", &json);
    if (rc) return rc;
    char *text = NULL;
    mg_error err = {0};
    mg_status st = mg_store_check(c->store, &text, &err);
    json_t *report = st ? NULL : json_loads(text, 0, NULL);
    int ok = json_is_true(json_object_get(report, "ok"));
    json_decref(report);
    rc = cli_print_answer(st, text, &err, json, print_check);
    return rc ? rc : ok ? EXIT_OK : EXIT_RUNTIME;
}

/* -------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    cli c = {0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--home") == 0 && i + 1 < argc) {
            c.home_arg = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("memgpt %s\n", MG_VERSION);
            return EXIT_OK;
        } else {
            return cli_usage("unknown option %s", argv[i]);
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[i];
    int rest = argc - i - 1;
    char **rest_argv = argv + i + 1;
    int rc;
    if (strcmp(command, "chat") == 0)
        rc = cmd_chat(&c, rest, rest_argv);
    else if (strcmp(command, "send") == 0)
        rc = cmd_send(&c, rest, rest_argv);
    else if (strcmp(command, "agents") == 0)
        rc = cmd_agents(&c, rest, rest_argv);
    else if (strcmp(command, "memory") == 0)
        rc = cmd_memory(&c, rest, rest_argv);
    else if (strcmp(command, "recall") == 0)
        rc = cmd_recall(&c, rest, rest_argv);
    else if (strcmp(command, "archival") == 0)
        rc = cmd_archival(&c, rest, rest_argv);
    else if (strcmp(command, "context") == 0)
        rc = cmd_context(&c, rest, rest_argv);
    else if (strcmp(command, "check") == 0)
        rc = cmd_check(&c, rest, rest_argv);
    else if (strcmp(command, "models") == 0)
        rc = cmd_models(&c, rest, rest_argv);
    else if (strcmp(command, "tokenize") == 0)
        rc = cmd_tokenize(&c, rest, rest_argv);
    else if (strcmp(command, "serve") == 0)
        rc = cmd_serve(&c, rest, rest_argv);
    else if (strcmp(command, "mcp") == 0)
        rc = cmd_mcp(&c, rest, rest_argv);
    else if (strcmp(command, "tools") == 0)
        rc = cmd_tools(&c, rest, rest_argv);
    else
        rc = cli_usage("unknown command '%s'", command);
    mg_store_close(c.store);
    free(c.home);
    return rc;
}
