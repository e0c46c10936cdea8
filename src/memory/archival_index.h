/*
 * archival_index.h - the vector index of each agent's archival passages, kept
 * beside the database and in agreement with it.
 *
 * SQLite's `passages` table is the source of truth; the index (index/index.h)
 * is a cache of its embeddings that archival search asks for the nearest
 * passages instead of scanning them all. There is one index per agent and
 * embedder spec (passages embedded by another spec are never compared), in
 * HOME/memgpt.db.index/agent-ID-CREATED-SPEC.mgx (CREATED: the agent's
 * created_at, its incarnation; SPEC: the first 16 hex digits of the SHA-256
 * of the spec) with its append log beside it (.mgx.log).
 *
 * Loaded lazily: only archival_index_get (a search of an agent with at least
 * archival_index_min passages, or the end of a bulk load) opens one, so
 * `memgpt send` without an archival search never reads it. Once loaded it
 * stays in the store until mg_store_close, which saves it (a full save when
 * the log has grown past a tenth of the index, otherwise an fdatasync of the
 * log). archival_index.c explains how the index is reconciled with the table
 * on every load and after other connections' commits, why nothing is
 * built inside a transaction, and when an index is opened there.
 *
 * The index hangs off the mg_store (store->archival_indexes), so it lives as
 * long as the connection it mirrors and there is no global state.
 */
#ifndef MG_MEMORY_ARCHIVAL_INDEX_H
#define MG_MEMORY_ARCHIVAL_INDEX_H

#include <stdint.h>

#include "index/index.h"
#include "memgpt.h"

/* Agents with fewer passages than this are searched by an exact scan of the
 * table and have no index. A process that searches once pays for loading
 * the index file about what the scan costs (~2-4 us a passage either way,
 * bench/README.md section 8), so the index only pays off over several
 * searches or a long-running process; below this size the scan takes under
 * ~40 ms, and small agents stay free of index files and of the index's
 * memory. The environment variable MEMGPT_ARCHIVAL_INDEX_MIN overrides it
 * for a store (0: always use the index), as does archival_index_set_min. */
#define ARCHIVAL_INDEX_MIN_DEFAULT 16384

/* Up to this many vectors an index answers by a scan (of its codes, then
 * the best few thousand vectors: "Codes" in index.c), above it by its HNSW
 * graph. The offline embedder's vectors make a poor graph for short
 * queries: at 100k passages the graph's recall@10 against the exact answer
 * was 0.26 at ef 276 and 0.74 at ef 4,000 (bench/README.md, section 8),
 * where clustered data gets 0.99 at ef 128. So indexes of the offline
 * embedder never build a graph (ARCHIVAL_INDEX_OFFLINE_EXACT_BELOW: a scan
 * at any size), and the others switch at this size. Stored in each index
 * file when it is built. Archival indexes are lazy (index.h): below 3/4 of
 * the threshold they hold no graph at all, so building and saving one costs
 * only the copy of the vectors. */
#define ARCHIVAL_INDEX_EXACT_BELOW         262144
#define ARCHIVAL_INDEX_OFFLINE_EXACT_BELOW INT32_MAX

/* Sets the exact_below of the indexes this store builds from now on, for
 * every embedder (-1: always the graph), for evaluations. */
void archival_index_set_exact_below(mg_store *store, int exact_below);

/* The passage count from which this store's searches use the index. */
int64_t archival_index_min(mg_store *store);
/* Sets it for this store (0: always; INT64_MAX: never). */
void archival_index_set_min(mg_store *store, int64_t min_passages);

/* How archival_index_get obtained the index the last time it opened it. */
typedef struct archival_index_info {
    int from_file;    /* 1: loaded from its file; 0: built from the table */
    int64_t replayed; /* log records applied after loading */
    int64_t added;    /* rows the reconcile (or the build) added from the table */
    int64_t removed;  /* ids the reconcile removed: the table no longer has them */
    int64_t rejected; /* log adds refused: the table no longer has that row and vector */
    int persistent;   /* 1 if the index has files; 0: kept in memory only */
} archival_index_info;

