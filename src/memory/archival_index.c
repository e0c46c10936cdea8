/*
 * archival_index.c - keeping each agent's vector index in agreement with the
 * passages table, across inserts, rollbacks, crashes and re-embedding.
 *
 * The table is the truth and the index a cache that can always be rebuilt
 * from it, so every rule here errs towards checking against the table:
 *
 *  - Carefully inside a transaction. A transaction shows rows that may
 *    still roll back, and the agent loop runs each step in BEGIN IMMEDIATE,
 *    where a build would also hold the write lock for its whole duration.
 *    So inside one nothing is built or saved. An index is opened from its
 *    file (and reconciled) there only while the transaction has inserted no
 *    passage (tx_wrote): the table it is checked against then shows exactly
 *    what is committed, and the model's archival_memory_search in a `send`
 *    turn, a process that has not opened the index yet, gets it instead of
 *    a scan of the whole table. A loaded index is used as it is only if
 *    nothing can have changed under it (no insert of this transaction
 *    pending, no other connection's commit since its last reconcile, by
 *    PRAGMA data_version); otherwise archival_index_get says "none" and the
 *    search scans the table, which sees the transaction's own rows. An
 *    index a search wanted there is opened when the outermost transaction
 *    ends (store.c calls cache_settle).
 *
 *  - Opening. The file is mapped (mg_index_open checks its header, size and
 *    small sections; searches check each link they follow, and one that
 *    finds damage drops the index, to be rebuilt) and its log replayed (a torn tail is cut), each
 * add record checked against the table: the row must exist with that very embedding, or the record
 * is refused (the log is at most about a tenth of the index, so this costs a lookup per record). A
 * missing, corrupt, foreign or wrong-dimension file is never trusted: the index is rebuilt from the
 * table and saved. Embeddings longer than MG_INDEX_MAX_DIM (the embedder accepts up to
 * MG_EMBED_MAX_DIM) get no index: always scanned.
 *
 *  - Incarnations. A deleted agent's id can be reused by the next agent
 *    created, and so can its passages' row ids. The file name carries the
 *    agent's created_at, so a re-created agent never loads the old one's
 *    file; a process whose agent was re-created under it does not save at
 *    exit (checked in cache_free) and drops its copy at the next use; the
 *    orphan sweep deletes files of incarnations that no longer exist. (An
 *    agent deleted and re-created within the same millisecond would share
 *    the incarnation: not a human or script pace.)
 *
 *  - Reconcile, after every load and whenever another connection committed
 *    since the last one (data_version, looked at on each use and at the end
 *    of each transaction). Cheap check first: if the index holds as many
 *    live vectors as the agent has passages (agents.passage_count) and its
 *    largest live id (kept incrementally) is the agent's largest passage id,
 *    it holds them all. Otherwise the rows above its largest live id are
 *    added (inserts by other processes, a crash between the commit and the
 *    append, a torn log), and if the count still differs from the table's
 *    count for this embedder, the id lists are compared and the difference
 *    applied both ways.
 *
 *  - Inserts. archival_index_added only remembers the id (pending), inside
 *    a transaction or not. When the outermost transaction ends (or at once
 *    outside one), each pending id is looked up: a committed row is added
 *    with the embedding the table holds (replacing a live vector of that
 *    id), and only then logged; a rolled-back one is dropped. So nothing
 *    uncommitted ever reaches the index, its log or its file, and a process
 *    killed before COMMIT leaves nothing behind; the committed rows a crash
 *    loses before they are logged come back through the reconcile.
 *
 *  - Several processes on one home (a chat and a script) each load their
 *    own copy and append to the same log: appends go to the end of the file
 *    under flock, and a save renames and restarts the log under the same
 *    lock (index_log.c). Records of several processes may repeat each other;
 *    the checked replay takes them in order. A save truncates records of
 *    other processes it did not hold; the reconcile at the next load adds
 *    those rows back from the table.
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
    int64_t incarnation; /* agents.created_at of the agent this index is of */
    char *embedder;
    mg_index *idx;
    char *path, *log_path; /* NULL: kept in memory only */
    int64_t unsaved;       /* changes since the file was written (log records) */
    int64_t *pending;      /* ids inserted inside a transaction, not yet settled */
    int npending, cap;
    int broken;           /* an add failed: reconcile before the next use */
    int64_t live_max;     /* largest live id; INT64_MIN when empty */
    int64_t data_version; /* PRAGMA data_version when last reconciled */
    archival_index_info info;
    struct entry *next;
} entry;

