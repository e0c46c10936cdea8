/*
 * agent.h - the agent's in-memory state (internal).
 *
 * An mg_agent is a cache of its rows: the agents row (settings and runtime
 * state), its core memory blocks and its in-context messages. The database is
 * the truth. Every change is written inside the transaction of the step that
 * caused it, and if a step fails the cache is reloaded from disk
 * (agent_reload), so the two never drift apart.
 */
#ifndef MG_AGENT_AGENT_H
#define MG_AGENT_AGENT_H

#include <jansson.h>

#include "context/message.h"
#include "memgpt.h"
#include "memory/core_memory.h"
#include "provider/provider.h"

struct mg_agent {
    mg_store *store;
    int64_t id;
    char *name;
    char *model;         /* handle: "openai/gpt-4o-mini" */
    char *system_prompt; /* NULL: the built-in instructions */
    char *embedder;
    int context_window;
    int step_limit;
    int reflect_every; /* -1 = off */
    int idle_seconds;  /* -1 = off */
    double warn_fraction;
    double flush_fraction;
    int64_t created_at;

    /* Runtime state, persisted in the agents row. */
    char *summary;            /* recursive summary of evicted messages */
    int64_t summarized_count; /* messages evicted so far */
    int warned;               /* the memory-pressure alert was given this fill-up */
    int user_since_reflect;
    int64_t paused_until; /* timed heartbeats paused until (ms) */
    int64_t last_login;
    double token_scale;     /* provider's prompt tokens / our estimate */
    int64_t recall_count;   /* messages in recall memory (kept current, for the statistics) */
    int64_t archival_count; /* passages in archival memory */

    mg_core_memory core;
    mg_msg_list queue;     /* in-context messages, oldest first */
    json_t *tools;         /* function schemas sent with each request */
    int tools_tokens;      /* their raw token estimate, computed once */
    mg_provider *provider; /* opened on first LLM call */
};

/* Persists the runtime state fields above (inside the caller's transaction). */
mg_status agent_save_state(mg_agent *agent, mg_error *err);

/* Drops the cache and loads state, core memory and queue from disk again. */
mg_status agent_reload(mg_agent *agent, mg_error *err);

/* Stores a message in recall memory, in context, and appends it to the queue
 * (taking ownership of its strings). Returns the queued copy. */
mg_status agent_append_message(mg_agent *agent, mg_msg m, mg_msg **queued, mg_error *err);

/* Runs a turn on the queue as it is (no new event): for retry. */
mg_status agent_resume_turn(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err);

/* Opens the provider on first use. */
mg_status agent_provider(mg_agent *agent, mg_provider **out, mg_error *err);

#endif
