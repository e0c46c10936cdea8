/*
 * eval_locomo.c - retrieval quality of archival memory on LoCoMo.
 *
 *   eval_locomo [--modes LIST] [--no-speaker] [--by-category] [--misses] [--typos]
 *               [--min-recall10 X] [--skip-missing] [--index-min N] [--index-graph]
 *               [--distractors N [--distractor-file FILE]] [--tmp DIR] FILE...
 *
 * LoCoMo (Maharana et al., ACL 2024) is a set of long conversations between
 * two people, each with questions whose answers sit in known turns (the
 * "evidence", named by dia_id such as "D3:12"). The repository reads five of
 * them from ../shared/data/locomo-dev/ (see the README there); they are never
 * copied into the repository.
 *
 * For each conversation file the driver makes a fresh data directory with
 * one agent (offline embedder, the default) and inserts every turn as one
 * archival passage through the public API (mg_archival_insert):
 *
 *   - text: "SPEAKER: TURN TEXT", and when an image was shared, its caption
 *     appended as " [shared an image: CAPTION]". The speaker's name is part of
 *     the text because an agent storing a conversation would store who said
 *     it; --no-speaker leaves it out to show what it is worth. Nothing else
 *     is indexed: not the image-search "query" field, not the annotators'
 *     observations, summaries or events.
 *   - time: the session's date ("1:56 pm on 8 May, 2023", read as UTC).
 *   - tags: ["D3:12"], the turn's dia_id, so a result names its turn without
 *     relying on row ids.
 *
 * Then it asks every question and compares the top 10 results with the
 * evidence. Category 5 questions (adversarial: the answer is not in the
 * conversation) are left out; evidence entries must have the form D<n>:<n>
 * and name a turn of the conversation, and a question left with none is
 * left out. recall@k of one question is the fraction of its distinct
 * evidence turns among the top k results. The table gives the mean over
 * questions per conversation, over all questions ("all") and the plain mean
 * of the conversations' figures ("conv mean"); --by-category adds one row
 * per question category (by our reading of the questions: 1 multi-hop,
 * 2 temporal, 3 open-domain inference, 4 single-hop).
 *
 * Rankings (--modes, default hybrid,text,vector):
 *   hybrid  what an agent gets: mg_archival_search (public API), limit 10;
 *   text    plain BM25 alone, and
 *   vector  the embedder's cosine alone, both through the internal
 *           archival_search_mode, with the same query and limit.
 *
 * For insight: --misses prints, for each question the first mode does not
 * fully answer, the evidence it missed and its top 3; --typos asks every
 * question with a letter swap in every third long word, to see what the
 * fuzzy matching of the embedder is worth; --no-speaker (above).
 *
 * --index-min N searches through the vector index from N passages on (0:
 * always; LoCoMo's conversations, a few hundred turns each, are below the
 * default, so they are otherwise scanned exactly): it measures what the
 * index path's candidate selection costs in quality. --index-graph makes the
 * index search its HNSW graph however small it is (by default it scans its
 * vectors exactly below ARCHIVAL_INDEX_EXACT_BELOW).
 *
 * --distractors N mixes N made-up passages into each conversation's
 * memory before the questions, to see whether retrieval holds up in a large
 * store: each is "SPEAKER: " and the first half of a turn of another
 * conversation given on the command line followed by the second half of
 * another such turn (real words, real names, never this conversation's),
 * timed at one of this conversation's session dates, untagged (so never
 * evidence). With --distractor-file FILE they are the texts of FILE's JSON
 * lines instead ({"text": ...}, as bench/gen_passages.py --json writes:
 * made-up words of a Zipf vocabulary with English function words), taken
 * in order and cycled. A fixed seed makes them the same in every run. They are
 * stored in bulk (mg_archival_insert_many), which brings the vector index
 * up to date as an agent's bulk load does, and the questions then go
 * through it as in production (above ARCHIVAL_INDEX_MIN).
 *
 * --min-recall10 X makes the run fail (exit 1) when the pooled hybrid
 * recall@10 is below X: the CTest quality test uses it on one conversation,
 * so a change that makes retrieval worse fails the suite. --skip-missing
 * exits 77 (CTest's skip code) when a file does not exist, for checkouts
 * without ../shared.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "agent/agent.h"
#include "memgpt.h"
#include "memory/archival.h"
#include "memory/archival_index.h"
#include "util/buf.h"

#define TOP_K        10
#define MAX_MODES    3
#define MAX_CATEGORY 5
#define MAX_SESSIONS 256

static const char *const mode_names[] = {"hybrid", "vector", "text"};

typedef struct options {
    archival_mode modes[MAX_MODES];
    int nmodes;
    int speaker;
    int by_category;
    int misses;
    int typos;
    double min_recall10; /* < 0: no check */
    long long index_min; /* < 0: the library's default; else archival_index_set_min */
    int index_graph;     /* the index searches its HNSW graph even when small */
    int skip_missing;
    long long distractors; /* made-up passages mixed into each conversation */
    json_t *pool;          /* every file's turns: [[file index, "speaker", "text"], ...] */
    const char *distractor_file;
    json_t *file_texts; /* the texts of distractor_file */
    const char *tmp;
} options;

