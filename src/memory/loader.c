/*
 * loader.c - chunking, content hashes, reading files, walking directories.
 *
 * Chunking works on "pieces": a run of non-white-space bytes plus the white
 * space after it (and, inside a run, a CJK full stop ends a piece too). The
 * token estimate of context/tokens.c never lets a run of letters, digits or
 * spaces cross a piece start, so the tokens of a chunk are exactly the sum of
 * its pieces' tokens and each candidate end costs one estimate of one piece,
 * not of the whole chunk. Every piece holds at least one token, so a chunk
 * has at most max_tokens pieces and the scratch array of candidate cuts has a
 * fixed size.
 *
 * A chunk grows piece by piece until the next would not fit. Then it ends at
 * the last paragraph break past half the budget, else the last sentence end,
 * else the last line break, else the last word. A piece that alone is bigger
 * than what is left (a minified line, a base64 blob, a CJK paragraph with no
 * punctuation) is cut by bytes: the longest prefix within budget, found by
 * binary search (the estimate only grows as a prefix grows) and moved back
 * to a UTF-8 character edge. Piece scans stop at a window of 16 bytes per
 * token, far more than any token spans inside a run, so a 100 MB line costs
 * no more per chunk than ordinary prose.
 *
 * The next chunk starts at the earliest cut inside the last `overlap_tokens`
 * tokens of the previous one, preferring a sentence start. If that chunk
 * would end no later than the previous one (the piece after it does not fit
 * even then), it starts afresh at the end of the previous chunk instead, so
 * every chunk reaches further than the one before.
 *
 * PDF text comes from pdftotext, run with posix_spawnp (no shell, so a file
 * name is only ever a file name), read through pipes with poll() against a
 * deadline, and killed when the deadline passes or the text grows too large.
 */
#include "memory/loader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "context/tokens.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/sha256.h"
#include "util/text.h"

extern char **environ;

/* ------------------------------------------------------------- chunking */

/* A place a chunk may end: after a piece. */
typedef struct loader_point {
    size_t content_end; /* end of the piece's text: where the chunk would end */
    size_t next;        /* after its white space: where the next piece starts */
    int end_tokens;     /* tokens from the chunk start to content_end */
    int cum_tokens;     /* tokens from the chunk start to next */
    loader_cut cut;
} loader_point;

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Length of a CJK/fullwidth sentence terminator at p (。！？), else 0. */
static size_t cjk_stop(const unsigned char *p, size_t avail)
{
    if (avail < 3) return 0;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x82) return 3;                   /* 。 */
    if (p[0] == 0xEF && p[1] == 0xBC && (p[2] == 0x81 || p[2] == 0x9F)) return 3; /* ！？ */
    return 0;
}

/* 1 if text[0, end) ends a sentence: . ! ? or … or a CJK stop, maybe followed
 * by one closing quote or bracket. */
static int ends_sentence(const unsigned char *t, size_t start, size_t end)
{
    if (end <= start) return 0;
    size_t e = end;
    unsigned char c = t[e - 1];
    if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '*' || c == '_') {
        e--;
    } else if (e - start >= 3 && t[e - 3] == 0xE2 && t[e - 2] == 0x80 &&
               (t[e - 1] == 0x9D || t[e - 1] == 0x99)) { /* ” ’ */
        e -= 3;
    } else if (e - start >= 2 && t[e - 2] == 0xC2 && t[e - 1] == 0xBB) { /* » */
        e -= 2;
    }
    if (e <= start) return 0;
    c = t[e - 1];
    if (c == '.' || c == '!' || c == '?') return 1;
    if (e - start >= 3 && t[e - 3] == 0xE2 && t[e - 2] == 0x80 && t[e - 1] == 0xA6) return 1;
    return e - start >= 3 && cjk_stop(t + e - 3, 3);
}

/* Bytes a chunk's pieces may span before a piece counts as too big to place
 * whole: inside a run without white space no token covers 16 bytes. */
static size_t window_bytes(int max_tokens)
{
    return 16 * ((size_t)max_tokens + 2);
}

/* Scans the piece starting at p. Returns 0 if its text runs past `limit`
 * (it is too big to place whole), else 1 with *point's content_end, next
 * and cut filled in. */
