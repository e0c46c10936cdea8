/*
 * recall.c - storing, loading and searching the message history.
 *
 * Query plans: the FTS table must drive the join (CROSS JOIN fixes the
 * order). Left to itself SQLite may walk the agent's messages by index and
 * probe FTS once per row, which is linear in the history.
 *
 * Search cost is per match: BM25 reads each match's length (a b-tree
 * lookup in %_docsize) and a dated or shared-store search joins each to its
 * message, ~2 us a match on the VM of bench/README.md; FTS5's bm25() also
 * counts every match of every word for its IDF. A word said in 5% of a
 * million messages made a search take a third of a second. So the work is
 * bounded, and the result says where the bound fell:
 *  - a search ranks only the newest RECALL_RANK_CAP matches (FTS5 walks a
 *    posting list backwards by rowid at ~0.2 us a step, and rowid ranges
 *    are pushed into it). When more match, the result has older_matches and
 *    ranked_from, and the function result and the CLI say how to reach the
 *    older ones: rarer words, or a date range (its newest matches are
 *    ranked the same way). Pages come from one ranked set, so they are
 *    stable while no message is added.
 *  - BM25 is computed by rank_bm25 (FTS5's formula) from word counts that
 *    count_terms walks only as far as needed: exact for the rare words,
 *    estimated for the common ones.
 *  - the rarest words are kept while their matches fit in one ranking, the
 *    common ones dropped, so a rare word's old matches are never crowded out
 *    by a common word's new ones;
 *  - the default search filters on the said column inside FTS5; an agent
 *    that owns every message is searched without the join; a dated search
 *    walks only the id range its dates cover (id_bounds).
 * RECALL_RANK_CAP = 200: at 1M messages the walk, count and ranking of a
 * search of common words cost ~0.5 ms fixed plus ~2 us per ranked match
 * (CPU, pages in the OS cache, not SQLite's); with 200 the slowest 5% of
 * bench_recall's searches take under 4 ms of CPU in every way, which leaves
 * room for a shared 2-vCPU machine's scheduling within the 5 ms target. At
 * 300 the dated p95 was 4.1-4.6 ms of CPU. Measured in bench/README.md
 * (recall at a million messages).
 *
 * Inserts write the FTS row themselves instead of through a trigger, and
 * open no savepoint inside a caller's transaction: FTS5 flushes its pending
 * terms at every savepoint (migration 5).
 *
 * Search safety: neither users nor models write FTS5 syntax, and FTS5 treats
 * quotes, parentheses, '*', ':' and words like NEAR or OR as operators. So a
 * query is never passed through: recall_fts_query keeps only word characters
 * and quotes each word, which makes every input a valid expression.
 */
#include "memory/recall.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

static const char *const message_columns =
    "id, role, kind, content, tool_calls, tool_call_id, tool_name, created_at, raw_content";

static void read_message(sqlite3_stmt *stmt, mg_msg *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(stmt, 0);
    mg_role_parse((const char *)sqlite3_column_text(stmt, 1), &m->role);
    m->kind = store_column_strdup(stmt, 2);
    m->content = store_column_strdup(stmt, 3);
    const char *calls = (const char *)sqlite3_column_text(stmt, 4);
    if (calls) mg_tool_calls_from_json(calls, &m->calls, &m->ncalls);
    m->tool_call_id = store_column_strdup(stmt, 5);
    m->tool_name = store_column_strdup(stmt, 6);
    m->time_ms = sqlite3_column_int64(stmt, 7);
    m->raw_content = store_column_strdup(stmt, 8);
}

/* The "message" (or "reason") string of a JSON envelope, else the raw text. */
static void append_envelope_text(buf *out, const char *content)
{
    json_t *obj = json_loads(content, 0, NULL);
    const char *text = NULL;
    if (json_is_object(obj)) {
        text = json_string_value(json_object_get(obj, "message"));
        if (!text) text = json_string_value(json_object_get(obj, "reason"));
    }
    buf_puts(out, text ? text : content);
    json_decref(obj);
}

/* Appends `text` on a new line unless the buffer is empty. */
static void append_line(buf *out, const char *text)
{
    if (out->len) buf_putc(out, '\n');
    buf_puts(out, text);
}

