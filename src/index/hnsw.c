/*
 * hnsw.c - the graph: insertion, search, and repair after deletes.
 *
 * HNSW (Malkov & Yashunin, "Efficient and robust approximate nearest
 * neighbor search using Hierarchical Navigable Small World graphs", 2016) is
 * a stack of proximity graphs. Every vector is on level 0; a vector reaches
 * level l with probability m^-l, so each level is a ~1/m sample of the one
 * below. A search walks from the single top-level entry point down to level
 * 1, each level's result seeding the next, then runs a best-first search on
 * level 0 that keeps the ef best vectors seen and stops when the best
 * unexplored candidate is worse than all of them. Larger ef: higher recall,
 * slower search. One departure from the paper: the walk down the upper
 * levels is a beam search (16-64 wide), not a greedy one; see descend().
 *
 * An insert is a search for the new vector (ef_construction candidates on
 * each of its levels) followed by linking: it keeps m of the candidates,
 * chosen by the paper's heuristic (walk the candidates from the closest and
 * keep one only if it is closer to the new vector than to every one already
 * kept), which keeps links pointing in different directions so clusters stay
 * connected to each other. Each kept neighbour links back; a neighbour whose
 * block is full (m, or 2m on level 0) re-runs the heuristic over its links
 * plus the new one. Similarity is the dot product throughout; on unit
 * vectors "closer" is "higher dot product".
 *
 * Deletes: tombstones with batched repair, not repair on every delete. A
 * remove only flips the slot to DEAD. Dead slots stay in the graph and keep
 * routing searches (they are explored, never returned), so recall does not
 * drop when a vector goes; searches just explore a little further. Repairing
 * at each delete would need the slot's in-links, which a directed graph does
 * not store (finding them is a scan of the whole graph), and a node next to
 * several deletes would be re-linked several times. So once tombstones reach
 * cleanup_ratio (10%) of the slots, hnsw_cleanup makes one pass: every live
 * slot with a link to a dead one re-runs the heuristic over its live links
 * plus the live links of its dead neighbours (the repair of FreshDiskANN,
 * Singh et al. 2021), dead slots are unlinked and become FREE for reuse, a
 * dead entry point is replaced by the highest live slot, and live slots that
 * no level-0 link reaches any more are linked back in by a search for them.
 * At 10% tombstones most slots have a dead neighbour, but a repair reads
 * vectors that are mostly in cache: measured at 100k vectors, a pass cost
 * ~110 us per deleted vector, about one insert.
 * Tombstones also make persistence simple: a delete is one byte in the file
 * and one record in the log.
 *
 * Scratch: the visited marks are a 16-bit epoch per slot (a new search
 * increments the epoch instead of clearing the array, clearing it once every
 * 65,535 searches), and the heaps and candidate lists live in the index and
 * only ever grow, so a search allocates nothing in the steady state. That is
 * also why an index is not thread-safe.
 */
#include "index/index_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* Beam widths on the upper levels (see descend): inserts, searches on
 * levels >= 2 (a few thousand vectors at most, cache-resident), searches on
 * level 1 (~1/m of the index). */
#define UPPER_EF_BUILD 16
#define UPPER_EF_TOP   64
#define UPPER_EF_1     32
#define PREFETCH_LINES 4

/* ------------------------------------------------------------------ heaps */

/* The order of the heaps and lists: higher similarity first, then the lower
 * slot, so equal similarities still give one deterministic graph. */
static int better(idx_cand a, idx_cand b)
{
    if (a.sim != b.sim) return a.sim > b.sim;
    return a.slot < b.slot;
}

static void heap_push_slot(idx_heap *h)
{
    if (h->len == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->a = mg_xrealloc(h->a, (size_t)h->cap * sizeof(idx_cand));
    }
    h->len++;
}

/* Max-heap (root = best): the candidates still to explore. */
static void best_push(idx_heap *h, idx_cand c)
{
    heap_push_slot(h);
    int i = h->len - 1;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(c, h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = c;
}

static idx_cand best_pop(idx_heap *h)
{
    idx_cand top = h->a[0], last = h->a[--h->len];
    int i = 0, n = h->len;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(h->a[c + 1], h->a[c])) c++;
        if (!better(h->a[c], last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n) h->a[i] = last;
    return top;
}

/* Min-heap (root = worst): the best `ef` found so far. */
static void worst_push(idx_heap *h, idx_cand c)
{
    heap_push_slot(h);
    int i = h->len - 1;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(h->a[p], c)) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = c;
}

