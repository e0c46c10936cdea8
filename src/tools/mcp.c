/*
 * mcp.c - a client of one MCP server (see mcp.h for the protocol's shape).
 *
 * Both transports end in one question: "send this request, give me the
 * answer with its id". `exchange` asks it of the client's transport and
 * handles what else a server may send meanwhile: notifications (ignored),
 * and requests of its own (refused, or for `ping`, answered).
 *
 * stdio. The server's stdin and stdout are one end of a socketpair, so a
 * write to a server that died fails with EPIPE (MSG_NOSIGNAL) instead of
 * killing us with SIGPIPE, and one poll() tells both "readable" and
 * "gone". The process is spawned (posix_spawnp: no fork of a threaded
 * process) in its own process group, so a kill reaches the children a
 * launcher like npx starts.
 *
 * streamable_http. Each message is a POST with "Accept: application/json,
 * text/event-stream". The answer is JSON, or events whose data are the
 * messages (the answer to ours among them). The session id the server
 * gives at initialize (Mcp-Session-Id) goes with every later request; a
 * 404 for it means the session ended, and the client initializes again
 * once.
 */
#include "tools/mcp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "provider/http.h"
#include "provider/stream.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/timeutil.h"

extern char **environ;

const char *const mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05",
                                             NULL};

#define DEFAULT_TIMEOUT_S 60
#define BACKOFF_FIRST_MS  500
#define BACKOFF_MAX_MS    30000
#define MAX_LIST_PAGES    100

struct mcp_client {
    char *name;
    json_t *config;
    char *log_path;
    int http; /* streamable_http, else stdio */
    long timeout_ms;
    int ready;       /* initialized */
    int64_t next_id; /* JSON-RPC ids */
    char *version;   /* the protocol version agreed */
    /* stdio */
    pid_t pid;          /* 0: not running (or already reaped) */
    pid_t pgid;         /* its process group, killed whole when it stops (0: none) */
    int fd;             /* our end of the socketpair, -1 when not running */
    buf in;             /* bytes read, not yet a whole line */
    int failures;       /* in a row */
    int64_t retry_at;   /* no start before this (ms) */
    char *last_failure; /* why the server was last stopped */
    /* streamable_http */
    char *session;
};

/* ------------------------------------------------------------ config */

static const char *or_else(const char *s, const char *otherwise)
{
    return s ? s : otherwise;
}

static const char *config_string(const json_t *config, const char *key)
{
    return json_string_value(json_object_get(config, key));
}

static int string_map(const json_t *v)
{
    if (!v || json_is_null(v)) return 1;
    if (!json_is_object(v)) return 0;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) if (!json_is_string(x) || !*k) return 0;
    return 1;
}

mg_status mcp_config_check(const json_t *config, mg_error *err)
{
    if (!json_is_object(config))
        return mg_err_set(err, MG_ERR_USAGE, "an MCP server's config must be a JSON object");
    const char *type = config_string(config, "mcp_server_type");
    json_t *timeout = json_object_get(config, "timeout_seconds");
    if (timeout && !(json_is_integer(timeout) && json_integer_value(timeout) > 0 &&
                     json_integer_value(timeout) <= 3600))
        return mg_err_set(err, MG_ERR_USAGE, "timeout_seconds must be 1-3600");
    if (type && strcmp(type, "stdio") == 0) {
        const char *command = config_string(config, "command");
        json_t *args = json_object_get(config, "args");
        if (!command || !*command)
            return mg_err_set(err, MG_ERR_USAGE, "a stdio MCP server needs a command");
        if (args && !json_is_array(args))
            return mg_err_set(err, MG_ERR_USAGE, "args must be an array of strings");
        size_t i;
        json_t *a;
        json_array_foreach(args, i, a) if (!json_is_string(a)) return mg_err_set(
            err, MG_ERR_USAGE, "args must be an array of strings");
        if (!string_map(json_object_get(config, "env")))
            return mg_err_set(err, MG_ERR_USAGE, "env must be an object of strings");
        return MG_OK;
    }
    if (type && strcmp(type, "streamable_http") == 0) {
        const char *url = config_string(config, "server_url");
        if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
            return mg_err_set(err, MG_ERR_USAGE, "server_url must be an http:// or https:// URL");
        if (!string_map(json_object_get(config, "custom_headers")))
            return mg_err_set(err, MG_ERR_USAGE, "custom_headers must be an object of strings");
        json_t *h = json_object_get(config, "auth_header"),
               *t = json_object_get(config, "auth_token");
        if ((h && !json_is_null(h) && !json_is_string(h)) ||
            (t && !json_is_null(t) && !json_is_string(t)))
            return mg_err_set(err, MG_ERR_USAGE, "auth_header and auth_token must be strings");
        return MG_OK;
    }
    return mg_err_set(err, MG_ERR_USAGE,
                      "mcp_server_type must be \"stdio\" or \"streamable_http\"%s",
                      type && strcmp(type, "sse") == 0
                          ? " (the older SSE transport is not supported; servers that offer it "
                            "usually offer streamable_http too)"
                          : "");
}

