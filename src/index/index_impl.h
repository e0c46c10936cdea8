/*
 * index_impl.h - the inside of an mg_index, shared by index.c (storage and
 * the public calls), hnsw.c (the graph), index_file.c (save/load) and
 * index_log.c (the append log). Not for use outside src/index/ (tests may
 * read it to check invariants).
 *
 * Storage is "struct of arrays" over slots 0..n-1. A slot is LIVE (in the
 * graph, returned by searches), DEAD (a tombstone: in the graph, never
 * returned) or FREE (out of the graph, waiting for reuse). Vectors and
 * level-0 link blocks live in chunks of IDX_CHUNK_SLOTS slots that never
 * move once allocated (the first chunk grows in place up to that size while
 * it is the only one); the small per-slot arrays (ids, levels, states, ...)
 * are single allocations grown geometrically. Nothing is allocated per
 * vector.
 *
 * Graph links are stored as blocks of int32: [count, slot, slot, ...].
 * Level 0 has one block of 1 + m0 ints per slot in the link chunks; a slot of level
 * L >= 1 also owns L blocks of 1 + m ints in the shared `upper` pool,
 * starting at upper_off[slot] (level l is block l - 1). A slot keeps its
 * level for life, also across reuse (see index.c), so its blocks never move.
 *
 * The graph covers a prefix of the slots: [0, linked) are in it (the FREE
 * ones excepted), [linked, n) are stored but not yet linked (lazy_graph;
 * without it linked == n after every call). hnsw_link_pending moves the line.
 *
 * Invariants (checked by idx_check, which mg_index_load runs on every file;
 * mg_index_open checks the per-slot arrays and leaves the links to
 * idx_link_ok):
 *  - live + dead + n_free == n <= cap; the id map holds exactly the LIVE
 *    slots' ids; the free list holds exactly the FREE slots, sorted so the
 *    lowest slot is reused first;
 *  - a link at level l goes from a non-FREE slot to a different non-FREE
 *    slot below `linked` whose level is >= l, with no duplicates in a block,
 *    and a block's count is at most its capacity (m0 on level 0, m above);
 *    FREE slots and slots at or above `linked` have empty blocks;
 *  - every slot's code is the signs of its vector (idx_encode);
 *  - entry is -1 iff no slot below `linked` is LIVE or DEAD; otherwise it is
 *    such a slot, and its level is max_level, the highest level among them.
 */
#ifndef MG_INDEX_IMPL_H
#define MG_INDEX_IMPL_H

#include <stdint.h>

#include "index/index.h"

enum { SLOT_LIVE = 0, SLOT_DEAD = 1, SLOT_FREE = 2 };

#define IDX_MAX_LEVEL 30

/* Slots per storage chunk: 4,096 x 384 floats is 6 MB, three huge pages. */
#define IDX_CHUNK_SHIFT 12
#define IDX_CHUNK_SLOTS (1 << IDX_CHUNK_SHIFT)

/* A graph search candidate: a slot and its similarity to the query. */
typedef struct idx_cand {
    float sim;
    int32_t slot;
} idx_cand;

/* A binary heap of candidates; which order depends on the functions used. */
typedef struct idx_heap {
    idx_cand *a;
    int len, cap;
} idx_heap;

typedef float (*idx_dot_fn)(const float *a, const float *b, int dim);

struct mg_index {
    int dim;
    mg_index_params p; /* effective: defaults filled in */
    int m0;            /* level-0 capacity: 2 * p.m */
    int link0_len;     /* ints per level-0 block: 1 + m0 */
    int upper_len;     /* ints per upper block: 1 + p.m */
    idx_dot_fn dot;    /* the fastest kernel this CPU runs (index.c) */

