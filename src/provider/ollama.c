/*
 * ollama.c - chat with tool calling, embeddings, the model list and a
 * model's context length over Ollama's native API (/api/chat, /api/embed,
 * /api/tags, /api/show).
 *
 * Ollama also speaks the OpenAI protocol under /v1, but only the native API
 * lets a client choose the window the model is loaded with (options.num_ctx).
 * Without it Ollama uses its default window, a few thousand tokens, and
 * quietly drops the start of any longer prompt: the agent's instructions and
 * core memory would vanish from long conversations with no error anywhere.
 * So every request here carries the agent's window as num_ctx, and the agent
 * keeps each request under it (Ollama never refuses a long prompt, so there
 * is no context-length error to recover from; prevention is the only cure).
 *
 * The wire format differs from OpenAI's in small ways that matter:
 *
 *  - tool-call arguments are JSON objects, not JSON text. The neutral form
 *    keeps them as text, so replies are serialised compactly and requests
 *    parse them back. Arguments the model once got wrong (not an object) go
 *    back as {}: the function result that followed already told the model
 *    what was wrong.
 *  - older servers give tool calls no id, newer ones a random one. The agent
 *    pairs calls and results by id, so a missing, malformed or duplicate id
 *    is replaced by one unique in the process (time, pid, counter); it is
 *    stored with the call, so it is stable from then on.
 *  - tool results carry the function's name (tool_name), which Ollama's chat
 *    templates use, and the call's id (tool_call_id) for servers that pair.
 *
 * Errors are turned into advice: an unreachable server names OLLAMA_HOST and
 * `ollama serve`, a missing model names `ollama pull`. Retries (429, 5xx,
 * refused or dropped connections) happen in the HTTP layer, as for OpenAI.
 * Everything read from the network is checked field by field; a wrong shape
 * is MG_ERR_PROVIDER, never a crash.
 *
 * Streaming ("stream": true) answers with one JSON object per line: pieces of
 * content and thinking in message.content / message.thinking, tool calls
 * whole (Ollama parses them out of the model's text, so they never arrive in
 * pieces) in message.tool_calls of some line, and a last line with "done":
 * true and the counts. A line {"error": "..."} is a failure mid-stream. The
 * pieces are joined as they come, and the joined message goes through
 * mg_ollama_parse_chat_reply like a non-streaming answer; a stream without
 * its done line is reported as interrupted.
 */
#include "provider/ollama.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "provider/http.h"
#include "provider/stream.h"
#include "provider/tool_calls.h"
#include "provider/wire.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define DEFAULT_PORT "11434"
#define MAX_HOST_LEN 2048

/* Where and how to reach the server: shared by chat, embed and list. */
typedef struct ollama_conn {
    char *base_url;    /* "http://127.0.0.1:11434", no trailing slash */
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
} ollama_conn;

typedef struct ollama_provider {
    mg_provider base;
    ollama_conn conn;
} ollama_provider;

/* ------------------------------------------------------------ OLLAMA_HOST */

static mg_status host_error(mg_error *err, const char *value, const char *why)
{
    return mg_err_set(err, MG_ERR_PROVIDER,
                      "OLLAMA_HOST '%.200s' is not usable: %s (examples: 127.0.0.1:11434, "
                      "http://gpu-box:11434)",
                      value, why);
}

