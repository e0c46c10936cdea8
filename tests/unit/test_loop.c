/* Unit tests of the turn loop with an in-test provider: the step transaction
 * and the cache staying equal to disk when a commit fails. */
#include "testutil.h"

#include <sqlite3.h>

#include "agent/agent.h"
#include "memory/core_memory.h"
#include "store/store.h"

/* A provider that answers every call with one send_message. */
static mg_status scripted_chat(mg_provider *p, const mg_llm_request *req, mg_llm_reply *reply,
                               mg_error *err)
{
    reply->content = mg_xstrdup("thinking");
    reply->calls = mg_xcalloc(1, sizeof *reply->calls);
    reply->ncalls = 1;
    reply->calls[0] = (mg_tool_call){mg_xstrdup("c1"), mg_xstrdup("send_message"),
                                     mg_xstrdup("{\"message\": \"hello back\"}")};
    reply->prompt_tokens = 100;
    return MG_OK;
}

static void scripted_destroy(mg_provider *p)
{
    free(p->model);
    free(p);
}

static const mg_provider_ops scripted_ops = {
    .prefix = "test", .chat = scripted_chat, .destroy = scripted_destroy};

static void use_scripted_provider(mg_agent *a)
{
    mg_provider *p = mg_xcalloc(1, sizeof *p);
    p->ops = &scripted_ops;
    p->model = mg_xstrdup("scripted");
    a->provider = p;
}

static int commits_to_fail;

static int fail_commit(void *unused)
{
    (void)unused;
    return commits_to_fail > 0 && commits_to_fail-- == 1; /* non-zero turns COMMIT into ROLLBACK */
}

static int64_t disk_count(fixture *f, const char *sql)
{
    int64_t n;
    mg_error err = {0};
    assert_int_equal(store_query_int(f->store, sql, f->agent->id, -1, &n, &err), MG_OK);
    return n;
}

static int replies;

static void count_replies(const mg_event *ev, void *user)
{
    if (ev->type == MG_EVENT_ASSISTANT) replies++;
}

static void test_turn_commits_and_shows(void **state)
{
    fixture *f = *state;
    use_scripted_provider(f->agent);
    mg_error err = {0};
    replies = 0;
    assert_int_equal(mg_agent_send(f->agent, "hi", count_replies, NULL, &err), MG_OK);
    assert_int_equal(replies, 1);
    /* user message, assistant, tool result: on disk and in view */
    assert_int_equal(disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ?"), 3);
    assert_int_equal(f->agent->queue.count, 3);
    assert_int_equal(f->agent->recall_count, 3);
}

static void test_failed_step_commit_keeps_cache_equal_to_disk(void **state)
{
    fixture *f = *state;
    use_scripted_provider(f->agent);
    sqlite3_commit_hook(f->store->db, fail_commit, NULL);
    mg_error err = {0};
    replies = 0;
    commits_to_fail = 2; /* the user message commits; the step's commit fails */
    assert_int_not_equal(mg_agent_send(f->agent, "hi", count_replies, NULL, &err), MG_OK);
    assert_int_equal(replies, 0); /* nothing shown that is not on disk */
    int64_t on_disk =
        disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ? AND in_context = 1");
    assert_int_equal(f->agent->queue.count, on_disk);
    assert_int_equal(f->agent->recall_count,
                     disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ?"));

    /* A failed event commit: nothing in view that the disk lacks. */
    commits_to_fail = 1;
    assert_int_not_equal(mg_agent_send(f->agent, "second", count_replies, NULL, &err), MG_OK);
    assert_int_equal(
        f->agent->queue.count,
        disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ? AND in_context = 1"));
    assert_int_equal(f->agent->user_since_reflect,
                     disk_count(f, "SELECT user_since_reflect FROM agents WHERE id = ?"));

    /* Healthy again: the next turn works and pairs calls with results. */
    sqlite3_commit_hook(f->store->db, NULL, NULL);
    assert_int_equal(mg_agent_send(f->agent, "third", count_replies, NULL, &err), MG_OK);
    assert_int_equal(replies, 1);
}

static void test_failed_memory_commit_keeps_cache_equal_to_disk(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    sqlite3_commit_hook(f->store->db, fail_commit, NULL);
    commits_to_fail = 1;
    assert_int_not_equal(mg_memory_set(f->agent, "human", "Name: Bob", &err), MG_OK);
    assert_string_not_equal(core_memory_find(&f->agent->core, "human")->value, "Name: Bob");
    commits_to_fail = 1;
    assert_int_not_equal(mg_memory_set(f->agent, "brand_new", "x", &err), MG_OK);
    assert_null(core_memory_find(&f->agent->core, "brand_new"));
    sqlite3_commit_hook(f->store->db, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_turn_commits_and_shows, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_failed_step_commit_keeps_cache_equal_to_disk,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_failed_memory_commit_keeps_cache_equal_to_disk,
                                        fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
