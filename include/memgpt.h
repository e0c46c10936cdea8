/*
 * memgpt.h - the public interface of libmemgpt.
 *
 * libmemgpt runs MemGPT agents: an LLM whose fixed context window is managed
 * like RAM, with a database as disk. The agent keeps facts in labelled core
 * memory blocks, every message in recall memory, and passages in archival
 * memory, and it edits and searches them itself through function calls.
 *
 * Conventions, true of every function below:
 *
 *  - Names: every public symbol starts with mg_ (types, functions) or MG_
 *    (constants).
 *  - Handles are opaque and have explicit lifecycles: mg_store_open /
 *    mg_store_close, mg_agent_open / mg_agent_free. An agent borrows its store;
 *    close the store only after freeing every agent opened from it.
 *  - Errors: functions return an mg_status; MG_OK (0) is success. When they
 *    fail they fill the caller's mg_error (if not NULL) with the same code and
 *    one human-readable line. Nothing in the library exits the process or
 *    writes to stdout/stderr.
 *  - Ownership: strings passed in are borrowed for the duration of the call.
 *    Any char * or array handed out is owned by the caller and freed with the
 *    mg_*_free function named in its comment (plain strings: mg_free).
 *    Pointers inside an mg_event are valid only during the callback.
 *  - Threads: a handle may be used by one thread at a time. Different stores
 *    may be used from different threads. There is no hidden global state apart
 *    from libcurl's process-wide init, done once by mg_store_open.
 */
#ifndef MEMGPT_H
#define MEMGPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MG_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum mg_status {
    MG_OK = 0,
    MG_ERR_USAGE,     /* the caller passed something invalid */
    MG_ERR_NOT_FOUND, /* no such agent, block, passage, ... */
    MG_ERR_EXISTS,    /* an agent of that name already exists */
    MG_ERR_IO,        /* the file system refused (read-only, full, missing) */
    MG_ERR_DB,        /* SQLite failed */
    MG_ERR_CORRUPT,   /* the file is not a memgpt database; it was left untouched */
    MG_ERR_AUTH,      /* the provider refused the credentials (401/403) */
    MG_ERR_PROVIDER,  /* the provider failed, after retries, or answered nonsense */
    MG_ERR_TOO_LARGE, /* input larger than the agent can ever hold */
    MG_ERR_CONTEXT,   /* the request did not fit the model's context window */
    MG_ERR_NOMEM,
    MG_ERR_INTERNAL
} mg_status;

typedef struct mg_error {
    mg_status code;
    char message[512];
} mg_error;

/* A short constant name for a status ("not found", ...). */
const char *mg_status_name(mg_status code);

/* Frees any plain string the library handed out. NULL is fine. */
void mg_free(void *ptr);

/* ------------------------------------------------------------------- store */

/* One data directory: a single SQLite database (memgpt.db) holding every
 * agent. */
typedef struct mg_store mg_store;

/* Resolves the data directory: `explicit_home` if not NULL, else $MEMGPT_HOME,
 * else $XDG_DATA_HOME/memgpt, else ~/.local/share/memgpt. Returns a string the
 * caller frees with mg_free, or NULL if no home can be found. */
char *mg_home_resolve(const char *explicit_home);

/* Opens (creating if needed) the database in `home` and migrates it to the
 * current schema. A file that is not a memgpt database is refused with
 * MG_ERR_CORRUPT and never modified. */
mg_status mg_store_open(const char *home, mg_store **out, mg_error *err);
void mg_store_close(mg_store *store);

/* The most memory SQLite keeps as its page cache for this store, in KiB; 0
 * restores the default (2,000, SQLite's). A process that runs one search
 * and exits gains from a small cache: every page of cache it fills is
 * fresh memory, a page fault each (~25 us on a virtual machine), while a
 * page read again from the system's file cache costs a few us. The CLI's
 * one-shot searches and sends use 256 (bench/README.md, section 14); a long-lived
 * process or a bulk insert is faster with the default. MG_ERR_USAGE if
 * kib is negative or over 1 GiB. */
mg_status mg_store_set_cache_size(mg_store *store, int kib, mg_error *err);

/* A number that changes whenever anything has been committed to the
 * database since the last call: by this store, or by any other connection
 * (another mg_store, in this process or another). For caches. (A write
 * that was rolled back may change it too.) */
mg_status mg_store_version(mg_store *store, int64_t *version, mg_error *err);

/* Checks everything the home's data promises, trusting none of it (as
 * `memgpt check` does): SQLite's integrity and foreign keys, the full-text
 * indexes against their tables, the counts kept per agent, every function
 * call in an agent's context followed by its result, each archival vector
 * index against the table (file, log, and the index searches use), and no
 * stray files in the index folder (the sweep every process runs removes
 * those first). Changes nothing but what any process opening the indexes
 * would. MG_OK when the checks ran, whatever they found: *json_out (free
 * with mg_free) is {"ok": bool, "problems": [text...], "agents": [{"name",
 * "messages", "in_context", "passages", "indexes": [{"embedder", "vectors",
 * "log_records", "log_refused", "stale", "missing"}]}],
 * "stray_files_removed": n}. Errors only when a check could not run. */
mg_status mg_store_check(mg_store *store, char **json_out, mg_error *err);

/* ------------------------------------------------------------------ agents */

typedef struct mg_agent mg_agent;

/* Settings of an agent. Zero/NULL fields take the documented default, so
 * `mg_agent_config c = {0};` is a valid start. */