/* Sums of per-question recall, per mode, and the question count. */
typedef struct tally {
    double at5[MAX_MODES], at10[MAX_MODES];
    int questions;
} tally;

/* ------------------------------------------------------------------ small helpers */

/* The data directory being used, removed on any exit (see fail). */
static char active_home[4096];

static void remove_home(const char *home)
{
    const char *files[] = {"memgpt.db", "memgpt.db-wal", "memgpt.db-shm"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", home, files[i]);
        unlink(path);
    }
    rmdir(home);
}

static void fail(void)
{
    if (*active_home) remove_home(active_home);
    exit(1);
}

static void die_err(const char *what, const mg_error *err)
{
    fprintf(stderr, "eval_locomo: %s: %s\n", what, err->message);
    fail();
}

/* Is s exactly D<digits>:<digits>? */
static int valid_dia_id(const char *s)
{
    if (*s++ != 'D') return 0;
    const char *start = s;
    while (*s >= '0' && *s <= '9')
        s++;
    if (s == start || *s++ != ':') return 0;
    start = s;
    while (*s >= '0' && *s <= '9')
        s++;
    return s != start && *s == 0;
}

/* "1:56 pm on 8 May, 2023" -> epoch ms (UTC), or -1. */
static int64_t parse_session_date(const char *text)
{
    static const char *const months[] = {"january",   "february", "march",    "april",
                                         "may",       "june",     "july",     "august",
                                         "september", "october",  "november", "december"};
    int hour, minute, day, year;
    char ampm[3], month[16];
    if (sscanf(text, "%d:%d %2s on %d %15[A-Za-z], %d", &hour, &minute, ampm, &day, month, &year) !=
        6)
        return -1;
    if (hour < 1 || hour > 12 || minute < 0 || minute > 59 || day < 1 || day > 31) return -1;
    int pm = strcasecmp(ampm, "pm") == 0;
    if (!pm && strcasecmp(ampm, "am") != 0) return -1;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (strcasecmp(month, months[i]) == 0) mon = i;
    if (mon < 0) return -1;
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day;
    tm.tm_hour = hour % 12 + (pm ? 12 : 0);
    tm.tm_min = minute;
    return (int64_t)timegm(&tm) * 1000;
}

/* ------------------------------------------------------------------ loading */

/* Inserts every turn of every session as a passage. Returns the number of
 * turns; their dia_ids are added as keys of `turns`. */
/* Stores every turn; the sessions' dates go to dates[] (up to MAX_SESSIONS,
 * *ndates of them). */
