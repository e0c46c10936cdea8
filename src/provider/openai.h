/*
 * openai.h - the OpenAI-compatible chat-completions and embeddings client.
 *
 * Serves OpenAI and every server that speaks its protocol (vLLM, llama.cpp
 * server, LM Studio, Ollama's /v1, OpenRouter, Groq). Configuration, read at
 * open time:
 *   OPENAI_BASE_URL  default https://api.openai.com/v1
 *   OPENAI_API_KEY   sent as a Bearer token; required only by api.openai.com
 */
#ifndef MG_PROVIDER_OPENAI_H
#define MG_PROVIDER_OPENAI_H

#include "provider/provider.h"

mg_status mg_openai_open(const char *model, mg_provider **out, mg_error *err);

/* POST /embeddings for one text. *vec (caller frees) gets *dim floats. */
mg_status mg_openai_embed(const char *model, const char *text, float **vec, int *dim,
                          mg_error *err);

#endif
