/*
 * index.c - storage, the id map, exact search and the public calls of the
 * vector index. The graph itself is in hnsw.c, files in index_file.c and
 * index_log.c; index_impl.h describes the layout and its invariants.
 *
 * Storage. Archival memory for a big agent is ~10^6 vectors of 384 floats,
 * 1.5 GB, and the budget for everything else is 30% of that. So each vector
 * is stored once, in chunks of 4,096 (slot s in chunk s >> 12), and all
 * per-slot data lives in fixed-size records: 2m + 1 int32 of level-0 links
 * (in chunks like the vectors), an int64 id, a level and state byte, an
 * upper-block offset and a 16-bit visited mark; ~150 bytes a slot at
 * m = 16. Links are 32-bit slot numbers, not pointers or 64-bit ids. Chunks
 * never move, so they can sit on huge pages (chunk_alloc), and spare
 * capacity is at most one chunk; the small per-slot arrays grow by 1/16.
 * `memory_bytes` in the stats counts capacity, not length, so the figure
 * is honest.
 *
 * Reusing slots. A deleted vector's slot becomes FREE at cleanup and the next
 * add takes the lowest free slot. The new vector inherits the slot's graph
 * level instead of drawing one: levels are independent of the vectors, so
 * the level distribution over live vectors is unchanged, and the slot's
 * upper-level blocks can be reused in place, so the upper pool never
 * fragments.
 *
 * Exact search is a scan of the vectors with the dot kernel below and
 * mg_topk (embed/vec.h) keeping the best k. It is what searches do while the
 * index is small (`exact_below`, 2,048 by default): measured at 384
 * dimensions, a scan of 1,000 vectors costs what a graph search does
 * (~30 us), of 2,000 ~90 us against ~40 us; tens of microseconds are
 * nothing next to the rest of an archival search, and the scan is never
 * wrong.
 *
 * Codes. A scan of full vectors reads all of them: 150 MB at 100k vectors of
 * 384 floats, for every search of a process that has just mapped its file
 * (index_file.c). So each vector also has a code of one bit a dimension, its
 * signs (48 bytes at 384), and a large scan (CODE_SCAN_MIN) scores the codes
 * first, then re-scores the best few thousand (at least a fiftieth of the
 * index) with their full vectors and keeps the top k of those: a
 * thirty-second of the bytes, plus a few MB of vectors. The query stays in
 * floats (its dot product with the signs, one table lookup a code byte),
 * which ranks far better than comparing signs with signs. Measured on 100k
 * passages of the offline embedder (bench/README.md section 14): recall@10
 * against the exact scan 0.92 when re-scoring 1,600, 0.956 at 3,200, 0.98 at
 * 6,400; two bits a dimension (zero, plus, minus) did better for the same
 * re-scoring (0.981 at 3,200) but doubles the bytes every search reads, and
 * 3,200 full vectors are cheap to re-score. In a process's first scan they
 * are read from the file (rerank_vec says why), half of them by a second
 * thread.
 *
 * Lazy graph. An index that answers by exact scan never reads its graph,
 * yet building it is most of the cost of adding a vector (an insert is a
 * graph search plus linking; measured, half the CPU of loading 100 MB of
 * documents into an archival index that stayed under its threshold). With
 * lazy_graph, adds only store vectors until the index holds 3/4 of
 * exact_below live ones; from there each add also links up to
 * LAZY_CATCH_UP stored vectors, oldest slot first, so the backlog is gone
 * well before the threshold (it shrinks by LAZY_CATCH_UP - 1 per add, from
 * at most 3/4 of exact_below). An index that crosses the threshold another
 * way (a load of an older file, a search right after a reload with other
 * parameters) links the whole backlog before its first graph search. A
 * slot reused below the line is linked at once: the graph must cover its
 * prefix.
 *
 * The dot kernel. mg_vec_dot is portable C with eight lanes that GCC
 * vectorizes to SSE at -O2: one multiply and one add a lane, four lanes an
 * instruction. On CPUs with AVX2 and FMA (checked at run time with
 * __builtin_cpu_supports, so the library still runs anywhere) the index uses
 * its own kernel: eight-lane fused multiply-adds into four independent
 * accumulators, so the loop is bound by loads rather than by the latency of
 * one accumulator chain. It rounds differently in the last bits from
 * mg_vec_dot (fused multiply-add, another summation order); that changes the
 * order of near-ties only. bench/bench_index.c measures both.
 */
#include "index/index_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "embed/vec.h"
#include "util/buf.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define IDX_HAVE_AVX2 1
#endif

/* ------------------------------------------------------------------ dot kernel */

#ifdef IDX_HAVE_AVX2
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < dim; i++)
        r += a[i] * b[i];
    return r;
}
#endif

static idx_dot_fn pick_dot(void)
{
#ifdef IDX_HAVE_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_avx2;
#endif
    return mg_vec_dot;
}

int idx_all_finite(const float *v, size_t n)
{
    /* isfinite per element would stop vectorization; a NaN or infinity makes
     * x - x a NaN, which survives the sum and fails x == x at the end. */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += v[i] - v[i];
    return acc == acc;
}

/* ------------------------------------------------------------------ params */

#define DEFAULT_M           16
#define DEFAULT_EF_BUILD    40
#define DEFAULT_EF_SEARCH   64
#define DEFAULT_EXACT_BELOW 2048
#define DEFAULT_CLEANUP     0.1
#define DEFAULT_SEED        0x6d67696e646578ULL

/* Stored vectors linked per add while a lazy index catches up (see above). */
#define LAZY_CATCH_UP 8

