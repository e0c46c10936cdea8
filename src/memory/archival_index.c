/*
 * archival_index.c - keeping each agent's vector index in agreement with the
 * passages table, across inserts, rollbacks, crashes and re-embedding.
 *
 * The table is the truth and the index a cache that can always be rebuilt
 * from it, so every rule here errs towards checking against the table:
 *
 *  - Opening. The file is loaded (index_file.c verifies every checksum and
 *    graph invariant) and its log replayed (a torn tail is cut). A missing,
 *    corrupt, foreign or wrong-dimension file, or a log that contradicts it,
 *    is never trusted: the index is rebuilt from the table and saved.
 *
 *  - Reconcile, after every load. Cheap check first: if the index holds as
 *    many live vectors as the agent has passages (agents.passage_count, kept
 *    by triggers) and its largest live id is the agent's largest passage id,
 *    it holds them all. Otherwise the rows above its largest live id are
 *    added (what was committed but never reached the log: a crash between
 *    the commit and the append, a torn log, inserts by a process that had
 *    the index unloaded), and if the count still differs from the table's
 *    count for this embedder, the id lists are compared and the difference
 *    applied both ways (ids of rolled-back inserts, rows re-embedded away).
 *
 *  - Inserts reach a loaded index at once (archival_index_added), appended to
 *    its log before the caller's transaction commits. Ids added inside a
 *    transaction are remembered and checked against the table at the next
 *    use outside one: a rolled-back insert (savepoints included) is removed
 *    again. A later insert that reuses a rolled-back row id replaces the
 *    vector. Inserts with no index loaded do nothing: the next load adds
 *    them, as above.
 *
 *  - Saving. A fresh build is saved at once. Otherwise the index is saved at
 *    mg_store_close when its log holds more changes than a tenth of it
 *    (at least SAVE_MIN_RECORDS), else only the log is synced, so a chat that
 *    stores a few passages does not rewrite a large file. mg_index_save is
 *    atomic, so a crash mid-save leaves the previous file and its log.
 *
 *  - Re-embedding changes the vectors of existing ids, which no count can
 *    detect, so archival_index_forget drops the agent's indexes and files;
 *    the next search builds the index of the new spec. Deleting an agent
 *    removes its files (archival_index_remove_orphans, also run once per
 *    process, so a crash between the DELETE and the unlink is cleaned up).
 *
 * What is left to chance: a process killed after a rolled-back insert was
 * logged and before its next use of the index, followed by another process
 * reusing that row id for a new passage of the same agent while the index is
 * not loaded. The index then holds the old vector under the new id; search
 * scores candidates with the stored embedding, so the passage is only less
 * likely to be a vector candidate (its words still find it).
 *
 * Several processes on one home (a chat and a script) each load their own
 * copy and append to the same log; the records all describe committed or
 * checked rows, and the reconcile on the next load catches the rest.
 */
#include "memory/archival_index.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embed/vec.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/sha256.h"

/* A log shorter than this is synced rather than folded into a full save. */
#define SAVE_MIN_RECORDS 1024
#define SAVE_FRACTION    10

typedef struct entry {
    int64_t agent_id;
    char *embedder;
    mg_index *idx;
    char *path, *log_path; /* NULL: kept in memory only */
    int64_t unsaved;       /* changes since the file was written (log records) */
    int64_t *pending;      /* ids added inside a transaction, not yet checked */
    int npending, cap;
    int broken; /* an add failed: reconcile before the next use */
    archival_index_info info;
    struct entry *next;
} entry;

typedef struct cache {
    mg_store *store;
    int64_t min_passages;
    int exact_below; /* of the indexes built from now on */
    int swept;       /* orphan files removed in this process */
    entry *head;
} cache;

static void cache_free(void *p);

static cache *cache_of(mg_store *store)
{
    if (store->archival_indexes) return store->archival_indexes;
    cache *c = mg_xcalloc(1, sizeof *c);
    c->store = store;
    c->min_passages = ARCHIVAL_INDEX_MIN_DEFAULT;
    c->exact_below = ARCHIVAL_INDEX_EXACT_BELOW;
    const char *env = getenv("MEMGPT_ARCHIVAL_INDEX_MIN");
    if (env && *env) {
        char *end;
        errno = 0;
        long long v = strtoll(env, &end, 10);
        if (!errno && !*end && v >= 0) c->min_passages = v;
    }
    store->archival_indexes = c;
    store->archival_indexes_free = cache_free;
    return c;
}

