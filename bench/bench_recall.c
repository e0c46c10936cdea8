/*
 * bench_recall.c - recall memory at scale: bulk insert rate and text search
 * latency over a million messages, each against a reference in the same run.
 *
 *   bench_recall [--messages N] [--queries N] [--single N] [--reuse] [--no-reference]
 *                [--json FILE] LOCOMO_DIR WORK_DIR
 *
 * The text is the LoCoMo conversations (LOCOMO_DIR, the conv-*.json files):
 * their ~3,000 turns, repeated with variations, because a real agent's
 * history repeats a speaker's vocabulary over and over. Each generated text
 * is a random turn with about a quarter of its words replaced by words drawn
 * from the turns' own word frequencies (natural text is Zipf-distributed, so
 * the common words stay common) and now and then an invented rare word (a
 * name, a place), so the index has the long tail a real one has.
 *
 * The messages have the shape the runtime stores (agent/loop.c): a user
 * message envelope, an assistant message with an inner monologue and a
 * send_message call, and its "None" result; every 8th turn the agent first
 * searches the conversation (call, a result quoting three old turns, a
 * heartbeat), every 13th it also appends to core memory. Times spread over
 * two years, oldest first.
 *
 * 1. Insert. WORK_DIR/store gets agent "big" and N messages (default
 *    1,000,000) through recall_insert_many, 10,000 per call (one
 *    transaction each): the library's bulk path. The reference,
 *    WORK_DIR/ref.db, is a bare FTS5 table with the same two texts per
 *    message, filled by a plain prepared INSERT loop in the same batches:
 *    the floor set by FTS5 itself. The per-message path (recall_insert, one
 *    prepare per message, in one transaction) is timed on --single messages
 *    (default 100,000) in WORK_DIR/single. Generating the text is not timed.
 * 2. Search. --queries queries (default 300): half are LoCoMo's own
 *    questions (realistic: a few content words among stop words), half are
 *    1-5 words drawn from the vocabulary by frequency band (rare, middle,
 *    common). Each runs four ways: default, include_all, and both with a
 *    random 30-day date window; through recall_search with the function
 *    page size (5), i.e. the count and the page, as conversation_search
 *    does. The reference runs the same MATCH expression on the bare table:
 *    SELECT rowid ... ORDER BY rank LIMIT 5, no count, no date filter.
 *    Every query runs once untimed first (warm cache), then once timed.
 *    p50/p95/max are reported per way and per query band, and how many
 *    searches were capped (more than RECALL_RANK_CAP matches: only the
 *    newest were ranked). --no-reference skips the reference searches.
 *
 * WORK_DIR must not exist (it is created). With --reuse, WORK_DIR is one an
 * earlier run kept: step 1 is skipped and only the searches run (for
 * working on the search). See bench/README.md.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_util.h"
#include "agent/agent.h"
#include "memgpt.h"
#include "memory/fts_rank.h"
#include "memory/recall.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define BATCH 10000
#define PAGE  5

/* CPU time of this thread: the machine is shared, and the wall time of a
 * millisecond query includes waiting for a CPU. */
static double cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_recall: %s: %s\n", what, why ? why : "failed");
    exit(1);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static int rng_below(int n)
{
    return (int)(bench_rng_next(&rng_state) % (uint64_t)n);
}

/* ------------------------------------------------------------ the corpus */

typedef struct word {
    char *text;
    int count;
} word;

static char **turns;
static int nturns, turns_cap;
static char **questions;
static int nquestions, questions_cap;
static word *vocab;
static int nvocab, vocab_cap;
static double *vocab_cdf;

static void push_str(char ***arr, int *n, int *cap, const char *s)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *arr = realloc(*arr, (size_t)*cap * sizeof **arr);
    }
    (*arr)[(*n)++] = strdup(s);
}

static int word_cmp_text(const void *a, const void *b)
{
    return strcmp(((const word *)a)->text, ((const word *)b)->text);
}

static int word_cmp_count(const void *a, const void *b)
{
    const word *x = a, *y = b;
    return x->count != y->count ? y->count - x->count : strcmp(x->text, y->text);
}

