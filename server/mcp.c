/*
 * mcp.c - the routes of MCP servers and of an agent's tools:
 *
 *   GET, POST          /v1/mcp-servers/
 *   GET, PATCH, DELETE /v1/mcp-servers/{id}
 *   GET                /v1/mcp-servers/{id}/tools
 *   PATCH              /v1/agents/{id}/tools/attach/{tool_id}
 *   PATCH              /v1/agents/{id}/tools/detach/{tool_id}
 *
 * A server is shown in Letta's shape: its config's members beside `id` and
 * `server_name`, secrets as "****" (the library never hands them out).
 *
 * A tool id names one of our functions or an MCP server's tool (see
 * letta_tool). Attaching one of our optional functions enables it;
 * attaching an MCP tool finds it by asking each server for its tools, so
 * the id a client got from GET /v1/mcp-servers/{id}/tools is enough. Both
 * change the agent, so they run on its worker (srv_runner_call).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/letta.h"
#include "server/request.h"
#include "server/runner.h"
#include "server/srv.h"

/* A server of mg_mcp_list in Letta's shape (new reference). */
static json_t *letta_mcp_server(json_t *server)
{
    json_t *out = json_deep_copy(json_object_get(server, "config"));
    if (!json_is_object(out)) {
        json_decref(out);
        out = json_object();
    }
    json_object_del(out, "timeout_seconds");
    json_object_set(out, "id", json_object_get(server, "id"));
    json_object_set(out, "server_name", json_object_get(server, "name"));
    return out;
}

static int check_server_id(srv_reply *r, const char *id)
{
    return srv_check_id(r, id, "mcp_server", "mcp_server_id");
}

/* Answers with server `id` (200), or the error. */
static void reply_server(srv_request *q, srv_reply *r, const char *id)
{
    mg_error err = {0};
    char *text;
    json_t *server = srv_json_of(mg_mcp_get(q->store, id, &text, &err), &text);
    if (!server) return srv_reply_status(r, &err);
    srv_reply_json(r, 200, letta_mcp_server(server));
    json_decref(server);
}

void srv_mcp_servers_list(srv_request *q, srv_reply *r)
{
    mg_error err = {0};
    char *text;
    json_t *servers = srv_json_of(mg_mcp_list(q->store, &text, &err), &text);
    if (!servers) return srv_reply_status(r, &err);
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s) json_array_append_new(out, letta_mcp_server(s));
    json_decref(servers);
    srv_reply_json(r, 200, out);
}

/* The `config` object of a create or update body (borrowed), or NULL with
 * a 422 in `r`. */
static json_t *config_of(srv_reply *r, json_t *body)
{
    json_t *config = json_object_get(body, "config");
    if (!json_is_object(config)) {
        srv_reply_invalid(r, "body", "config", "must be an object with mcp_server_type");
        return NULL;
    }
    return config;
}

void srv_mcp_server_create(srv_request *q, srv_reply *r)
{
    json_t *body = srv_body_object(q, r, 0);
    if (!body) return;
    const char *name = NULL;
    json_t *config;
    if (!srv_field_string(r, body, "server_name", 1, &name) && (config = config_of(r, body))) {
        char *text = json_dumps(config, JSON_COMPACT);
        char *id = NULL;
        mg_error err = {0};
        if (mg_mcp_add(q->store, name, text, &id, &err))
            srv_reply_status(r, &err);
        else
            reply_server(q, r, id);
        mg_free(id);
        free(text);
    }
    json_decref(body);
}

void srv_mcp_server_get(srv_request *q, srv_reply *r)
{
    if (check_server_id(r, q->params[0])) return;
    reply_server(q, r, q->params[0]);
}

