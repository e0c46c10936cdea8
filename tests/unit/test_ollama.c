/*
 * test_ollama.c - the pure parts of the Ollama provider: reading OLLAMA_HOST,
 * building /api/chat bodies, and reading answers, including broken ones.
 *
 * The network paths (retries, error advice, the strict server) are covered
 * by the integration tests against tests/mock/ollama_mock.py; here every
 * case is a table row or a hand-written JSON answer, so a failure points at
 * one translation rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/ollama.h"
#include "util/err.h"

/* ----------------------------------------------------------- OLLAMA_HOST */

static void test_host_forms(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } rows[] = {
        {NULL, "http://127.0.0.1:11434"},
        {"", "http://127.0.0.1:11434"},
        {"   ", "http://127.0.0.1:11434"},
        {"127.0.0.1", "http://127.0.0.1:11434"},
        {"0.0.0.0", "http://0.0.0.0:11434"},
        {"gpu-box", "http://gpu-box:11434"},
        {"gpu-box:8080", "http://gpu-box:8080"},
        {":11435", "http://127.0.0.1:11435"},
        {"[::1]:11434", "http://[::1]:11434"},
        {"[::1]", "http://[::1]:11434"},
        {"::1", "http://[::1]:11434"},
        {"http://example.com", "http://example.com:80"},
        {"https://example.com", "https://example.com:443"},
        {"HTTPS://example.com:8443/", "https://example.com:8443"},
        {"http://proxy:80/ollama/", "http://proxy:80/ollama"},
        {"  http://10.0.0.5:11434  ", "http://10.0.0.5:11434"},
        {"ollama.com", "https://ollama.com:443"},
        {"gpu-box:", "http://gpu-box:11434"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *out = NULL;
        mg_error err = {0};
        mg_status st = mg_ollama_base_url(rows[i].in, &out, &err);
        if (st) fprintf(stderr, "row %zu (%s): %s\n", i, rows[i].in, err.message);
        assert_int_equal(st, MG_OK);
        assert_string_equal(out, rows[i].want);
        free(out);
    }
}

static void test_host_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://host",     "host:0",          "host:65536",     "host:80a",      "host:-1",
        "user@host:1",    "host name",       "host\t:1",       "[::1",          "[::1]x",
        "http://h:1?x=1", "http://h:1#frag", "exa$mple:11434", "http://:99999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        mg_error err = {0};
        mg_status st = mg_ollama_base_url(bad[i], &out, &err);
        if (!st) fprintf(stderr, "accepted '%s' as %s\n", bad[i], out);
        assert_int_equal(st, MG_ERR_PROVIDER);
        assert_null(out);
        assert_non_null(strstr(err.message, "OLLAMA_HOST"));
    }
    /* Very long values are refused without echoing them whole. */
    char *huge = malloc(5000);
    memset(huge, 'a', 4999);
    huge[4999] = '\0';
    char *out = NULL;
    mg_error err = {0};
    assert_int_equal(mg_ollama_base_url(huge, &out, &err), MG_ERR_PROVIDER);
    assert_null(out);
    free(huge);
}

/* --------------------------------------------------------------- bodies */

/* The request body, parsed back. */
static json_t *chat_body(const char *model, const mg_llm_request *req)
{
    size_t len;
    char *text = mg_ollama_chat_body(model, req, &len);
    assert_int_equal(len, strlen(text));
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    free(text);
    return body;
}

static json_t *tools_fixture(void)
{
    return json_loads("[{\"name\":\"send_message\",\"description\":\"Say it.\","
                      "\"parameters\":{\"type\":\"object\",\"properties\":{\"message\":"
                      "{\"type\":\"string\"}},\"required\":[\"message\"]}}]",
                      0, NULL);
}

