/*
 * vec.h - small dense-vector helpers for embeddings.
 *
 * Embeddings are plain float arrays of a caller-known dimension. Nothing here
 * allocates except mg_topk_init, and nothing keeps global state, so every
 * function is safe to call from any thread on data that thread owns.
 */
#ifndef MG_EMBED_VEC_H
#define MG_EMBED_VEC_H

#include <stdint.h>

/* Returns sum(a[i] * b[i]) for i < dim (0 when dim <= 0). The summation order
 * is fixed (eight interleaved partial sums, then a fixed combine), so the
 * result is the same on every run and machine for the same inputs; it may
 * differ in the last bits from a naive left-to-right loop. For unit vectors
 * this is the cosine similarity. */
float mg_vec_dot(const float *a, const float *b, int dim);

/* Scales v[0..dim) in place to unit L2 length. A zero vector (or one whose
 * norm is not finite) is left unchanged, so "no features" stays all zeros. */
void mg_vec_normalize(float *v, int dim);

/*
 * Bounded top-k selection.
 *
 * Keeps the k best (id, score) pairs seen by mg_topk_push in O(log k) per push,
 * using a min-heap whose root is the worst kept entry. "Better" means a higher
 * score; equal scores prefer the larger id, because ids grow with insertion
 * time and newer passages should win ties. NaN scores are ignored.
 *
 * Lifecycle: mg_topk_init (allocates ids/scores for k entries), any number of
 * mg_topk_push, at most one mg_topk_sort (after which ids[0..count) and
 * scores[0..count) are ordered best first and no further push is allowed),
 * then mg_topk_free. The struct owns its two arrays.
 */
typedef struct mg_topk {
    int k;         /* capacity, >= 1 */
    int count;     /* entries kept so far, <= k */
    int64_t *ids;  /* owned, k entries */
    float *scores; /* owned, k entries */
} mg_topk;

/* Allocates room for k entries (k < 1 is treated as 1). Aborts on OOM. */
void mg_topk_init(mg_topk *t, int k);
/* Offers one candidate; keeps it only if it is among the k best so far. */
void mg_topk_push(mg_topk *t, int64_t id, float score);
/* Orders the kept entries best first, in place. Ends the push phase. */
void mg_topk_sort(mg_topk *t);
/* Frees the arrays and zeroes the struct; safe to call twice. */
void mg_topk_free(mg_topk *t);

/* Stored embeddings (see vec.c): a BLOB of mg_vec_blob_size(dim) bytes, one
 * a dimension plus an 8-byte head, the format fixed so a database file moves
 * between machines of either byte order. */
int mg_vec_blob_size(int dim);

/* Encodes v[0..dim) into out, which must hold mg_vec_blob_size(dim) bytes.
 * Elements that are not finite are stored as 0. What mg_vec_from_blob gives
 * back differs from v by at most 1/254 of v's largest element. */
void mg_vec_to_blob(const float *v, int dim, unsigned char *out);

/* The dimension of a stored BLOB of either format (this one, or the
 * little-endian float32 written before it); 0 when its size fits neither. */
int mg_vec_blob_dim(const void *blob, int bytes);

/* Decodes a stored BLOB of either format into out[0..dim). Returns 1 on
 * success, 0 (out untouched) when the BLOB does not hold
 * dim dimensions, e.g. a passage embedded with a different model. blob may
 * be unaligned. */
int mg_vec_from_blob(const void *blob, int bytes, float *out, int dim);

#endif
