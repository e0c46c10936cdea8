/*
 * agentfile.c - Agent Files (.af): Letta's format for moving an agent, in
 * and out (see memgpt.h).
 *
 * Import reads the whole document and checks it before storing anything:
 * every reference the file makes (an agent's block_ids and tool_ids, its
 * in_context_message_ids, a function result's call) must resolve inside the
 * file, every field must have its type, blocks must fit their limits and
 * the model must be one we can reach. Then one transaction creates the
 * agent, sets its blocks and inserts its messages through recall's bulk
 * path; any failure rolls all of it back.
 *
 * The mapping, Letta to us (export writes it back):
 *  - agent.system is the system prompt. The system message Letta keeps
 *    first in context (its compiled prompt) is dropped on import, since
 *    ours is rebuilt for every request; export writes one holding the
 *    instructions, where Letta expects it.
 *  - `model` or llm_config.handle is the model handle; context_window_limit
 *    or llm_config.context_window the window.
 *  - Messages: Letta's user messages are JSON envelopes like ours
 *    ({"type": "user_message", "message": ...}; heartbeats and alerts the
 *    same), so they are kept as they are, and plain text is wrapped as a
 *    user_message. Assistant messages are inner monologue plus tool calls,
 *    tool messages function results. A later system message becomes a
 *    system alert.
 *  - Tools are ours by name: the base functions always, and memory_insert,
 *    memory_replace and memory_rethink enabled when the file lists them.
 *    The rest are kept as the file gave them and reported as unavailable.
 *    Tools attached from MCP servers are exported as external_mcp tools,
 *    their servers in "mcp_servers" (secrets hidden); an import reports
 *    them with a note and registers no server, since that would run its
 *    command on the strength of a file.
 *  - The recursive summary, its count and our own settings travel in the
 *    file's metadata ("memgpt.*" keys), so our own files round-trip.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/prompts.h"
#include "context/context.h"
#include "functions/functions.h"
#include "memory/recall.h"
#include "provider/provider.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define AF_MAX_AGENTS        64
#define AF_MAX_LABEL         64
#define AF_LETTA_BLOCK_LIMIT 100000           /* Letta's default block limit */
#define OFFLINE_HANDLE       "memgpt/offline" /* the offline embedder, as a handle */

/* ------------------------------------------------------------ checking */

/* MG_ERR_USAGE with "WHERE: message". */
static mg_status refuse(mg_error *err, const char *where, const char *fmt, ...) MG_PRINTF(3, 4);
static mg_status refuse(mg_error *err, const char *where, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mg_err_set(err, MG_ERR_USAGE, "the Agent File is not valid: %s: %s", where, msg);
}

/* A string field: NULL when absent or null, else it must be a string of
 * valid UTF-8. *bad set on a wrong type. */
static const char *opt_string(json_t *obj, const char *key, const char *where, int *bad,
                              mg_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) {
        char at[200];
        snprintf(at, sizeof at, "%s.%s", where, key);
        refuse(err, at, "must be a string");
        *bad = 1;
        return NULL;
    }
    return json_string_value(v); /* jansson only holds valid UTF-8 */
}

/* An array field: NULL when absent or null; *bad on a wrong type. */
static json_t *opt_array(json_t *obj, const char *key, const char *where, int *bad, mg_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_array(v)) {
        char at[200];
        snprintf(at, sizeof at, "%s.%s", where, key);
        refuse(err, at, "must be a list");
        *bad = 1;
        return NULL;
    }
    return v;
}

/* The object of `list` whose "id" is `id`, or NULL. */
static json_t *by_id(json_t *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *vid = json_string_value(json_object_get(v, "id"));
        if (vid && id && strcmp(vid, id) == 0) return v;
    }
    return NULL;
}

/* The text of a message's content: a string, or the text (and reasoning)
 * parts of a list, joined by newlines. Caller frees. */
static char *content_text(json_t *content)
{
    if (json_is_string(content)) return mg_xstrdup(json_string_value(content));
    buf out = BUF_INIT;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = NULL;
        if (type && strcmp(type, "text") == 0)
            text = json_string_value(json_object_get(part, "text"));
        if (type && strcmp(type, "reasoning") == 0)
            text = json_string_value(json_object_get(part, "reasoning"));
        if (!text || !*text) continue;
        if (out.len) buf_putc(&out, '\n');
        buf_puts(&out, text);
    }
    return buf_take(&out);
}

/* ------------------------------------------------------------- reading */

typedef struct af_block {
    const char *label, *value, *description;
    int limit, read_only;
} af_block;

/* One agent of the file, checked and converted, ready to store. */
typedef struct af_agent {
    const char *file_id;
    char name[AGENT_NAME_MAX + 1];
    const char *system, *description;
    char model[256];
    int window;
    const char *embedder;
    char *tags_json, *metadata_json, *functions_json, *foreign_json, *rules_json, *env_json;
    af_block *blocks;
    int nblocks;
    mg_msg *msgs;
    unsigned char *in_context;
    int nmsgs;
    json_t *unavailable, *notes;
    int nrules;
    const char *summary;
    int64_t summarized;
    json_t *settings; /* our own settings, from a file we wrote */
} af_agent;

static void af_agent_free(af_agent *a)
{
    free(a->tags_json);
    free(a->metadata_json);
    free(a->functions_json);
    free(a->foreign_json);
    free(a->env_json);
    free(a->rules_json);
    free(a->blocks);
    for (int i = 0; i < a->nmsgs; i++)
        mg_msg_clear(&a->msgs[i]);
    free(a->msgs);
    free(a->in_context);
    json_decref(a->unavailable);
    json_decref(a->notes);
    json_decref(a->settings);
}