typedef struct cache {
    mg_store *store;
    int64_t min_passages;
    int exact_below; /* of the indexes built from now on; 0: the defaults */
    int swept;       /* orphan files removed in this process */
    int tx_wrote;    /* the current transaction inserted passages (archival_index_added) */
    /* An index a search inside a transaction wanted but could not open
     * there: opened when the transaction ends. */
    int64_t want_agent;
    char *want_embedder;
    entry *head;
} cache;

static void cache_free(void *p);
static void cache_settle(void *p);

static cache *cache_of(mg_store *store)
{
    if (store->archival_indexes) return store->archival_indexes;
    cache *c = mg_xcalloc(1, sizeof *c);
    c->store = store;
    c->min_passages = ARCHIVAL_INDEX_MIN_DEFAULT;
    const char *env = getenv("MEMGPT_ARCHIVAL_INDEX_MIN");
    if (env && *env) {
        char *end;
        errno = 0;
        long long v = strtoll(env, &end, 10);
        if (!errno && !*end && v >= 0) c->min_passages = v;
    }
    store->archival_indexes = c;
    store->archival_indexes_free = cache_free;
    store->archival_indexes_settle = cache_settle;
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

static int exact_below_for(cache *c, const char *embedder)
{
    if (c->exact_below) return c->exact_below;
    return strcmp(embedder, "offline") == 0 ? ARCHIVAL_INDEX_OFFLINE_EXACT_BELOW
                                            : ARCHIVAL_INDEX_EXACT_BELOW;
}

/* ------------------------------------------------------------------ files */

static char *index_dir(mg_store *store)
{
    buf b = BUF_INIT;
    buf_printf(&b, "%s.index", store->path);
    return buf_take(&b);
}

/* HOME/memgpt.db.index/agent-ID-INCARNATION-SPEC.mgx; NULL if the folder
 * cannot be made. */
static char *index_path(mg_store *store, int64_t agent_id, int64_t incarnation,
                        const char *embedder)
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
    buf_printf(&b, "%s/agent-%lld-%lld-%.16s.mgx", dir, (long long)agent_id, (long long)incarnation,
               hex);
    free(dir);
    return buf_take(&b);
}

/* The incarnation of agent_id (its created_at), -1 if there is no such
 * agent. A deleted and re-created agent may get the same id, never (short
 * of the same millisecond) the same incarnation. */
static mg_status incarnation_of(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err)
{
    return store_query_int(store, "SELECT created_at FROM agents WHERE id = ?", agent_id, -1, out,
                           err);
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

typedef int (*doomed_fn)(mg_store *, int64_t agent_id, int64_t incarnation, void *ctx);

/* What the file `name` (at `path`) of the index folder is to become: 1 to
 * go (the temporary of a save that died, or a file of an agent `doomed`
 * picks; INT64_MIN as the incarnation for the layout without them), 0 to
 * stay, -1 when the name is none of ours. */
static int file_doomed(mg_store *store, const char *path, const char *name, doomed_fn doomed,
                       void *ctx)
{
    long long id, inc;
    int n = 0;
    if (strncmp(name, "agent-", 6) != 0) return -1;
    if (strstr(name, ".tmp-")) return mg_index_temp_is_stale(path);
    if (sscanf(name, "agent-%lld-%lld-%n", &id, &inc, &n) == 2 && n > 0)
        return doomed(store, id, inc, ctx);
    return sscanf(name, "agent-%lld-", &id) == 1 && doomed(store, id, INT64_MIN, ctx);
}

/* Goes through the index folder: unlinks (when `unlink_them`) the files
 * file_doomed picks, and returns how many it picked plus how many names
 * are none of ours (never unlinked: they are not ours to remove). */
static int64_t sweep(mg_store *store, doomed_fn doomed, void *ctx, int unlink_them)
{
    char *dir = index_dir(store);
    DIR *d = opendir(dir);
    int64_t found = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        buf p = BUF_INIT;
        buf_printf(&p, "%s/%s", dir, de->d_name);
        int doom = file_doomed(store, p.data, de->d_name, doomed, ctx);
        if (doom == 1 && unlink_them) unlink(p.data);
        found += doom != 0;
        buf_free(&p);
    }
    if (d) closedir(d);
    free(dir);
    return found;
}