static int valid_port(const char *p)
{
    if (!*p || strlen(p) > 5) return 0;
    for (const char *c = p; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    long n = strtol(p, NULL, 10);
    return n >= 1 && n <= 65535;
}

static int valid_host_char(char c, int ipv6)
{
    if (isalnum((unsigned char)c) || c == '.' || c == '-') return 1;
    return ipv6 ? (c == ':' || c == '%') : c == '_';
}

/* Splits "host", "host:port", ":port", "[v6]", "[v6]:port" or a bare IPv6
 * address, in place. *port is "" when none was given. */
static int split_host_port(char *hp, char **host, char **port, int *ipv6)
{
    *ipv6 = 0;
    *port = hp + strlen(hp);
    if (hp[0] == '[') {
        char *close = strchr(hp, ']');
        if (!close) return 0;
        *close = '\0';
        *host = hp + 1;
        *ipv6 = 1;
        if (close[1] == ':')
            *port = close + 2;
        else if (close[1])
            return 0;
        return 1;
    }
    char *colon = strchr(hp, ':');
    *host = hp;
    if (colon && strchr(colon + 1, ':')) { /* several colons: a bare IPv6 address */
        *ipv6 = 1;
        return 1;
    }
    if (colon) {
        *colon = '\0';
        *port = colon + 1;
    }
    return 1;
}

mg_status mg_ollama_base_url(const char *value, char **out, mg_error *err)
{
    *out = NULL;
    const char *s = value ? value : "";
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0) {
        *out = mg_xstrdup(MG_OLLAMA_DEFAULT_HOST);
        return MG_OK;
    }
    if (n > MAX_HOST_LEN) return host_error(err, "(too long)", "longer than 2048 bytes");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return host_error(err, s, "it contains a space or control character");

    char *copy = mg_xstrndup(s, n);
    const char *scheme = "http", *default_port = DEFAULT_PORT;
    char *rest = copy;
    char *sep = strstr(copy, "://");
    if (sep) {
        *sep = '\0';
        for (char *c = copy; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (strcmp(copy, "http") == 0) {
            default_port = "80";
        } else if (strcmp(copy, "https") == 0) {
            scheme = "https";
            default_port = "443";
        } else {
            free(copy);
            return host_error(err, s, "only http:// and https:// are supported");
        }
        rest = sep + 3;
    } else if (strcmp(copy, "ollama.com") == 0) {
        scheme = "https"; /* as Ollama's CLI does */
        default_port = "443";
    }

    /* The path, if any, stays (a server behind a reverse proxy). */
    buf path = BUF_INIT;
    char *slash = strchr(rest, '/');
    if (slash) {
        buf_puts(&path, slash);
        *slash = '\0';
        while (path.len > 0 && buf_str(&path)[path.len - 1] == '/')
            path.len--;
    }
    if (strpbrk(rest, "?#@")) {
        buf_free(&path);
        free(copy);
        return host_error(err, s, "a user, query or fragment is not allowed");
    }

    char *host = NULL, *port = NULL;
    int ipv6;
    mg_status st = MG_OK;
    if (!split_host_port(rest, &host, &port, &ipv6)) {
        st = host_error(err, s, "malformed [IPv6] address");
    } else {
        for (const char *c = host; *c && !st; c++)
            if (!valid_host_char(*c, ipv6)) st = host_error(err, s, "the host name is malformed");
        if (!st && *port && !valid_port(port))
            st = host_error(err, s, "the port is not a number from 1 to 65535");
    }
    if (!st) {
        buf url = BUF_INIT;
        const char *h = *host ? host : "127.0.0.1";
        buf_printf(&url, "%s://%s%s%s:%s", scheme, ipv6 ? "[" : "", h, ipv6 ? "]" : "",
                   *port ? port : default_port);
        buf_append(&url, buf_str(&path), path.len);
        *out = buf_take(&url);
    }
    buf_free(&path);
    free(copy);
    return st;
}

static mg_status conn_open(ollama_conn *c, mg_error *err)
{
    memset(c, 0, sizeof *c);
    mg_status st = mg_ollama_base_url(getenv("OLLAMA_HOST"), &c->base_url, err);
    if (st) return st;
    const char *key = getenv("OLLAMA_API_KEY");
    if (key && *key) {
        buf h = BUF_INIT;
        buf_printf(&h, "Authorization: Bearer %s", key);
        c->auth_header = buf_take(&h);
    }
    return MG_OK;
}

static void conn_close(ollama_conn *c)
{
    free(c->base_url);
    free(c->auth_header);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ HTTP */

/* Ollama's error bodies are {"error": "text"}; proxies may nest an object. */
static const char *error_text(json_t *body)
{
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(e);
    if (!msg) msg = json_string_value(json_object_get(e, "message"));
    return msg ? msg : "";
}

/* Rewrites a transport failure (the server never answered) as advice. */
static mg_status unreachable(const ollama_conn *c, mg_error *err)
{
    char cause[sizeof err->message];
    snprintf(cause, sizeof cause, "%s", err ? err->message : "");
    /* "<METHOD> <url> failed after N attempt(s): <cause>": the URL is said below. */
    const char *after = strstr(cause, " failed after ");
    const char *colon = after ? strstr(after, ": ") : NULL;
    const char *why = colon ? colon + 2 : cause;
    if (strstr(why, "timed out"))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "Ollama at %s did not answer in time (%.160s); loading a large model "
                          "can take minutes: raise MEMGPT_HTTP_TIMEOUT",
                          c->base_url, why);
    return mg_err_set(err, MG_ERR_PROVIDER,
                      "cannot reach Ollama at %s (%.160s): is it running? Start it with `ollama "
                      "serve`, or set OLLAMA_HOST to where it listens",
                      c->base_url, why);
}

/* Maps an HTTP error status to the status the agent acts on. */
static mg_status http_error(const ollama_conn *c, const char *path, const char *model, long status,
                            int attempts, json_t *parsed, mg_error *err)
{
    const char *said = parsed ? error_text(parsed) : "";
    if (status == 401 || status == 403)
        return mg_err_set(err, MG_ERR_AUTH,
                          "Ollama at %s refused the request (HTTP %ld): %.200s; if it needs a "
                          "key, set OLLAMA_API_KEY",
                          c->base_url, status, *said ? said : "(no error text)");
    if (status == 404 && model && mg_text_contains_ci(said, "not found"))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "Ollama at %s does not have the model '%.100s': download it with "
                          "`ollama pull %.100s` (Ollama said: %.160s)",
                          c->base_url, model, model, said);
    if (status == 404)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "%s%s answered HTTP 404 (%.160s): is OLLAMA_HOST pointing at an "
                          "Ollama server?",
                          c->base_url, path, *said ? said : "no error text");
    if (status == 400 && mg_text_contains_ci(said, "does not support tools"))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "the Ollama model '%.100s' cannot call tools, which memgpt needs "
                          "(Ollama said: %.160s); choose a model with tool support",
                          model ? model : "", said);
    if (status == 400 && mg_text_contains_ci(said, "context length"))
        return mg_err_set(err, MG_ERR_CONTEXT, "the request is too long for the model: %.300s",
                          said);
    return mg_err_set(err, MG_ERR_PROVIDER, "%s%s answered HTTP %ld%s: %.300s", c->base_url, path,
                      status, attempts > 1 ? " after retries" : "",
                      *said ? said : "(no JSON error body)");
}