/* A name we accept (agent_name_valid), made from the file's: control
 * characters become spaces, spaces at the ends go, and it is cut to
 * AGENT_NAME_MAX bytes at a character's end. */
static void clean_name(const char *from, char out[AGENT_NAME_MAX + 1])
{
    from = from ? from : "";
    while (*from == ' ' || ((unsigned char)*from < 0x20 && *from))
        from++;
    size_t n = mg_utf8_cut(from, strlen(from), AGENT_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)from[i] < 0x20 || from[i] == 0x7f ? ' ' : from[i];
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    if (!agent_name_valid(out)) snprintf(out, AGENT_NAME_MAX + 1, "imported");
}

static mg_status read_blocks(json_t *doc, json_t *agent, const char *where, af_agent *a,
                             mg_error *err)
{
    int bad = 0;
    json_t *ids = opt_array(agent, "block_ids", where, &bad, err);
    json_t *inline_blocks = opt_array(agent, "memory_blocks", where, &bad, err);
    if (bad) return MG_ERR_USAGE;
    size_t n = json_array_size(ids) + json_array_size(inline_blocks);
    a->blocks = mg_xcalloc(n ? n : 1, sizeof *a->blocks);
    for (size_t i = 0; i < n; i++) {
        char at[200];
        json_t *b;
        if (i < json_array_size(ids)) {
            const char *id = json_string_value(json_array_get(ids, i));
            snprintf(at, sizeof at, "%s.block_ids[%zu]", where, i);
            if (!id) return refuse(err, at, "must be a string");
            b = by_id(json_object_get(doc, "blocks"), id);
            if (!b) return refuse(err, at, "no block with id '%.64s' in the file", id);
            snprintf(at, sizeof at, "blocks['%.64s']", id);
        } else {
            snprintf(at, sizeof at, "%s.memory_blocks[%zu]", where, i - json_array_size(ids));
            b = json_array_get(inline_blocks, i - json_array_size(ids));
        }
        if (!json_is_object(b)) return refuse(err, at, "must be an object");
        af_block *blk = &a->blocks[a->nblocks++];
        blk->label = opt_string(b, "label", at, &bad, err);
        blk->value = opt_string(b, "value", at, &bad, err);
        blk->description = opt_string(b, "description", at, &bad, err);
        if (bad) return MG_ERR_USAGE;
        if (!blk->label || !*blk->label || strlen(blk->label) > AF_MAX_LABEL)
            return refuse(err, at, "a block needs a label of 1-%d characters", AF_MAX_LABEL);
        if (!blk->value) return refuse(err, at, "a block needs a value");
        for (int k = 0; k < a->nblocks - 1; k++)
            if (strcmp(a->blocks[k].label, blk->label) == 0)
                return refuse(err, at, "the label '%s' is used twice", blk->label);
        json_t *limit = json_object_get(b, "limit"), *ro = json_object_get(b, "read_only");
        if (limit && !json_is_null(limit) &&
            (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
             json_integer_value(limit) > INT_MAX))
            return refuse(err, at, "limit must be a positive integer");
        if (ro && !json_is_null(ro) && !json_is_boolean(ro))
            return refuse(err, at, "read_only must be true or false");
        blk->limit =
            limit && json_is_integer(limit) ? (int)json_integer_value(limit) : AF_LETTA_BLOCK_LIMIT;
        blk->read_only = json_is_true(ro);
        if (mg_utf8_chars(blk->value) > (size_t)blk->limit)
            return refuse(err, at, "the value (%zu characters) is longer than its limit (%d)",
                          mg_utf8_chars(blk->value), blk->limit);
    }
    return MG_OK;
}

static mg_status read_tools(json_t *doc, json_t *agent, const char *where, af_agent *a,
                            mg_error *err)
{
    int bad = 0;
    json_t *ids = opt_array(agent, "tool_ids", where, &bad, err);
    if (bad) return MG_ERR_USAGE;
    json_t *base = mg_functions_schemas(), *enabled = json_array(), *foreign = json_array();
    int python_noted = 0;
    mg_status st = MG_OK;
    size_t i;
    json_t *idv;
    json_array_foreach(ids, i, idv)
    {
        char at[200];
        snprintf(at, sizeof at, "%s.tool_ids[%zu]", where, i);
        const char *id = json_string_value(idv);
        json_t *tool = id ? by_id(json_object_get(doc, "tools"), id) : NULL;
        const char *name = json_string_value(json_object_get(tool, "name"));
        if (!id)
            st = refuse(err, at, "must be a string");
        else if (!json_is_object(tool))
            st = refuse(err, at, "no tool with id '%.64s' in the file", id);
        else if (!name || !*name)
            st = refuse(err, at, "the tool '%.64s' has no name", id);
        if (st) break;
        int ours = 0;
        size_t k;
        json_t *s;
        json_array_foreach(base, k, s) ours |=
            strcmp(json_string_value(json_object_get(s, "name")), name) == 0;
        if (ours) continue;
        if (mg_function_optional(name)) {
            json_array_append_new(enabled, json_string(name));
            continue;
        }
        json_t *kept = json_deep_copy(tool);
        json_object_del(kept, "id");
        json_array_append_new(foreign, kept);
        json_array_append_new(a->unavailable, json_string(name));
        const char *source = json_string_value(json_object_get(tool, "source_type"));
        if (source && strcmp(source, "python") == 0 && !python_noted) {
            python_noted = 1;
            json_array_append_new(a->notes,
                                  json_string("its Python tools are kept but never run until you "
                                              "allow it: memgpt tools enable-python --agent NAME"));
        }
        const char *server = json_string_value(json_object_get(
            json_object_get(json_object_get(tool, "metadata_"), "mcp"), "server_name"));
        if (server) {
            /* Importing never registers a server (that would run its command). */
            char note[300];
            snprintf(note, sizeof note,
                     "'%.64s' is a tool of the MCP server '%.64s': add the server (memgpt mcp "
                     "add) and attach the tool (memgpt tools attach) to offer it",
                     name, server);
            json_array_append_new(a->notes, json_string(note));
        }
    }
    if (!st) {
        a->functions_json = json_dumps(enabled, JSON_COMPACT);
        a->foreign_json = json_dumps(foreign, JSON_COMPACT);
    }
    json_decref(base);
    json_decref(enabled);
    json_decref(foreign);
    return st;
}

