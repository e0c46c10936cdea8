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

#include "embed/embedder.h"
#include "embed/vec.h"
#include "memory/recall.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define RRF_K            60.0
#define SIMILARITY_FLOOR 0.05f
#define FTS_CANDIDATES   1000

typedef struct hit {
    int64_t id;
    float similarity; /* cosine; 0 if only a text match */
    int vector_rank;  /* 1-based; 0 = not in the list */
    int text_rank;
    double fused;
} hit;

typedef struct hit_list {
    hit *items;
    int count, cap;
} hit_list;

static hit *hit_push(hit_list *l, int64_t id)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = mg_xrealloc(l->items, (size_t)l->cap * sizeof *l->items);
    }
    hit *h = &l->items[l->count++];
    memset(h, 0, sizeof *h);
    h->id = id;
    return h;
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

static int by_similarity(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->similarity != y->similarity) return x->similarity < y->similarity ? 1 : -1;
    return x->id < y->id ? 1 : -1;
}

static mg_status vector_hits(mg_store *store, int64_t agent_id, const char *embedder,
                             const mg_search *s, const float *query, int dim, hit_list *hits,
                             mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "SELECT id, embedding FROM passages WHERE agent_id = ?1 AND "
                                 "created_at >= ?2 AND created_at < ?3 AND embedder = ?4",
                                 &stmt, err);
    if (st) return st;
    bind_scope(stmt, agent_id, s);
    store_bind_text(stmt, 4, embedder);
    float *vec = mg_xmalloc((size_t)dim * sizeof *vec);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        if (!mg_vec_from_blob(sqlite3_column_blob(stmt, 1), sqlite3_column_bytes(stmt, 1), vec,
                              dim)) {
            st = mg_err_set(err, MG_ERR_CORRUPT,
                            "passage %lld has an embedding of %d bytes, but embedder '%s' makes "
                            "%d dimensions",
                            (long long)id, sqlite3_column_bytes(stmt, 1), embedder, dim);
            break;
        }
        float sim = mg_vec_dot(query, vec, dim);
        if (sim >= SIMILARITY_FLOOR) hit_push(hits, id)->similarity = sim;
    }
    free(vec);
    sqlite3_finalize(stmt);
    if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "searching archival memory");
    if (st) return st;
    if (hits->count > 1)
        qsort(hits->items, (size_t)hits->count, sizeof *hits->items, by_similarity);
    for (int i = 0; i < hits->count; i++)
        hits->items[i].vector_rank = i + 1;
    return MG_OK;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = (*(const hit *const *)a)->id, y = (*(const hit *const *)b)->id;
    return (x > y) - (x < y);
}

/* Pointers to the vector hits sorted by id, so each BM25 hit finds its
 * vector twin in O(log n). Caller frees. */
static hit **index_by_id(hit_list *hits, int n)
{
    hit **index = mg_xmalloc((size_t)(n ? n : 1) * sizeof *index);
    for (int i = 0; i < n; i++)
        index[i] = &hits->items[i];
    if (n > 1) qsort(index, (size_t)n, sizeof *index, by_id);
    return index;
}

static hit *find_hit(hit **index, int n, int64_t id)
{
    hit key = {.id = id}, *keyp = &key;
    hit **found = n ? bsearch(&keyp, index, (size_t)n, sizeof *index, by_id) : NULL;
    return found ? *found : NULL;
}

static mg_status text_hits(mg_store *store, int64_t agent_id, const mg_search *s, hit_list *hits,
                           mg_error *err)
{
    char *match = recall_fts_query(s->query);
    if (!match) return MG_OK;
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        store,
        "SELECT p.id FROM passages_fts CROSS JOIN passages p ON p.id = passages_fts.rowid WHERE "
        "p.agent_id = ?1 AND p.created_at >= ?2 AND p.created_at < ?3 AND passages_fts MATCH ?4 "
        "ORDER BY bm25(passages_fts), p.id DESC LIMIT ?5",
        &stmt, err);
    if (st) {
        free(match);
        return st;
    }
    bind_scope(stmt, agent_id, s);
    store_bind_text(stmt, 4, match);
    sqlite3_bind_int(stmt, 5, FTS_CANDIDATES);
    /* Text-only hits are collected apart: pushing onto `hits` would move the
     * array the index points into. */
    int vector_count = hits->count, rank = 0, rc;
    hit **index = index_by_id(hits, vector_count);
    hit_list text_only = {0};
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(stmt, 0);
        hit *h = find_hit(index, vector_count, id);
        if (!h) h = hit_push(&text_only, id);
        h->text_rank = ++rank;
    }
    free(index);
    for (int i = 0; i < text_only.count; i++)
        *hit_push(hits, 0) = text_only.items[i];
    free(text_only.items);
    sqlite3_finalize(stmt);
    free(match);
    if (rc != SQLITE_DONE) return store_fail(store, err, "searching archival memory");
    return MG_OK;
}

static int by_fused(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->fused != y->fused) return x->fused < y->fused ? 1 : -1;
    return x->id < y->id ? 1 : -1;
}

static mg_status page_rows(mg_store *store, const hit *page_hits, int n, json_t *results,
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
                               "tags", tags ? tags : json_array(), "score", page_hits[i].fused,
                               "similarity", (double)page_hits[i].similarity));
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return st;
}

mg_status archival_search(mg_store *store, int64_t agent_id, const char *embedder,
                          const mg_search *search, json_t **out, mg_error *err)
{
    *out = NULL;
    if (mg_text_blank(search->query))
        return mg_err_set(err, MG_ERR_USAGE, "the query is empty; say what to look for");
    int limit = search->limit > 0 ? search->limit : 10;
    int page = search->page > 0 ? search->page : 0;
    float *query;
    int dim;
    mg_status st = mg_embed_text(embedder, search->query, &query, &dim, err);
    if (st) return st;
    hit_list hits = {0};
    st = vector_hits(store, agent_id, embedder, search, query, dim, &hits, err);
    free(query);
    if (!st) st = text_hits(store, agent_id, search, &hits, err);
    if (st) {
        free(hits.items);
        return st;
    }
    for (int i = 0; i < hits.count; i++) {
        hit *h = &hits.items[i];
        h->fused = (h->vector_rank ? 1.0 / (RRF_K + h->vector_rank) : 0) +
                   (h->text_rank ? 1.0 / (RRF_K + h->text_rank) : 0);
    }
    if (hits.count > 1) qsort(hits.items, (size_t)hits.count, sizeof *hits.items, by_fused);
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
