/* Unit tests: UTF-8 helpers, the token estimate, time parsing, event JSON. */
#include "testutil.h"

#include "context/tokens.h"
#include "util/text.h"

static void test_utf8(void **state)
{
    assert_true(mg_utf8_valid("plain", 5));
    assert_true(mg_utf8_valid("caf\xC3\xA9 \xF0\x9F\x98\x80", 10));
    assert_false(mg_utf8_valid("\xC3", 1));             /* truncated */
    assert_false(mg_utf8_valid("\xC0\xAF", 2));         /* overlong */
    assert_false(mg_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    assert_false(mg_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    char *fixed = mg_utf8_repair("a\xFF"
                                 "b\0c",
                                 5);
    assert_string_equal(fixed, "a\xEF\xBF\xBD"
                               "bc");
    free(fixed);
    const char *s = "ab\xC3\xA9";
    assert_int_equal(mg_utf8_cut(s, 4, 3), 2); /* never inside the é */
    assert_int_equal(mg_utf8_cut(s, 4, 4), 4);
    assert_int_equal(mg_utf8_chars("caf\xC3\xA9"), 4);
    assert_true(mg_text_blank(" \n\t"));
    assert_false(mg_text_blank(" x "));
}

static void test_tokens(void **state)
{
    assert_int_equal(mg_tokens_of(""), 0);
    assert_int_equal(mg_tokens_of(NULL), 0);
    assert_int_equal(mg_tokens_of("hello"), 1);
    assert_int_equal(mg_tokens_of("hello world"), 2);
    /* Conservative on prose: at least one token per word. */
    const char *prose = "The quick brown fox jumps over the lazy dog near the riverbank today.";
    assert_true(mg_tokens_of(prose) >= 14);
    /* Punctuation-heavy JSON costs more than its words. */
    assert_true(mg_tokens_of("{\"a\": [1, 2]}") >= 8);
    /* Grows with length; non-ASCII costs per code point. */
    assert_true(mg_tokens_of("\xE4\xBD\xA0\xE5\xA5\xBD") == 2);
    assert_true(mg_tokens_of("1234567") == 3);
}

static void test_parse_time(void **state)
{
    int64_t ms;
    mg_error err = {0};
    assert_int_equal(mg_parse_time("2024-02-29", 0, &ms, &err), MG_OK);
    assert_int_equal(ms, 1709164800000LL);
    assert_int_equal(mg_parse_time("2024-02-29", 1, &ms, &err), MG_OK);
    assert_int_equal(ms, 1709251200000LL);
    assert_int_equal(mg_parse_time("2024-02-29T10:30:05Z", 1, &ms, &err), MG_OK);
    assert_int_equal(ms, 1709202605000LL);
    const char *bad[] = {"",         "2023-02-29", "2024-13-01", "yesterday", "2024-01-01T25:00",
                         "2024-1-1", "2024-01-01x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mg_parse_time(bad[i], 0, &ms, &err), MG_ERR_USAGE);
        assert_non_null(strstr(err.message, "invalid date"));
    }
    assert_int_equal(mg_parse_time(NULL, 0, &ms, &err), MG_ERR_USAGE);
}

static void test_event_json(void **state)
{
    mg_event ev = {.type = MG_EVENT_TOOL_RETURN,
                   .text = "{\"status\":\"OK\"}",
                   .tool_name = "f",
                   .tool_call_id = "c1",
                   .tool_ok = 1,
                   .time_ms = 1000};
    char *line = mg_event_to_json(&ev);
    json_t *obj = json_loads(line, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(obj, "message_type")),
                        "tool_return_message");
    assert_string_equal(json_string_value(json_object_get(obj, "status")), "success");
    assert_string_equal(json_string_value(json_object_get(obj, "tool_call_id")), "c1");
    assert_null(strchr(line, '\n'));
    json_decref(obj);
    mg_free(line);
    mg_event usage = {
        .type = MG_EVENT_USAGE, .prompt_tokens = 10, .completion_tokens = 5, .step_count = 2};
    line = mg_event_to_json(&usage);
    assert_non_null(strstr(line, "\"total_tokens\":15"));
    mg_free(line);
}

static void test_longest_prefix(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        int value;
    } t[] = {{"gpt-4", 1}, {"gpt-4o-mini", 3}, {"gpt-4o", 2}};
    size_t n = sizeof t / sizeof t[0];
    assert_int_equal(mg_longest_prefix("gpt-4o-mini-2024", t, n, sizeof t[0]), 1);
    assert_int_equal(mg_longest_prefix("gpt-4o", t, n, sizeof t[0]), 2);
    assert_int_equal(mg_longest_prefix("gpt-4-turbo", t, n, sizeof t[0]), 0);
    assert_int_equal(mg_longest_prefix("gpt-3.5", t, n, sizeof t[0]), -1);
    assert_int_equal(mg_longest_prefix("", t, n, sizeof t[0]), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),           cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_parse_time),     cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_longest_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
