/*
 * test_wire.c - request bodies assembled from messages encoded once
 * (provider/wire.c), through the two providers that use them.
 *
 * What must hold: the body is the JSON the provider always sent (checked
 * field by field after parsing it back), stored messages keep their text
 * and give the same bytes on the next step, temporary ones keep nothing, an
 * edited message (mg_msg_changed) is encoded again, and a message cached for
 * one format is encoded afresh for another. ASan's leak check covers the
 * frees (mg_msg_clear).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "context/message.h"
#include "provider/ollama.h"
#include "provider/openai.h"
#include "provider/wire.h"
#include "util/buf.h"

enum { N = 4 };

/* A small queue: a user message with text that needs escaping, an
 * assistant message with no text and two calls, a tool result, and a
 * message not stored yet (id 0). */
static void make_queue(mg_msg *q)
{
    memset(q, 0, N * sizeof *q);
    q[0] = (mg_msg){.id = 11,
                    .role = MG_ROLE_USER,
                    .content = mg_xstrdup("say \"héllo\"\n\\ \xf0\x9f\x8c\x8a")};
    q[1] = (mg_msg){.id = 12, .role = MG_ROLE_ASSISTANT, .ncalls = 2};
    q[1].calls = mg_xcalloc(2, sizeof *q[1].calls);
    q[1].calls[0] = (mg_tool_call){mg_xstrdup("call_1"), mg_xstrdup("send_message"),
                                   mg_xstrdup("{\"message\":\"hi\"}")};
    q[1].calls[1] = (mg_tool_call){mg_xstrdup("call_2"), mg_xstrdup("core_memory_append"),
                                   mg_xstrdup("{\"label\":\"human\",\"content\":\"x\"}")};
    q[2] = (mg_msg){.id = 13,
                    .role = MG_ROLE_TOOL,
                    .content = mg_xstrdup("{\"status\":\"OK\"}"),
                    .tool_call_id = mg_xstrdup("call_2"),
                    .tool_name = mg_xstrdup("core_memory_append")};
    q[3] = (mg_msg){.id = 0, .role = MG_ROLE_USER, .content = mg_xstrdup("not stored yet")};
}

static void free_queue(mg_msg *q)
{
    for (int i = 0; i < N; i++)
        mg_msg_clear(&q[i]);
}

static json_t *tools(void)
{
    return json_pack("[{s:s, s:s, s:{s:s}}]", "name", "send_message", "description", "Say it.",
                     "parameters", "type", "object");
}