/* Codes: scans of at least CODE_SCAN_MIN live vectors go through the codes,
 * and re-score the best max(RERANK_MIN, RERANK_PER_RESULT * k, live /
 * RERANK_SHARE) of them. A fixed number loses recall as the index grows:
 * recall@10 at a million vectors was 0.84 re-scoring 3,200, 0.90 at 6,400,
 * 0.935 at 12,800, 0.961 at 20,000 (bench/README.md, section 14). */
#define CODE_SCAN_MIN     8192
#define RERANK_MIN        3200
#define RERANK_PER_RESULT 8
#define RERANK_SHARE      50

void mg_index_params_default(mg_index_params *p)
{
    memset(p, 0, sizeof(*p));
    p->m = DEFAULT_M;
    p->ef_construction = DEFAULT_EF_BUILD;
    p->ef_search = DEFAULT_EF_SEARCH;
    p->exact_below = DEFAULT_EXACT_BELOW;
    p->cleanup_ratio = DEFAULT_CLEANUP;
    p->seed = DEFAULT_SEED;
}

mg_status idx_params_resolve(const mg_index_params *in, mg_index_params *out, mg_error *err)
{
    mg_index_params p;
    mg_index_params_default(&p);
    if (in) {
        if (in->m) p.m = in->m;
        if (in->ef_construction) p.ef_construction = in->ef_construction;
        if (in->ef_search) p.ef_search = in->ef_search;
        if (in->exact_below) p.exact_below = in->exact_below;
        if (in->cleanup_ratio != 0.0) p.cleanup_ratio = in->cleanup_ratio;
        if (in->seed) p.seed = in->seed;
        if (in->lazy_graph) p.lazy_graph = in->lazy_graph;
    }
    if (p.m < 2 || p.m > MG_INDEX_MAX_M)
        return mg_err_set(err, MG_ERR_USAGE, "index parameter m = %d is outside 2..%d", p.m,
                          MG_INDEX_MAX_M);
    if (p.ef_construction < 1 || p.ef_construction > MG_INDEX_MAX_EF)
        return mg_err_set(err, MG_ERR_USAGE,
                          "index parameter ef_construction = %d is outside 1..%d",
                          p.ef_construction, MG_INDEX_MAX_EF);
    if (p.ef_search < 1 || p.ef_search > MG_INDEX_MAX_EF)
        return mg_err_set(err, MG_ERR_USAGE, "index parameter ef_search = %d is outside 1..%d",
                          p.ef_search, MG_INDEX_MAX_EF);
    if (p.exact_below < -1)
        return mg_err_set(err, MG_ERR_USAGE, "index parameter exact_below = %d is below -1",
                          p.exact_below);
    if (p.lazy_graph != 0 && p.lazy_graph != 1)
        return mg_err_set(err, MG_ERR_USAGE, "index parameter lazy_graph = %d is not 0 or 1",
                          p.lazy_graph);
    if (!(p.cleanup_ratio > 0.0) || !isfinite(p.cleanup_ratio))
        return mg_err_set(err, MG_ERR_USAGE, "index parameter cleanup_ratio must be above 0");
    *out = p;
    return MG_OK;
}

/* ------------------------------------------------------------------ storage */

mg_index *idx_alloc(int dim, const mg_index_params *p)
{
    mg_index *x = mg_xcalloc(1, sizeof(*x));
    x->dim = dim;
    x->p = *p;
    x->m0 = 2 * p->m;
    x->link0_len = 1 + x->m0;
    x->upper_len = 1 + p->m;
    x->code_len = (dim + 7) / 8;
    x->dot = pick_dot();
    x->epoch = 1;
    x->entry = -1;
    x->max_level = -1;
    x->rng = p->seed;
    x->log_fd = -1;
    x->map_fd = -1;
    return x;
}

#define HUGE_PAGE ((size_t)2 << 20)

/* A full storage chunk. Graph searches touch vectors at random across the
 * whole index; with 4 KB pages nearly every touch at a million vectors is
 * also a TLB miss and a page walk, with 2 MB pages most are not (measured:
 * builds ~20% faster, searches ~15%, at 300k vectors). Systems whose
 * transparent huge pages are set to "madvise", the common default, only use
 * them where asked, and only for memory that is 2 MB aligned and advised
 * before its first touch; hence a fresh aligned block per chunk, never a
 * realloc (a moved mapping loses its huge pages). Elsewhere this is malloc. */
static void *chunk_alloc(mg_index *x, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_PAGE) {
        void *p;
        size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        if (posix_memalign(&p, HUGE_PAGE, rounded) != 0) p = mg_xmalloc(rounded);
        madvise(p, rounded, MADV_HUGEPAGE); /* advice: failure is harmless */
        x->chunk_bytes += rounded;
        return p;
    }
#endif
    x->chunk_bytes += bytes;
    return mg_xmalloc(bytes);
}

static void add_chunk(mg_index *x)
{
    if (x->n_chunks == x->chunk_table_cap) {
        x->chunk_table_cap = x->chunk_table_cap ? 2 * x->chunk_table_cap : 16;
        x->vec_chunks = mg_xrealloc(x->vec_chunks, (size_t)x->chunk_table_cap * sizeof(float *));
        x->link_chunks =
            mg_xrealloc(x->link_chunks, (size_t)x->chunk_table_cap * sizeof(int32_t *));
        if (x->chunk_mapped) {
            x->chunk_mapped = mg_xrealloc(x->chunk_mapped, (size_t)x->chunk_table_cap);
            memset(x->chunk_mapped + x->n_chunks, 0, (size_t)(x->chunk_table_cap - x->n_chunks));
        }
    }
    x->vec_chunks[x->n_chunks] = chunk_alloc(x, (size_t)IDX_CHUNK_SLOTS * (size_t)x->dim * 4);
    x->link_chunks[x->n_chunks] =
        chunk_alloc(x, (size_t)IDX_CHUNK_SLOTS * (size_t)x->link0_len * 4);
    x->n_chunks++;
    x->cap = x->n_chunks * IDX_CHUNK_SLOTS;
}

