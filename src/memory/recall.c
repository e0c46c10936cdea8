/*
 * recall.c - storing, loading and searching the message history.
 *
 * Query plans: the FTS table must drive the join (CROSS JOIN fixes the
 * order). Left to itself SQLite may walk the agent's messages by index and
 * probe FTS once per row, which is linear in the history.
 *
 * Search cost is per match (~2 us a match on the VM of bench/README.md:
 * BM25 reads each match's length, and a dated or shared-store search joins
 * each to its message), so a search ranks only the newest RECALL_RANK_CAP
 * matches, with the words and counts fts_rank.c plans. When more match,
 * the result has older_matches and ranked_from, and the function result
 * and the CLI say how to reach the older ones: rarer words, or a date range
 * (its newest matches are ranked the same way). Pages come from one ranked
 * set, so they are stable while no message is added. The default search
 * filters on the said column inside FTS5; an agent that owns every message
 * is searched without the join; a dated search walks only the id range its
 * dates cover (id_bounds).
 * RECALL_RANK_CAP = 200: at 1M messages the walk, count and ranking of a
 * search of common words cost ~0.5 ms fixed plus ~2 us per ranked match
 * (CPU, pages in the OS cache, not SQLite's); with 200 the slowest 5% of
 * bench_recall's searches take under 4 ms of CPU in every way, which leaves
 * room for a shared 2-vCPU machine's scheduling within the 5 ms target. At
 * 300 the dated p95 was 4.1-4.6 ms of CPU. Measured in bench/README.md
 * (recall at a million messages).
 *
 * Inserts write the FTS row themselves instead of through a trigger, and
 * open no savepoint inside a caller's transaction: FTS5 flushes its pending
 * terms at every savepoint (migration 5).
 */
#include "memory/recall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory/fts_rank.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"

static const fts_table recall_fts = {"messages_fts", "messages", "searching recall memory"};

static const char *const message_columns =
    "id, role, kind, content, tool_calls, tool_call_id, tool_name, created_at, raw_content, uuid";

static void read_message(sqlite3_stmt *stmt, mg_msg *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(stmt, 0);
    mg_role_parse((const char *)sqlite3_column_text(stmt, 1), &m->role);
    m->kind = store_column_strdup(stmt, 2);
    m->content = store_column_strdup(stmt, 3);
    const char *calls = (const char *)sqlite3_column_text(stmt, 4);
    if (calls) mg_tool_calls_from_json(calls, &m->calls, &m->ncalls);
    m->tool_call_id = store_column_strdup(stmt, 5);
    m->tool_name = store_column_strdup(stmt, 6);
    m->time_ms = sqlite3_column_int64(stmt, 7);
    m->raw_content = store_column_strdup(stmt, 8);
    const char *uuid = (const char *)sqlite3_column_text(stmt, 9);
    if (uuid) snprintf(m->uuid, sizeof m->uuid, "%s", uuid);
}

/* The "message" (or "reason") string of a JSON envelope, else the raw text. */
static void append_envelope_text(buf *out, const char *content)
{
    json_t *obj = json_loads(content, 0, NULL);
    const char *text = NULL;
    if (json_is_object(obj)) {
        text = json_string_value(json_object_get(obj, "message"));
        if (!text) text = json_string_value(json_object_get(obj, "reason"));
    }
    buf_puts(out, text ? text : content);
    json_decref(obj);
}

/* Appends `text` on a new line unless the buffer is empty. */
static void append_line(buf *out, const char *text)
{
    if (out->len) buf_putc(out, '\n');
    buf_puts(out, text);
}

