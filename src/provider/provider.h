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
 * To add a provider: write provider/NAME.c with an mg_provider_ops table and
 * an open function, and add its prefix to the table in provider.c.
 */
#ifndef MG_PROVIDER_PROVIDER_H
#define MG_PROVIDER_PROVIDER_H

#include <jansson.h>

#include "context/message.h"
#include "memgpt.h"

typedef struct mg_llm_request {
    const char *system;     /* the whole system message */
    const mg_msg *messages; /* the queue, oldest first */
    int nmessages;
    json_t *tools;      /* array of {name, description, parameters}; NULL for none */
    int max_tokens;     /* reply budget; 0 = provider default */
    int context_window; /* the agent's window in tokens; 0 = unknown. Providers that size
                           the model's window per request (Ollama's num_ctx) use it. */
} mg_llm_request;

typedef struct mg_llm_reply {
    char *content; /* text outside tool calls; may be NULL */
    mg_tool_call *calls;
    int ncalls;
    int prompt_tokens; /* as reported; 0 if the provider did not say */
    int completion_tokens;
    char *raw_content; /* blocks to keep with the message (see mg_msg); usually NULL */
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

mg_status mg_provider_chat(mg_provider *p, const mg_llm_request *req, mg_llm_reply *reply,
                           mg_error *err);
void mg_llm_reply_clear(mg_llm_reply *reply);

/* The context window of a well-known model, or 0 if we do not know it. */
int mg_model_context_window(const char *handle);

#endif
