/*
 * messages.c - /v1/agents/{id}/messages: sending (whole answers, SSE
 * streams, background runs), listing every stored message, cancelling,
 * resetting the window, summarizing.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/letta.h"

#define MAX_INPUTS 64
#define MAX_STEPS  1000

/* ------------------------------------------------------------- listing */

void srv_messages_list(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    mg_page page;
    int use_assistant = 1;
    if (srv_page_params(q, r, 100, 1, &page) ||
        srv_query_bool(q, r, "use_assistant_message", 1, &use_assistant) ||
        srv_open_agent(q, r, 0, &agent))
        return;
    mg_error err = {0};
    char *text;
    json_t *rows = srv_json_of(mg_messages_page(agent, &page, 0, &text, &err), &text);
    mg_agent_free(agent);
    if (!rows) {
        srv_reply_status(r, &err);
        return;
    }
    const char *types[16];
    int ntypes = srv_query_all(q, "include_return_message_types", types, 16);
    json_t *only = NULL;
    if (ntypes) {
        only = json_array();
        for (int i = 0; i < ntypes; i++)
            json_array_append_new(only, json_string(types[i]));
    }
    json_t *out = json_array(), *one = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_array_clear(one);
        letta_messages_of_row(row, use_assistant, one);
        size_t k;
        json_t *m;
        json_array_foreach(
            one, k,
            m) if (letta_type_wanted(only, json_string_value(json_object_get(m, "message_type"))))
            json_array_append(out, m);
    }
    json_decref(one);
    json_decref(only);
    /* A limit counts stored rows, each zero or more Letta messages, so
     * only the server can tell that a short page is the last one. */
    r->page_end = json_array_size(rows) < (size_t)page.limit;
    json_decref(rows);
    srv_reply_json(r, 200, out);
}

/* ------------------------------------------------------------- sending */

/* The text of a message's content: a string, or a list of parts of which
 * the text ones are joined. NULL (and 422) for anything else. */
static char *content_text(srv_reply *r, json_t *content)
{
    if (json_is_string(content)) return strdup(json_string_value(content));
    if (!json_is_array(content) || json_array_size(content) == 0) {
        srv_reply_invalid(r, "body", "content",
                          "must be a string or a list of {\"type\": \"text\", \"text\"} parts");
        return NULL;
    }
    size_t i, len = 0;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (!type || strcmp(type, "text") != 0 || !text) {
            srv_reply_invalid(r, "body", "content",
                              "only text parts ({\"type\": \"text\", \"text\": ...}) are "
                              "supported");
            return NULL;
        }
        len += strlen(text) + 1;
    }
    char *out = malloc(len + 1), *w = out;
    json_array_foreach(content, i, part)
    {
        const char *text = json_string_value(json_object_get(part, "text"));
        size_t n = strlen(text);
        if (w != out) *w++ = '\n';
        memcpy(w, text, n);
        w += n;
    }
    *w = '\0';
    return out;
}

