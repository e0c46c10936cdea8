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

/* The chat-completions request body for `req` (caller frees; *len its
 * length): the system message, the queue (stored messages encoded once,
 * provider/wire.h), the tools, and stream, token and parallel-call
 * options. */
char *mg_openai_chat_body(const char *model, const mg_llm_request *req, int parallel, size_t *len);

/* POST /embeddings for the texts of `input` (a JSON array of n strings,
 * borrowed) in one request, retried like a chat request. On MG_OK *rows
 * (caller decrefs) is a JSON array of the n "embedding" values in input
 * order, not yet checked as vectors: mg_embed_rows_read (embed/embedder.h)
 * does that. Callers split large batches first (see embedder.h). *status is
 * the HTTP status of the final answer (0 if none came), so that a caller
 * can tell a refused request size (400, 413) from other failures. */
mg_status mg_openai_embed_rows(const char *model, json_t *input, json_t **rows, long *status,
                               mg_error *err);

/* Pure: the rows of an embeddings answer {"data": [{"index", "embedding"}]}
 * for n inputs, ordered by index. Refuses (MG_ERR_PROVIDER) a data list of
 * another length, an index missing, out of range or repeated, and an
 * embedding that is not a list. *rows: new reference, caller decrefs. */
mg_status mg_openai_embedding_rows(json_t *resp, int n, json_t **rows, mg_error *err);

/* Pure, for the unit tests and the fuzz targets: reads a 2xx chat answer as
 * a call does once its bytes have arrived. The body is given as the `n`
 * pieces the transfer delivered (pieces[i], lens[i] bytes), in order. With
 * a sink it is read as a stream (Server-Sent Events, or the one JSON body of
 * a server that ignored "stream"), reporting to the sink; without, as the
 * JSON body of a plain call. *reply must start zeroed; on failure it may be
 * half filled: clear it with mg_llm_reply_clear either way. */
mg_status mg_openai_read_answer(const char *const *pieces, const size_t *lens, size_t n,
                                const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err);

#endif
