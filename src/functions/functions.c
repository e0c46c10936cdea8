/*
 * functions.c - schemas and handlers of the agent's functions.
 *
 * A call goes: parse the arguments (must be a JSON object), look the name up
 * in the handler table, let the handler read its arguments through the arg_*
 * helpers (which record the first problem as a Failed result), then wrap the
 * handler's message as {"status", "message", "time"} and cut it to size.
 */
#include "functions/functions.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "memory/archival.h"
#include "memory/core_memory.h"
#include "memory/recall.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

static const char *const schemas_json =
    "["
    "{\"name\": \"send_message\","
    " \"description\": \"Send a message to the user. This is the only way the user hears you.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"message\": {\"type\": \"string\", \"description\": \"The text to send. Plain text; "
    "the user sees it exactly.\"}},"
    "  \"required\": [\"message\"]}},"
    "{\"name\": \"core_memory_append\","
    " \"description\": \"Add a line to a core memory block (always in view). Use it for "
    "lasting facts about the user or yourself.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"label\": {\"type\": \"string\", \"description\": \"Which block, e.g. 'human' or "
    "'persona'.\"},"
    "   \"content\": {\"type\": \"string\", \"description\": \"The text to add.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"label\", \"content\"]}},"
    "{\"name\": \"core_memory_replace\","
    " \"description\": \"Replace text in a core memory block. old_content must match exactly; "
    "an empty new_content deletes it.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"label\": {\"type\": \"string\", \"description\": \"Which block.\"},"
    "   \"old_content\": {\"type\": \"string\", \"description\": \"The exact text to replace.\"},"
    "   \"new_content\": {\"type\": \"string\", \"description\": \"The new text; empty to "
    "delete.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"label\", \"old_content\", \"new_content\"]}},"
    "{\"name\": \"conversation_search\","
    " \"description\": \"Search the whole conversation history (recall memory) by words, "
    "best matches first. By default it searches what was said (the user's messages and your "
    "replies).\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"query\": {\"type\": \"string\", \"description\": \"Words to look for.\"},"
    "   \"page\": {\"type\": \"integer\", \"description\": \"Result page, 0 for the first.\"},"
    "   \"include_all\": {\"type\": \"boolean\", \"description\": \"true to also search "
    "your inner monologue, your function calls and their results, and system events. Default "
    "false.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns (usually wanted, to use the results).\"}},"
    "  \"required\": [\"query\"]}},"
    "{\"name\": \"conversation_search_date\","
    " \"description\": \"List the conversation history between two dates (inclusive), "
    "oldest first.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"start_date\": {\"type\": \"string\", \"description\": \"YYYY-MM-DD\"},"
    "   \"end_date\": {\"type\": \"string\", \"description\": \"YYYY-MM-DD\"},"
    "   \"page\": {\"type\": \"integer\", \"description\": \"Result page, 0 for the first.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"start_date\", \"end_date\"]}},"
    "{\"name\": \"archival_memory_insert\","
    " \"description\": \"Store a passage in archival memory, your long-term store searched by "
    "meaning. Write it so it makes sense on its own later.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"content\": {\"type\": \"string\", \"description\": \"The passage.\"},"
    "   \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "\"description\": \"Optional labels to filter by later.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"content\"]}},"
    "{\"name\": \"archival_memory_search\","
    " \"description\": \"Search archival memory by meaning, best matches first.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"query\": {\"type\": \"string\", \"description\": \"What to look for.\"},"
    "   \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "\"description\": \"Optional: only passages with all these tags.\"},"
    "   \"start_date\": {\"type\": \"string\", \"description\": \"Optional YYYY-MM-DD.\"},"
    "   \"end_date\": {\"type\": \"string\", \"description\": \"Optional YYYY-MM-DD.\"},"
    "   \"page\": {\"type\": \"integer\", \"description\": \"Result page, 0 for the first.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns (usually wanted, to use the results).\"}},"
    "  \"required\": [\"query\"]}},"
    "{\"name\": \"pause_heartbeats\","
    " \"description\": \"Stop timed heartbeats for a while (they wake you when the user is "
    "idle).\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"minutes\": {\"type\": \"integer\", \"description\": \"How long, 1 to 360.\"}},"
    "  \"required\": [\"minutes\"]}}"
    "]";

