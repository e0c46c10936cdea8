/* Unit tests of the Anthropic translation: the queue-to-messages mapping
 * (merging, ordering, pairing, placeholders, thinking passthrough), the
 * request body, reading replies (and refusing malformed ones), error
 * mapping and configuration. No server: everything here is pure. */
#include "testutil.h"

#include "provider/anthropic.h"
#include "util/err.h"

/* ---------------------------------------------------------------- helpers */

static mg_msg user(const char *text)
{
    return (mg_msg){.role = MG_ROLE_USER,
                    .kind = mg_xstrdup("user_message"),
                    .content = text ? mg_xstrdup(text) : NULL};
}

static mg_msg tool(const char *id, const char *name, const char *result)
{
    return (mg_msg){.role = MG_ROLE_TOOL,
                    .kind = mg_xstrdup("tool"),
                    .content = mg_xstrdup(result),
                    .tool_call_id = mg_xstrdup(id),
                    .tool_name = mg_xstrdup(name)};
}

/* An assistant message with `n` calls given as id, name, arguments triples. */
static mg_msg assistant(const char *text, int n, ...)
{
    mg_msg m = {.role = MG_ROLE_ASSISTANT,
                .kind = mg_xstrdup("assistant"),
                .content = text ? mg_xstrdup(text) : NULL};
    m.calls = mg_xcalloc(n ? (size_t)n : 1, sizeof *m.calls);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        m.calls[i].id = mg_xstrdup(va_arg(ap, const char *));
        m.calls[i].name = mg_xstrdup(va_arg(ap, const char *));
        m.calls[i].arguments = mg_xstrdup(va_arg(ap, const char *));
    }
    va_end(ap);
    m.ncalls = n;
    return m;
}

static void free_msgs(mg_msg *msgs, int n)
{
    for (int i = 0; i < n; i++)
        mg_msg_clear(&msgs[i]);
}

/* Asserts that `j` serializes exactly to `expected` (compact, sorted keys). */
static void assert_json(json_t *j, const char *expected)
{
    json_t *want = json_loads(expected, 0, NULL);
    if (!want) fail_msg("test bug: expected JSON does not parse: %s", expected);
    if (!json_equal(j, want)) {
        char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        char *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "got:      %s\nexpected: %s\n", got, exp);
        free(got);
        free(exp);
        json_decref(want);
        fail_msg("JSON differs");
    }
    json_decref(want);
}

static json_t *map(mg_msg *msgs, int n)
{
    json_t *out = mg_anthropic_messages(msgs, n);
    assert_non_null(out);
    return out;
}

/* --------------------------------------------------------------- mapping */

static void test_tool_results_and_heartbeat_become_one_user_turn(void **state)
{
    mg_msg q[] = {
        user("{\"type\":\"user_message\",\"message\":\"hi\"}"),
        assistant("Looking.", 2, "t1", "archival_memory_search", "{\"query\":\"x\"}", "t2",
                  "send_message", "{\"message\":\"hello\"}"),
        tool("t1", "archival_memory_search", "{\"status\":\"OK\",\"message\":\"none\"}"),
        tool("t2", "send_message", "{\"status\":\"OK\",\"message\":\"None\"}"),
        user("{\"type\":\"heartbeat\",\"reason\":\"go on\"}"),
    };
    json_t *m = map(q, 5);
    assert_json(m, "["
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                   "\"{\\\"type\\\":\\\"user_message\\\",\\\"message\\\":\\\"hi\\\"}\"}]},"
                   "{\"role\":\"assistant\",\"content\":["
                   "{\"type\":\"text\",\"text\":\"Looking.\"},"
                   "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"archival_memory_search\","
                   "\"input\":{\"query\":\"x\"}},"
                   "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"send_message\","
                   "\"input\":{\"message\":\"hello\"}}]},"
                   "{\"role\":\"user\",\"content\":["
                   "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":"
                   "\"{\\\"status\\\":\\\"OK\\\",\\\"message\\\":\\\"none\\\"}\"},"
                   "{\"type\":\"tool_result\",\"tool_use_id\":\"t2\",\"content\":"
                   "\"{\\\"status\\\":\\\"OK\\\",\\\"message\\\":\\\"None\\\"}\"},"
                   "{\"type\":\"text\",\"text\":"
                   "\"{\\\"type\\\":\\\"heartbeat\\\",\\\"reason\\\":\\\"go on\\\"}\"}]}]");
    json_decref(m);
    free_msgs(q, 5);
}

