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
    const char *type = json_string_value(json_object_get(e, "type"));
    if (code && strcmp(code, "context_length_exceeded") == 0) return 1;
    if (type && strcmp(type, "exceed_context_size_error") == 0) return 1; /* llama.cpp */
    const char *msg = error_text(body);
    return status == 400 && (strstr(msg, "maximum context length") ||
                             strstr(msg, "context length") ||
                             strstr(msg, "context size") || strstr(msg, "too many tokens"));
}

/* POSTs JSON to base_url + path, or GETs it when `body` is NULL. On MG_OK,
 * *out is the parsed 2xx body. */
static mg_status post_json(const char *base_url, const char *auth_header, const char *path,
                           json_t *body, json_t **out, mg_error *err)
{
    *out = NULL;
    buf url = BUF_INIT;
    buf_printf(&url, "%s%s", base_url, path);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *headers[] = {body ? "Content-Type: application/json" : "Accept: application/json",
                             auth_header, NULL};
    mg_http_request req = {
        body ? "POST" : "GET", buf_str(&url), headers, payload, payload ? strlen(payload) : 0, 0};
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
    char *repaired = mg_json_repair(resp.body ? resp.body : "", resp.body_len);
    json_error_t jerr;
    json_t *parsed = json_loads(repaired, 0, &jerr);
    free(repaired);
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
        st = mg_err_set(err, MG_ERR_PROVIDER,
                        "%s answered with a body that is not a JSON object (%s)", buf_str(&url),
                        parsed ? "another JSON type" : jerr.text);
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

static int is_reasoning_model(const char *model)
{
    static const char *const prefixes[] = {"o1", "o3", "o4", "gpt-5"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(model, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
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
    if (req->max_tokens > 0) {
        /* OpenAI's reasoning models refuse max_tokens, and spend part of the
         * budget on hidden reasoning, so they get a larger one. */
        if (is_reasoning_model(model))
            json_object_set_new(body, "max_completion_tokens", json_integer(req->max_tokens * 4));
        else
            json_object_set_new(body, "max_tokens", json_integer(req->max_tokens));
    }
    return body;
}

/* A copy of a string field, or NULL. (Bodies are repaired to valid UTF-8
 * without NULs before parsing, see post_json.) */
static char *copy_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? mg_xstrdup(s) : NULL;
}

/* 1 if an earlier call of this reply already has `id`. */
static int id_taken(const mg_llm_reply *reply, const char *id)
{
    for (int i = 0; i < reply->ncalls; i++)
        if (reply->calls[i].id && strcmp(reply->calls[i].id, id) == 0) return 1;
    return 0;
}

/* Provider usage figures are untrusted numbers: keep them in a sane range. */
static int usage_value(json_t *usage, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(usage, key));
    return v < 0 ? 0 : v > 100000000 ? 100000000 : (int)v;
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
        const char *id = json_string_value(json_object_get(c, "id"));
        char *unique;
        if (id && *id && !id_taken(reply, id)) {
            unique = mg_xstrdup(id);
        } else {
            /* Missing or repeated ids would break the pairing of calls and
             * results, and the API would refuse every later request. */
            buf b = BUF_INIT;
            buf_printf(&b, "%s_%zu_%lld", id && *id ? id : "call", i, (long long)mg_now_ms());
            unique = buf_take(&b);
        }
        mg_tool_call *tc = &reply->calls[reply->ncalls++];
        tc->name = copy_string(name);
        tc->id = unique;
        if (json_is_string(args))
            tc->arguments = copy_string(args);
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
    reply->content = copy_string(content);
    mg_status st = parse_tool_calls(json_object_get(message, "tool_calls"), reply, err);
    if (st) return st;
    json_t *usage = json_object_get(body, "usage");
    reply->prompt_tokens = usage_value(usage, "prompt_tokens");
    reply->completion_tokens = usage_value(usage, "completion_tokens");
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

/* GET /models: {"data": [{"id", "object", "created", "owned_by"}]}. */
static mg_status openai_list_models(mg_provider *base, json_t **models, mg_error *err)
{
    openai_provider *p = (openai_provider *)base;
    *models = NULL;
    json_t *resp;
    mg_status st = post_json(p->base_url, p->auth_header, "/models", NULL, &resp, err);
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
