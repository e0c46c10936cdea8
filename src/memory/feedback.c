/*
 * feedback.c - the words a query's best matches add to it.
 *
 * A question and the passage that answers it often share no word: "What
 * activities has Melanie done with her family?" is answered by "I'm off to
 * go swimming with the kids". But the passages the question does find, its
 * best few matches, talk about the same things in the memory's own words
 * ("kids", "camping"), and searching for those words as well finds more of
 * the answers. This is pseudo-relevance feedback, as search engines have
 * done it for decades: the best matches are assumed relevant, and the words
 * that are frequent in them and rare in the memory are added to the query.
 *
 * The words are weighed as in a relevance model: a match contributes each
 * word's share of its text, times how well the match ranked (the caller's
 * weight), and the sum is multiplied by the word's inverse document
 * frequency, so "kids" in two of the three matches outweighs "really" in
 * all three. Stopwords (the offline embedder's list) and the query's own
 * words (or words one is a prefix of: "camp" for "camping") are never
 * added: the first find everything, the second are searched for already.
 *
 * Only the words with the largest weights before IDF (EXAMINED_PER_PICK
 * per word picked) have their matches counted: a count walks a word's rows
 * (fts_counter), and a long passage has hundreds of distinct words.
 */
#include "memory/feedback.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "util/buf.h"
#include "util/err.h"

/* Words outside these lengths are not added: short ones are mostly
 * fragments ("ve" of "I've" split elsewhere), long ones mostly junk. */
#define WORD_MIN 3
#define WORD_MAX 32

/* The query's words (what is never added) are kept up to this many bytes:
 * every word of the matches is compared with each, and a query is written
 * by a model, of any length. */
#define QUERY_MAX 4096

/* Words whose matches are counted, per word picked. */
#define EXAMINED_PER_PICK 4

struct feedback_word {
    char text[WORD_MAX + 1];
    double weight;
};

/* Calls fn(word, len, ctx) for each word of text: ASCII letters and digits
 * folded to lower case, bytes of other UTF-8 characters kept as they are,
 * an apostrophe inside a word dropped ("don't" -> "dont", as the stopword
 * list spells it). Words longer than WORD_MAX are skipped. */
static void each_word(const char *text, void (*fn)(const char *, size_t, void *), void *ctx)
{
    char w[WORD_MAX + 1];
    size_t n = 0;
    int too_long = 0;
    for (const unsigned char *p = (const unsigned char *)text;; p++) {
        if (isalnum(*p) || *p >= 0x80) {
            if (n < WORD_MAX)
                w[n++] = (char)tolower(*p);
            else
                too_long = 1;
            continue;
        }
        if (*p == '\'' && n && isalnum(p[1])) continue;
        if (n && !too_long) {
            w[n] = '\0';
            fn(w, n, ctx);
        }
        n = 0;
        too_long = 0;
        if (!*p) break;
    }
}

static void add_query_word(const char *w, size_t n, void *ctx)
{
    buf *b = ctx;
    if (n < WORD_MIN || mg_embed_is_stopword(w, n) || b->len >= QUERY_MAX) return;
    buf_putc(b, ' ');
    buf_append(b, w, n);
}

void feedback_init(feedback *f, const char *query)
{
    memset(f, 0, sizeof *f);
    buf b = BUF_INIT;
    each_word(query, add_query_word, &b);
    buf_putc(&b, ' ');
    f->query = buf_take(&b);
}

/* 1 if w[0..n) is one of the query's words (stopwords and short words
 * aside), a prefix of one, or has one as a prefix. */
static int in_query(const feedback *f, const char *w, size_t n)
{
    for (const char *q = f->query; *q;) {
        while (*q == ' ')
            q++;
        size_t k = strcspn(q, " ");
        if (k && strncmp(q, w, k < n ? k : n) == 0) return 1;
        q += k;
    }
    return 0;
}

typedef struct text_words {
    feedback *f;
    int from; /* the text's first entry in f->words */
    int total;
} text_words;

static void count_word(const char *w, size_t n, void *ctx)
{
    text_words *t = ctx;
    feedback *f = t->f;
    t->total++;
    if (n < WORD_MIN || mg_embed_is_stopword(w, n) || in_query(f, w, n)) return;
    for (int i = t->from; i < f->count; i++)
        if (strcmp(f->words[i].text, w) == 0) {
            f->words[i].weight += 1;
            return;
        }
    if (f->count == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->words = mg_xrealloc(f->words, (size_t)f->cap * sizeof *f->words);
    }
    memcpy(f->words[f->count].text, w, n + 1);
    f->words[f->count++].weight = 1;
}

void feedback_add(feedback *f, const char *text, double weight)
{
    text_words t = {f, f->count, 0};
    each_word(text, count_word, &t);
    for (int i = t.from; i < f->count; i++)
        f->words[i].weight *= weight / t.total;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(((const feedback_word *)a)->text, ((const feedback_word *)b)->text);
}

static int by_weight(const void *a, const void *b)
{
    double x = ((const feedback_word *)a)->weight, y = ((const feedback_word *)b)->weight;
    if (x != y) return x < y ? 1 : -1;
    return by_text(a, b);
}

/* Sums the weights of each word gathered from several texts. */
static void merge_words(feedback *f)
{
    if (f->count < 2) return;
    qsort(f->words, (size_t)f->count, sizeof *f->words, by_text);
    int n = 0;
    for (int i = 0; i < f->count; i++) {
        if (n && strcmp(f->words[n - 1].text, f->words[i].text) == 0)
            f->words[n - 1].weight += f->words[i].weight;
        else
            f->words[n++] = f->words[i];
    }
    f->count = n;
}

mg_status feedback_pick(feedback *f, fts_counter *df, double rows, int max, char **out,
                        mg_error *err)
{
    *out = NULL;
    if (!f->count) return MG_OK;
    merge_words(f);
    qsort(f->words, (size_t)f->count, sizeof *f->words, by_weight);
    int examined = f->count < max * EXAMINED_PER_PICK ? f->count : max * EXAMINED_PER_PICK;
    buf phrase = BUF_INIT;
    mg_status st = MG_OK;
    for (int i = 0; i < examined && !st; i++) {
        buf_reset(&phrase);
        buf_printf(&phrase, "\"%s\"", f->words[i].text);
        double hits;
        st = fts_counter_count(df, phrase.data, phrase.len, &hits, err);
        if (st || hits < 2) {
            f->words[i].weight = 0;
            continue;
        }
        f->words[i].weight *= fts_idf(rows, hits);
    }
    buf_free(&phrase);
    if (st) return st;
    qsort(f->words, (size_t)examined, sizeof *f->words, by_weight);
    buf words = BUF_INIT;
    for (int i = 0; i < examined && i < max && f->words[i].weight > 0; i++)
        buf_printf(&words, "%s%s", i ? " " : "", f->words[i].text);
    if (words.len) *out = buf_take(&words);
    buf_free(&words);
    return MG_OK;
}

void feedback_free(feedback *f)
{
    free(f->query);
    free(f->words);
    memset(f, 0, sizeof *f);
}