mcp_client *mcp_client_new(const char *name, const json_t *config, const char *log_path)
{
    mcp_client *c = mg_xcalloc(1, sizeof *c);
    c->name = mg_xstrdup(name);
    c->config = json_deep_copy(config);
    c->log_path = log_path ? mg_xstrdup(log_path) : NULL;
    c->http = strcmp(or_else(config_string(config, "mcp_server_type"), ""), "streamable_http") == 0;
    long seconds = DEFAULT_TIMEOUT_S;
    const char *env = getenv("MEMGPT_MCP_TIMEOUT");
    if (env && atol(env) > 0) seconds = atol(env);
    json_t *t = json_object_get(config, "timeout_seconds");
    if (json_is_integer(t) && json_integer_value(t) > 0) seconds = (long)json_integer_value(t);
    c->timeout_ms = seconds * 1000;
    c->fd = -1;
    c->in = (buf)BUF_INIT;
    return c;
}

const json_t *mcp_client_config(const mcp_client *c)
{
    return c->config;
}

const char *mcp_client_name(const mcp_client *c)
{
    return c->name;
}

/* ------------------------------------------------------------- stdio */

static void stdio_stop(mcp_client *c, const char *why)
{
    /* The whole group: a launcher (npx) may have left children behind,
     * even when the leader itself was reaped already. */
    if (c->pgid > 0) kill(-c->pgid, SIGKILL);
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
    }
    c->pgid = 0;
    if (c->fd >= 0) close(c->fd);
    c->pid = 0;
    c->fd = -1;
    c->ready = 0;
    buf_reset(&c->in);
    if (why) {
        c->failures++;
        long delay = BACKOFF_FIRST_MS;
        for (int i = 1; i < c->failures && delay < BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
        c->retry_at = mg_now_ms() + delay;
        free(c->last_failure);
        c->last_failure = mg_xstrdup(why);
    }
}

/* The environment of a stdio server: a few of ours, then its own. */
static char **server_environment(const json_t *env)
{
    static const char *const passed[] = {"PATH", "HOME", "USER",   "LOGNAME", "SHELL",
                                         "TERM", "LANG", "LC_ALL", "TMPDIR",  NULL};
    size_t n = json_object_size(env) + sizeof passed / sizeof passed[0] + 1;
    char **out = mg_xcalloc(n, sizeof *out);
    size_t k = 0;
    for (int i = 0; passed[i]; i++) {
        const char *v = getenv(passed[i]);
        if (!v || json_object_get(env, passed[i])) continue;
        buf b = BUF_INIT;
        buf_printf(&b, "%s=%s", passed[i], v);
        out[k++] = buf_take(&b);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)env, key, v)
    {
        if (strchr(key, '=')) continue;
        buf b = BUF_INIT;
        buf_printf(&b, "%s=%s", key, json_string_value(v));
        out[k++] = buf_take(&b);
    }
    return out;
}

