/*
 * fuzz_index.c - the vector index's file reader (mg_index_open, the mapped
 * open every search process uses, and mg_index_load, which checks every
 * byte) and its append log's replay (mg_index_log_attach[_checked]). Both
 * read files a crash, a full disk or another program may have left in any
 * state.
 *
 * Input: byte 0 even: the rest is an index file of 4-dimensional vectors;
 * odd: the rest is the records of a log (after a valid header the target
 * writes) that extends a fixed base index of 12 vectors, ids 1..12.
 *
 * Properties of the file reader:
 *  - what mg_index_load accepts, mg_index_open accepts too, and the exact
 *    searches of both give the same ids;
 *  - whatever mg_index_open accepts can be searched (graph and exact),
 *    changed and saved without reading out of bounds (ASan watches), and
 *    every id a search returns is live;
 *  - an index mg_index_load accepts holds only finite vectors, and saved
 *    and loaded again it has the same ids with the same vectors.
 * Properties of the log replay, against a model of the format written here
 * from its documented layout (index_log.c):
 *  - the replay applies exactly the records up to the first incomplete or
 *    damaged one (kind, padding, CRC-32C), and cuts the file there;
 *  - unchecked, a record that contradicts the index (an add of a live id,
 *    a remove of one that is not) or holds a vector the index refuses stops
 *    the attach with MG_ERR_CORRUPT; otherwise the live ids are the model's;
 *  - checked (every add accepted), repeats are tolerated: the live ids are
 *    the model's with adds replacing and removes of absent ids skipped;
 *  - no live vector is ever non-finite.
 *
 * Seeds: MG_FUZZ_INDEX_SEEDS=DIR makes the first run write seed inputs
 * (index files of each kind, logs of adds and removes) into DIR.
 */
#include "fuzz.h"

#include <fcntl.h>
#include <math.h>
#include <unistd.h>

#include "index/crc32c.h"
#include "index/index.h"

#define DIM      4
#define BASE_N   12
#define MAX_LIVE 4096

static char dir[64], path[96], path2[96], base_path[96], log_path[112];
static unsigned char log_header[32];

static void cleanup(void)
{
    unlink(path);
    unlink(path2);
    unlink(base_path);
    unlink(log_path);
    char p2log[112];
    snprintf(p2log, sizeof p2log, "%s.log", path2);
    unlink(p2log);
    rmdir(dir);
}

static void write_file(const char *p, const uint8_t *data, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0, "cannot write %s", p);
    FZ_CHECK(n == 0 || write(fd, data, n) == (ssize_t)n, "short write to %s", p);
    close(fd);
}

