/*
 * archival.c - storing passages, and searching them by words, meaning and time.
 *
 * Two ways to find the candidates, one ranking:
 *
 *  - Small memories (under archival_index_min passages) are scanned exactly:
 *    every passage of the agent in the time range, in insertion order
 *    (streamed from SQLite; only an id, a time and a few scores per passage
 *    are kept), its embedding scored against the query's by dot product
 *    (embeddings are unit length, so this is cosine similarity).
 *
 *  - Large ones go through the agent's vector index (archival_index.h): the
 *    VECTOR_CANDIDATES nearest passages plus the pages asked for, and the
 *    BM25 matches, each scored with its embedding as stored in the table
 *    (not the index's copy, which only chooses candidates). Passages that are
 *    neither get no cosine at all: with the scan every passage had one, and
 *    a weak one still reached its neighbours; those few hundredths are what
 *    is given up. Neighbours are read from the table by id for the
 *    strongest candidates (see below), so the sharing sees the same chains.
 *    A time range or tags filter the index's answers, asked for
 *    RANGE_OVERSAMPLE times as many; when even that leaves too few, the
 *    filter is selective and the search scans instead (every statement
 *    applies the same scope: prepare_scoped). The index is searched on a
 *    thread of its own while this one ranks the BM25 matches and reads
 *    their rows (index_search): the index is a mapped file that nothing
 *    else touches meanwhile, and SQLite stays on the caller's thread.
 *
 * FTS5 gives the BM25 matches. A passage's own relevance is
 *
 *     1.0 * bm25 / best bm25  +  0.3 * cosine / best cosine
 *
 * (each term 0 when the passage is not a BM25 match, or its cosine is under a
 * small floor). Normalizing by the best score of the query keeps the two on
 * one scale whatever the query's length, and a query BM25 cannot match at all
 * (typos in every word, a script FTS5 does not split into words) still gets
 * the full vector ranking. BM25 weighs more because it knows how rare each
 * word is across the memory; it was measured on LoCoMo (bench/README.md):
 * there the offline embedder alone finds fewer answers than BM25 alone and
 * mostly the same ones, while a score fusion at these weights did better than
 * reciprocal rank fusion, which gave the weaker list an equal vote.
 *
 * Four refinements, all measured on the same benchmark and none knowing its
 * data:
 *
 *  - The query's rare words dominate its embedding. With the offline embedder
 *    the query (never a stored passage, so stored vectors stay valid) is
 *    embedded with each word weighted by its inverse document frequency,
 *    looked up in the FTS index (counted exactly up to IDF_COUNT_CAP
 *    matches, estimated beyond). Without it, a name that occurs in half the
 *    passages weighs as much as the one word that finds the answer.
 *
 *  - Dates in the query select by time. "What did she cook on 9 November,
 *    2022?" asks about what was stored that day, not about passages
 *    containing "November": dates (a day, or a month with its year) are
 *    taken out of the words searched, and passages stored in that period,
 *    with half a day's margin for time zones, count double.
 *
 *  - Neighbours share relevance. Passages stored one after the other, within
 *    NEIGHBOUR_GAP_MS, are usually one conversation or one document, and a
 *    passage often answers, or continues, the one before it: "What did you
 *    take away from the book?" is found by its words, "It taught me
 *    self-acceptance" only through its neighbour. So each passage also gets
 *    half of what the passage before it passes on and a quarter of what the
 *    one after passes on, halved again for the passages two away. A passage
 *    passes on its relevance times the fraction of a best match that it is
 *    (passed_on): a neighbour that shares only a common word, such as the
 *    speaker's name in every turn, passes on little, and in a large memory
 *    where such words weigh more it no longer drowns the reply to the real
 *    match (LoCoMo recall@10 0.733 -> 0.736, with 10,000 other turns mixed
 *    in 0.681 -> 0.691, with 100,000 unrelated passages 0.712 -> 0.720).
 *    A question passes more on to the passage right after it, its reply
 *    (ANSWER_SHARE). A passage's own match still ranks it first; its
 *    neighbours follow, except that a question ranks at QUESTION_FACTOR of
 *    its score (it asks, and seldom holds what is looked for), so the
 *    reply to a question can come before it.
 *    Through the index, the two passages on each side of the
 *    NEIGHBOUR_SOURCES strongest candidates are read from the table (with
 *    their cosines), and each candidate records which passage follows it,
 *    so a chain never jumps a passage that was not read.
 *
 *  - The best matches' words are searched for too (pseudo-relevance
 *    feedback, feedback.c). "What does she do with her family?" finds a
 *    turn about camping with "the kids"; "kids", frequent in the best
 *    matches and rare in the memory, then finds the turn about a day at
 *    the beach with the kids, which shares no word with the question.
 *    Those words' BM25 is a third, weaker part of a passage's own
 *    relevance (WEIGHT_FEEDBACK); through the index their matches become
 *    candidates too.
 *
 * And three factors. If the query asks when, a passage that says when has
 * TIME_FACTOR times its own relevance. In the final score, a match whose
 * first word is one of the query's, such as the speaker's name, counts
 * SUBJECT_FACTOR times, and a question QUESTION_FACTOR times (see above).
 */
#include "memory/archival.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "embed/embed.h"
#include "embed/embedder.h"
#include "embed/vec.h"
#include "memory/archival_index.h"
#include "memory/feedback.h"
#include "memory/fts_rank.h"
#include "memory/passages_db.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define SIMILARITY_FLOOR 0.05f
#define FTS_CANDIDATES   1000

/* BM25 weighs a word by its rarity among at most this many times as many
 * passages as the query's words match together, not among all of them:
 * passages that share no word with the query (another conversation, other
 * documents) should not change how a query's words weigh against each
 * other, and in a large memory they did: a speaker's name, in half of a
 * conversation's turns, became as "rare" as the word that finds the answer.
 * On LoCoMo (bench/README.md, section 4) with 100,000 unrelated passages
 * added, hybrid recall@10 went from 0.640 to 0.699 (0.733 without them); it
 * stayed the same without them (0.731) and with 10,000 halves of other
 * conversations' turns (0.676). 1 did better with the unrelated passages
 * (0.703) and worse with the other turns (0.671); 4, 0.689 and 0.683.
 * Naming a collection smaller than the table also makes the rank function
 * measure a match's length against the mean length of what the query's
 * words match (fts_rank.c): with the 100,000 passages, 0.699 -> 0.712. */
#define LOCAL_IDF_FACTOR 2.0

/* A match's BM25 is multiplied by the share of the query's words, each
 * weighted by its IDF, that it contains (COVERAGE 1: all of it; fts_rank.c).
 * The same local collection that keeps unrelated passages out of IDF makes
 * a word common in the memory, such as a speaker's name, weigh more once
 * the memory is large, and a turn with the name and one more word of the
 * question outscored the turn with the question's rarer words. On LoCoMo,
 * hybrid recall@10 without distractors / with 10,000 other turns / with
 * 100,000 unrelated passages: 0.736 / 0.691 / 0.720 without the factor,
 * 0.746 / 0.703 / 0.742 with it; counting words instead of weighing them,
 * score x (1 + share of the words), 0.738 / 0.708 / 0.732; score x (1 + 5 x
 * share of the weight), 0.748 / 0.705 / 0.739. */
#define COVERAGE 1.0

/* A match whose first word is one of the query's ranks at this many times
 * its score (its own relevance and its neighbours' shares; what it passes
 * on is unchanged): a passage's first word is usually who says it or what
 * it is about ("Melanie: ...", "Tokyo trip: ..."), and a question that
 * names it asks about that. FTS5 tells (FTS_FIRST_FUNCTION, fts_rank.c).
 * On LoCoMo, where 96% of the evidence named by a question's speaker is
 * that speaker's own turns, and the other speaker's turns were 39% of what
 * else the top 10 held, hybrid recall@10 without distractors / with 10,000
 * other turns / with 100,000 unrelated passages: 0.770 / 0.738 / 0.764
 * without it (the four other changes of that day on), 0.796 / 0.771 /
 * 0.788 with 2 (1.6: 0.792 clean; 3: 0.796). First it weighed the BM25 of
 * a match only, at 1.5 (more helped the multi-hop questions and hurt the
 * single-hop ones): the other speaker's turns still came in through their
 * cosine and their neighbours' shares, and recall was 0.776 / 0.748 /
 * 0.773. */