/* A 2xx body that is not one JSON object. A stream of JSON lines is worth
 * naming: it means the server ignored "stream": false. */
static mg_status bad_body(const ollama_conn *c, const char *path, const char *body, size_t len,
                          mg_error *err)
{
    const char *nl = memchr(body, '\n', len);
    if (nl && nl > body) {
        json_t *first = json_loadb(body, (size_t)(nl - body), 0, NULL);
        int is_stream = json_is_object(first);
        json_decref(first);
        if (is_stream)
            return mg_err_set(err, MG_ERR_PROVIDER,
                              "%s%s answered with a stream of JSON lines although the request "
                              "said \"stream\": false",
                              c->base_url, path);
    }
    return mg_err_set(err, MG_ERR_PROVIDER, "%s%s answered with a body that is not a JSON object",
                      c->base_url, path);
}

/* A finished answer: on MG_OK *out is the parsed 2xx object (caller
 * decrefs), else the status the agent acts on. */
static mg_status read_answer(const ollama_conn *c, const char *path, const char *model,
                             const mg_http_response *resp, int attempts, json_t **out,
                             mg_error *err)
{
    *out = NULL;
    /* Repaired first, as the other providers' answers and Ollama's own
     * streamed lines are: a stray invalid byte or \u0000 in the model's
     * text costs that character, not the reply (found by
     * fuzz/fuzz_ollama.c). */
    char *repaired = mg_json_repair(resp->body ? resp->body : "", resp->body_len);
    json_t *parsed = json_loads(repaired, 0, NULL);
    mg_status st = MG_OK;
    if (resp->status < 200 || resp->status >= 300)
        st = http_error(c, path, model, resp->status, attempts, parsed, err);
    else if (!json_is_object(parsed))
        st = bad_body(c, path, repaired, strlen(repaired), err);
    else if (json_is_string(json_object_get(parsed, "error")))
        st = mg_err_set(err, MG_ERR_PROVIDER, "Ollama reported an error: %.300s",
                        error_text(parsed));
    free(repaired);
    if (st) {
        json_decref(parsed);
        return st;
    }
    *out = parsed;
    return MG_OK;
}