/* Lower-case ASCII words of every turn, counted. */
static void build_vocab(void)
{
    for (int t = 0; t < nturns; t++) {
        const char *p = turns[t];
        while (*p) {
            while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                p++;
            const char *start = p;
            while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
                p++;
            if (p == start) continue;
            if (nvocab == vocab_cap) {
                vocab_cap = vocab_cap ? vocab_cap * 2 : 1024;
                vocab = realloc(vocab, (size_t)vocab_cap * sizeof *vocab);
            }
            char *w = strndup(start, (size_t)(p - start));
            for (char *c = w; *c; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
            vocab[nvocab++] = (word){w, 1};
        }
    }
    qsort(vocab, (size_t)nvocab, sizeof *vocab, word_cmp_text);
    int n = 0;
    for (int i = 0; i < nvocab; i++) {
        if (n && strcmp(vocab[n - 1].text, vocab[i].text) == 0) {
            vocab[n - 1].count++;
            free(vocab[i].text);
        } else {
            vocab[n++] = vocab[i];
        }
    }
    nvocab = n;
    qsort(vocab, (size_t)nvocab, sizeof *vocab, word_cmp_count);
    vocab_cdf = malloc((size_t)nvocab * sizeof *vocab_cdf);
    double total = 0, acc = 0;
    for (int i = 0; i < nvocab; i++)
        total += vocab[i].count;
    for (int i = 0; i < nvocab; i++)
        vocab_cdf[i] = (acc += vocab[i].count / total);
}

static const char *word_by_frequency(void)
{
    double u = bench_rng_unit(&rng_state);
    int lo = 0, hi = nvocab - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (vocab_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return vocab[lo].text;
}

static void load_locomo(const char *dir)
{
    for (int k = 0; k < 100; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/conv-%d.json", dir, k);
        json_t *conv = json_load_file(path, 0, NULL);
        if (!conv) continue;
        const char *key;
        json_t *v;
        json_object_foreach(conv, key, v)
        {
            size_t i;
            json_t *turn;
            if (strncmp(key, "session_", 8) != 0 || !json_is_array(v)) continue;
            json_array_foreach(v, i, turn)
            {
                const char *text = json_string_value(json_object_get(turn, "text"));
                if (text && *text) push_str(&turns, &nturns, &turns_cap, text);
            }
        }
        size_t i;
        json_t *qa;
        json_array_foreach(json_object_get(conv, "qa"), i, qa)
        {
            const char *q = json_string_value(json_object_get(qa, "question"));
            if (q && json_integer_value(json_object_get(qa, "category")) != 5)
                push_str(&questions, &nquestions, &questions_cap, q);
        }
        json_decref(conv);
    }
    if (nturns < 100) die(dir, "no LoCoMo conversations (conv-N.json) found there");
    build_vocab();
}

/* An invented word, Zipf-ish over ~100,000 of them: names and places. */
static void rare_word(buf *out)
{
    static const char *const syl[] = {"ka",  "lo", "mi",  "ren", "tas", "vo",  "pel", "dra",
                                      "shi", "nu", "bar", "qui", "zen", "ost", "ler", "ma"};
    int n = (int)(100000.0 * pow(bench_rng_unit(&rng_state), 2.0)); /* small indexes more often */
    buf_puts(out, syl[n % 16]);
    n /= 16;
    do {
        buf_puts(out, syl[n % 16]);
        n /= 16;
    } while (n);
}

/* A random turn, about a quarter of its words replaced. */
static char *varied_text(void)
{
    const char *t = turns[rng_below(nturns)];
    buf out = BUF_INIT;
    const char *p = t;
    while (*p) {
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        if (out.len) buf_putc(&out, ' ');
        double u = bench_rng_unit(&rng_state);
        if (u < 0.25)
            buf_puts(&out, word_by_frequency());
        else
            buf_append(&out, start, (size_t)(p - start));
        if (u > 0.98) {
            buf_putc(&out, ' ');
            rare_word(&out);
        }
        while (*p == ' ')
            p++;
    }
    return buf_take(&out);
}

/* ------------------------------------------------------- the messages */

typedef struct gen {
    mg_msg *msgs;
    int n, cap;
    int64_t time_ms, step_ms;
    int turn;
    long call_id;
} gen;

static mg_msg *gen_push(gen *g, mg_role role, const char *kind)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->msgs = realloc(g->msgs, (size_t)g->cap * sizeof *g->msgs);
    }
    mg_msg *m = &g->msgs[g->n++];
    memset(m, 0, sizeof *m);
    m->role = role;
    m->kind = strdup(kind);
    g->time_ms += g->step_ms / 2 + (int64_t)(bench_rng_unit(&rng_state) * (double)g->step_ms);
    m->time_ms = g->time_ms;
    return m;
}

