/*
 * index.h - the vector index behind archival memory.
 *
 * An mg_index maps caller ids (int64, e.g. passage row ids) to float vectors
 * of one fixed dimension and answers "the k vectors with the highest dot
 * product with this query". For unit vectors that is cosine similarity; the
 * index does not normalize anything itself.
 *
 * Two search strategies live in one object:
 *  - exact: a SIMD scan of every live vector, used automatically while the
 *    index holds at most `exact_below` live vectors (and on request through
 *    mg_index_search_exact);
 *  - approximate: an HNSW graph (hierarchical navigable small world), which
 *    every add keeps up to date, so crossing the threshold costs nothing.
 *    With `lazy_graph` set, vectors are linked into the graph only as the
 *    index nears the threshold: an index that stays small never pays for a
 *    graph it does not search (see "Lazy graph" in index.c).
 *
 * Deletes are tombstones with periodic cleanup: mg_index_remove marks the
 * vector dead at once (it is never returned again, but keeps routing graph
 * searches), and once tombstones exceed `cleanup_ratio` of the stored
 * vectors the graph is repaired around all of them in one pass and their
 * slots are recycled. See hnsw.c for why.
 *
 * Persistence: mg_index_save writes the whole index atomically (temporary
 * file, fsync, rename, fsync of the directory). mg_index_open maps a file
 * and checks its header, size and small sections, and every link where it
 * is followed; mg_index_load also verifies every checksum and graph
 * invariant before it hands out an index. Either way a torn, truncated,
 * stale or foreign file is a clear error or a flagged index, never a crash. The file records the
 * highest id ever added (mg_index_max_id): a caller whose ids grow (SQLite row ids) re-adds the
 * rows above it after loading an older file. Between full saves an optional
 * append log (mg_index_log_attach) records every add and remove. File layouts
 * are described in index_file.c and index_log.c.
 *
 * Memory: vectors are stored once, in chunks of 4,096; graph links are
 * int32 slot numbers in fixed-size per-node blocks; nothing is allocated
 * per vector. With the default m = 16 at 384 dimensions the whole index is
 * 1.12-1.15x the raw vectors (measured at 100k and 1M).
 *
 * Checking against the source of truth after loading: compare
 * mg_index_count and mg_index_max_id with the table, re-add the rows above
 * max_id, and if the counts still differ, list mg_index_ids and remove the
 * ids the table no longer has.
 *
 * Threads: an mg_index is not thread-safe. Searches use scratch space inside
 * the index (visited marks, heaps), so even concurrent searches need the
 * caller's lock. Different indexes are independent: there is no global state,
 * and the level generator is a per-index seeded PRNG, so the same seed and
 * the same sequence of calls build the same graph.
 *
 * Errors follow the library pattern: an mg_status, with `err` (may be NULL)
 * filled with the code and one line of text.
 */
#ifndef MG_INDEX_INDEX_H
#define MG_INDEX_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "memgpt.h"

typedef struct mg_index mg_index;

/* Limits. Anything outside them is MG_ERR_USAGE (or MG_ERR_CORRUPT in a file). */
#define MG_INDEX_MAX_DIM   16384
#define MG_INDEX_MAX_M     64
#define MG_INDEX_MAX_EF    10000
#define MG_INDEX_MAX_K     10000
#define MG_INDEX_MAX_COUNT ((int64_t)1 << 30) /* stored vectors, live + deleted */

/* Construction parameters. A zero field means "the default" (in brackets),
 * so `mg_index_params p = {.seed = 7};` is a valid request. */
typedef struct mg_index_params {
    int m;                /* graph degree: m links per node on upper levels, 2m on
                             level 0 [16]; 2..MG_INDEX_MAX_M. Memory per vector
                             grows by ~8m bytes, recall and build time with m. */
    int ef_construction;  /* candidate list size while inserting [40]; 1..MAX_EF */
    int ef_search;        /* candidate list size of a search that passes ef <= 0
                             [64]; 1..MAX_EF */
    int exact_below;      /* search scans exactly while the index holds at most this
                             many live vectors [2048]; -1: always use the graph */
    double cleanup_ratio; /* repair the graph once tombstones reach this fraction of
                             stored vectors [0.1]; >= 1: only mg_index_cleanup does */
    int lazy_graph;       /* 1: link vectors into the graph only from 3/4 of
                             exact_below on, all of them before a search needs it
                             [0: every add links at once]; ignored when
                             exact_below is -1 */
    uint64_t seed;        /* seed of the level generator [0x6d67696e646578] */
} mg_index_params;