typedef struct mg_agent_config {
    const char *model;         /* "openai/gpt-4o-mini" (default) */
    int context_window;        /* tokens; default from the model, else 8192 */
    const char *persona;       /* initial `persona` block; default built in */
    const char *human;         /* initial `human` block; default built in */
    const char *system_prompt; /* NULL: the built-in system instructions */
    const char *embedder;      /* "offline" (default) or "openai/MODEL" */
    int step_limit;            /* LLM calls per event; default 10 */
    int reflect_every;         /* user messages between reflections; default 10, -1 = off */
    int idle_seconds;          /* chat idle time before a timed heartbeat; default 600, -1 = off */
    double warn_fraction;      /* default 0.75 */
    double flush_fraction;     /* default 1.0 */
    /* For the applications that keep agents (the server's clients): never
     * shown to the model. mg_agent_configure: NULL keeps the current value. */
    const char *description;   /* free text; "" or NULL: none */
    const char *tags_json;     /* JSON array of distinct strings; NULL: [] */
    const char *metadata_json; /* JSON object; NULL or "null": none */
    /* Optional functions to offer besides the base set, a JSON array of
     * names: "memory_insert", "memory_replace", "memory_rethink" (the
     * line-based memory tools of Letta's newer agents), and Letta's
     * functions for messaging other agents,
     * "send_message_to_agent_and_wait_for_reply",
     * "send_message_to_agent_async", "send_message_to_agents_matching_tags"
     * (src/tools/messaging.h). NULL: none. */
    const char *functions_json;
    /* Tool rules, Letta's JSON array of {"tool_name", "type", ...}: which
     * tools may be called when within a turn (src/tools/rules.h lists the
     * types). NULL: none (on configure: keep them); "[]" clears them. */
    const char *tool_rules_json;
    /* An Agent File's Python tools are kept but never run until the user
     * allows it: 1 allows (they are offered and run in a limited process,
     * see src/tools/python.c), -1 forbids again, 0 keeps the setting. */
    int python_tools;
    /* The variables those tools' processes get (Letta's secrets), a JSON
     * object of strings; never shown back. On configure its members are
     * merged into the agent's (a null member removes one); NULL keeps
     * them all. */
    const char *tool_env_json;
} mg_agent_config;

/* Creates agent `name` (1-100 bytes of text without control characters or
 * spaces at either end). MG_ERR_EXISTS if taken. */
mg_status mg_agent_create(mg_store *store, const char *name, const mg_agent_config *config,
                          mg_error *err);

/* Opens an existing agent. MG_ERR_NOT_FOUND if there is none. */
mg_status mg_agent_open(mg_store *store, const char *name, mg_agent **out, mg_error *err);

/* Opens an agent by its id ("agent-<uuid>", see mg_agent_id). MG_ERR_NOT_FOUND
 * if no agent has it (malformed ids included). */
mg_status mg_agent_open_id(mg_store *store, const char *id, mg_agent **out, mg_error *err);

/* The agent's name for its id, or MG_ERR_NOT_FOUND. Caller frees *name. */
mg_status mg_agent_name_for_id(mg_store *store, const char *id, char **name, mg_error *err);

/* Renames agent `name` to `new_name` (the rules of mg_agent_create;
 * MG_ERR_EXISTS if taken). Its id stays. */
mg_status mg_agent_rename(mg_store *store, const char *name, const char *new_name, mg_error *err);
void mg_agent_free(mg_agent *agent);

/* Deletes the agent and everything it remembers. */
mg_status mg_agent_delete(mg_store *store, const char *name, mg_error *err);

/* Changes settings of agent `name` after creation. Zero/NULL fields of
 * `changes` stay as they are; the others are checked as mg_agent_create
 * checks them (including that the fixed parts of a request still fit under
 * the warning line), and nothing changes if any is invalid. Notes:
 *  - model without context_window: the window becomes the new model's known
 *    window, or stays if the model is not known.
 *  - system_prompt "" restores the built-in instructions.
 *  - reflect_every / idle_seconds -1 turn them off.
 *  - embedder: passages embedded by the old one are found by text only until
 *    mg_archival_reembed runs.
 *  - persona and human must be NULL: edit those blocks with mg_memory_set.
 * Agents already open keep their old settings until opened again. */
mg_status mg_agent_configure(mg_store *store, const char *name, const mg_agent_config *changes,
                             mg_error *err);

/* Describes an agent as a JSON object (id, name, model, context_window,
 * counts, settings, created_at, description, tags, metadata, functions (the
 * optional ones offered), tool_rules and unavailable_tools (the names of an
 * imported Agent File's tools that are kept but not run)). Caller frees
 * *json_out with mg_free. */
mg_status mg_agent_describe(mg_agent *agent, char **json_out, mg_error *err);

/* Lists every agent as a JSON array of the objects mg_agent_describe gives,
 * ordered by name. Caller frees with mg_free. */
mg_status mg_agent_list(mg_store *store, char **json_out, mg_error *err);

const char *mg_agent_name(const mg_agent *agent);

/* The agent's permanent id, "agent-<uuid>": the name can change, the id
 * cannot. Owned by the agent. */
const char *mg_agent_id(const mg_agent *agent);

/* Checks that the agent's provider is configured (credentials, base URL)
 * without contacting it. MG_ERR_AUTH says which variables to set. */
mg_status mg_agent_check_provider(mg_agent *agent, mg_error *err);

