/*
 * tokenizer.c - the public mg_tokenizer: finding the rank file, falling back
 * to the estimate, and the encode/count/decode loops.
 *
 * Where the ranks come from. The rank files are data, not code: `make`
 * fetches them (scripts/fetch-tokenizer-data.sh, pinned by SHA-256) and puts
 * them in share/memgpt/ next to the binary. At run time they are looked up
 * in $MEMGPT_TOKENIZER_DIR if that is set (and only there, so a test or a
 * packager gets exactly what it asked for), else in share/memgpt/ beside the
 * executable (the build tree) and then ../share/memgpt/ (an installed
 * bin/ + share/ layout), the executable's directory coming from
 * /proc/self/exe so the working directory does not matter.
 *
 * When they are missing or damaged the tokenizer still opens, but counts
 * with mg_tokens_estimate, which errs high, so a context budget built on it
 * stays safe. The library cannot print; mg_tokenizer_status gives the caller
 * one line to show the user once. Encoding to ids then fails: an estimate
 * has no ids.
 *
 * A rank file is parsed in full when the tokenizer opens (about 20 ms of CPU
 * for o200k_base's 200k tokens, 10 ms for cl100k_base, on the benchmark
 * machine), and the file's text is freed right after; the handle keeps the
 * token bytes, offsets and tables: about 8.5 MB for o200k_base, 4.8 MB for
 * cl100k_base.
 */
#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context/tokens.h"
#include "util/buf.h"
#include "util/err.h"

/* The encodings we know, with their token counts (a check on the file). */
static const struct encoding_info {
    const char *name;
    uint32_t tokens;
} encodings[] = {
    {"cl100k_base", 100256},
    {"o200k_base", 199998},
};

/* Rank files are a few MB; anything far larger is not one. */
#define MAX_RANK_FILE (64u << 20)

/* Merges number byte positions with 32 bits. */
#define MAX_TEXT ((size_t)UINT32_MAX - 1)

static const struct encoding_info *find_encoding(const char *name)
{
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++)
        if (strcmp(encodings[i].name, name) == 0) return &encodings[i];
    return NULL;
}

/* ------------------------------------------------------------ the file */

/* Reads all of `path`. MG_ERR_NOT_FOUND if it does not exist. */
static mg_status read_file(const char *path, char **data, size_t *len, mg_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        mg_status code = errno == ENOENT ? MG_ERR_NOT_FOUND : MG_ERR_IO;
        return mg_err_set(err, code, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_RANK_FILE) {
        fclose(f);
        return mg_err_set(err, MG_ERR_CORRUPT, "%s: not a rank file (too large or not a file)",
                          path);
    }
    size_t size = (size_t)st.st_size;
    char *text = mg_xmalloc(size + 1);
    size_t got = fread(text, 1, size, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != size) {
        free(text);
        return mg_err_set(err, MG_ERR_IO, "%s: read failed", path);
    }
    text[size] = '\0';
    *data = text;
    *len = size;
    return MG_OK;
}

/* The directory holding the running executable, or "" if unknown. */
static void exe_dir(char *out, size_t size)
{
    out[0] = '\0';
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(out, size, "%s", path);
}

/* Parses the rank file in `dir` into tok->ranks. */
static mg_status load_from(mg_tokenizer *tok, const struct encoding_info *enc, const char *dir,
                           mg_error *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.tiktoken", dir, enc->name);
    char *data;
    size_t len;
    mg_status st = read_file(path, &data, &len, err);
    if (st) return st;
    st = bpe_ranks_parse(&tok->ranks, data, len, enc->tokens, err);
    free(data);
    if (st) mg_err_wrap(err, "%s is malformed: ", path);
    return st;
}

/* Finds and loads the ranks; on failure leaves a status line saying why. */
static void load_ranks(mg_tokenizer *tok, const struct encoding_info *enc, const char *dir)
{
    char dirs[2][PATH_MAX + 32];
    size_t ndirs = 0;
    const char *env = getenv("MEMGPT_TOKENIZER_DIR");
    if (dir) {
        snprintf(dirs[ndirs++], sizeof dirs[0], "%s", dir);
    } else if (env && *env) {
        snprintf(dirs[ndirs++], sizeof dirs[0], "%s", env);
    } else {
        char exe[PATH_MAX];
        exe_dir(exe, sizeof exe);
        if (exe[0]) {
            snprintf(dirs[ndirs++], sizeof dirs[0], "%s/share/memgpt", exe);
            snprintf(dirs[ndirs++], sizeof dirs[0], "%s/../share/memgpt", exe);
        }
    }
    buf looked = BUF_INIT;
    for (size_t i = 0; i < ndirs; i++) {
        mg_error e = {0};
        mg_status st = load_from(tok, enc, dirs[i], &e);
        if (st == MG_OK) {
            tok->exact = 1;
            buf_free(&looked);
            return;
        }
        if (st != MG_ERR_NOT_FOUND) { /* present but unusable: say so */
            snprintf(tok->status, sizeof tok->status, "%s; token counts are estimates", e.message);
            buf_free(&looked);
            return;
        }
        buf_printf(&looked, "%s%s", i ? ", " : "", dirs[i]);
    }
    snprintf(tok->status, sizeof tok->status,
             "no %s.tiktoken in %s (run make to fetch it, or set MEMGPT_TOKENIZER_DIR); "
             "token counts are estimates",
             enc->name, looked.len ? buf_str(&looked) : "any known directory");
    buf_free(&looked);
}