#define SUBJECT_FACTOR 2.0

/* Most matches a search ranks for its FTS_CANDIDATES (see text_matches),
 * ~1 us each. Measured at 100k passages (bench/README.md, section 8): of
 * the top 10s of exact BM25 over every match, 2,000 kept 37%, 5,000 64%,
 * 20,000 93-96%, at a p95 of 17, 19 and 25 ms a hybrid search (117 ms
 * unbounded). */
#define TEXT_RANK_CAP 20000

static const fts_table archival_fts = {"passages_fts", "passages", "searching archival memory"};

/* Fusion weights of the two rankings (see above). */
#define WEIGHT_TEXT   1.0
#define WEIGHT_VECTOR 0.3

/* Feedback (see the top of the file and feedback.c): the words of the
 * FEEDBACK_SOURCES passages with the highest own relevance add at most
 * FEEDBACK_WORDS words, whose BM25 (normalized by its best, as the query's)
 * adds WEIGHT_FEEDBACK to a passage's own relevance. On LoCoMo (as
 * SUBJECT_FACTOR; measured when that weighed BM25 only), 0.754 / 0.731 /
 * 0.747 without it, 0.764 / 0.739 / 0.757 with it; 3 sources did better
 * than 5 or 10, and 0.4 better than 0.2 or 0.5; 6 and 10 words scored the
 * same (15: 0.004 less), and 6 cost less.
 *
 * Its work is bounded, since the feedback only adds to what the query
 * found: the candidate words' matches are counted up to FEEDBACK_COUNT_CAP
 * (estimated beyond), and at most FEEDBACK_RANK_CAP of the chosen words'
 * matches are ranked, the newest. At first (10 words, 2,000 and 5,000) the
 * feedback took a fresh-process search at 1,000,000 made-up passages from
 * 59 to 84 ms p50 (ranking 9-12 ms of it, counting 2-4 ms); with these
 * bounds LoCoMo's recall is the same, clean and with 100,000 made-up
 * passages. */
#define FEEDBACK_SOURCES 3
/* A source must have this share of the strongest's own relevance: in a
 * small memory the third strongest may match nothing but a stray word. */
#define FEEDBACK_SOURCE_SHARE 0.25
#define FEEDBACK_WORDS        6
#define WEIGHT_FEEDBACK       0.4
#define FEEDBACK_COUNT_CAP    500
#define FEEDBACK_RANK_CAP     500
/* Through the index, at most this many of the feedback words' best matches
 * that the query did not find become candidates (each is a row read): with
 * 100,000 made-up passages 100 found as many answers as 1,000, and saved
 * 1.5-2.5 ms a search. */
#define FEEDBACK_NEW 100

/* A question that asks when ("When did she ...", "How long ...") is
 * answered by a passage that says when: "yesterday", "last week", "in
 * 2019". Of the TIME_SOURCES strongest candidates, those with such a word
 * count TIME_FACTOR times (time_word lists the words; English, as the
 * dates above). On LoCoMo 78% of the evidence for such questions has one,
 * against 12% of all turns; hybrid recall@10 without distractors / with
 * 10,000 other turns / with 100,000 unrelated passages: 0.764 / 0.739 /
 * 0.757 without it, 0.768 / 0.741 / 0.761 with it (the temporal questions
 * alone 0.854 -> 0.873); factors 1.3, 1.6 and 3 gave 0.766, 20 and 300
 * sources 0.767. */
#define TIME_FACTOR  2.0
#define TIME_SOURCES 50

/* Passages stored in a period named by the query count this many times. */
#define DATE_FACTOR 2.0

/* Passages stored further apart than this are not neighbours. */
#define NEIGHBOUR_GAP_MS (30 * 60 * 1000LL)

/* The share of a neighbour's relevance a passage gets, by distance 1, 2. */
static const double share_of_before[] = {0.5, 0.25};
static const double share_of_after[] = {0.25, 0.125};
#define NEIGHBOUR_REACH 2

/* What a passage that asks a question passes on to the one right after it,
 * on top of share_of_before[0]: a reply answers the question before it
 * ("What got you into running?" -> "It clears my head"), so it gets nine
 * tenths of what the question passes on, not half, and still follows it.
 * On LoCoMo, hybrid recall@10 without distractors / with 10,000 other turns
 * / with 100,000 unrelated passages: 0.747 / 0.702 / 0.742 without it,
 * 0.752 / 0.718 / 0.744 with 0.4 (0.45: 0.754 / 0.719 / 0.745; 0.25: 0.750
 * clean). */
#define ANSWER_SHARE 0.4
/* A question asks; it seldom holds what a search looks for. A passage that
 * asks ranks at this share of its score (what it passes on to its reply is
 * unchanged). On LoCoMo 9% of the evidence ends in a question mark,
 * against 23% of all turns; hybrid recall@10 without distractors / with
 * 10,000 other turns / with 100,000 unrelated passages: 0.768 / 0.741 /
 * 0.761 without it, 0.776 / 0.748 / 0.773 with 0.6 (0.5: 0.776 / 0.748 /
 * 0.771; 0.4: 0.776 clean, 0.8: 0.774). */
#define QUESTION_FACTOR 0.6
/* Questions are looked for among this many candidates with the highest own
 * relevance: one text lookup each (30 and 1,000 found as many answers on
 * LoCoMo within 0.001). */
#define QUESTION_SOURCES 100

/* One passage of the agent within the search's time range. */
typedef struct cand {
    int64_t id;
    int64_t time;
    float similarity; /* cosine with the query; 0 if embedded by another embedder */
    double bm25;      /* BM25 relevance, larger is better; 0 = not a text match */
    double own;       /* the passage's relevance by itself */
    double score;     /* plus its neighbours' shares: what results are ordered by */
    int64_t next_id;  /* the passage stored right after it in range, if known; 0: unknown */
    int nearest;      /* one of the vector index's nearest passages */
    int asks;         /* its text ends in a question mark (mark_questions) */
    int subject;      /* its first word is one of the query's (text_matches) */
    double feedback;  /* BM25 relevance to the feedback words (add_feedback); 0: none */
} cand;

typedef struct cand_list {
    cand *items;
    int count, cap;
    int text_ranked;     /* 0, or the cap text_matches ranked to when more matched */
    int64_t text_oldest; /* then: the oldest ranked match */
} cand_list;

static cand *cand_push(cand_list *l, int64_t id)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = mg_xrealloc(l->items, (size_t)l->cap * sizeof *l->items);
    }
    cand *c = &l->items[l->count++];
    memset(c, 0, sizeof *c);
    c->id = id;
    return c;
}

static mg_status check_tags(const char *tags_json, mg_error *err)
{
    json_t *tags = json_loads(tags_json, 0, NULL);
    int ok = json_is_array(tags);
    for (size_t i = 0; ok && i < json_array_size(tags); i++)
        ok = json_is_string(json_array_get(tags, i));
    json_decref(tags);
    return ok ? MG_OK : mg_err_set(err, MG_ERR_USAGE, "tags must be a JSON array of strings");
}

mg_status archival_insert(mg_store *store, int64_t agent_id, const char *embedder, const char *text,
                          const char *tags_json, int64_t time_ms, char uuid_out[MG_UUID_SIZE],
                          mg_error *err)
{
    char uuid[MG_UUID_SIZE];
    mg_uuid_new(uuid);
    if (mg_text_blank(text)) return mg_err_set(err, MG_ERR_USAGE, "the passage is empty");
    if (tags_json && check_tags(tags_json, err)) return MG_ERR_USAGE;
    float *vec;
    int dim;
    mg_status st = mg_embed_text(embedder, text, &vec, &dim, err);
    if (st) return st;
    /* The row, its FTS row and the count in one transaction (no insert
     * triggers since migration 6: see memory/passages_db.c). Inside the
     * caller's transaction, no savepoint: the caller rolls back on failure. */
    int own = store->tx_depth == 0;
    if (own) st = store_begin(store, err);
    if (!st) {
        passages_db db;
        passage_new row = {.text = text,
                           .tags_json = tags_json,
                           .time_ms = time_ms,
                           .position = -1,
                           .embedder = embedder,
                           .vec = vec,
                           .dim = dim,
                           .uuid = uuid};
        st = passages_db_open(&db, store, agent_id, err);
        if (!st) {
            st = passages_db_insert(&db, &row, err);
            passages_db_close(&db);
        }
        if (!st) st = passages_db_count_added(store, agent_id, 1, err);
        if (own) {
            if (st)
                store_rollback(store);
            else
                st = store_commit(store, err);
        }
    }
    free(vec);
    if (!st && uuid_out) memcpy(uuid_out, uuid, MG_UUID_SIZE);
    return st;
}

