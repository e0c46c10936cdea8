/* Unit tests: core memory edits and limits; recall search (what was said by
 * default, everything with include_all) and its query sanitizer; archival insert and search, and
 * the search's ranking (dates, neighbours, single rankings, rare words). */
#include "testutil.h"

#include "agent/agent.h"
#include "memory/archival.h"
#include "memory/core_memory.h"
#include "memory/fts_rank.h"
#include "memory/recall.h"
#include "util/timeutil.h"

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
    char *q = fts_query("what did \"Ana\" say about (sailing) NEAR* boats OR cats:");
    assert_non_null(q);
    /* Every word quoted; stop words dropped; no bare operators survive. */
    assert_string_equal(q, "\"Ana\" OR \"say\" OR \"about\" OR \"sailing\" OR \"NEAR\" OR "
                           "\"boats\" OR \"cats\""); /* "OR" is a stop word here */
    assert_null(strstr(q, "("));
    assert_null(strstr(q, "*"));
    assert_null(strstr(q, ":"));
    free(q);
    assert_null(fts_query("  \"*()  "));
    q = fts_query("the of");
    assert_string_equal(q, "\"the\" OR \"of\"");
    free(q);
    q = fts_query("caf\xC3\xA9 na\xC3\xAFve");
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

/* Stores one message directly (no agent cache): the unit under test is recall. */
static int64_t store_msg(fixture *f, mg_role role, const char *kind, const char *content,
                         const char *calls_json, const char *tool_name, int64_t time_ms)
{
    mg_msg m = {.role = role,
                .kind = mg_xstrdup(kind),
                .content = content ? mg_xstrdup(content) : NULL,
                .tool_name = tool_name ? mg_xstrdup(tool_name) : NULL,
                .tool_call_id = tool_name ? mg_xstrdup("call_1") : NULL,
                .time_ms = time_ms};
    if (calls_json) assert_true(mg_tool_calls_from_json(calls_json, &m.calls, &m.ncalls));
    mg_error err = {0};
    assert_int_equal(recall_insert(f->store, f->agent->id, &m, &err), MG_OK);
    int64_t id = m.id;
    mg_msg_clear(&m);
    return id;
}

static json_t *search_recall(fixture *f, const char *query, int all, int64_t from, int64_t to,
                             int limit, int page)
{
    mg_search s = {.query = query,
                   .include_all = all,
                   .from_ms = from,
                   .to_ms = to,
                   .limit = limit,
                   .page = page};
    json_t *found = NULL;
    mg_error err = {0};
    assert_int_equal(recall_search(f->store, f->agent->id, &s, &found, &err), MG_OK);
    return found;
}

static json_int_t found_total(json_t *found)
{
    return json_integer_value(json_object_get(found, "total"));
}

static json_t *found_row(json_t *found, size_t i)
{
    return json_array_get(json_object_get(found, "results"), i);
}

static const char *row_str(json_t *row, const char *key)
{
    return json_string_value(json_object_get(row, key));
}

/* One turn of each kind of traffic, on three days. */
static void add_turn_traffic(fixture *f, int64_t day0)
{
    int64_t day = 86400000;
    store_msg(f, MG_ROLE_USER, "user_message",
              "{\"type\":\"user_message\",\"message\":\"I went kayaking in Norway\"}", NULL, NULL,
              day0);
    store_msg(f, MG_ROLE_ASSISTANT, "assistant", "The user mentions kayaking; remember the fjords.",
              "[{\"id\":\"call_1\",\"name\":\"core_memory_append\",\"arguments\":"
              "\"{\\\"label\\\":\\\"human\\\",\\\"content\\\":\\\"paddles a narwhal "
              "kayak\\\"}\"},{\"id\":\"call_2\",\"name\":\"send_message\",\"arguments\":"
              "\"{\\\"message\\\":\\\"Kayaking there sounds wonderful!\\\"}\"}]",
              NULL, day0 + 1000);
    store_msg(f, MG_ROLE_TOOL, "tool",
              "{\"status\":\"OK\",\"message\":\"Appended to human: glacier notes\",\"time\":\"x\"}",
              NULL, "core_memory_append", day0 + 2000);
    store_msg(f, MG_ROLE_USER, "heartbeat",
              "{\"type\":\"heartbeat\",\"reason\":\"quokka wake-up call\"}", NULL, NULL,
              day0 + day);
    /* Thought and a call, nothing said. */
    store_msg(f, MG_ROLE_ASSISTANT, "assistant", "Nothing to say about the fjords yet.",
              "[{\"id\":\"call_3\",\"name\":\"archival_memory_search\",\"arguments\":"
              "\"{\\\"query\\\":\\\"walrus\\\"}\"}]",
              NULL, day0 + 2 * day);
}

static void test_recall_index_text(void **state)
{
    (void)state;
    mg_msg m = {.role = MG_ROLE_ASSISTANT, .kind = "assistant", .content = "thinking"};
    char *said, *inner;
    /* No call at all: the text was the reply. */
    recall_index_text(&m, &said, &inner);
    assert_string_equal(said, "thinking");
    assert_string_equal(inner, "");
    free(said);
    free(inner);
    mg_tool_call calls[] = {{"c1", "send_message", "{\"message\":\"hi there\"}"},
                            {"c2", "pause_heartbeats", "{\"minutes\":5}"},
                            {"c3", "send_message", "not json"}};
    m.calls = calls;
    m.ncalls = 3;
    recall_index_text(&m, &said, &inner);
    assert_string_equal(said, "hi there");
    assert_string_equal(inner, "thinking\npause_heartbeats({\"minutes\":5})");
    free(said);
    free(inner);
    char *whole = recall_search_text(&m);
    assert_string_equal(whole, "thinking\npause_heartbeats({\"minutes\":5})\nhi there");
    free(whole);

    mg_msg tool = {.role = MG_ROLE_TOOL,
                   .kind = "tool",
                   .tool_name = "send_message",
                   .content = "{\"status\":\"OK\",\"message\":\"None\"}"};
    recall_index_text(&tool, &said, &inner);
    assert_string_equal(said, "");
    assert_string_equal(inner, "send_message: None");
    free(said);
    free(inner);

    mg_msg alert = {.role = MG_ROLE_USER,
                    .kind = "system_alert",
                    .content = "{\"type\":\"system_alert\",\"message\":\"memory is full\"}"};
    recall_index_text(&alert, &said, &inner);
    assert_string_equal(said, "");
    assert_string_equal(inner, "memory is full");
    free(said);
    free(inner);
    /* recall_search_text of an event is its envelope text (the summarizer uses it). */
    whole = recall_search_text(&alert);
    assert_string_equal(whole, "memory is full");
    free(whole);
}