/* Copies mapped chunk c (index_file.c) into memory of our own: before the
 * last one, if partial, can take more slots (it holds exactly the slots the
 * file had; it gets the size it would have had, had it grown here), and
 * before any of its vectors change. */
static void own_chunk(mg_index *x, int32_t c)
{
    if (!idx_chunk_mapped(x, c)) return;
    int last = c == x->n_chunks - 1;
    size_t used = last ? (size_t)(x->cap - c * IDX_CHUNK_SLOTS) : IDX_CHUNK_SLOTS;
    int single = last && c == 0; /* grows by realloc (grow_chunks) */
    size_t slots = single ? used : IDX_CHUNK_SLOTS;
    size_t vec_bytes = slots * (size_t)x->dim * 4, link_bytes = slots * (size_t)x->link0_len * 4;
    float *v = single ? mg_xmalloc(vec_bytes) : chunk_alloc(x, vec_bytes);
    int32_t *l = single ? mg_xmalloc(link_bytes) : chunk_alloc(x, link_bytes);
    memcpy(v, x->vec_chunks[c], used * (size_t)x->dim * 4);
    memcpy(l, x->link_chunks[c], used * (size_t)x->link0_len * 4);
    x->vec_chunks[c] = v;
    x->link_chunks[c] = l;
    x->chunk_mapped[c] = 0;
    if (last && !single) x->cap = x->n_chunks * IDX_CHUNK_SLOTS;
}

/* While there is one chunk it grows in place by 1/8 (small indexes stay
 * small); once full, more slots come as whole new chunks. */
static void grow_chunks(mg_index *x, int32_t want)
{
    if (x->cap % IDX_CHUNK_SLOTS != 0) own_chunk(x, x->n_chunks - 1);
    if (x->n_chunks == 0 && want >= IDX_CHUNK_SLOTS) add_chunk(x);
    if (x->n_chunks <= 1 && x->cap < IDX_CHUNK_SLOTS && want > x->cap) {
        int64_t cap = (int64_t)x->cap + x->cap / 8;
        if (cap < want) cap = want;
        if (cap < 64) cap = 64;
        cap = (cap + 63) & ~(int64_t)63;
        if (cap > IDX_CHUNK_SLOTS) cap = IDX_CHUNK_SLOTS;
        if (x->n_chunks == 0) {
            x->chunk_table_cap = 16;
            x->vec_chunks = mg_xcalloc(16, sizeof(float *));
            x->link_chunks = mg_xcalloc(16, sizeof(int32_t *));
            x->n_chunks = 1;
        }
        x->vec_chunks[0] = mg_xrealloc(x->vec_chunks[0], (size_t)cap * (size_t)x->dim * 4);
        x->link_chunks[0] = mg_xrealloc(x->link_chunks[0], (size_t)cap * (size_t)x->link0_len * 4);
        x->chunk_bytes = (size_t)cap * ((size_t)x->dim + (size_t)x->link0_len) * 4;
        x->cap = (int32_t)cap;
    }
    while (x->cap < want)
        add_chunk(x);
}

/* realloc, except that an array still in the file's mapping is copied out. */
static void *grow_array(void *p, int mapped, size_t old_bytes, size_t new_bytes)
{
    if (!mapped) return mg_xrealloc(p, new_bytes);
    void *q = mg_xmalloc(new_bytes);
    memcpy(q, p, old_bytes);
    return q;
}

/* The per-slot arrays grow by 1/16: spare capacity stays a few percent. */
static void grow_meta(mg_index *x, int32_t want)
{
    int64_t cap = (int64_t)x->meta_cap + x->meta_cap / 16;
    if (cap < want) cap = want;
    if (cap < 64) cap = 64;
    cap = (cap + 63) & ~(int64_t)63;
    if (cap > MG_INDEX_MAX_COUNT) cap = MG_INDEX_MAX_COUNT;
    size_t c = (size_t)cap, old = (size_t)x->meta_cap;
    x->ids = grow_array(x->ids, x->meta_mapped, old * sizeof(int64_t), c * sizeof(int64_t));
    x->levels = grow_array(x->levels, x->meta_mapped, old, c);
    x->state = grow_array(x->state, x->meta_mapped, old, c);
    size_t code = (size_t)x->code_len;
    x->codes = grow_array(x->codes, x->meta_mapped, old * code, c * code);
    x->meta_mapped = 0;
    x->upper_off = mg_xrealloc(x->upper_off, c * sizeof(uint32_t));
    x->visited = mg_xrealloc(x->visited, c * sizeof(uint16_t));
    /* 0 is never a current epoch, so new slots start "not visited". */
    memset(x->visited + old, 0, (c - old) * sizeof(uint16_t));
    x->meta_cap = (int32_t)cap;
}

void idx_reserve(mg_index *x, int32_t want)
{
    if (want > x->cap) grow_chunks(x, want);
    if (want > x->meta_cap) grow_meta(x, want);
}

