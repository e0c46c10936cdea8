/*
 * test_http.c - the HTTP layer against a scripted loopback server.
 *
 * The server runs in a thread on 127.0.0.1 with a kernel-chosen port. It
 * serves one connection per script step, in order: it reads the request
 * (headers, then Content-Length bytes of body), records it, and then either
 * writes a canned raw response, closes without answering, resets the
 * connection, or stalls until the client gives up. Every canned response says
 * "Connection: close", so each attempt is exactly one connection and the
 * number of connections served is the number of attempts the client made.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "provider/http.h"
#include "util/buf.h"

/* ------------------------------------------------------ scripted server */

typedef enum step_kind {
    STEP_REPLY, /* write `raw`, then close */
    STEP_DROP,  /* close without a word: the client sees an empty reply */
    STEP_RESET, /* close with SO_LINGER 0: the client sees a reset */
    STEP_STALL  /* say nothing until the client hangs up (at most 5 s) */
} step_kind;

typedef struct step {
    step_kind kind;
    const char *raw;
} step;

#define MAX_STEPS 8

typedef struct server {
    int listen_fd;
    int port;
    pthread_t thread;
    const step *script;
    int nsteps;
    atomic_int stop;
    atomic_int served;         /* connections accepted so far */
    char *requests[MAX_STEPS]; /* raw request text of each connection */
} server;

static const char OK_HELLO[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 5\r\n"
                               "Connection: close\r\n\r\n"
                               "hello";

static const char TOO_MANY[] = "HTTP/1.1 429 Too Many Requests\r\n"
                               "Retry-After: 0\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

static const char ERR_500[] = "HTTP/1.1 500 Internal Server Error\r\n"
                              "Content-Length: 4\r\n"
                              "Connection: close\r\n\r\n"
                              "oops";

static const char ERR_503[] = "HTTP/1.1 503 Service Unavailable\r\n"
                              "Content-Length: 4\r\n"
                              "Connection: close\r\n\r\n"
                              "busy";

static const char BAD_400[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Length: 3\r\n"
                              "Connection: close\r\n\r\n"
                              "bad";

/* Waits (bounded) until fd is readable; 0 on timeout. */
static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

static size_t content_length(const char *head)
{
    const char *p = head;
    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0) return strtoul(p + 15, NULL, 10);
    }
    return 0;
}

/* Reads one request: the head up to the blank line, then its body. */
static char *read_request(int fd)
{
    buf req = BUF_INIT;
    char chunk[4096];
    const char *end_of_head = NULL;
    while (!end_of_head) {
        if (!wait_readable(fd, 5000)) return buf_take(&req);
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return buf_take(&req);
        buf_append(&req, chunk, (size_t)n);
        end_of_head = strstr(buf_str(&req), "\r\n\r\n");
    }
    size_t head_len = (size_t)(end_of_head - req.data) + 4;
    size_t want = head_len + content_length(req.data);
    while (req.len < want) {
        if (!wait_readable(fd, 5000)) break;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buf_append(&req, chunk, (size_t)n);
    }
    return buf_take(&req);
}

static void serve_step(int fd, const step *s)
{
    if (s->kind == STEP_REPLY) {
        size_t len = strlen(s->raw), off = 0;
        while (off < len) {
            ssize_t n = send(fd, s->raw + off, len - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
    } else if (s->kind == STEP_RESET) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else if (s->kind == STEP_STALL) {
        char c;
        /* The client closing its end makes the socket readable (EOF). */
        if (wait_readable(fd, 5000)) (void)recv(fd, &c, 1, 0);
    }
    close(fd);
}

static void *server_main(void *arg)
{
    server *srv = arg;
    for (int i = 0; i < srv->nsteps && !atomic_load(&srv->stop); i++) {
        /* Poll rather than block in accept so server_stop can end us when
         * the client made fewer connections than scripted. */
        while (!atomic_load(&srv->stop) && !wait_readable(srv->listen_fd, 20)) {
        }
        if (atomic_load(&srv->stop)) break;
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0) break;
        srv->requests[i] = read_request(fd);
        atomic_fetch_add(&srv->served, 1);
        serve_step(fd, &srv->script[i]);
    }
    return NULL;
}

static void server_start(server *srv, const step *script, int nsteps)
{
    memset(srv, 0, sizeof *srv);
    assert_true(nsteps <= MAX_STEPS);
    srv->script = script;
    srv->nsteps = nsteps;
    srv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv->listen_fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(srv->listen_fd, 16), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(srv->listen_fd, (struct sockaddr *)&addr, &len), 0);
    srv->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&srv->thread, NULL, server_main, srv), 0);
}