/* Asks a provider's configured endpoint which models it offers ("openai":
 * GET /models; "ollama": GET /api/tags; "anthropic": GET /v1/models, every
 * page). `provider` NULL or "" means "openai". JSON array of objects, each
 * with a string "id" (use it as
 * "PROVIDER/ID") plus the endpoint's own fields, in the endpoint's order.
 * MG_ERR_USAGE for an unknown provider or one that cannot list models.
 * Caller frees *json_out with mg_free. */
mg_status mg_models_list(const char *provider, char **json_out, mg_error *err);

/* The context window (tokens) to create an agent on `model` ("PROVIDER/MODEL")
 * with when the caller has none: the published window of a well-known model
 * (no network), else what the provider's endpoint states for the model
 * (Ollama: POST /api/show, capped at 32768 tokens; see provider/ollama.h).
 * Pass the result as mg_agent_config.context_window; it is stored with the
 * agent, so this is asked once, not on every send. *tokens is 0 when the
 * window cannot be known: MG_OK when the provider cannot say, an error
 * status (with the reason in err) when asking failed. mg_agent_create then
 * uses its conservative default of 8192. */
mg_status mg_model_context_window_query(const char *model, int *tokens, mg_error *err);

/* ------------------------------------------------------------------ events */

/* What a turn produces, in order. The names match the `message_type` values of
 * the JSON form (mg_event_to_json). */
typedef enum mg_event_type {
    MG_EVENT_REASONING,      /* inner monologue: never the reply */
    MG_EVENT_TOOL_CALL,      /* the agent called a function */
    MG_EVENT_TOOL_RETURN,    /* the function's result as the agent sees it */
    MG_EVENT_ASSISTANT,      /* a reply to the user (send_message) */
    MG_EVENT_SYSTEM,         /* runtime notices: alerts, flushes, step limit */
    MG_EVENT_USAGE,          /* token usage of the turn; always last */
    MG_EVENT_ASSISTANT_DELTA /* streaming only: the next piece of a reply being written */
} mg_event_type;

typedef struct mg_event {
    mg_event_type type;
    const char *text;         /* reasoning, reply, notice, tool result, or reply piece */
    const char *tool_name;    /* TOOL_CALL, TOOL_RETURN */
    const char *tool_args;    /* TOOL_CALL: the arguments as JSON text */
    const char *tool_call_id; /* TOOL_CALL, TOOL_RETURN; ASSISTANT and ASSISTANT_DELTA:
                                 the send_message call (NULL for a plain-text reply) */
    int tool_ok;              /* TOOL_RETURN: 1 if the function succeeded */
    const char *message_id;   /* the stored message it comes from, "message-<uuid>" (the
                                 assistant message for REASONING, TOOL_CALL, ASSISTANT and
                                 ASSISTANT_DELTA, whose message is stored under this id once
                                 the step commits; the result for TOOL_RETURN); NULL for
                                 SYSTEM and USAGE */
    int64_t time_ms;          /* when it happened, Unix epoch milliseconds */
    /* USAGE only */
    int prompt_tokens;
    int completion_tokens;
    int step_count;
    int reasoning_tokens;    /* of completion_tokens, hidden reasoning (0: not reported) */
    int cached_tokens;       /* of prompt_tokens, served from the provider's cache (0: same) */
    const char *stop_reason; /* why the turn ended: "end_turn", "max_steps" (the step
                                limit), "cancelled" (mg_agent_set_cancel) */
} mg_event;

/* Called once per event, synchronously, from inside the turn. */
typedef void (*mg_event_fn)(const mg_event *event, void *user);

/* "reasoning_message", "tool_call_message", ... */
const char *mg_event_type_name(mg_event_type type);

/* The event as one line of JSON with a `message_type` field. Caller frees. */
char *mg_event_to_json(const mg_event *event);

/* -------------------------------------------------------------------- turns */

/* Sends one user message and runs the whole turn: LLM steps, function calls
 * and heartbeats, until the agent stops asking for heartbeats or the step
 * limit is reached. Events are delivered to `on_event` after the step that
 * produced them has been committed to disk, with the exceptions that
 * streaming makes (mg_agent_set_streaming). */
mg_status mg_agent_send(mg_agent *agent, const char *text, mg_event_fn on_event, void *user,
                        mg_error *err);

/* Starts loading libcurl, and the thirty-odd libraries it brings (~14 ms on
 * the development machine), on a thread of its own, for a process that is
 * about to send a turn: the load then overlaps opening the store and the
 * agent instead of delaying the first request. Optional: the first request
 * loads libcurl anyway, and waits for a load already under way. Returns a
 * handle for mg_preload_finish, or NULL when no thread could be started
 * (which only loses the overlap). */
typedef struct mg_preload mg_preload;
mg_preload *mg_preload_http(void);

/* Waits for the load to end and frees p (NULL: does nothing). Call it before
 * the process exits, which must not happen in the middle of loading a
 * library. */
void mg_preload_finish(mg_preload *p);

/* Opens ahead of time what a turn of this agent may read: its archival
 * index, if the agent has enough passages to be searched through one and
 * it is saved (never built here: that can take minutes, and the turn may
 * not search). A process about to send a turn calls it while libcurl loads
 * (mg_preload_http), so that a search in the turn finds the index open.
 * Failures are left for the turn to meet. */
void mg_agent_prefetch(mg_agent *agent);

