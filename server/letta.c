/*
 * letta.c - our objects in Letta's shapes (see letta.h for the mapping).
 */
#include "server/letta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SEND_MESSAGE   "send_message"
#define OFFLINE_HANDLE "memgpt/offline"
#define OFFLINE_DIM    384

void letta_date(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", day, (int)(ms % 1000));
}

static json_t *date_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char d[32];
    letta_date((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, d);
    return json_string(d);
}

static json_t *date_of(json_t *ms)
{
    char d[32];
    letta_date(json_integer_value(ms), d);
    return json_string(d);
}

/* The provider part of a handle ("openai/gpt-4o" -> "openai"). */
static json_t *handle_provider(const char *handle)
{
    const char *slash = strchr(handle, '/');
    return slash ? json_stringn(handle, (size_t)(slash - handle)) : json_string(handle);
}

static const char *handle_model(const char *handle)
{
    const char *slash = strchr(handle, '/');
    return slash ? slash + 1 : handle;
}

json_t *letta_llm_config(const char *model, int context_window)
{
    return json_pack("{s:s, s:o, s:i, s:s, s:o, s:b, s:n}", "model", handle_model(model),
                     "model_endpoint_type", handle_provider(model), "context_window",
                     context_window, "handle", model, "provider_name", handle_provider(model),
                     "put_inner_thoughts_in_kwargs", 0, "max_tokens");
}

json_t *letta_embedding_config(const char *embedder)
{
    if (strncmp(embedder, "openai/", 7) == 0)
        return json_pack("{s:s, s:s, s:i, s:s, s:i}", "embedding_endpoint_type", "openai",
                         "embedding_model", embedder + 7, "embedding_dim", 1536, "handle", embedder,
                         "embedding_chunk_size", 300);
    /* The built-in embedder has no endpoint: it runs in the process. */
    return json_pack("{s:s, s:s, s:i, s:s, s:n, s:i}", "embedding_endpoint_type", "local",
                     "embedding_model", "offline", "embedding_dim", OFFLINE_DIM, "handle",
                     OFFLINE_HANDLE, "embedding_endpoint", "embedding_chunk_size", 300);
}

const char *letta_embedder_spec(const char *handle)
{
    if (!handle) return NULL;
    if (strcmp(handle, OFFLINE_HANDLE) == 0 || strcmp(handle, "offline") == 0) return "offline";
    if (strncmp(handle, "openai/", 7) == 0 && handle[7]) return handle;
    return NULL;
}

json_t *letta_block(json_t *b)
{
    return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:{}, s:b, s:[]}", "id",
                     json_object_get(b, "id"), "label", json_object_get(b, "label"), "value",
                     json_object_get(b, "value"), "limit", json_object_get(b, "limit"),
                     "description", json_object_get(b, "description"), "read_only",
                     json_object_get(b, "read_only"), "metadata", "is_template", 0, "tags");
}

json_t *letta_passage(json_t *p, const char *embedder)
{
    return json_pack("{s:O, s:O, s:O, s:o, s:o, s:n, s:o, s:{}}", "id", json_object_get(p, "id"),
                     "text", json_object_get(p, "text"), "tags", json_object_get(p, "tags"),
                     "created_at", date_of(json_object_get(p, "time_ms")), "updated_at",
                     date_of(json_object_get(p, "time_ms")), "embedding", "embedding_config",
                     letta_embedding_config(embedder), "metadata");
}

/* Formats 128 bits as a UUID4 (version 4, variant 10). */
static void format_uuid4(uint64_t hi, uint64_t lo, const char *prefix, char out[64])
{
    hi = (hi & ~(uint64_t)0xf000) | 0x4000;
    lo = (lo & ~((uint64_t)3 << 62)) | ((uint64_t)2 << 62);
    snprintf(out, 64, "%s-%08llx-%04llx-%04llx-%04llx-%012llx", prefix,
             (unsigned long long)(hi >> 32), (unsigned long long)(hi >> 16 & 0xffff),
             (unsigned long long)(hi & 0xffff), (unsigned long long)(lo >> 48),
             (unsigned long long)(lo & 0xffffffffffffULL));
}