/* GETs (payload NULL) or POSTs the JSON text `payload` (`len` bytes) to
 * base_url + path, retrying by `policy` (NULL: the defaults) within
 * `timeout_ms` per attempt (0: the default). On MG_OK *out is the parsed
 * 2xx object (caller decrefs). `model` (may be NULL) names the model in
 * advice about a 404. */
static mg_status call_api_text(const ollama_conn *c, const char *path, const char *payload,
                               size_t len, const char *model, const mg_http_retry *policy,
                               long timeout_ms, json_t **out, long *status, mg_error *err)
{
    *out = NULL;
    buf url = BUF_INIT;
    buf_printf(&url, "%s%s", c->base_url, path);
    const char *headers[] = {payload ? "Content-Type: application/json"
                                     : "Accept: application/json",
                             c->auth_header, NULL};
    mg_http_request req = {
        payload ? "POST" : "GET", buf_str(&url), headers, payload, len, timeout_ms, NULL};
    mg_http_response resp = {0};
    int attempts = 0;
    mg_status st = mg_http_perform_retry(&req, policy, &resp, &attempts, err);
    buf_free(&url);
    if (status) *status = st ? 0 : resp.status;
    if (st) return st == MG_ERR_PROVIDER ? unreachable(c, err) : st;
    st = read_answer(c, path, model, &resp, attempts, out, err);
    mg_http_response_free(&resp);
    return st;
}

/* The same with a JSON value (NULL: GET). */
static mg_status call_api_with(const ollama_conn *c, const char *path, json_t *body,
                               const char *model, const mg_http_retry *policy, long timeout_ms,
                               json_t **out, long *status, mg_error *err)
{
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    mg_status st = call_api_text(c, path, payload, payload ? strlen(payload) : 0, model, policy,
                                 timeout_ms, out, status, err);
    free(payload);
    return st;
}

/* -------------------------------------------------------------- requests */

/* Stored arguments are JSON text; Ollama wants the object itself. */
static json_t *arguments_object(const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    if (json_is_object(v)) return v;
    json_decref(v);
    return json_object();
}

static json_t *message_to_json(const mg_msg *m)
{
    const char *content = m->content ? m->content : "";
    switch (m->role) {
    case MG_ROLE_USER:
        return json_pack("{s:s, s:s}", "role", "user", "content", content);
    case MG_ROLE_TOOL: {
        json_t *msg = json_pack("{s:s, s:s}", "role", "tool", "content", content);
        if (m->tool_name) json_object_set_new(msg, "tool_name", json_string(m->tool_name));
        if (m->tool_call_id) json_object_set_new(msg, "tool_call_id", json_string(m->tool_call_id));
        return msg;
    }
    case MG_ROLE_ASSISTANT:
        break;
    }
    json_t *msg = json_pack("{s:s, s:s}", "role", "assistant", "content", content);
    if (m->ncalls) {
        json_t *calls = json_array();
        for (int i = 0; i < m->ncalls; i++) {
            const mg_tool_call *c = &m->calls[i];
            json_t *fn = json_pack("{s:s, s:o}", "name", c->name ? c->name : "", "arguments",
                                   arguments_object(c->arguments));
            json_t *call = json_pack("{s:o}", "function", fn);
            if (c->id) json_object_set_new(call, "id", json_string(c->id));
            json_array_append_new(calls, call);
        }
        json_object_set_new(msg, "tool_calls", calls);
    }
    return msg;
}