static char *envelope(const char *type, const char *key, const char *text, int64_t ms)
{
    char when[64];
    mg_time_human(ms, when, sizeof when);
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", type, key, text, "time", when);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void gen_call(gen *g, const char *monologue, const char *name, json_t *args,
                     const char *result)
{
    mg_msg *a = gen_push(g, MG_ROLE_ASSISTANT, "assistant");
    a->content = monologue ? strdup(monologue) : NULL;
    a->ncalls = 1;
    a->calls = calloc(1, sizeof *a->calls);
    char id[32];
    snprintf(id, sizeof id, "call_%ld", ++g->call_id);
    a->calls[0].id = strdup(id);
    a->calls[0].name = strdup(name);
    a->calls[0].arguments = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    mg_msg *r = gen_push(g, MG_ROLE_TOOL, "tool");
    r->tool_call_id = strdup(id);
    r->tool_name = strdup(name);
    r->content = envelope("status", "message", result, r->time_ms);
    /* a function result is {"status", "message", "time"}: fix the shape */
    json_t *o = json_loads(r->content, 0, NULL);
    json_object_set_new(o, "status", json_string("OK"));
    json_object_del(o, "type");
    free(r->content);
    r->content = json_dumps(o, JSON_COMPACT);
    json_decref(o);
}

/* One user turn and what the agent does with it (3 to 9 messages). */
static void gen_turn(gen *g)
{
    g->turn++;
    char *said = varied_text();
    mg_msg *u = gen_push(g, MG_ROLE_USER, "user_message");
    u->content = envelope("user_message", "message", said, u->time_ms);
    free(said);
    if (g->turn % 8 == 0) {
        buf q = BUF_INIT, result = BUF_INIT;
        buf_printf(&q, "%s %s", word_by_frequency(), word_by_frequency());
        buf_puts(&result, "3 results in the conversation history; page 0 of 1:");
        for (int i = 0; i < 3; i++) {
            char *old = varied_text();
            buf_printf(&result, "\n[2023-05-0%dT10:00:00Z] user: %s", i + 1, old);
            free(old);
        }
        char *mono = varied_text();
        gen_call(g, mono, "conversation_search",
                 json_pack("{s:s, s:b}", "query", buf_str(&q), "request_heartbeat", 1),
                 buf_str(&result));
        free(mono);
        buf_free(&q);
        buf_free(&result);
        mg_msg *h = gen_push(g, MG_ROLE_USER, "heartbeat");
        h->content = envelope("heartbeat", "reason",
                              "Function call returned; continue or reply to the user.", h->time_ms);
    }
    if (g->turn % 13 == 0) {
        char *fact = varied_text(), *mono = varied_text();
        gen_call(
            g, mono, "core_memory_append",
            json_pack("{s:s, s:s, s:b}", "label", "human", "content", fact, "request_heartbeat", 1),
            "None");
        free(fact);
        free(mono);
    }
    char *mono = varied_text(), *reply = varied_text();
    gen_call(g, mono, "send_message", json_pack("{s:s}", "message", reply), "None");
    free(mono);
    free(reply);
}

static void gen_clear(gen *g)
{
    for (int i = 0; i < g->n; i++)
        mg_msg_clear(&g->msgs[i]);
    g->n = 0;
}

/* ------------------------------------------------------------ insert */

static sqlite3 *open_ref(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) die(path, sqlite3_errmsg(db));
    /* Same journal as the store, so the comparison is about the work. */
    const char *sql = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                      "CREATE VIRTUAL TABLE IF NOT EXISTS ref USING fts5(said, inner,"
                      "  tokenize='porter unicode61 remove_diacritics 2');";
    char *msg = NULL;
    if (sqlite3_exec(db, sql, 0, 0, &msg) != SQLITE_OK) die("reference table", msg);
    return db;
}