int64_t archival_index_min(mg_store *store)
{
    return cache_of(store)->min_passages;
}

void archival_index_set_min(mg_store *store, int64_t min_passages)
{
    cache_of(store)->min_passages = min_passages < 0 ? 0 : min_passages;
}

void archival_index_set_exact_below(mg_store *store, int exact_below)
{
    cache_of(store)->exact_below = exact_below < -1 ? -1 : exact_below;
}

/* ------------------------------------------------------------------ files */

static char *index_dir(mg_store *store)
{
    buf b = BUF_INIT;
    buf_printf(&b, "%s.index", store->path);
    return buf_take(&b);
}

/* HOME/memgpt.db.index/agent-ID-SPEC.mgx; NULL if the folder cannot be made. */
static char *index_path(mg_store *store, int64_t agent_id, const char *embedder)
{
    char *dir = index_dir(store);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        free(dir);
        return NULL;
    }
    mg_sha256 h;
    unsigned char digest[32];
    char hex[65];
    mg_sha256_init(&h);
    mg_sha256_update(&h, embedder, strlen(embedder));
    mg_sha256_final(&h, digest);
    mg_sha256_hex(digest, hex);
    buf b = BUF_INIT;
    buf_printf(&b, "%s/agent-%lld-%.16s.mgx", dir, (long long)agent_id, hex);
    free(dir);
    return buf_take(&b);
}

static void entry_free(entry *e)
{
    mg_index_free(e->idx);
    free(e->embedder);
    free(e->path);
    free(e->log_path);
    free(e->pending);
    free(e);
}

/* Unlinks agent-ID-* in the index folder for the agents `doomed` picks. */
static void remove_files(mg_store *store, int (*doomed)(mg_store *, int64_t, void *), void *ctx)
{
    char *dir = index_dir(store);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            long long id;
            if (sscanf(de->d_name, "agent-%lld-", &id) != 1 || !doomed(store, id, ctx)) continue;
            buf p = BUF_INIT;
            buf_printf(&p, "%s/%s", dir, de->d_name);
            unlink(p.data);
            buf_free(&p);
        }
        closedir(d);
    }
    free(dir);
}

/* Drops the loaded indexes `doomed` picks, without saving them. */
static void drop_entries(cache *c, int (*doomed)(mg_store *, int64_t, void *), void *ctx)
{
    for (entry **p = &c->head; *p;) {
        entry *e = *p;
        if (doomed(c->store, e->agent_id, ctx)) {
            *p = e->next;
            entry_free(e);
        } else {
            p = &e->next;
        }
    }
}

static int is_agent(mg_store *store, int64_t id, void *ctx)
{
    return id == *(const int64_t *)ctx;
}

static int is_orphan(mg_store *store, int64_t id, void *ctx)
{
    int64_t n;
    if (store_query_int(store, "SELECT count(*) FROM agents WHERE id = ?", id, 1, &n, NULL))
        return 0; /* cannot tell: keep */
    return n == 0;
}

void archival_index_forget(mg_store *store, int64_t agent_id)
{
    if (store->archival_indexes) drop_entries(store->archival_indexes, is_agent, &agent_id);
    remove_files(store, is_agent, &agent_id);
}

void archival_index_remove_orphans(mg_store *store)
{
    if (store->archival_indexes) drop_entries(store->archival_indexes, is_orphan, NULL);
    remove_files(store, is_orphan, NULL);
}

/* ------------------------------------------------------------------ rows into the index */

/* Adds one stored embedding; a live id is replaced (a reused row id). */
static mg_status add_blob(mg_index *idx, int64_t id, const void *blob, int bytes,
                          const char *embedder, float *scratch, mg_error *err)
{
    int dim = mg_index_dim(idx);
    if (!mg_vec_from_blob(blob, bytes, scratch, dim))
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "passage %lld has an embedding of %d bytes, but other passages "
                          "embedded by '%s' have %d dimensions",
                          (long long)id, bytes, embedder, dim);
    if (mg_index_contains(idx, id) && mg_index_remove(idx, id, err)) return MG_ERR_IO;
    return mg_index_add(idx, id, scratch, err);
}