/* Offered only to agents that enable them (mg_agent_config.functions_json):
 * the line-based memory tools of Letta's newer agents, which the Agent
 * Files people share call by name. */
static const char *const optional_schemas_json =
    "["
    "{\"name\": \"memory_insert\","
    " \"description\": \"Insert text into a core memory block at a line.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"label\": {\"type\": \"string\", \"description\": \"Which block.\"},"
    "   \"new_str\": {\"type\": \"string\", \"description\": \"The text to insert.\"},"
    "   \"insert_line\": {\"type\": \"integer\", \"description\": \"Insert after this line "
    "(1 for after the first, 0 for the very top, -1 for the end; the default).\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"label\", \"new_str\"]}},"
    "{\"name\": \"memory_replace\","
    " \"description\": \"Replace text in a core memory block. old_str must occur exactly once; "
    "an empty new_str deletes it.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"label\": {\"type\": \"string\", \"description\": \"Which block.\"},"
    "   \"old_str\": {\"type\": \"string\", \"description\": \"The exact text to replace.\"},"
    "   \"new_str\": {\"type\": \"string\", \"description\": \"The new text.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"label\", \"old_str\", \"new_str\"]}},"
    "{\"name\": \"memory_rethink\","
    " \"description\": \"Rewrite a whole core memory block, to reorganise or condense it.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"label\": {\"type\": \"string\", \"description\": \"Which block.\"},"
    "   \"new_memory\": {\"type\": \"string\", \"description\": \"The block's new text.\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"label\", \"new_memory\"]}},"
    "{\"name\": \"send_message_to_agent_and_wait_for_reply\","
    " \"description\": \"Send a message to another agent and wait for its answer, which comes "
    "back as this call's result.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"message\": {\"type\": \"string\", \"description\": \"What to tell or ask the other "
    "agent.\"},"
    "   \"other_agent_id\": {\"type\": \"string\", \"description\": \"Its id, agent-...\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"message\", \"other_agent_id\"]}},"
    "{\"name\": \"send_message_to_agent_async\","
    " \"description\": \"Send a message to another agent without waiting; it reads it after your "
    "turn and may answer with a message of its own.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"message\": {\"type\": \"string\", \"description\": \"What to tell the other agent.\"},"
    "   \"other_agent_id\": {\"type\": \"string\", \"description\": \"Its id, agent-...\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"message\", \"other_agent_id\"]}},"
    "{\"name\": \"send_message_to_agents_matching_tags\","
    " \"description\": \"Send a message to every agent whose tags include all of match_all and "
    "at least one of match_some, and collect their answers.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {"
    "   \"message\": {\"type\": \"string\", \"description\": \"What to tell or ask them.\"},"
    "   \"match_all\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "\"description\": \"Tags an agent must all have.\"},"
    "   \"match_some\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "\"description\": \"Tags of which an agent must have one (if any are given).\"},"
    "   \"request_heartbeat\": {\"type\": \"boolean\", \"description\": \"true to be woken "
    "again after this returns.\"}},"
    "  \"required\": [\"message\"]}}"
    "]";

json_t *mg_functions_schemas(void)
{
    return json_loads(schemas_json, 0, NULL);
}

/* The optional schema named `name`, borrowed from `all`, or NULL. */
static json_t *optional_schema(json_t *all, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s) if (name && strcmp(json_string_value(json_object_get(s, "name")),
                                                     name) == 0) return s;
    return NULL;
}