void letta_random_id(const char *prefix, char out[64])
{
    uint64_t r[2] = {0, 0};
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom((char *)r + got, sizeof r - got, 0);
        if (n > 0) got += (size_t)n;
    }
    format_uuid4(r[0], r[1], prefix, out);
}

/* Two FNV-1a hashes of `a` then `b`, as a UUID4 with `prefix`. */
static void hashed_id(const char *a, const char *b, const char *prefix, char out[64])
{
    uint64_t h1 = 1469598103934665603ULL, h2 = 0x9e3779b97f4a7c15ULL;
    for (const char *parts[] = {a, b}, **p = parts; p < parts + 2; p++)
        for (const char *c = *p ? *p : ""; *c; c++) {
            h1 = (h1 ^ (unsigned char)*c) * 1099511628211ULL;
            h2 = (h2 ^ (unsigned char)*c) * 1099511628211ULL;
        }
    format_uuid4(h1, h2, prefix, out);
}

json_t *letta_tool(json_t *schema)
{
    const char *name = json_string_value(json_object_get(schema, "name"));
    json_t *server = json_object_get(schema, "mcp_server");
    json_t *plain = json_deep_copy(schema);
    json_object_del(plain, "mcp_server");
    char id[64];
    if (server) {
        /* An MCP tool: the same server and name give the same id. */
        const char *server_id = json_string_value(json_object_get(server, "id"));
        const char *server_name = json_string_value(json_object_get(server, "name"));
        hashed_id(server_id, name, "tool", id);
        char tag[96];
        snprintf(tag, sizeof tag, "mcp:%s", server_name ? server_name : "");
        return json_pack("{s:s, s:s?, s:O?, s:s, s:s, s:[s], s:o, s:n, s:i, s:{s:{s:s?, "
                         "s:s?}}}",
                         "id", id, "name", name, "description",
                         json_object_get(schema, "description"), "tool_type", "external_mcp",
                         "source_type", "json", "tags", tag, "json_schema", plain, "source_code",
                         "return_char_limit", 50000, "metadata_", "mcp", "server_name", server_name,
                         "server_id", server_id);
    }
    /* The built-in functions' ids never change: hashes of the name. */
    hashed_id(name, NULL, "tool", id);
    if (json_is_true(json_object_get(plain, "python"))) {
        /* An Agent File's Python tool, allowed to run. */
        json_object_del(plain, "python");
        hashed_id("python:", name, "tool", id);
        return json_pack("{s:s, s:s?, s:O?, s:s, s:s, s:[], s:o, s:n, s:i}", "id", id, "name", name,
                         "description", json_object_get(schema, "description"), "tool_type",
                         "custom", "source_type", "python", "tags", "json_schema", plain,
                         "source_code", "return_char_limit", 50000);
    }
    return json_pack("{s:s, s:s?, s:O?, s:s, s:s, s:[s], s:o, s:n, s:i}", "id", id, "name", name,
                     "description", json_object_get(schema, "description"), "tool_type",
                     "letta_core", "source_type", "json", "tags", "memgpt", "json_schema", plain,
                     "source_code", "return_char_limit", 50000);
}

/* The common header of every Letta message. */
static json_t *message_base(const char *type, const char *id, json_t *date)
{
    return json_pack("{s:s, s:s, s:o}", "message_type", type, "id", id, "date", date);
}

static json_t *tool_call_message(const char *id, json_t *date, const char *name,
                                 const char *arguments, const char *call_id)
{
    json_t *m = message_base("tool_call_message", id, date);
    json_t *call = json_pack("{s:s, s:s, s:s}", "name", name ? name : "", "arguments",
                             arguments ? arguments : "", "tool_call_id", call_id ? call_id : "");
    json_object_set(m, "tool_call", call);
    json_object_set_new(m, "tool_calls", json_pack("[o]", call));
    return m;
}