static int insert_turns(mg_agent *agent, json_t *conv, const options *o, json_t *turns,
                        int64_t *dates, int *ndates)
{
    int count = 0;
    *ndates = 0;
    for (int k = 1;; k++) {
        char key[64];
        snprintf(key, sizeof key, "session_%d", k);
        json_t *session = json_object_get(conv, key);
        if (!session) {
            /* Numbering has no gaps in LoCoMo, but do not rely on it. */
            int more = 0;
            for (int j = k + 1; j < k + 10 && !more; j++) {
                snprintf(key, sizeof key, "session_%d", j);
                more = json_object_get(conv, key) != NULL;
            }
            if (!more) break;
            continue;
        }
        snprintf(key, sizeof key, "session_%d_date_time", k);
        const char *date = json_string_value(json_object_get(conv, key));
        int64_t when = date ? parse_session_date(date) : -1;
        if (when < 0) {
            fprintf(stderr, "eval_locomo: session %d has no readable date (%s)\n", k,
                    date ? date : "none");
            fail();
        }
        if (*ndates < MAX_SESSIONS) dates[(*ndates)++] = when;
        size_t i;
        json_t *turn;
        json_array_foreach(session, i, turn)
        {
            const char *speaker = json_string_value(json_object_get(turn, "speaker"));
            const char *text = json_string_value(json_object_get(turn, "text"));
            const char *dia = json_string_value(json_object_get(turn, "dia_id"));
            const char *caption = json_string_value(json_object_get(turn, "blip_caption"));
            if (!text || !dia) continue;
            size_t cap = strlen(text) + (speaker ? strlen(speaker) : 0) +
                         (caption ? strlen(caption) : 0) + 64;
            char *passage = malloc(cap);
            int n = 0;
            if (o->speaker && speaker) n = snprintf(passage, cap, "%s: ", speaker);
            n += snprintf(passage + n, cap - (size_t)n, "%s", text);
            if (caption) snprintf(passage + n, cap - (size_t)n, " [shared an image: %s]", caption);
            json_t *tags = json_pack("[s]", dia);
            char *tags_json = json_dumps(tags, JSON_COMPACT);
            mg_error err = {0};
            if (mg_archival_insert(agent, passage, tags_json, when, &err))
                die_err("inserting a turn", &err);
            json_object_set_new(turns, dia, json_string(passage));
            free(tags_json);
            json_decref(tags);
            free(passage);
            count++;
        }
    }
    return count;
}

/* Every turn of every file, for --distractors: [file, speaker, text]. */
static json_t *turn_pool(char **files, int nfiles)
{
    json_t *pool = json_array();
    for (int f = 0; f < nfiles; f++) {
        json_t *root = json_load_file(files[f], 0, NULL);
        const char *key;
        json_t *session;
        json_object_foreach(root, key, session)
        {
            if (!json_is_array(session)) continue;
            size_t i;
            json_t *turn;
            json_array_foreach(session, i, turn)
            {
                const char *speaker = json_string_value(json_object_get(turn, "speaker"));
                const char *text = json_string_value(json_object_get(turn, "text"));
                if (speaker && text && strchr(text, ' '))
                    json_array_append_new(pool, json_pack("[iss]", f, speaker, text));
            }
        }
        json_decref(root);
    }
    return pool;
}

/* The "text" of each JSON line of path. */
static json_t *file_texts(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "eval_locomo: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    json_t *texts = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *obj = json_loads(line, 0, NULL);
        const char *text = json_string_value(json_object_get(obj, "text"));
        if (text) json_array_append_new(texts, json_string(text));
        json_decref(obj);
    }
    free(line);
    fclose(f);
    if (!json_array_size(texts)) {
        fprintf(stderr, "eval_locomo: %s holds no {\"text\": ...} lines\n", path);
        exit(1);
    }
    return texts;
}

