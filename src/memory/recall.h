/*
 * recall.h - recall memory: every message ever exchanged, on disk.
 *
 * Messages are appended and never deleted by the runtime. The context window
 * is the subset with in_context = 1; eviction clears that flag and nothing
 * else. Search goes through an FTS5 index of each message's search_text: the
 * words that were said, without the JSON envelopes around them.
 */
#ifndef MG_MEMORY_RECALL_H
#define MG_MEMORY_RECALL_H

#include <jansson.h>

#include "context/message.h"
#include "memgpt.h"

/* Stores `m` (in context) and sets m->id. */
mg_status recall_insert(mg_store *store, int64_t agent_id, mg_msg *m, mg_error *err);

/* Rewrites a stored message's content and tool calls (rethink, rewrite). */
mg_status recall_update(mg_store *store, const mg_msg *m, mg_error *err);

/* Loads the in-context messages, oldest first, appending to `out`. */
mg_status recall_load_context(mg_store *store, int64_t agent_id, mg_msg_list *out, mg_error *err);

/* Takes messages with id in [first_id, last_id] out of the context window. */
mg_status recall_evict_range(mg_store *store, int64_t agent_id, int64_t first_id, int64_t last_id,
                             mg_error *err);

mg_status recall_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err);

/* The text worth searching in a message (caller frees). */
char *recall_search_text(const mg_msg *m);

/* Ranked search. With a query: BM25 over user messages and the agent's own
 * messages, ties to the newer. Without: date order. Date bounds apply to
 * both. Returns a new JSON object {total, page, pages, results[]}. */
mg_status recall_search(mg_store *store, int64_t agent_id, const mg_search *search, json_t **out,
                        mg_error *err);

/* The newest `limit` messages, oldest first, as a new JSON array. */
mg_status recall_list(mg_store *store, int64_t agent_id, int limit, json_t **out, mg_error *err);

/* Turns free text into a safe FTS5 MATCH expression: every word quoted, OR'd
 * together, common stop words dropped when other words remain. Returns NULL
 * when the text has no words. Caller frees. */
char *recall_fts_query(const char *text);

#endif