static mg_status prepare_spec(mg_store *store, const char *sql, int64_t agent_id,
                              const char *embedder, sqlite3_stmt **stmt, mg_error *err)
{
    mg_status st = store_prepare(store, sql, stmt, err);
    if (st) return st;
    sqlite3_bind_int64(*stmt, 1, agent_id);
    store_bind_text(*stmt, 2, embedder);
    return MG_OK;
}

/* Adds the agent's rows of this embedder with id > after that the index
 * does not hold; *added counts them. */
static mg_status add_rows_after(mg_store *store, entry *e, int64_t after, int64_t *added,
                                mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = prepare_spec(store,
                                "SELECT id, embedding FROM passages WHERE agent_id = ?1 AND "
                                "embedder = ?2 AND id > ?3 ORDER BY id",
                                e->agent_id, e->embedder, &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 3, after);
    float *scratch = mg_xmalloc((size_t)mg_index_dim(e->idx) * sizeof *scratch);
    int rc;
    while (!st && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        if (mg_index_contains(e->idx, id)) continue;
        st = add_blob(e->idx, id, sqlite3_column_blob(stmt, 1), sqlite3_column_bytes(stmt, 1),
                      e->embedder, scratch, err);
        if (!st) ++*added;
    }
    if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "indexing archival memory");
    sqlite3_finalize(stmt);
    free(scratch);
    return st;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The index's live ids, sorted; caller frees. */
static int64_t *live_ids(mg_index *idx, int64_t *n)
{
    *n = mg_index_count(idx);
    int64_t *ids = mg_xmalloc((size_t)(*n ? *n : 1) * sizeof *ids);
    mg_index_ids(idx, ids, *n);
    qsort(ids, (size_t)*n, sizeof *ids, cmp_id);
    return ids;
}

/* Makes the index hold exactly the table's ids of this agent and embedder. */
static mg_status full_diff(mg_store *store, entry *e, mg_error *err)
{
    int64_t n;
    int64_t *have = live_ids(e->idx, &n);
    sqlite3_stmt *rows = NULL, *one = NULL;
    mg_status st = prepare_spec(store,
                                "SELECT id FROM passages WHERE agent_id = ?1 AND embedder = ?2 "
                                "ORDER BY id",
                                e->agent_id, e->embedder, &rows, err);
    if (!st) st = store_prepare(store, "SELECT embedding FROM passages WHERE id = ?", &one, err);
    float *scratch = mg_xmalloc((size_t)mg_index_dim(e->idx) * sizeof *scratch);
    int64_t i = 0;
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(rows)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(rows, 0);
        for (; i < n && have[i] < id && !st; i++)
            if (!(st = mg_index_remove(e->idx, have[i], err))) e->info.removed++;
        if (st) break;
        if (i < n && have[i] == id) {
            i++;
            continue;
        }
        sqlite3_bind_int64(one, 1, id);
        if (sqlite3_step(one) == SQLITE_ROW) {
            st = add_blob(e->idx, id, sqlite3_column_blob(one, 0), sqlite3_column_bytes(one, 0),
                          e->embedder, scratch, err);
            if (!st) e->info.added++;
        }
        sqlite3_reset(one);
    }
    if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "indexing archival memory");
    for (; i < n && !st; i++)
        if (!(st = mg_index_remove(e->idx, have[i], err))) e->info.removed++;
    sqlite3_finalize(rows);
    sqlite3_finalize(one);
    free(scratch);
    free(have);
    return st;
}

static mg_status query_spec_int(mg_store *store, const char *sql, int64_t agent_id,
                                const char *embedder, int64_t *out, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = prepare_spec(store, sql, agent_id, embedder, &stmt, err);
    if (st) return st;
    *out = 0;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(stmt, 0);
    else if (rc != SQLITE_DONE)
        st = store_fail(store, err, "indexing archival memory");
    sqlite3_finalize(stmt);
    return st;
}

