/*
 * runner.c - worker threads, per-agent queues and runs (see runner.h).
 *
 * One mutex guards the scheduler: the agents' slots (a hash table of
 * queues), the list of agents ready to run, and the list of kept runs.
 * A slot is "ready" when it has jobs and no worker is on it; a worker takes
 * the first ready slot, runs its oldest job with the mutex released, and
 * puts the slot back at the end of the ready list if more jobs wait, so one
 * busy agent cannot starve the others. Each run has its own mutex and
 * condition for the readers that follow it.
 *
 * A worker keeps the agent of its last turn open, and an agent's next job
 * goes to the worker that ran its last one when that worker is idle. The
 * kept agent is used again only if nothing at all was committed by another
 * connection since (mg_store_version), so it always equals what is on disk;
 * reopening would cost a load of the whole window and a recount of its
 * tokens per turn. Any other job of the agent drops it first.
 */
#include "server/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/letta.h"
#include "server/util.h"

#define SLOT_BUCKETS 1024

struct srv_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* guarded by mu */
    char id[64];
    char agent_id[64];
    srv_turn_request req;
    letta_stream view;
    json_t *stream;   /* every event a stream reader gets, in order */
    json_t *messages; /* the messages of the LettaResponse (no pieces) */
    const char *stop_reason;
    mg_event usage; /* summed over the run's inputs */
    srv_run_status status;
    int done;
    int cancel;  /* read by the agent loop (mg_agent_set_cancel) */
    int stopped; /* cancelled by a stop of the server (atomic) */
    mg_error err;
    int64_t created_ms, completed_ms;
    struct srv_run *kept_next; /* the runner's list of kept runs; runner->mu */
};

typedef struct job {
    struct job *next;
    srv_run *run; /* a turn; or a call: */
    srv_agent_fn fn;
    void *ctx;
    mg_status status;
    mg_error *err;
    int finished;
    pthread_cond_t *finished_cv;
} job;

typedef struct slot {
    char agent_id[64];
    job *head, *tail;
    int queued;
    int busy;
    int ready;
    int last_worker; /* the worker that ran its last job; -1: none */
    struct slot *hash_next, *ready_next;
} slot;

typedef struct worker_arg {
    struct srv_runner *runner;
    mg_store *store;
    int index;
    pthread_cond_t cv; /* signalled when there may be work for this worker */
    int idle;          /* waiting on cv (runner->mu) */
    mg_agent *kept;    /* the agent of its last turn, or NULL */
    char kept_id[64];
    int64_t kept_version; /* mg_store_version when it was kept */
} worker_arg;

struct srv_runner {
    pthread_mutex_t mu;
    slot *buckets[SLOT_BUCKETS];
    slot *ready_head, *ready_tail;
    pthread_t *threads;
    mg_store **stores;
    int nstores;
    int nthreads;
    int stopping;
    int queue_per_agent;
    worker_arg *args;
    srv_run *kept; /* newest first */
    int nkept;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ runs */

void srv_run_ref(srv_run *run)
{
    pthread_mutex_lock(&run->mu);
    run->refs++;
    pthread_mutex_unlock(&run->mu);
}

void srv_run_unref(srv_run *run)
{
    if (!run) return;
    pthread_mutex_lock(&run->mu);
    int last = --run->refs == 0;
    pthread_mutex_unlock(&run->mu);
    if (!last) return;
    json_decref(run->req.inputs);
    json_decref(run->view.delta_ids);
    json_decref(run->view.only_types);
    json_decref(run->stream);
    json_decref(run->messages);
    pthread_mutex_destroy(&run->mu);
    pthread_cond_destroy(&run->cv);
    free(run);
}

const char *srv_run_id(const srv_run *run)
{
    return run->id;
}

static srv_run *run_new(const char *agent_id, srv_turn_request *req)
{
    srv_run *run = calloc(1, sizeof *run);
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cv, NULL);
    run->refs = 1;
    if (req->pending[0])
        snprintf(run->id, sizeof run->id, "run-%s", req->pending);
    else
        letta_random_id("run", run->id);
    snprintf(run->agent_id, sizeof run->agent_id, "%s", agent_id);
    run->req = *req;
    req->inputs = NULL; /* taken */
    run->view = (letta_stream){.use_assistant_message = req->use_assistant_message,
                               .stream_tokens = req->stream_tokens,
                               .delta_ids = json_object(),
                               .only_types = req->only_types};
    req->only_types = NULL;
    run->stream = json_array();
    run->messages = json_array();
    run->created_ms = now_ms();
    return run;
}

