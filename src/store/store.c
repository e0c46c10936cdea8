/*
 * store.c - opening, checking and migrating the database; transactions.
 *
 * Opening is careful because the file is the user's memory: before SQLite
 * touches an existing file we read its first 16 bytes, and anything that is
 * not "SQLite format 3" is refused. A SQLite file with someone else's tables
 * (application_id not ours and a non-empty schema) is refused too. Only a new
 * or empty file is initialised.
 */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/migrations.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

mg_status store_fail(mg_store *store, mg_error *err, const char *what)
{
    int rc = sqlite3_extended_errcode(store->db) & 0xFF;
    mg_status code = MG_ERR_DB;
    if (rc == SQLITE_FULL || rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR ||
        rc == SQLITE_PERM)
        code = MG_ERR_IO;
    else if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
        code = MG_ERR_CORRUPT;
    const char *hint = "";
    if (rc == SQLITE_FULL)
        hint = " (the disk is full)";
    else if (rc == SQLITE_READONLY)
        hint = " (the data directory is read-only)";
    return mg_err_set(err, code, "%s: %s%s", what, sqlite3_errmsg(store->db), hint);
}

mg_status store_exec(mg_store *store, const char *sql, mg_error *err)
{
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(store, err, "database");
    return MG_OK;
}

mg_status store_prepare(mg_store *store, const char *sql, sqlite3_stmt **out, mg_error *err)
{
    if (sqlite3_prepare_v2(store->db, sql, -1, out, NULL) != SQLITE_OK)
        return store_fail(store, err, "preparing a query");
    return MG_OK;
}

mg_status store_step_done(mg_store *store, sqlite3_stmt *stmt, mg_error *err)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return store_fail(store, err, "writing");
    return MG_OK;
}

void store_bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text)
        sqlite3_bind_text(stmt, index, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(stmt, index);
}

char *store_column_strdup(sqlite3_stmt *stmt, int column)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    if (!text) return NULL;
    return mg_xstrndup((const char *)text, (size_t)sqlite3_column_bytes(stmt, column));
}

mg_status store_query_int(mg_store *store, const char *sql, int64_t bind1, int64_t fallback,
                          int64_t *out, mg_error *err)
{
    sqlite3_stmt *stmt;
    if (store_prepare(store, sql, &stmt, err)) return err ? err->code : MG_ERR_DB;
    if (sqlite3_bind_parameter_count(stmt) >= 1) sqlite3_bind_int64(stmt, 1, bind1);
    int rc = sqlite3_step(stmt);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : fallback;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_fail(store, err, "reading");
    return MG_OK;
}

mg_status store_owns_all(mg_store *store, store_rows rows, int64_t agent_id, int *out,
                         mg_error *err)
{
    int64_t others;
    mg_status st = store_query_int(
        store,
        rows == STORE_MESSAGES ? "SELECT count(*) FROM agents WHERE id <> ? AND message_count > 0"
                               : "SELECT count(*) FROM agents WHERE id <> ? AND passage_count > 0",
        agent_id, 1, &others, err);
    *out = !st && others == 0;
    return st;
}

mg_status store_begin(mg_store *store, mg_error *err)
{
    char sql[32];
    if (store->tx_depth == 0)
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE");
    else
        snprintf(sql, sizeof sql, "SAVEPOINT sp%d", store->tx_depth);
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_fail(store, err, "starting a transaction");
    store->tx_depth++;
    return MG_OK;
}

mg_status store_commit(mg_store *store, mg_error *err)
{
    char sql[32];
    store->tx_depth--;
    if (store->tx_depth == 0)
        snprintf(sql, sizeof sql, "COMMIT");
    else
        snprintf(sql, sizeof sql, "RELEASE sp%d", store->tx_depth);
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        mg_status st = store_fail(store, err, "committing");
        store->tx_depth++;
        store_rollback(store);
        return st;
    }
    if (store->tx_depth == 0 && store->archival_indexes_settle)
        store->archival_indexes_settle(store->archival_indexes);
    return MG_OK;
}

