/* Unit tests: the function set as the model sees it (arguments, results,
 * failures), and the overflow cut rules. */
#include "testutil.h"

#include "agent/agent.h"
#include "context/overflow.h"
#include "functions/functions.h"
#include "memory/archival.h"
#include "memory/recall.h"

/* Runs one call and returns its parsed result object (caller decrefs). */
static json_t *call(fixture *f, const char *name, const char *args, mg_fn_outcome *out)
{
    mg_tool_call tc = {(char *)"call_1", (char *)name, (char *)args};
    mg_error err = {0};
    assert_int_equal(mg_functions_call(f->agent, &tc, out, &err), MG_OK);
    json_t *result = json_loads(out->result, 0, NULL);
    assert_non_null(result);
    assert_non_null(json_object_get(result, "time"));
    return result;
}

static void expect_failure(fixture *f, const char *name, const char *args, const char *fragment)
{
    mg_fn_outcome out;
    json_t *r = call(f, name, args, &out);
    assert_false(out.ok);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "Failed");
    const char *msg = json_string_value(json_object_get(r, "message"));
    if (!strstr(msg, fragment)) fail_msg("'%s' does not mention '%s'", msg, fragment);
    json_decref(r);
    mg_fn_outcome_clear(&out);
}

static void test_schemas(void **state)
{
    json_t *schemas = mg_functions_schemas();
    assert_int_equal(json_array_size(schemas), 8);
    size_t i;
    json_t *s;
    json_array_foreach(schemas, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        json_t *props = json_object_get(json_object_get(s, "parameters"), "properties");
        int has_heartbeat = json_object_get(props, "request_heartbeat") != NULL;
        int exempt = !strcmp(name, "send_message") || !strcmp(name, "pause_heartbeats");
        assert_int_equal(has_heartbeat, !exempt);
        assert_non_null(json_object_get(s, "description"));
    }
    json_decref(schemas);
}

static void test_send_message(void **state)
{
    fixture *f = *state;
    mg_fn_outcome out;
    json_t *r = call(f, "send_message", "{\"message\": \"hi there\"}", &out);
    assert_true(out.ok);
    assert_string_equal(out.reply, "hi there");
    assert_false(out.request_heartbeat);
    json_decref(r);
    mg_fn_outcome_clear(&out);
    expect_failure(f, "send_message", "{\"message\": \"  \"}", "empty");
}

static void test_model_mistakes(void **state)
{
    fixture *f = *state;
    expect_failure(f, "send_message", "{not json", "not a JSON object");
    expect_failure(f, "send_message", "[1, 2]", "not a JSON object");
    expect_failure(f, "send_message", "{\"message\": 1, \"message\": 2}", "not a JSON object");
    expect_failure(f, "teleport", "{}", "no function named 'teleport'");
    expect_failure(f, "core_memory_append", "{\"label\": \"human\"}",
                   "missing required argument 'content'");
    expect_failure(f, "core_memory_append", "{\"label\": 5, \"content\": \"x\"}",
                   "'label' must be a string");
    expect_failure(f, "core_memory_append", "{\"label\": \"diary\", \"content\": \"x\"}",
                   "no core memory block");
    expect_failure(f, "core_memory_replace",
                   "{\"label\": \"human\", \"old_content\": \"zebra\", \"new_content\": \"x\"}",
                   "not found");
    expect_failure(f, "conversation_search", "{\"query\": \"x\", \"page\": \"two\"}", "integer");
    expect_failure(f, "conversation_search", "{\"query\": \"x\", \"page\": -1}", "0 or more");
    expect_failure(f, "conversation_search_date",
                   "{\"start_date\": \"last week\", \"end_date\": \"2024-01-01\"}", "invalid date");
    expect_failure(f, "conversation_search_date",
                   "{\"start_date\": \"2024-02-01\", \"end_date\": \"2024-01-01\"}", "before");
    expect_failure(f, "pause_heartbeats", "{\"minutes\": 100000}", "between 1 and 360");
    expect_failure(f, "archival_memory_insert", "{\"content\": \"\"}", "empty");
    expect_failure(f, "archival_memory_insert", "{\"content\": \"x\", \"tags\": \"pets\"}",
                   "list of at most");
    expect_failure(f, "archival_memory_insert", "{\"content\": \"x\", \"tags\": [\"a\", 3]}",
                   "item 1 must be a string");
    expect_failure(f, "archival_memory_search", "{\"query\": \"x\", \"start_date\": \"someday\"}",
                   "invalid date");
    expect_failure(f, "archival_memory_search",
                   "{\"query\": \"x\", \"start_date\": \"2024-02-01\", \"end_date\": "
                   "\"2024-01-01\"}",
                   "before");

    char big[2200 + 64];
    memset(big, 0, sizeof big);
    strcpy(big, "{\"label\": \"human\", \"content\": \"");
    memset(big + strlen(big), 'y', 2100);
    strcat(big, "\"}");
    expect_failure(f, "core_memory_append", big, "over its limit");
}