void recall_index_text(const mg_msg *m, char **said, char **inner)
{
    buf s = BUF_INIT, in = BUF_INIT;
    if (m->role == MG_ROLE_ASSISTANT && m->ncalls == 0) {
        /* No call at all: the text was the reply (see apply_reply in loop.c). */
        if (m->content) buf_puts(&s, m->content);
    } else if (m->role == MG_ROLE_ASSISTANT) {
        if (m->content) buf_puts(&in, m->content);
        for (int i = 0; i < m->ncalls; i++) {
            const mg_tool_call *call = &m->calls[i];
            if (strcmp(call->name, "send_message") != 0) {
                if (in.len) buf_putc(&in, '\n');
                buf_printf(&in, "%s(%s)", call->name, call->arguments ? call->arguments : "");
                continue;
            }
            json_t *args = json_loads(call->arguments ? call->arguments : "", 0, NULL);
            const char *msg = json_string_value(json_object_get(args, "message"));
            if (msg) append_line(&s, msg);
            json_decref(args);
        }
    } else if (m->role == MG_ROLE_TOOL) {
        if (m->tool_name && *m->tool_name) buf_printf(&in, "%s: ", m->tool_name);
        if (m->content) append_envelope_text(&in, m->content);
    } else if (m->content) {
        append_envelope_text(m->kind && strcmp(m->kind, "user_message") == 0 ? &s : &in,
                             m->content);
    }
    *said = buf_take(&s);
    *inner = buf_take(&in);
}

char *recall_search_text(const mg_msg *m)
{
    char *said, *inner;
    recall_index_text(m, &said, &inner);
    buf out = BUF_INIT;
    buf_puts(&out, inner);
    if (*said) append_line(&out, said);
    free(said);
    free(inner);
    return buf_take(&out);
}

/* Inserts go through statements, not triggers: see migration 5. */
typedef struct inserter {
    sqlite3_stmt *row, *fts;
} inserter;

static mg_status inserter_open(mg_store *store, inserter *ins, mg_error *err)
{
    ins->row = ins->fts = NULL;
    mg_status st = store_prepare(
        store,
        "INSERT INTO messages(agent_id, role, kind, content, tool_calls, tool_call_id, tool_name, "
        "search_text, inner_text, created_at, raw_content, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?)",
        &ins->row, err);
    if (!st)
        st = store_prepare(
            store, "INSERT INTO messages_fts(rowid, search_text, inner_text) VALUES (?, ?, ?)",
            &ins->fts, err);
    return st;
}

static void inserter_close(inserter *ins)
{
    sqlite3_finalize(ins->row);
    sqlite3_finalize(ins->fts);
}

/* Stores `m` and its FTS row, and sets m->id. */
static mg_status insert_one(mg_store *store, inserter *ins, int64_t agent_id, mg_msg *m,
                            mg_error *err)
{
    char *calls = m->ncalls ? mg_tool_calls_to_json(m->calls, m->ncalls) : NULL;
    char *said, *inner;
    recall_index_text(m, &said, &inner);
    sqlite3_stmt *stmt = ins->row;
    sqlite3_bind_int64(stmt, 1, agent_id);
    store_bind_text(stmt, 2, mg_role_name(m->role));
    store_bind_text(stmt, 3, m->kind);
    store_bind_text(stmt, 4, m->content);
    store_bind_text(stmt, 5, calls);
    store_bind_text(stmt, 6, m->tool_call_id);
    store_bind_text(stmt, 7, m->tool_name);
    store_bind_text(stmt, 8, said);
    store_bind_text(stmt, 9, inner);
    sqlite3_bind_int64(stmt, 10, m->time_ms);
    store_bind_text(stmt, 11, m->raw_content);
    if (!m->uuid[0]) mg_uuid_new(m->uuid);
    store_bind_text(stmt, 12, m->uuid);
    mg_status st = store_step_done(store, stmt, err);
    if (!st) {
        m->id = sqlite3_last_insert_rowid(store->db);
        sqlite3_bind_int64(ins->fts, 1, m->id);
        store_bind_text(ins->fts, 2, said);
        store_bind_text(ins->fts, 3, inner);
        st = store_step_done(store, ins->fts, err);
    }
    free(calls);
    free(said);
    free(inner);
    return st;
}