static void test_recall_include_all(void **state)
{
    fixture *f = *state;
    int64_t day0 = 20 * 365LL * 86400000;
    add_turn_traffic(f, day0);

    /* Default: what was said. The monologue, call arguments, results and
     * events are not found. */
    const char *inner_only[] = {"fjords", "narwhal", "glacier", "quokka", "walrus"};
    for (size_t i = 0; i < sizeof inner_only / sizeof *inner_only; i++) {
        json_t *found = search_recall(f, inner_only[i], 0, 0, 0, 10, 0);
        assert_int_equal(found_total(found), 0);
        json_decref(found);
        found = search_recall(f, inner_only[i], 1, 0, 0, 10, 0);
        assert_true(found_total(found) >= 1);
        assert_non_null(strstr(row_str(found_row(found, 0), "inner"), inner_only[i]));
        json_decref(found);
    }

    /* The said text is verbatim; the option adds "inner" only. */
    json_t *found = search_recall(f, "kayaking", 0, 0, 0, 10, 0);
    assert_int_equal(found_total(found), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *r = found_row(found, i);
        assert_null(json_object_get(r, "inner"));
        assert_non_null(row_str(r, "time"));
        const char *role = row_str(r, "role");
        assert_string_equal(row_str(r, "text"), strcmp(role, "user") == 0
                                                    ? "I went kayaking in Norway"
                                                    : "Kayaking there sounds wonderful!");
    }
    json_decref(found);
    found = search_recall(f, "narwhal", 1, 0, 0, 10, 0);
    assert_int_equal(found_total(found), 1);
    json_t *r = found_row(found, 0);
    assert_string_equal(row_str(r, "role"), "assistant");
    assert_string_equal(row_str(r, "text"), "Kayaking there sounds wonderful!");
    assert_string_equal(row_str(r, "inner"),
                        "The user mentions kayaking; remember the fjords.\n"
                        "core_memory_append({\"label\":\"human\",\"content\":\"paddles a narwhal "
                        "kayak\"})");
    json_decref(found);
    found = search_recall(f, "glacier", 1, 0, 0, 10, 0);
    r = found_row(found, 0);
    assert_string_equal(row_str(r, "role"), "tool");
    assert_string_equal(row_str(r, "text"), "");
    assert_string_equal(row_str(r, "inner"),
                        "core_memory_append: Appended to human: glacier notes");
    json_decref(found);

    /* Without words: the default lists what was said, the option everything. */
    found = search_recall(f, NULL, 0, day0, day0 + 3 * 86400000LL, 10, 0);
    assert_int_equal(found_total(found), 2);
    json_decref(found);
    found = search_recall(f, NULL, 1, day0, day0 + 3 * 86400000LL, 10, 0);
    assert_int_equal(found_total(found), 5);
    json_decref(found);
}

static void test_recall_include_all_dates_and_paging(void **state)
{
    fixture *f = *state;
    int64_t day = 86400000, day0 = 20 * 365LL * day;
    add_turn_traffic(f, day0);
    add_turn_traffic(f, day0 + 10 * day);

    /* The monologue word "fjords" is in 4 messages over two weeks. */
    json_t *found = search_recall(f, "fjords", 1, 0, 0, 10, 0);
    assert_int_equal(found_total(found), 4);
    json_decref(found);
    found = search_recall(f, "fjords", 1, day0 + 10 * day, 0, 10, 0);
    assert_int_equal(found_total(found), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *when = row_str(found_row(found, i), "time");
        assert_true(strcmp(when, "1990-01-06") >= 0); /* day0 + 10 days and later */
    }
    json_decref(found);
    found = search_recall(f, "fjords", 0, day0 + 10 * day, 0, 10, 0);
    assert_int_equal(found_total(found), 0);
    json_decref(found);
    found = search_recall(f, "quokka", 1, day0, day0 + 5 * day, 10, 0);
    assert_int_equal(found_total(found), 1);
    json_decref(found);

    /* Identical results: pages are stable and ties go to the newer. */
    int64_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] =
            store_msg(f, MG_ROLE_TOOL, "tool", "{\"status\":\"OK\",\"message\":\"zebra crossing\"}",
                      NULL, "archival_memory_search", day0 + 20 * day + i);
    for (int page = 0; page < 3; page++) {
        found = search_recall(f, "zebra", 1, 0, 0, 1, page);
        assert_int_equal(found_total(found), 3);
        assert_int_equal(json_integer_value(json_object_get(found_row(found, 0), "id")),
                         ids[2 - page]);
        json_decref(found);
    }
}

static void test_recall_include_all_hostile(void **state)
{
    fixture *f = *state;
    add_turn_traffic(f, 20 * 365LL * 86400000);
    /* Column filters, operators and quotes are just words, with or without
     * the option; a default search cannot reach the inner column by syntax. */
    const char *queries[] = {"{inner_text} : fjords",
                             "inner_text:fjords",
                             "\"fjords",
                             "fjords* OR NEAR(a b)",
                             "-search_text fjords",
                             "(fjords",
                             "fjords AND NOT \"x\"",
                             "^fjords +"};
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        json_t *found = search_recall(f, queries[i], 1, 0, 0, 10, 0);
        assert_true(found_total(found) >= 2);
        json_decref(found);
        found = search_recall(f, queries[i], 0, 0, 0, 10, 0);
        json_t *r;
        size_t k;
        json_array_foreach(json_object_get(found, "results"), k, r)
        {
            assert_null(json_object_get(r, "inner"));
            assert_null(strstr(row_str(r, "text"), "fjords"));
        }
        json_decref(found);
    }
    mg_search s = {.query = "{}*:", .include_all = 1};
    json_t *found;
    mg_error err = {0};
    assert_int_equal(recall_search(f->store, f->agent->id, &s, &found, &err), MG_ERR_USAGE);
}