static json_t *parse(char *text, size_t len)
{
    assert_int_equal(len, strlen(text));
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v) fail_msg("not JSON: %s (%s)", e.text, text);
    return v;
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void check_openai_messages(json_t *body, const char *first_text)
{
    json_t *m = json_object_get(body, "messages");
    assert_int_equal(json_array_size(m), N + 1);
    assert_string_equal(str(json_array_get(m, 0), "role"), "system");
    assert_string_equal(str(json_array_get(m, 0), "content"), "You are kind.");
    assert_string_equal(str(json_array_get(m, 1), "role"), "user");
    assert_string_equal(str(json_array_get(m, 1), "content"), first_text);
    json_t *a = json_array_get(m, 2);
    assert_string_equal(str(a, "role"), "assistant");
    assert_true(json_is_null(json_object_get(a, "content")));
    json_t *calls = json_object_get(a, "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    json_t *fn = json_object_get(json_array_get(calls, 1), "function");
    assert_string_equal(str(json_array_get(calls, 1), "id"), "call_2");
    assert_string_equal(str(fn, "name"), "core_memory_append");
    assert_string_equal(str(fn, "arguments"), "{\"label\":\"human\",\"content\":\"x\"}");
    json_t *t = json_array_get(m, 3);
    assert_string_equal(str(t, "role"), "tool");
    assert_string_equal(str(t, "tool_call_id"), "call_2");
    assert_string_equal(str(t, "content"), "{\"status\":\"OK\"}");
    assert_string_equal(str(json_array_get(m, 4), "content"), "not stored yet");
}

static void test_openai_body(void **state)
{
    (void)state;
    mg_msg q[N];
    make_queue(q);
    json_t *t = tools();
    mg_llm_request req = {
        .system = "You are kind.", .messages = q, .nmessages = N, .tools = t, .max_tokens = 100};
    size_t len;
    char *text = mg_openai_chat_body("gpt-4o-mini", &req, 1, &len);
    json_t *body = parse(text, len);
    assert_string_equal(str(body, "model"), "gpt-4o-mini");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 100);
    assert_string_equal(str(body, "tool_choice"), "auto");
    assert_true(json_is_true(json_object_get(body, "parallel_tool_calls")));
    assert_string_equal(
        str(json_object_get(json_array_get(json_object_get(body, "tools"), 0), "function"), "name"),
        "send_message");
    check_openai_messages(body, "say \"héllo\"\n\\ \xf0\x9f\x8c\x8a");
    json_decref(body);

    /* Stored messages keep their text; the one not stored keeps nothing. */
    for (int i = 0; i < 3; i++) {
        assert_non_null(q[i].wire);
        assert_int_equal(q[i].wire_format, MG_WIRE_OPENAI);
        assert_int_equal(q[i].wire_len, strlen(q[i].wire));
    }
    assert_null(q[3].wire);

    /* The next step gives the same bytes, from the cache. */
    const char *kept = q[1].wire;
    size_t len2;
    char *again = mg_openai_chat_body("gpt-4o-mini", &req, 1, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, text, len);
    assert_ptr_equal(q[1].wire, kept);
    free(again);
    free(text);

    /* An edit in place is seen once the message says it changed. */
    free(q[0].content);
    q[0].content = mg_xstrdup("edited");
    mg_msg_changed(&q[0]);
    assert_null(q[0].wire);
    text = mg_openai_chat_body("gpt-4o-mini", &req, 0, &len);
    body = parse(text, len);
    check_openai_messages(body, "edited");
    assert_null(json_object_get(body, "parallel_tool_calls"));
    json_decref(body);
    free(text);

    json_decref(t);
    free_queue(q);
}

static void test_format_switch(void **state)
{
    (void)state;
    mg_msg q[N];
    make_queue(q);
    mg_llm_request req = {.system = "You are kind.", .messages = q, .nmessages = N};
    size_t len;
    free(mg_openai_chat_body("m", &req, 0, &len));
    assert_int_equal(q[2].wire_format, MG_WIRE_OPENAI);
    /* Ollama's form of the same queue: its own fields, not OpenAI's text. */
    char *text = mg_ollama_chat_body("m", &req, &len);
    json_t *body = parse(text, len);
    json_t *m = json_object_get(body, "messages");
    assert_int_equal(json_array_size(m), N + 1);
    assert_string_equal(str(json_array_get(m, 3), "tool_name"), "core_memory_append");
    json_t *fn = json_object_get(
        json_array_get(json_object_get(json_array_get(m, 2), "tool_calls"), 0), "function");
    assert_true(json_is_object(json_object_get(fn, "arguments"))); /* an object, not text */
    assert_int_equal(q[2].wire_format, MG_WIRE_OLLAMA);
    assert_true(json_is_false(json_object_get(body, "stream")));
    json_decref(body);
    free(text);
    free_queue(q);
}

static void test_empty_queue(void **state)
{
    (void)state;
    mg_llm_request req = {.system = "S"};
    size_t len;
    char *text = mg_openai_chat_body("m", &req, 0, &len);
    json_t *body = parse(text, len);
    assert_int_equal(json_array_size(json_object_get(body, "messages")), 1);
    assert_null(json_object_get(body, "tools"));
    json_decref(body);
    free(text);
    /* A head with no other member still closes the object. */
    json_t *head = json_object();
    mg_llm_request none = {0};
    text = mg_wire_body(head, NULL, &none, MG_WIRE_OPENAI, NULL, &len);
    assert_string_equal(text, "{\"messages\":[]}");
    free(text);
    json_decref(head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_body),
        cmocka_unit_test(test_format_switch),
        cmocka_unit_test(test_empty_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
