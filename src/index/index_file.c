/*
 * index_file.c - saving and loading an index as one file.
 *
 * The index is a cache of the passages table: SQLite stays the source of
 * truth, and the file only saves the minutes a rebuild of a large agent's
 * graph would take. So the file's job is to be either exactly right or
 * clearly wrong. Three rules follow.
 *
 * Atomic replacement. A save writes a new file next to the old one
 * (mkstemp, so two writers never share a temporary), fsyncs it, renames it
 * over the old name and fsyncs the directory so the rename itself is
 * durable. A crash at any point leaves either the old file or the new one
 * under the name, never a mixture; at worst a stray temporary. Concurrent
 * saves by several processes each rename a complete file of their own (the
 * last one wins); the rename and the restart of the log are done holding
 * the log's flock, so no other process appends in between.
 *
 * Everything is checked before it is trusted. The header has its own
 * CRC-32C, so its sizes are believed only when intact; the payload size must
 * then match the file size exactly (a truncated copy or a stale header over
 * a different payload fails here, before any allocation larger than the file),
 * and the payload's CRC-32C must match. Even a file with valid checksums
 * (written by a buggy or hostile program) goes through idx_check: every link
 * in range and consistent with the levels, counts agreeing, no duplicate
 * ids, all values finite. Only then is the index handed out, so a search on
 * a loaded index can never read out of bounds.
 *
 * Staleness is the caller's to judge, with what the header records: the
 * highest id ever added (max_id). A caller whose ids only grow (SQLite row
 * ids) re-adds rows with larger ids after loading; rows deleted since the
 * save are removed through the append log (index_log.c) or dropped when a
 * search returns an id the database no longer has.
 *
 * Layout (all integers little-endian, floats IEEE-754 binary32 LE):
 *
 *   header, 160 bytes:
 *     0  char[8] magic "MGVINDEX"        8   u32 version (2)
 *     12 u32 header size (160)           16  u32 dim
 *     20 u32 m                           24  u32 ef_construction
 *     28 u32 ef_search                   32  i32 exact_below
 *     36 i32 max_level (-1 empty)        40  u64 slots (n)
 *     48 u64 live                        56  u64 dead
 *     64 i64 max_id                      72  u32 has_max_id
 *     76 i32 entry slot (-1 empty)       80  u64 upper ints
 *     88 u64 level PRNG state            96  u64 generation
 *     104 u64 payload bytes              112 f64 cleanup_ratio
 *     120 u64 seed                       128 u32 payload CRC-32C
 *     132 u32 lazy_graph (0 or 1)        136 u32 linked slots
 *     140 16 zero bytes                  156 u32 CRC-32C of bytes 0..155
 *   (version 1 had zeros at 132..139 and every slot linked; it is still read.)
 *   payload, in order:
 *     ids      n x i64       levels  n x u8      states n x u8
 *     vectors  n x dim x f32
 *     level-0 link blocks  n x (1 + 2m) x i32   ([count, slots...])
 *     upper link blocks    for each slot in order, level x (1 + m) x i32
 *
 * The PRNG state and the generation are saved too: a loaded index draws the
 * same levels the original would have (same inputs, same graph), and the
 * generation pairs the file with its append log.
 */
#include "index/index_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/crc32c.h"
#include "util/buf.h"

#define HEADER_BYTES   160
#define FORMAT_VERSION 2
#define OLDEST_VERSION 1 /* files of versions 1..FORMAT_VERSION are read */
static const char MAGIC[8] = {'M', 'G', 'V', 'I', 'N', 'D', 'E', 'X'};

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

/* ------------------------------------------------------------------ bytes */

/* Reverses the bytes of each `size`-byte element (big-endian hosts only). */
static void swap_elems(void *data, size_t size, size_t count)
{
    unsigned char *p = data;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

uint64_t idx_new_generation(const mg_index *x)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    z ^= (uint64_t)getpid() << 32;
    z ^= (uint64_t)(uintptr_t)x ^ x->generation * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z ? z : 1;
}

