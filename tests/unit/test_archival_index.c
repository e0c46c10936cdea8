/*
 * test_archival_index.c - archival search through the vector index: the same
 * answers as the exact scan, persistence across reopening, and agreement
 * with the passages table after every kind of crash (memory/archival_index.c).
 *
 * The memories here are a few thousand passages of made-up words in
 * "conversations" (runs of passages minutes apart, days between runs), so
 * the graph is used (above the index's own exact threshold) and neighbours
 * matter. archival_index_set_min switches a store between the two paths;
 * archival_index_set_exact_below(-1) makes the index search its HNSW graph
 * (ef 1,024 of 3,000) rather than scan its vectors.
 */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "embed/embed.h"
#include "embed/embedder.h"
#include "embed/vec.h"
#include "index/index.h"
#include "memory/archival.h"
#include "memory/archival_index.h"
#include "memory/passages_db.h"
#include "store/store.h"
#include "util/err.h"

#define PASSAGES   3000
#define RUN        5               /* passages per conversation */
#define START_MS   1700000000000LL /* 2023-11-14 */
#define MINUTE_MS  60000LL
#define DAY_MS     86400000LL
#define EXACT_ONLY INT64_MAX

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Word w of a made-up vocabulary of 600 ("kabo", "tesuri", ...). */
static void word(int w, buf *out)
{
    static const char *const syll[] = {"ka", "bo", "te", "su", "ri", "mo", "la", "ne",
                                       "pi", "do", "ga", "fu", "zi", "ve", "ho", "ju"};
    int n = 2 + w % 3;
    for (int i = 0; i < n; i++) {
        buf_puts(out, syll[w % 16]);
        w = w / 16 + 7 * i + 3;
    }
}

/* Skewed towards common words, like prose. */
static int pick_word(void)
{
    uint32_t r = rnd() % 600;
    return (int)(r * r / 600);
}

static char *make_text(int i)
{
    buf b = BUF_INIT;
    int n = 8 + (int)(rnd() % 8);
    buf_printf(&b, "note %d:", i);
    for (int k = 0; k < n; k++) {
        buf_putc(&b, ' ');
        word(pick_word(), &b);
    }
    return buf_take(&b);
}

static int64_t passage_time(int i)
{
    return START_MS + (int64_t)(i / RUN) * DAY_MS + (int64_t)(i % RUN) * MINUTE_MS;
}

/* Inserts passages [from, to) in one transaction through archival_insert. */
static void insert_range(fixture *f, int from, int to)
{
    mg_error err = {0};
    assert_int_equal(store_begin(f->store, &err), MG_OK);
    for (int i = from; i < to; i++) {
        char *text = make_text(i);
        assert_int_equal(archival_insert(f->store, f->agent->id, f->agent->embedder, text, NULL,
                                         passage_time(i), NULL, &err),
                         MG_OK);
        free(text);
    }
    assert_int_equal(store_commit(f->store, &err), MG_OK);
}

static int setup_big(void **state)
{
    fixture_setup(state);
    fixture *f = *state;
    archival_index_set_exact_below(f->store, -1); /* the graph, though small */
    rng_state = 42;
    insert_range(*state, 0, PASSAGES);
    return 0;
}

static void reopen(fixture *f)
{
    mg_error err = {0};
    mg_agent_free(f->agent);
    mg_store_close(f->store);
    assert_int_equal(mg_store_open(f->home, &f->store, &err), MG_OK);
    assert_int_equal(mg_agent_open(f->store, "t", &f->agent, &err), MG_OK);
}

static archival_index_info get_info(fixture *f)
{
    mg_error err = {0};
    archival_index_info info;
    mg_index *idx;
    assert_int_equal(
        archival_index_get(f->store, f->agent->id, f->agent->embedder, &idx, &info, &err), MG_OK);
    assert_non_null(idx);
    return info;
}

static mg_index *get_index(fixture *f)
{
    mg_error err = {0};
    mg_index *idx;
    assert_int_equal(
        archival_index_get(f->store, f->agent->id, f->agent->embedder, &idx, NULL, &err), MG_OK);
    assert_non_null(idx);
    return idx;
}

static int64_t table_count(fixture *f)
{
    int64_t n;
    assert_int_equal(store_query_int(f->store, "SELECT count(*) FROM passages WHERE agent_id = ?",
                                     f->agent->id, 0, &n, NULL),
                     MG_OK);
    return n;
}

/* The index holds exactly the table's passages. */
static void assert_agrees(fixture *f)
{
    mg_index *idx = get_index(f);
    assert_int_equal(mg_index_count(idx), table_count(f));
    sqlite3_stmt *stmt;
    assert_int_equal(
        store_prepare(f->store, "SELECT id FROM passages WHERE agent_id = ?", &stmt, NULL), MG_OK);
    sqlite3_bind_int64(stmt, 1, f->agent->id);
    while (sqlite3_step(stmt) == SQLITE_ROW)
        assert_true(mg_index_contains(idx, sqlite3_column_int64(stmt, 0)));
    sqlite3_finalize(stmt);
}