static void test_consecutive_user_events_merge(void **state)
{
    mg_msg q[] = {user("login"), user("first"), user(""), user("   "), user("second")};
    json_t *m = map(q, 5);
    assert_json(m, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"login\"},"
                   "{\"type\":\"text\",\"text\":\"first\"},"
                   "{\"type\":\"text\",\"text\":\"second\"}]}]");
    json_decref(m);
    free_msgs(q, 5);
}

static void test_queue_starting_with_assistant_gets_placeholder(void **state)
{
    mg_msg q[] = {assistant("old thought", 0), user("next")};
    json_t *m = map(q, 2);
    assert_json(
        m,
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"" MG_ANTHROPIC_PLACEHOLDER
        "\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"old "
        "thought\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"next\"}]}]");
    json_decref(m);
    free_msgs(q, 2);
}

static void test_empty_queue_and_trailing_assistant(void **state)
{
    json_t *m = map(NULL, 0);
    assert_json(m, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                   "\"" MG_ANTHROPIC_PLACEHOLDER "\"}]}]");
    json_decref(m);

    mg_msg q[] = {user("hi"), assistant("answer", 0)};
    m = map(q, 2);
    assert_int_equal(json_array_size(m), 3);
    json_t *last = json_array_get(m, 2);
    assert_string_equal(json_string_value(json_object_get(last, "role")), "user");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(last, "content"), 0), "text")),
                        MG_ANTHROPIC_PLACEHOLDER);
    json_decref(m);
    free_msgs(q, 2);
}

static void test_empty_assistant_is_dropped_and_neighbours_merge(void **state)
{
    mg_msg q[] = {user("a"), assistant(NULL, 0), assistant("  \n", 0), user("b")};
    json_t *m = map(q, 4);
    assert_json(m, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                   "{\"type\":\"text\",\"text\":\"b\"}]}]");
    json_decref(m);
    free_msgs(q, 4);
}

static void test_tool_results_come_first(void **state)
{
    /* An event stored between a call and its result must not separate them. */
    mg_msg q[] = {user("go"), assistant(NULL, 1, "c1", "f", "{}"), user("alert"),
                  tool("c1", "f", "done")};
    json_t *m = map(q, 4);
    assert_json(json_array_get(m, 2),
                "{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"c1\",\"content\":\"done\"},"
                "{\"type\":\"text\",\"text\":\"alert\"}]}");
    json_decref(m);
    free_msgs(q, 4);
}

static void test_orphan_result_becomes_text(void **state)
{
    /* Its call was evicted: the result cannot be a tool_result any more. */
    mg_msg q[] = {tool("gone", "conversation_search", "{\"status\":\"OK\"}"), user("hi"),
                  assistant(NULL, 1, "c2", "f", "{}"), tool("other", "g", "stray"),
                  tool("c2", "f", "ok")};
    json_t *m = map(q, 5);
    assert_int_equal(json_array_size(m), 3);
    json_t *first = json_object_get(json_array_get(m, 0), "content");
    assert_int_equal(json_array_size(first), 2);
    const char *t = json_string_value(json_object_get(json_array_get(first, 0), "text"));
    assert_non_null(t);
    assert_non_null(strstr(t, "conversation_search"));
    assert_non_null(strstr(t, "gone"));
    assert_non_null(strstr(t, "{\"status\":\"OK\"}"));
    /* The stray result in the last turn is text too, after the real one. */
    json_t *last = json_object_get(json_array_get(m, 2), "content");
    assert_int_equal(json_array_size(last), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(last, 0), "tool_use_id")),
                        "c2");
    assert_null(json_object_get(json_array_get(last, 0), "_mg_function"));
    assert_non_null(
        strstr(json_string_value(json_object_get(json_array_get(last, 1), "text")), "stray"));
    json_decref(m);
    free_msgs(q, 5);
}