int mg_function_optional(const char *name)
{
    json_t *all = json_loads(optional_schemas_json, 0, NULL);
    int found = optional_schema(all, name) != NULL;
    json_decref(all);
    return found;
}

int mg_functions_valid(const char *json)
{
    json_t *names = json_loads(json, 0, NULL);
    int ok = json_is_array(names);
    for (size_t i = 0; ok && i < json_array_size(names); i++) {
        const char *n = json_string_value(json_array_get(names, i));
        ok = n && mg_function_optional(n);
        for (size_t j = 0; ok && j < i; j++)
            ok = strcmp(n, json_string_value(json_array_get(names, j))) != 0;
    }
    json_decref(names);
    return ok;
}

json_t *mg_functions_schemas_all(void)
{
    json_t *out = mg_functions_schemas();
    json_t *optional = json_loads(optional_schemas_json, 0, NULL);
    json_array_extend(out, optional);
    json_decref(optional);
    return out;
}

json_t *mg_functions_schemas_for(const char *enabled_json)
{
    json_t *out = mg_functions_schemas();
    json_t *names = enabled_json ? json_loads(enabled_json, 0, NULL) : NULL;
    json_t *all = json_loads(optional_schemas_json, 0, NULL);
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
    {
        json_t *s = optional_schema(all, json_string_value(n));
        if (s) json_array_append(out, s);
    }
    json_decref(all);
    json_decref(names);
    return out;
}

/* One call in progress: the arguments and the first problem found. */
typedef struct call_ctx {
    mg_agent *agent;
    json_t *args;
    buf problem; /* set by arg_* on the first bad argument */
    buf message; /* the handler's message for the model */
    int ok;
    char *reply;
} call_ctx;

static void fail(call_ctx *c, const char *text)
{
    if (c->problem.len == 0) buf_puts(&c->problem, text);
}

static const char *arg_string(call_ctx *c, const char *name, int required)
{
    json_t *v = json_object_get(c->args, name);
    if (json_is_string(v)) return json_string_value(v);
    char text[160];
    if (v && !json_is_null(v))
        snprintf(text, sizeof text, "argument '%s' must be a string", name);
    else if (required)
        snprintf(text, sizeof text, "missing required argument '%s'", name);
    else
        return NULL;
    fail(c, text);
    return NULL;
}

/* An integer, also accepted as a string of digits (weaker models send "2").
 * Values outside int range are refused rather than wrapped. */
static int arg_int(call_ctx *c, const char *name, int fallback, int required)
{
    json_t *v = json_object_get(c->args, name);
    char text[160];
    double value = 0;
    int have = 0;
    if (json_is_integer(v))
        value = (double)json_integer_value(v), have = 1;
    else if (json_is_real(v) && fabs(json_real_value(v)) < 4e9 &&
             json_real_value(v) == floor(json_real_value(v)))
        value = json_real_value(v), have = 1; /* range first: a cast of 1e300 is UB */
    else if (json_is_string(v)) {
        char *end;
        const char *str = json_string_value(v);
        long long n = strtoll(str, &end, 10);
        if (*str && !*end) value = (double)n, have = 1;
    }
    if (have && value >= -2147483648.0 && value <= 2147483647.0) return (int)value;
    if (have)
        snprintf(text, sizeof text, "argument '%s' is out of range", name);
    else if (!v || json_is_null(v)) {
        if (!required) return fallback;
        snprintf(text, sizeof text, "missing required argument '%s'", name);
    } else {
        snprintf(text, sizeof text, "argument '%s' must be an integer", name);
    }
    fail(c, text);
    return fallback;
}

/* A boolean, also accepted as the string "true" or "false" (as
 * request_heartbeat is). Anything else is a mistake the model must fix. */
static int arg_bool(call_ctx *c, const char *name, int fallback)
{
    json_t *v = json_object_get(c->args, name);
    if (!v || json_is_null(v)) return fallback;
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_string(v) && strcmp(json_string_value(v), "true") == 0) return 1;
    if (json_is_string(v) && strcmp(json_string_value(v), "false") == 0) return 0;
    char text[160];
    snprintf(text, sizeof text, "argument '%s' must be true or false", name);
    fail(c, text);
    return fallback;
}