/* messages (or input) as [{"role", "text"}]. NULL with 422 in `r`. */
static json_t *read_inputs(srv_reply *r, json_t *body)
{
    json_t *messages = json_object_get(body, "messages");
    json_t *input = json_object_get(body, "input");
    json_t *out = json_array();
    if (input && !json_is_null(input)) {
        char *text = content_text(r, input);
        if (!text) goto fail;
        json_array_append_new(out, json_pack("{s:s, s:s}", "role", "user", "text", text));
        free(text);
    }
    if (messages && !json_is_null(messages)) {
        if (!json_is_array(messages) || json_array_size(messages) > MAX_INPUTS) {
            srv_reply_invalid(r, "body", "messages", "must be a list of at most 64 messages");
            goto fail;
        }
        size_t i;
        json_t *m;
        json_array_foreach(messages, i, m)
        {
            const char *role = json_string_value(json_object_get(m, "role"));
            const char *type = json_string_value(json_object_get(m, "type"));
            if (type && strcmp(type, "message") != 0) {
                srv_reply_invalid(r, "body", "messages",
                                  "only messages of type 'message' are supported (no approvals "
                                  "or client tool returns)");
                goto fail;
            }
            if (!role || (strcmp(role, "user") != 0 && strcmp(role, "system") != 0)) {
                srv_reply_invalid(r, "body", "role", "must be 'user' or 'system'");
                goto fail;
            }
            json_t *content = json_object_get(m, "content");
            if (!content) {
                srv_reply_invalid(r, "body", "content", "field required");
                goto fail;
            }
            char *text = content_text(r, content);
            if (!text) goto fail;
            json_array_append_new(out, json_pack("{s:s, s:s}", "role", role, "text", text));
            free(text);
        }
    }
    if (json_array_size(out) == 0) {
        srv_reply_invalid(r, "body", "messages", "give at least one message (or input)");
        goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

typedef enum send_mode { SEND_WHOLE, SEND_STREAM, SEND_ASYNC } send_mode;

/* A background run is stored before it is acknowledged, one row per input
 * (mg_pending_add), in order; each row goes in the transaction of its
 * input's first event (runner.c). Each row holds its input, its index and
 * the count, the run's settings, and (after the first) the run's id, which
 * is the first row's. So at a restart the rows of a run that are left are
 * its inputs not yet started, and a run whose last row is missing was never
 * wholly stored, so never acknowledged: it is dropped. */
static char *pending_text(const srv_turn_request *req, json_t *input, size_t index, size_t count)
{
    json_t *obj = json_pack("{s:{s:O, s:O}, s:I, s:I, s:i, s:b, s:O?}", "input", "role",
                            json_object_get(input, "role"), "text", json_object_get(input, "text"),
                            "index", (json_int_t)index, "count", (json_int_t)count, "max_steps",
                            req->max_steps, "use_assistant_message", req->use_assistant_message,
                            "only_types", req->only_types);
    if (index) json_object_set_new(obj, "run", json_string(req->pending));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

static void drop_rows(mg_store *store, json_t *inputs)
{
    mg_error ignored;
    size_t i;
    json_t *in;
    json_array_foreach(inputs, i, in)
    {
        const char *uuid = json_string_value(json_object_get(in, "pending"));
        if (uuid) mg_pending_remove(store, uuid, &ignored);
    }
}

/* Stores every input of `req` and marks each with its row's uuid. */
static mg_status store_inputs(mg_store *store, const char *agent_id, srv_turn_request *req,
                              mg_error *err)
{
    size_t count = json_array_size(req->inputs), i;
    json_t *in;
    json_array_foreach(req->inputs, i, in)
    {
        char *text = pending_text(req, in, i, count), *id = NULL;
        mg_status st = mg_pending_add(store, agent_id, "run", text, &id, err);
        free(text);
        if (st) {
            drop_rows(store, req->inputs);
            return st;
        }
        const char *uuid = id + strlen("run-");
        if (i == 0) snprintf(req->pending, sizeof req->pending, "%s", uuid);
        json_object_set_new(in, "pending", json_string(uuid));
        mg_free(id);
    }
    return MG_OK;
}

/* The stored rows gathered into runs: {run uuid: {"agent_id", "settings"
 * (the first row left), "inputs", "complete"}}, and the uuids in order. */
static json_t *gather_rows(mg_store *store, json_t *rows, json_t *order)
{
    json_t *runs = json_object();
    mg_error ignored;
    size_t i;
    json_t *p;
    json_array_foreach(rows, i, p)
    {
        const char *uuid = json_string_value(json_object_get(p, "id"));
        json_t *row = json_loads(json_string_value(json_object_get(p, "request")), 0, NULL);
        json_t *input = json_object_get(row, "input");
        json_int_t index = json_integer_value(json_object_get(row, "index"));
        json_int_t count = json_integer_value(json_object_get(row, "count"));
        const char *run = index ? json_string_value(json_object_get(row, "run")) : uuid;
        if (!json_is_string(json_object_get(input, "text")) || index < 0 || index >= count ||
            !run) {
            mg_pending_remove(store, uuid, &ignored); /* not ours to read: never runnable */
            json_decref(row);
            continue;
        }
        json_t *entry = json_object_get(runs, run);
        if (!entry) {
            entry = json_pack("{s:O, s:O, s:[], s:b}", "agent_id", json_object_get(p, "agent_id"),
                              "settings", row, "inputs", "complete", 0);
            json_object_set_new(runs, run, entry);
            json_array_append_new(order, json_string(run));
        }
        json_object_set_new(input, "pending", json_string(uuid));
        json_array_append(json_object_get(entry, "inputs"), input);
        if (index == count - 1) json_object_set_new(entry, "complete", json_true());
        json_decref(row);
    }
    return runs;
}

int srv_resume_pending(srv *s, mg_store *store)
{
    mg_error err = {0};
    char *text;
    json_t *rows = srv_json_of(mg_pending_list(store, &text, &err), &text);
    json_t *order = json_array();
    json_t *runs = gather_rows(store, rows, order);
    int n = 0;
    size_t i;
    json_t *uuid;
    json_array_foreach(order, i, uuid)
    {
        json_t *entry = json_object_get(runs, json_string_value(uuid));
        json_t *settings = json_object_get(entry, "settings");
        if (!json_is_true(json_object_get(entry, "complete"))) {
            drop_rows(store, json_object_get(entry, "inputs"));
            continue;
        }
        json_t *types = json_object_get(settings, "only_types");
        srv_turn_request req = {
            .inputs = json_incref(json_object_get(entry, "inputs")),
            .max_steps = (int)json_integer_value(json_object_get(settings, "max_steps")),
            .use_assistant_message =
                json_is_true(json_object_get(settings, "use_assistant_message")),
            .background = 1,
            .recovered = 1,
            .only_types = json_is_array(types) ? json_incref(types) : NULL};
        snprintf(req.pending, sizeof req.pending, "%s", json_string_value(uuid));
        srv_run *run;
        if (!srv_runner_submit(s->runner, json_string_value(json_object_get(entry, "agent_id")),
                               &req, &run, &err)) {
            srv_run_unref(run);
            n++;
        }
        json_decref(req.inputs);
        json_decref(req.only_types);
    }
    json_decref(runs);
    json_decref(order);
    json_decref(rows);
    return n;
}

static void send_turn(srv_request *q, srv_reply *r, send_mode mode)
{
    if (srv_check_id(r, q->params[0], "agent", "agent_id")) return;
    json_t *body = srv_body_object(q, r, 0);
    if (!body) return;
    srv_turn_request req = {.use_assistant_message = 1, .background = mode == SEND_ASYNC};
    int streaming = mode == SEND_STREAM, pings = 1;
    json_t *types = NULL;
    if (srv_field_int(r, body, "max_steps", 1, MAX_STEPS, &req.max_steps) ||
        srv_field_bool(r, body, "use_assistant_message", &req.use_assistant_message) ||
        (mode == SEND_WHOLE && srv_field_bool(r, body, "streaming", &streaming)) ||
        srv_field_bool(r, body, "stream_tokens", &req.stream_tokens) ||
        srv_field_bool(r, body, "include_pings", &pings) ||
        srv_field_strings(r, body, "include_return_message_types", &types) ||
        !(req.inputs = read_inputs(r, body))) {
        json_decref(body);
        return;
    }
    /* The agent must exist before anything is queued. */
    mg_error err = {0};
    if (srv_check_agent(q, r, 0)) {
        json_decref(req.inputs);
        json_decref(body);
        return;
    }
    if (!streaming) req.stream_tokens = 0;
    req.stream = req.stream_tokens;
    req.only_types = json_incref(types);
    /* Stored before it is acknowledged: a crash cannot lose it. */
    if (mode == SEND_ASYNC && store_inputs(q->store, q->params[0], &req, &err)) {
        srv_reply_status(r, &err);
        json_decref(req.inputs);
        json_decref(req.only_types);
        json_decref(body);
        return;
    }
    json_t *stored = mode == SEND_ASYNC ? json_deep_copy(req.inputs) : NULL;
    srv_run *run;
    mg_status st = srv_runner_submit(q->srv->runner, q->params[0], &req, &run, &err);
    json_decref(req.inputs);
    json_decref(req.only_types);
    json_decref(body);
    if (st && stored) drop_rows(q->store, stored);
    json_decref(stored);
    if (st == MG_ERR_TOO_LARGE) {
        srv_reply_error(r, 429, "%s", err.message);
        r->retry_after = 1;
        return;
    }
    if (st) {
        srv_reply_error(r, 503, "%s", err.message);
        r->retry_after = 1;
        return;
    }
    if (mode == SEND_ASYNC) {
        srv_reply_json(r, 200, srv_run_json(run));
        srv_run_unref(run);
    } else if (streaming) {
        srv_reply_sse(r, run, pings);
    } else {
        json_t *answer = srv_run_response(run);
        json_t *run_json = srv_run_json(run);
        const char *status = json_string_value(json_object_get(run_json, "status"));
        if (status && strcmp(status, "failed") == 0)
            srv_reply_error(
                r, 502, "the turn failed: %s",
                json_string_value(json_object_get(json_object_get(run_json, "metadata"), "error")));
        else
            srv_reply_json(r, 200, json_incref(answer));
        json_decref(answer);
        json_decref(run_json);
        srv_run_unref(run);
    }
}

void srv_messages_send(srv_request *q, srv_reply *r)
{
    send_turn(q, r, SEND_WHOLE);
}

void srv_messages_stream(srv_request *q, srv_reply *r)
{
    send_turn(q, r, SEND_STREAM);
}

void srv_messages_async(srv_request *q, srv_reply *r)
{
    send_turn(q, r, SEND_ASYNC);
}

void srv_messages_cancel(srv_request *q, srv_reply *r)
{
    if (srv_check_agent(q, r, 0)) return;
    json_t *ids = srv_runner_cancel(q->srv->runner, q->params[0]);
    srv_reply_json(r, 200, json_pack("{s:o}", "cancelled_run_ids", ids));
}

/* ------------------------------------------------- window and summary */

static mg_status reset_window(mg_store *store, mg_agent *agent, void *ctx, mg_error *err)
{
    return mg_agent_pop(agent, INT_MAX, err);
}

void srv_messages_reset(srv_request *q, srv_reply *r)
{
    if (srv_check_agent(q, r, 0)) return;
    mg_error err = {0};
    mg_status st = srv_runner_call(q->srv->runner, q->params[0], reset_window, NULL, &err);
    /* An empty window has nothing to pop: that is a reset too. */
    if (st && st != MG_ERR_USAGE) {
        srv_reply_status(r, &err);
        return;
    }
    srv_agent_get(q, r);
}

typedef struct summary_ctx {
    int before, after;
    char *summary;
} summary_ctx;

static int in_context(mg_agent *agent)
{
    char *text;
    mg_error err;
    json_t *d = srv_json_of(mg_agent_describe(agent, &text, &err), &text);
    int n = (int)json_integer_value(json_object_get(d, "in_context"));
    json_decref(d);
    return n;
}

static mg_status summarize(mg_store *store, mg_agent *agent, void *p, mg_error *err)
{
    summary_ctx *ctx = p;
    ctx->before = in_context(agent);
    mg_status st = mg_agent_summarize(agent, NULL, NULL, err);
    if (st) return st;
    ctx->after = in_context(agent);
    char *text;
    json_t *parts = srv_json_of(mg_context_text_json(agent, &text, err), &text);
    ctx->summary = strdup(parts ? json_string_value(json_object_get(parts, "summary_text")) : "");
    json_decref(parts);
    return MG_OK;
}

void srv_agent_summarize(srv_request *q, srv_reply *r)
{
    if (srv_check_agent(q, r, 0)) return;
    summary_ctx ctx = {0, 0, NULL};
    mg_error err = {0};
    if (srv_runner_call(q->srv->runner, q->params[0], summarize, &ctx, &err)) {
        srv_reply_status(r, &err);
        return;
    }
    srv_reply_json(r, 200,
                   json_pack("{s:s, s:i, s:i}", "summary", ctx.summary ? ctx.summary : "",
                             "num_messages_before", ctx.before, "num_messages_after", ctx.after));
    free(ctx.summary);
}