/* The reconcile described at the top of the file. */
static mg_status reconcile(mg_store *store, entry *e, mg_error *err)
{
    int64_t n_agent, max_agent, n_live, live_max = INT64_MIN;
    mg_status st = store_query_int(store, "SELECT passage_count FROM agents WHERE id = ?",
                                   e->agent_id, 0, &n_agent, err);
    if (!st)
        st = store_query_int(store, "SELECT coalesce(max(id), 0) FROM passages WHERE agent_id = ?",
                             e->agent_id, 0, &max_agent, err);
    if (st) return st;
    int64_t *ids = live_ids(e->idx, &n_live);
    if (n_live) live_max = ids[n_live - 1];
    free(ids);
    if (n_live == n_agent && (n_live == 0 || live_max == max_agent)) return MG_OK;
    int64_t added = 0, n_spec;
    st = add_rows_after(store, e, live_max, &added, err);
    e->info.added += added;
    if (!st)
        st = query_spec_int(store,
                            "SELECT count(*) FROM passages WHERE agent_id = ?1 AND embedder = ?2",
                            e->agent_id, e->embedder, &n_spec, err);
    if (!st && mg_index_count(e->idx) != n_spec) st = full_diff(store, e, err);
    return st;
}

/* Removes the ids added inside a transaction that the table does not have
 * (rolled back). Only outside a transaction: inside, they may still commit. */
static mg_status settle(mg_store *store, entry *e, mg_error *err)
{
    if (!e->npending || store->tx_depth > 0) return MG_OK;
    sqlite3_stmt *stmt;
    mg_status st = prepare_spec(store,
                                "SELECT 1 FROM passages WHERE agent_id = ?1 AND embedder = ?2 "
                                "AND id = ?3",
                                e->agent_id, e->embedder, &stmt, err);
    for (int i = 0; i < e->npending && !st; i++) {
        sqlite3_bind_int64(stmt, 3, e->pending[i]);
        int rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        if (rc == SQLITE_DONE && mg_index_contains(e->idx, e->pending[i])) {
            if (!(st = mg_index_remove(e->idx, e->pending[i], err))) e->unsaved++;
        } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            st = store_fail(store, err, "indexing archival memory");
        }
    }
    sqlite3_finalize(stmt);
    if (!st) e->npending = 0;
    return st;
}

/* ------------------------------------------------------------------ opening */

/* Starts the log beside a saved (or loaded) index; without it the entry
 * stays in memory only. */
static void attach_log(entry *e, mg_index_log_info *li)
{
    if (e->path && mg_index_log_attach(e->idx, e->log_path, li, NULL) != MG_OK) {
        free(e->path);
        free(e->log_path);
        e->path = e->log_path = NULL;
    }
}

/* Loads, or builds, the index of (agent, embedder) of vectors of `dim`. */
static mg_status open_entry(mg_store *store, int64_t agent_id, const char *embedder, int dim,
                            entry **out, mg_error *err)
{
    entry *e = mg_xcalloc(1, sizeof *e);
    e->agent_id = agent_id;
    e->embedder = mg_xstrdup(embedder);
    e->path = index_path(store, agent_id, embedder);
    if (e->path) {
        buf b = BUF_INIT;
        buf_printf(&b, "%s.log", e->path);
        e->log_path = buf_take(&b);
    }
    mg_status st = MG_ERR_NOT_FOUND;
    if (e->path && !(st = mg_index_load(e->path, dim, &e->idx, NULL))) {
        mg_index_log_info li = {0};
        if (mg_index_log_attach(e->idx, e->log_path, &li, NULL) == MG_OK) {
            e->info.from_file = 1;
            e->info.replayed = li.replayed_adds + li.replayed_removes;
            e->unsaved = e->info.replayed;
        } else {
            /* A log that contradicts its file: rebuild rather than guess. */
            mg_index_free(e->idx);
            e->idx = NULL;
            st = MG_ERR_CORRUPT;
        }
    }
    if (st) {
        mg_index_params params = {.exact_below = cache_of(store)->exact_below};
        if ((st = mg_index_new(dim, &params, &e->idx, err))) goto fail;
        int64_t added = 0;
        if ((st = add_rows_after(store, e, INT64_MIN, &added, err))) goto fail;
        e->info.added = added;
        if (e->path && mg_index_save(e->idx, e->path, NULL) != MG_OK) {
            free(e->path);
            free(e->log_path);
            e->path = e->log_path = NULL;
        }
        attach_log(e, NULL);
    } else if ((st = reconcile(store, e, err))) {
        goto fail;
    } else {
        e->unsaved += e->info.added + e->info.removed;
    }
    e->info.persistent = e->path != NULL;
    *out = e;
    return MG_OK;
fail:
    entry_free(e);
    return st;
}