/* An optional list of up to `max` strings, borrowed from the arguments:
 * *n = 0 when absent. Blank strings are left out (models fill optional
 * fields with ""). */
static const char **arg_strings(call_ctx *c, const char *name, int max, int *n)
{
    *n = 0;
    json_t *v = json_object_get(c->args, name);
    if (!v || json_is_null(v)) return NULL;
    char text[160];
    size_t count = json_array_size(v);
    if (!json_is_array(v) || count > (size_t)max) {
        snprintf(text, sizeof text, "argument '%s' must be a list of at most %d strings", name,
                 max);
        fail(c, text);
        return NULL;
    }
    const char **out = mg_xcalloc(count ? count : 1, sizeof *out);
    int kept = 0;
    for (size_t i = 0; i < count; i++) {
        const char *item = json_string_value(json_array_get(v, i));
        if (!item) {
            snprintf(text, sizeof text, "argument '%s': item %zu must be a string", name, i);
            fail(c, text);
            free(out);
            return NULL;
        }
        if (!mg_text_blank(item)) out[kept++] = item;
    }
    *n = kept;
    return out;
}

int mg_function_wants_heartbeat(const json_t *args)
{
    json_t *v = json_object_get(args, "request_heartbeat");
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_string(v)) return strcmp(json_string_value(v), "true") == 0;
    return 0;
}

/* ---- handlers: each reads its arguments, then acts if none was bad ---- */

static mg_status fn_send_message(call_ctx *c, mg_error *err)
{
    const char *text = arg_string(c, "message", 1);
    if (c->problem.len) return MG_OK;
    if (mg_text_blank(text)) {
        fail(c, "message is empty; nothing was sent");
        return MG_OK;
    }
    c->reply = mg_xstrdup(text);
    buf_puts(&c->message, "Sent.");
    c->ok = 1;
    return MG_OK;
}

/* Runtime failures abort the step; the model's mistakes become its result. */
static mg_status model_error(call_ctx *c, mg_status st, mg_error *err)
{
    if (st == MG_ERR_DB || st == MG_ERR_IO || st == MG_ERR_CORRUPT || st == MG_ERR_NOMEM) return st;
    fail(c, err->message);
    mg_err_clear(err);
    return MG_OK;
}

static mg_status fn_core_memory_append(call_ctx *c, mg_error *err)
{
    const char *label = arg_string(c, "label", 1);
    const char *content = arg_string(c, "content", 1);
    if (c->problem.len) return MG_OK;
    mg_status st = core_memory_append(&c->agent->core, label, content, err);
    if (st) return model_error(c, st, err);
    mg_block *b = core_memory_find(&c->agent->core, label);
    buf_printf(&c->message, "Appended to '%s' (%zu/%d characters).", label, mg_utf8_chars(b->value),
               b->limit);
    c->ok = 1;
    return MG_OK;
}

static mg_status fn_core_memory_replace(call_ctx *c, mg_error *err)
{
    const char *label = arg_string(c, "label", 1);
    const char *old_content = arg_string(c, "old_content", 1);
    const char *new_content = arg_string(c, "new_content", 1);
    if (c->problem.len) return MG_OK;
    int replaced;
    mg_status st =
        core_memory_replace(&c->agent->core, label, old_content, new_content, &replaced, err);
    if (st) return model_error(c, st, err);
    mg_block *b = core_memory_find(&c->agent->core, label);
    buf_printf(&c->message, "%s %d occurrence%s in '%s' (%zu/%d characters).",
               *new_content ? "Replaced" : "Deleted", replaced, replaced == 1 ? "" : "s", label,
               mg_utf8_chars(b->value), b->limit);
    c->ok = 1;
    return MG_OK;
}