uint32_t idx_upper_alloc(mg_index *x, int levels)
{
    size_t need = (size_t)levels * (size_t)x->upper_len;
    if (x->upper_used + need > x->upper_cap) {
        size_t cap = x->upper_cap + x->upper_cap / 4;
        if (cap < x->upper_used + need) cap = x->upper_used + need;
        if (cap < 1024) cap = 1024;
        x->upper = grow_array(x->upper, x->upper_mapped, x->upper_used * sizeof(int32_t),
                              cap * sizeof(int32_t));
        x->upper_mapped = 0;
        x->upper_cap = cap;
    }
    uint32_t off = (uint32_t)x->upper_used;
    memset(x->upper + off, 0, need * sizeof(int32_t));
    x->upper_used += need;
    return off;
}

/* ------------------------------------------------------------------ id map */

static size_t map_hash(int64_t id)
{
    /* splitmix64's finalizer: row ids are sequential, and linear probing
     * needs them spread over the whole table. */
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(z ^ (z >> 31));
}

static void map_build(mg_index *x);

int32_t idx_map_get(const mg_index *x, int64_t id)
{
    /* The map is a cache of ids/state, built on first use; no mg_index is
     * ever defined const, so building it through a const pointer is safe. */
    if (x->map_stale) map_build((mg_index *)x);
    if (!x->map_cap) return -1;
    size_t mask = x->map_cap - 1;
    for (size_t i = map_hash(id) & mask;; i = (i + 1) & mask) {
        if (x->map_vals[i] < 0) return -1;
        if (x->map_keys[i] == id) return x->map_vals[i];
    }
}

static void map_grow(mg_index *x)
{
    size_t old_cap = x->map_cap;
    int64_t *old_keys = x->map_keys;
    int32_t *old_vals = x->map_vals;
    x->map_cap = old_cap ? old_cap * 2 : 64;
    x->map_keys = mg_xmalloc(x->map_cap * sizeof(int64_t));
    x->map_vals = mg_xmalloc(x->map_cap * sizeof(int32_t));
    memset(x->map_vals, 0xff, x->map_cap * sizeof(int32_t));
    x->map_count = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old_vals[i] >= 0) idx_map_put(x, old_keys[i], old_vals[i]);
    free(old_keys);
    free(old_vals);
}

/* Fills the map with the LIVE slots' ids, sized once for all of them. A
 * damaged file can hold an id twice: the first slot keeps it, the index is
 * marked damaged, and idx_check reports the counts that disagree. */
static void map_build(mg_index *x)
{
    x->map_stale = 0;
    size_t cap = 64;
    while (cap < 2 * (size_t)x->live)
        cap *= 2;
    free(x->map_keys);
    free(x->map_vals);
    x->map_cap = cap;
    x->map_keys = mg_xmalloc(cap * sizeof(int64_t));
    x->map_vals = mg_xmalloc(cap * sizeof(int32_t));
    memset(x->map_vals, 0xff, cap * sizeof(int32_t));
    x->map_count = 0;
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_LIVE) continue;
        if (idx_map_get(x, x->ids[s]) >= 0)
            x->damaged = 1;
        else
            idx_map_put(x, x->ids[s], s);
    }
}

void idx_map_put(mg_index *x, int64_t id, int32_t slot)
{
    if (x->map_stale) map_build(x);
    /* At most half full, so probe runs stay short. */
    if ((x->map_count + 1) * 2 > x->map_cap) map_grow(x);
    size_t mask = x->map_cap - 1;
    size_t i = map_hash(id) & mask;
    while (x->map_vals[i] >= 0 && x->map_keys[i] != id)
        i = (i + 1) & mask;
    if (x->map_vals[i] < 0) x->map_count++;
    x->map_keys[i] = id;
    x->map_vals[i] = slot;
}

