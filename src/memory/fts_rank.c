/*
 * fts_rank.c - bounded BM25 rankings over an FTS5 table, for recall
 * (messages_fts) and archival memory (passages_fts).
 *
 * Search cost is per match: BM25 reads each match's length (a b-tree
 * lookup in %_docsize), and FTS5's bm25() also counts every match of every
 * word for its IDF, once per query. A word in 5% of a million rows made a
 * search take a third of a second. So a search ranks at most `cap`
 * matches, the newest (FTS5 walks a posting list backwards by rowid, one
 * cheap step a match), and this module decides which words to search for
 * and how common each is:
 *  - fts_query turns free text into a safe MATCH expression;
 *  - fts_plan_build counts each word's matches only as far as needed
 *    (count_terms: exact for the rare words, estimated for the common
 *    ones) and, when the search covers the whole table, keeps the rarest
 *    words while their matches fit in one ranking, so a rare word's old
 *    matches are never crowded out by a common word's new ones;
 *  - FTS_RANK_FUNCTION is FTS5's BM25 formula with those counts passed in.
 *
 * Search safety: neither users nor models write FTS5 syntax, and FTS5 treats
 * quotes, parentheses, '*', ':' and words like NEAR or OR as operators. So a
 * query is never passed through: fts_query keeps only word characters and
 * quotes each word, which makes every input a valid expression.
 */
#include "memory/fts_rank.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

static int is_stop_word(const char *w, size_t n)
{
    static const char *const words[] = {
        "a",    "an",   "and",   "are",   "as",   "at",   "be",   "but",  "by",  "did", "do",
        "does", "for",  "from",  "had",   "has",  "have", "he",   "her",  "his", "how", "i",
        "in",   "is",   "it",    "its",   "me",   "my",   "of",   "on",   "or",  "our", "she",
        "so",   "that", "the",   "their", "them", "they", "this", "to",   "was", "we",  "were",
        "what", "when", "where", "which", "who",  "why",  "will", "with", "you", "your"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == n && strncasecmp(words[i], w, n) == 0) return 1;
    return 0;
}

static int is_word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

char *fts_query(const char *text)
{
    buf all = BUF_INIT, content = BUF_INIT;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    int words = 0, content_words = 0;
    while (*p) {
        if (!is_word_byte(*p)) {
            p++;
            continue;
        }
        const unsigned char *start = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t n = (size_t)(p - start);
        buf_printf(&all, "%s\"%.*s\"", words++ ? " OR " : "", (int)n, (const char *)start);
        if (!is_stop_word((const char *)start, n))
            buf_printf(&content, "%s\"%.*s\"", content_words++ ? " OR " : "", (int)n,
                       (const char *)start);
    }
    if (!words) {
        buf_free(&all);
        buf_free(&content);
        return NULL;
    }
    if (content_words) {
        buf_free(&all);
        return buf_take(&content);
    }
    buf_free(&content);
    return buf_take(&all);
}

/* The smallest and largest row id of the content table (all agents: the
 * FTS index and its statistics are shared). Two index seeks. */
typedef struct id_span {
    int64_t min, max;
} id_span;