/* Formats a {total, page, pages, results} search answer for the model. */
/* How many times `needle` occurs in `hay` (without overlaps). */
static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = hay; len && (p = strstr(p, needle)); p += len)
        n++;
    return n;
}

/* The block after an edit, as the model is told. */
static void say_block(call_ctx *c, const char *what, const char *label)
{
    mg_block *b = core_memory_find(&c->agent->core, label);
    buf_printf(&c->message, "%s '%s' (%zu/%d characters).", what, label, mg_utf8_chars(b->value),
               b->limit);
    c->ok = 1;
}

static mg_status fn_memory_insert(call_ctx *c, mg_error *err)
{
    const char *label = arg_string(c, "label", 1);
    const char *text = arg_string(c, "new_str", 1);
    int line = arg_int(c, "insert_line", -1, 0);
    if (c->problem.len) return MG_OK;
    mg_status st = core_memory_insert(&c->agent->core, label, text, line, err);
    if (st) return model_error(c, st, err);
    say_block(c, "Inserted into", label);
    return MG_OK;
}

static mg_status fn_memory_replace(call_ctx *c, mg_error *err)
{
    const char *label = arg_string(c, "label", 1);
    const char *old_str = arg_string(c, "old_str", 1);
    const char *new_str = arg_string(c, "new_str", 1);
    if (c->problem.len) return MG_OK;
    mg_block *b = core_memory_find(&c->agent->core, label);
    int n = b && old_str ? occurrences(b->value, old_str) : 0;
    if (n > 1) {
        char text[200];
        snprintf(text, sizeof text,
                 "old_str occurs %d times in block '%.64s'; include more of the text around it "
                 "so that it occurs once",
                 n, label);
        fail(c, text);
        return MG_OK;
    }
    int replaced;
    mg_status st = core_memory_replace(&c->agent->core, label, old_str, new_str, &replaced, err);
    if (st) return model_error(c, st, err);
    say_block(c, "Replaced text in", label);
    return MG_OK;
}

static mg_status fn_memory_rethink(call_ctx *c, mg_error *err)
{
    const char *label = arg_string(c, "label", 1);
    const char *value = arg_string(c, "new_memory", 1);
    if (c->problem.len) return MG_OK;
    mg_status st = core_memory_rethink(&c->agent->core, label, value, err);
    if (st) return model_error(c, st, err);
    say_block(c, "Rewrote", label);
    return MG_OK;
}

static void describe_results(call_ctx *c, json_t *found, const char *what, int with_role)
{
    json_int_t total = json_integer_value(json_object_get(found, "total"));
    int page = (int)json_integer_value(json_object_get(found, "page"));
    json_int_t pages = json_integer_value(json_object_get(found, "pages"));
    json_t *results = json_object_get(found, "results");
    if (total == 0) {
        buf_printf(&c->message, "No results: nothing in %s matches.", what);
        c->ok = 1;
        return;
    }
    if (json_array_size(results) == 0) {
        buf_printf(&c->message,
                   "Page %d is past the end: there %s %lld page%s of results (pages count from 0).",
                   page, pages == 1 ? "is" : "are", (long long)pages, pages == 1 ? "" : "s");
        fail(c, buf_str(&c->message));
        return;
    }
    if (json_is_true(json_object_get(found, "older_matches")))
        /* Recall ranks only the newest matches: say so, and how to go further. */
        buf_printf(&c->message,
                   "More than %lld results in %s: only the newest %lld (back to %s) were "
                   "ranked. To reach older ones, search again with rarer, more specific words, "
                   "or list a date range with conversation_search_date. Page %d of %lld:",
                   (long long)total, what, (long long)total,
                   json_string_value(json_object_get(found, "ranked_from")), page,
                   (long long)pages);
    else
        buf_printf(&c->message, "%lld result%s in %s; page %d of %lld:", (long long)total,
                   total == 1 ? "" : "s", what, page, (long long)pages);
    if (json_object_get(found, "text_ranked"))
        /* Archival ranks only its newest text matches (passages found by
         * meaning are all considered): say so, and how to go further. */
        buf_printf(&c->message,
                   " (More passages contain these words than were ranked by them: the newest "
                   "%lld, back to %s. For older ones, use rarer words, or narrow with tags, "
                   "start_date or end_date.)",
                   (long long)json_integer_value(json_object_get(found, "text_ranked")),
                   json_string_value(json_object_get(found, "text_ranked_from")));
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r)
    {
        const char *when = json_string_value(json_object_get(r, "time"));
        const char *text = json_string_value(json_object_get(r, "text"));
        const char *inner = json_string_value(json_object_get(r, "inner"));
        if (!inner || *text) {
            buf_printf(&c->message, "\n[%s]", when);
            if (with_role)
                buf_printf(&c->message, " %s:", json_string_value(json_object_get(r, "role")));
            buf_printf(&c->message, " %s", text);
        }
        /* Recall with include_all: label the inner text by what it was. */
        if (inner) {
            const char *kind = json_string_value(json_object_get(r, "kind"));
            buf_printf(&c->message, "\n[%s] (%s) %s", when,
                       strcmp(kind, "assistant") == 0 ? "inner monologue / function call" : kind,
                       inner);
        }
    }
    c->ok = 1;
}