static void test_recall_update_reindexes(void **state)
{
    fixture *f = *state;
    int64_t id = store_msg(f, MG_ROLE_ASSISTANT, "assistant", "pondering otters",
                           "[{\"id\":\"c\",\"name\":\"send_message\",\"arguments\":"
                           "\"{\\\"message\\\":\\\"hello beavers\\\"}\"}]",
                           NULL, 1000);
    mg_tool_call call = {"c", "send_message", "{\"message\":\"hello badgers\"}"};
    mg_msg m = {.id = id,
                .role = MG_ROLE_ASSISTANT,
                .content = "pondering stoats",
                .calls = &call,
                .ncalls = 1};
    mg_error err = {0};
    assert_int_equal(recall_update(f->store, &m, &err), MG_OK);
    const char *gone[] = {"otters", "beavers"}, *there[] = {"stoats", "badgers"};
    for (int i = 0; i < 2; i++) {
        json_t *found = search_recall(f, gone[i], 1, 0, 0, 10, 0);
        assert_int_equal(found_total(found), 0);
        json_decref(found);
        found = search_recall(f, there[i], 1, 0, 0, 10, 0);
        assert_int_equal(found_total(found), 1);
        json_decref(found);
    }
    json_t *found = search_recall(f, "stoats", 0, 0, 0, 10, 0);
    assert_int_equal(found_total(found), 0);
    json_decref(found);
    /* The bulk path keeps the agent's count, as the single one does. */
    int64_t count;
    assert_int_equal(recall_count(f->store, f->agent->id, &count, &err), MG_OK);
    assert_int_equal(count, 1);
    mg_msg many[2] = {{.role = MG_ROLE_USER, .kind = "user_message", .content = "{}"},
                      {.role = MG_ROLE_USER, .kind = "user_message", .content = "{}"}};
    assert_int_equal(recall_insert_many(f->store, f->agent->id, many, 2, &err), MG_OK);
    assert_true(many[0].id > id && many[1].id > many[0].id);
    assert_int_equal(recall_count(f->store, f->agent->id, &count, &err), MG_OK);
    assert_int_equal(count, 3);
}

/* A word with more matches than one ranking holds is dropped from a query
 * that also has rarer words (its newer matches would crowd theirs out), in
 * both modes; alone or with other common words, only its newest matches are
 * ranked. */
static void test_recall_common_words_dropped(void **state)
{
    fixture *f = *state;
    enum { N = 2100 };
    mg_msg *msgs = calloc(N, sizeof *msgs);
    for (int i = 0; i < N; i++) {
        msgs[i].role = MG_ROLE_USER;
        msgs[i].kind = "user_message";
        msgs[i].content = i % 700 == 0 ? "{\"message\":\"weather report with pelican\"}"
                                       : "{\"message\":\"weather report\"}";
        msgs[i].time_ms = 1000 + i;
    }
    mg_error err = {0};
    assert_int_equal(recall_insert_many(f->store, f->agent->id, msgs, N, &err), MG_OK);
    free(msgs);
    for (int all = 0; all < 2; all++) {
        json_t *found = search_recall(f, "weather pelican", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), 3);
        assert_null(json_object_get(found, "older_matches"));
        json_decref(found);
        /* Alone, a common word is still searched: its newest matches. */
        found = search_recall(f, "weather", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), RECALL_RANK_CAP);
        assert_true(json_is_true(json_object_get(found, "older_matches")));
        json_decref(found);
        /* So are several common words together. */
        found = search_recall(f, "weather report", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), RECALL_RANK_CAP);
        assert_true(json_is_true(json_object_get(found, "older_matches")));
        json_decref(found);
        /* With dates (the joined plan) the same. */
        found = search_recall(f, "weather pelican", all, 1000, 1000 + 701, 10, 0);
        assert_int_equal(found_total(found), 2);
        json_decref(found);
    }
}

/* Stores `n` user messages saying `text(i)`, one second apart from t0,
 * oldest first; returns the first id (the rest follow). */
static int64_t store_many(fixture *f, int64_t agent_id, int n, int64_t t0,
                          const char *(*text)(int i))
{
    mg_msg *msgs = calloc((size_t)n, sizeof *msgs);
    for (int i = 0; i < n; i++) {
        msgs[i].role = MG_ROLE_USER;
        msgs[i].kind = "user_message";
        msgs[i].content = (char *)text(i);
        msgs[i].time_ms = t0 + i * 1000LL;
    }
    mg_error err = {0};
    assert_int_equal(recall_insert_many(f->store, agent_id, msgs, n, &err), MG_OK);
    int64_t first = msgs[0].id;
    for (int i = 1; i < n; i++)
        assert_int_equal(msgs[i].id, first + i);
    free(msgs);
    return first;
}

enum { CAP_N = 2600, CAP_RARE = 7, CAP_WORDY = 300 };

/* Mostly the same words; one old message also says "pelican"; the messages
 * from CAP_WORDY on repeat "weather" (a better BM25 score). */
static const char *cap_text(int i)
{
    if (i == CAP_RARE) return "{\"message\":\"weather report with a pelican\"}";
    if (i % 3 == 0 && i >= CAP_WORDY) return "{\"message\":\"weather weather report\"}";
    return "{\"message\":\"weather report\"}";
}

/* Collects the ids of every page of a search (limit `limit`) into `ids`
 * (capacity `cap`), checking the order: scores never rise, equal scores go
 * newest first. Returns how many. */
static int all_pages(fixture *f, const char *query, int all, int64_t from, int64_t to, int limit,
                     int64_t *ids, int cap)
{
    int n = 0;
    double last_score = 1e300;
    int64_t last_id = INT64_MAX;
    for (int page = 0;; page++) {
        json_t *found = search_recall(f, query, all, from, to, limit, page);
        json_t *results = json_object_get(found, "results");
        size_t k;
        json_t *r;
        json_array_foreach(results, k, r)
        {
            int64_t id = json_integer_value(json_object_get(r, "id"));
            double score = json_real_value(json_object_get(r, "score"));
            assert_true(score <= last_score);
            if (score == last_score) assert_true(id < last_id);
            last_score = score, last_id = id;
            assert_true(n < cap);
            ids[n++] = id;
        }
        int done = json_array_size(results) == 0;
        json_decref(found);
        if (done) break;
    }
    return n;
}

/* More matches than RECALL_RANK_CAP: the newest are ranked and the result
 * says so; pages are stable; rarer words and date ranges reach the old ones. */
