/*
 * store.h - the SQLite database behind a data directory.
 *
 * One file, HOME/memgpt.db, holds every agent. The store owns the connection
 * and the schema; the memory modules (core, recall, archival) and the agent
 * own their own SQL against it.
 *
 * Invariants enforced here:
 *  - WAL journal, foreign keys on, a 5 s busy timeout (two processes may share
 *    a home: a chat and a script).
 *  - PRAGMA application_id marks the file as ours and PRAGMA user_version is
 *    the schema version. A file that is not SQLite, or SQLite that is not
 *    ours, or ours but newer than this binary, is refused and never written.
 *  - Migrations run in one transaction each, in order, at open.
 */
#ifndef MG_STORE_STORE_H
#define MG_STORE_STORE_H

#include <sqlite3.h>

#include "memgpt.h"

struct mg_store {
    sqlite3 *db;
    char *home;
    char *path;
    int tx_depth; /* nesting of store_begin; 0 = no transaction */
    /* Vector indexes of archival memory loaded by this process
     * (memory/archival_index.c), freed through the hook by mg_store_close. */
    void *archival_indexes;
    void (*archival_indexes_free)(void *);
    /* Called when the outermost transaction ends (commit or rollback), to
     * bring those indexes up to date with what was committed. */
    void (*archival_indexes_settle)(void *);
    /* Most matches an archival text ranking takes; 0: the default
     * (archival_set_text_rank_cap, for tests). */
    int text_rank_cap;
    /* Providers and tokenizers that freed agents left for the next ones
     * (agent/agent.c, "spares"), freed through the hook by mg_store_close. */
    void *spares;
    void (*spares_free)(void *);
    /* Clients of MCP servers, started on first use (tools/tools.c), ended
     * through the hook by mg_store_close. */
    void *mcp_clients;
    void (*mcp_clients_free)(void *);
    sqlite3_stmt *version_stmt; /* mg_store_version's, prepared once */
    const void *wal_index;      /* SQLite's mapping of the wal-index, or NULL (watch.c) */
    int64_t busy_since;         /* when the current wait for a lock began (busy_wait) */
};

/* The watch (watch.c): SQLite's mapping of the wal-index, to read the
 * database's version with no lock. Open it once the connection is in WAL
 * mode and has read; close it before the connection. Off (NULL) when the
 * connection has no such mapping. */
void store_watch_open(mg_store *store);
void store_watch_close(mg_store *store);

/* 1 and the version, or 0 when the watch is off or a commit kept the
 * header changing (then ask SQLite). The version changes with every commit
 * by any connection; it is never negative. Reads only shared memory: safe
 * from any thread while the store is open. */
int store_watch_version(mg_store *store, int64_t *version);

/* Maps a SQLite failure to an mg_status (full disk and read-only files are
 * MG_ERR_IO, "not a database" is MG_ERR_CORRUPT) with "what: sqlite text". */
mg_status store_fail(mg_store *store, mg_error *err, const char *what);

/* Runs SQL with no results. */
mg_status store_exec(mg_store *store, const char *sql, mg_error *err);

/* Prepares one statement; the caller finalizes it. */
mg_status store_prepare(mg_store *store, const char *sql, sqlite3_stmt **out, mg_error *err);

/* Steps a statement that returns no rows (INSERT/UPDATE/DELETE) and resets it. */
mg_status store_step_done(mg_store *store, sqlite3_stmt *stmt, mg_error *err);

/* Transactions nest: the outermost is BEGIN IMMEDIATE (so a writer never
 * deadlocks on upgrading a read lock), inner ones are savepoints. Every
 * store_begin is matched by exactly one store_commit or store_rollback. */
mg_status store_begin(mg_store *store, mg_error *err);
mg_status store_commit(mg_store *store, mg_error *err);
void store_rollback(mg_store *store);

/* A read transaction around statements that only read: they see one
 * snapshot, and SQLite takes its lock, looks at the WAL and checks its page
 * cache once for all of them instead of once per statement (a search reads
 * a thousand rows by id). Outside store_begin's transactions only: inside
 * one, *own = 0 and nothing is done. It does not count in tx_depth, so
 * nothing between the two calls may write or call store_begin. Every call
 * that set *own = 1 is matched by one store_read_end(store, 1). */
mg_status store_read_begin(mg_store *store, int *own, mg_error *err);
void store_read_end(mg_store *store, int own);

/* Binds a C string or NULL as text. */
void store_bind_text(sqlite3_stmt *stmt, int index, const char *text);

/* A column as a fresh malloc'd string (NULL if the column is NULL). */
char *store_column_strdup(sqlite3_stmt *stmt, int column);

/* The single value of a one-row, one-column integer query; `fallback` if none. */
mg_status store_query_int(mg_store *store, const char *sql, int64_t bind1, int64_t fallback,
                          int64_t *out, mg_error *err);

/* Which rows of the store an agent owns, by the agents table's counts. */
typedef enum store_rows { STORE_MESSAGES, STORE_PASSAGES } store_rows;

/* *out = 1 if no other agent has rows of that kind: then an FTS index
 * holds only this agent's rows, and a search without dates needs nothing
 * from the table itself to filter its matches. */
mg_status store_owns_all(mg_store *store, store_rows rows, int64_t agent_id, int *out,
                         mg_error *err);

#endif
