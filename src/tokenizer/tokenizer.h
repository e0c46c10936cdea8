/*
 * tokenizer.h - the insides of mg_tokenizer, shared by bpe.c, pretokenize.c,
 * tokenizer.c and the unit tests.
 *
 * Encoding text is two stages, as in tiktoken:
 *
 *   1. pre-tokenization (pretokenize.c) cuts the text into pieces with the
 *      encoding's regular expression (PCRE2, JIT-compiled). Bytes that are
 *      not valid UTF-8 never reach the regex: each maximal run of them is a
 *      piece of its own.
 *   2. byte pair encoding (bpe.c) turns each piece into token ids: a piece
 *      that is a token is one id; otherwise its bytes are merged pairwise,
 *      lowest rank first, until no adjacent pair is a token.
 *
 * Ranks are token ids. A rank file (".tiktoken") has one line per token:
 * the token's bytes in base64, a space, its rank. The ranks of the files we
 * load are dense (line i has rank i), which bpe_ranks relies on.
 *
 * Nothing here is global: a tokenizer handle owns its ranks, its compiled
 * pattern and its scratch space, so it is used by one thread at a time.
 */
#ifndef MG_TOKENIZER_TOKENIZER_H
#define MG_TOKENIZER_TOKENIZER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "memgpt.h"

/* "No rank": not a token. Larger than every real rank, so min() ignores it. */
#define BPE_NONE UINT32_MAX

/* ------------------------------------------------------------------ ranks */

/* One hash table slot: a token's length and first 8 bytes (little-endian,
 * zero-padded), so most lookups are settled by the slot alone. The layout
 * is also the on-disk one of the rank cache (rank_cache.c). */
typedef struct bpe_slot {
    uint64_t head;
    uint32_t rank; /* BPE_NONE: empty */
    uint32_t len;
} bpe_slot;

/* An open-addressing table; no lookup probes more than max_probe + 1 slots
 * (recorded when it is built, so a damaged cache cannot loop forever). */
typedef struct bpe_table {
    const bpe_slot *slots;
    uint32_t nslots;
    uint32_t max_probe;
} bpe_table;

/* Tokens below this rank (the earliest merges: common words, code, white
 * space) go to the small "hot" table; the rest to the "cold" one, in front
 * of which sits a one-bit-per-bucket filter. See bpe.c for why. */
#define BPE_HOT_RANKS   32768
#define BPE_FILTER_BITS (1u << 21)

/* A rank cache read page by page on first use (rank_cache.c): an anonymous
 * reservation the size of the file, where page k holds the file's page k
 * once `loaded` says so. Untouched pages cost no memory. */
typedef struct bpe_lazy {
    uint8_t *base;
    size_t size;
    int fd;
    uint64_t *loaded; /* one bit per 4 KB page */
    uint32_t pages_loaded;
    int io_error; /* a read failed: that page reads as zeros (no token) */
} bpe_lazy;

#define BPE_PAGE_SHIFT 12

/* Reads the pages first..last that are not loaded yet. */
void bpe_lazy_fault(bpe_lazy *z, size_t first, size_t last);
void bpe_lazy_free(bpe_lazy *z);

/* Every token of an encoding, indexed both ways: by rank (decode) and by
 * bytes (encode). The arrays are either heap memory the parser filled, or
 * views into a rank cache read on demand (lazy != NULL): then every read
 * goes through bpe_need first, and the contents are untrusted: every read
 * they steer is bounds-checked. */
typedef struct bpe_ranks {
    uint32_t n;                /* tokens; ranks are 0 .. n-1 */
    uint32_t max_len;          /* the longest token, in bytes */
    uint64_t nbytes;           /* bytes of all tokens; the array has 8 more */
    const uint8_t *bytes;      /* token r is bytes[off[r] .. off[r+1]) */
    const uint32_t *off;       /* n + 1 offsets */
    bpe_table hot, cold;       /* tokens of 3 bytes or more, by rank */
    const uint64_t *filter;    /* BPE_FILTER_BITS: maybe a cold token */
    const uint32_t *pair_rank; /* 65536: the rank of each 2-byte string, or BPE_NONE */
    uint32_t byte_rank[256];
    bpe_lazy *lazy; /* the cache the arrays view, or NULL: heap memory */
} bpe_ranks;

/* Makes p[0..len), inside one of r's arrays, readable. */
static inline void bpe_need(const bpe_ranks *r, const void *p, size_t len)
{
    bpe_lazy *z = r->lazy;
    if (!z || !len) return;
    size_t at = (size_t)((const uint8_t *)p - z->base);
    size_t first = at >> BPE_PAGE_SHIFT, last = (at + len - 1) >> BPE_PAGE_SHIFT;
    if (first == last && (z->loaded[first >> 6] >> (first & 63) & 1)) return;
    bpe_lazy_fault(z, first, last);
}

/* Token `rank`'s bytes (rank < r->n), made readable; *len gets their
 * number. NULL if the offsets are damaged (a cache file). */
const uint8_t *bpe_token(const bpe_ranks *r, uint32_t rank, size_t *len);

/* Parses the text of a rank file. `expected` is the number of tokens the
 * encoding has (0: any). On failure fills err (MG_ERR_CORRUPT, naming the
 * line) and leaves r empty. Free with bpe_ranks_free. */
