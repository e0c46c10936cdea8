/*
 * tool_calls.h - reading tool calls in the chat-completions shape.
 *
 * OpenAI and Ollama both answer with `tool_calls: [{id, function: {name,
 * arguments}}]`; they differ only in whether `arguments` is JSON text
 * (OpenAI) or an object (Ollama) and in how reliable the ids are. One parser
 * serves both, so every provider pairs calls and results the same way:
 * missing, malformed or repeated ids are replaced by fresh ones.
 */
#ifndef MG_PROVIDER_TOOL_CALLS_H
#define MG_PROVIDER_TOOL_CALLS_H

#include <jansson.h>

#include "provider/provider.h"

/* Appends the calls of a `tool_calls` array (NULL or null: none) to
 * reply->calls. A call without a function name is MG_ERR_PROVIDER. */
mg_status mg_tool_calls_parse(json_t *calls, mg_llm_reply *reply, mg_error *err);

/* A server's id if it is sane (1-64 printable ASCII characters), else NULL. */
const char *mg_tool_call_sane_id(json_t *id);

/* An id no other call in this process has had. Caller frees. */
char *mg_tool_call_fresh_id(void);

/* Arguments as JSON text: an object compactly, a string as it is, anything
 * else as its JSON text (for the function layer to reject). Caller frees. */
char *mg_tool_call_arguments(json_t *args);

/* A usage figure from the provider, kept in [0, 100,000,000]: untrusted. */
int mg_usage_count(json_t *usage, const char *key);

#endif
