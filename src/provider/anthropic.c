/*
 * anthropic.c - the Anthropic Messages API over its own wire format.
 *
 * The neutral queue and the Messages API disagree on shape in three ways, and
 * this file is mostly about reconciling them:
 *
 *  1. Turns. The API wants strictly alternating user and assistant turns,
 *     starting (and, for us, ending) with the user. Our queue has runtime
 *     events as role user and function results as role tool, so a step's
 *     results and the heartbeat after them are several messages that the API
 *     must see as one user turn holding several blocks. Merging adjacent
 *     same-role messages does that; a placeholder user turn covers a queue
 *     whose oldest messages were evicted up to an assistant turn.
 *
 *  2. Pairing. Every tool_use must be answered by a tool_result in the very
 *     next turn and every tool_result must answer the turn before. Eviction
 *     and history edits keep calls and results together, but the rule is
 *     enforced here anyway, because a broken pair makes every later request
 *     fail and the agent could never recover: an orphan result becomes plain
 *     text, a call without a result gets an error result saying so.
 *
 *  3. Thinking. Extended-thinking replies carry signed thinking blocks that
 *     must come back byte for byte in later requests. The neutral message
 *     keeps them in mg_msg.raw_content (the whole content array as received);
 *     everything else in the assistant turn is rebuilt from the neutral
 *     fields, so edits of the monologue or of a reply (rethink, rewrite) reach
 *     the model while the signatures stay valid.
 *
 * The translation (mg_anthropic_messages, mg_anthropic_body,
 * mg_anthropic_parse_reply, mg_anthropic_error) is pure and unit-tested; the
 * provider around it only adds configuration and HTTP. Retries of 429, 5xx
 * and 529 ("overloaded") happen in the HTTP layer. Replies are checked field
 * by field: a wrong shape fails the turn with MG_ERR_PROVIDER, never crashes.
 *
 * Streaming ("stream": true) sends typed Server-Sent Events: message_start
 * (the message shell and input usage), per content block a
 * content_block_start, its deltas (text_delta, input_json_delta for tool
 * input as JSON text in pieces, thinking_delta, signature_delta) and a
 * content_block_stop, then message_delta (stop reason, output usage) and
 * message_stop; ping events and SSE comments keep the line alive, and an
 * error event reports a failure mid-stream. Each block keeps only its
 * growing text; at the end the blocks become the content array a
 * non-streaming answer would have held, thinking signatures included, and
 * go through mg_anthropic_parse_reply like one. A stream that stops before
 * message_stop (and before any stop reason) is reported as interrupted.
 */
#include "provider/anthropic.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "provider/http.h"
#include "provider/stream.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define DEFAULT_BASE_URL "https://api.anthropic.com"

/* Private key that carries a tool_result's function name between the two
 * passes of mg_anthropic_messages; never sent. */
#define NAME_KEY "_mg_function"

/* Longest piece of the API's own error text copied into an error line. */
#define ERROR_TEXT_MAX 300

/* Most content blocks one streamed reply may hold. */
#define MAX_STREAM_BLOCKS 256

/* Models per page of GET /v1/models (the API's maximum), and most pages. */
#define MODELS_PAGE_LIMIT 1000
#define MODELS_MAX_PAGES  100

typedef struct anthropic_provider {
    mg_provider base;
    char *url;        /* the full /v1/messages URL */
    char *key_header; /* "x-api-key: ..." or NULL */
} anthropic_provider;

/* ------------------------------------------------------------ small helpers */

/* A JSON string for text we hold; repaired if it is somehow not UTF-8, since
 * json_string refuses invalid UTF-8 and a missing field is worse. */
static json_t *text_value(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v) return v;
    char *fixed = mg_utf8_repair(s, strlen(s));
    v = json_string(fixed);
    free(fixed);
    return v;
}

/* A copy of a string field that came from the network, repaired to UTF-8. */
static char *network_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? mg_utf8_repair(s, json_string_length(v)) : NULL;
}

static int is_type(json_t *block, const char *type)
{
    const char *t = json_string_value(json_object_get(block, "type"));
    return t && strcmp(t, type) == 0;
}

static int same_text(const char *a, const char *b)
{
    if (!a || !*a) return !b || !*b;
    return b && strcmp(a, b) == 0;
}

/* Tool ids must match ^[a-zA-Z0-9_-]+$; ids from other providers or older
 * data may not. Mapping every other byte to '_' is deterministic, so a call
 * and its result still agree. Caller frees. */
static char *clean_id(const char *id)
{
    if (!id || !*id) return mg_xstrdup("call_unknown");
    char *out = mg_xstrdup(id);
    for (char *p = out; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
        if (!ok) *p = '_';
    }
    return out;
}

static json_t *text_block(const char *text)
{
    json_t *b = json_pack("{s:s}", "type", "text");
    json_object_set_new(b, "text", text_value(text));
    return b;
}

/* Appends a block to the last turn if it has `role`, else opens a new turn. */
static void add_block(json_t *turns, const char *role, json_t *block)
{
    json_t *last = json_array_get(turns, json_array_size(turns) - 1);
    const char *last_role = json_string_value(json_object_get(last, "role"));
    if (last_role && strcmp(last_role, role) == 0) {
        json_array_append_new(json_object_get(last, "content"), block);
        return;
    }
    json_t *turn = json_pack("{s:s, s:[]}", "role", role, "content");
    json_array_append_new(json_object_get(turn, "content"), block);
    json_array_append_new(turns, turn);
}