static void free_strings(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

static mg_status stdio_start(mcp_client *c, mg_error *err)
{
    int64_t now = mg_now_ms();
    if (c->retry_at > now)
        return mg_err_set(
            err, MG_ERR_PROVIDER, "MCP server '%s' failed (%s); it is started again in %.1f s",
            c->name, c->last_failure ? c->last_failure : "?", (double)(c->retry_at - now) / 1000);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return mg_err_set(err, MG_ERR_IO, "MCP server '%s': socketpair: %s", c->name,
                          strerror(errno));
    json_t *args = json_object_get(c->config, "args");
    char **argv = mg_xcalloc(json_array_size(args) + 2, sizeof *argv);
    argv[0] = mg_xstrdup(config_string(c->config, "command"));
    for (size_t i = 0; i < json_array_size(args); i++)
        argv[i + 1] = mg_xstrdup(json_string_value(json_array_get(args, i)));
    char **envp = server_environment(json_object_get(c->config, "env"));

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    mg_spawn_attr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, c->log_path ? c->log_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    mg_status st = MG_OK;
    if (rc) {
        close(sv[0]);
        char why[300];
        snprintf(why, sizeof why, "cannot run %.200s: %s", argv[0], strerror(rc));
        stdio_stop(c, why);
        st = mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
    } else {
        c->pid = pid;
        c->pgid = pid;
        c->fd = sv[0];
    }
    free_strings(argv);
    free_strings(envp);
    return st;
}

static long ms_left(int64_t deadline)
{
    int64_t left = deadline - mg_now_ms();
    return left < 0 ? 0 : (long)left;
}

/* Describes how a stopped server ended, for the message. */
static void describe_exit(mcp_client *c, char *out, size_t n)
{
    int status;
    if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
        c->pid = 0;
        if (WIFEXITED(status))
            snprintf(out, n, "the server exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            snprintf(out, n, "the server was killed by signal %d", WTERMSIG(status));
        return;
    }
    snprintf(out, n, "the server closed its output");
}

static mg_status stdio_send(mcp_client *c, const char *line, int64_t deadline, mg_error *err)
{
    size_t len = strlen(line), done = 0;
    while (done < len) {
        ssize_t w = send(c->fd, line + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            int r = poll(&p, 1, (int)ms_left(deadline));
            if (r > 0 && !(p.revents & (POLLHUP | POLLERR))) continue;
            char why[120];
            if (r == 0)
                snprintf(why, sizeof why, "it did not read its input for %ld s",
                         c->timeout_ms / 1000);
            else
                describe_exit(c, why, sizeof why);
            stdio_stop(c, why);
            return mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
        }
        char why[120];
        describe_exit(c, why, sizeof why);
        stdio_stop(c, why);
        return mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
    }
    return MG_OK;
}

/* The next message from the server: one line of JSON. Lines that are not
 * JSON objects are skipped (some servers print banners on stdout). */
static mg_status stdio_receive(mcp_client *c, int64_t deadline, json_t **msg, mg_error *err)
{
    *msg = NULL;
    for (;;) {
        char *nl = memchr(c->in.data ? c->in.data : "", '\n', c->in.len);
        if (nl) {
            size_t n = (size_t)(nl - c->in.data);
            json_t *m = json_loadb(c->in.data, n, 0, NULL);
            memmove(c->in.data, nl + 1, c->in.len - n - 1);
            c->in.len -= n + 1;
            c->in.data[c->in.len] = '\0';
            if (json_is_object(m)) {
                *msg = m;
                return MG_OK;
            }
            json_decref(m);
            continue;
        }
        char why[160];
        if (c->in.len > MCP_MAX_MESSAGE) {
            snprintf(why, sizeof why, "it sent a message over %zu MiB", MCP_MAX_MESSAGE >> 20);
            stdio_stop(c, why);
            return mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)ms_left(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            snprintf(why, sizeof why, "no answer within %ld s", c->timeout_ms / 1000);
            stdio_stop(c, why);
            return mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
        }
        char chunk[65536];
        ssize_t got = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got <= 0) {
            usleep(20000); /* let it finish exiting, to say how */
            describe_exit(c, why, sizeof why);
            stdio_stop(c, why);
            return mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
        }
        buf_append(&c->in, chunk, (size_t)got);
    }
}

/* ------------------------------------------------------------- HTTP */

typedef struct sse_pick {
    json_t *id;    /* the id we wait for */
    json_t *found; /* the answer, when seen */
} sse_pick;