char *mg_ollama_chat_body(const char *model, const mg_llm_request *req, size_t *len)
{
    json_t *body = json_pack("{s:s, s:b}", "model", model, "stream", req->stream != NULL);
    if (req->tools && json_array_size(req->tools)) {
        json_t *tools = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(req->tools, i, t) json_array_append_new(
            tools, json_pack("{s:s, s:O}", "type", "function", "function", t));
        json_object_set_new(body, "tools", tools);
    }
    json_t *options = json_object();
    if (req->context_window > 0)
        json_object_set_new(options, "num_ctx", json_integer(req->context_window));
    if (req->max_tokens > 0)
        json_object_set_new(options, "num_predict", json_integer(req->max_tokens));
    json_object_set_new(body, "options", options);
    json_t *system =
        json_pack("{s:s, s:s}", "role", "system", "content", req->system ? req->system : "");
    char *text = mg_wire_body(body, system, req, MG_WIRE_OLLAMA, message_to_json, len);
    json_decref(system);
    json_decref(body);
    return text;
}

/* ---------------------------------------------------------------- replies */

/* A copy of a string field that came from the network, repaired to UTF-8. */
static char *network_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? mg_utf8_repair(s, json_string_length(v)) : NULL;
}

mg_status mg_ollama_parse_chat_reply(json_t *body, mg_llm_reply *reply, mg_error *err)
{
    json_t *message = json_object_get(body, "message");
    if (!json_is_object(message))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: no message object in Ollama's reply");
    if (json_is_false(json_object_get(body, "done")))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response: Ollama's reply says it is not done");
    json_t *content = json_object_get(message, "content");
    json_t *thinking = json_object_get(message, "thinking");
    if ((content && !json_is_null(content) && !json_is_string(content)) ||
        (thinking && !json_is_null(thinking) && !json_is_string(thinking)))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: message content is not text");
    mg_status st = mg_tool_calls_parse(json_object_get(message, "tool_calls"), reply, err);
    if (st) return st;
    reply->content = network_string(content);
    /* A thinking model may put its whole monologue in `thinking`; with tool
     * calls that monologue is what the agent's reasoning is. Without calls
     * the content is the answer, and the thinking stays private. */
    if ((!reply->content || !*reply->content) && reply->ncalls && json_string_length(thinking)) {
        free(reply->content);
        reply->content = network_string(thinking);
    }
    reply->prompt_tokens = mg_usage_count(body, "prompt_eval_count");
    reply->completion_tokens = mg_usage_count(body, "eval_count");
    return MG_OK;
}

/* ------------------------------------------------------------ streaming */

/* A streamed /api/chat answer as it arrives. */
typedef struct chat_lines {
    const char *url;
    const mg_stream_sink *sink;
    mg_ndjson_parser lines;
    buf content, thinking;
    json_t *calls; /* the tool calls so far, each with the id it will keep */
    json_t *done;  /* the last line, once it came */
    mg_status st;  /* the first failure found in the stream */
    mg_error err;
} chat_lines;

static void chat_lines_free(chat_lines *s)
{
    mg_ndjson_free(&s->lines);
    buf_free(&s->content);
    buf_free(&s->thinking);
    json_decref(s->calls);
    json_decref(s->done);
}

static int lines_fail(chat_lines *s, const char *what)
{
    s->st = mg_err_set(&s->err, MG_ERR_PROVIDER, "%s: unexpected stream: %s", s->url, what);
    return 1;
}

/* Gives the call the id it will keep (the server's if sane and new), and
 * shows its arguments to the sink. */
