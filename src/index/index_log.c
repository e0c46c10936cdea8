/*
 * index_log.c - the append log: adds and removes between full saves.
 *
 * A full save of a large index writes every vector again (1.5 GB at a
 * million), so it cannot follow every insert. The log records each change in
 * a few hundred bytes instead: after loading the last full save, replaying
 * the log brings the index up to date without touching the source of truth.
 *
 * Pairing. The log header carries the generation of the save it extends (a
 * random 64-bit number written into the index file by mg_index_save). A log
 * whose generation is not the loaded file's is for another state of the
 * index (written before the last save, or for another file) and is discarded,
 * never replayed. After a successful save the log is restarted empty with
 * the new generation; a crash between the rename of the new file and that
 * restart leaves an old-generation log, which the next attach discards: the
 * new file already holds all of it.
 *
 * Torn tails. Records are appended with one pwrite each and made durable
 * only by mg_index_log_sync (fdatasync), so a crash can leave a partial last
 * record, or lose the last records the caller did not sync. Each record has
 * its own CRC-32C; replay stops at the first incomplete or damaged record and
 * cuts the file there. What was lost is what the caller had not synced, and
 * the caller recovers it the same way as without a log: re-adding its rows
 * above mg_index_max_id.
 *
 * Several processes. Two processes on one home may each have loaded the
 * index and append to the same log. Every append, the replay at attach and
 * a save's rename plus restart (index_file.c) hold flock(LOCK_EX) on the log,
 * and an append goes to the end of the file as it is then, not where this
 * process last wrote, so records never overwrite each other. A process whose
 * copy is older than the file (another one saved since) still appends its
 * records there: each describes a change of the caller's data, and
 * mg_index_log_attach_checked replays such logs tolerantly (repeats
 * allowed) after checking each add with the caller. A save truncates the
 * log, dropping other processes' records the saver did not hold; the caller
 * recovers them as it recovers lost tails (below).
 *
 * Ordering. The record is written before the index changes and only after
 * the change was validated, so a failed write leaves the index unchanged
 * (and the log cut back), and every record in the log describes a change
 * that was applied.
 *
 * Layout (little-endian, like the index file):
 *   header, 32 bytes: char[8] "MGVIXLOG", u32 version (1), u32 dim,
 *                     u64 generation, u32 0, u32 CRC-32C of bytes 0..27
 *   record: u32 kind (1 add, 2 remove), u32 0, i64 id,
 *           for an add dim x f32, then u32 CRC-32C of the record's bytes before it
 */
#include "index/index_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/crc32c.h"
#include "util/buf.h"

#define LOG_HEADER  32
#define LOG_VERSION 1
#define KIND_ADD    1
#define KIND_REMOVE 2
static const char LOG_MAGIC[8] = {'M', 'G', 'V', 'I', 'X', 'L', 'O', 'G'};

static size_t record_size(const mg_index *x, uint32_t kind)
{
    return 16 + (kind == KIND_ADD ? 4 * (size_t)x->dim : 0) + 4;
}