typedef struct insert_result {
    long messages;
    double lib_sec, ref_sec, single_sec;
    long single;
} insert_result;

static void run_inserts(mg_store *store, int64_t agent_id, sqlite3 *ref, long total,
                        insert_result *res)
{
    gen g = {.time_ms = 1672531200000LL, .step_ms = 2LL * 365 * 86400000 / total};
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(ref, "INSERT INTO ref(said, inner) VALUES (?, ?)", -1, &ins, NULL))
        die("reference insert", sqlite3_errmsg(ref));
    long done = 0;
    double next_report = bench_now() + 10;
    while (done < total) {
        while (g.n < BATCH && done + g.n < total)
            gen_turn(&g);
        int n = g.n;
        if (done + n > total) n = (int)(total - done);
        /* The reference gets the same two texts (split untimed: it is the
         * library's own work, timed on the library's side). */
        char **said = malloc((size_t)n * sizeof *said), **inner = malloc((size_t)n * sizeof *inner);
        for (int i = 0; i < n; i++)
            recall_index_text(&g.msgs[i], &said[i], &inner[i]);

        mg_error err = {0};
        double t0 = bench_now();
        if (recall_insert_many(store, agent_id, g.msgs, n, &err))
            die("recall_insert_many", err.message);
        double t1 = bench_now();
        sqlite3_exec(ref, "BEGIN", 0, 0, 0);
        for (int i = 0; i < n; i++) {
            sqlite3_bind_text(ins, 1, said[i], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 2, inner[i], -1, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE) die("reference insert", sqlite3_errmsg(ref));
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(ref, "COMMIT", 0, 0, 0)) die("reference commit", sqlite3_errmsg(ref));
        double t2 = bench_now();
        res->lib_sec += t1 - t0;
        res->ref_sec += t2 - t1;
        for (int i = 0; i < n; i++) {
            free(said[i]);
            free(inner[i]);
        }
        free(said);
        free(inner);
        done += n;
        /* keep the turn's tail (if cut) for the next batch */
        for (int i = 0; i < n; i++)
            mg_msg_clear(&g.msgs[i]);
        memmove(g.msgs, g.msgs + n, (size_t)(g.n - n) * sizeof *g.msgs);
        g.n -= n;
        if (bench_now() > next_report) {
            fprintf(stderr, "  %ld messages (%.0f/s library, %.0f/s reference)\n", done,
                    done / res->lib_sec, done / res->ref_sec);
            next_report = bench_now() + 10;
        }
    }
    gen_clear(&g);
    free(g.msgs);
    sqlite3_finalize(ins);
    res->messages = done;
}

/* The per-message path: recall_insert, one prepare each, one transaction. */
static void run_single(mg_store *store, int64_t agent_id, long total, insert_result *res)
{
    gen g = {.time_ms = 1672531200000LL, .step_ms = 60000};
    mg_error err = {0};
    long done = 0;
    while (done < total) {
        while (g.n < BATCH && done + g.n < total)
            gen_turn(&g);
        int n = g.n;
        if (done + n > total) n = (int)(total - done);
        double t0 = bench_now();
        if (store_begin(store, &err)) die("begin", err.message);
        for (int i = 0; i < n; i++)
            if (recall_insert(store, agent_id, &g.msgs[i], &err)) die("recall_insert", err.message);
        if (store_commit(store, &err)) die("commit", err.message);
        res->single_sec += bench_now() - t0;
        done += n;
        gen_clear(&g);
    }
    free(g.msgs);
    res->single = done;
}

/* ------------------------------------------------------------ search */

enum { BAND_QUESTION, BAND_RARE, BAND_MIDDLE, BAND_COMMON, NBANDS };
static const char *const band_names[NBANDS] = {"LoCoMo question", "rare words", "middle words",
                                               "common words"};