static char *index_file(fixture *f, const char *suffix)
{
    char *dir = NULL;
    buf b = BUF_INIT;
    buf_printf(&b, "%s/memgpt.db.index", f->home);
    dir = buf_take(&b);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    char *found = NULL;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name), k = strlen(suffix);
        if (strncmp(de->d_name, "agent-", 6) == 0 && n > k &&
            strcmp(de->d_name + n - k, suffix) == 0) {
            buf p = BUF_INIT;
            buf_printf(&p, "%s/%s", dir, de->d_name);
            free(found);
            found = buf_take(&p);
        }
    }
    closedir(d);
    free(dir);
    return found;
}

/* The ids of a search's results, in order; returns how many. */
static int search_ids(fixture *f, const mg_search *s, archival_mode mode, int64_t *ids, int max)
{
    mg_error err = {0};
    json_t *found;
    mg_status st =
        archival_search_mode(f->store, f->agent->id, f->agent->embedder, s, mode, &found, &err);
    if (st) fail_msg("search failed: %s", err.message);
    json_t *results = json_object_get(found, "results");
    int n = 0;
    for (size_t i = 0; i < json_array_size(results) && n < max; i++) {
        json_t *r = json_array_get(results, i);
        ids[n++] = json_integer_value(json_object_get(r, "id"));
        assert_non_null(json_string_value(json_object_get(r, "text")));
        assert_non_null(json_string_value(json_object_get(r, "time")));
        assert_true(json_is_array(json_object_get(r, "tags")));
        assert_true(json_is_number(json_object_get(r, "score")));
    }
    json_decref(found);
    return n;
}

/* Three words of the vocabulary as query q; every third has a typo. */
static char *query_for(int q)
{
    rng_state = 1000 + (uint64_t)q;
    buf b = BUF_INIT;
    for (int k = 0; k < 3; k++) {
        if (k) buf_putc(&b, ' ');
        word(pick_word(), &b);
    }
    char *text = buf_take(&b);
    if (q % 3 == 0) text[1] = 'x';
    return text;
}

/* Overlap of the top 10 through the index with the exact top 10, over many
 * queries, in both the hybrid and the vector ranking. */
static void compare_paths(fixture *f, archival_mode mode, const mg_search *base, double *overlap,
                          double *first_same)
{
    int queries = 40, same_first = 0;
    double sum = 0;
    for (int q = 0; q < queries; q++) {
        char *query = query_for(q);
        mg_search s = *base;
        s.query = query;
        s.limit = 10;
        int64_t exact[10], via[10];
        archival_index_set_min(f->store, EXACT_ONLY);
        int ne = search_ids(f, &s, mode, exact, 10);
        archival_index_set_min(f->store, 0);
        int nv = search_ids(f, &s, mode, via, 10);
        int common = 0;
        for (int i = 0; i < ne; i++)
            for (int j = 0; j < nv; j++)
                common += exact[i] == via[j];
        sum += ne ? (double)common / ne : 1.0;
        same_first += (ne == 0 && nv == 0) || (ne && nv && exact[0] == via[0]);
        free(query);
    }
    *overlap = sum / queries;
    *first_same = (double)same_first / queries;
}

static void test_index_matches_exact(void **state)
{
    fixture *f = *state;
    mg_search s = {0};
    double overlap, first;
    compare_paths(f, ARCHIVAL_HYBRID, &s, &overlap, &first);
    print_message("hybrid: top-10 overlap %.3f, same first %.3f\n", overlap, first);
    assert_true(overlap >= 0.9);
    assert_true(first >= 0.9);
    compare_paths(f, ARCHIVAL_VECTOR, &s, &overlap, &first);
    print_message("vector: top-10 overlap %.3f, same first %.3f\n", overlap, first);
    assert_true(overlap >= 0.9);
    assert_true(first >= 0.9);
}

/* A time range: every result in range, the same as the exact scan; a narrow
 * range (a few passages) falls back to the exact scan. */
static void test_index_time_filter(void **state)
{
    fixture *f = *state;
    double overlap, first;
    mg_search wide = {.from_ms = passage_time(PASSAGES / 4), .to_ms = passage_time(PASSAGES)};
    compare_paths(f, ARCHIVAL_HYBRID, &wide, &overlap, &first);
    print_message("wide range: top-10 overlap %.3f, same first %.3f\n", overlap, first);
    assert_true(overlap >= 0.9);
    mg_search narrow = {.from_ms = passage_time(100), .to_ms = passage_time(110)};
    compare_paths(f, ARCHIVAL_HYBRID, &narrow, &overlap, &first);
    assert_true(overlap == 1.0);

    /* Every result lies in the range. */
    archival_index_set_min(f->store, 0);
    char *query = query_for(1);
    mg_search s = wide;
    s.query = query;
    s.limit = 50;
    int64_t ids[50];
    int n = search_ids(f, &s, ARCHIVAL_HYBRID, ids, 50);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        int64_t t;
        assert_int_equal(store_query_int(f->store, "SELECT created_at FROM passages WHERE id = ?",
                                         ids[i], 0, &t, NULL),
                         MG_OK);
        assert_true(t >= wide.from_ms && t < wide.to_ms);
    }
    free(query);
}