/* Like mg_agent_send for a message from the application rather than the
 * user (Letta's role "system"): the model reads it as a system alert. */
mg_status mg_agent_send_system(mg_agent *agent, const char *text, mg_event_fn on_event, void *user,
                               mg_error *err);

/* Limits the turns of this handle to `max_steps` LLM calls per event
 * instead of the agent's step limit (not stored; <= 0: the agent's step
 * limit again). */
void mg_agent_set_max_steps(mg_agent *agent, int max_steps);

/* Lets another thread stop this handle's turns: when *flag (read
 * atomically; write it with __atomic_store_n or from a signal handler) is
 * non-zero at a step boundary, the turn ends there, everything done so far
 * kept, with an MG_EVENT_SYSTEM notice and stop_reason "cancelled". NULL
 * removes it. The flag must outlive the handle's turns. */
void mg_agent_set_cancel(mg_agent *agent, int *flag);

/* Streams replies (off by default): the provider is asked for a streamed
 * answer, and the text of each send_message is delivered while the model
 * writes it, as MG_EVENT_ASSISTANT_DELTA events whose texts, concatenated,
 * are the reply (decoded, whole UTF-8 characters; tool_call_id names the
 * call). These previews are the one exception to commit-then-show: they
 * arrive immediately, before the step is stored. The step's events,
 * including the final MG_EVENT_ASSISTANT with the same tool_call_id and the
 * whole text, still come after the commit. If the stream breaks off, the
 * call is asked again (at most twice); an MG_EVENT_SYSTEM notice ("the reply
 * stream was interrupted; retrying") then says to discard the previews of
 * the step so far. Nothing of a broken stream is ever stored, so a crash can
 * only lose text that was shown as a preview and never committed. */
void mg_agent_set_streaming(mg_agent *agent, int enabled);

/* Kinds of event the runtime raises by itself. */
typedef enum mg_system_event {
    MG_SYSTEM_LOGIN,          /* a user session starts (chat start-up); the first
                                 one is the agent's first boot */
    MG_SYSTEM_TIMED_HEARTBEAT /* the user has been idle: a chance to think */
} mg_system_event;

/* Runs a turn driven by a runtime event instead of a user message. A timed
 * heartbeat while heartbeats are paused does nothing and returns MG_OK. */
mg_status mg_agent_system_event(mg_agent *agent, mg_system_event kind, mg_event_fn on_event,
                                void *user, mg_error *err);

/* Seconds of user idleness before chat should raise a timed heartbeat, or -1
 * if off or currently paused by pause_heartbeats. */
int mg_agent_idle_heartbeat_seconds(mg_agent *agent);

/* ----------------------------------------------------- editing the history */

/* Removes the newest `count` messages from the context window (they stay in
 * recall memory). Never leaves a function call without its result. */
mg_status mg_agent_pop(mg_agent *agent, int count, mg_error *err);

/* Re-runs the turn of the last user message: drops everything after it from
 * the context window, then steps again. */
mg_status mg_agent_retry(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err);

/* Replaces the text of the last inner monologue (rethink) or the last reply
 * (rewrite) in the context window. */
mg_status mg_agent_rethink(mg_agent *agent, const char *text, mg_error *err);
mg_status mg_agent_rewrite(mg_agent *agent, const char *text, mg_error *err);

/* Evicts old messages now and updates the recursive summary. */
mg_status mg_agent_summarize(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err);

/* ------------------------------------------------------------- core memory */

/* Core memory as a JSON array of blocks {label, value, limit, description,
 * read_only, chars}. Caller frees. */
mg_status mg_memory_json(mg_agent *agent, char **json_out, mg_error *err);

/* Sets block `label` to `value`, creating it if needed. Fails if the value
 * passes the block's limit. The user may set read-only blocks. */
mg_status mg_memory_set(mg_agent *agent, const char *label, const char *value, mg_error *err);

/* Changes a block's settings, creating it (empty) if needed: `limit` in
 * characters (0 keeps it; it may not drop below the current value's length),
 * `description` (NULL keeps it, "" clears it), `read_only` (-1 keeps it). */
mg_status mg_memory_configure(mg_agent *agent, const char *label, int limit,
                              const char *description, int read_only, mg_error *err);

/* --------------------------------------------------------- recall/archival */

/* A search. Zero fields take defaults (limit 10, no date bounds). */
typedef struct mg_search {
    const char *query;       /* may be NULL/empty for a pure date search */
    int64_t from_ms;         /* inclusive lower bound, 0 = none */
    int64_t to_ms;           /* exclusive upper bound, 0 = none */
    int limit;               /* results per page */
    int page;                /* 0-based */
    int include_all;         /* recall only: 0 searches what was said (user messages,
                                the agent's replies); 1 adds the agent's inner
                                monologue, its function calls and their results, and
                                system events. Results then carry "inner". */
    const char *const *tags; /* archival only: only passages carrying every one
                                of these ntags tags (exact, case-sensitive) */
    int ntags;               /* 0..MG_SEARCH_MAX_TAGS */
} mg_search;

#define MG_SEARCH_MAX_TAGS 16

/* Parses "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]" (UTC
 * unless an offset is given; ISO 8601 as JavaScript and Python write it)
 * into epoch ms.
 * For a bare date, `end_of_day` selects the start of the next day. */
mg_status mg_parse_time(const char *text, int end_of_day, int64_t *out_ms, mg_error *err);

