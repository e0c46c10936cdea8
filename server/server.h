/*
 * server.h - `memgpt serve`: Letta's REST and SSE API over libmemgpt.
 *
 * The server is the library's second client, beside the CLI: it speaks
 * HTTP with libmicrohttpd, turns requests into calls of include/memgpt.h
 * and answers in the shapes of Letta's published API, so that Letta's SDKs
 * work against it unchanged. See ARCHITECTURE.md, "The server", for its
 * threads and how Letta's concepts map onto ours.
 */
#ifndef MG_SERVER_SERVER_H
#define MG_SERVER_SERVER_H

#include <stddef.h>

#include "memgpt.h"

typedef enum srv_log_format { SRV_LOG_TEXT, SRV_LOG_JSON } srv_log_format;

typedef struct srv_options {
    const char *home;        /* data directory (resolved) */
    const char *host;        /* address to bind; default 127.0.0.1 */
    int port;                /* default 8283 */
    const char *password;    /* NULL: none (loopback only) */
    int workers;             /* threads running turns; default 16 */
    const char *cors_origin; /* NULL: no CORS headers */
    srv_log_format log_format;
    size_t max_body;     /* bytes; default 32 MiB */
    int queue_per_agent; /* turns waiting per agent before 429; default 16 */
    int max_connections; /* default 512 */
    int request_timeout; /* seconds a request may take to arrive; default 30 */
    const char *ui_dir;  /* serve the web app from this folder; NULL: the compiled-in one */
} srv_options;

/* Runs the server until SIGINT or SIGTERM, then lets running steps reach
 * their next commit and returns MG_OK. Errors before it serves (an address
 * that is not loopback without a password, a port in use, a store that
 * will not open) come back with a message in err. Writes the access log
 * and a start-up line to stderr. */
mg_status srv_serve(const srv_options *options, mg_error *err);

#endif