/* The time of a message; now when the file has none we can read. */
static int64_t message_time(json_t *m)
{
    const char *when = json_string_value(json_object_get(m, "created_at"));
    int64_t ms;
    mg_error ignored;
    return when && !mg_parse_time(when, 0, &ms, &ignored) ? ms : mg_now_ms();
}

/* A user-role message: kept if it is one of our envelopes, else wrapped. */
static void user_message(const char *text, int64_t time_ms, mg_msg *out)
{
    json_t *env = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(env, "type"));
    if (type && *type && strlen(type) < 64) {
        out->kind = mg_xstrdup(type);
        out->content = mg_xstrdup(text);
    } else {
        char when[64];
        mg_time_human(time_ms, when, sizeof when);
        json_t *wrapped =
            json_pack("{s:s, s:s, s:s}", "type", "user_message", "message", text, "time", when);
        out->kind = mg_xstrdup("user_message");
        out->content = json_dumps(wrapped, JSON_COMPACT);
        json_decref(wrapped);
    }
    json_decref(env);
}

/* The function name of call `call_id`, from the messages before `upto`. */
static const char *call_name(const af_agent *a, int upto, const char *call_id)
{
    for (int i = upto - 1; i >= 0 && call_id; i--)
        for (int c = 0; c < a->msgs[i].ncalls; c++)
            if (strcmp(a->msgs[i].calls[c].id, call_id) == 0) return a->msgs[i].calls[c].name;
    return NULL;
}

static mg_status read_calls(json_t *calls, const char *at, mg_msg *m, mg_error *err)
{
    size_t n = json_array_size(calls);
    if (!n) return MG_OK;
    m->calls = mg_xcalloc(n, sizeof *m->calls);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(calls, i), *fn = json_object_get(c, "function");
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!id || !*id || !name || !*name || !args)
            return refuse(err, at,
                          "tool call %zu needs an id and a function with a name and "
                          "arguments (strings)",
                          i);
        m->calls[m->ncalls].id = mg_xstrdup(id);
        m->calls[m->ncalls].name = mg_xstrdup(name);
        m->calls[m->ncalls].arguments = mg_xstrdup(args);
        m->ncalls++;
    }
    return MG_OK;
}

/* Converts message `m` of the file into a.msgs[a.nmsgs]; returns 0 when
 * it is dropped (the leading system message). */
static mg_status read_message(json_t *m, const char *at, int first_in_context, af_agent *a,
                              int *kept, mg_error *err)
{
    int bad = 0;
    *kept = 0;
    if (!json_is_object(m)) return refuse(err, at, "must be an object");
    const char *role = opt_string(m, "role", at, &bad, err);
    json_t *content = json_object_get(m, "content");
    json_t *calls = opt_array(m, "tool_calls", at, &bad, err);
    const char *call_id = opt_string(m, "tool_call_id", at, &bad, err);
    if (bad) return MG_ERR_USAGE;
    if (!role) return refuse(err, at, "needs a role");
    if (content && !json_is_null(content) && !json_is_string(content) && !json_is_array(content))
        return refuse(err, at, "content must be a string or a list of parts");
    char *text = content_text(content);
    int64_t when = message_time(m);
    mg_msg out = {.time_ms = when};
    mg_status st = MG_OK;
    if (strcmp(role, "system") == 0) {
        if (first_in_context) { /* the compiled system prompt: rebuilt by us */
            free(text);
            return MG_OK;
        }
        mg_msg alert = agent_envelope("system_alert", "message", text);
        out.role = MG_ROLE_USER;
        out.kind = alert.kind;
        out.content = alert.content;
    } else if (strcmp(role, "user") == 0) {
        out.role = MG_ROLE_USER;
        user_message(text, when, &out);
    } else if (strcmp(role, "assistant") == 0) {
        out.role = MG_ROLE_ASSISTANT;
        out.kind = mg_xstrdup("assistant");
        out.content = *text ? mg_xstrdup(text) : NULL;
        st = read_calls(calls, at, &out, err);
    } else if (strcmp(role, "tool") == 0) {
        out.role = MG_ROLE_TOOL;
        out.kind = mg_xstrdup("tool");
        out.content = mg_xstrdup(text);
        const char *name = call_name(a, a->nmsgs, call_id);
        if (!call_id)
            st = refuse(err, at, "a tool message needs a tool_call_id");
        else if (!name)
            st = refuse(err, at, "answers a call ('%.64s') no earlier message made", call_id);
        else {
            out.tool_call_id = mg_xstrdup(call_id);
            out.tool_name = mg_xstrdup(name);
        }
    } else {
        st = refuse(err, at, "role '%.32s' is not one of system, user, assistant, tool", role);
    }
    free(text);
    if (st) {
        mg_msg_clear(&out);
        return st;
    }
    a->msgs[a->nmsgs] = out;
    *kept = 1;
    return MG_OK;
}

/* Every call of an in-context assistant message must be answered in
 * context, or a provider would refuse the request. */