static void test_chat_body(void **state)
{
    (void)state;
    mg_tool_call calls[2] = {
        {.id = "call_1", .name = "send_message", .arguments = "{\"message\":\"hi\",\"n\":2}"},
        {.id = "call_2", .name = "send_message", .arguments = "not json"},
    };
    mg_msg msgs[4] = {
        {.role = MG_ROLE_USER, .content = "{\"type\":\"user_message\"}"},
        {.role = MG_ROLE_ASSISTANT, .content = NULL, .calls = calls, .ncalls = 2},
        {.role = MG_ROLE_TOOL,
         .content = "{\"status\":\"OK\"}",
         .tool_call_id = "call_1",
         .tool_name = "send_message"},
        {.role = MG_ROLE_TOOL,
         .content = "{\"status\":\"Failed\"}",
         .tool_call_id = "call_2",
         .tool_name = "send_message"},
    };
    json_t *tools = tools_fixture();
    mg_llm_request req = {
        .system = "SYS", .messages = msgs, .nmessages = 4, .tools = tools, .context_window = 12345};
    json_t *body = chat_body("llama3.2", &req);

    assert_string_equal(json_string_value(json_object_get(body, "model")), "llama3.2");
    assert_true(json_is_false(json_object_get(body, "stream")));
    json_t *opts = json_object_get(body, "options");
    assert_int_equal(json_integer_value(json_object_get(opts, "num_ctx")), 12345);
    assert_null(json_object_get(opts, "num_predict")); /* no budget given */

    json_t *m = json_object_get(body, "messages");
    assert_int_equal(json_array_size(m), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "content")), "SYS");

    json_t *asst = json_array_get(m, 2);
    assert_string_equal(json_string_value(json_object_get(asst, "content")), "");
    json_t *c0 = json_array_get(json_object_get(asst, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "id")), "call_1");
    json_t *args = json_object_get(json_object_get(c0, "function"), "arguments");
    assert_true(json_is_object(args)); /* an object, not JSON text */
    assert_int_equal(json_integer_value(json_object_get(args, "n")), 2);
    /* Arguments that were never valid go back as an empty object. */
    json_t *c1 = json_array_get(json_object_get(asst, "tool_calls"), 1);
    json_t *args1 = json_object_get(json_object_get(c1, "function"), "arguments");
    assert_true(json_is_object(args1));
    assert_int_equal(json_object_size(args1), 0);

    json_t *tool = json_array_get(m, 3);
    assert_string_equal(json_string_value(json_object_get(tool, "role")), "tool");
    assert_string_equal(json_string_value(json_object_get(tool, "tool_name")), "send_message");
    assert_string_equal(json_string_value(json_object_get(tool, "tool_call_id")), "call_1");

    json_t *t0 = json_array_get(json_object_get(body, "tools"), 0);
    assert_string_equal(json_string_value(json_object_get(t0, "type")), "function");
    assert_string_equal(json_string_value(json_object_get(json_object_get(t0, "function"), "name")),
                        "send_message");
    json_decref(body);
    json_decref(tools);
}

static void test_summary_body(void **state)
{
    (void)state;
    mg_msg msg = {.role = MG_ROLE_USER, .content = "Previous summary: ..."};
    mg_llm_request req = {.system = "Summarize.",
                          .messages = &msg,
                          .nmessages = 1,
                          .max_tokens = 300,
                          .context_window = 2000};
    json_t *body = chat_body("m", &req);
    assert_null(json_object_get(body, "tools"));
    json_t *opts = json_object_get(body, "options");
    assert_int_equal(json_integer_value(json_object_get(opts, "num_ctx")), 2000);
    assert_int_equal(json_integer_value(json_object_get(opts, "num_predict")), 300);
    json_decref(body);
}

/* -------------------------------------------------------------- answers */

static mg_status parse(const char *text, mg_llm_reply *reply, mg_error *err)
{
    memset(reply, 0, sizeof *reply);
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    mg_status st = mg_ollama_parse_chat_reply(body, reply, err);
    json_decref(body);
    return st;
}