mg_status bpe_ranks_parse(bpe_ranks *r, const char *data, size_t len, uint32_t expected,
                          mg_error *err);
void bpe_ranks_free(bpe_ranks *r);

/* Checks what lookups in r rely on, for tables read from a file: offsets
 * in range, probe bounds below table sizes, and a sample of tokens that
 * must be found at their own rank. MG_ERR_CORRUPT saying what is wrong. */
mg_status bpe_ranks_check(const bpe_ranks *r, mg_error *err);

/* The rank of the token whose bytes are p[0..n), or BPE_NONE. */
uint32_t bpe_rank_of(const bpe_ranks *r, const uint8_t *p, size_t n);

/* A remembered merge: the ids of a piece that is not a single token. */
#define BPE_CACHE_SLOTS 4096 /* a power of two */
#define BPE_CACHE_BYTES 22
#define BPE_CACHE_IDS   6
typedef struct bpe_cache_entry {
    uint8_t len; /* 0: empty */
    uint8_t count;
    uint8_t bytes[BPE_CACHE_BYTES];
    uint32_t ids[BPE_CACHE_IDS];
} bpe_cache_entry;

/* A tokenizer's working memory for merges: arrays for long pieces (grown to
 * the longest piece seen) and the merge cache (allocated on first use). */
typedef struct bpe_scratch {
    uint32_t *next, *prev, *pair, *part;
    uint64_t *heap;
    size_t cap;
    bpe_cache_entry *cache;
} bpe_scratch;

void bpe_scratch_free(bpe_scratch *s);

/* Pieces up to this many bytes are merged with the simple quadratic scan
 * (fastest for short pieces); longer ones with a heap. */
#define BPE_SMALL_PIECE 64

/* The token ids of one piece p[0..n) (n >= 1), written to out (room for n
 * ids). Returns how many. Identical to tiktoken's byte_pair_encode. Pieces
 * of up to BPE_CACHE_BYTES that merge into at most BPE_CACHE_IDS tokens are
 * remembered in s's cache. */
size_t bpe_encode_piece(const bpe_ranks *r, bpe_scratch *s, const uint8_t *p, size_t n,
                        uint32_t *out);

/* The two merge algorithms, exposed so the tests can hold them against each
 * other: the quadratic scan (n <= BPE_SMALL_PIECE) and the heap (any n). */
size_t bpe_merge_small(const bpe_ranks *r, const uint8_t *p, size_t n, uint32_t *out);
size_t bpe_merge_heap(const bpe_ranks *r, bpe_scratch *s, const uint8_t *p, size_t n,
                      uint32_t *out);

/* -------------------------------------------------------- pre-tokenization */

typedef struct pretok pretok;

/* Compiles (and JIT-compiles) the pattern of `encoding` ("cl100k_base" or
 * "o200k_base"). MG_ERR_USAGE for another name. Free with pretok_free. */
mg_status pretok_open(const char *encoding, pretok **out, mg_error *err);
void pretok_free(pretok *pt);

/* 1 if the pattern runs as JIT-compiled code (else PCRE2's interpreter). */
int pretok_is_jit(const pretok *pt);

/* A walk over the pieces of one text. The text is borrowed. */
typedef struct pretok_iter {
    const uint8_t *text;
    size_t len;
    size_t pos;       /* start of the next piece */
    size_t seg_start; /* current segment: valid UTF-8 or an invalid run */
    size_t seg_end;
    int seg_valid;
    size_t next_end; /* end of the second piece of the last match, or 0 */
} pretok_iter;

void pretok_begin(pretok_iter *it, const char *text, size_t len);

/* The next piece, as text[*start .. *end). Returns 0 when there is none. */
int pretok_next(pretok *pt, pretok_iter *it, size_t *start, size_t *end);

/* The length of the longest prefix of p[0..n) that is well-formed UTF-8
 * (RFC 3629: no overlongs, surrogates or code points past U+10FFFF). */
size_t pretok_valid_prefix(const uint8_t *p, size_t n);

/* The length of the run of bytes at p[0..n) where no well-formed UTF-8
 * sequence starts (0 if one starts at p). */
size_t pretok_invalid_run(const uint8_t *p, size_t n);

/* ---------------------------------------------------------------- handle */

struct mg_tokenizer {
    char encoding[16];
    int exact;        /* ranks loaded: counts are exact */
    char status[768]; /* why not exact; "" when exact */
    bpe_ranks ranks;
    int from_cache;                  /* the ranks are read from a rank cache */
    char cache_path[PATH_MAX + 128]; /* the cache used, or written (or tried) */
    char cache_note[768];            /* not from the cache: what happened to it */
    pretok *pt;
    bpe_scratch scratch;
};

/* 1 if the rank file of `encoding` is in one of the places
 * mg_tokenizer_open looks (checked with stat, nothing read); else 0 and
 * `why` gets the line mg_tokenizer_status would give. */
int tokenizer_probe(const char *encoding, char *why, size_t size);

/* Opens `encoding` with its rank file looked up in `dir` only (NULL: the
 * usual places, see mg_tokenizer_open). For tests. */
mg_status tokenizer_open_in(const char *encoding, const char *dir, mg_tokenizer **out,
                            mg_error *err);

#endif