static int pick_event(void *user, const char *event, const char *data, size_t len)
{
    sse_pick *p = user;
    (void)event;
    json_t *m = json_loadb(data, len, 0, NULL);
    if (json_is_object(m) && json_equal(json_object_get(m, "id"), p->id) &&
        !json_object_get(m, "method") && !p->found) {
        p->found = m;
        return 0;
    }
    json_decref(m);
    return 0;
}

/* POSTs `body`. For a request (`id` non-NULL), *answer is the answer with
 * that id; for a notification, nothing is expected. */
static mg_status http_post(mcp_client *c, const char *body, json_t *id, json_t **answer,
                           long *status_out, mg_error *err)
{
    const char *url = config_string(c->config, "server_url");
    buf lines[16];
    int n = 0;
    const char *headers[20];
    lines[n] = (buf)BUF_INIT;
    buf_puts(&lines[n++], "Content-Type: application/json");
    lines[n] = (buf)BUF_INIT;
    buf_puts(&lines[n++], "Accept: application/json, text/event-stream");
    if (c->session) {
        lines[n] = (buf)BUF_INIT;
        buf_printf(&lines[n++], "Mcp-Session-Id: %s", c->session);
    }
    if (c->version && c->ready) {
        lines[n] = (buf)BUF_INIT;
        buf_printf(&lines[n++], "MCP-Protocol-Version: %s", c->version);
    }
    const char *auth_header = config_string(c->config, "auth_header");
    const char *auth_token = config_string(c->config, "auth_token");
    if (auth_token && *auth_token) {
        lines[n] = (buf)BUF_INIT;
        buf_printf(&lines[n++], "%s: %s",
                   auth_header && *auth_header ? auth_header : "Authorization", auth_token);
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(c->config, "custom_headers"), key, v)
    {
        if (n >= 15) break;
        lines[n] = (buf)BUF_INIT;
        buf_printf(&lines[n++], "%s: %s", key, json_string_value(v));
    }
    for (int i = 0; i < n; i++)
        headers[i] = buf_str(&lines[i]);
    headers[n] = NULL;
    mg_http_request req = {.method = "POST",
                           .url = url,
                           .headers = headers,
                           .body = body,
                           .body_len = strlen(body),
                           .timeout_ms = c->timeout_ms,
                           .capture_header = "Mcp-Session-Id"};
    mg_http_response resp;
    mg_status st = mg_http_perform(&req, &resp, NULL, err);
    for (int i = 0; i < n; i++)
        buf_free(&lines[i]);
    if (st) return mg_err_wrap(err, "MCP server '%s': ", c->name);
    *status_out = resp.status;
    if (resp.captured && !c->session) c->session = mg_xstrdup(resp.captured);
    if (resp.status < 200 || resp.status >= 300) {
        st = mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s' answered HTTP %ld%s%.200s", c->name,
                        resp.status, resp.body && *resp.body ? ": " : "",
                        resp.body ? resp.body : "");
    } else if (id) {
        const char *b = resp.body;
        while (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')
            b++;
        json_t *found = NULL;
        if (*b == '{') {
            found = json_loads(b, 0, NULL);
        } else {
            sse_pick pick = {.id = id};
            mg_sse_parser p;
            mg_sse_init(&p, pick_event, &pick);
            mg_sse_feed(&p, resp.body, resp.body_len);
            mg_sse_finish(&p);
            mg_sse_free(&p);
            found = pick.found;
        }
        if (!json_is_object(found) || !json_equal(json_object_get(found, "id"), id)) {
            json_decref(found);
            st = mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s' sent no answer to the request",
                            c->name);
        } else {
            *answer = found;
        }
    }
    mg_http_response_free(&resp);
    return st;
}

/* --------------------------------------------------------- exchanges */

/* Answers a request the server made of us. */
static mg_status answer_server(mcp_client *c, json_t *request, int64_t deadline, mg_error *err)
{
    const char *method = json_string_value(json_object_get(request, "method"));
    json_t *reply = method && strcmp(method, "ping") == 0
                        ? json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id",
                                    json_object_get(request, "id"), "result")
                        : json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
                                    json_object_get(request, "id"), "error", "code", -32601,
                                    "message", "memgpt does not offer this");
    char *line = json_dumps(reply, JSON_COMPACT);
    json_decref(reply);
    mg_status st;
    if (c->http) {
        long status;
        st = http_post(c, line, NULL, NULL, &status, err);
    } else {
        buf b = BUF_INIT;
        buf_printf(&b, "%s\n", line);
        st = stdio_send(c, buf_str(&b), deadline, err);
        buf_free(&b);
    }
    free(line);
    return st;
}

