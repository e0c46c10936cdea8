/*
 * bpe.c - rank tables and the byte pair merge.
 *
 * The rank table. Encoding asks one question millions of times: "is this
 * byte string a token, and which?" Tokens are stored back to back in one
 * array, indexed by rank through an offset array (for decoding), and found
 * by their bytes through:
 *   - direct tables for one- and two-byte strings (every merge starts by
 *     asking about each adjacent byte pair);
 *   - open-addressing hash tables (linear probing, at most 60% full) of
 *     16-byte slots holding the rank, the length and the first 8 bytes of
 *     the token. Three quarters of all tokens, and most of the common
 *     words, are at most 8 bytes, so a lookup usually touches one cache
 *     line; longer tokens compare their remaining bytes in the array.
 *     There are two: the tokens of the first BPE_HOT_RANKS ranks (the
 *     earliest merges, which are the common words, code and white space)
 *     in a "hot" table of ~0.85 MB, the rest in a "cold" one, consulted
 *     only when a one-bit-per-bucket filter of the cold tokens says it may
 *     hold the string (~8% of misses for o200k_base). Ordinary text then
 *     keeps to the small table, which matters when the tables are read from
 *     a cache file page by page (rank_cache.c): memory grows by the pages
 *     touched. The longest probe of each table is recorded when it is
 *     built, and no lookup goes further (a damaged cache cannot loop).
 * After the regex, these lookups are most of the encoding time (~15 ns a
 * piece). Measured and rejected, as no faster: a small table of the most
 * frequent ranks probed first, a front cache of recent pieces, prefetching
 * the slots of a batch of pieces, and huge pages for the table.
 *
 * Loading parses the base64 lines and then builds the hash table in the
 * order of the slots (a counting sort first), not of the ranks, so that its
 * writes sweep through memory instead of landing at random.
 *
 * The merge. A piece that is itself a token is one id (tiktoken checks this
 * first; for cl100k_base and o200k_base the merge would reach the same id,
 * as the unit tests check for every token, so here it is only a shortcut).
 * Otherwise every byte starts as a part, and the adjacent pair whose
 * concatenation has the lowest rank is merged, the leftmost on ties, until
 * no pair is a token. Two implementations of that one rule:
 *
 *   - bpe_merge_small: tiktoken's own shape, arrays of parts and pair ranks,
 *     a linear scan for the minimum and a memmove per merge. O(n^2) but with
 *     tiny constants; right for the short pieces that are nearly all of them
 *     (up to BPE_SMALL_PIECE bytes).
 *   - bpe_merge_heap: parts as a doubly linked list over byte positions and
 *     the candidate pairs in a binary min-heap keyed by (rank, position), so
 *     a piece of n bytes costs O(n log n). Merging changes the pairs on both
 *     sides of the new part; instead of deleting their old heap entries, an
 *     entry is checked when it is popped: it is live if its part still
 *     exists and still has that pair rank. Ranks name byte strings, so a
 *     pair whose span changed necessarily has a different rank. The key's
 *     position breaks ties to the left, as the scan does.
 *
 * A piece that needs merging is usually a word outside the vocabulary that
 * comes back (a name, an identifier), so short ones are remembered in a
 * small direct-mapped cache of merges in the tokenizer's scratch space.
 *
 * The unit tests hold both merges against a brute-force reference.
 */
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"

/* ------------------------------------------------------------- hashing */

/* Little-endian loads, so a slot's `head` means the same on every host. The
 * compiler turns each into one load on little-endian machines. */