static int stream_call(chat_lines *s, json_t *call)
{
    json_t *fn = json_object_get(call, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    if (!json_is_object(call) || !name || !*name)
        return lines_fail(s, "a tool call without a function name");
    const char *id = mg_tool_call_sane_id(json_object_get(call, "id"));
    size_t i;
    json_t *earlier;
    json_array_foreach(s->calls, i, earlier)
    {
        if (id && strcmp(json_string_value(json_object_get(earlier, "id")), id) == 0) id = NULL;
    }
    json_t *copy = json_deep_copy(call);
    char *fresh = id ? NULL : mg_tool_call_fresh_id();
    json_object_set_new(copy, "id", json_string(id ? id : fresh));
    free(fresh);
    json_array_append_new(s->calls, copy);
    if (s->sink->on_tool_args) {
        char *args = mg_tool_call_arguments(json_object_get(fn, "arguments"));
        s->sink->on_tool_args(s->sink->user, (int)json_array_size(s->calls) - 1,
                              json_string_value(json_object_get(copy, "id")), name, args,
                              strlen(args));
        free(args);
    }
    return 0;
}

/* Appends a text field of the message; reports content to the sink. */
static int stream_text(chat_lines *s, json_t *message, const char *key, buf *to)
{
    json_t *v = json_object_get(message, key);
    if (v && !json_is_null(v) && !json_is_string(v))
        return lines_fail(s, "message content is not text");
    size_t n = json_string_length(v);
    if (!n) return 0;
    buf_append(to, json_string_value(v), n);
    if (to == &s->content && s->sink->on_content)
        s->sink->on_content(s->sink->user, json_string_value(v), n);
    return 0;
}

static int on_chat_line(void *user, const char *line, size_t len)
{
    chat_lines *s = user;
    char *repaired = mg_json_repair(line, len);
    json_t *obj = json_loads(repaired, 0, NULL);
    free(repaired);
    int rc = 0;
    json_t *message = json_object_get(obj, "message");
    json_t *calls = json_object_get(message, "tool_calls");
    if (!json_is_object(obj)) {
        rc = lines_fail(s, "a line that is not a JSON object");
    } else if (json_is_string(json_object_get(obj, "error"))) {
        s->st = mg_err_set(&s->err, MG_ERR_PROVIDER,
                           "Ollama reported an error in the stream: %.300s", error_text(obj));
        rc = 1;
    } else if (message && !json_is_object(message)) {
        rc = lines_fail(s, "a message that is not an object");
    } else if (calls && !json_is_null(calls) && !json_is_array(calls)) {
        rc = lines_fail(s, "message.tool_calls is not a list");
    } else {
        rc = stream_text(s, message, "content", &s->content);
        if (!rc) rc = stream_text(s, message, "thinking", &s->thinking);
        size_t i;
        json_t *call;
        json_array_foreach(calls, i, call)
        {
            if (!rc) rc = stream_call(s, call);
        }
        if (!rc && json_is_true(json_object_get(obj, "done"))) {
            json_decref(s->done);
            s->done = json_incref(obj);
        }
    }
    json_decref(obj);
    return rc;
}

static int on_chat_data(const char *data, size_t len, void *user)
{
    chat_lines *s = user;
    int rc = mg_ndjson_feed(&s->lines, data, len);
    if (rc == MG_STREAM_TOO_LARGE) return lines_fail(s, "a line is too long");
    return rc;
}

/* The joined stream as the answer a non-streaming call returns. */
static mg_status lines_finish(chat_lines *s, mg_llm_reply *reply, mg_error *err)
{
    mg_ndjson_finish(&s->lines);
    if (s->st) {
        *err = s->err;
        return s->st;
    }
    if (!s->done) {
        reply->interrupted = 1;
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "the reply stream from %s ended before the reply was complete", s->url);
    }
    json_t *body = json_deep_copy(s->done);
    json_t *message = json_pack("{s:s, s:s%}", "role", "assistant", "content", buf_str(&s->content),
                                s->content.len);
    if (s->thinking.len)
        json_object_set_new(message, "thinking",
                            json_stringn(buf_str(&s->thinking), s->thinking.len));
    if (json_array_size(s->calls)) json_object_set(message, "tool_calls", s->calls);
    json_object_set_new(body, "message", message);
    mg_status st = mg_ollama_parse_chat_reply(body, reply, err);
    json_decref(body);
    return st;
}