/* Drops the loaded indexes `doomed` picks, without saving them. */
static void drop_entries(cache *c, doomed_fn doomed, void *ctx)
{
    for (entry **p = &c->head; *p;) {
        entry *e = *p;
        if (doomed(c->store, e->agent_id, e->incarnation, ctx)) {
            *p = e->next;
            entry_free(e);
        } else {
            p = &e->next;
        }
    }
}

static int is_agent(mg_store *store, int64_t id, int64_t incarnation, void *ctx)
{
    return id == *(const int64_t *)ctx;
}

/* Files of agents that no longer exist, of an earlier incarnation of an
 * agent id, or (INT64_MIN) of the layout without incarnations. */
static int is_orphan(mg_store *store, int64_t id, int64_t incarnation, void *ctx)
{
    int64_t now;
    if (incarnation_of(store, id, &now, NULL)) return 0; /* cannot tell: keep */
    return now != incarnation;
}

int64_t archival_index_stray_files(mg_store *store)
{
    return sweep(store, is_orphan, NULL, 0);
}

void archival_index_forget(mg_store *store, int64_t agent_id)
{
    if (store->archival_indexes) drop_entries(store->archival_indexes, is_agent, &agent_id);
    sweep(store, is_agent, &agent_id, 1);
}

void archival_index_remove_orphans(mg_store *store)
{
    if (store->archival_indexes) drop_entries(store->archival_indexes, is_orphan, NULL);
    sweep(store, is_orphan, NULL, 1);
}

/* ------------------------------------------------------------------ rows into the index */

/* Recomputes e->live_max after its vector was removed: one pass over the
 * ids, only when the largest one goes (rare: ids only grow). */
static void recompute_live_max(entry *e)
{
    if (!mg_index_max_live_id(e->idx, &e->live_max)) e->live_max = INT64_MIN;
}

static mg_status entry_remove(entry *e, int64_t id, mg_error *err)
{
    mg_status st = mg_index_remove(e->idx, id, err);
    if (!st && id == e->live_max) recompute_live_max(e);
    return st;
}

/* Adds one stored embedding; a live id is replaced (a reused row id). */
static mg_status add_blob(entry *e, int64_t id, const void *blob, int bytes, float *scratch,
                          mg_error *err)
{
    int dim = mg_index_dim(e->idx);
    if (!mg_vec_from_blob(blob, bytes, scratch, dim))
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "passage %lld has an embedding of %d bytes, but other passages "
                          "embedded by '%s' have %d dimensions",
                          (long long)id, bytes, e->embedder, dim);
    if (mg_index_contains(e->idx, id) && mg_index_remove(e->idx, id, err)) return MG_ERR_IO;
    mg_status st = mg_index_add(e->idx, id, scratch, err);
    if (!st && id > e->live_max) e->live_max = id;
    return st;
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

/* One row of this agent and embedder by id: ?3. */
#define SQL_ONE_ROW                                                                                \
    "SELECT embedding FROM passages WHERE agent_id = ?1 AND embedder = ?2 AND id = ?3"

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
        st = add_blob(e, id, sqlite3_column_blob(stmt, 1), sqlite3_column_bytes(stmt, 1), scratch,
                      err);
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
            st = add_blob(e, id, sqlite3_column_blob(one, 0), sqlite3_column_bytes(one, 0), scratch,
                          err);
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
    recompute_live_max(e);
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

/* The dimension of the agent's first passage of this embedder (*dim 0: it
 * has none), and that BLOB's size; a BLOB of neither stored format gives
 * *dim -1 (vec.h). */
