/*
 * request.h - one HTTP request as the route handlers see it, and the
 * answer they give.
 *
 * The HTTP layer (http.c) reads the whole request (within the limits),
 * finds the route, checks the password, and calls the handler with a
 * srv_request. A handler fills a srv_reply: a status and a JSON body, or a
 * streamed body (SSE). Handlers never touch libmicrohttpd except through
 * the accessors here, so they read like plain functions of the request.
 *
 * Errors follow Letta's server (FastAPI): {"detail": "text"} for 4xx and
 * 5xx, and for a malformed request 422 with {"detail": [{"loc", "msg",
 * "type"}]}.
 */
#ifndef MG_SERVER_REQUEST_H
#define MG_SERVER_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "memgpt.h"

struct srv;
struct MHD_Connection;
struct srv_run;

#define SRV_MAX_PATH_PARAMS 4

typedef struct srv_request {
    struct srv *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *params[SRV_MAX_PATH_PARAMS]; /* the {...} parts of the route, in order */
    const char *body;                        /* NUL-terminated; "" when none */
    size_t body_len;
    mg_store *store;    /* a connection of the store pool, for this request only */
    int64_t store_seen; /* the version `store` showed last (server/cache.c keeps it) */
} srv_request;

typedef struct srv_reply {
    int status;
    char *body; /* JSON text, owned; NULL: no body */
    /* Set instead of body by handlers that answer with server-sent events
     * (srv_reply_sse): the run to follow, a reference the reply owns. */
    struct srv_run *stream_run;
    int stream_pings;
    int retry_after; /* seconds, for 429 and 503; 0: no header */
    /* Set by list routes whose page held fewer rows than the limit, so
     * nothing follows it in its direction (yet): "X-Memgpt-Page-End:
     * true". A client then need not ask for an empty page to learn it. */
    int page_end;
} srv_reply;

/* ---- answers */

/* A JSON value (stolen) as the answer. */
void srv_reply_json(srv_reply *r, int status, json_t *value);

/* {"detail": "message"} with the status. */
void srv_reply_error(srv_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A library error as its HTTP status: not found 404, usage 422 (as
 * {"detail": [...]} on the body), exists 409, too large 413, auth and
 * provider failures 502, the rest 500. */
void srv_reply_status(srv_reply *r, const mg_error *err);

/* 422 with one validation error at `loc` (e.g. "body", "messages"). */
void srv_reply_invalid(srv_reply *r, const char *where, const char *field, const char *msg);

/* ---- reading the request */

/* The last value of query parameter `name`, or NULL when absent or empty
 * (clients send `name=` for null). */
const char *srv_query(const srv_request *q, const char *name);

/* Every non-empty value of a repeated query parameter (tags=a&tags=b), in
 * order, at most `max`. Returns the count. */
int srv_query_all(const srv_request *q, const char *name, const char **out, int max);

/* Reads an integer query parameter within [min, max]; absent: *out =
 * fallback. 0, or 422 in `r` (return -1). */
int srv_query_int(const srv_request *q, srv_reply *r, const char *name, int fallback, int min,
                  int max, int *out);

/* A boolean query parameter ("true"/"false"/"1"/"0"); absent: fallback.
 * 0, or 422 in `r` (return -1). */
int srv_query_bool(const srv_request *q, srv_reply *r, const char *name, int fallback, int *out);

/* Parses the body as a JSON object. An empty body gives {} when
 * `optional`. NULL and a 422 in `r` otherwise. Caller decrefs. */
json_t *srv_body_object(const srv_request *q, srv_reply *r, int optional);

/* Request header value or NULL. */
const char *srv_header(const srv_request *q, const char *name);

/* ---- reading JSON fields: each returns 0, or -1 with a 422 in `r` */

/* A string field: absent or null leaves *out NULL unless required. */
int srv_field_string(srv_reply *r, json_t *obj, const char *field, int required, const char **out);
/* An integer field within [min, max]; absent or null leaves *out. */
int srv_field_int(srv_reply *r, json_t *obj, const char *field, int64_t min, int64_t max, int *out);
/* A boolean field; absent or null leaves *out. */
int srv_field_bool(srv_reply *r, json_t *obj, const char *field, int *out);
/* A field that must be an array of strings (or absent/null: *out NULL). */
int srv_field_strings(srv_reply *r, json_t *obj, const char *field, json_t **out);

#endif