mg_status archival_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err)
{
    return store_query_int(store, "SELECT passage_count FROM agents WHERE id = ?", agent_id, 0, out,
                           err);
}

/* The first parameter of the tag conditions (the statements' own use ?4-?6). */
#define TAG_PARAM 10

/* Prepares `sql`, whose "%s" stands for the search's scope over passages
 * `p`: the agent's (?1), in the time range (?2, ?3), carrying every tag
 * (?10...). Binds those; the caller binds the rest. */
static mg_status prepare_scoped(mg_store *store, const char *sql, int64_t agent_id,
                                const mg_search *s, sqlite3_stmt **out, mg_error *err)
{
    buf scope = BUF_INIT, full = BUF_INIT;
    buf_puts(&scope, "p.agent_id = ?1 AND p.created_at >= ?2 AND p.created_at < ?3");
    for (int i = 0; i < s->ntags; i++)
        buf_printf(&scope,
                   " AND EXISTS (SELECT 1 FROM json_each(p.tags) WHERE json_each.value = ?%d)",
                   TAG_PARAM + i);
    buf_printf(&full, sql, buf_str(&scope));
    mg_status st = store_prepare(store, buf_str(&full), out, err);
    buf_free(&scope);
    buf_free(&full);
    if (st) return st;
    sqlite3_bind_int64(*out, 1, agent_id);
    sqlite3_bind_int64(*out, 2, s->from_ms);
    sqlite3_bind_int64(*out, 3, s->to_ms ? s->to_ms : INT64_MAX);
    for (int i = 0; i < s->ntags; i++)
        store_bind_text(*out, TAG_PARAM + i, s->tags[i]);
    return MG_OK;
}

/* A search narrower than the agent's whole memory. */
static int filtered(const mg_search *s)
{
    return s->from_ms || s->to_ms || s->ntags;
}

/* ------------------------------------------------------------------ the query's embedding */

/* Distinct query words whose document frequency is looked up; each costs a
 * walk of at most IDF_COUNT_CAP matches, and a query of thousands of words
 * (the model writes queries) must not cost thousands of them. Later words
 * get the mean weight of the looked-up ones. */
#define IDF_LOOKUPS_MAX 64

/* A word's matches are counted up to this many, and estimated beyond
 * (fts_counter). Walking every match of a common word was most of a query's
 * embedding at 100k passages; past a few thousand matches the weight is
 * small and changes little (at 100k passages, 2,000 matches weigh 3.9 and
 * 20,000 weigh 1.6, against 11.0 for a word in one passage). */
#define IDF_COUNT_CAP 2000

/* Inverse document frequency of a query word, from the FTS index. */
typedef struct idf_ctx {
    fts_counter df;
    double n; /* passages in the index */
    int lookups;
    double sum; /* of the weights looked up */
} idf_ctx;

/* The BM25 form, log(1 + (N - df + 0.5) / (df + 0.5)): positive however
 * common the word, largest for words no passage has. Over the whole index,
 * as FTS5's own bm25() counts. The word goes through FTS5's tokenizer as a
 * quoted phrase, so "sailing" counts the passages that have "sail". */
static float idf_weight(void *ctx, const char *word, size_t n)
{
    idf_ctx *c = ctx;
    if (c->lookups == IDF_LOOKUPS_MAX) return (float)(c->sum / c->lookups);
    buf phrase = BUF_INIT;
    buf_putc(&phrase, '"');
    for (size_t i = 0; i < n; i++) {
        if (word[i] == '"') buf_putc(&phrase, '"');
        buf_putc(&phrase, word[i]);
    }
    buf_putc(&phrase, '"');
    double df;
    /* A failed count weighs like an uncountable word: the statements after
     * it report the store's trouble. */
    if (fts_counter_count(&c->df, phrase.data, phrase.len, &df, NULL)) df = -1;
    buf_free(&phrase);
    if (df < 0) return 1.0f; /* FTS5 refused the phrase: neutral */
    double idf = fts_idf(c->n, df);
    c->lookups++;
    c->sum += idf;
    return (float)idf;
}

/* The passages of every agent: the rows IDF is computed over, as FTS5's
 * own bm25() counts. */
static mg_status stored_passages(mg_store *store, int64_t *n, mg_error *err)
{
    return store_query_int(store, "SELECT coalesce(sum(passage_count), 0) FROM agents", 0, 0, n,
                           err);
}

/* The query's embedding (caller frees *query): for the offline embedder
 * weighted by inverse document frequency, for others as it comes. */
static mg_status embed_query(mg_store *store, const char *embedder, const char *text, float **query,
                             int *dim, mg_error *err)
{
    if (strcmp(embedder, "offline") != 0) return mg_embed_text(embedder, text, query, dim, err);
    idf_ctx c = {0};
    int64_t n;
    mg_status st = stored_passages(store, &n, err);
    if (!st) st = fts_counter_open(&c.df, store, &archival_fts, IDF_COUNT_CAP, err);
    if (st) return st;
    c.n = (double)n;
    *dim = MG_EMBED_OFFLINE_DIM;
    *query = mg_xcalloc((size_t)*dim, sizeof **query);
    mg_embed_offline_weighted(text, strlen(text), *query, *dim, idf_weight, &c);
    fts_counter_close(&c.df);
    return MG_OK;
}

/* ------------------------------------------------------------------ the two rankings */

/* Sets c's cosine with the query from the columns (same embedder?, embedding)
 * at col, col + 1 of a row; 0 for another embedder's vector. */
static mg_status row_similarity(sqlite3_stmt *stmt, int col, cand *c, const char *embedder,
                                const float *query, float *vec, int dim, mg_error *err)
{
    if (!sqlite3_column_int(stmt, col)) return MG_OK;
    if (!mg_vec_from_blob(sqlite3_column_blob(stmt, col + 1), sqlite3_column_bytes(stmt, col + 1),
                          vec, dim))
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "passage %lld has an embedding of %d bytes, but embedder '%s' makes "
                          "%d dimensions",
                          (long long)c->id, sqlite3_column_bytes(stmt, col + 1), embedder, dim);
    c->similarity = mg_vec_dot(query, vec, dim);
    return MG_OK;
}

/* Appends every passage of the agent in range, in id order, with its time
 * and its cosine with the query. */
static mg_status scan_passages(mg_store *store, int64_t agent_id, const char *embedder,
                               const mg_search *s, const float *query, int dim, cand_list *out,
                               mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = prepare_scoped(store,
                                  "SELECT id, created_at, embedder = ?4, embedding FROM passages p "
                                  "WHERE %s ORDER BY id",
                                  agent_id, s, &stmt, err);
    if (st) return st;
    store_bind_text(stmt, 4, embedder);
    float *vec = mg_xmalloc((size_t)dim * sizeof *vec);
    int rc;
    while (!st && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cand *c = cand_push(out, sqlite3_column_int64(stmt, 0));
        c->time = sqlite3_column_int64(stmt, 1);
        st = row_similarity(stmt, 2, c, embedder, query, vec, dim, err);
    }
    free(vec);
    sqlite3_finalize(stmt);
    if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "searching archival memory");
    /* The scan saw every passage in range: each one's successor is the next. */
    for (int i = 0; i + 1 < out->count; i++)
        out->items[i].next_id = out->items[i + 1].id;
    return st;
}

/* Binary search over the first n items, which are in id order. */
static cand *find_cand(cand *items, int n, int64_t id)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (items[mid].id == id) return &items[mid];
        if (items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Reads the times of l's candidates from `from` on (FTS matches found
 * without the table). */
