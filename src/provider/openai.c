/*
 * openai.c - chat completions with tool calling, and embeddings, over the
 * OpenAI wire format.
 *
 * Requests are built from the neutral mg_llm_request; replies are checked
 * field by field, because a server that speaks "OpenAI-compatible" may get
 * details wrong, and a wrong shape must fail the turn cleanly rather than
 * crash it. Retries (429, 5xx, dropped connections) happen in the HTTP layer;
 * here each final status is mapped to the error the agent acts on.
 *
 * Streaming ("stream": true) delivers the same reply as Server-Sent Events of
 * chat.completion.chunk objects: content and tool-call arguments arrive as
 * string pieces, tool calls are told apart by their "index", and with
 * stream_options.include_usage a last chunk carries the usage. The stream is
 * parsed as it arrives (only the growing fields are kept) and then turned
 * into the object a non-streaming call would have returned, so both paths
 * end in the same parse_chat_reply and cannot drift apart. A stream is
 * complete when "[DONE]" arrives, or at least a finish_reason before a clean
 * end; anything shorter is an interrupted stream the agent may ask again for.
 * A server that ignores "stream" and answers with one JSON body is accepted
 * too.
 *
 * parallel_tool_calls: true is sent whenever tools are, so models may call
 * several functions in one step. Some servers and models refuse the
 * parameter; a 400 that names it makes this provider retry once without it
 * and never send it again.
 */
#include "provider/openai.h"

#include <stdlib.h>
#include <string.h>

#include "provider/http.h"
#include "provider/stream.h"
#include "provider/tool_calls.h"
#include "provider/wire.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"

#define DEFAULT_BASE_URL "https://api.openai.com/v1"

/* Most tool calls one streamed reply may hold. */
#define MAX_STREAM_CALLS 128

typedef struct openai_provider {
    mg_provider base;
    char *base_url;    /* without a trailing slash */
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    int no_parallel;   /* the server refused parallel_tool_calls: do not send it */
} openai_provider;

static mg_status read_config(char **base_url, char **auth_header, mg_error *err)
{
    const char *url = getenv("OPENAI_BASE_URL");
    if (!url || !*url) url = DEFAULT_BASE_URL;
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    const char *key = getenv("OPENAI_API_KEY");
    if ((!key || !*key) && strncmp(url, DEFAULT_BASE_URL, strlen(DEFAULT_BASE_URL)) == 0)
        return mg_err_set(err, MG_ERR_AUTH,
                          "OPENAI_API_KEY is not set: export it, or point OPENAI_BASE_URL at a "
                          "local OpenAI-compatible server (Ollama: http://127.0.0.1:11434/v1)");
    *base_url = mg_xstrndup(url, n);
    *auth_header = NULL;
    if (key && *key) {
        buf h = BUF_INIT;
        buf_printf(&h, "Authorization: Bearer %s", key);
        *auth_header = buf_take(&h);
    }
    return MG_OK;
}

/* The provider's own error text from an error body, if it has one. */
static const char *error_text(json_t *body)
{
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg) msg = json_string_value(e);
    return msg ? msg : "";
}

