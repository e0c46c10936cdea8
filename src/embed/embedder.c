/*
 * embedder.c - dispatch from an embedder spec to the offline embedder, to an
 * OpenAI-compatible /v1/embeddings endpoint, or to Ollama's /api/embed, and
 * the batching and checking of network embeddings both share.
 *
 * The providers own their wire formats: each turns one request's answer into
 * a JSON array of rows in input order (OpenAI by data[i].index, Ollama by
 * position). Everything about the vectors themselves (how many, how long,
 * finite) is checked here once, so both embedders refuse the same broken
 * answers with the same words.
 */
#include "embed/embedder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "embed/vec.h"
#include "provider/ollama.h"
#include "provider/openai.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"

mg_status mg_embedder_check(const char *spec, mg_error *err)
{
    if (spec && strcmp(spec, "offline") == 0) return MG_OK;
    if (spec && strncmp(spec, "openai/", 7) == 0 && spec[7]) return MG_OK;
    if (spec && strncmp(spec, "ollama/", 7) == 0 && spec[7]) return MG_OK;
    return mg_err_set(err, MG_ERR_USAGE,
                      "unknown embedder '%.64s': use 'offline', 'openai/MODEL' or 'ollama/MODEL'",
                      spec ? spec : "");
}

int mg_embed_request_size(const char *const *texts, int n, int max_inputs, size_t max_bytes)
{
    if (n < 1) return 0;
    size_t bytes = strlen(texts[0]);
    int k = 1;
    while (k < n && k < max_inputs) {
        size_t len = strlen(texts[k]);
        if (bytes >= max_bytes || len > max_bytes - bytes) break;
        bytes += len;
        k++;
    }
    return k;
}

/* Whether a refusal (an error message holding the server's own words) is
 * about the request's size: a 413 always is; a 400 when it says so (too
 * many inputs, tokens over a maximum, a batch limit), so that a 400 about
 * something else (an unknown model) fails at once instead of being split. */
static int refused_for_size(long status, const char *message)
{
    if (status == 413) return 1;
    if (status != 400) return 0;
    static const char *const words[] = {"too many", "too large", "too long", "at most", "maximum",
                                        "max ",     "limit",     "exceed",   "batch",   "$.input"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (mg_text_contains_ci(message, words[i])) return 1;
    return 0;
}

static void free_vecs(float **vecs, int n)
{
    for (int i = 0; i < n; i++) {
        free(vecs[i]);
        vecs[i] = NULL;
    }
}

/* One row: 1..MG_EMBED_MAX_DIM finite numbers, `want` of them if want > 0. */
static mg_status read_row(json_t *row, int i, int want, const char *what, float **out, int *dim,
                          mg_error *err)
{
    size_t n = json_array_size(row);
    if (!json_is_array(row) || n == 0 || n > MG_EMBED_MAX_DIM)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected %s answer: embedding %d is not a list of 1 to %d numbers",
                          what, i, MG_EMBED_MAX_DIM);
    if (want > 0 && n != (size_t)want)
        return mg_err_set(
            err, MG_ERR_PROVIDER,
            "unexpected %s answer: embedding %d has %zu dimensions, embedding 0 has %d", what, i, n,
            want);
    float *v = mg_xmalloc(n * sizeof *v);
    for (size_t j = 0; j < n; j++) {
        json_t *x = json_array_get(row, j);
        double d = json_number_value(x);
        if (!json_is_number(x) || !isfinite(d) || fabs(d) > 3.0e38) {
            free(v);
            return mg_err_set(err, MG_ERR_PROVIDER,
                              "unexpected %s answer: embedding %d, element %zu is not a finite "
                              "number",
                              what, i, j);
        }
        v[j] = (float)d;
    }
    *out = v;
    *dim = (int)n;
    return MG_OK;
}

