/*
 * tools.c - MCP servers of a data directory, the tools agents have from
 * them, and calling those tools (see tools.h).
 *
 * A server is named by its name or its id ("mcp_server-<uuid>"). Its
 * configuration is stored whole, secrets included, because a stdio server
 * needs its env and an HTTP one its token at every start; whatever shows
 * a configuration (mg_mcp_list, the server's API) shows "****" for env
 * values, auth_token and custom header values instead.
 */
#include "tools/tools.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "store/store.h"
#include "tools/mcp.h"
#include "tools/messaging.h"
#include "tools/python.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"
#include "util/uuid.h"

#define SERVER_NAME_MAX 64
#define TOOL_NAME_MAX   64
static const char hidden[] = "****";

/* ---------------------------------------------- clients of a store */

typedef struct client_entry {
    int64_t row; /* the server's row: stays through a rename */
    mcp_client *client;
    struct client_entry *next;
} client_entry;

static void clients_free(void *list)
{
    for (client_entry *e = list, *next; e; e = next) {
        next = e->next;
        mcp_client_free(e->client);
        free(e);
    }
}

/* Ends the store's client of server `row`, if it has one (its process
 * with it). */
static void client_drop(mg_store *store, int64_t row)
{
    for (client_entry **link = (client_entry **)&store->mcp_clients; *link; link = &(*link)->next) {
        client_entry *e = *link;
        if (e->row != row) continue;
        *link = e->next;
        mcp_client_free(e->client);
        free(e);
        return;
    }
}

/* The store's client of server `row` (named `name`), made again when its
 * configuration or name changed since. Borrowed: the store owns it. */
static mcp_client *client_for(mg_store *store, int64_t row, const char *name, const json_t *config)
{
    for (client_entry *e = store->mcp_clients; e; e = e->next)
        if (e->row == row && json_equal(mcp_client_config(e->client), config) &&
            strcmp(mcp_client_name(e->client), name) == 0)
            return e->client;
    client_drop(store, row);
    client_entry *e = mg_xcalloc(1, sizeof *e);
    e->row = row;
    e->next = store->mcp_clients;
    store->mcp_clients = e;
    store->mcp_clients_free = clients_free;
    buf log = BUF_INIT;
    buf_printf(&log, "%s/logs", store->home);
    mkdir(buf_str(&log), 0700);
    buf_printf(&log, "/mcp-%s.log", name);
    e->client = mcp_client_new(name, config, buf_str(&log));
    buf_free(&log);
    return e->client;
}

/* ---------------------------------------------------- server rows */

static int name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return 0;
    return 1;
}

static mg_status bad_server_name(mg_error *err)
{
    return mg_err_set(err, MG_ERR_USAGE,
                      "an MCP server's name is 1-%d letters, digits, '_', '-' or '.'",
                      SERVER_NAME_MAX);
}

/* The row of server `server` (name or id): its row id, name and config. */
static mg_status find_server(mg_store *store, const char *server, int64_t *row, char **name,
                             json_t **config, mg_error *err)
{
    const char *uuid = mg_uuid_strip(server, "mcp_server");
    sqlite3_stmt *s;
    mg_status st = store_prepare(
        store, "SELECT id, name, config FROM mcp_servers WHERE name = ? OR uuid = lower(?)", &s,
        err);
    if (st) return st;
    store_bind_text(s, 1, server);
    store_bind_text(s, 2, uuid ? uuid : "");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (row) *row = sqlite3_column_int64(s, 0);
        if (name) *name = store_column_strdup(s, 1);
        if (config) *config = json_loads((const char *)sqlite3_column_text(s, 2), 0, NULL);
    } else if (rc == SQLITE_DONE) {
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "no MCP server '%.80s' (memgpt mcp list shows them)",
                        server ? server : "");
    } else {
        st = store_fail(store, err, "reading MCP servers");
    }
    sqlite3_finalize(s);
    return st;
}

static mg_status check_config(const char *config_json, json_t **config, mg_error *err)
{
    json_error_t jerr;
    *config = json_loads(config_json ? config_json : "", JSON_REJECT_DUPLICATES, &jerr);
    if (!*config) return mg_err_set(err, MG_ERR_USAGE, "MCP server config: %s", jerr.text);
    mg_status st = mcp_config_check(*config, err);
    if (st) {
        json_decref(*config);
        *config = NULL;
    }
    return st;
}