static int is_context_error(long status, json_t *body)
{
    json_t *e = json_object_get(body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *type = json_string_value(json_object_get(e, "type"));
    if (code && strcmp(code, "context_length_exceeded") == 0) return 1;
    if (type && strcmp(type, "exceed_context_size_error") == 0) return 1; /* llama.cpp */
    const char *msg = error_text(body);
    return status == 400 &&
           (strstr(msg, "maximum context length") || strstr(msg, "context length") ||
            strstr(msg, "context size") || strstr(msg, "too many tokens"));
}

/* A 400 about parallel_tool_calls: the server or model does not take it
 * ("unsupported_parameter", or an older server's "Unrecognized request
 * argument"). */
static int refuses_parallel(long status, json_t *body)
{
    json_t *e = json_object_get(body, "error");
    const char *param = json_string_value(json_object_get(e, "param"));
    return status == 400 && ((param && strcmp(param, "parallel_tool_calls") == 0) ||
                             strstr(error_text(body), "parallel_tool_calls"));
}

/* Maps a finished answer (`body`, `len` bytes) to the agent's statuses. On
 * MG_OK, *out (if not NULL) is the parsed 2xx body, a JSON object. Sets
 * *parallel_refused (may be NULL) when the error is refuses_parallel. */
static mg_status check_answer(const char *url, long status, const char *body, size_t len,
                              int attempts, json_t **out, int *parallel_refused, mg_error *err)
{
    if (out) *out = NULL;
    char *repaired = mg_json_repair(body ? body : "", len);
    json_error_t jerr;
    json_t *parsed = json_loads(repaired, 0, &jerr);
    free(repaired);
    mg_status st = MG_OK;
    if (status == 401 || status == 403) {
        st = mg_err_set(err, MG_ERR_AUTH,
                        "%s refused the credentials (HTTP %ld): %.200s; check OPENAI_API_KEY", url,
                        status, error_text(parsed));
    } else if (is_context_error(status, parsed)) {
        st = mg_err_set(err, MG_ERR_CONTEXT, "the request is too long for the model: %.300s",
                        error_text(parsed));
    } else if (status < 200 || status >= 300) {
        if (parallel_refused) *parallel_refused = refuses_parallel(status, parsed);
        st = mg_err_set(err, MG_ERR_PROVIDER, "%s answered HTTP %ld%s: %.300s", url, status,
                        attempts > 1 ? " after retries" : "",
                        parsed ? error_text(parsed) : "(no JSON error body)");
    } else if (!json_is_object(parsed)) {
        st = mg_err_set(err, MG_ERR_PROVIDER,
                        "%s answered with a body that is not a JSON object (%s)", url,
                        parsed ? "another JSON type" : jerr.text);
    }
    if (st || !out)
        json_decref(parsed);
    else
        *out = parsed;
    return st;
}

/* POSTs the JSON text `payload` (`len` bytes) to base_url + path, or GETs
 * it when `payload` is NULL. On MG_OK, *out is the parsed 2xx body.
 * *status (may be NULL) is the final HTTP status, 0 when no answer came. */
static mg_status post_text(const char *base_url, const char *auth_header, const char *path,
                           const char *payload, size_t len, json_t **out, int *parallel_refused,
                           long *status, mg_error *err)
{
    *out = NULL;
    buf url = BUF_INIT;
    buf_printf(&url, "%s%s", base_url, path);
    const char *headers[] = {
        payload ? "Content-Type: application/json" : "Accept: application/json", auth_header, NULL};
    mg_http_request req = {payload ? "POST" : "GET", buf_str(&url), headers, payload, len, 0, NULL};
    mg_http_retry policy;
    mg_http_retry_defaults(&policy);
    mg_http_response resp = {0};
    int attempts = 0;
    mg_status st = mg_http_perform_retry(&req, &policy, &resp, &attempts, err);
    if (status) *status = st ? 0 : resp.status;
    if (!st)
        st = check_answer(buf_str(&url), resp.status, resp.body, resp.body_len, attempts, out,
                          parallel_refused, err);
    buf_free(&url);
    mg_http_response_free(&resp);
    return st;
}

/* The same with a JSON value (NULL: GET). */
static mg_status post_json(const char *base_url, const char *auth_header, const char *path,
                           json_t *body, json_t **out, long *status, mg_error *err)
{
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    mg_status st = post_text(base_url, auth_header, path, payload, payload ? strlen(payload) : 0,
                             out, NULL, status, err);
    free(payload);
    return st;
}

static json_t *message_to_json(const mg_msg *m)
{
    switch (m->role) {
    case MG_ROLE_USER:
        return json_pack("{s:s, s:s}", "role", "user", "content", m->content ? m->content : "");
    case MG_ROLE_TOOL:
        return json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id",
                         m->tool_call_id ? m->tool_call_id : "", "content",
                         m->content ? m->content : "");
    case MG_ROLE_ASSISTANT:
        break;
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(msg, "content",
                        m->content ? json_string(m->content)
                                   : (m->ncalls ? json_null() : json_string("")));
    if (m->ncalls) {
        json_t *calls = json_array();
        for (int i = 0; i < m->ncalls; i++)
            json_array_append_new(calls,
                                  json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", m->calls[i].id,
                                            "type", "function", "function", "name",
                                            m->calls[i].name, "arguments", m->calls[i].arguments));
        json_object_set_new(msg, "tool_calls", calls);
    }
    return msg;
}