static inline uint64_t load64le(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline uint64_t load32le(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

/* The first min(n, 8) bytes of p as a little-endian word, zero-padded,
 * without reading past p[n-1]: two overlapping loads (or three bytes) whose
 * overlap holds the same bytes, so OR-ing them is exact. */
static inline uint64_t head_of(const uint8_t *p, size_t n)
{
    if (n >= 8) return load64le(p);
    if (n >= 4) return load32le(p) | load32le(p + n - 4) << (8 * (n - 4));
    if (n > 0)
        return (uint64_t)p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) |
               (uint64_t)p[n - 1] << (8 * (n - 1));
    return 0;
}

static inline uint64_t mix(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h;
}

/* The hash of a token: its head and length decide it for the short tokens
 * that are most lookups; longer ones fold in the rest, 8 bytes at a time. */
static inline uint64_t hash_of(const uint8_t *p, size_t n, uint64_t head)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h = (head ^ (uint64_t)n << 59) * k;
    for (size_t i = 8; i < n; i += 8) {
        uint64_t w = i + 8 <= n ? load64le(p + i) : load64le(p + n - 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    return mix(h);
}

/* Maps a hash onto [0, nslots) by multiplication (no power-of-two size). */
static inline uint32_t home_slot(uint64_t h, uint32_t nslots)
{
    return (uint32_t)(((h >> 32) * nslots) >> 32);
}

/* A slot's token is longer than 8 bytes: compare the rest in the arena.
 * The rank and offset come from the table, which may be a cache file, so
 * both are checked before they steer a read. */
static inline int long_match(const bpe_ranks *r, uint32_t rank, const uint8_t *p, size_t n)
{
    if (rank >= r->n) return 0;
    bpe_need(r, &r->off[rank], sizeof *r->off);
    uint64_t at = r->off[rank];
    if (at + n > r->nbytes) return 0;
    bpe_need(r, r->bytes + at + 8, n - 8);
    return memcmp(r->bytes + at + 8, p + 8, n - 8) == 0;
}

static inline int slot_matches(const bpe_ranks *r, const bpe_slot *s, const uint8_t *p, size_t n,
                               uint64_t head)
{
    return s->head == head && s->len == n && (n <= 8 || long_match(r, s->rank, p, n));
}

/* The rank of p[0..n) in table t, or BPE_NONE. */
static inline uint32_t table_find(const bpe_ranks *r, const bpe_table *t, const uint8_t *p,
                                  size_t n, uint64_t head, uint64_t hash)
{
    uint32_t i = home_slot(hash, t->nslots);
    for (uint32_t k = 0; k <= t->max_probe; k++) {
        const bpe_slot *s = &t->slots[i];
        bpe_need(r, s, sizeof *s);
        if (s->rank == BPE_NONE) return BPE_NONE;
        if (slot_matches(r, s, p, n, head)) return s->rank;
        if (++i == t->nslots) i = 0;
    }
    return BPE_NONE;
}

/* The filter's bit for a hash: the low bits, independent of the home slot,
 * which the high bits choose. */
static inline int filter_has(const bpe_ranks *r, uint64_t hash)
{
    uint32_t bit = (uint32_t)hash & (BPE_FILTER_BITS - 1);
    const uint64_t *word = &r->filter[bit >> 6];
    bpe_need(r, word, sizeof *word);
    return (int)(*word >> (bit & 63) & 1);
}

/* The rank of p[0..n) (n >= 3) given its head and hash, or BPE_NONE. */
static inline uint32_t rank_find(const bpe_ranks *r, const uint8_t *p, size_t n, uint64_t head,
                                 uint64_t hash)
{
    if (n > r->max_len) return BPE_NONE;
    uint32_t rank = table_find(r, &r->hot, p, n, head, hash);
    if (rank != BPE_NONE || !filter_has(r, hash)) return rank;
    return table_find(r, &r->cold, p, n, head, hash);
}

uint32_t bpe_rank_of(const bpe_ranks *r, const uint8_t *p, size_t n)
{
    if (n == 2) {
        const uint32_t *at = &r->pair_rank[p[0] | p[1] << 8];
        bpe_need(r, at, sizeof *at);
        return *at;
    }
    if (n == 1) return r->byte_rank[p[0]];
    if (n == 0) return BPE_NONE;
    uint64_t head = head_of(p, n);
    return rank_find(r, p, n, head, hash_of(p, n, head));
}

/* The hash of token `rank` (already in bytes/off). */
static uint64_t token_hash(const bpe_ranks *r, uint32_t rank, uint64_t *head)
{
    const uint8_t *p = r->bytes + r->off[rank];
    size_t n = r->off[rank + 1] - r->off[rank];
    *head = head_of(p, n);
    return hash_of(p, n, *head);
}

/* Fills table t (slots already allocated and empty) with the tokens of 3
 * bytes or more whose ranks are in [lo, hi). Inserting in rank order would
 * write all over a table of several MB, a cache miss per token, which was
 * most of the loading time; so the tokens are first bucket-sorted by home
 * slot (a counting sort over runs of 64 slots) and inserted in table order.
 * Records the longest probe. Returns BPE_NONE, or the rank of a duplicate. */
static uint32_t build_table(const bpe_ranks *r, bpe_slot *slots, bpe_table *t, uint32_t lo,
                            uint32_t hi)
{
    const uint32_t shift = 6, buckets = (t->nslots >> shift) + 1, count = hi - lo;
    uint32_t *start = mg_xcalloc(buckets + 1, sizeof *start);
    uint32_t *home = mg_xmalloc((count ? count : 1) * sizeof *home);
    uint32_t *order = mg_xmalloc((count ? count : 1) * sizeof *order);
    uint64_t head;
    for (uint32_t k = 0; k < count; k++) {
        int in_table = r->off[lo + k + 1] - r->off[lo + k] > 2;
        home[k] = in_table ? home_slot(token_hash(r, lo + k, &head), t->nslots) : UINT32_MAX;
        if (in_table) start[(home[k] >> shift) + 1]++;
    }
    for (uint32_t b = 0; b < buckets; b++)
        start[b + 1] += start[b];
    uint32_t total = start[buckets];
    for (uint32_t k = 0; k < count; k++)
        if (home[k] != UINT32_MAX) order[start[home[k] >> shift]++] = k;
    uint32_t dup = BPE_NONE;
    for (uint32_t j = 0; j < total && dup == BPE_NONE; j++) {
        uint32_t k = order[j], rank = lo + k, i = home[k], probe = 0;
        const uint8_t *p = r->bytes + r->off[rank];
        size_t n = r->off[rank + 1] - r->off[rank];
        uint64_t h = head_of(p, n);
        while (slots[i].rank != BPE_NONE) {
            if (slot_matches(r, &slots[i], p, n, h)) {
                dup = slots[i].rank > rank ? slots[i].rank : rank;
                break;
            }
            if (++i == t->nslots) i = 0;
            probe++;
        }
        if (dup != BPE_NONE) break;
        slots[i] = (bpe_slot){.head = h, .rank = rank, .len = (uint32_t)n};
        if (probe > t->max_probe) t->max_probe = probe;
    }
    free(start);
    free(home);
    free(order);
    return dup;
}

/* A table for `count` tokens, at most 60% full. */
static bpe_slot *new_table(bpe_table *t, uint32_t count)
{
    t->nslots = count + count * 2 / 3 + 1;
    t->max_probe = 0;
    bpe_slot *slots = mg_xmalloc(t->nslots * sizeof *slots);
    for (uint32_t i = 0; i < t->nslots; i++)
        slots[i] = (bpe_slot){.rank = BPE_NONE};
    t->slots = slots;
    return slots;
}

/* Builds the hot and cold tables and the filter of parsed ranks. Returns
 * BPE_NONE, or the rank of a duplicate token. */
static uint32_t build_tables(bpe_ranks *r)
{
    uint32_t split = r->n < BPE_HOT_RANKS ? r->n : BPE_HOT_RANKS;
    bpe_slot *hot = new_table(&r->hot, split), *cold = new_table(&r->cold, r->n - split);
    uint32_t dup = build_table(r, hot, &r->hot, 0, split);
    if (dup == BPE_NONE) dup = build_table(r, cold, &r->cold, split, r->n);
    uint64_t *filter = mg_xcalloc(BPE_FILTER_BITS / 64, sizeof *filter);
    r->filter = filter;
    uint64_t head;
    for (uint32_t rank = split; rank < r->n && dup == BPE_NONE; rank++) {
        if (r->off[rank + 1] - r->off[rank] <= 2) continue;
        uint64_t hash = token_hash(r, rank, &head);
        const uint8_t *p = r->bytes + r->off[rank];
        size_t n = r->off[rank + 1] - r->off[rank];
        if (table_find(r, &r->hot, p, n, head, hash) != BPE_NONE) dup = rank;
        uint32_t bit = (uint32_t)hash & (BPE_FILTER_BITS - 1);
        filter[bit >> 6] |= 1ull << (bit & 63);
    }
    return dup;
}

/* ------------------------------------------------------------- loading */

/* The value of each base64 digit; -1 for every other byte. */
static void base64_table(int8_t t[256])
{
    const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(t, -1, 256);
    for (int i = 0; i < 64; i++)
        t[(unsigned char)digits[i]] = (int8_t)i;
}

/* Decodes padded base64 s[0..n) into out (room for n/4*3 bytes). Returns the
 * decoded length, or -1 if s is not padded base64. */
static long base64_decode(const int8_t t[256], const char *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 4) return -1;
    size_t pad = s[n - 1] != '=' ? 0 : s[n - 2] == '=' ? 2 : 1;
    size_t whole = pad ? n - 4 : n, o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < whole; i += 4) {
        int a = t[u[i]], b = t[u[i + 1]], c = t[u[i + 2]], d = t[u[i + 3]];
        if ((a | b | c | d) < 0) return -1;
        uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(w >> 16);
        out[o++] = (uint8_t)(w >> 8);
        out[o++] = (uint8_t)w;
    }
    if (pad) {
        int a = t[u[whole]], b = t[u[whole + 1]], c = pad == 1 ? t[u[whole + 2]] : 0;
        if ((a | b | c) < 0) return -1;
        uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        out[o++] = (uint8_t)(w >> 16);
        if (pad == 1) out[o++] = (uint8_t)(w >> 8);
    }
    return (long)o;
}

