/*
 * recall.h - recall memory: every message ever exchanged, on disk.
 *
 * Messages are appended and never deleted by the runtime. The context window
 * is the subset with in_context = 1; eviction clears that flag and nothing
 * else. Search goes through an FTS5 index of two texts per message, without
 * the JSON envelopes around them: what was said (search_text), and the rest
 * (inner_text: monologue, function traffic, system events); see
 * recall_index_text.
 */
#ifndef MG_MEMORY_RECALL_H
#define MG_MEMORY_RECALL_H

#include <jansson.h>

#include "context/message.h"
#include "memgpt.h"

/* Rewrites a stored message's content and tool calls (rethink, rewrite). */
mg_status recall_update(mg_store *store, const mg_msg *m, mg_error *err);

/* Loads the in-context messages, oldest first, appending to `out`. */
mg_status recall_load_context(mg_store *store, int64_t agent_id, mg_msg_list *out, mg_error *err);

/* Takes messages with id in [first_id, last_id] out of the context window. */
mg_status recall_evict_range(mg_store *store, int64_t agent_id, int64_t first_id, int64_t last_id,
                             mg_error *err);

mg_status recall_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err);

/* The two texts a message is indexed under (caller frees both; either may
 * be ""). `said`: what was said, searched by default: a user message, the
 * agent's send_message texts, or an assistant text with no function call at
 * all (delivered as the reply). `inner`: everything else, searched on
 * request: the inner monologue (Anthropic thinking included: the provider
 * folds it into the content), other function calls as name(arguments),
 * function results as "name: text", and system events (heartbeats, alerts,
 * logins) by their envelope text. */
void recall_index_text(const mg_msg *m, char **said, char **inner);

/* The whole text of a message: inner text, then what was said, one per line
 * (for an event envelope: its message). Caller frees. */
char *recall_search_text(const mg_msg *m);

/* Stores `m` (in context) and sets m->id; recall_insert_many of one. */
mg_status recall_insert(mg_store *store, int64_t agent_id, mg_msg *m, mg_error *err);

/* Stores `n` messages with one set of prepared statements and sets their
 * ids: the bulk path. Outside a transaction it runs in its own (all or
 * none are stored); inside the caller's it opens no savepoint, and on
 * failure the caller must roll back (see migration 5 for why). */
mg_status recall_insert_many(mg_store *store, int64_t agent_id, mg_msg *msgs, int n, mg_error *err);

/* Most matches a search ranks: the newest ones (see recall.c for why this
 * many). */
#define RECALL_RANK_CAP 200

/* Ranked search. With a query: BM25 over what was said (user messages and
 * the agent's replies), or with include_all over every message and both
 * texts; ties to the newer. Only the newest RECALL_RANK_CAP matches (within
 * the dates, if any) are ranked: when more match, total is that cap (what
 * the pages hold, a lower bound of the matches), "older_matches" is true and
 * "ranked_from" is the time of the oldest ranked match; rarer words or a
 * date range reach the older ones. Without a query: date order. Date bounds
 * apply to both. Returns a new JSON object {total, page, pages, results[]
 * [, older_matches, ranked_from]}; with include_all a result also has
 * "inner" when its inner text is not empty. The same search gives the same
 * pages while no message is added. */
mg_status recall_search(mg_store *store, int64_t agent_id, const mg_search *search, json_t **out,
                        mg_error *err);

/* The newest `limit` messages, oldest first, as a new JSON array. */
mg_status recall_list(mg_store *store, int64_t agent_id, int limit, json_t **out, mg_error *err);

#endif