void recall_index_text(const mg_msg *m, char **said, char **inner)
{
    buf s = BUF_INIT, in = BUF_INIT;
    if (m->role == MG_ROLE_ASSISTANT && m->ncalls == 0) {
        /* No call at all: the text was the reply (see apply_reply in loop.c). */
        if (m->content) buf_puts(&s, m->content);
    } else if (m->role == MG_ROLE_ASSISTANT) {
        if (m->content) buf_puts(&in, m->content);
        for (int i = 0; i < m->ncalls; i++) {
            const mg_tool_call *call = &m->calls[i];
            if (strcmp(call->name, "send_message") != 0) {
                if (in.len) buf_putc(&in, '\n');
                buf_printf(&in, "%s(%s)", call->name, call->arguments ? call->arguments : "");
                continue;
            }
            json_t *args = json_loads(call->arguments ? call->arguments : "", 0, NULL);
            const char *msg = json_string_value(json_object_get(args, "message"));
            if (msg) append_line(&s, msg);
            json_decref(args);
        }
    } else if (m->role == MG_ROLE_TOOL) {
        if (m->tool_name && *m->tool_name) buf_printf(&in, "%s: ", m->tool_name);
        if (m->content) append_envelope_text(&in, m->content);
    } else if (m->content) {
        append_envelope_text(m->kind && strcmp(m->kind, "user_message") == 0 ? &s : &in,
                             m->content);
    }
    *said = buf_take(&s);
    *inner = buf_take(&in);
}

char *recall_search_text(const mg_msg *m)
{
    char *said, *inner;
    recall_index_text(m, &said, &inner);
    buf out = BUF_INIT;
    buf_puts(&out, inner);
    if (*said) append_line(&out, said);
    free(said);
    free(inner);
    return buf_take(&out);
}

/* Inserts go through statements, not triggers: see migration 5. */
typedef struct inserter {
    sqlite3_stmt *row, *fts;
} inserter;

static mg_status inserter_open(mg_store *store, inserter *ins, mg_error *err)
{
    ins->row = ins->fts = NULL;
    mg_status st = store_prepare(
        store,
        "INSERT INTO messages(agent_id, role, kind, content, tool_calls, tool_call_id, tool_name, "
        "search_text, inner_text, created_at, raw_content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?)",
        &ins->row, err);
    if (!st)
        st = store_prepare(
            store, "INSERT INTO messages_fts(rowid, search_text, inner_text) VALUES (?, ?, ?)",
            &ins->fts, err);
    return st;
}

static void inserter_close(inserter *ins)
{
    sqlite3_finalize(ins->row);
    sqlite3_finalize(ins->fts);
}

/* Stores `m` and its FTS row, and sets m->id. */
static mg_status insert_one(mg_store *store, inserter *ins, int64_t agent_id, mg_msg *m,
                            mg_error *err)
{
    char *calls = m->ncalls ? mg_tool_calls_to_json(m->calls, m->ncalls) : NULL;
    char *said, *inner;
    recall_index_text(m, &said, &inner);
    sqlite3_stmt *stmt = ins->row;
    sqlite3_bind_int64(stmt, 1, agent_id);
    store_bind_text(stmt, 2, mg_role_name(m->role));
    store_bind_text(stmt, 3, m->kind);
    store_bind_text(stmt, 4, m->content);
    store_bind_text(stmt, 5, calls);
    store_bind_text(stmt, 6, m->tool_call_id);
    store_bind_text(stmt, 7, m->tool_name);
    store_bind_text(stmt, 8, said);
    store_bind_text(stmt, 9, inner);
    sqlite3_bind_int64(stmt, 10, m->time_ms);
    store_bind_text(stmt, 11, m->raw_content);
    mg_status st = store_step_done(store, stmt, err);
    if (!st) {
        m->id = sqlite3_last_insert_rowid(store->db);
        sqlite3_bind_int64(ins->fts, 1, m->id);
        store_bind_text(ins->fts, 2, said);
        store_bind_text(ins->fts, 3, inner);
        st = store_step_done(store, ins->fts, err);
    }
    free(calls);
    free(said);
    free(inner);
    return st;
}