const uint8_t *bpe_token(const bpe_ranks *r, uint32_t rank, size_t *len)
{
    bpe_need(r, &r->off[rank], 2 * sizeof *r->off);
    uint32_t from = r->off[rank], to = r->off[rank + 1];
    if (from > to || to > r->nbytes) return NULL;
    *len = to - from;
    bpe_need(r, r->bytes + from, to - from);
    return r->bytes + from;
}

void bpe_ranks_free(bpe_ranks *r)
{
    if (r->lazy) {
        bpe_lazy_free(r->lazy);
    } else {
        /* Heap memory the parser allocated; const only to the lookups. */
        free((void *)r->bytes);
        free((void *)r->off);
        free((void *)r->hot.slots);
        free((void *)r->cold.slots);
        free((void *)r->filter);
        free((void *)r->pair_rank);
    }
    memset(r, 0, sizeof *r);
}

/* Tokens of one or two bytes live in direct tables, not the hash table:
 * they are the first lookups of every merge. 0 if already there. */
static int short_insert(bpe_ranks *r, uint32_t *pair_rank, uint32_t rank)
{
    const uint8_t *p = r->bytes + r->off[rank];
    uint32_t *at =
        r->off[rank + 1] - r->off[rank] == 1 ? &r->byte_rank[p[0]] : &pair_rank[p[0] | p[1] << 8];
    if (*at != BPE_NONE) return 0;
    *at = rank;
    return 1;
}