static idx_cand worst_pop(idx_heap *h)
{
    idx_cand top = h->a[0], last = h->a[--h->len];
    int i = 0, n = h->len;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(h->a[c], h->a[c + 1])) c++;
        if (!better(last, h->a[c])) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n) h->a[i] = last;
    return top;
}

void hnsw_work_reserve(mg_index *x, int n)
{
    if (n <= x->work_cap) return;
    int cap = x->work_cap ? x->work_cap : 256;
    while (cap < n)
        cap *= 2;
    x->work = mg_xrealloc(x->work, (size_t)cap * sizeof(idx_cand));
    x->work_cap = cap;
}

/* Insertion sort, best first: lists here are at most a few hundred long and
 * usually nearly sorted. */
static void sort_best_first(idx_cand *c, int n)
{
    for (int i = 1; i < n; i++) {
        idx_cand v = c[i];
        int j = i;
        while (j > 0 && better(v, c[j - 1])) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = v;
    }
}

/* Empties the result heap into x->work, best first; returns the count. */
static int drain_results(mg_index *x)
{
    int n = x->results.len;
    hnsw_work_reserve(x, n);
    for (int i = n - 1; i >= 0; i--)
        x->work[i] = worst_pop(&x->results);
    return n;
}

/* ------------------------------------------------------------------ levels */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int hnsw_random_level(mg_index *x)
{
    /* u uniform in (0, 1]; floor(-ln(u) / ln(m)) is geometric with
     * P(level >= l) = m^-l, the paper's choice of mL = 1 / ln(m). */
    double u = (double)((splitmix64(&x->rng) >> 11) + 1) * 0x1.0p-53;
    int level = (int)(-log(u) / log((double)x->p.m));
    return level > IDX_MAX_LEVEL ? IDX_MAX_LEVEL : level;
}

/* ------------------------------------------------------------------ search */

static void new_epoch(mg_index *x)
{
    if (++x->epoch == 0) {
        memset(x->visited, 0, (size_t)x->meta_cap * sizeof(uint16_t));
        x->epoch = 1;
    }
    x->cands.len = 0;
    x->results.len = 0;
}

/* Asks for a vector's cache lines ahead of use. A 384-d vector is 24 lines;
 * the first few are requested explicitly, the hardware prefetcher follows
 * the sequential rest once the dot product starts streaming through it. */
static void prefetch_vec(const mg_index *x, int32_t s)
{
    const char *p = (const char *)idx_vec(x, s);
    size_t bytes = (size_t)x->dim * sizeof(float);
    size_t lines = PREFETCH_LINES;
    for (size_t off = 0; off < bytes && lines--; off += 64)
        __builtin_prefetch(p + off);
}

static int visit(mg_index *x, int32_t s)
{
    if (x->visited[s] == x->epoch) return 0;
    x->visited[s] = x->epoch;
    return 1;
}

/* Best-first search of one level. The heaps hold the seeds (already marked
 * visited). With only_live, DEAD slots are explored but never kept as
 * results, so the search runs until it has ef live ones (or runs out). */
static void search_level(mg_index *x, const float *q, int level, int ef, int only_live)
{
    idx_heap *cands = &x->cands, *res = &x->results;
    int32_t todo[2 * MG_INDEX_MAX_M];
    float worst = res->len ? res->a[0].sim : -INFINITY;

    while (cands->len) {
        idx_cand c = best_pop(cands);
        if (res->len >= ef && c.sim < worst) break;
        if (cands->len) __builtin_prefetch(idx_links(x, cands->a[0].slot, level));

        /* Mark and prefetch every new neighbour first, then compute: the
         * memory loads of all of them overlap instead of queueing. */
        const int32_t *b = idx_links(x, c.slot, level);
        int len = idx_block_len(x, b, level), n = 0;
        for (int i = 1; i <= len; i++) {
            if (!idx_link_ok(x, b[i], level) || !visit(x, b[i])) continue;
            todo[n++] = b[i];
            prefetch_vec(x, b[i]);
        }
        for (int i = 0; i < n; i++) {
            idx_cand v = {x->dot(q, idx_vec(x, todo[i]), x->dim), todo[i]};
            /* A NaN (only a damaged file has one) is never better than anything. */
            if (v.sim != v.sim || (res->len >= ef && !(v.sim > worst))) continue;
            best_push(cands, v);
            if (only_live && x->state[v.slot] != SLOT_LIVE) continue;
            worst_push(res, v);
            if (res->len > ef) worst_pop(res);
            worst = res->a[0].sim;
        }
    }
}