static void test_search_results(void **state)
{
    fixture *f = *state;
    mg_fn_outcome out;
    json_t *r = call(f, "archival_memory_search",
                     "{\"query\": \"anything\", \"request_heartbeat\": true}", &out);
    assert_true(out.ok);
    assert_true(out.request_heartbeat);
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "No results"));
    json_decref(r);
    mg_fn_outcome_clear(&out);

    for (int i = 0; i < 7; i++) {
        char args[96];
        snprintf(args, sizeof args, "{\"content\": \"note %d about gardening roses\"}", i);
        r = call(f, "archival_memory_insert", args, &out);
        assert_true(out.ok);
        json_decref(r);
        mg_fn_outcome_clear(&out);
    }
    r = call(f, "archival_memory_search", "{\"query\": \"gardening roses\", \"page\": 1}", &out);
    const char *msg = json_string_value(json_object_get(r, "message"));
    assert_non_null(strstr(msg, "7 results"));
    assert_non_null(strstr(msg, "page 1 of 2"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    expect_failure(f, "archival_memory_search", "{\"query\": \"gardening\", \"page\": 9}",
                   "past the end");

    /* Tags given at insert narrow a search that asks for them. */
    r = call(f, "archival_memory_insert",
             "{\"content\": \"roses need gardening in spring\", \"tags\": [\"garden\", "
             "\"todo\"]}",
             &out);
    assert_true(out.ok);
    json_decref(r);
    mg_fn_outcome_clear(&out);
    r = call(f, "archival_memory_search",
             "{\"query\": \"gardening roses\", \"tags\": [\"todo\"], \"start_date\": "
             "\"2000-01-01\", \"end_date\": \"2999-12-31\"}",
             &out);
    msg = json_string_value(json_object_get(r, "message"));
    assert_non_null(strstr(msg, "1 result in"));
    assert_non_null(strstr(msg, "roses need gardening in spring"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    r = call(f, "archival_memory_search",
             "{\"query\": \"gardening roses\", \"end_date\": \"2001-01-01\"}", &out);
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "No results"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    /* A bounded text ranking is announced, with the way further. */
    archival_set_text_rank_cap(f->agent->store, 3);
    r = call(f, "archival_memory_search", "{\"query\": \"gardening\"}", &out);
    msg = json_string_value(json_object_get(r, "message"));
    assert_non_null(strstr(msg, "than were ranked by them: the newest 3, back to"));
    assert_non_null(strstr(msg, "rarer words"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    archival_set_text_rank_cap(f->agent->store, 0);
    /* Blank optional fields, as models often send them, mean "not given". */
    r = call(f, "archival_memory_search",
             "{\"query\": \"gardening roses\", \"tags\": [\"\", \" \"], \"start_date\": \"\", "
             "\"end_date\": \" \"}",
             &out);
    assert_true(out.ok);
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")), "8 results"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
}

static void append(fixture *f, mg_role role, const char *kind, const char *content,
                   const char *calls_json, const char *tool_name)
{
    mg_msg m = {.role = role,
                .kind = mg_xstrdup(kind),
                .content = mg_xstrdup(content),
                .tool_name = tool_name ? mg_xstrdup(tool_name) : NULL,
                .tool_call_id = tool_name ? mg_xstrdup("call_9") : NULL,
                .time_ms = 1700000000000LL};
    if (calls_json) assert_true(mg_tool_calls_from_json(calls_json, &m.calls, &m.ncalls));
    mg_error err = {0};
    assert_int_equal(agent_append_message(f->agent, m, NULL, &err), MG_OK);
}

static const char *call_message(fixture *f, const char *args, json_t **r, mg_fn_outcome *out)
{
    *r = call(f, "conversation_search", args, out);
    assert_true(out->ok);
    return json_string_value(json_object_get(*r, "message"));
}

static void test_conversation_search_include_all(void **state)
{
    fixture *f = *state;
    json_t *schemas = mg_functions_schemas(), *s;
    size_t i;
    json_array_foreach(schemas, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), "conversation_search")) continue;
        json_t *params = json_object_get(s, "parameters");
        json_t *prop = json_object_get(json_object_get(params, "properties"), "include_all");
        assert_string_equal(json_string_value(json_object_get(prop, "type")), "boolean");
        json_t *req;
        size_t k;
        json_array_foreach(json_object_get(params, "required"), k, req)
            assert_string_not_equal(json_string_value(req), "include_all");
    }
    json_decref(schemas);

    append(f, MG_ROLE_USER, "user_message",
           "{\"type\":\"user_message\",\"message\":\"tell me about pelicans\"}", NULL, NULL);
    append(f, MG_ROLE_ASSISTANT, "assistant", "A flamingo fact would fit.",
           "[{\"id\":\"call_9\",\"name\":\"send_message\",\"arguments\":"
           "\"{\\\"message\\\":\\\"Pelicans carry fish in their pouch.\\\"}\"}]",
           NULL);
    append(f, MG_ROLE_TOOL, "tool", "{\"status\":\"OK\",\"message\":\"cormorant sighted\"}", NULL,
           "send_message");

    mg_fn_outcome out;
    json_t *r;
    const char *msg = call_message(f, "{\"query\": \"flamingo\"}", &r, &out);
    assert_non_null(strstr(msg, "No results"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    msg = call_message(f, "{\"query\": \"flamingo\", \"include_all\": false}", &r, &out);
    assert_non_null(strstr(msg, "No results"));
    json_decref(r);
    mg_fn_outcome_clear(&out);

    msg = call_message(f, "{\"query\": \"flamingo\", \"include_all\": true}", &r, &out);
    assert_non_null(strstr(msg, "1 result"));
    assert_non_null(strstr(msg, "assistant: Pelicans carry fish in their pouch."));
    assert_non_null(strstr(msg, "(inner monologue / function call) A flamingo fact would fit."));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    /* Weaker models send booleans as strings, as for request_heartbeat. */
    msg = call_message(f, "{\"query\": \"cormorant\", \"include_all\": \"true\"}", &r, &out);
    assert_non_null(strstr(msg, "(tool) send_message: cormorant sighted"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
    msg = call_message(f, "{\"query\": \"pelicans\", \"include_all\": null}", &r, &out);
    assert_non_null(strstr(msg, "2 results"));
    assert_null(strstr(msg, "flamingo"));
    json_decref(r);
    mg_fn_outcome_clear(&out);

    /* A wrong type is the model's mistake: a Failed result, not an error. */
    const char *bad[] = {"1", "\"yes\"", "[true]", "{}", "0.5"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char args[96];
        snprintf(args, sizeof args, "{\"query\": \"flamingo\", \"include_all\": %s}", bad[k]);
        expect_failure(f, "conversation_search", args, "'include_all' must be true or false");
    }
}

/* When more messages match than recall ranks, the model is told so, and
 * how to reach the older ones. */
static void test_conversation_search_capped(void **state)
{
    fixture *f = *state;
    enum { N = RECALL_RANK_CAP + 20 };
    mg_msg *msgs = calloc(N, sizeof *msgs);
    for (int i = 0; i < N; i++) {
        msgs[i].role = MG_ROLE_USER;
        msgs[i].kind = "user_message";
        msgs[i].content = "{\"message\":\"the weather again\"}";
        msgs[i].time_ms = 1700000000000LL + i * 1000LL;
    }
    mg_error err = {0};
    assert_int_equal(recall_insert_many(f->agent->store, f->agent->id, msgs, N, &err), MG_OK);
    free(msgs);
    mg_fn_outcome out;
    json_t *r;
    const char *msg = call_message(f, "{\"query\": \"weather\"}", &r, &out);
    char head[96];
    snprintf(head, sizeof head, "More than %d results", RECALL_RANK_CAP);
    if (!strstr(msg, head) || !strstr(msg, "rarer") || !strstr(msg, "conversation_search_date") ||
        !strstr(msg, "back to 2023-11-14T22:13:40Z"))
        fail_msg("no hint in '%s'", msg);
    json_decref(r);
    mg_fn_outcome_clear(&out);
    /* Under the cap: the plain count. */
    msg = call_message(f, "{\"query\": \"nothing matches this\"}", &r, &out);
    assert_null(strstr(msg, "More than"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
}

static void test_long_results_are_cut(void **state)
{
    fixture *f = *state;
    /* Fill archival memory with long passages so one page is far over the limit. */
    char passage[1500];
    for (int i = 0; i < 5; i++) {
        memset(passage, 0, sizeof passage);
        snprintf(passage, 40, "volcano fact %d ", i);
        memset(passage + strlen(passage), 'z', 1400);
        mg_error err = {0};
        assert_int_equal(mg_archival_insert(f->agent, passage, NULL, 0, &err), MG_OK);
    }
    mg_fn_outcome out;
    json_t *r = call(f, "archival_memory_search", "{\"query\": \"volcano fact\"}", &out);
    const char *msg = json_string_value(json_object_get(r, "message"));
    assert_true(strlen(msg) < MG_FUNCTION_RESULT_MAX_BYTES + 300);
    assert_non_null(strstr(msg, "[cut: this result was"));
    json_decref(r);
    mg_fn_outcome_clear(&out);
}

static void push(fixture *f, mg_role role, int ncalls)
{
    mg_msg m = {.role = role,
                .kind = mg_xstrdup(role == MG_ROLE_USER ? "user_message" : "x"),
                .content = mg_xstrdup("some words in this message to take up a little space")};
    if (ncalls) {
        m.calls = mg_xcalloc(1, sizeof *m.calls);
        m.ncalls = 1;
        m.calls[0] = (mg_tool_call){mg_xstrdup("c"), mg_xstrdup("send_message"), mg_xstrdup("{}")};
    }
    if (role == MG_ROLE_TOOL) m.tool_call_id = mg_xstrdup("c");
    mg_error err = {0};
    assert_int_equal(agent_append_message(f->agent, m, NULL, &err), MG_OK);
}

static void test_overflow_cut_rules(void **state)
{
    fixture *f = *state;
    /* user, assistant(call), tool, repeated: cuts may only land before a user message. */
    for (int i = 0; i < 10; i++) {
        push(f, MG_ROLE_USER, 0);
        push(f, MG_ROLE_ASSISTANT, 1);
        push(f, MG_ROLE_TOOL, 0);
    }
    int n = overflow_pick(f->agent, 0, 100); /* an impossible target: evict the most allowed */
    assert_true(n > 0);
    assert_true(n <= f->agent->queue.count - MG_OVERFLOW_KEEP_LAST);
    assert_int_equal(f->agent->queue.items[n].role, MG_ROLE_USER);
    /* A generous target (a forced flush) evicts only up to the first clean cut. */
    assert_int_equal(overflow_pick(f->agent, 1000000, 100), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas),
        cmocka_unit_test_setup_teardown(test_send_message, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_model_mistakes, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_search_results, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_search_capped, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_conversation_search_include_all, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_long_results_are_cut, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_cut_rules, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
