/*
 * cmd_agents_set.c - `memgpt agents set NAME [settings]`: changes an agent's
 * settings after creation, through mg_agent_configure.
 *
 * The flags are those of `agents create` (minus the initial blocks, which
 * `memory set` edits) plus --system-default. Only the flags given change;
 * the library checks the result as a whole, so an invalid combination
 * changes nothing. When the embedder changes and the agent has passages,
 * the command says how to re-embed them: until then archival search finds
 * them by their words only.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct setting {
    const char *name;
    const char **value;
} setting;

static int parse_positive(const char *text, const char *what, int *out)
{
    if (!text) return EXIT_OK;
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < 1 || v > 100000000)
        return cli_usage("%s must be a whole number >= 1", what);
    *out = (int)v;
    return EXIT_OK;
}

/* N, or off (also 0 or -1): -1. */
static int parse_or_off(const char *text, const char *what, int *out)
{
    if (!text) return EXIT_OK;
    if (strcmp(text, "off") == 0 || strcmp(text, "0") == 0 || strcmp(text, "-1") == 0) {
        *out = -1;
        return EXIT_OK;
    }
    return parse_positive(text, what, out);
}

static int parse_fraction(const char *text, const char *what, double *out)
{
    if (!text) return EXIT_OK;
    char *end;
    double v = strtod(text, &end);
    if (!*text || *end || !(v > 0) || v > 1)
        return cli_usage("%s must be a number in (0, 1]", what);
    *out = v;
    return EXIT_OK;
}

/* What describe says about the agent (new reference), or NULL. */
static json_t *describe(cli *c, const char *name)
{
    mg_agent *a;
    mg_error err = {0};
    if (mg_agent_open(c->store, name, &a, &err)) return NULL;
    char *text = NULL;
    mg_status st = mg_agent_describe(a, &text, &err);
    mg_agent_free(a);
    json_t *obj = st ? NULL : json_loads(text, 0, NULL);
    mg_free(text);
    return obj;
}

/* The agent's embedder (caller frees) and passage count. */
static char *agent_embedder(cli *c, const char *name, long long *passages)
{
    *passages = 0;
    json_t *obj = describe(c, name);
    const char *spec = json_string_value(json_object_get(obj, "embedder"));
    char *out = spec ? strdup(spec) : NULL;
    *passages = (long long)json_integer_value(json_object_get(obj, "passages"));
    json_decref(obj);
    return out;
}

/* One rule in short form, TYPE:TOOL[:ARG], added to `rules`: ARG is the
 * children (A,B) of constrain_child_tools and parent_last_tool, the limit
 * of max_count_per_step. Returns an exit code. */
static int add_rule(json_t *rules, const char *text)
{
    char *copy = strdup(text);
    char *type = copy, *tool = strchr(copy, ':'), *arg = NULL;
    if (tool) *tool++ = '\0';
    if (tool && (arg = strchr(tool, ':'))) *arg++ = '\0';
    int rc = EXIT_OK;
    json_t *rule = NULL;
    if (!tool || !*tool) {
        rc = cli_usage("--tool-rule takes TYPE:TOOL[:ARG], not '%s'", text);
    } else if (strcmp(type, "constrain_child_tools") == 0 ||
               strcmp(type, "parent_last_tool") == 0) {
        json_t *children = json_array();
        for (char *save, *part = strtok_r(arg ? arg : (char *)"", ",", &save); part;
             part = strtok_r(NULL, ",", &save))
            json_array_append_new(children, json_string(part));
        rule = json_pack("{s:s, s:s, s:o}", "type", type, "tool_name", tool, "children", children);
    } else if (strcmp(type, "max_count_per_step") == 0) {
        rule = json_pack("{s:s, s:s, s:i}", "type", type, "tool_name", tool, "max_count_limit",
                         arg ? atoi(arg) : 0);
    } else if (arg) {
        rc = cli_usage(
            "--tool-rule %s:%s takes no third part (conditional rules: --tool-rules JSON)", type,
            tool);
    } else {
        rule = json_pack("{s:s, s:s}", "type", type, "tool_name", tool);
    }
    if (rule) json_array_append_new(rules, rule);
    free(copy);
    return rc;
}

/* The new rules: --tool-rules (JSON or @FILE) replaces them all, each
 * --tool-rule adds one to those (or to the agent's). *out: NULL when
 * neither was given; caller frees. Returns an exit code. */
static int tool_rules_arg(cli *c, const char *name, const char *all, const char *const *rules_given,
                          int nrules, char **out)
{
    *out = NULL;
    if (!all && !nrules) return EXIT_OK;
    json_t *rules = NULL;
    if (all) {
        char *text = cli_text_arg(all);
        if (!text) return EXIT_RUNTIME;
        rules = json_loads(text, 0, NULL);
        free(text);
        if (!json_is_array(rules)) {
            json_decref(rules);
            return cli_usage("--tool-rules takes a JSON array (or @FILE of one)");
        }
    } else {
        json_t *state = describe(c, name);
        rules = json_deep_copy(json_object_get(state, "tool_rules"));
        json_decref(state);
        if (!rules) rules = json_array();
    }
    int rc = EXIT_OK;
    for (int i = 0; i < nrules && !rc; i++)
        rc = add_rule(rules, rules_given[i]);
    if (!rc) *out = json_dumps(rules, JSON_COMPACT);
    json_decref(rules);
    return rc;
}