/* Recall memory. The newest `limit` messages (oldest first) as a JSON array of
 * {id, message_id ("message-<uuid>", the public id), time, role, kind, text}.
 * Caller frees. */
mg_status mg_recall_list(mg_agent *agent, int limit, char **json_out, mg_error *err);

/* Recall memory search, BM25 ranked (date-ordered for a query-less search).
 * JSON object {total, page, pages, results: [{id, message_id, time, role,
 * kind, text, score}]}: `text` is what was said, verbatim; with include_all a result also
 * has `inner` (monologue, "name(arguments)" of a call, "name: text" of a
 * result, an event's text) when there is any. Only the newest 200 matches
 * (within the dates) are ranked: when more match, the object also has
 * "older_matches": true and "ranked_from" (the time of the oldest ranked
 * one), and total counts the ranked ones. Caller frees. */
mg_status mg_recall_search(mg_agent *agent, const mg_search *search, char **json_out,
                           mg_error *err);

/* Stores a passage in archival memory. `tags_json` is a JSON array of strings
 * or NULL; `time_ms` 0 means now. */
mg_status mg_archival_insert(mg_agent *agent, const char *text, const char *tags_json,
                             int64_t time_ms, mg_error *err);

/* Stores a passage given as one JSON object {"text", "tags", "time"}: tags
 * an optional array of strings, time optional (ISO 8601 date or date-time,
 * or epoch seconds). For bulk loading (JSON Lines). */
mg_status mg_archival_insert_json(mg_agent *agent, const char *json_object, mg_error *err);

/* Stores items[0..n) in order, in transactions of up to 1,000 passages
 * (one commit per passage would cost more than the passage): each item a
 * passage's text with the tags `tags_json` (json 0), or a JSON object as
 * mg_archival_insert_json (json 1). At the first item refused
 * (MG_ERR_USAGE: bad JSON, empty text, bad tags), the ones before it are
 * stored and its error is returned; any other failure keeps the batches
 * committed before it. *stored (may be NULL) is how many were stored, so
 * items[*stored] is the one that failed. */
mg_status mg_archival_insert_many(mg_agent *agent, const char *const *items, int n, int json,
                                  const char *tags_json, int *stored, mg_error *err);

/* Archival memory search by meaning. JSON object {total, page, results: [{id,
 * time, text, tags, score}]}. Caller frees. */
mg_status mg_archival_search(mg_agent *agent, const mg_search *search, char **json_out,
                             mg_error *err);

/* ------------------------------------------------ loading documents */

/* How mg_archival_load cuts files into passages. Zero fields take the
 * defaults. */
typedef struct mg_load_options {
    int chunk_tokens;        /* most tokens per passage, 16-8192; default 300 */
    int overlap_tokens;      /* tokens a passage repeats from the one before, below
                                chunk_tokens / 2; default chunk_tokens / 6 (50),
                                -1 = none */
    int batch_size;          /* passages per transaction, 1-10000; default 4096 */
    int pdf_timeout_seconds; /* per PDF; default 120 */
} mg_load_options;

/* What a load has done so far. */
typedef struct mg_load_stats {
    int64_t files_total;    /* loadable files found under the paths */
    int64_t bytes_total;    /* their size in bytes */
    int64_t files_done;     /* files finished, loaded or failed */
    int64_t files_failed;   /* files with at least one error */
    int64_t files_ignored;  /* files in directories skipped for their type */
    int64_t errors;         /* error reports (a JSON Lines file may have several) */
    int64_t bytes_done;     /* input bytes processed */
    int64_t chunks_added;   /* passages stored */
    int64_t chunks_skipped; /* passages already stored (same content hash): not stored again */
    double seconds;         /* since the load began */
} mg_load_stats;

typedef enum mg_load_event_type {
    MG_LOAD_PROGRESS,   /* the stats moved on: after each batch and each file */
    MG_LOAD_FILE_ERROR, /* a path, file or line could not be loaded; the load goes on */
} mg_load_event_type;

typedef struct mg_load_event {
    mg_load_event_type type;
    const mg_load_stats *stats;
    const char *path;      /* the file concerned (NULL before the first) */
    int line;              /* FILE_ERROR in a JSON Lines file: its 1-based line; else 0 */
    const mg_error *error; /* FILE_ERROR: why */
} mg_load_event;

/* Called synchronously from inside the load; the pointers are valid only
 * during the call. */
typedef void (*mg_load_progress_fn)(const mg_load_event *event, void *user);

/* Loads files into the agent's archival memory. Each of paths[0..npaths) is
 * a file or a directory, walked recursively (hidden names and links to
 * directories skipped). Kinds: .txt and extension-less files (UTF-8 text),
 * .md, .jsonl (one {"text", "tags", "time"} object per line, as
 * mg_archival_insert_json; one passage per line unless the text is longer
 * than a chunk), .pdf (text through the `pdftotext` program of
 * poppler-utils, which must be on PATH). Text is cut into chunks of at most
 * chunk_tokens (estimated) tokens at paragraph, sentence, line or word
 * boundaries, with overlap; each passage records its source file and byte
 * offset. A chunk whose whitespace-normalised text is already stored for the
 * agent (by SHA-256) is skipped, so loading twice adds nothing.
 *
 * Chunks are embedded with the agent's embedder and stored in transactions
 * of batch_size. A file that cannot be read (missing, permissions, binary,
 * not UTF-8, pdftotext failure) or a bad JSON line is reported as a
 * MG_LOAD_FILE_ERROR event and skipped. Returns MG_OK when every path was
 * attempted - check stats->files_failed - or an error if the load had to stop
 * (database, embedder); batches committed before that stay. `progress`,
 * `user`, `stats` may be NULL. */