static int turn_is(json_t *turn, const char *role)
{
    const char *r = json_string_value(json_object_get(turn, "role"));
    return r && strcmp(r, role) == 0;
}

static json_t *placeholder_turn(void)
{
    return json_pack("{s:s, s:[o]}", "role", "user", "content",
                     text_block(MG_ANTHROPIC_PLACEHOLDER));
}

/* ------------------------------------------------------ queue to messages */

char *mg_anthropic_monologue(json_t *content)
{
    buf out = BUF_INIT;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        json_t *text = NULL;
        if (is_type(b, "text"))
            text = json_object_get(b, "text");
        else if (is_type(b, "thinking"))
            text = json_object_get(b, "thinking");
        char *s = network_string(text);
        if (s && !mg_text_blank(s)) buf_printf(&out, "%s%s", out.len ? "\n\n" : "", s);
        free(s);
    }
    return out.len ? buf_take(&out) : NULL;
}

/* The tool_use input for stored arguments: the API requires an object, and a
 * model's unparseable arguments have already been answered with a Failed
 * result, so {} loses nothing the model needs. */
static json_t *call_input(const char *arguments)
{
    json_t *v = arguments ? json_loads(arguments, 0, NULL) : NULL;
    if (json_is_object(v)) return v;
    json_decref(v);
    return json_object();
}

/* Appends the blocks of one assistant message to `out`. */
static void assistant_blocks(const mg_msg *m, json_t *out)
{
    json_t *raw = m->raw_content ? json_loads(m->raw_content, 0, NULL) : NULL;
    if (!json_is_array(raw)) {
        json_decref(raw);
        raw = NULL;
    }
    int raw_text = 0;
    if (raw) {
        char *mono = mg_anthropic_monologue(raw);
        raw_text = same_text(mono, m->content); /* not edited since it arrived */
        free(mono);
        size_t i;
        json_t *b;
        json_array_foreach(raw, i, b)
        {
            if (is_type(b, "thinking") || is_type(b, "redacted_thinking"))
                json_array_append(out, b);
        }
        json_array_foreach(raw, i, b)
        {
            const char *t = json_string_value(json_object_get(b, "text"));
            if (raw_text && is_type(b, "text") && t && !mg_text_blank(t)) json_array_append(out, b);
        }
    }
    if (!raw_text && m->content && !mg_text_blank(m->content))
        json_array_append_new(out, text_block(m->content));
    for (int c = 0; c < m->ncalls; c++) {
        char *id = clean_id(m->calls[c].id);
        json_t *b = json_pack("{s:s, s:s}", "type", "tool_use", "id", id);
        json_object_set_new(b, "name", text_value(m->calls[c].name ? m->calls[c].name : ""));
        json_object_set_new(b, "input", call_input(m->calls[c].arguments));
        json_array_append_new(out, b);
        free(id);
    }
    json_decref(raw);
}

/* Our function results say {"status":"Failed",...} when the call failed;
 * the API has a flag for that. */
static int result_failed(const char *content)
{
    json_t *v = content ? json_loads(content, 0, NULL) : NULL;
    const char *status = json_string_value(json_object_get(v, "status"));
    int failed = status && strcmp(status, "Failed") == 0;
    json_decref(v);
    return failed;
}

static json_t *tool_result_block(const mg_msg *m)
{
    char *id = clean_id(m->tool_call_id);
    json_t *b = json_pack("{s:s, s:s}", "type", "tool_result", "tool_use_id", id);
    free(id);
    if (m->content && *m->content) json_object_set_new(b, "content", text_value(m->content));
    if (result_failed(m->content)) json_object_set_new(b, "is_error", json_true());
    json_object_set_new(b, NAME_KEY, text_value(m->tool_name ? m->tool_name : "a function"));
    return b;
}

/* Pass 1: one block per piece of each message, adjacent same-role messages
 * merged into one turn. */
static json_t *merge_turns(const mg_msg *msgs, int n)
{
    json_t *turns = json_array();
    for (int i = 0; i < n; i++) {
        const mg_msg *m = &msgs[i];
        if (m->role == MG_ROLE_ASSISTANT) {
            json_t *blocks = json_array();
            assistant_blocks(m, blocks);
            size_t k;
            json_t *b;
            json_array_foreach(blocks, k, b) add_block(turns, "assistant", json_incref(b));
            json_decref(blocks);
        } else if (m->role == MG_ROLE_TOOL) {
            add_block(turns, "user", tool_result_block(m));
        } else if (m->content && !mg_text_blank(m->content)) {
            add_block(turns, "user", text_block(m->content));
        }
    }
    return turns;
}

/* Pass 2, assistant side: makes the turn's tool_use ids unique within the
 * request (the API refuses repeats; a repeated id gets a "_2", "_3" suffix)
 * and returns its calls as [[id, id as stored], ...]. `seen` holds the ids
 * of earlier turns. */