static void test_recall_rank_cap(void **state)
{
    fixture *f = *state;
    int64_t t0 = 1700000000000LL;
    int64_t first = store_many(f, f->agent->id, CAP_N, t0, cap_text);
    int64_t newest_ranked = first + CAP_N - RECALL_RANK_CAP; /* the oldest of the newest cap */
    char when[32];
    for (int all = 0; all < 2; all++) {
        json_t *found = search_recall(f, "weather", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), RECALL_RANK_CAP);
        assert_int_equal(json_integer_value(json_object_get(found, "pages")),
                         (RECALL_RANK_CAP + 9) / 10);
        assert_true(json_is_true(json_object_get(found, "older_matches")));
        mg_time_iso(t0 + (CAP_N - RECALL_RANK_CAP) * 1000LL, when, sizeof when);
        assert_string_equal(json_string_value(json_object_get(found, "ranked_from")), when);
        /* Best first: the wordy messages, the newest of them first. */
        int64_t top = json_integer_value(json_object_get(found_row(found, 0), "id"));
        assert_true((top - first) % 3 == 0);
        assert_true(top >= first + CAP_N - 3);
        json_decref(found);

        /* Every page, twice: the same ids in the same order, all among the
         * newest RECALL_RANK_CAP, none twice. */
        int64_t *a = calloc(CAP_N, sizeof *a), *b = calloc(CAP_N, sizeof *b);
        int na = all_pages(f, "weather", all, 0, 0, 37, a, CAP_N);
        int nb = all_pages(f, "weather", all, 0, 0, 37, b, CAP_N);
        assert_int_equal(na, RECALL_RANK_CAP);
        assert_int_equal(nb, na);
        assert_memory_equal(a, b, (size_t)na * sizeof *a);
        for (int i = 0; i < na; i++) {
            assert_true(a[i] >= newest_ranked && a[i] < first + CAP_N);
            for (int j = 0; j < i; j++)
                assert_true(a[i] != a[j]);
        }
        free(a);
        free(b);

        /* A rarer word still finds the old message, common words dropped. */
        found = search_recall(f, "weather pelican report", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), 1);
        assert_null(json_object_get(found, "older_matches"));
        assert_int_equal(json_integer_value(json_object_get(found_row(found, 0), "id")),
                         first + CAP_RARE);
        json_decref(found);

        /* A word that matches nothing does not hide the others. */
        found = search_recall(f, "zzqxj weather", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), RECALL_RANK_CAP);
        json_decref(found);

        /* A date range reaches old messages: a short one (ids read
         * exactly) ranks all of it ... */
        found = search_recall(f, "weather", all, t0, t0 + 100 * 1000LL, 10, 0);
        assert_int_equal(found_total(found), 100);
        assert_null(json_object_get(found, "older_matches"));
        for (size_t i = 0; i < json_array_size(json_object_get(found, "results")); i++) {
            int64_t id = json_integer_value(json_object_get(found_row(found, i), "id"));
            assert_true(id >= first && id < first + 100);
        }
        json_decref(found);
        /* ... a long one (ids bounded by its first and last message) ranks
         * the newest matches inside it. */
        int64_t to = t0 + 2100 * 1000LL;
        found = search_recall(f, "weather", all, t0, to, 10, 0);
        assert_int_equal(found_total(found), RECALL_RANK_CAP);
        assert_true(json_is_true(json_object_get(found, "older_matches")));
        mg_time_iso(t0 + (2100 - RECALL_RANK_CAP) * 1000LL, when, sizeof when);
        assert_string_equal(json_string_value(json_object_get(found, "ranked_from")), when);
        for (size_t i = 0; i < json_array_size(json_object_get(found, "results")); i++) {
            int64_t id = json_integer_value(json_object_get(found_row(found, i), "id"));
            assert_true(id >= first + 2100 - RECALL_RANK_CAP && id < first + 2100);
        }
        json_decref(found);
    }
}

static const char *other_text(int i)
{
    (void)i;
    return "{\"message\":\"weather report from elsewhere\"}";
}

/* With another agent's messages in the store (the joined plan), the cap
 * counts this agent's matches only, and the newest of them. */
static void test_recall_rank_cap_two_agents(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    mg_agent *other;
    assert_int_equal(mg_agent_create(f->store, "other", NULL, &err), MG_OK);
    assert_int_equal(mg_agent_open(f->store, "other", &other, &err), MG_OK);
    int64_t t0 = 1700000000000LL;
    int64_t first = store_many(f, f->agent->id, RECALL_RANK_CAP + 50, t0, cap_text);
    /* The other agent's are newer: they must not take the places. */
    store_many(f, other->id, 200, t0 + 10000000LL, other_text);
    for (int all = 0; all < 2; all++) {
        int64_t *ids = calloc(RECALL_RANK_CAP + 50, sizeof *ids);
        int n = all_pages(f, "weather", all, 0, 0, 100, ids, RECALL_RANK_CAP + 50);
        assert_int_equal(n, RECALL_RANK_CAP);
        for (int i = 0; i < n; i++)
            assert_true(ids[i] >= first + 50 && ids[i] < first + RECALL_RANK_CAP + 50);
        free(ids);
        json_t *found = search_recall(f, "elsewhere", all, 0, 0, 10, 0);
        assert_int_equal(found_total(found), 0);
        json_decref(found);
    }
    /* A word common only in the other agent's messages is not dropped from
     * this agent's search: here it is the only word that matches. */
    store_msg(f, MG_ROLE_USER, "user_message", "{\"message\":\"notes from elsewhere\"}", NULL, NULL,
              t0 + 20000000LL);
    for (int all = 0; all < 2; all++) {
        json_t *found = search_recall(f, "elsewhere pelican", all, 0, 0, 10, 0);
        int has = 0;
        for (int i = 0; i < found_total(found) && i < 10; i++)
            has |= strstr(json_string_value(json_object_get(found_row(found, i), "text")),
                          "notes from elsewhere") != NULL;
        assert_true(has);
        json_decref(found);
    }
    mg_agent_free(other);
}

/* Dated searches bound the posting lists by the ids found in the date range;
 * that must hold when ids do not follow times (a clock set back). */
static void test_recall_dates_with_unordered_times(void **state)
{
    fixture *f = *state;
    const int64_t times[] = {5000, 1000, 3000, 2000};
    for (int i = 0; i < 4; i++)
        store_msg(f, MG_ROLE_USER, "user_message", "{\"message\":\"otter sighting\"}", NULL, NULL,
                  times[i]);
    for (int all = 0; all < 2; all++) {
        json_t *found = search_recall(f, "otter", all, 1000, 3001, 10, 0);
        assert_int_equal(found_total(found), 3);
        json_decref(found);
        found = search_recall(f, "otter", all, 4000, 0, 10, 0);
        assert_int_equal(found_total(found), 1);
        assert_int_equal(json_integer_value(json_object_get(found_row(found, 0), "id")), 1);
        json_decref(found);
        found = search_recall(f, "otter", all, 6000, 7000, 10, 0);
        assert_int_equal(found_total(found), 0);
        json_decref(found);
    }
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

    /* Tags: only passages carrying every tag asked for, in every mode, with
     * dates too; bad tag lists are refused. */
    assert_int_equal(mg_archival_insert(f->agent, "Rex chewed the travel bag",
                                        "[\"pets\", \"travel\"]", 0, &err),
                     MG_OK);
    const char *pets[] = {"pets"}, *both[] = {"pets", "travel"}, *none[] = {"cooking"};
    struct {
        const char *const *tags;
        int ntags;
        int64_t to;
        int count;
    } cases[] = {{pets, 1, 0, 2}, {both, 2, 0, 1}, {none, 1, 0, 0}, {both, 2, 1714608000000LL, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int mode = ARCHIVAL_HYBRID; mode <= ARCHIVAL_TEXT; mode++) {
            mg_search t = {.query = mode == ARCHIVAL_TEXT ? "rex" : "Rex the dog travel",
                           .tags = cases[i].tags,
                           .ntags = cases[i].ntags,
                           .to_ms = cases[i].to};
            json_t *got;
            assert_int_equal(archival_search_mode(f->store, f->agent->id, f->agent->embedder, &t,
                                                  (archival_mode)mode, &got, &err),
                             MG_OK);
            json_t *results = json_object_get(got, "results");
            if ((int)json_array_size(results) != cases[i].count)
                fail_msg("case %zu mode %d: %zu results", i, mode, json_array_size(results));
            for (size_t k = 0; k < json_array_size(results); k++) {
                json_t *tags = json_object_get(json_array_get(results, k), "tags"), *tag;
                size_t ti;
                int has = 0;
                json_array_foreach(tags, ti, tag) has |=
                    strcmp(json_string_value(tag), "pets") == 0;
                assert_true(has);
            }
            json_decref(got);
        }
    }
    const char *empty[] = {""}, *many[MG_SEARCH_MAX_TAGS + 1] = {0};
    for (int i = 0; i <= MG_SEARCH_MAX_TAGS; i++)
        many[i] = "pets";
    mg_search bad = {.query = "rex", .tags = empty, .ntags = 1};
    assert_int_equal(mg_archival_search(f->agent, &bad, &json, &err), MG_ERR_USAGE);
    bad.tags = many;
    bad.ntags = MG_SEARCH_MAX_TAGS + 1;
    assert_int_equal(mg_archival_search(f->agent, &bad, &json, &err), MG_ERR_USAGE);
}

