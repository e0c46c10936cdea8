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
 * under the name, never a mixture; at worst a stray temporary, which the
 * save keeps locked while it lives so that a later process can tell it is
 * stale and remove it (mg_index_temp_is_stale). Concurrent
 * saves by several processes each rename a complete file of their own (the
 * last one wins); the rename and the restart of the log are done holding
 * the log's flock, so no other process appends in between.
 *
 * Opening costs what a search needs, not what the file holds. A process
 * that runs one search (a `memgpt archival search`, a turn) must not read a
 * file of hundreds of megabytes first, so mg_index_open maps the file
 * (MAP_PRIVATE: the index's own writes are copy-on-write and never reach
 * the file, which is only ever replaced whole, by rename) and reads only
 * what every search needs anyway: the header, checked by its own CRC-32C
 * before any size in it is believed; the file size, which must match the
 * layout exactly (a truncated copy or a stale header over another payload
 * fails here); and the small per-slot sections (ids, levels, states, codes,
 * upper links: about 4% of the file at 384 dimensions), with their CRC-32C, their
 * ranges, the counts and the entry point. The two big sections, vectors and
 * level-0 links, are read page by page as searches touch them; every link is
 * checked where it is followed (idx_link_ok), so a file that is damaged
 * there, or written by a hostile program, can make a search worse but never
 * make it read out of bounds, and the damage marks the index for a rebuild.
 * mg_index_load checks everything before it hands the index out, as every
 * open did before: the CRC-32C of the big sections, every graph invariant
 * (idx_check), and that all values are finite.
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
 *     0  char[8] magic "MGVINDEX"        8   u32 version (3)
 *     12 u32 header size (160)           16  u32 dim
 *     20 u32 m                           24  u32 ef_construction
 *     28 u32 ef_search                   32  i32 exact_below
 *     36 i32 max_level (-1 empty)        40  u64 slots (n)
 *     48 u64 live                        56  u64 dead
 *     64 i64 max_id                      72  u32 has_max_id
 *     76 i32 entry slot (-1 empty)       80  u64 upper ints
 *     88 u64 level PRNG state            96  u64 generation
 *     104 u64 bytes after the header     112 f64 cleanup_ratio
 *     120 u64 seed                       128 u32 CRC-32C of bytes 160..vectors
 *     132 u32 lazy_graph (0 or 1)        136 u32 linked slots
 *     140 u32 CRC-32C of the vectors to the end
 *     144 12 zero bytes                  156 u32 CRC-32C of bytes 0..155
 *   sections, in order, each at the next multiple of 64 bytes (zero padding
 *   between them), so that a mapped section is an aligned array:
 *     small: ids n x i64, levels n x u8, states n x u8,
 *            codes n x ceil(dim / 8) bytes (bit d of a code: vector[d] > 0),
 *            upper link blocks: for each slot in order, level x (1 + m) x i32
 *     big:   vectors n x dim x f32,
 *            level-0 link blocks n x (1 + 2m) x i32   ([count, slots...])
 *   Versions 1 and 2 (one unaligned payload, one checksum) are not read: the
 *   index is a cache, and its owner rebuilds it from the table.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/crc32c.h"
#include "util/buf.h"

#define HEADER_BYTES   160
#define FORMAT_VERSION 3
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

/* ------------------------------------------------------------------ layout */

/* File offsets of the sections; the same function places them for the
 * writer and the reader, so the two cannot disagree. */
typedef struct layout {
    uint64_t ids, levels, states, codes, upper, vecs, links, end;
} layout;

static uint64_t align64(uint64_t v)
{
    return (v + 63) & ~(uint64_t)63;
}

static void file_layout(uint64_t n, uint64_t dim, uint64_t link0_len, uint64_t upper_ints,
                        layout *l)
{
    l->ids = align64(HEADER_BYTES);
    l->levels = align64(l->ids + 8 * n);
    l->states = align64(l->levels + n);
    l->codes = align64(l->states + n);
    l->upper = align64(l->codes + (dim + 7) / 8 * n);
    l->vecs = align64(l->upper + 4 * upper_ints);
    l->links = align64(l->vecs + 4 * dim * n);
    l->end = l->links + 4 * link0_len * n;
}

/* ------------------------------------------------------------------ writing */