mg_status mg_mcp_add(mg_store *store, const char *name, const char *config_json, char **id_out,
                     mg_error *err)
{
    if (id_out) *id_out = NULL;
    if (!name_ok(name, SERVER_NAME_MAX)) return bad_server_name(err);
    json_t *config;
    mg_status st = check_config(config_json, &config, err);
    if (st) return st;
    char *text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(config);
    char uuid[MG_UUID_SIZE];
    mg_uuid_new(uuid);
    sqlite3_stmt *s;
    if (!(st = store_prepare(store,
                             "INSERT INTO mcp_servers(uuid, name, config, created_at, updated_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             &s, err))) {
        int64_t now = mg_now_ms();
        store_bind_text(s, 1, uuid);
        store_bind_text(s, 2, name);
        store_bind_text(s, 3, text);
        sqlite3_bind_int64(s, 4, now);
        sqlite3_bind_int64(s, 5, now);
        st = store_step_done(store, s, err);
        if (st && (sqlite3_extended_errcode(store->db) & 0xFF) == SQLITE_CONSTRAINT)
            st = mg_err_set(err, MG_ERR_EXISTS, "an MCP server named '%s' already exists", name);
        sqlite3_finalize(s);
    }
    free(text);
    if (!st && id_out) {
        buf id = BUF_INIT;
        buf_printf(&id, "mcp_server-%s", uuid);
        *id_out = buf_take(&id);
    }
    return st;
}

/* A client that read a configuration back sees "****" for its secrets,
 * and may send it back unchanged: those values mean "keep the stored one"
 * (`changes` is edited to say so). */
static void keep_hidden(json_t *changes, const json_t *stored)
{
    if (json_is_string(json_object_get(changes, "auth_token")) &&
        strcmp(json_string_value(json_object_get(changes, "auth_token")), hidden) == 0) {
        json_t *token = json_object_get(stored, "auth_token");
        if (token)
            json_object_set(changes, "auth_token", token);
        else
            json_object_del(changes, "auth_token");
    }
    const char *maps[] = {"env", "custom_headers"};
    for (int i = 0; i < 2; i++) {
        json_t *map = json_object_get(changes, maps[i]);
        json_t *old = json_object_get(stored, maps[i]);
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(map, tmp, k, v) if (json_is_string(v) &&
                                                     strcmp(json_string_value(v), hidden) == 0)
        {
            if (json_is_string(json_object_get(old, k)))
                json_object_set(map, k, json_object_get(old, k));
            else
                json_object_del(map, k);
        }
    }
}

mg_status mg_mcp_update(mg_store *store, const char *server, const char *new_name,
                        const char *config_json, mg_error *err)
{
    int64_t row;
    json_t *config = NULL;
    mg_status st = find_server(store, server, &row, NULL, &config, err);
    if (st) return st;
    if (new_name && !name_ok(new_name, SERVER_NAME_MAX)) {
        json_decref(config);
        return bad_server_name(err);
    }
    char *text = NULL;
    if (config_json) {
        /* The members given replace the stored ones; null removes one. */
        json_t *changes = json_loads(config_json, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(changes)) {
            json_decref(changes);
            json_decref(config);
            return mg_err_set(err, MG_ERR_USAGE, "an MCP server's config must be a JSON object");
        }
        json_t *type = json_object_get(changes, "mcp_server_type");
        if (type && !json_equal(type, json_object_get(config, "mcp_server_type")))
            json_object_clear(config); /* another transport: nothing carries over */
        const char *k;
        json_t *v;
        keep_hidden(changes, config);
        json_object_foreach(changes, k, v)
        {
            if (json_is_null(v))
                json_object_del(config, k);
            else
                json_object_set(config, k, v);
        }
        json_decref(changes);
        text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
        if ((st = check_config(text, &changes, err))) {
            free(text);
            json_decref(config);
            return st;
        }
        json_decref(changes);
    }
    json_decref(config);
    sqlite3_stmt *s;
    if (!(st = store_prepare(store,
                             "UPDATE mcp_servers SET name = coalesce(?, name), config = "
                             "coalesce(?, config), updated_at = ? WHERE id = ?",
                             &s, err))) {
        store_bind_text(s, 1, new_name);
        store_bind_text(s, 2, text);
        sqlite3_bind_int64(s, 3, mg_now_ms());
        sqlite3_bind_int64(s, 4, row);
        st = store_step_done(store, s, err);
        if (st && (sqlite3_extended_errcode(store->db) & 0xFF) == SQLITE_CONSTRAINT)
            st =
                mg_err_set(err, MG_ERR_EXISTS, "an MCP server named '%s' already exists", new_name);
        sqlite3_finalize(s);
    }
    free(text);
    return st;
}

/* `config` with its secrets replaced by "****" (new reference). */
static json_t *redacted(const json_t *config)
{
    json_t *out = json_deep_copy(config);
    const char *maps[] = {"env", "custom_headers"};
    for (int i = 0; i < 2; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(out, maps[i]), k, v)
            json_object_set_new(json_object_get(out, maps[i]), k, json_string(hidden));
    }
    if (json_is_string(json_object_get(out, "auth_token")))
        json_object_set_new(out, "auth_token", json_string(hidden));
    return out;
}

/* Servers as JSON: all of them, or the one of row `only` (> 0). */
static mg_status servers_json(mg_store *store, int64_t only, json_t **out, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(
        store,
        "SELECT 'mcp_server-' || m.uuid, m.name, m.config, m.created_at, m.updated_at, "
        "(SELECT count(*) FROM agent_tools t WHERE t.server_id = m.id) FROM mcp_servers m "
        "WHERE ? = 0 OR m.id = ? ORDER BY m.name",
        &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, only);
    sqlite3_bind_int64(s, 2, only);
    *out = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *config = json_loads((const char *)sqlite3_column_text(s, 2), 0, NULL);
        char created[40], updated[40];
        mg_time_iso(sqlite3_column_int64(s, 3), created, sizeof created);
        mg_time_iso(sqlite3_column_int64(s, 4), updated, sizeof updated);
        json_array_append_new(
            *out, json_pack("{s:s, s:s, s:o, s:s, s:s, s:I}", "id", sqlite3_column_text(s, 0),
                            "name", sqlite3_column_text(s, 1), "config",
                            config ? redacted(config) : json_object(), "created_at", created,
                            "updated_at", updated, "attached_tools",
                            (json_int_t)sqlite3_column_int64(s, 5)));
        json_decref(config);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        json_decref(*out);
        *out = NULL;
        return store_fail(store, err, "listing MCP servers");
    }
    return MG_OK;
}