static mg_status first_dim(mg_store *store, int64_t agent_id, const char *embedder, int64_t *dim,
                           int64_t *bytes, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = prepare_spec(store,
                                "SELECT embedding FROM passages WHERE agent_id = ?1 AND "
                                "embedder = ?2 ORDER BY id LIMIT 1",
                                agent_id, embedder, &stmt, err);
    if (st) return st;
    *dim = *bytes = 0;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *bytes = sqlite3_column_bytes(stmt, 0);
        *dim = mg_vec_blob_dim(sqlite3_column_blob(stmt, 0), (int)*bytes);
        if (*dim == 0 && *bytes > 0) *dim = -1;
    } else if (rc != SQLITE_DONE) {
        st = store_fail(store, err, "indexing archival memory");
    }
    sqlite3_finalize(stmt);
    return st;
}

/* PRAGMA data_version: changes when another connection commits. */
static mg_status data_version(mg_store *store, int64_t *out, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, "PRAGMA data_version", &stmt, err);
    if (st) return st;
    *out = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return MG_OK;
}

/* The reconcile described at the top of the file. Only outside a
 * transaction: inside, the table shows rows that may yet roll back. */
static mg_status reconcile(mg_store *store, entry *e, mg_error *err)
{
    int64_t n_agent, max_agent;
    mg_status st = store_query_int(store, "SELECT passage_count FROM agents WHERE id = ?",
                                   e->agent_id, 0, &n_agent, err);
    if (!st)
        st = store_query_int(store, "SELECT coalesce(max(id), 0) FROM passages WHERE agent_id = ?",
                             e->agent_id, 0, &max_agent, err);
    if (st) return st;
    int64_t n_live = mg_index_count(e->idx);
    if (n_live == n_agent && (n_live == 0 || e->live_max == max_agent)) return MG_OK;
    int64_t added = 0, n_spec;
    st = add_rows_after(store, e, e->live_max, &added, err);
    e->info.added += added;
    if (!st)
        st = query_spec_int(store,
                            "SELECT count(*) FROM passages WHERE agent_id = ?1 AND embedder = ?2",
                            e->agent_id, e->embedder, &n_spec, err);
    if (!st && mg_index_count(e->idx) != n_spec) st = full_diff(store, e, err);
    return st;
}

/* Brings the ids inserted inside transactions into the index as the table
 * now has them: the committed ones added (with the embedding the table
 * holds), the rolled-back ones left out. Only outside a transaction. */
static mg_status settle(mg_store *store, entry *e, mg_error *err)
{
    if (!e->npending || store->tx_depth > 0) return MG_OK;
    sqlite3_stmt *stmt;
    mg_status st = prepare_spec(store, SQL_ONE_ROW, e->agent_id, e->embedder, &stmt, err);
    if (st) return st;
    float *scratch = mg_xmalloc((size_t)mg_index_dim(e->idx) * sizeof *scratch);
    for (int i = 0; i < e->npending && !st; i++) {
        int64_t id = e->pending[i];
        sqlite3_bind_int64(stmt, 3, id);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            st = add_blob(e, id, sqlite3_column_blob(stmt, 0), sqlite3_column_bytes(stmt, 0),
                          scratch, err);
            if (!st) e->unsaved++;
        } else if (rc == SQLITE_DONE && mg_index_contains(e->idx, id)) {
            if (!(st = entry_remove(e, id, err))) e->unsaved++;
        } else if (rc != SQLITE_DONE) {
            st = store_fail(store, err, "indexing archival memory");
        }
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    free(scratch);
    if (st) e->broken = 1; /* the reconcile takes over the rest */
    e->npending = 0;
    return st;
}

/* ------------------------------------------------------------------ opening */

/* The check of each replayed log add: the table still has that row with
 * that very embedding. A record of a row that was rolled back after it was
 * logged, or of an id since reused, is refused. */
typedef struct log_check {
    sqlite3_stmt *stmt;
    float *scratch;
} log_check;