static mg_status check_context_pairs(const af_agent *a, const char *where, mg_error *err)
{
    for (int i = 0; i < a->nmsgs; i++) {
        if (!a->in_context[i]) continue;
        for (int c = 0; c < a->msgs[i].ncalls; c++) {
            int answered = 0;
            for (int j = i + 1; j < a->nmsgs && !answered; j++)
                answered = a->in_context[j] && a->msgs[j].role == MG_ROLE_TOOL &&
                           strcmp(a->msgs[j].tool_call_id, a->msgs[i].calls[c].id) == 0;
            if (!answered)
                return refuse(err, where,
                              "the call '%.64s' in context has no result in context (an "
                              "approval that is still pending cannot be imported)",
                              a->msgs[i].calls[c].id);
        }
        if (a->msgs[i].role == MG_ROLE_TOOL) {
            int asked = 0;
            for (int j = 0; j < i && !asked; j++)
                for (int c = 0; c < a->msgs[j].ncalls && !asked; c++)
                    asked = a->in_context[j] &&
                            strcmp(a->msgs[j].calls[c].id, a->msgs[i].tool_call_id) == 0;
            if (!asked)
                return refuse(err, where,
                              "the result of call '%.64s' is in context but its call "
                              "is not",
                              a->msgs[i].tool_call_id);
        }
    }
    return MG_OK;
}

static mg_status read_messages(json_t *agent, const char *where, af_agent *a, mg_error *err)
{
    int bad = 0;
    json_t *msgs = opt_array(agent, "messages", where, &bad, err);
    json_t *ctx = opt_array(agent, "in_context_message_ids", where, &bad, err);
    if (bad) return MG_ERR_USAGE;
    size_t n = json_array_size(msgs);
    a->msgs = mg_xcalloc(n ? n : 1, sizeof *a->msgs);
    a->in_context = mg_xcalloc(n ? n : 1, 1);
    /* Where each in-context id is in the file: they must be in file order. */
    long last = -1;
    size_t i;
    json_t *idv;
    json_array_foreach(ctx, i, idv)
    {
        char at[200];
        snprintf(at, sizeof at, "%s.in_context_message_ids[%zu]", where, i);
        const char *id = json_string_value(idv);
        long pos = -1;
        for (size_t k = 0; id && k < n && pos < 0; k++) {
            const char *mid = json_string_value(json_object_get(json_array_get(msgs, k), "id"));
            if (mid && strcmp(mid, id) == 0) pos = (long)k;
        }
        if (pos < 0) return refuse(err, at, "no message with id '%.64s' in the file", id ? id : "");
        if (pos <= last) return refuse(err, at, "in-context messages must be in file order");
        last = pos;
    }
    int first_in_context = 1;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        char at[200];
        snprintf(at, sizeof at, "%s.messages[%zu]", where, i);
        const char *id = json_string_value(json_object_get(m, "id"));
        if (!id) return refuse(err, at, "needs an id (a string)");
        int in_context = 0;
        size_t k;
        json_array_foreach(ctx, k, idv) in_context |= strcmp(json_string_value(idv), id) == 0;
        int kept;
        mg_status st = read_message(m, at, in_context && first_in_context, a, &kept, err);
        if (st) return st;
        if (in_context) first_in_context = 0;
        if (kept) a->in_context[a->nmsgs++] = (unsigned char)in_context;
    }
    return check_context_pairs(a, where, err);
}

/* Our own settings and summary, from a file we wrote ("memgpt.*"). */
static void read_our_metadata(json_t *doc, af_agent *a)
{
    json_t *meta = json_object_get(doc, "metadata");
    a->summary = json_string_value(json_object_get(meta, "memgpt.summary"));
    const char *count = json_string_value(json_object_get(meta, "memgpt.summarized_count"));
    a->summarized = count ? strtoll(count, NULL, 10) : 0;
    const char *settings = json_string_value(json_object_get(meta, "memgpt.settings"));
    a->settings = settings ? json_loads(settings, 0, NULL) : NULL;
}

static mg_status read_model(json_t *agent, const char *where, const mg_import_options *o,
                            af_agent *a, mg_error *err)
{
    json_t *llm = json_object_get(agent, "llm_config");
    const char *model =
        o && o->model ? o->model : json_string_value(json_object_get(agent, "model"));
    if (!model) model = json_string_value(json_object_get(llm, "handle"));
    const char *bare = json_string_value(json_object_get(llm, "model"));
    const char *type = json_string_value(json_object_get(llm, "model_endpoint_type"));
    if (model)
        snprintf(a->model, sizeof a->model, "%s", model);
    else if (bare)
        snprintf(a->model, sizeof a->model, "%s/%s", type ? type : "openai", bare);
    else
        snprintf(a->model, sizeof a->model, "openai/gpt-4o-mini");
    mg_error why;
    if (mg_model_handle_check(a->model, &why))
        return refuse(err, where,
                      "its model '%s' cannot be used here (%s); import it with "
                      "another model",
                      a->model, why.message);
    json_t *w = json_object_get(agent, "context_window_limit");
    if (!json_is_integer(w)) w = json_object_get(llm, "context_window");
    if (json_is_integer(w) && json_integer_value(w) > 0 && json_integer_value(w) <= INT_MAX)
        a->window = (int)json_integer_value(w);
    const char *emb = json_string_value(json_object_get(agent, "embedding"));
    if (!emb)
        emb = json_string_value(
            json_object_get(json_object_get(agent, "embedding_config"), "handle"));
    if (o && o->embedder)
        a->embedder = o->embedder;
    else if (emb && strncmp(emb, "openai/", 7) == 0)
        a->embedder = emb;
    else if (!emb || strcmp(emb, OFFLINE_HANDLE) == 0)
        a->embedder = "offline";
    else {
        a->embedder = "offline";
        if (emb) {
            char note[200];
            snprintf(note, sizeof note,
                     "the embedder '%.100s' is not available; passages use "
                     "the offline embedder",
                     emb);
            json_array_append_new(a->notes, json_string(note));
        }
    }
    return MG_OK;
}