static void test_missing_result_is_answered(void **state)
{
    mg_msg q[] = {user("go"), assistant(NULL, 2, "a", "f", "{}", "b", "g", "{}"),
                  tool("a", "f", "ok"), user("heartbeat")};
    json_t *m = map(q, 4);
    assert_json(json_array_get(m, 2),
                "{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"a\",\"content\":\"ok\"},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"b\",\"is_error\":true,"
                "\"content\":\"No result was recorded for this call.\"},"
                "{\"type\":\"text\",\"text\":\"heartbeat\"}]}");
    json_decref(m);
    free_msgs(q, 4);

    /* The queue ends with the calls: a user turn is added to answer them. */
    mg_msg q2[] = {user("go"), assistant("x", 1, "z", "f", "{}")};
    m = map(q2, 2);
    assert_int_equal(json_array_size(m), 3);
    json_t *c = json_object_get(json_array_get(m, 2), "content");
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "tool_use_id")),
                        "z");
    json_decref(m);
    free_msgs(q2, 2);
}

static void test_ids_arguments_and_failures(void **state)
{
    mg_msg q[] = {user("go"), assistant(NULL, 2, "call.1/x", "f", "not json", "", "g", "[1]"),
                  tool("call.1/x", "f", "{\"status\":\"Failed\",\"message\":\"bad\"}"),
                  tool("", "g", "{\"status\":\"OK\"}")};
    json_t *m = map(q, 4);
    assert_json(json_object_get(json_array_get(m, 1), "content"),
                "[{\"type\":\"tool_use\",\"id\":\"call_1_x\",\"name\":\"f\",\"input\":{}},"
                "{\"type\":\"tool_use\",\"id\":\"call_unknown\",\"name\":\"g\",\"input\":{}}]");
    assert_json(json_object_get(json_array_get(m, 2), "content"),
                "[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1_x\",\"is_error\":true,"
                "\"content\":\"{\\\"status\\\":\\\"Failed\\\",\\\"message\\\":\\\"bad\\\"}\"},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"call_unknown\","
                "\"content\":\"{\\\"status\\\":\\\"OK\\\"}\"}]");
    json_decref(m);
    free_msgs(q, 4);
}

static void test_repeated_ids_are_made_unique(void **state)
{
    /* Ids reused by an earlier turn, and twice within one turn (possible
     * with other providers' data): the API refuses repeats in a request. */
    mg_msg q[] = {user("go"),
                  assistant(NULL, 1, "say", "send_message", "{}"),
                  tool("say", "s", "one"),
                  user("again"),
                  assistant(NULL, 2, "say", "f", "{}", "say", "g", "{}"),
                  tool("say", "f", "two"),
                  tool("say", "g", "three")};
    json_t *m = map(q, 7);
    assert_int_equal(json_array_size(m), 5);
    json_t *calls = json_object_get(json_array_get(m, 3), "content");
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "id")),
                        "say_2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 1), "id")),
                        "say_3");
    assert_json(json_object_get(json_array_get(m, 4), "content"),
                "[{\"type\":\"tool_result\",\"tool_use_id\":\"say_2\",\"content\":\"two\"},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"say_3\",\"content\":\"three\"}]");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_array_get(m, 2), "content"), 0), "tool_use_id")),
        "say");
    json_decref(m);
    free_msgs(q, 7);
}

/* ------------------------------------------------------------- thinking */