/* Tags filter like a time range: through the index (oversampled) when many
 * passages carry them, by the exact scan when few do; every result carries
 * every tag asked for. */
static void test_index_tag_filter(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    assert_int_equal(store_exec(f->store,
                                "UPDATE passages SET tags = CASE WHEN id % 2 = 0 THEN "
                                "'[\"even\",\"all\"]' ELSE '[\"all\"]' END",
                                &err),
                     MG_OK);
    assert_int_equal(
        store_exec(f->store, "UPDATE passages SET tags = '[\"rare\"]' WHERE id % 500 = 7", &err),
        MG_OK);
    double overlap, first;
    const char *even[] = {"even", "all"};
    mg_search half = {.tags = even, .ntags = 2};
    compare_paths(f, ARCHIVAL_HYBRID, &half, &overlap, &first);
    print_message("tag on half: top-10 overlap %.3f, same first %.3f\n", overlap, first);
    assert_true(overlap >= 0.9);
    const char *rare[] = {"rare"};
    mg_search few = {.tags = rare, .ntags = 1};
    compare_paths(f, ARCHIVAL_HYBRID, &few, &overlap, &first);
    assert_true(overlap == 1.0);

    archival_index_set_min(f->store, 0);
    const mg_search *filters[] = {&half, &few};
    for (int k = 0; k < 2; k++) {
        for (int mode = ARCHIVAL_HYBRID; mode <= ARCHIVAL_TEXT; mode++) {
            char *query = query_for(3);
            mg_search s = *filters[k];
            s.query = query;
            s.limit = 50;
            int64_t ids[50];
            int n = search_ids(f, &s, (archival_mode)mode, ids, 50);
            if (mode != ARCHIVAL_TEXT) assert_true(n > 0);
            for (int i = 0; i < n; i++) {
                int64_t ok;
                assert_int_equal(
                    store_query_int(f->store,
                                    k == 0 ? "SELECT id % 2 = 0 FROM passages WHERE id = ?"
                                           : "SELECT id % 500 = 7 FROM passages WHERE id = ?",
                                    ids[i], 0, &ok, NULL),
                    MG_OK);
                assert_true(ok);
            }
            free(query);
        }
    }
}

/* Neighbours of a strong match are found through the table, as the exact
 * scan finds them: a passage with no word of the query right after one that
 * has them all. */
static void test_index_neighbours(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    int64_t t = passage_time(PASSAGES) + DAY_MS;
    assert_int_equal(mg_archival_insert(f->agent, "What did you take away from the zorblax book?",
                                        NULL, t, &err),
                     MG_OK);
    assert_int_equal(
        mg_archival_insert(f->agent, "It taught me self-acceptance.", NULL, t + MINUTE_MS, &err),
        MG_OK);
    archival_index_set_min(f->store, 0);
    mg_search s = {.query = "zorblax book", .limit = 5};
    char *json;
    assert_int_equal(mg_archival_search(f->agent, &s, &json, &err), MG_OK);
    json_t *found = json_loads(json, 0, NULL);
    mg_free(json);
    json_t *results = json_object_get(found, "results");
    assert_true(json_array_size(results) >= 2);
    /* The reply, which shares no word with the query, ranks with its
     * question, and above it: a question asks rather than tells. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(results, 0), "text")),
                        "It taught me self-acceptance.");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_array_get(results, 1), "text")), "zorblax"));
    json_decref(found);
}

/* Reopening loads the saved file: nothing is rebuilt or re-added; inserts
 * made while it is loaded come back from its log. */
static void test_index_persists(void **state)
{
    fixture *f = *state;
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 0);
    assert_int_equal(info.added, PASSAGES);
    assert_int_equal(info.persistent, 1);
    char *path = index_file(f, ".mgx");
    assert_non_null(path);
    free(path);

    reopen(f);
    info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(info.replayed, 0);
    assert_int_equal(info.added, 0);
    assert_int_equal(info.removed, 0);
    insert_range(f, PASSAGES, PASSAGES + 7); /* reach the loaded index and its log */
    assert_int_equal(mg_index_count(get_index(f)), PASSAGES + 7);

    reopen(f);
    info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(info.replayed, 7);
    assert_int_equal(info.added, 0);
    assert_agrees(f);
}

/* Rows committed while the index was not loaded (or before a crash reached
 * the log) are added from the table at the next load. */