static int is_reasoning_model(const char *model)
{
    static const char *const prefixes[] = {"o1", "o3", "o4", "gpt-5"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(model, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

char *mg_openai_chat_body(const char *model, const mg_llm_request *req, int parallel, size_t *len)
{
    json_t *body = json_pack("{s:s}", "model", model);
    if (req->tools && json_array_size(req->tools)) {
        json_t *tools = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(req->tools, i, t) json_array_append_new(
            tools, json_pack("{s:s, s:O}", "type", "function", "function", t));
        json_object_set_new(body, "tools", tools);
        json_object_set_new(body, "tool_choice", json_string("auto"));
        if (parallel) json_object_set_new(body, "parallel_tool_calls", json_true());
    }
    if (req->stream) {
        json_object_set_new(body, "stream", json_true());
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (req->max_tokens > 0) {
        /* OpenAI's reasoning models refuse max_tokens, and spend part of the
         * budget on hidden reasoning, so they get a larger one. */
        if (is_reasoning_model(model))
            json_object_set_new(body, "max_completion_tokens", json_integer(req->max_tokens * 4));
        else
            json_object_set_new(body, "max_tokens", json_integer(req->max_tokens));
    }
    json_t *system = json_pack("{s:s, s:s}", "role", "system", "content", req->system);
    char *text = mg_wire_body(body, system, req, MG_WIRE_OPENAI, message_to_json, len);
    json_decref(system);
    json_decref(body);
    return text;
}

/* A copy of a string field, or NULL. (Bodies are repaired to valid UTF-8
 * without NULs before parsing, see post_json.) */
static char *copy_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? mg_xstrdup(s) : NULL;
}

static mg_status parse_chat_reply(json_t *body, mg_llm_reply *reply, mg_error *err)
{
    json_t *choice = json_array_get(json_object_get(body, "choices"), 0);
    json_t *message = json_object_get(choice, "message");
    if (!json_is_object(message))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: no choices[0].message in the reply");
    json_t *content = json_object_get(message, "content");
    if (content && !json_is_null(content) && !json_is_string(content))
        return mg_err_set(err, MG_ERR_PROVIDER, "unexpected response shape: content is not text");
    reply->content = copy_string(content);
    mg_status st = mg_tool_calls_parse(json_object_get(message, "tool_calls"), reply, err);
    if (st) return st;
    json_t *usage = json_object_get(body, "usage");
    reply->prompt_tokens = mg_usage_count(usage, "prompt_tokens");
    reply->completion_tokens = mg_usage_count(usage, "completion_tokens");
    /* Reasoning models: hidden reasoning is part of completion_tokens, and
     * cached prompt tokens are part of prompt_tokens. */
    reply->reasoning_tokens =
        mg_usage_count(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens");
    reply->cached_tokens =
        mg_usage_count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    return MG_OK;
}

/* ------------------------------------------------------------ streaming */

/* One tool call being assembled from its pieces. */
typedef struct stream_call {
    json_int_t wire_index; /* its "index" on the wire, -1 if the server gave none */
    buf id, name, args;
    int reported; /* pieces went to the sink: the id may no longer change */
} stream_call;

/* A streamed chat completion as it arrives. */
typedef struct chat_stream {
    const char *url;
    const mg_stream_sink *sink;
    mg_sse_parser sse;
    mg_plain_body plain; /* a server that ignored "stream" */
    buf content;
    int has_content;
    stream_call *calls;
    int ncalls;
    json_t *usage;
    int finished; /* a finish_reason arrived */
    int done;     /* "[DONE]" arrived */
    mg_status st; /* the first failure found in the stream */
    mg_error err;
} chat_stream;

static int stream_fail(chat_stream *s, const char *what)
{
    s->st = mg_err_set(&s->err, MG_ERR_PROVIDER, "%s: %s", s->url, what);
    return 1;
}

static int id_used(const chat_stream *s, const stream_call *self, const char *id)
{
    for (int i = 0; i < s->ncalls; i++)
        if (&s->calls[i] != self && strcmp(buf_str(&s->calls[i].id), id) == 0) return 1;
    return 0;
}

/* The call a tool_calls element continues, or a new one; NULL when there
 * are too many. Calls are matched by "index" (the wire format), else by id,
 * else the element continues the last call. */
static stream_call *call_for(chat_stream *s, json_t *element)
{
    json_t *index = json_object_get(element, "index");
    json_int_t wire = json_is_integer(index) ? json_integer_value(index) : -1;
    const char *id = json_string_value(json_object_get(element, "id"));
    for (int i = 0; i < s->ncalls; i++) {
        stream_call *c = &s->calls[i];
        if (wire >= 0 ? c->wire_index == wire
                      : (id && *id ? strcmp(buf_str(&c->id), id) == 0 : i == s->ncalls - 1))
            return c;
    }
    if (s->ncalls == MAX_STREAM_CALLS) return NULL;
    s->calls = mg_xrealloc(s->calls, (size_t)(s->ncalls + 1) * sizeof *s->calls);
    stream_call *c = &s->calls[s->ncalls++];
    memset(c, 0, sizeof *c);
    c->wire_index = wire;
    return c;
}

/* Fixes the id before the first piece is reported, the way
 * mg_tool_calls_parse will when the stream is read as a reply: missing,
 * malformed (mg_tool_call_sane_id) or repeated ids are replaced by a fresh
 * one. Both must agree, since clients match the pieces shown to the stored
 * call by this id (a malformed one was shown, then stored as another: found
 * by fuzz/fuzz_openai.c). */
static void settle_id(chat_stream *s, stream_call *c)
{
    if (c->reported) return;
    c->reported = 1;
    json_t *id = json_stringn(c->id.data ? c->id.data : "", c->id.len);
    int keep = mg_tool_call_sane_id(id) && !id_used(s, c, buf_str(&c->id));
    json_decref(id);
    if (keep) return;
    char *fresh = mg_tool_call_fresh_id();
    buf_free(&c->id);
    buf_puts(&c->id, fresh);
    free(fresh);
}

static int stream_tool_call(chat_stream *s, json_t *element)
{
    if (!json_is_object(element)) return stream_fail(s, "a streamed tool call is not an object");
    stream_call *c = call_for(s, element);
    if (!c) return stream_fail(s, "too many tool calls in one streamed reply");
    json_t *fn = json_object_get(element, "function");
    const char *id = json_string_value(json_object_get(element, "id"));
    const char *name = json_string_value(json_object_get(fn, "name"));
    json_t *args = json_object_get(fn, "arguments");
    if (id && *id && !c->id.len && !c->reported) buf_puts(&c->id, id);
    if (name && *name && !c->name.len) buf_puts(&c->name, name);
    if (args && !json_is_null(args) && !json_is_string(args))
        return stream_fail(s, "streamed tool-call arguments are not text");
    size_t n = json_string_length(args);
    if (!n) return 0;
    buf_append(&c->args, json_string_value(args), n);
    settle_id(s, c);
    if (s->sink->on_tool_args)
        s->sink->on_tool_args(s->sink->user, (int)(c - s->calls), buf_str(&c->id),
                              buf_str(&c->name), json_string_value(args), n);
    return 0;
}

static int stream_delta(chat_stream *s, json_t *delta)
{
    if (!delta || json_is_null(delta)) return 0;
    if (!json_is_object(delta)) return stream_fail(s, "a stream chunk's delta is not an object");
    json_t *content = json_object_get(delta, "content");
    if (content && !json_is_null(content) && !json_is_string(content))
        return stream_fail(s, "unexpected response shape: content is not text");
    size_t n = json_string_length(content);
    if (n) {
        buf_append(&s->content, json_string_value(content), n);
        s->has_content = 1;
        if (s->sink->on_content) s->sink->on_content(s->sink->user, json_string_value(content), n);
    }
    json_t *calls = json_object_get(delta, "tool_calls");
    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return stream_fail(s, "unexpected response shape: tool_calls is not a list");
    size_t i;
    json_t *element;
    json_array_foreach(calls, i, element)
    {
        if (stream_tool_call(s, element)) return 1;
    }
    return 0;
}

/* One chat.completion.chunk (or an error object) from the stream. */
static int stream_chunk(chat_stream *s, json_t *chunk)
{
    json_t *error = json_object_get(chunk, "error");
    if (error && !json_is_null(error)) {
        s->st = mg_err_set(&s->err, MG_ERR_PROVIDER, "%s reported an error in the stream: %.300s",
                           s->url, *error_text(chunk) ? error_text(chunk) : "(no message)");
        return 1;
    }
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        json_decref(s->usage);
        s->usage = json_incref(usage);
    }
    json_t *choices = json_object_get(chunk, "choices");
    if (choices && !json_is_array(choices))
        return stream_fail(s, "unexpected response shape: choices is not a list");
    json_t *choice = json_array_get(choices, 0);
    if (!choice) return 0; /* the usage chunk has no choices */
    if (stream_delta(s, json_object_get(choice, "delta"))) return 1;
    if (json_is_string(json_object_get(choice, "finish_reason"))) s->finished = 1;
    return 0;
}

static int on_stream_event(void *user, const char *event, const char *data, size_t len)
{
    chat_stream *s = user;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->done = 1;
        return 0;
    }
    char *repaired = mg_json_repair(data, len);
    json_t *chunk = json_loads(repaired, 0, NULL);
    free(repaired);
    int rc = json_is_object(chunk) ? stream_chunk(s, chunk)
                                   : stream_fail(s, "a stream event is not a JSON object");
    json_decref(chunk);
    return rc;
}

static int on_stream_data(const char *data, size_t len, void *user)
{
    chat_stream *s = user;
    if (mg_plain_body_feed(&s->plain, data, len)) return 0;
    int rc = mg_sse_feed(&s->sse, data, len);
    if (rc == MG_STREAM_TOO_LARGE) return stream_fail(s, "a stream event is too large");
    return rc;
}

/* The stream as the body a non-streaming call returns. */
static json_t *assembled_body(chat_stream *s)
{
    json_t *message = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(message, "content",
                        s->has_content ? json_stringn(s->content.data, s->content.len)
                                       : json_null());
    if (s->ncalls) {
        json_t *calls = json_array();
        for (int i = 0; i < s->ncalls; i++) {
            stream_call *c = &s->calls[i];
            json_t *fn = json_pack("{s:s%, s:s%}", "name", buf_str(&c->name), c->name.len,
                                   "arguments", buf_str(&c->args), c->args.len);
            json_t *call = json_pack("{s:s%, s:s, s:o}", "id", buf_str(&c->id), c->id.len, "type",
                                     "function", "function", fn);
            json_array_append_new(calls, call);
        }
        json_object_set_new(message, "tool_calls", calls);
    }
    json_t *body = json_pack("{s:[{s:o}]}", "choices", "message", message);
    if (s->usage) json_object_set(body, "usage", s->usage);
    return body;
}

static void stream_free(chat_stream *s)
{
    mg_sse_free(&s->sse);
    buf_free(&s->plain.body);
    buf_free(&s->content);
    for (int i = 0; i < s->ncalls; i++) {
        buf_free(&s->calls[i].id);
        buf_free(&s->calls[i].name);
        buf_free(&s->calls[i].args);
    }
    free(s->calls);
    json_decref(s->usage);
}

/* The end of a 2xx stream: the reply, or why there is none. */
static mg_status stream_finish(chat_stream *s, mg_llm_reply *reply, mg_error *err)
{
    if (s->plain.plain) {
        json_t *body;
        mg_status st =
            check_answer(s->url, 200, s->plain.body.data, s->plain.body.len, 1, &body, NULL, err);
        if (!st) st = parse_chat_reply(body, reply, err);
        json_decref(body);
        return st;
    }
    if (mg_sse_finish(&s->sse) || s->st) {
        *err = s->err;
        return s->st ? s->st : MG_ERR_PROVIDER;
    }
    if (!s->done && !s->finished) {
        reply->interrupted = 1;
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "the reply stream from %s ended before the reply was complete", s->url);
    }
    json_t *body = assembled_body(s);
    mg_status st = parse_chat_reply(body, reply, err);
    json_decref(body);
    return st;
}

/* POSTs a streaming chat request; fills *reply from the stream. */
static mg_status post_stream(openai_provider *p, const char *payload, size_t len,
                             const mg_stream_sink *sink, mg_llm_reply *reply, int *parallel_refused,
                             mg_error *err)
{
    buf url = BUF_INIT;
    buf_printf(&url, "%s/chat/completions", p->base_url);
    const char *headers[] = {"Content-Type: application/json", "Accept: text/event-stream",
                             p->auth_header, NULL};
    mg_http_request req = {"POST", buf_str(&url), headers, payload, len, 0, NULL};
    chat_stream s = {.url = buf_str(&url), .sink = sink};
    mg_sse_init(&s.sse, on_stream_event, &s);
    mg_http_response resp = {0};
    int attempts = 0;
    mg_status st = mg_http_perform_stream(&req, NULL, on_stream_data, &s, &resp, &attempts, err);
    if (st && s.st) {
        *err = s.err; /* our own reason for stopping the transfer */
        st = s.st;
    } else if (st) {
        reply->interrupted = resp.cut_off;
    } else if (resp.status < 200 || resp.status >= 300) {
        st = check_answer(s.url, resp.status, resp.body, resp.body_len, attempts, NULL,
                          parallel_refused, err);
    } else {
        st = stream_finish(&s, reply, err);
    }
    stream_free(&s);
    mg_http_response_free(&resp);
    buf_free(&url);
    return st;
}

/* Where answers read by mg_openai_read_answer came from, for its messages. */
#define READ_ANSWER_URL "the server"

mg_status mg_openai_read_answer(const char *const *pieces, const size_t *lens, size_t n,
                                const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err)
{
    if (!sink) {
        buf body = BUF_INIT;
        for (size_t i = 0; i < n; i++)
            buf_append(&body, pieces[i], lens[i]);
        json_t *parsed;
        mg_status st =
            check_answer(READ_ANSWER_URL, 200, body.data, body.len, 1, &parsed, NULL, err);
        if (!st) st = parse_chat_reply(parsed, reply, err);
        json_decref(parsed);
        buf_free(&body);
        return st;
    }
    /* What post_stream does around the transfer, with the pieces as the
     * transfer's deliveries: a nonzero return stops it. */
    chat_stream s = {.url = READ_ANSWER_URL, .sink = sink};
    mg_sse_init(&s.sse, on_stream_event, &s);
    int stopped = 0;
    for (size_t i = 0; i < n && !stopped; i++)
        stopped = on_stream_data(pieces[i], lens[i], &s);
    mg_status st;
    if (stopped) {
        *err = s.err;
        st = s.st ? s.st : MG_ERR_PROVIDER;
    } else {
        st = stream_finish(&s, reply, err);
    }
    stream_free(&s);
    return st;
}

/* One chat request, streamed or not. */
static mg_status chat_once(openai_provider *p, const mg_llm_request *req, int parallel,
                           mg_llm_reply *reply, int *parallel_refused, mg_error *err)
{
    size_t len;
    char *body = mg_openai_chat_body(p->base.model, req, parallel, &len);
    mg_status st;
    if (req->stream) {
        st = post_stream(p, body, len, req->stream, reply, parallel_refused, err);
    } else {
        json_t *resp;
        st = post_text(p->base_url, p->auth_header, "/chat/completions", body, len, &resp,
                       parallel_refused, NULL, err);
        if (!st) st = parse_chat_reply(resp, reply, err);
        json_decref(resp);
    }
    free(body);
    if (st) mg_llm_reply_discard(reply);
    return st;
}

static mg_status openai_chat(mg_provider *base, const mg_llm_request *req, mg_llm_reply *reply,
                             mg_error *err)
{
    openai_provider *p = (openai_provider *)base;
    int has_tools = req->tools && json_array_size(req->tools);
    int parallel = has_tools && !p->no_parallel, refused = 0;
    mg_status st = chat_once(p, req, parallel, reply, &refused, err);
    if (st && parallel && refused) {
        /* This server or model does not take the parameter: never again. */
        p->no_parallel = 1;
        mg_err_clear(err);
        st = chat_once(p, req, 0, reply, NULL, err);
    }
    return st;
}

static void openai_destroy(mg_provider *base)
{
    openai_provider *p = (openai_provider *)base;
    free(p->base.model);
    free(p->base_url);
    free(p->auth_header);
    free(p);
}

/* GET /models: {"data": [{"id", "object", "created", "owned_by"}]}. */
static mg_status openai_list_models(mg_provider *base, json_t **models, mg_error *err)
{
    openai_provider *p = (openai_provider *)base;
    *models = NULL;
    json_t *resp;
    mg_status st = post_json(p->base_url, p->auth_header, "/models", NULL, &resp, NULL, err);
    if (st) return st;
    json_t *data = json_object_get(resp, "data");
    if (!json_is_array(data)) {
        json_decref(resp);
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: GET /models has no data list");
    }
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m)
    {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "id"))) continue;
        json_array_append_new(out, json_deep_copy(m));
    }
    json_decref(resp);
    *models = out;
    return MG_OK;
}