/* Sends `method` with `params` (stolen; may be NULL); for a request
 * (want_answer), *result is the answer's result. A JSON-RPC error answer
 * is MG_ERR_PROVIDER with its message. */
static mg_status exchange(mcp_client *c, const char *method, json_t *params, int want_answer,
                          json_t **result, mg_error *err)
{
    int64_t deadline = mg_now_ms() + c->timeout_ms;
    json_t *msg = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    json_t *id = NULL;
    if (want_answer) {
        id = json_integer(++c->next_id);
        json_object_set(msg, "id", id);
    }
    if (params) json_object_set_new(msg, "params", params);
    char *line = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    mg_status st;
    json_t *answer = NULL;
    if (c->http) {
        long status = 0;
        st = http_post(c, line, id, &answer, &status, err);
    } else {
        buf b = BUF_INIT;
        buf_printf(&b, "%s\n", line);
        st = stdio_send(c, buf_str(&b), deadline, err);
        buf_free(&b);
        while (!st && want_answer) {
            json_t *m;
            if ((st = stdio_receive(c, deadline, &m, err))) break;
            json_t *mid = json_object_get(m, "id");
            if (json_object_get(m, "method")) {
                if (mid) st = answer_server(c, m, deadline, err);
                json_decref(m);
            } else if (json_equal(mid, id)) {
                answer = m;
                break;
            } else {
                json_decref(m); /* an answer to something we no longer wait for */
            }
        }
    }
    free(line);
    json_decref(id);
    if (st || !want_answer) return st;
    json_t *error = json_object_get(answer, "error");
    if (error) {
        st = mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s' refused %s: %.300s", c->name, method,
                        or_else(json_string_value(json_object_get(error, "message")), "error"));
    } else if (!json_is_object(json_object_get(answer, "result"))) {
        st = mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s' answered %s without a result",
                        c->name, method);
    } else {
        *result = json_incref(json_object_get(answer, "result"));
    }
    json_decref(answer);
    return st;
}

static int known_version(const char *v)
{
    for (int i = 0; v && mcp_protocol_versions[i]; i++)
        if (strcmp(v, mcp_protocol_versions[i]) == 0) return 1;
    return 0;
}

static mg_status initialize(mcp_client *c, mg_error *err)
{
    if (!c->http && c->pid == 0) {
        mg_status st = stdio_start(c, err);
        if (st) return st;
    }
    free(c->session);
    c->session = NULL;
    json_t *params =
        json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", mcp_protocol_versions[0],
                  "capabilities", "clientInfo", "name", "memgpt", "version", "0.1.0");
    json_t *result = NULL;
    mg_status st = exchange(c, "initialize", params, 1, &result, err);
    if (st) {
        if (!c->http && c->pid) stdio_stop(c, err ? err->message : "initialize failed");
        return st;
    }
    const char *version = json_string_value(json_object_get(result, "protocolVersion"));
    if (!known_version(version)) {
        char why[200];
        snprintf(why, sizeof why, "it speaks protocol version %.40s, which memgpt does not",
                 version ? version : "(none)");
        json_decref(result);
        if (!c->http) stdio_stop(c, why);
        return mg_err_set(err, MG_ERR_PROVIDER, "MCP server '%s': %s", c->name, why);
    }
    free(c->version);
    c->version = mg_xstrdup(version);
    json_decref(result);
    c->ready = 1;
    return exchange(c, "notifications/initialized", NULL, 0, NULL, err);
}

/* A request in a session, started (or started again) as needed. */
static mg_status request(mcp_client *c, const char *method, json_t *params, json_t **result,
                         mg_error *err)
{
    mg_status st = MG_OK;
    if (!c->ready && (st = initialize(c, err))) {
        json_decref(params);
        return st;
    }
    if (c->http) json_incref(params); /* kept for a second try */
    st = exchange(c, method, params, 1, result, err);
    if (c->http && st && c->session && strstr(err ? err->message : "", "HTTP 404")) {
        /* The session ended on the server's side: one new one. */
        c->ready = 0;
        if (!(st = initialize(c, err)))
            st = exchange(c, method, json_incref(params), 1, result, err);
    }
    if (c->http) json_decref(params);
    if (!st) {
        c->failures = 0;
        c->retry_at = 0;
    }
    return st;
}