static void test_index_rows_not_in_index(void **state)
{
    fixture *f = *state;
    get_info(f);
    reopen(f);
    insert_range(f, PASSAGES, PASSAGES + 25); /* index not loaded: only the table */
    reopen(f);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(info.added, 25);
    assert_agrees(f);
}

/* A log cut in the middle of a record: the torn tail is dropped and the lost
 * rows come back from the table. */
static void test_index_truncated_log(void **state)
{
    fixture *f = *state;
    get_info(f);
    insert_range(f, PASSAGES, PASSAGES + 10);
    reopen(f);
    char *log = index_file(f, ".mgx.log");
    assert_non_null(log);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(truncate(log, st.st_size - 2000), 0); /* into the last 2 records */
    free(log);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_true(info.replayed < 10);
    assert_true(info.added >= 1);
    assert_int_equal(info.replayed + info.added, 10);
    assert_agrees(f);
}

/* Ids the table does not have: a rolled-back insert never reaches the index
 * (nor its log); one that reached the file anyway at the next load. */
static void test_index_ids_absent(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    mg_index *idx = get_index(f);
    assert_int_equal(store_begin(f->store, &err), MG_OK);
    assert_int_equal(archival_insert(f->store, f->agent->id, f->agent->embedder, "rolled back soon",
                                     NULL, 0, NULL, &err),
                     MG_OK);
    assert_int_equal(mg_index_count(idx), PASSAGES); /* pending until the transaction ends */
    store_rollback(f->store);
    assert_agrees(f);

    /* As if a crash had come between the log append and the rollback. */
    float v[384] = {1.0f};
    assert_int_equal(mg_index_add(get_index(f), 10 * PASSAGES, v, &err), MG_OK);
    assert_int_equal(archival_index_save_all(f->store, &err), MG_OK);
    reopen(f);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(info.removed, 1);
    assert_agrees(f);
}

/* Inserts one passage outside a transaction; returns its id. */
static int64_t insert_one(mg_store *store, mg_agent *agent, const char *text)
{
    mg_error err = {0};
    assert_int_equal(archival_insert(store, agent->id, agent->embedder, text, NULL, 0, NULL, &err),
                     MG_OK);
    return sqlite3_last_insert_rowid(store->db);
}

/* Where the index ranks passage id for the embedding of text, and its score
 * there: a passage searched by its own text is first, at ~1, unless the
 * index holds another vector under its id. */
static int rank_of(mg_index *idx, const char *text, int64_t id, float *score)
{
    mg_error err = {0};
    float *q;
    int dim, found;
    assert_int_equal(mg_embed_text("offline", text, &q, &dim, &err), MG_OK);
    int k = (int)mg_index_count(idx);
    int64_t *ids = malloc((size_t)k * sizeof *ids);
    float *sc = malloc((size_t)k * sizeof *sc);
    assert_int_equal(mg_index_search_exact(idx, q, k, ids, sc, &found, &err), MG_OK);
    int rank = -1;
    for (int i = 0; i < found && rank < 0; i++)
        if (ids[i] == id) {
            rank = i;
            *score = sc[i];
        }
    free(ids);
    free(sc);
    free(q);
    return rank;
}

static void assert_own_vector(mg_index *idx, const char *text, int64_t id)
{
    float score = 0;
    assert_int_equal(rank_of(idx, text, id, &score), 0);
    assert_true(score > 0.999f);
}

static int count_files(fixture *f)
{
    buf b = BUF_INIT;
    buf_printf(&b, "%s/memgpt.db.index", f->home);
    DIR *d = opendir(b.data);
    buf_free(&b);
    int files = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        files += de->d_name[0] != '.';
    if (d) closedir(d);
    return files;
}

static const char *const REAL = "quantum chromodynamics gluon confinement lattice";
static const char *const GONE = "zebras giraffes savanna safari lions";

/* mg_agent_prefetch opens a saved index ahead of a turn, and never builds
 * one: with no file it leaves nothing behind; with one, the index it opened
 * is the one a search then uses, even once the file is gone. */
static void test_index_prefetch(void **state)
{
    fixture *f = *state;
    reopen(f);
    mg_agent_prefetch(f->agent); /* fewer passages than the index is for */
    archival_index_set_min(f->store, 0);
    mg_agent_prefetch(f->agent); /* no file: nothing is built */
    reopen(f);                   /* an open index would be saved here */
    assert_int_equal(count_files(f), 0);

    assert_int_equal(get_info(f).from_file, 0); /* built and saved */
    reopen(f);
    archival_index_set_min(f->store, 0);
    mg_agent_prefetch(f->agent);
    char *path = index_file(f, ".mgx");
    assert_int_equal(unlink(path), 0);
    free(path);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1); /* opened by the prefetch */
    assert_int_equal(info.added, 0);
    assert_agrees(f);
}

/* Finding 1a and 4: the first search of a step (inside its transaction)
 * neither builds nor saves the index, so a rolled-back row never reaches
 * it; it is opened when the transaction ends, outside the write lock. */