/* The byte where the second half of text's words starts. */
static size_t half_at(const char *text)
{
    size_t n = strlen(text), at = n / 2;
    while (at < n && text[at] != ' ')
        at++;
    return at;
}

/* Stores o->distractors made-up passages (see the top) in the agent of file
 * number `file`, timed at the sessions' dates `dates`. */
static void insert_distractors(mg_agent *agent, const options *o, int file, const int64_t *dates,
                               int ndates)
{
    size_t npool = json_array_size(o->pool);
    int64_t *others = malloc(npool * sizeof *others), nothers = 0;
    for (size_t i = 0; i < npool; i++)
        if (json_integer_value(json_array_get(json_array_get(o->pool, i), 0)) != file)
            others[nothers++] = (int64_t)i;
    if ((!nothers && !o->file_texts) || !ndates) {
        fprintf(stderr, "eval_locomo: --distractors needs other conversations' turns\n");
        fail();
    }
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)file;
    enum { BATCH = 1000 };
    char *items[BATCH];
    for (long long done = 0; done < o->distractors;) {
        int n = 0;
        for (; n < BATCH && done + n < o->distractors; n++) {
            buf text = BUF_INIT;
            if (o->file_texts) {
                size_t k = (size_t)(done + n) % json_array_size(o->file_texts);
                buf_puts(&text, json_string_value(json_array_get(o->file_texts, k)));
            } else {
                json_t *a = json_array_get(o->pool, (size_t)others[bench_rng_next(&rng) % nothers]);
                json_t *b = json_array_get(o->pool, (size_t)others[bench_rng_next(&rng) % nothers]);
                const char *ta = json_string_value(json_array_get(a, 2));
                const char *tb = json_string_value(json_array_get(b, 2));
                buf_printf(&text, "%s: %.*s%s", json_string_value(json_array_get(a, 1)),
                           (int)half_at(ta), ta, tb + half_at(tb));
            }
            int64_t when = dates[bench_rng_next(&rng) % (uint64_t)ndates];
            json_t *obj =
                json_pack("{s:s, s:I}", "text", buf_str(&text), "time", (json_int_t)(when / 1000));
            items[n] = json_dumps(obj, JSON_COMPACT);
            json_decref(obj);
            buf_free(&text);
        }
        mg_error err = {0};
        if (mg_archival_insert_many(agent, (const char *const *)items, n, 1, NULL, NULL, &err))
            die_err("inserting distractors", &err);
        for (int i = 0; i < n; i++)
            free(items[i]);
        done += n;
    }
    free(others);
}

/* ------------------------------------------------------------------ asking */

/* The dia_ids of the top results (at most TOP_K; caller frees each). */
static int search(mg_agent *agent, const char *question, archival_mode mode, char **ids)
{
    mg_search s = {.query = question, .limit = TOP_K};
    mg_error err = {0};
    json_t *found = NULL;
    if (mode == ARCHIVAL_HYBRID) {
        char *text;
        if (mg_archival_search(agent, &s, &text, &err)) die_err("searching", &err);
        found = json_loads(text, 0, NULL);
        mg_free(text);
    } else if (archival_search_mode(agent->store, agent->id, agent->embedder, &s, mode, &found,
                                    &err)) {
        die_err("searching", &err);
    }
    json_t *results = json_object_get(found, "results"), *r;
    size_t i;
    int n = 0;
    json_array_foreach(results, i, r)
    {
        const char *dia = json_string_value(json_array_get(json_object_get(r, "tags"), 0));
        if (dia && n < TOP_K) ids[n++] = strdup(dia);
    }
    json_decref(found);
    return n;
}

/* Fraction of the evidence among the first k ids. */
static double recall_at(json_t *evidence, char **ids, int n, int k)
{
    size_t i;
    json_t *e;
    int hit = 0;
    json_array_foreach(evidence, i, e)
    {
        for (int j = 0; j < n && j < k; j++)
            if (strcmp(ids[j], json_string_value(e)) == 0) {
                hit++;
                break;
            }
    }
    return (double)hit / (double)json_array_size(evidence);
}