void store_rollback(mg_store *store)
{
    char sql[64];
    store->tx_depth--;
    if (store->tx_depth == 0)
        snprintf(sql, sizeof sql, "ROLLBACK");
    else
        snprintf(sql, sizeof sql, "ROLLBACK TO sp%d; RELEASE sp%d", store->tx_depth,
                 store->tx_depth);
    sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    if (store->tx_depth == 0 && store->archival_indexes_settle)
        store->archival_indexes_settle(store->archival_indexes);
}

mg_status mg_store_set_cache_size(mg_store *store, int kib, mg_error *err)
{
    if (kib < 0 || kib > 1 << 20)
        return mg_err_set(err, MG_ERR_USAGE, "a page cache of %d KiB: it takes 0 to %d", kib,
                          1 << 20);
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", kib ? kib : 2000);
    return store_exec(store, sql, err);
}

mg_status store_read_begin(mg_store *store, int *own, mg_error *err)
{
    *own = store->tx_depth == 0;
    if (*own && sqlite3_exec(store->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        *own = 0;
        return store_fail(store, err, "starting to read");
    }
    return MG_OK;
}

void store_read_end(mg_store *store, int own)
{
    /* Nothing was written: a failed COMMIT (a statement still running)
     * must still end the transaction. */
    if (own && sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
}

char *mg_home_resolve(const char *explicit_home)
{
    if (explicit_home && *explicit_home) return mg_xstrdup(explicit_home);
    const char *env = getenv("MEMGPT_HOME");
    if (env && *env) return mg_xstrdup(env);
    buf b = BUF_INIT;
    env = getenv("XDG_DATA_HOME");
    if (env && *env) {
        buf_printf(&b, "%s/memgpt", env);
        return buf_take(&b);
    }
    env = getenv("HOME");
    if (!env || !*env) return NULL;
    buf_printf(&b, "%s/.local/share/memgpt", env);
    return buf_take(&b);
}

/* mkdir -p. */
static mg_status make_dirs(const char *path, mg_error *err)
{
    char *copy = mg_xstrdup(path);
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            mg_status st = mg_err_set(err, MG_ERR_IO, "cannot create data directory %s: %s", copy,
                                      strerror(errno));
            free(copy);
            return st;
        }
        *p = saved;
        if (!saved) break;
    }
    free(copy);
    return MG_OK;
}

static mg_status check_identity(mg_store *store, int64_t *version, mg_error *err)
{
    int64_t app_id, tables;
    /* The first read: SQLite refuses a file that is not a database here,
     * without writing to it. (The file is never opened any other way: a
     * process that closes any descriptor of it drops every POSIX lock
     * SQLite holds on it, in all of that process's connections, and the
     * server has many; see SQLite's "How To Corrupt" notes, section 2.2.) */
    mg_status st = store_query_int(store, "PRAGMA application_id", 0, 0, &app_id, err);
    if (st == MG_ERR_CORRUPT)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "%s is not a memgpt database (not SQLite); refusing to touch it",
                          store->path);
    if (!st) st = store_query_int(store, "PRAGMA user_version", 0, 0, version, err);
    if (!st) st = store_query_int(store, "SELECT count(*) FROM sqlite_master", 0, 0, &tables, err);
    if (st) return mg_err_wrap(err, "%s: ", store->path);
    if (app_id != MG_APPLICATION_ID && (tables > 0 || *version != 0))
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "%s is a SQLite database but not a memgpt one; refusing to touch it",
                          store->path);
    if (*version > mg_schema_version())
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "%s has schema version %lld, newer than this memgpt (%d); upgrade memgpt",
                          store->path, (long long)*version, mg_schema_version());
    return MG_OK;
}

static mg_status migrate(mg_store *store, int64_t from, mg_error *err)
{
    for (int v = (int)from + 1; v <= mg_schema_version(); v++) {
        char pragma[96];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d; PRAGMA application_id = %d;", v,
                 MG_APPLICATION_ID);
        mg_status st = store_begin(store, err);
        if (st) return st;
        if ((st = store_exec(store, mg_schema_migration(v), err)) ||
            (st = store_exec(store, pragma, err))) {
            store_rollback(store);
            return mg_err_wrap(err, "migrating the database to version %d: ", v);
        }
        if ((st = store_commit(store, err))) return st;
    }
    return MG_OK;
}

