/* Unit tests: opening, migrating and refusing databases; agent lifecycle. */
#include "testutil.h"

#include <sqlite3.h>

#include "agent/agent.h"
#include "store/migrations.h"
#include "store/store.h"
#include "util/uuid.h"

#include <sys/wait.h>
#include <unistd.h>

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(data, 1, len, f);
    fclose(f);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(*len + 1);
    assert_int_equal(fread(data, 1, *len, f), *len);
    fclose(f);
    return data;
}

static void test_open_creates_and_reopens(void **state)
{
    char home[64];
    make_home(home, sizeof home);
    mg_store *s;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    mg_store_close(s);
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    mg_store_close(s);

    char path[128];
    snprintf(path, sizeof path, "%s/memgpt.db", home);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(stmt, 0), mg_schema_version());
    sqlite3_finalize(stmt);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    remove_home(home);
}

static void test_refuses_non_sqlite_file_untouched(void **state)
{
    char home[64], path[128];
    make_home(home, sizeof home);
    snprintf(path, sizeof path, "%s/memgpt.db", home);
    const char junk[] = "this is not a database, it is a diary. do not overwrite it.";
    write_file(path, junk, sizeof junk);
    mg_store *s;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "not a memgpt database"));
    size_t len;
    char *after = read_file(path, &len);
    assert_int_equal(len, sizeof junk);
    assert_memory_equal(after, junk, len);
    free(after);
    remove_home(home);
}

static void test_refuses_foreign_sqlite(void **state)
{
    char home[64], path[128];
    make_home(home, sizeof home);
    snprintf(path, sizeof path, "%s/memgpt.db", home);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE photos(id INTEGER); INSERT INTO photos VALUES (1);", 0, 0, 0);
    sqlite3_close(db);
    mg_store *s;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "not a memgpt one"));
    remove_home(home);
}

static void test_refuses_newer_schema(void **state)
{
    char home[64], path[128];
    make_home(home, sizeof home);
    mg_store *s;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    mg_store_close(s);
    snprintf(path, sizeof path, "%s/memgpt.db", home);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version = 999", 0, 0, 0);
    sqlite3_close(db);
    assert_int_equal(mg_store_open(home, &s, &err), MG_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "newer"));
    remove_home(home);
}

/* The agent row every migration test starts from, in the columns of
 * migration 1. */
#define OLD_AGENT_SQL                                                                              \
    "INSERT INTO agents(id, name, model, context_window, embedder, step_limit, reflect_every, "    \
    "idle_seconds, warn_fraction, flush_fraction, memory_updated_at, created_at) VALUES (1, "      \
    "'old', 'openai/gpt-4o-mini', 8192, 'offline', 10, 10, 600, 0.75, 1.0, 0, 0);"

/* Makes a new home whose database is what schema version `version` left:
 * migrations 1..version, then `rows` (SQL). Fills home and path. */
static void make_old_store(char *home, size_t home_size, char *path, size_t path_size, int version,
                           const char *rows)
{
    make_home(home, home_size);
    snprintf(path, path_size, "%s/memgpt.db", home);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (int v = 1; v <= version; v++)
        assert_int_equal(sqlite3_exec(db, mg_schema_migration(v), 0, 0, 0), SQLITE_OK);
    char pragma[96];
    snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             MG_APPLICATION_ID, version);
    assert_int_equal(sqlite3_exec(db, pragma, 0, 0, 0), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, rows, 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);
}

static void test_migrates_old_schema_with_data(void **state)
{
    char home[64], path[128];
    make_old_store(home, sizeof home, path, sizeof path, 1,
                   OLD_AGENT_SQL
                   "INSERT INTO blocks VALUES (1, 'human', 'Ana', 2000, NULL, 0, 0);"
                   "INSERT INTO messages(agent_id, role, kind, content, search_text, created_at) "
                   "VALUES (1, 'user', 'user_message', '{}', 'hello', 0), "
                   "(1, 'user', 'user_message', '{}', 'again', 0);");

    mg_store *s;
    mg_agent *a;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    assert_int_equal(mg_agent_open(s, "old", &a, &err), MG_OK);
    char *json;
    assert_int_equal(mg_agent_describe(a, &json, &err), MG_OK);
    assert_non_null(strstr(json, "\"messages\": 2"));
    mg_free(json);
    /* The counts stay current after the migration. */
    assert_int_equal(mg_archival_insert(a, "kept by a trigger", NULL, 0, &err), MG_OK);
    mg_agent_free(a);
    assert_int_equal(mg_agent_open(s, "old", &a, &err), MG_OK);
    assert_int_equal(mg_agent_describe(a, &json, &err), MG_OK);
    assert_non_null(strstr(json, "\"passages\": 1"));
    mg_free(json);
    mg_agent_free(a);
    mg_store_close(s);
    remove_home(home);
}

