/*
 * tokens.h - a conservative token estimate for any model.
 *
 * Exact counts need the model's tokenizer, which most providers do not
 * publish. The estimate here errs high (so the context budget errs safe) and
 * the agent scales it by the ratio of the provider's reported prompt tokens
 * to our estimate, learned per agent (see context.c).
 */
#ifndef MG_CONTEXT_TOKENS_H
#define MG_CONTEXT_TOKENS_H

#include <stddef.h>

/* Tokens of `len` bytes of UTF-8 text. */
int mg_tokens_estimate(const char *text, size_t len);

/* Shorthand for a C string (NULL counts as 0). */
int mg_tokens_of(const char *text);

/* Per-message framing a chat API adds (role markers, separators). */
#define MG_TOKENS_PER_MESSAGE 4

#endif
