/*
 * fts_rank.h - bounded BM25 rankings over an FTS5 table, shared by recall
 * and archival search. See fts_rank.c for why the bound and how the words
 * are chosen.
 */
#ifndef MG_MEMORY_FTS_RANK_H
#define MG_MEMORY_FTS_RANK_H

#include "memgpt.h"
#include "store/store.h"

/* An FTS5 table and the table holding its rows' content (row ids shared). */
typedef struct fts_table {
    const char *fts;     /* "messages_fts" */
    const char *content; /* "messages" */
    const char *doing;   /* for errors: "searching recall memory" */
} fts_table;

/* Turns free text into a safe FTS5 MATCH expression: every word quoted, OR'd
 * together, common stop words dropped when other words remain. Returns NULL
 * when the text has no words. Caller frees. */
char *fts_query(const char *text);

/* Which of a query's words to rank with, and how many rows each matches. */
typedef struct fts_plan {
    char *match; /* MATCH expression: `filter` then the kept words, OR'd */
    double *df;  /* rows each kept word matches, in order (FTS_RANK_FUNCTION's argument) */
    int nkept;
    /* The number of rows IDF is computed against: 0, the table's; a caller
     * may set a smaller one (archival.c says why) before fts_plan_bind. */
    double collection;
    /* 0: plain BM25. c in (0, 1]: a row's score is multiplied by 1 - c + c x
     * the share of the kept words' IDF it contains (archival.c says why). */
    double coverage;
} fts_plan;

/* Where a search looks, for counting its words: the row ids it can return
 * lie in [lo, hi] (INT64_MIN, INT64_MAX: anywhere), and `narrowed` says it
 * returns only some of the rows there (an agent among others, tags), which
 * counts over the table cannot tell apart. */
typedef struct fts_scope {
    int64_t lo, hi;
    int narrowed;
} fts_scope;

#define FTS_SCOPE_ALL ((fts_scope){INT64_MIN, INT64_MAX, 0})

/* Plans a ranking of at most `cap` matches for `words` (an fts_query
 * expression) over `table` within `scope`, each word prefixed with `filter`
 * (a column filter such as "{search_text} : ", or NULL). Free with
 * fts_plan_free. */
mg_status fts_plan_build(mg_store *store, const fts_table *table, const char *filter,
                         const char *words, int cap, fts_scope scope, fts_plan *plan,
                         mg_error *err);
void fts_plan_free(fts_plan *plan);

/* Counts one word's matches at a time, exactly up to `cap` and estimated
 * beyond, as fts_plan_build counts common words: the cost of a count is at
 * most `cap` steps of the word's posting list, however common the word.
 * Over the whole table. Open, count any number of words, close. */
typedef struct fts_counter {
    mg_store *store;
    const fts_table *table;
    int cap;
    sqlite3_stmt *walk;
    int64_t span_min, span_max; /* the content table's row ids, once needed */
} fts_counter;

mg_status fts_counter_open(fts_counter *c, mg_store *store, const fts_table *table, int cap,
                           mg_error *err);
/* *df = the rows matching expr[0..len) (an FTS5 expression, such as one
 * quoted word), or -1 when FTS5 refuses the expression. */
mg_status fts_counter_count(fts_counter *c, const char *expr, size_t len, double *df,
                            mg_error *err);
void fts_counter_close(fts_counter *c);

/* A word's inverse document frequency among `rows` rows when `df` of them
 * hold it, in the form log(1 + (rows - df + 0.5) / (df + 0.5)): positive
 * however common the word (df is capped at rows). For weighing words
 * outside a ranking (the query's embedding, feedback words). */
double fts_idf(double rows, double df);

/* FTS5's bm25() (lower is better) with the IDF from the plan's counts:
 * `FTS_RANK_FUNCTION(table, ?)`, the parameter bound by fts_plan_bind (a
 * blob of the nkept counts, then plan->collection: 0 for the table's row
 * count, then plan->coverage). Register it on the store's connection
 * first. */
#define FTS_RANK_FUNCTION "mg_bm25"
/* `FTS_FIRST_FUNCTION(table)`: 1 if the row's first word is one of the
 * query's phrases, else 0 (archival.c says why). fts_rank_ensure registers
 * it with FTS_RANK_FUNCTION. */
#define FTS_FIRST_FUNCTION "mg_first_word"
mg_status fts_rank_ensure(mg_store *store, mg_error *err);
void fts_plan_bind(fts_plan *plan, sqlite3_stmt *stmt, int param);

/* A ranked match: its row id and FTS_RANK_FUNCTION's value. */
typedef struct fts_hit {
    int64_t id;
    double rank;
    int first; /* FTS_FIRST_FUNCTION's value, where the caller asked for it */
} fts_hit;

/* Sorts best first (lowest rank); ties to the newer (larger id). */
void fts_hits_sort(fts_hit *hits, int n);

#endif
