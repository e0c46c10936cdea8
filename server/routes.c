/*
 * routes.c - the route table, the helpers every handler uses, and the
 * small routes (health, tools, models, runs).
 *
 * A pattern's "{}" matches one path segment, which the handler reads as
 * q->params[i]. The table is searched in order, so literal segments are
 * listed before a "{}" in the same place (/v1/agents/count before
 * /v1/agents/{}). A trailing slash is optional everywhere: Letta's SDK
 * sends it on collections and not on items.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/util.h"
#include "server/letta.h"

typedef struct route {
    const char *method;
    const char *pattern;
    srv_handler fn;
} route;

static const route routes[] = {
    {"GET", "/v1/health", srv_health},
    {"GET", "/v1/agents", srv_agents_list},
    {"POST", "/v1/agents", srv_agents_create},
    {"GET", "/v1/agents/count", srv_agents_count},
    {"POST", "/v1/agents/import", srv_agents_import},
    {"GET", "/v1/agents/{}", srv_agent_get},
    {"PATCH", "/v1/agents/{}", srv_agent_patch},
    {"DELETE", "/v1/agents/{}", srv_agent_delete},
    {"GET", "/v1/agents/{}/context", srv_agent_context},
    {"GET", "/v1/agents/{}/export", srv_agent_export},
    {"POST", "/v1/agents/{}/export", srv_agent_export},
    {"GET", "/v1/agents/{}/tools", srv_agent_tools_list},
    {"PATCH", "/v1/agents/{}/tools/attach/{}", srv_agent_tool_attach},
    {"PATCH", "/v1/agents/{}/tools/detach/{}", srv_agent_tool_detach},
    {"GET", "/v1/agents/{}/messages", srv_messages_list},
    {"POST", "/v1/agents/{}/messages", srv_messages_send},
    {"POST", "/v1/agents/{}/messages/stream", srv_messages_stream},
    {"POST", "/v1/agents/{}/messages/async", srv_messages_async},
    {"POST", "/v1/agents/{}/messages/cancel", srv_messages_cancel},
    {"GET", "/v1/agents/{}/messages/search", srv_recall_search},
    {"PATCH", "/v1/agents/{}/reset-messages", srv_messages_reset},
    {"POST", "/v1/agents/{}/summarize", srv_agent_summarize},
    {"GET", "/v1/agents/{}/core-memory/blocks", srv_agent_blocks_list},
    {"GET", "/v1/agents/{}/core-memory/blocks/{}", srv_agent_block_get},
    {"PATCH", "/v1/agents/{}/core-memory/blocks/{}", srv_agent_block_patch},
    {"GET", "/v1/agents/{}/archival-memory", srv_archival_list},
    {"POST", "/v1/agents/{}/archival-memory", srv_archival_insert},
    {"GET", "/v1/agents/{}/archival-memory/search", srv_archival_search},
    {"DELETE", "/v1/agents/{}/archival-memory/{}", srv_archival_delete},
    {"GET", "/v1/blocks", srv_blocks_list},
    {"GET", "/v1/blocks/{}", srv_block_get},
    {"PATCH", "/v1/blocks/{}", srv_block_patch},
    {"GET", "/v1/tools", srv_tools_list},
    {"GET", "/v1/mcp-servers", srv_mcp_servers_list},
    {"POST", "/v1/mcp-servers", srv_mcp_server_create},
    {"GET", "/v1/mcp-servers/{}", srv_mcp_server_get},
    {"PATCH", "/v1/mcp-servers/{}", srv_mcp_server_patch},
    {"DELETE", "/v1/mcp-servers/{}", srv_mcp_server_delete},
    {"GET", "/v1/mcp-servers/{}/tools", srv_mcp_server_tools},
    {"GET", "/v1/models", srv_models_list},
    {"GET", "/v1/models/embedding", srv_embedding_models_list},
    {"GET", "/v1/runs/{}", srv_run_get},
};

/* Matches `path` (its trailing slash ignored) against `pattern`, storing
 * the "{}" segments. The segments are copied into q->params' buffer. */
static int match(const char *pattern, const char *path, srv_request *q, char *buf, size_t size)
{
    size_t plen = strlen(path);
    while (plen > 1 && path[plen - 1] == '/')
        plen--;
    int nparams = 0;
    size_t used = 0;
    const char *p = pattern, *s = path, *end = path + plen;
    while (*p && s < end) {
        if (p[0] == '{' && p[1] == '}') {
            const char *seg_end = memchr(s, '/', (size_t)(end - s));
            if (!seg_end) seg_end = end;
            size_t n = (size_t)(seg_end - s);
            if (n == 0 || nparams == SRV_MAX_PATH_PARAMS || used + n + 1 > size) return 0;
            memcpy(buf + used, s, n);
            buf[used + n] = '\0';
            q->params[nparams++] = buf + used;
            used += n + 1;
            s = seg_end;
            p += 2;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            return 0;
        }
    }
    return *p == '\0' && s == end;
}