static mg_status dump(json_t *value, char **json_out)
{
    *json_out = json_dumps(value, JSON_COMPACT);
    json_decref(value);
    return MG_OK;
}

mg_status mg_mcp_list(mg_store *store, char **json_out, mg_error *err)
{
    *json_out = NULL;
    json_t *list;
    mg_status st = servers_json(store, 0, &list, err);
    return st ? st : dump(list, json_out);
}

mg_status mg_mcp_get(mg_store *store, const char *server, char **json_out, mg_error *err)
{
    *json_out = NULL;
    int64_t row;
    json_t *list;
    mg_status st = find_server(store, server, &row, NULL, NULL, err);
    if (!st) st = servers_json(store, row, &list, err);
    if (st) return st;
    json_t *one = json_incref(json_array_get(list, 0));
    json_decref(list);
    return dump(one, json_out);
}

mg_status mg_mcp_remove(mg_store *store, const char *server, int *detached, mg_error *err)
{
    int64_t row;
    mg_status st = find_server(store, server, &row, NULL, NULL, err);
    if (st) return st;
    int64_t count = 0;
    if ((st = store_query_int(store, "SELECT count(*) FROM agent_tools WHERE server_id = ?", row, 0,
                              &count, err)))
        return st;
    sqlite3_stmt *s;
    if ((st = store_prepare(store, "DELETE FROM mcp_servers WHERE id = ?", &s, err))) return st;
    sqlite3_bind_int64(s, 1, row);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    if (!st) client_drop(store, row);
    if (!st && detached) *detached = (int)count;
    return st;
}

/* The live list of a server's tools (it is started if it must be). */
static mg_status server_tools(mg_store *store, const char *server, json_t **tools, int64_t *row,
                              char **name, mg_error *err)
{
    json_t *config = NULL;
    char *found_name = NULL;
    mg_status st = find_server(store, server, row, &found_name, &config, err);
    if (!st) {
        mcp_client *c = client_for(store, *row, found_name, config);
        st = mcp_list_tools(c, tools, err);
    }
    json_decref(config);
    if (!st && name)
        *name = found_name;
    else
        free(found_name);
    return st;
}

mg_status mg_mcp_tools(mg_store *store, const char *server, char **json_out, mg_error *err)
{
    *json_out = NULL;
    json_t *tools;
    int64_t row;
    mg_status st = server_tools(store, server, &tools, &row, NULL, err);
    return st ? st : dump(tools, json_out);
}

/* ------------------------------------------------- attached tools */