static void test_index_not_built_in_tx(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    reopen(f);
    archival_index_set_min(f->store, 0);
    assert_int_equal(store_begin(f->store, &err), MG_OK);
    int64_t k = insert_one(f->store, f->agent, GONE);
    mg_index *idx;
    assert_int_equal(
        archival_index_get(f->store, f->agent->id, f->agent->embedder, &idx, NULL, &err), MG_OK);
    assert_null(idx); /* the caller scans */
    assert_int_equal(count_files(f), 0);
    mg_search s = {.query = GONE, .limit = 1};
    int64_t top;
    assert_int_equal(search_ids(f, &s, ARCHIVAL_VECTOR, &top, 1), 1);
    assert_int_equal(top, k); /* the scan sees the transaction's own row */
    store_rollback(f->store);
    assert_int_equal(count_files(f), 2); /* opened once the transaction ended */
    assert_int_equal(mg_index_count(get_index(f)), PASSAGES);
    assert_false(mg_index_contains(get_index(f), k));
    reopen(f);
    int64_t again = insert_one(f->store, f->agent, REAL); /* index not loaded */
    assert_int_equal(again, k);                           /* the row id is reused */
    reopen(f);
    assert_int_equal(get_info(f).from_file, 1);
    assert_own_vector(get_index(f), REAL, k);
    assert_agrees(f);
}

/* A step's first search in a process that has not opened the index (every
 * `memgpt send`) opens it from its file inside the step's transaction when
 * that transaction has inserted nothing, instead of scanning the table; a
 * transaction that inserted first still scans, and sees its own row. */
static void test_index_opened_in_clean_tx(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    archival_index_set_min(f->store, 0);
    get_index(f); /* the file exists */
    reopen(f);
    archival_index_set_min(f->store, 0);
    assert_int_equal(store_begin(f->store, &err), MG_OK);
    mg_index *idx;
    archival_index_info info;
    assert_int_equal(
        archival_index_get(f->store, f->agent->id, f->agent->embedder, &idx, &info, &err), MG_OK);
    assert_non_null(idx);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(mg_index_count(idx), PASSAGES);
    /* Inserted after the open: pending until the transaction ends. */
    int64_t k = insert_one(f->store, f->agent, GONE);
    assert_int_equal(
        archival_index_get(f->store, f->agent->id, f->agent->embedder, &idx, NULL, &err), MG_OK);
    assert_null(idx);
    store_rollback(f->store);
    assert_false(mg_index_contains(get_index(f), k));
    assert_agrees(f);

    reopen(f);
    archival_index_set_min(f->store, 0);
    assert_int_equal(store_begin(f->store, &err), MG_OK);
    k = insert_one(f->store, f->agent, GONE);
    assert_int_equal(
        archival_index_get(f->store, f->agent->id, f->agent->embedder, &idx, NULL, &err), MG_OK);
    assert_null(idx); /* this transaction wrote: the caller scans */
    mg_search s = {.query = GONE, .limit = 1};
    int64_t top;
    assert_int_equal(search_ids(f, &s, ARCHIVAL_VECTOR, &top, 1), 1);
    assert_int_equal(top, k);
    assert_int_equal(store_commit(f->store, &err), MG_OK);
    assert_true(mg_index_contains(get_index(f), k));
    assert_agrees(f);
}

/* Finding 1b: a process killed between an insert and its COMMIT logged
 * nothing; and a log add of a vector the table no longer has under that id
 * is refused at replay. */