srv_handler srv_route(srv_request *q, int *path_known)
{
    static __thread char params[2048];
    *path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, q->path, q, params, sizeof params)) continue;
        if (strcmp(routes[i].method, q->method) == 0) return routes[i].fn;
        *path_known = 1;
    }
    return NULL;
}

/* ------------------------------------------------------------- helpers */

json_t *srv_json_of(mg_status st, char **text)
{
    if (st) return NULL;
    json_t *v = json_loads(*text, JSON_DECODE_ANY, NULL);
    mg_free(*text);
    return v;
}

int srv_check_id(srv_reply *r, const char *id, const char *prefix, const char *param)
{
    size_t n = strlen(prefix);
    int ok = id && strncmp(id, prefix, n) == 0 && id[n] == '-' && strlen(id + n + 1) == 36;
    for (size_t i = 0; ok && i < 36; i++) {
        char c = id[n + 1 + i];
        ok = (i == 8 || i == 13 || i == 18 || i == 23)
                 ? c == '-'
                 : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    if (ok) return 0;
    char msg[96];
    snprintf(msg, sizeof msg, "must be '%s-' followed by a lower-case UUID", prefix);
    srv_reply_invalid(r, "path", param, msg);
    return -1;
}

int srv_check_agent(srv_request *q, srv_reply *r, int index)
{
    if (srv_check_id(r, q->params[index], "agent", "agent_id")) return -1;
    mg_error err = {0};
    char *name;
    if (mg_agent_name_for_id(q->store, q->params[index], &name, &err)) {
        srv_reply_status(r, &err);
        return -1;
    }
    mg_free(name);
    return 0;
}

int srv_open_agent(srv_request *q, srv_reply *r, int index, mg_agent **out)
{
    *out = NULL;
    if (srv_check_id(r, q->params[index], "agent", "agent_id")) return -1;
    mg_error err = {0};
    if (mg_agent_open_id(q->store, q->params[index], out, &err)) {
        srv_reply_status(r, &err);
        return -1;
    }
    return 0;
}

int srv_page_params(srv_request *q, srv_reply *r, int default_limit, int default_desc, mg_page *out)
{
    *out = (mg_page){.before = srv_query(q, "before"), .after = srv_query(q, "after")};
    if (srv_query_int(q, r, "limit", default_limit, 1, 1000, &out->limit)) return -1;
    const char *order = srv_query(q, "order");
    out->descending = default_desc;
    if (order && strcmp(order, "asc") == 0) {
        out->descending = 0;
    } else if (order && strcmp(order, "desc") == 0) {
        out->descending = 1;
    } else if (order) {
        srv_reply_invalid(r, "query", "order", "must be 'asc' or 'desc'");
        return -1;
    }
    return 0;
}

static long index_of(json_t *items, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v)
    {
        const char *vid = json_string_value(json_object_get(v, "id"));
        if (vid && strcmp(vid, id) == 0) return (long)i;
    }
    return -1;
}

json_t *srv_page_array(json_t *items, const mg_page *page, srv_reply *r)
{
    if (page->descending) {
        json_t *rev = json_array();
        for (size_t i = json_array_size(items); i-- > 0;)
            json_array_append(rev, json_array_get(items, i));
        json_decref(items);
        items = rev;
    }
    long n = (long)json_array_size(items), from = 0, to = n;
    const char *cursors[2] = {page->after, page->before};
    long at[2];
    for (int c = 0; c < 2; c++) {
        if (!cursors[c]) continue;
        at[c] = index_of(items, cursors[c]);
        if (at[c] < 0) {
            srv_reply_error(r, 404, "no item with id '%.80s' in this list", cursors[c]);
            json_decref(items);
            return NULL;
        }
    }
    if (page->after) from = at[0] + 1;
    if (page->before) to = at[1];
    if (!page->after && page->before && to - from > page->limit) from = to - page->limit;
    if (to - from > page->limit) to = from + page->limit;
    json_t *out = json_array();
    for (long i = from; i < to; i++)
        json_array_append(out, json_array_get(items, (size_t)i));
    json_decref(items);
    return out;
}

/* ------------------------------------------------------- small routes */

void srv_health(srv_request *q, srv_reply *r)
{
    srv_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "ok", "version", MG_VERSION));
}

