/*
 * tokens.h - counting tokens for the context budget: exact where the
 * model's tokenizer is known, a conservative estimate elsewhere.
 *
 * OpenAI publishes its encodings (o200k_base, cl100k_base; which model uses
 * which is mg_model_encoding's table in tokenizer/tokenizer.c), so for those
 * models the budget counts with the real tokenizer (src/tokenizer/), opened
 * on the first count: `memgpt send` pays for it only when it measures, and
 * opening maps a precompiled table (~0.5 ms). Other providers do not publish
 * theirs; for them, and for OpenAI models when the rank files are missing
 * or damaged, the estimate below is used. It errs high (so the budget errs
 * safe) and the agent scales it by the ratio of the provider's reported
 * prompt tokens to the estimate, learned per agent (see context.c).
 *
 * A counter belongs to one agent (one thread at a time, like the tokenizer
 * it holds). It remembers the counts of the last few long texts it was
 * given, because the budget is measured several times a step and most of
 * the system message (instructions, core memory, summary) does not change.
 */
#ifndef MG_CONTEXT_TOKENS_H
#define MG_CONTEXT_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "memgpt.h"

/* Tokens of `len` bytes of UTF-8 text, estimated. */
int mg_tokens_estimate(const char *text, size_t len);

/* Shorthand for a C string (NULL counts as 0). */
int mg_tokens_of(const char *text);

/* Per-message framing a chat API adds. For OpenAI's chat models this is
 * exact: 3 tokens frame each message (start, separator, end) and the role
 * is 1 more. */
#define MG_TOKENS_PER_MESSAGE 4
/* Every request ends by opening the assistant's reply: 3 tokens. */
#define MG_TOKENS_REPLY_PRIMING 3
/* Per function call in an assistant message, besides its name and
 * arguments (an approximation: OpenAI does not document the framing). */
#define MG_TOKENS_PER_CALL 8

typedef enum tokens_mode {
    TOKENS_UNSET,    /* zeroed: tokens_counter_init not called yet */
    TOKENS_UNOPENED, /* the model has an encoding; the tokenizer is not open yet */
    TOKENS_EXACT,    /* counting with the tokenizer */
    TOKENS_FALLBACK, /* the model has an encoding but its rank files are unusable */
    TOKENS_ESTIMATE  /* the model's tokenizer is not known */
} tokens_mode;

#define TOKENS_MEMO 8

typedef struct tokens_counter {
    const char *encoding; /* static; NULL when the model's is not known */
    tokens_mode mode;
    mg_tokenizer *tok;
    struct {
        uint64_t hash;
        size_t len;
        int count;
    } memo[TOKENS_MEMO];
    unsigned memo_next;
    char notice[1024];
} tokens_counter;

/* Sets up counting for model `handle` ("openai/gpt-4o"). Opens nothing. */
void tokens_counter_init(tokens_counter *c, const char *handle);
void tokens_counter_free(tokens_counter *c);

/* Gives the counter an opened tokenizer of its encoding (taking
 * ownership), as if it had opened it itself. */
void tokens_counter_adopt(tokens_counter *c, mg_tokenizer *tok);

/* Takes the counter's tokenizer back (NULL if it never opened one); the
 * counter counts by estimate afterwards. */
mg_tokenizer *tokens_counter_release(tokens_counter *c);

/* Tokens of text[0..len): exact when the counter can be, else estimated. */
int tokens_count(tokens_counter *c, const char *text, size_t len);

/* Shorthand for a C string (NULL counts as 0). */
int tokens_count_str(tokens_counter *c, const char *text);

/* 1 if counts are exact (opens the tokenizer if that was not tried yet). */
int tokens_exact(tokens_counter *c);

/* 1 if counts will be exact as far as is known without opening anything:
 * the model's encoding is known and its tokenizer has not failed. */
int tokens_exact_capable(const tokens_counter *c);

/* NULL, or why counts are estimates although the model's encoding is known:
 * the tokenizer failed to load, or (not opened yet) its rank file is not in
 * any place it is looked for. Owned by the counter. */
const char *tokens_notice(tokens_counter *c);

#endif
