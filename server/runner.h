/*
 * runner.h - where turns run: a pool of worker threads and a queue per
 * agent.
 *
 * Every job that changes an agent (a turn, a block edit, a reset, a
 * summary) goes into that agent's queue and runs on a worker, one job of
 * an agent at a time and in arrival order, while jobs of different agents
 * run in parallel. Each worker owns one store connection and opens the
 * agent afresh for each job, so a job always starts from what is on disk
 * (the CLI may have changed it meanwhile). Reads never enter the queues:
 * they use the request's own connection, and SQLite's WAL lets them see
 * the last commit while a turn writes.
 *
 * A turn is a run (Letta's word): its events are kept in the run as Letta
 * messages, for the request that waits for the whole answer, for SSE
 * readers that follow it as it grows, and for GET /v1/runs/{id} after it.
 * A client that goes away drops its reference; the turn goes on and is
 * stored. Runs are kept in memory: the last SRV_RUNS_KEPT finished ones.
 */
#ifndef MG_SERVER_RUNNER_H
#define MG_SERVER_RUNNER_H

#include <jansson.h>
#include <pthread.h>

#include "memgpt.h"

#define SRV_RUNS_KEPT 1000

typedef struct srv_runner srv_runner;

typedef enum srv_run_status {
    SRV_RUN_CREATED,
    SRV_RUN_RUNNING,
    SRV_RUN_COMPLETED,
    SRV_RUN_FAILED,
    SRV_RUN_CANCELLED
} srv_run_status;

/* What one turn is asked to do. */
typedef struct srv_turn_request {
    /* array of {"role": "user"|"system", "text", "pending"?}, taken;
     * "pending" is the uuid of the input's stored row in a background run
     * (mg_pending_add), dropped with the first event of that input. */
    json_t *inputs;
    int max_steps; /* 0: the agent's step limit */
    int use_assistant_message;
    int stream;         /* ask the provider for a streamed reply */
    int stream_tokens;  /* and pass its pieces on */
    int background;     /* an async run (shown as such in the Run) */
    json_t *only_types; /* include_return_message_types, taken; NULL: all */
    /* A background run stored first: the uuid of its first input's row,
     * which is also the run's id. "": not stored. */
    char pending[40];
    int recovered; /* queued again at start-up: past the queue bound if need be */
} srv_turn_request;

typedef struct srv_run srv_run;

/* Starts the workers, each with its own store connection on `home`. */
mg_status srv_runner_new(const char *home, int workers, int queue_per_agent, srv_runner **out,
                         mg_error *err);

/* Stops taking jobs (they fail with MG_ERR_INTERNAL), cancels queued and
 * running turns (a running one stops at its next step boundary, after its
 * step is committed), and waits for every worker. */
void srv_runner_stop(srv_runner *runner);

/* Stops (if not yet) and frees. */
void srv_runner_free(srv_runner *runner);

/* Queues a turn for agent `agent_id`. *out is a new run the caller holds a
 * reference to (srv_run_unref). MG_ERR_TOO_LARGE when the agent's queue is
 * full (answer 429). */
mg_status srv_runner_submit(srv_runner *runner, const char *agent_id, srv_turn_request *req,
                            srv_run **out, mg_error *err);

/* A job that is not a turn: runs fn(store, agent, ctx, err) on the agent's
 * queue with a worker's connection (the agent opened on it) and waits for
 * it. MG_ERR_TOO_LARGE when the queue is full; MG_ERR_NOT_FOUND when the
 * agent is gone. */
typedef mg_status (*srv_agent_fn)(mg_store *store, mg_agent *agent, void *ctx, mg_error *err);
mg_status srv_runner_call(srv_runner *runner, const char *agent_id, srv_agent_fn fn, void *ctx,
                          mg_error *err);

/* Asks every queued and running turn of the agent to stop (queued ones
 * never start). Returns the ids of the runs cancelled, as a JSON array. */
json_t *srv_runner_cancel(srv_runner *runner, const char *agent_id);

/* A run by id (a new reference), or NULL. */
srv_run *srv_runner_find(srv_runner *runner, const char *run_id);

void srv_run_ref(srv_run *run);
void srv_run_unref(srv_run *run);

const char *srv_run_id(const srv_run *run);

/* Waits up to timeout_ms for event number `index` of the run. Returns 1
 * with a new reference in *event, 0 on time-out, -1 when the run has ended
 * and has no such event. */
int srv_run_next(srv_run *run, size_t index, int timeout_ms, json_t **event);

/* Waits for the run to end and gives its LettaResponse: {messages,
 * stop_reason, usage}. */
json_t *srv_run_response(srv_run *run);

/* The run as Letta's Run object. */
json_t *srv_run_json(srv_run *run);

#endif