/* The schema the model is offered for MCP tool `tool`. */
static json_t *offered_schema(const json_t *tool)
{
    return mg_function_schema(json_string_value(json_object_get(tool, "name")),
                              json_string_value(json_object_get(tool, "description")),
                              json_object_get(tool, "inputSchema"));
}

static int is_our_function(const char *name)
{
    json_t *all = mg_functions_schemas_all();
    int found = mg_schema_named(all, name);
    json_decref(all);
    return found;
}

static mg_status agent_row(mg_store *store, const char *agent, int64_t *row, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(store, "SELECT id FROM agents WHERE name = ?", &s, err);
    if (st) return st;
    store_bind_text(s, 1, agent);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *row = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "no agent named '%.100s'", agent ? agent : "");
    else
        st = store_fail(store, err, "reading agents");
    sqlite3_finalize(s);
    return st;
}

/* MG_ERR_EXISTS if one of the agent's kept tools (an Agent File's Python
 * tools, say) has the name `tool`. */
static mg_status check_kept_names(mg_store *store, int64_t agent, const char *tool, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(store, "SELECT foreign_tools FROM agents WHERE id = ?", &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, agent);
    json_t *kept = sqlite3_step(s) == SQLITE_ROW
                       ? json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL)
                       : NULL;
    sqlite3_finalize(s);
    size_t i;
    json_t *t;
    json_array_foreach(kept, i,
                       t) if (json_is_string(json_object_get(t, "name")) &&
                              strcmp(json_string_value(json_object_get(t, "name")), tool) == 0) st =
        mg_err_set(err, MG_ERR_EXISTS,
                   "the agent already has a tool named '%s' (from its Agent File)", tool);
    json_decref(kept);
    return st;
}

mg_status mg_agent_tool_attach(mg_store *store, const char *agent, const char *server,
                               const char *tool, mg_error *err)
{
    int64_t arow, srow;
    mg_status st = agent_row(store, agent, &arow, err);
    if (st) return st;
    if (!name_ok(tool, TOOL_NAME_MAX) || strchr(tool, '.'))
        return mg_err_set(err, MG_ERR_USAGE,
                          "tool '%.80s' cannot be offered to a model: a name is 1-%d letters, "
                          "digits, '_' or '-'",
                          tool ? tool : "", TOOL_NAME_MAX);
    if (is_our_function(tool))
        return mg_err_set(err, MG_ERR_EXISTS, "'%s' is the name of one of memgpt's functions",
                          tool);
    if ((st = check_kept_names(store, arow, tool, err))) return st;
    json_t *tools;
    char *server_name = NULL;
    if ((st = server_tools(store, server, &tools, &srow, &server_name, err))) return st;
    json_t *found = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) if (strcmp(json_string_value(json_object_get(t, "name")),
                                               tool) == 0) found = t;
    if (!found) {
        st = mg_err_set(err, MG_ERR_NOT_FOUND,
                        "MCP server '%s' has no tool '%s' (%zu tools: memgpt "
                        "mcp tools %s lists them)",
                        server_name, tool, json_array_size(tools), server_name);
    } else {
        json_t *schema = offered_schema(found);
        char *text = json_dumps(schema, JSON_COMPACT);
        json_decref(schema);
        sqlite3_stmt *s;
        if (!(st = store_prepare(store,
                                 "INSERT INTO agent_tools(agent_id, server_id, name, schema) "
                                 "VALUES (?, ?, ?, ?)",
                                 &s, err))) {
            sqlite3_bind_int64(s, 1, arow);
            sqlite3_bind_int64(s, 2, srow);
            store_bind_text(s, 3, tool);
            store_bind_text(s, 4, text);
            st = store_step_done(store, s, err);
            if (st && (sqlite3_extended_errcode(store->db) & 0xFF) == SQLITE_CONSTRAINT)
                st = mg_err_set(err, MG_ERR_EXISTS, "agent '%s' already has a tool named '%s'",
                                agent, tool);
            sqlite3_finalize(s);
        }
        free(text);
    }
    json_decref(tools);
    free(server_name);
    return st;
}

mg_status mg_agent_tool_detach(mg_store *store, const char *agent, const char *tool, mg_error *err)
{
    int64_t arow;
    mg_status st = agent_row(store, agent, &arow, err);
    if (st) return st;
    sqlite3_stmt *s;
    if ((st = store_prepare(store, "DELETE FROM agent_tools WHERE agent_id = ? AND name = ?", &s,
                            err)))
        return st;
    sqlite3_bind_int64(s, 1, arow);
    store_bind_text(s, 2, tool);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    if (!st && sqlite3_changes(store->db) == 0)
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "agent '%s' has no attached tool '%.80s'", agent,
                        tool ? tool : "");
    return st;
}