static void test_index_kill_before_commit(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    get_info(f);
    reopen(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mg_store *s;
        mg_agent *a;
        if (mg_store_open(f->home, &s, NULL) || mg_agent_open(s, "t", &a, NULL)) _exit(1);
        archival_index_set_min(s, 0);
        mg_index *idx;
        if (archival_index_get(s, a->id, a->embedder, &idx, NULL, NULL) || !idx) _exit(2);
        if (store_begin(s, NULL) ||
            archival_insert(s, a->id, a->embedder, GONE, NULL, 0, NULL, NULL) != MG_OK)
            _exit(3);
        _exit(0); /* no COMMIT, no close: as kill -9 */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int64_t k = insert_one(f->store, f->agent, REAL); /* reuses the child's row id */
    reopen(f);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_own_vector(get_index(f), REAL, k);
    assert_agrees(f);

    /* A logged add whose vector the table does not have (as an older build
     * could leave): refused, and the row's own vector restored. */
    float *other;
    int dim;
    assert_int_equal(mg_embed_text("offline", GONE, &other, &dim, &err), MG_OK);
    mg_index *idx = get_index(f);
    assert_int_equal(mg_index_remove(idx, k, &err), MG_OK);
    assert_int_equal(mg_index_add(idx, k, other, &err), MG_OK);
    free(other);
    reopen(f);
    info = get_info(f);
    assert_int_equal(info.rejected, 1);
    assert_own_vector(get_index(f), REAL, k);
    assert_agrees(f);
}

/* Finding 1c: a process whose agent was deleted and re-created (same id) by
 * another one neither saves its index over the new agent's nor has it
 * loaded for it. */
static void test_index_recreated_agent(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    get_info(f);
    insert_range(f, PASSAGES, PASSAGES + 1100); /* enough unsaved changes to save at close */
    int64_t old_id = f->agent->id;

    mg_store *s2;
    mg_agent *a2;
    mg_agent_config cfg = {.context_window = 8192};
    assert_int_equal(mg_store_open(f->home, &s2, &err), MG_OK);
    assert_int_equal(mg_agent_delete(s2, "t", &err), MG_OK);
    usleep(2000); /* a later millisecond: another incarnation */
    assert_int_equal(mg_agent_create(s2, "t", &cfg, &err), MG_OK);
    assert_int_equal(mg_agent_open(s2, "t", &a2, &err), MG_OK);
    assert_int_equal(a2->id, old_id);
    archival_index_set_min(s2, 0);
    int64_t first = insert_one(s2, a2, REAL);
    for (int i = 0; i < 50; i++) {
        char *text = make_text(i);
        insert_one(s2, a2, text);
        free(text);
    }
    mg_index *idx;
    assert_int_equal(archival_index_get(s2, a2->id, a2->embedder, &idx, NULL, &err), MG_OK);
    assert_int_equal(mg_index_count(idx), 51);
    mg_agent_free(a2);
    mg_store_close(s2);

    /* The first process exits: its old agent's index must not be saved. */
    reopen(f);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(info.added + info.removed, 0);
    assert_own_vector(get_index(f), REAL, first);
    assert_agrees(f);
    assert_int_equal(count_files(f), 2); /* the old incarnation's files are gone */
}

/* Finding 2: a long-running process sees passages another one adds. */
static void test_index_sees_other_process(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    archival_index_set_min(f->store, 0);
    mg_search s = {.query = REAL, .limit = 1};
    int64_t top;
    search_ids(f, &s, ARCHIVAL_VECTOR, &top, 1); /* loads the index */
    mg_store *s2;
    mg_agent *a2;
    assert_int_equal(mg_store_open(f->home, &s2, &err), MG_OK);
    assert_int_equal(mg_agent_open(s2, "t", &a2, &err), MG_OK);
    int64_t k = insert_one(s2, a2, REAL);
    mg_agent_free(a2);
    mg_store_close(s2);
    /* Inside a transaction (an agent step) the changed table is scanned... */
    assert_int_equal(store_begin(f->store, &err), MG_OK);
    assert_int_equal(search_ids(f, &s, ARCHIVAL_VECTOR, &top, 1), 1);
    assert_int_equal(top, k);
    assert_int_equal(store_commit(f->store, &err), MG_OK);
    /* ...and the index caught up when it ended. */
    mg_index *idx = get_index(f);
    assert_true(mg_index_contains(idx, k));
    assert_int_equal(search_ids(f, &s, ARCHIVAL_VECTOR, &top, 1), 1);
    assert_int_equal(top, k);
    assert_agrees(f);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int64_t)st.st_size;
}

/* Finding 3: two processes with the index loaded append to one log without
 * overwriting each other's records, also after one of them saved. */
static void test_index_two_writers(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    get_info(f);
    mg_store *s2;
    mg_agent *a2;
    assert_int_equal(mg_store_open(f->home, &s2, &err), MG_OK);
    assert_int_equal(mg_agent_open(s2, "t", &a2, &err), MG_OK);
    archival_index_set_min(s2, 0);
    mg_index *idx2;
    assert_int_equal(archival_index_get(s2, a2->id, a2->embedder, &idx2, NULL, &err), MG_OK);
    char *log = index_file(f, ".mgx.log");
    int64_t header = file_size(log), record = 16 + 4 * 384 + 4;
    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "chat passage %d", i);
        insert_one(f->store, f->agent, text);
        snprintf(text, sizeof text, "script passage %d", i);
        insert_one(s2, a2, text);
    }
    /* Ten records: each process's own, and the other's caught up from the table. */
    assert_true(file_size(log) >= header + 10 * record);
    assert_int_equal((file_size(log) - header) % record, 0);
    assert_int_equal(mg_index_count(idx2), PASSAGES + 10);

    /* One saves; the other appends to the new log, which replays. */
    assert_int_equal(archival_index_save_all(f->store, &err), MG_OK);
    assert_int_equal(file_size(log), header);
    int64_t k = insert_one(s2, a2, REAL);
    assert_int_equal(file_size(log), header + record);
    mg_agent_free(a2);
    mg_store_close(s2);
    free(log);
    reopen(f);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 1);
    assert_int_equal(info.replayed, 1);
    assert_int_equal(info.added + info.removed + info.rejected, 0);
    assert_own_vector(get_index(f), REAL, k);
    assert_agrees(f);
}

