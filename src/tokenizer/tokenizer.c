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
 * Parsing a rank file costs about 22 ms of CPU for o200k_base's 200k tokens
 * (10 ms for cl100k_base) and 8.5 MB (4.8 MB) of tables, so it is done once:
 * the tables are written to a rank cache (rank_cache.c) beside the rank
 * file, or in the user's cache directory when that one is read-only, and
 * later opens read that cache page by page on demand (~0.5 ms to open, and
 * memory only for the pages lookups touch). A cache that is missing, stale
 * or damaged is rebuilt from the rank file; one that cannot be written
 * leaves the parsed tables in use. The handle says which happened
 * (from_cache, cache_note), for the tests.
 *
 * Which encoding a model uses is mg_model_encoding's table, below.
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
#include "tokenizer/rank_cache.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/sha256.h"
#include "util/text.h"

/* The encodings we know, with their token counts (a check on the file). */
static const struct encoding_info {
    const char *name;
    uint32_t tokens;
} encodings[] = {
    {"cl100k_base", 100256},
    {"o200k_base", 199998},
};

/* Which encoding each OpenAI model uses (tiktoken's model table), by prefix
 * of the model name, longest first, so dated snapshots ("gpt-4o-2024-08-06")
 * inherit their family's. Only "openai/" handles: other providers' models
 * have tokenizers of their own. The one table of this mapping. */
static const struct {
    const char *prefix;
    const char *encoding;
} model_encodings[] = {
    {"gpt-5", "o200k_base"},
    {"gpt-4.1", "o200k_base"},
    {"gpt-4.5", "o200k_base"},
    {"gpt-4o", "o200k_base"},
    {"chatgpt-4o", "o200k_base"},
    {"o1", "o200k_base"},
    {"o3", "o200k_base"},
    {"o4", "o200k_base"},
    {"gpt-4", "cl100k_base"}, /* gpt-4, gpt-4-turbo, gpt-4-32k */
    {"gpt-3.5", "cl100k_base"},
    {"gpt-35", "cl100k_base"}, /* Azure's spelling */
    {"text-embedding-3", "cl100k_base"},
    {"text-embedding-ada-002", "cl100k_base"},
};

const char *mg_model_encoding(const char *handle)
{
    static const char prefix[] = "openai/";
    if (!handle || strncmp(handle, prefix, sizeof prefix - 1) != 0) return NULL;
    int i = mg_longest_prefix(handle + sizeof prefix - 1, model_encodings,
                              sizeof model_encodings / sizeof model_encodings[0],
                              sizeof model_encodings[0]);
    return i < 0 ? NULL : model_encodings[i].encoding;
}

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

/* Reads all of `path`, and its stat (the version read). MG_ERR_NOT_FOUND if
 * it does not exist. */
static mg_status read_file(const char *path, char **data, size_t *len, struct stat *st,
                           mg_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        mg_status code = errno == ENOENT ? MG_ERR_NOT_FOUND : MG_ERR_IO;
        return mg_err_set(err, code, "%s: %s", path, strerror(errno));
    }
    if (fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode) || st->st_size > MAX_RANK_FILE) {
        fclose(f);
        return mg_err_set(err, MG_ERR_CORRUPT, "%s: not a rank file (too large or not a file)",
                          path);
    }
    size_t size = (size_t)st->st_size;
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

/* Where the cache of a rank file goes when its own directory is read-only:
 * $XDG_CACHE_HOME/memgpt (else ~/.cache/memgpt), named by the encoding and
 * a hash of the rank file's directory, so two installations do not share
 * one. 0 on success. */
static int user_cache_path(const char *dir, const char *encoding, char *out, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[PATH_MAX];
    if (xdg && *xdg == '/')
        snprintf(base, sizeof base, "%s/memgpt", xdg);
    else if (home && *home == '/')
        snprintf(base, sizeof base, "%s/.cache/memgpt", home);
    else
        return -1;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", base);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) *slash = '\0';
    mkdir(parent, 0755); /* ~/.cache, if missing; failures show below */
    if (mkdir(base, 0755) != 0 && errno != EEXIST) return -1;
    char real[PATH_MAX];
    const char *name = realpath(dir, real) ? real : dir;
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    snprintf(out, size, "%s/%s-%016llx.mgcache", base, encoding, (unsigned long long)h);
    return 0;
}

/* Loads the ranks of `dir`/NAME.tiktoken: from its cache if one is valid,
 * else by parsing the rank file and writing the cache for the next open
 * (beside the rank file, or in the user's cache directory when that one is
 * read-only). A cache that cannot be written is not an error. */
