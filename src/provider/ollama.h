/*
 * ollama.h - Ollama's native API: chat with tool calling, embeddings and the
 * model list.
 *
 * Model handles are "ollama/MODEL" ("ollama/llama3.2", "ollama/qwen3:8b").
 * Configuration, read at open time (and at each embedding or listing call):
 *
 *   OLLAMA_HOST     the server, default http://127.0.0.1:11434. Accepted the
 *                   way Ollama's own CLI accepts it: a full URL
 *                   ("https://ollama.example:443/prefix"), or a bare
 *                   "host", "host:port", ":port", "[v6]:port". Without a
 *                   scheme it is http and the port defaults to 11434; with
 *                   http:// or https:// it defaults to 80 or 443.
 *   OLLAMA_API_KEY  optional; sent as a Bearer token (for a server behind an
 *                   authenticating proxy, or ollama.com itself).
 *
 * Requests say "stream": false, or "stream": true when the request has a
 * stream sink (the answer is then JSON lines), and always carry
 * options.num_ctx, the agent's context window: Ollama otherwise loads the
 * model with its own default window (a few thousand tokens) and silently
 * drops the start of any longer prompt. Keeping each request under num_ctx
 * is the agent's job (context/overflow.c), because Ollama never refuses an
 * over-long prompt; it truncates it.
 */
#ifndef MG_PROVIDER_OLLAMA_H
#define MG_PROVIDER_OLLAMA_H

#include <jansson.h>

#include "provider/provider.h"

#define MG_OLLAMA_DEFAULT_HOST "http://127.0.0.1:11434"

/* Opens the provider for `model` (the handle without "ollama/"). No network
 * is touched; a malformed OLLAMA_HOST is MG_ERR_PROVIDER naming it. */
mg_status mg_ollama_open(const char *model, mg_provider **out, mg_error *err);

/* POST /api/embed for the texts of `input` (a JSON array of strings,
 * borrowed) in one request; retries like the chat client. On MG_OK *rows
 * (caller decrefs) is the answer's "embeddings" array, not yet checked:
 * mg_embed_rows_read (embed/embedder.h) checks count and vectors. *status:
 * as for mg_openai_embed_rows. */
mg_status mg_ollama_embed_rows(const char *model, json_t *input, json_t **rows, long *status,
                               mg_error *err);

/* The most tokens an agent's window is set to from a model's own context
 * length (mg_provider_ops.context_window). The window becomes num_ctx, and
 * Ollama sizes the model's KV cache by it: llama3.2 states 131072 tokens,
 * which would reserve about 14 GB for the cache of a 3B model on a laptop.
 * 32768 fits most machines that run such a model; a larger window is one
 * --context-window away. */
#define MG_OLLAMA_MAX_AUTO_WINDOW 32768

/* ---- pure pieces, exposed for the unit tests ---- */

/* Reads a POST /api/show answer: model_info["<arch>.context_length"], with
 * <arch> = model_info["general.architecture"], capped at
 * MG_OLLAMA_MAX_AUTO_WINDOW. Anything missing or not a positive integer is
 * MG_ERR_PROVIDER saying which key. */
mg_status mg_ollama_show_context_length(json_t *show, int *tokens, mg_error *err);

/* Turns an OLLAMA_HOST value (NULL or blank: the default) into a base URL
 * "scheme://host:port[/path]" without a trailing slash. Caller frees *out. */
mg_status mg_ollama_base_url(const char *value, char **out, mg_error *err);

/* The /api/chat body for a request as JSON text (stored messages encoded
 * once, provider/wire.h). Caller frees; *len is its length. */
char *mg_ollama_chat_body(const char *model, const mg_llm_request *req, size_t *len);

/* Reads a /api/chat answer into *reply (which must start zeroed). Any shape
 * problem is MG_ERR_PROVIDER, with *reply possibly half filled: clear it with
 * mg_llm_reply_clear either way. Tool calls without an id (older servers)
 * or with a duplicate one get a fresh id unique in the process. */
mg_status mg_ollama_parse_chat_reply(json_t *body, mg_llm_reply *reply, mg_error *err);

/* Reads a 2xx /api/chat answer as a call does once its bytes have arrived,
 * for the unit tests and the fuzz targets. The body is given as the `n`
 * pieces the transfer delivered (pieces[i], lens[i] bytes), in order. With
 * a sink it is read as a stream of JSON lines, reporting to the sink;
 * without, as the JSON body of a plain call. *reply must start zeroed; clear
 * it with mg_llm_reply_clear either way. */
mg_status mg_ollama_read_answer(const char *const *pieces, const size_t *lens, size_t n,
                                const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err);

#endif