    /* Slots [0, n); the chunks hold cap slots, the per-slot arrays meta_cap. */
    int32_t n, cap, meta_cap;
    float **vec_chunks;    /* n_chunks chunks of IDX_CHUNK_SLOTS * dim floats */
    int32_t **link_chunks; /* n_chunks chunks of IDX_CHUNK_SLOTS level-0 blocks */
    int32_t n_chunks, chunk_table_cap;
    /* An index opened from a file (mg_index_open) starts out as views into
     * a private mapping of it (index_file.c): the chunks with chunk_mapped[c]
     * set, and ids/levels/state/codes (meta_mapped) and upper (upper_mapped)
     * until they first grow. Writes to the mapping are copy-on-write, never
     * seen by the file, except that a chunk whose vectors change is copied
     * out first (so reading a mapped chunk's vectors from map_fd gives what
     * the mapping holds). Mapped memory is never freed, only unmapped whole. */
    void *map;
    size_t map_len;
    int map_fd;            /* the mapped file, open for pread; -1 */
    int map_searched;      /* a scan has re-scored vectors since the file was mapped */
    uint8_t *chunk_mapped; /* chunk_table_cap flags; NULL if nothing was mapped */
    int meta_mapped, upper_mapped;
    size_t chunk_bytes;  /* allocated for chunks, alignment padding included */
    int64_t *ids;        /* meta_cap */
    uint8_t *levels;     /* meta_cap */
    uint8_t *state;      /* meta_cap: SLOT_* */
    uint32_t *upper_off; /* meta_cap: first upper block of a slot with level >= 1 */
    uint16_t *visited;   /* meta_cap: == epoch means "seen by the current search" */
    uint8_t *codes;      /* meta_cap x code_len: the signs of each vector, bit d = v[d] > 0 */
    int code_len;        /* bytes of a code: (dim + 7) / 8 */
    uint16_t epoch;

    int32_t *upper; /* upper-level blocks, upper_used of upper_cap ints */
    size_t upper_used, upper_cap;

    /* id -> slot of the LIVE slots: open addressing, linear probing. */
    int64_t *map_keys;
    int32_t *map_vals; /* -1 = empty bucket */
    size_t map_cap, map_count;
    int map_stale; /* built from ids/state at its first use: an opened file's
                    * searches never need it (idx_rebuild_derived) */

    /* FREE slots, sorted descending so the lowest is popped first. */
    int32_t *free_list;
    int32_t n_free, free_cap;

    int32_t live, dead;
    int32_t linked; /* slots [0, linked) are in the graph; see above */
    int damaged;    /* a link or vector failed its check where it was read */
    int32_t entry;
    int max_level;
    int has_max_id;
    int64_t max_id;
    uint64_t rng;        /* level generator state */
    uint64_t generation; /* of the last save or load; 0 = never; pairs a log with a file */

    /* Scratch for searches and inserts. */
    idx_heap cands, results;
    idx_cand *work; /* candidate lists: sorted results, neighbour shrinking */
    int work_cap;
    idx_cand *seeds; /* where the search of the next level down starts */
    int seeds_len, seeds_cap;

    /* Append log (index_log.c); fd -1 when none. */
    int log_fd;
    int64_t log_size; /* bytes of valid log: where the next record goes */
};

/* ---- index.c */

/* Makes room for at least `want` slots (aborts on OOM). */
void idx_reserve(mg_index *x, int32_t want);
static inline int idx_chunk_mapped(const mg_index *x, int32_t c)
{
    return x->chunk_mapped && x->chunk_mapped[c];
}
/* Slot s's code (see "Codes" in index.c). */
static inline uint8_t *idx_code(const mg_index *x, int32_t s)
{
    return x->codes + (size_t)s * (size_t)x->code_len;
}
/* Slot s's vector. */
static inline float *idx_vec(const mg_index *x, int32_t s)
{
    return x->vec_chunks[s >> IDX_CHUNK_SHIFT] +
           (size_t)(s & (IDX_CHUNK_SLOTS - 1)) * (size_t)x->dim;
}
/* The link block of slot s at level l (l <= levels[s]). */
static inline int32_t *idx_links(const mg_index *x, int32_t s, int l)
{
    if (l == 0)
        return x->link_chunks[s >> IDX_CHUNK_SHIFT] +
               (size_t)(s & (IDX_CHUNK_SLOTS - 1)) * (size_t)x->link0_len;
    return x->upper + x->upper_off[s] + (size_t)(l - 1) * (size_t)x->upper_len;
}
/*
 * Whether the link to t may be followed on level l. A mapped file's links
 * are not read when it is opened (index_file.c), so every link is checked
 * where it is followed, and so is a block's count (idx_block_len): a damaged
 * file can make a search worse, never make it read out of bounds. A link
 * that fails marks the index damaged, so its owner can rebuild it.
 */
