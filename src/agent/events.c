/*
 * events.c - the event queue, and events as JSON lines.
 *
 * The queue holds a step's events until the step is committed. Streaming
 * previews (MG_EVENT_ASSISTANT_DELTA) and the notice that a stream broke off
 * never enter it: loop.c hands them to the caller at once.
 */
#include "agent/events.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/timeutil.h"

static char *dup_or_null(const char *s)
{
    return s ? mg_xstrdup(s) : NULL;
}

mg_event *evq_push(mg_event_queue *q, const mg_event *ev)
{
    if (q->count == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 8;
        q->items = mg_xrealloc(q->items, (size_t)q->cap * sizeof *q->items);
    }
    mg_event *e = &q->items[q->count++];
    *e = *ev;
    e->text = dup_or_null(ev->text);
    e->tool_name = dup_or_null(ev->tool_name);
    e->tool_args = dup_or_null(ev->tool_args);
    e->tool_call_id = dup_or_null(ev->tool_call_id);
    e->message_id = dup_or_null(ev->message_id);
    if (!e->time_ms) e->time_ms = mg_now_ms();
    return e;
}

void evq_text(mg_event_queue *q, mg_event_type type, const char *text)
{
    mg_event ev = {.type = type, .text = text};
    evq_push(q, &ev);
}

void evq_clear(mg_event_queue *q)
{
    for (int i = 0; i < q->count; i++) {
        free((char *)q->items[i].text);
        free((char *)q->items[i].tool_name);
        free((char *)q->items[i].tool_args);
        free((char *)q->items[i].tool_call_id);
        free((char *)q->items[i].message_id);
    }
    q->count = 0;
}

void evq_deliver(mg_event_queue *q, mg_event_fn on_event, void *user)
{
    for (int i = 0; on_event && i < q->count; i++)
        on_event(&q->items[i], user);
    evq_clear(q);
}

void evq_free(mg_event_queue *q)
{
    evq_clear(q);
    free(q->items);
    memset(q, 0, sizeof *q);
}

const char *mg_event_type_name(mg_event_type type)
{
    switch (type) {
    case MG_EVENT_REASONING:
        return "reasoning_message";
    case MG_EVENT_TOOL_CALL:
        return "tool_call_message";
    case MG_EVENT_TOOL_RETURN:
        return "tool_return_message";
    case MG_EVENT_ASSISTANT:
        return "assistant_message";
    case MG_EVENT_SYSTEM:
        return "system_message";
    case MG_EVENT_USAGE:
        return "usage_statistics";
    case MG_EVENT_ASSISTANT_DELTA:
        return "assistant_message_delta";
    }
    return "unknown";
}

static void set_string(json_t *obj, const char *key, const char *value)
{
    if (value) json_object_set_new(obj, key, json_string(value));
}

char *mg_event_to_json(const mg_event *ev)
{
    char when[32];
    mg_time_iso(ev->time_ms, when, sizeof when);
    json_t *obj =
        json_pack("{s:s, s:s}", "message_type", mg_event_type_name(ev->type), "date", when);
    set_string(obj, "id", ev->message_id);
    switch (ev->type) {
    case MG_EVENT_REASONING:
        set_string(obj, "reasoning", ev->text);
        break;
    case MG_EVENT_ASSISTANT:
        set_string(obj, "content", ev->text);
        set_string(obj, "tool_call_id", ev->tool_call_id);
        break;
    case MG_EVENT_ASSISTANT_DELTA:
        set_string(obj, "delta", ev->text);
        set_string(obj, "tool_call_id", ev->tool_call_id);
        break;
    case MG_EVENT_SYSTEM:
        set_string(obj, "content", ev->text);
        break;
    case MG_EVENT_TOOL_CALL: {
        json_t *call = json_object();
        set_string(call, "name", ev->tool_name);
        set_string(call, "arguments", ev->tool_args);
        set_string(call, "tool_call_id", ev->tool_call_id);
        json_object_set_new(obj, "tool_call", call);
        break;
    }
    case MG_EVENT_TOOL_RETURN:
        set_string(obj, "name", ev->tool_name);
        set_string(obj, "tool_call_id", ev->tool_call_id);
        set_string(obj, "tool_return", ev->text);
        json_object_set_new(obj, "status", json_string(ev->tool_ok ? "success" : "error"));
        break;
    case MG_EVENT_USAGE:
        json_object_set_new(obj, "prompt_tokens", json_integer(ev->prompt_tokens));
        json_object_set_new(obj, "completion_tokens", json_integer(ev->completion_tokens));
        json_object_set_new(obj, "total_tokens",
                            json_integer(ev->prompt_tokens + ev->completion_tokens));
        json_object_set_new(obj, "step_count", json_integer(ev->step_count));
        set_string(obj, "stop_reason", ev->stop_reason);
        /* Only providers that report them (reasoning models, prompt caches). */
        if (ev->reasoning_tokens > 0)
            json_object_set_new(obj, "reasoning_tokens", json_integer(ev->reasoning_tokens));
        if (ev->cached_tokens > 0)
            json_object_set_new(obj, "cached_tokens", json_integer(ev->cached_tokens));
        break;
    }
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return s;
}