/* POST /api/chat with "stream": true; fills *reply from the lines. */
static mg_status chat_stream(const ollama_conn *c, const char *payload, size_t len,
                             const char *model, const mg_stream_sink *sink, mg_llm_reply *reply,
                             mg_error *err)
{
    static const char path[] = "/api/chat";
    buf url = BUF_INIT;
    buf_printf(&url, "%s%s", c->base_url, path);
    const char *headers[] = {"Content-Type: application/json", c->auth_header, NULL};
    mg_http_request req = {"POST", buf_str(&url), headers, payload, len, 0, NULL};
    chat_lines s = {.url = buf_str(&url), .sink = sink, .calls = json_array()};
    mg_ndjson_init(&s.lines, on_chat_line, &s);
    mg_http_response resp = {0};
    int attempts = 0;
    mg_status st = mg_http_perform_stream(&req, NULL, on_chat_data, &s, &resp, &attempts, err);
    if (st && s.st) {
        *err = s.err; /* our own reason for stopping the transfer */
        st = s.st;
    } else if (st && resp.cut_off) {
        reply->interrupted = 1;
    } else if (st) {
        st = st == MG_ERR_PROVIDER ? unreachable(c, err) : st;
    } else if (resp.status < 200 || resp.status >= 300) {
        json_t *parsed = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
        st = http_error(c, path, model, resp.status, attempts, parsed, err);
        json_decref(parsed);
    } else {
        st = lines_finish(&s, reply, err);
    }
    chat_lines_free(&s);
    mg_http_response_free(&resp);
    buf_free(&url);
    return st;
}

mg_status mg_ollama_read_answer(const char *const *pieces, const size_t *lens, size_t n,
                                const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err)
{
    char base_url[] = "the server"; /* for the messages */
    ollama_conn c = {.base_url = base_url};
    if (!sink) {
        buf body = BUF_INIT;
        for (size_t i = 0; i < n; i++)
            buf_append(&body, pieces[i], lens[i]);
        mg_http_response resp = {.status = 200, .body = body.data, .body_len = body.len};
        json_t *parsed;
        mg_status st = read_answer(&c, "/api/chat", NULL, &resp, 1, &parsed, err);
        if (!st) st = mg_ollama_parse_chat_reply(parsed, reply, err);
        json_decref(parsed);
        buf_free(&body);
        return st;
    }
    /* What chat_stream does around the transfer, with the pieces as the
     * transfer's deliveries: a nonzero return stops it. */
    chat_lines s = {.url = base_url, .sink = sink, .calls = json_array()};
    mg_ndjson_init(&s.lines, on_chat_line, &s);
    int stopped = 0;
    for (size_t i = 0; i < n && !stopped; i++)
        stopped = on_chat_data(pieces[i], lens[i], &s);
    mg_status st;
    if (stopped) {
        *err = s.err;
        st = s.st ? s.st : MG_ERR_PROVIDER;
    } else {
        st = lines_finish(&s, reply, err);
    }
    chat_lines_free(&s);
    return st;
}

/* ------------------------------------------------------------ operations */

static mg_status ollama_chat(mg_provider *base, const mg_llm_request *req, mg_llm_reply *reply,
                             mg_error *err)
{
    ollama_provider *p = (ollama_provider *)base;
    size_t len;
    char *body = mg_ollama_chat_body(base->model, req, &len);
    mg_status st;
    if (req->stream) {
        st = chat_stream(&p->conn, body, len, base->model, req->stream, reply, err);
    } else {
        json_t *resp;
        st =
            call_api_text(&p->conn, "/api/chat", body, len, base->model, NULL, 0, &resp, NULL, err);
        if (!st) st = mg_ollama_parse_chat_reply(resp, reply, err);
        json_decref(resp);
    }
    free(body);
    if (st) mg_llm_reply_discard(reply);
    return st;
}

/* GET /api/tags: {"models": [{"name", "model", "size", ...}]}. */
static mg_status ollama_list_models(mg_provider *base, json_t **models, mg_error *err)
{
    ollama_provider *p = (ollama_provider *)base;
    *models = NULL;
    json_t *resp;
    mg_status st = call_api_text(&p->conn, "/api/tags", NULL, 0, NULL, NULL, 0, &resp, NULL, err);
    if (st) return st;
    json_t *list = json_object_get(resp, "models");
    if (!json_is_array(list) && !json_is_null(list)) {
        json_decref(resp);
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: /api/tags has no models list");
    }
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        json_t *name = json_object_get(m, "name");
        if (!json_is_string(name)) name = json_object_get(m, "model");
        if (!json_is_object(m) || !json_is_string(name)) continue; /* nothing to name it by */
        json_t *entry = json_deep_copy(m);
        char *id = network_string(name);
        json_object_set_new(entry, "id", json_string(id));
        free(id);
        json_array_append_new(out, entry);
    }
    json_decref(resp);
    *models = out;
    return MG_OK;
}