static void run_event(const mg_event *ev, void *user)
{
    srv_run *run = user;
    pthread_mutex_lock(&run->mu);
    if (ev->type == MG_EVENT_USAGE) {
        run->usage.prompt_tokens += ev->prompt_tokens;
        run->usage.completion_tokens += ev->completion_tokens;
        run->usage.step_count += ev->step_count;
        run->usage.reasoning_tokens += ev->reasoning_tokens;
        run->usage.cached_tokens += ev->cached_tokens;
        run->stop_reason = ev->stop_reason;
    } else {
        json_t *m = letta_event(&run->view, ev);
        if (m) {
            json_object_set_new(m, "run_id", json_string(run->id));
            json_array_append(run->stream, m);
            if (ev->type != MG_EVENT_ASSISTANT_DELTA) json_array_append(run->messages, m);
            json_decref(m);
            pthread_cond_broadcast(&run->cv);
        }
    }
    pthread_mutex_unlock(&run->mu);
}

/* The error_message type of a failed turn, after Letta's stop reasons. */
static const char *error_type(mg_status st)
{
    switch (st) {
    case MG_ERR_AUTH:
    case MG_ERR_PROVIDER:
        return "llm_api_error";
    case MG_ERR_CONTEXT:
        return "context_window_overflow_in_system_prompt";
    default:
        return "error";
    }
}

static const char *status_name(srv_run_status s)
{
    static const char *const names[] = {"created", "running", "completed", "failed", "cancelled"};
    return names[s];
}

/* The Run, as if finished when `done`. Caller holds run->mu. */
static json_t *run_json_locked(srv_run *run, int done)
{
    char created[32], completed[32];
    letta_date(run->created_ms, created);
    letta_date(run->completed_ms, completed);
    json_t *out = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:s?, s:b, s:{}, s:{s:b, s:s, s:s}, s:o?}", "id", run->id,
        "agent_id", run->agent_id, "status", status_name(run->status), "created_at", created,
        "completed_at", done ? completed : NULL, "stop_reason", done ? run->stop_reason : NULL,
        "background", run->req.background, "metadata", "request_config", "use_assistant_message",
        run->req.use_assistant_message, "assistant_message_tool_name", "send_message",
        "assistant_message_tool_kwarg", "message", "total_duration_ns",
        done ? json_integer((run->completed_ms - run->created_ms) * 1000000) : NULL);
    if (run->status == SRV_RUN_FAILED)
        json_object_set_new(json_object_get(out, "metadata"), "error",
                            json_string(run->err.message));
    return out;
}

/* A background run cut short by a stop of the server keeps the rows of
 * its inputs not yet started, and has no outcome: the next start runs
 * them. */
static int resumes_later(srv_run *run)
{
    return run->req.pending[0] && __atomic_load_n(&run->stopped, __ATOMIC_RELAXED);
}

/* Closes the run: the error (if any), the stop reason and the usage. A
 * background run's outcome is stored (mg_pending_finish) before anyone
 * sees it finished, so whoever saw it finished can still ask after a
 * restart. */
