/*
 * passages_db.c - bulk-load and re-embed SQL over the passages table.
 *
 * Every insert into passages goes through passages_db_insert (archival_insert
 * too), so a loaded passage is searched exactly like one the agent stored
 * itself. It writes the FTS row with a statement of its own, and the caller
 * bumps agents.passage_count once per transaction (passages_db_count_added):
 * since migration 6 no trigger fires on an insert, because a trigger makes
 * SQLite open a statement savepoint and FTS5 (3.40) flushes its pending terms
 * to a new segment at every savepoint - a segment per passage, merged again
 * and again (bench/README.md, section 6). The duplicate check is one probe of
 * the (agent_id, content_hash) index. Batches read before they write
 * (backfill, stale lists), so no statement updates rows an open cursor is
 * walking.
 */
#include "memory/passages_db.h"

#include <stdlib.h>
#include <string.h>

#include "embed/vec.h"
#include "memory/archival_index.h"
#include "memory/loader.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"

#define BACKFILL_BATCH 512

mg_status passages_db_open(passages_db *db, mg_store *store, int64_t agent_id, mg_error *err)
{
    memset(db, 0, sizeof *db);
    db->store = store;
    db->agent_id = agent_id;
    mg_status st = store_prepare(store,
                                 "INSERT INTO passages(agent_id, text, tags, created_at, embedder, "
                                 "embedding, source, position, content_hash, uuid) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 &db->insert, err);
    if (!st)
        st = store_prepare(store, "INSERT INTO passages_fts(rowid, text) VALUES (?, ?)", &db->fts,
                           err);
    if (st) passages_db_close(db);
    return st;
}

void passages_db_close(passages_db *db)
{
    sqlite3_finalize(db->exists);
    sqlite3_finalize(db->insert);
    sqlite3_finalize(db->fts);
    db->exists = db->insert = db->fts = NULL;
}

mg_status passages_db_has_hash(passages_db *db, const char *hash, int *found, mg_error *err)
{
    /* Prepared on first use: a single archival_insert never probes. */
    if (!db->exists) {
        mg_status st = store_prepare(
            db->store, "SELECT 1 FROM passages WHERE agent_id = ? AND content_hash = ? LIMIT 1",
            &db->exists, err);
        if (st) return st;
    }
    sqlite3_bind_int64(db->exists, 1, db->agent_id);
    sqlite3_bind_text(db->exists, 2, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(db->exists);
    sqlite3_reset(db->exists);
    sqlite3_clear_bindings(db->exists);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_fail(db->store, err, "looking for a duplicate passage");
    *found = rc == SQLITE_ROW;
    return MG_OK;
}

mg_status passages_db_insert(passages_db *db, const passage_new *p, mg_error *err)
{
    int bytes = mg_vec_blob_size(p->dim);
    unsigned char *blob = mg_xmalloc((size_t)bytes);
    float *stored = mg_xmalloc((size_t)p->dim * sizeof *stored); /* what the table will hold */
    mg_vec_to_blob(p->vec, p->dim, blob);
    mg_vec_from_blob(blob, bytes, stored, p->dim);
    sqlite3_stmt *s = db->insert;
    sqlite3_bind_int64(s, 1, db->agent_id);
    sqlite3_bind_text(s, 2, p->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->tags_json ? p->tags_json : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, p->time_ms ? p->time_ms : mg_now_ms());
    sqlite3_bind_text(s, 5, p->embedder, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, blob, bytes, SQLITE_STATIC);
    if (p->source)
        sqlite3_bind_text(s, 7, p->source, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 7);
    if (p->position >= 0)
        sqlite3_bind_int64(s, 8, p->position);
    else
        sqlite3_bind_null(s, 8);
    if (p->hash)
        sqlite3_bind_text(s, 9, p->hash, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 9);
    char uuid[MG_UUID_SIZE];
    if (!p->uuid) mg_uuid_new(uuid);
    sqlite3_bind_text(s, 10, p->uuid ? p->uuid : uuid, -1, SQLITE_STATIC);
    mg_status st = store_step_done(db->store, s, err);
    if (!st) {
        int64_t id = sqlite3_last_insert_rowid(db->store->db);
        sqlite3_bind_int64(db->fts, 1, id);
        sqlite3_bind_text(db->fts, 2, p->text, -1, SQLITE_STATIC);
        st = store_step_done(db->store, db->fts, err);
        sqlite3_clear_bindings(db->fts);
        if (!st) archival_index_added(db->store, db->agent_id, p->embedder, id, stored, p->dim);
    }
    sqlite3_clear_bindings(s);
    free(stored);
    free(blob);
    return st;
}

mg_status passages_db_count_added(mg_store *store, int64_t agent_id, int64_t n, mg_error *err)
{
    if (n == 0) return MG_OK;
    sqlite3_stmt *s;
    mg_status st = store_prepare(
        store, "UPDATE agents SET passage_count = passage_count + ? WHERE id = ?", &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, n);
    sqlite3_bind_int64(s, 2, agent_id);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    return st;
}

/* One batch of backfilling; *done = how many got a hash. */
static mg_status backfill_batch(mg_store *store, int64_t agent_id, int *done, mg_error *err)
{
    *done = 0;
    passage_text rows[BACKFILL_BATCH];
    int n = 0;
    sqlite3_stmt *sel, *upd;
    mg_status st = store_prepare(store,
                                 "SELECT id, text FROM passages WHERE agent_id = ? AND "
                                 "content_hash IS NULL ORDER BY id LIMIT ?",
                                 &sel, err);
    if (st) return st;
    sqlite3_bind_int64(sel, 1, agent_id);
    sqlite3_bind_int(sel, 2, BACKFILL_BATCH);
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW && n < BACKFILL_BATCH) {
        rows[n].id = sqlite3_column_int64(sel, 0);
        rows[n].text = store_column_strdup(sel, 1);
        n++;
    }
    sqlite3_finalize(sel);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) st = store_fail(store, err, "reading passages");
    if (!st && n)
        st = store_prepare(store, "UPDATE passages SET content_hash = ? WHERE id = ?", &upd, err);
    if (!st && n) {
        for (int i = 0; i < n && !st; i++) {
            char hex[65];
            const char *text = rows[i].text ? rows[i].text : "";
            loader_content_hash(text, strlen(text), hex);
            sqlite3_bind_text(upd, 1, hex, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(upd, 2, rows[i].id);
            st = store_step_done(store, upd, err);
        }
        sqlite3_finalize(upd);
    }
    for (int i = 0; i < n; i++)
        free(rows[i].text);
    if (!st) *done = n;
    return st;
}

mg_status passages_db_backfill(mg_store *store, int64_t agent_id, int64_t *count, mg_error *err)
{
    if (count) *count = 0;
    for (;;) {
        mg_status st = store_begin(store, err);
        if (st) return st;
        int done;
        st = backfill_batch(store, agent_id, &done, err);
        if (st) {
            store_rollback(store);
            return st;
        }
        if ((st = store_commit(store, err))) return st;
        if (count) *count += done;
        if (done < BACKFILL_BATCH) return MG_OK;
    }
}

mg_status passages_db_count_embedders(mg_store *store, int64_t agent_id, const char *embedder,
                                      int64_t *stale, int64_t *current, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(store,
                                 "SELECT count(*) FILTER (WHERE embedder <> ?2), "
                                 "count(*) FILTER (WHERE embedder = ?2) "
                                 "FROM passages WHERE agent_id = ?1",
                                 &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, agent_id);
    sqlite3_bind_text(s, 2, embedder, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *stale = sqlite3_column_int64(s, 0);
        *current = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? MG_OK : store_fail(store, err, "counting passages");
}

mg_status passages_db_stale(mg_store *store, int64_t agent_id, const char *embedder,
                            int64_t after_id, int limit, passage_text **out, int *n, mg_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s;
    mg_status st = store_prepare(store,
                                 "SELECT id, text FROM passages WHERE agent_id = ? AND id > ? "
                                 "AND embedder <> ? ORDER BY id LIMIT ?",
                                 &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, agent_id);
    sqlite3_bind_int64(s, 2, after_id);
    sqlite3_bind_text(s, 3, embedder, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, limit);
    passage_text *items = mg_xcalloc((size_t)(limit > 0 ? limit : 1), sizeof *items);
    int count = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && count < limit) {
        items[count].id = sqlite3_column_int64(s, 0);
        items[count].text = store_column_strdup(s, 1);
        if (!items[count].text) items[count].text = mg_xstrdup("");
        count++;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        passage_texts_free(items, count);
        return store_fail(store, err, "reading passages");
    }
    *out = items;
    *n = count;
    return MG_OK;
}

void passage_texts_free(passage_text *items, int n)
{
    for (int i = 0; i < n; i++)
        free(items[i].text);
    free(items);
}

mg_status passages_db_set_embedding(mg_store *store, int64_t id, const char *embedder,
                                    const float *vec, int dim, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(
        store, "UPDATE passages SET embedder = ?, embedding = ? WHERE id = ?", &s, err);
    if (st) return st;
    int bytes = mg_vec_blob_size(dim);
    unsigned char *blob = mg_xmalloc((size_t)bytes);
    mg_vec_to_blob(vec, dim, blob);
    sqlite3_bind_text(s, 1, embedder, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, blob, bytes, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, id);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    free(blob);
    return st;
}