static mg_status parse_fail(bpe_ranks *r, mg_error *err, size_t line, const char *what)
{
    bpe_ranks_free(r);
    return mg_err_set(err, MG_ERR_CORRUPT, "line %zu: %s", line, what);
}

mg_status bpe_ranks_parse(bpe_ranks *r, const char *data, size_t len, uint32_t expected,
                          mg_error *err)
{
    memset(r, 0, sizeof *r);
    size_t lines = 0;
    for (const char *nl = data; (nl = memchr(nl, '\n', len - (size_t)(nl - data))); nl++)
        lines++;
    if (len && data[len - 1] != '\n') lines++;
    if (lines == 0 || lines >= UINT32_MAX / 2) return parse_fail(r, err, 0, "no tokens");
    for (int b = 0; b < 256; b++)
        r->byte_rank[b] = BPE_NONE;
    uint32_t *pair_rank = mg_xmalloc(65536 * sizeof *pair_rank);
    r->pair_rank = pair_rank;
    for (int i = 0; i < 65536; i++)
        pair_rank[i] = BPE_NONE;
    /* Decoded tokens are shorter than their lines, so len bounds the arena. */
    uint8_t *bytes = mg_xmalloc(len + 8);
    uint32_t *off = mg_xmalloc((lines + 1) * sizeof *off);
    r->bytes = bytes;
    r->off = off;

    int8_t b64[256];
    base64_table(b64);
    const char *at = data, *end = data + len;
    size_t used = 0;
    uint32_t n = 0;
    while (at < end) {
        /* One line: BASE64 SPACE DIGITS NEWLINE (no newline at the end is fine). */
        const char *line = at;
        while (at < end && *at != ' ' && *at != '\n')
            at++;
        if (at == line && (at == end || *at == '\n')) {
            if (at + 1 >= end) break; /* a final empty line */
            return parse_fail(r, err, n + 1, "empty line");
        }
        if (at == end || *at != ' ')
            return parse_fail(r, err, n + 1, "no space between token and rank");
        off[n] = (uint32_t)used;
        long tok_len = base64_decode(b64, line, (size_t)(at - line), bytes + used);
        if (tok_len <= 0) return parse_fail(r, err, n + 1, "the token is not base64");
        const char *digits = ++at;
        uint64_t rank = 0;
        while (at < end && *at >= '0' && *at <= '9' && rank <= UINT32_MAX)
            rank = rank * 10 + (uint64_t)(*at++ - '0');
        if (at == digits) return parse_fail(r, err, n + 1, "no rank");
        if (at < end && *at != '\n') return parse_fail(r, err, n + 1, "the rank is not a number");
        at++; /* the newline */
        if (rank != n) return parse_fail(r, err, n + 1, "ranks are not consecutive from 0");
        used += (size_t)tok_len;
        off[n + 1] = (uint32_t)used;
        if ((uint32_t)tok_len > r->max_len) r->max_len = (uint32_t)tok_len;
        if (tok_len <= 2 && !short_insert(r, pair_rank, n))
            return parse_fail(r, err, n + 1, "duplicate token");
        n++;
    }
    r->n = n;
    r->nbytes = used;
    bytes = mg_xrealloc(bytes, used + 8); /* the arena was sized by the file */
    memset(bytes + used, 0, 8);           /* written to the cache as they are */
    r->bytes = bytes;
    uint32_t dup = build_tables(r);
    if (dup != BPE_NONE) return parse_fail(r, err, dup + 1, "duplicate token");
    if (expected && n != expected) {
        char what[96];
        snprintf(what, sizeof what, "%u tokens, expected %u (truncated?)", n, expected);
        return parse_fail(r, err, n, what);
    }
    for (int b = 0; b < 256; b++)
        if (r->byte_rank[b] == BPE_NONE)
            return parse_fail(r, err, n, "not every single byte is a token");
    return MG_OK;
}