/* A snapshot of an index's size and state (mg_index_get_stats). */
typedef struct mg_index_stats {
    int dim;
    int64_t count;          /* live vectors: what searches can return */
    int64_t deleted;        /* tombstones awaiting cleanup */
    int64_t free_slots;     /* cleaned-up slots that the next adds reuse */
    int64_t memory_bytes;   /* every byte of heap the index owns, capacity included */
    int64_t vector_bytes;   /* count * dim * 4: the raw live vectors, for the ratio */
    int max_level;          /* top level of the graph, -1 when empty */
    int64_t unlinked;       /* stored vectors not yet linked into the graph (lazy_graph) */
    int has_max_id;         /* 1 once anything was added */
    int64_t max_id;         /* highest id ever added (removed ones included) */
    mg_index_params params; /* the effective parameters, defaults filled in */
} mg_index_stats;

/* What mg_index_log_attach found in the log. */
typedef struct mg_index_log_info {
    int64_t replayed_adds; /* records applied to the index */
    int64_t replayed_removes;
    int64_t torn_bytes;    /* bytes of an incomplete or damaged tail that was cut off */
    int reset;             /* 1 if the log was (re)started empty: it did not exist,
                              was empty or damaged, or belongs to another save */
    int64_t rejected_adds; /* adds the check of mg_index_log_attach_checked refused */
} mg_index_log_info;

/* Asked by mg_index_log_attach_checked about each add record in the log:
 * 1 to apply it, 0 to refuse it (e.g. the caller's data no longer has that
 * id with that vector). */
typedef int (*mg_index_log_check)(void *ctx, int64_t id, const float *vec, int dim);

/* Fills p with the defaults (the values in brackets above). */
void mg_index_params_default(mg_index_params *p);

/* Creates an empty index for vectors of `dim` floats (1..MG_INDEX_MAX_DIM).
 * params may be NULL (all defaults). MG_ERR_USAGE for a bad dimension or
 * parameter. The caller frees *out with mg_index_free. */
mg_status mg_index_new(int dim, const mg_index_params *params, mg_index **out, mg_error *err);

/* Frees the index and closes its log, if any. NULL is ignored. */
void mg_index_free(mg_index *idx);

/* Adds vec (dim floats, copied) under id. MG_ERR_EXISTS if id is live (remove
 * it first to replace it); MG_ERR_USAGE if vec has a NaN or infinity, or the
 * index is full (MG_INDEX_MAX_COUNT); MG_ERR_IO if the attached log cannot be
 * written, in which case the index is unchanged. A removed id may be added
 * again. Vectors should be unit length for scores to be cosines; all-zero
 * vectors are accepted (they score 0 against everything). */
mg_status mg_index_add(mg_index *idx, int64_t id, const float *vec, mg_error *err);

/* Removes id: it is never returned by a search again. MG_ERR_NOT_FOUND if it
 * is not live. May run a cleanup (see cleanup_ratio), which takes time
 * proportional to the index; MG_ERR_IO as for mg_index_add. */
mg_status mg_index_remove(mg_index *idx, int64_t id, mg_error *err);

/* 1 if id is live in the index, else 0. */
int mg_index_contains(const mg_index *idx, int64_t id);

/* Copies the vector stored under live id (dim floats) to out and returns 1;
 * returns 0 and leaves out alone if id is not live. For checking an index
 * against its source of truth. */
int mg_index_vector(const mg_index *idx, int64_t id, float *out);

/* Finds up to k (1..MG_INDEX_MAX_K) live vectors with the highest dot product
 * with query (dim floats, finite). ef is the graph search's candidate list
 * size (<= 0: params.ef_search; raised to k if smaller; at most
 * MG_INDEX_MAX_EF); it is ignored while the search is exact. Writes *found
 * (<= k) results best first to ids[] and scores[] (room for k each; scores
 * may be NULL). Equal scores order the larger id first. MG_ERR_USAGE for bad
 * arguments. */
mg_status mg_index_search(mg_index *idx, const float *query, int k, int ef, int64_t *ids,
                          float *scores, int *found, mg_error *err);

/* mg_index_search by a scan of every live vector, whatever the size: the
 * exact answer (up to float rounding ties). */
mg_status mg_index_search_exact(mg_index *idx, const float *query, int k, int64_t *ids,
                                float *scores, int *found, mg_error *err);

/* Repairs the graph around every tombstone now and recycles their slots.
 * Searches return the same ids before and after (modulo approximation). */
void mg_index_cleanup(mg_index *idx);

void mg_index_get_stats(const mg_index *idx, mg_index_stats *st);
int64_t mg_index_count(const mg_index *idx); /* live vectors */
size_t mg_index_memory(const mg_index *idx); /* = stats.memory_bytes */
int mg_index_dim(const mg_index *idx);
/* 1 once a search or change found a link or vector of an opened file out
 * of range (see mg_index_open): the file is damaged, rebuild the index. */