mg_status recall_insert_many(mg_store *store, int64_t agent_id, mg_msg *msgs, int n, mg_error *err)
{
    inserter ins;
    /* Inside the caller's transaction, no savepoint of our own: FTS5
     * flushes its pending terms at every savepoint (see migration 5), and
     * the caller rolls back the whole transaction on failure anyway. */
    int own = store->tx_depth == 0;
    mg_status st = own ? store_begin(store, err) : MG_OK;
    if (st) return st;
    st = inserter_open(store, &ins, err);
    for (int i = 0; i < n && !st; i++)
        st = insert_one(store, &ins, agent_id, &msgs[i], err);
    inserter_close(&ins);
    if (!st) {
        sqlite3_stmt *count;
        st = store_prepare(
            store, "UPDATE agents SET message_count = message_count + ? WHERE id = ?", &count, err);
        if (!st) {
            sqlite3_bind_int(count, 1, n);
            sqlite3_bind_int64(count, 2, agent_id);
            st = store_step_done(store, count, err);
            sqlite3_finalize(count);
        }
    }
    if (st) {
        if (own) store_rollback(store);
        for (int i = 0; i < n; i++)
            msgs[i].id = 0;
        return st;
    }
    return own ? store_commit(store, err) : MG_OK;
}

mg_status recall_insert(mg_store *store, int64_t agent_id, mg_msg *m, mg_error *err)
{
    return recall_insert_many(store, agent_id, m, 1, err);
}

mg_status recall_update(mg_store *store, const mg_msg *m, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st =
        store_prepare(store,
                      "UPDATE messages SET content = ?, tool_calls = ?, search_text = ?, "
                      "inner_text = ? WHERE id = ?",
                      &stmt, err);
    if (st) return st;
    char *calls = m->ncalls ? mg_tool_calls_to_json(m->calls, m->ncalls) : NULL;
    char *said, *inner;
    recall_index_text(m, &said, &inner);
    store_bind_text(stmt, 1, m->content);
    store_bind_text(stmt, 2, calls);
    store_bind_text(stmt, 3, said);
    store_bind_text(stmt, 4, inner);
    sqlite3_bind_int64(stmt, 5, m->id);
    st = store_step_done(store, stmt, err);
    sqlite3_finalize(stmt);
    free(calls);
    free(said);
    free(inner);
    return st;
}

mg_status recall_load_context(mg_store *store, int64_t agent_id, mg_msg_list *out, mg_error *err)
{
    buf sql = BUF_INIT;
    buf_printf(&sql, "SELECT %s FROM messages WHERE agent_id = ? AND in_context = 1 ORDER BY id",
               message_columns);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_msg m;
        read_message(stmt, &m);
        mg_msg_list_push(out, m);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return store_fail(store, err, "loading the context window");
    return MG_OK;
}

mg_status recall_evict_range(mg_store *store, int64_t agent_id, int64_t first_id, int64_t last_id,
                             mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "UPDATE messages SET in_context = 0 WHERE agent_id = ? AND id "
                                 "BETWEEN ? AND ?",
                                 &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int64(stmt, 2, first_id);
    sqlite3_bind_int64(stmt, 3, last_id);
    st = store_step_done(store, stmt, err);
    sqlite3_finalize(stmt);
    return st;
}

mg_status recall_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err)
{
    return store_query_int(store, "SELECT message_count FROM agents WHERE id = ?", agent_id, 0, out,
                           err);
}

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

char *recall_fts_query(const char *text)
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

/* Columns: id, created_at, role, kind, text, inner text (all mode) or NULL,
 * rank (with a query). */
static json_t *result_row(sqlite3_stmt *stmt, int with_score)
{
    char when[32];
    mg_time_iso(sqlite3_column_int64(stmt, 1), when, sizeof when);
    json_t *row =
        json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)sqlite3_column_int64(stmt, 0),
                  "time", when, "role", (const char *)sqlite3_column_text(stmt, 2), "kind",
                  (const char *)sqlite3_column_text(stmt, 3), "text",
                  (const char *)sqlite3_column_text(stmt, 4));
    const char *inner = (const char *)sqlite3_column_text(stmt, 5);
    if (inner && *inner) json_object_set_new(row, "inner", json_string(inner));
    if (with_score) json_object_set_new(row, "score", json_real(-sqlite3_column_double(stmt, 6)));
    return row;
}