static json_t *collect_calls(json_t *turn, json_t *seen)
{
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(turn, "content"), i, b)
    {
        if (!is_type(b, "tool_use")) continue;
        char *stored = mg_xstrdup(json_string_value(json_object_get(b, "id")));
        char *unique = mg_xstrdup(stored);
        for (int k = 2; json_object_get(seen, unique); k++) {
            free(unique);
            buf u = BUF_INIT;
            buf_printf(&u, "%s_%d", stored, k);
            unique = buf_take(&u);
        }
        json_object_set_new(seen, unique, json_true());
        json_array_append_new(calls, json_pack("[s,s]", unique, stored));
        json_object_set_new(b, "id", json_string(unique));
        free(unique);
        free(stored);
    }
    return calls;
}

/* The unanswered call a result with `id` answers: by its id in the request,
 * else by the id it was stored with (renamed by collect_calls); -1 if none. */
static int match_call(json_t *calls, const char *answered, const char *id)
{
    for (size_t field = 0; field < 2; field++)
        for (size_t k = 0; k < json_array_size(calls); k++) {
            const char *c = json_string_value(json_array_get(json_array_get(calls, k), field));
            if (!answered[k] && strcmp(c, id) == 0) return (int)k;
        }
    return -1;
}

/* A result whose call is not in the previous turn, as plain text. */
static json_t *orphan_text(json_t *result)
{
    const char *name = json_string_value(json_object_get(result, NAME_KEY));
    const char *id = json_string_value(json_object_get(result, "tool_use_id"));
    const char *text = json_string_value(json_object_get(result, "content"));
    buf t = BUF_INIT;
    buf_printf(&t, "[Result of %s (call %s), whose call is no longer in view]: %s",
               name ? name : "a function", id ? id : "?", text ? text : "");
    json_t *b = text_block(buf_str(&t));
    buf_free(&t);
    return b;
}

/* Pass 2, user side: results answering `calls` (from collect_calls on the
 * previous turn; may be empty) first, in order, then error results for calls
 * left unanswered, then everything else. */
static void pair_results(json_t *turn, json_t *calls)
{
    json_t *content = json_object_get(turn, "content");
    json_t *results = json_array(), *others = json_array();
    char *answered = mg_xcalloc(json_array_size(calls) + 1, 1);
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        if (!is_type(b, "tool_result")) {
            json_array_append(others, b);
            continue;
        }
        const char *id = json_string_value(json_object_get(b, "tool_use_id"));
        int k = id ? match_call(calls, answered, id) : -1;
        if (k < 0) {
            json_array_append_new(others, orphan_text(b));
            continue;
        }
        answered[k] = 1;
        json_object_del(b, NAME_KEY);
        json_object_set(b, "tool_use_id", json_array_get(json_array_get(calls, (size_t)k), 0));
        json_array_append(results, b);
    }
    json_array_foreach(calls, i, b)
    {
        if (answered[i]) continue;
        json_array_append_new(results,
                              json_pack("{s:s, s:O, s:b, s:s}", "type", "tool_result",
                                        "tool_use_id", json_array_get(b, 0), "is_error", 1,
                                        "content", "No result was recorded for this call."));
    }
    free(answered);
    json_array_extend(results, others);
    json_decref(others);
    json_object_set_new(turn, "content", results);
}

json_t *mg_anthropic_messages(const mg_msg *msgs, int n)
{
    json_t *turns = merge_turns(msgs, n);
    if (!json_array_size(turns) || turn_is(json_array_get(turns, 0), "assistant"))
        json_array_insert_new(turns, 0, placeholder_turn());
    if (turn_is(json_array_get(turns, json_array_size(turns) - 1), "assistant"))
        json_array_append_new(turns, placeholder_turn());

    /* Turns alternate now, starting and ending with the user's. */
    json_t *seen = json_object(), *calls = json_array();
    for (size_t t = 0; t < json_array_size(turns); t++) {
        json_t *turn = json_array_get(turns, t);
        if (turn_is(turn, "assistant")) {
            json_decref(calls);
            calls = collect_calls(turn, seen);
        } else {
            pair_results(turn, calls);
            json_array_clear(calls);
        }
    }
    json_decref(calls);
    json_decref(seen);
    return turns;
}

json_t *mg_anthropic_body(const char *model, const mg_llm_request *req)
{
    json_t *body =
        json_pack("{s:s, s:i}", "model", model, "max_tokens",
                  req->max_tokens > 0 ? req->max_tokens : MG_ANTHROPIC_DEFAULT_MAX_TOKENS);
    if (req->system && *req->system) json_object_set_new(body, "system", text_value(req->system));
    json_object_set_new(body, "messages", mg_anthropic_messages(req->messages, req->nmessages));
    if (req->tools && json_array_size(req->tools)) {
        json_t *tools = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(req->tools, i, t)
        {
            json_t *tool = json_pack("{s:O}", "name", json_object_get(t, "name"));
            if (!tool) continue; /* a schema without a name cannot be offered */
            json_t *desc = json_object_get(t, "description");
            if (json_is_string(desc)) json_object_set(tool, "description", desc);
            json_t *params = json_object_get(t, "parameters");
            json_object_set_new(tool, "input_schema",
                                json_is_object(params)
                                    ? json_incref(params)
                                    : json_pack("{s:s, s:{}}", "type", "object", "properties"));
            json_array_append_new(tools, tool);
        }
        json_object_set_new(body, "tools", tools);
    }
    if (req->stream) json_object_set_new(body, "stream", json_true());
    return body;
}

