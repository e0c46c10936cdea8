/*
 * rank_cache.h - rank tables precompiled into a file and read page by page
 * on demand (see rank_cache.c for the format and why it is trusted).
 */
#ifndef MG_TOKENIZER_RANK_CACHE_H
#define MG_TOKENIZER_RANK_CACHE_H

#include <sys/stat.h>

#include "tokenizer/tokenizer.h"

/* What identifies a version of a rank file without reading it. */
typedef struct rank_stamp {
    uint64_t size;
    uint64_t mtime_ns;
    uint64_t ino;
} rank_stamp;

void rank_stamp_of(const struct stat *st, rank_stamp *out);

/* Opens the cache at `path` as r if it was built from the rank file with
 * `stamp` for `encoding` (`expected` tokens) and passes every check.
 * MG_ERR_NOT_FOUND if there is no such file; MG_ERR_CORRUPT (saying why:
 * stale, truncated, damaged...) if it cannot be used; r is then empty. Free
 * with bpe_ranks_free (which closes the file). */
mg_status rank_cache_open(const char *path, const char *encoding, uint32_t expected,
                          const rank_stamp *stamp, bpe_ranks *r, mg_error *err);

/* Writes parsed ranks r as the cache at `path`: a temporary file in the
 * same directory, synced, then renamed over `path`, so readers see the old
 * file or the new one. `sha256` is the rank file's digest. */
mg_status rank_cache_write(const char *path, const char *encoding, const bpe_ranks *r,
                           const rank_stamp *stamp, const uint8_t sha256[32], mg_error *err);

/* The sections of a cache file, in file order, for tests that damage one. */
enum {
    RANK_CACHE_BYTE_RANK,
    RANK_CACHE_PAIR_RANK,
    RANK_CACHE_FILTER,
    RANK_CACHE_OFF,
    RANK_CACHE_BYTES,
    RANK_CACHE_HOT,
    RANK_CACHE_COLD,
    RANK_CACHE_SECTIONS
};

/* Where each section of the cache file at `path` is, read from its header
 * as written (not checked). MG_OK or an I/O error. */
mg_status rank_cache_layout(const char *path, uint64_t off[RANK_CACHE_SECTIONS],
                            uint64_t len[RANK_CACHE_SECTIONS], mg_error *err);

#endif