enum {
    WAY_DEFAULT,
    WAY_ALL,
    WAY_DEFAULT_DATES,
    WAY_ALL_DATES,
    WAY_REF_DEFAULT,
    WAY_REF_ALL,
    NWAYS
};
static const char *const way_names[NWAYS] = {
    "recall_search default",         "recall_search include_all",
    "recall_search default + dates", "recall_search include_all + dates",
    "reference FTS5, said column",   "reference FTS5, both columns"};

typedef struct query {
    char *text;
    int band;
    int64_t from_ms, to_ms;
} query;

/* A word from a frequency band of the vocabulary, skipping stop words by
 * asking the library's own query builder whether the word survives alone
 * and with another word. */
static const char *band_word(int band)
{
    for (;;) {
        int i;
        if (band == BAND_COMMON)
            i = rng_below(nvocab < 150 ? nvocab : 150);
        else if (band == BAND_MIDDLE)
            i = 150 + rng_below(nvocab > 2000 ? 1850 : nvocab - 150);
        else
            i = nvocab > 2000 ? 2000 + rng_below(nvocab - 2000) : rng_below(nvocab);
        char *q = fts_query(vocab[i].text), *both = NULL;
        buf b = BUF_INIT;
        buf_printf(&b, "%s zzzz", vocab[i].text);
        both = fts_query(buf_str(&b));
        int stop = both && !strstr(both, " OR ");
        free(q);
        free(both);
        buf_free(&b);
        if (!stop) return vocab[i].text;
    }
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double p50, p95, max, mean;
    int n;
} stats;

static stats summarize(double *v, int n)
{
    stats s = {0};
    if (!n) return s;
    qsort(v, (size_t)n, sizeof *v, dbl_cmp);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    s.n = n;
    s.mean = sum / n;
    s.p50 = v[(n - 1) / 2];
    s.p95 = v[(int)ceil(0.95 * n) - 1];
    s.max = v[n - 1];
    return s;
}

static double time_recall(mg_store *store, int64_t agent_id, const query *q, int way, int64_t *hits,
                          int *capped, double *cpu)
{
    mg_search s = {.query = q->text, .limit = PAGE};
    s.include_all = way == WAY_ALL || way == WAY_ALL_DATES;
    if (way == WAY_DEFAULT_DATES || way == WAY_ALL_DATES)
        s.from_ms = q->from_ms, s.to_ms = q->to_ms;
    json_t *found;
    mg_error err = {0};
    double t0 = bench_now(), c0 = cpu_sec();
    if (recall_search(store, agent_id, &s, &found, &err)) die("recall_search", err.message);
    double t = bench_now() - t0;
    *cpu = cpu_sec() - c0;
    *hits = json_integer_value(json_object_get(found, "total"));
    *capped = json_is_true(json_object_get(found, "older_matches"));
    json_decref(found);
    return t;
}

static double time_ref(sqlite3 *ref, const query *q, int way, double *cpu)
{
    char *words = fts_query(q->text);
    buf match = BUF_INIT;
    if (way == WAY_REF_DEFAULT)
        buf_printf(&match, "{said} : (%s)", words);
    else
        buf_puts(&match, words);
    free(words);
    sqlite3_stmt *st;
    double t0 = bench_now(), c0 = cpu_sec();
    if (sqlite3_prepare_v2(ref,
                           "SELECT rowid, said, inner FROM ref WHERE ref MATCH ? ORDER BY rank "
                           "LIMIT 5",
                           -1, &st, NULL))
        die("reference search", sqlite3_errmsg(ref));
    sqlite3_bind_text(st, 1, buf_str(&match), -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW)
        ;
    sqlite3_finalize(st);
    double t = bench_now() - t0;
    *cpu = cpu_sec() - c0;
    buf_free(&match);
    return t;
}

