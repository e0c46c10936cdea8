/*
 * openai.c - chat completions with tool calling, and embeddings, over the
 * OpenAI wire format.
 *
 * Requests are built from the neutral mg_llm_request; replies are checked
 * field by field, because a server that speaks "OpenAI-compatible" may get
 * details wrong, and a wrong shape must fail the turn cleanly rather than
 * crash it. Retries (429, 5xx, dropped connections) happen in the HTTP layer;
 * here each final status is mapped to the error the agent acts on.
 */
#include "provider/openai.h"

#include <stdlib.h>
#include <string.h>

#include "provider/http.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define DEFAULT_BASE_URL "https://api.openai.com/v1"

typedef struct openai_provider {
    mg_provider base;
    char *base_url;    /* without a trailing slash */
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
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
    if (code && strcmp(code, "context_length_exceeded") == 0) return 1;
    const char *msg = error_text(body);
    return status == 400 && (strstr(msg, "maximum context length") ||
                             strstr(msg, "context length") || strstr(msg, "too many tokens"));
}

/* POSTs JSON to base_url + path. On MG_OK, *out is the parsed 2xx body. */
static mg_status post_json(const char *base_url, const char *auth_header, const char *path,
                           json_t *body, json_t **out, mg_error *err)
{
    *out = NULL;
    buf url = BUF_INIT;
    buf_printf(&url, "%s%s", base_url, path);
    char *payload = json_dumps(body, JSON_COMPACT);
    const char *headers[] = {"Content-Type: application/json", auth_header, NULL};
    mg_http_request req = {"POST", buf_str(&url), headers, payload, strlen(payload), 0};
    mg_http_retry policy;
    mg_http_retry_defaults(&policy);
    mg_http_response resp = {0};
    int attempts = 0;
    mg_status st = mg_http_perform_retry(&req, &policy, &resp, &attempts, err);
    free(payload);
    if (st) {
        buf_free(&url);
        return st;
    }
    json_t *parsed = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
    if (resp.status == 401 || resp.status == 403) {
        st = mg_err_set(err, MG_ERR_AUTH,
                        "%s refused the credentials (HTTP %ld): %.200s; check OPENAI_API_KEY",
                        buf_str(&url), resp.status, error_text(parsed));
    } else if (is_context_error(resp.status, parsed)) {
        st = mg_err_set(err, MG_ERR_CONTEXT, "the request is too long for the model: %.300s",
                        error_text(parsed));
    } else if (resp.status < 200 || resp.status >= 300) {
        st = mg_err_set(err, MG_ERR_PROVIDER, "%s answered HTTP %ld%s: %.300s", buf_str(&url),
                        resp.status, attempts > 1 ? " after retries" : "",
                        parsed ? error_text(parsed) : "(no JSON error body)");
    } else if (!json_is_object(parsed)) {
        st = mg_err_set(err, MG_ERR_PROVIDER, "%s answered with a body that is not a JSON object",
                        buf_str(&url));
    }
    buf_free(&url);
    mg_http_response_free(&resp);
    if (st) {
        json_decref(parsed);
        return st;
    }
    *out = parsed;
    return MG_OK;
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

static json_t *build_chat_body(const char *model, const mg_llm_request *req)
{
    json_t *messages = json_array();
    json_array_append_new(messages,
                          json_pack("{s:s, s:s}", "role", "system", "content", req->system));
    for (int i = 0; i < req->nmessages; i++)
        json_array_append_new(messages, message_to_json(&req->messages[i]));
    json_t *body = json_pack("{s:s, s:o}", "model", model, "messages", messages);
    if (req->tools && json_array_size(req->tools)) {
        json_t *tools = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(req->tools, i, t) json_array_append_new(
            tools, json_pack("{s:s, s:O}", "type", "function", "function", t));
        json_object_set_new(body, "tools", tools);
        json_object_set_new(body, "tool_choice", json_string("auto"));
    }
    if (req->max_tokens > 0) json_object_set_new(body, "max_tokens", json_integer(req->max_tokens));
    return body;
}

/* A copy of a string field that came from the network, repaired to UTF-8. */
static char *network_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? mg_utf8_repair(s, json_string_length(v)) : NULL;
}

static mg_status parse_tool_calls(json_t *calls, mg_llm_reply *reply, mg_error *err)
{
    if (!calls || json_is_null(calls)) return MG_OK;
    if (!json_is_array(calls))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: tool_calls is not a list");
    size_t n = json_array_size(calls);
    reply->calls = mg_xcalloc(n ? n : 1, sizeof *reply->calls);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(calls, i);
        json_t *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name");
        json_t *args = json_object_get(fn, "arguments");
        if (!json_is_string(name))
            return mg_err_set(err, MG_ERR_PROVIDER,
                              "unexpected response shape: tool call %zu has no function name", i);
        mg_tool_call *tc = &reply->calls[reply->ncalls++];
        tc->name = network_string(name);
        const char *id = json_string_value(json_object_get(c, "id"));
        if (id && *id) {
            tc->id = mg_xstrdup(id);
        } else {
            /* Some compatible servers omit ids; the API needs them to pair results. */
            buf b = BUF_INIT;
            buf_printf(&b, "call_%zu_%lld", i, (long long)mg_now_ms());
            tc->id = buf_take(&b);
        }
        if (json_is_string(args))
            tc->arguments = network_string(args);
        else if (args)
            tc->arguments = json_dumps(args, JSON_COMPACT); /* object, as Ollama sends */
        else
            tc->arguments = mg_xstrdup("{}");
    }
    return MG_OK;
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
    reply->content = network_string(content);
    mg_status st = parse_tool_calls(json_object_get(message, "tool_calls"), reply, err);
    if (st) return st;
    json_t *usage = json_object_get(body, "usage");
    reply->prompt_tokens = (int)json_integer_value(json_object_get(usage, "prompt_tokens"));
    reply->completion_tokens = (int)json_integer_value(json_object_get(usage, "completion_tokens"));
    return MG_OK;
}

static mg_status openai_chat(mg_provider *base, const mg_llm_request *req, mg_llm_reply *reply,
                             mg_error *err)
{
    openai_provider *p = (openai_provider *)base;
    json_t *body = build_chat_body(base->model, req);
    json_t *resp;
    mg_status st = post_json(p->base_url, p->auth_header, "/chat/completions", body, &resp, err);
    json_decref(body);
    if (st) return st;
    st = parse_chat_reply(resp, reply, err);
    json_decref(resp);
    if (st) mg_llm_reply_clear(reply);
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

static const mg_provider_ops openai_ops = {"openai", openai_chat, openai_destroy};

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

mg_status mg_openai_embed(const char *model, const char *text, float **vec, int *dim, mg_error *err)
{
    *vec = NULL;
    char *base_url, *auth;
    mg_status st = read_config(&base_url, &auth, err);
    if (st) return st;
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "model", model, "input", text, "encoding_format", "float");
    json_t *resp;
    st = post_json(base_url, auth, "/embeddings", body, &resp, err);
    json_decref(body);
    free(base_url);
    free(auth);
    if (st) return st;
    json_t *emb = json_object_get(json_array_get(json_object_get(resp, "data"), 0), "embedding");
    size_t n = json_array_size(emb);
    if (!n || n > 65536) {
        json_decref(resp);
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected embeddings response: no data[0].embedding list");
    }
    *vec = mg_xmalloc(n * sizeof **vec);
    for (size_t i = 0; i < n; i++)
        (*vec)[i] = (float)json_number_value(json_array_get(emb, i));
    *dim = (int)n;
    json_decref(resp);
    return MG_OK;
}