/* The question's usable evidence: distinct D<n>:<n> entries naming a turn. */
static json_t *clean_evidence(json_t *qa, json_t *turns)
{
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(qa, "evidence"), i, e)
    {
        const char *id = json_string_value(e);
        if (!id || !valid_dia_id(id) || !json_object_get(turns, id)) continue;
        int dup = 0;
        for (size_t j = 0; j < json_array_size(out); j++)
            dup |= strcmp(json_string_value(json_array_get(out, j)), id) == 0;
        if (!dup) json_array_append_new(out, json_string(id));
    }
    return out;
}

/* For --misses: the question, the evidence not found and the top 3. */
static void print_miss(json_t *qa, json_t *evidence, json_t *turns, char **ids, int n)
{
    printf("\nQ[%d] %s\n", (int)json_integer_value(json_object_get(qa, "category")),
           json_string_value(json_object_get(qa, "question")));
    size_t i;
    json_t *e;
    json_array_foreach(evidence, i, e)
    {
        const char *id = json_string_value(e);
        int found = 0;
        for (int j = 0; j < n; j++)
            found |= strcmp(ids[j], id) == 0;
        if (!found)
            printf("   missed %-7s %.160s\n", id, json_string_value(json_object_get(turns, id)));
    }
    for (int j = 0; j < n && j < 3; j++)
        printf("   top    %-7s %.160s\n", ids[j],
               json_string_value(json_object_get(turns, ids[j])));
}

/* For --typos: a copy of the question in which every third word of five or
 * more letters (counting from the first) has two inner letters swapped, as a
 * hurried typist would: "favorite" -> "favroite". Deterministic, so runs
 * compare. Caller frees. */
static char *add_typos(const char *q)
{
    char *t = strdup(q);
    size_t i = 0;
    int long_words = 0;
    while (t[i]) {
        size_t start = i;
        while ((t[i] | 32) >= 'a' && (t[i] | 32) <= 'z')
            i++;
        size_t n = i - start;
        if (n >= 5 && long_words++ % 3 == 0) {
            size_t k = start + n / 2;
            char c = t[k];
            t[k] = t[k - 1];
            t[k - 1] = c;
        }
        if (t[i] && i == start) i++;
    }
    return t;
}

static void ask_all(mg_agent *agent, json_t *conv, json_t *turns, const options *o, tally *t,
                    tally *by_cat)
{
    json_t *qa;
    size_t i;
    json_array_foreach(json_object_get(conv, "qa"), i, qa)
    {
        json_int_t cat = json_integer_value(json_object_get(qa, "category"));
        const char *question = json_string_value(json_object_get(qa, "question"));
        if (cat == 5 || !question) continue;
        char *asked = o->typos ? add_typos(question) : strdup(question);
        json_t *evidence = clean_evidence(qa, turns);
        if (json_array_size(evidence) > 0) {
            tally *c = cat >= 1 && cat <= MAX_CATEGORY ? &by_cat[cat - 1] : NULL;
            for (int m = 0; m < o->nmodes; m++) {
                char *ids[TOP_K];
                int n = search(agent, asked, o->modes[m], ids);
                double r5 = recall_at(evidence, ids, n, 5), r10 = recall_at(evidence, ids, n, 10);
                t->at5[m] += r5;
                t->at10[m] += r10;
                if (c) c->at5[m] += r5, c->at10[m] += r10;
                if (o->misses && m == 0 && r10 < 1) print_miss(qa, evidence, turns, ids, n);
                for (int j = 0; j < n; j++)
                    free(ids[j]);
            }
            t->questions++;
            if (c) c->questions++;
        }
        json_decref(evidence);
        free(asked);
    }
}

/* ------------------------------------------------------------------ one file */