static int check_logged_add(void *ctx, int64_t id, const float *vec, int dim)
{
    log_check *lc = ctx;
    sqlite3_bind_int64(lc->stmt, 3, id);
    int same = sqlite3_step(lc->stmt) == SQLITE_ROW &&
               mg_vec_from_blob(sqlite3_column_blob(lc->stmt, 0), sqlite3_column_bytes(lc->stmt, 0),
                                lc->scratch, dim) &&
               memcmp(lc->scratch, vec, (size_t)dim * sizeof *vec) == 0;
    sqlite3_reset(lc->stmt);
    return same;
}

/* Loads the file and replays its log, checked against the table. */
static mg_status load_file(mg_store *store, entry *e, int dim)
{
    mg_status st = mg_index_open(e->path, dim, &e->idx, NULL);
    if (st) return st;
    log_check lc = {0};
    mg_index_log_info li = {0};
    st = prepare_spec(store, SQL_ONE_ROW, e->agent_id, e->embedder, &lc.stmt, NULL);
    if (!st) {
        lc.scratch = mg_xmalloc((size_t)dim * sizeof *lc.scratch);
        st = mg_index_log_attach_checked(e->idx, e->log_path, check_logged_add, &lc, &li, NULL);
        free(lc.scratch);
        sqlite3_finalize(lc.stmt);
    }
    if (st) {
        /* A log that contradicts its file: rebuild rather than guess. */
        mg_index_free(e->idx);
        e->idx = NULL;
        return MG_ERR_CORRUPT;
    }
    e->info.from_file = 1;
    e->info.replayed = li.replayed_adds + li.replayed_removes;
    e->info.rejected = li.rejected_adds;
    e->unsaved = e->info.replayed + e->info.rejected;
    return MG_OK;
}

/* Loads, or builds, the index of (agent, embedder) of vectors of `dim`.
 * Only outside a transaction. */