static void run_finish(srv_run *run, mg_status st, const mg_error *err, mg_store *store)
{
    pthread_mutex_lock(&run->mu);
    if (st) {
        run->err = *err;
        run->status = SRV_RUN_FAILED;
        run->stop_reason = error_type(st);
        json_array_append_new(run->stream,
                              json_pack("{s:s, s:s, s:s, s:s}", "message_type", "error_message",
                                        "run_id", run->id, "error_type", run->stop_reason,
                                        "message", err->message));
    } else if (run->stop_reason && strcmp(run->stop_reason, "cancelled") == 0) {
        run->status = SRV_RUN_CANCELLED;
    } else {
        run->status = SRV_RUN_COMPLETED;
    }
    if (!run->stop_reason) run->stop_reason = "end_turn";
    json_array_append_new(run->stream, letta_stop_reason(run->stop_reason));
    json_array_append_new(run->stream, letta_usage(&run->usage));
    run->completed_ms = now_ms();
    json_t *outcome = run->req.pending[0] && !resumes_later(run) ? run_json_locked(run, 1) : NULL;
    pthread_mutex_unlock(&run->mu);
    if (outcome) {
        char *text = json_dumps(outcome, JSON_COMPACT);
        mg_error ignored;
        mg_pending_finish(store, run->req.pending, run->agent_id, text, &ignored);
        free(text);
        json_decref(outcome);
    }
    pthread_mutex_lock(&run->mu);
    run->done = 1;
    pthread_cond_broadcast(&run->cv);
    pthread_mutex_unlock(&run->mu);
}

static void worker_drop(worker_arg *w)
{
    mg_agent_free(w->kept);
    w->kept = NULL;
    w->kept_id[0] = '\0';
}

/* The agent for a turn: the kept one if it is this agent and nothing was
 * committed by another connection since it was kept; else opened afresh. */
static mg_status worker_agent(worker_arg *w, const char *agent_id, mg_agent **out, mg_error *err)
{
    int64_t now;
    if (w->kept && strcmp(w->kept_id, agent_id) == 0 &&
        mg_store_version(w->store, &now, NULL) == MG_OK && now == w->kept_version) {
        *out = w->kept;
        w->kept = NULL;
        return MG_OK;
    }
    worker_drop(w);
    return mg_agent_open_id(w->store, agent_id, out, err);
}

static void worker_keep(worker_arg *w, const char *agent_id, mg_agent *agent)
{
    worker_drop(w);
    if (mg_store_version(w->store, &w->kept_version, NULL) != MG_OK) {
        mg_agent_free(agent);
        return;
    }
    w->kept = agent;
    snprintf(w->kept_id, sizeof w->kept_id, "%s", agent_id);
}

/* Inputs of a background run that will not run (the run failed, stopped
 * early or was cancelled) must not run after a restart either: their
 * stored rows go. Rows already taken by their first event are gone. */
static void drop_pending(srv_run *run, mg_store *store)
{
    mg_error ignored;
    size_t i;
    json_t *in;
    json_array_foreach(run->req.inputs, i, in)
    {
        const char *uuid = json_string_value(json_object_get(in, "pending"));
        if (uuid) mg_pending_remove(store, uuid, &ignored);
    }
}

static void run_turn(srv_run *run, worker_arg *w)
{
    mg_error err = {0};
    if (__atomic_load_n(&run->cancel, __ATOMIC_RELAXED)) {
        if (!resumes_later(run)) drop_pending(run, w->store);
        run->stop_reason = "cancelled";
        run_finish(run, MG_OK, &err, w->store);
        return;
    }
    pthread_mutex_lock(&run->mu);
    run->status = SRV_RUN_RUNNING;
    pthread_mutex_unlock(&run->mu);
    mg_agent *agent;
    mg_status st = worker_agent(w, run->agent_id, &agent, &err);
    if (st) {
        drop_pending(run, w->store);
        run_finish(run, st, &err, w->store);
        return;
    }
    mg_agent_set_streaming(agent, run->req.stream);
    mg_agent_set_max_steps(agent, run->req.max_steps);
    mg_agent_set_cancel(agent, &run->cancel);
    size_t i;
    json_t *in;
    json_array_foreach(run->req.inputs, i, in)
    {
        const char *text = json_string_value(json_object_get(in, "text"));
        const char *role = json_string_value(json_object_get(in, "role"));
        mg_agent_set_pending(agent, json_string_value(json_object_get(in, "pending")));
        if (role && strcmp(role, "system") == 0)
            st = mg_agent_send_system(agent, text, run_event, run, &err);
        else
            st = mg_agent_send(agent, text, run_event, run, &err);
        if (st || (run->stop_reason && strcmp(run->stop_reason, "end_turn") != 0)) break;
    }
    if (i < json_array_size(run->req.inputs) && !resumes_later(run)) drop_pending(run, w->store);
    mg_agent_set_cancel(agent, NULL);
    mg_agent_set_pending(agent, NULL);
    if (st)
        mg_agent_free(agent); /* a failed turn's agent is not kept */
    else
        worker_keep(w, run->agent_id, agent);
    run_finish(run, st, &err, w->store);
}

