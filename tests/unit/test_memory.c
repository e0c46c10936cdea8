/* Unit tests: core memory edits and limits; recall search and its query
 * sanitizer; archival insert and search. */
#include "testutil.h"

#include "agent/agent.h"
#include "memory/core_memory.h"
#include "memory/recall.h"

static void test_core_append_replace(void **state)
{
    fixture *f = *state;
    mg_core_memory *cm = &f->agent->core;
    mg_error err = {0};
    assert_int_equal(core_memory_set(cm, "human", "Name: Ana", &err), MG_OK);
    assert_int_equal(core_memory_append(cm, "human", "Likes tea", &err), MG_OK);
    assert_string_equal(core_memory_find(cm, "human")->value, "Name: Ana\nLikes tea");
    int n;
    assert_int_equal(core_memory_replace(cm, "human", "tea", "coffee", &n, &err), MG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(core_memory_find(cm, "human")->value, "Name: Ana\nLikes coffee");
    assert_int_equal(core_memory_replace(cm, "human", "\nLikes coffee", "", &n, &err), MG_OK);
    assert_string_equal(core_memory_find(cm, "human")->value, "Name: Ana");

    /* Persisted: a fresh load sees the same value. */
    mg_core_memory again;
    assert_int_equal(core_memory_load(f->store, f->agent->id, &again, &err), MG_OK);
    assert_string_equal(core_memory_find(&again, "human")->value, "Name: Ana");
    core_memory_free(&again);
}

static void test_core_errors(void **state)
{
    fixture *f = *state;
    mg_core_memory *cm = &f->agent->core;
    mg_error err = {0};
    int n;
    assert_int_equal(core_memory_append(cm, "nope", "x", &err), MG_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "persona, human"));
    assert_int_equal(core_memory_replace(cm, "human", "absent text", "y", &n, &err),
                     MG_ERR_NOT_FOUND);
    assert_int_equal(core_memory_replace(cm, "human", "", "y", &n, &err), MG_ERR_USAGE);
    assert_int_equal(core_memory_append(cm, "human", "   ", &err), MG_ERR_USAGE);

    char *big = malloc(2101);
    memset(big, 'x', 2100);
    big[2100] = '\0';
    const char *before = mg_xstrdup(core_memory_find(cm, "human")->value);
    assert_int_equal(core_memory_append(cm, "human", big, &err), MG_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "limit of 2000"));
    assert_string_equal(core_memory_find(cm, "human")->value, before);
    free(big);
    free((void *)before);

    /* Limits count characters, not bytes: 1000 two-byte letters fit. */
    char accents[2001] = {0};
    for (int i = 0; i < 1000; i++)
        memcpy(accents + 2 * i, "\xC3\xA9", 2);
    assert_int_equal(core_memory_set(cm, "human", accents, &err), MG_OK);

    cm->blocks[0].read_only = 1;
    assert_int_equal(core_memory_append(cm, cm->blocks[0].label, "x", &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "read-only"));
    /* The user may still set it. */
    assert_int_equal(core_memory_set(cm, cm->blocks[0].label, "set by the user", &err), MG_OK);
}

static void test_core_configure(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    assert_int_equal(mg_memory_configure(f->agent, "todo", 20, "Things to do", 1, &err), MG_OK);
    assert_int_equal(mg_memory_set(f->agent, "todo", "buy milk", &err), MG_OK);
    mg_block *b = core_memory_find(&f->agent->core, "todo");
    assert_true(b->read_only);
    assert_string_equal(b->description, "Things to do");
    /* The agent may not edit it; the limit cannot drop below the text. */
    assert_int_equal(core_memory_append(&f->agent->core, "todo", "x", &err), MG_ERR_USAGE);
    assert_int_equal(mg_memory_configure(f->agent, "todo", 3, NULL, -1, &err), MG_ERR_TOO_LARGE);
    assert_int_equal(mg_memory_configure(f->agent, "todo", 0, "", 0, &err), MG_OK);
    b = core_memory_find(&f->agent->core, "todo"); /* a failed edit reloads the cache */
    assert_null(b->description);
    assert_false(b->read_only);
    assert_int_equal(b->limit, 20);
    assert_int_equal(core_memory_append(&f->agent->core, "todo", "walk dog", &err), MG_OK);

    /* Persisted. */
    mg_agent *again;
    assert_int_equal(mg_agent_open(f->store, "t", &again, &err), MG_OK);
    b = core_memory_find(&again->core, "todo");
    assert_string_equal(b->value, "buy milk\nwalk dog");
    assert_int_equal(b->limit, 20);
    mg_agent_free(again);
}

static void test_fts_query_sanitizer(void **state)
{
    char *q = recall_fts_query("what did \"Ana\" say about (sailing) NEAR* boats OR cats:");
    assert_non_null(q);
    /* Every word quoted; stop words dropped; no bare operators survive. */
    assert_string_equal(q, "\"Ana\" OR \"say\" OR \"about\" OR \"sailing\" OR \"NEAR\" OR "
                           "\"boats\" OR \"cats\""); /* "OR" is a stop word here */
    assert_null(strstr(q, "("));
    assert_null(strstr(q, "*"));
    assert_null(strstr(q, ":"));
    free(q);
    assert_null(recall_fts_query("  \"*()  "));
    q = recall_fts_query("the of");
    assert_string_equal(q, "\"the\" OR \"of\"");
    free(q);
    q = recall_fts_query("caf\xC3\xA9 na\xC3\xAFve");
    assert_string_equal(q, "\"caf\xC3\xA9\" OR \"na\xC3\xAFve\"");
    free(q);
}