/* Runs a search for the model: recall memory or archival memory. */
static mg_status run_search(call_ctx *c, mg_search *s, int archival, mg_error *err)
{
    if (c->problem.len) return MG_OK;
    if (s->page < 0) {
        fail(c, "page must be 0 or more");
        return MG_OK;
    }
    mg_agent *a = c->agent;
    json_t *found;
    mg_status st = archival ? archival_search(a->store, a->id, a->embedder, s, &found, err)
                            : recall_search(a->store, a->id, s, &found, err);
    if (st) return model_error(c, st, err);
    describe_results(c, found, archival ? "archival memory" : "the conversation history",
                     !archival);
    json_decref(found);
    return MG_OK;
}

static mg_status fn_conversation_search(call_ctx *c, mg_error *err)
{
    mg_search s = {0};
    s.query = arg_string(c, "query", 1);
    s.page = arg_int(c, "page", 0, 0);
    s.include_all = arg_bool(c, "include_all", 0);
    s.limit = MG_FUNCTION_PAGE_SIZE;
    if (!c->problem.len && mg_text_blank(s.query)) fail(c, "query is empty");
    return run_search(c, &s, 0, err);
}

/* Sets s's bounds from the days start and end (YYYY-MM-DD, inclusive;
 * either may be NULL). 0, with the model's mistake recorded, if they are
 * not dates or out of order. */
static int date_range(call_ctx *c, const char *start, const char *end, mg_search *s)
{
    mg_error err = {0};
    if ((start && mg_parse_time(start, 0, &s->from_ms, &err)) ||
        (end && mg_parse_time(end, 1, &s->to_ms, &err))) {
        fail(c, err.message);
        return 0;
    }
    if (start && end && s->to_ms <= s->from_ms) {
        fail(c, "end_date is before start_date");
        return 0;
    }
    return 1;
}

static mg_status fn_conversation_search_date(call_ctx *c, mg_error *err)
{
    mg_search s = {0};
    const char *start = arg_string(c, "start_date", 1);
    const char *end = arg_string(c, "end_date", 1);
    s.page = arg_int(c, "page", 0, 0);
    s.limit = MG_FUNCTION_PAGE_SIZE;
    if (c->problem.len || !date_range(c, start, end, &s)) return MG_OK;
    return run_search(c, &s, 0, err);
}