mg_status tools_attached(mg_store *store, int64_t agent, json_t *schemas, json_t *names,
                         mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(store,
                                 "SELECT t.name, t.schema, m.name, 'mcp_server-' || m.uuid FROM "
                                 "agent_tools t JOIN mcp_servers m ON m.id = t.server_id WHERE "
                                 "t.agent_id = ? ORDER BY t.rowid",
                                 &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, agent);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        json_t *schema = json_loads((const char *)sqlite3_column_text(s, 1), 0, NULL);
        /* A name offered already (a Python tool of the same name) wins:
         * one name, one tool, or providers refuse the request. */
        if (!json_is_object(schema) || json_object_get(names, name) ||
            mg_schema_named(schemas, name)) {
            json_decref(schema);
            continue;
        }
        json_array_append_new(schemas, schema);
        json_object_set_new(names, (const char *)sqlite3_column_text(s, 0),
                            json_pack("{s:s, s:s}", "name", sqlite3_column_text(s, 2), "id",
                                      sqlite3_column_text(s, 3)));
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? MG_OK : store_fail(store, err, "reading an agent's tools");
}

/* ------------------------------------------------------ calling */

/* One call of an attached tool: *ok and the text for the model. */
static mg_status call_one(mg_agent *agent, const char *server, const mg_tool_call *call,
                          json_t *args, int *ok, char **text, mg_error *err)
{
    json_t *config = NULL;
    char *name = NULL;
    mg_error why = {0};
    int64_t row = 0;
    mg_status st = find_server(agent->store, server, &row, &name, &config, &why);
    if (st == MG_ERR_NOT_FOUND) {
        *ok = 0;
        *text = mg_xstrdup("the MCP server of this tool was removed; the tool is gone");
        return MG_OK;
    }
    if (st) {
        if (err) *err = why;
        return st;
    }
    mcp_client *c = client_for(agent->store, row, name, config);
    int is_error = 0;
    st = mcp_call_tool(c, call->name, args, text, &is_error, &why);
    if (st) {
        /* The server's failure is the model's to know about, not the turn's. */
        *ok = 0;
        *text = mg_xstrdup(why.message);
        st = MG_OK;
    } else {
        *ok = !is_error;
    }
    json_decref(config);
    free(name);
    return st;
}

mg_status tools_run_external(mg_agent *agent, const json_t *names, const mg_tool_call *calls,
                             int ncalls, mg_fn_outcome *outcomes, mg_error *err)
{
    for (int i = 0; i < ncalls; i++) {
        if (outcomes[i].result) continue; /* answered already (a tool rule refused it) */
        json_t *entry = json_object_get(names, calls[i].name);
        const char *server = json_string_value(json_object_get(entry, "id"));
        int python = json_is_true(json_object_get(entry, "python"));
        int messaging =
            messaging_function(calls[i].name) && mg_function_offered(agent, calls[i].name);
        if (!server && !python && !messaging) continue;
        const char *raw = calls[i].arguments ? calls[i].arguments : "";
        char *repaired = mg_json_repair(raw, strlen(raw));
        json_error_t jerr;
        json_t *args = json_loads(repaired, JSON_REJECT_DUPLICATES, &jerr);
        free(repaired);
        int ok = 0;
        char *text = NULL;
        mg_status st = MG_OK;
        if (!json_is_object(args)) {
            buf b = BUF_INIT;
            buf_printf(&b, "the arguments of %s are not a JSON object (%s); send them as JSON",
                       calls[i].name, args ? "wrong type" : jerr.text);
            text = buf_take(&b);
        } else {
            outcomes[i].request_heartbeat = mg_function_wants_heartbeat(args);
            json_object_del(args, "request_heartbeat");
            if (messaging)
                messaging_call(agent, calls[i].name, args, &ok, &text);
            else if (python)
                st = python_call(agent, calls[i].name, args, &ok, &text, err);
            else
                st = call_one(agent, server, &calls[i], args, &ok, &text, err);
        }
        json_decref(args);
        if (st) {
            free(text);
            return st;
        }
        outcomes[i].ok = ok;
        outcomes[i].result =
            mg_function_result(agent, ok, text && *text ? text : "(the tool returned nothing)");
        free(text);
    }
    return MG_OK;
}