static void add_user_message(fixture *f, const char *text, int64_t time_ms)
{
    json_t *env = json_pack("{s:s, s:s}", "type", "user_message", "message", text);
    mg_msg m = {.role = MG_ROLE_USER,
                .kind = mg_xstrdup("user_message"),
                .content = json_dumps(env, JSON_COMPACT),
                .time_ms = time_ms};
    json_decref(env);
    mg_error err = {0};
    assert_int_equal(agent_append_message(f->agent, m, NULL, &err), MG_OK);
}

static void test_recall_search(void **state)
{
    fixture *f = *state;
    int64_t day = 86400000;
    add_user_message(f, "I went sailing with my brother", 20 * 365LL * day);
    add_user_message(f, "We sailed to the island of Caf\xC3\xA9", 20 * 365LL * day + day);
    add_user_message(f, "The tax report is due on Friday", 20 * 365LL * day + 2 * day);
    mg_error err = {0};
    json_t *found;
    mg_search s = {.query = "sail", .limit = 10};
    assert_int_equal(recall_search(f->store, f->agent->id, &s, &found, &err), MG_OK);
    assert_int_equal(json_integer_value(json_object_get(found, "total")), 2);
    json_t *first = json_array_get(json_object_get(found, "results"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(first, "text")), "sail"));
    json_decref(found);

    /* Diacritics fold; hostile syntax is just text. */
    s.query = "cafe";
    assert_int_equal(recall_search(f->store, f->agent->id, &s, &found, &err), MG_OK);
    assert_int_equal(json_integer_value(json_object_get(found, "total")), 1);
    json_decref(found);
    s.query = "\"report\" AND (tax OR NEAR(x y)) *";
    assert_int_equal(recall_search(f->store, f->agent->id, &s, &found, &err), MG_OK);
    assert_true(json_integer_value(json_object_get(found, "total")) >= 1);
    json_decref(found);

    /* Date range only: the second day. */
    mg_search by_date = {.from_ms = 20 * 365LL * day + day, .to_ms = 20 * 365LL * day + 2 * day};
    assert_int_equal(recall_search(f->store, f->agent->id, &by_date, &found, &err), MG_OK);
    assert_int_equal(json_integer_value(json_object_get(found, "total")), 1);
    json_decref(found);

    /* Paging past the end gives an empty page, not an error. */
    mg_search paged = {.query = "sailing", .limit = 1, .page = 5};
    assert_int_equal(recall_search(f->store, f->agent->id, &paged, &found, &err), MG_OK);
    assert_int_equal(json_array_size(json_object_get(found, "results")), 0);
    json_decref(found);

    mg_search empty = {.query = "()*"};
    assert_int_equal(recall_search(f->store, f->agent->id, &empty, &found, &err), MG_ERR_USAGE);
}

static void test_archival(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    assert_int_equal(mg_archival_insert(f->agent, "The dog is named Rex", "[\"pets\"]", 0, &err),
                     MG_OK);
    assert_int_equal(
        mg_archival_insert(f->agent, "Quarterly tax filing is in April", NULL, 0, &err), MG_OK);
    assert_int_equal(mg_archival_insert(f->agent, "   ", NULL, 0, &err), MG_ERR_USAGE);
    assert_int_equal(mg_archival_insert(f->agent, "x", "{\"not\": \"a list\"}", 0, &err),
                     MG_ERR_USAGE);
    assert_int_equal(mg_archival_insert_json(f->agent,
                                             "{\"text\": \"Trip to Oslo\", \"time\": "
                                             "\"2024-05-01\", \"tags\": [\"travel\"]}",
                                             &err),
                     MG_OK);
    assert_int_equal(mg_archival_insert_json(f->agent, "{\"tags\": []}", &err), MG_ERR_USAGE);
    assert_int_equal(mg_archival_insert_json(f->agent, "not json", &err), MG_ERR_USAGE);

    char *json;
    mg_search s = {.query = "what is my dog called"};
    assert_int_equal(mg_archival_search(f->agent, &s, &json, &err), MG_OK);
    json_t *found = json_loads(json, 0, NULL);
    mg_free(json);
    json_t *first = json_array_get(json_object_get(found, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "text")), "The dog is named Rex");
    assert_string_equal(json_string_value(json_array_get(json_object_get(first, "tags"), 0)),
                        "pets");
    json_decref(found);

    mg_search dated = {.query = "trip", .from_ms = 1714521600000LL, .to_ms = 1714608000000LL};
    assert_int_equal(mg_archival_search(f->agent, &dated, &json, &err), MG_OK);
    assert_non_null(strstr(json, "Oslo"));
    assert_non_null(strstr(json, "2024-05-01T00:00:00Z"));
    mg_free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_core_append_replace, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_core_errors, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_core_configure, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_fts_query_sanitizer),
        cmocka_unit_test_setup_teardown(test_recall_search, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
