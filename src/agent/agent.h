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
#include <sqlite3.h>

#include "context/message.h"
#include "context/tokens.h"
#include "memgpt.h"
#include "memory/core_memory.h"
#include "provider/provider.h"
#include "util/uuid.h"

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
    char public_id[64];       /* "agent-<uuid>" */
    char *description;        /* NULL: none */
    char *tags_json;          /* JSON array */
    char *metadata_json;      /* NULL: none */
    char *functions_json;     /* optional functions offered (JSON array of names) */
    char *foreign_tools_json; /* an Agent File's tools we do not run (JSON array) */
    int python_tools;         /* the user let its Python tools run (tools/python.c) */
    char *tool_env_json;      /* the variables those tools get (JSON object; secrets) */
    char *tool_rules_json;    /* an Agent File's tool rules, kept (JSON array) */

    /* Runtime state, persisted in the agents row. */
    char *summary;            /* recursive summary of evicted messages */
    int64_t summarized_count; /* messages evicted so far */
    int64_t last_flush_at;    /* epoch ms of the last flush; 0: none yet */
    int warned;               /* the memory-pressure alert was given this fill-up */
    int user_since_reflect;
    int64_t paused_until; /* timed heartbeats paused until (ms) */
    int64_t last_login;
    double token_scale;     /* provider's prompt tokens / our estimate */
    int64_t recall_count;   /* messages in recall memory (kept current, for the statistics) */
    int64_t archival_count; /* passages in archival memory */

    mg_core_memory core;
    mg_msg_list queue;          /* in-context messages, oldest first */
    json_t *tools;              /* function schemas sent with each request */
    json_t *external;           /* attached MCP tools: name -> server name (tools/tools.h) */
    int tools_tokens;           /* their raw token count, counted once on first need (-1 before) */
    size_t tools_bytes;         /* their size as compact JSON */
    tokens_counter counter;     /* exact or estimated counts (context/tokens.h) */
    char counter_line[96];      /* mg_agent_token_counter's answer */
    mg_provider *provider;      /* opened on first LLM call */
    int streaming;              /* mg_agent_set_streaming: ask for streamed replies */
    int *cancel;                /* mg_agent_set_cancel: read atomically before each step */
    int max_steps;              /* mg_agent_set_max_steps: this handle's limit (0: step_limit) */
    char pending[MG_UUID_SIZE]; /* mg_agent_set_pending: dropped with the next event ("": none) */
    int broken;                 /* a reload after a failure failed: the cache cannot be trusted */
    json_t *chain;    /* agents waiting on this one's reply, outermost first (tools/messaging.c) */
    json_t *deferred; /* messages to other agents sent without waiting, run after the turn */
    int async_hops;   /* how many such messages led to this turn, one after another */
};

/* What storing an event changes besides the queue. */
typedef enum agent_event_kind {
    AGENT_EVENT_PLAIN,      /* heartbeat or alert */
    AGENT_EVENT_USER,       /* counts toward the next reflection */
    AGENT_EVENT_LOGIN,      /* records the login time */
    AGENT_EVENT_REFLECTION, /* restarts the reflection count */
    AGENT_EVENT_WARNING     /* the memory-pressure alert: sets `warned` */
} agent_event_kind;

/* Takes agent `a`'s turn lock (turn_lock.c), waiting up to wait_ms while
 * another thread or process holds it. *fd_out (-1 when the data directory
 * cannot hold locks) goes to agent_turn_unlock. */
mg_status agent_turn_lock(mg_agent *a, long wait_ms, int *fd_out, mg_error *err);
void agent_turn_unlock(int fd);

/* How long a turn waits for the agent's lock: its own turns (another
 * process's, another thread's), and an agent's message to another. */
#define AGENT_TURN_WAIT_MS (10L * 60 * 1000)
#define AGENT_MESSAGE_WAIT_MS (60L * 1000)

/* Runs a turn of `agent` for a message from another agent (an
 * agent_message event), its lock waited for up to wait_ms. */
mg_status agent_message_turn(mg_agent *agent, const char *from_name, const char *from_id,
                             const char *text, long wait_ms, mg_event_fn on_event, void *user,
                             mg_error *err);

/* A runtime event as the JSON envelope the model reads: {"type": type,
 * key: text, "time": now} (key may be NULL). Role USER; caller owns it. */
mg_msg agent_envelope(const char *type, const char *key, const char *text);

/* Stores an event message (taking ownership) in its own transaction,
 * together with the state change its kind implies. */
mg_status agent_store_event(mg_agent *agent, mg_msg m, agent_event_kind kind, mg_error *err);

/* Ends a transaction begun with store_begin: commits when st is MG_OK, else
 * rolls back. After any failure the cache is reloaded from disk, so memory
 * never keeps what the database did not. Every state change of the agent
 * must happen between store_begin and this call. Returns the final status. */
mg_status agent_tx_end(mg_agent *agent, mg_status st, mg_error *err);

/* Checks a complete set of settings (no zero fields): the one validation
 * behind both creating and reconfiguring an agent. */
mg_status agent_check_settings(const mg_agent_config *config, mg_error *err);

/* Agent names: 1-AGENT_NAME_MAX bytes of UTF-8, no control characters, no
 * space at either end (Letta takes any text; these keep a name one line
 * that a shell can quote). */
#define AGENT_NAME_MAX 100
int agent_name_valid(const char *name);

/* Binds description, tags, metadata, functions, tool rules, python_tools
 * and tool_env of `c` (NULLs as their defaults) to parameters
 * first..first+6 of an INSERT or UPDATE of the agents row. */
void agent_bind_extras(sqlite3_stmt *stmt, int first, const mg_agent_config *c);

/* The fixed parts of every request (instructions, core memory, statistics,
 * function schemas) must fit under the warning line; MG_ERR_USAGE saying
 * how large a window would do if not. Reads the agent as the caller's open
 * transaction left it (configure.c). */
mg_status agent_check_room(mg_store *store, const char *name, mg_error *err);

/* MG_OK, or the error to return when the agent is `broken`. */
mg_status agent_check_usable(const mg_agent *agent, mg_error *err);

/* Persists the runtime state fields above (inside the caller's transaction). */
mg_status agent_save_state(mg_agent *agent, mg_error *err);

/* Loads state, core memory and queue from disk again, replacing the cache
 * only if the load succeeds (else the agent is marked broken). */
mg_status agent_reload(mg_agent *agent, mg_error *err);

/* Stores a message in recall memory, in context, and appends it to the queue
 * (taking ownership of its strings). Returns the queued copy. */
mg_status agent_append_message(mg_agent *agent, mg_msg m, mg_msg **queued, mg_error *err);

/* Runs a turn on the queue as it is (no new event): for retry. */
mg_status agent_resume_turn(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err);

/* Opens the provider on first use. */
mg_status agent_provider(mg_agent *agent, mg_provider **out, mg_error *err);

#endif
