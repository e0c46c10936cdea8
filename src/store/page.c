/*
 * page.c - cursor paging (see page.h).
 */
#include "store/page.h"

#include <inttypes.h>

#include "store/store.h"
#include "util/err.h"
#include "util/uuid.h"

static mg_status resolve_one(mg_store *store, const char *id, const char *table, const char *prefix,
                             const char *scope, int64_t *row, mg_error *err)
{
    *row = 0;
    if (!id || !*id) return MG_OK;
    const char *uuid = mg_uuid_strip(id, prefix);
    if (!uuid) return mg_err_set(err, MG_ERR_NOT_FOUND, "no %s with id '%.80s'", prefix, id);
    buf sql = BUF_INIT;
    buf_printf(&sql, "SELECT rowid FROM %s WHERE uuid = lower(?) AND (%s)", table, scope);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    store_bind_text(stmt, 1, uuid);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) *row = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "no %s with id '%.80s'", prefix, id);
    if (rc != SQLITE_ROW) return store_fail(store, err, "finding a page's cursor");
    return MG_OK;
}

mg_status store_page_resolve(mg_store *store, const mg_page *page, const char *table,
                             const char *prefix, const char *scope, store_page *out, mg_error *err)
{
    mg_page none = {0};
    if (!page) page = &none;
    *out = (store_page){.limit = page->limit ? page->limit : PAGE_DEFAULT_LIMIT,
                        .descending = page->descending};
    if (out->limit < 1 || out->limit > PAGE_MAX_LIMIT)
        return mg_err_set(err, MG_ERR_USAGE, "limit must be between 1 and %d", PAGE_MAX_LIMIT);
    mg_status st = resolve_one(store, page->after, table, prefix, scope, &out->after_row, err);
    if (!st) st = resolve_one(store, page->before, table, prefix, scope, &out->before_row, err);
    return st;
}

int store_page_sql(buf *sql, const store_page *p, const char *id_column)
{
    /* In list order, "after" is greater in an oldest-first list and
     * smaller in a newest-first one. */
    const char *past = p->descending ? "<" : ">";
    const char *short_of = p->descending ? ">" : "<";
    if (p->after_row) buf_printf(sql, " AND %s %s %" PRId64, id_column, past, p->after_row);
    if (p->before_row) buf_printf(sql, " AND %s %s %" PRId64, id_column, short_of, p->before_row);
    /* Without "after", a page before a cursor is the items nearest to it. */
    int reversed = p->before_row && !p->after_row;
    int descending = reversed ? !p->descending : p->descending;
    buf_printf(sql, " ORDER BY %s %s LIMIT %d", id_column, descending ? "DESC" : "ASC", p->limit);
    return reversed;
}

mg_status store_page_rows(mg_store *store, sqlite3_stmt *stmt, int reversed,
                          json_t *(*row_fn)(sqlite3_stmt *stmt, void *user), void *user,
                          json_t **out, mg_error *err)
{
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        json_t *row = row_fn(stmt, user);
        if (reversed)
            json_array_insert_new(rows, 0, row);
        else
            json_array_append_new(rows, row);
    }
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        *out = NULL;
        return store_fail(store, err, "reading a page");
    }
    *out = rows;
    return MG_OK;
}