static int write_all(int fd, const void *data, size_t n, off_t off)
{
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Reads exactly n bytes at off; 0 on success, 1 at end of file, -1 on error. */
static int read_all(int fd, void *data, size_t n, off_t off)
{
    unsigned char *p = data;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Empties the log and writes a header for the index's current generation. */
static mg_status log_reset(mg_index *x, int fd, mg_error *err)
{
    unsigned char h[LOG_HEADER] = {0};
    memcpy(h, LOG_MAGIC, 8);
    idx_put32(h + 8, LOG_VERSION);
    idx_put32(h + 12, (uint32_t)x->dim);
    idx_put64(h + 16, x->generation);
    idx_put32(h + 28, mg_crc32c(0, h, 28));
    if (ftruncate(fd, 0) != 0 || write_all(fd, h, sizeof(h), 0) != 0 || fdatasync(fd) != 0)
        return mg_err_set(err, MG_ERR_IO, "index log: cannot restart it: %s", strerror(errno));
    x->log_size = LOG_HEADER;
    return MG_OK;
}

/* Does the file start with an intact header for this dimension? Sets *gen. */
static int header_read(const mg_index *x, int fd, uint64_t *gen)
{
    unsigned char h[LOG_HEADER];
    if (read_all(fd, h, sizeof(h), 0) != 0) return 0;
    *gen = idx_get64(h + 16);
    return memcmp(h, LOG_MAGIC, 8) == 0 && idx_get32(h + 8) == LOG_VERSION &&
           idx_get32(h + 28) == mg_crc32c(0, h, 28) && idx_get32(h + 12) == (uint32_t)x->dim;
}

static int header_valid(const mg_index *x, int fd)
{
    uint64_t gen;
    return header_read(x, fd, &gen);
}

/* Does the file start with a header of this index's generation? */
static int header_matches(const mg_index *x, int fd)
{
    uint64_t gen;
    return header_read(x, fd, &gen) && gen == x->generation;
}

/* Applies records from LOG_HEADER on; sets x->log_size to the end of the
 * last good one. With a check (mg_index_log_attach_checked) an add the
 * caller rejects is not applied (and takes out a live vector of that id), an
 * add of a live id replaces it and a remove of an id not live is skipped:
 * records appended by several processes may repeat each other. */
static mg_status replay(mg_index *x, int fd, mg_index_log_check check, void *ctx,
                        mg_index_log_info *info, mg_error *err)
{
    unsigned char *rec = mg_xmalloc(record_size(x, KIND_ADD));
    float *vec = mg_xmalloc((size_t)x->dim * sizeof(float));
    off_t off = LOG_HEADER;
    mg_status st = MG_OK;
    for (;;) {
        int rc = read_all(fd, rec, 16, off);
        if (rc < 0) {
            st = mg_err_set(err, MG_ERR_IO, "index log: read: %s", strerror(errno));
            break;
        }
        if (rc > 0) break;
        uint32_t kind = idx_get32(rec);
        if ((kind != KIND_ADD && kind != KIND_REMOVE) || idx_get32(rec + 4) != 0) break;
        size_t size = record_size(x, kind);
        rc = read_all(fd, rec + 16, size - 16, off + 16);
        if (rc < 0) {
            st = mg_err_set(err, MG_ERR_IO, "index log: read: %s", strerror(errno));
            break;
        }
        if (rc > 0 || idx_get32(rec + size - 4) != mg_crc32c(0, rec, size - 4)) break;

        int64_t id = (int64_t)idx_get64(rec + 8);
        if (kind == KIND_ADD) {
            for (int i = 0; i < x->dim; i++) {
                uint32_t u = idx_get32(rec + 16 + 4 * (size_t)i);
                memcpy(&vec[i], &u, 4);
            }
            if (check && !check(ctx, id, vec, x->dim)) {
                info->rejected_adds++;
                st = mg_index_contains(x, id) ? idx_remove(x, id, err) : MG_OK;
            } else {
                if (check && mg_index_contains(x, id)) st = idx_remove(x, id, err);
                if (st == MG_OK) st = idx_add(x, id, vec, err);
                info->replayed_adds += st == MG_OK;
            }
        } else if (!check || mg_index_contains(x, id)) {
            st = idx_remove(x, id, err);
            info->replayed_removes += st == MG_OK;
        }
        if (st != MG_OK) {
            char why[sizeof(err->message)];
            snprintf(why, sizeof(why), "%s", err ? err->message : "conflict");
            st = mg_err_set(err, MG_ERR_CORRUPT,
                            "index log: the record at byte %lld does not fit the index (%s)",
                            (long long)off, why);
            break;
        }
        off += (off_t)size;
    }
    free(rec);
    free(vec);
    x->log_size = off;
    return st;
}

mg_status mg_index_log_attach(mg_index *x, const char *log_path, mg_index_log_info *info,
                              mg_error *err)
{
    return mg_index_log_attach_checked(x, log_path, NULL, NULL, info, err);
}

mg_status mg_index_log_attach_checked(mg_index *x, const char *log_path, mg_index_log_check check,
                                      void *ctx, mg_index_log_info *info, mg_error *err)
{
    mg_index_log_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof(*info));
    if (!log_path || !*log_path) return mg_err_set(err, MG_ERR_USAGE, "index log: no path");
    if (x->log_fd >= 0) return mg_err_set(err, MG_ERR_USAGE, "index log: one is already attached");

    int fd = open(log_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return mg_err_set(err, MG_ERR_IO, "index log %s: open: %s", log_path, strerror(errno));
    struct stat sb;
    mg_status st = MG_OK;
    int locked = flock(fd, LOCK_EX) == 0; /* no other process appends or resets meanwhile */
    if (!locked || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mg_err_set(err, MG_ERR_IO, "index log %s: not a regular file", log_path);
    } else if (x->generation == 0 || !header_matches(x, fd)) {
        /* Never saved or loaded: no file this log could extend. */
        info->reset = 1;
        st = log_reset(x, fd, err);
    } else {
        st = replay(x, fd, check, ctx, info, err);
        if (st == MG_OK && x->log_size < sb.st_size) {
            info->torn_bytes = (int64_t)(sb.st_size - x->log_size);
            if (ftruncate(fd, x->log_size) != 0 || fdatasync(fd) != 0)
                st = mg_err_set(err, MG_ERR_IO, "index log %s: cannot cut the torn tail: %s",
                                log_path, strerror(errno));
        }
    }
    if (locked) flock(fd, LOCK_UN);
    if (st != MG_OK) {
        close(fd);
        x->log_size = 0;
        return st;
    }
    x->log_fd = fd;
    return MG_OK;
}

mg_status idx_log_append(mg_index *x, int64_t id, const float *vec, mg_error *err)
{
    if (x->log_fd < 0) return MG_OK;
    uint32_t kind = vec ? KIND_ADD : KIND_REMOVE;
    size_t size = record_size(x, kind);
    unsigned char small[16 + 4 * 1024 + 4];
    unsigned char *rec = size <= sizeof(small) ? small : mg_xmalloc(size);
    idx_put32(rec, kind);
    idx_put32(rec + 4, 0);
    idx_put64(rec + 8, (uint64_t)id);
    if (vec)
        for (int i = 0; i < x->dim; i++) {
            uint32_t u;
            memcpy(&u, &vec[i], 4);
            idx_put32(rec + 16 + 4 * (size_t)i, u);
        }
    idx_put32(rec + size - 4, mg_crc32c(0, rec, size - 4));
    /* Other processes append to the same file and may have saved (a new
     * header) or appended since: under the lock, append at the file's end
     * unless its header is no log of this dimension at all (then the record
     * is left out; the caller's reconcile with its own data covers it). */
    int rc = -1, e = 0;
    struct stat sb;
    if (flock(x->log_fd, LOCK_EX) != 0 || fstat(x->log_fd, &sb) != 0) {
        e = errno;
    } else if (sb.st_size < LOG_HEADER || !header_valid(x, x->log_fd)) {
        rc = 0;
        size = 0;
    } else {
        x->log_size = (int64_t)sb.st_size;
        rc = write_all(x->log_fd, rec, size, x->log_size);
        e = errno;
        if (rc != 0) {
            /* Cut a partial record off so later ones are not hidden behind it. */
            int cut = ftruncate(x->log_fd, x->log_size); /* if this fails, replay stops there */
            (void)cut;
        }
    }
    flock(x->log_fd, LOCK_UN);
    if (rec != small) free(rec);
    if (rc != 0) return mg_err_set(err, MG_ERR_IO, "index log: write: %s", strerror(e ? e : EIO));
    x->log_size += (int64_t)size;
    return MG_OK;
}

mg_status idx_log_restart(mg_index *x, mg_error *err)
{
    if (x->log_fd < 0) return MG_OK;
    return log_reset(x, x->log_fd, err);
}

mg_status mg_index_log_sync(mg_index *x, mg_error *err)
{
    if (x->log_fd < 0) return MG_OK;
    if (fdatasync(x->log_fd) != 0)
        return mg_err_set(err, MG_ERR_IO, "index log: fdatasync: %s", strerror(errno));
    return MG_OK;
}
