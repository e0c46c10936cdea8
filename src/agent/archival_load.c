/*
 * archival_load.c - mg_archival_load (files into archival memory) and
 * mg_archival_reembed (every passage again, with the agent's embedder).
 *
 * A load runs in stages. Passages stored without a content hash (by the
 * agent, by `archival insert`, before migration 4) get one, so duplicates of
 * anything already stored are recognised. Every path is walked and the files
 * listed with their sizes, so progress and ETA are honest from the first
 * callback. The hashes the agent already has are read into a hash set.
 *
 * Then two threads form a pipeline. A producer thread reads each file, cuts
 * it into chunks (memory/loader.c), hashes each chunk, drops those in the
 * set (already stored, or seen earlier in this load: they never cost an
 * embedding, which matters for a paid embeddings endpoint), and embeds the
 * rest in batches. The calling thread takes the batches from a short queue
 * and writes each in one transaction. Writing is the larger half of the work
 * (the FTS5 index of passages costs more than chunking and the offline
 * embedder together), so the two halves run side by side on two cores, and
 * with a network embedder the requests overlap the writes. The queue holds
 * at most QUEUED_BATCHES batches, which bounds memory.
 *
 * Only the calling thread touches SQLite and calls the caller's callback;
 * the producer sends per-file errors and "file done" marks through the same
 * queue, in order, so events arrive as if the load were sequential. A
 * transaction checks each hash once more before inserting, so two loads
 * running at once cannot store a chunk twice.
 *
 * Per-file trouble (unreadable, binary, bad JSON line, pdftotext failing) is
 * reported and the load goes on. Failures that would fail every later file
 * too (database, embedder) stop it: the calling thread raises `cancel`, the
 * producer stops at its next batch, the queue is drained, and what was
 * committed stays; running the load again adds only what is missing.
 *
 * Re-embedding walks the passages whose recorded embedder is not the agent's
 * in id order, in batches, each committed on its own: it is resumable by
 * construction, since finished passages no longer match the query.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "context/tokens.h"
#include "embed/embedder.h"
#include "memory/archival_index.h"
#include "memory/loader.h"
#include "memory/passages_db.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

/* Passages a transaction commits. Each commit writes the content-hash
 * index's pages that its passages touched, and SHA-256 keys fall on
 * different pages: at 256 a passage, at 4,096 a fraction of one. A 100 MB
 * load took 8.3 s at 256, 7.0 at 1,024 and 6.7 at 4,096 and at 8,192
 * (bench/README.md, section 6); the writer holds the database's write lock
 * ~0.3 s a batch there. A network embedder still gets requests of at most
 * MG_EMBED_MAX_INPUTS texts (embed/embedder.h). */
#define DEFAULT_BATCH       4096
#define MAX_BATCH           10000
#define DEFAULT_PDF_TIMEOUT 120
#define MAX_PDF_TEXT        ((size_t)256 << 20)
#define DEFAULT_REEMBED     64
#define QUEUED_BATCHES      2
#define LOAD_CACHE_SIZE     "-65536" /* KiB: 64 MiB of page cache while loading */
#define LOAD_WAL_PAGES      "32768"  /* pages the WAL grows to between checkpoints while loading */

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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

/* ----------------------------------------------------------- hash set */

/* SHA-256 digests, open addressing, linear probing. An all-zero digest marks
 * an empty slot (no text hashes to it in practice). */