mg_status mg_archival_load(mg_agent *agent, const char *const *paths, int npaths,
                           const mg_load_options *opts, mg_load_progress_fn progress, void *user,
                           mg_load_stats *stats, mg_error *err);

typedef struct mg_reembed_stats {
    int64_t total;   /* passages to re-embed, counted at the start */
    int64_t done;    /* re-embedded so far */
    int64_t current; /* already embedded by the agent's embedder: left alone */
    double seconds;
} mg_reembed_stats;

typedef void (*mg_reembed_progress_fn)(const mg_reembed_stats *stats, void *user);

/* Re-embeds every passage of the agent whose recorded embedder is not the
 * agent's current one (see mg_agent_configure), in transactions of
 * batch_size (0: 64), calling `progress` after each. Interrupted, it can be
 * run again and continues where it stopped. `progress`, `user` and `stats`
 * may be NULL. */
mg_status mg_archival_reembed(mg_agent *agent, int batch_size, mg_reembed_progress_fn progress,
                              void *user, mg_reembed_stats *stats, mg_error *err);

/* Stores a passage as mg_archival_insert does, and gives it back as a JSON
 * object {id ("passage-<uuid>"), time_ms, text, tags}. Caller frees
 * *json_out (may be NULL: then nothing is returned). */
mg_status mg_archival_add(mg_agent *agent, const char *text, const char *tags_json, int64_t time_ms,
                          char **json_out, mg_error *err);

/* Deletes passage `passage_id` ("passage-<uuid>") of the agent's archival
 * memory. MG_ERR_NOT_FOUND if the agent has no such passage. */
mg_status mg_archival_delete(mg_agent *agent, const char *passage_id, mg_error *err);

/* ------------------------------------------------------------------- pages */

/* One page of a list in creation order, as API clients walk lists: the
 * `limit` items that follow item `after` in the list's order, else those
 * just before item `before` (still in the list's order); both bound the
 * page; neither: the first items. Cursors are public ids of items of the
 * same list; one that is not is MG_ERR_NOT_FOUND. */
typedef struct mg_page {
    const char *before;
    const char *after;
    int limit;      /* 1-1000; 0: 50 */
    int descending; /* newest first */
} mg_page;

/* Which agents mg_agent_page lists. Zero fields: all. */
typedef struct mg_agent_filter {
    const char *name;        /* exactly this name */
    const char *const *tags; /* carrying these tags: all of them, or any with match_any */
    int ntags;
    int match_any;
} mg_agent_filter;

/* A page of agents (in creation order) as a JSON array of {id, name}:
 * nothing is opened (open one to know more). Caller frees. */
mg_status mg_agent_page(mg_store *store, const mg_agent_filter *filter, const mg_page *page,
                        char **json_out, mg_error *err);

/* The number of agents. */
mg_status mg_agent_count(mg_store *store, int64_t *count, mg_error *err);

/* A page of every message stored for the agent, in context or evicted, as a
 * JSON array of {id ("message-<uuid>"), time_ms, role ("user", "assistant",
 * "tool"), kind, content, tool_calls ([{id, name, arguments}] or null),
 * tool_call_id, tool_name, in_context}. Runtime events (user messages,
 * heartbeats, alerts) are role "user" with `kind` naming them and a JSON
 * envelope as content. in_context_only: only the messages in the context
 * window. Caller frees. */
mg_status mg_messages_page(mg_agent *agent, const mg_page *page, int in_context_only,
                           char **json_out, mg_error *err);

/* A page of the agent's archival memory as a JSON array of {id
 * ("passage-<uuid>"), time_ms, text, tags}. Caller frees. */
mg_status mg_archival_page(mg_agent *agent, const mg_page *page, char **json_out, mg_error *err);

/* A page of the core memory blocks of every agent (in creation order) as a
 * JSON array of the objects mg_memory_json gives, each with "agent_id".
 * `label` (may be NULL): only blocks with that label. Caller frees. */
mg_status mg_blocks_page(mg_store *store, const char *label, const mg_page *page, char **json_out,
                         mg_error *err);

/* The agent ("agent-<uuid>") and label of block `block_id` ("block-<uuid>").
 * MG_ERR_NOT_FOUND if there is none. Caller frees both. */
mg_status mg_block_owner(mg_store *store, const char *block_id, char **agent_id, char **label,
                         mg_error *err);

/* ----------------------------------------------------------- pending work */

/* Work an application has acknowledged before running it (the server's
 * background runs) is stored first, so a crash cannot lose it: a request
 * (any JSON text the application defines) queued for an agent under an id,
 * kept until the event it starts is stored, in that event's transaction
 * (mg_agent_set_pending), so it is neither lost nor run twice. */

/* Stores `request_json` for agent `agent_id` ("agent-<uuid>"). *id_out
 * (caller frees) is "<prefix>-<uuid>" with the given prefix. */
mg_status mg_pending_add(mg_store *store, const char *agent_id, const char *prefix,
                         const char *request_json, char **id_out, mg_error *err);

/* Every pending request, oldest first, as a JSON array of {id (without
 * its prefix: the uuid), agent_id, request, created_at_ms}. Caller frees. */
mg_status mg_pending_list(mg_store *store, char **json_out, mg_error *err);