static mg_status read_times(mg_store *store, cand_list *l, int from, mg_error *err)
{
    if (from >= l->count) return MG_OK;
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, "SELECT created_at FROM passages WHERE id = ?", &stmt, err);
    for (int i = from; !st && i < l->count; i++) {
        sqlite3_bind_int64(stmt, 1, l->items[i].id);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            l->items[i].time = sqlite3_column_int64(stmt, 0);
        else if (rc != SQLITE_DONE)
            st = store_fail(store, err, "searching archival memory");
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* The most matches a text ranking ranks: TEXT_RANK_CAP unless a test set
 * another. */
static int text_rank_cap(const mg_store *store)
{
    return store->text_rank_cap > 0 ? store->text_rank_cap : TEXT_RANK_CAP;
}

/* Sets the BM25 relevance of the matches, with COVERAGE in a hybrid search
 * (ARCHIVAL_TEXT stays BM25 alone), and whether their first word is one of
 * the query's (`subject`). Matches not in `l` (a text-only search scans
 * nothing) are appended, with their times unless the caller reads their
 * rows anyway (`rows_later`).
 *
 * The work is bounded as in recall (fts_rank.c): at most `cap` matches
 * (text_rank_cap: TEXT_RANK_CAP unless a test set it) are ranked, the
 * newest. When the search covers the whole FTS table, those are of the
 * query's rarest words whose matches fit in that many (the common words
 * are dropped, unless even the rarest word matches more); a narrowed
 * search keeps every word (fts_plan_build says why).
 * Joining every match to its row (to filter by agent, time and tags) costs
 * as much as the ranking itself, so when the agent owns every passage and
 * the search has no filter, FTS5 answers alone and only the matches kept
 * are read. */
static mg_status text_matches(mg_store *store, int64_t agent_id, const mg_search *s,
                              archival_mode mode, int cap, cand_list *l, int rows_later,
                              mg_error *err)
{
    char *words = fts_query(s->query);
    if (!words) return MG_OK;
    fts_plan plan;
    int fts_only = 0;
    mg_status st =
        filtered(s) ? MG_OK : store_owns_all(store, STORE_PASSAGES, agent_id, &fts_only, err);
    fts_scope scope = FTS_SCOPE_ALL;
    scope.narrowed = !fts_only;
    if (!st) st = fts_plan_build(store, &archival_fts, NULL, words, cap, scope, &plan, err);
    free(words);
    if (st) return st;
    for (int i = 0; i < plan.nkept; i++)
        plan.collection += LOCAL_IDF_FACTOR * plan.df[i];
    plan.coverage = mode == ARCHIVAL_HYBRID ? COVERAGE : 0;
    st = fts_rank_ensure(store, err);
    sqlite3_stmt *stmt = NULL;
    if (!st)
        st = fts_only
                 ? store_prepare(store,
                                 "SELECT rowid, " FTS_RANK_FUNCTION
                                 "(passages_fts, ?5), " FTS_FIRST_FUNCTION "(passages_fts) FROM "
                                 "passages_fts WHERE passages_fts MATCH ?4 ORDER BY rowid DESC "
                                 "LIMIT ?6",
                                 &stmt, err)
                 : prepare_scoped(store,
                                  "SELECT p.id, " FTS_RANK_FUNCTION
                                  "(passages_fts, ?5), " FTS_FIRST_FUNCTION "(passages_fts) FROM "
                                  "passages_fts CROSS JOIN passages p ON p.id = "
                                  "passages_fts.rowid WHERE %s AND passages_fts MATCH ?4 ORDER "
                                  "BY passages_fts.rowid DESC LIMIT ?6",
                                  agent_id, s, &stmt, err);
    if (st) {
        fts_plan_free(&plan);
        return st;
    }
    store_bind_text(stmt, 4, plan.match);
    fts_plan_bind(&plan, stmt, 5);
    sqlite3_bind_int(stmt, 6, cap + 1); /* one more: do older matches exist? */
    fts_hit *hits = mg_xcalloc((size_t)cap + 1, sizeof *hits);
    int n = 0, rc;
    while (n <= cap && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        hits[n].id = sqlite3_column_int64(stmt, 0);
        hits[n].rank = sqlite3_column_double(stmt, 1);
        hits[n++].first = sqlite3_column_int(stmt, 2);
    }
    if (n > cap) {
        rc = SQLITE_DONE;
        n = cap;
        l->text_ranked = cap;
        l->text_oldest = hits[cap - 1].id; /* rows came newest first */
    }
    sqlite3_finalize(stmt);
    fts_plan_free(&plan);
    if (rc != SQLITE_DONE) {
        free(hits);
        return store_fail(store, err, "searching archival memory");
    }
    fts_hits_sort(hits, n);
    int scanned = l->count;
    for (int i = 0; i < n && i < FTS_CANDIDATES; i++) {
        cand *c = find_cand(l->items, scanned, hits[i].id);
        if (!c) c = cand_push(l, hits[i].id);
        /* A match can score 0 (a word in nearly every row); still a match. */
        c->bm25 = fmax(-hits[i].rank, 1e-9);
        c->subject = hits[i].first;
    }
    free(hits);
    return rows_later ? MG_OK : read_times(store, l, scanned, err);
}

/* ------------------------------------------------------------------ dates in the query */

#define MAX_QUERY_DATES 4
/* A local calendar date lies within 14 hours of the same UTC date. */
#define DATE_MARGIN_MS (14 * 3600 * 1000LL)

typedef struct period {
    int64_t from, to; /* [from, to) in epoch ms, margins included */
} period;

typedef struct qword {
    size_t start, len;
    int num; /* its value if it is a number (ordinals too: "8th"), else -1 */
} qword;

static int month_of(const char *w, size_t n)
{
    static const char *const names[] = {"january",   "february", "march",    "april",
                                        "may",       "june",     "july",     "august",
                                        "september", "october",  "november", "december"};
    for (int m = 0; m < 12; m++) {
        if (n == strlen(names[m]) && strncasecmp(w, names[m], n) == 0) return m + 1;
        if (n == 3 && strncasecmp(w, names[m], 3) == 0) return m + 1;
        if (n == 4 && m == 8 && strncasecmp(w, "sept", 4) == 0) return m + 1;
    }
    return 0;
}

static int number_of(const char *w, size_t n)
{
    size_t digits = 0;
    int v = 0;
    while (digits < n && digits < 5 && w[digits] >= '0' && w[digits] <= '9')
        v = v * 10 + (w[digits++] - '0');
    if (!digits) return -1;
    if (digits == n) return v;
    if (n - digits == 2 && v <= 31 &&
        (strncasecmp(w + digits, "st", 2) == 0 || strncasecmp(w + digits, "nd", 2) == 0 ||
         strncasecmp(w + digits, "rd", 2) == 0 || strncasecmp(w + digits, "th", 2) == 0))
        return v;
    return -1;
}

/* Letters, digits and the bytes of other UTF-8 characters. */
static int word_byte(char ch)
{
    unsigned char c = (unsigned char)ch;
    return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
}

/* Finds the next word of s from *at on: 1 with *start at it and *at past
 * it, or 0 when there is none. */
static int next_word(const char *s, size_t *at, size_t *start)
{
    size_t i = *at;
    while (s[i] && !word_byte(s[i]))
        i++;
    if (!s[i]) return 0;
    *start = i;
    while (s[i] && word_byte(s[i]))
        i++;
    *at = i;
    return 1;
}

/* Splits the query into words (runs of letters, digits and non-ASCII bytes). */
static int query_words(const char *q, qword *out, int max)
{
    int n = 0;
    size_t i = 0, start;
    while (n < max && next_word(q, &i, &start)) {
        out[n].start = start;
        out[n].len = i - start;
        out[n].num = number_of(q + start, i - start);
        n++;
    }
    return n;
}

static int64_t utc_ms(int year, int month, int day)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    return (int64_t)timegm(&tm) * 1000;
}

/* Readers of word k of the query, each 0 when it is not of that kind (or
 * past the end). */
typedef struct qwords {
    const char *q;
    const qword *w;
    int n;
} qwords;

static int month_at(const qwords *ws, int k)
{
    return k < ws->n ? month_of(ws->q + ws->w[k].start, ws->w[k].len) : 0;
}

static int day_at(const qwords *ws, int k)
{
    return k < ws->n && ws->w[k].num >= 1 && ws->w[k].num <= 31 ? ws->w[k].num : 0;
}

static int year_at(const qwords *ws, int k)
{
    int v = k < ws->n && ws->w[k].len == 4 ? ws->w[k].num : 0;
    return v >= 1000 && v <= 2999 ? v : 0;
}