/* 2023-05-08T12:00:00Z and later times, for the ranking tests. */
#define MAY_8_2023_NOON 1683547200000LL
#define HOUR_MS         3600000LL

static void insert_at(fixture *f, const char *text, int64_t time_ms)
{
    mg_error err = {0};
    assert_int_equal(mg_archival_insert(f->agent, text, NULL, time_ms, &err), MG_OK);
}

/* Searches in `mode` and returns the result list (a new reference) and the
 * total. */
static json_t *search_mode(fixture *f, const char *query, archival_mode mode, int *total)
{
    mg_search s = {.query = query, .limit = 10};
    mg_error err = {0};
    json_t *found;
    assert_int_equal(
        archival_search_mode(f->store, f->agent->id, f->agent->embedder, &s, mode, &found, &err),
        MG_OK);
    json_t *results = json_incref(json_object_get(found, "results"));
    *total = (int)json_integer_value(json_object_get(found, "total"));
    json_decref(found);
    return results;
}

static const char *text_at(json_t *results, size_t i)
{
    return json_string_value(json_object_get(json_array_get(results, i), "text"));
}

/* A date in the query picks passages stored on that day (or in that month),
 * and is not searched for as words. */
static void test_archival_dates(void **state)
{
    fixture *f = *state;
    insert_at(f, "The concert was loud and the band played until midnight.", MAY_8_2023_NOON);
    insert_at(f, "We went to a concert in the park, the band was great.",
              MAY_8_2023_NOON + 24 * 24 * HOUR_MS); /* June 1 */
    insert_at(f, "On 8 May 2023 I wrote this date into the text.",
              MAY_8_2023_NOON + 60 * 24 * HOUR_MS);
    int total;
    json_t *r =
        search_mode(f, "Which band played at the concert on 8 May, 2023?", ARCHIVAL_HYBRID, &total);
    assert_string_equal(text_at(r, 0), "The concert was loud and the band played until midnight.");
    json_decref(r);
    r = search_mode(f, "Which band played at the concert on May 8th, 2023?", ARCHIVAL_HYBRID,
                    &total);
    assert_string_equal(text_at(r, 0), "The concert was loud and the band played until midnight.");
    json_decref(r);
    r = search_mode(f, "band at the concert in June 2023", ARCHIVAL_HYBRID, &total);
    assert_string_equal(text_at(r, 0), "We went to a concert in the park, the band was great.");
    json_decref(r);
    /* The date's words are not search words: only the passages with
     * "concert" or "band" match, not the one that merely mentions the date. */
    r = search_mode(f, "concert 2023-05-08", ARCHIVAL_HYBRID, &total);
    assert_string_equal(text_at(r, 0), "The concert was loud and the band played until midnight.");
    for (size_t i = 0; i < json_array_size(r); i++)
        assert_null(strstr(text_at(r, i), "wrote this date"));
    json_decref(r);
    /* A query that is only a date still searches its words. */
    r = search_mode(f, "8 May 2023", ARCHIVAL_HYBRID, &total);
    assert_true(total >= 1);
    json_decref(r);
}

/* The position of the first result whose text starts with `prefix`; -1. */
static int rank_of(json_t *results, const char *prefix)
{
    for (size_t i = 0; i < json_array_size(results); i++)
        if (strncmp(text_at(results, i), prefix, strlen(prefix)) == 0) return (int)i;
    return -1;
}

/* Passages stored together share relevance: a reply with no word of the
 * query ranks with the question it answers (above it: a question asks, it
 * does not tell), but not across a gap in time. */
static void test_archival_neighbours(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(f, "Ana: What did you take away from the novel about the lighthouse keeper?", t);
    insert_at(f, "Ben: It taught me patience, and that hope lasts.", t);
    for (int i = 0; i < 6; i++)
        insert_at(f, "Cleo: unrelated chatter about weekend plans and groceries.", t + 5 * HOUR_MS);
    insert_at(f, "Dan: I loved a novel like that once.", t + 9 * HOUR_MS);
    insert_at(f, "Eve: Me too, a minute later.", t + 9 * HOUR_MS + 60000);
    insert_at(f, "Fay: Me too, two hours later.", t + 11 * HOUR_MS);

    int total;
    json_t *r = search_mode(f, "novel lighthouse keeper take away", ARCHIVAL_HYBRID, &total);
    assert_string_equal(text_at(r, 0), "Ben: It taught me patience, and that hope lasts.");
    assert_string_equal(text_at(r, 1),
                        "Ana: What did you take away from the novel about the lighthouse keeper?");
    assert_string_equal(text_at(r, 2), "Dan: I loved a novel like that once.");
    /* Eve, a minute after Dan, gets a share of his relevance; Fay, two hours
     * later, none; Cleo's chatter has no word of the query. */
    int eve = 0;
    for (size_t i = 0; i < json_array_size(r); i++) {
        eve |= strncmp(text_at(r, i), "Eve:", 4) == 0;
        assert_null(strstr(text_at(r, i), "Fay:"));
        assert_null(strstr(text_at(r, i), "Cleo:"));
    }
    assert_true(eve);
    json_decref(r);

    /* Extreme stored times (callers choose them) next to each other must not
     * overflow the neighbour test. */
    insert_at(f, "Gus: a novel from the far future.", INT64_MAX - 1);
    insert_at(f, "Hal: a novel from the far past.", INT64_MIN + 1);
    json_decref(search_mode(f, "novel", ARCHIVAL_HYBRID, &total));
    assert_true(total >= 4);

    /* Plain BM25 knows nothing of neighbours: the reply is not a hit. */
    r = search_mode(f, "lighthouse keeper take away", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 1); /* Ana */
    for (size_t i = 0; i < json_array_size(r); i++)
        assert_null(strstr(text_at(r, i), "Ben:"));
    json_decref(r);
}

