/*
 * fuzz_fts.c - the full-text query builder (fts_query, memory/fts_rank.c):
 * any text a user or a model searches for must become an FTS5 expression,
 * never an FTS5 syntax error, and must still find what it was written
 * from.
 *
 * Input: the search text (up to its first NUL, as fts_query reads it).
 *
 * The expressions are run against an in-memory FTS5 table made like
 * messages_fts (migrations.c: two columns, 'porter unicode61
 * remove_diacritics 2') that holds the text itself as a row and a few
 * others. Properties:
 *  - fts_query returns NULL exactly when the text has no word characters,
 *    else a list of double-quoted words joined by " OR ", with no quote
 *    inside a word (fts_plan_build splits it on " OR ");
 *  - every form search builds from it runs without error: the expression
 *    alone, behind the column filter recall uses ("{search_text} : (...)",
 *    fts_plan_build) and each word alone behind it (count_terms);
 *  - the row holding the text is found, unless none of the query's words
 *    is anything FTS5 indexes (punctuation outside ASCII, say).
 */
#include "fuzz.h"

#include <sqlite3.h>

#include "memory/fts_rank.h"

static sqlite3 *db;

static void exec(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "fuzz_fts: %s: %s\n", sql, msg);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
    exec(
        "CREATE VIRTUAL TABLE t USING fts5(search_text, inner_text,"
        "  tokenize='porter unicode61 remove_diacritics 2');"
        "CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='porter unicode61 remove_diacritics 2');"
        "CREATE VIRTUAL TABLE probe_words USING fts5vocab(probe, 'instance');"
        "INSERT INTO t(rowid, search_text, inner_text) VALUES"
        "  (1, 'My sister Quiltrude lives in Oslo.', 'core_memory_append(human)'),"
        "  (2, 'Café au lait, naïve résumé', ''),"
        "  (3, 'the and of OR NEAR AND NOT', 'send_message: hi');");
    return 0;
}

/* Runs `match` to the end; 1 if row `want` was among the matches. Any
 * error (a syntax error above all) breaks the property. */
static int run(const char *match, int64_t want)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?", -1, &s, NULL);
    FZ_CHECK(rc == SQLITE_OK, "prepare: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
    int found = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        found |= sqlite3_column_int64(s, 0) == want;
    FZ_CHECK(rc == SQLITE_DONE, "MATCH '%s' failed: %s", match, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return found;
}

/* How many tokens FTS5 makes of `word` (its quotes included). */
static int tokens_of(const char *word, size_t n)
{
    exec("DELETE FROM probe");
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "INSERT INTO probe(x) VALUES (?)", -1, &s, NULL);
    sqlite3_bind_text(s, 1, word, (int)n, SQLITE_STATIC);
    FZ_CHECK(sqlite3_step(s) == SQLITE_DONE, "probe insert: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM probe_words", -1, &s, NULL);
    sqlite3_step(s);
    int count = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return count;
}

static int has_word(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            *p >= 0x80)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_strndup(data, size);
    char *q = fts_query(text);
    FZ_CHECK(!q == !has_word(text), "fts_query gave %s for a text %s word characters",
             q ? "an expression" : "nothing", has_word(text) ? "with" : "without");
    if (!q) {
        free(text);
        return 0;
    }
    /* Its shape: "w" [OR "w"]..., and the words. */
    const char *words[1024];
    size_t lens[1024], nwords = 0;
    for (const char *p = q;;) {
        FZ_CHECK(*p == '"', "a word does not start with a quote at '%s'", p);
        const char *end = strchr(p + 1, '"');
        FZ_CHECK(end && end > p + 1, "a word without its closing quote, or empty, at '%s'", p);
        if (nwords < 1024) words[nwords] = p, lens[nwords++] = (size_t)(end + 1 - p);
        p = end + 1;
        if (!*p) break;
        FZ_CHECK(strncmp(p, " OR ", 4) == 0, "words not joined by ' OR ' at '%s'", p);
        p += 4;
    }

    exec("DELETE FROM t WHERE rowid = 100");
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "INSERT INTO t(rowid, search_text, inner_text) VALUES (100, ?, '')", -1,
                       &s, NULL);
    sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
    FZ_CHECK(sqlite3_step(s) == SQLITE_DONE, "insert: %s", sqlite3_errmsg(db));
    sqlite3_finalize(s);

    int found = run(q, 100);
    size_t n = strlen(q);
    char *filtered = malloc(n + 32);
    if (!filtered) abort();
    snprintf(filtered, n + 32, "{search_text} : (%s)", q);
    FZ_CHECK(run(filtered, 100) == found, "the column filter changed what '%s' finds", q);
    for (size_t i = 0; i < nwords && i < 16; i++) {
        snprintf(filtered, n + 32, "{search_text} : %.*s", (int)lens[i], words[i]);
        run(filtered, 100);
    }
    free(filtered);
    if (!found) {
        for (size_t i = 0; i < nwords; i++)
            FZ_CHECK(tokens_of(words[i], lens[i]) == 0,
                     "'%s' does not find the text it was made from, though %.*s is indexed", q,
                     (int)lens[i], words[i]);
    }
    free(q);
    free(text);
    return 0;
}
