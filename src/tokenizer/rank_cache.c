/*
 * rank_cache.c - the precompiled rank table: a file laid out for lookup,
 * read page by page on demand.
 *
 * Why. Parsing a rank file (base64 lines) and building its hash tables costs
 * ~22 ms of CPU and ~8.5 MB of heap for o200k_base: more than `memgpt send`
 * may spend before its first byte (20 ms) and than its RSS budget has left.
 * So the tables the parser builds (bpe.c) are written once to a cache file,
 * and later opens use that file: opening is an open, an fstat, one page
 * read and a few checks (~0.5 ms with the PCRE2 compile).
 *
 * Why not mmap. A read-only mapping was the first design, and measured
 * badly: the kernel maps file pages in 64 KB windows around each fault
 * (fault-around; MADV_RANDOM does not turn it off), and the page cache
 * holds the file in large folios once it was written or read whole, which
 * are mapped whole. Counting a 4.7 KB text through a mapping raised RSS by
 * 8 MB, the whole file; after dropping the file from the page cache, by
 * 2 MB, growing again as other processes read it. So the file is read
 * with pread, one 4 KB page on first use, into an anonymous reservation
 * of the file's size (not touched, so not resident, until a page is read):
 * memory grows by exactly the pages lookups touch, whatever the page cache
 * holds. bpe_need guards every read of the tables; a page costs one pread
 * the first time (~1-2 us), a bit test afterwards.
 *
 * Pages touched still add up, since a hash table spreads the tokens of a
 * text over all its pages. bpe.c therefore splits the tokens by rank: the
 * first BPE_HOT_RANKS (the earliest merges: common words, code, white
 * space) in a small "hot" table (~0.85 MB), the rest in a "cold" one behind
 * a 256 KB one-bit filter, so ordinary text touches the hot table, the
 * filter, the pair table and the first part of the token arena (which is in
 * rank order), and a cold page only for a rare token. Counting 4.7 KB of
 * source code touches ~380 pages (1.5 MB); the agent avoids even that when
 * a bound settles its budget (context/context.c).
 *
 * The file: a header, then the sections (byte ranks, pair ranks, filter,
 * offsets, token bytes, hot slots, cold slots), each 64-byte aligned (so no
 * slot or word straddles a page), in host byte order (the header records
 * it; another order is not used).
 *
 * Trust. The cache is derived data next to data we did fetch and check, but
 * it is a file anyone can damage, so it is never trusted blindly:
 *   - it is used only for the rank file it was built from: the header holds
 *     that file's size, modification time (ns) and inode, compared with a
 *     stat of the rank file at every open, and its SHA-256, taken when the
 *     cache is built (the identity of the content the tables came from);
 *   - the header must carry the magic, this format's version, the layout
 *     constants compiled in (hot split, filter size), the encoding and its
 *     token count, the file's exact size, and its own CRC-32C; every
 *     section must lie inside the file with the size its counts imply;
 *   - bpe_ranks_check then checks the arrays lookups depend on and looks up
 *     a sample of tokens (hot ones, and the last), which must come back at
 *     their own rank;
 *   - lookups bound every read a table entry steers (bpe.c), so even a body
 *     damaged past these checks yields wrong ids, never a crash or a hang.
 * The body has no checksum: verifying one would read every page at every
 * open, which is what reading on demand is for avoiding. Anything that
 * fails is rebuilt from the rank file (tokenizer.c), and a cache is only
 * ever replaced whole: written to a temporary file, synced, renamed over.
 */
#include "tokenizer/rank_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "index/crc32c.h"
#include "util/buf.h"
#include "util/err.h"

#define CACHE_MAGIC   "MGRANKS"
#define CACHE_VERSION 1
#define ENDIAN_MARK   0x01020304u
#define ALIGN         64