/* Drops pending request `uuid` (it will not run). Missing: MG_OK. */
mg_status mg_pending_remove(mg_store *store, const char *uuid, mg_error *err);

/* The next event this handle stores (a user or system message) also drops
 * pending request `uuid`, in the same transaction. NULL clears. */
void mg_agent_set_pending(mg_agent *agent, const char *uuid);

/* Stores how pending request `uuid` of agent `agent_id` ended (any JSON
 * text the application defines), replacing an earlier outcome. Kept until
 * the agent is deleted. */
mg_status mg_pending_finish(mg_store *store, const char *uuid, const char *agent_id,
                            const char *outcome_json, mg_error *err);

/* The outcome stored for `uuid` (caller frees), or MG_ERR_NOT_FOUND. */
mg_status mg_pending_outcome(mg_store *store, const char *uuid, char **outcome_json, mg_error *err);

/* ------------------------------------------------------------- Agent Files */

/* Agent Files (.af) are Letta's format for moving agents between servers:
 * one JSON document (or the same document encoded as one JSON string, a
 * form found in the wild) with the agents, their blocks, tools and whole
 * message history, and file-local ids that tie them together. */

/* The agent as an Agent File document: its settings, blocks, functions
 * (with the tools of an imported file it keeps), tool rules, every stored
 * message (the ones in view listed as in context), and in the file's
 * metadata the recursive summary and our settings, so that importing the
 * file and exporting again gives the same document apart from ids and
 * timestamps. Caller frees *json_out. */
mg_status mg_agent_export(mg_agent *agent, char **json_out, mg_error *err);

typedef struct mg_import_options {
    const char *name;     /* the new agent's name (one-agent files only); NULL: the file's,
                             made valid and unique */
    const char *model;    /* a model handle instead of the file's */
    const char *embedder; /* an embedder spec instead of the file's */
} mg_import_options;

/* Creates the agents of an Agent File: blocks with their limits and
 * read-only flags, the system prompt, tags, description and metadata, the
 * model handle and context window of its llm_config, every message (those
 * the file lists in context back in the window, in order, the rest in
 * recall memory), its tool rules (kept, not enforced), and Letta's
 * memory_insert, memory_replace and memory_rethink as our functions. Tools
 * we do not run (Python source, web search) are kept with the agent and
 * written back on export, never offered to the model. Everything is checked
 * before anything is stored, and all of it is stored in one transaction: a
 * malformed or hostile file (wrong types, missing ids, dangling references,
 * blocks over their limits or the window, unknown models) is refused with
 * MG_ERR_USAGE and a message naming the place, and leaves nothing behind.
 * *report_json (may be NULL) gets {"agents": [{id, name, file_id,
 * messages, in_context, unavailable_tools, tool_rules, notes}]}; caller
 * frees it. */
mg_status mg_agent_import(mg_store *store, const char *data, size_t len,
                          const mg_import_options *options, char **report_json, mg_error *err);

/* ----------------------------------------------------------------- context */

/* What the next request would hold: tokens per part (system, core memory,
 * summary, messages, tools), the window, the warning and flush thresholds,
 * and the message count. A JSON object; caller frees. */
mg_status mg_context_json(mg_agent *agent, char **json_out, mg_error *err);

/* The text of the system message the next request would start with, whole
 * ("system_message") and by part ("instructions", "core_memory",
 * "memory_statistics", "summary"), plus the recursive summary alone
 * ("summary_text"), how many messages it covers ("summarized_messages") and
 * when the last flush made it ("last_flush_at", ISO 8601, or null). A JSON
 * object; caller frees. */
mg_status mg_context_text_json(mg_agent *agent, char **json_out, mg_error *err);

/* Every function the library has, as a JSON array of {name, description,
 * parameters (a JSON Schema)}, the form the provider is sent: the base
 * ones every agent is offered, then the optional ones (see
 * mg_agent_config.functions_json). Caller frees. */
mg_status mg_tools_json(char **json_out, mg_error *err);

/* The functions this agent is offered, in the same form: the base ones,
 * the optional ones it enables (mg_agent_config.functions_json) and the
 * MCP tools attached to it, which carry one more member, "mcp_server":
 * {"name", "id"} of the server the tool comes from, and its Agent File's
 * Python tools once allowed, which carry "python": true. */
mg_status mg_agent_tools_json(mg_agent *agent, char **json_out, mg_error *err);

/* ---- MCP servers and the tools agents have from them
 *
 * MCP servers are configured once for the data directory; any of their
 * tools can then be attached to an agent, which is offered it beside its
 * functions (see src/tools/mcp.h for the protocol and the limits).
 * `config_json` is Letta's shape: {"mcp_server_type":"stdio", "command",
 * "args", "env"} or {"mcp_server_type":"streamable_http", "server_url",
 * "auth_header", "auth_token", "custom_headers"}, with optionally
 * "timeout_seconds" (every request's limit, default 60). A server is named
 * by its name (1-64 of [A-Za-z0-9_.-]) or its id "mcp_server-<uuid>".
 * Configurations read back never show secrets: env values, auth_token and
 * custom header values read "****". */

/* Adds a server. MG_ERR_EXISTS if the name is taken, MG_ERR_USAGE for a bad
 * config. *id_out (may be NULL; caller frees) receives its id. */
mg_status mg_mcp_add(mg_store *store, const char *name, const char *config_json, char **id_out,
                     mg_error *err);

