/*
 * archival.c - storing passages and the fused vector + BM25 search.
 *
 * Search is exact: every passage's embedding of the agent is scanned once
 * (streamed from SQLite, never all held in memory) and scored by dot product
 * (embeddings are unit length, so this is cosine similarity). Passages above
 * a small similarity floor, and every BM25 match, are the hits; they are
 * ranked by reciprocal rank fusion, 1/(60 + rank) summed over both lists.
 */
#include "memory/archival.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "embed/embed.h"
#include "embed/embedder.h"
#include "embed/vec.h"
#include "memory/recall.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define SIMILARITY_FLOOR 0.05f
#define FTS_CANDIDATES   1000

/* TEMP tuning knobs (read from the environment while tuning). */
static double knob(const char *name, double def)
{
    const char *v = getenv(name);
    return v && *v ? atof(v) : def;
}

/* One passage of the agent within the search's time range. */
typedef struct cand {
    int64_t id;
    int64_t time;
    float similarity; /* cosine with the query; 0 if embedded by another embedder */
    double bm25;      /* BM25 relevance, larger is better; 0 = no text match */
    int vector_rank;  /* 1-based; 0 = not in that ranking */
    int text_rank;
    double own;   /* the passage's relevance alone */
    double score; /* with its neighbours' share: what results are ordered by */
} cand;

typedef struct cand_list {
    cand *items;
    int count, cap;
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
                          const char *tags_json, int64_t time_ms, mg_error *err)
{
    if (mg_text_blank(text)) return mg_err_set(err, MG_ERR_USAGE, "the passage is empty");
    if (tags_json && check_tags(tags_json, err)) return MG_ERR_USAGE;
    float *vec;
    int dim;
    mg_status st = mg_embed_text(embedder, text, &vec, &dim, err);
    if (st) return st;
    unsigned char *blob = mg_xmalloc((size_t)dim * 4);
    mg_vec_to_blob(vec, dim, blob);
    sqlite3_stmt *stmt;
    st =
        store_prepare(store,
                      "INSERT INTO passages(agent_id, text, tags, created_at, embedder, embedding) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      &stmt, err);
    if (!st) {
        sqlite3_bind_int64(stmt, 1, agent_id);
        store_bind_text(stmt, 2, text);
        store_bind_text(stmt, 3, tags_json ? tags_json : "[]");
        sqlite3_bind_int64(stmt, 4, time_ms ? time_ms : mg_now_ms());
        store_bind_text(stmt, 5, embedder);
        sqlite3_bind_blob(stmt, 6, blob, dim * 4, SQLITE_TRANSIENT);
        st = store_step_done(store, stmt, err);
        sqlite3_finalize(stmt);
    }
    free(blob);
    free(vec);
    return st;
}

mg_status archival_count(mg_store *store, int64_t agent_id, int64_t *out, mg_error *err)
{
    return store_query_int(store, "SELECT passage_count FROM agents WHERE id = ?", agent_id, 0, out,
                           err);
}

static void bind_scope(sqlite3_stmt *stmt, int64_t agent_id, const mg_search *s)
{
    sqlite3_bind_int64(stmt, 1, agent_id);
    sqlite3_bind_int64(stmt, 2, s->from_ms);
    sqlite3_bind_int64(stmt, 3, s->to_ms ? s->to_ms : INT64_MAX);
}

/* Scans every passage of the agent in range, in id order, noting its time
 * and its cosine with the query. */
static mg_status scan_passages(mg_store *store, int64_t agent_id, const char *embedder,
                               const mg_search *s, const float *query, int dim, cand_list *out,
                               mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "SELECT id, created_at, embedder = ?4, embedding FROM passages "
                                 "WHERE agent_id = ?1 AND created_at >= ?2 AND created_at < ?3 "
                                 "ORDER BY id",
                                 &stmt, err);
    if (st) return st;
    bind_scope(stmt, agent_id, s);
    store_bind_text(stmt, 4, embedder);
    float *vec = mg_xmalloc((size_t)dim * sizeof *vec);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        cand *c = cand_push(out, sqlite3_column_int64(stmt, 0));
        c->time = sqlite3_column_int64(stmt, 1);
        if (!sqlite3_column_int(stmt, 2)) continue;
        if (!mg_vec_from_blob(sqlite3_column_blob(stmt, 3), sqlite3_column_bytes(stmt, 3), vec,
                              dim)) {
            st = mg_err_set(err, MG_ERR_CORRUPT,
                            "passage %lld has an embedding of %d bytes, but embedder '%s' makes "
                            "%d dimensions",
                            (long long)c->id, sqlite3_column_bytes(stmt, 3), embedder, dim);
            break;
        }
        c->similarity = mg_vec_dot(query, vec, dim);
    }
    free(vec);
    sqlite3_finalize(stmt);
    if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "searching archival memory");
    return st;
}