void idx_map_del(mg_index *x, int64_t id)
{
    if (x->map_stale) map_build(x);
    if (!x->map_cap) return;
    size_t mask = x->map_cap - 1;
    size_t i = map_hash(id) & mask;
    while (x->map_vals[i] >= 0 && x->map_keys[i] != id)
        i = (i + 1) & mask;
    if (x->map_vals[i] < 0) return;
    /* Backward-shift deletion: move later members of the probe run into the
     * hole when their home bucket does not lie strictly between the hole and
     * them, so lookups never need tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; x->map_vals[j] >= 0; j = (j + 1) & mask) {
        size_t home = map_hash(x->map_keys[j]) & mask;
        int between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (between) continue;
        x->map_keys[hole] = x->map_keys[j];
        x->map_vals[hole] = x->map_vals[j];
        hole = j;
    }
    x->map_vals[hole] = -1;
    x->map_count--;
}

/* ------------------------------------------------------------------ lifecycle */

mg_status mg_index_new(int dim, const mg_index_params *params, mg_index **out, mg_error *err)
{
    *out = NULL;
    if (dim < 1 || dim > MG_INDEX_MAX_DIM)
        return mg_err_set(err, MG_ERR_USAGE, "index dimension %d is outside 1..%d", dim,
                          MG_INDEX_MAX_DIM);
    mg_index_params p;
    mg_status st = idx_params_resolve(params, &p, err);
    if (st != MG_OK) return st;
    *out = idx_alloc(dim, &p);
    return MG_OK;
}

void mg_index_free(mg_index *x)
{
    if (!x) return;
    if (x->log_fd >= 0) close(x->log_fd);
    for (int32_t c = 0; c < x->n_chunks; c++) {
        if (idx_chunk_mapped(x, c)) continue;
        free(x->vec_chunks[c]);
        free(x->link_chunks[c]);
    }
    free(x->chunk_mapped);
    if (x->map_fd >= 0) close(x->map_fd);
    free(x->vec_chunks);
    free(x->link_chunks);
    if (!x->meta_mapped) {
        free(x->ids);
        free(x->levels);
        free(x->state);
        free(x->codes);
    }
    free(x->upper_off);
    free(x->visited);
    if (!x->upper_mapped) free(x->upper);
    if (x->map) munmap(x->map, x->map_len);
    free(x->map_keys);
    free(x->map_vals);
    free(x->free_list);
    free(x->cands.a);
    free(x->results.a);
    free(x->work);
    free(x->seeds);
    free(x);
}

/* ------------------------------------------------------------------ add / remove */

static mg_status add_check(const mg_index *x, int64_t id, const float *vec, mg_error *err)
{
    if (!vec) return mg_err_set(err, MG_ERR_USAGE, "index add: no vector");
    if (!idx_all_finite(vec, (size_t)x->dim))
        return mg_err_set(err, MG_ERR_USAGE, "index add: vector %lld has a NaN or infinite value",
                          (long long)id);
    if (idx_map_get(x, id) >= 0)
        return mg_err_set(err, MG_ERR_EXISTS, "index add: id %lld is already in the index",
                          (long long)id);
    if (x->n_free == 0 && (int64_t)x->n >= MG_INDEX_MAX_COUNT)
        return mg_err_set(err, MG_ERR_USAGE, "index add: the index is full (%lld vectors)",
                          (long long)MG_INDEX_MAX_COUNT);
    return MG_OK;
}

/* How many stored vectors an add links into the graph (see "Lazy graph"). */
static int32_t link_budget(const mg_index *x)
{
    int32_t below = x->p.exact_below;
    if (!x->p.lazy_graph || below < 0 || x->live > below) return INT32_MAX;
    return x->live > below - below / 4 ? LAZY_CATCH_UP : 0;
}

mg_status idx_add(mg_index *x, int64_t id, const float *vec, mg_error *err)
{
    mg_status st = add_check(x, id, vec, err);
    if (st != MG_OK) return st;

    int32_t s;
    if (x->n_free > 0) {
        s = x->free_list[--x->n_free]; /* the lowest free slot; keeps its level */
    } else {
        idx_reserve(x, x->n + 1);
        s = x->n++;
        int level = hnsw_random_level(x);
        x->levels[s] = (uint8_t)level;
        x->upper_off[s] = level ? idx_upper_alloc(x, level) : 0;
    }
    /* Whole blocks, not only their counts: blocks are saved whole, and a
     * file must not carry uninitialized memory (valgrind found it). */
    memset(idx_links(x, s, 0), 0, (size_t)x->link0_len * sizeof(int32_t));
    if (x->levels[s])
        memset(idx_links(x, s, 1), 0,
               (size_t)x->levels[s] * (size_t)x->upper_len * sizeof(int32_t));
    own_chunk(x, s >> IDX_CHUNK_SHIFT); /* a reused slot of a mapped chunk */
    memcpy(idx_vec(x, s), vec, (size_t)x->dim * sizeof(float));
    idx_encode(x, vec, idx_code(x, s));
    x->ids[s] = id;
    x->state[s] = SLOT_LIVE;
    idx_map_put(x, id, s);
    x->live++;
    if (!x->has_max_id || id > x->max_id) x->max_id = id;
    x->has_max_id = 1;

    if (s < x->linked) hnsw_insert(x, s); /* a reused slot inside the graph's prefix */
    hnsw_link_pending(x, link_budget(x));
    return MG_OK;
}

mg_status idx_remove(mg_index *x, int64_t id, mg_error *err)
{
    int32_t s = idx_map_get(x, id);
    if (s < 0)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "index remove: id %lld is not in the index",
                          (long long)id);
    x->state[s] = SLOT_DEAD;
    idx_map_del(x, id);
    x->live--;
    x->dead++;
    /* A handful of tombstones cost nothing; the minimum keeps small indexes
     * from a cleanup pass on nearly every remove. */
    if (x->dead >= 16 && (double)x->dead >= x->p.cleanup_ratio * (double)(x->live + x->dead))
        hnsw_cleanup(x);
    return MG_OK;
}

mg_status mg_index_add(mg_index *x, int64_t id, const float *vec, mg_error *err)
{
    mg_status st = add_check(x, id, vec, err);
    if (st != MG_OK) return st;
    st = idx_log_append(x, id, vec, err);
    if (st != MG_OK) return st;
    return idx_add(x, id, vec, err);
}

mg_status mg_index_remove(mg_index *x, int64_t id, mg_error *err)
{
    if (idx_map_get(x, id) < 0)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "index remove: id %lld is not in the index",
                          (long long)id);
    mg_status st = idx_log_append(x, id, NULL, err);
    if (st != MG_OK) return st;
    return idx_remove(x, id, err);
}

int mg_index_contains(const mg_index *x, int64_t id)
{
    return idx_map_get(x, id) >= 0;
}

int mg_index_vector(const mg_index *x, int64_t id, float *out)
{
    int32_t s = idx_map_get(x, id);
    if (s < 0) return 0;
    memcpy(out, idx_vec(x, s), (size_t)x->dim * sizeof *out);
    return 1;
}

void mg_index_cleanup(mg_index *x)
{
    if (x->dead > 0) hnsw_cleanup(x);
}

/* ------------------------------------------------------------------ search */

