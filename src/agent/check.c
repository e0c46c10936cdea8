/*
 * check.c - `memgpt check`: everything a home's data promises, verified
 * without trusting any of it.
 *
 * A store meant to live for years meets crashes, full disks and bugs of
 * ours, and a user who suspects damage needs one command that says whether
 * there is any, before they trust a search or an export. Each check here
 * states one invariant that the code elsewhere keeps, and looks at the data
 * rather than at the code that keeps it:
 *
 *  - SQLite's own: PRAGMA integrity_check and foreign_key_check;
 *  - the full-text indexes of recall and archival memory against their
 *    tables (FTS5's integrity-check with content comparison);
 *  - the counts kept by triggers (agents.message_count, passage_count),
 *    which opening an agent believes instead of counting;
 *  - each agent's context: every function call followed by its result and
 *    every result by its call, as each provider demands of a request;
 *  - each archival vector index (archival_index_check): its file and log
 *    hold only the table's vectors, and the index searches use after its
 *    reconcile holds exactly the table's passages;
 *  - the index folder holds no file that no agent will use, after the sweep
 *    that every process runs anyway.
 *
 * It changes nothing a search would not: the sweep of stray index files and
 * the reconcile of an index are what any process opening them does.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memgpt.h"
#include "memory/archival_index.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

/* Problems beyond this many of one kind are counted, not listed. */
#define MAX_LISTED 20

typedef struct report {
    mg_store *store;
    json_t *problems; /* strings */
} report;

static void problem(report *r, const char *fmt, ...) MG_PRINTF(2, 3);

static void problem(report *r, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    json_array_append_new(r->problems, json_string(text));
}

/* Runs a PRAGMA whose every row is a finding unless the only row is "ok"
 * (integrity_check) or there are none (foreign_key_check). */
static mg_status pragma_rows(report *r, const char *sql, const char *what, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(r->store, sql, &stmt, err);
    if (st) return st;
    int rc, rows = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *first = (const char *)sqlite3_column_text(stmt, 0);
        if (first && strcmp(first, "ok") == 0) continue;
        if (rows++ < MAX_LISTED)
            problem(r, "%s: %s%s%s", what, first ? first : "(null)",
                    sqlite3_column_count(stmt) > 1 ? " row " : "",
                    sqlite3_column_count(stmt) > 1 ? (const char *)sqlite3_column_text(stmt, 1)
                                                   : "");
    }
    if (rc != SQLITE_DONE) problem(r, "%s could not run: %s", what, sqlite3_errmsg(r->store->db));
    if (rows > MAX_LISTED) problem(r, "%s: %d more findings", what, rows - MAX_LISTED);
    sqlite3_finalize(stmt);
    return MG_OK;
}

static void fts_check(report *r, const char *table)
{
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s, rank) VALUES ('integrity-check', 1)", table,
             table);
    if (sqlite3_exec(r->store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        problem(r, "the full-text index %s disagrees with its table: %s", table,
                sqlite3_errmsg(r->store->db));
}

/* agents.COLUMN against a count of TABLE's rows of each agent. */
static mg_status kept_count(report *r, const char *column, const char *table, mg_error *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT name, %s, (SELECT count(*) FROM %s t WHERE t.agent_id = a.id) FROM agents a",
             column, table);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(r->store, sql, &stmt, err);
    if (st) return st;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        if (sqlite3_column_int64(stmt, 1) != sqlite3_column_int64(stmt, 2))
            problem(r, "agent '%s': %s is %lld, but it has %lld %s", sqlite3_column_text(stmt, 0),
                    column, (long long)sqlite3_column_int64(stmt, 1),
                    (long long)sqlite3_column_int64(stmt, 2), table);
    sqlite3_finalize(stmt);
    return MG_OK;
}

/* The calls of the latest assistant message with function calls, until the
 * run of results after it ends. */
typedef struct open_calls {
    json_t *ids; /* id -> answered (true/false); NULL when none are open */
    int64_t at;  /* the assistant message's id */
} open_calls;

static void close_calls(report *r, const char *agent, open_calls *oc)
{
    if (!oc->ids) return;
    const char *id;
    json_t *done;
    json_object_foreach(oc->ids, id, done)
    {
        if (!json_is_true(done))
            problem(r, "agent '%s': the call %s of message %lld has no result in context", agent,
                    id, (long long)oc->at);
    }
    json_decref(oc->ids);
    oc->ids = NULL;
}

/* Every function result in the context directly follows the assistant
 * message that made its call, once, and every call has its result. */