int srv_run_next(srv_run *run, size_t index, int timeout_ms, json_t **event)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&run->mu);
    while (index >= json_array_size(run->stream) && !run->done)
        if (pthread_cond_timedwait(&run->cv, &run->mu, &until)) break;
    if (index < json_array_size(run->stream)) {
        *event = json_incref(json_array_get(run->stream, index));
        rc = 1;
    } else if (run->done) {
        rc = -1;
    }
    pthread_mutex_unlock(&run->mu);
    return rc;
}

json_t *srv_run_response(srv_run *run)
{
    pthread_mutex_lock(&run->mu);
    while (!run->done)
        pthread_cond_wait(&run->cv, &run->mu);
    json_t *out = json_pack("{s:O, s:o, s:o}", "messages", run->messages, "stop_reason",
                            letta_stop_reason(run->stop_reason), "usage", letta_usage(&run->usage));
    pthread_mutex_unlock(&run->mu);
    return out;
}

json_t *srv_run_json(srv_run *run)
{
    pthread_mutex_lock(&run->mu);
    json_t *out = run_json_locked(run, run->done);
    pthread_mutex_unlock(&run->mu);
    return out;
}

/* ----------------------------------------------------------------- slots */

/* The agent's slot, made on first use. Caller holds runner->mu. */
static slot *slot_for(srv_runner *r, const char *agent_id)
{
    unsigned h = srv_hash(agent_id) % SLOT_BUCKETS;
    for (slot *s = r->buckets[h]; s; s = s->hash_next)
        if (strcmp(s->agent_id, agent_id) == 0) return s;
    slot *s = calloc(1, sizeof *s);
    s->last_worker = -1;
    snprintf(s->agent_id, sizeof s->agent_id, "%s", agent_id);
    s->hash_next = r->buckets[h];
    r->buckets[h] = s;
    return s;
}

static void make_ready(srv_runner *r, slot *s)
{
    if (s->ready || s->busy || !s->head) return;
    s->ready = 1;
    s->ready_next = NULL;
    if (r->ready_tail)
        r->ready_tail->ready_next = s;
    else
        r->ready_head = s;
    r->ready_tail = s;
    /* Its last worker if that one is idle, else any idle worker. */
    int target = s->last_worker >= 0 && r->args[s->last_worker].idle ? s->last_worker : -1;
    for (int i = 0; target < 0 && i < r->nthreads; i++)
        if (r->args[i].idle) target = i;
    if (target >= 0) pthread_cond_signal(&r->args[target].cv);
}

/* The ready slot worker `w` should take: one whose last job was its own,
 * else one whose last worker is busy (or none). A slot whose last worker
 * is idle waits for it: it has been woken for it. Removed from the list. */
static slot *take_ready(srv_runner *r, int w)
{
    slot *prev = NULL, *pick = NULL, *pick_prev = NULL;
    for (slot *s = r->ready_head; s; prev = s, s = s->ready_next) {
        int mine = s->last_worker == w;
        int free_for_all = s->last_worker < 0 || !r->args[s->last_worker].idle;
        if (mine || (!pick && free_for_all)) {
            pick = s;
            pick_prev = prev;
            if (mine) break;
        }
    }
    if (!pick) return NULL;
    if (pick_prev)
        pick_prev->ready_next = pick->ready_next;
    else
        r->ready_head = pick->ready_next;
    if (r->ready_tail == pick) r->ready_tail = pick_prev;
    pick->ready = 0;
    return pick;
}