static json_t *tool_return_message(const char *id, json_t *date, const char *name, const char *text,
                                   int ok, const char *call_id)
{
    json_t *m = message_base("tool_return_message", id, date);
    const char *status = ok ? "success" : "error";
    json_object_set_new(m, "tool_return", json_string(text ? text : ""));
    json_object_set_new(m, "status", json_string(status));
    json_object_set_new(m, "tool_call_id", json_string(call_id ? call_id : ""));
    json_object_set_new(m, "name", name ? json_string(name) : json_null());
    json_object_set_new(m, "tool_returns",
                        json_pack("[{s:s, s:s, s:s}]", "tool_call_id", call_id ? call_id : "",
                                  "status", status, "tool_return", text ? text : ""));
    return m;
}

static json_t *text_message(const char *type, const char *key, const char *id, json_t *date,
                            const char *text)
{
    json_t *m = message_base(type, id, date);
    json_object_set_new(m, key, json_string(text ? text : ""));
    if (strcmp(type, "reasoning_message") == 0)
        json_object_set_new(m, "source", json_string("non_reasoner_model"));
    return m;
}

/* The text a runtime event's envelope carries for people: its message or
 * reason, else the envelope itself. */
static const char *envelope_text(json_t *env, const char *raw)
{
    const char *t = json_string_value(json_object_get(env, "message"));
    if (!t) t = json_string_value(json_object_get(env, "reason"));
    return t ? t : raw;
}

/* A function call's "message" argument, for send_message. */
static char *call_message(const char *arguments)
{
    json_t *args = json_loads(arguments ? arguments : "", 0, NULL);
    const char *t = json_string_value(json_object_get(args, "message"));
    char *out = strdup(t ? t : (arguments ? arguments : ""));
    json_decref(args);
    return out;
}

void letta_messages_of_row(json_t *row, int use_assistant, json_t *out)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    const char *role = json_string_value(json_object_get(row, "role"));
    const char *kind = json_string_value(json_object_get(row, "kind"));
    const char *content = json_string_value(json_object_get(row, "content"));
    json_t *ms = json_object_get(row, "time_ms");
    if (!id || !role) return;
    if (strcmp(role, "user") == 0) {
        json_t *env = json_loads(content ? content : "", 0, NULL);
        const char *text = envelope_text(env, content);
        if (kind && strcmp(kind, "user_message") == 0)
            json_array_append_new(out,
                                  text_message("user_message", "content", id, date_of(ms), text));
        else
            json_array_append_new(
                out, text_message("system_message", "content", id, date_of(ms), content));
        json_decref(env);
        return;
    }
    if (strcmp(role, "tool") == 0) {
        const char *name = json_string_value(json_object_get(row, "tool_name"));
        if (use_assistant && name && strcmp(name, SEND_MESSAGE) == 0) return;
        int ok = !(content && strncmp(content, "Failed", 6) == 0);
        json_array_append_new(
            out, tool_return_message(id, date_of(ms), name, content, ok,
                                     json_string_value(json_object_get(row, "tool_call_id"))));
        return;
    }
    json_t *calls = json_object_get(row, "tool_calls");
    if (content && *content)
        json_array_append_new(
            out, text_message("reasoning_message", "reasoning", id, date_of(ms), content));
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call)
    {
        const char *name = json_string_value(json_object_get(call, "name"));
        const char *args = json_string_value(json_object_get(call, "arguments"));
        const char *call_id = json_string_value(json_object_get(call, "id"));
        if (use_assistant && name && strcmp(name, SEND_MESSAGE) == 0) {
            char *text = call_message(args);
            json_array_append_new(
                out, text_message("assistant_message", "content", id, date_of(ms), text));
            free(text);
        } else {
            json_array_append_new(out, tool_call_message(id, date_of(ms), name, args, call_id));
        }
    }
    if (json_array_size(calls) == 0 && content && *content)
        json_array_append_new(
            out, text_message("assistant_message", "content", id, date_of(ms), content));
}