static void server_stop(server *srv)
{
    atomic_store(&srv->stop, 1);
    pthread_join(srv->thread, NULL);
    close(srv->listen_fd);
}

/* Separate from server_stop so tests can inspect the requests once the
 * thread is gone and reading them cannot race it. */
static void server_free(server *srv)
{
    for (int i = 0; i < MAX_STEPS; i++)
        free(srv->requests[i]);
}

static void server_url(const server *srv, const char *path, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", srv->port, path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static mg_http_request post_request(const char *url, const char *body)
{
    mg_http_request req = {
        .method = "POST",
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 5000,
    };
    return req;
}

/* Runs `script` through mg_http_perform_retry with the default policy,
 * allowing as many attempts as there are steps: one more would connect to a
 * server that no longer answers and wait for the timeout. */
static mg_status run_retry(const step *script, int nsteps, server *srv, mg_http_response *resp,
                           int *attempts, mg_error *err)
{
    char url[128];
    server_start(srv, script, nsteps);
    server_url(srv, "/v1/messages", url, sizeof url);
    mg_http_request req = post_request(url, "{}");
    mg_http_retry policy;
    mg_http_retry_defaults(&policy);
    policy.max_attempts = nsteps;
    return mg_http_perform_retry(&req, &policy, resp, attempts, err);
}

/* ----------------------------------------------------------- transfers */

static void test_post_sends_everything(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, OK_HELLO}};
    server srv;
    server_start(&srv, script, 1);
    char url[128];
    server_url(&srv, "/v1/chat?x=1", url, sizeof url);
    const char *headers[] = {"Authorization: Bearer sk-test", "Content-Type: application/json",
                             NULL};
    mg_http_request req = post_request(url, "{\"model\":\"m\"}");
    req.headers = headers;
    mg_http_response resp;
    int transient = -1;
    mg_error err = {0};

    assert_int_equal(mg_http_perform(&req, &resp, &transient, &err), MG_OK);
    server_stop(&srv);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(resp.body_len, 5);
    assert_true(resp.retry_after_s < 0);
    assert_int_equal(transient, 0);

    const char *seen = srv.requests[0];
    assert_non_null(seen);
    assert_non_null(strstr(seen, "POST /v1/chat?x=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(seen, "\r\nAuthorization: Bearer sk-test\r\n"));
    assert_non_null(strstr(seen, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(seen, "\r\nUser-Agent: memgpt/0.1\r\n"));
    assert_non_null(strstr(seen, "\r\nAccept-Encoding: "));
    assert_non_null(strstr(seen, "\r\nContent-Length: 13\r\n"));
    assert_null(strstr(seen, "Expect:"));
    assert_non_null(strstr(seen, "\r\n\r\n{\"model\":\"m\"}"));
    mg_http_response_free(&resp);
    assert_null(resp.body);
    mg_http_response_free(&resp); /* idempotent */
    server_free(&srv);
}

static void test_get_and_retry_after_header(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, "HTTP/1.1 429 Too Many Requests\r\n"
                                               "retry-after: 7\r\n"
                                               "Content-Length: 0\r\n"
                                               "Connection: close\r\n\r\n"}};
    server srv;
    server_start(&srv, script, 1);
    char url[128];
    server_url(&srv, "/models", url, sizeof url);
    mg_http_request req = {.method = "GET", .url = url, .timeout_ms = 5000};
    mg_http_response resp;

    assert_int_equal(mg_http_perform(&req, &resp, NULL, NULL), MG_OK);
    server_stop(&srv);
    assert_int_equal(resp.status, 429);
    assert_string_equal(resp.body, ""); /* empty but never NULL */
    assert_int_equal(resp.body_len, 0);
    assert_true(resp.retry_after_s == 7.0);
    assert_non_null(strstr(srv.requests[0], "GET /models HTTP/1.1\r\n"));
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_429_then_200(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, TOO_MANY}, {STEP_REPLY, OK_HELLO}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    assert_int_equal(run_retry(script, 2, &srv, &resp, &attempts, NULL), MG_OK);
    server_stop(&srv);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(attempts, 2);
    assert_int_equal(atomic_load(&srv.served), 2);
    /* The retry re-sends the same request. */
    assert_string_equal(srv.requests[0], srv.requests[1]);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_500_503_then_200(void **state)
{
    (void)state;
    static const step script[] = {
        {STEP_REPLY, ERR_500}, {STEP_REPLY, ERR_503}, {STEP_REPLY, OK_HELLO}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    assert_int_equal(run_retry(script, 3, &srv, &resp, &attempts, NULL), MG_OK);
    server_stop(&srv);
    assert_int_equal(resp.status, 200);
    assert_int_equal(attempts, 3);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_dropped_then_200(void **state)
{
    (void)state;
    static const step script[] = {{STEP_DROP, NULL}, {STEP_RESET, NULL}, {STEP_REPLY, OK_HELLO}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    assert_int_equal(run_retry(script, 3, &srv, &resp, &attempts, NULL), MG_OK);
    server_stop(&srv);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "hello");
    assert_int_equal(attempts, 3);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_all_attempts_fail_with_status(void **state)
{
    (void)state;
    static const step script[] = {
        {STEP_REPLY, ERR_503}, {STEP_REPLY, ERR_503}, {STEP_REPLY, ERR_500}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    assert_int_equal(run_retry(script, 3, &srv, &resp, &attempts, NULL), MG_OK);
    server_stop(&srv);
    /* The last response comes back as it is; mapping it is the caller's job. */
    assert_int_equal(resp.status, 500);
    assert_string_equal(resp.body, "oops");
    assert_int_equal(attempts, 3);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_all_attempts_fail_in_transport(void **state)
{
    (void)state;
    static const step script[] = {{STEP_DROP, NULL}, {STEP_DROP, NULL}, {STEP_DROP, NULL}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    mg_error err = {0};
    assert_int_equal(run_retry(script, 3, &srv, &resp, &attempts, &err), MG_ERR_PROVIDER);
    server_stop(&srv);
    assert_int_equal(attempts, 3);
    assert_int_equal(err.code, MG_ERR_PROVIDER);
    assert_non_null(strstr(err.message, "after 3 attempts"));
    assert_non_null(strstr(err.message, "empty reply"));
    assert_non_null(strstr(err.message, "POST http://127.0.0.1:"));
    assert_int_equal(resp.status, 0);
    assert_null(resp.body);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_400_not_retried(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, BAD_400}, {STEP_REPLY, OK_HELLO}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    assert_int_equal(run_retry(script, 2, &srv, &resp, &attempts, NULL), MG_OK);
    server_stop(&srv);
    assert_int_equal(resp.status, 400);
    assert_string_equal(resp.body, "bad");
    assert_int_equal(attempts, 1);
    assert_int_equal(atomic_load(&srv.served), 1);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_retry_after_is_capped(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, "HTTP/1.1 503 Service Unavailable\r\n"
                                               "Retry-After: 3600\r\n"
                                               "Content-Length: 0\r\n"
                                               "Connection: close\r\n\r\n"},
                                  {STEP_REPLY, OK_HELLO}};
    server srv;
    server_start(&srv, script, 2);
    char url[128];
    server_url(&srv, "/", url, sizeof url);
    mg_http_request req = post_request(url, NULL);
    mg_http_retry policy = {.max_attempts = 3, .base_delay_ms = 1, .max_delay_ms = 50};
    mg_http_response resp;
    int attempts = 0;
    double start = now_s();

    assert_int_equal(mg_http_perform_retry(&req, &policy, &resp, &attempts, NULL), MG_OK);
    server_stop(&srv);
    assert_true(now_s() - start < 2.0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(attempts, 2);
    mg_http_response_free(&resp);
    server_free(&srv);
}

static void test_timeout_is_transient(void **state)
{
    (void)state;
    static const step script[] = {{STEP_STALL, NULL}};
    server srv;
    server_start(&srv, script, 1);
    char url[128];
    server_url(&srv, "/slow", url, sizeof url);
    mg_http_request req = post_request(url, "{}");
    req.timeout_ms = 300;
    mg_http_response resp;
    int transient = 0;
    mg_error err = {0};
    double start = now_s();

    assert_int_equal(mg_http_perform(&req, &resp, &transient, &err), MG_ERR_PROVIDER);
    double elapsed = now_s() - start;
    server_stop(&srv);
    assert_int_equal(transient, 1);
    assert_non_null(strstr(err.message, "timed out after 0.3 s"));
    assert_true(elapsed >= 0.25 && elapsed < 3.0);
    assert_null(resp.body);
    server_free(&srv);
}

static void test_timeout_from_environment(void **state)
{
    (void)state;
    static const step script[] = {{STEP_STALL, NULL}};
    server srv;
    server_start(&srv, script, 1);
    char url[128];
    server_url(&srv, "/slow", url, sizeof url);
    mg_http_request req = post_request(url, "{}");
    req.timeout_ms = 0;
    setenv("MEMGPT_HTTP_TIMEOUT", "0.2", 1);
    mg_http_response resp;
    int transient = 0;
    mg_error err = {0};

    assert_int_equal(mg_http_perform(&req, &resp, &transient, &err), MG_ERR_PROVIDER);
    unsetenv("MEMGPT_HTTP_TIMEOUT");
    server_stop(&srv);
    assert_int_equal(transient, 1);
    assert_non_null(strstr(err.message, "timed out after 0.2 s"));
    server_free(&srv);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* A bound socket that never listens: connecting to it is refused, and
     * nobody else can take the port meanwhile. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1?key=SECRET", ntohs(addr.sin_port));
    mg_http_request req = post_request(url, "{}");
    mg_http_response resp;
    int transient = 0;
    mg_error err = {0};

    assert_int_equal(mg_http_perform(&req, &resp, &transient, &err), MG_ERR_PROVIDER);
    assert_int_equal(transient, 1);
    assert_non_null(strstr(err.message, "connection refused"));
    assert_non_null(strstr(err.message, "http://127.0.0.1:"));
    assert_null(strstr(err.message, "SECRET")); /* the query string is not shown */

    /* Through the retry loop: every attempt is refused. */
    mg_http_retry policy = {.max_attempts = 2, .base_delay_ms = 1, .max_delay_ms = 5};
    int attempts = 0;
    assert_int_equal(mg_http_perform_retry(&req, &policy, &resp, &attempts, &err), MG_ERR_PROVIDER);
    assert_int_equal(attempts, 2);
    assert_non_null(strstr(err.message, "failed after 2 attempts: connection refused"));
    close(fd);
}

static void test_oversized_body_refused(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, "HTTP/1.1 200 OK\r\n"
                                               "Content-Length: 67108865\r\n"
                                               "Connection: close\r\n\r\n"
                                               "x"}};
    server srv;
    mg_http_response resp;
    int attempts = 0;
    mg_error err = {0};
    assert_int_equal(run_retry(script, 1, &srv, &resp, &attempts, &err), MG_ERR_PROVIDER);
    server_stop(&srv);
    assert_int_equal(attempts, 1); /* not transient: no retry */
    assert_non_null(strstr(err.message, "larger than 64 MiB"));
    server_free(&srv);
}

static void test_unknown_host_message(void **state)
{
    (void)state;
    /* .invalid never resolves. Whether the resolver calls that final or
     * temporary depends on the machine's network, so only the wording is
     * checked, with a single attempt. */
    mg_http_request req = post_request("http://memgpt-test.invalid/x", "{}");
    mg_http_retry policy = {.max_attempts = 1, .base_delay_ms = 1, .max_delay_ms = 1};
    mg_http_response resp;
    mg_error err = {0};
    assert_int_equal(mg_http_perform_retry(&req, &policy, &resp, NULL, &err), MG_ERR_PROVIDER);
    assert_non_null(strstr(err.message, "memgpt-test.invalid"));
    assert_non_null(strstr(err.message, "after 1 attempt:"));
}

static void test_usage_errors(void **state)
{
    (void)state;
    mg_http_response resp;
    mg_error err = {0};
    mg_http_request req = {.method = "PUT", .url = "http://127.0.0.1:1/"};
    assert_int_equal(mg_http_perform(&req, &resp, NULL, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "PUT"));
    req.method = "POST";
    req.url = NULL;
    assert_int_equal(mg_http_perform(&req, &resp, NULL, &err), MG_ERR_USAGE);
    req.url = "http://127.0.0.1:1/";
    req.body_len = 3;
    assert_int_equal(mg_http_perform_retry(&req, NULL, &resp, NULL, &err), MG_ERR_USAGE);
    req.url = "file:///etc/passwd";
    req.body_len = 0;
    assert_int_equal(mg_http_perform(&req, &resp, NULL, &err), MG_ERR_PROVIDER);
    assert_non_null(strstr(err.message, "unsupported protocol"));
}

/* ------------------------------------------------------------ pure parts */

static void test_parse_retry_after(void **state)
{
    (void)state;
    /* Sun, 06 Nov 1994 08:49:37 GMT is 784111777 seconds after the epoch. */
    const time_t date = 784111777;
    assert_true(mg_http_parse_retry_after("0", 0) == 0.0);
    assert_true(mg_http_parse_retry_after("120", 0) == 120.0);
    assert_true(mg_http_parse_retry_after("1.5", 0) == 1.5);
    assert_true(mg_http_parse_retry_after("  7 \r\n", 0) == 7.0);
    assert_true(mg_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 30) == 30.0);
    assert_true(mg_http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 5) == 0.0);
    assert_true(mg_http_parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", 951782400 - 1) == 1.0);

    const char *garbage[] = {
        "",
        "soon",
        "-1",
        "1.",
        ".5",
        "1e3",
        "0x10",
        "inf",
        "5 s",
        "Sun, 06 Nov 1994",
        "Sun, 06 Nov 1994 08:49:37 PST",  /* not GMT */
        "Sun, 31 Feb 1994 08:49:37 GMT",  /* no such day */
        "Sun, 06 Nox 1994 08:49:37 GMT",  /* no such month */
        "Sun, 06 Nov 1994 24:00:00 GMT",  /* no such hour */
        "Sunday, 06-Nov-94 08:49:37 GMT", /* obsolete RFC 850 form */
        "Thu, 29 Feb 2001 00:00:00 GMT",  /* not a leap year */
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++)
        assert_true(mg_http_parse_retry_after(garbage[i], date) == -1);
    assert_true(mg_http_parse_retry_after(NULL, date) == -1);
}

static void test_backoff_grows_and_caps(void **state)
{
    (void)state;
    mg_http_retry p = {.max_attempts = 5, .base_delay_ms = 100, .max_delay_ms = 1000};
    const double almost_one = 0.999999;
    assert_int_equal(mg_http_backoff_ms(&p, 0, almost_one), 99);
    assert_int_equal(mg_http_backoff_ms(&p, 1, almost_one), 199);
    assert_int_equal(mg_http_backoff_ms(&p, 2, almost_one), 399);
    assert_int_equal(mg_http_backoff_ms(&p, 3, almost_one), 799);
    assert_int_equal(mg_http_backoff_ms(&p, 4, almost_one), 999);
    assert_int_equal(mg_http_backoff_ms(&p, 1000000, almost_one), 999);
    assert_int_equal(mg_http_backoff_ms(&p, 3, 0.5), 400);
    assert_int_equal(mg_http_backoff_ms(&p, 3, 0.0), 0);
    /* Out-of-range randomness and policies stay within bounds. */
    assert_int_equal(mg_http_backoff_ms(&p, 3, 1.5), 0);
    assert_int_equal(mg_http_backoff_ms(&p, 3, -1), 0);
    mg_http_retry huge = {.max_attempts = 1, .base_delay_ms = 1L << 40, .max_delay_ms = -1};
    assert_int_equal(mg_http_backoff_ms(&huge, 70, almost_one), 0);
    mg_http_retry zero = {.max_attempts = 1, .base_delay_ms = 0, .max_delay_ms = 1000};
    assert_int_equal(mg_http_backoff_ms(&zero, 2000000000, almost_one), 0);
}

static void test_retry_defaults_and_environment(void **state)
{
    (void)state;
    const char *saved = getenv("MEMGPT_RETRY_BASE_MS");
    char *saved_base = saved ? strdup(saved) : NULL;
    unsetenv("MEMGPT_RETRY_BASE_MS");
    unsetenv("MEMGPT_MAX_RETRIES");
    mg_http_retry r;
    mg_http_retry_defaults(&r);
    assert_int_equal(r.max_attempts, 5);
    assert_int_equal(r.base_delay_ms, 500);
    assert_int_equal(r.max_delay_ms, 60000);

    setenv("MEMGPT_MAX_RETRIES", "3", 1);
    setenv("MEMGPT_RETRY_BASE_MS", "20", 1);
    mg_http_retry_defaults(&r);
    assert_int_equal(r.max_attempts, 3);
    assert_int_equal(r.base_delay_ms, 20);

    setenv("MEMGPT_MAX_RETRIES", "0", 1); /* invalid: fewer than one attempt */
    setenv("MEMGPT_RETRY_BASE_MS", "soon", 1);
    mg_http_retry_defaults(&r);
    assert_int_equal(r.max_attempts, 5);
    assert_int_equal(r.base_delay_ms, 500);

    unsetenv("MEMGPT_MAX_RETRIES");
    if (saved_base) setenv("MEMGPT_RETRY_BASE_MS", saved_base, 1);
    free(saved_base);
}

static void test_status_retryable(void **state)
{
    (void)state;
    const long yes[] = {408, 409, 429, 500, 502, 503, 504, 529};
    const long no[] = {0, 200, 201, 301, 400, 401, 403, 404, 413, 422, 501, 505};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(mg_http_status_retryable(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(mg_http_status_retryable(no[i]));
}

/* ------------------------------------------------------------- streams */

static const char STREAM_OK[] = "HTTP/1.1 200 OK\r\n"
                                "Content-Type: text/event-stream\r\n"
                                "Transfer-Encoding: chunked\r\n"
                                "Connection: close\r\n\r\n"
                                "6\r\ndata: \r\n"
                                "3\r\nhi\n\r\n"
                                "1\r\n\n\r\n"
                                "0\r\n\r\n";

/* The chunked body stops before its last chunk: a cut-off stream. */
static const char STREAM_CUT[] = "HTTP/1.1 200 OK\r\n"
                                 "Content-Type: text/event-stream\r\n"
                                 "Transfer-Encoding: chunked\r\n"
                                 "Connection: close\r\n\r\n"
                                 "9\r\ndata: par\r\n";

typedef struct sink {
    buf got;
    int calls;
    int stop_after; /* stop at this call (1-based); 0 = never */
} sink;

static int sink_data(const char *data, size_t len, void *user)
{
    sink *k = user;
    buf_append(&k->got, data, len);
    return ++k->calls == k->stop_after;
}

static mg_status run_stream(const step *script, int nsteps, int attempts_allowed, sink *k,
                            mg_http_response *resp, int *attempts, mg_error *err)
{
    server srv;
    char url[128];
    server_start(&srv, script, nsteps);
    server_url(&srv, "/v1/chat/completions", url, sizeof url);
    mg_http_request req = post_request(url, "{}");
    req.timeout_ms = 1000;
    mg_http_retry policy;
    mg_http_retry_defaults(&policy);
    policy.max_attempts = attempts_allowed;
    policy.base_delay_ms = 1;
    mg_status st = mg_http_perform_stream(&req, &policy, sink_data, k, resp, attempts, err);
    server_stop(&srv);
    server_free(&srv);
    return st;
}

static void test_stream_retries_before_any_byte(void **state)
{
    (void)state;
    static const step script[] = {
        {STEP_REPLY, ERR_503}, {STEP_DROP, NULL}, {STEP_REPLY, STREAM_OK}};
    sink k = {BUF_INIT, 0, 0};
    mg_http_response resp;
    int attempts = 0;
    mg_error err = {0};
    assert_int_equal(run_stream(script, 3, 3, &k, &resp, &attempts, &err), MG_OK);
    assert_int_equal(attempts, 3);
    assert_int_equal(resp.status, 200);
    assert_string_equal(buf_str(&k.got), "data: hi\n\n"); /* the 503's body never reaches it */
    assert_int_equal(resp.delivered, 10);
    assert_string_equal(resp.body, ""); /* a streamed body is not kept */
    assert_int_equal(resp.cut_off, 0);
    mg_http_response_free(&resp);
    buf_free(&k.got);
}

static void test_stream_cut_off_is_not_retried(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, STREAM_CUT}, {STEP_REPLY, STREAM_OK}};
    sink k = {BUF_INIT, 0, 0};
    mg_http_response resp;
    int attempts = 0;
    mg_error err = {0};
    assert_int_equal(run_stream(script, 2, 2, &k, &resp, &attempts, &err), MG_ERR_PROVIDER);
    assert_int_equal(attempts, 1);
    assert_int_equal(resp.cut_off, 1);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.delivered, 9);
    assert_string_equal(buf_str(&k.got), "data: par");
    assert_non_null(strstr(err.message, "the stream was cut off after 9 bytes"));
    mg_http_response_free(&resp);
    buf_free(&k.got);
}

static void test_stream_error_body_is_kept(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, BAD_400}};
    sink k = {BUF_INIT, 0, 0};
    mg_http_response resp;
    assert_int_equal(run_stream(script, 1, 1, &k, &resp, NULL, NULL), MG_OK);
    assert_int_equal(resp.status, 400);
    assert_string_equal(resp.body, "bad");
    assert_int_equal(resp.delivered, 0);
    assert_int_equal(k.calls, 0);
    mg_http_response_free(&resp);
    buf_free(&k.got);
}

static void test_stream_reader_stops(void **state)
{
    (void)state;
    static const step script[] = {{STEP_REPLY, STREAM_OK}, {STEP_REPLY, STREAM_OK}};
    sink k = {BUF_INIT, 0, 1};
    mg_http_response resp;
    int attempts = 0;
    mg_error err = {0};
    assert_int_equal(run_stream(script, 2, 2, &k, &resp, &attempts, &err), MG_ERR_PROVIDER);
    assert_int_equal(attempts, 1);
    assert_int_equal(resp.cut_off, 0);
    assert_int_equal(k.calls, 1);
    mg_http_response_free(&resp);
    buf_free(&k.got);
}

static void test_stream_silence_times_out(void **state)
{
    (void)state;
    static const step script[] = {{STEP_STALL, NULL}};
    sink k = {BUF_INIT, 0, 0};
    mg_http_response resp;
    mg_error err = {0};
    double t0 = now_s();
    assert_int_equal(run_stream(script, 1, 1, &k, &resp, NULL, &err), MG_ERR_PROVIDER);
    assert_true(now_s() - t0 < 4.5);
    assert_non_null(strstr(err.message, "no data for 1 s"));
    assert_int_equal(mg_http_perform_stream(NULL, NULL, NULL, NULL, &resp, NULL, &err),
                     MG_ERR_USAGE);
    mg_http_response_free(&resp);
    buf_free(&k.got);
}

int main(void)
{
    /* Keep the backoff tiny so the whole suite takes a moment, and keep any
     * proxy configured in the environment away from loopback. */
    setenv("MEMGPT_RETRY_BASE_MS", "2", 1);
    unsetenv("MEMGPT_MAX_RETRIES");
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    /* libcurl loads on a thread of its own, as in `memgpt send`, while the
     * first test starts its server; its request waits for the load. */
    mg_preload *preload = mg_preload_http();
    assert_non_null(preload);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_sends_everything),
        cmocka_unit_test(test_get_and_retry_after_header),
        cmocka_unit_test(test_429_then_200),
        cmocka_unit_test(test_500_503_then_200),
        cmocka_unit_test(test_dropped_then_200),
        cmocka_unit_test(test_all_attempts_fail_with_status),
        cmocka_unit_test(test_all_attempts_fail_in_transport),
        cmocka_unit_test(test_400_not_retried),
        cmocka_unit_test(test_retry_after_is_capped),
        cmocka_unit_test(test_timeout_is_transient),
        cmocka_unit_test(test_timeout_from_environment),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_oversized_body_refused),
        cmocka_unit_test(test_unknown_host_message),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_parse_retry_after),
        cmocka_unit_test(test_backoff_grows_and_caps),
        cmocka_unit_test(test_retry_defaults_and_environment),
        cmocka_unit_test(test_status_retryable),
        cmocka_unit_test(test_stream_retries_before_any_byte),
        cmocka_unit_test(test_stream_cut_off_is_not_retried),
        cmocka_unit_test(test_stream_error_body_is_kept),
        cmocka_unit_test(test_stream_reader_stops),
        cmocka_unit_test(test_stream_silence_times_out),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    mg_preload_finish(preload);
    mg_preload_finish(NULL);
    return failed;
}