/* ------------------------------------------------------------ the answer */

static int clamp_tokens(json_t *v)
{
    json_int_t n = json_integer_value(v);
    return n < 0 ? 0 : n > INT_MAX / 4 ? INT_MAX / 4 : (int)n;
}

static mg_status shape_error(mg_llm_reply *reply, mg_error *err, const char *what, size_t index)
{
    mg_llm_reply_clear(reply);
    return mg_err_set(err, MG_ERR_PROVIDER, "unexpected response shape: content block %zu %s",
                      index, what);
}

static mg_status parse_tool_use(json_t *b, size_t index, mg_llm_reply *reply, mg_error *err)
{
    json_t *name = json_object_get(b, "name");
    json_t *input = json_object_get(b, "input");
    if (!json_is_string(name) || !json_string_length(name))
        return shape_error(reply, err, "(tool_use) has no name", index);
    if (!json_is_object(input))
        return shape_error(reply, err, "(tool_use) has no input object", index);
    mg_tool_call *tc = &reply->calls[reply->ncalls++];
    tc->name = network_string(name);
    tc->id = network_string(json_object_get(b, "id"));
    if (!tc->id || !*tc->id) {
        /* Compatible servers may omit ids; results are paired by them. */
        free(tc->id);
        buf id = BUF_INIT;
        buf_printf(&id, "toolu_%zu_%lld", index, (long long)mg_now_ms());
        tc->id = buf_take(&id);
    }
    tc->arguments = json_dumps(input, JSON_COMPACT);
    if (!tc->arguments) tc->arguments = mg_xstrdup("{}");
    return MG_OK;
}

mg_status mg_anthropic_parse_reply(json_t *body, mg_llm_reply *reply, mg_error *err)
{
    const char *type = json_string_value(json_object_get(body, "type"));
    if (!type || strcmp(type, "message") != 0)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: the reply is not a message object");
    json_t *content = json_object_get(body, "content");
    if (!json_is_array(content))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: the reply has no content list");
    size_t n = json_array_size(content);
    reply->calls = mg_xcalloc(n ? n : 1, sizeof *reply->calls);
    int keep_raw = 0;
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
    {
        if (!json_is_object(b) || !json_is_string(json_object_get(b, "type")))
            return shape_error(reply, err, "has no type", i);
        if (is_type(b, "text") && !json_is_string(json_object_get(b, "text")))
            return shape_error(reply, err, "(text) has no text", i);
        if (is_type(b, "thinking") && !json_is_string(json_object_get(b, "thinking")))
            return shape_error(reply, err, "(thinking) has no thinking text", i);
        if (is_type(b, "thinking") || is_type(b, "redacted_thinking")) keep_raw = 1;
        if (is_type(b, "tool_use") && parse_tool_use(b, i, reply, err)) return MG_ERR_PROVIDER;
    }
    reply->content = mg_anthropic_monologue(content);
    if (keep_raw) reply->raw_content = json_dumps(content, JSON_COMPACT);
    json_t *usage = json_object_get(body, "usage");
    reply->prompt_tokens = clamp_tokens(json_object_get(usage, "input_tokens")) +
                           clamp_tokens(json_object_get(usage, "cache_creation_input_tokens")) +
                           clamp_tokens(json_object_get(usage, "cache_read_input_tokens"));
    reply->completion_tokens = clamp_tokens(json_object_get(usage, "output_tokens"));
    reply->cached_tokens = clamp_tokens(json_object_get(usage, "cache_read_input_tokens"));
    return MG_OK;
}

/* --------------------------------------------------------------- errors */

/* The API's error text ({"type":"error","error":{"type","message"}}), made
 * one line and cut to ERROR_TEXT_MAX bytes on a character boundary. */
static void error_text(json_t *body, char *out, size_t size)
{
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg) msg = json_string_value(e);
    if (!msg) msg = body ? "" : "(no JSON error body)";
    size_t len = mg_utf8_cut(msg, strlen(msg), size - 1);
    memcpy(out, msg, len);
    out[len] = '\0';
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
}

mg_status mg_anthropic_error(long status, json_t *body, const char *url, int retried, mg_error *err)
{
    char text[ERROR_TEXT_MAX + 1];
    error_text(body, text, sizeof text);
    const char *type = json_string_value(json_object_get(json_object_get(body, "error"), "type"));
    if (status == 401 || status == 403)
        return mg_err_set(err, MG_ERR_AUTH,
                          "%s refused the credentials (HTTP %ld): %s; check ANTHROPIC_API_KEY", url,
                          status, text);
    /* Too long for the window, or leaving no room for max_tokens in it: either
     * way evicting old messages is the cure. */
    if (status == 400 && (!type || strcmp(type, "invalid_request_error") == 0) &&
        (strstr(text, "prompt is too long") ||
         strstr(text, "input length and `max_tokens` exceed context limit")))
        return mg_err_set(err, MG_ERR_CONTEXT, "the request is too long for the model: %s", text);
    return mg_err_set(err, MG_ERR_PROVIDER, "%s answered HTTP %ld%s: %s%s%s", url, status,
                      retried ? " after retries" : "", type ? type : "", type ? ": " : "", text);
}

/* -------------------------------------------------------------- provider */

