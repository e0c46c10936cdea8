/*
 * agents.c - /v1/agents: create, list, count, read, change, delete, and
 * the context window overview.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "server/handlers.h"
#include "server/letta.h"

#define MAX_BLOCKS 64

static void reply_agent_state(srv_reply *r, int status, mg_agent *agent)
{
    mg_error err = {0};
    json_t *state = letta_agent_state(agent, &err);
    if (state)
        srv_reply_json(r, status, state);
    else
        srv_reply_status(r, &err);
}

/* The AgentState of agent `id` as JSON text (caller frees), from the
 * answer cache when nothing was committed since it was built; NULL with
 * err set if there is no such agent. */
static char *agent_state_text(srv_request *q, const char *id, mg_error *err)
{
    int64_t epoch;
    char *text = srv_cache_get(q->srv->agents, q->store, &q->store_seen, id, &epoch);
    if (text) return text;
    mg_agent *agent;
    if (mg_agent_open_id(q->store, id, &agent, err)) return NULL;
    json_t *state = letta_agent_state(agent, err);
    mg_agent_free(agent);
    text = state ? json_dumps(state, JSON_COMPACT) : NULL;
    json_decref(state);
    if (text) srv_cache_put(q->srv->agents, id, epoch, text);
    return text;
}

/* ----------------------------------------------------------------- list */

/* The filter of list and count: name, tags, match_all_tags. */
static int read_filter(srv_request *q, srv_reply *r, const char **tags, mg_agent_filter *f)
{
    int match_all = 0;
    if (srv_query_bool(q, r, "match_all_tags", 0, &match_all)) return -1;
    *f = (mg_agent_filter){.name = srv_query(q, "name"), .tags = tags, .match_any = !match_all};
    f->ntags = srv_query_all(q, "tags", tags, MG_SEARCH_MAX_TAGS);
    return 0;
}

void srv_agents_list(srv_request *q, srv_reply *r)
{
    const char *tags[MG_SEARCH_MAX_TAGS];
    mg_agent_filter filter;
    mg_page page;
    if (read_filter(q, r, tags, &filter) || srv_page_params(q, r, 50, 1, &page)) return;
    int ascending = 0;
    if (srv_query_bool(q, r, "ascending", 0, &ascending)) return;
    if (ascending && !srv_query(q, "order")) page.descending = 0;
    char *text;
    mg_error err = {0};
    json_t *listed = srv_json_of(mg_agent_page(q->store, &filter, &page, &text, &err), &text);
    if (!listed) {
        srv_reply_status(r, &err);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(listed, i, a)
    {
        char *state = agent_state_text(q, json_string_value(json_object_get(a, "id")), &err);
        json_t *v = state ? json_loads(state, 0, NULL) : NULL; /* NULL: deleted meanwhile */
        free(state);
        if (v) json_array_append_new(out, v);
    }
    json_decref(listed);
    srv_reply_json(r, 200, out);
}

void srv_agents_count(srv_request *q, srv_reply *r)
{
    const char *tags[MG_SEARCH_MAX_TAGS];
    mg_agent_filter filter;
    if (read_filter(q, r, tags, &filter)) return;
    mg_error err = {0};
    int64_t n = 0;
    if (!filter.name && !filter.ntags) {
        if (mg_agent_count(q->store, &n, &err)) return srv_reply_status(r, &err);
        srv_reply_json(r, 200, json_integer(n));
        return;
    }
    /* Filtered: count the pages. */
    mg_page page = {.limit = 1000};
    char last[64] = "";
    for (;;) {
        char *text;
        page.after = last[0] ? last : NULL;
        json_t *rows = srv_json_of(mg_agent_page(q->store, &filter, &page, &text, &err), &text);
        if (!rows) return srv_reply_status(r, &err);
        size_t k = json_array_size(rows);
        n += (int64_t)k;
        if (k)
            snprintf(last, sizeof last, "%s",
                     json_string_value(json_object_get(json_array_get(rows, k - 1), "id")));
        json_decref(rows);
        if (k < 1000) break;
    }
    srv_reply_json(r, 200, json_integer(n));
}

/* --------------------------------------------------------------- create */

/* A readable name for an agent created without one, as Letta gives. */
static void generate_name(char out[64])
{
    static const char *const adjectives[] = {"amber",  "brave", "calm",   "deft",  "eager", "fair",
                                             "gentle", "hardy", "keen",   "lucid", "merry", "noble",
                                             "quiet",  "rapid", "steady", "tidy",  "vivid", "wise"};
    static const char *const nouns[] = {"badger", "crane", "dolphin", "falcon", "heron", "lynx",
                                        "marten", "otter", "owl",     "panda",  "raven", "robin",
                                        "seal",   "swift", "tern",    "vole",   "wren",  "yak"};
    unsigned r[3] = {0, 0, 0};
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) r[2] = (unsigned)rand();
    snprintf(out, 64, "%s-%s-%04x", adjectives[r[0] % (sizeof adjectives / sizeof *adjectives)],
             nouns[r[1] % (sizeof nouns / sizeof *nouns)], r[2] & 0xffff);
}

