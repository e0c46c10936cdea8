/*
 * archival_load.c - mg_archival_load (files into archival memory) and
 * mg_archival_reembed (every passage again, with the agent's embedder).
 *
 * A load runs in three stages. First, passages stored without a content hash
 * (by the agent, by `archival insert`, before migration 4) get one, so the
 * duplicate check sees everything. Second, every path is walked and the
 * files listed with their sizes: the byte total makes progress and ETA
 * honest from the first callback. Third, each file is read, cut into chunks
 * (memory/loader.c) and each chunk hashed; a chunk whose hash the agent
 * already has, or that is already waiting in the batch, is counted as a
 * duplicate before it costs an embedding. The batch is embedded outside any
 * transaction (an embeddings endpoint may take seconds, and a transaction
 * would block a chat sharing the database for that long), then written in one
 * short transaction that checks each hash again, so two loads racing cannot
 * store a chunk twice. A batch may span files: many small files cost one
 * commit per batch_size chunks, not one per file.
 *
 * Per-file trouble (unreadable, binary, bad JSON line, pdftotext failing) is
 * reported through the callback and the load goes on. Only failures that
 * would fail every later file too (database, embedder) stop it; what was
 * committed stays, and running the load again adds only what is missing.
 *
 * Re-embedding walks the passages whose recorded embedder is not the agent's
 * in id order, in batches, each committed on its own: it is resumable by
 * construction, since finished passages no longer match the query.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "context/tokens.h"
#include "embed/embedder.h"
#include "memory/loader.h"
#include "memory/passages_db.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

#define DEFAULT_BATCH       256
#define MAX_BATCH           10000
#define DEFAULT_PDF_TIMEOUT 120
#define MAX_PDF_TEXT        ((size_t)256 << 20)
#define DEFAULT_REEMBED     64

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A chunk waiting for its batch to be embedded and stored. */
typedef struct pending {
    char *text;
    char hash[65];
    char *source; /* shared per file; owned by the run's `sources` list */
    int64_t position;
    char *tags_json;
    int64_t time_ms;
} pending;

typedef struct load_run {
    mg_agent *agent;
    mg_load_options opts;
    mg_load_progress_fn progress;
    void *user;
    mg_load_stats stats;
    double started;
    int64_t now_ms; /* the time loaded passages get, unless a JSON line says */
    passages_db db;
    pending *batch;
    int nbatch;
    char **sources; /* sources of the pending chunks, freed after each flush */
    int nsources, cap_sources;
    /* The file being loaded. */
    const char *path;
    int64_t file_base; /* bytes_done when it started */
    int64_t file_size;
    int file_failed;
} load_run;

static void emit(load_run *r, mg_load_event_type type, const char *path, int line,
                 const mg_error *error)
{
    r->stats.seconds = seconds_now() - r->started;
    if (!r->progress) return;
    mg_load_event ev = {type, &r->stats, path, line, error};
    r->progress(&ev, r->user);
}

/* A problem with one path or line: reported, counted, and the load goes on. */
static void report(load_run *r, const char *path, int line, const mg_error *error)
{
    r->stats.errors++;
    if (!r->file_failed) {
        r->stats.files_failed++;
        r->file_failed = 1;
    }
    emit(r, MG_LOAD_FILE_ERROR, path, line, error);
}

static void walk_error(void *ctx, const char *path, const mg_error *error)
{
    load_run *r = ctx;
    r->file_failed = 0; /* each bad path counts as one failed file */
    report(r, path, 0, error);
}

static mg_status check_options(const mg_load_options *in, mg_load_options *out, mg_error *err)
{
    *out = in ? *in : (mg_load_options){0};
    if (!out->chunk_tokens) out->chunk_tokens = LOADER_DEFAULT_CHUNK_TOKENS;
    if (out->chunk_tokens < LOADER_MIN_CHUNK_TOKENS || out->chunk_tokens > LOADER_MAX_CHUNK_TOKENS)
        return mg_err_set(err, MG_ERR_USAGE, "the chunk size must be %d-%d tokens",
                          LOADER_MIN_CHUNK_TOKENS, LOADER_MAX_CHUNK_TOKENS);
    if (!out->overlap_tokens) out->overlap_tokens = out->chunk_tokens / 6;
    if (out->overlap_tokens == -1) out->overlap_tokens = 0;
    if (out->overlap_tokens < 0 || out->overlap_tokens >= out->chunk_tokens / 2)
        return mg_err_set(err, MG_ERR_USAGE,
                          "the overlap must be 0 or more and below half the chunk size (%d "
                          "tokens)",
                          out->chunk_tokens / 2);
    if (!out->batch_size) out->batch_size = DEFAULT_BATCH;
    if (out->batch_size < 1 || out->batch_size > MAX_BATCH)
        return mg_err_set(err, MG_ERR_USAGE, "the batch size must be 1-%d", MAX_BATCH);
    if (!out->pdf_timeout_seconds) out->pdf_timeout_seconds = DEFAULT_PDF_TIMEOUT;
    if (out->pdf_timeout_seconds < 1 || out->pdf_timeout_seconds > 86400)
        return mg_err_set(err, MG_ERR_USAGE, "the PDF timeout must be 1-86400 seconds");
    return MG_OK;
}