static const char *thinking_reply =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
    "\"content\":["
    "{\"type\":\"thinking\",\"thinking\":\"The user greets me.\",\"signature\":\"sig-A\"},"
    "{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},"
    "{\"type\":\"text\",\"text\":\"Replying.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"send_message\","
    "\"input\":{\"message\":\"Hi!\",\"n\":1}}],"
    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":100,\"output_tokens\":20,\"cache_read_input_tokens\":5}}";

/* The stored message for the reply above, as the loop would build it. */
static mg_msg message_from_reply(const char *json)
{
    json_t *body = json_loads(json, 0, NULL);
    mg_llm_reply r = {0};
    mg_error err = {0};
    assert_int_equal(mg_anthropic_parse_reply(body, &r, &err), MG_OK);
    json_decref(body);
    mg_msg m = {.role = MG_ROLE_ASSISTANT,
                .kind = mg_xstrdup("assistant"),
                .content = r.content,
                .calls = r.calls,
                .ncalls = r.ncalls,
                .raw_content = r.raw_content};
    return m;
}

static void test_parse_reply_with_thinking(void **state)
{
    json_t *body = json_loads(thinking_reply, 0, NULL);
    mg_llm_reply r = {0};
    mg_error err = {0};
    assert_int_equal(mg_anthropic_parse_reply(body, &r, &err), MG_OK);
    assert_string_equal(r.content, "The user greets me.\n\nReplying.");
    assert_int_equal(r.ncalls, 1);
    assert_string_equal(r.calls[0].id, "toolu_1");
    assert_string_equal(r.calls[0].name, "send_message");
    assert_string_equal(r.calls[0].arguments, "{\"message\":\"Hi!\",\"n\":1}");
    assert_int_equal(r.prompt_tokens, 105);
    assert_int_equal(r.completion_tokens, 20);
    assert_non_null(r.raw_content);
    json_t *raw = json_loads(r.raw_content, 0, NULL);
    assert_true(json_equal(raw, json_object_get(body, "content")));
    json_decref(raw);
    json_decref(body);
    mg_llm_reply_clear(&r);
    assert_null(r.content);
}

static void test_thinking_blocks_are_sent_back_unchanged(void **state)
{
    mg_msg q[3] = {user("hi"), message_from_reply(thinking_reply),
                   tool("toolu_1", "send_message", "{\"status\":\"OK\"}")};
    json_t *m = map(q, 3);
    assert_json(json_object_get(json_array_get(m, 1), "content"),
                "["
                "{\"type\":\"thinking\",\"thinking\":\"The user greets me.\",\"signature\":"
                "\"sig-A\"},"
                "{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},"
                "{\"type\":\"text\",\"text\":\"Replying.\"},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"send_message\","
                "\"input\":{\"message\":\"Hi!\",\"n\":1}}]");
    json_decref(m);

    /* /rethink and /rewrite: edits reach the model, signatures stay intact. */
    free(q[1].content);
    q[1].content = mg_xstrdup("A new thought.");
    free(q[1].calls[0].arguments);
    q[1].calls[0].arguments = mg_xstrdup("{\"message\":\"Hello!\"}");
    m = map(q, 3);
    assert_json(json_object_get(json_array_get(m, 1), "content"),
                "["
                "{\"type\":\"thinking\",\"thinking\":\"The user greets me.\",\"signature\":"
                "\"sig-A\"},"
                "{\"type\":\"redacted_thinking\",\"data\":\"opaque\"},"
                "{\"type\":\"text\",\"text\":\"A new thought.\"},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"send_message\","
                "\"input\":{\"message\":\"Hello!\"}}]");
    json_decref(m);

    /* Raw content that is not a JSON array is ignored, not trusted. */
    free(q[1].raw_content);
    q[1].raw_content = mg_xstrdup("{broken");
    m = map(q, 3);
    json_t *c = json_object_get(json_array_get(m, 1), "content");
    assert_int_equal(json_array_size(c), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "type")), "text");
    json_decref(m);
    free_msgs(q, 3);
}