typedef struct block_spec {
    const char *label, *value, *description;
    int limit, read_only;
} block_spec;

/* memory_blocks: [{label, value, limit, description, read_only}]. */
static int read_blocks(srv_reply *r, json_t *body, block_spec *out, int *n)
{
    json_t *blocks = json_object_get(body, "memory_blocks");
    *n = 0;
    if (!blocks || json_is_null(blocks)) return 0;
    if (!json_is_array(blocks) || json_array_size(blocks) > MAX_BLOCKS) {
        srv_reply_invalid(r, "body", "memory_blocks", "must be a list of at most 64 blocks");
        return -1;
    }
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b)
    {
        block_spec *s = &out[(*n)++];
        *s = (block_spec){.limit = 0, .read_only = 0};
        if (!json_is_object(b)) {
            srv_reply_invalid(r, "body", "memory_blocks", "each block must be an object");
            return -1;
        }
        if (srv_field_string(r, b, "label", 1, &s->label) ||
            srv_field_string(r, b, "value", 1, &s->value) ||
            srv_field_string(r, b, "description", 0, &s->description) ||
            srv_field_int(r, b, "limit", 1, INT_MAX, &s->limit) ||
            srv_field_bool(r, b, "read_only", &s->read_only))
            return -1;
    }
    return 0;
}

/* The model handle: `model`, else llm_config's handle or endpoint/model. */
static const char *model_of(json_t *body, char *buf, size_t size)
{
    const char *model = json_string_value(json_object_get(body, "model"));
    json_t *llm = json_object_get(body, "llm_config");
    if (!model) model = json_string_value(json_object_get(llm, "handle"));
    if (!model && json_string_value(json_object_get(llm, "model"))) {
        const char *type = json_string_value(json_object_get(llm, "model_endpoint_type"));
        snprintf(buf, size, "%s/%s", type ? type : "openai",
                 json_string_value(json_object_get(llm, "model")));
        model = buf;
    }
    return model;
}

/* memgpt's own settings, beside Letta's fields: "settings" {step_limit,
 * reflect_every, idle_seconds (-1 turns those two off), warn_fraction,
 * flush_fraction}, as AgentState shows them. 0, or -1 with 422 in `r`. */