typedef struct hash_set {
    unsigned char (*slots)[32];
    size_t cap, count; /* cap is a power of two, at least twice count */
} hash_set;

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* 64 hex digits to 32 bytes; 0 if `hex` is not that. */
static int digest_of(const char *hex, unsigned char out[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
        if (lo < 0) return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return hex[64] == '\0';
}

static size_t slot_of(const hash_set *s, const unsigned char d[32])
{
    uint64_t h;
    memcpy(&h, d, sizeof h); /* the digest is already uniformly spread */
    return (size_t)h & (s->cap - 1);
}

static void set_grow(hash_set *s);

/* Adds d; returns 1 if it was new, 0 if already there. */
static int set_add(hash_set *s, const unsigned char d[32])
{
    static const unsigned char empty[32];
    if (2 * (s->count + 1) > s->cap) set_grow(s);
    for (size_t i = slot_of(s, d);; i = (i + 1) & (s->cap - 1)) {
        if (memcmp(s->slots[i], empty, 32) == 0) {
            memcpy(s->slots[i], d, 32);
            s->count++;
            return 1;
        }
        if (memcmp(s->slots[i], d, 32) == 0) return 0;
    }
}

static void set_grow(hash_set *s)
{
    hash_set bigger = {mg_xcalloc(s->cap ? s->cap * 2 : 1024, 32), s->cap ? s->cap * 2 : 1024, 0};
    static const unsigned char empty[32];
    for (size_t i = 0; i < s->cap; i++)
        if (memcmp(s->slots[i], empty, 32) != 0) set_add(&bigger, s->slots[i]);
    free(s->slots);
    *s = bigger;
}

/* Every content hash the agent has. */
static mg_status set_load(hash_set *s, mg_store *store, int64_t agent_id, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store,
                                 "SELECT content_hash FROM passages WHERE agent_id = ? AND "
                                 "content_hash IS NOT NULL",
                                 &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        unsigned char d[32];
        const char *hex = (const char *)sqlite3_column_text(stmt, 0);
        if (hex && digest_of(hex, d)) set_add(s, d);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? MG_OK : store_fail(store, err, "reading content hashes");
}

/* -------------------------------------------------------------- queue */

/* A chunk on its way to the database. */
typedef struct pending {
    char *text;
    char hash[65];
    char *source;
    int64_t position;
    char *tags_json;
    int64_t time_ms;
    float *vec;
    int dim;
} pending;

typedef enum item_kind {
    ITEM_BATCH,
    ITEM_FILE_ERROR,
    ITEM_FILE_DONE,
    ITEM_FATAL,
    ITEM_END
} item_kind;

/* What the producer tells the writer, in order. */
typedef struct item {
    struct item *next;
    item_kind kind;
    pending *rows; /* BATCH */
    int n;
    const char *path;   /* the file concerned (owned by the file list) */
    int64_t skipped;    /* duplicates dropped since the previous item */
    int64_t bytes_done; /* progress mark (BATCH, FILE_DONE) */
    int line;           /* FILE_ERROR */
    int first_error;    /* FILE_ERROR: the file's first */
    mg_error error;     /* FILE_ERROR, FATAL */
} item;

typedef struct queue {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    item *head, *tail;
    int batches; /* BATCH items waiting */
    int cancel;  /* set by the writer: stop producing */
} queue;

/* Appends an item. A batch waits while the queue is full (unless cancelled).
 * Returns 1 if the writer has cancelled. */
static int queue_put(queue *q, item *it)
{
    pthread_mutex_lock(&q->mu);
    while (it->kind == ITEM_BATCH && q->batches >= QUEUED_BATCHES && !q->cancel)
        pthread_cond_wait(&q->changed, &q->mu);
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    if (it->kind == ITEM_BATCH) q->batches++;
    int cancelled = q->cancel;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mu);
    return cancelled;
}

static item *queue_get(queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->head)
        pthread_cond_wait(&q->changed, &q->mu);
    item *it = q->head;
    q->head = it->next;
    if (!q->head) q->tail = NULL;
    if (it->kind == ITEM_BATCH) q->batches--;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mu);
    return it;
}

static void queue_cancel(queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->cancel = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->mu);
}

static int queue_cancelled(queue *q)
{
    pthread_mutex_lock(&q->mu);
    int c = q->cancel;
    pthread_mutex_unlock(&q->mu);
    return c;
}

static void free_rows(pending *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].text);
        free(rows[i].source);
        free(rows[i].tags_json);
        free(rows[i].vec);
    }
    free(rows);
}

static void free_item(item *it)
{
    free_rows(it->rows, it->n);
    free(it);
}

/* ----------------------------------------------------------- producer */