/* ------------------------------------------------------------------ writing */

typedef struct writer {
    int fd;
    uint32_t crc;
    uint64_t bytes; /* payload bytes written */
    unsigned char buf[1 << 16];
    size_t len;
    int error; /* errno of the first failure */
} writer;

static void wr_raw(writer *w, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0 && !w->error) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            w->error = errno;
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

static void wr_flush(writer *w)
{
    wr_raw(w, w->buf, w->len);
    w->len = 0;
}

/* Payload bytes, already in file order: checksummed and buffered (large
 * pieces go straight to write(2)). */
static void wr_bytes(writer *w, const void *data, size_t n)
{
    if (n == 0) return; /* an empty index: data may be NULL, and memcpy must not see it */
    w->crc = mg_crc32c(w->crc, data, n);
    w->bytes += n;
    if (n >= sizeof(w->buf) / 2) {
        wr_flush(w);
        wr_raw(w, data, n);
        return;
    }
    if (w->len + n > sizeof(w->buf)) wr_flush(w);
    memcpy(w->buf + w->len, data, n);
    w->len += n;
}

/* An array of `size`-byte numbers in host order, written little-endian. */
static void wr_array(writer *w, const void *data, size_t size, size_t count)
{
    if (!HOST_BIG_ENDIAN) {
        wr_bytes(w, data, size * count);
        return;
    }
    unsigned char tmp[4096];
    const unsigned char *p = data;
    size_t per = sizeof(tmp) / size;
    while (count > 0) {
        size_t k = count < per ? count : per;
        memcpy(tmp, p, k * size);
        swap_elems(tmp, size, k);
        wr_bytes(w, tmp, k * size);
        p += k * size;
        count -= k;
    }
}

static void encode_header(const mg_index *x, uint64_t upper_ints, uint64_t payload,
                          uint32_t payload_crc, unsigned char *h)
{
    memset(h, 0, HEADER_BYTES);
    memcpy(h, MAGIC, 8);
    idx_put32(h + 8, FORMAT_VERSION);
    idx_put32(h + 12, HEADER_BYTES);
    idx_put32(h + 16, (uint32_t)x->dim);
    idx_put32(h + 20, (uint32_t)x->p.m);
    idx_put32(h + 24, (uint32_t)x->p.ef_construction);
    idx_put32(h + 28, (uint32_t)x->p.ef_search);
    idx_put32(h + 32, (uint32_t)x->p.exact_below);
    idx_put32(h + 36, (uint32_t)x->max_level);
    idx_put64(h + 40, (uint64_t)x->n);
    idx_put64(h + 48, (uint64_t)x->live);
    idx_put64(h + 56, (uint64_t)x->dead);
    idx_put64(h + 64, (uint64_t)x->max_id);
    idx_put32(h + 72, (uint32_t)x->has_max_id);
    idx_put32(h + 76, (uint32_t)x->entry);
    idx_put64(h + 80, upper_ints);
    idx_put64(h + 88, x->rng);
    idx_put64(h + 96, x->generation);
    idx_put64(h + 104, payload);
    uint64_t ratio;
    memcpy(&ratio, &x->p.cleanup_ratio, 8);
    idx_put64(h + 112, ratio);
    idx_put64(h + 120, x->p.seed);
    idx_put32(h + 128, payload_crc);
    idx_put32(h + 132, (uint32_t)x->p.lazy_graph);
    idx_put32(h + 136, (uint32_t)x->linked);
    idx_put32(h + 156, mg_crc32c(0, h, 156));
}

/* Slots of chunk c that are in use. */
static size_t chunk_used(const mg_index *x, int32_t c)
{
    int32_t left = x->n - c * IDX_CHUNK_SLOTS;
    return (size_t)(left < IDX_CHUNK_SLOTS ? left : IDX_CHUNK_SLOTS);
}

