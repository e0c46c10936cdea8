/*
 * embedder.h - turning text into vectors, by the agent's chosen embedder.
 *
 * An embedder is named by a spec string stored with the agent and with every
 * passage: "offline" (the built-in lexical embedder, no network) or
 * "openai/MODEL" (any OpenAI-compatible /v1/embeddings endpoint, configured
 * by OPENAI_BASE_URL and OPENAI_API_KEY) or "ollama/MODEL" (Ollama's
 * /api/embed, configured by OLLAMA_HOST). Passages are only ever compared
 * with queries embedded by the same spec, so dimensions always agree.
 *
 * Network embedders are asked in batches: one HTTP request carries many
 * texts (`input` as an array, for both APIs), because a load of ten
 * thousand passages should cost tens of round trips, not ten thousand. A
 * batch is cut into requests of at most MG_EMBED_MAX_INPUTS texts and
 * MG_EMBED_MAX_BYTES bytes of text:
 *
 *  - OpenAI takes up to 2048 inputs and 300,000 tokens per request. A token
 *    is at least one byte, so 256 KiB of text can never pass the token cap
 *    whatever the text is, and 256 inputs keep one request's answer (256
 *    vectors of up to 3072 floats as JSON, about 15 MB at worst) well under
 *    the HTTP layer's 64 MB limit.
 *  - Ollama documents no cap, but embeds a request in one go and answers
 *    only when all of it is done; the same caps keep a request far inside
 *    MEMGPT_HTTP_TIMEOUT on a slow machine.
 *
 * A single text longer than MG_EMBED_MAX_BYTES goes alone (the server
 * decides: OpenAI refuses over 8192 tokens, Ollama truncates). Servers with
 * smaller caps exist (Hugging Face's text-embeddings-inference takes 32
 * inputs by default and answers 413; a proxy's body limit is a 413 too):
 * a request of several texts refused with 413, or with a 400 that names a
 * size or a limit, is split in half, and
 * the rest of the call keeps the smaller size, so a cap of c costs at most
 * log2(256 / c) refused requests per call. Each request
 * is retried by the HTTP layer like a chat request (429, 5xx, dropped
 * connections, Retry-After), and every answer is checked in full before any
 * vector is handed out: the number of vectors, each input answered exactly
 * once, one dimension for all, finite numbers. A batch either succeeds as a
 * whole or fails with nothing returned, so a caller never stores half of
 * one.
 */
#ifndef MG_EMBED_EMBEDDER_H
#define MG_EMBED_EMBEDDER_H

#include <jansson.h>
#include <stddef.h>

#include "memgpt.h"

/* Most texts in one embeddings request. */
#define MG_EMBED_MAX_INPUTS 256
/* Most bytes of text in one embeddings request (one longer text goes alone). */
#define MG_EMBED_MAX_BYTES ((size_t)256 * 1024)
/* Largest embedding dimension accepted from a server. */
#define MG_EMBED_MAX_DIM 65536

/* Checks that `spec` names a known embedder. */
mg_status mg_embedder_check(const char *spec, mg_error *err);

/* Embeds `text`. On success *vec (caller frees) holds *dim floats of unit
 * length. */
mg_status mg_embed_text(const char *spec, const char *text, float **vec, int *dim, mg_error *err);

/* Embeds texts[0..n) (n >= 1), in as few requests as the caps above allow.
 * On success vecs[i] (caller frees each; `vecs` itself is the caller's array
 * of n pointers) holds *dim floats of unit length for texts[i]. On failure
 * every vecs[i] is NULL: nothing of a half-done batch is returned. */
mg_status mg_embed_texts(const char *spec, const char *const *texts, int n, float **vecs, int *dim,
                         mg_error *err);

/* ---- pure pieces, exposed for the unit tests ---- */

/* How many of texts[0..n) the next request takes: as many as fit in
 * max_inputs texts and max_bytes bytes, and at least one (0 when n < 1). */
int mg_embed_request_size(const char *const *texts, int n, int max_inputs, size_t max_bytes);

/* Reads `rows`, which should be a JSON array of exactly n arrays of numbers
 * (the embeddings of n inputs, in input order), into vecs[0..n) (each
 * malloc'd, caller frees) and *dim. Refuses, as MG_ERR_PROVIDER naming
 * `what` (the endpoint) and the offending row: a count other than n, a row
 * that is not a list of 1 to MG_EMBED_MAX_DIM numbers, rows of different
 * lengths, and numbers that are not finite or do not fit a float. On
 * failure every vecs[i] is NULL. Vectors are returned as sent (not
 * normalised). */
mg_status mg_embed_rows_read(json_t *rows, int n, const char *what, float **vecs, int *dim,
                             mg_error *err);

#endif