void srv_mcp_server_patch(srv_request *q, srv_reply *r)
{
    if (check_server_id(r, q->params[0])) return;
    json_t *body = srv_body_object(q, r, 0);
    if (!body) return;
    const char *name = NULL;
    json_t *config = json_object_get(body, "config");
    if (!srv_field_string(r, body, "server_name", 0, &name) &&
        (!config || json_is_null(config) || config_of(r, body))) {
        char *text = json_is_object(config) ? json_dumps(config, JSON_COMPACT) : NULL;
        mg_error err = {0};
        if (mg_mcp_update(q->store, q->params[0], name, text, &err))
            srv_reply_status(r, &err);
        else
            reply_server(q, r, q->params[0]);
        free(text);
    }
    json_decref(body);
}

void srv_mcp_server_delete(srv_request *q, srv_reply *r)
{
    if (check_server_id(r, q->params[0])) return;
    mg_error err = {0};
    if (mg_mcp_remove(q->store, q->params[0], NULL, &err)) return srv_reply_status(r, &err);
    r->status = 204;
}

/* Server `server` ({id, name}, borrowed)'s tools as Letta Tools. */
static json_t *server_tools(srv_request *q, json_t *server, mg_error *err)
{
    char *text;
    const char *id = json_string_value(json_object_get(server, "id"));
    json_t *tools = srv_json_of(mg_mcp_tools(q->store, id, &text, err), &text);
    if (!tools) return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *schema =
            json_pack("{s:O, s:O?, s:O?, s:{s:O, s:O}}", "name", json_object_get(t, "name"),
                      "description", json_object_get(t, "description"), "parameters",
                      json_object_get(t, "inputSchema"), "mcp_server", "name",
                      json_object_get(server, "name"), "id", json_object_get(server, "id"));
        json_array_append_new(out, letta_tool(schema));
        json_decref(schema);
    }
    json_decref(tools);
    return out;
}

void srv_mcp_server_tools(srv_request *q, srv_reply *r)
{
    if (check_server_id(r, q->params[0])) return;
    mg_error err = {0};
    char *text;
    json_t *server = srv_json_of(mg_mcp_get(q->store, q->params[0], &text, &err), &text);
    json_t *tools = server ? server_tools(q, server, &err) : NULL;
    json_decref(server);
    if (!tools) return srv_reply_status(r, &err);
    srv_reply_json(r, 200, tools);
}

/* ------------------------------------------------- attach, detach */

typedef struct tool_change {
    const char *tool_id;
    int attach;
} tool_change;

static mg_status fail(mg_error *err, mg_status code, const char *message)
{
    err->code = code;
    snprintf(err->message, sizeof err->message, "%s", message);
    return code;
}

/* The schema (new reference) among `schemas` whose Letta Tool has id `id`. */
static json_t *schema_with_id(json_t *schemas, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(schemas, i, s)
    {
        json_t *tool = letta_tool(s);
        int same = strcmp(json_string_value(json_object_get(tool, "id")), id) == 0;
        json_decref(tool);
        if (same) return json_incref(s);
    }
    return NULL;
}

/* Enables (on) or disables one of our optional functions for the agent. */
static mg_status set_function(mg_store *store, mg_agent *agent, const char *name, int on,
                              mg_error *err)
{
    char *text;
    json_t *state = srv_json_of(mg_agent_describe(agent, &text, err), &text);
    if (!state) return err->code;
    json_t *names = json_object_get(state, "functions"), *kept = json_array();
    int had = 0;
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (strcmp(json_string_value(n), name) == 0)
            had = 1;
        else
            json_array_append(kept, n);
    }
    json_decref(state);
    mg_status st = MG_OK;
    if (!on && !had) {
        st = fail(err, MG_ERR_USAGE,
                  "that is one of memgpt's base functions, which every agent keeps");
    } else {
        if (on) json_array_append_new(kept, json_string(name));
        text = json_dumps(kept, JSON_COMPACT);
        mg_agent_config changes = {.functions_json = text};
        st = mg_agent_configure(store, mg_agent_name(agent), &changes, err);
        free(text);
    }
    json_decref(kept);
    return st;
}

/* Attaches the MCP tool whose id is `tool_id`, asking each server for its
 * tools until one has it. */