/* The tokens the check looks up: spread over the hot ranks, whose pages
 * any use touches anyway, plus the last token (one page of each array). */
#define CHECK_SAMPLES 32

mg_status bpe_ranks_check(const bpe_ranks *r, mg_error *err)
{
    bpe_need(r, &r->off[0], sizeof *r->off);
    bpe_need(r, &r->off[r->n], sizeof *r->off);
    if (r->n < 256 || r->off[0] != 0 || r->off[r->n] != r->nbytes || r->nbytes > UINT32_MAX ||
        r->max_len == 0 || r->max_len > 4096)
        return mg_err_set(err, MG_ERR_CORRUPT, "the token arena does not add up");
    if (!r->hot.nslots || r->hot.max_probe >= r->hot.nslots || !r->cold.nslots ||
        r->cold.max_probe >= r->cold.nslots)
        return mg_err_set(err, MG_ERR_CORRUPT, "the hash tables' bounds are wrong");
    for (int b = 0; b < 256; b++)
        if (r->byte_rank[b] >= r->n)
            return mg_err_set(err, MG_ERR_CORRUPT, "byte %d has no token", b);
    uint32_t hot = r->n < BPE_HOT_RANKS ? r->n : BPE_HOT_RANKS;
    for (uint32_t k = 0; k <= CHECK_SAMPLES; k++) {
        uint32_t rank =
            k < CHECK_SAMPLES ? (uint32_t)((uint64_t)k * hot / CHECK_SAMPLES) : r->n - 1;
        size_t len;
        const uint8_t *token = bpe_token(r, rank, &len);
        if (!token || !len || len > r->max_len || bpe_rank_of(r, token, len) != rank)
            return mg_err_set(err, MG_ERR_CORRUPT, "token %u is not found at its rank", rank);
    }
    return MG_OK;
}

