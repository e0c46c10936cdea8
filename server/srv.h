/*
 * srv.h - the running server's shared state (internal to server/).
 */
#ifndef MG_SERVER_SRV_H
#define MG_SERVER_SRV_H

#include <pthread.h>

#include "server/accesslog.h"
#include "server/cache.h"
#include "server/request.h"
#include "server/runner.h"
#include "server/server.h"

/* Store connections for request threads: each request borrows one for its
 * duration (reads, and writes that need no agent queue). */
/* A store of the pool and the version it showed last (cache.c). */
typedef struct srv_db {
    mg_store *store;
    int64_t seen;
} srv_db;

typedef struct srv_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_db *idle;
    int nidle;
    int nopen;
    int max;
} srv_pool;

typedef struct srv {
    srv_options opt;
    srv_pool pool;
    srv_runner *runner;
    srv_cache *agents; /* GET /v1/agents/{id} answers */
    srv_log *log;      /* the access log's writer */
    int active;        /* requests between their first byte and their completion (atomic) */
    int connections;   /* open connections (atomic) */
} srv;

/* Route handlers (routes.c dispatches to them). */
typedef void (*srv_handler)(srv_request *q, srv_reply *r);

/* Finds the handler of METHOD PATH, filling q->params. Returns NULL and
 * sets *path_known when the path exists with other methods (405). */
srv_handler srv_route(srv_request *q, int *path_known);

/* Answers with server-sent events that follow `run` (taken) until it ends:
 * one `data: {json}` per event, keep-alive pings during long waits when
 * asked, then `data: [DONE]`. */
void srv_reply_sse(srv_reply *r, srv_run *run, int include_pings);

/* Queues again the background runs a previous process acknowledged but
 * did not start (messages.c). Returns how many. */
int srv_resume_pending(srv *s, mg_store *store);

/* The state of one SSE answer (sse.c), owned by the request. */
typedef struct srv_sse srv_sse;
struct MHD_Response *srv_sse_response(srv_run *run, int include_pings, srv_sse **state);
size_t srv_sse_bytes(const srv_sse *state);
void srv_sse_free(srv_sse *state);

#endif