/* The change to the agent's tool variables: each K=V of `pairs` sets K,
 * K= removes it. *out: NULL when none was given; caller frees. Returns an
 * exit code. */
static int tool_env_arg(const char *const *pairs, int npairs, char **out)
{
    *out = NULL;
    if (!npairs) return EXIT_OK;
    json_t *env = json_object();
    int rc = EXIT_OK;
    for (int i = 0; i < npairs && !rc; i++) {
        const char *eq = strchr(pairs[i], '=');
        if (!eq || eq == pairs[i]) {
            rc = cli_usage("--tool-env takes KEY=VALUE (KEY= removes it), not '%s'", pairs[i]);
            break;
        }
        char *key = strndup(pairs[i], (size_t)(eq - pairs[i]));
        json_object_set_new(env, key, eq[1] ? json_string(eq + 1) : json_null());
        free(key);
    }
    if (!rc) *out = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    return rc;
}

int cmd_agents_set(cli *c, int argc, char **argv)
{
    const char *model = NULL, *window = NULL, *embedder = NULL, *steps = NULL, *reflect = NULL,
               *idle = NULL, *warn = NULL, *flush = NULL, *system = NULL, *rules_all = NULL;
    int system_default = 0, nrules = 0, nenv = 0;
    const char *env_given[64];
    const char *rules_given[64];
    const setting table[] = {{"--model", &model},
                             {"--context-window", &window},
                             {"--embedder", &embedder},
                             {"--step-limit", &steps},
                             {"--reflect-every", &reflect},
                             {"--idle-seconds", &idle},
                             {"--warn-fraction", &warn},
                             {"--flush-fraction", &flush},
                             {"--system", &system},
                             {"--tool-rules", &rules_all},
                             {0}};
    const char *name = NULL;
    int given = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--system-default") == 0) {
            system_default = 1;
            given++;
            continue;
        }
        if (strcmp(argv[i], "--tool-env") == 0 && i + 1 < argc) {
            if (nenv == 64) return cli_usage("at most 64 --tool-env at once");
            env_given[nenv++] = argv[++i];
            given++;
            continue;
        }
        if (strcmp(argv[i], "--tool-rule") == 0 && i + 1 < argc) {
            if (nrules == 64)
                return cli_usage("at most 64 --tool-rule at once (--tool-rules JSON)");
            rules_given[nrules++] = argv[++i];
            given++;
            continue;
        }
        if (argv[i][0] != '-') {
            if (name) return cli_usage("agents set takes one NAME (got '%s' too)", argv[i]);
            name = argv[i];
            continue;
        }
        const setting *s = table;
        while (s->name && strcmp(s->name, argv[i]) != 0)
            s++;
        if (!s->name) return cli_usage("unknown option %s", argv[i]);
        if (i + 1 >= argc) return cli_usage("%s needs a value", argv[i]);
        *s->value = argv[++i];
        given++;
    }
    if (!name) return cli_usage("agents set needs the NAME of an agent");
    if (!given) return cli_usage("agents set needs at least one setting to change");
    if (system && system_default) return cli_usage("--system and --system-default conflict");
    if (system && system[0] != '@') return cli_usage("--system takes @FILE");
    mg_agent_config changes = {.model = model, .embedder = embedder};
    int rc = parse_positive(window, "--context-window", &changes.context_window);
    if (!rc && model && !window)
        changes.context_window = cli_learn_context_window(model, "keeping the agent's window");
    if (!rc) rc = parse_positive(steps, "--step-limit", &changes.step_limit);
    if (!rc) rc = parse_or_off(reflect, "--reflect-every", &changes.reflect_every);
    if (!rc) rc = parse_or_off(idle, "--idle-seconds", &changes.idle_seconds);
    if (!rc) rc = parse_fraction(warn, "--warn-fraction", &changes.warn_fraction);
    if (!rc) rc = parse_fraction(flush, "--flush-fraction", &changes.flush_fraction);
    char *system_text = NULL;
    if (!rc && system && !(system_text = cli_text_arg(system))) rc = EXIT_RUNTIME;
    changes.system_prompt = system_default ? "" : system_text;
    if (!rc) rc = cli_open_store(c);
    char *rules_text = NULL;
    if (!rc) rc = tool_rules_arg(c, name, rules_all, rules_given, nrules, &rules_text);
    changes.tool_rules_json = rules_text;
    char *env_text = NULL;
    if (!rc) rc = tool_env_arg(env_given, nenv, &env_text);
    changes.tool_env_json = env_text;
    long long passages = 0;
    char *old_embedder = !rc && embedder ? agent_embedder(c, name, &passages) : NULL;
    mg_error err = {0};
    if (!rc && mg_agent_configure(c->store, name, &changes, &err)) rc = cli_fail(&err);
    if (!rc) {
        printf("updated agent %s\n", name);
        if (old_embedder && strcmp(old_embedder, embedder) != 0 && passages > 0)
            printf("%lld archival passage%s embedded by %s: search finds them by their "
                   "words only until you run: memgpt archival reembed --agent %s\n",
                   passages, passages == 1 ? " was" : "s were", old_embedder, name);
    }
    free(old_embedder);
    free(system_text);
    free(rules_text);
    free(env_text);
    return rc;
}