static void write_payload(writer *w, const mg_index *x, uint64_t *upper_ints)
{
    size_t n = (size_t)x->n;
    wr_array(w, x->ids, sizeof(int64_t), n);
    wr_bytes(w, x->levels, n);
    wr_bytes(w, x->state, n);
    for (int32_t c = 0; c * IDX_CHUNK_SLOTS < x->n; c++)
        wr_array(w, x->vec_chunks[c], sizeof(float), chunk_used(x, c) * (size_t)x->dim);
    for (int32_t c = 0; c * IDX_CHUNK_SLOTS < x->n; c++)
        wr_array(w, x->link_chunks[c], sizeof(int32_t), chunk_used(x, c) * (size_t)x->link0_len);
    *upper_ints = 0;
    for (int32_t s = 0; s < x->n; s++) {
        if (!x->levels[s]) continue;
        size_t k = (size_t)x->levels[s] * (size_t)x->upper_len;
        wr_array(w, x->upper + x->upper_off[s], sizeof(int32_t), k);
        *upper_ints += k;
    }
    wr_flush(w);
}

/* fsync of the directory holding path, so a rename in it is durable. */
static int sync_dir(const char *path)
{
    char *dir = mg_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

mg_status mg_index_save(mg_index *x, const char *path, mg_error *err)
{
    if (!path || !*path) return mg_err_set(err, MG_ERR_USAGE, "index save: no path");
    size_t plen = strlen(path);
    char *tmp = mg_xmalloc(plen + 16);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);

    writer *w = mg_xcalloc(1, sizeof(*w));
    const char *step = "create";
    w->fd = mkstemp(tmp);
    if (w->fd < 0) {
        w->error = errno;
        goto fail;
    }
    uint64_t generation = idx_new_generation(x), old_generation = x->generation;
    x->generation = generation; /* goes into the header */

    unsigned char h[HEADER_BYTES];
    memset(h, 0, sizeof(h));
    step = "write";
    wr_raw(w, h, sizeof(h)); /* placeholder until the checksum is known */
    uint64_t upper_ints;
    write_payload(w, x, &upper_ints);
    encode_header(x, upper_ints, w->bytes, w->crc, h);
    x->generation = old_generation;
    if (w->error) goto fail;
    if (pwrite(w->fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        w->error = errno ? errno : EIO;
        goto fail;
    }
    step = "fsync";
    if (fsync(w->fd) != 0) {
        w->error = errno;
        goto fail;
    }
    step = "close";
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        w->error = errno;
        goto fail;
    }
    /* The rename and the log's restart under the log's lock, as one step for
     * the other processes appending to that log (index_log.c): none appends
     * between them, so no record lands in a log of the file it replaced. */
    step = "rename";
    if (x->log_fd >= 0) flock(x->log_fd, LOCK_EX);
    if (rename(tmp, path) != 0) {
        w->error = errno;
        if (x->log_fd >= 0) flock(x->log_fd, LOCK_UN);
        goto fail;
    }
    free(tmp);
    free(w);
    x->generation = generation;
    /* The rename happened: the file is the index now, even if the directory
     * fsync below fails (it is then merely not yet durable). */
    mg_status st = MG_OK;
    if (sync_dir(path) != 0)
        st = mg_err_set(err, MG_ERR_IO, "saving index to %s: fsync of the directory: %s", path,
                        strerror(errno));
    else
        st = idx_log_restart(x, err);
    if (x->log_fd >= 0) flock(x->log_fd, LOCK_UN);
    return st;

fail:;
    int e = w->error ? w->error : EIO;
    if (w->fd >= 0) close(w->fd);
    if (strcmp(step, "create") != 0) unlink(tmp);
    free(tmp);
    free(w);
    return mg_err_set(err, MG_ERR_IO, "saving index to %s: %s: %s", path, step, strerror(e));
}

/* ------------------------------------------------------------------ reading */