static int scan_piece(const loader_chunker *c, size_t p, size_t limit, loader_point *point)
{
    const unsigned char *t = (const unsigned char *)c->text;
    size_t q = p;
    while (q < c->len && !is_space(t[q])) {
        if (q >= limit) return 0;
        size_t stop = cjk_stop(t + q, c->len - q);
        if (stop) {
            q += stop;
            if (q < c->len && !is_space(t[q])) {
                point->content_end = point->next = q;
                point->cut = LOADER_CUT_SENTENCE;
                return 1;
            }
            continue;
        }
        q++;
    }
    point->content_end = q;
    int newlines = 0, form_feed = 0;
    for (; q < c->len && is_space(t[q]); q++) {
        if (t[q] == '\n' || (t[q] == '\r' && (q + 1 >= c->len || t[q + 1] != '\n'))) newlines++;
        if (t[q] == '\f') form_feed = 1;
    }
    point->next = q;
    if (q >= c->len || newlines >= 2 || form_feed || (newlines && t[q] == '#'))
        point->cut = LOADER_CUT_PARAGRAPH; /* '#' opening a line: a Markdown heading */
    else if (ends_sentence(t, p, point->content_end))
        point->cut = LOADER_CUT_SENTENCE;
    else if (newlines)
        point->cut = LOADER_CUT_LINE;
    else
        point->cut = LOADER_CUT_WORD;
    return 1;
}

static int tokens_of(const loader_chunker *c, size_t from, size_t to)
{
    return mg_tokens_estimate(c->text + from, to - from);
}

static size_t skip_space(const loader_chunker *c, size_t p)
{
    while (p < c->len && is_space((unsigned char)c->text[p]))
        p++;
    return p;
}

/* A plan for one chunk starting at s. */
typedef struct plan {
    loader_chunk chunk;
    size_t next;   /* start of the following chunk (with overlap) */
    size_t resume; /* start of the following chunk without overlap */
} plan;

/* Cuts by bytes from s: the longest prefix within max_tokens ending at a
 * character edge, and an overlap found the same way from its end. */
static void plan_bytes(const loader_chunker *c, size_t s, plan *out)
{
    size_t avail = c->len - s, limit = window_bytes(c->max_tokens);
    if (limit > avail) limit = avail;
    size_t lo = 1, hi = limit; /* largest n with tokens(s, s+n) <= max */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (tokens_of(c, s, s + mid) <= c->max_tokens)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t n = mg_utf8_cut(c->text + s, avail, lo);
    if (n == 0) { /* never for a sane budget: one code point */
        n = 1;
        while (n < avail && ((unsigned char)c->text[s + n] & 0xC0) == 0x80)
            n++;
    }
    size_t e = s + n;
    out->resume = e;
    while (e > s && is_space((unsigned char)c->text[e - 1]))
        e--;
    out->chunk = (loader_chunk){s, e, tokens_of(c, s, e), LOADER_CUT_CHAR};
    out->next = out->resume;
    if (c->overlap_tokens <= 0 || e - s < 2) return;
    size_t lo_m = 0, hi_m = e - s - 1; /* largest suffix within the overlap */
    while (lo_m < hi_m) {
        size_t mid = lo_m + (hi_m - lo_m + 1) / 2;
        if (tokens_of(c, e - mid, e) <= c->overlap_tokens)
            lo_m = mid;
        else
            hi_m = mid - 1;
    }
    if (lo_m == 0) return;
    size_t start = e - lo_m;
    while (start < e && ((unsigned char)c->text[start] & 0xC0) == 0x80)
        start++; /* forward to a character start, shrinking the overlap */
    if (start > s && start < e) out->next = start;
}

/* Picks where the next chunk starts inside the chosen one (points[0..end)). */
static size_t overlap_start(const loader_chunker *c, const loader_point *points, int end)
{
    if (c->overlap_tokens <= 0) return points[end].next;
    int total = points[end].end_tokens, word = -1;
    for (int k = 0; k < end; k++) {
        int overlap = total - points[k].cum_tokens;
        if (overlap > c->overlap_tokens) continue;
        if (word < 0) word = k;
        if (points[k].cut >= LOADER_CUT_SENTENCE && overlap * 4 >= c->overlap_tokens)
            return points[k].next;
    }
    return word >= 0 ? points[word].next : points[end].next;
}