enum {
    SEC_BYTE_RANK = RANK_CACHE_BYTE_RANK,
    SEC_PAIR_RANK = RANK_CACHE_PAIR_RANK,
    SEC_FILTER = RANK_CACHE_FILTER,
    SEC_OFF = RANK_CACHE_OFF,
    SEC_BYTES = RANK_CACHE_BYTES,
    SEC_HOT = RANK_CACHE_HOT,
    SEC_COLD = RANK_CACHE_COLD,
    NSEC = RANK_CACHE_SECTIONS
};

typedef struct cache_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint32_t endian;
    uint32_t hot_ranks;   /* BPE_HOT_RANKS it was built with */
    uint32_t filter_bits; /* BPE_FILTER_BITS */
    uint32_t n;
    char encoding[16];
    uint8_t rank_sha256[32];
    rank_stamp stamp;
    uint64_t file_size;
    uint64_t nbytes;
    uint32_t max_len;
    uint32_t hot_nslots, hot_max_probe, cold_nslots, cold_max_probe;
    uint32_t crc; /* CRC-32C of the header with this field 0 */
    uint64_t sec_off[NSEC];
    uint64_t sec_len[NSEC];
} cache_header;

void rank_stamp_of(const struct stat *st, rank_stamp *out)
{
    memset(out, 0, sizeof *out);
    out->size = (uint64_t)st->st_size;
    out->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    out->ino = (uint64_t)st->st_ino;
}

static uint32_t header_crc(const cache_header *h)
{
    cache_header copy = *h;
    copy.crc = 0;
    return mg_crc32c(0, &copy, sizeof copy);
}

/* The expected length of each section, from the header's counts. */
static void section_lengths(const cache_header *h, uint64_t len[NSEC])
{
    len[SEC_BYTE_RANK] = 256 * sizeof(uint32_t);
    len[SEC_PAIR_RANK] = 65536 * sizeof(uint32_t);
    len[SEC_FILTER] = BPE_FILTER_BITS / 8;
    len[SEC_OFF] = ((uint64_t)h->n + 1) * sizeof(uint32_t);
    len[SEC_BYTES] = h->nbytes + 8;
    len[SEC_HOT] = (uint64_t)h->hot_nslots * sizeof(bpe_slot);
    len[SEC_COLD] = (uint64_t)h->cold_nslots * sizeof(bpe_slot);
}

/* ------------------------------------------------------------- reading */