static mg_status search_check(const mg_index *x, const float *q, int k, int64_t *ids, int *found,
                              mg_error *err)
{
    if (!q || !ids || !found)
        return mg_err_set(err, MG_ERR_USAGE, "index search: missing argument");
    if (k < 1 || k > MG_INDEX_MAX_K)
        return mg_err_set(err, MG_ERR_USAGE, "index search: k = %d is outside 1..%d", k,
                          MG_INDEX_MAX_K);
    if (!idx_all_finite(q, (size_t)x->dim))
        return mg_err_set(err, MG_ERR_USAGE, "index search: the query has a NaN or infinite value");
    return MG_OK;
}

static void copy_out(mg_topk *t, int64_t *ids, float *scores, int *found)
{
    mg_topk_sort(t);
    for (int i = 0; i < t->count; i++) {
        ids[i] = t->ids[i];
        if (scores) scores[i] = t->scores[i];
    }
    *found = t->count;
    mg_topk_free(t);
}

void idx_encode(const mg_index *x, const float *vec, uint8_t *code)
{
    memset(code, 0, (size_t)x->code_len);
    for (int d = 0; d < x->dim; d++)
        if (vec[d] > 0.0f) code[d >> 3] |= (uint8_t)(1u << (d & 7));
}

/* table[256 * b + v]: q's dot product with the signs a code byte b of value
 * v stands for (+1 for a set bit, -1 for a clear one), so scoring a code is
 * one lookup a byte. Each entry is its value without the lowest set bit,
 * plus twice that bit's q. */
static float *code_table(const mg_index *x, const float *q)
{
    float *table = mg_xmalloc((size_t)x->code_len * 256 * sizeof(float));
    for (int b = 0; b < x->code_len; b++) {
        float *t = table + 256 * b, qb[8] = {0};
        t[0] = 0.0f;
        for (int j = 0; j < 8 && 8 * b + j < x->dim; j++) {
            qb[j] = q[8 * b + j];
            t[0] -= qb[j];
        }
        for (int v = 1; v < 256; v++)
            t[v] = t[v & (v - 1)] + 2.0f * qb[__builtin_ctz((unsigned)v)];
    }
    return table;
}

/* A code's score: four sums, so the adds do not wait on each other. */
static float code_score(const float *table, const uint8_t *c, int len)
{
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int b = 0;
    for (; b + 4 <= len; b += 4) {
        s0 += table[256 * b + c[b]];
        s1 += table[256 * (b + 1) + c[b + 1]];
        s2 += table[256 * (b + 2) + c[b + 2]];
        s3 += table[256 * (b + 3) + c[b + 3]];
    }
    for (; b < len; b++)
        s0 += table[256 * b + c[b]];
    return (s0 + s1) + (s2 + s3);
}

/* How many of the codes' best are re-scored: see "Codes" above. */
static int rerank_count(const mg_index *x, int k)
{
    int64_t r = (int64_t)k * RERANK_PER_RESULT;
    if (r < RERANK_MIN) r = RERANK_MIN;
    if (r < x->live / RERANK_SHARE) r = x->live / RERANK_SHARE;
    return (int)(r < x->live ? r : x->live);
}

/* A vector to re-score. In the first scan after the file was mapped, it is
 * read with pread while its chunk is mapped, not through the mapping: a
 * touch of a mapping maps up to 16 neighbouring pages of the page cache with
 * it (the kernel's fault-around, which MADV_RANDOM does not turn off), so a
 * few thousand touches at random would map nearly the whole file into a
 * process that searches once (measured: 1,000 touches of a 173 MB file, 154
 * MB resident). A process that searches again (a chat, a server) reads
 * through the mapping from then on: a mapped page costs nothing after its
 * first touch, a pread ~2 us every time. */
static int first_scan_of_file(const mg_index *x)
{
    return x->map_fd >= 0 && !x->map_searched;
}

static const float *rerank_vec(const mg_index *x, int32_t s, float *scratch)
{
    const float *v = idx_vec(x, s);
    if (!first_scan_of_file(x) || !idx_chunk_mapped(x, s >> IDX_CHUNK_SHIFT)) return v;
    size_t bytes = (size_t)x->dim * sizeof(float);
    off_t at = (off_t)((const char *)v - (const char *)x->map);
    return pread(x->map_fd, scratch, bytes, at) == (ssize_t)bytes ? scratch : v;
}

/* Re-scores n of the codes' best slots into sims. */
typedef struct rerank_part {
    const mg_index *x;
    const float *q;
    const int64_t *slots;
    int n;
    float *sims;
} rerank_part;

static void *rerank_run(void *arg)
{
    const rerank_part *p = arg;
    float *scratch = mg_xmalloc((size_t)p->x->dim * sizeof(float));
    for (int i = 0; i < p->n; i++)
        p->sims[i] = p->x->dot(p->q, rerank_vec(p->x, (int32_t)p->slots[i], scratch), p->x->dim);
    free(scratch);
    return NULL;
}

/* Re-scores the codes' best, in two threads while the vectors are read with
 * pread (rerank_vec): thousands of reads of ~2 us each were the longest part
 * of a fresh process's search, and they are independent. Through the
 * mapping the reads cost nothing, and one thread does it all. */
static void rerank(const mg_index *x, const float *q, const mg_topk *near, float *sims)
{
    int half = near->count / 2;
    rerank_part parts[2] = {{x, q, near->ids, half, sims},
                            {x, q, near->ids + half, near->count - half, sims + half}};
    pthread_t helper;
    int threaded = first_scan_of_file(x) && half > 0 &&
                   pthread_create(&helper, NULL, rerank_run, &parts[1]) == 0;
    rerank_run(&parts[0]);
    if (threaded)
        pthread_join(helper, NULL);
    else
        rerank_run(&parts[1]);
}