typedef struct reader {
    int fd;
    uint32_t crc;
    const char *path;
} reader;

/* Reads exactly n payload bytes into data, checksumming as it goes. */
static mg_status rd_bytes(reader *r, void *data, size_t n, mg_error *err)
{
    unsigned char *p = data;
    while (n > 0) {
        size_t want = n < ((size_t)8 << 20) ? n : ((size_t)8 << 20);
        ssize_t got = read(r->fd, p, want);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            return mg_err_set(err, MG_ERR_IO, "loading index %s: read: %s", r->path,
                              strerror(errno));
        if (got == 0)
            return mg_err_set(err, MG_ERR_CORRUPT,
                              "index file %s is truncated (it shrank while being read)", r->path);
        r->crc = mg_crc32c(r->crc, p, (size_t)got);
        p += got;
        n -= (size_t)got;
    }
    return MG_OK;
}

static mg_status rd_array(reader *r, void *data, size_t size, size_t count, mg_error *err)
{
    mg_status st = rd_bytes(r, data, size * count, err);
    if (st == MG_OK && HOST_BIG_ENDIAN) swap_elems(data, size, count);
    return st;
}

/* The header fields, decoded and range-checked. */
typedef struct header {
    uint32_t dim, m, ef_construction, ef_search;
    int32_t exact_below, max_level, entry;
    uint64_t slots, live, dead, upper_ints, rng, generation, payload, seed;
    int64_t max_id;
    uint32_t has_max_id, payload_crc, lazy_graph, linked;
    double cleanup_ratio;
} header;

static mg_status parse_header(const unsigned char *h, const char *path, int dim, header *hd,
                              mg_error *err)
{
    if (memcmp(h, MAGIC, 8) != 0)
        return mg_err_set(err, MG_ERR_CORRUPT, "%s is not a memgpt vector index (bad magic)", path);
    uint32_t version = idx_get32(h + 8);
    if (version < OLDEST_VERSION || version > FORMAT_VERSION)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "index file %s has format version %u; this build reads versions %d-%d",
                          path, version, OLDEST_VERSION, FORMAT_VERSION);
    if (idx_get32(h + 156) != mg_crc32c(0, h, 156) || idx_get32(h + 12) != HEADER_BYTES)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "index file %s has a damaged header (checksum mismatch)", path);
    hd->dim = idx_get32(h + 16);
    hd->m = idx_get32(h + 20);
    hd->ef_construction = idx_get32(h + 24);
    hd->ef_search = idx_get32(h + 28);
    hd->exact_below = (int32_t)idx_get32(h + 32);
    hd->max_level = (int32_t)idx_get32(h + 36);
    hd->slots = idx_get64(h + 40);
    hd->live = idx_get64(h + 48);
    hd->dead = idx_get64(h + 56);
    hd->max_id = (int64_t)idx_get64(h + 64);
    hd->has_max_id = idx_get32(h + 72);
    hd->entry = (int32_t)idx_get32(h + 76);
    hd->upper_ints = idx_get64(h + 80);
    hd->rng = idx_get64(h + 88);
    hd->generation = idx_get64(h + 96);
    hd->payload = idx_get64(h + 104);
    uint64_t ratio = idx_get64(h + 112);
    memcpy(&hd->cleanup_ratio, &ratio, 8);
    hd->seed = idx_get64(h + 120);
    hd->payload_crc = idx_get32(h + 128);
    hd->lazy_graph = version >= 2 ? idx_get32(h + 132) : 0;
    hd->linked = version >= 2 ? idx_get32(h + 136) : (uint32_t)hd->slots;

    if (hd->dim != (uint32_t)dim)
        return mg_err_set(err, MG_ERR_USAGE,
                          "index file %s holds %u-dimensional vectors, but %d were expected", path,
                          hd->dim, dim);
    if (hd->m < 2 || hd->m > MG_INDEX_MAX_M || hd->ef_construction < 1 ||
        hd->ef_construction > MG_INDEX_MAX_EF || hd->ef_search < 1 ||
        hd->ef_search > MG_INDEX_MAX_EF || hd->exact_below < -1 || !(hd->cleanup_ratio > 0.0) ||
        hd->cleanup_ratio > 1e9 || hd->seed == 0 || hd->has_max_id > 1 || hd->lazy_graph > 1)
        return mg_err_set(err, MG_ERR_CORRUPT, "index file %s has invalid parameters", path);
    if (hd->slots > (uint64_t)MG_INDEX_MAX_COUNT || hd->live + hd->dead > hd->slots ||
        hd->max_level < -1 || hd->max_level > IDX_MAX_LEVEL || hd->entry < -1 ||
        (int64_t)hd->entry >= (int64_t)hd->slots || hd->linked > hd->slots ||
        hd->upper_ints > hd->slots * IDX_MAX_LEVEL * (1 + (uint64_t)hd->m))
        return mg_err_set(err, MG_ERR_CORRUPT, "index file %s has invalid counts", path);

    uint64_t per_slot = 8 + 1 + 1 + 4 * (uint64_t)hd->dim + 4 * (1 + 2 * (uint64_t)hd->m);
    uint64_t expect = hd->slots * per_slot + 4 * hd->upper_ints;
    if (hd->payload != expect)
        return mg_err_set(err, MG_ERR_CORRUPT, "index file %s has inconsistent sizes", path);
    return MG_OK;
}