/* A page of Tools made from function schemas (stolen). */
static void reply_tools(srv_request *q, srv_reply *r, json_t *schemas, int default_limit)
{
    mg_page page;
    json_t *tools = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(schemas, i, s) json_array_append_new(tools, letta_tool(s));
    json_decref(schemas);
    if (srv_page_params(q, r, default_limit, 1, &page)) {
        json_decref(tools);
        return;
    }
    tools = srv_page_array(tools, &page, r);
    if (tools) srv_reply_json(r, 200, tools);
}

void srv_tools_list(srv_request *q, srv_reply *r)
{
    mg_error err = {0};
    char *text;
    reply_tools(q, r, srv_json_of(mg_tools_json(&text, &err), &text), 50);
}

void srv_agent_tools_list(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    if (srv_open_agent(q, r, 0, &agent)) return;
    mg_error err = {0};
    char *text;
    json_t *schemas = srv_json_of(mg_agent_tools_json(agent, &text, &err), &text);
    mg_agent_free(agent);
    reply_tools(q, r, schemas, 10);
}

/* The providers whose endpoints are configured, by their variables. */
static int provider_configured(const char *provider)
{
    if (strcmp(provider, "openai") == 0)
        return getenv("OPENAI_API_KEY") || getenv("OPENAI_BASE_URL");
    if (strcmp(provider, "anthropic") == 0)
        return getenv("ANTHROPIC_API_KEY") || getenv("ANTHROPIC_BASE_URL");
    return getenv("OLLAMA_HOST") != NULL;
}

void srv_models_list(srv_request *q, srv_reply *r)
{
    static const char *const providers[] = {"openai", "anthropic", "ollama"};
    json_t *out = json_array();
    for (size_t p = 0; p < 3; p++) {
        if (!provider_configured(providers[p])) continue;
        mg_error err = {0};
        char *text;
        json_t *models = srv_json_of(mg_models_list(providers[p], &text, &err), &text);
        size_t i;
        json_t *m;
        json_array_foreach(models, i, m)
        {
            const char *id = json_string_value(json_object_get(m, "id"));
            if (!id) continue;
            char handle[300];
            snprintf(handle, sizeof handle, "%s/%s", providers[p], id);
            int window = 0;
            mg_error ignored;
            mg_model_context_window_query(handle, &window, &ignored);
            if (window <= 0) window = 8192;
            json_t *model = letta_llm_config(handle, window);
            json_object_set_new(model, "name", json_string(id));
            json_object_set_new(model, "display_name", json_string(id));
            json_object_set_new(model, "provider_type", json_string(providers[p]));
            json_object_set_new(model, "model_type", json_string("llm"));
            json_object_set_new(model, "max_context_window", json_integer(window));
            json_array_append_new(out, model);
        }
        json_decref(models);
    }
    srv_reply_json(r, 200, out);
}

void srv_embedding_models_list(srv_request *q, srv_reply *r)
{
    json_t *out = json_array();
    const char *specs[] = {"offline",
                           provider_configured("openai") ? "openai/text-embedding-3-small" : NULL};
    for (size_t i = 0; i < 2 && specs[i]; i++) {
        json_t *e = letta_embedding_config(specs[i]);
        json_object_set(e, "name", json_object_get(e, "embedding_model"));
        json_object_set(e, "display_name", json_object_get(e, "embedding_model"));
        json_object_set(e, "provider_type", json_object_get(e, "embedding_endpoint_type"));
        json_object_set(e, "provider_name", json_object_get(e, "embedding_endpoint_type"));
        json_object_set_new(e, "model_type", json_string("embedding"));
        json_array_append_new(out, e);
    }
    srv_reply_json(r, 200, out);
}

void srv_run_get(srv_request *q, srv_reply *r)
{
    srv_run *run = srv_runner_find(q->srv->runner, q->params[0]);
    if (run) {
        srv_reply_json(r, 200, srv_run_json(run));
        srv_run_unref(run);
        return;
    }
    /* A finished background run is stored; others live in memory only. */
    const char *id = q->params[0];
    mg_error err = {0};
    char *text = NULL;
    mg_status st = strncmp(id, "run-", 4) == 0 ? mg_pending_outcome(q->store, id + 4, &text, &err)
                                               : srv_err(&err, MG_ERR_NOT_FOUND, "not a run id");
    json_t *stored = srv_json_of(st, &text);
    if (stored)
        srv_reply_json(r, 200, stored);
    else if (st && st != MG_ERR_NOT_FOUND)
        srv_reply_status(r, &err);
    else
        srv_reply_error(r, 404,
                        "no run with id '%.80s' (background runs are stored; others are kept "
                        "in memory while the server runs)",
                        id);
}