/* Keeps x->work[0..n) as the seeds of the next level's search. */
static void keep_seeds(mg_index *x, int n)
{
    if (n > x->seeds_cap) {
        x->seeds_cap = n > 2 * x->seeds_cap ? n : 2 * x->seeds_cap;
        x->seeds = mg_xrealloc(x->seeds, (size_t)x->seeds_cap * sizeof(idx_cand));
    }
    if (n > 0) memcpy(x->seeds, x->work, (size_t)n * sizeof(idx_cand));
    x->seeds_len = n;
}

/* Searches `level` for q from the seeds, keeping the ef best in x->work
 * (best first; returns how many). `skip` (or -1) is never visited: an insert
 * must not find its own slot. */
static int search_from_seeds(mg_index *x, const float *q, int level, int ef, int only_live,
                             int32_t skip)
{
    new_epoch(x);
    if (skip >= 0) visit(x, skip);
    for (int i = 0; i < x->seeds_len; i++) {
        idx_cand c = x->seeds[i];
        if (!visit(x, c.slot)) continue;
        best_push(&x->cands, c);
        if (!only_live || x->state[c.slot] == SLOT_LIVE) worst_push(&x->results, c);
    }
    while (x->results.len > ef)
        worst_pop(&x->results);
    search_level(x, q, level, ef, only_live);
    return drain_results(x);
}

/* Walks from the entry point down to level `stop` + 1, each level a beam
 * search whose results seed the next; leaves the seeds of level `stop` in
 * x->seeds. The paper's greedy walk (width 1) gets lost on clustered data:
 * between clusters every similarity is about 0, and the heuristic leaves
 * the sparse top levels with few links, so the walk stops at the first local
 * maximum, often in the wrong cluster, and level 0, whose links rarely leave
 * a cluster, cannot recover. Measured on 100k vectors in 100 clusters
 * (bench/bench_index.c): with width 1, 6.5% of queries found none of their
 * 10 neighbours at ef 64; with a beam, none. On 1M in 1,000 clusters a
 * search beam of 16 still left 2.5%, the widths used here 0.1%. An insert
 * that lands in the wrong cluster links the new vector there, which costs
 * recall for good, so inserts get a beam too. The upper levels hold ~1/m of
 * the vectors, so the beams cost ~15-25% of a search and ~15% of an insert. */
static void descend(mg_index *x, const float *q, int stop, int32_t skip)
{
    hnsw_work_reserve(x, 1);
    x->work[0] = (idx_cand){x->dot(q, idx_vec(x, x->entry), x->dim), x->entry};
    keep_seeds(x, 1);
    for (int l = x->max_level; l > stop; l--) {
        int width = skip >= 0 ? UPPER_EF_BUILD : l >= 2 ? UPPER_EF_TOP : UPPER_EF_1;
        keep_seeds(x, search_from_seeds(x, q, l, width, 0, skip));
    }
}

int hnsw_search(mg_index *x, const float *q, int ef)
{
    if (x->entry < 0) return 0;
    descend(x, q, 0, -1);
    return search_from_seeds(x, q, 0, ef, 1, -1);
}

/* ------------------------------------------------------------------ linking */

/* The neighbour heuristic, in place: c[0..n) sorted best first by similarity
 * to the base vector; keeps up to max of them, each less similar to every
 * kept one than to the base. Returns how many were kept (in c[0..k)). */
static int select_neighbours(mg_index *x, idx_cand *c, int n, int max)
{
    int k = 0;
    for (int i = 0; i < n && k < max; i++) {
        const float *v = idx_vec(x, c[i].slot);
        int keep = 1;
        for (int j = 0; j < k; j++) {
            if (x->dot(v, idx_vec(x, c[j].slot), x->dim) > c[i].sim) {
                keep = 0;
                break;
            }
        }
        if (keep) c[k++] = c[i];
    }
    return k;
}

static void write_block(int32_t *b, const idx_cand *c, int k)
{
    b[0] = k;
    for (int i = 0; i < k; i++)
        b[1 + i] = c[i].slot;
}