static entry *find_entry(cache *c, int64_t agent_id, const char *embedder)
{
    for (entry *e = c->head; e; e = e->next)
        if (e->agent_id == agent_id && strcmp(e->embedder, embedder) == 0) return e;
    return NULL;
}

mg_status archival_index_get(mg_store *store, int64_t agent_id, const char *embedder,
                             mg_index **out, archival_index_info *info, mg_error *err)
{
    *out = NULL;
    cache *c = cache_of(store);
    if (!c->swept) {
        c->swept = 1;
        archival_index_remove_orphans(store);
    }
    entry *e = find_entry(c, agent_id, embedder);
    if (e) {
        mg_status st = settle(store, e, err);
        if (!st && e->broken) {
            int64_t before = e->info.added + e->info.removed;
            st = reconcile(store, e, err);
            e->unsaved += e->info.added + e->info.removed - before;
            if (!st) e->broken = 0;
        }
        if (st) return st;
    } else {
        /* The dimension the stored passages have; none: nothing to index. */
        int64_t bytes;
        mg_status st = query_spec_int(store,
                                      "SELECT length(embedding) FROM passages WHERE "
                                      "agent_id = ?1 AND embedder = ?2 ORDER BY id LIMIT 1",
                                      agent_id, embedder, &bytes, err);
        if (st) return st;
        if (bytes == 0) return MG_OK;
        if (bytes % 4 || bytes / 4 > MG_INDEX_MAX_DIM)
            return mg_err_set(err, MG_ERR_CORRUPT,
                              "archival passages embedded by '%s' have embeddings of %lld bytes, "
                              "not a vector of floats",
                              embedder, (long long)bytes);
        if ((st = open_entry(store, agent_id, embedder, (int)(bytes / 4), &e, err))) return st;
        e->next = c->head;
        c->head = e;
    }
    if (info) *info = e->info;
    *out = e->idx;
    return MG_OK;
}

void archival_index_warm(mg_store *store, int64_t agent_id, const char *embedder)
{
    int64_t n;
    mg_index *idx;
    if (!store_query_int(store, "SELECT passage_count FROM agents WHERE id = ?", agent_id, 0, &n,
                         NULL) &&
        n >= archival_index_min(store))
        archival_index_get(store, agent_id, embedder, &idx, NULL, NULL);
}

void archival_index_added(mg_store *store, int64_t agent_id, const char *embedder, int64_t id,
                          const float *vec, int dim)
{
    cache *c = store->archival_indexes;
    entry *e = c ? find_entry(c, agent_id, embedder) : NULL;
    if (!e) return;
    if (dim != mg_index_dim(e->idx) ||
        (mg_index_contains(e->idx, id) && mg_index_remove(e->idx, id, NULL)) ||
        mg_index_add(e->idx, id, vec, NULL)) {
        e->broken = 1;
        return;
    }
    e->unsaved++;
    if (store->tx_depth > 0) {
        if (e->npending == e->cap) {
            e->cap = e->cap ? e->cap * 2 : 16;
            e->pending = mg_xrealloc(e->pending, (size_t)e->cap * sizeof *e->pending);
        }
        e->pending[e->npending++] = id;
    }
}

/* ------------------------------------------------------------------ saving */

static mg_status save_entry(entry *e, mg_error *err)
{
    if (!e->path) return MG_OK;
    mg_status st = mg_index_save(e->idx, e->path, err);
    if (!st) e->unsaved = 0;
    return st;
}

mg_status archival_index_save_all(mg_store *store, mg_error *err)
{
    cache *c = store->archival_indexes;
    mg_status st = MG_OK;
    for (entry *e = c ? c->head : NULL; e && !st; e = e->next)
        if (!(st = settle(store, e, err))) st = save_entry(e, err);
    return st;
}

/* mg_store_close: settle, then save or sync each index (see the top). */
static void cache_free(void *p)
{
    cache *c = p;
    while (c->head) {
        entry *e = c->head;
        c->head = e->next;
        if (e->path && !settle(c->store, e, NULL) && !e->broken && e->unsaved > 0) {
            int64_t line = mg_index_count(e->idx) / SAVE_FRACTION;
            if (e->unsaved >= (line > SAVE_MIN_RECORDS ? line : SAVE_MIN_RECORDS))
                save_entry(e, NULL);
            else
                mg_index_log_sync(e->idx, NULL);
        }
        entry_free(e);
    }
    free(c);
}