int mg_index_damaged(const mg_index *idx);
/* Copies up to cap live ids (in storage order, not sorted) to out and
 * returns how many ids are live (more than cap means out holds only the
 * first cap). For checking a loaded index against the source of truth:
 * remove the ids it no longer has, add the rows the index lacks. */
int64_t mg_index_ids(const mg_index *idx, int64_t *out, int64_t cap);
/* The highest id ever added, through *max_id; returns 0 (and leaves *max_id
 * alone) if nothing was ever added. After mg_index_load, the rows with larger
 * ids are the ones the file does not cover. */
int mg_index_max_id(const mg_index *idx, int64_t *max_id);
/* The highest id of a live vector, through *max_id; 0 if none is live. */
int mg_index_max_live_id(const mg_index *idx, int64_t *max_id);

/* Writes the index to path atomically: into a new temporary file next to it,
 * fsync, rename over path, fsync of the directory. On failure (MG_ERR_IO)
 * path is untouched and the temporary file is removed. If a log is attached,
 * it is restarted empty afterwards, since the file now holds everything. */
mg_status mg_index_save(mg_index *idx, const char *path, mg_error *err);

/* Opens an index written by mg_index_save, for use at once. The file is
 * mapped, not read: only its header and small per-slot sections (about 1% of
 * it) are read and checked, and searches bring in the vectors and links they
 * touch, so the cost of an open and a search does not grow with the file.
 * The big sections are not checksummed here; every link is checked where it
 * is followed, so a damaged file cannot make the index read out of bounds,
 * and damage found that way sets mg_index_damaged. Changes are private to
 * the process (copy-on-write) until the next mg_index_save. dim is the
 * dimension the caller expects. Errors, none of which modify the file:
 *  - MG_ERR_NOT_FOUND: no file at path (build a new index);
 *  - MG_ERR_CORRUPT: not an index file, another format version, truncated,
 *    checksum mismatch, or inconsistent contents (rebuild it);
 *  - MG_ERR_USAGE: a valid index of another dimension, or dim out of range
 *    (the embedder changed: rebuild it);
 *  - MG_ERR_IO: the file could not be read or mapped.
 * The file must not be changed in place while open (saves replace it by
 * rename, which is safe). The caller frees *out with mg_index_free. */
mg_status mg_index_open(const char *path, int dim, mg_index **out, mg_error *err);

/* mg_index_open, and then every byte checked before the index is handed
 * out: the checksums of all sections, every graph invariant, every value
 * finite. Reads the whole file. Same errors. */
mg_status mg_index_load(const char *path, int dim, mg_index **out, mg_error *err);

/* 1 if path names a temporary file of mg_index_save (INDEX.tmp-XXXXXX) that
 * no save is writing any more: left by a process that died mid-save, of no
 * use to anyone, safe to remove. A save holds a lock on its temporary until
 * it renames or removes it, so a live one is never called stale. 0 for a
 * live temporary and any other file. */
int mg_index_temp_is_stale(const char *path);

/* Attaches an append log at log_path: from now on every successful
 * mg_index_add and mg_index_remove appends one record to it (one write(2),
 * no fsync: see mg_index_log_sync), under flock(LOCK_EX) and at the end of
 * the file, so that several processes may append to one log (a record is
 * left out when the file holds no log header of this dimension, e.g. while
 * another process is replacing it). If the file already holds a log of the
 * save this index was loaded from, its records are replayed first (a torn
 * tail is cut off); any other file content is discarded and a new log
 * started. An index that was never saved or loaded always starts a new log.
 * info (may be NULL) says what happened. MG_ERR_CORRUPT if a record
 * contradicts the index (the index then holds the records before it and no
 * log is attached); MG_ERR_IO on file errors. */
mg_status mg_index_log_attach(mg_index *idx, const char *log_path, mg_index_log_info *info,
                              mg_error *err);

/* mg_index_log_attach, but every add record is first put to check(ctx, ...)
 * and replay tolerates repeats, as from several processes appending to one
 * log: a refused add is skipped and takes out a live vector of that id, an
 * add of a live id replaces it, a remove of an id that is not live is
 * skipped. check may be NULL (then exactly mg_index_log_attach). */
mg_status mg_index_log_attach_checked(mg_index *idx, const char *log_path, mg_index_log_check check,
                                      void *ctx, mg_index_log_info *info, mg_error *err);

/* Makes every record appended so far durable (fdatasync). MG_OK if no log is
 * attached. Call it where the caller commits its own data. */
mg_status mg_index_log_sync(mg_index *idx, mg_error *err);

#endif
