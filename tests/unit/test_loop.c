/* Unit tests of the turn loop with an in-test provider: the step transaction
 * and the cache staying equal to disk when a commit fails; streaming previews
 * and the retry of a stream that broke off. */
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

/* ------------------------------------------------------------ streaming */

/* Arguments as a model might write them: escapes, a surrogate pair. */
static const char STREAMED_ARGS[] = "{\"request_heartbeat\": false, \"message\": "
                                    "\"h\\u00e9llo \\\"you\\\" \\ud83d\\ude00\"}";
static const char STREAMED_TEXT[] = "h\xC3\xA9llo \"you\" \xF0\x9F\x98\x80";

static int stream_interruptions; /* calls that break off before one succeeds */
static int stream_calls;
static int saw_stream_sink;

/* Reports the arguments byte by byte, then fails as interrupted or answers. */
static mg_status streaming_chat(mg_provider *p, const mg_llm_request *req, mg_llm_reply *reply,
                                mg_error *err)
{
    saw_stream_sink = req->stream != NULL;
    stream_calls++;
    for (size_t i = 0; req->stream && i < sizeof STREAMED_ARGS - 1; i++)
        req->stream->on_tool_args(req->stream->user, 0, "c1", "send_message", STREAMED_ARGS + i, 1);
    if (stream_interruptions > 0) {
        stream_interruptions--;
        reply->interrupted = 1;
        return mg_err_set(err, MG_ERR_PROVIDER, "the stream was cut off");
    }
    reply->calls = mg_xcalloc(1, sizeof *reply->calls);
    reply->ncalls = 1;
    reply->calls[0] =
        (mg_tool_call){mg_xstrdup("c1"), mg_xstrdup("send_message"), mg_xstrdup(STREAMED_ARGS)};
    return MG_OK;
}

static const mg_provider_ops streaming_ops = {
    .prefix = "test", .chat = streaming_chat, .destroy = scripted_destroy};

typedef struct seen {
    fixture *f;
    buf log;     /* one letter per event: d(elta) s(ystem) a(ssistant) ... */
    buf preview; /* delta texts since the last notice */
    char final[128];
    char final_id[16];
    int64_t stored_at_first_delta;
} seen;

static void record_event(const mg_event *ev, void *user)
{
    seen *s = user;
    static const char letters[] = {
        [MG_EVENT_REASONING] = 'r',      [MG_EVENT_TOOL_CALL] = 'c', [MG_EVENT_TOOL_RETURN] = 't',
        [MG_EVENT_ASSISTANT] = 'a',      [MG_EVENT_SYSTEM] = 's',    [MG_EVENT_USAGE] = 'u',
        [MG_EVENT_ASSISTANT_DELTA] = 'd'};
    if (ev->type == MG_EVENT_ASSISTANT_DELTA && s->preview.len == 0)
        s->stored_at_first_delta =
            disk_count(s->f, "SELECT count(*) FROM messages WHERE agent_id = ?");
    if (ev->type == MG_EVENT_ASSISTANT_DELTA) {
        assert_string_equal(ev->tool_call_id, "c1");
        buf_puts(&s->preview, ev->text);
    }
    if (ev->type == MG_EVENT_SYSTEM) buf_reset(&s->preview);
    if (ev->type == MG_EVENT_ASSISTANT) {
        snprintf(s->final, sizeof s->final, "%s", ev->text);
        snprintf(s->final_id, sizeof s->final_id, "%s", ev->tool_call_id);
    }
    /* Runs of pieces count once, so the log does not depend on their number. */
    char letter = letters[ev->type];
    if (!(letter == 'd' && s->log.len && s->log.data[s->log.len - 1] == 'd'))
        buf_putc(&s->log, letter);
}

static void use_streaming_provider(mg_agent *a, int interruptions)
{
    mg_provider *p = mg_xcalloc(1, sizeof *p);
    p->ops = &streaming_ops;
    p->model = mg_xstrdup("streaming");
    a->provider = p;
    stream_interruptions = interruptions;
    stream_calls = 0;
}

static void test_streaming_previews_come_before_the_commit(void **state)
{
    fixture *f = *state;
    use_streaming_provider(f->agent, 0);
    mg_agent_set_streaming(f->agent, 1);
    seen s = {.f = f};
    mg_error err = {0};
    assert_int_equal(mg_agent_send(f->agent, "hi", record_event, &s, &err), MG_OK);
    assert_true(saw_stream_sink);
    assert_string_equal(buf_str(&s.log), "dcatu");
    assert_string_equal(buf_str(&s.preview), STREAMED_TEXT);
    assert_string_equal(s.final, STREAMED_TEXT);
    assert_string_equal(s.final_id, "c1");
    /* The pieces came while only the user message was stored. */
    assert_int_equal(s.stored_at_first_delta, 1);
    assert_int_equal(disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ?"), 3);
    buf_free(&s.log);
    buf_free(&s.preview);

    /* Off again: no sink, no pieces. */
    mg_agent_set_streaming(f->agent, 0);
    seen quiet = {.f = f};
    assert_int_equal(mg_agent_send(f->agent, "again", record_event, &quiet, &err), MG_OK);
    assert_false(saw_stream_sink);
    assert_string_equal(buf_str(&quiet.log), "catu");
    buf_free(&quiet.log);
    buf_free(&quiet.preview);
}

static void test_broken_stream_is_asked_again_then_given_up(void **state)
{
    fixture *f = *state;
    mg_agent_set_streaming(f->agent, 1);
    mg_error err = {0};

    /* Broken once: a notice, the new pieces, one reply stored. */
    use_streaming_provider(f->agent, 1);
    seen s = {.f = f};
    assert_int_equal(mg_agent_send(f->agent, "hi", record_event, &s, &err), MG_OK);
    assert_int_equal(stream_calls, 2);
    assert_string_equal(buf_str(&s.log), "dsdcatu");
    assert_string_equal(buf_str(&s.preview), STREAMED_TEXT); /* only the second stream's */
    assert_int_equal(disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ?"), 3);
    buf_free(&s.log);
    buf_free(&s.preview);

    /* Broken three times: two retries, then the error; only the user message
     * of this turn is stored. */
    stream_interruptions = 3;
    stream_calls = 0;
    seen g = {.f = f};
    assert_int_equal(mg_agent_send(f->agent, "again", record_event, &g, &err), MG_ERR_PROVIDER);
    assert_int_equal(stream_calls, 3);
    assert_string_equal(buf_str(&g.log), "dsdsdu");
    assert_non_null(strstr(err.message, "cut off"));
    assert_int_equal(disk_count(f, "SELECT count(*) FROM messages WHERE agent_id = ?"), 4);
    buf_free(&g.log);
    buf_free(&g.preview);
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
        cmocka_unit_test_setup_teardown(test_streaming_previews_come_before_the_commit,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_broken_stream_is_asked_again_then_given_up,
                                        fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