typedef struct writer {
    int fd;
    uint32_t crc; /* of the current group of sections, padding included */
    uint64_t at;  /* file offset of the next byte */
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

/* Bytes already in file order: checksummed and buffered (large pieces go
 * straight to write(2)). */
static void wr_put(writer *w, const void *data, size_t n)
{
    if (n == 0) return; /* an empty index: data may be NULL, and memcpy must not see it */
    w->crc = mg_crc32c(w->crc, data, n);
    w->at += n;
    if (n >= sizeof(w->buf) / 2) {
        wr_flush(w);
        wr_raw(w, data, n);
        return;
    }
    if (w->len + n > sizeof(w->buf)) wr_flush(w);
    memcpy(w->buf + w->len, data, n);
    w->len += n;
}

/* Zeros up to file offset `to`, where the next section starts. */
static void wr_pad(writer *w, uint64_t to)
{
    static const unsigned char zeros[64];
    wr_put(w, zeros, (size_t)(to - w->at));
}

/* An array of `size`-byte numbers in host order, written little-endian. */
static void wr_array(writer *w, const void *data, size_t size, size_t count)
{
    if (!HOST_BIG_ENDIAN) {
        wr_put(w, data, size * count);
        return;
    }
    unsigned char tmp[4096];
    const unsigned char *p = data;
    size_t per = sizeof(tmp) / size;
    while (count > 0) {
        size_t k = count < per ? count : per;
        memcpy(tmp, p, k * size);
        swap_elems(tmp, size, k);
        wr_put(w, tmp, k * size);
        p += k * size;
        count -= k;
    }
}

static void encode_header(const mg_index *x, uint64_t upper_ints, const layout *lay,
                          uint32_t small_crc, uint32_t big_crc, unsigned char *h)
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
    idx_put64(h + 104, lay->end - HEADER_BYTES);
    uint64_t ratio;
    memcpy(&ratio, &x->p.cleanup_ratio, 8);
    idx_put64(h + 112, ratio);
    idx_put64(h + 120, x->p.seed);
    idx_put32(h + 128, small_crc);
    idx_put32(h + 132, (uint32_t)x->p.lazy_graph);
    idx_put32(h + 136, (uint32_t)x->linked);
    idx_put32(h + 140, big_crc);
    idx_put32(h + 156, mg_crc32c(0, h, 156));
}

/* Slots of chunk c that are in use. */
static size_t chunk_used(const mg_index *x, int32_t c)
{
    int32_t left = x->n - c * IDX_CHUNK_SLOTS;
    return (size_t)(left < IDX_CHUNK_SLOTS ? left : IDX_CHUNK_SLOTS);
}

static uint64_t upper_ints_of(const mg_index *x)
{
    uint64_t k = 0;
    for (int32_t s = 0; s < x->n; s++)
        k += (uint64_t)x->levels[s] * (uint64_t)x->upper_len;
    return k;
}

/* The sections after the header; their checksums through the pointers. */
static void write_sections(writer *w, const mg_index *x, const layout *lay, uint32_t *small_crc,
                           uint32_t *big_crc)
{
    size_t n = (size_t)x->n;
    wr_pad(w, lay->ids);
    wr_array(w, x->ids, sizeof(int64_t), n);
    wr_pad(w, lay->levels);
    wr_put(w, x->levels, n);
    wr_pad(w, lay->states);
    wr_put(w, x->state, n);
    wr_pad(w, lay->codes);
    wr_put(w, x->codes, n * (size_t)x->code_len);
    wr_pad(w, lay->upper);
    for (int32_t s = 0; s < x->n; s++)
        if (x->levels[s])
            wr_array(w, x->upper + x->upper_off[s], sizeof(int32_t),
                     (size_t)x->levels[s] * (size_t)x->upper_len);
    wr_pad(w, lay->vecs);
    *small_crc = w->crc;
    w->crc = 0;
    for (int32_t c = 0; c * IDX_CHUNK_SLOTS < x->n; c++)
        wr_array(w, x->vec_chunks[c], sizeof(float), chunk_used(x, c) * (size_t)x->dim);
    wr_pad(w, lay->links);
    for (int32_t c = 0; c * IDX_CHUNK_SLOTS < x->n; c++)
        wr_array(w, x->link_chunks[c], sizeof(int32_t), chunk_used(x, c) * (size_t)x->link0_len);
    *big_crc = w->crc;
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
    int lock_fd = -1;
    const char *step = "create";
    w->fd = mkstemp(tmp);
    if (w->fd < 0) {
        w->error = errno;
        goto fail;
    }
    /* Held until the temporary is renamed or removed, through a second
     * descriptor of the same open file, so that the sweep of a process that
     * finds it (mg_index_remove_stale_temp) leaves it alone while we live. */
    flock(w->fd, LOCK_EX);
    lock_fd = dup(w->fd);
    uint64_t generation = idx_new_generation(x), old_generation = x->generation;
    x->generation = generation; /* goes into the header */

    unsigned char h[HEADER_BYTES];
    memset(h, 0, sizeof(h));
    step = "write";
    wr_put(w, h, sizeof(h)); /* placeholder until the checksums are known */
    w->crc = 0;
    layout lay;
    uint64_t upper_ints = upper_ints_of(x);
    file_layout((uint64_t)x->n, (uint64_t)x->dim, (uint64_t)x->link0_len, upper_ints, &lay);
    uint32_t small_crc, big_crc;
    write_sections(w, x, &lay, &small_crc, &big_crc);
    encode_header(x, upper_ints, &lay, small_crc, big_crc, h);
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
    if (lock_fd >= 0) close(lock_fd);
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
    if (lock_fd >= 0) close(lock_fd);
    free(tmp);
    free(w);
    return mg_err_set(err, MG_ERR_IO, "saving index to %s: %s: %s", path, step, strerror(e));
}