/* A neighbour passes on more of its relevance the closer it comes to the
 * best match: the reply to the best match (a question) comes first, but the
 * reply to a short passage that shares one word of the query ranks below a
 * long passage that shares one word itself (with shares in plain proportion to
 * relevance, the reply came first). */
static void test_archival_weak_neighbours(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(f, "Ana: What did you take away from the novel about the lighthouse keeper?", t);
    insert_at(f, "Ben: It taught me patience, and that hope lasts.", t + 60000);
    insert_at(f, "Dan: I saw a lighthouse once.", t + 5 * HOUR_MS);
    insert_at(f, "Eve: Oh, which one was it then?", t + 5 * HOUR_MS + 60000);
    insert_at(f,
              "Hal: we spent the whole afternoon at the market, bought apples, pears, bread, "
              "cheese, eggs and a second-hand novel, then walked home along the river and over "
              "the old stone bridge in the pouring rain, soaked and laughing all the way.",
              t + 10 * HOUR_MS);

    int total;
    json_t *r = search_mode(f, "novel lighthouse keeper", ARCHIVAL_HYBRID, &total);
    int ben = rank_of(r, "Ben:"), eve = rank_of(r, "Eve:"), hal = rank_of(r, "Hal:");
    assert_int_equal(ben, 0);
    assert_true(hal > ben);
    assert_true(eve < 0 || eve > hal);
    json_decref(r);
}

/* A reply to a question gets more of the question's relevance than a reply
 * to a statement gets of the statement's, and ranks above the question,
 * which asks rather than tells. */
static void test_archival_answers(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(f, "Ana: did you like the novel about the lighthouse keeper?", t);
    insert_at(f, "Ben: it taught me patience.", t + 60000);
    insert_at(f, "Dan: the novel about the lighthouse keeper.", t + 5 * HOUR_MS);
    insert_at(f, "Eve: it taught me patience.", t + 5 * HOUR_MS + 60000);

    int total;
    json_t *r = search_mode(f, "novel lighthouse keeper", ARCHIVAL_HYBRID, &total);
    int ana = rank_of(r, "Ana:"), ben = rank_of(r, "Ben:"), eve = rank_of(r, "Eve:");
    assert_int_equal(rank_of(r, "Dan:"), 0);
    assert_true(ben >= 0 && ana > ben);
    assert_true(eve > ben);
    json_decref(r);
}

/* A match whose first word is one of the query's (who speaks, what it is
 * about) ranks above one that only mentions it, however short. */
static void test_archival_subject(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(f, "Maya: I adopted a cat from the shelter.", t);
    insert_at(f, "Leo: Maya adopted a cat.", t + 5 * HOUR_MS);
    insert_at(f, "Tom: the weather was mild all week.", t + 10 * HOUR_MS);

    int total;
    json_t *r = search_mode(f, "Did Maya adopt a cat?", ARCHIVAL_HYBRID, &total);
    int maya = rank_of(r, "Maya:"), leo = rank_of(r, "Leo:");
    assert_true(maya >= 0 && leo > maya);
    json_decref(r);

    /* Plain BM25 is left as it was: the shorter match wins. */
    r = search_mode(f, "Did Maya adopt a cat?", ARCHIVAL_TEXT, &total);
    assert_true(rank_of(r, "Leo:") < rank_of(r, "Maya:"));
    json_decref(r);
}

/* The best match's words find a passage that shares no word with the query
 * but its subject; a word only the match has, or a stopword, finds nothing. */
static void test_archival_feedback(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(f, "Maya: my whole family loves camping trips with the kids.", t);
    insert_at(f, "Maya: the kids built a huge sandcastle on the beach.", t + 5 * HOUR_MS);
    insert_at(f, "Maya: my report is due on friday.", t + 10 * HOUR_MS);
    insert_at(f, "Tom: the weather was mild all week.", t + 15 * HOUR_MS);
    insert_at(f, "Tom: trains were late again.", t + 20 * HOUR_MS);

    int total;
    json_t *r = search_mode(f, "What does Maya do with her family?", ARCHIVAL_HYBRID, &total);
    int camping = rank_of(r, "Maya: my whole"), beach = rank_of(r, "Maya: the kids"),
        report = rank_of(r, "Maya: my report");
    assert_int_equal(camping, 0);
    assert_true(beach > camping && report > beach);
    assert_true(rank_of(r, "Tom:") < 0 || rank_of(r, "Tom:") > report);
    json_decref(r);
}

/* A question that asks when prefers the passage that says when; another
 * question does not. */
static void test_archival_when(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(
        f, "Ava: we saw the old lighthouse museum last week, after a long drive up the coast.", t);
    insert_at(f, "Ava: the lighthouse museum is lovely.", t + 5 * HOUR_MS);
    insert_at(f, "Tom: the weather was mild all week.", t + 10 * HOUR_MS);

    int total;
    json_t *r = search_mode(f, "When did Ava see the lighthouse museum?", ARCHIVAL_HYBRID, &total);
    assert_true(rank_of(r, "Ava: we saw") < rank_of(r, "Ava: the lighthouse"));
    json_decref(r);
    r = search_mode(f, "How long ago was Ava at the lighthouse museum?", ARCHIVAL_HYBRID, &total);
    assert_true(rank_of(r, "Ava: we saw") < rank_of(r, "Ava: the lighthouse"));
    json_decref(r);
    r = search_mode(f, "Did Ava see the lighthouse museum?", ARCHIVAL_HYBRID, &total);
    assert_true(rank_of(r, "Ava: the lighthouse") < rank_of(r, "Ava: we saw"));
    json_decref(r);
}

/* A passage that holds all of the query's words outranks a shorter one
 * that repeats only one of them (COVERAGE in archival.c); without the
 * factor, BM25 ranks the repetition first. */