/* The variables the agent's tools get: Letta's "secrets" or its older
 * "tool_exec_environment_variables", each an object of strings or a list
 * of {"key", "value"}. A JSON object (caller frees); unreadable entries
 * are left out. */
static char *read_tool_env(json_t *agent)
{
    json_t *env = json_object();
    const char *fields[] = {"tool_exec_environment_variables", "secrets"};
    for (int f = 0; f < 2; f++) {
        json_t *v = json_object_get(agent, fields[f]);
        const char *k;
        json_t *x;
        size_t i;
        json_object_foreach(v, k, x) if (json_is_string(x) && *k && !strchr(k, '='))
            json_object_set(env, k, x);
        json_array_foreach(v, i, x)
        {
            const char *key = json_string_value(json_object_get(x, "key"));
            json_t *value = json_object_get(x, "value");
            if (key && *key && !strchr(key, '=') && json_is_string(value))
                json_object_set(env, key, value);
        }
    }
    char *out = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    return out;
}

static mg_status read_agent(json_t *doc, json_t *agent, size_t index, const mg_import_options *o,
                            af_agent *a, mg_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "agents[%zu]", index);
    a->unavailable = json_array();
    a->notes = json_array();
    if (!json_is_object(agent)) return refuse(err, where, "must be an object");
    int bad = 0;
    a->file_id = opt_string(agent, "id", where, &bad, err);
    const char *name = opt_string(agent, "name", where, &bad, err);
    a->system = opt_string(agent, "system", where, &bad, err);
    a->description = opt_string(agent, "description", where, &bad, err);
    json_t *tags = opt_array(agent, "tags", where, &bad, err);
    json_t *rules = opt_array(agent, "tool_rules", where, &bad, err);
    json_t *meta = json_object_get(agent, "metadata");
    if (bad) return MG_ERR_USAGE;
    if (!a->file_id) return refuse(err, where, "needs an id");
    if (meta && !json_is_null(meta) && !json_is_object(meta))
        return refuse(err, where, "metadata must be an object");
    if (o && o->name && !agent_name_valid(o->name))
        return mg_err_set(err, MG_ERR_USAGE,
                          "'%.64s' is not a valid agent name (use 1-%d bytes of text, without "
                          "control characters or spaces at either end)",
                          o->name, AGENT_NAME_MAX);
    clean_name(o && o->name ? o->name : name, a->name);
    a->tags_json = tags ? json_dumps(tags, JSON_COMPACT) : NULL;
    a->metadata_json = meta && json_is_object(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
    a->rules_json = rules ? json_dumps(rules, JSON_COMPACT) : mg_xstrdup("[]");
    a->nrules = (int)json_array_size(rules);
    a->env_json = read_tool_env(agent);
    mg_status st = read_model(agent, where, o, a, err);
    if (!st) st = read_blocks(doc, agent, where, a, err);
    if (!st) st = read_tools(doc, agent, where, a, err);
    if (!st) st = read_messages(agent, where, a, err);
    read_our_metadata(doc, a);
    return st;
}

/* ------------------------------------------------------------- storing */

/* The agent's name, made unique with a -2, -3... suffix if taken. */
static mg_status unique_name(mg_store *store, const mg_import_options *o, af_agent *a,
                             mg_error *err)
{
    char base[AGENT_NAME_MAX + 1];
    snprintf(base, sizeof base, "%s", a->name);
    for (int n = 2;; n++) {
        int64_t taken;
        sqlite3_stmt *s;
        mg_status st = store_prepare(store, "SELECT count(*) FROM agents WHERE name = ?", &s, err);
        if (st) return st;
        store_bind_text(s, 1, a->name);
        taken = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 1;
        sqlite3_finalize(s);
        if (!taken) return MG_OK;
        if (o && o->name)
            return mg_err_set(err, MG_ERR_EXISTS, "an agent named '%s' already exists", a->name);
        char suffix[16];
        snprintf(suffix, sizeof suffix, "-%d", n);
        size_t keep = mg_utf8_cut(base, strlen(base), AGENT_NAME_MAX - strlen(suffix));
        while (keep && base[keep - 1] == ' ')
            keep--;
        snprintf(a->name, sizeof a->name, "%.*s%s", (int)keep, base, suffix);
    }
}

static mg_status set_blocks(mg_agent *agent, const af_agent *a, mg_error *err)
{
    mg_status st = MG_OK;
    for (int i = 0; i < a->nblocks && !st; i++) {
        const af_block *b = &a->blocks[i];
        st = mg_memory_configure(agent, b->label, b->limit, b->description ? b->description : "",
                                 b->read_only, err);
        if (!st) st = mg_memory_set(agent, b->label, b->value, err);
    }
    return st;
}

/* mg_agent_create always makes persona and human; an agent whose file has
 * no such block should not gain one. */
static mg_status drop_unlisted_blocks(mg_store *store, const af_agent *a, const char *persona,
                                      const char *human, mg_error *err)
{
    const char *labels[] = {persona ? NULL : "persona", human ? NULL : "human"};
    for (int i = 0; i < 2; i++) {
        if (!labels[i]) continue;
        sqlite3_stmt *s;
        mg_status st = store_prepare(store,
                                     "DELETE FROM blocks WHERE label = ? AND agent_id = "
                                     "(SELECT id FROM agents WHERE name = ?)",
                                     &s, err);
        if (st) return st;
        store_bind_text(s, 1, labels[i]);
        store_bind_text(s, 2, a->name);
        st = store_step_done(store, s, err);
        sqlite3_finalize(s);
        if (st) return st;
    }
    return MG_OK;
}