/* The index of the agent's passages embedded by `embedder`, loaded (or built
 * from the table) and reconciled on first use, and caught up with other
 * connections' commits on later ones; the store owns it, the caller must not
 * free it. *out is NULL when the caller must scan the table instead: the
 * agent has no such passage, their vectors are longer than MG_INDEX_MAX_DIM,
 * or inside a transaction the index may not agree with what the transaction
 * sees (it inserted passages), or has no file to open (then it is opened
 * or built when the transaction ends). info
 * (may be NULL) says how it was opened. MG_ERR_CORRUPT if a stored embedding
 * has the wrong size; database errors as usual. */
mg_status archival_index_get(mg_store *store, int64_t agent_id, const char *embedder,
                             mg_index **out, archival_index_info *info, mg_error *err);

/* Opens the agent's index from its file now, if the agent has enough
 * passages to be searched through it and the file exists; never builds one
 * (a build can take minutes, and the turn may not search at all). Outside a
 * transaction only. For a process about to run a turn, while it waits for
 * something else. Errors are left for a search to report. */
void archival_index_prefetch(mg_store *store, int64_t agent_id, const char *embedder);

/* Builds, loads or catches up the agent's index now if the agent has
 * enough passages to be searched through it: after a bulk load, so the
 * first search does not pay. Errors are left for that search to report. */
void archival_index_warm(mg_store *store, int64_t agent_id, const char *embedder);

/* Tells a loaded index about a passage just inserted (inside or outside a
 * transaction): the id waits until the outermost transaction ends and is
 * then added from the table if it was committed (vec and dim are not used).
 * Does nothing when the index is not loaded: its next load adds the rows
 * above its max id. Never fails the insert: an index that cannot take the
 * vector is reconciled again on its next use. */
void archival_index_added(mg_store *store, int64_t agent_id, const char *embedder, int64_t id,
                          const float *vec, int dim);

/* Drops the agent's loaded indexes and deletes all their files: after its
 * passages were re-embedded (the spec of some changed, and their vectors). */
void archival_index_forget(mg_store *store, int64_t agent_id);

/* Deletes the index files (and drops the loaded indexes) of agents that no
 * longer exist: after deleting an agent. */
void archival_index_remove_orphans(mg_store *store);

/* What archival_index_check found for one index. */
typedef struct archival_index_check_result {
    int has_file;       /* 0: no file (never searched, or kept in memory): nothing checked */
    int64_t vectors;    /* live vectors in the file and its log */
    int64_t replayed;   /* log records applied */
    int64_t rejected;   /* log adds refused: the table no longer has that row and vector */
    int64_t stale;      /* file ids the table no longer has (the reconcile removes them) */
    int64_t missing;    /* table rows the file lacks (the reconcile adds them) */
    int64_t mismatched; /* file vectors that differ from the table's: must be 0 */
    int64_t served_off; /* ids the reconciled index has wrong, extra or missing: must be 0 */
} archival_index_check_result;

/* Checks the agent's index of `embedder` passages against the table without
 * trusting it. The file, if there is one, must pass mg_index_load (every
 * byte) and its log must replay; every vector they hold must be the table's
 * vector of that id; and the index archival_index_get then hands out must
 * hold exactly the table's ids with the table's vectors. Outside a
 * transaction only. MG_ERR_CORRUPT (with the reason) when the file fails to
 * load or a count that must be 0 is not; database errors as usual. */
mg_status archival_index_check(mg_store *store, int64_t agent_id, const char *embedder,
                               archival_index_check_result *out, mg_error *err);

/* Files in the index folder that no agent will ever use: temporaries of
 * saves that died, files of agents deleted or re-created, files of no known
 * name. The orphan sweep (archival_index_remove_orphans) removes all but
 * the last kind. Temporaries of saves still running are not counted. */
int64_t archival_index_stray_files(mg_store *store);

/* Saves every loaded index now (full save), as mg_store_close would if the
 * logs were long. For tests and long-running callers. MG_ERR_USAGE inside a
 * transaction. */
mg_status archival_index_save_all(mg_store *store, mg_error *err);

#endif