static int read_memgpt_settings(srv_reply *r, json_t *body, mg_agent_config *c)
{
    json_t *set = json_object_get(body, "settings");
    if (!set || json_is_null(set)) return 0;
    if (!json_is_object(set)) {
        srv_reply_invalid(r, "body", "settings", "must be an object");
        return -1;
    }
    if (srv_field_int(r, set, "step_limit", 1, 1000, &c->step_limit) ||
        srv_field_int(r, set, "reflect_every", -1, 100000, &c->reflect_every) ||
        srv_field_int(r, set, "idle_seconds", -1, 86400 * 365, &c->idle_seconds))
        return -1;
    const char *names[2] = {"warn_fraction", "flush_fraction"};
    double *fields[2] = {&c->warn_fraction, &c->flush_fraction};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(set, names[i]);
        if (!v || json_is_null(v)) continue;
        if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1) {
            srv_reply_invalid(r, "body", names[i], "must be a number above 0 and at most 1");
            return -1;
        }
        *fields[i] = json_number_value(v);
    }
    json_t *python = json_object_get(set, "python_tools");
    if (python && !json_is_boolean(python) && !json_is_null(python)) {
        srv_reply_invalid(r, "body", "python_tools", "must be true or false");
        return -1;
    }
    if (json_is_boolean(python)) c->python_tools = json_is_true(python) ? 1 : -1;
    if ((c->reflect_every == 0 && json_object_get(set, "reflect_every")) ||
        (c->idle_seconds == 0 && json_object_get(set, "idle_seconds"))) {
        srv_reply_invalid(r, "body", "settings",
                          "reflect_every and idle_seconds are -1 (off) or "
                          "at least 1");
        return -1;
    }
    return 0;
}