static void keep_run(srv_runner *r, srv_run *run);

/* Queues `j` for the agent; a turn's run is kept (findable, cancellable)
 * in the same critical section, so a cancel never misses a queued turn. */
static mg_status enqueue(srv_runner *r, const char *agent_id, job *j, mg_error *err)
{
    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
        pthread_mutex_unlock(&r->mu);
        return srv_err(err, MG_ERR_INTERNAL, "the server is shutting down");
    }
    slot *s = slot_for(r, agent_id);
    if (s->queued >= r->queue_per_agent && !(j->run && j->run->req.recovered)) {
        pthread_mutex_unlock(&r->mu);
        return srv_err(err, MG_ERR_TOO_LARGE,
                       "%d requests already wait for this agent; try again later", s->queued);
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queued++;
    if (j->run) keep_run(r, j->run);
    make_ready(r, s);
    pthread_mutex_unlock(&r->mu);
    return MG_OK;
}

/* Keeps a new run findable; forgets the oldest finished ones past the cap.
 * Caller holds runner->mu. */
static void keep_run(srv_runner *r, srv_run *run)
{
    srv_run_ref(run);
    run->kept_next = r->kept;
    r->kept = run;
    r->nkept++;
    if (r->nkept <= SRV_RUNS_KEPT) return;
    srv_run **link = &r->kept, *last_done = NULL, **last_link = NULL;
    for (; *link; link = &(*link)->kept_next) {
        pthread_mutex_lock(&(*link)->mu);
        int done = (*link)->done;
        pthread_mutex_unlock(&(*link)->mu);
        if (done) {
            last_done = *link;
            last_link = link;
        }
    }
    if (!last_done) return;
    *last_link = last_done->kept_next;
    r->nkept--;
    srv_run_unref(last_done);
}

mg_status srv_runner_submit(srv_runner *r, const char *agent_id, srv_turn_request *req,
                            srv_run **out, mg_error *err)
{
    srv_run *run = run_new(agent_id, req);
    job *j = calloc(1, sizeof *j);
    j->run = run;
    srv_run_ref(run); /* the job's */
    mg_status st = enqueue(r, agent_id, j, err);
    if (st) {
        free(j);
        srv_run_unref(run);
        srv_run_unref(run);
        *out = NULL;
        return st;
    }
    *out = run;
    return MG_OK;
}