static void free_pending(load_run *r)
{
    for (int i = 0; i < r->nbatch; i++) {
        free(r->batch[i].text);
        free(r->batch[i].tags_json);
    }
    r->nbatch = 0;
    /* The current file's source stays alive for the chunks still to come. */
    int keep = r->nsources > 0 ? 1 : 0;
    for (int i = 0; i < r->nsources - keep; i++)
        free(r->sources[i]);
    if (keep) r->sources[0] = r->sources[r->nsources - 1];
    r->nsources = keep;
}

/* Embeds the batch, then stores it in one transaction. */
static mg_status flush(load_run *r, mg_error *err)
{
    if (r->nbatch == 0) return MG_OK;
    mg_agent *a = r->agent;
    float **vecs = mg_xcalloc((size_t)r->nbatch, sizeof *vecs);
    int dim = 0;
    mg_status st = MG_OK;
    for (int i = 0; i < r->nbatch && !st; i++) {
        int d;
        st = mg_embed_text(a->embedder, r->batch[i].text, &vecs[i], &d, err);
        if (!st && i > 0 && d != dim)
            st = mg_err_set(err, MG_ERR_PROVIDER,
                            "the embedder changed dimensions mid-load (%d, then %d)", dim, d);
        dim = d;
    }
    if (st) mg_err_wrap(err, "embedding passages: ");
    int64_t added = 0, skipped = 0;
    if (!st) st = store_begin(a->store, err);
    if (!st) {
        for (int i = 0; i < r->nbatch && !st; i++) {
            const pending *p = &r->batch[i];
            int found;
            st = passages_db_has_hash(&r->db, p->hash, &found, err);
            if (st) break;
            if (found) {
                skipped++;
                continue;
            }
            passage_new row = {p->text, p->tags_json, p->time_ms, p->source, p->position,
                               p->hash, a->embedder,  vecs[i],    dim};
            st = passages_db_insert(&r->db, &row, err);
            added++;
        }
        if (st)
            store_rollback(a->store);
        else
            st = store_commit(a->store, err);
    }
    for (int i = 0; i < r->nbatch; i++)
        free(vecs[i]);
    free(vecs);
    free_pending(r);
    if (st) return st;
    r->stats.chunks_added += added;
    r->stats.chunks_skipped += skipped;
    a->archival_count += added;
    emit(r, MG_LOAD_PROGRESS, r->path, 0, NULL);
    return MG_OK;
}

/* Queues one chunk (taking `text`), unless it is a duplicate. */
static mg_status add_chunk(load_run *r, char *text, size_t len, int64_t position,
                           const char *tags_json, int64_t time_ms, mg_error *err)
{
    char hash[65];
    loader_content_hash(text, len, hash);
    int found = 0;
    for (int i = 0; i < r->nbatch && !found; i++)
        found = memcmp(r->batch[i].hash, hash, 64) == 0;
    mg_status st = found ? MG_OK : passages_db_has_hash(&r->db, hash, &found, err);
    if (st || found) {
        free(text);
        if (found) r->stats.chunks_skipped++;
        return st;
    }
    pending *p = &r->batch[r->nbatch++];
    p->text = text;
    memcpy(p->hash, hash, sizeof hash);
    p->source = r->sources[r->nsources - 1];
    p->position = position;
    p->tags_json = tags_json ? mg_xstrdup(tags_json) : NULL;
    p->time_ms = time_ms ? time_ms : r->now_ms;
    return r->nbatch >= r->opts.batch_size ? flush(r, err) : MG_OK;
}

