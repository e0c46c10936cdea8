/*
 * http.c - the HTTP layer: libmicrohttpd, limits, auth, CORS, the access
 * log, and the server's life from start to a clean stop.
 *
 * Threads: libmicrohttpd runs one thread per connection (a request thread);
 * it reads the request, checks it, borrows a store connection from the
 * pool and calls the route's handler, which may block (a request that
 * waits for a turn, or an SSE answer following one). Turns themselves run
 * on the runner's workers (runner.c), so a client that goes away never
 * stops one. The main thread only waits for SIGINT or SIGTERM.
 *
 * Every request is treated as hostile: the body is capped (413, checked
 * against Content-Length before any of it is read), headers are capped by
 * libmicrohttpd's per-connection memory (431), JSON nesting is capped
 * (422), a request must arrive within request_timeout seconds and an idle
 * connection is dropped after it, and past max_connections open
 * connections a request is answered 503 (with Retry-After) and its
 * connection closed; libmicrohttpd's own limit, CONNECTION_SLACK above
 * ours, only refuses at accept what would otherwise exhaust threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/mhd.h"
#include "server/letta.h"
#include "server/srv.h"
#include "server/static.h"
#include "server/util.h"

#define MAX_JSON_DEPTH   64
#define HEADER_MEMORY    (32 * 1024)
#define THREAD_STACK     (512 * 1024)
#define STOP_GRACE_MS    10000
#define CONNECTION_SLACK 64

/* One request as it arrives. */
typedef struct req_ctx {
    double start_ms;
    char *method, *path;
    char *body;
    size_t len, cap;
    int rejected; /* an answer went out before the body was read */
    int status;
    size_t bytes;
    srv_sse *sse;
} req_ctx;

/* ------------------------------------------------------------ store pool */

static mg_status pool_acquire(srv *s, srv_db *out, mg_error *err)
{
    srv_pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    while (!p->nidle && p->nopen >= p->max)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle) {
        *out = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return MG_OK;
    }
    p->nopen++;
    pthread_mutex_unlock(&p->mu);
    *out = (srv_db){NULL, 0};
    mg_status st = mg_store_open(s->opt.home, &out->store, err);
    if (st) {
        pthread_mutex_lock(&p->mu);
        p->nopen--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return st;
}