static int of_at(const qwords *ws, int k)
{
    return k < ws->n && ws->w[k].len == 2 && strncasecmp(ws->q + ws->w[k].start, "of", 2) == 0;
}

/* "2023-10-13": three numbers joined by single hyphens. */
static int iso_at(const qwords *ws, int k, int *year, int *month, int *day)
{
    if (!year_at(ws, k) || k + 2 >= ws->n) return 0;
    const qword *w = ws->w + k;
    if (w[1].start != w[0].start + 5 || ws->q[w[0].start + 4] != '-' ||
        w[2].start != w[1].start + w[1].len + 1 || ws->q[w[2].start - 1] != '-')
        return 0;
    *year = w[0].num, *month = w[1].num, *day = w[2].num;
    return *month >= 1 && *month <= 12 && *day >= 1 && *day <= 31;
}

/* Reads a date starting at word k: returns how many words it takes (0: none)
 * and sets year, month and day (0 for a whole month). */
static int date_at(const qwords *ws, int k, int *year, int *month, int *day)
{
    *day = 0;
    if (iso_at(ws, k, year, month, day)) return 3;
    if ((*month = month_at(ws, k)) && (*day = day_at(ws, k + 1)) && (*year = year_at(ws, k + 2)))
        return 3; /* October 13, 2023 */
    if ((*day = day_at(ws, k)) && (*month = month_at(ws, k + 1)) && (*year = year_at(ws, k + 2)))
        return 3; /* 13 October 2023 */
    if ((*day = day_at(ws, k)) && of_at(ws, k + 1) && (*month = month_at(ws, k + 2)) &&
        (*year = year_at(ws, k + 3)))
        return 4; /* 13th of October, 2023 */
    *day = 0;
    if ((*month = month_at(ws, k)) && (*year = year_at(ws, k + 1))) return 2; /* October 2023 */
    return 0;
}

/* Finds calendar dates in the query - "13 October 2023", "October 13th, 2023",
 * "8th of December, 2023", "2023-10-13", "October 2023" - and returns their
 * periods (a day or a month, widened by DATE_MARGIN_MS). A bare year is not
 * taken: it is too wide to say which passages are meant; nor a day and month
 * without a year. Blanks the words of each date found in `rest` (a copy of
 * the query), so they are not also searched for as words. Looks at the first
 * 64 words only. */
static int query_dates(const char *q, char *rest, period *out)
{
    qword w[64];
    qwords ws = {q, w, query_words(q, w, 64)};
    int found = 0;
    for (int k = 0; k < ws.n && found < MAX_QUERY_DATES; k++) {
        int year, month, day, used = date_at(&ws, k, &year, &month, &day);
        if (!used) continue;
        period *p = &out[found++];
        p->from = utc_ms(year, month, day ? day : 1);
        if (day)
            p->to = p->from + 86400000LL;
        else
            p->to = month == 12 ? utc_ms(year + 1, 1, 1) : utc_ms(year, month + 1, 1);
        p->from -= DATE_MARGIN_MS;
        p->to += DATE_MARGIN_MS;
        size_t end = w[k + used - 1].start + w[k + used - 1].len;
        memset(rest + w[k].start, ' ', end - w[k].start);
        k += used - 1;
    }
    return found;
}

static int in_periods(int64_t t, const period *p, int n)
{
    for (int i = 0; i < n; i++)
        if (t >= p[i].from && t < p[i].to) return 1;
    return 0;
}

/* ------------------------------------------------------------------ questions that ask when */

/* 1 if the query asks for a time: it begins "When", "How long", or "What"
 * or "Which" and a unit of time ("What year ..."). */
static int asks_when(const char *q)
{
    static const char *const units[] = {"year", "month", "week", "day", "date", "time"};
    qword w[2];
    int n = query_words(q, w, 2);
    const char *first = n ? q + w[0].start : "", *second = n > 1 ? q + w[1].start : "";
    size_t len1 = n ? w[0].len : 0, len2 = n > 1 ? w[1].len : 0;
    if (len1 == 4 && strncasecmp(first, "when", 4) == 0) return 1;
    if (len1 == 3 && strncasecmp(first, "how", 3) == 0)
        return len2 == 4 && strncasecmp(second, "long", 4) == 0;
    if (!((len1 == 4 && strncasecmp(first, "what", 4) == 0) ||
          (len1 == 5 && strncasecmp(first, "which", 5) == 0)))
        return 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (len2 == strlen(units[i]) && strncasecmp(second, units[i], len2) == 0) return 1;
    return 0;
}

/* 1 if w[0..n) places a statement in time: "yesterday", "ago", "last",
 * a weekday, a month's full name (not "may", mostly the verb), a year. */
static int time_word(const char *w, size_t n)
{
    static const char *const words[] = {"ago",       "earlier",  "lately",    "last",     "month",
                                        "months",    "morning",  "night",     "recently", "today",
                                        "tomorrow",  "tonight",  "week",      "weekend",  "weeks",
                                        "year",      "years",    "yesterday", "monday",   "tuesday",
                                        "wednesday", "thursday", "friday",    "saturday", "sunday"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (n == strlen(words[i]) && strncasecmp(w, words[i], n) == 0) return 1;
    if (n > 3 && month_of(w, n)) return 1;
    int year = number_of(w, n);
    return n == 4 && year >= 1900 && year < 2100;
}

/* 1 if the text has a word that places it in time. */
static int says_when(const char *text)
{
    size_t i = 0, start;
    while (next_word(text, &i, &start))
        if (time_word(text + start, i - start)) return 1;
    return 0;
}

/* ------------------------------------------------------------------ ranking */

/* Each passage's own relevance (see the top of the file). */
static void score_own(cand_list *l, archival_mode mode, const period *dates, int ndates)
{
    double best_bm25 = 0, best_similarity = 0, best_feedback = 0;
    for (int i = 0; i < l->count; i++) {
        best_bm25 = fmax(best_bm25, l->items[i].bm25);
        best_similarity = fmax(best_similarity, l->items[i].similarity);
        best_feedback = fmax(best_feedback, l->items[i].feedback);
    }
    for (int i = 0; i < l->count; i++) {
        cand *c = &l->items[i];
        double similarity = c->similarity >= SIMILARITY_FLOOR ? c->similarity : 0;
        if (mode == ARCHIVAL_TEXT) {
            c->own = c->bm25;
        } else if (mode == ARCHIVAL_VECTOR) {
            c->own = similarity;
        } else {
            c->own = (c->bm25 > 0 ? WEIGHT_TEXT * c->bm25 / best_bm25 : 0) +
                     (similarity > 0 ? WEIGHT_VECTOR * similarity / best_similarity : 0) +
                     (c->feedback > 0 ? WEIGHT_FEEDBACK * c->feedback / best_feedback : 0);
            if (ndates && in_periods(c->time, dates, ndates)) c->own *= DATE_FACTOR;
        }
    }
}

/* Unsigned arithmetic: stored times come from callers and may be extreme. */
static int neighbours(const cand *a, const cand *b)
{
    uint64_t x = (uint64_t)a->time, y = (uint64_t)b->time;
    uint64_t apart = a->time > b->time ? x - y : y - x;
    return apart <= (uint64_t)NEIGHBOUR_GAP_MS;
}

/* 1 if items a and a + 1 of the list were stored one after the other (in
 * range) within NEIGHBOUR_GAP_MS. */
static int adjacent(const cand *a)
{
    return a->next_id == a[1].id && neighbours(a, a + 1);
}

/* What a passage passes on to its neighbours: its own relevance, times the
 * fraction of a best match that it is. `scale` is what a best match scores:
 * WEIGHT_TEXT when some passage matched the query's words, else
 * WEIGHT_VECTOR (see "Neighbours" at the top). A match that scores more
 * (the embedder's part, a date) passes on its own relevance, no more, so a
 * share below 1 never lifts a neighbour above the match. */
static double passed_on(const cand *c, double scale)
{
    return c->own * fmin(1.0, c->own / scale);
}

/* Adds to each passage its shares of its neighbours' relevance. A chain of
 * neighbours ends at the first gap, in time or in what the list holds. The
 * list is in id order. */
static void score_neighbours(cand_list *l)
{
    double scale = WEIGHT_VECTOR;
    for (int i = 0; i < l->count; i++)
        if (l->items[i].bm25 > 0) scale = WEIGHT_TEXT;
    for (int i = 0; i < l->count; i++) {
        cand *c = &l->items[i];
        c->score = c->own;
        for (int d = 1; d <= NEIGHBOUR_REACH && i - d >= 0; d++) {
            const cand *before = &l->items[i - d];
            if (!adjacent(before)) break;
            double share = share_of_before[d - 1] + (d == 1 && before->asks ? ANSWER_SHARE : 0);
            c->score += share * passed_on(before, scale);
        }
        for (int d = 1; d <= NEIGHBOUR_REACH && i + d < l->count; d++) {
            if (!adjacent(&l->items[i + d - 1])) break;
            c->score += share_of_after[d - 1] * passed_on(&l->items[i + d], scale);
        }
        if (c->asks) c->score *= QUESTION_FACTOR;
        if (c->subject) c->score *= SUBJECT_FACTOR;
    }
}

typedef struct ranked {
    double own;
    int at; /* index in the candidate list */
} ranked;

static int by_ranked_own(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->own != y->own) return x->own < y->own ? 1 : -1;
    return y->at - x->at; /* the list is in id order: newest first */
}