static const mg_provider_ops openai_ops = {
    .prefix = "openai",
    .chat = openai_chat,
    .destroy = openai_destroy,
    .list_models = openai_list_models,
};

mg_status mg_openai_open(const char *model, mg_provider **out, mg_error *err)
{
    *out = NULL;
    char *base_url, *auth;
    mg_status st = read_config(&base_url, &auth, err);
    if (st) return st;
    openai_provider *p = mg_xcalloc(1, sizeof *p);
    p->base.ops = &openai_ops;
    p->base.model = mg_xstrdup(model);
    p->base_url = base_url;
    p->auth_header = auth;
    *out = &p->base;
    return MG_OK;
}

/* ------------------------------------------------------------- embeddings */

mg_status mg_openai_embedding_rows(json_t *resp, int n, json_t **rows, mg_error *err)
{
    *rows = NULL;
    json_t *data = json_object_get(resp, "data");
    if (!json_is_array(data))
        return mg_err_set(err, MG_ERR_PROVIDER, "unexpected /embeddings answer: no data list");
    if (json_array_size(data) != (size_t)n)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected /embeddings answer: %zu embeddings for %d inputs",
                          json_array_size(data), n);
    /* Servers may answer out of order; "index" says which input a row is for. */
    json_t *out = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(out, json_null());
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item)
    {
        json_t *index = json_object_get(item, "index");
        json_t *emb = json_object_get(item, "embedding");
        json_int_t k = json_integer_value(index);
        const char *why = NULL;
        if (!json_is_integer(index))
            why = "has no integer index";
        else if (k < 0 || k >= n)
            why = "has an index out of range";
        else if (!json_is_null(json_array_get(out, (size_t)k)))
            why = "repeats an index";
        else if (!json_is_array(emb))
            why = "has no embedding list (a base64 string is not asked for)";
        if (why) {
            json_decref(out);
            return mg_err_set(err, MG_ERR_PROVIDER,
                              "unexpected /embeddings answer: data[%zu] %s (index %lld, %d inputs)",
                              i, why, (long long)k, n);
        }
        json_array_set(out, (size_t)k, emb);
    }
    *rows = out;
    return MG_OK;
}

mg_status mg_openai_embed_rows(const char *model, json_t *input, json_t **rows, long *status,
                               mg_error *err)
{
    *rows = NULL;
    *status = 0;
    char *base_url, *auth;
    mg_status st = read_config(&base_url, &auth, err);
    if (st) return st;
    json_t *body =
        json_pack("{s:s, s:O, s:s}", "model", model, "input", input, "encoding_format", "float");
    json_t *resp = NULL;
    st = post_json(base_url, auth, "/embeddings", body, &resp, status, err);
    json_decref(body);
    free(base_url);
    free(auth);
    if (!st) st = mg_openai_embedding_rows(resp, (int)json_array_size(input), rows, err);
    json_decref(resp);
    return st;
}