mg_status srv_runner_call(srv_runner *r, const char *agent_id, srv_agent_fn fn, void *ctx,
                          mg_error *err)
{
    pthread_cond_t done_cv;
    pthread_cond_init(&done_cv, NULL);
    job j = {.fn = fn, .ctx = ctx, .err = err, .finished_cv = &done_cv};
    mg_status st = enqueue(r, agent_id, &j, err);
    if (!st) {
        pthread_mutex_lock(&r->mu);
        while (!j.finished)
            pthread_cond_wait(&done_cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
        st = j.status;
    }
    pthread_cond_destroy(&done_cv);
    return st;
}

json_t *srv_runner_cancel(srv_runner *r, const char *agent_id)
{
    json_t *ids = json_array();
    pthread_mutex_lock(&r->mu);
    for (srv_run *run = r->kept; run; run = run->kept_next) {
        if (strcmp(run->agent_id, agent_id) != 0) continue;
        pthread_mutex_lock(&run->mu);
        if (!run->done) {
            __atomic_store_n(&run->cancel, 1, __ATOMIC_RELAXED);
            json_array_append_new(ids, json_string(run->id));
        }
        pthread_mutex_unlock(&run->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return ids;
}

srv_run *srv_runner_find(srv_runner *r, const char *run_id)
{
    srv_run *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (srv_run *run = r->kept; run && !found; run = run->kept_next)
        if (strcmp(run->id, run_id) == 0) found = run;
    if (found) srv_run_ref(found);
    pthread_mutex_unlock(&r->mu);
    return found;
}

/* --------------------------------------------------------------- workers */

static void *worker_main(void *p)
{
    worker_arg *w = p;
    srv_runner *r = w->runner;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        slot *s = take_ready(r, w->index);
        if (!s) {
            if (r->stopping && !r->ready_head) break;
            w->idle = 1;
            pthread_cond_wait(&w->cv, &r->mu);
            w->idle = 0;
            continue;
        }
        job *j = s->head;
        s->head = j->next;
        if (!s->head) s->tail = NULL;
        s->queued--;
        s->busy = 1;
        s->last_worker = w->index;
        pthread_mutex_unlock(&r->mu);

        if (j->run) {
            run_turn(j->run, w);
            srv_run_unref(j->run);
            free(j);
            pthread_mutex_lock(&r->mu);
        } else {
            /* The job changes the agent on disk: a kept copy would be stale. */
            if (strcmp(w->kept_id, s->agent_id) == 0) worker_drop(w);
            mg_agent *agent;
            mg_status st = mg_agent_open_id(w->store, s->agent_id, &agent, j->err);
            if (!st) {
                st = j->fn(w->store, agent, j->ctx, j->err);
                mg_agent_free(agent);
            }
            pthread_mutex_lock(&r->mu);
            j->status = st;
            j->finished = 1; /* the caller owns j: not touched after this */
            pthread_cond_signal(j->finished_cv);
        }
        s->busy = 0;
        make_ready(r, s);
    }
    pthread_mutex_unlock(&r->mu);
    worker_drop(w);
    return NULL;
}

mg_status srv_runner_new(const char *home, int workers, int queue_per_agent, srv_runner **out,
                         mg_error *err)
{
    srv_runner *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->queue_per_agent = queue_per_agent;
    r->threads = calloc((size_t)workers, sizeof *r->threads);
    r->stores = calloc((size_t)workers, sizeof *r->stores);
    r->args = calloc((size_t)workers, sizeof *r->args);
    mg_status st = MG_OK;
    for (int i = 0; i < workers && !st; i++)
        if (!(st = mg_store_open(home, &r->stores[i], err))) r->nstores++;
    /* Workers wait for the lock until all exist (make_ready reads nthreads). */
    pthread_mutex_lock(&r->mu);
    if (!st)
        for (int i = 0; i < workers && !st; i++) {
            r->args[i] = (worker_arg){.runner = r, .store = r->stores[i], .index = i};
            pthread_cond_init(&r->args[i].cv, NULL);
            if (pthread_create(&r->threads[i], NULL, worker_main, &r->args[i]) != 0)
                st = srv_err(err, MG_ERR_INTERNAL, "could not start worker threads");
            else
                r->nthreads++;
        }
    pthread_mutex_unlock(&r->mu);
    if (st) {
        srv_runner_free(r);
        return st;
    }
    *out = r;
    return MG_OK;
}

void srv_runner_stop(srv_runner *r)
{
    pthread_mutex_lock(&r->mu);
    int joined = r->stopping;
    r->stopping = 1;
    for (srv_run *run = r->kept; run; run = run->kept_next) {
        __atomic_store_n(&run->stopped, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&run->cancel, 1, __ATOMIC_RELAXED);
    }
    for (int i = 0; i < r->nthreads; i++)
        pthread_cond_signal(&r->args[i].cv);
    pthread_mutex_unlock(&r->mu);
    if (joined) return;
    for (int i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
}

void srv_runner_free(srv_runner *r)
{
    if (!r) return;
    srv_runner_stop(r);
    for (srv_run *run = r->kept, *next; run; run = next) {
        next = run->kept_next;
        srv_run_unref(run);
    }
    for (int b = 0; b < SLOT_BUCKETS; b++)
        for (slot *s = r->buckets[b], *next; s; s = next) {
            next = s->hash_next;
            free(s);
        }
    for (int i = 0; i < r->nstores; i++)
        mg_store_close(r->stores[i]);
    for (int i = 0; i < r->nthreads; i++)
        pthread_cond_destroy(&r->args[i].cv);
    free(r->stores);
    free(r->threads);
    free(r->args);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