static void test_reply_with_calls(void **state)
{
    (void)state;
    mg_llm_reply r;
    mg_error err = {0};
    assert_int_equal(parse("{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":"
                           "\"thinking aloud\",\"tool_calls\":[{\"function\":{\"name\":\"a\","
                           "\"arguments\":{\"x\":1,\"y\":\"two\"}}},{\"function\":{\"name\":"
                           "\"b\",\"arguments\":{}}}]},\"done\":true,\"prompt_eval_count\":"
                           "120,\"eval_count\":7}",
                           &r, &err),
                     MG_OK);
    assert_string_equal(r.content, "thinking aloud");
    assert_int_equal(r.ncalls, 2);
    assert_string_equal(r.calls[0].name, "a");
    assert_string_equal(r.calls[0].arguments, "{\"x\":1,\"y\":\"two\"}");
    assert_string_equal(r.calls[1].arguments, "{}");
    /* No ids from the server: fresh ones, distinct, and distinct next time too. */
    assert_non_null(r.calls[0].id);
    assert_true(strlen(r.calls[0].id) > 5);
    assert_string_not_equal(r.calls[0].id, r.calls[1].id);
    assert_int_equal(r.prompt_tokens, 120);
    assert_int_equal(r.completion_tokens, 7);
    char *first = strdup(r.calls[0].id);
    mg_llm_reply_clear(&r);
    assert_int_equal(parse("{\"message\":{\"content\":\"\",\"tool_calls\":[{\"function\":"
                           "{\"name\":\"a\",\"arguments\":{}}}]},\"done\":true}",
                           &r, &err),
                     MG_OK);
    assert_string_not_equal(r.calls[0].id, first);
    free(first);
    mg_llm_reply_clear(&r);
}

static void test_reply_ids(void **state)
{
    (void)state;
    mg_llm_reply r;
    mg_error err = {0};
    /* A server id is kept; a duplicate, an empty or an absurd one is replaced. */
    assert_int_equal(
        parse("{\"message\":{\"content\":\"\",\"tool_calls\":["
              "{\"id\":\"call_abc\",\"function\":{\"name\":\"a\",\"arguments\":{}}},"
              "{\"id\":\"call_abc\",\"function\":{\"name\":\"b\",\"arguments\":{}}},"
              "{\"id\":\"\",\"function\":{\"name\":\"c\",\"arguments\":{}}},"
              "{\"id\":\"has space\",\"function\":{\"name\":\"d\",\"arguments\":{}}},"
              "{\"id\":7,\"function\":{\"name\":\"e\",\"arguments\":{}}}]},\"done\":true}",
              &r, &err),
        MG_OK);
    assert_int_equal(r.ncalls, 5);
    assert_string_equal(r.calls[0].id, "call_abc");
    for (int i = 1; i < 5; i++) {
        assert_string_not_equal(r.calls[i].id, "call_abc");
        assert_string_not_equal(r.calls[i].id, "");
        assert_null(strchr(r.calls[i].id, ' '));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(r.calls[i].id, r.calls[j].id);
    }
    mg_llm_reply_clear(&r);
}

static void test_reply_odd_but_valid(void **state)
{
    (void)state;
    mg_llm_reply r;
    mg_error err = {0};
    /* Arguments as JSON text (OpenAI style), as an array, or missing. */
    assert_int_equal(parse("{\"message\":{\"content\":null,\"tool_calls\":["
                           "{\"function\":{\"name\":\"a\",\"arguments\":\"{\\\"k\\\":1}\"}},"
                           "{\"function\":{\"name\":\"b\",\"arguments\":[1,2]}},"
                           "{\"function\":{\"name\":\"c\"}}]},\"done\":true}",
                           &r, &err),
                     MG_OK);
    assert_null(r.content);
    assert_string_equal(r.calls[0].arguments, "{\"k\":1}");
    assert_string_equal(r.calls[1].arguments, "[1,2]"); /* left to the function layer */
    assert_string_equal(r.calls[2].arguments, "{}");
    mg_llm_reply_clear(&r);

    /* A thinking model's monologue stands in for empty content beside calls. */
    assert_int_equal(parse("{\"message\":{\"content\":\"\",\"thinking\":\"plan\",\"tool_calls\":"
                           "[{\"function\":{\"name\":\"a\",\"arguments\":{}}}]},\"done\":true}",
                           &r, &err),
                     MG_OK);
    assert_string_equal(r.content, "plan");
    mg_llm_reply_clear(&r);
    /* ...but never becomes the answer of a plain reply. */
    assert_int_equal(
        parse("{\"message\":{\"content\":\"Hello\",\"thinking\":\"secret\"},\"done\":true}", &r,
              &err),
        MG_OK);
    assert_string_equal(r.content, "Hello");
    assert_int_equal(r.ncalls, 0);
    mg_llm_reply_clear(&r);

    /* Counts that are negative, huge or not numbers read as unknown. */
    assert_int_equal(parse("{\"message\":{\"content\":\"x\"},\"prompt_eval_count\":-5,"
                           "\"eval_count\":\"many\"}",
                           &r, &err),
                     MG_OK);
    assert_int_equal(r.prompt_tokens, 0);
    assert_int_equal(r.completion_tokens, 0);
    mg_llm_reply_clear(&r);
}