static mg_status load_payload(reader *r, mg_index *x, const header *hd, mg_error *err)
{
    size_t n = (size_t)hd->slots;
    mg_status st;
    if ((st = rd_array(r, x->ids, sizeof(int64_t), n, err)) != MG_OK) return st;
    if ((st = rd_bytes(r, x->levels, n, err)) != MG_OK) return st;
    if ((st = rd_bytes(r, x->state, n, err)) != MG_OK) return st;
    x->n = (int32_t)n; /* for chunk_used; adopt() checks the rest */
    for (int32_t c = 0; c * IDX_CHUNK_SLOTS < x->n; c++) {
        st = rd_array(r, x->vec_chunks[c], sizeof(float), chunk_used(x, c) * (size_t)x->dim, err);
        if (st != MG_OK) return st;
    }
    for (int32_t c = 0; c * IDX_CHUNK_SLOTS < x->n; c++) {
        st = rd_array(r, x->link_chunks[c], sizeof(int32_t),
                      chunk_used(x, c) * (size_t)x->link0_len, err);
        if (st != MG_OK) return st;
    }
    x->upper_cap = (size_t)hd->upper_ints;
    x->upper = mg_xmalloc(x->upper_cap ? x->upper_cap * sizeof(int32_t) : 1);
    if ((st = rd_array(r, x->upper, sizeof(int32_t), x->upper_cap, err)) != MG_OK) return st;
    if (r->crc != hd->payload_crc)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "index file %s is damaged (payload checksum mismatch)", r->path);
    return MG_OK;
}