int mg_index_temp_is_stale(const char *path)
{
    const char *mark = strstr(path, ".tmp-");
    if (!mark || strlen(mark) != 11) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    /* A free lock: its writer is gone (the kernel drops a dead process's locks). */
    int stale = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return stale;
}

/* ------------------------------------------------------------------ reading */

/* The header fields, decoded and range-checked. */
typedef struct header {
    uint32_t dim, m, ef_construction, ef_search;
    int32_t exact_below, max_level, entry;
    uint64_t slots, live, dead, upper_ints, rng, generation, payload, seed;
    int64_t max_id;
    uint32_t has_max_id, small_crc, big_crc, lazy_graph, linked;
    double cleanup_ratio;
} header;

static mg_status parse_header(const unsigned char *h, const char *path, int dim, header *hd,
                              mg_error *err)
{
    if (memcmp(h, MAGIC, 8) != 0)
        return mg_err_set(err, MG_ERR_CORRUPT, "%s is not a memgpt vector index (bad magic)", path);
    uint32_t version = idx_get32(h + 8);
    if (version != FORMAT_VERSION)
        return mg_err_set(err, MG_ERR_CORRUPT,
                          "index file %s has format version %u; this build reads version %d", path,
                          version, FORMAT_VERSION);
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
    hd->small_crc = idx_get32(h + 128);
    hd->lazy_graph = idx_get32(h + 132);
    hd->linked = idx_get32(h + 136);
    hd->big_crc = idx_get32(h + 140);

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
        (int64_t)hd->entry >= (int64_t)hd->linked || hd->linked > hd->slots ||
        hd->upper_ints > hd->slots * IDX_MAX_LEVEL * (1 + (uint64_t)hd->m))
        return mg_err_set(err, MG_ERR_CORRUPT, "index file %s has invalid counts", path);
    return MG_OK;
}

/* The file, mapped, with its header and layout. */
typedef struct mapped {
    int fd;
    unsigned char *base;
    size_t len;
    header hd;
    layout lay;
} mapped;

