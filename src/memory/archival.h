/*
 * archival.h - archival memory: passages stored and searched by meaning.
 *
 * Each passage keeps its text verbatim, tags, a time and the embedding made
 * by the agent's embedder (recorded with it). Search fuses two rankings by
 * reciprocal rank fusion: cosine similarity of embeddings, and BM25 over the
 * text, so exact names and rare words are found even when the embedding is
 * weak, and paraphrases are found even when no word matches.
 */
#ifndef MG_MEMORY_ARCHIVAL_H
#define MG_MEMORY_ARCHIVAL_H

#include <jansson.h>

#include "memgpt.h"

mg_status archival_insert(mg_store *store, int64_t agent_id, const char *embedder, const char *text,
                          const char *tags_json, int64_t time_ms, mg_error *err);

mg_status archival_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err);

/* Which rankings a search uses. Agents always get ARCHIVAL_HYBRID (the
 * fusion); the single rankings exist so an evaluation can measure what each
 * contributes (bench/eval_locomo.c). */
typedef enum archival_mode {
    ARCHIVAL_HYBRID = 0, /* embedding cosine and BM25, fused */
    ARCHIVAL_VECTOR,     /* embedding cosine only */
    ARCHIVAL_TEXT,       /* BM25 only */
} archival_mode;

/* A new JSON object {total, page, pages, results: [{id, time, text, tags,
 * score, similarity}]}, hybrid ranking. */
mg_status archival_search(mg_store *store, int64_t agent_id, const char *embedder,
                          const mg_search *search, json_t **out, mg_error *err);

/* archival_search with the ranking chosen by `mode`. */
mg_status archival_search_mode(mg_store *store, int64_t agent_id, const char *embedder,
                               const mg_search *search, archival_mode mode, json_t **out,
                               mg_error *err);

#endif