/* Finding 5: vectors longer than the index takes are searched by a scan. */
static void test_index_dim_too_big(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    int dim = MG_INDEX_MAX_DIM + 1;
    float *v = calloc((size_t)dim, sizeof *v);
    v[0] = 1;
    sqlite3_stmt *stmt;
    assert_int_equal(store_prepare(f->store,
                                   "INSERT INTO passages(agent_id, text, created_at, embedder, "
                                   "embedding) VALUES (?, 'long vector', 1, 'ollama/big', ?)",
                                   &stmt, &err),
                     MG_OK);
    for (int i = 0; i < 3; i++) {
        sqlite3_bind_int64(stmt, 1, f->agent->id);
        sqlite3_bind_blob(stmt, 2, v, dim * 4, SQLITE_STATIC);
        assert_int_equal(store_step_done(f->store, stmt, &err), MG_OK);
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    free(v);
    archival_index_set_min(f->store, 0);
    mg_index *idx = (mg_index *)1;
    assert_int_equal(archival_index_get(f->store, f->agent->id, "ollama/big", &idx, NULL, &err),
                     MG_OK);
    assert_null(idx);
}

/* A damaged file is never trusted: rebuilt from the table. */
static void test_index_corrupt_file(void **state)
{
    fixture *f = *state;
    get_info(f);
    reopen(f);
    char *path = index_file(f, ".mgx");
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char byte;
    assert_int_equal(pread(fd, &byte, 1, 5000), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, 5000), 1);
    close(fd);
    free(path);
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 0);
    assert_int_equal(info.added, PASSAGES);
    assert_agrees(f);
    reopen(f);
    assert_int_equal(get_info(f).from_file, 1); /* the rebuild was saved */
}

/* Re-embedding replaces vectors under the same ids: the index is dropped
 * and rebuilt, and search follows the new vectors. */
static void test_index_reembed_replaces(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    get_info(f);
    /* Passage 1 gets the embedding of an unrelated text, as a new embedder would. */
    float *vec;
    int dim;
    assert_int_equal(mg_embed_text("offline", "quokka marmalade", &vec, &dim, &err), MG_OK);
    int64_t first;
    assert_int_equal(store_query_int(f->store, "SELECT min(id) FROM passages WHERE agent_id = ?",
                                     f->agent->id, 0, &first, NULL),
                     MG_OK);
    assert_int_equal(passages_db_set_embedding(f->store, first, "offline", vec, dim, &err), MG_OK);
    free(vec);
    archival_index_forget(f->store, f->agent->id);
    assert_null(index_file(f, ".mgx"));
    archival_index_info info = get_info(f);
    assert_int_equal(info.from_file, 0);
    archival_index_set_min(f->store, 0);
    mg_search s = {.query = "quokka marmalade", .limit = 1};
    int64_t id;
    assert_int_equal(search_ids(f, &s, ARCHIVAL_VECTOR, &id, 1), 1);
    assert_int_equal(id, first);
}

/* Deleting the agent deletes its index files. */
static void test_index_agent_delete(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    get_info(f);
    assert_int_equal(archival_index_save_all(f->store, &err), MG_OK);
    char *path = index_file(f, ".mgx");
    assert_non_null(path);
    mg_agent_free(f->agent);
    f->agent = NULL;
    assert_int_equal(mg_agent_delete(f->store, "t", &err), MG_OK);
    assert_int_not_equal(access(path, F_OK), 0);
    free(path);
    assert_null(index_file(f, ".mgx"));
    assert_null(index_file(f, ".log"));
    /* The fixture's teardown needs an agent. */
    mg_agent_config cfg = {.context_window = 8192};
    assert_int_equal(mg_agent_create(f->store, "t", &cfg, &err), MG_OK);
    assert_int_equal(mg_agent_open(f->store, "t", &f->agent, &err), MG_OK);
}

/* A stored embedding of another size stays a clear error. */
static void test_index_dimension_mismatch(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    sqlite3_stmt *stmt;
    assert_int_equal(store_prepare(f->store,
                                   "INSERT INTO passages(agent_id, text, created_at, embedder, "
                                   "embedding) VALUES (?, 'short vector', 1, 'offline', "
                                   "zeroblob(64))",
                                   &stmt, &err),
                     MG_OK);
    sqlite3_bind_int64(stmt, 1, f->agent->id);
    assert_int_equal(store_step_done(f->store, stmt, &err), MG_OK);
    sqlite3_finalize(stmt);
    archival_index_set_min(f->store, 0);
    json_t *found = NULL;
    mg_search s = {.query = "anything"};
    assert_int_equal(archival_search(f->store, f->agent->id, "offline", &s, &found, &err),
                     MG_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "64 bytes"));
    assert_null(found);
}