static inline int idx_link_ok(mg_index *x, int32_t t, int l)
{
    if ((uint32_t)t < (uint32_t)x->linked && x->state[t] != SLOT_FREE && x->levels[t] >= l)
        return 1;
    x->damaged = 1;
    return 0;
}
/* The number of links in block b of level l; 0 (and damaged) if out of range. */
static inline int idx_block_len(mg_index *x, const int32_t *b, int l)
{
    uint32_t cap = (uint32_t)(l ? x->p.m : x->m0);
    if ((uint32_t)b[0] <= cap) return b[0];
    x->damaged = 1;
    return 0;
}
/* Id map. */
int32_t idx_map_get(const mg_index *x, int64_t id); /* -1 if absent */
void idx_map_put(mg_index *x, int64_t id, int32_t slot);
void idx_map_del(mg_index *x, int64_t id);
/* Resolves defaults and checks ranges. */
mg_status idx_params_resolve(const mg_index_params *in, mg_index_params *out, mg_error *err);
/* Allocates an empty index with resolved params (no validation). */
mg_index *idx_alloc(int dim, const mg_index_params *p);
/* Appends upper blocks for `levels` levels and returns their offset. */
uint32_t idx_upper_alloc(mg_index *x, int levels);
/* The add/remove logic without logging (used by log replay too). */
mg_status idx_add(mg_index *x, int64_t id, const float *vec, mg_error *err);
mg_status idx_remove(mg_index *x, int64_t id, mg_error *err);
/* Checks every invariant listed above; MG_ERR_CORRUPT with the first
 * violation. O(n * (m0 + dim)). */
mg_status idx_check(const mg_index *x, mg_error *err);
/* Rebuilds the free list and counts from ids/state (after a load), and
 * marks the map stale. */
mg_status idx_rebuild_derived(mg_index *x, mg_error *err);
/* 1 if every float is finite. */
int idx_all_finite(const float *v, size_t n);
/* Sets code, code_len bytes, to the signs of vec. */
void idx_encode(const mg_index *x, const float *vec, uint8_t *code);

/* ---- hnsw.c */

/* Draws a level for a new slot from the index's PRNG. */
int hnsw_random_level(mg_index *x);
/* Links slot s (vector, level and empty blocks already set) into the graph. */
void hnsw_insert(mg_index *x, int32_t s);
/* Links up to `budget` slots from `linked` on into the graph (FREE ones are
 * passed over) and moves `linked` past them. */
void hnsw_link_pending(mg_index *x, int32_t budget);
/* Approximate search: fills x->work[0..return) with LIVE slots, best first,
 * at most ef of them. */
int hnsw_search(mg_index *x, const float *q, int ef);
/* Repairs the graph around every DEAD slot and turns them FREE. */
void hnsw_cleanup(mg_index *x);
/* Level-0 slots reachable from the entry point (tests, diagnostics). */
int64_t hnsw_reachable(mg_index *x);
/* Ensures x->work holds at least n candidates. */
void hnsw_work_reserve(mg_index *x, int n);

/* ---- index_log.c */

/* Appends one record if a log is attached: vec != NULL for an add, NULL for
 * a remove. MG_ERR_IO on failure, with the log cut back to its last record. */
mg_status idx_log_append(mg_index *x, int64_t id, const float *vec, mg_error *err);
/* After a save with a new generation: restart the attached log empty. */
mg_status idx_log_restart(mg_index *x, mg_error *err);

/* ---- files (index_file.c, index_log.c): little-endian integers */

static inline void idx_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void idx_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t idx_get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t idx_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- index_file.c */

/* A fresh, practically unique generation number for a save. */
uint64_t idx_new_generation(const mg_index *x);

#endif