static void print_row(const char *name, const tally *t, const options *o, const char *extra)
{
    printf("%-12s %5d", name, t->questions);
    for (int m = 0; m < o->nmodes; m++) {
        double q = t->questions ? t->questions : 1;
        printf("   %6.3f %6.3f", t->at5[m] / q, t->at10[m] / q);
    }
    printf("%s\n", extra ? extra : "");
}

/* Evaluates one conversation file: adds its sums to `all`, its means (as
 * one "question") to `conv_mean`, and per category to `by_cat`. */
static void eval_file(const char *path, int file, const options *o, tally *all, tally *conv_mean,
                      tally *by_cat)
{
    json_error_t jerr;
    json_t *conv = json_load_file(path, 0, &jerr);
    if (!conv) {
        fprintf(stderr, "eval_locomo: %s: %s\n", path, jerr.text);
        exit(1);
    }
    char *home = active_home;
    snprintf(home, sizeof active_home, "%s/eval-locomo.XXXXXX", o->tmp);
    if (!mkdtemp(home)) {
        fprintf(stderr, "eval_locomo: mkdtemp %s: %s\n", home, strerror(errno));
        *home = 0;
        exit(1);
    }
    mg_store *store;
    mg_agent *agent;
    mg_error err = {0};
    mg_agent_config config = {.reflect_every = -1}; /* offline embedder: the default */
    if (mg_store_open(home, &store, &err)) die_err("opening the store", &err);
    if (o->index_min >= 0) archival_index_set_min(store, o->index_min);
    if (o->index_graph) archival_index_set_exact_below(store, -1);
    if (mg_agent_create(store, "conv", &config, &err)) die_err("creating the agent", &err);
    if (mg_agent_open(store, "conv", &agent, &err)) die_err("opening the agent", &err);

    double t0 = bench_now();
    json_t *turns = json_object();
    int64_t dates[MAX_SESSIONS];
    int ndates;
    int nturns = insert_turns(agent, conv, o, turns, dates, &ndates);
    if (o->distractors > 0) insert_distractors(agent, o, file, dates, ndates);
    double t1 = bench_now();
    tally t = {0};
    ask_all(agent, conv, turns, o, &t, by_cat);
    double t2 = bench_now();

    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[64], extra[160];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
    snprintf(extra, sizeof extra, "   (%d turns + %lld distractors, insert %.2f s, search %.2f s)",
             nturns, o->distractors, t1 - t0, t2 - t1);
    print_row(name, &t, o, extra);
    fflush(stdout);

    for (int m = 0; m < o->nmodes && t.questions; m++) {
        all->at5[m] += t.at5[m];
        all->at10[m] += t.at10[m];
        conv_mean->at5[m] += t.at5[m] / t.questions;
        conv_mean->at10[m] += t.at10[m] / t.questions;
    }
    all->questions += t.questions;
    conv_mean->questions += t.questions > 0;
    json_decref(turns);
    json_decref(conv);
    mg_agent_free(agent);
    mg_store_close(store);
    remove_home(home);
    *home = 0;
}

/* ------------------------------------------------------------------ main */