mg_status mg_embed_rows_read(json_t *rows, int n, const char *what, float **vecs, int *dim,
                             mg_error *err)
{
    for (int i = 0; i < n; i++)
        vecs[i] = NULL;
    if (!json_is_array(rows))
        return mg_err_set(err, MG_ERR_PROVIDER, "unexpected %s answer: no list of embeddings",
                          what);
    if (json_array_size(rows) != (size_t)n)
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected %s answer: %zu embeddings for %d inputs", what,
                          json_array_size(rows), n);
    int want = 0;
    for (int i = 0; i < n; i++) {
        mg_status st =
            read_row(json_array_get(rows, (size_t)i), i, want, what, &vecs[i], &want, err);
        if (st) {
            free_vecs(vecs, i);
            return st;
        }
    }
    *dim = want;
    return MG_OK;
}

/* One request's worth of texts to a network embedder. Both APIs take
 * "input" as an array of strings. *status: the HTTP status of a failure. */
static mg_status embed_request(const char *spec, const char *const *texts, int n, float **vecs,
                               int *dim, long *status, mg_error *err)
{
    *status = 0;
    json_t *input = json_array();
    for (int i = 0; i < n; i++) {
        json_t *s = json_string(texts[i]);
        if (!s) {
            json_decref(input);
            return mg_err_set(err, MG_ERR_USAGE, "text %d to embed is not valid UTF-8", i + 1);
        }
        json_array_append_new(input, s);
    }
    json_t *rows = NULL;
    int ollama = strncmp(spec, "ollama/", 7) == 0;
    mg_status st = ollama ? mg_ollama_embed_rows(spec + 7, input, &rows, status, err)
                          : mg_openai_embed_rows(spec + 7, input, &rows, status, err);
    json_decref(input);
    if (!st)
        st = mg_embed_rows_read(rows, n, ollama ? "/api/embed" : "/embeddings", vecs, dim, err);
    json_decref(rows);
    return st;
}

mg_status mg_embed_texts(const char *spec, const char *const *texts, int n, float **vecs, int *dim,
                         mg_error *err)
{
    for (int i = 0; i < n; i++)
        vecs[i] = NULL;
    mg_status st = mg_embedder_check(spec, err);
    if (st) return st;
    if (n < 1) return mg_err_set(err, MG_ERR_USAGE, "nothing to embed");
    if (strcmp(spec, "offline") == 0) {
        for (int i = 0; i < n; i++) {
            vecs[i] = mg_xcalloc(MG_EMBED_OFFLINE_DIM, sizeof **vecs);
            mg_embed_offline(texts[i], strlen(texts[i]), vecs[i], MG_EMBED_OFFLINE_DIM);
        }
        *dim = MG_EMBED_OFFLINE_DIM;
        return MG_OK;
    }
    mg_error scratch; /* a refusal's words decide whether to split (refused_for_size) */
    if (!err) err = &scratch;
    int first_dim = 0;
    int max_inputs = MG_EMBED_MAX_INPUTS;
    for (int done = 0; done < n;) {
        int k = mg_embed_request_size(texts + done, n - done, max_inputs, MG_EMBED_MAX_BYTES);
        int d = 0;
        long status = 0;
        st = embed_request(spec, texts + done, k, vecs + done, &d, &status, err);
        if (st && k > 1 && refused_for_size(status, err->message)) {
            /* Refused as a whole, perhaps for its size (a server's cap on
             * inputs or bytes per request): halve the requests for the rest
             * of this call. A bad text among them ends up alone and fails
             * there, with its own error. */
            max_inputs = k / 2;
            mg_err_clear(err);
            continue;
        }
        if (!st && done > 0 && d != first_dim)
            st = mg_err_set(err, MG_ERR_PROVIDER,
                            "the embedder changed dimensions between requests (%d, then %d)",
                            first_dim, d);
        if (st) {
            if (k == 1 && n > 1)
                mg_err_wrap(err, "text %d of %d: ", done + 1, n);
            else if (n > k)
                mg_err_wrap(err, "texts %d-%d of %d: ", done + 1, done + k, n);
            free_vecs(vecs, n);
            return st;
        }
        if (done == 0) first_dim = d;
        done += k;
    }
    for (int i = 0; i < n; i++)
        mg_vec_normalize(vecs[i], first_dim);
    *dim = first_dim;
    return MG_OK;
}

mg_status mg_embed_text(const char *spec, const char *text, float **vec, int *dim, mg_error *err)
{
    *vec = NULL;
    return mg_embed_texts(spec, &text, 1, vec, dim, err);
}