static mg_status read_config(char **url, char **key_header, mg_error *err)
{
    const char *base = getenv("ANTHROPIC_BASE_URL");
    if (!base || !*base) base = DEFAULT_BASE_URL;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    const char *key = getenv("ANTHROPIC_API_KEY");
    if ((!key || !*key) && strncmp(base, DEFAULT_BASE_URL, strlen(DEFAULT_BASE_URL)) == 0)
        return mg_err_set(err, MG_ERR_AUTH,
                          "ANTHROPIC_API_KEY is not set: export it, or point ANTHROPIC_BASE_URL "
                          "at a server that speaks the Anthropic Messages API");
    /* The SDKs' base URL has no /v1; accept one that has it too. */
    int has_v1 = n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0;
    buf u = BUF_INIT;
    buf_printf(&u, "%.*s%s", (int)n, base, has_v1 ? "/messages" : "/v1/messages");
    *url = buf_take(&u);
    *key_header = NULL;
    if (key && *key) {
        buf h = BUF_INIT;
        buf_printf(&h, "x-api-key: %s", key);
        *key_header = buf_take(&h);
    }
    return MG_OK;
}

/* ------------------------------------------------------------ streaming */

/* One content block being assembled. */
typedef struct stream_block {
    json_int_t index; /* its index on the wire */
    json_t *block;    /* as content_block_start gave it */
    buf text;         /* text, thinking, or tool input JSON so far */
    buf signature;    /* thinking */
    int call;         /* tool_use: its position among the reply's calls, else -1 */
} stream_block;

typedef struct message_stream {
    const char *url;
    const mg_stream_sink *sink;
    mg_sse_parser sse;
    mg_plain_body plain; /* a server that ignored "stream" */
    stream_block *blocks;
    int nblocks, ncalls;
    json_t *usage;   /* message_start's, updated by message_delta */
    int stop_reason; /* message_delta said why the message stopped */
    int stopped;     /* message_stop arrived */
    mg_status st;    /* the first failure found in the stream */
    mg_error err;
} message_stream;

static int stream_fail(message_stream *s, const char *what, json_int_t index)
{
    s->st = mg_err_set(&s->err, MG_ERR_PROVIDER, "%s: unexpected stream: %s (block %lld)", s->url,
                       what, (long long)index);
    return 1;
}

static stream_block *block_at(message_stream *s, json_int_t index)
{
    for (int i = 0; i < s->nblocks; i++)
        if (s->blocks[i].index == index) return &s->blocks[i];
    return NULL;
}

static const char *block_string(stream_block *b, const char *key)
{
    const char *v = json_string_value(json_object_get(b->block, key));
    return v ? v : "";
}

static int block_start(message_stream *s, json_t *ev)
{
    json_t *index = json_object_get(ev, "index");
    json_t *cb = json_object_get(ev, "content_block");
    json_int_t i = json_integer_value(index);
    if (!json_is_integer(index) || i < 0) return stream_fail(s, "a block without an index", -1);
    if (!json_is_object(cb) || !json_is_string(json_object_get(cb, "type")))
        return stream_fail(s, "a block without a type", i);
    if (block_at(s, i)) return stream_fail(s, "a block started twice", i);
    /* Blocks start in index order. A tool_use block's number among the
     * calls is given to the sink at its start, and the reply numbers calls
     * in index order: a block starting below an earlier one would have
     * its pieces shown under another call's number and id (found by
     * fuzz/fuzz_anthropic.c). */
    if (s->nblocks && i < s->blocks[s->nblocks - 1].index)
        return stream_fail(s, "a block started out of order", i);
    if (s->nblocks == MAX_STREAM_BLOCKS) return stream_fail(s, "too many blocks", i);
    s->blocks = mg_xrealloc(s->blocks, (size_t)(s->nblocks + 1) * sizeof *s->blocks);
    stream_block *b = &s->blocks[s->nblocks++];
    memset(b, 0, sizeof *b);
    b->index = i;
    b->block = json_deep_copy(cb);
    b->call = -1;
    if (is_type(cb, "text")) buf_puts(&b->text, block_string(b, "text"));
    if (is_type(cb, "thinking")) {
        buf_puts(&b->text, block_string(b, "thinking"));
        buf_puts(&b->signature, block_string(b, "signature"));
    }
    if (is_type(cb, "tool_use")) {
        b->call = s->ncalls++;
        if (!*block_string(b, "id")) {
            /* As mg_anthropic_parse_reply would, but now: the sink needs it. */
            buf id = BUF_INIT;
            buf_printf(&id, "toolu_%lld_%lld", (long long)i, (long long)mg_now_ms());
            json_object_set_new(b->block, "id", json_string(buf_str(&id)));
            buf_free(&id);
        }
    }
    return 0;
}

/* A string field of a delta, appended to `to`; 0 if it is not a string. */
static int delta_text(json_t *delta, const char *key, buf *to, const char **piece, size_t *n)
{
    json_t *v = json_object_get(delta, key);
    if (!json_is_string(v)) return 0;
    *piece = json_string_value(v);
    *n = json_string_length(v);
    buf_append(to, *piece, *n);
    return 1;
}

