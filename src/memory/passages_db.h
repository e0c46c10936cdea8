/*
 * passages_db.h - the SQL of bulk loading and re-embedding archival passages.
 *
 * archival.c owns search and the single insert (archival_insert, which
 * stores through passages_db_insert too); this file owns every insert and
 * what loading needs on top (schema migration 4): the columns `source` (the file a
 * passage came from), `position` (byte offset of its text in that file, or
 * of its line for JSON Lines; in pdftotext's output for PDFs) and
 * `content_hash` (loader_content_hash of its text), indexed per agent so a
 * load can skip what is already stored. Passages stored before migration 4,
 * or by the agent itself, get their hash lazily (passages_db_backfill).
 *
 * None of these functions begins or ends a transaction: the caller batches.
 */
#ifndef MG_MEMORY_PASSAGES_DB_H
#define MG_MEMORY_PASSAGES_DB_H

#include <sqlite3.h>

#include "memgpt.h"

/* Statements prepared once for a whole load. */
typedef struct passages_db {
    mg_store *store;
    int64_t agent_id;
    sqlite3_stmt *exists; /* prepared on first use */
    sqlite3_stmt *insert;
    sqlite3_stmt *fts;
} passages_db;

mg_status passages_db_open(passages_db *db, mg_store *store, int64_t agent_id, mg_error *err);
void passages_db_close(passages_db *db);

/* *found = 1 if the agent has a passage with this content hash. */
mg_status passages_db_has_hash(passages_db *db, const char *hash, int *found, mg_error *err);

typedef struct passage_new {
    const char *text;
    const char *tags_json; /* NULL: [] */
    int64_t time_ms;       /* 0: now */
    const char *source;    /* NULL: none */
    int64_t position;      /* < 0: none */
    const char *hash;      /* 64 hex digits; NULL: none yet (see backfill) */
    const char *embedder;
    const float *vec;
    int dim;
    const char *uuid; /* its public id's UUID; NULL: a new one */
} passage_new;

/* Stores the passage and its full-text row, and tells the agent's vector
 * index (if loaded). The only way rows enter passages (migration 6: no insert
 * triggers). The caller adds to agents.passage_count with
 * passages_db_count_added in the same transaction, and rolls the whole
 * transaction back if this fails (no savepoint of its own: see
 * passages_db.c). */
mg_status passages_db_insert(passages_db *db, const passage_new *p, mg_error *err);

/* agents.passage_count += n, for rows passages_db_insert stored. */
mg_status passages_db_count_added(mg_store *store, int64_t agent_id, int64_t n, mg_error *err);

/* Gives every passage of the agent without a content hash its hash, in
 * transactions of a few hundred. *count (may be NULL) gets how many. */
mg_status passages_db_backfill(mg_store *store, int64_t agent_id, int64_t *count, mg_error *err);

/* Passages of the agent embedded by another embedder than `embedder`
 * (*stale), and by this one (*current). */
mg_status passages_db_count_embedders(mg_store *store, int64_t agent_id, const char *embedder,
                                      int64_t *stale, int64_t *current, mg_error *err);

typedef struct passage_text {
    int64_t id;
    char *text;
} passage_text;

/* Up to `limit` passages with id > after_id not embedded by `embedder`, in
 * id order. *out (caller frees with passage_texts_free) holds *n of them. */
mg_status passages_db_stale(mg_store *store, int64_t agent_id, const char *embedder,
                            int64_t after_id, int limit, passage_text **out, int *n, mg_error *err);
void passage_texts_free(passage_text *items, int n);

/* Replaces one passage's embedding and the embedder recorded with it. */
mg_status passages_db_set_embedding(mg_store *store, int64_t id, const char *embedder,
                                    const float *vec, int dim, mg_error *err);

#endif