static mg_status attach_mcp_tool(mg_store *store, mg_agent *agent, const char *tool_id,
                                 mg_error *err)
{
    char *text;
    json_t *servers = srv_json_of(mg_mcp_list(store, &text, err), &text);
    if (!servers) return err->code;
    mg_status st = MG_OK;
    int found = 0;
    size_t i;
    json_t *server;
    json_array_foreach(servers, i, server)
    {
        const char *sid = json_string_value(json_object_get(server, "id"));
        mg_error ignored = {0};
        json_t *tools = srv_json_of(mg_mcp_tools(store, sid, &text, &ignored), &text);
        size_t k;
        json_t *t;
        json_array_foreach(tools, k, t)
        {
            json_t *schema = json_pack("{s:O, s:{s:O, s:O}}", "name", json_object_get(t, "name"),
                                       "mcp_server", "name", json_object_get(server, "name"), "id",
                                       json_object_get(server, "id"));
            json_t *tool = letta_tool(schema);
            found = strcmp(json_string_value(json_object_get(tool, "id")), tool_id) == 0;
            if (found)
                st = mg_agent_tool_attach(store, mg_agent_name(agent), sid,
                                          json_string_value(json_object_get(t, "name")), err);
            json_decref(tool);
            json_decref(schema);
            if (found) break;
        }
        json_decref(tools);
        if (found) break;
    }
    json_decref(servers);
    if (!found)
        st = fail(err, MG_ERR_NOT_FOUND,
                  "no tool with that id: memgpt's functions are listed at GET /v1/tools/, MCP "
                  "servers' tools at GET /v1/mcp-servers/{id}/tools");
    return st;
}

static mg_status change_tool(mg_store *store, mg_agent *agent, void *p, mg_error *err)
{
    tool_change *c = p;
    char *text;
    json_t *ours = srv_json_of(mg_tools_json(&text, err), &text);
    json_t *offered = ours ? srv_json_of(mg_agent_tools_json(agent, &text, err), &text) : NULL;
    json_t *mine = offered ? schema_with_id(ours, c->tool_id) : NULL;
    json_t *have = offered ? schema_with_id(offered, c->tool_id) : NULL;
    mg_status st = offered ? MG_OK : err->code;
    const char *name = json_string_value(json_object_get(have ? have : mine, "name"));
    if (st) {
        /* the lists could not be read */
    } else if (!c->attach && !have) {
        st = fail(err, MG_ERR_NOT_FOUND, "the agent has no tool with that id");
    } else if (!c->attach && json_is_true(json_object_get(have, "python"))) {
        st = fail(err, MG_ERR_USAGE,
                  "an agent's Python tools are switched on and off together: PATCH the agent "
                  "with settings.python_tools");
    } else if (!c->attach && json_object_get(have, "mcp_server")) {
        st = mg_agent_tool_detach(store, mg_agent_name(agent), name, err);
    } else if (!c->attach) {
        st = set_function(store, agent, name, 0, err);
    } else if (have) {
        /* offered already */
    } else if (mine) {
        st = set_function(store, agent, name, 1, err);
    } else {
        st = attach_mcp_tool(store, agent, c->tool_id, err);
    }
    json_decref(ours);
    json_decref(offered);
    json_decref(mine);
    json_decref(have);
    return st;
}

static void tool_attach_detach(srv_request *q, srv_reply *r, int attach)
{
    if (srv_check_id(r, q->params[0], "agent", "agent_id") ||
        srv_check_id(r, q->params[1], "tool", "tool_id"))
        return;
    tool_change c = {.tool_id = q->params[1], .attach = attach};
    mg_error err = {0};
    if (srv_runner_call(q->srv->runner, q->params[0], change_tool, &c, &err))
        return srv_reply_status(r, &err);
    srv_agent_get(q, r);
}

void srv_agent_tool_attach(srv_request *q, srv_reply *r)
{
    tool_attach_detach(q, r, 1);
}

void srv_agent_tool_detach(srv_request *q, srv_reply *r)
{
    tool_attach_detach(q, r, 0);
}