static int block_delta(message_stream *s, json_t *ev)
{
    json_t *index = json_object_get(ev, "index");
    json_int_t i = json_integer_value(index);
    stream_block *b = json_is_integer(index) ? block_at(s, i) : NULL;
    json_t *delta = json_object_get(ev, "delta");
    if (!b) return stream_fail(s, "a delta for a block that never started", i);
    const char *type = json_string_value(json_object_get(delta, "type"));
    const char *piece = NULL;
    size_t n = 0;
    if (!type) return stream_fail(s, "a delta without a type", i);
    if (strcmp(type, "text_delta") == 0 && is_type(b->block, "text")) {
        if (!delta_text(delta, "text", &b->text, &piece, &n))
            return stream_fail(s, "a text_delta without text", i);
        if (n && s->sink->on_content) s->sink->on_content(s->sink->user, piece, n);
    } else if (strcmp(type, "input_json_delta") == 0 && b->call >= 0) {
        if (!delta_text(delta, "partial_json", &b->text, &piece, &n))
            return stream_fail(s, "an input_json_delta without partial_json", i);
        if (n && s->sink->on_tool_args)
            s->sink->on_tool_args(s->sink->user, b->call, block_string(b, "id"),
                                  block_string(b, "name"), piece, n);
    } else if (strcmp(type, "thinking_delta") == 0 && is_type(b->block, "thinking")) {
        if (!delta_text(delta, "thinking", &b->text, &piece, &n))
            return stream_fail(s, "a thinking_delta without thinking", i);
    } else if (strcmp(type, "signature_delta") == 0 && is_type(b->block, "thinking")) {
        if (!delta_text(delta, "signature", &b->signature, &piece, &n))
            return stream_fail(s, "a signature_delta without a signature", i);
    } else if (strcmp(type, "text_delta") == 0 || strcmp(type, "input_json_delta") == 0 ||
               strcmp(type, "thinking_delta") == 0 || strcmp(type, "signature_delta") == 0) {
        return stream_fail(s, "a delta of the wrong kind for its block", i);
    }
    /* Other delta types (citations_delta, ...) carry nothing we keep. */
    return 0;
}

static void merge_usage(message_stream *s, json_t *usage)
{
    if (!json_is_object(usage)) return;
    if (!s->usage) s->usage = json_object();
    json_object_update(s->usage, usage);
}

static int stream_error_event(message_stream *s, json_t *ev)
{
    json_t *e = json_object_get(ev, "error");
    char text[ERROR_TEXT_MAX + 1];
    error_text(ev, text, sizeof text);
    const char *type = json_string_value(json_object_get(e, "type"));
    s->st = mg_err_set(&s->err, MG_ERR_PROVIDER, "%s reported an error in the stream: %s%s%s",
                       s->url, type ? type : "", type ? ": " : "", *text ? text : "(no message)");
    return 1;
}

static int on_message_event(void *user, const char *event, const char *data, size_t len)
{
    message_stream *s = user;
    char *repaired = mg_json_repair(data, len);
    json_t *ev = json_loads(repaired, 0, NULL);
    free(repaired);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return stream_fail(s, "an event that is not a JSON object", -1);
    }
    /* The data's own type is the truth; the event name is only a hint. */
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type) type = event;
    int rc = 0;
    if (strcmp(type, "message_start") == 0)
        merge_usage(s, json_object_get(json_object_get(ev, "message"), "usage"));
    else if (strcmp(type, "content_block_start") == 0)
        rc = block_start(s, ev);
    else if (strcmp(type, "content_block_delta") == 0)
        rc = block_delta(s, ev);
    else if (strcmp(type, "message_delta") == 0) {
        merge_usage(s, json_object_get(ev, "usage"));
        if (json_is_string(json_object_get(json_object_get(ev, "delta"), "stop_reason")))
            s->stop_reason = 1;
    } else if (strcmp(type, "message_stop") == 0)
        s->stopped = 1;
    else if (strcmp(type, "error") == 0)
        rc = stream_error_event(s, ev);
    /* ping, content_block_stop and event types added later need nothing. */
    json_decref(ev);
    return rc;
}

static int on_message_data(const char *data, size_t len, void *user)
{
    message_stream *s = user;
    if (mg_plain_body_feed(&s->plain, data, len)) return 0;
    int rc = mg_sse_feed(&s->sse, data, len);
    if (rc == MG_STREAM_TOO_LARGE) return stream_fail(s, "an event too large", -1);
    return rc;
}

static int by_index(const void *a, const void *b)
{
    json_int_t x = ((const stream_block *)a)->index, y = ((const stream_block *)b)->index;
    return (x > y) - (x < y);
}

/* A finished block as the non-streaming content array holds it. */
static json_t *finished_block(stream_block *b, mg_error *err)
{
    json_t *block = json_deep_copy(b->block);
    if (is_type(block, "text")) {
        json_object_set_new(block, "text", json_stringn(buf_str(&b->text), b->text.len));
    } else if (is_type(block, "thinking")) {
        json_object_set_new(block, "thinking", json_stringn(buf_str(&b->text), b->text.len));
        json_object_set_new(block, "signature",
                            json_stringn(buf_str(&b->signature), b->signature.len));
    } else if (is_type(block, "tool_use") && b->text.len) {
        json_t *input = json_loadb(b->text.data, b->text.len, 0, NULL);
        if (!json_is_object(input)) {
            json_decref(input);
            json_decref(block);
            mg_err_set(err, MG_ERR_PROVIDER,
                       "unexpected response shape: content block %lld (tool_use) input is not "
                       "a JSON object",
                       (long long)b->index);
            return NULL;
        }
        json_object_set_new(block, "input", input);
    }
    return block;
}