/* Adds the link v -> u on level l; if v's block is full, shrinks it with the
 * heuristic over its links plus u (which may leave u out). */
static void add_link(mg_index *x, int32_t v, int32_t u, int l)
{
    int32_t *b = idx_links(x, v, l);
    int cap = l ? x->p.m : x->m0, len = idx_block_len(x, b, l);
    for (int i = 1; i <= len; i++)
        if (b[i] == u) return;
    if (len < cap) {
        b[1 + len] = u;
        b[0] = len + 1;
        return;
    }
    idx_cand c[2 * MG_INDEX_MAX_M + 1];
    const float *base = idx_vec(x, v);
    int n = 0;
    for (int i = 1; i <= len; i++)
        if (idx_link_ok(x, b[i], l)) c[n++].slot = b[i];
    for (int i = 0; i < n; i++)
        prefetch_vec(x, c[i].slot);
    for (int i = 0; i < n; i++)
        c[i].sim = x->dot(base, idx_vec(x, c[i].slot), x->dim);
    c[n++] = (idx_cand){x->dot(base, idx_vec(x, u), x->dim), u};
    sort_best_first(c, n);
    write_block(b, c, select_neighbours(x, c, n, cap));
}

/* Searches `level` for slot s's vector from the seeds (ef_construction),
 * links s to the heuristic's pick of the results and back, and leaves the
 * results as the seeds of the next level down. */
static void link_level(mg_index *x, int32_t s, int level)
{
    int n = search_from_seeds(x, idx_vec(x, s), level, x->p.ef_construction, 0, s);
    keep_seeds(x, n);

    /* Link to live slots only when there are any: links to tombstones
     * would be dropped at the next cleanup anyway. */
    int live = 0;
    for (int i = 0; i < n; i++)
        if (x->state[x->work[i].slot] == SLOT_LIVE) x->work[live++] = x->work[i];
    if (live) n = live;

    int32_t *b = idx_links(x, s, level);
    write_block(b, x->work, select_neighbours(x, x->work, n, level ? x->p.m : x->m0));
    for (int i = 1; i <= b[0]; i++)
        add_link(x, b[i], s, level);
}

void hnsw_insert(mg_index *x, int32_t s)
{
    int top = x->levels[s];
    if (x->entry < 0) {
        x->entry = s;
        x->max_level = top;
        return;
    }
    int from = top < x->max_level ? top : x->max_level;
    descend(x, idx_vec(x, s), from, s);
    for (int l = from; l >= 0; l--)
        link_level(x, s, l);
    if (top > x->max_level) {
        x->entry = s;
        x->max_level = top;
    }
}

void hnsw_link_pending(mg_index *x, int32_t budget)
{
    while (x->linked < x->n && budget > 0) {
        int32_t s = x->linked++;
        if (x->state[s] == SLOT_FREE) continue;
        hnsw_insert(x, s);
        budget--;
    }
}

/* ------------------------------------------------------------------ cleanup */

/* Re-links live slot s on level l without its dead neighbours: candidates
 * are its live links and the live links of its dead ones. */
static void repair_block(mg_index *x, int32_t s, int l)
{
    int32_t *b = idx_links(x, s, l);
    int cap = l ? x->p.m : x->m0;
    const float *base = idx_vec(x, s);
    new_epoch(x);
    visit(x, s);
    hnsw_work_reserve(x, cap * (cap + 1));
    int n = 0, len = idx_block_len(x, b, l);
    for (int i = 1; i <= len; i++) {
        int32_t t = b[i];
        if (!idx_link_ok(x, t, l)) continue;
        if (x->state[t] == SLOT_LIVE) {
            if (visit(x, t)) x->work[n++] = (idx_cand){x->dot(base, idx_vec(x, t), x->dim), t};
            continue;
        }
        const int32_t *d = idx_links(x, t, l);
        int dlen = idx_block_len(x, d, l);
        for (int j = 1; j <= dlen; j++) {
            int32_t w = d[j];
            if (idx_link_ok(x, w, l) && x->state[w] == SLOT_LIVE && visit(x, w))
                x->work[n++] = (idx_cand){x->dot(base, idx_vec(x, w), x->dim), w};
        }
    }
    sort_best_first(x->work, n);
    write_block(b, x->work, select_neighbours(x, x->work, n, cap));
}