static void ollama_destroy(mg_provider *base)
{
    ollama_provider *p = (ollama_provider *)base;
    free(p->base.model);
    conn_close(&p->conn);
    free(p);
}

/* ---------------------------------------------------------- model window */

mg_status mg_ollama_show_context_length(json_t *show, int *tokens, mg_error *err)
{
    *tokens = 0;
    json_t *info = json_object_get(show, "model_info");
    const char *arch = json_string_value(json_object_get(info, "general.architecture"));
    if (!json_is_object(info) || !arch || !*arch || strlen(arch) > 64)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "/api/show gave no model_info[\"general.architecture\"]");
    char key[96];
    snprintf(key, sizeof key, "%s.context_length", arch);
    json_t *v = json_object_get(info, key);
    json_int_t n = json_integer_value(v);
    if (!json_is_integer(v) || n < 1 || n > INT32_MAX)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "/api/show gave no positive integer model_info[\"%s\"]", key);
    *tokens = n > MG_OLLAMA_MAX_AUTO_WINDOW ? MG_OLLAMA_MAX_AUTO_WINDOW : (int)n;
    return MG_OK;
}

/* POST /api/show {"model"}: asked once, when an agent is created, so it gets
 * a short leash (two tries, 10 s each): a server that is down should cost a
 * moment and a note, not the minute the chat retries may take. */
static mg_status ollama_context_window(mg_provider *base, int *tokens, mg_error *err)
{
    ollama_provider *p = (ollama_provider *)base;
    *tokens = 0;
    mg_http_retry policy;
    mg_http_retry_defaults(&policy);
    if (policy.max_attempts > 2) policy.max_attempts = 2;
    json_t *body = json_pack("{s:s}", "model", base->model);
    json_t *resp;
    mg_status st =
        call_api_with(&p->conn, "/api/show", body, base->model, &policy, 10000, &resp, NULL, err);
    json_decref(body);
    if (st) return st;
    st = mg_ollama_show_context_length(resp, tokens, err);
    json_decref(resp);
    return st;
}

static const mg_provider_ops ollama_ops = {
    .prefix = "ollama",
    .chat = ollama_chat,
    .destroy = ollama_destroy,
    .list_models = ollama_list_models,
    .context_window = ollama_context_window,
};

mg_status mg_ollama_open(const char *model, mg_provider **out, mg_error *err)
{
    *out = NULL;
    ollama_conn conn;
    mg_status st = conn_open(&conn, err);
    if (st) return st;
    ollama_provider *p = mg_xcalloc(1, sizeof *p);
    p->base.ops = &ollama_ops;
    p->base.model = mg_xstrdup(model);
    p->conn = conn;
    *out = &p->base;
    return MG_OK;
}

/* ------------------------------------------------------------- embeddings */

/* POST /api/embed {"model", "input": [texts]} -> {"embeddings": [[floats]]};
 * the vectors are checked by the caller (mg_embed_rows_read). */
mg_status mg_ollama_embed_rows(const char *model, json_t *input, json_t **rows, long *status,
                               mg_error *err)
{
    *rows = NULL;
    *status = 0;
    ollama_conn conn;
    mg_status st = conn_open(&conn, err);
    if (st) return st;
    json_t *body = json_pack("{s:s, s:O}", "model", model, "input", input);
    json_t *resp;
    st = call_api_with(&conn, "/api/embed", body, model, NULL, 0, &resp, status, err);
    json_decref(body);
    conn_close(&conn);
    if (st) return st;
    json_t *all = json_object_get(resp, "embeddings");
    if (!json_is_array(all))
        st = mg_err_set(err, MG_ERR_PROVIDER, "unexpected /api/embed answer: no embeddings list");
    else
        *rows = json_incref(all);
    json_decref(resp);
    return st;
}