/* The candidates with any own relevance, strongest first, as indices into
 * the list (in id order). *n = how many. Caller frees. */
static ranked *strongest(const cand_list *l, int *n)
{
    ranked *r = mg_xmalloc((size_t)(l->count ? l->count : 1) * sizeof *r);
    *n = 0;
    for (int i = 0; i < l->count; i++)
        if (l->items[i].own > 0) r[(*n)++] = (ranked){l->items[i].own, i};
    qsort(r, (size_t)*n, sizeof *r, by_ranked_own);
    return r;
}

/* Calls look(c, row, ctx) for each of the `max` strongest candidates by
 * own relevance, strongest first, with the row that `sql` (its one
 * parameter: the passage's id) returns for it. */
static mg_status for_strongest(mg_store *store, cand_list *l, int max, const char *sql,
                               void (*look)(cand *c, sqlite3_stmt *row, void *ctx), void *ctx,
                               mg_error *err)
{
    int n;
    ranked *r = strongest(l, &n);
    if (n > max) n = max;
    sqlite3_stmt *stmt = NULL;
    mg_status st = n ? store_prepare(store, sql, &stmt, err) : MG_OK;
    for (int k = 0; k < n && !st; k++) {
        cand *c = &l->items[r[k].at];
        sqlite3_bind_int64(stmt, 1, c->id);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            look(c, stmt, ctx);
        else if (rc != SQLITE_DONE)
            st = store_fail(store, err, "searching archival memory");
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    free(r);
    return st;
}

static void time_factor(cand *c, sqlite3_stmt *row, void *ctx)
{
    (void)ctx;
    if (says_when((const char *)sqlite3_column_text(row, 0))) c->own *= TIME_FACTOR;
}

/* For a query that asks when: the TIME_SOURCES strongest candidates that
 * say when count TIME_FACTOR times (see its definition). */
static mg_status mark_times(mg_store *store, cand_list *l, mg_error *err)
{
    return for_strongest(store, l, TIME_SOURCES, "SELECT text FROM passages WHERE id = ?",
                         time_factor, NULL, err);
}

static void set_asks(cand *c, sqlite3_stmt *row, void *ctx)
{
    (void)ctx;
    c->asks = sqlite3_column_int(row, 0);
}

/* Sets `asks` on the QUESTION_SOURCES strongest candidates, from the end of
 * their text. */
static mg_status mark_questions(mg_store *store, cand_list *l, mg_error *err)
{
    return for_strongest(store, l, QUESTION_SOURCES,
                         "SELECT substr(rtrim(text, ' ' || char(9, 10, 13)), -1) = '?' FROM "
                         "passages WHERE id = ?",
                         set_asks, NULL, err);
}

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->id < y->id ? 1 : -1;
}