static mg_status store_extras(mg_store *store, const af_agent *a, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st =
        store_prepare(store,
                      "UPDATE agents SET foreign_tools = ?, tool_rules = ?, summary = ?, "
                      "summarized_count = ?, tool_env = ? WHERE name = ?",
                      &s, err);
    if (st) return st;
    store_bind_text(s, 1, a->foreign_json);
    store_bind_text(s, 2, a->rules_json);
    store_bind_text(s, 3, a->summary ? a->summary : "");
    sqlite3_bind_int64(s, 4, a->summarized);
    store_bind_text(s, 5, a->env_json ? a->env_json : "{}");
    store_bind_text(s, 6, a->name);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    return st;
}

static mg_status store_messages(mg_store *store, af_agent *a, int64_t agent_id, mg_error *err)
{
    if (!a->nmsgs) return MG_OK;
    mg_status st = recall_insert_many(store, agent_id, a->msgs, a->nmsgs, err);
    sqlite3_stmt *s;
    if (!st) st = store_prepare(store, "UPDATE messages SET in_context = 0 WHERE id = ?", &s, err);
    if (st) return st;
    for (int i = 0; i < a->nmsgs && !st; i++) {
        if (a->in_context[i]) continue;
        sqlite3_bind_int64(s, 1, a->msgs[i].id);
        st = store_step_done(store, s, err);
    }
    sqlite3_finalize(s);
    return st;
}

/* An integer setting of ours from a file we wrote, or `fallback`. */
static int our_setting(const af_agent *a, const char *key, int fallback)
{
    json_t *v = json_object_get(a->settings, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : fallback;
}

static double our_fraction(const af_agent *a, const char *key)
{
    json_t *v = json_object_get(a->settings, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static mg_status store_agent(mg_store *store, af_agent *a, const mg_import_options *o,
                             json_t *report, mg_error *err)
{
    mg_status st = unique_name(store, o, a, err);
    if (st) return st;
    const char *persona = NULL, *human = NULL;
    for (int i = 0; i < a->nblocks; i++) {
        if (strcmp(a->blocks[i].label, "persona") == 0) persona = a->blocks[i].value;
        if (strcmp(a->blocks[i].label, "human") == 0) human = a->blocks[i].value;
    }
    mg_agent_config c = {
        .model = a->model,
        .context_window = a->window,
        .persona = persona ? persona : "",
        .human = human ? human : "",
        /* The built-in instructions stay built in (and current). */
        .system_prompt =
            a->system && *a->system && strcmp(a->system, mg_prompt_system) != 0 ? a->system : NULL,
        .embedder = a->embedder,
        .step_limit = our_setting(a, "step_limit", 0),
        .reflect_every = our_setting(a, "reflect_every", 0),
        .idle_seconds = our_setting(a, "idle_seconds", 0),
        .warn_fraction = our_fraction(a, "warn_fraction"),
        .flush_fraction = our_fraction(a, "flush_fraction"),
        .description = a->description,
        .tags_json = a->tags_json,
        .metadata_json = a->metadata_json,
        .functions_json = a->functions_json};
    mg_agent *agent = NULL;
    if ((st = mg_agent_create(store, a->name, &c, err)) ||
        (st = drop_unlisted_blocks(store, a, persona, human, err)) ||
        (st = mg_agent_open(store, a->name, &agent, err)) || (st = set_blocks(agent, a, err)) ||
        (st = store_extras(store, a, err)) || (st = store_messages(store, a, agent->id, err)) ||
        (st = agent_check_room(store, a->name, err))) {
        mg_agent_free(agent);
        return st;
    }
    int in_context = 0;
    for (int i = 0; i < a->nmsgs; i++)
        in_context += a->in_context[i];
    json_array_append_new(report, json_pack("{s:s, s:s, s:s, s:i, s:i, s:O, s:i, s:O}", "id",
                                            agent->public_id, "name", a->name, "file_id",
                                            a->file_id, "messages", a->nmsgs, "in_context",
                                            in_context, "unavailable_tools", a->unavailable,
                                            "tool_rules", a->nrules, "notes", a->notes));
    mg_agent_free(agent);
    return MG_OK;
}

mg_status mg_agent_import(mg_store *store, const char *data, size_t len, const mg_import_options *o,
                          char **report_json, mg_error *err)
{
    if (report_json) *report_json = NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (json_is_string(doc)) { /* the whole document encoded as one JSON string */
        json_t *inner = json_loads(json_string_value(doc), 0, &jerr);
        json_decref(doc);
        doc = inner;
    }
    if (!doc)
        return mg_err_set(err, MG_ERR_USAGE, "the Agent File is not JSON: %s (line %d)", jerr.text,
                          jerr.line);
    mg_status st = MG_OK;
    json_t *agents = json_object_get(doc, "agents");
    size_t n = json_array_size(agents);
    if (!json_is_object(doc))
        st = refuse(err, "the document", "must be a JSON object");
    else if (!json_is_array(agents) || n == 0 || n > AF_MAX_AGENTS)
        st = refuse(err, "agents", "must be a list of 1 to %d agents", AF_MAX_AGENTS);
    else if (o && o->name && n > 1)
        st = mg_err_set(err, MG_ERR_USAGE,
                        "a new name applies to a file of one agent; this one "
                        "has %zu",
                        n);
    const char *lists[] = {"blocks", "tools"};
    for (int i = 0; i < 2 && !st; i++) {
        json_t *l = json_object_get(doc, lists[i]);
        if (l && !json_is_null(l) && !json_is_array(l))
            st = refuse(err, lists[i], "must be a list");
    }
    af_agent *parsed = mg_xcalloc(n ? n : 1, sizeof *parsed);
    for (size_t i = 0; i < n && !st; i++)
        st = read_agent(doc, json_array_get(agents, i), i, o, &parsed[i], err);
    json_t *report = json_array();
    if (!st) st = store_begin(store, err);
    if (!st) {
        for (size_t i = 0; i < n && !st; i++)
            st = store_agent(store, &parsed[i], o, report, err);
        if (st)
            store_rollback(store);
        else
            st = store_commit(store, err);
    }
    if (!st && report_json) {
        json_t *out = json_pack("{s:O}", "agents", report);
        *report_json = json_dumps(out, JSON_INDENT(2));
        json_decref(out);
    }
    for (size_t i = 0; i < n; i++)
        af_agent_free(&parsed[i]);
    free(parsed);
    json_decref(report);
    json_decref(doc);
    return st;
}

/* ------------------------------------------------------------- writing */

static json_t *iso_time(int64_t ms)
{
    char day[32], out[48];
    mg_time_iso(ms - ms % 1000, day, sizeof day); /* "...:SSZ" */
    day[strlen(day) - 1] = '\0';
    snprintf(out, sizeof out, "%s.%03dZ", day, (int)(ms % 1000));
    return json_string(out);
}

/* Letta's tool types for our functions' names. */
static const char *tool_type(const char *name)
{
    if (mg_function_optional(name)) return "letta_sleeptime_core";
    if (strncmp(name, "core_memory_", 12) == 0) return "letta_memory_core";
    return "letta_core";
}

static json_t *llm_config(const mg_agent *a)
{
    const char *slash = strchr(a->model, '/');
    return json_pack("{s:s, s:s%, s:i, s:s, s:b}", "model", slash ? slash + 1 : a->model,
                     "model_endpoint_type", a->model, slash ? (size_t)(slash - a->model) : 0,
                     "context_window", a->context_window, "handle", a->model,
                     "put_inner_thoughts_in_kwargs", 0);
}

static json_t *embedding_config(const char *embedder)
{
    int openai = strncmp(embedder, "openai/", 7) == 0;
    return json_pack("{s:s, s:s, s:i, s:s, s:i}", "embedding_endpoint_type",
                     openai ? "openai" : "local", "embedding_model",
                     openai ? embedder + 7 : "offline", "embedding_dim", openai ? 1536 : 384,
                     "handle", openai ? embedder : OFFLINE_HANDLE, "embedding_chunk_size", 300);
}

static json_t *export_blocks(const mg_agent *a, json_t *ids)
{
    json_t *out = json_array();
    for (int i = 0; i < a->core.count; i++) {
        const mg_block *b = &a->core.blocks[i];
        char id[32];
        snprintf(id, sizeof id, "block-%d", i);
        json_array_append_new(ids, json_string(id));
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:i, s:b, s:s?, s:{}, s:b}", "id", id,
                                             "label", b->label, "value", b->value, "limit",
                                             b->limit, "read_only", b->read_only, "description",
                                             b->description, "metadata", "is_template", 0));
    }
    return out;
}