mg_status recall_insert_many(mg_store *store, int64_t agent_id, mg_msg *msgs, int n, mg_error *err)
{
    inserter ins;
    /* Inside the caller's transaction, no savepoint of our own: FTS5
     * flushes its pending terms at every savepoint (see migration 5), and
     * the caller rolls back the whole transaction on failure anyway. */
    int own = store->tx_depth == 0;
    mg_status st = own ? store_begin(store, err) : MG_OK;
    if (st) return st;
    st = inserter_open(store, &ins, err);
    for (int i = 0; i < n && !st; i++)
        st = insert_one(store, &ins, agent_id, &msgs[i], err);
    inserter_close(&ins);
    if (!st) {
        sqlite3_stmt *count;
        st = store_prepare(
            store, "UPDATE agents SET message_count = message_count + ? WHERE id = ?", &count, err);
        if (!st) {
            sqlite3_bind_int(count, 1, n);
            sqlite3_bind_int64(count, 2, agent_id);
            st = store_step_done(store, count, err);
            sqlite3_finalize(count);
        }
    }
    if (st) {
        if (own) store_rollback(store);
        for (int i = 0; i < n; i++)
            msgs[i].id = 0;
        return st;
    }
    return own ? store_commit(store, err) : MG_OK;
}

mg_status recall_insert(mg_store *store, int64_t agent_id, mg_msg *m, mg_error *err)
{
    return recall_insert_many(store, agent_id, m, 1, err);
}

mg_status recall_update(mg_store *store, const mg_msg *m, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st =
        store_prepare(store,
                      "UPDATE messages SET content = ?, tool_calls = ?, search_text = ?, "
                      "inner_text = ? WHERE id = ?",
                      &stmt, err);
    if (st) return st;
    char *calls = m->ncalls ? mg_tool_calls_to_json(m->calls, m->ncalls) : NULL;
    char *said, *inner;
    recall_index_text(m, &said, &inner);
    store_bind_text(stmt, 1, m->content);
    store_bind_text(stmt, 2, calls);
    store_bind_text(stmt, 3, said);
    store_bind_text(stmt, 4, inner);
    sqlite3_bind_int64(stmt, 5, m->id);
    st = store_step_done(store, stmt, err);
    sqlite3_finalize(stmt);
    free(calls);
    free(said);
    free(inner);
    return st;
}

mg_status recall_load_context(mg_store *store, int64_t agent_id, mg_msg_list *out, mg_error *err)
{
    buf sql = BUF_INIT;
    buf_printf(&sql, "SELECT %s FROM messages WHERE agent_id = ? AND in_context = 1 ORDER BY id",
               message_columns);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_msg m;
        read_message(stmt, &m);
        mg_msg_list_push(out, m);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return store_fail(store, err, "loading the context window");
    return MG_OK;
}

mg_status recall_evict_range(mg_store *store, int64_t agent_id, int64_t first_id, int64_t last_id,
                             mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "UPDATE messages SET in_context = 0 WHERE agent_id = ? AND id "
                                 "BETWEEN ? AND ?",
                                 &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int64(stmt, 2, first_id);
    sqlite3_bind_int64(stmt, 3, last_id);
    st = store_step_done(store, stmt, err);
    sqlite3_finalize(stmt);
    return st;
}

mg_status recall_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err)
{
    return store_query_int(store, "SELECT message_count FROM agents WHERE id = ?", agent_id, 0, out,
                           err);
}

/* Columns: id, created_at, role, kind, text, inner text (all mode) or NULL,
 * rank (with a query) or NULL, uuid. */
static json_t *result_row(sqlite3_stmt *stmt, int with_score)
{
    char when[32];
    mg_time_iso(sqlite3_column_int64(stmt, 1), when, sizeof when);
    json_t *row =
        json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(stmt, 0),
                  "time", when, "role", (const char *)sqlite3_column_text(stmt, 2), "kind",
                  (const char *)sqlite3_column_text(stmt, 3), "text",
                  (const char *)sqlite3_column_text(stmt, 4));
    const char *inner = (const char *)sqlite3_column_text(stmt, 5);
    if (inner && *inner) json_object_set_new(row, "inner", json_string(inner));
    if (with_score) json_object_set_new(row, "score", json_real(-sqlite3_column_double(stmt, 6)));
    const char *uuid = (const char *)sqlite3_column_text(stmt, 7);
    if (uuid) {
        buf id = BUF_INIT;
        buf_printf(&id, "message-%s", uuid);
        json_object_set_new(row, "message_id", json_string(buf_str(&id)));
        buf_free(&id);
    }
    return row;
}