static mg_status context_pairs(report *r, int64_t agent_id, const char *agent, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(r->store,
                                 "SELECT id, role, tool_calls, tool_call_id FROM messages "
                                 "WHERE agent_id = ? AND in_context = 1 ORDER BY id",
                                 &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    open_calls oc = {0};
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        const char *role = (const char *)sqlite3_column_text(stmt, 1);
        const char *calls = (const char *)sqlite3_column_text(stmt, 2);
        const char *call_id = (const char *)sqlite3_column_text(stmt, 3);
        if (strcmp(role, "tool") == 0) {
            json_t *done = oc.ids && call_id ? json_object_get(oc.ids, call_id) : NULL;
            if (!done)
                problem(r, "agent '%s': the result %lld answers no call just before it", agent,
                        (long long)id);
            else if (json_is_true(done))
                problem(r, "agent '%s': the call %s has two results", agent, call_id);
            else
                json_object_set_new(oc.ids, call_id, json_true());
            continue;
        }
        close_calls(r, agent, &oc);
        json_t *list = calls && strcmp(role, "assistant") == 0 ? json_loads(calls, 0, NULL) : NULL;
        if (calls && !json_is_array(list))
            problem(r, "agent '%s': message %lld has function calls that are not a list", agent,
                    (long long)id);
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *cid = json_string_value(json_object_get(json_array_get(list, i), "id"));
            if (!cid) continue;
            if (!oc.ids) oc.ids = json_object(), oc.at = id;
            json_object_set_new(oc.ids, cid, json_false());
        }
        json_decref(list);
    }
    close_calls(r, agent, &oc);
    sqlite3_finalize(stmt);
    return MG_OK;
}

/* Each of the agent's vector indexes, one per embedder of its passages. */
static mg_status agent_indexes(report *r, int64_t agent_id, const char *agent, json_t *out,
                               mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        r->store, "SELECT DISTINCT embedder FROM passages WHERE agent_id = ?", &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    while (!st && sqlite3_step(stmt) == SQLITE_ROW) {
        char *embedder = mg_xstrdup((const char *)sqlite3_column_text(stmt, 0));
        archival_index_check_result c;
        mg_error found = {0};
        mg_status cst = archival_index_check(r->store, agent_id, embedder, &c, &found);
        if (cst == MG_ERR_CORRUPT)
            problem(r, "agent '%s': %s", agent, found.message);
        else if (cst)
            st = mg_err_set(err, cst, "%s", found.message);
        if (c.has_file)
            json_array_append_new(
                out, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "embedder", embedder, "vectors",
                               (json_int_t)c.vectors, "log_records", (json_int_t)c.replayed,
                               "log_refused", (json_int_t)c.rejected, "stale", (json_int_t)c.stale,
                               "missing", (json_int_t)c.missing));
        free(embedder);
    }
    sqlite3_finalize(stmt);
    return st;
}

static mg_status agents_check(report *r, json_t *agents, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(r->store,
                                 "SELECT id, name, message_count, passage_count, (SELECT count(*) "
                                 "FROM messages m WHERE m.agent_id = a.id AND in_context = 1) "
                                 "FROM agents a ORDER BY id",
                                 &stmt, err);
    if (st) return st;
    while (!st && sqlite3_step(stmt) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        char *name = mg_xstrdup((const char *)sqlite3_column_text(stmt, 1));
        json_t *indexes = json_array();
        json_array_append_new(agents,
                              json_pack("{s:s, s:I, s:I, s:I, s:o}", "name", name, "messages",
                                        sqlite3_column_int64(stmt, 2), "in_context",
                                        sqlite3_column_int64(stmt, 4), "passages",
                                        sqlite3_column_int64(stmt, 3), "indexes", indexes));
        st = context_pairs(r, id, name, err);
        if (!st) st = agent_indexes(r, id, name, indexes, err);
        free(name);
    }
    sqlite3_finalize(stmt);
    return st;
}

mg_status mg_store_check(mg_store *store, char **json_out, mg_error *err)
{
    *json_out = NULL;
    report r = {.store = store, .problems = json_array()};
    json_t *agents = json_array();
    int64_t strays_before = archival_index_stray_files(store);
    archival_index_remove_orphans(store);
    mg_status st = pragma_rows(&r, "PRAGMA integrity_check", "SQLite's integrity check", err);
    if (!st) st = pragma_rows(&r, "PRAGMA foreign_key_check", "a dangling reference", err);
    if (!st) {
        fts_check(&r, "messages_fts");
        fts_check(&r, "passages_fts");
        st = kept_count(&r, "message_count", "messages", err);
    }
    if (!st) st = kept_count(&r, "passage_count", "passages", err);
    if (!st) st = agents_check(&r, agents, err);
    int64_t strays_after = archival_index_stray_files(store);
    if (!st && strays_after)
        problem(&r, "the index folder holds %lld files no agent uses", (long long)strays_after);
    if (st) {
        json_decref(r.problems);
        json_decref(agents);
        return st;
    }
    json_t *out = json_pack("{s:b, s:o, s:o, s:I}", "ok", json_array_size(r.problems) == 0,
                            "problems", r.problems, "agents", agents, "stray_files_removed",
                            (json_int_t)(strays_before - strays_after));
    *json_out = json_dumps(out, JSON_INDENT(2));
    json_decref(out);
    return MG_OK;
}