static json_t *export_tools(const mg_agent *a, json_t *ids)
{
    json_t *out = json_array();
    json_t *foreign = json_loads(a->foreign_tools_json ? a->foreign_tools_json : "[]", 0, NULL);
    size_t i, n = 0;
    json_t *t;
    json_array_foreach(a->tools, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *server = json_object_get(a->external, name);
        if (server && !json_object_get(server, "id")) continue; /* a Python tool: kept below */
        json_t *tool = json_pack("{s:s, s:O, s:O, s:O, s:s, s:s, s:[], s:i}", "id", "", "name",
                                 json_object_get(t, "name"), "description",
                                 json_object_get(t, "description"), "json_schema", t, "tool_type",
                                 server ? "external_mcp" : tool_type(name), "source_type", "json",
                                 "tags", "return_char_limit", MG_FUNCTION_RESULT_MAX_BYTES);
        if (server)
            json_object_set_new(tool, "metadata_",
                                json_pack("{s:{s:O, s:O}}", "mcp", "server_name",
                                          json_object_get(server, "name"), "server_id",
                                          json_object_get(server, "id")));
        json_array_append_new(out, tool);
    }
    json_array_extend(out, foreign);
    json_decref(foreign);
    json_array_foreach(out, n, t)
    {
        char id[32];
        snprintf(id, sizeof id, "tool-%zu", n);
        json_object_set_new(t, "id", json_string(id));
        json_array_append_new(ids, json_string(id));
    }
    return out;
}

/* The MCP servers of the agent's attached tools, in Letta's MCPServerSchema,
 * secrets hidden as everywhere (see tools/tools.c): a file is for sharing.
 * Importing one never registers its servers (that would run their
 * commands): their tools come back kept but not offered, until the user
 * adds the server and attaches them. */
static json_t *export_mcp_servers(mg_agent *a)
{
    json_t *out = json_array(), *seen = json_object();
    const char *tool;
    json_t *server;
    json_object_foreach(a->external, tool, server)
    {
        const char *id = json_string_value(json_object_get(server, "id"));
        char *text = NULL;
        if (!id || json_object_get(seen, id) || mg_mcp_get(a->store, id, &text, NULL)) continue;
        json_object_set_new(seen, id, json_true());
        json_t *found = json_loads(text, 0, NULL);
        mg_free(text);
        json_t *config = json_object_get(found, "config");
        const char *type = json_string_value(json_object_get(config, "mcp_server_type"));
        json_t *stdio =
            type && strcmp(type, "stdio") == 0
                ? json_pack("{s:O?, s:O?, s:O?}", "command", json_object_get(config, "command"),
                            "args", json_object_get(config, "args"), "env",
                            json_object_get(config, "env"))
                : NULL;
        json_array_append_new(out, json_pack("{s:s, s:s?, s:O, s:O?, s:o*, s:{}}", "id", id,
                                             "server_type", type, "server_name",
                                             json_object_get(found, "name"), "server_url",
                                             json_object_get(config, "server_url"), "stdio_config",
                                             stdio, "metadata_"));
        json_decref(found);
    }
    json_decref(seen);
    return out;
}