static void pool_release(srv *s, srv_db db)
{
    srv_pool *p = &s->pool;
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = db;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------ access log */

/* One line per request, handed whole to the log's writer (accesslog.c). */
static void log_request(srv *s, const req_ctx *c)
{
    double ms = srv_monotonic_ms() - c->start_ms;
    size_t bytes = c->sse ? srv_sse_bytes(c->sse) : c->bytes;
    char line[2600];
    if (s->opt.log_format == SRV_LOG_JSON) {
        char date[32];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        letta_date((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, date);
        json_t *obj =
            json_pack("{s:s, s:s, s:s, s:i, s:I, s:f}", "time", date, "method", c->method, "path",
                      c->path, "status", c->status, "bytes", (json_int_t)bytes, "ms", ms);
        char *text = json_dumps(obj, JSON_COMPACT);
        snprintf(line, sizeof line, "%s\n", text ? text : "{}");
        free(text);
        json_decref(obj);
    } else {
        /* The path comes from the client: control characters are escaped. */
        char path[2048];
        size_t n = 0;
        for (const char *p = c->path; *p && n + 5 < sizeof path; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                n += (size_t)snprintf(path + n, sizeof path - n, "\\x%02x", (unsigned char)*p);
            else
                path[n++] = *p;
        path[n] = '\0';
        snprintf(line, sizeof line, "%.16s %s %d %zu %.1fms\n", c->method, path, c->status, bytes,
                 ms);
    }
    srv_log_line(s->log, line, strlen(line));
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
    srv *s = cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED)
        __atomic_add_fetch(&s->connections, 1, __ATOMIC_RELAXED);
    else
        __atomic_sub_fetch(&s->connections, 1, __ATOMIC_RELAXED);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    srv *s = cls;
    req_ctx *c = *con_cls;
    if (!c) return;
    __atomic_sub_fetch(&s->active, 1, __ATOMIC_RELAXED);
    if (c->status) log_request(s, c);
    srv_sse_free(c->sse);
    free(c->method);
    free(c->path);
    free(c->body);
    free(c);
    *con_cls = NULL;
}

/* ------------------------------------------------------------- answering */

static void add_common_headers(srv *s, struct MHD_Connection *conn, struct MHD_Response *resp)
{
    if (s->opt.cors_origin) {
        const char *origin = srv_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        if (origin &&
            (strcmp(s->opt.cors_origin, "*") == 0 || strcmp(origin, s->opt.cors_origin) == 0)) {
            srv_mhd.add_response_header(resp, "Access-Control-Allow-Origin",
                                        strcmp(s->opt.cors_origin, "*") == 0 ? "*" : origin);
            srv_mhd.add_response_header(resp, "Vary", "Origin");
            srv_mhd.add_response_header(resp, "Access-Control-Expose-Headers",
                                        "Retry-After, X-Memgpt-Page-End");
        }
    }
    srv_mhd.add_response_header(resp, "X-Content-Type-Options", "nosniff");
}

static enum MHD_Result send_reply(srv *s, struct MHD_Connection *conn, req_ctx *c, srv_reply *r)
{
    struct MHD_Response *resp;
    if (r->stream_run) {
        resp = srv_sse_response(r->stream_run, r->stream_pings, &c->sse);
        r->stream_run = NULL; /* the SSE state owns it now */
    } else {
        size_t len = r->body ? strlen(r->body) : 0;
        resp = srv_mhd.create_response_from_buffer(len, r->body ? r->body : (char *)"",
                                                   r->body ? MHD_RESPMEM_MUST_FREE
                                                           : MHD_RESPMEM_PERSISTENT);
        r->body = NULL;
        c->bytes = len;
        if (len) srv_mhd.add_response_header(resp, "Content-Type", "application/json");
    }
    /* An answer given before the request was read (limits) ends the
     * connection: what follows on it cannot be trusted to be a request. */
    if (c->rejected) srv_mhd.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (r->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", r->retry_after);
        srv_mhd.add_response_header(resp, "Retry-After", secs);
    }
    if (r->page_end) srv_mhd.add_response_header(resp, "X-Memgpt-Page-End", "true");
    /* Letta's SDK retries 409 and 5xx, POSTs included: a turn that failed
     * would be sent again. Only 429 and 503 are worth a retry. */
    if (r->status >= 400 && r->status != 429 && r->status != 503)
        srv_mhd.add_response_header(resp, "x-should-retry", "false");
    add_common_headers(s, conn, resp);
    c->status = r->status;
    enum MHD_Result ok = srv_mhd.queue_response(conn, (unsigned)r->status, resp);
    srv_mhd.destroy_response(resp);
    return ok;
}

static enum MHD_Result send_error(srv *s, struct MHD_Connection *conn, req_ctx *c, int status,
                                  const char *msg)
{
    srv_reply r = {0};
    srv_reply_error(&r, status, "%s", msg);
    if (status == 429 || status == 503) r.retry_after = 1;
    return send_reply(s, conn, c, &r);
}

/* ---------------------------------------------------------------- checks */

/* Compares in time that depends only on the expected token's length. */
static int token_equal(const char *given, const char *expected)
{
    size_t n = strlen(expected), m = strlen(given);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(expected[i] ^ given[i % (m ? m : 1)]);
    return diff == 0 && m > 0;
}

static int authorized(srv *s, struct MHD_Connection *conn)
{
    if (!s->opt.password) return 1;
    const char *auth = srv_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return 0;
    return token_equal(auth + 7, s->opt.password);
}

/* 1 if JSON text nests deeper than MAX_JSON_DEPTH (strings skipped). */
static int too_deep(const char *p, size_t len)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > MAX_JSON_DEPTH) return 1;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- requests */

/* The web app's files (static.c): public, like the health check, since
 * the page itself asks for the password. Not found: 404 as JSON. */
static enum MHD_Result send_static(srv *s, struct MHD_Connection *conn, req_ctx *c)
{
    srv_static_file f;
    if (srv_static_find(s->opt.ui_dir, c->path, &f))
        return send_error(s, conn, c, 404, "not found");
    const char *known = srv_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    int unchanged = known && strcmp(known, f.etag) == 0;
    struct MHD_Response *resp;
    if (unchanged) {
        resp = srv_mhd.create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    } else if (f.owned) {
        resp = srv_mhd.create_response_from_buffer(f.size, f.owned, MHD_RESPMEM_MUST_FREE);
        f.owned = NULL;
    } else {
        resp = srv_mhd.create_response_from_buffer(f.size, (void *)f.data, MHD_RESPMEM_PERSISTENT);
    }
    free(f.owned);
    srv_mhd.add_response_header(resp, "Content-Type", f.type);
    srv_mhd.add_response_header(resp, "ETag", f.etag);
    srv_mhd.add_response_header(resp, "Cache-Control",
                                f.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    srv_mhd.add_response_header(resp, "Content-Security-Policy", srv_static_csp);
    srv_mhd.add_response_header(resp, "Referrer-Policy", "no-referrer");
    srv_mhd.add_response_header(resp, "X-Frame-Options", "DENY");
    add_common_headers(s, conn, resp);
    c->status = unchanged ? 304 : 200;
    c->bytes = unchanged ? 0 : f.size;
    enum MHD_Result ok = srv_mhd.queue_response(conn, (unsigned)c->status, resp);
    srv_mhd.destroy_response(resp);
    return ok;
}

static int is_api_path(const char *path)
{
    return strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0;
}

static enum MHD_Result dispatch(srv *s, struct MHD_Connection *conn, req_ctx *c)
{
    if (!is_api_path(c->path) && (strcmp(c->method, "GET") == 0 || strcmp(c->method, "HEAD") == 0))
        return send_static(s, conn, c);
    if (strcmp(c->method, "OPTIONS") == 0 && s->opt.cors_origin) {
        struct MHD_Response *resp =
            srv_mhd.create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
        add_common_headers(s, conn, resp);
        srv_mhd.add_response_header(resp, "Access-Control-Allow-Methods",
                                    "GET, POST, PATCH, PUT, DELETE, OPTIONS");
        srv_mhd.add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, Accept, X-Project, "
                                    "X-Stainless-Lang, X-Stainless-Package-Version, "
                                    "X-Stainless-OS, X-Stainless-Arch, X-Stainless-Runtime, "
                                    "X-Stainless-Runtime-Version, X-Stainless-Retry-Count, "
                                    "X-Stainless-Timeout");
        srv_mhd.add_response_header(resp, "Access-Control-Max-Age", "600");
        c->status = 204;
        enum MHD_Result ok = srv_mhd.queue_response(conn, 204, resp);
        srv_mhd.destroy_response(resp);
        return ok;
    }
    srv_request q = {.srv = s,
                     .conn = conn,
                     .method = c->method,
                     .path = c->path,
                     .body = c->body ? c->body : "",
                     .body_len = c->len};
    int public_route = strcmp(c->path, "/v1/health/") == 0 || strcmp(c->path, "/v1/health") == 0;
    if (!public_route && !authorized(s, conn))
        return send_error(s, conn, c, 401,
                          "a valid password is required: send the header "
                          "'Authorization: Bearer PASSWORD'");
    int path_known = 0;
    srv_handler handler = srv_route(&q, &path_known);
    if (!handler)
        return path_known ? send_error(s, conn, c, 405, "method not allowed")
                          : send_error(s, conn, c, 404, "not found");
    if (c->len && too_deep(c->body, c->len))
        return send_error(s, conn, c, 422, "the JSON body nests too deeply");
    mg_error err = {0};
    srv_db db;
    if (pool_acquire(s, &db, &err)) return send_error(s, conn, c, 503, err.message);
    q.store = db.store;
    q.store_seen = db.seen;
    srv_reply r = {0};
    handler(&q, &r);
    db.seen = q.store_seen;
    pool_release(s, db);
    if (!r.status) srv_reply_error(&r, 500, "the handler gave no answer");
    enum MHD_Result ok = send_reply(s, conn, c, &r);
    free(r.body);
    srv_run_unref(r.stream_run);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    srv *s = cls;
    req_ctx *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        __atomic_add_fetch(&s->active, 1, __ATOMIC_RELAXED);
        c->start_ms = srv_monotonic_ms();
        c->method = strdup(method);
        c->path = strdup(url);
        *con_cls = c;
        if (__atomic_load_n(&s->connections, __ATOMIC_RELAXED) > s->opt.max_connections) {
            c->rejected = 1;
            return send_error(s, conn, c, 503, "too many connections; try again shortly");
        }
        const char *length =
            srv_mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > s->opt.max_body) {
            c->rejected = 1;
            return send_error(s, conn, c, 413, "the request body is larger than the limit");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->rejected) return MHD_YES;
        if (c->len + n > s->opt.max_body) {
            c->rejected = 1;
            return send_error(s, conn, c, 413, "the request body is larger than the limit");
        }
        if (srv_monotonic_ms() - c->start_ms > s->opt.request_timeout * 1000.0) {
            c->rejected = 1;
            return send_error(s, conn, c, 408, "the request took too long to arrive");
        }
        if (c->len + n + 1 > c->cap) {
            c->cap = (c->len + n + 1) * 2;
            if (c->cap > s->opt.max_body + 1) c->cap = s->opt.max_body + 1;
            c->body = realloc(c->body, c->cap);
        }
        memcpy(c->body + c->len, upload_data, n);
        c->len += n;
        c->body[c->len] = '\0';
        return MHD_YES;
    }
    if (c->rejected) return MHD_YES;
    return dispatch(s, conn, c);
}

