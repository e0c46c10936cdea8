/*
 * feedback.h - the words a query's best matches add to it (pseudo-relevance
 * feedback). See feedback.c for why and how they are chosen.
 */
#ifndef MG_MEMORY_FEEDBACK_H
#define MG_MEMORY_FEEDBACK_H

#include "memgpt.h"
#include "memory/fts_rank.h"

typedef struct feedback_word feedback_word;

/* Words gathered from the texts of a query's best matches. Fill with
 * feedback_add, choose with feedback_pick, free with feedback_free. */
typedef struct feedback {
    char *query; /* the query's words, lower case, space-separated (owned) */
    feedback_word *words;
    int count, cap;
} feedback;

void feedback_init(feedback *f, const char *query);

/* Counts the words of one match's text: each word that is not a stopword
 * and not one of the query's own gets `weight` x its share of the text's
 * words. Call once per match, the better matches with larger weights. */
void feedback_add(feedback *f, const char *text, double weight);

/* Chooses at most `max` of the words gathered: by weight times inverse
 * document frequency over `rows` rows, counted with `df` (fts_rank.h),
 * leaving out words that fewer than two rows hold (a word only the match
 * itself has finds nothing new). *out = the words, space-separated (caller
 * frees), or NULL when none qualifies. */
mg_status feedback_pick(feedback *f, fts_counter *df, double rows, int max, char **out,
                        mg_error *err);

void feedback_free(feedback *f);

#endif