static void plan_chunk(const loader_chunker *c, size_t s, plan *out)
{
    loader_point *points = c->points;
    size_t limit = s + window_bytes(c->max_tokens);
    int n = 0, cum = 0, reached_end = 0;
    for (size_t p = s;;) {
        if (p >= c->len) {
            reached_end = 1;
            break;
        }
        loader_point pt;
        if (!scan_piece(c, p, limit, &pt)) break;
        int text_tokens = tokens_of(c, p, pt.content_end);
        if (cum + text_tokens > c->max_tokens) break;
        pt.end_tokens = cum + text_tokens;
        cum = pt.cum_tokens = pt.end_tokens + tokens_of(c, pt.content_end, pt.next);
        points[n++] = pt;
        p = pt.next;
    }
    int half = c->max_tokens / 2;
    if (n == 0 || (!reached_end && points[n - 1].end_tokens < half)) {
        plan_bytes(c, s, out);
        return;
    }
    int end = n - 1;
    if (!reached_end) {
        int found = -1;
        for (int cls = LOADER_CUT_PARAGRAPH; cls >= LOADER_CUT_LINE && found < 0; cls--)
            for (int i = n - 1; i >= 0 && points[i].end_tokens >= half; i--)
                if ((int)points[i].cut >= cls) {
                    found = i;
                    break;
                }
        if (found >= 0) end = found;
    }
    out->chunk = (loader_chunk){s, points[end].content_end, points[end].end_tokens,
                                reached_end ? LOADER_CUT_PARAGRAPH : points[end].cut};
    out->resume = points[end].next;
    out->next = reached_end ? c->len : overlap_start(c, points, end);
}

void loader_chunker_init(loader_chunker *c, const char *text, size_t len, int max_tokens,
                         int overlap_tokens)
{
    memset(c, 0, sizeof *c);
    if (max_tokens < LOADER_MIN_CHUNK_TOKENS) max_tokens = LOADER_MIN_CHUNK_TOKENS;
    if (max_tokens > LOADER_MAX_CHUNK_TOKENS) max_tokens = LOADER_MAX_CHUNK_TOKENS;
    if (overlap_tokens < 0) overlap_tokens = 0;
    if (overlap_tokens >= max_tokens / 2) overlap_tokens = max_tokens / 2 - 1;
    c->text = text;
    c->len = len;
    c->max_tokens = max_tokens;
    c->overlap_tokens = overlap_tokens;
    c->points = mg_xmalloc(((size_t)max_tokens + 2) * sizeof *c->points);
}

int loader_chunker_next(loader_chunker *c, loader_chunk *out)
{
    if (c->done) return 0;
    size_t s = skip_space(c, c->pos);
    if (s >= c->len) {
        c->done = 1;
        return 0;
    }
    plan p;
    plan_chunk(c, s, &p);
    if (c->prev_end && p.chunk.end <= c->prev_end) {
        /* Overlapping made no progress: start where the last chunk ended. */
        s = skip_space(c, c->resume);
        if (s >= c->len) {
            c->done = 1;
            return 0;
        }
        plan_chunk(c, s, &p);
    }
    *out = p.chunk;
    c->prev_end = p.chunk.end;
    c->resume = p.resume;
    c->pos = p.next;
    if (skip_space(c, p.resume) >= c->len) c->done = 1;
    return 1;
}

void loader_chunker_free(loader_chunker *c)
{
    free(c->points);
    c->points = NULL;
}

char *loader_chunk_text(const char *text, const loader_chunk *chunk, size_t *len_out)
{
    size_t n = chunk->end - chunk->start;
    char *out = mg_xmalloc(n + 1), *w = out;
    const char *p = text + chunk->start, *end = text + chunk->end;
    for (; p < end; p++) {
        if (*p == '\r') {
            *w++ = '\n';
            if (p + 1 < end && p[1] == '\n') p++;
        } else {
            *w++ = *p == '\f' ? '\n' : *p;
        }
    }
    *w = '\0';
    if (len_out) *len_out = (size_t)(w - out);
    return out;
}