typedef struct producer {
    queue *q;
    mg_load_options opts;
    const char *embedder;
    const loader_files *files;
    hash_set seen;
    int64_t now_ms; /* the time loaded passages get, unless a JSON line says */
    int first_dim;  /* the dimension of the first batch's vectors; 0 before it */
    pending *batch;
    int nbatch;
    int64_t skipped;    /* duplicates since the last item sent */
    int64_t bytes_done; /* progress through all files */
    int stop;           /* cancelled, or a fatal error was sent */
    /* The file being read. */
    const loader_file *file;
    char *source; /* its absolute path, recorded with each passage */
    int64_t file_base;
    int file_failed;
} producer;

static item *new_item(producer *p, item_kind kind)
{
    item *it = mg_xcalloc(1, sizeof *it);
    it->kind = kind;
    it->path = p->file ? p->file->path : NULL;
    it->skipped = p->skipped;
    it->bytes_done = p->bytes_done;
    p->skipped = 0;
    return it;
}

static void send_item(producer *p, item *it)
{
    if (queue_put(p->q, it)) p->stop = 1;
}

static void send_fatal(producer *p, const mg_error *error)
{
    item *it = new_item(p, ITEM_FATAL);
    it->error = *error;
    send_item(p, it);
    p->stop = 1;
}

/* A problem with the current file (or one of its lines). */
static void file_error(producer *p, int line, const mg_error *error)
{
    item *it = new_item(p, ITEM_FILE_ERROR);
    it->line = line;
    it->error = *error;
    it->first_error = !p->file_failed;
    p->file_failed = 1;
    send_item(p, it);
}

/* Embeds the batch and hands it to the writer. */
static void flush(producer *p)
{
    if (p->nbatch == 0 || p->stop) return;
    mg_error err = {0};
    /* One call for the whole batch: network embedders send it in few requests. */
    const char **texts = mg_xcalloc((size_t)p->nbatch, sizeof *texts);
    float **vecs = mg_xcalloc((size_t)p->nbatch, sizeof *vecs);
    for (int i = 0; i < p->nbatch; i++)
        texts[i] = p->batch[i].text;
    int dim = 0;
    mg_status st = mg_embed_texts(p->embedder, texts, p->nbatch, vecs, &dim, &err);
    for (int i = 0; i < p->nbatch; i++) {
        p->batch[i].vec = vecs[i];
        p->batch[i].dim = dim;
    }
    free(texts);
    free(vecs);
    if (!st && p->first_dim && dim != p->first_dim)
        st =
            mg_err_set(&err, MG_ERR_PROVIDER,
                       "the embedder changed dimensions mid-load (%d, then %d)", p->first_dim, dim);
    if (st) {
        mg_err_wrap(&err, "embedding passages: ");
        free_rows(p->batch, p->nbatch);
        p->batch = mg_xcalloc((size_t)p->opts.batch_size, sizeof *p->batch);
        p->nbatch = 0;
        send_fatal(p, &err);
        return;
    }
    p->first_dim = dim;
    item *it = new_item(p, ITEM_BATCH);
    it->rows = p->batch;
    it->n = p->nbatch;
    p->batch = mg_xcalloc((size_t)p->opts.batch_size, sizeof *p->batch);
    p->nbatch = 0;
    send_item(p, it);
}

/* Queues one chunk (taking `text`) unless the agent has it already. */
static void add_chunk(producer *p, char *text, size_t len, int64_t position, const char *tags_json,
                      int64_t time_ms)
{
    pending row = {.text = text, .position = position, .time_ms = time_ms ? time_ms : p->now_ms};
    loader_content_hash(text, len, row.hash);
    unsigned char d[32];
    digest_of(row.hash, d);
    if (!set_add(&p->seen, d)) {
        free(text);
        p->skipped++;
        return;
    }
    row.source = mg_xstrdup(p->source);
    row.tags_json = tags_json ? mg_xstrdup(tags_json) : NULL;
    p->batch[p->nbatch++] = row;
    if (p->nbatch >= p->opts.batch_size) flush(p);
}

/* Progress within the current file, as a share of its size. */
static void advance(producer *p, size_t done, size_t total)
{
    if (total) p->bytes_done = p->file_base + (int64_t)((double)p->file->size * done / total);
}

/* Chunks text[0, len); positions count from `base`, or are all
 * `fixed_position` when that is >= 0. */