/* Migration 5 splits each old message's text into what was said and the
 * rest, and rebuilds the index over both. */
static void test_migration_5_splits_text(void **state)
{
    (void)state;
    char home[64], path[128];
    /* search_text as the version-4 code wrote it. */
    make_old_store(
        home, sizeof home, path, sizeof path, 4,
        OLD_AGENT_SQL
        "INSERT INTO messages(id, agent_id, role, kind, content, tool_calls, tool_name, "
        "search_text, created_at) VALUES "
        "(1, 1, 'user', 'user_message', '{\"message\":\"hello kayak\"}', NULL, NULL, "
        "'hello kayak', 0),"
        "(2, 1, 'assistant', 'assistant', 'thinking fjords', '[{\"id\":\"a\",\"name\":"
        "\"conversation_search\",\"arguments\":\"{\\\"query\\\":\\\"walrus\\\"}\"},{\"id\":"
        "\"b\",\"name\":\"send_message\",\"arguments\":\"{\\\"message\\\":\\\"nice "
        "kayak\\\"}\"}]', NULL, 'thinking fjords\nnice kayak', 1),"
        "(3, 1, 'assistant', 'assistant', 'plain reply otter', NULL, NULL, "
        "'plain reply otter', 2),"
        "(4, 1, 'tool', 'tool', '{\"status\":\"OK\",\"message\":\"No results: walrus\"}', "
        "NULL, 'conversation_search', 'No results: walrus', 3),"
        "(5, 1, 'user', 'heartbeat', '{\"reason\":\"quokka reason\"}', NULL, NULL, "
        "'quokka reason', 4),"
        "(6, 1, 'assistant', 'assistant', 'broken lemur', 'not json', NULL, 'broken lemur', 5),"
        "(7, 1, 'assistant', 'assistant', NULL, '[{\"id\":\"c\",\"name\":\"send_message\","
        "\"arguments\":\"{\\\"message\\\":\\\"just said\\\"}\"}]', NULL, 'just said', 6);"
        "UPDATE agents SET message_count = 7;");

    sqlite3 *db;
    mg_store *s;
    mg_agent *a;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    const char *expect[][2] = {{"hello kayak", ""},
                               {"nice kayak", "thinking fjords\nconversation_search({\"query\":"
                                              "\"walrus\"})"},
                               {"plain reply otter", ""},
                               {"", "conversation_search: No results: walrus"},
                               {"", "quokka reason"},
                               {"", "broken lemur"},
                               {"just said", ""}};
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT search_text, inner_text FROM messages ORDER BY id",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 0), expect[i][0]);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 1), expect[i][1]);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);

    /* The rebuilt index answers both ways. */
    assert_int_equal(mg_agent_open(s, "old", &a, &err), MG_OK);
    struct {
        const char *query;
        int all;
        const char *total;
    } cases[] = {{"kayak", 0, "\"total\": 2"},  {"fjords", 0, "\"total\": 0"},
                 {"fjords", 1, "\"total\": 1"}, {"walrus", 0, "\"total\": 0"},
                 {"walrus", 1, "\"total\": 2"}, {"quokka", 1, "\"total\": 1"},
                 {"otter", 0, "\"total\": 1"},  {"lemur", 1, "\"total\": 1"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_search q = {.query = cases[i].query, .include_all = cases[i].all};
        char *json;
        assert_int_equal(mg_recall_search(a, &q, &json, &err), MG_OK);
        if (!strstr(json, cases[i].total))
            fail_msg("%s (all=%d): %s", q.query, q.include_all, json);
        mg_free(json);
    }
    char *json;
    assert_int_equal(mg_agent_describe(a, &json, &err), MG_OK);
    assert_non_null(strstr(json, "\"messages\": 7"));
    mg_free(json);
    mg_agent_free(a);
    mg_store_close(s);
    remove_home(home);
}

/* Migration 6 drops the insert triggers of passages: an old passage stays
 * found, a new one is indexed and counted by the insert itself, a delete
 * still updates both. */
static void test_migration_6_passage_inserts(void **state)
{
    (void)state;
    char home[64], path[128];
    /* Stored the version-5 way: the triggers index and count it. */
    make_old_store(home, sizeof home, path, sizeof path, 5,
                   OLD_AGENT_SQL "INSERT INTO passages(agent_id, text, created_at, embedder, "
                                 "embedding) VALUES (1, 'the old heron', 0, 'offline', "
                                 "zeroblob(1536));");

    mg_store *s;
    mg_agent *a;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    int64_t n;
    assert_int_equal(store_query_int(s,
                                     "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name = 'passages' AND name LIKE '%insert'",
                                     0, -1, &n, &err),
                     MG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mg_agent_open(s, "old", &a, &err), MG_OK);
    assert_int_equal(mg_archival_insert(a, "the new heron", NULL, 0, &err), MG_OK);
    assert_int_equal(
        store_query_int(s, "SELECT passage_count FROM agents WHERE id = ?", 1, -1, &n, &err),
        MG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_query_int(s,
                                     "SELECT count(*) FROM passages_fts WHERE passages_fts "
                                     "MATCH 'heron'",
                                     0, -1, &n, &err),
                     MG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_exec(s, "DELETE FROM passages WHERE text = 'the old heron'", &err),
                     MG_OK);
    assert_int_equal(
        store_query_int(s, "SELECT passage_count FROM agents WHERE id = ?", 1, -1, &n, &err),
        MG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_exec(s,
                                "INSERT INTO passages_fts(passages_fts, rank) "
                                "VALUES ('integrity-check', 1)",
                                &err),
                     MG_OK);
    char *json;
    mg_search q = {.query = "heron"};
    assert_int_equal(mg_archival_search(a, &q, &json, &err), MG_OK);
    assert_non_null(strstr(json, "the new heron"));
    assert_null(strstr(json, "the old heron"));
    mg_free(json);
    mg_agent_free(a);
    mg_store_close(s);
    remove_home(home);
}

static void test_unwritable_home(void **state)
{
    mg_store *s;
    mg_error err = {0};
    /* A regular file where a directory must be created. */
    assert_int_equal(mg_store_open("/dev/null/memgpt", &s, &err), MG_ERR_IO);
    assert_non_null(strstr(err.message, "cannot create data directory"));
}

static int64_t version_of(mg_store *s)
{
    int64_t v = 0;
    mg_error err = {0};
    assert_int_equal(mg_store_version(s, &v, &err), MG_OK);
    return v;
}

/* Two connections to one new home. */
static void open_two(char *home, size_t size, mg_store **a, mg_store **b)
{
    mg_error err = {0};
    make_home(home, size);
    assert_int_equal(mg_store_open(home, a, &err), MG_OK);
    assert_int_equal(mg_store_open(home, b, &err), MG_OK);
}

/* The version moves with every commit: this connection's, another one's in
 * this process, and another process's; reads leave it alone. It is read
 * from the wal-index, with no SQLite call. */
static void test_version_follows_commits(void **state)
{
    char home[64];
    mg_store *a, *b;
    mg_error err = {0};
    open_two(home, sizeof home, &a, &b);
    assert_non_null(a->wal_index);
    int64_t direct;
    assert_int_equal(store_watch_version(a, &direct), 1);
    assert_true(direct >= 0);

    int64_t v0 = version_of(a);
    assert_true(v0 == direct);
    char *json;
    assert_int_equal(mg_agent_list(a, &json, &err), MG_OK);
    mg_free(json);
    assert_true(version_of(a) == v0);

    assert_int_equal(mg_agent_create(a, "mine", NULL, &err), MG_OK);
    int64_t v1 = version_of(a);
    assert_true(v1 != v0);
    assert_true(version_of(b) == v1); /* one database, one version */

    assert_int_equal(mg_agent_create(b, "theirs", NULL, &err), MG_OK);
    int64_t v2 = version_of(a);
    assert_true(v2 != v1);

    pid_t child = fork();
    if (child == 0) {
        mg_store *c;
        mg_error cerr = {0};
        int ok = mg_store_open(home, &c, &cerr) == MG_OK &&
                 mg_agent_create(c, "elsewhere", NULL, &cerr) == MG_OK;
        mg_store_close(c);
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(version_of(a) != v2);
    assert_true(version_of(a) == version_of(b));

    mg_store_close(b);
    mg_store_close(a);
    remove_home(home);
}

/* A read transaction is one snapshot: another connection's commit is not
 * seen until it ends. Inside a write transaction it does nothing, and it
 * leaves no transaction behind. */
static void test_read_transaction(void **state)
{
    (void)state;
    char home[64];
    mg_store *a, *b;
    mg_error err = {0};
    open_two(home, sizeof home, &a, &b);
    int64_t n;
    int own;
    assert_int_equal(store_read_begin(a, &own, &err), MG_OK);
    assert_int_equal(own, 1);
    assert_int_equal(store_query_int(a, "SELECT count(*) FROM agents", 0, -1, &n, &err), MG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mg_agent_create(b, "other", NULL, &err), MG_OK);
    assert_int_equal(store_query_int(a, "SELECT count(*) FROM agents", 0, -1, &n, &err), MG_OK);
    assert_int_equal(n, 0); /* the snapshot of the first read */
    store_read_end(a, own);
    assert_true(sqlite3_get_autocommit(a->db));
    assert_int_equal(store_query_int(a, "SELECT count(*) FROM agents", 0, -1, &n, &err), MG_OK);
    assert_int_equal(n, 1);

    assert_int_equal(store_begin(a, &err), MG_OK);
    assert_int_equal(store_read_begin(a, &own, &err), MG_OK);
    assert_int_equal(own, 0);
    store_read_end(a, own);
    assert_false(sqlite3_get_autocommit(a->db)); /* still the write transaction */
    assert_int_equal(store_commit(a, &err), MG_OK);

    /* The page cache: SQLite's default is restored by 0; nonsense refused. */
    assert_int_equal(mg_store_set_cache_size(a, 256, &err), MG_OK);
    assert_int_equal(store_query_int(a, "PRAGMA cache_size", 0, 0, &n, &err), MG_OK);
    assert_int_equal(n, -256);
    assert_int_equal(mg_store_set_cache_size(a, 0, &err), MG_OK);
    assert_int_equal(store_query_int(a, "PRAGMA cache_size", 0, 0, &n, &err), MG_OK);
    assert_int_equal(n, -2000);
    assert_int_equal(mg_store_set_cache_size(a, -1, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "page cache"));
    mg_store_close(a);
    mg_store_close(b);
    remove_home(home);
}

static void test_agent_lifecycle(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    assert_int_equal(mg_agent_create(f->store, "t", NULL, &err), MG_ERR_EXISTS);
    assert_int_equal(mg_agent_create(f->store, "bad\tname", NULL, &err), MG_ERR_USAGE);
    assert_int_equal(mg_agent_create(f->store, " padded", NULL, &err), MG_ERR_USAGE);
    assert_int_equal(mg_agent_create(f->store, "", NULL, &err), MG_ERR_USAGE);
    assert_int_equal(mg_agent_create(f->store, "bad \xff", NULL, &err), MG_ERR_USAGE);
    char longest[AGENT_NAME_MAX + 2];
    memset(longest, 'n', sizeof longest - 1);
    longest[AGENT_NAME_MAX + 1] = '\0';
    assert_int_equal(mg_agent_create(f->store, longest, NULL, &err), MG_ERR_USAGE);
    longest[AGENT_NAME_MAX] = '\0';
    assert_int_equal(mg_agent_create(f->store, longest, NULL, &err), MG_OK);
    assert_int_equal(mg_agent_create(f->store, "Ana's helper, v2 \xe2\x9c\x93", NULL, &err), MG_OK);
    mg_agent_config bad_model = {.model = "acme/thing"};
    assert_int_equal(mg_agent_create(f->store, "x", &bad_model, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "openai/MODEL"));
    mg_agent_config tiny = {.context_window = 10};
    assert_int_equal(mg_agent_create(f->store, "x", &tiny, &err), MG_ERR_USAGE);

    assert_int_equal(mg_agent_create(f->store, "second", NULL, &err), MG_OK);
    char *json;
    assert_int_equal(mg_agent_list(f->store, &json, &err), MG_OK);
    assert_non_null(strstr(json, "\"second\""));
    assert_non_null(strstr(json, "\"t\""));
    mg_free(json);
    assert_int_equal(mg_agent_delete(f->store, "second", &err), MG_OK);
    assert_int_equal(mg_agent_delete(f->store, "second", &err), MG_ERR_NOT_FOUND);
    mg_agent *a;
    assert_int_equal(mg_agent_open(f->store, "second", &a, &err), MG_ERR_NOT_FOUND);
}

static void test_delete_cascades(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    assert_int_equal(mg_archival_insert(f->agent, "a passage to forget", NULL, 0, &err), MG_OK);
    mg_agent_free(f->agent);
    f->agent = NULL;
    assert_int_equal(mg_agent_delete(f->store, "t", &err), MG_OK);
    assert_int_equal(mg_agent_create(f->store, "t", NULL, &err), MG_OK);
    assert_int_equal(mg_agent_open(f->store, "t", &f->agent, &err), MG_OK);
    mg_search s = {.query = "passage forget"};
    char *json;
    assert_int_equal(mg_archival_search(f->agent, &s, &json, &err), MG_OK);
    assert_non_null(strstr(json, "\"total\": 0"));
    mg_free(json);
}

/* Migration 7 gives every existing agent, block, message and passage a
 * distinct public id of the UUID4 form, led by its creation time, and the
 * agent is found by it. */
static void test_migration_7_public_ids(void **state)
{
    char home[64], path[128];
    make_old_store(home, sizeof home, path, sizeof path, 6,
                   OLD_AGENT_SQL
                   "INSERT INTO blocks(agent_id, label, value, char_limit, position) "
                   "VALUES (1, 'human', 'Ana', 2000, 0), (1, 'persona', 'Me', 2000, 1);"
                   "INSERT INTO messages(agent_id, role, kind, content, search_text, created_at) "
                   "VALUES (1, 'user', 'user_message', '{}', 'hello', 1700000000000), "
                   "(1, 'user', 'user_message', '{}', 'again', 1700000000001);"
                   "INSERT INTO passages(agent_id, text, created_at, embedder, embedding) "
                   "VALUES (1, 'p', 1700000000000, 'offline', x'00000000');");
    mg_store *s;
    mg_agent *a;
    mg_error err = {0};
    assert_int_equal(mg_store_open(home, &s, &err), MG_OK);
    sqlite3 *db = s->db;
    sqlite3_stmt *stmt;
    const char *sql = "SELECT uuid FROM agents UNION ALL SELECT uuid FROM blocks UNION ALL "
                      "SELECT uuid FROM messages UNION ALL SELECT uuid FROM passages";
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    char seen[6][MG_UUID_SIZE];
    int n = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *u = (const char *)sqlite3_column_text(stmt, 0);
        assert_non_null(u);
        assert_true(mg_uuid_valid(u));
        assert_int_equal(u[14], '4');
        assert_non_null(strchr("89ab", u[19]));
        for (int i = 0; i < n; i++)
            assert_string_not_equal(seen[i], u);
        assert_true(n < 6);
        snprintf(seen[n++], MG_UUID_SIZE, "%s", u);
    }
    sqlite3_finalize(stmt);
    assert_int_equal(n, 6);
    /* Messages made at 1700000000000 ms start with that time in hex. */
    assert_int_equal(strncmp(seen[3], "018bcfe5-6800", 13), 0);

    assert_int_equal(mg_agent_open(s, "old", &a, &err), MG_OK);
    char id[64];
    snprintf(id, sizeof id, "%s", mg_agent_id(a));
    assert_int_equal(strncmp(id, "agent-", 6), 0);
    assert_string_equal(id + 6, seen[0]);
    mg_agent_free(a);
    assert_int_equal(mg_agent_open_id(s, id, &a, &err), MG_OK);
    assert_string_equal(mg_agent_name(a), "old");
    mg_agent_free(a);
    id[strlen(id) - 1] = id[strlen(id) - 1] == '0' ? '1' : '0';
    assert_int_equal(mg_agent_open_id(s, id, &a, &err), MG_ERR_NOT_FOUND);
    assert_int_equal(mg_agent_open_id(s, "agent-nonsense", &a, &err), MG_ERR_NOT_FOUND);
    assert_int_equal(mg_agent_open_id(s, "old", &a, &err), MG_ERR_NOT_FOUND);
    mg_store_close(s);
    remove_home(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_and_reopens),
        cmocka_unit_test(test_refuses_non_sqlite_file_untouched),
        cmocka_unit_test(test_refuses_foreign_sqlite),
        cmocka_unit_test(test_refuses_newer_schema),
        cmocka_unit_test(test_migrates_old_schema_with_data),
        cmocka_unit_test(test_migration_5_splits_text),
        cmocka_unit_test(test_migration_6_passage_inserts),
        cmocka_unit_test(test_migration_7_public_ids),
        cmocka_unit_test(test_unwritable_home),
        cmocka_unit_test(test_version_follows_commits),
        cmocka_unit_test(test_read_transaction),
        cmocka_unit_test_setup_teardown(test_agent_lifecycle, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_delete_cascades, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
