/*
 * embedder.h - turning text into vectors, by the agent's chosen embedder.
 *
 * An embedder is named by a spec string stored with the agent and with every
 * passage: "offline" (the built-in lexical embedder, no network) or
 * "openai/MODEL" (any OpenAI-compatible /v1/embeddings endpoint, configured
 * by OPENAI_BASE_URL and OPENAI_API_KEY) or "ollama/MODEL" (Ollama's
 * /api/embed, configured by OLLAMA_HOST). Passages are only ever compared
 * with queries embedded by the same spec, so dimensions always agree.
 */
#ifndef MG_EMBED_EMBEDDER_H
#define MG_EMBED_EMBEDDER_H

#include "memgpt.h"

/* Checks that `spec` names a known embedder. */
mg_status mg_embedder_check(const char *spec, mg_error *err);

/* Embeds `text`. On success *vec (caller frees) holds *dim floats of unit
 * length. */
mg_status mg_embed_text(const char *spec, const char *text, float **vec, int *dim, mg_error *err);

#endif
