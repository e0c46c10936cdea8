/*
 * models.c - mg_models_list: which models a provider's endpoint offers.
 *
 * Listing is an optional provider operation (mg_provider_ops.list_models),
 * so this file only finds the provider and asks it. A provider is opened
 * through the ordinary handle path with a placeholder model name: opening
 * never touches the network, it only reads the provider's configuration
 * (and fails early, with its usual advice, when credentials are missing),
 * and list_models is documented never to use the model. That keeps every
 * provider's configuration rules in one place, its own file.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memgpt.h"
#include "provider/provider.h"
#include "util/buf.h"
#include "util/err.h"

#define DEFAULT_PROVIDER  "openai"
#define PLACEHOLDER_MODEL "-"

static int valid_provider_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return 0;
    }
    return 1;
}

mg_status mg_models_list(const char *provider, char **json_out, mg_error *err)
{
    *json_out = NULL;
    const char *name = provider && *provider ? provider : DEFAULT_PROVIDER;
    if (!valid_provider_name(name))
        return mg_err_set(err, MG_ERR_USAGE, "invalid provider name '%.40s'", name);
    buf handle = BUF_INIT;
    buf_printf(&handle, "%s/%s", name, PLACEHOLDER_MODEL);
    mg_status st = mg_model_handle_check(buf_str(&handle), err);
    if (st) {
        buf_free(&handle);
        /* The handle check lists the valid PROVIDER/MODEL forms: pass them on. */
        const char *forms = err ? strstr(err->message, "valid forms are ") : NULL;
        char list[256];
        snprintf(list, sizeof list, "%s", forms ? forms + strlen("valid forms are ") : "");
        return mg_err_set(err, MG_ERR_USAGE, "unknown provider '%s' (handles are %s)", name, list);
    }
    mg_provider *p = NULL;
    st = mg_provider_open(buf_str(&handle), &p, err);
    buf_free(&handle);
    if (st) return st;
    if (!p->ops->list_models) {
        mg_provider_free(p);
        return mg_err_set(err, MG_ERR_USAGE,
                          "listing models is not supported for provider '%s' yet", name);
    }
    json_t *models = NULL;
    st = p->ops->list_models(p, &models, err);
    mg_provider_free(p);
    if (st) return st;
    *json_out = json_dumps(models, JSON_COMPACT);
    json_decref(models);
    if (!*json_out) return mg_err_set(err, MG_ERR_NOMEM, "could not encode the model list");
    return MG_OK;
}
