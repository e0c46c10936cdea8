/*
 * embedder.c - dispatch from an embedder spec to the offline embedder, to an
 * OpenAI-compatible /v1/embeddings endpoint, or to Ollama's /api/embed.
 */
#include "embed/embedder.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "embed/vec.h"
#include "provider/ollama.h"
#include "provider/openai.h"
#include "util/buf.h"
#include "util/err.h"

mg_status mg_embedder_check(const char *spec, mg_error *err)
{
    if (spec && strcmp(spec, "offline") == 0) return MG_OK;
    if (spec && strncmp(spec, "openai/", 7) == 0 && spec[7]) return MG_OK;
    if (spec && strncmp(spec, "ollama/", 7) == 0 && spec[7]) return MG_OK;
    return mg_err_set(err, MG_ERR_USAGE,
                      "unknown embedder '%.64s': use 'offline', 'openai/MODEL' or 'ollama/MODEL'",
                      spec ? spec : "");
}

mg_status mg_embed_text(const char *spec, const char *text, float **vec, int *dim, mg_error *err)
{
    *vec = NULL;
    mg_status st = mg_embedder_check(spec, err);
    if (st) return st;
    if (strcmp(spec, "offline") == 0) {
        *dim = MG_EMBED_OFFLINE_DIM;
        *vec = mg_xcalloc((size_t)*dim, sizeof **vec);
        mg_embed_offline(text, strlen(text), *vec, *dim);
        return MG_OK;
    }
    if (strncmp(spec, "ollama/", 7) == 0)
        st = mg_ollama_embed(spec + 7, text, vec, dim, err);
    else
        st = mg_openai_embed(spec + 7, text, vec, dim, err);
    if (!st) mg_vec_normalize(*vec, *dim);
    return st;
}