/* The settings both create and PATCH read. 0, or -1 with 422 in `r`. */
static int read_settings(srv_reply *r, json_t *body, mg_agent_config *c, char *model_buf,
                         size_t model_size, char **tags_json, char **metadata_json,
                         char **rules_json, char **env_json)
{
    const char *embedding = NULL;
    json_t *tags;
    if (srv_field_string(r, body, "system", 0, &c->system_prompt) ||
        srv_field_string(r, body, "description", 0, &c->description) ||
        srv_field_string(r, body, "embedding", 0, &embedding) ||
        srv_field_int(r, body, "context_window_limit", 1, INT_MAX, &c->context_window) ||
        srv_field_strings(r, body, "tags", &tags) || read_memgpt_settings(r, body, c))
        return -1;
    if (!c->context_window)
        srv_field_int(r, json_object_get(body, "llm_config"), "context_window", 1, INT_MAX,
                      &c->context_window);
    c->model = model_of(body, model_buf, model_size);
    if (!embedding)
        embedding =
            json_string_value(json_object_get(json_object_get(body, "embedding_config"), "handle"));
    if (embedding && !(c->embedder = letta_embedder_spec(embedding))) {
        srv_reply_invalid(r, "body", "embedding",
                          "unknown embedding handle: use 'memgpt/offline' or 'openai/MODEL'");
        return -1;
    }
    json_t *meta = json_object_get(body, "metadata");
    if (meta && !json_is_null(meta) && !json_is_object(meta)) {
        srv_reply_invalid(r, "body", "metadata", "must be an object");
        return -1;
    }
    json_t *secrets = json_object_get(body, "secrets");
    if (!secrets || json_is_null(secrets))
        secrets = json_object_get(body, "tool_exec_environment_variables");
    if (secrets && !json_is_null(secrets)) {
        const char *k;
        json_t *v;
        int ok = json_is_object(secrets);
        json_object_foreach(secrets, k, v) ok &= json_is_string(v) || json_is_null(v);
        if (!ok) {
            srv_reply_invalid(r, "body", "secrets", "must be an object of strings");
            return -1;
        }
    }
    json_t *rules = json_object_get(body, "tool_rules");
    if (rules && !json_is_null(rules) && !json_is_array(rules)) {
        srv_reply_invalid(r, "body", "tool_rules", "must be an array of tool rules");
        return -1;
    }
    *tags_json = tags ? json_dumps(tags, JSON_COMPACT) : NULL;
    *metadata_json = meta ? json_dumps(meta, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    *rules_json = json_is_array(rules) ? json_dumps(rules, JSON_COMPACT) : NULL;
    *env_json = json_is_object(secrets) ? json_dumps(secrets, JSON_COMPACT) : NULL;
    c->tool_env_json = *env_json;
    c->tags_json = *tags_json;
    c->metadata_json = *metadata_json;
    c->tool_rules_json = *rules_json;
    return 0;
}

static mg_status apply_block(mg_agent *agent, const block_spec *b, mg_error *err)
{
    /* Without a limit, setting the value first makes the block as large
     * as it needs; with one, the limit comes first and the value must fit. */
    if (!b->limit) {
        mg_status st = mg_memory_set(agent, b->label, b->value, err);
        return st ? st : mg_memory_configure(agent, b->label, 0, b->description, b->read_only, err);
    }
    mg_status st =
        mg_memory_configure(agent, b->label, b->limit, b->description, b->read_only, err);
    return st ? st : mg_memory_set(agent, b->label, b->value, err);
}

/* Letta's `tools` (names) and `tool_ids` on create, as the names of our
 * functions they give (GET /v1/tools/); NULL when neither is given. Every
 * entry must be one of ours: 0, or -1 with 422 in `r`. */
static int read_tools(srv_reply *r, json_t *body, json_t **names)
{
    json_t *by_name, *by_id;
    *names = NULL;
    if (srv_field_strings(r, body, "tools", &by_name) ||
        srv_field_strings(r, body, "tool_ids", &by_id))
        return -1;
    if (!by_name && !by_id) return 0;
    char *text;
    mg_error err = {0};
    json_t *all = srv_json_of(mg_tools_json(&text, &err), &text);
    json_t *out = json_array();
    const char *fields[2] = {"tools", "tool_ids"};
    json_t *asked[2] = {by_name, by_id};
    for (int f = 0; f < 2; f++) {
        size_t i, k;
        json_t *want, *schema;
        json_array_foreach(asked[f], i, want)
        {
            const char *found = NULL;
            json_array_foreach(all, k, schema)
            {
                json_t *tool = letta_tool(schema);
                if (json_equal(json_object_get(tool, f ? "id" : "name"), want))
                    found = json_string_value(json_object_get(schema, "name"));
                json_decref(tool);
                if (found) break;
            }
            if (!found) {
                char msg[200];
                snprintf(msg, sizeof msg,
                         "no tool '%.80s' here: memgpt offers its own functions (GET /v1/tools/)",
                         json_string_value(want));
                srv_reply_invalid(r, "body", fields[f], msg);
                json_decref(out);
                json_decref(all);
                return -1;
            }
            json_array_append_new(out, json_string(found));
        }
    }
    json_decref(all);
    *names = out;
    return 0;
}

/* Enables the optional functions among `names` (those the new agent is not
 * offered already), reopening *agent after the change. */
static mg_status enable_tools(mg_store *store, const char *name, mg_agent **agent, json_t *names,
                              mg_error *err)
{
    char *text;
    json_t *offered = srv_json_of(mg_agent_tools_json(*agent, &text, err), &text);
    if (!offered) return err->code;
    json_t *extra = json_array();
    size_t i, k;
    json_t *want, *schema;
    json_array_foreach(names, i, want)
    {
        int have = 0;
        json_array_foreach(offered, k, schema) have |=
            json_equal(json_object_get(schema, "name"), want);
        json_array_foreach(extra, k, schema) have |= json_equal(schema, want);
        if (!have) json_array_append(extra, want);
    }
    json_decref(offered);
    mg_status st = MG_OK;
    if (json_array_size(extra)) {
        char *functions = json_dumps(extra, JSON_COMPACT);
        mg_agent_free(*agent);
        *agent = NULL;
        st = mg_agent_configure(store, name, &(mg_agent_config){.functions_json = functions}, err);
        if (!st) st = mg_agent_open(store, name, agent, err);
        free(functions);
    }
    json_decref(extra);
    return st;
}

void srv_agents_create(srv_request *q, srv_reply *r)
{
    json_t *body = srv_body_object(q, r, 0);
    if (!body) return;
    mg_agent_config c = {0};
    char model_buf[256], name_buf[64], *tags_json = NULL, *metadata_json = NULL, *rules_json = NULL,
                                       *env_json = NULL;
    block_spec blocks[MAX_BLOCKS];
    int nblocks = 0;
    const char *name = NULL;
    json_t *tools = NULL;
    if (srv_field_string(r, body, "name", 0, &name) ||
        read_settings(r, body, &c, model_buf, sizeof model_buf, &tags_json, &metadata_json,
                      &rules_json, &env_json) ||
        read_blocks(r, body, blocks, &nblocks) || read_tools(r, body, &tools))
        goto done;
    if (!name) {
        generate_name(name_buf);
        name = name_buf;
    }
    /* persona and human are made by create itself, with their values. */
    for (int i = 0; i < nblocks; i++) {
        if (strcmp(blocks[i].label, "persona") == 0) c.persona = blocks[i].value;
        if (strcmp(blocks[i].label, "human") == 0) c.human = blocks[i].value;
    }
    mg_error err = {0};
    mg_agent *agent = NULL;
    mg_status st = mg_agent_create(q->store, name, &c, &err);
    if (!st) st = mg_agent_open(q->store, name, &agent, &err);
    if (!st && tools) st = enable_tools(q->store, name, &agent, tools, &err);
    for (int i = 0; i < nblocks && !st; i++)
        st = apply_block(agent, &blocks[i], &err);
    if (st) {
        /* Nothing half-made stays: the agent goes if a block failed. */
        mg_agent_free(agent);
        if (err.code != MG_ERR_EXISTS) {
            mg_error ignored;
            mg_agent_delete(q->store, name, &ignored);
        }
        srv_reply_status(r, &err);
        goto done;
    }
    reply_agent_state(r, 200, agent);
    mg_agent_free(agent);
done:
    free(tags_json);
    free(metadata_json);
    free(rules_json);
    free(env_json);
    json_decref(tools);
    json_decref(body);
}

/* ------------------------------------------------------------ one agent */

void srv_agent_get(srv_request *q, srv_reply *r)
{
    if (srv_check_id(r, q->params[0], "agent", "agent_id")) return;
    mg_error err = {0};
    char *state = agent_state_text(q, q->params[0], &err);
    if (!state) return srv_reply_status(r, &err);
    r->status = 200;
    r->body = state;
}

typedef struct patch_ctx {
    mg_agent_config changes;
    const char *new_name;
} patch_ctx;

static mg_status patch_agent(mg_store *store, mg_agent *agent, void *p, mg_error *err)
{
    patch_ctx *ctx = p;
    mg_status st = mg_agent_configure(store, mg_agent_name(agent), &ctx->changes, err);
    if (!st && ctx->new_name && strcmp(ctx->new_name, mg_agent_name(agent)) != 0)
        st = mg_agent_rename(store, mg_agent_name(agent), ctx->new_name, err);
    return st;
}

void srv_agent_patch(srv_request *q, srv_reply *r)
{
    if (srv_check_id(r, q->params[0], "agent", "agent_id")) return;
    json_t *body = srv_body_object(q, r, 0);
    if (!body) return;
    patch_ctx ctx = {{0}, NULL};
    char model_buf[256], *tags_json = NULL, *metadata_json = NULL, *rules_json = NULL,
                         *env_json = NULL;
    if (srv_field_string(r, body, "name", 0, &ctx.new_name) ||
        read_settings(r, body, &ctx.changes, model_buf, sizeof model_buf, &tags_json,
                      &metadata_json, &rules_json, &env_json))
        goto done;
    /* "system": "" would mean the built-in instructions to the library;
     * to a Letta client it is an empty prompt, which we refuse. */
    if (ctx.changes.system_prompt && !*ctx.changes.system_prompt) {
        srv_reply_invalid(r, "body", "system", "must not be empty");
        goto done;
    }
    mg_error err = {0};
    if (srv_runner_call(q->srv->runner, q->params[0], patch_agent, &ctx, &err)) {
        srv_reply_status(r, &err);
        goto done;
    }
    srv_agent_get(q, r);
done:
    free(tags_json);
    free(metadata_json);
    free(rules_json);
    free(env_json);
    json_decref(body);
}

static mg_status delete_agent(mg_store *store, mg_agent *agent, void *ctx, mg_error *err)
{
    return mg_agent_delete(store, mg_agent_name(agent), err);
}

void srv_agent_delete(srv_request *q, srv_reply *r)
{
    if (srv_check_id(r, q->params[0], "agent", "agent_id")) return;
    /* Queued turns never start; a running one stops at its next step. */
    json_decref(srv_runner_cancel(q->srv->runner, q->params[0]));
    mg_error err = {0};
    if (srv_runner_call(q->srv->runner, q->params[0], delete_agent, NULL, &err)) {
        srv_reply_status(r, &err);
        return;
    }
    srv_reply_json(r, 200, json_object());
}

/* -------------------------------------------------------------- context */

void srv_agent_context(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    if (srv_open_agent(q, r, 0, &agent)) return;
    mg_error err = {0};
    char *text;
    json_t *use = srv_json_of(mg_context_json(agent, &text, &err), &text);
    json_t *parts = use ? srv_json_of(mg_context_text_json(agent, &text, &err), &text) : NULL;
    json_t *desc = parts ? srv_json_of(mg_agent_describe(agent, &text, &err), &text) : NULL;
    json_t *tools = desc ? srv_json_of(mg_agent_tools_json(agent, &text, &err), &text) : NULL;
    mg_page page = {.limit = 1000};
    json_t *rows =
        tools ? srv_json_of(mg_messages_page(agent, &page, 1, &text, &err), &text) : NULL;
    mg_agent_free(agent);
    if (!rows) {
        srv_reply_status(r, &err);
    } else {
        json_t *tok = json_object_get(use, "tokens");
        json_t *functions = json_array(), *messages = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(tools, i, v) json_array_append_new(
            functions, json_pack("{s:s, s:O}", "type", "function", "function", v));
        json_array_foreach(rows, i, v) letta_messages_of_row(v, 1, messages);
        srv_reply_json(
            r, 200,
            json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, "
                      "s:O, s:o, s:O, s:o, s:O, s:O, s:O, s:O}",
                      "context_window_size_max", json_object_get(use, "context_window"),
                      "context_window_size_current", json_object_get(use, "total"), "num_messages",
                      json_object_get(use, "messages_in_view"), "num_archival_memory",
                      json_object_get(desc, "passages"), "num_recall_memory",
                      json_object_get(desc, "messages"), "num_tokens_external_memory_summary",
                      json_object_get(tok, "memory_statistics"), "external_memory_summary",
                      json_object_get(parts, "memory_statistics"), "num_tokens_system",
                      json_object_get(tok, "system_instructions"), "system_prompt",
                      json_object_get(parts, "instructions"), "num_tokens_core_memory",
                      json_object_get(tok, "core_memory"), "core_memory",
                      json_object_get(parts, "core_memory"), "num_tokens_summary_memory",
                      json_object_get(tok, "summary"), "summary_memory",
                      json_object_get(parts, "summary_text"), "num_tokens_functions_definitions",
                      json_object_get(tok, "tools"), "num_tokens_messages",
                      json_object_get(tok, "messages"), "functions_definitions", functions,
                      "summarized_messages", json_object_get(parts, "summarized_messages"),
                      "last_flush_at", json_object_get(parts, "last_flush_at"), "messages",
                      messages, "warn_at_tokens", json_object_get(use, "warn_at"),
                      "flush_at_tokens", json_object_get(use, "flush_at"), "token_counter",
                      json_object_get(use, "counter"), "warned", json_object_get(use, "warned")));
    }
    json_decref(use);
    json_decref(parts);
    json_decref(desc);
    json_decref(tools);
    json_decref(rows);
}