static int parse_modes(const char *list, options *o)
{
    o->nmodes = 0;
    char *copy = strdup(list), *save = NULL;
    for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < MAX_MODES; i++)
            if (strcmp(m, mode_names[i]) == 0) found = i;
        if (found < 0 || o->nmodes == MAX_MODES) {
            free(copy);
            return -1;
        }
        o->modes[o->nmodes++] = (archival_mode)found;
    }
    free(copy);
    return o->nmodes ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: eval_locomo [--modes hybrid,text,vector] [--no-speaker] "
                    "[--by-category] [--misses] [--typos] [--min-recall10 X] [--skip-missing] "
                    "[--index-min N] [--index-graph] [--distractors N] [--distractor-file F] "
                    "[--tmp DIR] FILE...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options o = {.speaker = 1, .min_recall10 = -1, .index_min = -1};
    const char *tmp = getenv("TMPDIR");
    o.tmp = tmp && *tmp ? tmp : "/tmp";
    parse_modes("hybrid,text,vector", &o);
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--modes") == 0 && i + 1 < argc) {
            if (parse_modes(argv[++i], &o)) usage();
        } else if (strcmp(a, "--no-speaker") == 0) {
            o.speaker = 0;
        } else if (strcmp(a, "--typos") == 0) {
            o.typos = 1;
        } else if (strcmp(a, "--misses") == 0) {
            o.misses = 1;
        } else if (strcmp(a, "--by-category") == 0) {
            o.by_category = 1;
        } else if (strcmp(a, "--min-recall10") == 0 && i + 1 < argc) {
            o.min_recall10 = atof(argv[++i]);
        } else if (strcmp(a, "--index-min") == 0 && i + 1 < argc) {
            o.index_min = atoll(argv[++i]);
        } else if (strcmp(a, "--index-graph") == 0) {
            o.index_graph = 1;
        } else if (strcmp(a, "--skip-missing") == 0) {
            o.skip_missing = 1;
        } else if (strcmp(a, "--distractors") == 0 && i + 1 < argc) {
            o.distractors = atoll(argv[++i]);
        } else if (strcmp(a, "--distractor-file") == 0 && i + 1 < argc) {
            o.distractor_file = argv[++i];
        } else if (strcmp(a, "--tmp") == 0 && i + 1 < argc) {
            o.tmp = argv[++i];
        } else {
            usage();
        }
    }
    if (i == argc) usage();
    for (int f = i; f < argc; f++) {
        if (access(argv[f], R_OK) != 0) {
            fprintf(stderr, "eval_locomo: cannot read %s: %s\n", argv[f], strerror(errno));
            return o.skip_missing ? 77 : 1;
        }
    }

    printf("%-12s %5s", "conversation", "qs");
    for (int m = 0; m < o.nmodes; m++)
        printf("   %6s %6s", "R@5", "R@10");
    printf("\n%-12s %5s", "", "");
    for (int m = 0; m < o.nmodes; m++)
        printf("   %-13s", mode_names[o.modes[m]]);
    printf("\n");

    tally all = {0}, conv_mean = {0}, by_cat[MAX_CATEGORY] = {0};
    if (o.distractors > 0 && o.distractor_file) o.file_texts = file_texts(o.distractor_file);
    if (o.distractors > 0) o.pool = turn_pool(argv + i, argc - i);
    for (int f = i; f < argc; f++)
        eval_file(argv[f], f - i, &o, &all, &conv_mean, by_cat);
    json_decref(o.pool);
    json_decref(o.file_texts);
    if (argc - i > 1) {
        print_row("all", &all, &o, "   (mean over all questions)");
        print_row("conv mean", &conv_mean, &o, "   (mean of the conversations' figures)");
    }
    if (o.by_category) {
        for (int c = 0; c < MAX_CATEGORY; c++) {
            if (!by_cat[c].questions) continue;
            char name[32];
            snprintf(name, sizeof name, "category %d", c + 1);
            print_row(name, &by_cat[c], &o, NULL);
        }
    }

    if (o.min_recall10 >= 0) {
        int m = -1;
        for (int j = 0; j < o.nmodes; j++)
            if (o.modes[j] == ARCHIVAL_HYBRID) m = j;
        double got = m >= 0 && all.questions ? all.at10[m] / all.questions : 0;
        if (m < 0 || got < o.min_recall10) {
            fprintf(stderr, "eval_locomo: hybrid recall@10 %.3f is below the bound %.3f\n", got,
                    o.min_recall10);
            return 1;
        }
        printf("hybrid recall@10 %.3f >= bound %.3f\n", got, o.min_recall10);
    }
    return 0;
}