/* --------------------------------------------------------------- merge */

size_t bpe_merge_small(const bpe_ranks *r, const uint8_t *p, size_t n, uint32_t *out)
{
    /* Part i is p[start[i] .. start[i+1]) with token rank part[i]; pair[i]
     * is the rank of parts i and i+1 joined (BPE_NONE for the last part). */
    uint32_t start[BPE_SMALL_PIECE + 1], part[BPE_SMALL_PIECE], pair[BPE_SMALL_PIECE];
    size_t m = n;
    for (size_t i = 0; i < n; i++) {
        start[i] = (uint32_t)i;
        part[i] = r->byte_rank[p[i]];
        pair[i] = i + 1 < n ? bpe_rank_of(r, p + i, 2) : BPE_NONE;
    }
    start[n] = (uint32_t)n;
    for (;;) {
        uint32_t best = BPE_NONE;
        size_t b = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            if (pair[i] < best) {
                best = pair[i];
                b = i;
            }
        }
        if (best == BPE_NONE) break;
        /* Part b absorbs part b+1: drop entry b+1 of every array. */
        part[b] = best;
        memmove(start + b + 1, start + b + 2, (m - b - 1) * sizeof *start);
        memmove(part + b + 1, part + b + 2, (m - b - 2) * sizeof *part);
        memmove(pair + b + 1, pair + b + 2, (m - b - 2) * sizeof *pair);
        m--;
        pair[b] = b + 1 < m ? bpe_rank_of(r, p + start[b], start[b + 2] - start[b]) : BPE_NONE;
        if (b > 0) pair[b - 1] = bpe_rank_of(r, p + start[b - 1], start[b + 1] - start[b - 1]);
    }
    memcpy(out, part, m * sizeof *out);
    return m;
}

static void scratch_reserve(bpe_scratch *s, size_t n)
{
    if (n <= s->cap) return;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n)
        cap *= 2;
    s->next = mg_xrealloc(s->next, cap * sizeof *s->next);
    s->prev = mg_xrealloc(s->prev, cap * sizeof *s->prev);
    s->pair = mg_xrealloc(s->pair, cap * sizeof *s->pair);
    s->part = mg_xrealloc(s->part, cap * sizeof *s->part);
    /* The heap holds at most n - 1 + (merges so far) <= 2n entries: each
     * merge pops its own entry and pushes at most two. */
    s->heap = mg_xrealloc(s->heap, 2 * cap * sizeof *s->heap);
    s->cap = cap;
}