/* The smallest and largest message id in the store (all agents: the FTS
 * index and its statistics are shared). Two index seeks. */
typedef struct id_span {
    int64_t min, max;
} id_span;

static mg_status store_id_span(mg_store *store, id_span *span, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "SELECT (SELECT min(id) FROM messages), "
                                 "(SELECT max(id) FROM messages)",
                                 &stmt, err);
    if (st) return st;
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        st = store_fail(store, err, "searching recall memory");
    } else {
        span->min = sqlite3_column_int64(stmt, 0);
        span->max = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    return st;
}

typedef struct term {
    const char *text; /* into the words string */
    int len, keep;
    double df;          /* messages it matches: exact, or estimated if common */
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
 * if any) for build_match and for the IDF of rank_bm25. FTS5's own bm25()
 * counts every match of every word, once per query, which at a million
 * messages is tens of milliseconds for a common word; here the counting
 * stops as soon as the outcome is known. The terms' posting lists are walked
 * newest first, one step of each in turn. A term whose list ends is rare,
 * and its count exact (so for rare words BM25 is exactly FTS5's). The walk
 * stops when the terms that ended plus the `seen` matches that each of the
 * others has at least would no longer fit in one ranking: those are common
 * and dropped by build_match, unless no term is rare, in which case each
 * was walked RECALL_RANK_CAP + 1 steps and its count is estimated from how
 * far back its last step lies in the id span (taking a word to be as
 * frequent in the whole history as in its newest stretch). */
static mg_status count_terms(mg_store *store, const char *filter, term *terms, int nterms,
                             mg_error *err)
{
    mg_status st = MG_OK;
    for (int i = 0; i < nterms && !st; i++) {
        st = store_prepare(store,
                           "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 "
                           "ORDER BY rowid DESC",
                           &terms[i].walk, err);
        if (!st) {
            buf expr = BUF_INIT;
            buf_printf(&expr, "%s%.*s", filter, terms[i].len, terms[i].text);
            sqlite3_bind_text(terms[i].walk, 1, buf_str(&expr), -1, SQLITE_TRANSIENT);
            buf_free(&expr);
        }
    }
    double ended = 0;
    int active = st ? 0 : nterms;
    for (int64_t seen = 0; active > 0 && ended + (double)seen <= RECALL_RANK_CAP && !st; seen++) {
        for (int i = 0; i < nterms && !st; i++) {
            term *t = &terms[i];
            if (!t->walk) continue;
            int rc = sqlite3_step(t->walk);
            if (rc == SQLITE_ROW) {
                t->seen++;
                t->last = sqlite3_column_int64(t->walk, 0);
                continue;
            }
            if (rc != SQLITE_DONE) st = store_fail(store, err, "searching recall memory");
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
        if (span.max < span.min) st = store_id_span(store, &span, err);
        double whole = (double)(span.max - span.min) + 1, newest = (double)(span.max - t->last) + 1;
        if (!st && newest > 0 && whole > newest) t->df = (double)t->seen * (whole / newest);
    }
    return st;
}

/* The MATCH expression for recall_fts_query's `words` ("a" OR "b" ...) and
 * the match count of each word it keeps, in order (for rank_bm25). The
 * rarest words are kept as long as their matches together fit in one
 * ranking (RECALL_RANK_CAP), and the more common ones dropped: they add
 * little to BM25, and if kept, their newer matches would crowd the rare
 * words' older ones out of the newest RECALL_RANK_CAP. When even the rarest
 * word has more matches than that, every word is kept. Words that match
 * nothing are left out (unless no word matches). The default search
 * gets the column filter, applied inside FTS5 so that rows matching only in
 * inner text are never ranked. Caller frees *out and *df_out. */
static mg_status build_match(mg_store *store, const char *words, int said_only, char **out,
                             double **df_out, int *nkept, mg_error *err)
{
    const char *filter = said_only ? "{search_text} : " : "";
    int cap = 1;
    for (const char *p = words; (p = strstr(p, " OR ")); p += 4)
        cap++;
    term *terms = mg_xcalloc((size_t)cap, sizeof *terms);
    int nterms = 0;
    /* Terms are quoted runs of word bytes, so " OR " only separates them. */
    for (const char *p = words; *p && nterms < cap;) {
        const char *end = strstr(p, " OR ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        terms[nterms++] = (term){.text = p, .len = (int)n};
        p += n + (end ? 4 : 0);
    }
    mg_status st = count_terms(store, filter, terms, nterms, err);
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
    int nkeep = zero;
    while (nkeep < nterms && sum + sorted[nkeep]->df <= RECALL_RANK_CAP)
        sum += sorted[nkeep++]->df;
    for (int i = 0; i < nterms; i++)
        sorted[i]->keep = zero == nterms || (i >= zero && (nkeep == zero || i < nkeep));
    free(sorted);
    double *df = mg_xcalloc((size_t)nterms, sizeof *df);
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
    *out = buf_take(&b);
    *df_out = df;
    *nkept = kept;
    return MG_OK;
}

/* ------------------------------------------------------------- ranking */

/* FTS5's bm25() with the word counts given instead of counted: the name
 * under which rank_bm25 is registered, once per connection. */
#define RANK_FUNCTION "mg_recall_bm25"

typedef struct rank_data {
    int nphrase;
    double avgdl;
    double *idf, *freq;
} rank_data;

/* Okapi BM25 as FTS5's bm25() computes it (k1 = 1.2, b = 0.75, every column
 * weighing 1, the row's length in all columns, IDF floored at 1e-6), with
 * the IDF from the match counts passed as its argument (a blob of one
 * double per phrase) instead of from counting every match of every phrase
 * per query. Lower is better, as with bm25(). */
static void rank_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                      sqlite3_value **val)
{
    const double k1 = 1.2, b = 0.75;
    rank_data *d = api->xGetAuxdata(fts, 0);
    if (!d) {
        int nphrase = api->xPhraseCount(fts);
        if (nval != 1 || nphrase < 1 ||
            sqlite3_value_bytes(val[0]) != nphrase * (int)sizeof(double)) {
            sqlite3_result_error(ctx, RANK_FUNCTION ": one match count per phrase expected", -1);
            return;
        }
        sqlite3_int64 rows = 0, tokens = 0;
        int rc = api->xRowCount(fts, &rows);
        if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fts, -1, &tokens);
        d = rc == SQLITE_OK ? sqlite3_malloc64(sizeof *d + 2 * (size_t)nphrase * sizeof(double))
                            : NULL;
        if (!d) {
            sqlite3_result_error_code(ctx, rc == SQLITE_OK ? SQLITE_NOMEM : rc);
            return;
        }
        d->nphrase = nphrase;
        d->avgdl = rows > 0 ? (double)tokens / (double)rows : 1;
        d->idf = (double *)(d + 1);
        d->freq = d->idf + nphrase;
        const unsigned char *blob = sqlite3_value_blob(val[0]);
        for (int i = 0; i < nphrase; i++) {
            double hits;
            memcpy(&hits, blob + (size_t)i * sizeof hits, sizeof hits);
            double idf = log(((double)rows - hits + 0.5) / (hits + 0.5));
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
    double score = 0;
    for (int i = 0; i < d->nphrase; i++)
        score +=
            d->idf[i] * (d->freq[i] * (k1 + 1)) / (d->freq[i] + k1 * (1 - b + b * ntok / d->avgdl));
    sqlite3_result_double(ctx, -score);
}

/* Registers rank_bm25 on the store's connection unless it already is
 * (FTS5 declares an auxiliary function to SQL by name, which a prepare
 * then finds). */
static mg_status ensure_rank_function(mg_store *store, mg_error *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(store->db, "SELECT " RANK_FUNCTION "()", -1, &stmt, NULL);
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
        api->xCreateFunction(api, RANK_FUNCTION, NULL, rank_bm25, NULL) != SQLITE_OK)
        return mg_err_set(err, MG_ERR_DB, "searching recall memory: cannot register %s",
                          RANK_FUNCTION);
    return MG_OK;
}

/* Most messages a date range may hold for id_bounds to read all their ids
 * (~0.2 us each from the messages_time index). */
#define EXACT_RANGE 500

/* Bounds on the ids of the agent's messages in [from, to), so that a dated
 * search walks only that stretch of the posting lists (FTS5 seeks to a
 * rowid range) instead of every match. The dates themselves are still
 * checked on every row; the bounds only decide which rows are looked at.
 * Up to EXACT_RANGE messages: their smallest and largest id, read from the
 * messages_time index, exact even when ids do not follow times. Past that,
 * reading every id would cost more than the search (a 30-day range of a
 * busy agent holds tens of thousands): the ids of the first and the last
 * message in time order, two index seeks. Those are exact when ids follow
 * times, which they do unless a message was stored with an earlier time than
 * one before it (a clock set back, an event given an old time); such a
 * message can then be missed by a search over a wide range, never returned
 * when out of it. An empty range gives lo > hi. */
static mg_status id_bounds(mg_store *store, int64_t agent_id, int64_t from, int64_t to, int64_t *lo,
                           int64_t *hi, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        store,
        "SELECT count(*), min(id), max(id), "
        "(SELECT rowid FROM messages WHERE agent_id = ?1 AND created_at >= ?2 AND created_at < "
        "?3 ORDER BY created_at, rowid LIMIT 1), "
        "(SELECT rowid FROM messages WHERE agent_id = ?1 AND created_at >= ?2 AND created_at < "
        "?3 ORDER BY created_at DESC, rowid DESC LIMIT 1) "
        "FROM (SELECT rowid AS id FROM messages WHERE agent_id = ?1 AND created_at >= ?2 AND "
        "created_at < ?3 LIMIT ?4)",
        &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int64(stmt, 2, from);
    sqlite3_bind_int64(stmt, 3, to);
    sqlite3_bind_int(stmt, 4, EXACT_RANGE + 1);
    if (sqlite3_step(stmt) != SQLITE_ROW) {
        st = store_fail(store, err, "searching recall memory");
    } else if (sqlite3_column_int64(stmt, 0) == 0) {
        *lo = 1, *hi = 0;
    } else {
        int exact = sqlite3_column_int64(stmt, 0) <= EXACT_RANGE;
        *lo = sqlite3_column_int64(stmt, exact ? 1 : 3);
        *hi = sqlite3_column_int64(stmt, exact ? 2 : 4);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* Whether every message in the store is this agent's: then a search
 * without dates needs nothing from the messages table to filter, and is
 * answered by the FTS index alone. */
static mg_status owns_all_messages(mg_store *store, int64_t agent_id, int *out, mg_error *err)
{
    int64_t others;
    mg_status st =
        store_query_int(store, "SELECT count(*) FROM agents WHERE id <> ? AND message_count > 0",
                        agent_id, 1, &others, err);
    *out = !st && others == 0;
    return st;
}

typedef struct ranked {
    int64_t id;
    double rank;
} ranked;

/* Best first; ties to the newer. */
static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

/* The result rows for ids[from, to) of `hits`, in that order: reads only
 * those messages. */
static mg_status read_hits(mg_store *store, const ranked *hits, int from, int to, int all,
                           json_t *results, mg_error *err)
{
    buf sql = BUF_INIT;
    buf_printf(&sql,
               "SELECT m.id, m.created_at, m.role, m.kind, m.search_text, %s, ?2 FROM messages m "
               "WHERE m.id = ?1",
               all ? "m.inner_text" : "NULL");
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    for (int i = from; i < to && !st; i++) {
        sqlite3_bind_int64(stmt, 1, hits[i].id);
        sqlite3_bind_double(stmt, 2, hits[i].rank);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            json_array_append_new(results, result_row(stmt, 1));
        else if (rc != SQLITE_DONE)
            st = store_fail(store, err, "searching recall memory");
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return st;
}

/* A search with words: ranks the newest RECALL_RANK_CAP matches (FTS5
 * walks a posting list backwards by rowid, so finding them costs one step
 * each) and reads the page's rows. `where` is NULL when the agent owns
 * every message and no date bounds it (FTS5 alone), else the filter on the
 * joined message row. Sets *out as recall_search describes. */
static mg_status rank_newest(mg_store *store, int64_t agent_id, const mg_search *search,
                             const char *match, const double *df, int ndf, const char *where,
                             int64_t lo, int64_t hi, int limit, int page, json_t **out,
                             mg_error *err)
{
    mg_status st = ensure_rank_function(store, err);
    if (st) return st;
    buf sql = BUF_INIT;
    if (!where)
        buf_puts(&sql, "SELECT rowid, " RANK_FUNCTION "(messages_fts, ?5) FROM messages_fts "
                       "WHERE messages_fts MATCH ?4 AND rowid BETWEEN ?6 AND ?7 "
                       "ORDER BY rowid DESC LIMIT ?8");
    else
        buf_printf(&sql,
                   "SELECT messages_fts.rowid, " RANK_FUNCTION "(messages_fts, ?5) FROM "
                   "messages_fts CROSS JOIN messages m ON m.id = messages_fts.rowid WHERE "
                   "messages_fts MATCH ?4 AND messages_fts.rowid BETWEEN ?6 AND ?7 AND %s "
                   "ORDER BY messages_fts.rowid DESC LIMIT ?8",
                   where);
    sqlite3_stmt *stmt;
    st = store_prepare(store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    if (where) {
        sqlite3_bind_int64(stmt, 1, agent_id);
        sqlite3_bind_int64(stmt, 2, search->from_ms);
        sqlite3_bind_int64(stmt, 3, search->to_ms ? search->to_ms : INT64_MAX);
    }
    store_bind_text(stmt, 4, match);
    sqlite3_bind_blob(stmt, 5, df, ndf * (int)sizeof *df, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, lo);
    sqlite3_bind_int64(stmt, 7, hi);
    sqlite3_bind_int(stmt, 8, RECALL_RANK_CAP + 1);
    ranked *hits = mg_xcalloc(RECALL_RANK_CAP + 1, sizeof *hits);
    int n = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW && n <= RECALL_RANK_CAP) {
        hits[n].id = sqlite3_column_int64(stmt, 0);
        hits[n++].rank = sqlite3_column_double(stmt, 1);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        st = store_fail(store, err, "searching recall memory");
    sqlite3_finalize(stmt);
    /* One more than the cap means older matches exist: drop that one. */
    int older = n > RECALL_RANK_CAP;
    if (older) n = RECALL_RANK_CAP;
    int64_t oldest = n ? hits[n - 1].id : 0;
    json_t *results = json_array();
    if (!st) {
        qsort(hits, (size_t)n, sizeof *hits, ranked_cmp);
        int64_t first = (int64_t)page * limit;
        if (first < n)
            st = read_hits(store, hits, (int)first, first + limit < n ? (int)(first + limit) : n,
                           search->include_all, results, err);
    }
    int64_t oldest_ms = 0;
    if (!st && older)
        st = store_query_int(store, "SELECT created_at FROM messages WHERE id = ?", oldest, 0,
                             &oldest_ms, err);
    free(hits);
    if (st) {
        json_decref(results);
        return st;
    }
    *out = json_pack("{s:i, s:i, s:I, s:o}", "total", n, "page", page, "pages",
                     (json_int_t)(((int64_t)n + limit - 1) / limit), "results", results);
    if (older) {
        char when[32];
        mg_time_iso(oldest_ms, when, sizeof when);
        json_object_set_new(*out, "older_matches", json_true());
        json_object_set_new(*out, "ranked_from", json_string(when));
    }
    return MG_OK;
}

mg_status recall_search(mg_store *store, int64_t agent_id, const mg_search *search, json_t **out,
                        mg_error *err)
{
    *out = NULL;
    int limit = search->limit > 0 ? search->limit : 10;
    int page = search->page > 0 ? search->page : 0;
    int64_t from = search->from_ms, to = search->to_ms ? search->to_ms : INT64_MAX;
    int all = search->include_all != 0;
    int dated = search->from_ms || search->to_ms;
    char *words = search->query && *search->query ? recall_fts_query(search->query) : NULL;
    if (search->query && *search->query && !words)
        return mg_err_set(err, MG_ERR_USAGE, "the query has no words to search for");

    /* The default search's kinds follow from the column filter (only user
     * messages and assistant messages have said text); the filter below
     * repeats it for the joined plan. Without words, a default listing
     * skips rows where nothing was said. */
    const char *filter = all     ? "m.agent_id = ?1 AND m.created_at >= ?2 AND m.created_at < ?3"
                         : words ? "m.agent_id = ?1 AND m.kind IN ('user_message', 'assistant') "
                                   "AND m.created_at >= ?2 AND m.created_at < ?3"
                                 : "m.agent_id = ?1 AND m.kind IN ('user_message', 'assistant') "
                                   "AND m.search_text <> '' AND m.created_at >= ?2 AND "
                                   "m.created_at < ?3";
    if (words) {
        char *match = NULL;
        double *df = NULL;
        int ndf = 0, fts_only = 0;
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        mg_status st = build_match(store, words, !all, &match, &df, &ndf, err);
        free(words);
        if (!st && !dated)
            st = owns_all_messages(store, agent_id, &fts_only, err);
        else if (!st)
            st = id_bounds(store, agent_id, from, to, &lo, &hi, err);
        if (!st)
            st = rank_newest(store, agent_id, search, match, df, ndf, fts_only ? NULL : filter, lo,
                             hi, limit, page, out, err);
        free(match);
        free(df);
        return st;
    }

    /* No words: date order. */
    const char *columns = "m.id, m.created_at, m.role, m.kind, m.search_text";
    buf count_sql = BUF_INIT, rows_sql = BUF_INIT;
    buf_printf(&count_sql, "SELECT count(*) FROM messages m WHERE %s", filter);
    buf_printf(&rows_sql,
               "SELECT %s, %s FROM messages m WHERE %s ORDER BY m.created_at, m.id "
               "LIMIT ?5 OFFSET ?6",
               columns, all ? "m.inner_text" : "NULL", filter);
    sqlite3_stmt *count_stmt = NULL, *rows_stmt = NULL;
    mg_status st = store_prepare(store, buf_str(&count_sql), &count_stmt, err);
    if (!st) st = store_prepare(store, buf_str(&rows_sql), &rows_stmt, err);
    buf_free(&count_sql);
    buf_free(&rows_sql);
    if (st) goto done;
    sqlite3_stmt *both[] = {count_stmt, rows_stmt};
    for (int i = 0; i < 2; i++) {
        sqlite3_bind_int64(both[i], 1, agent_id);
        sqlite3_bind_int64(both[i], 2, from);
        sqlite3_bind_int64(both[i], 3, to);
    }
    sqlite3_bind_int(rows_stmt, 5, limit);
    sqlite3_bind_int64(rows_stmt, 6, (int64_t)page * limit);

    if (sqlite3_step(count_stmt) != SQLITE_ROW) {
        st = store_fail(store, err, "searching recall memory");
        goto done;
    }
    int64_t total = sqlite3_column_int64(count_stmt, 0);
    json_t *results = json_array();
    int rc;
    while ((rc = sqlite3_step(rows_stmt)) == SQLITE_ROW)
        json_array_append_new(results, result_row(rows_stmt, 0));
    if (rc != SQLITE_DONE) {
        json_decref(results);
        st = store_fail(store, err, "searching recall memory");
        goto done;
    }
    *out = json_pack("{s:I, s:i, s:I, s:o}", "total", (json_int_t)total, "page", page, "pages",
                     (json_int_t)((total + limit - 1) / limit), "results", results);
done:
    sqlite3_finalize(count_stmt);
    sqlite3_finalize(rows_stmt);
    return st;
}

mg_status recall_list(mg_store *store, int64_t agent_id, int limit, json_t **out, mg_error *err)
{
    *out = NULL;
    sqlite3_stmt *stmt;
    /* The whole text, as recall_search_text gives it. */
    mg_status st = store_prepare(
        store,
        "SELECT id, created_at, role, kind, CASE WHEN inner_text = '' THEN search_text "
        "WHEN search_text = '' THEN inner_text ELSE inner_text || char(10) || search_text END, "
        "NULL FROM (SELECT * FROM messages WHERE agent_id = ? ORDER BY id DESC LIMIT ?) ORDER BY "
        "id",
        &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int(stmt, 2, limit > 0 ? limit : 20);
    json_t *rows = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        json_array_append_new(rows, result_row(stmt, 0));
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        json_decref(rows);
        return store_fail(store, err, "listing recall memory");
    }
    *out = rows;
    return MG_OK;
}