/* Most messages a date range may hold for id_bounds to read all their ids
 * (~0.2 us each from the messages_time index). */
#define EXACT_RANGE 500

/* Bounds on the ids of the agent's messages in [from, to), so that a dated
 * search walks only that stretch of the posting lists (FTS5 seeks to a
 * rowid range) instead of every match. The dates themselves are still
 * checked on every row; the bounds only decide which rows are looked at.
 * Up to EXACT_RANGE messages: their smallest and largest id, read from the
 * messages_time index, exact even when ids do not follow times. Past that,
 * reading every id would cost more than the search (a 30-day range of a
 * busy agent holds tens of thousands): the ids of the first and the last
 * message in time order, two index seeks. Those are exact when ids follow
 * times, which they do unless a message was stored with an earlier time than
 * one before it (a clock set back, an event given an old time); such a
 * message can then be missed by a search over a wide range, never returned
 * when out of it. An empty range gives lo > hi. */
static mg_status id_bounds(mg_store *store, int64_t agent_id, int64_t from, int64_t to, int64_t *lo,
                           int64_t *hi, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        store,
        "SELECT count(*), min(id), max(id), "
        "(SELECT rowid FROM messages WHERE agent_id = ?1 AND created_at >= ?2 AND created_at < "
        "?3 ORDER BY created_at, rowid LIMIT 1), "
        "(SELECT rowid FROM messages WHERE agent_id = ?1 AND created_at >= ?2 AND created_at < "
        "?3 ORDER BY created_at DESC, rowid DESC LIMIT 1) "
        "FROM (SELECT rowid AS id FROM messages WHERE agent_id = ?1 AND created_at >= ?2 AND "
        "created_at < ?3 LIMIT ?4)",
        &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int64(stmt, 2, from);
    sqlite3_bind_int64(stmt, 3, to);
    sqlite3_bind_int(stmt, 4, EXACT_RANGE + 1);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        st = store_fail(store, err, "searching recall memory");
    } else if (sqlite3_column_int64(stmt, 0) == 0) {
        *lo = 1, *hi = 0;
    } else {
        int exact = sqlite3_column_int64(stmt, 0) <= EXACT_RANGE;
        *lo = sqlite3_column_int64(stmt, exact ? 1 : 3);
        *hi = sqlite3_column_int64(stmt, exact ? 2 : 4);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* The result rows for ids[from, to) of `hits`, in that order: reads only
 * those messages. */
static mg_status read_hits(mg_store *store, const fts_hit *hits, int from, int to, int all,
                           json_t *results, mg_error *err)
{
    buf sql = BUF_INIT;
    buf_printf(
        &sql,
        "SELECT m.id, m.created_at, m.role, m.kind, m.search_text, %s, ?2, m.uuid FROM messages m "
        "WHERE m.id = ?1",
        all ? "m.inner_text" : "NULL");
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    for (int i = from; i < to && !st; i++) {
        sqlite3_bind_int64(stmt, 1, hits[i].id);
        sqlite3_bind_double(stmt, 2, hits[i].rank);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            json_array_append_new(results, result_row(stmt, 1));
        else if (rc != SQLITE_DONE)
            st = store_fail(store, err, "searching recall memory");
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* A search with words: ranks the newest RECALL_RANK_CAP matches (FTS5
 * walks a posting list backwards by rowid, so finding them costs one step
 * each) and reads the page's rows. `where` is NULL when the agent owns
 * every message and no date bounds it (FTS5 alone), else the filter on the
 * joined message row. Sets *out as recall_search describes. */
static mg_status rank_newest(mg_store *store, int64_t agent_id, const mg_search *search,
                             fts_plan *plan, const char *where, int64_t lo, int64_t hi, int limit,
                             int page, json_t **out, mg_error *err)
{
    mg_status st = fts_rank_ensure(store, err);
    if (st) return st;
    buf sql = BUF_INIT;
    if (!where)
        buf_puts(&sql, "SELECT rowid, " FTS_RANK_FUNCTION "(messages_fts, ?5) FROM messages_fts "
                       "WHERE messages_fts MATCH ?4 AND rowid BETWEEN ?6 AND ?7 "
                       "ORDER BY rowid DESC LIMIT ?8");
    else
        buf_printf(&sql,
                   "SELECT messages_fts.rowid, " FTS_RANK_FUNCTION "(messages_fts, ?5) FROM "
                   "messages_fts CROSS JOIN messages m ON m.id = messages_fts.rowid WHERE "
                   "messages_fts MATCH ?4 AND messages_fts.rowid BETWEEN ?6 AND ?7 AND %s "
                   "ORDER BY messages_fts.rowid DESC LIMIT ?8",
                   where);
    sqlite3_stmt *stmt;
    st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    if (where) {
        sqlite3_bind_int64(stmt, 1, agent_id);
        sqlite3_bind_int64(stmt, 2, search->from_ms);
        sqlite3_bind_int64(stmt, 3, search->to_ms ? search->to_ms : INT64_MAX);
    }
    store_bind_text(stmt, 4, plan->match);
    fts_plan_bind(plan, stmt, 5);
    sqlite3_bind_int64(stmt, 6, lo);
    sqlite3_bind_int64(stmt, 7, hi);
    sqlite3_bind_int(stmt, 8, RECALL_RANK_CAP + 1);
    fts_hit *hits = mg_xcalloc(RECALL_RANK_CAP + 1, sizeof *hits);
    int n = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n <= RECALL_RANK_CAP) {
        hits[n].id = sqlite3_column_int64(stmt, 0);
        hits[n++].rank = sqlite3_column_double(stmt, 1);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        st = store_fail(store, err, "searching recall memory");
    sqlite3_finalize(stmt);
    /* One more than the cap means older matches exist: drop that one. */
    int older = n > RECALL_RANK_CAP;
    if (older) n = RECALL_RANK_CAP;
    int64_t oldest = n ? hits[n - 1].id : 0;
    json_t *results = json_array();
    if (!st) {
        fts_hits_sort(hits, n);
        int64_t first = (int64_t)page * limit;
        if (first < n)
            st = read_hits(store, hits, (int)first, first + limit < n ? (int)(first + limit) : n,
                           search->include_all, results, err);
    }
    int64_t oldest_ms = 0;
    if (!st && older)
        st = store_query_int(store, "SELECT created_at FROM messages WHERE id = ?", oldest, 0,
                             &oldest_ms, err);
    free(hits);
    if (st) {
        json_decref(results);
        return st;
    }
    *out = json_pack("{s:i, s:i, s:I, s:o}", "total", n, "page", page, "pages",
                     (json_int_t)(((int64_t)n + limit - 1) / limit), "results", results);
    if (older) {
        char when[32];
        mg_time_iso(oldest_ms, when, sizeof when);
        json_object_set_new(*out, "older_matches", json_true());
        json_object_set_new(*out, "ranked_from", json_string(when));
    }
    return MG_OK;
}

mg_status recall_search(mg_store *store, int64_t agent_id, const mg_search *search, json_t **out,
                        mg_error *err)
{
    *out = NULL;
    int limit = search->limit > 0 ? search->limit : 10;
    int page = search->page > 0 ? search->page : 0;
    int64_t from = search->from_ms, to = search->to_ms ? search->to_ms : INT64_MAX;
    int all = search->include_all != 0;
    int dated = search->from_ms || search->to_ms;
    char *words = search->query && *search->query ? fts_query(search->query) : NULL;
    if (search->query && *search->query && !words)
        return mg_err_set(err, MG_ERR_USAGE, "the query has no words to search for");

    /* The default search's kinds follow from the column filter (only user
     * messages and assistant messages have said text); the filter below
     * repeats it for the joined plan. Without words, a default listing
     * skips rows where nothing was said. */
    const char *filter = all     ? "m.agent_id = ?1 AND m.created_at >= ?2 AND m.created_at < ?3"
                         : words ? "m.agent_id = ?1 AND m.kind IN ('user_message', 'assistant') "
                                   "AND m.created_at >= ?2 AND m.created_at < ?3"
                                 : "m.agent_id = ?1 AND m.kind IN ('user_message', 'assistant') "
                                   "AND m.search_text <> '' AND m.created_at >= ?2 AND "
                                   "m.created_at < ?3";
    if (words) {
        fts_plan plan = {0};
        int fts_only = 0;
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        int sole = 0;
        mg_status st = store_owns_all(store, STORE_MESSAGES, agent_id, &sole, err);
        if (!st && dated) st = id_bounds(store, agent_id, from, to, &lo, &hi, err);
        fts_only = sole && !dated;
        if (!st)
            st = fts_plan_build(store, &recall_fts, all ? NULL : "{search_text} : ", words,
                                RECALL_RANK_CAP, (fts_scope){lo, hi, !sole}, &plan, err);
        free(words);
        if (!st)
            st = rank_newest(store, agent_id, search, &plan, fts_only ? NULL : filter, lo, hi,
                             limit, page, out, err);
        fts_plan_free(&plan);
        return st;
    }

    /* No words: date order. */
    const char *columns = "m.id, m.created_at, m.role, m.kind, m.search_text";
    buf count_sql = BUF_INIT, rows_sql = BUF_INIT;
    buf_printf(&count_sql, "SELECT count(*) FROM messages m WHERE %s", filter);
    buf_printf(&rows_sql,
               "SELECT %s, %s, NULL, m.uuid FROM messages m WHERE %s ORDER BY m.created_at, m.id "
               "LIMIT ?5 OFFSET ?6",
               columns, all ? "m.inner_text" : "NULL", filter);
    sqlite3_stmt *count_stmt = NULL, *rows_stmt = NULL;
    mg_status st = store_prepare(store, buf_str(&count_sql), &count_stmt, err);
    if (!st) st = store_prepare(store, buf_str(&rows_sql), &rows_stmt, err);
    buf_free(&count_sql);
    buf_free(&rows_sql);
    if (st) goto done;
    sqlite3_stmt *both[] = {count_stmt, rows_stmt};
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_int64(both[i], 1, agent_id);
        sqlite3_bind_int64(both[i], 2, from);
        sqlite3_bind_int64(both[i], 3, to);
    }
    sqlite3_bind_int(rows_stmt, 5, limit);
    sqlite3_bind_int64(rows_stmt, 6, (int64_t)page * limit);

    if (sqlite3_step(count_stmt) != SQLITE_ROW) {
        st = store_fail(store, err, "searching recall memory");
        goto done;
    }
    int64_t total = sqlite3_column_int64(count_stmt, 0);
    json_t *results = json_array();
    int rc;
    while ((rc = sqlite3_step(rows_stmt)) == SQLITE_ROW)
        json_array_append_new(results, result_row(rows_stmt, 0));
    if (rc != SQLITE_DONE) {
        json_decref(results);
        st = store_fail(store, err, "searching recall memory");
        goto done;
    }
    *out = json_pack("{s:I, s:i, s:I, s:o}", "total", (json_int_t)total, "page", page, "pages",
                     (json_int_t)((total + limit - 1) / limit), "results", results);
done:
    sqlite3_finalize(count_stmt);
    sqlite3_finalize(rows_stmt);
    return st;
}

mg_status recall_list(mg_store *store, int64_t agent_id, int limit, json_t **out, mg_error *err)
{
    *out = NULL;
    sqlite3_stmt *stmt;
    /* The whole text, as recall_search_text gives it. */
    mg_status st = store_prepare(
        store,
        "SELECT id, created_at, role, kind, CASE WHEN inner_text = '' THEN search_text "
        "WHEN search_text = '' THEN inner_text ELSE inner_text || char(10) || search_text END, "
        "NULL, NULL, uuid FROM (SELECT * FROM messages WHERE agent_id = ? "
        "ORDER BY id DESC LIMIT ?) ORDER BY id",
        &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int(stmt, 2, limit > 0 ? limit : 20);
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        json_array_append_new(rows, result_row(stmt, 0));
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return store_fail(store, err, "listing recall memory");
    }
    *out = rows;
    return MG_OK;
}