static void test_no_raw_content_without_thinking(void **state)
{
    json_t *body = json_loads("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
                              "\"plain\"},{\"type\":\"server_tool_use\",\"id\":\"s\"}],"
                              "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
                              0, NULL);
    mg_llm_reply r = {0};
    mg_error err = {0};
    assert_int_equal(mg_anthropic_parse_reply(body, &r, &err), MG_OK);
    assert_string_equal(r.content, "plain");
    assert_null(r.raw_content);
    assert_int_equal(r.ncalls, 0);
    mg_llm_reply_clear(&r);
    json_decref(body);

    /* No text at all: content NULL, still fine. */
    body = json_loads("{\"type\":\"message\",\"content\":[]}", 0, NULL);
    assert_int_equal(mg_anthropic_parse_reply(body, &r, &err), MG_OK);
    assert_null(r.content);
    mg_llm_reply_clear(&r);
    json_decref(body);
}

static void test_malformed_replies_are_provider_errors(void **state)
{
    const char *bad[] = {
        "{\"type\":\"error\",\"error\":{}}",
        "{\"content\":[]}",
        "{\"type\":\"message\"}",
        "{\"type\":\"message\",\"content\":\"text\"}",
        "{\"type\":\"message\",\"content\":[1]}",
        "{\"type\":\"message\",\"content\":[{\"text\":\"no type\"}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":5}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"thinking\"}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"f\"}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"f\","
        "\"input\":\"{}\"}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"f\","
        "\"input\":{}},{\"type\":\"tool_use\",\"input\":{}}]}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *body = json_loads(bad[i], 0, NULL);
        assert_non_null(body);
        mg_llm_reply r = {0};
        mg_error err = {0};
        if (mg_anthropic_parse_reply(body, &r, &err) != MG_ERR_PROVIDER)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(err.code, MG_ERR_PROVIDER);
        assert_non_null(strstr(err.message, "unexpected response shape"));
        assert_null(r.calls);
        assert_null(r.content);
        assert_int_equal(r.ncalls, 0);
        json_decref(body);
    }
}

static void test_missing_tool_id_is_generated(void **state)
{
    json_t *body = json_loads("{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\","
                              "\"name\":\"f\",\"input\":{\"a\":[1,2]}}]}",
                              0, NULL);
    mg_llm_reply r = {0};
    mg_error err = {0};
    assert_int_equal(mg_anthropic_parse_reply(body, &r, &err), MG_OK);
    assert_int_equal(r.ncalls, 1);
    assert_true(strncmp(r.calls[0].id, "toolu_", 6) == 0);
    assert_string_equal(r.calls[0].arguments, "{\"a\":[1,2]}");
    mg_llm_reply_clear(&r);
    json_decref(body);
}

/* ------------------------------------------------------------------ body */

static void test_body(void **state)
{
    mg_msg q[] = {user("hi")};
    json_t *tools = json_loads("[{\"name\":\"send_message\",\"description\":\"Say it.\","
                               "\"parameters\":{\"type\":\"object\",\"properties\":{"
                               "\"message\":{\"type\":\"string\"}},\"required\":[\"message\"]}},"
                               "{\"name\":\"noop\"},{\"description\":\"nameless\"}]",
                               0, NULL);
    mg_llm_request req = {
        .system = "You are MemGPT.", .messages = q, .nmessages = 1, .tools = tools};
    json_t *body = mg_anthropic_body("claude-sonnet-4-5", &req);
    assert_json(body, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":4096,"
                      "\"system\":\"You are MemGPT.\","
                      "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                      "\"text\":\"hi\"}]}],"
                      "\"tools\":[{\"name\":\"send_message\",\"description\":\"Say it.\","
                      "\"input_schema\":{\"type\":\"object\",\"properties\":{\"message\":{"
                      "\"type\":\"string\"}},\"required\":[\"message\"]}},"
                      "{\"name\":\"noop\",\"input_schema\":{\"type\":\"object\","
                      "\"properties\":{}}}]}");
    json_decref(body);

    /* A summarizer call: no tools, its own budget; an empty system is left out. */
    mg_llm_request plain = {.system = "", .messages = q, .nmessages = 1, .max_tokens = 512};
    body = mg_anthropic_body("m", &plain);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 512);
    assert_null(json_object_get(body, "tools"));
    assert_null(json_object_get(body, "system"));
    json_decref(body);
    json_decref(tools);
    free_msgs(q, 1);
}