void loader_content_hash(const char *text, size_t len, char hex[65])
{
    mg_sha256 h;
    mg_sha256_init(&h);
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
    int words = 0;
    while (i < len) {
        while (i < len && is_space(t[i]))
            i++;
        size_t start = i;
        while (i < len && !is_space(t[i]))
            i++;
        if (i == start) break;
        if (words++) mg_sha256_update(&h, " ", 1);
        mg_sha256_update(&h, t + start, i - start);
    }
    unsigned char digest[32];
    mg_sha256_final(&h, digest);
    mg_sha256_hex(digest, hex);
}

/* ---------------------------------------------------------------- files */

loader_kind loader_kind_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return *base ? LOADER_TEXT : LOADER_UNSUPPORTED;
    const char *ext = dot + 1;
    if (strcasecmp(ext, "txt") == 0 || strcasecmp(ext, "text") == 0) return LOADER_TEXT;
    if (strcasecmp(ext, "md") == 0 || strcasecmp(ext, "markdown") == 0) return LOADER_MARKDOWN;
    if (strcasecmp(ext, "jsonl") == 0) return LOADER_JSONL;
    if (strcasecmp(ext, "pdf") == 0) return LOADER_PDF;
    return LOADER_UNSUPPORTED;
}

mg_status loader_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
                           mg_error *err)
{
    *out = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO (behind a link) must not block the open; it is
     * refused below, and regular files ignore the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return mg_err_set(err, MG_ERR_IO, "cannot read: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mg_err_set(err, MG_ERR_IO, "not a regular file");
    }
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return mg_err_set(err, MG_ERR_TOO_LARGE, "too large (%lld bytes; the limit is %zu)",
                          (long long)st.st_size, max_bytes);
    }
    /* The size is a hint: the file may change while we read it. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *data = mg_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                free(data);
                close(fd);
                return mg_err_set(err, MG_ERR_TOO_LARGE, "too large (the limit is %zu bytes)",
                                  max_bytes);
            }
            cap *= 2;
            data = mg_xrealloc(data, cap);
        }
        ssize_t got = read(fd, data + n, cap - 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            mg_status s = mg_err_set(err, MG_ERR_IO, "cannot read: %s", strerror(errno));
            free(data);
            close(fd);
            return s;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    data[n] = '\0';
    *out = data;
    *len = n;
    return MG_OK;
}

mg_status loader_check_text(const char *data, size_t len, size_t *skip, mg_error *err)
{
    *skip = 0;
    if (memchr(data, '\0', len))
        return mg_err_set(err, MG_ERR_USAGE, "binary file (it contains NUL bytes), not text");
    if (!mg_utf8_valid(data, len))
        return mg_err_set(err, MG_ERR_USAGE, "not UTF-8 text (binary, or another encoding)");
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) *skip = 3;
    return MG_OK;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_pipe(int fds[2])
{
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Reads what is available on fd into b (at most `cap` bytes kept). Returns 0
 * at end of file, 1 if more may come, -1 if b would pass cap. */
static int drain(int fd, buf *b, size_t cap, int keep_excess)
{
    char chunk[65536];
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (got == 0) return 0;
    if (b->len + (size_t)got > cap) {
        if (!keep_excess) return -1;
        got = (ssize_t)(cap - b->len);
    }
    buf_append(b, chunk, (size_t)got);
    return 1;
}

/* The first line of pdftotext's complaints, made printable. */
static void first_line(const buf *b, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len && b->data[i] != '\n' && n + 1 < size; i++)
        out[n++] = (unsigned char)b->data[i] < 0x20 ? '?' : b->data[i];
    out[n] = '\0';
}