static mg_status stream_finish(message_stream *s, mg_llm_reply *reply, mg_error *err)
{
    json_t *body = NULL;
    mg_status st = MG_OK;
    if (s->plain.plain) {
        json_error_t jerr;
        char *repaired = mg_json_repair(buf_str(&s->plain.body), s->plain.body.len);
        body = json_loads(repaired, 0, &jerr);
        free(repaired);
        if (!json_is_object(body))
            st = mg_err_set(err, MG_ERR_PROVIDER,
                            "%s answered with a body that is not a JSON object (%s)", s->url,
                            body ? "another JSON type" : jerr.text);
    } else if (mg_sse_finish(&s->sse) || s->st) {
        *err = s->err;
        st = s->st ? s->st : MG_ERR_PROVIDER;
    } else if (!s->stopped && !s->stop_reason) {
        reply->interrupted = 1;
        st = mg_err_set(err, MG_ERR_PROVIDER,
                        "the reply stream from %s ended before the reply was complete", s->url);
    } else {
        /* qsort must not be given NULL, even for no blocks (UBSan, found
         * by fuzz/fuzz_anthropic.c: a message_stop with no block before). */
        if (s->nblocks) qsort(s->blocks, (size_t)s->nblocks, sizeof *s->blocks, by_index);
        json_t *content = json_array();
        for (int i = 0; i < s->nblocks && !st; i++) {
            json_t *block = finished_block(&s->blocks[i], err);
            if (!block) st = MG_ERR_PROVIDER;
            json_array_append_new(content, block);
        }
        body = json_pack("{s:s, s:o}", "type", "message", "content", content);
        if (s->usage) json_object_set(body, "usage", s->usage);
    }
    if (!st) st = mg_anthropic_parse_reply(body, reply, err);
    json_decref(body);
    return st;
}

static void stream_free(message_stream *s)
{
    mg_sse_free(&s->sse);
    buf_free(&s->plain.body);
    for (int i = 0; i < s->nblocks; i++) {
        json_decref(s->blocks[i].block);
        buf_free(&s->blocks[i].text);
        buf_free(&s->blocks[i].signature);
    }
    free(s->blocks);
    json_decref(s->usage);
}

/* A whole (not streamed) answer: the reply, or the status the agent acts
 * on. */
static mg_status read_body(const char *url, long status, const char *body, size_t len, int attempts,
                           mg_llm_reply *reply, mg_error *err)
{
    /* Repaired first, so a stray invalid byte or \u0000 in the model's
     * text does not make the whole reply unreadable. */
    char *repaired = mg_json_repair(body ? body : "", len);
    json_error_t jerr;
    json_t *parsed = json_loads(repaired, 0, &jerr);
    free(repaired);
    mg_status st;
    if (status < 200 || status >= 300)
        st = mg_anthropic_error(status, parsed, url, attempts > 1, err);
    else if (!json_is_object(parsed))
        st = mg_err_set(err, MG_ERR_PROVIDER,
                        "%s answered with a body that is not a JSON object (%s)", url,
                        parsed ? "another JSON type" : jerr.text);
    else
        st = mg_anthropic_parse_reply(parsed, reply, err);
    json_decref(parsed);
    return st;
}

mg_status mg_anthropic_read_answer(const char *const *pieces, const size_t *lens, size_t n,
                                   const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err)
{
    static const char url[] = "the server"; /* for the messages */
    if (!sink) {
        buf body = BUF_INIT;
        for (size_t i = 0; i < n; i++)
            buf_append(&body, pieces[i], lens[i]);
        mg_status st = read_body(url, 200, body.data, body.len, 1, reply, err);
        buf_free(&body);
        return st;
    }
    /* What anthropic_chat does around a streamed transfer, with the pieces
     * as the transfer's deliveries: a nonzero return stops it. */
    message_stream s = {.url = url, .sink = sink};
    mg_sse_init(&s.sse, on_message_event, &s);
    int stopped = 0;
    for (size_t i = 0; i < n && !stopped; i++)
        stopped = on_message_data(pieces[i], lens[i], &s);
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

/* ------------------------------------------------------------- the call */

static mg_status anthropic_chat(mg_provider *base, const mg_llm_request *req, mg_llm_reply *reply,
                                mg_error *err)
{
    anthropic_provider *p = (anthropic_provider *)base;
    json_t *body = mg_anthropic_body(base->model, req);
    char *payload = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!payload) return mg_err_set(err, MG_ERR_INTERNAL, "could not encode the request");
    const char *headers[] = {"Content-Type: application/json",
                             "anthropic-version: " MG_ANTHROPIC_VERSION, p->key_header, NULL};
    mg_http_request hreq = {"POST", p->url, headers, payload, strlen(payload), 0, NULL};
    mg_http_response resp = {0};
    int attempts = 0;
    message_stream s = {.url = p->url, .sink = req->stream};
    mg_sse_init(&s.sse, on_message_event, &s);
    mg_status st = req->stream ? mg_http_perform_stream(&hreq, NULL, on_message_data, &s, &resp,
                                                        &attempts, err)
                               : mg_http_perform_retry(&hreq, NULL, &resp, &attempts, err);
    free(payload);
    if (st) {
        if (s.st) {
            *err = s.err; /* our own reason for stopping the transfer */
            st = s.st;
        }
        reply->interrupted = resp.cut_off;
        stream_free(&s);
        return st;
    }
    if (req->stream && resp.status >= 200 && resp.status < 300)
        st = stream_finish(&s, reply, err);
    else
        st = read_body(p->url, resp.status, resp.body, resp.body_len, attempts, reply, err);
    stream_free(&s);
    mg_http_response_free(&resp);
    if (st) mg_llm_reply_discard(reply);
    return st;
}

