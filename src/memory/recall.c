/*
 * recall.c - storing, loading and searching the message history.
 *
 * Query plans: the FTS table must drive the join (CROSS JOIN fixes the
 * order). Left to itself SQLite may walk the agent's messages by index and
 * probe FTS once per row, which is linear in the history.
 *
 * Search safety: neither users nor models write FTS5 syntax, and FTS5 treats
 * quotes, parentheses, '*', ':' and words like NEAR or OR as operators. So a
 * query is never passed through: recall_fts_query keeps only word characters
 * and quotes each word, which makes every input a valid expression.
 */
#include "memory/recall.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

static const char *const message_columns =
    "id, role, kind, content, tool_calls, tool_call_id, tool_name, created_at, raw_content";

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

char *recall_search_text(const mg_msg *m)
{
    buf out = BUF_INIT;
    if (m->role == MG_ROLE_ASSISTANT) {
        if (m->content) buf_puts(&out, m->content);
        for (int i = 0; i < m->ncalls; i++) {
            if (strcmp(m->calls[i].name, "send_message") != 0) continue;
            json_t *args = json_loads(m->calls[i].arguments, 0, NULL);
            const char *msg = json_string_value(json_object_get(args, "message"));
            if (msg) buf_printf(&out, "%s%s", out.len ? "\n" : "", msg);
            json_decref(args);
        }
    } else if (m->content) {
        append_envelope_text(&out, m->content);
    }
    return buf_take(&out);
}

mg_status recall_insert(mg_store *store, int64_t agent_id, mg_msg *m, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "INSERT INTO messages(agent_id, role, kind, content, tool_calls, "
                                 "tool_call_id, tool_name, search_text, created_at, raw_content) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 &stmt, err);
    if (st) return st;
    char *calls = m->ncalls ? mg_tool_calls_to_json(m->calls, m->ncalls) : NULL;
    char *search = recall_search_text(m);
    sqlite3_bind_int64(stmt, 1, agent_id);
    store_bind_text(stmt, 2, mg_role_name(m->role));
    store_bind_text(stmt, 3, m->kind);
    store_bind_text(stmt, 4, m->content);
    store_bind_text(stmt, 5, calls);
    store_bind_text(stmt, 6, m->tool_call_id);
    store_bind_text(stmt, 7, m->tool_name);
    store_bind_text(stmt, 8, search);
    sqlite3_bind_int64(stmt, 9, m->time_ms);
    store_bind_text(stmt, 10, m->raw_content);
    st = store_step_done(store, stmt, err);
    if (!st) m->id = sqlite3_last_insert_rowid(store->db);
    sqlite3_finalize(stmt);
    free(calls);
    free(search);
    return st;
}

mg_status recall_update(mg_store *store, const mg_msg *m, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        store, "UPDATE messages SET content = ?, tool_calls = ?, search_text = ? WHERE id = ?",
        &stmt, err);
    if (st) return st;
    char *calls = m->ncalls ? mg_tool_calls_to_json(m->calls, m->ncalls) : NULL;
    char *search = recall_search_text(m);
    store_bind_text(stmt, 1, m->content);
    store_bind_text(stmt, 2, calls);
    store_bind_text(stmt, 3, search);
    sqlite3_bind_int64(stmt, 4, m->id);
    st = store_step_done(store, stmt, err);
    sqlite3_finalize(stmt);
    free(calls);
    free(search);
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

static int is_stop_word(const char *w, size_t n)
{
    static const char *const words[] = {
        "a",    "an",   "and",   "are",   "as",   "at",   "be",   "but",  "by",  "did", "do",
        "does", "for",  "from",  "had",   "has",  "have", "he",   "her",  "his", "how", "i",
        "in",   "is",   "it",    "its",   "me",   "my",   "of",   "on",   "or",  "our", "she",
        "so",   "that", "the",   "their", "them", "they", "this", "to",   "was", "we",  "were",
        "what", "when", "where", "which", "who",  "why",  "will", "with", "you", "your"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == n && strncasecmp(words[i], w, n) == 0) return 1;
    return 0;
}

static int is_word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