static cand *find_cand(cand_list *l, int64_t id)
{
    int lo = 0, hi = l->count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (l->items[mid].id == id) return &l->items[mid];
        if (l->items[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Adds the BM25 matches: their relevance and rank. Matches not in `l` (a
 * text-only search scans nothing) are appended. */
static mg_status text_matches(mg_store *store, int64_t agent_id, const mg_search *s,
                              cand_list *l, mg_error *err)
{
    char *match = recall_fts_query(s->query);
    if (!match) return MG_OK;
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        store,
        "SELECT p.id, p.created_at, -bm25(passages_fts) FROM passages_fts CROSS JOIN passages p "
        "ON p.id = passages_fts.rowid WHERE p.agent_id = ?1 AND p.created_at >= ?2 AND "
        "p.created_at < ?3 AND passages_fts MATCH ?4 ORDER BY bm25(passages_fts), p.id DESC "
        "LIMIT ?5",
        &stmt, err);
    if (st) {
        free(match);
        return st;
    }
    bind_scope(stmt, agent_id, s);
    store_bind_text(stmt, 4, match);
    sqlite3_bind_int(stmt, 5, FTS_CANDIDATES);
    /* Appending may move the array, so look-ups only search the scanned part. */
    cand_list scanned = *l;
    int rank = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        cand *c = find_cand(&scanned, id);
        if (!c) {
            c = cand_push(l, id);
            c->time = sqlite3_column_int64(stmt, 1);
            scanned.items = l->items;
        }
        c->bm25 = sqlite3_column_double(stmt, 2);
        if (c->bm25 <= 0) c->bm25 = 1e-9; /* a match, however weak */
        c->text_rank = ++rank;
    }
    sqlite3_finalize(stmt);
    free(match);
    if (rc != SQLITE_DONE) return store_fail(store, err, "searching archival memory");
    return MG_OK;
}

/* Inverse document frequency of query words, looked up in the FTS index. */
typedef struct idf_ctx {
    sqlite3_stmt *df; /* count of passages matching ?1 */
    double n;         /* passages in all */
    double power;
} idf_ctx;

static float idf_weight(void *ctx, const char *word, size_t n)
{
    idf_ctx *c = ctx;
    buf phrase = BUF_INIT;
    buf_putc(&phrase, '"');
    for (size_t i = 0; i < n; i++) {
        if (word[i] == '"') buf_putc(&phrase, '"');
        buf_putc(&phrase, word[i]);
    }
    buf_putc(&phrase, '"');
    sqlite3_bind_text(c->df, 1, phrase.data, (int)phrase.len, SQLITE_TRANSIENT);
    double df = sqlite3_step(c->df) == SQLITE_ROW ? sqlite3_column_double(c->df, 0) : -1;
    sqlite3_reset(c->df);
    buf_free(&phrase);
    if (df < 0) return 1.0f; /* no tokens for FTS (e.g. an emoji): neutral */
    if (df > c->n) df = c->n;
    double idf = log(1.0 + (c->n - df + 0.5) / (df + 0.5));
    return (float)pow(idf, c->power);
}

static mg_status embed_query(mg_store *store, const char *embedder, const char *text,
                             float **query, int *dim, mg_error *err)
{
    if (strcmp(embedder, "offline") != 0 || knob("IDF_POW", 1) == 0)
        return mg_embed_text(embedder, text, query, dim, err);
    idf_ctx c = {.power = knob("IDF_POW", 1)};
    int64_t n;
    mg_status st = store_query_int(store, "SELECT count(*) FROM passages WHERE ?1 = ?1", 0, 0,
                                   &n, err);
    if (st) return st;
    c.n = (double)n;
    st = store_prepare(store, "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?1",
                       &c.df, err);
    if (st) return st;
    *dim = MG_EMBED_OFFLINE_DIM;
    *query = mg_xcalloc((size_t)*dim, sizeof **query);
    mg_embed_offline_weighted(text, strlen(text), *query, *dim, idf_weight, &c);
    sqlite3_finalize(c.df);
    return MG_OK;
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
    static const char *const names[] = {"january", "february", "march",     "april",
                                        "may",     "june",     "july",      "august",
                                        "september", "october", "november", "december"};
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

/* Splits the query into words (runs of letters, digits and non-ASCII bytes). */
static int query_words(const char *q, qword *out, int max)
{
    int n = 0;
    size_t i = 0;
    while (q[i] && n < max) {
        unsigned char c = (unsigned char)q[i];
        if (!(c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'))) {
            i++;
            continue;
        }
        size_t start = i;
        while (q[i]) {
            c = (unsigned char)q[i];
            if (!(c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z')))
                break;
            i++;
        }
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

/* Finds calendar dates in the query - "13 October 2023", "October 13th, 2023",
 * "2023-10-13", "October 2023" - and returns their periods (a day or a month,
 * widened by DATE_MARGIN_MS); with years, a bare year too. Blanks the words
 * of each date found in `rest` (a copy of the query), so they do not also
 * count as search words. */
static int query_dates(const char *q, char *rest, period *out, int with_years)
{
    qword w[64];
    int n = query_words(q, w, 64), found = 0;
    for (int i = 0; i < n && found < MAX_QUERY_DATES; i++) {
        int m, day = 0, month = 0, year = 0, used = 0;
#define MONTH(k) (i + (k) < n && (m = month_of(q + w[i + (k)].start, w[i + (k)].len)) > 0)
#define DAY(k)   (i + (k) < n && w[i + (k)].num >= 1 && w[i + (k)].num <= 31)
#define YEAR(k)  (i + (k) < n && w[i + (k)].num >= 1000 && w[i + (k)].num <= 2999 && w[i + (k)].len == 4)
        if (YEAR(0) && DAY(1) && DAY(2) && w[i + 1].num <= 12 && q[w[i].start + 4] == '-' &&
            q[w[i + 1].start + w[i + 1].len] == '-') {
            year = w[i].num, month = w[i + 1].num, day = w[i + 2].num, used = 3;
        } else if (MONTH(0) && DAY(1) && YEAR(2)) {
            month = m, day = w[i + 1].num, year = w[i + 2].num, used = 3;
        } else if (DAY(0) && MONTH(1) && YEAR(2)) {
            day = w[i].num, month = m, year = w[i + 2].num, used = 3;
        } else if (DAY(0) && i + 1 < n && w[i + 1].len == 2 &&
                   strncasecmp(q + w[i + 1].start, "of", 2) == 0 && MONTH(2) && YEAR(3)) {
            day = w[i].num, month = m, year = w[i + 3].num, used = 4;
        } else if (MONTH(0) && YEAR(1)) {
            month = m, year = w[i + 1].num, used = 2;
        } else if (with_years && YEAR(0)) {
            year = w[i].num, used = 1;
        }
#undef MONTH
#undef DAY
#undef YEAR
        if (!used) continue;
        period *p = &out[found++];
        if (day) {
            p->from = utc_ms(year, month, day);
            p->to = p->from + 86400000LL;
        } else if (month) {
            p->from = utc_ms(year, month, 1);
            p->to = month == 12 ? utc_ms(year + 1, 1, 1) : utc_ms(year, month + 1, 1);
        } else {
            p->from = utc_ms(year, 1, 1);
            p->to = utc_ms(year + 1, 1, 1);
        }
        p->from -= DATE_MARGIN_MS;
        p->to += DATE_MARGIN_MS;
        size_t end = w[i + used - 1].start + w[i + used - 1].len;
        memset(rest + w[i].start, ' ', end - w[i].start);
        i += used - 1;
    }
    return found;
}

static int in_periods(int64_t t, const period *p, int n)
{
    for (int i = 0; i < n; i++)
        if (t >= p[i].from && t < p[i].to) return 1;
    return 0;
}

static int by_similarity(const void *a, const void *b)
{
    const cand *x = *(const cand *const *)a, *y = *(const cand *const *)b;
    if (x->similarity != y->similarity) return x->similarity < y->similarity ? 1 : -1;
    return x->id < y->id ? 1 : -1;
}

static void rank_vectors(cand_list *l)
{
    cand **order = mg_xmalloc((size_t)(l->count ? l->count : 1) * sizeof *order);
    int n = 0;
    for (int i = 0; i < l->count; i++)
        if (l->items[i].similarity >= SIMILARITY_FLOOR) order[n++] = &l->items[i];
    if (n > 1) qsort(order, (size_t)n, sizeof *order, by_similarity);
    for (int i = 0; i < n; i++)
        order[i]->vector_rank = i + 1;
    free(order);
}

static void score_own(cand_list *l, archival_mode mode)
{
    double max_bm25 = 0, max_sim = 0;
    for (int i = 0; i < l->count; i++) {
        if (l->items[i].bm25 > max_bm25) max_bm25 = l->items[i].bm25;
        if (l->items[i].similarity > max_sim) max_sim = l->items[i].similarity;
    }
    double rrf_k = knob("RRF_K", 60), wt = knob("W_TEXT", 1), wv = knob("W_VEC", 1);
    int fusion = (int)knob("FUSION", 0);
    for (int i = 0; i < l->count; i++) {
        cand *c = &l->items[i];
        int vec = c->similarity >= SIMILARITY_FLOOR;
        if (mode == ARCHIVAL_TEXT) {
            c->own = c->bm25;
        } else if (mode == ARCHIVAL_VECTOR) {
            c->own = vec ? c->similarity : 0;
        } else if (fusion == 0) {
            c->own = (c->vector_rank ? wv / (rrf_k + c->vector_rank) : 0) +
                     (c->text_rank ? wt / (rrf_k + c->text_rank) : 0);
        } else {
            c->own = (max_bm25 > 0 ? wt * c->bm25 / max_bm25 : 0) +
                     (vec && max_sim > 0 ? wv * c->similarity / max_sim : 0);
        }
    }
}

/* Gives each passage a share of its neighbours' relevance. */
static void score_neighbours(cand_list *l, archival_mode mode)
{
    double prev_w = knob("PREV_W", 0), next_w = knob("NEXT_W", 0);
    int64_t gap = (int64_t)knob("GAP_MS", 1800000);
    for (int i = 0; i < l->count; i++) {
        cand *c = &l->items[i];
        c->score = c->own;
        if (mode != ARCHIVAL_HYBRID) continue;
        if (i > 0 && llabs(c->time - l->items[i - 1].time) <= gap)
            c->score += prev_w * l->items[i - 1].own;
        if (i + 1 < l->count && llabs(c->time - l->items[i + 1].time) <= gap)
            c->score += next_w * l->items[i + 1].own;
    }
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
    mg_status st = store_prepare(store, "SELECT text, tags, created_at FROM passages WHERE id = ?",
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
        json_array_append_new(
            results, json_pack("{s:I, s:s, s:s, s:o, s:f, s:f}", "id", (json_int_t)page_hits[i].id,
                               "time", when, "text", (const char *)sqlite3_column_text(stmt, 0),
                               "tags", tags ? tags : json_array(), "score", page_hits[i].score,
                               "similarity", (double)page_hits[i].similarity));
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return st;
}

mg_status archival_search(mg_store *store, int64_t agent_id, const char *embedder,
                          const mg_search *search, json_t **out, mg_error *err)
{
    return archival_search_mode(store, agent_id, embedder, search, ARCHIVAL_HYBRID, out, err);
}

mg_status archival_search_mode(mg_store *store, int64_t agent_id, const char *embedder,
                               const mg_search *search, archival_mode mode, json_t **out,
                               mg_error *err)
{
    *out = NULL;
    if (mg_text_blank(search->query))
        return mg_err_set(err, MG_ERR_USAGE, "the query is empty; say what to look for");
    int limit = search->limit > 0 ? search->limit : 10;
    int page = search->page > 0 ? search->page : 0;
    /* Dates named in the query select passages by time, not by words. */
    mg_search s = *search;
    char *rest = mg_xstrdup(search->query);
    period dates[MAX_QUERY_DATES];
    int ndates = mode == ARCHIVAL_HYBRID && knob("DATES", 1)
                     ? query_dates(search->query, rest, dates, (int)knob("DATE_YEARS", 0))
                     : 0;
    if (ndates && !mg_text_blank(rest)) s.query = rest;
    cand_list all = {0};
    mg_status st = MG_OK;
    if (mode != ARCHIVAL_TEXT) {
        float *query;
        int dim;
        st = embed_query(store, embedder, s.query, &query, &dim, err);
        if (!st) {
            st = scan_passages(store, agent_id, embedder, &s, query, dim, &all, err);
            free(query);
        }
    }
    if (!st && mode != ARCHIVAL_VECTOR) st = text_matches(store, agent_id, &s, &all, err);
    free(rest);
    if (st) {
        free(all.items);
        return st;
    }
    rank_vectors(&all);
    score_own(&all, mode);
    double boost = knob("DATE_BOOST", 1);
    for (int i = 0; ndates && i < all.count; i++)
        if (in_periods(all.items[i].time, dates, ndates)) all.items[i].own *= 1 + boost;
    score_neighbours(&all, mode);
    /* The hits: passages with any relevance, their own or a neighbour's. */
    cand_list hits = {0};
    for (int i = 0; i < all.count; i++)
        if (all.items[i].score > 0) *cand_push(&hits, 0) = all.items[i];
    free(all.items);
    if (hits.count > 1) qsort(hits.items, (size_t)hits.count, sizeof *hits.items, by_score);
    json_t *results = json_array();
    int64_t first = (int64_t)page * limit;
    if (first < hits.count) {
        int n = hits.count - (int)first < limit ? hits.count - (int)first : limit;
        st = page_rows(store, hits.items + first, n, results, err);
    }
    if (!st)
        *out = json_pack("{s:i, s:i, s:i, s:o}", "total", hits.count, "page", page, "pages",
                         (hits.count + limit - 1) / limit, "results", results);
    else
        json_decref(results);
    free(hits.items);
    return st;
}