/* -------------------------------------------------------------- handle */

mg_status tokenizer_open_in(const char *encoding, const char *dir, mg_tokenizer **out,
                            mg_error *err)
{
    *out = NULL;
    const struct encoding_info *enc = encoding ? find_encoding(encoding) : NULL;
    if (!enc)
        return mg_err_set(err, MG_ERR_USAGE,
                          "unknown encoding '%s' (known: cl100k_base, o200k_base)",
                          encoding ? encoding : "(null)");
    mg_tokenizer *tok = mg_xcalloc(1, sizeof *tok);
    snprintf(tok->encoding, sizeof tok->encoding, "%s", enc->name);
    load_ranks(tok, enc, dir);
    if (tok->exact) {
        mg_status st = pretok_open(enc->name, &tok->pt, err);
        if (st) {
            mg_tokenizer_free(tok);
            return st;
        }
    }
    *out = tok;
    return MG_OK;
}

mg_status mg_tokenizer_open(const char *encoding, mg_tokenizer **out, mg_error *err)
{
    return tokenizer_open_in(encoding, NULL, out, err);
}

void mg_tokenizer_free(mg_tokenizer *tok)
{
    if (!tok) return;
    bpe_ranks_free(&tok->ranks);
    bpe_scratch_free(&tok->scratch);
    pretok_free(tok->pt);
    free(tok);
}

int mg_tokenizer_exact(const mg_tokenizer *tok)
{
    return tok->exact;
}

const char *mg_tokenizer_status(const mg_tokenizer *tok)
{
    return tok->exact ? NULL : tok->status;
}

const char *mg_tokenizer_encoding(const mg_tokenizer *tok)
{
    return tok->encoding;
}

/* ------------------------------------------------------------- encoding */

typedef struct idvec {
    uint32_t *v;
    size_t n, cap;
} idvec;

static void idvec_reserve(idvec *ids, size_t more)
{
    if (ids->cap - ids->n >= more) return;
    size_t cap = ids->cap ? ids->cap : 64;
    while (cap - ids->n < more)
        cap *= 2;
    ids->v = mg_xrealloc(ids->v, cap * sizeof *ids->v);
    ids->cap = cap;
}

/* Encodes text into `out`, or only counts when out is NULL. A piece of n
 * bytes yields at most n ids, so n slots are made ready before each. */
static size_t encode_text(mg_tokenizer *tok, const char *text, size_t len, idvec *out)
{
    const uint8_t *p = (const uint8_t *)text;
    uint32_t small[BPE_SMALL_PIECE];
    idvec spare = {0};
    size_t count = 0, start, end;
    pretok_iter it;
    pretok_begin(&it, text, len);
    while (pretok_next(tok->pt, &it, &start, &end)) {
        size_t n = end - start;
        uint32_t *dst;
        if (out) {
            idvec_reserve(out, n);
            dst = out->v + out->n;
        } else if (n <= BPE_SMALL_PIECE) {
            dst = small;
        } else {
            idvec_reserve(&spare, n);
            dst = spare.v;
        }
        size_t k = bpe_encode_piece(&tok->ranks, &tok->scratch, p + start, n, dst);
        if (out) out->n += k;
        count += k;
    }
    free(spare.v);
    return count;
}

size_t mg_tokenizer_count(mg_tokenizer *tok, const char *text, size_t len)
{
    if (!text || !len) return 0;
    if (!tok->exact || len > MAX_TEXT) return (size_t)mg_tokens_estimate(text, len);
    return encode_text(tok, text, len, NULL);
}

mg_status mg_tokenizer_encode(mg_tokenizer *tok, const char *text, size_t len, uint32_t **ids,
                              size_t *n, mg_error *err)
{
    *ids = NULL;
    *n = 0;
    if (!tok->exact) return mg_err_set(err, MG_ERR_NOT_FOUND, "%s", tok->status);
    if (!text && len) return mg_err_set(err, MG_ERR_USAGE, "no text to encode");
    if (len > MAX_TEXT) return mg_err_set(err, MG_ERR_TOO_LARGE, "text over 4 GiB");
    idvec out = {0};
    idvec_reserve(&out, len / 4 + 16);
    if (len) encode_text(tok, text, len, &out);
    *ids = out.v;
    *n = out.n;
    return MG_OK;
}

mg_status mg_tokenizer_decode(mg_tokenizer *tok, const uint32_t *ids, size_t n, char **text,
                              size_t *len, mg_error *err)
{
    *text = NULL;
    if (len) *len = 0;
    if (!tok->exact) return mg_err_set(err, MG_ERR_NOT_FOUND, "%s", tok->status);
    const bpe_ranks *r = &tok->ranks;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= r->n)
            return mg_err_set(err, MG_ERR_USAGE, "token id %u is not in %s (0..%u)", ids[i],
                              tok->encoding, r->n - 1);
        total += r->off[ids[i] + 1] - r->off[ids[i]];
    }
    char *out = mg_xmalloc(total + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t from = r->off[ids[i]], size = r->off[ids[i] + 1] - from;
        memcpy(out + at, r->bytes + from, size);
        at += size;
    }
    out[at] = '\0';
    *text = out;
    if (len) *len = at;
    return MG_OK;
}