static mg_status page_rows(mg_store *store, const cand *page_hits, int n, json_t *results,
                           mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        store, "SELECT text, tags, created_at, 'passage-' || uuid FROM passages WHERE id = ?",
        &stmt, err);
    if (st) return st;
    for (int i = 0; i < n && !st; i++) {
        sqlite3_bind_int64(stmt, 1, page_hits[i].id);
        if (sqlite3_step(stmt) != SQLITE_ROW) {
            st = store_fail(store, err, "reading a passage");
            break;
        }
        char when[32];
        mg_time_iso(sqlite3_column_int64(stmt, 2), when, sizeof when);
        json_t *tags = json_loads((const char *)sqlite3_column_text(stmt, 1), 0, NULL);
        json_array_append_new(results,
                              json_pack("{s:I, s:s, s:s, s:s, s:o, s:f, s:f}", "id",
                                        (json_int_t)page_hits[i].id, "passage_id",
                                        (const char *)sqlite3_column_text(stmt, 3), "time", when,
                                        "text", (const char *)sqlite3_column_text(stmt, 0), "tags",
                                        tags ? tags : json_array(), "score", page_hits[i].score,
                                        "similarity", (double)page_hits[i].similarity));
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* ------------------------------------------------------------------ the index path */

/* Nearest passages asked of the index on top of the pages up to the one
 * asked for: generous, since only candidates get a cosine at all. */
#define VECTOR_CANDIDATES 256
/* The graph's candidate list: wide, because the offline embedder's vectors
 * are hard for a graph to search with a short query (see
 * ARCHIVAL_INDEX_EXACT_BELOW); costs ~1-3 ms. */
#define GRAPH_EF 1024
/* A time range keeps only part of them: ask for this many times more, and
 * scan exactly when even that leaves fewer than half of what was wanted. */
#define RANGE_OVERSAMPLE 4
/* The strongest candidates whose neighbours are read from the table: two
 * statements each, a tenth of a fresh search's time at 200. LoCoMo's recall
 * through the index (bench/README.md, section 4) was the same at 50, 100
 * and 200 sources, with 10,000 distractors 0.676 at 200 and 0.683 at 50 and
 * 100; the unit test's agreement with the exact scan (random words, every
 * passage a neighbour of the next) was 0.887, 0.985 and 1.0. */
#define NEIGHBOUR_SOURCES 100

/* Reads passages by id: their time and cosine, if they are the agent's and
 * in the search's range. */
typedef struct row_reader {
    sqlite3_stmt *stmt;
    const char *embedder;
    const float *query;
    float *vec;
    int dim;
} row_reader;

static mg_status reader_open(row_reader *r, mg_store *store, int64_t agent_id, const char *embedder,
                             const mg_search *s, const float *query, int dim, mg_error *err)
{
    *r = (row_reader){NULL, embedder, query, NULL, dim};
    mg_status st = prepare_scoped(store,
                                  "SELECT created_at, embedder = ?4, embedding FROM passages p "
                                  "WHERE %s AND id = ?5",
                                  agent_id, s, &r->stmt, err);
    if (st) return st;
    store_bind_text(r->stmt, 4, embedder);
    r->vec = mg_xmalloc((size_t)dim * sizeof *r->vec);
    return MG_OK;
}

/* Fills c (by c->id); *found = 0 if the agent has no such passage in range
 * (a rolled-back insert still in the index, another agent's id). */
static mg_status reader_get(mg_store *store, row_reader *r, cand *c, int *found, mg_error *err)
{
    sqlite3_bind_int64(r->stmt, 5, c->id);
    int rc = sqlite3_step(r->stmt);
    mg_status st = MG_OK;
    *found = rc == SQLITE_ROW;
    if (*found) {
        c->time = sqlite3_column_int64(r->stmt, 0);
        st = row_similarity(r->stmt, 1, c, r->embedder, r->query, r->vec, r->dim, err);
    } else if (rc != SQLITE_DONE) {
        st = store_fail(store, err, "searching archival memory");
    }
    sqlite3_reset(r->stmt);
    return st;
}

static void reader_close(row_reader *r)
{
    sqlite3_finalize(r->stmt);
    free(r->vec);
}

static int by_id(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Sorts by id and merges the duplicates (one passage found several ways). */
static void sort_merge(cand_list *l)
{
    if (l->count > 1) qsort(l->items, (size_t)l->count, sizeof *l->items, by_id);
    int n = 0;
    for (int i = 0; i < l->count; i++) {
        cand *c = &l->items[i];
        if (n && l->items[n - 1].id == c->id) {
            cand *k = &l->items[n - 1];
            k->bm25 = fmax(k->bm25, c->bm25);
            k->subject |= c->subject;
            k->feedback = fmax(k->feedback, c->feedback);
            k->nearest |= c->nearest;
            if (c->next_id) k->next_id = c->next_id;
        } else {
            l->items[n++] = *c;
        }
    }
    l->count = n;
}

typedef struct succ_link {
    int64_t from, to; /* `to` was stored right after `from` (in range) */
} succ_link;

/* Reads the two passages before and after each of the strongest candidates
 * (by own relevance, already scored) from the table, with their cosines,
 * and records which passages follow which, so score_neighbours sees the
 * same chains as over a full scan. */
static mg_status add_neighbours(mg_store *store, int64_t agent_id, const mg_search *s,
                                row_reader *r, cand_list *l, mg_error *err)
{
    int n;
    ranked *strong = strongest(l, &n);
    if (n > NEIGHBOUR_SOURCES) n = NEIGHBOUR_SOURCES;
    static const char *const sql[2] = {
        "SELECT id, created_at, embedder = ?5, embedding FROM passages p WHERE %s AND id < ?4 "
        "ORDER BY id DESC LIMIT 2",
        "SELECT id, created_at, embedder = ?5, embedding FROM passages p WHERE %s AND id > ?4 "
        "ORDER BY id LIMIT 2"};
    sqlite3_stmt *stmt[2] = {NULL, NULL};
    mg_status st = MG_OK;
    for (int d = 0; d < 2 && !st; d++)
        if (!(st = prepare_scoped(store, sql[d], agent_id, s, &stmt[d], err)))
            store_bind_text(stmt[d], 5, r->embedder);
    succ_link *links = mg_xmalloc((size_t)(n ? n : 1) * 4 * sizeof *links);
    int nlinks = 0;
    for (int i = 0; i < n && !st; i++) {
        for (int d = 0; d < 2 && !st; d++) {
            int64_t prev = l->items[strong[i].at].id; /* cand_push may move items */
            sqlite3_bind_int64(stmt[d], 4, prev);
            int rc;
            while (!st && (rc = sqlite3_step(stmt[d])) == SQLITE_ROW) {
                cand *c = cand_push(l, sqlite3_column_int64(stmt[d], 0));
                c->time = sqlite3_column_int64(stmt[d], 1);
                st = row_similarity(stmt[d], 2, c, r->embedder, r->query, r->vec, r->dim, err);
                links[nlinks++] = d ? (succ_link){prev, c->id} : (succ_link){c->id, prev};
                prev = c->id;
            }
            if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "searching archival memory");
            sqlite3_reset(stmt[d]);
        }
    }
    sqlite3_finalize(stmt[0]);
    sqlite3_finalize(stmt[1]);
    sort_merge(l);
    for (int i = 0; i < nlinks; i++) {
        cand *c = find_cand(l->items, l->count, links[i].from);
        if (c) c->next_id = links[i].to;
    }
    free(links);
    free(strong);
    return st;
}

/* Reads the rows of candidates from `from` on (time, and cosine with the
 * stored embedding: the index's own scores could be of a vector replaced
 * since) and drops those the agent has not in range (a rolled-back insert
 * still in the index, another agent's id). */
static mg_status read_candidates(mg_store *store, row_reader *r, cand_list *l, int from,
                                 mg_error *err)
{
    int kept = from;
    mg_status st = MG_OK;
    for (int i = from; !st && i < l->count; i++) {
        int have;
        st = reader_get(store, r, &l->items[i], &have, err);
        if (have) l->items[kept++] = l->items[i];
    }
    if (!st) l->count = kept;
    return st;
}

/* The feedback words (caller frees; NULL when there are none) from what f
 * gathered, their IDF counted over the whole store as the query's are
 * (embed_query). */
static mg_status pick_feedback(mg_store *store, feedback *f, char **words, mg_error *err)
{
    int64_t rows;
    fts_counter df;
    mg_status st = stored_passages(store, &rows, err);
    if (!st) st = fts_counter_open(&df, store, &archival_fts, FEEDBACK_COUNT_CAP, err);
    if (st) return st;
    st = feedback_pick(f, &df, (double)rows, FEEDBACK_WORDS, words, err);
    fts_counter_close(&df);
    return st;
}

/* The feedback's sources, gathered by for_strongest (strongest first). */
typedef struct feedback_sources {
    feedback f;
    double strongest; /* the first source's own relevance */
} feedback_sources;

static void add_source(cand *c, sqlite3_stmt *row, void *ctx)
{
    feedback_sources *src = ctx;
    if (!src->strongest) src->strongest = c->own;
    if (c->own < FEEDBACK_SOURCE_SHARE * src->strongest) return;
    feedback_add(&src->f, (const char *)sqlite3_column_text(row, 0), c->own / src->strongest);
}

/* Sets each candidate's BM25 relevance to the words that the
 * FEEDBACK_SOURCES strongest candidates by own relevance add to the query
 * (feedback.c). Through the index (`r` given) the FEEDBACK_NEW best
 * matches of those words that are not candidates yet become candidates,
 * read with their cosines; a scan (`r` NULL) holds every passage in range
 * already. The list is in id order, and stays so. */
static mg_status add_feedback(mg_store *store, int64_t agent_id, const mg_search *s, row_reader *r,
                              cand_list *l, mg_error *err)
{
    feedback_sources src = {0};
    feedback_init(&src.f, s->query);
    mg_status st = for_strongest(store, l, FEEDBACK_SOURCES,
                                 "SELECT text FROM passages WHERE id = ?", add_source, &src, err);
    char *words = NULL;
    if (!st && src.f.count) st = pick_feedback(store, &src.f, &words, err);
    feedback_free(&src.f);
    if (st || !words) return st;

    mg_search fs = *s;
    fs.query = words;
    int cap = text_rank_cap(store) < FEEDBACK_RANK_CAP ? text_rank_cap(store) : FEEDBACK_RANK_CAP;
    cand_list matches = {0};
    st = text_matches(store, agent_id, &fs, ARCHIVAL_TEXT, cap, &matches, 1, err);
    free(words);
    int had = l->count;
    for (int i = 0; !st && i < matches.count; i++) { /* best first */
        cand *c = find_cand(l->items, had, matches.items[i].id);
        if (!c && r && l->count - had < FEEDBACK_NEW) c = cand_push(l, matches.items[i].id);
        if (c) c->feedback = matches.items[i].bm25;
    }
    free(matches.items);
    if (!st && l->count > had) {
        st = read_candidates(store, r, l, had, err);
        sort_merge(l);
    }
    return st;
}

/* The vector index's nearest passages to a query: a search of the index
 * alone, which a thread of its own can run while the text ranking runs on
 * the store's connection (they share nothing: the index is its own mapped
 * file, and nothing else touches it until the thread is joined). */
typedef struct nearest_job {
    mg_index *idx;
    const float *query;
    int k;
    int64_t *ids; /* k of them */
    int found;
    mg_status st;
    mg_error err;
} nearest_job;

static void *nearest_run(void *arg)
{
    nearest_job *j = arg;
    j->st = mg_index_search(j->idx, j->query, j->k, j->k > GRAPH_EF ? j->k : GRAPH_EF, j->ids, NULL,
                            &j->found, &j->err);
    return NULL;
}

/* Adds the index's nearest passages to l, whose rows are all read and in
 * id order, and reads the rows of those that are new. */
static mg_status add_nearest(mg_store *store, row_reader *r, const nearest_job *job, cand_list *l,
                             mg_error *err)
{
    int read = l->count;
    for (int i = 0; i < job->found; i++) {
        cand *c = find_cand(l->items, read, job->ids[i]);
        if (!c) c = cand_push(l, job->ids[i]);
        c->nearest = 1;
    }
    mg_status st = read_candidates(store, r, l, read, err);
    if (!st) sort_merge(l);
    return st;
}

/* The candidates of a search through the index: the index's nearest
 * passages and (hybrid) the BM25 matches, both scored by their stored
 * embeddings, and (hybrid) the neighbours of the strongest. *fallback = 1:
 * scan instead (no index to use, or a selective time range left too few of
 * the nearest). */
static mg_status index_search(mg_store *store, int64_t agent_id, const char *embedder,
                              const mg_search *s, archival_mode mode, const float *query, int dim,
                              int want, const period *dates, int ndates, cand_list *l,
                              int *fallback, mg_error *err)
{
    mg_index *idx;
    mg_status st = archival_index_get(store, agent_id, embedder, &idx, NULL, err);
    if (st) return st;
    if (!idx) {
        /* No index to ask (inside a transaction before it was opened, with
         * uncommitted inserts, or vectors too long for it): scan. */
        *fallback = 1;
        return MG_OK;
    }
    if (mg_index_dim(idx) != dim)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "archival passages embedded by '%s' have %d dimensions, but it makes %d",
                          embedder, mg_index_dim(idx), dim);
    int ranged = filtered(s);
    int k = want * (ranged ? RANGE_OVERSAMPLE : 1);
    if (k > MG_INDEX_MAX_K) k = MG_INDEX_MAX_K;
    row_reader r;
    st = reader_open(&r, store, agent_id, embedder, s, query, dim, err);
    if (st) return st;
    /* The BM25 matches are found and read while a thread searches the index. */
    nearest_job job = {.idx = idx, .query = query, .k = k};
    job.ids = mg_xmalloc((size_t)k * sizeof *job.ids);
    pthread_t thread;
    int threaded = mode == ARCHIVAL_HYBRID && pthread_create(&thread, NULL, nearest_run, &job) == 0;
    if (!threaded) nearest_run(&job);
    if (mode == ARCHIVAL_HYBRID) {
        st = text_matches(store, agent_id, s, mode, text_rank_cap(store), l, 1, err);
        if (!st) st = read_candidates(store, &r, l, 0, err);
        if (!st) sort_merge(l);
    }
    if (threaded) pthread_join(thread, NULL);
    if (!st && job.st) {
        st = job.st;
        if (err) *err = job.err;
    }
    if (!st) st = add_nearest(store, &r, &job, l, err);
    int nearest_kept = 0;
    for (int i = 0; !st && i < l->count; i++)
        nearest_kept += l->items[i].nearest;
    free(job.ids);
    if (!st && ranged && job.found == k && nearest_kept < want / 2) *fallback = 1;
    if (!st && mg_index_damaged(idx)) {
        /* Its file is damaged where this search read it (mg_index_open):
         * scan this time, and let the next search rebuild it from the table. */
        archival_index_forget(store, agent_id);
        *fallback = 1;
    }
    if (!st && !*fallback && mode == ARCHIVAL_HYBRID) {
        score_own(l, mode, dates, ndates);
        st = add_neighbours(store, agent_id, s, &r, l, err);
        if (!st) st = add_feedback(store, agent_id, s, &r, l, err);
    }
    reader_close(&r);
    return st;
}