static void scan_codes(mg_index *x, const float *q, int k, int64_t *ids, float *scores, int *found)
{
    float *table = code_table(x, q);
    mg_topk near, best;
    mg_topk_init(&near, rerank_count(x, k));
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_LIVE) continue;
        float sim = code_score(table, idx_code(x, s), x->code_len);
        /* Most codes lose to the list's worst: skip the call. */
        if (near.count == near.k && sim < near.scores[0]) continue;
        mg_topk_push(&near, s, sim);
    }
    free(table);
    float *sims = mg_xmalloc((size_t)(near.count ? near.count : 1) * sizeof(float));
    rerank(x, q, &near, sims);
    mg_topk_init(&best, k);
    for (int i = 0; i < near.count; i++)
        mg_topk_push(&best, x->ids[near.ids[i]], sims[i]);
    free(sims);
    x->map_searched = 1;
    mg_topk_free(&near);
    copy_out(&best, ids, scores, found);
}

static void scan_exact(mg_index *x, const float *q, int k, int64_t *ids, float *scores, int *found)
{
    mg_topk t;
    mg_topk_init(&t, k);
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_LIVE) continue;
        mg_topk_push(&t, x->ids[s], x->dot(q, idx_vec(x, s), x->dim));
    }
    copy_out(&t, ids, scores, found);
}

mg_status mg_index_search_exact(mg_index *x, const float *q, int k, int64_t *ids, float *scores,
                                int *found, mg_error *err)
{
    mg_status st = search_check(x, q, k, ids, found, err);
    if (st != MG_OK) return st;
    scan_exact(x, q, k, ids, scores, found);
    return MG_OK;
}

mg_status mg_index_search(mg_index *x, const float *q, int k, int ef, int64_t *ids, float *scores,
                          int *found, mg_error *err)
{
    mg_status st = search_check(x, q, k, ids, found, err);
    if (st != MG_OK) return st;
    if (ef > MG_INDEX_MAX_EF)
        return mg_err_set(err, MG_ERR_USAGE, "index search: ef = %d is above %d", ef,
                          MG_INDEX_MAX_EF);
    if (ef <= 0) ef = x->p.ef_search;
    if (ef < k) ef = k;

    if (x->live <= x->p.exact_below) {
        if (x->live >= CODE_SCAN_MIN)
            scan_codes(x, q, k, ids, scores, found);
        else
            scan_exact(x, q, k, ids, scores, found);
        return MG_OK;
    }
    hnsw_link_pending(x, INT32_MAX);
    int n = hnsw_search(x, q, ef);
    mg_topk t;
    mg_topk_init(&t, k);
    for (int i = 0; i < n; i++)
        mg_topk_push(&t, x->ids[x->work[i].slot], x->work[i].sim);
    copy_out(&t, ids, scores, found);
    return MG_OK;
}

/* ------------------------------------------------------------------ stats */

void mg_index_get_stats(const mg_index *x, mg_index_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->dim = x->dim;
    st->count = x->live;
    st->deleted = x->dead;
    st->free_slots = x->n_free;
    st->memory_bytes = (int64_t)mg_index_memory(x);
    st->vector_bytes = (int64_t)x->live * x->dim * (int64_t)sizeof(float);
    st->max_level = x->max_level;
    st->unlinked = x->n - x->linked;
    st->has_max_id = x->has_max_id;
    st->max_id = x->max_id;
    st->params = x->p;
}

int64_t mg_index_count(const mg_index *x)
{
    return x->live;
}

size_t mg_index_memory(const mg_index *x)
{
    size_t per_slot =
        sizeof(int64_t) + 2 + sizeof(uint32_t) + sizeof(uint16_t) + (size_t)x->code_len;
    return sizeof(*x) + x->chunk_bytes +
           (size_t)x->chunk_table_cap * (sizeof(float *) + sizeof(int32_t *)) +
           (size_t)x->meta_cap * per_slot + x->upper_cap * sizeof(int32_t) +
           x->map_cap * (sizeof(int64_t) + sizeof(int32_t)) +
           (size_t)x->free_cap * sizeof(int32_t) +
           (size_t)(x->cands.cap + x->results.cap + x->work_cap + x->seeds_cap) * sizeof(idx_cand);
}

int mg_index_dim(const mg_index *x)
{
    return x->dim;
}

int mg_index_damaged(const mg_index *x)
{
    return x->damaged;
}

int64_t mg_index_ids(const mg_index *x, int64_t *out, int64_t cap)
{
    int64_t k = 0;
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_LIVE) continue;
        if (k < cap) out[k] = x->ids[s];
        k++;
    }
    return k;
}

int mg_index_max_live_id(const mg_index *x, int64_t *max_id)
{
    int any = 0;
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_LIVE || (any && x->ids[s] <= *max_id)) continue;
        *max_id = x->ids[s];
        any = 1;
    }
    return any;
}

int mg_index_max_id(const mg_index *x, int64_t *max_id)
{
    if (!x->has_max_id) return 0;
    *max_id = x->max_id;
    return 1;
}

/* ------------------------------------------------------------------ invariants */

static int cmp_slot_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x < y) - (x > y);
}