/* A link that fails its check counts as dead: the repair drops it. */
static int has_dead_link(mg_index *x, int32_t s, int l)
{
    const int32_t *b = idx_links(x, s, l);
    if ((uint32_t)b[0] > (uint32_t)(l ? x->p.m : x->m0)) return 1;
    for (int i = 1; i <= b[0]; i++)
        if ((uint32_t)b[i] >= (uint32_t)x->linked || x->state[b[i]] != SLOT_LIVE ||
            x->levels[b[i]] < l)
            return 1;
    return 0;
}

/* Links back in every live slot of the graph (below `linked`; the ones above
 * are not in it yet) that no level-0 link points to: a search
 * for its vector from the entry point, then links to it from the heuristic's
 * pick of the results. Best effort: a full block may prune the new link. */
static void relink_orphans(mg_index *x)
{
    uint8_t *in = mg_xcalloc((size_t)x->n ? (size_t)x->n : 1, 1);
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_LIVE) continue;
        const int32_t *b = idx_links(x, s, 0);
        int len = idx_block_len(x, b, 0);
        for (int i = 1; i <= len; i++)
            if (idx_link_ok(x, b[i], 0)) in[b[i]] = 1;
    }
    for (int32_t s = 0; s < x->linked; s++) {
        if (x->state[s] != SLOT_LIVE || in[s] || s == x->entry) continue;
        const float *q = idx_vec(x, s);
        descend(x, q, 0, s);
        int n = search_from_seeds(x, q, 0, x->p.ef_construction, 1, s);
        int k = select_neighbours(x, x->work, n, x->p.m);
        for (int i = 0; i < k; i++)
            add_link(x, x->work[i].slot, s, 0);
    }
    free(in);
}

static int cmp_slot_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x < y) - (x > y);
}

void hnsw_cleanup(mg_index *x)
{
    if (x->dead == 0) return;
    for (int l = 0; l <= x->max_level; l++)
        for (int32_t s = 0; s < x->n; s++)
            if (x->state[s] == SLOT_LIVE && x->levels[s] >= l && has_dead_link(x, s, l))
                repair_block(x, s, l);

    /* Dead slots leave the graph. Their vectors are zeroed so a saved file
     * does not keep deleted data. */
    int32_t want = x->n_free + x->dead;
    if (want > x->free_cap) {
        x->free_cap = want;
        x->free_list = mg_xrealloc(x->free_list, (size_t)want * sizeof(int32_t));
    }
    for (int32_t s = 0; s < x->n; s++) {
        if (x->state[s] != SLOT_DEAD) continue;
        x->state[s] = SLOT_FREE;
        x->ids[s] = 0;
        for (int l = 0; l <= x->levels[s]; l++)
            idx_links(x, s, l)[0] = 0;
        memset(idx_vec(x, s), 0, (size_t)x->dim * sizeof(float));
        memset(idx_code(x, s), 0, (size_t)x->code_len);
        x->free_list[x->n_free++] = s;
    }
    if (x->n_free > 1) qsort(x->free_list, (size_t)x->n_free, sizeof(int32_t), cmp_slot_desc);
    x->dead = 0;

    if (x->entry >= 0 && x->state[x->entry] != SLOT_LIVE) {
        x->entry = -1;
        x->max_level = -1;
        for (int32_t s = 0; s < x->linked; s++) {
            if (x->state[s] == SLOT_LIVE && x->levels[s] > x->max_level) {
                x->entry = s;
                x->max_level = x->levels[s];
            }
        }
    }
    if (x->entry >= 0) relink_orphans(x);
}

/* ------------------------------------------------------------------ diagnostics */

int64_t hnsw_reachable(mg_index *x)
{
    if (x->entry < 0) return 0;
    int32_t *queue = mg_xmalloc((size_t)x->n * sizeof(int32_t));
    int64_t head = 0, tail = 0, live = 0;
    new_epoch(x);
    visit(x, x->entry);
    queue[tail++] = x->entry;
    while (head < tail) {
        int32_t s = queue[head++];
        if (x->state[s] == SLOT_LIVE) live++;
        const int32_t *b = idx_links(x, s, 0);
        int len = idx_block_len(x, b, 0);
        for (int i = 1; i <= len; i++)
            if (idx_link_ok(x, b[i], 0) && visit(x, b[i])) queue[tail++] = b[i];
    }
    free(queue);
    return live;
}