static void test_reply_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{}",
        "{\"message\":\"text\"}",
        "{\"message\":null}",
        "{\"message\":{\"content\":5}}",
        "{\"message\":{\"content\":[\"a\"]}}",
        "{\"message\":{\"content\":\"x\",\"thinking\":{}}}",
        "{\"message\":{\"content\":\"x\",\"tool_calls\":{}}}",
        "{\"message\":{\"content\":\"x\",\"tool_calls\":\"a\"}}",
        "{\"message\":{\"tool_calls\":[{\"function\":{}}]}}",
        "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"\"}}]}}",
        "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":3}}]}}",
        "{\"message\":{\"tool_calls\":[7]}}",
        "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"a\"}},{}]}}",
        "{\"message\":{\"content\":\"x\"},\"done\":false}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mg_llm_reply r;
        mg_error err = {0};
        mg_status st = parse(bad[i], &r, &err);
        if (st != MG_ERR_PROVIDER) fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_equal(st, MG_ERR_PROVIDER);
        assert_true(err.message[0] != '\0');
        mg_llm_reply_clear(&r); /* half-filled replies are safe to clear */
    }
}

static mg_status show_window(const char *json, int *tokens, mg_error *err)
{
    json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    mg_status st = mg_ollama_show_context_length(body, tokens, err);
    json_decref(body);
    return st;
}

static void test_show_context_length(void **state)
{
    (void)state;
    int tokens = -1;
    mg_error err = {0};
    assert_int_equal(show_window("{\"model_info\":{\"general.architecture\":\"qwen3\","
                                 "\"qwen3.context_length\":8192,\"llama.context_length\":5}}",
                                 &tokens, &err),
                     MG_OK);
    assert_int_equal(tokens, 8192);
    /* Above the cap: capped (the window sizes Ollama's KV cache). */
    assert_int_equal(show_window("{\"model_info\":{\"general.architecture\":\"llama\","
                                 "\"llama.context_length\":131072}}",
                                 &tokens, &err),
                     MG_OK);
    assert_int_equal(tokens, MG_OLLAMA_MAX_AUTO_WINDOW);
    const char *bad[] = {
        "{}",
        "{\"model_info\":[]}",
        "{\"model_info\":{\"llama.context_length\":8192}}",
        "{\"model_info\":{\"general.architecture\":7,\"llama.context_length\":8192}}",
        "{\"model_info\":{\"general.architecture\":\"\",\".context_length\":8192}}",
        "{\"model_info\":{\"general.architecture\":\"llama\"}}",
        "{\"model_info\":{\"general.architecture\":\"llama\",\"llama.context_length\":\"8192\"}}",
        "{\"model_info\":{\"general.architecture\":\"llama\",\"llama.context_length\":0}}",
        "{\"model_info\":{\"general.architecture\":\"llama\",\"llama.context_length\":-5}}",
        "{\"model_info\":{\"general.architecture\":\"llama\",\"llama.context_length\":8192.5}}",
        "{\"model_info\":{\"general.architecture\":\"llama\","
        "\"llama.context_length\":99999999999}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tokens = -1;
        mg_err_clear(&err);
        mg_status st = show_window(bad[i], &tokens, &err);
        if (st != MG_ERR_PROVIDER) fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_equal(st, MG_ERR_PROVIDER);
        assert_int_equal(tokens, 0);
        assert_non_null(strstr(err.message, "/api/show"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_forms),          cmocka_unit_test(test_host_rejects),
        cmocka_unit_test(test_chat_body),           cmocka_unit_test(test_summary_body),
        cmocka_unit_test(test_reply_with_calls),    cmocka_unit_test(test_reply_ids),
        cmocka_unit_test(test_reply_odd_but_valid), cmocka_unit_test(test_reply_malformed),
        cmocka_unit_test(test_show_context_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