/* Opens, checks the header and the size, and maps path. */
static mg_status map_file(const char *path, int dim, mapped *mf, mg_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return mg_err_set(err, MG_ERR_NOT_FOUND, "no index file at %s", path);
        return mg_err_set(err, MG_ERR_IO, "loading index %s: open: %s", path, strerror(errno));
    }
    mg_status st = MG_OK;
    struct stat sb;
    unsigned char h[HEADER_BYTES];
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = mg_err_set(err, MG_ERR_IO, "loading index %s: not a regular file", path);
    } else if (sb.st_size < HEADER_BYTES) {
        st = mg_err_set(err, MG_ERR_CORRUPT,
                        "index file %s is truncated: %lld bytes, shorter than its %d-byte header",
                        path, (long long)sb.st_size, HEADER_BYTES);
    } else if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        st = mg_err_set(err, MG_ERR_IO, "loading index %s: read: %s", path, strerror(errno));
    } else if (!(st = parse_header(h, path, dim, &mf->hd, err))) {
        file_layout(mf->hd.slots, mf->hd.dim, 1 + 2 * (uint64_t)mf->hd.m, mf->hd.upper_ints,
                    &mf->lay);
        uint64_t size = (uint64_t)sb.st_size;
        if (mf->hd.payload != mf->lay.end - HEADER_BYTES)
            st = mg_err_set(err, MG_ERR_CORRUPT, "index file %s has inconsistent sizes", path);
        else if (size != mf->lay.end)
            st = mg_err_set(err, MG_ERR_CORRUPT,
                            "index file %s is %s: %llu bytes, its header says %llu", path,
                            size < mf->lay.end ? "truncated" : "longer than written",
                            (unsigned long long)size, (unsigned long long)mf->lay.end);
    }
    if (!st) {
        mf->len = (size_t)sb.st_size;
        void *p = mmap(NULL, mf->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            st = mg_err_set(err, MG_ERR_IO, "loading index %s: mmap: %s", path, strerror(errno));
        else
            mf->base = p;
#ifdef MADV_POPULATE_READ
        /* Every open reads the small sections whole (their checksum): one
         * call maps their pages, instead of a page fault per few of them.
         * Older kernels refuse the advice, and the faults happen as before. */
        if (p != MAP_FAILED) madvise(p, (size_t)mf->lay.vecs, MADV_POPULATE_READ);
#endif
    }
    if (st != MG_OK)
        close(fd);
    else
        mf->fd = fd;
    return st;
}

static uint32_t crc_between(const mapped *mf, uint64_t from, uint64_t to)
{
    return mg_crc32c(0, mf->base + from, (size_t)(to - from));
}

/* The small sections, padding included: everything before the vectors. */
static int small_sections_intact(const mapped *mf)
{
    return crc_between(mf, HEADER_BYTES, mf->lay.vecs) == mf->hd.small_crc;
}

static int big_sections_intact(const mapped *mf)
{
    return crc_between(mf, mf->lay.vecs, mf->lay.end) == mf->hd.big_crc;
}

/* Big-endian hosts: the sections become host order in place (the pages are
 * copied on write, the file is untouched). */
static void to_host_order(const mapped *mf)
{
    if (!HOST_BIG_ENDIAN) return;
    const layout *l = &mf->lay;
    swap_elems(mf->base + l->ids, 8, (size_t)mf->hd.slots);
    swap_elems(mf->base + l->upper, 4, (size_t)mf->hd.upper_ints);
    swap_elems(mf->base + l->vecs, 4, (size_t)(mf->hd.slots * mf->hd.dim));
    swap_elems(mf->base + l->links, 4, (size_t)((l->end - l->links) / 4));
}

/* Points the index's storage into the mapping (which it then owns). */
static void adopt_mapping(mg_index *x, mapped *mf)
{
    const layout *l = &mf->lay;
    int32_t n = (int32_t)mf->hd.slots;
    unsigned char *base = mf->base;
    x->map = base;
    x->map_len = mf->len;
    mf->base = NULL;
    x->n = x->cap = x->meta_cap = n;
    x->ids = (int64_t *)(base + l->ids);
    x->levels = base + l->levels;
    x->state = base + l->states;
    x->codes = base + l->codes;
    x->meta_mapped = 1;
    x->upper = (int32_t *)(base + l->upper);
    x->upper_cap = x->upper_used = (size_t)mf->hd.upper_ints;
    x->upper_mapped = 1;
    x->upper_off = mg_xmalloc(n ? (size_t)n * sizeof(uint32_t) : 1);
    x->visited = mg_xcalloc(n ? (size_t)n : 1, sizeof(uint16_t));

    int32_t chunks = (n + IDX_CHUNK_SLOTS - 1) / IDX_CHUNK_SLOTS;
    x->chunk_table_cap = chunks > 16 ? chunks : 16;
    x->vec_chunks = mg_xcalloc((size_t)x->chunk_table_cap, sizeof(float *));
    x->link_chunks = mg_xcalloc((size_t)x->chunk_table_cap, sizeof(int32_t *));
    for (int32_t c = 0; c < chunks; c++) {
        size_t first = (size_t)c * IDX_CHUNK_SLOTS;
        x->vec_chunks[c] = (float *)(base + l->vecs) + first * (size_t)x->dim;
        x->link_chunks[c] = (int32_t *)(base + l->links) + first * (size_t)x->link0_len;
    }
    x->n_chunks = chunks;
    x->chunk_mapped = mg_xcalloc((size_t)x->chunk_table_cap, 1);
    memset(x->chunk_mapped, 1, (size_t)chunks);
    /* Searches touch vectors and links at random: read-ahead would only
     * fill memory with pages no search asked for. */
    madvise(base + (l->vecs & ~(uint64_t)4095), (size_t)(l->end - (l->vecs & ~(uint64_t)4095)),
            MADV_RANDOM);
    /* Re-scored vectors are read from the file (index.c, rerank_vec), which
     * holds them little-endian. */
    if (HOST_BIG_ENDIAN)
        close(mf->fd);
    else
        x->map_fd = mf->fd;
    mf->fd = -1;
}