mg_status loader_pdf_text(const char *path, int timeout_ms, size_t max_bytes, char **out,
                          size_t *len, mg_error *err)
{
    *out = NULL;
    *len = 0;
    struct stat info;
    if (stat(path, &info) != 0 || access(path, R_OK) != 0)
        return mg_err_set(err, MG_ERR_IO, "cannot read: %s", strerror(errno));
    if (!S_ISREG(info.st_mode)) return mg_err_set(err, MG_ERR_IO, "not a regular file");
    int out_pipe[2], err_pipe[2];
    if (make_pipe(out_pipe) != 0) return mg_err_set(err, MG_ERR_IO, "pipe: %s", strerror(errno));
    if (make_pipe(err_pipe) != 0) {
        close(out_pipe[0]);
        close(out_pipe[1]);
        return mg_err_set(err, MG_ERR_IO, "pipe: %s", strerror(errno));
    }
    /* A name starting with '-' would read as an option. */
    buf arg = BUF_INIT;
    buf_printf(&arg, "%s%s", path[0] == '-' ? "./" : "", path);
    char *argv[] = {"pdftotext", "-enc", "UTF-8", "-eol", "unix", (char *)buf_str(&arg), "-", NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, "pdftotext", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    buf_free(&arg);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (rc != 0) {
        close(out_pipe[0]);
        close(err_pipe[0]);
        if (rc == ENOENT)
            return mg_err_set(err, MG_ERR_IO,
                              "pdftotext is not installed; PDFs need it (Debian package "
                              "poppler-utils)");
        return mg_err_set(err, MG_ERR_IO, "cannot run pdftotext: %s", strerror(rc));
    }
    buf text = BUF_INIT, complaints = BUF_INIT;
    int64_t deadline = monotonic_ms() + timeout_ms;
    struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    const char *failure = NULL;
    while (open_fds > 0 && !failure) {
        int64_t left = deadline - monotonic_ms();
        if (left <= 0) {
            failure = "timeout";
            break;
        }
        int ready = poll(fds, 2, left > 1000 ? 1000 : (int)left);
        if (ready < 0 && errno != EINTR) {
            failure = "poll";
            break;
        }
        for (int i = 0; i < 2 && ready > 0; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int r = i == 0 ? drain(fds[i].fd, &text, max_bytes, 0)
                           : drain(fds[i].fd, &complaints, 4096, 1);
            if (r < 0) {
                failure = "size";
            } else if (r == 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            }
        }
    }
    if (failure) kill(pid, SIGKILL);
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    mg_status st = MG_OK;
    char why[200];
    first_line(&complaints, why, sizeof why);
    if (failure && strcmp(failure, "timeout") == 0)
        st = mg_err_set(err, MG_ERR_IO, "pdftotext took longer than %d s; gave up",
                        (timeout_ms + 999) / 1000);
    else if (failure && strcmp(failure, "size") == 0)
        st = mg_err_set(err, MG_ERR_IO, "pdftotext wrote more than %zu bytes of text; gave up",
                        max_bytes);
    else if (failure)
        st = mg_err_set(err, MG_ERR_IO, "reading from pdftotext: %s", strerror(errno));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        st = mg_err_set(err, MG_ERR_IO, "pdftotext failed (%s %d)%s%s",
                        WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                        why[0] ? ": " : "", why);
    buf_free(&complaints);
    if (st) {
        buf_free(&text);
        return st;
    }
    if (mg_utf8_valid(text.data ? text.data : "", text.len) &&
        !memchr(text.data ? text.data : "", '\0', text.len)) {
        *len = text.len;
        *out = text.data ? buf_take(&text) : mg_xstrdup("");
    } else {
        *out = mg_utf8_repair(text.data, text.len);
        *len = strlen(*out);
        buf_free(&text);
    }
    return MG_OK;
}

mg_status loader_jsonl_parse(const char *line, size_t len, loader_record *rec, mg_error *err)
{
    memset(rec, 0, sizeof *rec);
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return mg_err_set(err, MG_ERR_USAGE, "not a JSON object: %s",
                          obj ? "wrong type" : jerr.text);
    }
    rec->object = obj;
    json_t *text = json_object_get(obj, "text"), *tags = json_object_get(obj, "tags"),
           *when = json_object_get(obj, "time");
    mg_status st = MG_OK;
    if (!json_is_string(text) || mg_text_blank(json_string_value(text))) {
        st = mg_err_set(err, MG_ERR_USAGE, "the object has no non-empty \"text\" string");
    } else if (tags && !json_is_null(tags)) {
        int ok = json_is_array(tags);
        for (size_t i = 0; ok && i < json_array_size(tags); i++)
            ok = json_is_string(json_array_get(tags, i));
        if (!ok)
            st = mg_err_set(err, MG_ERR_USAGE, "\"tags\" must be an array of strings");
        else
            rec->tags_json = json_dumps(tags, JSON_COMPACT);
    }
    if (!st && json_is_integer(when)) {
        json_int_t secs = json_integer_value(when);
        if (secs < 0 || secs >= 253402300800LL) /* up to year 9999 */
            st = mg_err_set(err, MG_ERR_USAGE, "\"time\" is out of range");
        else
            rec->time_ms = (int64_t)secs * 1000;
    } else if (!st && json_is_string(when)) {
        st = mg_parse_time(json_string_value(when), 0, &rec->time_ms, err);
    } else if (!st && when && !json_is_null(when)) {
        st = mg_err_set(err, MG_ERR_USAGE, "\"time\" must be a date string or epoch seconds");
    }
    if (st) {
        loader_record_clear(rec);
        return st;
    }
    rec->text = json_string_value(text);
    rec->text_len = json_string_length(text);
    return MG_OK;
}

