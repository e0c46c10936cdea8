/*
 * provider.h - the one interface every LLM provider implements.
 *
 * The agent speaks to "a provider" only through mg_provider_chat: a
 * provider-neutral request (system text, messages, tool schemas) goes in, a
 * reply (inner monologue text, tool calls, token usage) comes out. Each
 * provider module maps that to its wire format, does its own retries, and
 * maps its failures to the statuses the agent acts on:
 *
 *   MG_ERR_AUTH      credentials refused; the message names the variable to set
 *   MG_ERR_CONTEXT   the request was too long for the model: flush and retry
 *   MG_ERR_PROVIDER  anything else, after retries, with the provider's words
 *
 * A request may carry a stream sink: the provider then asks for a streamed
 * answer and reports it piece by piece while it arrives (so the agent can
 * show a reply as it is written), and still returns the whole reply, the
 * same as without streaming. A stream that breaks off is a failure with
 * mg_llm_reply.interrupted set, which the agent answers by asking again.
 *
 * To add a provider: write provider/NAME.c with an mg_provider_ops table and
 * an open function, and add its prefix to the table in provider.c.
 */
#ifndef MG_PROVIDER_PROVIDER_H
#define MG_PROVIDER_PROVIDER_H

#include <jansson.h>

#include "context/message.h"
#include "memgpt.h"

/* Where a streaming provider reports a reply while it arrives. Pointers are
 * valid only during the call; either function may be NULL.
 *
 *  on_content   the next piece of text outside tool calls (inner monologue).
 *  on_tool_args the next piece of the arguments (JSON text, exactly as the
 *               model writes it) of tool call `index`: the call's position
 *               in the finished reply's `calls`. `id` and `name` are the
 *               call's id and function name as the finished reply will have
 *               them (a provider that has to invent an id invents it before
 *               the first piece). Concatenated, the pieces of a call are its
 *               `arguments`, except that providers which only deliver whole
 *               argument objects (Anthropic, Ollama) report them as they
 *               arrive and the finished reply holds their compact form.
 *
 * Nothing reported here is final: a stream that breaks off is reported as
 * failed (see mg_llm_reply.interrupted) and everything seen must be
 * discarded. */
typedef struct mg_stream_sink {
    void (*on_content)(void *user, const char *delta, size_t len);
    void (*on_tool_args)(void *user, int index, const char *id, const char *name, const char *delta,
                         size_t len);
    void *user;
} mg_stream_sink;

typedef struct mg_llm_request {
    const char *system;     /* the whole system message */
    const mg_msg *messages; /* the queue, oldest first */
    int nmessages;
    json_t *tools;      /* array of {name, description, parameters}; NULL for none */
    int max_tokens;     /* reply budget; 0 = provider default */
    int context_window; /* the agent's window in tokens; 0 = unknown. Providers that size
                           the model's window per request (Ollama's num_ctx) use it. */
    /* NULL: one plain request. Set: the provider asks for a streamed reply
     * and reports it here as it arrives; the reply it returns is still the
     * whole one, the same as without streaming. Last, so positional
     * initialisers of the fields above stay valid. */
    const mg_stream_sink *stream;
} mg_llm_request;

typedef struct mg_llm_reply {
    char *content; /* text outside tool calls; may be NULL */
    mg_tool_call *calls;
    int ncalls;
    int prompt_tokens; /* as reported; 0 if the provider did not say */
    int completion_tokens;
    char *raw_content;    /* blocks to keep with the message (see mg_msg); usually NULL */
    int reasoning_tokens; /* of completion_tokens, spent on hidden reasoning; 0 if not said */
    int cached_tokens;    /* of prompt_tokens, read from the provider's prompt cache */
    /* On failure of a streamed call: 1 if the stream broke off (connection
     * lost, or ended without its final event) after part of the reply had
     * arrived. Asking again may well work; everything reported to the sink
     * is void. The rest of the reply is empty, as on any failure. */
    int interrupted;
} mg_llm_reply;

typedef struct mg_provider mg_provider;

/* Initialise tables with designated initializers (.chat = ...), so that adding
 * an optional operation never breaks an existing provider. */
typedef struct mg_provider_ops {
    const char *prefix; /* "openai" */
    mg_status (*chat)(mg_provider *p, const mg_llm_request *req, mg_llm_reply *reply,
                      mg_error *err);
    void (*destroy)(mg_provider *p);
    /* Optional (NULL = unsupported): the models the configured endpoint offers,
     * as a JSON array of objects that each have a string "id" (the name to put
     * after "PROVIDER/"), plus whatever else the endpoint says of them. The
     * caller decrefs *models. Opening the provider for listing passes a
     * placeholder model name, which this operation must not use. */
    mg_status (*list_models)(mg_provider *p, json_t **models, mg_error *err);
    /* Optional (NULL = unsupported): the context window, in tokens, of the
     * provider's model as the endpoint states it (may touch the network). */
    mg_status (*context_window)(mg_provider *p, int *tokens, mg_error *err);
} mg_provider_ops;

struct mg_provider {
    const mg_provider_ops *ops;
    char *model; /* the handle without its prefix: "gpt-4o-mini" */
};

/* Opens the provider for a model handle "PROVIDER/MODEL". An unknown
 * provider is MG_ERR_USAGE listing the valid ones. Free with mg_provider_free. */
mg_status mg_provider_open(const char *handle, mg_provider **out, mg_error *err);
void mg_provider_free(mg_provider *p);

/* Checks a handle without opening anything. */
mg_status mg_model_handle_check(const char *handle, mg_error *err);

/* Zeroes *reply, then asks the provider. On failure *reply is empty apart
 * from `interrupted`. */
mg_status mg_provider_chat(mg_provider *p, const mg_llm_request *req, mg_llm_reply *reply,
                           mg_error *err);
void mg_llm_reply_clear(mg_llm_reply *reply);

/* Empties the reply of a failed call, keeping `interrupted`: what every
 * provider's chat does before returning an error (see mg_provider_chat). */
void mg_llm_reply_discard(mg_llm_reply *reply);

/* The context window of a well-known model, or 0 if we do not know it. */
int mg_model_context_window(const char *handle);

#endif