/* The entry-point invariant of idx_check, without reading any link: the
 * entry is a slot of the graph on its top level. */
static mg_status check_entry(const mg_index *x, mg_error *err)
{
    int top = -1;
    for (int32_t s = 0; s < x->linked; s++)
        if (x->state[s] != SLOT_FREE && x->levels[s] > top) top = x->levels[s];
    int ok = top < 0 ? x->entry == -1 && x->max_level == -1
                     : x->entry >= 0 && x->entry < x->linked && x->state[x->entry] != SLOT_FREE &&
                           x->levels[x->entry] == top && x->max_level == top;
    return ok ? MG_OK
              : mg_err_set(err, MG_ERR_CORRUPT, "the entry point %d is not a top-level slot",
                           x->entry);
}

/* Fills the fields the header gives, then checks what every open checks:
 * the per-slot arrays, the counts and the entry point; with `full`, every
 * invariant of idx_check and that every value is finite. */
static mg_status adopt(mg_index *x, const header *hd, const char *path, int full, mg_error *err)
{
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
    if (st == MG_OK) st = full ? idx_check(x, err) : check_entry(x, err);
    for (int32_t c = 0; full && st == MG_OK && c * IDX_CHUNK_SLOTS < x->n; c++)
        if (!idx_all_finite(x->vec_chunks[c], chunk_used(x, c) * (size_t)x->dim))
            st = mg_err_set(err, MG_ERR_CORRUPT, "a vector has a NaN or infinite value");
    if (st != MG_OK) return mg_err_wrap(err, "index file %s is inconsistent: ", path);
    return MG_OK;
}

static mg_status open_file(const char *path, int dim, int full, mg_index **out, mg_error *err)
{
    *out = NULL;
    if (!path || !*path) return mg_err_set(err, MG_ERR_USAGE, "index load: no path");
    if (dim < 1 || dim > MG_INDEX_MAX_DIM)
        return mg_err_set(err, MG_ERR_USAGE, "index dimension %d is outside 1..%d", dim,
                          MG_INDEX_MAX_DIM);
    mapped mf;
    memset(&mf, 0, sizeof(mf));
    mg_status st = map_file(path, dim, &mf, err);
    if (st != MG_OK) return st;
    if (!small_sections_intact(&mf) || (full && !big_sections_intact(&mf))) {
        munmap(mf.base, mf.len);
        close(mf.fd);
        return mg_err_set(err, MG_ERR_CORRUPT, "index file %s is damaged (checksum mismatch)",
                          path);
    }
    to_host_order(&mf);
    const header *hd = &mf.hd;
    mg_index_params p = {
        .m = (int)hd->m,
        .ef_construction = (int)hd->ef_construction,
        .ef_search = (int)hd->ef_search,
        .exact_below = hd->exact_below,
        .cleanup_ratio = hd->cleanup_ratio,
        .seed = hd->seed,
        .lazy_graph = (int)hd->lazy_graph,
    };
    mg_index *x = idx_alloc(dim, &p);
    adopt_mapping(x, &mf);
    if ((st = adopt(x, hd, path, full, err)) != MG_OK) {
        mg_index_free(x);
        return st;
    }
    *out = x;
    return MG_OK;
}

mg_status mg_index_open(const char *path, int dim, mg_index **out, mg_error *err)
{
    return open_file(path, dim, 0, out, err);
}

mg_status mg_index_load(const char *path, int dim, mg_index **out, mg_error *err)
{
    return open_file(path, dim, 1, out, err);
}
