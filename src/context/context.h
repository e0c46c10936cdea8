/*
 * context.h - the main context: what one LLM request holds, and its budget.
 *
 * The request is rebuilt for every call, in this order: the system
 * instructions, core memory, memory statistics, the recursive summary (all
 * in the one system message), then the message queue. context_measure counts
 * each part, exactly for OpenAI models whose encoding is known; otherwise
 * the totals are estimates scaled by the agent's learned token_scale so they
 * track what the provider reports.
 */
#ifndef MG_CONTEXT_CONTEXT_H
#define MG_CONTEXT_CONTEXT_H

#include "agent/agent.h"
#include "util/buf.h"

typedef struct mg_context_usage {
    int instructions; /* tokens (scaled), per part */
    int core;
    int stats;
    int summary;
    int messages;
    int tools;
    int total;
    int nmessages;
    int window;
    int warn_at;  /* total above which the memory-pressure alert is due */
    int flush_at; /* total above which messages are evicted */
} mg_context_usage;

/* Builds the system message into `out` and fills `usage` if not NULL. */
void context_system_message(mg_agent *agent, buf *out, mg_context_usage *usage);

/* The parts of the system message, in order: instructions, core memory,
 * memory statistics, summary. */
#define CONTEXT_PARTS 4

/* context_system_message, also recording in ends[i] the length of `out`
 * after part i. */
void context_system_parts(mg_agent *agent, buf *out, mg_context_usage *usage,
                          size_t ends[CONTEXT_PARTS]);

/* Measures the next request without building anything else. */
void context_measure(mg_agent *agent, mg_context_usage *usage);

/* Raw (unscaled) tokens of one message in a request, counted now. */
int context_message_tokens(mg_agent *agent, const mg_msg *m);

/* m->tokens, counted first if it is not yet (< 0). */
int context_msg_tokens(mg_agent *agent, mg_msg *m);

/* 1 if the next request is certainly at most `limit` tokens, judged without
 * counting (bytes bound exact counts from above); 0 if that takes counting,
 * or the agent's counts are estimates. */
int context_surely_under(mg_agent *agent, int limit);

/* Which counter the agent uses, as mg_agent_token_counter says it. */
const char *context_counter_line(mg_agent *agent);

/* Folds the provider's reported prompt tokens into the agent's token_scale. */
void context_learn_scale(mg_agent *agent, int raw_estimate, int reported);

/* The raw estimate of a whole request (what context_learn_scale compares). */
int context_raw_total(mg_agent *agent);

/* Scales a raw estimate by the agent's token_scale, rounding up; exact
 * counts are returned as they are. */
int context_scale(mg_agent *agent, int raw);

#endif