static void load_text(producer *p, const char *text, size_t len, int64_t base,
                      const char *tags_json, int64_t time_ms, int64_t fixed_position)
{
    loader_chunker c;
    loader_chunker_init(&c, text, len, p->opts.chunk_tokens, p->opts.overlap_tokens);
    loader_chunk chunk;
    while (!p->stop && loader_chunker_next(&c, &chunk)) {
        size_t n;
        char *passage = loader_chunk_text(text, &chunk, &n);
        if (fixed_position < 0) advance(p, chunk.end, len);
        add_chunk(p, passage, n, fixed_position >= 0 ? fixed_position : base + (int64_t)chunk.start,
                  tags_json, time_ms);
    }
    loader_chunker_free(&c);
}

/* One passage per line; a line too long for one chunk is chunked. */
static void load_jsonl(producer *p, const char *data, size_t len)
{
    size_t pos = 0;
    int line_no = 0;
    while (!p->stop && pos < len) {
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
            file_error(p, line_no, &line_err);
            continue;
        }
        advance(p, pos, len);
        if (mg_tokens_estimate(rec.text, rec.text_len) <= p->opts.chunk_tokens)
            add_chunk(p, mg_xstrndup(rec.text, rec.text_len), rec.text_len, (int64_t)line_start,
                      rec.tags_json, rec.time_ms);
        else
            load_text(p, rec.text, rec.text_len, 0, rec.tags_json, rec.time_ms,
                      (int64_t)line_start);
        loader_record_clear(&rec);
    }
}

static void load_file(producer *p, const loader_file *f)
{
    p->file = f;
    p->file_base = p->bytes_done;
    p->file_failed = 0;
    free(p->source);
    p->source = realpath(f->path, NULL);
    if (!p->source) p->source = mg_xstrdup(f->path);
    char *data = NULL;
    size_t len = 0, skip = 0;
    mg_error err = {0};
    mg_status st;
    if (f->kind == LOADER_PDF) {
        st = loader_pdf_text(f->path, p->opts.pdf_timeout_seconds * 1000, MAX_PDF_TEXT, &data, &len,
                             &err);
    } else {
        st = loader_read_file(f->path, LOADER_MAX_FILE_BYTES, &data, &len, &err);
        if (!st) st = loader_check_text(data, len, &skip, &err);
    }
    if (st)
        file_error(p, 0, &err);
    else if (f->kind == LOADER_JSONL)
        load_jsonl(p, data + skip, len - skip);
    else
        load_text(p, data + skip, len - skip, (int64_t)skip, NULL, 0, -1);
    free(data);
    p->bytes_done = p->file_base + f->size;
    if (!p->stop) send_item(p, new_item(p, ITEM_FILE_DONE));
}

static void *produce(void *arg)
{
    producer *p = arg;
    for (size_t i = 0; i < p->files->count && !p->stop; i++) {
        load_file(p, &p->files->items[i]);
        if (queue_cancelled(p->q)) p->stop = 1;
    }
    flush(p);
    queue_put(p->q, new_item(p, ITEM_END));
    return NULL;
}

/* ------------------------------------------------------------- writer */

typedef struct writer {
    mg_agent *agent;
    mg_load_progress_fn progress;
    void *user;
    mg_load_stats stats;
    double started;
    passages_db db;
} writer;

static void emit(writer *w, mg_load_event_type type, const char *path, int line,
                 const mg_error *error)
{
    w->stats.seconds = seconds_now() - w->started;
    if (!w->progress) return;
    mg_load_event ev = {type, &w->stats, path, line, error};
    w->progress(&ev, w->user);
}

static void walk_error(void *ctx, const char *path, const mg_error *error)
{
    writer *w = ctx;
    w->stats.errors++;
    w->stats.files_failed++; /* each bad path counts as one failed file */
    emit(w, MG_LOAD_FILE_ERROR, path, 0, error);
}