void bpe_lazy_fault(bpe_lazy *z, size_t first, size_t last)
{
    const size_t page = (size_t)1 << BPE_PAGE_SHIFT;
    for (size_t k = first; k <= last; k++) {
        if (z->loaded[k >> 6] >> (k & 63) & 1) continue;
        size_t at = k * page, want = z->size - at < page ? z->size - at : page, got = 0;
        while (got < want) {
            ssize_t n = pread(z->fd, z->base + at + got, want - got, (off_t)(at + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
        }
        /* A page that cannot be read stays zeros: empty slots and ranks
         * that are no token, so lookups miss rather than go wrong. */
        if (got < want) {
            memset(z->base + at, 0, want);
            z->io_error = 1;
        }
        z->loaded[k >> 6] |= 1ull << (k & 63);
        z->pages_loaded++;
    }
}

void bpe_lazy_free(bpe_lazy *z)
{
    if (!z) return;
    if (z->base) munmap(z->base, z->size);
    if (z->fd >= 0) close(z->fd);
    free(z->loaded);
    free(z);
}

static mg_status reject(bpe_lazy *z, mg_error *err, const char *path, const char *why)
{
    bpe_lazy_free(z);
    return mg_err_set(err, MG_ERR_CORRUPT, "%s: %s", path, why);
}

mg_status rank_cache_open(const char *path, const char *encoding, uint32_t expected,
                          const rank_stamp *stamp, bpe_ranks *r, mg_error *err)
{
    memset(r, 0, sizeof *r);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mg_status code = errno == ENOENT ? MG_ERR_NOT_FOUND : MG_ERR_IO;
        return mg_err_set(err, code, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mg_err_set(err, MG_ERR_CORRUPT, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (st.st_size < (off_t)sizeof(cache_header) || st.st_size > ((off_t)1 << 30)) {
        close(fd);
        return mg_err_set(err, MG_ERR_CORRUPT, "%s: truncated or not a rank cache (%zu bytes)",
                          path, size);
    }
    /* Reserved, not touched: a page costs memory once it is read. Not a
     * huge page, or one read would commit 2 MB. */
    bpe_lazy *z = mg_xcalloc(1, sizeof *z);
    z->fd = fd;
    z->size = size;
    z->loaded = mg_xcalloc(((size >> BPE_PAGE_SHIFT) + 64) / 64, sizeof *z->loaded);
    z->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (z->base == MAP_FAILED) {
        z->base = NULL;
        bpe_lazy_free(z);
        return mg_err_set(err, MG_ERR_IO, "%s: no memory for the rank cache", path);
    }
#ifdef MADV_NOHUGEPAGE
    madvise(z->base, size, MADV_NOHUGEPAGE);
#endif
    bpe_lazy_fault(z, 0, (sizeof(cache_header) - 1) >> BPE_PAGE_SHIFT);
    const cache_header *h = (const cache_header *)z->base;
    if (z->io_error) return reject(z, err, path, "cannot be read");
    if (memcmp(h->magic, CACHE_MAGIC, sizeof CACHE_MAGIC) != 0)
        return reject(z, err, path, "not a rank cache");
    if (h->version != CACHE_VERSION || h->header_size != sizeof *h || h->endian != ENDIAN_MARK ||
        h->hot_ranks != BPE_HOT_RANKS || h->filter_bits != BPE_FILTER_BITS)
        return reject(z, err, path, "another version or layout");
    if (h->crc != header_crc(h)) return reject(z, err, path, "the header is damaged");
    if (h->file_size != size) return reject(z, err, path, "truncated or extended");
    if (strncmp(h->encoding, encoding, sizeof h->encoding) != 0 || h->n != expected)
        return reject(z, err, path, "built for another encoding");
    if (memcmp(&h->stamp, stamp, sizeof *stamp) != 0)
        return reject(z, err, path, "stale: the rank file changed since it was built");
    uint64_t want[NSEC];
    section_lengths(h, want);
    for (int i = 0; i < NSEC; i++)
        if (h->sec_len[i] != want[i] || h->sec_off[i] % ALIGN || h->sec_off[i] > size ||
            want[i] > size - h->sec_off[i])
            return reject(z, err, path, "a section is out of place");

    const uint8_t *base = z->base;
    bpe_need(&(bpe_ranks){.lazy = z}, base + h->sec_off[SEC_BYTE_RANK], sizeof r->byte_rank);
    memcpy(r->byte_rank, base + h->sec_off[SEC_BYTE_RANK], sizeof r->byte_rank);
    r->n = h->n;
    r->max_len = h->max_len;
    r->nbytes = h->nbytes;
    r->pair_rank = (const uint32_t *)(base + h->sec_off[SEC_PAIR_RANK]);
    r->filter = (const uint64_t *)(base + h->sec_off[SEC_FILTER]);
    r->off = (const uint32_t *)(base + h->sec_off[SEC_OFF]);
    r->bytes = base + h->sec_off[SEC_BYTES];
    r->hot = (bpe_table){(const bpe_slot *)(base + h->sec_off[SEC_HOT]), h->hot_nslots,
                         h->hot_max_probe};
    r->cold = (bpe_table){(const bpe_slot *)(base + h->sec_off[SEC_COLD]), h->cold_nslots,
                          h->cold_max_probe};
    r->lazy = z;
    mg_status st2 = bpe_ranks_check(r, err);
    if (!st2 && z->io_error) st2 = mg_err_set(err, MG_ERR_IO, "read failed");
    if (st2) {
        mg_err_wrap(err, "%s: ", path);
        bpe_ranks_free(r);
        return st2;
    }
    return MG_OK;
}

mg_status rank_cache_layout(const char *path, uint64_t off[RANK_CACHE_SECTIONS],
                            uint64_t len[RANK_CACHE_SECTIONS], mg_error *err)
{
    cache_header h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mg_err_set(err, MG_ERR_IO, "%s: %s", path, strerror(errno));
    ssize_t got = pread(fd, &h, sizeof h, 0);
    close(fd);
    if (got != (ssize_t)sizeof h) return mg_err_set(err, MG_ERR_IO, "%s: short header", path);
    memcpy(off, h.sec_off, sizeof h.sec_off);
    memcpy(len, h.sec_len, sizeof h.sec_len);
    return MG_OK;
}

/* ------------------------------------------------------------- writing */

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

mg_status rank_cache_write(const char *path, const char *encoding, const bpe_ranks *r,
                           const rank_stamp *stamp, const uint8_t sha256[32], mg_error *err)
{
    if (r->lazy) return mg_err_set(err, MG_ERR_USAGE, "the ranks are already a cache");
    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, sizeof CACHE_MAGIC);
    h.version = CACHE_VERSION;
    h.header_size = sizeof h;
    h.endian = ENDIAN_MARK;
    h.hot_ranks = BPE_HOT_RANKS;
    h.filter_bits = BPE_FILTER_BITS;
    h.n = r->n;
    snprintf(h.encoding, sizeof h.encoding, "%s", encoding);
    memcpy(h.rank_sha256, sha256, 32);
    h.stamp = *stamp;
    h.nbytes = r->nbytes;
    h.max_len = r->max_len;
    h.hot_nslots = r->hot.nslots;
    h.hot_max_probe = r->hot.max_probe;
    h.cold_nslots = r->cold.nslots;
    h.cold_max_probe = r->cold.max_probe;
    const void *data[NSEC] = {r->byte_rank, r->pair_rank, r->filter,    r->off,
                              r->bytes,     r->hot.slots, r->cold.slots};
    section_lengths(&h, h.sec_len);
    uint64_t at = (sizeof h + ALIGN - 1) / ALIGN * ALIGN;
    for (int i = 0; i < NSEC; i++) {
        h.sec_off[i] = at;
        at = (at + h.sec_len[i] + ALIGN - 1) / ALIGN * ALIGN;
    }
    h.file_size = at;
    h.crc = header_crc(&h);

    size_t plen = strlen(path);
    char *tmp = mg_xmalloc(plen + 16);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        mg_err_set(err, MG_ERR_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return MG_ERR_IO;
    }
    static const uint8_t zeros[ALIGN];
    uint64_t written = sizeof h;
    int bad = fchmod(fd, 0644) != 0 || write_all(fd, &h, sizeof h) != 0;
    for (int i = 0; i < NSEC && !bad; i++) {
        bad = write_all(fd, zeros, (size_t)(h.sec_off[i] - written)) != 0 ||
              write_all(fd, data[i], (size_t)h.sec_len[i]) != 0;
        written = h.sec_off[i] + h.sec_len[i];
    }
    bad = bad || write_all(fd, zeros, (size_t)(h.file_size - written)) != 0;
    /* Synced before the rename, so a crash leaves the old file or the new
     * one, never a torn one under the final name. */
    bad = bad || fsync(fd) != 0;
    int saved = errno;
    bad = close(fd) != 0 || bad;
    if (!bad && rename(tmp, path) != 0) {
        saved = errno;
        bad = 1;
    }
    if (bad) {
        unlink(tmp);
        mg_err_set(err, MG_ERR_IO, "writing %s: %s", path, strerror(saved));
        free(tmp);
        return MG_ERR_IO;
    }
    free(tmp);
    return MG_OK;
}