static void test_archival_coverage(void **state)
{
    fixture *f = *state;
    int64_t t = MAY_8_2023_NOON;
    insert_at(f, "Ola: heron, heron!", t);
    insert_at(f, "Pia: a heron by the lake.", t + 3 * HOUR_MS);
    insert_at(f, "Quin: the lake was cold.", t + 6 * HOUR_MS);
    insert_at(f, "Rut: we swam in the lake.", t + 9 * HOUR_MS);
    insert_at(f, "Sam: the lake froze over.", t + 12 * HOUR_MS);
    /* Rows without the query's words, so that "lake" still has an IDF. */
    for (int i = 0; i < 10; i++)
        insert_at(f, "Tom: nothing new today.", t + (15 + 3 * i) * HOUR_MS);

    int total;
    json_t *r = search_mode(f, "heron lake", ARCHIVAL_HYBRID, &total);
    assert_string_equal(text_at(r, 0), "Pia: a heron by the lake.");
    json_decref(r);
    /* The factor is the hybrid's: BM25 alone still ranks the repetition first. */
    r = search_mode(f, "heron lake", ARCHIVAL_TEXT, &total);
    assert_string_equal(text_at(r, 0), "Ola: heron, heron!");
    json_decref(r);
}

/* The single rankings: BM25 needs a shared word, the embedder does not. */
static void test_archival_modes(void **state)
{
    fixture *f = *state;
    insert_at(f, "I will receive the parcel tomorrow morning", 0);
    insert_at(f, "The weather is mild", 0);
    int total;
    json_t *r = search_mode(f, "recieve", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 0);
    json_decref(r);
    r = search_mode(f, "recieve", ARCHIVAL_VECTOR, &total);
    assert_string_equal(text_at(r, 0), "I will receive the parcel tomorrow morning");
    json_decref(r);
    r = search_mode(f, "recieve", ARCHIVAL_HYBRID, &total);
    assert_string_equal(text_at(r, 0), "I will receive the parcel tomorrow morning");
    json_decref(r);
    r = search_mode(f, "parcel", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 1);
    assert_string_equal(text_at(r, 0), "I will receive the parcel tomorrow morning");
    json_decref(r);
}

/* The query's embedding weighs words by rarity: a name on every passage
 * does not outweigh the one word that finds the answer. */
static void test_archival_rare_words_lead(void **state)
{
    fixture *f = *state;
    const char *chatter[] = {"Ana: hello there",  "Ana: see you soon", "Ana: so glad",
                             "Ana: thanks a lot", "Ana: sounds great", "Ana: good morning",
                             "Ana: how are you",  "Ana: talk later"};
    for (size_t i = 0; i < sizeof chatter / sizeof chatter[0]; i++)
        insert_at(f, chatter[i], 0);
    const char *answer = "Ana: we finally took the old boat out with my uncle and his two "
                         "dogs, a cold and windy day on the lake, but everyone loved it";
    insert_at(f, answer, 0);
    int total;
    json_t *r = search_mode(f, "Ana boat", ARCHIVAL_VECTOR, &total);
    assert_string_equal(text_at(r, 0), answer);
    json_decref(r);
}

/* Stores 3,000 passages of `words` made-up words each ("qq7 ww7 ..."),
 * none shared with any other passage. */
static void insert_unrelated(fixture *f, int words)
{
    enum { UNRELATED = 3000 };
    char **items = malloc(UNRELATED * sizeof *items);
    for (int i = 0; i < UNRELATED; i++) {
        buf b = BUF_INIT;
        for (int w = 0; w < words; w++)
            buf_printf(&b, "%s%c%c%d", w ? " " : "", "qwertyuiop"[w % 10], "wertyuiopa"[w % 10], i);
        items[i] = buf_take(&b);
    }
    mg_error err = {0};
    int stored;
    assert_int_equal(mg_archival_insert_many(f->agent, (const char *const *)items, UNRELATED, 0,
                                             NULL, &stored, &err),
                     MG_OK);
    assert_int_equal(stored, UNRELATED);
    for (int i = 0; i < UNRELATED; i++)
        free(items[i]);
    free(items);
}

/* Passages that share no word with the query do not change how its words
 * weigh against each other. "ana" is in 31 of 32 passages, "research" in
 * one: among them "research" decides. With IDF over the whole memory, 3,000
 * unrelated passages made "ana" look nearly as rare, and five of it beat one
 * "research" (the old code fails the second check). */
static void test_archival_unrelated_passages(void **state)
{
    fixture *f = *state;
    char text[64];
    insert_at(f, "ana ana ana ana ana", MAY_8_2023_NOON);
    insert_at(f, "research went well today and then we all went home", MAY_8_2023_NOON + HOUR_MS);
    for (int i = 0; i < 30; i++) {
        snprintf(text, sizeof text, "ana saw item%d and item%d", i, i + 100);
        insert_at(f, text, MAY_8_2023_NOON + (2 + i) * HOUR_MS);
    }
    int total;
    json_t *r = search_mode(f, "ana research", ARCHIVAL_TEXT, &total);
    assert_string_equal(text_at(r, 0), "research went well today and then we all went home");
    json_decref(r);
    insert_unrelated(f, 5);
    r = search_mode(f, "ana research", ARCHIVAL_TEXT, &total);
    assert_string_equal(text_at(r, 0), "research went well today and then we all went home");
    json_decref(r);
}

/* Passages that share no word with the query do not change how its matches
 * weigh their lengths either. The long passage holds both words, the short
 * one only the commoner. Measured against the memory's mean length, 3,000
 * passages of two words made every 40-word passage look padded, and the
 * short one won (the old code fails the second check); measured against
 * the mean length of what the words match, the long one stays first. */
static void test_archival_unrelated_lengths(void **state)
{
    fixture *f = *state;
    const char *both = "we walked the long path around the lake this morning and after a "
                       "while a grey heron stood in the reeds so still that we almost missed "
                       "it before it lifted off over the water";
    const char *one = "heron again today";
    insert_at(f, both, MAY_8_2023_NOON);
    insert_at(f, one, MAY_8_2023_NOON + HOUR_MS);
    for (int i = 0; i < 10; i++) {
        char text[160];
        snprintf(text, sizeof text,
                 "note %d about the garden fence paint shed tools seeds soil compost rain "
                 "gutters bricks gate hinge path moss",
                 i);
        insert_at(f, text, MAY_8_2023_NOON + (2 + i) * HOUR_MS);
    }
    int total;
    json_t *r = search_mode(f, "heron lake", ARCHIVAL_TEXT, &total);
    assert_string_equal(text_at(r, 0), both);
    json_decref(r);
    insert_unrelated(f, 2);
    r = search_mode(f, "heron lake", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 2);
    assert_string_equal(text_at(r, 0), both);
    json_decref(r);
}

/* A bounded count is exact up to its cap, and beyond it estimated from how
 * far back the cap-th newest match lies: a word in every other passage of
 * 200, counted to 10, is taken to be in about 100. */