static mg_status fn_archival_memory_insert(call_ctx *c, mg_error *err)
{
    const char *content = arg_string(c, "content", 1);
    int ntags;
    const char **tags = arg_strings(c, "tags", MG_SEARCH_MAX_TAGS, &ntags);
    char *tags_json = NULL;
    if (ntags) {
        json_t *list = json_array();
        for (int i = 0; i < ntags; i++)
            json_array_append_new(list, json_string(tags[i]));
        tags_json = json_dumps(list, JSON_COMPACT);
        json_decref(list);
    }
    free(tags);
    if (c->problem.len) {
        free(tags_json);
        return MG_OK;
    }
    mg_status st = archival_insert(c->agent->store, c->agent->id, c->agent->embedder, content,
                                   tags_json, 0, NULL, err);
    free(tags_json);
    if (st) return model_error(c, st, err);
    c->agent->archival_count++;
    buf_puts(&c->message, "Stored in archival memory.");
    c->ok = 1;
    return MG_OK;
}

static mg_status fn_archival_memory_search(call_ctx *c, mg_error *err)
{
    mg_search s = {0};
    s.query = arg_string(c, "query", 1);
    s.page = arg_int(c, "page", 0, 0);
    s.limit = MG_FUNCTION_PAGE_SIZE;
    const char *start = arg_string(c, "start_date", 0);
    const char *end = arg_string(c, "end_date", 0);
    if (mg_text_blank(start)) start = NULL; /* models fill optional fields with "" */
    if (mg_text_blank(end)) end = NULL;
    const char **tags = arg_strings(c, "tags", MG_SEARCH_MAX_TAGS, &s.ntags);
    s.tags = tags;
    mg_status st = MG_OK;
    if (!c->problem.len && date_range(c, start, end, &s)) st = run_search(c, &s, 1, err);
    free(tags);
    return st;
}

static mg_status fn_pause_heartbeats(call_ctx *c, mg_error *err)
{
    int minutes = arg_int(c, "minutes", 0, 1);
    if (c->problem.len) return MG_OK;
    if (minutes < 1 || minutes > 360) {
        fail(c, "minutes must be between 1 and 360");
        return MG_OK;
    }
    c->agent->paused_until = mg_now_ms() + (int64_t)minutes * 60000;
    mg_status st = agent_save_state(c->agent, err);
    if (st) return st;
    buf_printf(&c->message, "Timed heartbeats paused for %d minute%s.", minutes,
               minutes == 1 ? "" : "s");
    c->ok = 1;
    return MG_OK;
}

typedef struct handler {
    const char *name;
    mg_status (*run)(call_ctx *c, mg_error *err);
} handler;

static const handler handlers[] = {
    {"send_message", fn_send_message},
    {"core_memory_append", fn_core_memory_append},
    {"core_memory_replace", fn_core_memory_replace},
    {"conversation_search", fn_conversation_search},
    {"conversation_search_date", fn_conversation_search_date},
    {"archival_memory_insert", fn_archival_memory_insert},
    {"archival_memory_search", fn_archival_memory_search},
    {"pause_heartbeats", fn_pause_heartbeats},
    {"memory_insert", fn_memory_insert},
    {"memory_replace", fn_memory_replace},
    {"memory_rethink", fn_memory_rethink},
};

/* 1 if the agent is offered function `name` (its schemas list it). */
int mg_schema_named(const json_t *schemas, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(schemas, i, s)
    {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && name && strcmp(n, name) == 0) return 1;
    }
    return 0;
}

int mg_function_offered(const mg_agent *agent, const char *name)
{
    return mg_schema_named(agent->tools, name);
}

json_t *mg_function_schema(const char *name, const char *description, const json_t *params)
{
    json_t *p =
        json_is_object(params) ? json_deep_copy(params) : json_pack("{s:s}", "type", "object");
    json_object_del(p, "$schema");
    if (!json_is_object(json_object_get(p, "properties")))
        json_object_set_new(p, "properties", json_object());
    json_object_set_new(json_object_get(p, "properties"), "request_heartbeat",
                        json_pack("{s:s, s:s}", "type", "boolean", "description",
                                  "true to be woken again after this returns."));
    return json_pack("{s:s, s:s, s:o}", "name", name, "description", description ? description : "",
                     "parameters", p);
}