/* ---------------------------------------------------------------- errors */

static mg_status map_error(long status, const char *body_json, mg_error *err)
{
    json_t *body = body_json ? json_loads(body_json, 0, NULL) : NULL;
    mg_status st = mg_anthropic_error(status, body, "http://x/v1/messages", 0, err);
    json_decref(body);
    return st;
}

static void test_error_mapping(void **state)
{
    mg_error err = {0};
    assert_int_equal(map_error(401,
                               "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                               "\"message\":\"invalid x-api-key\"}}",
                               &err),
                     MG_ERR_AUTH);
    assert_non_null(strstr(err.message, "ANTHROPIC_API_KEY"));
    assert_non_null(strstr(err.message, "invalid x-api-key"));
    assert_int_equal(map_error(403, NULL, &err), MG_ERR_AUTH);

    assert_int_equal(map_error(400,
                               "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                               "\"message\":\"prompt is too long: 210000 tokens > 200000 "
                               "maximum\"}}",
                               &err),
                     MG_ERR_CONTEXT);
    assert_non_null(strstr(err.message, "210000 tokens"));
    assert_int_equal(map_error(400,
                               "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                               "\"message\":\"input length and `max_tokens` exceed context "
                               "limit: 197000 + 4096 > 200000\"}}",
                               &err),
                     MG_ERR_CONTEXT);
    /* Any other invalid request is not a reason to flush. */
    assert_int_equal(map_error(400,
                               "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                               "\"message\":\"max_tokens: Field required\"}}",
                               &err),
                     MG_ERR_PROVIDER);
    assert_int_equal(map_error(529,
                               "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                               "\"message\":\"Overloaded\"}}",
                               &err),
                     MG_ERR_PROVIDER);
    assert_non_null(strstr(err.message, "529"));
    assert_non_null(strstr(err.message, "overloaded_error: Overloaded"));
    assert_int_equal(map_error(502, NULL, &err), MG_ERR_PROVIDER);
    assert_non_null(strstr(err.message, "no JSON error body"));

    /* The error line stays one line, whatever the server writes. */
    assert_int_equal(map_error(500,
                               "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                               "\"message\":\"line one\\nline two\\r\\n\"}}",
                               &err),
                     MG_ERR_PROVIDER);
    assert_null(strchr(err.message, '\n'));
    assert_null(strchr(err.message, '\r'));
}

/* ---------------------------------------------------------------- config */

static void test_open_needs_key_for_the_real_api(void **state)
{
    mg_provider *p = NULL;
    mg_error err = {0};
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("ANTHROPIC_BASE_URL");
    assert_int_equal(mg_provider_open("anthropic/claude-sonnet-4-5", &p, &err), MG_ERR_AUTH);
    assert_null(p);
    assert_non_null(strstr(err.message, "ANTHROPIC_API_KEY"));

    setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/", 1);
    assert_int_equal(mg_provider_open("anthropic/claude-sonnet-4-5", &p, &err), MG_OK);
    assert_string_equal(p->model, "claude-sonnet-4-5");
    assert_string_equal(p->ops->prefix, "anthropic");
    mg_provider_free(p);
    unsetenv("ANTHROPIC_BASE_URL");

    setenv("ANTHROPIC_API_KEY", "k", 1);
    assert_int_equal(mg_provider_open("anthropic/claude-opus-4-1", &p, &err), MG_OK);
    mg_provider_free(p);
    unsetenv("ANTHROPIC_API_KEY");
}