/* Progress within the current file, as a share of its size. */
static void advance(load_run *r, size_t done, size_t total)
{
    if (total == 0) return;
    r->stats.bytes_done = r->file_base + (int64_t)((double)r->file_size * done / total);
}

/* Chunks text[0, len) (positions count from `base`). */
static mg_status load_text(load_run *r, const char *text, size_t len, int64_t base,
                           const char *tags_json, int64_t time_ms, int64_t fixed_position,
                           mg_error *err)
{
    loader_chunker c;
    loader_chunker_init(&c, text, len, r->opts.chunk_tokens, r->opts.overlap_tokens);
    loader_chunk chunk;
    mg_status st = MG_OK;
    while (!st && loader_chunker_next(&c, &chunk)) {
        size_t n;
        char *passage = loader_chunk_text(text, &chunk, &n);
        int64_t position = fixed_position >= 0 ? fixed_position : base + (int64_t)chunk.start;
        st = add_chunk(r, passage, n, position, tags_json, time_ms, err);
        if (fixed_position < 0) advance(r, chunk.end, len);
    }
    loader_chunker_free(&c);
    return st;
}

/* One passage per line; a line too long for one chunk is chunked. */
static mg_status load_jsonl(load_run *r, const char *data, size_t len, mg_error *err)
{
    mg_status st = MG_OK;
    size_t pos = 0;
    int line_no = 0;
    while (!st && pos < len) {
        const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos, line_start = pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        if (n && line[n - 1] == '\r') n--;
        size_t blank = 0;
        while (blank < n && (line[blank] == ' ' || line[blank] == '\t'))
            blank++;
        if (blank == n) continue;
        loader_record rec;
        mg_error line_err = {0};
        if (loader_jsonl_parse(line, n, &rec, &line_err)) {
            report(r, r->path, line_no, &line_err);
            continue;
        }
        if (mg_tokens_estimate(rec.text, rec.text_len) <= r->opts.chunk_tokens)
            st = add_chunk(r, mg_xstrndup(rec.text, rec.text_len), rec.text_len,
                           (int64_t)line_start, rec.tags_json, rec.time_ms, err);
        else
            st = load_text(r, rec.text, rec.text_len, 0, rec.tags_json, rec.time_ms,
                           (int64_t)line_start, err);
        loader_record_clear(&rec);
        advance(r, pos, len);
    }
    return st;
}

static void push_source(load_run *r, const char *path)
{
    if (r->nsources == r->cap_sources) {
        r->cap_sources = r->cap_sources ? r->cap_sources * 2 : 16;
        r->sources = mg_xrealloc(r->sources, (size_t)r->cap_sources * sizeof *r->sources);
    }
    char *resolved = realpath(path, NULL);
    r->sources[r->nsources++] = resolved ? resolved : mg_xstrdup(path);
}

/* Loads one file. Only errors that must stop the whole load are returned. */
static mg_status load_file(load_run *r, const loader_file *f, mg_error *err)
{
    r->path = f->path;
    r->file_base = r->stats.bytes_done;
    r->file_size = f->size;
    r->file_failed = 0;
    push_source(r, f->path);
    char *data = NULL;
    size_t len = 0, skip = 0;
    mg_error file_err = {0};
    mg_status st = MG_OK, file_st;
    if (f->kind == LOADER_PDF) {
        file_st = loader_pdf_text(f->path, r->opts.pdf_timeout_seconds * 1000, MAX_PDF_TEXT, &data,
                                  &len, &file_err);
    } else {
        file_st = loader_read_file(f->path, LOADER_MAX_FILE_BYTES, &data, &len, &file_err);
        if (!file_st) file_st = loader_check_text(data, len, &skip, &file_err);
    }
    if (file_st)
        report(r, f->path, 0, &file_err);
    else if (f->kind == LOADER_JSONL)
        st = load_jsonl(r, data + skip, len - skip, err);
    else
        st = load_text(r, data + skip, len - skip, (int64_t)skip, NULL, 0, -1, err);
    free(data);
    if (st) return st;
    r->stats.files_done++;
    r->stats.bytes_done = r->file_base + r->file_size;
    emit(r, MG_LOAD_PROGRESS, f->path, 0, NULL);
    return MG_OK;
}