/* Renames a server (`new_name` non-NULL) and/or changes its config
 * (`config_json` non-NULL: its members replace the stored ones, a null
 * member removes one; a new mcp_server_type starts from nothing; the
 * result is checked as by mg_mcp_add). Attached
 * tools stay attached. */
mg_status mg_mcp_update(mg_store *store, const char *server, const char *new_name,
                        const char *config_json, mg_error *err);

/* The servers: a JSON array of {id, name, config, created_at, updated_at,
 * attached_tools}; or one of them. Caller frees. */
mg_status mg_mcp_list(mg_store *store, char **json_out, mg_error *err);
mg_status mg_mcp_get(mg_store *store, const char *server, char **json_out, mg_error *err);

/* Removes a server, detaching its tools from every agent (*detached, may
 * be NULL, says from how many). */
mg_status mg_mcp_remove(mg_store *store, const char *server, int *detached, mg_error *err);

/* A server's tools as it lists them now (the server is started or asked):
 * a JSON array of MCP Tool objects. MG_ERR_PROVIDER if it fails. */
mg_status mg_mcp_tools(mg_store *store, const char *server, char **json_out, mg_error *err);

/* Attaches tool `tool` of `server` to agent `agent` (its name), with the
 * schema the server gives now. Refused: a name a model cannot call, one of
 * our functions' names, a name the agent already has (MG_ERR_EXISTS).
 * Agents opened before see it when opened again. */
mg_status mg_agent_tool_attach(mg_store *store, const char *agent, const char *server,
                               const char *tool, mg_error *err);
mg_status mg_agent_tool_detach(mg_store *store, const char *agent, const char *tool, mg_error *err);

/* How the agent counts tokens for its budget, as one line: "exact
 * (o200k_base)" for OpenAI models whose encoding is known and whose rank
 * files load, else "estimate (scaled by usage, factor X)". May open the
 * tokenizer. Owned by the agent, valid until the next call. */
const char *mg_agent_token_counter(mg_agent *agent);

/* NULL, or one line saying why the agent's model's exact counts are
 * unavailable and estimates are used instead: its rank file is missing (a
 * stat, nothing is opened), or it failed to load when the agent counted.
 * For the caller to show the user once; the library never prints it. Owned
 * by the agent. */
const char *mg_agent_tokens_notice(mg_agent *agent);

/* --------------------------------------------------------------- tokenizer */

/* Exact BPE token counts for OpenAI models, tiktoken-compatible (the same
 * token ids as tiktoken's encode_ordinary: text that looks like a special
 * token, "<|endoftext|>", is ordinary text). Any bytes encode: valid UTF-8
 * exactly as tiktoken does, and each run of bytes that is not valid UTF-8 as
 * a piece of its own, so decode(encode(x)) == x for every x. */
typedef struct mg_tokenizer mg_tokenizer;

/* Opens "cl100k_base" or "o200k_base" (MG_ERR_USAGE for another name). The
 * rank file NAME.tiktoken is read from $MEMGPT_TOKENIZER_DIR if set, else
 * from share/memgpt/ beside the executable, then ../share/memgpt/. If it is
 * missing or damaged the tokenizer still opens, but counts are conservative
 * estimates: see mg_tokenizer_exact and mg_tokenizer_status. Free with
 * mg_tokenizer_free. The handle holds scratch space: one thread at a time. */
mg_status mg_tokenizer_open(const char *encoding, mg_tokenizer **out, mg_error *err);
void mg_tokenizer_free(mg_tokenizer *tok);

/* 1 if counts are exact (the rank file loaded), 0 if they are estimates. */
int mg_tokenizer_exact(const mg_tokenizer *tok);

/* NULL when exact; otherwise one line saying why counts are estimates, for
 * the caller to show the user once. Owned by the tokenizer. */
const char *mg_tokenizer_status(const mg_tokenizer *tok);

/* The encoding's name ("o200k_base"). */
const char *mg_tokenizer_encoding(const mg_tokenizer *tok);

/* The encoding of an OpenAI model handle ("openai/gpt-4o" -> "o200k_base",
 * "openai/gpt-4" -> "cl100k_base"), or NULL when it is not known (other
 * providers, unknown models). Static string. */
const char *mg_model_encoding(const char *handle);

/* The number of tokens in text[0..len): exact, or mg_tokenizer_status's
 * estimate (which errs high). Texts over 4 GiB get the estimate too. */
size_t mg_tokenizer_count(mg_tokenizer *tok, const char *text, size_t len);

/* The token ids of text[0..len). *ids (never NULL on success) is freed by
 * the caller with mg_free. MG_ERR_NOT_FOUND if the tokenizer is not exact,
 * MG_ERR_TOO_LARGE for a text over 4 GiB. */
mg_status mg_tokenizer_encode(mg_tokenizer *tok, const char *text, size_t len, uint32_t **ids,
                              size_t *n, mg_error *err);

/* The bytes of ids[0..n), NUL-terminated (*len excludes the NUL; len may be
 * NULL). Caller frees *text with mg_free. MG_ERR_USAGE for an id that is
 * not in the encoding; MG_ERR_NOT_FOUND if the tokenizer is not exact. */
mg_status mg_tokenizer_decode(mg_tokenizer *tok, const uint32_t *ids, size_t n, char **text,
                              size_t *len, mg_error *err);

#ifdef __cplusplus
}
#endif
#endif /* MEMGPT_H */