static void test_claude_windows(void **state)
{
    assert_int_equal(mg_model_context_window("anthropic/claude-sonnet-4-5"), 200000);
    assert_int_equal(mg_model_context_window("anthropic/claude-3-5-haiku-20241022"), 200000);
    assert_int_equal(mg_model_context_window("anthropic/unknown-model"), 0);
    mg_error err = {0};
    assert_int_equal(mg_model_handle_check("anthropic/claude-opus-4-1", &err), MG_OK);
}

/* One page of GET /v1/models through mg_anthropic_models_page. */
static mg_status models_page(const char *json, json_t *out, char **next, mg_error *err)
{
    json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    mg_status st = mg_anthropic_models_page(body, out, next, err);
    json_decref(body);
    return st;
}

static void test_models_pages(void **state)
{
    (void)state;
    json_t *out = json_array();
    char *next = NULL;
    mg_error err = {0};
    assert_int_equal(models_page("{\"data\":[{\"type\":\"model\",\"id\":\"claude-a\","
                                 "\"display_name\":\"A\",\"created_at\":\"2025-01-01T00:00:00Z\"},"
                                 "{\"type\":\"model\"},7,{\"id\":\"claude-b\"}],"
                                 "\"has_more\":true,\"first_id\":\"claude-a\","
                                 "\"last_id\":\"claude-b\"}",
                                 out, &next, &err),
                     MG_OK);
    assert_string_equal(next, "claude-b");
    free(next);
    assert_int_equal(models_page("{\"data\":[{\"id\":\"claude-c\"}],\"has_more\":false,"
                                 "\"first_id\":\"claude-c\",\"last_id\":\"claude-c\"}",
                                 out, &next, &err),
                     MG_OK);
    assert_null(next);
    /* Entries without a string id are dropped; the rest are kept whole. */
    assert_int_equal(json_array_size(out), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "display_name")),
                        "A");
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 2), "id")),
                        "claude-c");
    const char *bad[] = {
        "{\"has_more\":false}",
        "{\"data\":{},\"has_more\":false}",
        "{\"data\":[]}",
        "{\"data\":[],\"has_more\":\"no\"}",
        "{\"data\":[{\"id\":\"x\"}],\"has_more\":true}",
        "{\"data\":[{\"id\":\"x\"}],\"has_more\":true,\"last_id\":\"\"}",
        "{\"data\":[],\"has_more\":true,\"last_id\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mg_err_clear(&err);
        next = NULL;
        mg_status st = models_page(bad[i], out, &next, &err);
        if (st != MG_ERR_PROVIDER) fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_equal(st, MG_ERR_PROVIDER);
        assert_null(next);
        assert_non_null(strstr(err.message, "/v1/models"));
    }
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_results_and_heartbeat_become_one_user_turn),
        cmocka_unit_test(test_consecutive_user_events_merge),
        cmocka_unit_test(test_queue_starting_with_assistant_gets_placeholder),
        cmocka_unit_test(test_empty_queue_and_trailing_assistant),
        cmocka_unit_test(test_empty_assistant_is_dropped_and_neighbours_merge),
        cmocka_unit_test(test_tool_results_come_first),
        cmocka_unit_test(test_orphan_result_becomes_text),
        cmocka_unit_test(test_missing_result_is_answered),
        cmocka_unit_test(test_ids_arguments_and_failures),
        cmocka_unit_test(test_repeated_ids_are_made_unique),
        cmocka_unit_test(test_parse_reply_with_thinking),
        cmocka_unit_test(test_thinking_blocks_are_sent_back_unchanged),
        cmocka_unit_test(test_no_raw_content_without_thinking),
        cmocka_unit_test(test_malformed_replies_are_provider_errors),
        cmocka_unit_test(test_models_pages),
        cmocka_unit_test(test_missing_tool_id_is_generated),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_open_needs_key_for_the_real_api),
        cmocka_unit_test(test_claude_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