/* Waiting for another connection's write lock, for at most BUSY_WAIT_MS.
 * SQLite's own busy timeout sleeps in steps that grow to 100 ms: fine for
 * two processes, coarse for a server whose connections all commit small
 * transactions. Sleeps that grow from 50 us to 2 ms keep a wait close to
 * the time the lock is held: with 100 concurrent turns (bench_server.py,
 * two runs each) the p99 wait for a turn's first event fell from 359-452 ms
 * to 253-274 ms, and the rounds ran 25% faster. */
#define BUSY_WAIT_MS 5000

static int busy_wait(void *user, int attempt)
{
    mg_store *store = user;
    int64_t now = mg_now_ms();
    if (attempt == 0) store->busy_since = now;
    if (now - store->busy_since >= BUSY_WAIT_MS) return 0;
    long us = 50L << (attempt < 6 ? attempt : 6);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (us < 2000 ? us : 2000) * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

mg_status mg_store_open(const char *home, mg_store **out, mg_error *err)
{
    *out = NULL;
    if (!home || !*home) return mg_err_set(err, MG_ERR_USAGE, "no data directory given");
    mg_status st = make_dirs(home, err);
    if (st) return st;

    mg_store *store = mg_xcalloc(1, sizeof *store);
    store->home = mg_xstrdup(home);
    buf path = BUF_INIT;
    buf_printf(&path, "%s/memgpt.db", home);
    store->path = buf_take(&path);

    /* SQLite's own word for this is "unable to open database file". */
    if (access(home, W_OK) != 0) {
        st = mg_err_set(err, MG_ERR_IO, "the data directory %s is not writable: %s", home,
                        strerror(errno));
        goto fail;
    }
    if (sqlite3_open_v2(store->path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        st = mg_err_set(err, MG_ERR_IO, "cannot open %s: %s", store->path,
                        store->db ? sqlite3_errmsg(store->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_handler(store->db, busy_wait, store);
    sqlite3_extended_result_codes(store->db, 1);

    int64_t version = 0;
    if ((st = check_identity(store, &version, err))) goto fail;
    if ((st = store_exec(store, "PRAGMA journal_mode = WAL", err)) ||
        (st = store_exec(store, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", err))) {
        mg_err_wrap(err, "%s: ", store->path);
        goto fail;
    }
    if ((st = migrate(store, version, err))) goto fail;
    store_watch_open(store);
    *out = store;
    return MG_OK;
fail:
    mg_store_close(store);
    return st;
}

mg_status mg_store_version(mg_store *store, int64_t *version, mg_error *err)
{
    if (store_watch_version(store, version)) return MG_OK;
    /* Asked on every cached read of a server when the watch is off or a
     * commit is being published: prepared once. */
    if (!store->version_stmt) {
        mg_status st = store_prepare(store, "PRAGMA data_version", &store->version_stmt, err);
        if (st) return st;
    }
    int rc = sqlite3_step(store->version_stmt);
    /* data_version moves with other connections' commits, the change
     * count with this one's writes. Negative when the watch is on, so the
     * two kinds of version never meet. */
    if (rc == SQLITE_ROW) {
        *version = (sqlite3_column_int64(store->version_stmt, 0) << 40) +
                   (sqlite3_total_changes64(store->db) & ((INT64_C(1) << 40) - 1));
        if (store->wal_index) *version = -*version - 1;
    }
    sqlite3_reset(store->version_stmt);
    return rc == SQLITE_ROW ? MG_OK : store_fail(store, err, "reading the data version");
}

void mg_store_close(mg_store *store)
{
    if (!store) return;
    if (store->archival_indexes_free) store->archival_indexes_free(store->archival_indexes);
    if (store->spares_free) store->spares_free(store->spares);
    if (store->mcp_clients_free) store->mcp_clients_free(store->mcp_clients);
    sqlite3_finalize(store->version_stmt);
    store_watch_close(store);
    sqlite3_close_v2(store->db);
    free(store->home);
    free(store->path);
    free(store);
}