/* Stores one batch in one transaction, skipping hashes stored meanwhile. */
static mg_status store_batch(writer *w, const item *it, mg_error *err)
{
    mg_agent *a = w->agent;
    int64_t added = 0, skipped = 0;
    mg_status st = store_begin(a->store, err);
    if (st) return st;
    for (int i = 0; i < it->n && !st; i++) {
        const pending *r = &it->rows[i];
        int found;
        st = passages_db_has_hash(&w->db, r->hash, &found, err);
        if (st || found) {
            skipped += found;
            continue;
        }
        passage_new row = {r->text, r->tags_json, r->time_ms, r->source, r->position,
                           r->hash, a->embedder,  r->vec,     r->dim,    NULL};
        st = passages_db_insert(&w->db, &row, err);
        added++;
    }
    if (!st) st = passages_db_count_added(a->store, a->id, added, err);
    if (st) {
        store_rollback(a->store);
        return st;
    }
    if ((st = store_commit(a->store, err))) return st;
    w->stats.chunks_added += added;
    w->stats.chunks_skipped += skipped;
    a->archival_count += added;
    return MG_OK;
}

/* Connection settings a load changes, and restores when it ends (they are
 * the connection's, never stored in the file). */
typedef struct load_pragmas {
    int64_t cache_size, wal_pages;
    int cache_set, wal_set;
} load_pragmas;

/* Sets `name` to `value` if its old value can be read, kept in *old. */
static int pragma_swap(mg_store *store, const char *name, const char *value, int64_t *old)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s", name);
    if (store_query_int(store, sql, 0, 0, old, NULL)) return 0;
    snprintf(sql, sizeof sql, "PRAGMA %s = %s", name, value);
    return store_exec(store, sql, NULL) == MG_OK;
}

static void pragma_put(mg_store *store, const char *name, int64_t value)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s = %lld", name, (long long)value);
    store_exec(store, sql, NULL);
}

/* - The FTS index merges re-read what they just wrote: a page cache that
 *   keeps them (SQLite's default is 2 MB).
 * - Fewer, larger checkpoints. At the default (every 1,000 pages) a 100 MB
 *   load checkpointed ~700 times, each a copy of the pages written since
 *   (the hot ones again and again) and an fdatasync the writer waited for:
 *   10.1-11.1 s against 8.4-8.5 s at 32,768 pages (bench/README.md,
 *   section 6). The WAL file then grows to ~128 MB (4 KiB pages) at most;
 *   the end of the load checkpoints it, and SQLite deletes it when the last
 *   connection closes. */
static void pragmas_for_load(mg_store *store, load_pragmas *p)
{
    p->cache_set = pragma_swap(store, "cache_size", LOAD_CACHE_SIZE, &p->cache_size);
    p->wal_set = pragma_swap(store, "wal_autocheckpoint", LOAD_WAL_PAGES, &p->wal_pages);
}

static void pragmas_restore(mg_store *store, const load_pragmas *p)
{
    if (p->cache_set) pragma_put(store, "cache_size", p->cache_size);
    if (p->wal_set) {
        pragma_put(store, "wal_autocheckpoint", p->wal_pages);
        /* Without waiting: frames another connection still reads stay. */
        sqlite3_exec(store->db, "PRAGMA wal_checkpoint(PASSIVE)", NULL, NULL, NULL);
    }
}

/* Takes the producer's items until its END; returns the first fatal error. */
static mg_status consume(writer *w, queue *q, mg_error *err)
{
    mg_status st = MG_OK;
    for (;;) {
        item *it = queue_get(q);
        item_kind kind = it->kind;
        if (!st) {
            w->stats.chunks_skipped += it->skipped;
            if (kind == ITEM_BATCH || kind == ITEM_FILE_DONE) w->stats.bytes_done = it->bytes_done;
            switch (kind) {
            case ITEM_BATCH:
                st = store_batch(w, it, err);
                if (!st) emit(w, MG_LOAD_PROGRESS, it->path, 0, NULL);
                break;
            case ITEM_FILE_ERROR:
                w->stats.errors++;
                w->stats.files_failed += it->first_error;
                emit(w, MG_LOAD_FILE_ERROR, it->path, it->line, &it->error);
                break;
            case ITEM_FILE_DONE:
                w->stats.files_done++;
                emit(w, MG_LOAD_PROGRESS, it->path, 0, NULL);
                break;
            case ITEM_FATAL:
                if (err) *err = it->error;
                st = it->error.code ? it->error.code : MG_ERR_INTERNAL;
                break;
            case ITEM_END:
                break;
            }
            if (st) queue_cancel(q);
        }
        free_item(it);
        if (kind == ITEM_END) return st;
    }
}