static mg_status load_from(mg_tokenizer *tok, const struct encoding_info *enc, const char *dir,
                           mg_error *err)
{
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s.tiktoken", dir, enc->name);
    struct stat st;
    if (stat(path, &st) != 0) {
        mg_status code = errno == ENOENT ? MG_ERR_NOT_FOUND : MG_ERR_IO;
        return mg_err_set(err, code, "%s: %s", path, strerror(errno));
    }
    rank_stamp stamp;
    rank_stamp_of(&st, &stamp);
    char caches[2][PATH_MAX + 128];
    int ncaches = 0;
    snprintf(caches[ncaches++], sizeof caches[0], "%s/%s.mgcache", dir, enc->name);
    int beside_writable = access(dir, W_OK) == 0;
    if (!beside_writable && user_cache_path(dir, enc->name, caches[ncaches], sizeof caches[0]) == 0)
        ncaches++;
    mg_error why = {0};
    for (int i = 0; i < ncaches; i++) {
        mg_error e = {0};
        mg_status st_map =
            rank_cache_open(caches[i], enc->name, enc->tokens, &stamp, &tok->ranks, &e);
        if (st_map == MG_OK) {
            tok->from_cache = 1;
            snprintf(tok->cache_path, sizeof tok->cache_path, "%.*s", PATH_MAX, caches[i]);
            return MG_OK;
        }
        if (i == 0 || st_map != MG_ERR_NOT_FOUND) why = e;
    }

    char *data;
    size_t len;
    mg_status st_read = read_file(path, &data, &len, &st, err);
    if (st_read) return st_read;
    mg_status st_parse = bpe_ranks_parse(&tok->ranks, data, len, enc->tokens, err);
    uint8_t digest[32];
    if (!st_parse) {
        mg_sha256 sha;
        mg_sha256_init(&sha);
        mg_sha256_update(&sha, data, len);
        mg_sha256_final(&sha, digest);
    }
    free(data);
    if (st_parse) return mg_err_wrap(err, "%s is malformed: ", path);
    rank_stamp_of(&st, &stamp); /* the version actually read */
    const char *target = caches[ncaches - 1];
    snprintf(tok->cache_path, sizeof tok->cache_path, "%.*s", PATH_MAX, target);
    mg_error werr = {0};
    if (rank_cache_write(target, enc->name, &tok->ranks, &stamp, digest, &werr) == MG_OK)
        snprintf(tok->cache_note, sizeof tok->cache_note, "rebuilt (%s)",
                 why.code == MG_ERR_NOT_FOUND ? "there was none" : why.message);
    else
        snprintf(tok->cache_note, sizeof tok->cache_note, "not written: %s", werr.message);
    return MG_OK;
}

/* The directories the rank files are looked for in, in order: `dir` if
 * given, else $MEMGPT_TOKENIZER_DIR if set, else beside the executable. */
static size_t search_dirs(const char *dir, char dirs[2][PATH_MAX + 32])
{
    size_t ndirs = 0;
    const char *env = getenv("MEMGPT_TOKENIZER_DIR");
    if (dir) {
        snprintf(dirs[ndirs++], PATH_MAX + 32, "%s", dir);
    } else if (env && *env) {
        snprintf(dirs[ndirs++], PATH_MAX + 32, "%s", env);
    } else {
        char exe[PATH_MAX];
        exe_dir(exe, sizeof exe);
        if (exe[0]) {
            snprintf(dirs[ndirs++], PATH_MAX + 32, "%s/share/memgpt", exe);
            snprintf(dirs[ndirs++], PATH_MAX + 32, "%s/../share/memgpt", exe);
        }
    }
    return ndirs;
}

static void say_missing(const char *encoding, const buf *looked, char *out, size_t size)
{
    snprintf(out, size,
             "no %s.tiktoken in %s (run make to fetch it, or set MEMGPT_TOKENIZER_DIR); "
             "token counts are estimates",
             encoding, looked->len ? looked->data : "any known directory");
}

int tokenizer_probe(const char *encoding, char *why, size_t size)
{
    char dirs[2][PATH_MAX + 32];
    size_t ndirs = search_dirs(NULL, dirs);
    buf looked = BUF_INIT;
    for (size_t i = 0; i < ndirs; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%.*s/%.32s.tiktoken", PATH_MAX, dirs[i], encoding);
        struct stat st;
        if (stat(path, &st) == 0) {
            buf_free(&looked);
            return 1;
        }
        buf_printf(&looked, "%s%s", i ? ", " : "", dirs[i]);
    }
    say_missing(encoding, &looked, why, size);
    buf_free(&looked);
    return 0;
}

/* Finds and loads the ranks; on failure leaves a status line saying why. */
static void load_ranks(mg_tokenizer *tok, const struct encoding_info *enc, const char *dir)
{
    char dirs[2][PATH_MAX + 32];
    size_t ndirs = search_dirs(dir, dirs);
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
    say_missing(enc->name, &looked, tok->status, sizeof tok->status);
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
        /* The offsets may come from a cache file: never trusted. */
        size_t size;
        if (!bpe_token(r, ids[i], &size))
            return mg_err_set(err, MG_ERR_CORRUPT, "the %s rank table is damaged at token %u",
                              tok->encoding, ids[i]);
        total += size;
    }
    char *out = mg_xmalloc(total + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size;
        const uint8_t *token = bpe_token(r, ids[i], &size);
        memcpy(out + at, token, size);
        at += size;
    }
    out[at] = '\0';
    *text = out;
    if (len) *len = at;
    return MG_OK;
}