/* Every stored message, oldest first, after a leading system message with
 * the instructions (where Letta expects its system prompt). */
static mg_status export_messages(mg_agent *a, const char *instructions, json_t *msgs,
                                 json_t *in_context, mg_error *err)
{
    json_array_append_new(msgs, json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:s, s:o}", "type",
                                          "message", "id", "message-0", "role", "system", "content",
                                          "type", "text", "text", instructions, "agent_id",
                                          "agent-0", "created_at", iso_time(a->created_at)));
    json_array_append_new(in_context, json_string("message-0"));
    sqlite3_stmt *s;
    mg_status st = store_prepare(a->store,
                                 "SELECT role, content, tool_calls, tool_call_id, tool_name, "
                                 "created_at, in_context FROM messages WHERE agent_id = ? "
                                 "ORDER BY id",
                                 &s, err);
    if (st) return st;
    sqlite3_bind_int64(s, 1, a->id);
    int rc, n = 1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char id[32];
        snprintf(id, sizeof id, "message-%d", n++);
        const char *content = (const char *)sqlite3_column_text(s, 1);
        json_t *m =
            json_pack("{s:s, s:s, s:s, s:[], s:s, s:o}", "type", "message", "id", id, "role",
                      (const char *)sqlite3_column_text(s, 0), "content", "agent_id", "agent-0",
                      "created_at", iso_time(sqlite3_column_int64(s, 5)));
        if (content && *content)
            json_array_append_new(json_object_get(m, "content"),
                                  json_pack("{s:s, s:s}", "type", "text", "text", content));
        mg_tool_call *calls = NULL;
        int ncalls = 0;
        const char *calls_json = (const char *)sqlite3_column_text(s, 2);
        if (calls_json && mg_tool_calls_from_json(calls_json, &calls, &ncalls) && ncalls) {
            json_t *list = json_array();
            for (int c = 0; c < ncalls; c++)
                json_array_append_new(list,
                                      json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", calls[c].id,
                                                "type", "function", "function", "name",
                                                calls[c].name, "arguments", calls[c].arguments));
            json_object_set_new(m, "tool_calls", list);
        }
        mg_tool_calls_free(calls, ncalls);
        if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
            json_object_set_new(m, "tool_call_id",
                                json_string((const char *)sqlite3_column_text(s, 3)));
            json_object_set_new(m, "name", json_string((const char *)sqlite3_column_text(s, 4)));
        }
        if (sqlite3_column_int(s, 6)) json_array_append_new(in_context, json_string(id));
        json_array_append_new(msgs, m);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? MG_OK : store_fail(a->store, err, "reading the messages to export");
}

mg_status mg_agent_export(mg_agent *a, char **json_out, mg_error *err)
{
    *json_out = NULL;
    mg_status st = agent_check_usable(a, err);
    if (st) return st;
    const char *instructions = a->system_prompt ? a->system_prompt : mg_prompt_system;
    json_t *block_ids = json_array(), *tool_ids = json_array(), *msgs = json_array(),
           *in_context = json_array();
    json_t *blocks = export_blocks(a, block_ids), *tools = export_tools(a, tool_ids);
    st = export_messages(a, instructions, msgs, in_context, err);
    json_t *tags = json_loads(a->tags_json ? a->tags_json : "[]", 0, NULL);
    json_t *rules = json_loads(a->tool_rules_json ? a->tool_rules_json : "[]", 0, NULL);
    json_t *meta = a->metadata_json ? json_loads(a->metadata_json, 0, NULL) : NULL;
    json_t *settings =
        json_pack("{s:i, s:i, s:i, s:f, s:f}", "step_limit", a->step_limit, "reflect_every",
                  a->reflect_every, "idle_seconds", a->idle_seconds, "warn_fraction",
                  a->warn_fraction, "flush_fraction", a->flush_fraction);
    char *settings_text = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    char count[32];
    snprintf(count, sizeof count, "%lld", (long long)a->summarized_count);
    json_t *embedding = embedding_config(a->embedder);
    json_t *agent = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:o*, s:o, s:o, s:O, s:s, s:O, s:i, s:o, s:o, s:o, s:o, "
        "s:o, s:[], s:b, s:[], s:[], s:[]}",
        "id", "agent-0", "name", a->name, "system", instructions, "agent_type", "memgpt_agent",
        "description", a->description, "metadata", meta, "tags", tags ? tags : json_array(),
        "llm_config", llm_config(a), "embedding_config", embedding, "model", a->model, "embedding",
        json_object_get(embedding, "handle"), "context_window_limit", a->context_window, "tool_ids",
        tool_ids, "block_ids", block_ids, "tool_rules", rules ? rules : json_array(),
        "in_context_message_ids", in_context, "messages", msgs, "memory_blocks",
        "include_base_tools", 1, "files_agents", "group_ids", "source_ids");
    json_t *doc =
        json_pack("{s:[o], s:[], s:o, s:[], s:[], s:o, s:o, s:{s:s, s:s, s:s, s:s}, s:o}", "agents",
                  agent, "groups", "blocks", blocks, "files", "sources", "tools", tools,
                  "mcp_servers", export_mcp_servers(a), "metadata", "memgpt.version", MG_VERSION,
                  "memgpt.summary", a->summary ? a->summary : "", "memgpt.summarized_count", count,
                  "memgpt.settings", settings_text, "created_at", iso_time(mg_now_ms()));
    json_decref(embedding);
    json_decref(settings);
    free(settings_text);
    if (!st && !doc) st = mg_err_set(err, MG_ERR_INTERNAL, "could not build the Agent File");
    if (!st) *json_out = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    return st;
}