/* Fills the fields the file implies, then checks every invariant. */
static mg_status adopt(mg_index *x, const header *hd, const char *path, mg_error *err)
{
    x->n = (int32_t)hd->slots;
    size_t off = 0;
    for (int32_t s = 0; s < x->n; s++) {
        if (x->levels[s] > IDX_MAX_LEVEL)
            return mg_err_set(err, MG_ERR_CORRUPT, "index file %s: slot %d has level %d", path, s,
                              x->levels[s]);
        if (x->state[s] > SLOT_FREE)
            return mg_err_set(err, MG_ERR_CORRUPT, "index file %s: slot %d has state %d", path, s,
                              x->state[s]);
        x->upper_off[s] = (uint32_t)off;
        off += (size_t)x->levels[s] * (size_t)x->upper_len;
        if (off > x->upper_cap) break;
    }
    if (off != x->upper_cap || off > UINT32_MAX)
        return mg_err_set(err, MG_ERR_CORRUPT, "index file %s: link blocks do not match levels",
                          path);
    x->upper_used = off;
    x->linked = (int32_t)hd->linked;
    x->entry = hd->entry;
    x->max_level = hd->max_level;
    x->has_max_id = (int)hd->has_max_id;
    x->max_id = hd->max_id;
    x->rng = hd->rng;
    x->generation = hd->generation;

    mg_status st = idx_rebuild_derived(x, err);
    if (st == MG_OK && ((uint64_t)x->live != hd->live || (uint64_t)x->dead != hd->dead))
        st = mg_err_set(err, MG_ERR_CORRUPT, "counts disagree with the header");
    if (st == MG_OK) st = idx_check(x, err);
    for (int32_t c = 0; st == MG_OK && c * IDX_CHUNK_SLOTS < x->n; c++)
        if (!idx_all_finite(x->vec_chunks[c], chunk_used(x, c) * (size_t)x->dim))
            st = mg_err_set(err, MG_ERR_CORRUPT, "a vector has a NaN or infinite value");
    if (st != MG_OK) return mg_err_wrap(err, "index file %s is inconsistent: ", path);
    return MG_OK;
}

mg_status mg_index_load(const char *path, int dim, mg_index **out, mg_error *err)
{
    *out = NULL;
    if (!path || !*path) return mg_err_set(err, MG_ERR_USAGE, "index load: no path");
    if (dim < 1 || dim > MG_INDEX_MAX_DIM)
        return mg_err_set(err, MG_ERR_USAGE, "index dimension %d is outside 1..%d", dim,
                          MG_INDEX_MAX_DIM);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return mg_err_set(err, MG_ERR_NOT_FOUND, "no index file at %s", path);
        return mg_err_set(err, MG_ERR_IO, "loading index %s: open: %s", path, strerror(errno));
    }
    mg_status st = MG_OK;
    mg_index *x = NULL;
    struct stat sb;
    unsigned char h[HEADER_BYTES];
    header hd;
    memset(&hd, 0, sizeof(hd));
    reader r = {fd, 0, path};

    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mg_err_set(err, MG_ERR_IO, "loading index %s: not a regular file", path);
        goto done;
    }
    if (sb.st_size < HEADER_BYTES) {
        st = mg_err_set(err, MG_ERR_CORRUPT,
                        "index file %s is truncated: %lld bytes, shorter than its %d-byte header",
                        path, (long long)sb.st_size, HEADER_BYTES);
        goto done;
    }
    if ((st = rd_bytes(&r, h, sizeof(h), err)) != MG_OK) goto done;
    if ((st = parse_header(h, path, dim, &hd, err)) != MG_OK) goto done;
    if ((uint64_t)sb.st_size != HEADER_BYTES + hd.payload) {
        st = mg_err_set(
            err, MG_ERR_CORRUPT, "index file %s is %s: %lld bytes, its header says %llu", path,
            (uint64_t)sb.st_size < HEADER_BYTES + hd.payload ? "truncated" : "longer than written",
            (long long)sb.st_size, (unsigned long long)(HEADER_BYTES + hd.payload));
        goto done;
    }

    mg_index_params p = {
        .m = (int)hd.m,
        .ef_construction = (int)hd.ef_construction,
        .ef_search = (int)hd.ef_search,
        .exact_below = hd.exact_below,
        .cleanup_ratio = hd.cleanup_ratio,
        .seed = hd.seed,
        .lazy_graph = (int)hd.lazy_graph,
    };
    x = idx_alloc(dim, &p);
    idx_reserve(x, (int32_t)hd.slots);
    r.crc = 0;
    if ((st = load_payload(&r, x, &hd, err)) != MG_OK) goto done;
    st = adopt(x, &hd, path, err);

done:
    close(fd);
    if (st != MG_OK) {
        mg_index_free(x);
        return st;
    }
    *out = x;
    return MG_OK;
}