static void anthropic_destroy(mg_provider *base)
{
    anthropic_provider *p = (anthropic_provider *)base;
    free(p->base.model);
    free(p->url);
    free(p->key_header);
    free(p);
}

/* ---------------------------------------------------------- the model list */

mg_status mg_anthropic_models_page(json_t *body, json_t *out, char **next, mg_error *err)
{
    *next = NULL;
    json_t *data = json_object_get(body, "data");
    json_t *more = json_object_get(body, "has_more");
    if (!json_is_array(data) || !json_is_boolean(more))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: GET /v1/models has no data list or no "
                          "has_more");
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m)
    {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "id"))) continue;
        json_array_append_new(out, json_deep_copy(m));
    }
    if (!json_is_true(more)) return MG_OK;
    const char *last = json_string_value(json_object_get(body, "last_id"));
    if (!last || !*last || json_array_size(data) == 0)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: GET /v1/models says has_more but gives no "
                          "last_id to continue after");
    *next = mg_xstrdup(last);
    return MG_OK;
}

/* Model ids are [a-z0-9.-] in practice; anything else is percent-encoded so a
 * hostile last_id cannot change the request. */
static void append_query_value(buf *b, const char *v)
{
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~')
            buf_append(b, (const char *)c, 1);
        else
            buf_printf(b, "%%%02X", *c);
    }
}

/* GET /v1/models, page by page (after_id = the previous page's last_id) until
 * has_more is false. MODELS_MAX_PAGES bounds a server that never says so. */
static mg_status anthropic_list_models(mg_provider *base, json_t **models, mg_error *err)
{
    anthropic_provider *p = (anthropic_provider *)base;
    *models = NULL;
    /* p->url ends in "/messages" (see read_config). */
    size_t stem = strlen(p->url) - strlen("messages");
    const char *headers[] = {"Accept: application/json", "anthropic-version: " MG_ANTHROPIC_VERSION,
                             p->key_header, NULL};
    json_t *out = json_array();
    char *after = NULL;
    mg_status st = MG_OK;
    for (int page = 0; !st; page++) {
        if (page == MODELS_MAX_PAGES) {
            st = mg_err_set(err, MG_ERR_PROVIDER,
                            "GET /v1/models still has more after %d pages; giving up",
                            MODELS_MAX_PAGES);
            break;
        }
        buf url = BUF_INIT;
        buf_printf(&url, "%.*smodels?limit=%d", (int)stem, p->url, MODELS_PAGE_LIMIT);
        if (after) {
            buf_printf(&url, "&after_id=");
            append_query_value(&url, after);
        }
        mg_http_request hreq = {"GET", buf_str(&url), headers, NULL, 0, 0, NULL};
        mg_http_response resp = {0};
        int attempts = 0;
        st = mg_http_perform_retry(&hreq, NULL, &resp, &attempts, err);
        if (!st) {
            json_error_t jerr;
            json_t *parsed = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, &jerr);
            char *next = NULL;
            if (resp.status < 200 || resp.status >= 300)
                st = mg_anthropic_error(resp.status, parsed, buf_str(&url), attempts > 1, err);
            else if (!json_is_object(parsed))
                st = mg_err_set(err, MG_ERR_PROVIDER,
                                "GET /v1/models answered with a body that is not a JSON object");
            else
                st = mg_anthropic_models_page(parsed, out, &next, err);
            json_decref(parsed);
            if (!st && next && after && strcmp(next, after) == 0)
                st = mg_err_set(err, MG_ERR_PROVIDER,
                                "GET /v1/models gave the same last_id twice; giving up");
            free(after);
            after = next;
        }
        mg_http_response_free(&resp);
        buf_free(&url);
        if (!after) break;
    }
    free(after);
    if (st) {
        json_decref(out);
        return st;
    }
    *models = out;
    return MG_OK;
}

static const mg_provider_ops anthropic_ops = {
    .prefix = "anthropic",
    .chat = anthropic_chat,
    .destroy = anthropic_destroy,
    .list_models = anthropic_list_models,
};

mg_status mg_anthropic_open(const char *model, mg_provider **out, mg_error *err)
{
    *out = NULL;
    char *url = NULL, *key = NULL;
    mg_status st = read_config(&url, &key, err);
    if (st) return st;
    anthropic_provider *p = mg_xcalloc(1, sizeof *p);
    p->base.ops = &anthropic_ops;
    p->base.model = mg_xstrdup(model);
    p->url = url;
    p->key_header = key;
    *out = &p->base;
    return MG_OK;
}
