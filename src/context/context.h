/*
 * context.h - the main context: what one LLM request holds, and its budget.
 *
 * The request is rebuilt for every call, in this order: the system
 * instructions, core memory, memory statistics, the recursive summary (all
 * in the one system message), then the message queue. context_measure counts
 * each part; the totals are scaled by the agent's learned token_scale so the
 * estimate tracks what the provider reports.
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

/* Measures the next request without building anything else. */
void context_measure(mg_agent *agent, mg_context_usage *usage);

/* Raw (unscaled) token estimate of one message in a request. */
int context_message_tokens(const mg_msg *m);

/* Folds the provider's reported prompt tokens into the agent's token_scale. */
void context_learn_scale(mg_agent *agent, int raw_estimate, int reported);

/* The raw estimate of a whole request (what context_learn_scale compares). */
int context_raw_total(mg_agent *agent);

/* Scales a raw estimate by the agent's token_scale, rounding up. */
int context_scale(const mg_agent *agent, int raw);

#endif