void bpe_scratch_free(bpe_scratch *s)
{
    free(s->cache);
    free(s->next);
    free(s->prev);
    free(s->pair);
    free(s->part);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

/* A binary min-heap of (rank << 32 | position) keys. */
static void heap_push(uint64_t *h, size_t *len, uint64_t key)
{
    size_t i = (*len)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (h[up] <= key) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = key;
}

static uint64_t heap_pop(uint64_t *h, size_t *len)
{
    uint64_t top = h[0], last = h[--*len];
    size_t n = *len, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

size_t bpe_merge_heap(const bpe_ranks *r, bpe_scratch *s, const uint8_t *p, size_t n, uint32_t *out)
{
    scratch_reserve(s, n);
    /* Parts are named by their first byte's position. next[i] is the next
     * part's position (n after the last), so part i spans i .. next[i]. */
    uint32_t *next = s->next, *prev = s->prev, *pair = s->pair, *part = s->part;
    uint64_t *heap = s->heap;
    size_t heap_len = 0;
    for (size_t i = 0; i < n; i++) {
        next[i] = (uint32_t)(i + 1);
        prev[i] = (uint32_t)i - 1; /* wraps for i = 0: never read */
        part[i] = r->byte_rank[p[i]];
        pair[i] = i + 1 < n ? bpe_rank_of(r, p + i, 2) : BPE_NONE;
        if (pair[i] != BPE_NONE) heap[heap_len++] = (uint64_t)pair[i] << 32 | i;
    }
    /* Heapify the initial entries in place (cheaper than n pushes). */
    for (size_t i = heap_len / 2; i-- > 0;) {
        uint64_t key = heap[i];
        size_t at = i;
        for (;;) {
            size_t c = 2 * at + 1;
            if (c >= heap_len) break;
            if (c + 1 < heap_len && heap[c + 1] < heap[c]) c++;
            if (heap[c] >= key) break;
            heap[at] = heap[c];
            at = c;
        }
        heap[at] = key;
    }
    while (heap_len) {
        uint64_t key = heap_pop(heap, &heap_len);
        uint32_t rank = (uint32_t)(key >> 32), i = (uint32_t)key;
        if (pair[i] != rank) continue; /* stale: the part changed or is gone */
        uint32_t gone = next[i];
        part[i] = rank;
        next[i] = next[gone];
        pair[gone] = BPE_NONE;
        if (next[i] < n) prev[next[i]] = i;
        if (next[i] < n) {
            uint32_t end = next[next[i]];
            pair[i] = bpe_rank_of(r, p + i, end - i);
            if (pair[i] != BPE_NONE) heap_push(heap, &heap_len, (uint64_t)pair[i] << 32 | i);
        } else {
            pair[i] = BPE_NONE;
        }
        if (i > 0) {
            uint32_t left = prev[i];
            pair[left] = bpe_rank_of(r, p + left, next[i] - left);
            if (pair[left] != BPE_NONE)
                heap_push(heap, &heap_len, (uint64_t)pair[left] << 32 | left);
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i = next[i])
        out[m++] = part[i];
    return m;
}

size_t bpe_encode_piece(const bpe_ranks *r, bpe_scratch *s, const uint8_t *p, size_t n,
                        uint32_t *out)
{
    if (n <= 2) {
        uint32_t whole = bpe_rank_of(r, p, n);
        if (whole != BPE_NONE) {
            out[0] = whole;
            return 1;
        }
        return bpe_merge_small(r, p, n, out);
    }
    uint64_t head = head_of(p, n), hash = hash_of(p, n, head);
    uint32_t whole = rank_find(r, p, n, head, hash);
    if (whole != BPE_NONE) {
        out[0] = whole;
        return 1;
    }
    if (n > BPE_CACHE_BYTES)
        return n <= BPE_SMALL_PIECE ? bpe_merge_small(r, p, n, out)
                                    : bpe_merge_heap(r, s, p, n, out);
    /* Most pieces that need merging are words outside the vocabulary that
     * recur (names, identifiers), so their merges are remembered. */
    if (!s->cache) s->cache = mg_xcalloc(BPE_CACHE_SLOTS, sizeof *s->cache);
    bpe_cache_entry *e = &s->cache[hash & (BPE_CACHE_SLOTS - 1)];
    if (e->len == n && memcmp(e->bytes, p, n) == 0) {
        memcpy(out, e->ids, e->count * sizeof *out);
        return e->count;
    }
    size_t m = bpe_merge_small(r, p, n, out);
    if (m <= BPE_CACHE_IDS) {
        e->len = (uint8_t)n;
        e->count = (uint8_t)m;
        memcpy(e->bytes, p, n);
        memcpy(e->ids, out, m * sizeof *out);
    }
    return m;
}