/* Embeddings stored as float32 before the one-byte format are read as they
 * are, side by side with new ones: every other row is rewritten as float32
 * holding the floats its one-byte BLOB decodes to, which must change no
 * ranking, on either path, and leave the index agreeing with the table. */
static void test_index_legacy_float32_rows(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    enum { QUERIES = 12 };
    int64_t before[2][QUERIES][10], after[2][QUERIES][10];
    int nbefore[2][QUERIES], nafter[2][QUERIES];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            sqlite3_stmt *rows, *upd;
            assert_int_equal(store_prepare(f->store,
                                           "SELECT id, embedding FROM passages WHERE agent_id = ? "
                                           "AND id % 2 = 0",
                                           &rows, &err),
                             MG_OK);
            assert_int_equal(store_prepare(f->store,
                                           "UPDATE passages SET embedding = ? WHERE id = ?", &upd,
                                           &err),
                             MG_OK);
            sqlite3_bind_int64(rows, 1, f->agent->id);
            float v[MG_EMBED_OFFLINE_DIM];
            unsigned char legacy[4 * MG_EMBED_OFFLINE_DIM];
            int rewritten = 0;
            assert_int_equal(store_begin(f->store, &err), MG_OK);
            while (sqlite3_step(rows) == SQLITE_ROW) {
                assert_int_equal(sqlite3_column_bytes(rows, 1), MG_EMBED_OFFLINE_DIM + 8);
                assert_int_equal(mg_vec_from_blob(sqlite3_column_blob(rows, 1),
                                                  sqlite3_column_bytes(rows, 1), v,
                                                  MG_EMBED_OFFLINE_DIM),
                                 1);
                float32_blob(v, MG_EMBED_OFFLINE_DIM, legacy);
                sqlite3_bind_blob(upd, 1, legacy, (int)sizeof legacy, SQLITE_STATIC);
                sqlite3_bind_int64(upd, 2, sqlite3_column_int64(rows, 0));
                assert_int_equal(store_step_done(f->store, upd, &err), MG_OK);
                rewritten++;
            }
            assert_int_equal(store_commit(f->store, &err), MG_OK);
            sqlite3_finalize(rows);
            sqlite3_finalize(upd);
            assert_true(rewritten > PASSAGES / 3);
            /* The index is rebuilt from the table, the first row now float32. */
            archival_index_forget(f->store, f->agent->id);
        }
        for (int q = 0; q < QUERIES; q++) {
            char *query = query_for(q);
            mg_search s = {.query = query, .limit = 10};
            int64_t(*ids)[QUERIES][10] = pass ? after : before;
            int(*n)[QUERIES] = pass ? nafter : nbefore;
            archival_index_set_min(f->store, EXACT_ONLY);
            n[0][q] = search_ids(f, &s, ARCHIVAL_HYBRID, ids[0][q], 10);
            archival_index_set_min(f->store, 0);
            n[1][q] = search_ids(f, &s, ARCHIVAL_HYBRID, ids[1][q], 10);
            free(query);
        }
    }
    for (int path = 0; path < 2; path++)
        for (int q = 0; q < QUERIES; q++) {
            assert_true(nbefore[path][q] > 0);
            assert_int_equal(nbefore[path][q], nafter[path][q]);
            assert_memory_equal(before[path][q], after[path][q],
                                (size_t)nbefore[path][q] * sizeof(int64_t));
        }
    assert_agrees(f);
    archival_index_check_result c;
    assert_int_equal(archival_index_check(f->store, f->agent->id, f->agent->embedder, &c, &err),
                     MG_OK);
    assert_int_equal(c.mismatched, 0);
    assert_int_equal(c.served_off, 0);
}

/* Small memories scan exactly and leave no index file. */
static void test_index_small_scans(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    assert_int_equal(mg_archival_insert(f->agent, "The dog is named Rex", NULL, 0, &err), MG_OK);
    char *json;
    mg_search s = {.query = "dog"};
    assert_int_equal(mg_archival_search(f->agent, &s, &json, &err), MG_OK);
    assert_non_null(strstr(json, "Rex"));
    mg_free(json);
    char *dir = NULL;
    buf b = BUF_INIT;
    buf_printf(&b, "%s/memgpt.db.index", f->home);
    dir = buf_take(&b);
    DIR *d = opendir(dir);
    int files = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        files += de->d_name[0] != '.';
    if (d) closedir(d);
    assert_int_equal(files, 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_matches_exact, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_time_filter, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_tag_filter, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_neighbours, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_persists, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_prefetch, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_rows_not_in_index, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_truncated_log, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_ids_absent, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_corrupt_file, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_reembed_replaces, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_agent_delete, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_dimension_mismatch, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_legacy_float32_rows, setup_big,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_small_scans, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_not_built_in_tx, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_opened_in_clean_tx, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_kill_before_commit, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_recreated_agent, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_sees_other_process, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_two_writers, setup_big, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_dim_too_big, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
