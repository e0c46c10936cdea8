/*
 * archival.h - archival memory: passages stored and searched by meaning.
 *
 * Each passage keeps its text verbatim, tags, a time and the embedding made
 * by the agent's embedder (recorded with it). Search fuses two rankings by
 * their normalized scores: BM25 over the text, so exact names and rare words
 * are found even when the embedding is weak, and cosine similarity of
 * embeddings, so paraphrases (with a neural embedder) and typos (with the
 * offline one) are found even when no word matches. Dates named in the query
 * favour passages stored then, and passages stored together share some of
 * each other's relevance. archival.c explains each step.
 */
#ifndef MG_MEMORY_ARCHIVAL_H
#define MG_MEMORY_ARCHIVAL_H

#include <jansson.h>

#include "memgpt.h"
#include "util/uuid.h"

mg_status archival_insert(mg_store *store, int64_t agent_id, const char *embedder, const char *text,
                          const char *tags_json, int64_t time_ms, char uuid_out[MG_UUID_SIZE],
                          mg_error *err);

mg_status archival_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err);

/* Which rankings a search uses. Agents always get ARCHIVAL_HYBRID; the single
 * rankings exist so an evaluation can measure what each contributes
 * (bench/eval_locomo.c). */
typedef enum archival_mode {
    ARCHIVAL_HYBRID = 0, /* BM25 and cosine fused, with dates and neighbours */
    ARCHIVAL_VECTOR,     /* cosine only (IDF-weighted query with the offline embedder) */
    ARCHIVAL_TEXT,       /* plain BM25 only */
} archival_mode;

/* A new JSON object {total, page, pages, results: [{id, time, text, tags,
 * score, similarity}]}, hybrid ranking, best first (ties: newer first).
 * `score` is what the order follows; `similarity` the passage's own cosine. */
mg_status archival_search(mg_store *store, int64_t agent_id, const char *embedder,
                          const mg_search *search, json_t **out, mg_error *err);

/* Sets the most matches a text ranking takes (0: the default, 20,000): for
 * tests, which cannot store that many. */
void archival_set_text_rank_cap(mg_store *store, int cap);

/* archival_search with the ranking chosen by `mode`. */
mg_status archival_search_mode(mg_store *store, int64_t agent_id, const char *embedder,
                               const mg_search *search, archival_mode mode, json_t **out,
                               mg_error *err);

#endif