/* ------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: bench_recall [--messages N] [--queries N] [--single N] [--reuse] "
                    "[--no-reference] [--json FILE] LOCOMO_DIR WORK_DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long nmessages = 1000000, nsingle = 100000;
    int nqueries = 300, reuse = 0, no_ref = 0;
    const char *json_path = NULL, *locomo = NULL, *work = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--messages") && i + 1 < argc)
            nmessages = atol(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            nqueries = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--single") && i + 1 < argc)
            nsingle = atol(argv[++i]);
        else if (!strcmp(argv[i], "--reuse"))
            reuse = 1;
        else if (!strcmp(argv[i], "--no-reference"))
            no_ref = 1;
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else if (argv[i][0] == '-')
            usage();
        else if (!locomo)
            locomo = argv[i];
        else if (!work)
            work = argv[i];
        else
            usage();
    }
    if (!locomo || !work || nmessages < 1000 || nqueries < 4 || nsingle < 0) usage();
    if (!reuse && mkdir(work, 0755) != 0) die(work, strerror(errno));
    load_locomo(locomo);
    fprintf(stderr, "corpus: %d LoCoMo turns, %d questions, %d distinct words\n", nturns,
            nquestions, nvocab);

    char path[4096];
    mg_store *store;
    mg_agent *agent;
    mg_error err = {0};
    snprintf(path, sizeof path, "%s/store", work);
    if (mg_store_open(path, &store, &err)) die("mg_store_open", err.message);
    if ((!reuse && mg_agent_create(store, "big", NULL, &err)) ||
        mg_agent_open(store, "big", &agent, &err))
        die("agent", err.message);
    snprintf(path, sizeof path, "%s/ref.db", work);
    sqlite3 *ref = open_ref(path);

    insert_result ins = {0};
    if (reuse) {
        int64_t count = 0;
        recall_count(agent->store, agent->id, &count, &err);
        ins.messages = (long)count;
        nsingle = 0;
    } else {
        fprintf(stderr, "inserting %ld messages\n", nmessages);
        run_inserts(agent->store, agent->id, ref, nmessages, &ins);
    }
    if (nsingle > 0) {
        mg_store *single;
        mg_agent *sa;
        snprintf(path, sizeof path, "%s/single", work);
        if (mg_store_open(path, &single, &err) || mg_agent_create(single, "s", NULL, &err) ||
            mg_agent_open(single, "s", &sa, &err))
            die("single store", err.message);
        run_single(sa->store, sa->id, nsingle, &ins);
        mg_agent_free(sa);
        mg_store_close(single);
    }
    if (!reuse) printf("insert: %ld messages\n", ins.messages);
    if (!reuse) {
        printf("  recall_insert_many (library bulk path)   %9.0f messages/s\n",
               ins.messages / ins.lib_sec);
        printf("  reference: bare FTS5 INSERT loop          %9.0f messages/s\n",
               ins.messages / ins.ref_sec);
    }
    if (ins.single)
        printf("  recall_insert per message (%ld)      %9.0f messages/s\n", ins.single,
               ins.single / ins.single_sec);

    /* Queries, from their own seed: the same set with or without --reuse. */
    rng_state = 0x9E3779B97F4A7C15ull;
    query *qs = calloc((size_t)nqueries, sizeof *qs);
    int64_t first = 1672531200000LL, span = 2LL * 365 * 86400000;
    for (int i = 0; i < nqueries; i++) {
        if (i % 2 == 0 && nquestions) {
            qs[i].text = strdup(questions[rng_below(nquestions)]);
            qs[i].band = BAND_QUESTION;
        } else {
            int band = i % 10 == 1 || i % 10 == 3   ? BAND_RARE
                       : i % 10 == 5 || i % 10 == 7 ? BAND_MIDDLE
                                                    : BAND_COMMON;
            int words = 1 + rng_below(5);
            buf b = BUF_INIT;
            for (int w = 0; w < words; w++) {
                /* mostly the band's words, with the odd word from elsewhere */
                int wb = rng_below(4) == 0 ? BAND_RARE + rng_below(3) : band;
                buf_printf(&b, "%s%s", w ? " " : "", band_word(wb));
            }
            qs[i].text = buf_take(&b);
            qs[i].band = band;
        }
        qs[i].from_ms =
            first + (int64_t)(bench_rng_unit(&rng_state) * (double)(span - 30LL * 86400000));
        qs[i].to_ms = qs[i].from_ms + 30LL * 86400000;
    }
    double *times[NWAYS], *cpu_times[NWAYS], *band_times[NWAYS][NBANDS];
    int band_n[NWAYS][NBANDS] = {{0}};
    int64_t hits_sum[NWAYS] = {0};
    int capped_sum[NWAYS] = {0};
    for (int w = 0; w < NWAYS; w++) {
        times[w] = calloc((size_t)nqueries, sizeof(double));
        cpu_times[w] = calloc((size_t)nqueries, sizeof(double));
        for (int b = 0; b < NBANDS; b++)
            band_times[w][b] = calloc((size_t)nqueries, sizeof(double));
    }
    fprintf(stderr, "searching: %d queries, %d ways\n", nqueries, NWAYS);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nqueries; i++) {
            for (int w = 0; w < NWAYS; w++) {
                int64_t hits = 0;
                int capped = 0;
                double cpu = 0;
                if (no_ref && w >= WAY_REF_DEFAULT) continue;
                double t = w >= WAY_REF_DEFAULT ? time_ref(ref, &qs[i], w, &cpu)
                                                : time_recall(agent->store, agent->id, &qs[i], w,
                                                              &hits, &capped, &cpu);
                if (!pass) continue;
                cpu_times[w][i] = cpu * 1000;
                capped_sum[w] += capped;
                times[w][i] = t * 1000;
                band_times[w][qs[i].band][band_n[w][qs[i].band]++] = t * 1000;
                hits_sum[w] += hits;
            }
        }
    }

    printf("search: %d queries over %ld messages, page of %d (ms)\n", nqueries, ins.messages, PAGE);
    printf("  %-36s %8s %8s %8s %8s %10s %7s %8s %8s\n", "", "p50", "p95", "max", "mean",
           "mean hits", "capped", "cpu p50", "cpu p95");
    json_t *out =
        json_pack("{s:I, s:f, s:f, s:f}", "messages", (json_int_t)ins.messages,
                  "insert_library_per_s", ins.lib_sec > 0 ? ins.messages / ins.lib_sec : 0,
                  "insert_reference_per_s", ins.ref_sec > 0 ? ins.messages / ins.ref_sec : 0,
                  "insert_single_per_s", ins.single ? ins.single / ins.single_sec : 0);
    json_t *ways = json_object();
    for (int w = 0; w < NWAYS; w++) {
        if (no_ref && w >= WAY_REF_DEFAULT) continue;
        stats s = summarize(times[w], nqueries), c = summarize(cpu_times[w], nqueries);
        printf("  %-36s %8.2f %8.2f %8.2f %8.2f %10.0f %7d %8.2f %8.2f\n", way_names[w], s.p50,
               s.p95, s.max, s.mean, w < WAY_REF_DEFAULT ? (double)hits_sum[w] / nqueries : 0.0,
               capped_sum[w], c.p50, c.p95);
        json_t *jw = json_pack("{s:f, s:f, s:f, s:f, s:i, s:f, s:f}", "p50_ms", s.p50, "p95_ms",
                               s.p95, "max_ms", s.max, "mean_ms", s.mean, "capped", capped_sum[w],
                               "cpu_p50_ms", c.p50, "cpu_p95_ms", c.p95);
        for (int b = 0; b < NBANDS; b++) {
            stats sb = summarize(band_times[w][b], band_n[w][b]);
            printf("      %-32s %8.2f %8.2f %8.2f %8.2f   (%d)\n", band_names[b], sb.p50, sb.p95,
                   sb.max, sb.mean, sb.n);
            json_object_set_new(
                jw, band_names[b],
                json_pack("{s:f, s:f, s:i}", "p50_ms", sb.p50, "p95_ms", sb.p95, "n", sb.n));
        }
        json_object_set_new(ways, way_names[w], jw);
    }
    json_object_set_new(out, "search", ways);
    if (json_path && json_dump_file(out, json_path, JSON_INDENT(2))) die(json_path, "cannot write");
    json_decref(out);

    for (int w = 0; w < NWAYS; w++) {
        free(times[w]);
        free(cpu_times[w]);
        for (int b = 0; b < NBANDS; b++)
            free(band_times[w][b]);
    }
    for (int i = 0; i < nqueries; i++)
        free(qs[i].text);
    free(qs);
    sqlite3_close(ref);
    mg_agent_free(agent);
    mg_store_close(store);
    return 0;
}