static mg_status content_id_span(mg_store *store, const fts_table *t, id_span *span, mg_error *err)
{
    buf sql = BUF_INIT;
    buf_printf(&sql, "SELECT (SELECT min(id) FROM %s), (SELECT max(id) FROM %s)", t->content,
               t->content);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        st = store_fail(store, err, t->doing);
    } else {
        span->min = sqlite3_column_int64(stmt, 0);
        span->max = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* Matches of a word of which `seen` were walked, newest first, the last
 * at row id `last`: taken to be as frequent over the whole span as in its
 * newest stretch. */
static double estimate_matches(int64_t seen, int64_t last, id_span span)
{
    double whole = (double)(span.max - span.min) + 1, newest = (double)(span.max - last) + 1;
    return newest > 0 && whole > newest ? (double)seen * (whole / newest) : (double)seen;
}

typedef struct term {
    const char *text; /* into the words string */
    int len, keep;
    double df;          /* rows it matches: exact, or estimated if common */
    sqlite3_stmt *walk; /* its matches, newest first */
    int64_t seen, last; /* matches walked so far, the rowid of the last */
} term;

/* Rarer first; ties in query order. */
static int term_cmp_df(const void *a, const void *b)
{
    const term *x = *(term *const *)a, *y = *(term *const *)b;
    if (x->df != y->df) return x->df < y->df ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Counts the matches of each term (one quoted word, with the column filter
 * if any) for fts_plan_build and for the IDF of rank_bm25. FTS5's own bm25()
 * counts every match of every word, once per query, which at a million
 * messages is tens of milliseconds for a common word; here the counting
 * stops as soon as the outcome is known. The terms' posting lists are walked
 * newest first, one step of each in turn. A term whose list ends is rare,
 * and its count exact (so for rare words BM25 is exactly FTS5's). The walk
 * stops when the terms that ended plus the `seen` matches that each of the
 * others has at least would no longer fit in one ranking: those are common
 * and dropped by fts_plan_build, unless no term is rare, in which case each
 * was walked cap + 1 steps and its count is estimated from how
 * far back its last step lies in the id span (taking a word to be as
 * frequent in the whole history as in its newest stretch). Only the
 * scope's id range is counted. */
static mg_status count_terms(mg_store *store, const fts_table *table, const char *filter,
                             term *terms, int nterms, int cap, fts_scope scope, mg_error *err)
{
    mg_status st = MG_OK;
    buf walk = BUF_INIT;
    buf_printf(&walk,
               "SELECT rowid FROM %s WHERE %s MATCH ?1 AND rowid BETWEEN ?2 AND ?3 ORDER BY "
               "rowid DESC",
               table->fts, table->fts);
    for (int i = 0; i < nterms && !st; i++) {
        st = store_prepare(store, buf_str(&walk), &terms[i].walk, err);
        if (!st) {
            buf expr = BUF_INIT;
            buf_printf(&expr, "%s%.*s", filter, terms[i].len, terms[i].text);
            sqlite3_bind_text(terms[i].walk, 1, buf_str(&expr), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(terms[i].walk, 2, scope.lo);
            sqlite3_bind_int64(terms[i].walk, 3, scope.hi);
            buf_free(&expr);
        }
    }
    buf_free(&walk);
    double ended = 0;
    int active = st ? 0 : nterms;
    for (int64_t seen = 0; active > 0 && ended + (double)seen <= cap && !st; seen++) {
        for (int i = 0; i < nterms && !st; i++) {
            term *t = &terms[i];
            if (!t->walk) continue;
            int rc = sqlite3_step(t->walk);
            if (rc == SQLITE_ROW) {
                t->seen++;
                t->last = sqlite3_column_int64(t->walk, 0);
                continue;
            }
            if (rc != SQLITE_DONE) st = store_fail(store, err, table->doing);
            t->df = (double)t->seen;
            ended += t->df;
            sqlite3_finalize(t->walk);
            t->walk = NULL;
            active--;
        }
    }
    id_span span = {1, 0};
    for (int i = 0; i < nterms; i++) {
        term *t = &terms[i];
        if (!t->walk) continue;
        sqlite3_finalize(t->walk);
        t->walk = NULL;
        t->df = (double)t->seen;
        if (st || t->seen == 0) continue;
        if (span.max < span.min) {
            st = content_id_span(store, table, &span, err);
            if (span.min < scope.lo) span.min = scope.lo;
            if (span.max > scope.hi) span.max = scope.hi;
        }
        if (!st) t->df = estimate_matches(t->seen, t->last, span);
    }
    return st;
}

/* fts_counter in fts_rank.h. One statement counts the newest `cap` matches
 * and gives the oldest of them; FTS5 walks the posting list backwards and
 * stops there, however common the word. */
mg_status fts_counter_open(fts_counter *c, mg_store *store, const fts_table *table, int cap,
                           mg_error *err)
{
    *c = (fts_counter){.store = store, .table = table, .cap = cap, .span_min = 1, .span_max = 0};
    buf sql = BUF_INIT;
    buf_printf(&sql,
               "SELECT count(*), min(rowid) FROM (SELECT rowid FROM %s WHERE %s MATCH ?1 ORDER BY "
               "rowid DESC LIMIT ?2)",
               table->fts, table->fts);
    mg_status st = store_prepare(store, buf_str(&sql), &c->walk, err);
    buf_free(&sql);
    if (!st) sqlite3_bind_int(c->walk, 2, cap);
    return st;
}

mg_status fts_counter_count(fts_counter *c, const char *expr, size_t len, double *df, mg_error *err)
{
    sqlite3_bind_text(c->walk, 1, expr, (int)len, SQLITE_TRANSIENT);
    int64_t seen = -1, last = 0;
    if (sqlite3_step(c->walk) == SQLITE_ROW) {
        seen = sqlite3_column_int64(c->walk, 0);
        last = sqlite3_column_int64(c->walk, 1);
    }
    sqlite3_reset(c->walk);
    *df = (double)seen;
    if (seen < c->cap) return MG_OK;
    mg_status st = MG_OK;
    if (c->span_max < c->span_min) {
        id_span span = {1, 0};
        st = content_id_span(c->store, c->table, &span, err);
        c->span_min = span.min;
        c->span_max = span.max;
    }
    if (!st) *df = estimate_matches(seen, last, (id_span){c->span_min, c->span_max});
    return st;
}

void fts_counter_close(fts_counter *c)
{
    sqlite3_finalize(c->walk);
    c->walk = NULL;
}

/* fts_plan_build in fts_rank.h. The rarest words are kept as long as their
 * matches together fit in one ranking (`cap`), and the more common ones
 * dropped: they add little to BM25, and if kept, their newer matches would
 * crowd the rare words' older ones out of the newest `cap`. When even the
 * rarest word has more matches than that, every word is kept. Words that
 * match nothing are left out (unless no word matches).
 *
 * The counts cover the scope's id range, so they say nothing about a
 * narrowed search (another agent's rows, tags): there a word common
 * elsewhere may be the only one that matches in scope. So a narrowed
 * search drops no word that matches anything. */
mg_status fts_plan_build(mg_store *store, const fts_table *table, const char *filter,
                         const char *words, int cap, fts_scope scope, fts_plan *plan, mg_error *err)
{
    memset(plan, 0, sizeof *plan);
    if (!filter) filter = "";
    int most = 1;
    for (const char *p = words; (p = strstr(p, " OR ")); p += 4)
        most++;
    term *terms = mg_xcalloc((size_t)most, sizeof *terms);
    int nterms = 0;
    /* Terms are quoted runs of word bytes, so " OR " only separates them. */
    for (const char *p = words; *p && nterms < most;) {
        const char *end = strstr(p, " OR ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        terms[nterms++] = (term){.text = p, .len = (int)n};
        p += n + (end ? 4 : 0);
    }
    mg_status st = count_terms(store, table, filter, terms, nterms, cap, scope, err);
    if (st) {
        free(terms);
        return st;
    }
    /* Keep the rarest (ties: the first in the query) while they fit. */
    term **sorted = mg_xcalloc((size_t)nterms, sizeof *sorted);
    for (int i = 0; i < nterms; i++)
        sorted[i] = &terms[i];
    qsort(sorted, (size_t)nterms, sizeof *sorted, term_cmp_df);
    int zero = 0; /* words that match nothing (a typo) decide nothing */
    while (zero < nterms && sorted[zero]->df == 0)
        zero++;
    double sum = 0;
    int nkeep = scope.narrowed ? nterms : zero;
    while (nkeep < nterms && sum + sorted[nkeep]->df <= cap)
        sum += sorted[nkeep++]->df;
    for (int i = 0; i < nterms; i++)
        sorted[i]->keep = zero == nterms || (i >= zero && (nkeep == zero || i < nkeep));
    free(sorted);
    double *df = mg_xcalloc((size_t)nterms + 2, sizeof *df); /* + fts_plan_bind's two */
    buf b = BUF_INIT;
    buf_printf(&b, "%s(", filter);
    int kept = 0;
    for (int i = 0; i < nterms; i++) {
        if (!terms[i].keep) continue;
        buf_printf(&b, "%s%.*s", kept ? " OR " : "", terms[i].len, terms[i].text);
        df[kept++] = terms[i].df;
    }
    buf_putc(&b, ')');
    free(terms);
    plan->match = buf_take(&b);
    plan->df = df;
    plan->nkept = kept;
    return MG_OK;
}

void fts_plan_free(fts_plan *plan)
{
    free(plan->match);
    free(plan->df);
    memset(plan, 0, sizeof *plan);
}

/* ------------------------------------------------------------- ranking */

typedef struct rank_data {
    int nphrase;
    double avgdl;
    double coverage;
    double *idf, *freq;
} rank_data;

/* Rows whose lengths are averaged, per phrase, for a local collection's
 * typical length (rank_bm25). On LoCoMo with 100,000 made-up passages, 25,
 * 100, 200 and 2,000 gave the same recall within 0.003; each costs a
 * length lookup, ~1 us. */
#define LENGTH_SAMPLE 200

typedef struct length_sample {
    double tokens;
    long rows, stop;
} length_sample;

static int add_length(const Fts5ExtensionApi *api, Fts5Context *fts, void *user)
{
    length_sample *ls = user;
    int ntok = 0;
    if (api->xColumnSize(fts, -1, &ntok) == SQLITE_OK) {
        ls->tokens += ntok;
        ls->rows++;
    }
    return ls->rows >= ls->stop ? SQLITE_DONE : SQLITE_OK;
}

/* The mean length of the first LENGTH_SAMPLE rows each phrase matches; 0
 * if none could be read. */
static double matched_length(const Fts5ExtensionApi *api, Fts5Context *fts, int nphrase)
{
    length_sample ls = {0, 0, 0};
    for (int i = 0; i < nphrase; i++) {
        ls.stop = ls.rows + LENGTH_SAMPLE;
        if (api->xQueryPhrase(fts, i, &ls, add_length) != SQLITE_OK) return 0;
    }
    return ls.rows > 0 ? ls.tokens / (double)ls.rows : 0;
}

/* Okapi BM25 as FTS5's bm25() computes it (k1 = 1.2, b = 0.75, every column
 * weighing 1, the row's length in all columns, IDF floored at 1e-6), with
 * the IDF from the match counts passed as its argument (a blob of one
 * double per phrase, then the collection's size and the coverage factor)
 * instead of from counting every match of every phrase per query. Lower is
 * better, as with bm25(). A coverage c in (0, 1] multiplies a row's score
 * by 1 - c + c x the share of the phrases' IDF that the row contains
 * (archival.c says why); anything else counts as 0.
 * When the caller names a collection smaller than the table (archival's
 * local collection, see archival.c), a row's length is also measured
 * against that collection: the mean length of a sample of the rows the
 * query's words match, not of every row. Passages that share no word with
 * the query do not change how its matches rank among themselves; many short
 * ones had made every long match look padded (LoCoMo with 100,000 made-up
 * passages: BM25 recall@10 0.595, 0.618 with this, 0.621 without them). */
static void rank_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                      sqlite3_value **val)
{
    const double k1 = 1.2, b = 0.75;
    rank_data *d = api->xGetAuxdata(fts, 0);
    if (!d) {
        int nphrase = api->xPhraseCount(fts);
        if (nval != 1 || nphrase < 1 ||
            sqlite3_value_bytes(val[0]) != (nphrase + 2) * (int)sizeof(double)) {
            sqlite3_result_error(ctx,
                                 FTS_RANK_FUNCTION ": one match count per phrase expected, then "
                                                   "the collection's size and the coverage",
                                 -1);
            return;
        }
        sqlite3_int64 rows = 0, tokens = 0;
        int rc = api->xRowCount(fts, &rows);
        const unsigned char *blob = sqlite3_value_blob(val[0]);
        double collection, coverage;
        memcpy(&collection, blob + (size_t)nphrase * sizeof collection, sizeof collection);
        memcpy(&coverage, blob + (size_t)(nphrase + 1) * sizeof coverage, sizeof coverage);
        if (!(collection > 0 && collection < (double)rows)) collection = (double)rows;
        if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fts, -1, &tokens);
        d = rc == SQLITE_OK ? sqlite3_malloc64(sizeof *d + 2 * (size_t)nphrase * sizeof(double))
                            : NULL;
        if (!d) {
            sqlite3_result_error_code(ctx, rc == SQLITE_OK ? SQLITE_NOMEM : rc);
            return;
        }
        d->nphrase = nphrase;
        d->coverage = coverage > 0 && coverage <= 1 ? coverage : 0;
        d->avgdl = rows > 0 ? (double)tokens / (double)rows : 1;
        if (collection < (double)rows) {
            double local = matched_length(api, fts, nphrase);
            if (local > 0) d->avgdl = local;
        }
        d->idf = (double *)(d + 1);
        d->freq = d->idf + nphrase;
        for (int i = 0; i < nphrase; i++) {
            double hits;
            memcpy(&hits, blob + (size_t)i * sizeof hits, sizeof hits);
            double idf = log((collection - hits + 0.5) / (hits + 0.5));
            d->idf[i] = idf > 0 ? idf : 1e-6;
        }
        rc = api->xSetAuxdata(fts, d, sqlite3_free);
        if (rc != SQLITE_OK) {
            sqlite3_result_error_code(ctx, rc);
            return;
        }
    }
    memset(d->freq, 0, (size_t)d->nphrase * sizeof *d->freq);
    int ninst = 0, ntok = 0;
    int rc = api->xInstCount(fts, &ninst);
    for (int i = 0; rc == SQLITE_OK && i < ninst; i++) {
        int phrase, col, off;
        rc = api->xInst(fts, i, &phrase, &col, &off);
        if (rc == SQLITE_OK && phrase >= 0 && phrase < d->nphrase) d->freq[phrase] += 1;
    }
    if (rc == SQLITE_OK) rc = api->xColumnSize(fts, -1, &ntok);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double score = 0, held = 0, all = 0;
    for (int i = 0; i < d->nphrase; i++) {
        score +=
            d->idf[i] * (d->freq[i] * (k1 + 1)) / (d->freq[i] + k1 * (1 - b + b * ntok / d->avgdl));
        all += d->idf[i];
        if (d->freq[i] > 0) held += d->idf[i];
    }
    score *= 1 - d->coverage + d->coverage * held / all;
    sqlite3_result_double(ctx, -score);
}

double fts_idf(double rows, double df)
{
    if (df > rows) df = rows;
    return log(1.0 + (rows - df + 0.5) / (df + 0.5));
}

void fts_plan_bind(fts_plan *plan, sqlite3_stmt *stmt, int param)
{
    plan->df[plan->nkept] = plan->collection; /* fts_plan_build left the slots */
    plan->df[plan->nkept + 1] = plan->coverage;
    sqlite3_bind_blob(stmt, param, plan->df, (plan->nkept + 2) * (int)sizeof *plan->df,
                      SQLITE_STATIC);
}

/* FTS_FIRST_FUNCTION (fts_rank.h). */
static void first_word(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                       int nval, sqlite3_value **val)
{
    int ninst = 0, first = 0;
    int rc = api->xInstCount(fts, &ninst);
    for (int i = 0; rc == SQLITE_OK && i < ninst && !first; i++) {
        int phrase, col, off;
        rc = api->xInst(fts, i, &phrase, &col, &off);
        first = rc == SQLITE_OK && off == 0;
    }
    if (rc != SQLITE_OK)
        sqlite3_result_error_code(ctx, rc);
    else
        sqlite3_result_int(ctx, first);
}

/* FTS5 declares an auxiliary function to SQL by name, which a prepare
 * then finds: that tells whether it is registered yet. */
mg_status fts_rank_ensure(mg_store *store, mg_error *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(store->db, "SELECT " FTS_RANK_FUNCTION "()", -1, &stmt, NULL);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK) return MG_OK;
    fts5_api *api = NULL;
    rc = sqlite3_prepare_v2(store->db, "SELECT fts5(?1)", -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_pointer(stmt, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(stmt);
    }
    sqlite3_finalize(stmt);
    if (!api || api->iVersion < 2 ||
        api->xCreateFunction(api, FTS_FIRST_FUNCTION, NULL, first_word, NULL) != SQLITE_OK ||
        api->xCreateFunction(api, FTS_RANK_FUNCTION, NULL, rank_bm25, NULL) != SQLITE_OK)
        return mg_err_set(err, MG_ERR_DB, "cannot register the FTS5 functions %s and %s",
                          FTS_RANK_FUNCTION, FTS_FIRST_FUNCTION);
    return MG_OK;
}

static int hit_cmp(const void *a, const void *b)
{
    const fts_hit *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

void fts_hits_sort(fts_hit *hits, int n)
{
    if (n > 1) qsort(hits, (size_t)n, sizeof *hits, hit_cmp);
}