mg_status idx_rebuild_derived(mg_index *x, mg_error *err)
{
    x->live = x->dead = x->n_free = 0;
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] == SLOT_LIVE) {
            x->live++;
        } else if (x->state[s] == SLOT_DEAD) {
            x->dead++;
        } else {
            if (x->n_free == x->free_cap) {
                x->free_cap = x->free_cap ? x->free_cap * 2 : 64;
                x->free_list = mg_xrealloc(x->free_list, (size_t)x->free_cap * sizeof(int32_t));
            }
            x->free_list[x->n_free++] = s;
        }
    }
    if (x->n_free > 1) qsort(x->free_list, (size_t)x->n_free, sizeof(int32_t), cmp_slot_desc);
    x->map_stale = 1;
    return MG_OK;
}

static mg_status check_block(const mg_index *x, int32_t s, int l, mg_error *err)
{
    const int32_t *b = idx_links(x, s, l);
    int cap = l ? x->p.m : x->m0;
    if (b[0] < 0 || b[0] > cap)
        return mg_err_set(err, MG_ERR_CORRUPT, "slot %d level %d has %d links (capacity %d)", s, l,
                          b[0], cap);
    if ((x->state[s] == SLOT_FREE || s >= x->linked) && b[0] != 0)
        return mg_err_set(err, MG_ERR_CORRUPT, "%s slot %d has links",
                          s >= x->linked ? "unlinked" : "free", s);
    for (int i = 1; i <= b[0]; i++) {
        int32_t t = b[i];
        if (t < 0 || t >= x->linked || t == s)
            return mg_err_set(err, MG_ERR_CORRUPT, "slot %d links to invalid slot %d", s, t);
        if (x->state[t] == SLOT_FREE || x->levels[t] < l)
            return mg_err_set(err, MG_ERR_CORRUPT, "slot %d links to slot %d, not in level %d", s,
                              t, l);
        for (int j = 1; j < i; j++)
            if (b[j] == t)
                return mg_err_set(err, MG_ERR_CORRUPT, "slot %d links twice to slot %d", s, t);
    }
    return MG_OK;
}

static int code_matches(const mg_index *x, int32_t s)
{
    uint8_t code[(MG_INDEX_MAX_DIM + 7) / 8];
    idx_encode(x, idx_vec(x, s), code);
    return memcmp(code, idx_code(x, s), (size_t)x->code_len) == 0;
}

mg_status idx_check(const mg_index *x, mg_error *err)
{
    int32_t live = 0, dead = 0, nfree = 0;
    int top = -1;
    /* First: the link checks below trust `linked` as a bound. */
    if (x->linked < 0 || x->linked > x->n)
        return mg_err_set(err, MG_ERR_CORRUPT, "%d linked slots of %d", x->linked, x->n);
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] > SLOT_FREE)
            return mg_err_set(err, MG_ERR_CORRUPT, "slot %d has unknown state %d", s, x->state[s]);
        if (x->levels[s] > IDX_MAX_LEVEL)
            return mg_err_set(err, MG_ERR_CORRUPT, "slot %d has level %d (max %d)", s, x->levels[s],
                              IDX_MAX_LEVEL);
        if (x->levels[s] > 0 &&
            (size_t)x->upper_off[s] + (size_t)x->levels[s] * x->upper_len > x->upper_used)
            return mg_err_set(err, MG_ERR_CORRUPT, "slot %d has upper links out of range", s);
        for (int l = 0; l <= x->levels[s]; l++) {
            mg_status st = check_block(x, s, l, err);
            if (st != MG_OK) return st;
        }
        if (!code_matches(x, s))
            return mg_err_set(err, MG_ERR_CORRUPT, "slot %d has a code that is not its vector's",
                              s);
        if (x->state[s] == SLOT_LIVE) {
            live++;
            if (idx_map_get(x, x->ids[s]) != s)
                return mg_err_set(err, MG_ERR_CORRUPT, "id %lld of slot %d is not mapped to it",
                                  (long long)x->ids[s], s);
        } else if (x->state[s] == SLOT_DEAD) {
            dead++;
        } else {
            nfree++;
        }
        if (x->state[s] != SLOT_FREE) {
            if (s < x->linked && x->levels[s] > top) top = x->levels[s];
            if (!x->has_max_id || x->ids[s] > x->max_id)
                return mg_err_set(err, MG_ERR_CORRUPT, "slot %d has id %lld above the max id", s,
                                  (long long)x->ids[s]);
        }
    }
    if (live != x->live || dead != x->dead || nfree != x->n_free || (size_t)live != x->map_count)
        return mg_err_set(
            err, MG_ERR_CORRUPT,
            "counts disagree: %d live, %d deleted, %d free slots; expected %d, %d, %d", live, dead,
            nfree, x->live, x->dead, x->n_free);
    for (int32_t i = 0; i < x->n_free; i++) {
        int32_t s = x->free_list[i];
        if (s < 0 || s >= x->n || x->state[s] != SLOT_FREE || (i > 0 && x->free_list[i - 1] <= s))
            return mg_err_set(err, MG_ERR_CORRUPT, "free list entry %d is wrong", i);
    }
    if (top < 0) {
        if (x->entry != -1 || x->max_level != -1)
            return mg_err_set(err, MG_ERR_CORRUPT, "an empty graph has an entry point");
    } else if (x->entry < 0 || x->entry >= x->linked || x->state[x->entry] == SLOT_FREE ||
               x->levels[x->entry] != x->max_level || x->max_level != top) {
        return mg_err_set(err, MG_ERR_CORRUPT, "the entry point %d is not a top-level slot",
                          x->entry);
    }
    return MG_OK;
}