static mg_status open_entry(mg_store *store, int64_t agent_id, int64_t incarnation,
                            const char *embedder, int dim, int may_build, entry **out,
                            mg_error *err)
{
    *out = NULL;
    entry *e = mg_xcalloc(1, sizeof *e);
    e->agent_id = agent_id;
    e->incarnation = incarnation;
    e->embedder = mg_xstrdup(embedder);
    e->live_max = INT64_MIN;
    e->path = index_path(store, agent_id, incarnation, embedder);
    if (e->path) {
        buf b = BUF_INIT;
        buf_printf(&b, "%s.log", e->path);
        e->log_path = buf_take(&b);
    }
    /* Read before the table, so a commit made while we read it shows as a
     * change at the next use. */
    mg_status st = data_version(store, &e->data_version, err);
    if (st) goto fail;
    st = e->path ? load_file(store, e, dim) : MG_ERR_NOT_FOUND;
    if (st && !may_build) {
        entry_free(e); /* *out stays NULL: the caller scans */
        return MG_OK;
    }
    if (st) {
        /* Lazy: below the exact threshold the graph would only cost time. */
        mg_index_params params = {.exact_below = exact_below_for(cache_of(store), embedder),
                                  .lazy_graph = 1};
        if ((st = mg_index_new(dim, &params, &e->idx, err))) goto fail;
        int64_t added = 0;
        if ((st = add_rows_after(store, e, INT64_MIN, &added, err))) goto fail;
        e->info.added = added;
        if (e->path && (mg_index_save(e->idx, e->path, NULL) != MG_OK ||
                        mg_index_log_attach(e->idx, e->log_path, NULL, NULL) != MG_OK)) {
            free(e->path);
            free(e->log_path);
            e->path = e->log_path = NULL;
        }
    } else {
        recompute_live_max(e);
        if ((st = reconcile(store, e, err))) goto fail;
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

static void unlink_entry(cache *c, entry *gone)
{
    for (entry **p = &c->head; *p; p = &(*p)->next)
        if (*p == gone) {
            *p = gone->next;
            return;
        }
}

/* Outside a transaction: settles the pending ids, and when another
 * connection committed since the last look, reconciles with the table (or
 * drops the entry, *gone = 1, if its agent was deleted or re-created). */
static mg_status refresh(mg_store *store, entry *e, int *gone, mg_error *err)
{
    *gone = 0;
    mg_status st = settle(store, e, err);
    if (st && !e->broken) return st;
    int64_t dv;
    if ((st = data_version(store, &dv, err))) return st;
    if (dv == e->data_version && !e->broken) return MG_OK;
    int64_t inc;
    if ((st = incarnation_of(store, e->agent_id, &inc, err))) return st;
    if (inc != e->incarnation) {
        *gone = 1;
        return MG_OK;
    }
    int64_t before = e->info.added + e->info.removed;
    st = reconcile(store, e, err);
    e->unsaved += e->info.added + e->info.removed - before;
    if (!st) {
        e->broken = 0;
        e->data_version = dv;
    }
    return st;
}

/* Inside a transaction a loaded index is used as it is, if nothing could
 * have changed under it: no insert of this transaction is pending and no
 * other connection committed since its last reconcile. */
static int usable_in_tx(mg_store *store, entry *e)
{
    int64_t dv;
    return !e->npending && !e->broken && !data_version(store, &dv, NULL) && dv == e->data_version;
}

/* Notes the index a search inside a transaction could not open, to be
 * opened when the transaction ends (cache_settle). */
static void want(cache *c, int64_t agent_id, const char *embedder)
{
    c->want_agent = agent_id;
    free(c->want_embedder);
    c->want_embedder = mg_xstrdup(embedder);
}

/* archival_index_get, and with may_build 0 archival_index_prefetch: an
 * index that has no file is then left unopened (outside a transaction) or
 * wanted at its end (inside one). */
static mg_status get_index(mg_store *store, int64_t agent_id, const char *embedder, int may_build,
                           mg_index **out, archival_index_info *info, mg_error *err)
{
    *out = NULL;
    cache *c = cache_of(store);
    int in_tx = store->tx_depth > 0;
    if (!c->swept && !in_tx) {
        c->swept = 1;
        archival_index_remove_orphans(store);
    }
    entry *e = find_entry(c, agent_id, embedder);
    if (e && in_tx) {
        if (!usable_in_tx(store, e)) return MG_OK; /* the caller scans */
    } else if (e) {
        int gone;
        mg_status st = refresh(store, e, &gone, err);
        if (st) return st;
        if (gone) {
            unlink_entry(c, e);
            entry_free(e); /* its files are an orphan's: the sweep's */
            e = NULL;
        }
    }
    if (!e) {
        if (in_tx && c->tx_wrote) {
            /* This transaction inserted passages: the table shows rows that
             * may yet roll back, so nothing is opened against it now. The
             * caller scans; the index is opened when the transaction ends. */
            want(c, agent_id, embedder);
            return MG_OK;
        }
        /* The dimension the stored passages have; none: nothing to index. */
        int64_t dim, bytes, incarnation;
        mg_status st = first_dim(store, agent_id, embedder, &dim, &bytes, err);
        if (!st) st = incarnation_of(store, agent_id, &incarnation, err);
        if (st) return st;
        if (dim == 0 || incarnation == -1) return MG_OK;
        if (dim < 0)
            return mg_err_set(err, MG_ERR_CORRUPT,
                              "archival passages embedded by '%s' have embeddings of %lld bytes, "
                              "not a stored vector",
                              embedder, (long long)bytes);
        /* More dimensions than the index takes (the embedder allows up to
         * MG_EMBED_MAX_DIM): no index, the caller scans. */
        if (dim > MG_INDEX_MAX_DIM) return MG_OK;
        /* Inside a transaction only from the file: a build would hold the
         * write lock for as long as it takes. */
        if ((st = open_entry(store, agent_id, incarnation, embedder, (int)dim, may_build && !in_tx,
                             &e, err)))
            return st;
        if (!e) {
            if (in_tx) want(c, agent_id, embedder);
            return MG_OK;
        }
        e->next = c->head;
        c->head = e;
    }
    if (info) *info = e->info;
    *out = e->idx;
    return MG_OK;
}

mg_status archival_index_get(mg_store *store, int64_t agent_id, const char *embedder,
                             mg_index **out, archival_index_info *info, mg_error *err)
{
    return get_index(store, agent_id, embedder, 1, out, info, err);
}

/* Opens the agent's index now (building it if may_build) when the agent has
 * enough passages for searches to use it. Errors are left for a search. */
static void open_if_searched(mg_store *store, int64_t agent_id, const char *embedder, int may_build)
{
    int64_t n;
    mg_index *idx;
    if (!store_query_int(store, "SELECT passage_count FROM agents WHERE id = ?", agent_id, 0, &n,
                         NULL) &&
        n >= archival_index_min(store))
        get_index(store, agent_id, embedder, may_build, &idx, NULL, NULL);
}

void archival_index_prefetch(mg_store *store, int64_t agent_id, const char *embedder)
{
    if (store->tx_depth == 0) open_if_searched(store, agent_id, embedder, 0);
}

void archival_index_warm(mg_store *store, int64_t agent_id, const char *embedder)
{
    open_if_searched(store, agent_id, embedder, 1);
}

void archival_index_added(mg_store *store, int64_t agent_id, const char *embedder, int64_t id,
                          const float *vec, int dim)
{
    (void)vec;
    (void)dim;
    cache *c = cache_of(store);
    if (store->tx_depth > 0) c->tx_wrote = 1;
    entry *e = find_entry(c, agent_id, embedder);
    if (!e) return;
    if (e->npending == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->pending = mg_xrealloc(e->pending, (size_t)e->cap * sizeof *e->pending);
    }
    e->pending[e->npending++] = id;
    if (store->tx_depth == 0) settle(store, e, NULL);
}

/* store_commit / store_rollback of the outermost transaction. */
static void cache_settle(void *p)
{
    cache *c = p;
    if (c->store->tx_depth > 0) return;
    c->tx_wrote = 0;
    /* Settle, and catch up with other connections' commits now, so that the
     * next transaction (an agent step) can use the index as it is. */
    for (entry **link = &c->head; *link;) {
        entry *e = *link;
        int gone = 0;
        refresh(c->store, e, &gone, NULL);
        if (gone) {
            *link = e->next;
            entry_free(e);
        } else {
            link = &e->next;
        }
    }
    if (c->want_embedder) {
        char *embedder = c->want_embedder;
        c->want_embedder = NULL;
        mg_index *idx;
        archival_index_get(c->store, c->want_agent, embedder, &idx, NULL, NULL);
        free(embedder);
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
    if (store->tx_depth > 0)
        return mg_err_set(err, MG_ERR_USAGE, "archival indexes are not saved inside a transaction");
    for (entry *e = c ? c->head : NULL; e && !st; e = e->next) {
        int gone;
        if (!(st = refresh(store, e, &gone, err)) && !gone) st = save_entry(e, err);
    }
    return st;
}

/* mg_store_close: settle, then save or sync each index (see the top), unless
 * its agent was deleted or re-created meanwhile. */
static void cache_free(void *p)
{
    cache *c = p;
    mg_store *store = c->store;
    while (c->head) {
        entry *e = c->head;
        c->head = e->next;
        int64_t inc;
        if (e->path && store->tx_depth == 0 && !settle(store, e, NULL) && !e->broken &&
            e->unsaved > 0 && !incarnation_of(store, e->agent_id, &inc, NULL) &&
            inc == e->incarnation) {
            int64_t line = mg_index_count(e->idx) / SAVE_FRACTION;
            if (e->unsaved >= (line > SAVE_MIN_RECORDS ? line : SAVE_MIN_RECORDS))
                save_entry(e, NULL);
            else
                mg_index_log_sync(e->idx, NULL);
        }
        entry_free(e);
    }
    free(c->want_embedder);
    free(c);
}

/* ------------------------------------------------------------------ checking */

/* Compares every live vector of idx with the table: *stale counts ids the
 * table lacks, *mismatched those whose vector differs. */
static mg_status compare_with_table(mg_store *store, int64_t agent_id, const char *embedder,
                                    mg_index *idx, int64_t *stale, int64_t *mismatched,
                                    mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = prepare_spec(store, SQL_ONE_ROW, agent_id, embedder, &stmt, err);
    if (st) return st;
    int dim = mg_index_dim(idx);
    int64_t n;
    int64_t *ids = live_ids(idx, &n);
    float *have = mg_xmalloc((size_t)dim * 2 * sizeof *have), *want = have + dim;
    *stale = *mismatched = 0;
    for (int64_t i = 0; i < n; i++) {
        sqlite3_bind_int64(stmt, 3, ids[i]);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            mg_index_vector(idx, ids[i], have);
            if (!mg_vec_from_blob(sqlite3_column_blob(stmt, 0), sqlite3_column_bytes(stmt, 0), want,
                                  dim) ||
                memcmp(have, want, (size_t)dim * sizeof *have) != 0)
                ++*mismatched;
        } else if (rc == SQLITE_DONE) {
            ++*stale;
        } else {
            st = store_fail(store, err, "checking archival memory");
        }
        sqlite3_reset(stmt);
        if (st) break;
    }
    sqlite3_finalize(stmt);
    free(have);
    free(ids);
    return st;
}

mg_status archival_index_check(mg_store *store, int64_t agent_id, const char *embedder,
                               archival_index_check_result *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    if (store->tx_depth > 0)
        return mg_err_set(err, MG_ERR_USAGE,
                          "archival indexes are not checked inside a transaction");
    int64_t dim, bytes, incarnation, rows;
    mg_status st = first_dim(store, agent_id, embedder, &dim, &bytes, err);
    if (!st) st = incarnation_of(store, agent_id, &incarnation, err);
    if (!st)
        st = query_spec_int(store,
                            "SELECT count(*) FROM passages WHERE agent_id = ?1 AND embedder = ?2",
                            agent_id, embedder, &rows, err);
    if (st) return st;
    char *path = incarnation == -1 ? NULL : index_path(store, agent_id, incarnation, embedder);
    struct stat sb;
    if (!path || stat(path, &sb) != 0 || dim <= 0 || dim > MG_INDEX_MAX_DIM) {
        free(path);
        return MG_OK;
    }
    out->has_file = 1;

    /* The file and log as they are, every byte checked. */
    mg_index *idx = NULL;
    buf log_path = BUF_INIT;
    buf_printf(&log_path, "%s.log", path);
    mg_error load_err = {0};
    st = mg_index_load(path, (int)dim, &idx, &load_err);
    if (!st) {
        log_check lc = {.scratch = mg_xmalloc((size_t)dim * sizeof(float))};
        mg_index_log_info li = {0};
        st = prepare_spec(store, SQL_ONE_ROW, agent_id, embedder, &lc.stmt, err);
        if (!st)
            st = mg_index_log_attach_checked(idx, log_path.data, check_logged_add, &lc, &li,
                                             &load_err);
        sqlite3_finalize(lc.stmt);
        free(lc.scratch);
        out->replayed = li.replayed_adds + li.replayed_removes;
        out->rejected = li.rejected_adds;
    }
    if (!st) {
        out->vectors = mg_index_count(idx);
        st = compare_with_table(store, agent_id, embedder, idx, &out->stale, &out->mismatched, err);
        out->missing = rows - (out->vectors - out->stale);
    } else if (load_err.message[0]) {
        st = mg_err_set(err, MG_ERR_CORRUPT, "the index file %s: %s", path, load_err.message);
    }
    mg_index_free(idx);
    buf_free(&log_path);
    free(path);
    if (st) return st;

    /* The index searches use, after its reconcile. */
    mg_index *served;
    if ((st = archival_index_get(store, agent_id, embedder, &served, NULL, err))) return st;
    if (served) {
        int64_t stale, mismatched;
        st = compare_with_table(store, agent_id, embedder, served, &stale, &mismatched, err);
        if (st) return st;
        out->served_off = stale + mismatched + (rows - (mg_index_count(served) - stale));
    }
    if (out->mismatched || out->served_off)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "the index of agent %lld (%s) disagrees with the table: %lld vectors of "
                          "its file differ, %lld ids of the index in use are wrong or missing",
                          (long long)agent_id, embedder, (long long)out->mismatched,
                          (long long)out->served_off);
    return MG_OK;
}