void archival_set_text_rank_cap(mg_store *store, int cap)
{
    store->text_rank_cap = cap > 0 ? cap : 0;
}

mg_status archival_search(mg_store *store, int64_t agent_id, const char *embedder,
                          const mg_search *search, json_t **out, mg_error *err)
{
    return archival_search_mode(store, agent_id, embedder, search, ARCHIVAL_HYBRID, out, err);
}

static mg_status run_search(mg_store *store, int64_t agent_id, const char *embedder,
                            const mg_search *search, archival_mode mode, json_t **out,
                            mg_error *err);

mg_status archival_search_mode(mg_store *store, int64_t agent_id, const char *embedder,
                               const mg_search *s, archival_mode mode, json_t **out, mg_error *err)
{
    *out = NULL;
    int own;
    mg_status st = store_read_begin(store, &own, err);
    if (!st) st = run_search(store, agent_id, embedder, s, mode, out, err);
    store_read_end(store, own);
    return st;
}

static mg_status run_search(mg_store *store, int64_t agent_id, const char *embedder,
                            const mg_search *search, archival_mode mode, json_t **out,
                            mg_error *err)
{
    if (mg_text_blank(search->query))
        return mg_err_set(err, MG_ERR_USAGE, "the query is empty; say what to look for");
    if (search->ntags < 0 || search->ntags > MG_SEARCH_MAX_TAGS || (search->ntags && !search->tags))
        return mg_err_set(err, MG_ERR_USAGE, "a search takes 0 to %d tags", MG_SEARCH_MAX_TAGS);
    for (int i = 0; i < search->ntags; i++)
        if (!search->tags[i] || !*search->tags[i])
            return mg_err_set(err, MG_ERR_USAGE, "tag %d of the search is empty", i + 1);
    int limit = search->limit > 0 ? search->limit : 10;
    int page = search->page > 0 ? search->page : 0;

    /* Dates select by time; the rest of the query is searched for. A query
     * that is only a date is still searched for as words too. */
    mg_search s = *search;
    char *words = mg_xstrdup(search->query);
    period dates[MAX_QUERY_DATES];
    int ndates = mode == ARCHIVAL_HYBRID ? query_dates(search->query, words, dates) : 0;
    if (ndates && !mg_text_blank(words)) s.query = words;

    /* Large memories go through the index (see the top of the file). */
    cand_list all = {0};
    int64_t count = 0;
    int via_index = 0;
    mg_status st = mode == ARCHIVAL_TEXT ? MG_OK : archival_count(store, agent_id, &count, err);
    if (!st && mode != ARCHIVAL_TEXT) {
        float *query = NULL;
        int dim = 0;
        mg_status embedded = st = embed_query(store, embedder, s.query, &query, &dim, err);
        if (!st && count >= archival_index_min(store)) {
            int fallback = 0;
            int64_t want = VECTOR_CANDIDATES + ((int64_t)page + 1) * limit;
            st = index_search(store, agent_id, embedder, &s, mode, query, dim,
                              want < MG_INDEX_MAX_K ? (int)want : MG_INDEX_MAX_K, dates, ndates,
                              &all, &fallback, err);
            via_index = !fallback;
            if (fallback) all.count = 0;
        }
        if (!st && !via_index)
            st = scan_passages(store, agent_id, embedder, &s, query, dim, &all, err);
        if (embedded == MG_OK) free(query);
    }
    if (!st && mode != ARCHIVAL_VECTOR && !via_index)
        st = text_matches(store, agent_id, &s, mode, text_rank_cap(store), &all, 0, err);
    if (!st && mode == ARCHIVAL_HYBRID && !via_index) {
        score_own(&all, mode, dates, ndates);
        st = add_feedback(store, agent_id, &s, NULL, &all, err);
    }
    free(words);
    if (st) {
        free(all.items);
        return st;
    }
    score_own(&all, mode, dates, ndates);
    if (mode == ARCHIVAL_HYBRID) {
        if (asks_when(search->query)) st = mark_times(store, &all, err);
        if (!st) st = mark_questions(store, &all, err);
        if (st) {
            free(all.items);
            return st;
        }
        score_neighbours(&all);
    } else {
        for (int i = 0; i < all.count; i++)
            all.items[i].score = all.items[i].own;
    }

    /* The hits: passages with any relevance, their own or a neighbour's. */
    int hits = 0;
    for (int i = 0; i < all.count; i++)
        if (all.items[i].score > 0) all.items[hits++] = all.items[i];
    if (hits > 1) qsort(all.items, (size_t)hits, sizeof *all.items, by_score);
    json_t *results = json_array();
    int64_t first = (int64_t)page * limit;
    if (first < hits) {
        int n = hits - (int)first < limit ? hits - (int)first : limit;
        st = page_rows(store, all.items + first, n, results, err);
    }
    int64_t oldest_ms = 0;
    if (!st && all.text_ranked)
        st = store_query_int(store, "SELECT created_at FROM passages WHERE id = ?", all.text_oldest,
                             0, &oldest_ms, err);
    if (!st) {
        *out = json_pack("{s:i, s:i, s:i, s:o}", "total", hits, "page", page, "pages",
                         (hits + limit - 1) / limit, "results", results);
        if (all.text_ranked) {
            char when[32];
            mg_time_iso(oldest_ms, when, sizeof when);
            json_object_set_new(*out, "text_ranked", json_integer(all.text_ranked));
            json_object_set_new(*out, "text_ranked_from", json_string(when));
        }
    } else {
        json_decref(results);
    }
    free(all.items);
    return st;
}
