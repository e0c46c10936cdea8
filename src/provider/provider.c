/*
 * provider.c - from a model handle to a provider, and what we know of models.
 */
#include "provider/provider.h"

#include <stdlib.h>
#include <string.h>

#include "provider/anthropic.h"
#include "provider/ollama.h"
#include "provider/openai.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"

typedef struct provider_entry {
    const char *prefix;
    mg_status (*open)(const char *model, mg_provider **out, mg_error *err);
} provider_entry;

static const provider_entry providers[] = {
    {"openai", mg_openai_open},
    {"anthropic", mg_anthropic_open},
    {"ollama", mg_ollama_open},
};

#define PROVIDER_COUNT (sizeof providers / sizeof providers[0])

static const provider_entry *find_provider(const char *handle, const char **model)
{
    const char *slash = handle ? strchr(handle, '/') : NULL;
    if (!slash || !slash[1]) return NULL;
    for (size_t i = 0; i < PROVIDER_COUNT; i++) {
        size_t n = strlen(providers[i].prefix);
        if ((size_t)(slash - handle) == n && strncmp(handle, providers[i].prefix, n) == 0) {
            *model = slash + 1;
            return &providers[i];
        }
    }
    return NULL;
}

mg_status mg_model_handle_check(const char *handle, mg_error *err)
{
    const char *model;
    if (find_provider(handle, &model)) return MG_OK;
    buf names = BUF_INIT;
    for (size_t i = 0; i < PROVIDER_COUNT; i++)
        buf_printf(&names, "%s%s/MODEL", i ? ", " : "", providers[i].prefix);
    mg_err_set(err, MG_ERR_USAGE, "unknown model handle '%.80s': valid forms are %s",
               handle ? handle : "", buf_str(&names));
    buf_free(&names);
    return MG_ERR_USAGE;
}

mg_status mg_provider_open(const char *handle, mg_provider **out, mg_error *err)
{
    *out = NULL;
    const char *model;
    const provider_entry *entry = find_provider(handle, &model);
    if (!entry) return mg_model_handle_check(handle, err);
    return entry->open(model, out, err);
}

void mg_provider_free(mg_provider *p)
{
    if (p) p->ops->destroy(p);
}

mg_status mg_provider_chat(mg_provider *p, const mg_llm_request *req, mg_llm_reply *reply,
                           mg_error *err)
{
    memset(reply, 0, sizeof *reply);
    return p->ops->chat(p, req, reply, err);
}

void mg_llm_reply_clear(mg_llm_reply *reply)
{
    free(reply->content);
    mg_tool_calls_free(reply->calls, reply->ncalls);
    free(reply->raw_content);
    memset(reply, 0, sizeof *reply);
}

void mg_llm_reply_discard(mg_llm_reply *reply)
{
    int interrupted = reply->interrupted;
    mg_llm_reply_clear(reply);
    reply->interrupted = interrupted;
}

/* Published context windows, in tokens. Matching is by prefix of the model
 * name, longest first, so dated snapshots inherit their family's window. */
static const struct {
    const char *model_prefix;
    int window;
} known_models[] = {
    {"gpt-4.1", 1047576}, {"gpt-4o-mini", 128000},  {"gpt-4o", 128000},  {"gpt-4-turbo", 128000},
    {"gpt-4", 8192},      {"gpt-3.5-turbo", 16385}, {"gpt-5", 400000},   {"o1", 200000},
    {"o3", 200000},       {"o4-mini", 200000},      {"claude-", 200000},
};

int mg_model_context_window(const char *handle)
{
    const char *model;
    if (!find_provider(handle, &model)) return 0;
    int i = mg_longest_prefix(model, known_models, sizeof known_models / sizeof known_models[0],
                              sizeof known_models[0]);
    return i < 0 ? 0 : known_models[i].window;
}

mg_status mg_model_context_window_query(const char *handle, int *tokens, mg_error *err)
{
    *tokens = mg_model_context_window(handle);
    if (*tokens) return MG_OK;
    mg_provider *p = NULL;
    mg_status st = mg_provider_open(handle, &p, err);
    if (st) return st;
    if (p->ops->context_window) st = p->ops->context_window(p, tokens, err);
    mg_provider_free(p);
    if (st) *tokens = 0;
    return st;
}