char *recall_fts_query(const char *text)
{
    buf all = BUF_INIT, content = BUF_INIT;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    int words = 0, content_words = 0;
    while (*p) {
        if (!is_word_byte(*p)) {
            p++;
            continue;
        }
        const unsigned char *start = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t n = (size_t)(p - start);
        buf_printf(&all, "%s\"%.*s\"", words++ ? " OR " : "", (int)n, (const char *)start);
        if (!is_stop_word((const char *)start, n))
            buf_printf(&content, "%s\"%.*s\"", content_words++ ? " OR " : "", (int)n,
                       (const char *)start);
    }
    if (!words) {
        buf_free(&all);
        buf_free(&content);
        return NULL;
    }
    if (content_words) {
        buf_free(&all);
        return buf_take(&content);
    }
    buf_free(&content);
    return buf_take(&all);
}

static json_t *result_row(sqlite3_stmt *stmt, int with_score)
{
    char when[32];
    mg_time_iso(sqlite3_column_int64(stmt, 1), when, sizeof when);
    json_t *row =
        json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(stmt, 0),
                  "time", when, "role", (const char *)sqlite3_column_text(stmt, 2), "kind",
                  (const char *)sqlite3_column_text(stmt, 3), "text",
                  (const char *)sqlite3_column_text(stmt, 4));
    if (with_score) json_object_set_new(row, "score", json_real(-sqlite3_column_double(stmt, 5)));
    return row;
}

mg_status recall_search(mg_store *store, int64_t agent_id, const mg_search *search, json_t **out,
                        mg_error *err)
{
    *out = NULL;
    int limit = search->limit > 0 ? search->limit : 10;
    int page = search->page > 0 ? search->page : 0;
    int64_t from = search->from_ms, to = search->to_ms ? search->to_ms : INT64_MAX;
    char *match = search->query && *search->query ? recall_fts_query(search->query) : NULL;
    if (search->query && *search->query && !match)
        return mg_err_set(err, MG_ERR_USAGE, "the query has no words to search for");

    const char *filter = "m.agent_id = ?1 AND m.kind IN ('user_message', 'assistant') "
                         "AND m.created_at >= ?2 AND m.created_at < ?3";
    buf count_sql = BUF_INIT, rows_sql = BUF_INIT;
    if (match) {
        buf_printf(&count_sql,
                   "SELECT count(*) FROM messages_fts CROSS JOIN messages m ON m.id = "
                   "messages_fts.rowid WHERE messages_fts MATCH ?4 AND %s",
                   filter);
        buf_printf(&rows_sql,
                   "SELECT m.id, m.created_at, m.role, m.kind, m.search_text, "
                   "bm25(messages_fts) AS rank FROM messages_fts CROSS JOIN messages m ON m.id = "
                   "messages_fts.rowid WHERE messages_fts MATCH ?4 AND %s "
                   "ORDER BY rank, m.id DESC LIMIT ?5 OFFSET ?6",
                   filter);
    } else {
        buf_printf(&count_sql, "SELECT count(*) FROM messages m WHERE %s", filter);
        buf_printf(&rows_sql,
                   "SELECT m.id, m.created_at, m.role, m.kind, m.search_text FROM messages m "
                   "WHERE %s ORDER BY m.created_at, m.id LIMIT ?5 OFFSET ?6",
                   filter);
    }
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
        if (match) store_bind_text(both[i], 4, match);
    }
    sqlite3_bind_int(rows_stmt, 5, limit);
    sqlite3_bind_int64(rows_stmt, 6, (int64_t)page * limit);

    int64_t total = 0;
    if (sqlite3_step(count_stmt) != SQLITE_ROW) {
        st = store_fail(store, err, "searching recall memory");
        goto done;
    }
    total = sqlite3_column_int64(count_stmt, 0);
    json_t *results = json_array();
    int rc;
    while ((rc = sqlite3_step(rows_stmt)) == SQLITE_ROW)
        json_array_append_new(results, result_row(rows_stmt, match != NULL));
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
    free(match);
    return st;
}

mg_status recall_list(mg_store *store, int64_t agent_id, int limit, json_t **out, mg_error *err)
{
    *out = NULL;
    sqlite3_stmt *stmt;
    mg_status st =
        store_prepare(store,
                      "SELECT id, created_at, role, kind, search_text FROM (SELECT * FROM "
                      "messages WHERE agent_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
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