mg_status mg_archival_load(mg_agent *agent, const char *const *paths, int npaths,
                           const mg_load_options *opts, mg_load_progress_fn progress, void *user,
                           mg_load_stats *stats, mg_error *err)
{
    if (stats) memset(stats, 0, sizeof *stats);
    writer w = {.agent = agent, .progress = progress, .user = user, .started = seconds_now()};
    producer p = {.embedder = agent->embedder};
    mg_status st = agent_check_usable(agent, err);
    if (!st && (npaths < 1 || !paths))
        st = mg_err_set(err, MG_ERR_USAGE, "give at least one file or directory to load");
    if (!st) st = check_options(opts, &p.opts, err);
    if (!st) st = passages_db_backfill(agent->store, agent->id, NULL, err);
    if (!st) st = set_load(&p.seen, agent->store, agent->id, err);
    if (st) {
        free(p.seen.slots);
        return st;
    }
    p.now_ms = mg_now_ms();

    loader_files files = {0};
    for (int i = 0; i < npaths; i++)
        loader_walk(paths[i], &files, walk_error, &w);
    w.stats.files_ignored = files.ignored;
    w.stats.files_total = (int64_t)files.count;
    for (size_t i = 0; i < files.count; i++)
        w.stats.bytes_total += files.items[i].size;

    queue q = {.head = NULL};
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.changed, NULL);
    p.q = &q;
    p.files = &files;
    p.batch = mg_xcalloc((size_t)p.opts.batch_size, sizeof *p.batch);
    load_pragmas pragmas;
    pragmas_for_load(agent->store, &pragmas);
    st = passages_db_open(&w.db, agent->store, agent->id, err);
    if (!st) {
        emit(&w, MG_LOAD_PROGRESS, NULL, 0, NULL);
        pthread_t thread;
        int rc = pthread_create(&thread, NULL, produce, &p);
        if (rc) {
            st = mg_err_set(err, MG_ERR_INTERNAL, "cannot start the loading thread: %s",
                            strerror(rc));
        } else {
            st = consume(&w, &q, err);
            pthread_join(thread, NULL);
        }
        passages_db_close(&w.db);
    }
    pragmas_restore(agent->store, &pragmas);
    free_rows(p.batch, p.nbatch);
    free(p.source);
    free(p.seen.slots);
    pthread_cond_destroy(&q.changed);
    pthread_mutex_destroy(&q.mu);
    loader_files_free(&files);
    w.stats.seconds = seconds_now() - w.started;
    if (w.stats.chunks_added) archival_index_warm(agent->store, agent->id, agent->embedder);
    if (stats) *stats = w.stats;
    return st;
}

/* ------------------------------------------------------------ reembed */

static mg_status reembed_batch(mg_agent *a, const passage_text *items, int n, mg_error *err)
{
    float **vecs = mg_xcalloc((size_t)n, sizeof *vecs);
    int *dims = mg_xcalloc((size_t)n, sizeof *dims);
    const char **texts = mg_xcalloc((size_t)n, sizeof *texts);
    for (int i = 0; i < n; i++)
        texts[i] = items[i].text;
    int dim = 0;
    mg_status st = mg_embed_texts(a->embedder, texts, n, vecs, &dim, err);
    free(texts);
    if (st)
        mg_err_wrap(err, "re-embedding passages %lld-%lld: ", (long long)items[0].id,
                    (long long)items[n - 1].id);
    for (int i = 0; i < n; i++)
        dims[i] = dim;
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
    /* New vectors under old ids: the agent's indexes are rebuilt on demand. */
    if (s.total) archival_index_forget(agent->store, agent->id);
    if (progress) progress(&s, user);
    int64_t after = 0;
    while (!st) {
        passage_text *items;
        int n;
        st = passages_db_stale(agent->store, agent->id, agent->embedder, after, batch_size, &items,
                               &n, err);
        if (!st && n == 0) passage_texts_free(items, 0);
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
    if (s.done) archival_index_forget(agent->store, agent->id);
    if (stats) *stats = s;
    return st;
}