static void test_fts_counter(void **state)
{
    fixture *f = *state;
    char text[64];
    for (int i = 0; i < 200; i++) {
        snprintf(text, sizeof text, "%s entry %d%s", i % 2 ? "often" : "plain", i,
                 i == 7 ? " rarely" : "");
        insert_at(f, text, MAY_8_2023_NOON + i * HOUR_MS);
    }
    static const fts_table passages = {"passages_fts", "passages", "counting"};
    fts_counter c;
    mg_error err = {0};
    assert_int_equal(fts_counter_open(&c, f->store, &passages, 10, &err), MG_OK);
    double df;
    assert_int_equal(fts_counter_count(&c, "\"rarely\"", 8, &df, &err), MG_OK);
    assert_true(df == 1);
    assert_int_equal(fts_counter_count(&c, "\"absent\"", 8, &df, &err), MG_OK);
    assert_true(df == 0);
    assert_int_equal(fts_counter_count(&c, "\"often\"", 7, &df, &err), MG_OK);
    assert_true(df > 90 && df < 110);
    assert_int_equal(fts_counter_count(&c, "\"entry\"", 7, &df, &err), MG_OK);
    assert_true(df > 190 && df < 210);
    /* A phrase with no token matches nothing; one FTS5 refuses is -1. */
    assert_int_equal(fts_counter_count(&c, "\"\"", 2, &df, &err), MG_OK);
    assert_true(df == 0);
    assert_int_equal(fts_counter_count(&c, "\"often", 6, &df, &err), MG_OK);
    assert_true(df == -1);
    fts_counter_close(&c);
}

/* Text rankings are bounded (here to 10 matches): a rare word's old
 * matches are ranked, not crowded out by a common word's newer ones; a
 * query of common words only ranks their newest matches. */
static void test_archival_text_rank_cap(void **state)
{
    fixture *f = *state;
    archival_set_text_rank_cap(f->store, 10);
    insert_at(f, "the zebra crossed the river", MAY_8_2023_NOON);
    insert_at(f, "a zebra and a boat", MAY_8_2023_NOON + HOUR_MS);
    char text[64];
    for (int i = 0; i < 30; i++) {
        snprintf(text, sizeof text, "boat trip number %d", i);
        insert_at(f, text, MAY_8_2023_NOON + (2 + i) * HOUR_MS);
    }
    int total;
    json_t *r = search_mode(f, "boat zebra", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 2); /* "boat" (31 matches) does not fit: dropped */
    assert_string_equal(text_at(r, 0), "a zebra and a boat");
    assert_string_equal(text_at(r, 1), "the zebra crossed the river");
    json_decref(r);
    r = search_mode(f, "boat", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 10); /* the newest 10 of 31 */
    for (size_t i = 0; i < json_array_size(r); i++)
        assert_non_null(strstr(text_at(r, i), "boat trip number 2"));
    json_decref(r);
    /* The answer says so: how many were ranked, back to when. */
    mg_search capped = {.query = "boat", .limit = 10};
    json_t *answer;
    mg_error e = {0};
    assert_int_equal(archival_search_mode(f->store, f->agent->id, f->agent->embedder, &capped,
                                          ARCHIVAL_HYBRID, &answer, &e),
                     MG_OK);
    assert_int_equal(json_integer_value(json_object_get(answer, "text_ranked")), 10);
    assert_string_equal(json_string_value(json_object_get(answer, "text_ranked_from")),
                        "2023-05-09T10:00:00Z");
    json_decref(answer);
    capped.query = "zebra";
    assert_int_equal(archival_search_mode(f->store, f->agent->id, f->agent->embedder, &capped,
                                          ARCHIVAL_HYBRID, &answer, &e),
                     MG_OK);
    assert_null(json_object_get(answer, "text_ranked"));
    json_decref(answer);
    /* A filtered search drops no word for being common outside its scope:
     * "boat" is the only word of the tagged passage. */
    insert_at(f, "my boat notes", MAY_8_2023_NOON - HOUR_MS);
    mg_error err = {0};
    assert_int_equal(store_exec(f->store,
                                "UPDATE passages SET tags = '[\"mine\"]' WHERE text = 'my boat "
                                "notes'",
                                &err),
                     MG_OK);
    const char *mine[] = {"mine"};
    /* (Not the vector ranking alone: it weighs words by their rarity in the
     * whole memory, where "boat" is nearly everywhere.) */
    const archival_mode modes[] = {ARCHIVAL_HYBRID, ARCHIVAL_TEXT};
    for (int m = 0; m < 2; m++) {
        archival_mode mode = modes[m];
        mg_search s = {.query = "boat zebra", .limit = 10, .tags = mine, .ntags = 1};
        json_t *found;
        assert_int_equal(archival_search_mode(f->store, f->agent->id, f->agent->embedder, &s, mode,
                                              &found, &err),
                         MG_OK);
        json_t *results = json_object_get(found, "results");
        if (json_array_size(results) != 1)
            fail_msg("mode %d: %zu results", (int)mode, json_array_size(results));
        assert_string_equal(text_at(results, 0), "my boat notes");
        json_decref(found);
    }
    /* Nor when another agent shares the store. */
    assert_int_equal(mg_agent_create(f->store, "other", NULL, &err), MG_OK);
    mg_agent *other;
    assert_int_equal(mg_agent_open(f->store, "other", &other, &err), MG_OK);
    assert_int_equal(mg_archival_insert(other, "someone else's zebra", NULL, 0, &err), MG_OK);
    r = search_mode(f, "boat zebra", ARCHIVAL_TEXT, &total);
    int mine_found = 0;
    for (size_t i = 0; i < json_array_size(r); i++)
        mine_found |= strcmp(text_at(r, i), "my boat notes") == 0;
    assert_true(mine_found);
    json_decref(r);
    mg_agent_free(other);

    archival_set_text_rank_cap(f->store, 0);
    r = search_mode(f, "boat", ARCHIVAL_TEXT, &total);
    assert_int_equal(total, 32);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_core_append_replace, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_core_errors, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_core_configure, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_fts_query_sanitizer),
        cmocka_unit_test_setup_teardown(test_recall_search, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_recall_index_text),
        cmocka_unit_test_setup_teardown(test_recall_include_all, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_include_all_dates_and_paging, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_include_all_hostile, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_update_reindexes, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_common_words_dropped, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_rank_cap, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_rank_cap_two_agents, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_recall_dates_with_unordered_times, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_dates, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fts_counter, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_unrelated_passages, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_unrelated_lengths, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_text_rank_cap, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_neighbours, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_weak_neighbours, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_coverage, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_answers, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_subject, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_feedback, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_when, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_modes, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_archival_rare_words_lead, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