mg_status mcp_list_tools(mcp_client *c, json_t **tools, mg_error *err)
{
    *tools = json_array();
    char *cursor = NULL;
    mg_status st = MG_OK;
    for (int page = 0; page < MAX_LIST_PAGES; page++) {
        json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
        json_t *result = NULL;
        free(cursor);
        cursor = NULL;
        if ((st = request(c, "tools/list", params, &result, err))) break;
        json_t *list = json_object_get(result, "tools");
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) if (json_is_string(json_object_get(t, "name")))
            json_array_append(*tools, t);
        const char *next = json_string_value(json_object_get(result, "nextCursor"));
        if (next && *next) cursor = mg_xstrdup(next);
        json_decref(result);
        if (!cursor) break;
    }
    free(cursor);
    if (st) {
        json_decref(*tools);
        *tools = NULL;
    }
    return st;
}

/* One content item as a line for the model. */
static void content_line(buf *out, const json_t *item)
{
    const char *type = or_else(json_string_value(json_object_get(item, "type")), "?");
    if (strcmp(type, "text") == 0) {
        buf_puts(out, or_else(json_string_value(json_object_get(item, "text")), ""));
        return;
    }
    if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
        size_t b64 = strlen(or_else(json_string_value(json_object_get(item, "data")), ""));
        buf_printf(out, "[%s: %s, %zu bytes]", type,
                   or_else(json_string_value(json_object_get(item, "mimeType")), "unknown type"),
                   b64 / 4 * 3);
        return;
    }
    if (strcmp(type, "resource") == 0) {
        json_t *r = json_object_get(item, "resource");
        const char *uri = or_else(json_string_value(json_object_get(r, "uri")), "?");
        const char *text = json_string_value(json_object_get(r, "text"));
        if (text)
            buf_printf(out, "[resource %s]\n%s", uri, text);
        else
            buf_printf(out, "[resource: %s, %s]", uri,
                       or_else(json_string_value(json_object_get(r, "mimeType")), "binary"));
        return;
    }
    if (strcmp(type, "resource_link") == 0) {
        buf_printf(out, "[resource link: %s%s%s]",
                   or_else(json_string_value(json_object_get(item, "uri")), "?"),
                   json_object_get(item, "name") ? " " : "",
                   or_else(json_string_value(json_object_get(item, "name")), ""));
        return;
    }
    buf_printf(out, "[%.40s content]", type);
}

char *mcp_result_text(const json_t *result)
{
    buf out = BUF_INIT;
    json_t *content = json_object_get(result, "content");
    size_t i;
    json_t *item;
    json_array_foreach(content, i, item)
    {
        if (i) buf_putc(&out, '\n');
        content_line(&out, item);
    }
    json_t *structured = json_object_get(result, "structuredContent");
    if (!json_array_size(content) && structured) {
        char *s = json_dumps(structured, JSON_COMPACT);
        buf_puts(&out, s ? s : "");
        free(s);
    }
    return buf_take(&out);
}

mg_status mcp_call_tool(mcp_client *c, const char *name, json_t *arguments, char **text,
                        int *is_error, mg_error *err)
{
    *text = NULL;
    *is_error = 0;
    json_t *params = json_pack("{s:s, s:O}", "name", name, "arguments", arguments);
    json_t *result = NULL;
    mg_status st = request(c, "tools/call", params, &result, err);
    if (st) return st;
    *is_error = json_is_true(json_object_get(result, "isError"));
    *text = mcp_result_text(result);
    json_decref(result);
    return MG_OK;
}

void mcp_client_free(mcp_client *c)
{
    if (!c) return;
    if (!c->http) stdio_stop(c, NULL);
    free(c->name);
    json_decref(c->config);
    free(c->log_path);
    free(c->version);
    free(c->last_failure);
    free(c->session);
    buf_free(&c->in);
    free(c);
}