mg_status mg_archival_load(mg_agent *agent, const char *const *paths, int npaths,
                           const mg_load_options *opts, mg_load_progress_fn progress, void *user,
                           mg_load_stats *stats, mg_error *err)
{
    if (stats) memset(stats, 0, sizeof *stats);
    load_run r = {.agent = agent, .progress = progress, .user = user, .started = seconds_now()};
    mg_status st = agent_check_usable(agent, err);
    if (!st && (npaths < 1 || !paths))
        st = mg_err_set(err, MG_ERR_USAGE, "give at least one file or directory to load");
    if (!st) st = check_options(opts, &r.opts, err);
    if (!st) st = passages_db_backfill(agent->store, agent->id, NULL, err);
    if (st) return st;
    r.now_ms = mg_now_ms();

    loader_files files = {0};
    for (int i = 0; i < npaths; i++)
        loader_walk(paths[i], &files, walk_error, &r);
    r.stats.files_ignored = files.ignored;
    r.stats.files_total = (int64_t)files.count;
    for (size_t i = 0; i < files.count; i++)
        r.stats.bytes_total += files.items[i].size;

    if (getenv("XP_CACHE")) { char q[64]; snprintf(q, sizeof q, "PRAGMA cache_size=%s", getenv("XP_CACHE")); store_exec(agent->store, q, err); }
    if (getenv("XP_CKPT")) { char q[64]; snprintf(q, sizeof q, "PRAGMA wal_autocheckpoint=%s", getenv("XP_CKPT")); store_exec(agent->store, q, err); }
    st = passages_db_open(&r.db, agent->store, agent->id, err);
    if (!st) {
        r.batch = mg_xcalloc((size_t)r.opts.batch_size, sizeof *r.batch);
        emit(&r, MG_LOAD_PROGRESS, NULL, 0, NULL);
        for (size_t i = 0; i < files.count && !st; i++)
            st = load_file(&r, &files.items[i], err);
        if (!st) st = flush(&r, err);
        if (st) free_pending(&r);
        passages_db_close(&r.db);
    }
    for (int i = 0; i < r.nsources; i++)
        free(r.sources[i]);
    free(r.sources);
    free(r.batch);
    loader_files_free(&files);
    r.stats.seconds = seconds_now() - r.started;
    if (stats) *stats = r.stats;
    return st;
}

/* ------------------------------------------------------------ reembed */

static mg_status reembed_batch(mg_agent *a, const passage_text *items, int n, mg_error *err)
{
    float **vecs = mg_xcalloc((size_t)n, sizeof *vecs);
    int *dims = mg_xcalloc((size_t)n, sizeof *dims);
    mg_status st = MG_OK;
    for (int i = 0; i < n && !st; i++)
        st = mg_embed_text(a->embedder, items[i].text, &vecs[i], &dims[i], err);
    if (st) mg_err_wrap(err, "re-embedding passage %lld: ", (long long)items[0].id);
    if (!st) st = store_begin(a->store, err);
    if (!st) {
        for (int i = 0; i < n && !st; i++)
            st = passages_db_set_embedding(a->store, items[i].id, a->embedder, vecs[i], dims[i],
                                           err);
        if (st)
            store_rollback(a->store);
        else
            st = store_commit(a->store, err);
    }
    for (int i = 0; i < n; i++)
        free(vecs[i]);
    free(vecs);
    free(dims);
    return st;
}

mg_status mg_archival_reembed(mg_agent *agent, int batch_size, mg_reembed_progress_fn progress,
                              void *user, mg_reembed_stats *stats, mg_error *err)
{
    mg_reembed_stats s = {0};
    if (stats) *stats = s;
    double started = seconds_now();
    if (batch_size == 0) batch_size = DEFAULT_REEMBED;
    mg_status st = agent_check_usable(agent, err);
    if (!st && (batch_size < 1 || batch_size > MAX_BATCH))
        st = mg_err_set(err, MG_ERR_USAGE, "the batch size must be 1-%d", MAX_BATCH);
    if (!st)
        st = passages_db_count_embedders(agent->store, agent->id, agent->embedder, &s.total,
                                         &s.current, err);
    if (st) return st;
    if (progress) progress(&s, user);
    int64_t after = 0;
    while (!st) {
        passage_text *items;
        int n;
        st = passages_db_stale(agent->store, agent->id, agent->embedder, after, batch_size, &items,
                               &n, err);
        if (st || n == 0) break;
        st = reembed_batch(agent, items, n, err);
        if (!st) {
            s.done += n;
            after = items[n - 1].id;
            s.seconds = seconds_now() - started;
            if (progress) progress(&s, user);
        }
        passage_texts_free(items, n);
    }
    s.seconds = seconds_now() - started;
    if (stats) *stats = s;
    return st;
}