static int is_send_message(const mg_event *ev)
{
    return ev->tool_name && strcmp(ev->tool_name, SEND_MESSAGE) == 0;
}

/* Events without a stored message (notices) get an id of their own. */
static void event_id(const mg_event *ev, char out[64])
{
    if (ev->message_id)
        snprintf(out, 64, "%s", ev->message_id);
    else
        letta_random_id("message", out);
}

static json_t *letta_event_unfiltered(letta_stream *s, const mg_event *ev);

int letta_type_wanted(json_t *only_types, const char *type)
{
    if (!only_types) return 1;
    size_t i;
    json_t *t;
    json_array_foreach(only_types, i, t) if (json_string_value(t) &&
                                             strcmp(json_string_value(t), type) == 0) return 1;
    return 0;
}

json_t *letta_event(letta_stream *s, const mg_event *ev)
{
    json_t *m = letta_event_unfiltered(s, ev);
    if (m &&
        !letta_type_wanted(s->only_types, json_string_value(json_object_get(m, "message_type")))) {
        json_decref(m);
        m = NULL;
    }
    return m;
}

static json_t *letta_event_unfiltered(letta_stream *s, const mg_event *ev)
{
    char id[64];
    event_id(ev, id);
    json_t *date = date_now();
    switch (ev->type) {
    case MG_EVENT_REASONING:
        return text_message("reasoning_message", "reasoning", id, date, ev->text);
    case MG_EVENT_TOOL_CALL:
        if (s->use_assistant_message && is_send_message(ev)) break;
        return tool_call_message(id, date, ev->tool_name, ev->tool_args, ev->tool_call_id);
    case MG_EVENT_TOOL_RETURN:
        if (s->use_assistant_message && is_send_message(ev)) break;
        return tool_return_message(id, date, ev->tool_name, ev->text, ev->tool_ok,
                                   ev->tool_call_id);
    case MG_EVENT_ASSISTANT:
        /* A send_message reply is a tool call without use_assistant_message. */
        if (!s->use_assistant_message && ev->tool_call_id) break;
        /* Its pieces went out already, under the same id. */
        if (s->delta_ids && json_object_get(s->delta_ids, id)) break;
        return text_message("assistant_message", "content", id, date, ev->text);
    case MG_EVENT_ASSISTANT_DELTA:
        if (!s->stream_tokens || !s->use_assistant_message || !ev->text || !*ev->text) break;
        if (s->delta_ids) json_object_set_new(s->delta_ids, id, json_true());
        return text_message("assistant_message", "content", id, date, ev->text);
    case MG_EVENT_SYSTEM:
        return text_message("system_message", "content", id, date, ev->text);
    case MG_EVENT_USAGE:
        break;
    }
    json_decref(date);
    return NULL;
}

json_t *letta_stop_reason(const char *reason)
{
    return json_pack("{s:s, s:s}", "message_type", "stop_reason", "stop_reason", reason);
}

json_t *letta_usage(const mg_event *u)
{
    json_t *m = json_pack(
        "{s:s, s:i, s:i, s:i, s:i}", "message_type", "usage_statistics", "completion_tokens",
        u ? u->completion_tokens : 0, "prompt_tokens", u ? u->prompt_tokens : 0, "total_tokens",
        u ? u->prompt_tokens + u->completion_tokens : 0, "step_count", u ? u->step_count : 0);
    if (u && u->reasoning_tokens)
        json_object_set_new(m, "reasoning_tokens", json_integer(u->reasoning_tokens));
    if (u && u->cached_tokens)
        json_object_set_new(m, "cached_input_tokens", json_integer(u->cached_tokens));
    return m;
}