/* --------------------------------------------------------------- binding */

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(a)) return a->s6_addr[12] == 127;
    }
    return 0;
}

static mg_status resolve(const srv_options *o, struct sockaddr_storage *out, socklen_t *len,
                         mg_error *err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc)
        return srv_err(err, MG_ERR_USAGE, "cannot use address '%s': %s", o->host, gai_strerror(rc));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (!is_loopback((struct sockaddr *)out) && !o->password)
        return srv_err(err, MG_ERR_USAGE,
                       "refusing to listen on %s without a password: anyone who can reach it "
                       "could read and drive every agent; set --password or "
                       "MEMGPT_SERVER_PASSWORD, or bind to 127.0.0.1",
                       o->host);
    return MG_OK;
}

/* ------------------------------------------------------------------- run */

static void defaults(srv_options *o)
{
    if (!o->host) o->host = "127.0.0.1";
    if (o->workers <= 0) o->workers = 16;
    if (!o->max_body) o->max_body = 32u << 20;
    if (o->queue_per_agent <= 0) o->queue_per_agent = 16;
    if (o->max_connections <= 0) o->max_connections = 512;
    if (o->request_timeout <= 0) o->request_timeout = 30;
}

mg_status srv_serve(const srv_options *options, mg_error *err)
{
    srv s = {.opt = *options};
    defaults(&s.opt);
    struct sockaddr_storage addr;
    socklen_t addr_len;
    mg_status st = resolve(&s.opt, &addr, &addr_len, err);
    if (!st) st = srv_mhd_load(err);
    if (st) return st;

    /* Signals go to the main thread alone, which waits for them below. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The first open migrates the store before any other thread exists. */
    mg_store *first;
    if ((st = mg_store_open(s.opt.home, &first, err))) return st;
    pthread_mutex_init(&s.pool.mu, NULL);
    pthread_cond_init(&s.pool.cv, NULL);
    s.pool.max = s.opt.max_connections;
    s.pool.idle = calloc((size_t)s.pool.max, sizeof *s.pool.idle);
    s.pool.idle[s.pool.nidle++] = (srv_db){first, 0};
    s.pool.nopen = 1;
    st = srv_runner_new(s.opt.home, s.opt.workers, s.opt.queue_per_agent, &s.runner, err);
    if (!st) {
        s.agents = srv_cache_new();
        s.log = srv_log_new();
    }
    int resumed = st ? 0 : srv_resume_pending(&s, first);

    struct MHD_Daemon *d = NULL;
    if (!st) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_ITC | MHD_USE_POLL;
        if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
        d = srv_mhd.start_daemon(
            flags, (uint16_t)s.opt.port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR,
            (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, &s, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)(s.opt.max_connections + CONNECTION_SLACK), MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)s.opt.request_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)HEADER_MEMORY, MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
            MHD_OPTION_END);
        if (!d)
            st = srv_err(err, MG_ERR_IO, "cannot listen on %s port %d: %s", s.opt.host, s.opt.port,
                         errno ? strerror(errno) : "the address is in use");
    }
    if (!st) {
        const union MHD_DaemonInfo *info = srv_mhd.get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        fprintf(stderr, "memgpt %s serving %s on http://%s%s%s:%u/ (%d workers%s)\n", MG_VERSION,
                s.opt.home, addr.ss_family == AF_INET6 ? "[" : "", s.opt.host,
                addr.ss_family == AF_INET6 ? "]" : "", info ? info->port : (unsigned)s.opt.port,
                s.opt.workers, s.opt.password ? ", password required" : "");
        if (resumed)
            fprintf(stderr, "memgpt: resuming %d background run%s acknowledged before a stop\n",
                    resumed, resumed == 1 ? "" : "s");
        int sig;
        sigwait(&stop_signals, &sig);
        fprintf(stderr, "memgpt: %s: finishing running steps, then stopping\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        srv_mhd.quiesce_daemon(d);
    }
    /* Running turns stop at their next commit; then every stream ends, and
     * each request still waiting for a turn gets its answer out before the
     * connections are closed (for at most STOP_GRACE_MS). */
    if (s.runner) srv_runner_stop(s.runner);
    for (double t0 = srv_monotonic_ms(); d && __atomic_load_n(&s.active, __ATOMIC_RELAXED) > 0 &&
                                         srv_monotonic_ms() - t0 < STOP_GRACE_MS;)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    if (d) srv_mhd.stop_daemon(d);
    srv_runner_free(s.runner);
    srv_cache_free(s.agents);
    srv_log_free(s.log);
    for (int i = 0; i < s.pool.nidle; i++)
        mg_store_close(s.pool.idle[i].store);
    free(s.pool.idle);
    pthread_mutex_destroy(&s.pool.mu);
    pthread_cond_destroy(&s.pool.cv);
    return st;
}