static size_t read_file(const char *p, uint8_t **out)
{
    FILE *f = fopen(p, "rb");
    FZ_CHECK(f != NULL, "cannot read %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc(n > 0 ? (size_t)n : 1);
    FZ_CHECK(*out && fread(*out, 1, (size_t)n, f) == (size_t)n, "cannot read %s", p);
    fclose(f);
    return (size_t)n;
}

static void vector_of(int64_t id, float *v)
{
    for (int i = 0; i < DIM; i++)
        v[i] = (float)sin((double)(id * 7 + i));
}

static mg_index *build(int n, int graph, int removed)
{
    mg_index_params p;
    mg_index_params_default(&p);
    if (graph) p.exact_below = -1;
    mg_index *idx;
    mg_error err = {0};
    FZ_CHECK(mg_index_new(DIM, &p, &idx, &err) == MG_OK, "%s", err.message);
    float v[DIM];
    for (int64_t id = 1; id <= n; id++) {
        vector_of(id, v);
        FZ_CHECK(mg_index_add(idx, id, v, &err) == MG_OK, "%s", err.message);
    }
    for (int64_t id = 2; id <= removed * 2; id += 2)
        FZ_CHECK(mg_index_remove(idx, id, &err) == MG_OK, "%s", err.message);
    return idx;
}

/* ------------------------------------------------------------ the file */

/* Sorted live ids; returns how many (at most MAX_LIVE are copied). */
static int64_t sorted_ids(const mg_index *idx, int64_t *ids)
{
    int64_t n = mg_index_ids(idx, ids, MAX_LIVE);
    if (n > MAX_LIVE) n = MAX_LIVE;
    for (int64_t i = 1; i < n; i++)
        for (int64_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            int64_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    return n;
}

static void all_finite(const mg_index *idx, const char *what)
{
    static int64_t ids[MAX_LIVE];
    int64_t n = sorted_ids(idx, ids);
    float v[DIM];
    for (int64_t i = 0; i < n; i++) {
        FZ_CHECK(mg_index_vector(idx, ids[i], v), "%s: live id %lld has no vector", what,
                 (long long)ids[i]);
        for (int k = 0; k < DIM; k++)
            FZ_CHECK(isfinite(v[k]), "%s: id %lld holds a non-finite value", what,
                     (long long)ids[i]);
    }
}

/* Searches of every kind; returns the exact search's ids through ids[5]. */
static int search_all(mg_index *idx, const float *q, int64_t *exact)
{
    int64_t ids[5];
    int found = 0;
    mg_error err = {0};
    if (mg_index_search(idx, q, 5, 16, ids, NULL, &found, &err) == MG_OK)
        for (int i = 0; i < found; i++)
            FZ_CHECK(mg_index_contains(idx, ids[i]), "a search returned id %lld, not live",
                     (long long)ids[i]);
    int n = 0;
    if (mg_index_search_exact(idx, q, 5, exact, NULL, &n, &err) != MG_OK) n = -1;
    for (int i = 0; i < n; i++)
        FZ_CHECK(mg_index_contains(idx, exact[i]), "an exact search returned id %lld, not live",
                 (long long)exact[i]);
    return n;
}

static void file_input(const uint8_t *data, size_t size)
{
    write_file(path, data, size);
    mg_error err = {0};
    mg_index *loaded = NULL, *opened = NULL;
    mg_status load_st = mg_index_load(path, DIM, &loaded, &err);
    mg_status open_st = mg_index_open(path, DIM, &opened, &err);
    FZ_CHECK(load_st != MG_OK || open_st == MG_OK, "load accepted what open refused: %s",
             err.message);
    float q[DIM] = {0.5f, -0.25f, 1.0f, 0.125f};
    if (opened) {
        int64_t e1[5], e2[5];
        int n1 = search_all(opened, q, e1);
        if (loaded) {
            int n2 = search_all(loaded, q, e2);
            FZ_CHECK(n1 == n2 && memcmp(e1, e2, (size_t)(n1 > 0 ? n1 : 0) * sizeof *e1) == 0,
                     "open and load answer an exact search differently (%d / %d results)", n1, n2);
        }
        /* Changes to a mapped file stay in the process (copy-on-write). */
        int64_t top = 0;
        mg_index_max_id(opened, &top);
        if (top < INT64_MAX && mg_index_add(opened, top + 1, q, &err) == MG_OK)
            FZ_CHECK(mg_index_remove(opened, top + 1, &err) == MG_OK, "%s", err.message);
        mg_index_free(opened);
    }
    if (loaded) {
        all_finite(loaded, "a loaded file");
        static int64_t a[MAX_LIVE], b[MAX_LIVE];
        int64_t na = sorted_ids(loaded, a);
        if (mg_index_save(loaded, path2, &err) == MG_OK) {
            mg_index *again = NULL;
            FZ_CHECK(mg_index_load(path2, DIM, &again, &err) == MG_OK,
                     "a saved index does not load: %s", err.message);
            int64_t nb = sorted_ids(again, b);
            FZ_CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0,
                     "saved and loaded again, the ids differ (%lld / %lld)", (long long)na,
                     (long long)nb);
            float va[DIM], vb[DIM];
            for (int64_t i = 0; i < na; i++) {
                mg_index_vector(loaded, a[i], va);
                mg_index_vector(again, a[i], vb);
                FZ_CHECK(memcmp(va, vb, sizeof va) == 0, "id %lld changed in the round trip",
                         (long long)a[i]);
            }
            mg_index_free(again);
        }
        mg_index_free(loaded);
    }
}

/* ------------------------------------------------------------- the log */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct model {
    int64_t ids[MAX_LIVE];
    int n;
} model;

static int model_find(const model *m, int64_t id)
{
    for (int i = 0; i < m->n; i++)
        if (m->ids[i] == id) return i;
    return -1;
}

/* Replays records the way the format says. Returns the bytes of the good
 * records; *conflict is set when, unchecked, one contradicts the state. */
static size_t model_replay(const uint8_t *p, size_t n, int checked, model *m, int *conflict)
{
    size_t off = 0;
    *conflict = 0;
    for (;;) {
        if (n - off < 16) break;
        uint32_t kind = get32(p + off);
        if ((kind != 1 && kind != 2) || get32(p + off + 4) != 0) break;
        size_t rec = 16 + (kind == 1 ? 4 * DIM : 0) + 4;
        if (n - off < rec || get32(p + off + rec - 4) != mg_crc32c(0, p + off, rec - 4)) break;
        int64_t id = 0;
        memcpy(&id, p + off + 8, 8); /* little-endian hosts only, as the format */
        int at = model_find(m, id);
        if (kind == 1) {
            float v[DIM];
            memcpy(v, p + off + 16, sizeof v);
            int finite = 1;
            for (int i = 0; i < DIM; i++)
                finite &= isfinite(v[i]) != 0;
            if (!finite || (at >= 0 && !checked) || (at < 0 && m->n == MAX_LIVE)) {
                *conflict = 1;
                return off;
            }
            if (at < 0) m->ids[m->n++] = id;
        } else if (at >= 0) {
            m->ids[at] = m->ids[--m->n];
        } else if (!checked) {
            *conflict = 1;
            return off;
        }
        off += rec;
    }
    return off;
}

static int accept_all(void *ctx, int64_t id, const float *vec, int dim)
{
    (void)ctx, (void)id, (void)vec, (void)dim;
    return 1;
}

static void log_input(const uint8_t *data, size_t size, int checked)
{
    uint8_t *file = malloc(sizeof log_header + size + 1);
    FZ_CHECK(file != NULL, "out of memory");
    memcpy(file, log_header, sizeof log_header);
    if (size) memcpy(file + sizeof log_header, data, size);
    write_file(log_path, file, sizeof log_header + size);
    free(file);

    model m = {.n = BASE_N};
    for (int i = 0; i < BASE_N; i++)
        m.ids[i] = i + 1;
    int conflict;
    size_t good = model_replay(data, size, checked, &m, &conflict);

    mg_index *idx = NULL;
    mg_error err = {0};
    FZ_CHECK(mg_index_load(base_path, DIM, &idx, &err) == MG_OK, "the base: %s", err.message);
    mg_index_log_info info = {0};
    mg_status st =
        mg_index_log_attach_checked(idx, log_path, checked ? accept_all : NULL, NULL, &info, &err);
    if (conflict) {
        FZ_CHECK(st == MG_ERR_CORRUPT, "a contradicting record at byte %zu was applied (%d: %s)",
                 good, st, err.message);
    } else {
        FZ_CHECK(st == MG_OK, "a log of good records was refused: %s", err.message);
        FZ_CHECK(info.torn_bytes == (int64_t)(size - good), "torn %lld bytes, the model %zu",
                 (long long)info.torn_bytes, size - good);
        uint8_t *after;
        size_t n = read_file(log_path, &after);
        free(after);
        FZ_CHECK(n == sizeof log_header + good, "the log was cut at %zu, not after %zu bytes", n,
                 good);
        static int64_t have[MAX_LIVE];
        int64_t live = sorted_ids(idx, have);
        FZ_CHECK(live == m.n, "%lld live ids, the model %d", (long long)live, m.n);
        for (int i = 0; i < m.n; i++)
            FZ_CHECK(mg_index_contains(idx, m.ids[i]), "id %lld should be live",
                     (long long)m.ids[i]);
    }
    all_finite(idx, "a replayed log");
    mg_index_free(idx);
}

/* ------------------------------------------------------------ set-up */

static void write_seeds(const char *out)
{
    struct {
        const char *name;
        int n, graph, removed;
    } files[] = {{"file-exact", 10, 0, 0}, {"file-graph", 40, 1, 0}, {"file-removed", 30, 1, 4}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        mg_index *idx = build(files[i].n, files[i].graph, files[i].removed);
        mg_error err = {0};
        FZ_CHECK(mg_index_save(idx, path2, &err) == MG_OK, "%s", err.message);
        mg_index_free(idx);
        uint8_t *bytes;
        size_t n = read_file(path2, &bytes);
        char p[512];
        snprintf(p, sizeof p, "%s/%s", out, files[i].name);
        uint8_t *seed = malloc(n + 1);
        seed[0] = 0;
        memcpy(seed + 1, bytes, n);
        write_file(p, seed, n + 1);
        free(seed);
        free(bytes);
    }
    /* A log: adds of new ids, removes, a repeat, then a torn record. */
    mg_index *idx;
    mg_error err = {0};
    FZ_CHECK(mg_index_load(base_path, DIM, &idx, &err) == MG_OK, "%s", err.message);
    FZ_CHECK(mg_index_log_attach(idx, log_path, NULL, &err) == MG_OK, "%s", err.message);
    float v[DIM];
    for (int64_t id = 13; id <= 16; id++) {
        vector_of(id, v);
        mg_index_add(idx, id, v, &err);
    }
    mg_index_remove(idx, 3, &err);
    mg_index_remove(idx, 14, &err);
    mg_index_free(idx);
    uint8_t *bytes;
    size_t n = read_file(log_path, &bytes);
    char p[512];
    snprintf(p, sizeof p, "%s/log-adds-removes", out);
    bytes[sizeof log_header - 1] = 1; /* byte 0 of the input: odd */
    write_file(p, bytes + sizeof log_header - 1, n - sizeof log_header + 1);
    snprintf(p, sizeof p, "%s/log-torn", out);
    write_file(p, bytes + sizeof log_header - 1, n - sizeof log_header + 1 - 7);
    free(bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz-ix-XXXXXX", tmp);
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/in.mgx", dir);
    snprintf(path2, sizeof path2, "%s/out.mgx", dir);
    snprintf(base_path, sizeof base_path, "%s/base.mgx", dir);
    snprintf(log_path, sizeof log_path, "%s.log", base_path);
    atexit(cleanup);
    fz_cleanup = cleanup;

    /* The base index and the header of a log that extends it. */
    mg_index *base = build(BASE_N, 0, 0);
    mg_error err = {0};
    FZ_CHECK(mg_index_save(base, base_path, &err) == MG_OK, "%s", err.message);
    FZ_CHECK(mg_index_log_attach(base, log_path, NULL, &err) == MG_OK, "%s", err.message);
    mg_index_free(base);
    uint8_t *header;
    size_t n = read_file(log_path, &header);
    FZ_CHECK(n == sizeof log_header, "a new log is %zu bytes", n);
    memcpy(log_header, header, sizeof log_header);
    free(header);

    const char *seeds = getenv("MG_FUZZ_INDEX_SEEDS");
    if (seeds) write_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] % 2 == 0)
        file_input(data + 1, size - 1);
    else
        log_input(data + 1, size - 1, data[0] % 4 == 3);
    return 0;
}
