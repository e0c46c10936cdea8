/*
 * embed.h - turning text into fixed-size vectors for archival search.
 *
 * Archival memory stores each passage with an embedding and ranks passages by
 * cosine similarity to a query embedding. Embedders produce L2-normalized
 * float vectors, so cosine similarity is a plain dot product (see vec.h).
 *
 * The offline embedder is the default: it needs no network and no model file.
 * It is lexical (it sees shared words, word stems, word pairs and character
 * fragments, not meaning), so it finds "sailed" for "sailing" and "cafe" for
 * "café", but not "puppy" for "dog". Vectors from different embedders, or from
 * the offline embedder at different dimensions, are not comparable; store the
 * embedder name and dimension alongside the vectors.
 */
#ifndef MG_EMBED_EMBED_H
#define MG_EMBED_EMBED_H

#include <stddef.h>

/* The dimension archival memory uses with the offline embedder. */
#define MG_EMBED_OFFLINE_DIM 384

/*
 * Embeds `len` bytes of `text` into out[0..dim), L2-normalized.
 *
 * text: UTF-8; invalid bytes are treated as separators, NUL bytes too. Need not
 *       be NUL-terminated. May be NULL when len is 0.
 * out:  caller-owned, dim floats; always fully written.
 * dim:  any value >= 1 (MG_EMBED_OFFLINE_DIM in practice; above 2^20 only
 *       2^20 of the buckets are used). dim < 1 returns 0 and writes nothing.
 *
 * Returns 1 when the text had features; out then has unit length. Returns 0
 * when it had none (empty, whitespace or punctuation only); out is then all
 * zeros, which has cosine 0 with everything.
 *
 * Deterministic across runs, machines and compilers (no libm transcendental
 * functions, no floating-point contraction in C11 mode), keeps no global
 * state, and is thread-safe. Allocates scratch memory proportional to the
 * number of distinct words and word pairs (aborts on OOM) and frees it before
 * returning. Cost is linear in len.
 */
int mg_embed_offline(const char *text, size_t len, float *out, int dim);

/* 1 if w[0..n) is one of the offline embedder's stopwords: English function
 * words, lower case, apostrophes removed ("dont"). */
int mg_embed_is_stopword(const char *w, size_t n);

/* The weight of one word of a text, for mg_embed_offline_weighted: `word` is
 * word[0..n) as the tokenizer keeps it (lower case, accents folded,
 * apostrophes dropped, not stemmed, not NUL-terminated, at most the first 64
 * bytes of a longer token). Should return a value in [0, 1e6]; anything else
 * (NaN, negative, larger) counts as 1. */
typedef float (*mg_embed_weight_fn)(void *ctx, const char *word, size_t n);

/*
 * mg_embed_offline, with every feature of a word (its stem, its character
 * n-grams, and the geometric mean for a word pair) scaled by weight(ctx, word)
 * - called once per distinct word. Archival search embeds queries this way
 * with an inverse document frequency, so the query's rare words dominate its
 * vector the way they dominate a BM25 score. With weight NULL it is
 * mg_embed_offline. Words sharing a stem share the larger weight.
 */
int mg_embed_offline_weighted(const char *text, size_t len, float *out, int dim,
                              mg_embed_weight_fn weight, void *ctx);

#endif