/* The ids of the messages in the agent's window, oldest first. */
static json_t *context_message_ids(mg_agent *agent, mg_error *err)
{
    json_t *ids = json_array();
    mg_page page = {.limit = 1000};
    char last[64] = "";
    for (;;) {
        char *text;
        page.after = last[0] ? last : NULL;
        if (mg_messages_page(agent, &page, 1, &text, err)) {
            json_decref(ids);
            return NULL;
        }
        json_t *rows = json_loads(text, 0, NULL);
        mg_free(text);
        size_t i, n = json_array_size(rows);
        json_t *row;
        json_array_foreach(rows, i, row) json_array_append(ids, json_object_get(row, "id"));
        if (n)
            snprintf(last, sizeof last, "%s",
                     json_string_value(json_object_get(json_array_get(rows, n - 1), "id")));
        json_decref(rows);
        if (n < (size_t)page.limit) return ids;
    }
}

static json_t *load_json(mg_status st, char **text)
{
    json_t *v = st ? NULL : json_loads(*text, 0, NULL);
    if (!st) mg_free(*text);
    return v;
}

json_t *letta_agent_state(mg_agent *agent, mg_error *err)
{
    char *text;
    json_t *desc = load_json(mg_agent_describe(agent, &text, err), &text);
    json_t *blocks = load_json(mg_memory_json(agent, &text, err), &text);
    json_t *tools = load_json(mg_agent_tools_json(agent, &text, err), &text);
    json_t *parts = load_json(mg_context_text_json(agent, &text, err), &text);
    json_t *ids = desc && blocks && tools && parts ? context_message_ids(agent, err) : NULL;
    json_t *state = NULL;
    if (ids) {
        json_t *letta_blocks = json_array(), *letta_tools = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(blocks, i, v) json_array_append_new(letta_blocks, letta_block(v));
        json_array_foreach(tools, i, v) json_array_append_new(letta_tools, letta_tool(v));
        const char *model = json_string_value(json_object_get(desc, "model"));
        const char *embedder = json_string_value(json_object_get(desc, "embedder"));
        int window = (int)json_integer_value(json_object_get(desc, "context_window"));
        json_t *created = json_object_get(desc, "created_at");
        json_t *settings = json_object_get(desc, "settings");
        json_t *embedding = letta_embedding_config(embedder);
        state = json_pack(
            "{s:O, s:O, s:O, s:s, s:o, s:o, s:s, s:O, s:{s:O}, s:O, s:O, s:[], s:O, s:O?, "
            "s:O?, s:o, s:O, s:O, s:O, s:O, s:O, s:O}",
            "id", json_object_get(desc, "id"), "name", json_object_get(desc, "name"), "system",
            json_object_get(parts, "instructions"), "agent_type", "memgpt_agent", "llm_config",
            letta_llm_config(model, window), "embedding_config", embedding, "model", model,
            "embedding", json_object_get(embedding, "handle"), "memory", "blocks", letta_blocks,
            "blocks", letta_blocks, "tools", letta_tools, "sources", "tags",
            json_object_get(desc, "tags"), "description", json_object_get(desc, "description"),
            "metadata", json_object_get(desc, "metadata"), "message_ids", ids, "created_at",
            created, "updated_at", created, "tool_rules", json_object_get(desc, "tool_rules"),
            "step_limit", json_object_get(settings, "step_limit"), "context_window",
            json_object_get(desc, "context_window"), "settings", settings);
        /* Our own settings beside the Letta ones; the tools' variables by
         * name only (Letta's secrets; values never leave the library). */
        json_t *mine = json_object_get(state, "settings");
        if (json_is_object(mine))
            json_object_set(mine, "python_tools", json_object_get(desc, "python_tools"));
        json_t *secrets = json_array();
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(desc, "tool_env"), key, value)
            json_array_append_new(secrets, json_pack("{s:s, s:O, s:O}", "key", key, "value", value,
                                                     "agent_id", json_object_get(desc, "id")));
        json_object_set_new(state, "secrets", secrets);
        json_decref(letta_blocks);
        json_decref(letta_tools);
    }
    json_decref(desc);
    json_decref(blocks);
    json_decref(tools);
    json_decref(parts);
    return state;
}