void loader_record_clear(loader_record *rec)
{
    json_decref(rec->object);
    free(rec->tags_json);
    memset(rec, 0, sizeof *rec);
}

/* ----------------------------------------------------------- walking */

#define MAX_WALK_DEPTH 64

static void add_file(loader_files *out, const char *path, int64_t size, loader_kind kind)
{
    if (out->count == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 64;
        out->items = mg_xrealloc(out->items, out->cap * sizeof *out->items);
    }
    out->items[out->count++] = (loader_file){mg_xstrdup(path), size, kind};
}

static void walk_error(loader_walk_error_fn on_error, void *ctx, const char *path, mg_status code,
                       const char *message)
{
    mg_error e = {0};
    mg_err_set(&e, code, "%s", message);
    if (on_error) on_error(ctx, path, &e);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk_dir(const char *dir, int depth, loader_files *out, loader_walk_error_fn on_error,
                     void *ctx)
{
    if (depth > MAX_WALK_DEPTH) {
        walk_error(on_error, ctx, dir, MG_ERR_USAGE, "directories nested too deeply; skipped");
        return;
    }
    DIR *d = opendir(dir);
    if (!d) {
        walk_error(on_error, ctx, dir, MG_ERR_IO, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.') continue; /* ., .., and hidden files (.git) */
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = mg_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = mg_xstrdup(entry->d_name);
    }
    closedir(d);
    if (n > 1) qsort(names, n, sizeof *names, by_name);
    size_t dlen = strlen(dir);
    int slash = dlen > 0 && dir[dlen - 1] == '/';
    buf path = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s%s%s", dir, slash ? "" : "/", names[i]);
        struct stat st, target;
        if (lstat(buf_str(&path), &st) != 0) {
            walk_error(on_error, ctx, buf_str(&path), MG_ERR_IO, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            walk_dir(buf_str(&path), depth + 1, out, on_error, ctx);
        } else if (S_ISLNK(st.st_mode) && stat(buf_str(&path), &target) == 0 &&
                   S_ISDIR(target.st_mode)) {
            out->ignored++; /* links to directories are not followed: no loops */
        } else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            out->ignored++; /* fifos, sockets, devices */
        } else {
            loader_kind kind = loader_kind_of(names[i]);
            if (kind == LOADER_UNSUPPORTED)
                out->ignored++;
            else /* a broken link is kept: reading it reports why */
                add_file(out, buf_str(&path), S_ISREG(st.st_mode) ? st.st_size : 0, kind);
        }
        free(names[i]);
    }
    buf_free(&path);
    free(names);
}

void loader_walk(const char *path, loader_files *out, loader_walk_error_fn on_error, void *ctx)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        walk_error(on_error, ctx, path, MG_ERR_IO, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        walk_dir(path, 0, out, on_error, ctx);
    } else if (!S_ISREG(st.st_mode)) {
        walk_error(on_error, ctx, path, MG_ERR_USAGE, "not a regular file or a directory");
    } else if (loader_kind_of(path) == LOADER_UNSUPPORTED) {
        walk_error(on_error, ctx, path, MG_ERR_USAGE,
                   "unsupported file type: archival load reads .txt, .md, .jsonl, .pdf and "
                   "text files without an extension");
    } else {
        add_file(out, path, st.st_size, loader_kind_of(path));
    }
}

void loader_files_free(loader_files *files)
{
    for (size_t i = 0; i < files->count; i++)
        free(files->items[i].path);
    free(files->items);
    memset(files, 0, sizeof *files);
}
