/*
 * pages.c - lists for API clients, page by page (store/page.h): agents,
 * the messages of recall memory, the passages of archival memory, and
 * every agent's core memory blocks, each item under its public id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "memory/archival_index.h"
#include "store/page.h"
#include "store/store.h"
#include "util/err.h"
#include "util/text.h"
#include "util/uuid.h"

static mg_status dump_array(json_t *rows, char **json_out)
{
    *json_out = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    return MG_OK;
}

/* Prepares `sql` (which ends where the page's conditions go), reads the
 * page through `row_fn` and hands it out as JSON text. */
static mg_status run_page(mg_store *store, buf *sql, const store_page *p, const char *id_column,
                          void (*bind)(sqlite3_stmt *, const void *), const void *bind_arg,
                          json_t *(*row_fn)(sqlite3_stmt *, void *), void *user, char **json_out,
                          mg_error *err)
{
    int reversed = store_page_sql(sql, p, id_column);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(sql), &stmt, err);
    if (st) return st;
    if (bind) bind(stmt, bind_arg);
    json_t *rows;
    st = store_page_rows(store, stmt, reversed, row_fn, user, &rows, err);
    sqlite3_finalize(stmt);
    return st ? st : dump_array(rows, json_out);
}

static json_t *json_or_null(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *text_or_null(sqlite3_stmt *stmt, int col)
{
    const char *t = (const char *)sqlite3_column_text(stmt, col);
    return t ? json_string(t) : json_null();
}

/* ---------------------------------------------------------------- agents */

static json_t *agent_row(sqlite3_stmt *stmt, void *user)
{
    return json_pack("{s:s+, s:s}", "id", "agent-", (const char *)sqlite3_column_text(stmt, 0),
                     "name", (const char *)sqlite3_column_text(stmt, 1));
}

static void bind_filter(sqlite3_stmt *stmt, const void *arg)
{
    const mg_agent_filter *f = arg;
    int i = 1;
    if (f->name) store_bind_text(stmt, i++, f->name);
    for (int t = 0; t < f->ntags; t++)
        store_bind_text(stmt, i++, f->tags[t]);
}

mg_status mg_agent_page(mg_store *store, const mg_agent_filter *filter, const mg_page *page,
                        char **json_out, mg_error *err)
{
    *json_out = NULL;
    mg_agent_filter none = {0};
    if (!filter) filter = &none;
    if (filter->ntags < 0 || filter->ntags > MG_SEARCH_MAX_TAGS)
        return mg_err_set(err, MG_ERR_USAGE, "at most %d tags", MG_SEARCH_MAX_TAGS);
    store_page p;
    mg_status st = store_page_resolve(store, page, "agents", "agent", "1", &p, err);
    if (st) return st;
    buf sql = BUF_INIT;
    buf_puts(&sql, "SELECT uuid, name FROM agents WHERE 1");
    if (filter->name) buf_puts(&sql, " AND name = ?");
    if (filter->ntags) {
        buf_puts(&sql, " AND (");
        for (int t = 0; t < filter->ntags; t++)
            buf_printf(&sql, "%sEXISTS (SELECT 1 FROM json_each(agents.tags) WHERE value = ?)",
                       t ? (filter->match_any ? " OR " : " AND ") : "");
        buf_puts(&sql, ")");
    }
    st = run_page(store, &sql, &p, "id", bind_filter, filter, agent_row, NULL, json_out, err);
    buf_free(&sql);
    return st;
}

mg_status mg_agent_count(mg_store *store, int64_t *count, mg_error *err)
{
    return store_query_int(store, "SELECT count(*) FROM agents WHERE id > ?", 0, 0, count, err);
}

/* -------------------------------------------------------------- messages */

static json_t *message_row(sqlite3_stmt *stmt, void *user)
{
    return json_pack("{s:s+, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:b}", "id", "message-",
                     (const char *)sqlite3_column_text(stmt, 0), "time_ms",
                     (json_int_t)sqlite3_column_int64(stmt, 1), "role",
                     (const char *)sqlite3_column_text(stmt, 2), "kind",
                     (const char *)sqlite3_column_text(stmt, 3), "content", text_or_null(stmt, 4),
                     "tool_calls", json_or_null((const char *)sqlite3_column_text(stmt, 5)),
                     "tool_call_id", text_or_null(stmt, 6), "tool_name", text_or_null(stmt, 7),
                     "in_context", sqlite3_column_int(stmt, 8));
}

static void bind_agent(sqlite3_stmt *stmt, const void *arg)
{
    sqlite3_bind_int64(stmt, 1, *(const int64_t *)arg);
}

/* The scope condition of an agent's rows, for cursor lookups. */
static void agent_scope(int64_t agent_id, char *out, size_t size)
{
    snprintf(out, size, "agent_id = %lld", (long long)agent_id);
}

/* A page of one of the agent's lists: `select` (the query up to the page's
 * conditions) over `table`, whose items are named "PREFIX-<uuid>". */
static mg_status agent_page(mg_agent *agent, const mg_page *page, const char *table,
                            const char *prefix, const char *select,
                            json_t *(*row_fn)(sqlite3_stmt *, void *), char **json_out,
                            mg_error *err)
{
    *json_out = NULL;
    char scope[64];
    agent_scope(agent->id, scope, sizeof scope);
    store_page p;
    mg_status st = store_page_resolve(agent->store, page, table, prefix, scope, &p, err);
    if (st) return st;
    buf sql = BUF_INIT;
    buf_puts(&sql, select);
    st =
        run_page(agent->store, &sql, &p, "id", bind_agent, &agent->id, row_fn, NULL, json_out, err);
    buf_free(&sql);
    return st;
}

#define MESSAGE_SELECT                                                                             \
    "SELECT uuid, created_at, role, kind, content, tool_calls, tool_call_id, tool_name, "          \
    "in_context FROM messages WHERE agent_id = ?"

mg_status mg_messages_page(mg_agent *agent, const mg_page *page, int in_context_only,
                           char **json_out, mg_error *err)
{
    return agent_page(agent, page, "messages", "message",
                      in_context_only ? MESSAGE_SELECT " AND in_context = 1" : MESSAGE_SELECT,
                      message_row, json_out, err);
}

/* -------------------------------------------------------------- passages */

static json_t *passage_row(sqlite3_stmt *stmt, void *user)
{
    return json_pack("{s:s+, s:I, s:s, s:o}", "id", "passage-",
                     (const char *)sqlite3_column_text(stmt, 0), "time_ms",
                     (json_int_t)sqlite3_column_int64(stmt, 1), "text",
                     (const char *)sqlite3_column_text(stmt, 2), "tags",
                     json_or_null((const char *)sqlite3_column_text(stmt, 3)));
}

mg_status mg_archival_page(mg_agent *agent, const mg_page *page, char **json_out, mg_error *err)
{
    return agent_page(agent, page, "passages", "passage",
                      "SELECT uuid, created_at, text, tags FROM passages WHERE agent_id = ?",
                      passage_row, json_out, err);
}

mg_status mg_archival_delete(mg_agent *agent, const char *passage_id, mg_error *err)
{
    const char *uuid = mg_uuid_strip(passage_id, "passage");
    if (!uuid)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "no passage with id '%.80s'",
                          passage_id ? passage_id : "");
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        agent->store, "DELETE FROM passages WHERE agent_id = ? AND uuid = lower(?)", &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent->id);
    store_bind_text(stmt, 2, uuid);
    st = store_step_done(agent->store, stmt, err);
    sqlite3_finalize(stmt);
    if (st) return st;
    if (sqlite3_changes(agent->store->db) == 0)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "no passage with id '%.80s'", passage_id);
    agent->archival_count--;
    /* A loaded index reconciles with the table when it is loaded again. */
    archival_index_forget(agent->store, agent->id);
    return MG_OK;
}

