/*
 * overflow.h - keeping the context window within its budget.
 *
 * Two thresholds, as fractions of the window:
 *  - warn: the first request past it gets one memory-pressure alert in the
 *    queue (once per fill-up; agent->warned remembers it until the next flush);
 *  - flush: the oldest messages are evicted (they stay in recall memory) and
 *    summarized, together with the previous summary, into a new summary that
 *    stays in view. A flush aims at half the warning line, so a conversation
 *    gets many turns between flushes.
 *
 * Eviction never splits a function call from its result, always keeps the
 * newest messages (MG_OVERFLOW_KEEP_LAST), and prefers to cut just before a
 * user-role event so the remaining queue starts cleanly.
 */
#ifndef MG_CONTEXT_OVERFLOW_H
#define MG_CONTEXT_OVERFLOW_H

#include "agent/agent.h"
#include "agent/events.h"

#define MG_OVERFLOW_KEEP_LAST 3

/* How many of the oldest queued messages to evict so the request drops to
 * `target` tokens, assuming a summary of `summary_tokens`. 0 if none can go. */
int overflow_pick(mg_agent *agent, int target, int summary_tokens);

/* Evicts and summarizes (the summarizer is an LLM call), then commits the new
 * queue and summary in one transaction. `force` flushes even under the
 * threshold (the /summarize command, or a context-length error). Pushes a
 * system event describing what happened. */
mg_status overflow_flush(mg_agent *agent, int force, mg_event_queue *events, mg_error *err);

/* Before an LLM call: flush if over the flush line, else give the warning if
 * due. */
mg_status overflow_check(mg_agent *agent, mg_event_queue *events, mg_error *err);

/* Longest summary kept, in tokens (depends on the window). */
int overflow_summary_budget(const mg_agent *agent);

#endif