static const handler *find_handler(const mg_agent *agent, const char *name)
{
    for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
        if (strcmp(handlers[i].name, name) == 0 && mg_function_offered(agent, name))
            return &handlers[i];
    return NULL;
}

static void unknown_function(call_ctx *c, const char *name)
{
    buf text = BUF_INIT;
    buf_printf(&text, "there is no function named '%.64s'; the functions are:", name);
    size_t i;
    json_t *s;
    json_array_foreach(c->agent->tools, i, s)
        buf_printf(&text, "%s %s", i ? "," : "", json_string_value(json_object_get(s, "name")));
    fail(c, buf_str(&text));
    buf_free(&text);
}

/* {"status", "message", "time"}, with the message cut to the agent's limit. */
char *mg_function_result(const mg_agent *agent, int ok, const char *message)
{
    size_t limit = MG_FUNCTION_RESULT_MAX_BYTES;
    size_t window_limit = (size_t)agent->context_window * 3 / 8;
    if (window_limit < limit) limit = window_limit;
    size_t len = strlen(message);
    buf text = BUF_INIT;
    if (len > limit) {
        size_t cut = mg_utf8_cut(message, len, limit);
        buf_append(&text, message, cut);
        buf_printf(&text,
                   "\n[cut: this result was %zu bytes; only the first %zu are shown. Narrow "
                   "the search or ask for the next page.]",
                   len, cut);
    } else {
        buf_puts(&text, message);
    }
    char when[64];
    mg_time_human(mg_now_ms(), when, sizeof when);
    json_t *obj = json_pack("{s:s, s:s, s:s}", "status", ok ? "OK" : "Failed", "message",
                            buf_str(&text), "time", when);
    buf_free(&text);
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return s;
}

mg_status mg_functions_call(mg_agent *agent, const mg_tool_call *call, mg_fn_outcome *out,
                            mg_error *err)
{
    memset(out, 0, sizeof *out);
    call_ctx c = {.agent = agent, .problem = BUF_INIT, .message = BUF_INIT};
    json_error_t jerr;
    /* Arguments are the model's own JSON: repair what strict parsing refuses
     * (lone surrogate escapes, \u0000) instead of failing the call over it. */
    const char *raw = call->arguments ? call->arguments : "";
    char *repaired = mg_json_repair(raw, strlen(raw));
    c.args = json_loads(repaired, JSON_REJECT_DUPLICATES, &jerr);
    free(repaired);
    mg_status st = MG_OK;
    const handler *h = find_handler(agent, call->name);
    if (!h) {
        unknown_function(&c, call->name);
    } else if (!json_is_object(c.args)) {
        buf text = BUF_INIT;
        buf_printf(&text, "the arguments of %s are not a JSON object (%s); send them as JSON",
                   call->name, c.args ? "wrong type" : jerr.text);
        fail(&c, buf_str(&text));
        buf_free(&text);
    } else {
        out->request_heartbeat = mg_function_wants_heartbeat(c.args);
        st = h->run(&c, err);
    }
    if (!st) {
        out->ok = c.ok && c.problem.len == 0;
        const char *message = out->ok ? buf_str(&c.message) : buf_str(&c.problem);
        if (!out->ok && c.problem.len == 0) message = "the function failed";
        out->result = mg_function_result(agent, out->ok, message);
        out->reply = c.reply;
        c.reply = NULL;
    }
    free(c.reply);
    json_decref(c.args);
    buf_free(&c.problem);
    buf_free(&c.message);
    return st;
}

void mg_fn_outcome_clear(mg_fn_outcome *out)
{
    free(out->result);
    free(out->reply);
    memset(out, 0, sizeof *out);
}