/* ---------------------------------------------------------------- blocks */

static json_t *block_row(sqlite3_stmt *stmt, void *user)
{
    const char *value = (const char *)sqlite3_column_text(stmt, 2);
    return json_pack("{s:s+, s:s+, s:s, s:s, s:i, s:I, s:o, s:b}", "id", "block-",
                     (const char *)sqlite3_column_text(stmt, 0), "agent_id", "agent-",
                     (const char *)sqlite3_column_text(stmt, 1), "label",
                     (const char *)sqlite3_column_text(stmt, 3), "value", value, "limit",
                     sqlite3_column_int(stmt, 4), "chars", (json_int_t)mg_utf8_chars(value),
                     "description", text_or_null(stmt, 5), "read_only",
                     sqlite3_column_int(stmt, 6));
}

static void bind_label(sqlite3_stmt *stmt, const void *arg)
{
    if (arg) store_bind_text(stmt, 1, arg);
}

mg_status mg_blocks_page(mg_store *store, const char *label, const mg_page *page, char **json_out,
                         mg_error *err)
{
    *json_out = NULL;
    store_page p;
    mg_status st = store_page_resolve(store, page, "blocks", "block", "1", &p, err);
    if (st) return st;
    buf sql = BUF_INIT;
    buf_puts(&sql, "SELECT b.uuid, a.uuid, b.value, b.label, b.char_limit, b.description, "
                   "b.read_only FROM blocks b JOIN agents a ON a.id = b.agent_id WHERE 1");
    if (label) buf_puts(&sql, " AND b.label = ?");
    st = run_page(store, &sql, &p, "b.rowid", bind_label, label, block_row, NULL, json_out, err);
    buf_free(&sql);
    return st;
}

mg_status mg_block_owner(mg_store *store, const char *block_id, char **agent_id, char **label,
                         mg_error *err)
{
    *agent_id = *label = NULL;
    const char *uuid = mg_uuid_strip(block_id, "block");
    sqlite3_stmt *stmt;
    mg_status st = MG_OK;
    if (uuid && !(st = store_prepare(store,
                                     "SELECT 'agent-' || a.uuid, b.label FROM blocks b JOIN "
                                     "agents a ON a.id = b.agent_id WHERE b.uuid = lower(?)",
                                     &stmt, err))) {
        store_bind_text(stmt, 1, uuid);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            *agent_id = store_column_strdup(stmt, 0);
            *label = store_column_strdup(stmt, 1);
        } else if (rc != SQLITE_DONE) {
            st = store_fail(store, err, "finding the block");
        }
        sqlite3_finalize(stmt);
    }
    if (!st && !*agent_id)
        st =
            mg_err_set(err, MG_ERR_NOT_FOUND, "no block with id '%.80s'", block_id ? block_id : "");
    return st;
}
