/*
 * page.h - cursor paging, the way API clients walk long lists.
 *
 * Lists are in creation order, which is row id order. A client asks for
 * `limit` items after the last one it saw (or before the first), naming it
 * by its public id; the cursor is turned into a row id once, and the page
 * is then a range scan on the table's primary key or an index on
 * (scope, id): no OFFSET, so page 10,000 costs what page 1 costs.
 *
 * "after" and "before" follow the list's order: in a newest-first list,
 * the page after an item holds older items.
 */
#ifndef MG_STORE_PAGE_H
#define MG_STORE_PAGE_H

#include <jansson.h>
#include <sqlite3.h>

#include "memgpt.h"
#include "util/buf.h"

#define PAGE_DEFAULT_LIMIT 50
#define PAGE_MAX_LIMIT     1000

/* A page with its cursors resolved to row ids (0: none). */
typedef struct store_page {
    int64_t after_row, before_row;
    int limit;
    int descending;
} store_page;

/* Resolves the public cursors of `page` to rows of `table` whose uuid
 * column holds the id's UUID after "PREFIX-", among the rows matching
 * `scope` (an SQL condition on the table with no parameters, "1" for
 * all). MG_ERR_NOT_FOUND names a cursor that is not an item of the list,
 * MG_ERR_USAGE a limit out of range. */
mg_status store_page_resolve(mg_store *store, const mg_page *page, const char *table,
                             const char *prefix, const char *scope, store_page *out, mg_error *err);

/* Appends the page's conditions on `id_column` (" AND ...") and its ORDER
 * BY and LIMIT to `sql`. Returns 1 when the rows come back in the reverse
 * of the list's order (a page before a cursor is read from the cursor
 * outwards) and the caller must reverse them: see store_page_rows. */
int store_page_sql(buf *sql, const store_page *page, const char *id_column);

/* Runs a prepared page query, turning each row into JSON with `row_fn`,
 * and returns the array in the list's order. */
mg_status store_page_rows(mg_store *store, sqlite3_stmt *stmt, int reversed,
                          json_t *(*row_fn)(sqlite3_stmt *stmt, void *user), void *user,
                          json_t **out, mg_error *err);

#endif
