/* Unit tests: chunking (boundaries, overlap, huge lines, empty and binary
 * input, CRLF, UTF-8 at chunk edges), content hashes and SHA-256, file kinds,
 * JSON Lines records, pdftotext errors, and mg_archival_load /
 * mg_archival_reembed against a real store (dedup, progress, bad files,
 * resumable re-embedding). */
#include "testutil.h"

#include <ctype.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/agent.h"
#include "context/tokens.h"
#include "memory/loader.h"
#include "store/store.h"
#include "util/sha256.h"
#include "util/text.h"

/* ------------------------------------------------------------ helpers */

typedef struct chunks {
    loader_chunk items[4096];
    int n;
} chunks;

/* Chunks the whole text; checks the invariants every chunking must keep. */
static void chunk_all(const char *text, size_t len, int max, int overlap, chunks *out)
{
    loader_chunker c;
    loader_chunker_init(&c, text, len, max, overlap);
    out->n = 0;
    loader_chunk ch;
    while (loader_chunker_next(&c, &ch)) {
        assert_true(out->n < 4096);
        out->items[out->n++] = ch;
    }
    loader_chunker_free(&c);
    size_t covered = 0; /* every non-space byte lies in some chunk */
    for (int i = 0; i < out->n; i++) {
        loader_chunk *k = &out->items[i];
        assert_true(k->start < k->end && k->end <= len);
        assert_false(isspace((unsigned char)text[k->start]));
        assert_false(isspace((unsigned char)text[k->end - 1]));
        assert_true(k->tokens <= max);
        assert_int_equal(k->tokens, mg_tokens_estimate(text + k->start, k->end - k->start));
        assert_true(mg_utf8_valid(text + k->start, k->end - k->start));
        if (i > 0) { /* strictly forward */
            assert_true(k->start > out->items[i - 1].start);
            assert_true(k->end > out->items[i - 1].end);
        }
        for (size_t b = covered; b < k->start; b++)
            assert_true(isspace((unsigned char)text[b]));
        if (k->end > covered) covered = k->end;
    }
    for (size_t b = covered; b < len; b++)
        assert_true(isspace((unsigned char)text[b]));
}

/* Deterministic prose: sentences of 4-14 words, paragraphs of `sentences`. */
static char *prose(int paragraphs, int sentences, const char *para_sep, unsigned seed)
{
    static const char *const words[] = {"river",  "lantern", "harbour", "keeper", "winter",
                                        "ledger", "the",     "of",      "a",      "quietly",
                                        "sailed", "biscuit", "mountain"};
    buf b = BUF_INIT;
    for (int p = 0; p < paragraphs; p++) {
        if (p) buf_puts(&b, para_sep);
        for (int s = 0; s < sentences; s++) {
            if (s) buf_putc(&b, ' ');
            seed = seed * 1103515245u + 12345u;
            int n = 4 + (int)((seed >> 16) % 11);
            for (int w = 0; w < n; w++) {
                seed = seed * 1103515245u + 12345u;
                buf_printf(&b, "%s%s", w ? " " : "", words[(seed >> 16) % 13]);
            }
            buf_putc(&b, '.');
        }
    }
    return buf_take(&b);
}

/* ------------------------------------------------------------ chunking */

static void test_paragraph_boundaries(void **state)
{
    /* Paragraphs of ~60-110 tokens: chunks of 300 hold a few whole ones. */
    char *text = prose(40, 6, "\n\n", 7);
    chunks c;
    chunk_all(text, strlen(text), 300, 0, &c);
    assert_true(c.n > 5);
    for (int i = 0; i < c.n; i++) {
        loader_chunk *k = &c.items[i];
        assert_int_equal(k->cut, LOADER_CUT_PARAGRAPH);
        /* Starts a paragraph and ends one. */
        assert_true(k->start == 0 || strncmp(text + k->start - 2, "\n\n", 2) == 0);
        assert_true(k->end == strlen(text) || strncmp(text + k->end, "\n\n", 2) == 0);
        if (i + 1 < c.n) assert_true(k->tokens >= 150); /* past half the budget */
    }
    free(text);
}

static void test_sentence_boundaries(void **state)
{
    /* One paragraph of many sentences: cuts fall after full stops. */
    char *text = prose(1, 200, "", 3);
    chunks c;
    chunk_all(text, strlen(text), 120, 0, &c);
    assert_true(c.n > 10);
    for (int i = 0; i + 1 < c.n; i++) {
        assert_int_equal(c.items[i].cut, LOADER_CUT_SENTENCE);
        assert_int_equal(text[c.items[i].end - 1], '.');
        assert_true(c.items[i].tokens >= 60);
    }
    /* Hard-wrapped lines without sentence ends: cut at line breaks. */
    buf b = BUF_INIT;
    for (int i = 0; i < 300; i++)
        buf_printf(&b, "line %d of the list without a stop\n", i);
    chunk_all(b.data, b.len, 100, 0, &c);
    for (int i = 0; i + 1 < c.n; i++) {
        assert_int_equal(c.items[i].cut, LOADER_CUT_LINE);
        assert_int_equal(b.data[c.items[i].end], '\n');
    }
    buf_free(&b);
    free(text);
}

static void test_markdown_heading_is_a_boundary(void **state)
{
    char *body = prose(1, 12, "", 5);
    buf b = BUF_INIT;
    buf_printf(&b, "%s\n# Heading two\n%s\n## Heading three\n%s", body, body, body);
    chunks c;
    chunk_all(b.data, b.len, 300, 0, &c);
    int heading_starts = 0;
    for (int i = 0; i < c.n; i++)
        heading_starts += b.data[c.items[i].start] == '#';
    assert_true(heading_starts >= 1);
    buf_free(&b);
    free(body);
}

static void test_overlap(void **state)
{
    char *text = prose(1, 300, "", 11);
    size_t len = strlen(text);
    chunks c;
    chunk_all(text, len, 200, 40, &c);
    assert_true(c.n > 5);
    for (int i = 1; i < c.n; i++) {
        loader_chunk *prev = &c.items[i - 1], *k = &c.items[i];
        assert_true(k->start < prev->end); /* overlaps */
        int shared = mg_tokens_estimate(text + k->start, prev->end - k->start);
        assert_true(shared > 0 && shared <= 40);
        /* It starts at a sentence start here (there is one in every 40 tokens). */
        assert_int_equal(text[k->start - 2], '.');
    }
    /* Without overlap, chunks only touch. */
    chunk_all(text, len, 200, 0, &c);
    for (int i = 1; i < c.n; i++)
        assert_true(c.items[i].start >= c.items[i - 1].end);
    free(text);
}

static void test_huge_single_line(void **state)
{
    /* 4 MB with no white space at all: cut at character edges, in time
     * linear in the size (a quadratic scan would take minutes). */
    size_t len = 4u << 20;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = "abcdefghij,"[i % 11];
    text[len] = '\0';
    clock_t t0 = clock();
    loader_chunker c;
    loader_chunker_init(&c, text, len, 300, 50);
    loader_chunk ch, prev = {0};
    int n = 0;
    while (loader_chunker_next(&c, &ch)) {
        assert_true(ch.tokens <= 300 && (ch.tokens > 250 || ch.end == len));
        assert_int_equal(ch.cut, ch.end == len ? LOADER_CUT_PARAGRAPH : LOADER_CUT_CHAR);
        if (n) {
            assert_true(ch.start < prev.end && ch.end > prev.end);
            assert_true(mg_tokens_estimate(text + ch.start, prev.end - ch.start) <= 50);
        }
        prev = ch;
        n++;
    }
    loader_chunker_free(&c);
    assert_int_equal(prev.end, len);
    assert_true(n > 4000);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 20);

    /* One huge line of prose (no newline): sentence cuts still. */
    char *p = prose(1, 3000, "", 9);
    chunks cs;
    chunk_all(p, strlen(p), 300, 50, &cs);
    for (int i = 0; i + 1 < cs.n; i++)
        assert_int_equal(cs.items[i].cut, LOADER_CUT_SENTENCE);
    free(p);

    /* A title, then a blob: the blob fills the first chunk too. */
    memcpy(text, "Title\n\n", 7);
    chunks cb;
    chunk_all(text, 200000, 300, 0, &cb);
    assert_true(cb.items[0].tokens > 250);
    free(text);
}

static void test_empty_and_blank(void **state)
{
    chunks c;
    chunk_all("", 0, 300, 50, &c);
    assert_int_equal(c.n, 0);
    const char *blank = "  \n\n\t \r\n  \f ";
    chunk_all(blank, strlen(blank), 300, 50, &c);
    assert_int_equal(c.n, 0);
    chunk_all("  word  ", 8, 300, 50, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.items[0].start, 2);
    assert_int_equal(c.items[0].end, 6);
}

static void test_binary_and_encoding(void **state)
{
    mg_error err = {0};
    size_t skip = 9;
    assert_int_equal(loader_check_text("ab\0cd", 5, &skip, &err), MG_ERR_USAGE);
    assert_non_null(strstr(err.message, "binary"));
    assert_int_equal(loader_check_text("caf\xE9", 4, &skip, &err), MG_ERR_USAGE); /* Latin-1 */
    assert_non_null(strstr(err.message, "UTF-8"));
    assert_int_equal(loader_check_text("\xEF\xBB\xBFhello", 8, &skip, &err), MG_OK);
    assert_int_equal(skip, 3);
    assert_int_equal(loader_check_text("caf\xC3\xA9", 5, &skip, &err), MG_OK);
    assert_int_equal(skip, 0);
}

static void test_crlf(void **state)
{
    char *lf = prose(12, 5, "\n\n", 21);
    buf crlf = BUF_INIT; /* the same text with Windows line ends */
    for (const char *p = lf; *p; p++) {
        if (*p == '\n') buf_putc(&crlf, '\r');
        buf_putc(&crlf, *p);
    }
    chunks a, b;
    chunk_all(lf, strlen(lf), 150, 0, &a);
    chunk_all(crlf.data, crlf.len, 150, 0, &b);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        assert_int_equal(b.items[i].cut, LOADER_CUT_PARAGRAPH);
        char *ta = loader_chunk_text(lf, &a.items[i], NULL);
        size_t nb;
        char *tb = loader_chunk_text(crlf.data, &b.items[i], &nb);
        assert_string_equal(ta, tb); /* CR LF became LF */
        assert_int_equal(nb, strlen(tb));
        assert_null(strchr(tb, '\r'));
        free(ta);
        free(tb);
    }
    buf_free(&crlf);
    free(lf);
}

static void test_unicode_at_edges(void **state)
{
    /* Accented words, CJK with full stops, emoji with no spaces: every chunk
     * must start and end on character edges (chunk_all checks UTF-8). */
    buf b = BUF_INIT;
    for (int i = 0; i < 400; i++)
        buf_puts(&b, "caf\xC3\xA9 na\xC3\xAFve \xC3\xBC\xC3\xB1\xC3\xAF\xC3\xA7\xC3\xB8"
                     "d\xC3\xA9 ");
    chunks c;
    chunk_all(b.data, b.len, 64, 10, &c);
    assert_true(c.n > 10);
    buf_reset(&b);
    for (int i = 0; i < 300; i++) /* 私は猫が好きです。 */
        buf_puts(&b, "\xE7\xA7\x81\xE3\x81\xAF\xE7\x8C\xAB\xE3\x81\x8C\xE5\xA5\xBD\xE3\x81\x8D"
                     "\xE3\x81\xA7\xE3\x81\x99\xE3\x80\x82");
    chunk_all(b.data, b.len, 100, 20, &c);
    assert_true(c.n > 10);
    for (int i = 0; i + 1 < c.n; i++) { /* after a full stop, though there are no spaces */
        assert_int_equal(c.items[i].cut, LOADER_CUT_SENTENCE);
        assert_memory_equal(b.data + c.items[i].end - 3, "\xE3\x80\x82", 3);
    }
    buf_reset(&b);
    for (int i = 0; i < 3000; i++) /* 4-byte emoji, no separators */
        buf_puts(&b, "\xF0\x9F\x98\x80");
    chunk_all(b.data, b.len, 50, 5, &c);
    assert_true(c.n > 50);
    for (int i = 0; i < c.n; i++) {
        assert_int_equal(c.items[i].start % 4, 0);
        assert_int_equal(c.items[i].end % 4, 0);
    }
    buf_free(&b);
}

static void test_random_texts_keep_invariants(void **state)
{
    /* Random mixes of words, spaces, newlines, punctuation and multi-byte
     * characters, under many budgets (chunk_all checks everything). */
    static const char *const parts[] = {
        "word",         " ",    "\n",    "\n\n", ". ",   "longerwordy", "\xC3\xA9",
        "\xE3\x80\x82", "  \t", "12345", "!",    "\r\n", "#",           "x"};
    unsigned seed = 99;
    for (int round = 0; round < 200; round++) {
        buf b = BUF_INIT;
        seed = seed * 1103515245u + 12345u;
        int n = (int)((seed >> 16) % 3000);
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf_puts(&b, parts[(seed >> 16) % 14]);
        }
        seed = seed * 1103515245u + 12345u;
        int max = 16 + (int)((seed >> 16) % 300);
        chunks c;
        chunk_all(b.data ? b.data : "", b.len, max, max / 3, &c);
        buf_free(&b);
    }
}

/* -------------------------------------------------------------- hashes */

static void test_sha256_vectors(void **state)
{
    struct {
        const char *in, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        mg_sha256 h;
        unsigned char d[32];
        char hex[65];
        mg_sha256_init(&h);
        mg_sha256_update(&h, v[i].in, strlen(v[i].in));
        mg_sha256_final(&h, d);
        mg_sha256_hex(d, hex);
        assert_string_equal(hex, v[i].hex);
    }
    /* A million 'a's, fed in odd-sized pieces (buffering across blocks). */
    mg_sha256 h;
    mg_sha256_init(&h);
    char a[997];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof a ? left : sizeof a;
        mg_sha256_update(&h, a, n);
        left -= n;
    }
    unsigned char d[32];
    char hex[65];
    mg_sha256_final(&h, d);
    mg_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_content_hash(void **state)
{
    char a[65], b[65], c[65], d[65];
    loader_content_hash("The cat\r\nsat.", 13, a);
    loader_content_hash("  The   cat sat.\n", 17, b);
    loader_content_hash("The cat sat!", 12, c);
    loader_content_hash("the cat sat.", 12, d);
    assert_string_equal(a, b); /* white space does not count */
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d); /* case does */
    loader_content_hash("abc", 3, a);
    assert_string_equal(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* --------------------------------------------------------- files/records */

static void test_kinds(void **state)
{
    assert_int_equal(loader_kind_of("a/b/notes.txt"), LOADER_TEXT);
    assert_int_equal(loader_kind_of("README"), LOADER_TEXT);
    assert_int_equal(loader_kind_of("dir.d/LICENSE"), LOADER_TEXT);
    assert_int_equal(loader_kind_of("x.MD"), LOADER_MARKDOWN);
    assert_int_equal(loader_kind_of("x.jsonl"), LOADER_JSONL);
    assert_int_equal(loader_kind_of("x.Pdf"), LOADER_PDF);
    assert_int_equal(loader_kind_of("x.png"), LOADER_UNSUPPORTED);
    assert_int_equal(loader_kind_of("x.txt.bak"), LOADER_UNSUPPORTED);
}

static void test_jsonl_records(void **state)
{
    loader_record r;
    mg_error err = {0};
    const char *ok = "{\"text\": \"caf\\u00e9 time\", \"tags\": [\"a\", \"b\"], \"time\": "
                     "\"2024-05-01\"}";
    assert_int_equal(loader_jsonl_parse(ok, strlen(ok), &r, &err), MG_OK);
    assert_string_equal(r.text, "caf\xC3\xA9 time");
    assert_int_equal(r.text_len, 10);
    assert_string_equal(r.tags_json, "[\"a\",\"b\"]");
    assert_int_equal(r.time_ms, 1714521600000LL);
    loader_record_clear(&r);
    const char *secs = "{\"text\": \"x\", \"time\": 86400}";
    assert_int_equal(loader_jsonl_parse(secs, strlen(secs), &r, &err), MG_OK);
    assert_int_equal(r.time_ms, 86400000);
    assert_null(r.tags_json);
    loader_record_clear(&r);
    const char *bad[] = {"[1]",
                         "{\"text\": 5}",
                         "{\"text\": \"  \"}",
                         "{\"text\": \"x\", \"tags\": [1]}",
                         "{\"text\": \"x\", \"time\": true}",
                         "{\"text\": \"x\", \"time\": -5}",
                         "{\"text\": \"x\"} trailing",
                         "{\"text\": \"a\\u0000b\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(loader_jsonl_parse(bad[i], strlen(bad[i]), &r, &err), MG_ERR_USAGE);
        assert_null(r.object);
    }
}

static void test_pdftotext_missing(void **state)
{
    const char *saved = getenv("PATH");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("PATH", "/nonexistent-memgpt-dir", 1);
    char home[64];
    make_home(home, sizeof home);
    char path[128];
    snprintf(path, sizeof path, "%s/x.pdf", home);
    FILE *f = fopen(path, "w");
    fputs("%PDF-1.4\n", f);
    fclose(f);
    char *out;
    size_t len;
    mg_error err = {0};
    assert_int_equal(loader_pdf_text(path, 5000, 1 << 20, &out, &len, &err), MG_ERR_IO);
    assert_non_null(strstr(err.message, "poppler-utils"));
    if (copy) setenv("PATH", copy, 1);
    free(copy);
    remove_home(home);
}

/* ---------------------------------------------------- load and reembed */

static void write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(data, 1, len, f);
    fclose(f);
}

typedef struct seen {
    int progress, errors;
    char last_error[1024];
    int64_t last_added;
} seen;

static void on_event(const mg_load_event *ev, void *user)
{
    seen *s = user;
    if (ev->type == MG_LOAD_FILE_ERROR) {
        s->errors++;
        snprintf(s->last_error, sizeof s->last_error, "%s:%d: %s", ev->path, ev->line,
                 ev->error->message);
    } else {
        s->progress++;
        assert_true(ev->stats->chunks_added >= s->last_added); /* never goes back */
        assert_true(ev->stats->bytes_done <= ev->stats->bytes_total);
        s->last_added = ev->stats->chunks_added;
    }
}

static int64_t count_rows(fixture *f, const char *sql)
{
    int64_t n;
    mg_error err = {0};
    assert_int_equal(store_query_int(f->store, sql, f->agent->id, -1, &n, &err), MG_OK);
    return n;
}

/* The same, for queries of the whole database (no agent parameter). */
static int64_t count_all(fixture *f, const char *sql)
{
    int64_t n;
    mg_error err = {0};
    assert_int_equal(store_query_int(f->store, sql, 0, -1, &n, &err), MG_OK);
    return n;
}

/* Every passage has exactly one FTS row with its text, and nothing else
 * is indexed ('integrity-check' with rank 1 compares against the content
 * table). */
static void assert_fts_matches_table(fixture *f)
{
    mg_error err = {0};
    assert_int_equal(store_exec(f->store,
                                "INSERT INTO passages_fts(passages_fts, rank) "
                                "VALUES ('integrity-check', 1)",
                                &err),
                     MG_OK);
    assert_int_equal(count_all(f, "SELECT count(*) FROM passages_fts_docsize"),
                     count_all(f, "SELECT count(*) FROM passages"));
}

static void test_load_dedup_and_errors(void **state)
{
    fixture *f = *state;
    char docs[128];
    snprintf(docs, sizeof docs, "%s/docs", f->home);
    assert_int_equal(mkdir(docs, 0700), 0);
    char *text = prose(30, 6, "\n\n", 5);
    write_file(docs, "a.txt", text, strlen(text));
    write_file(docs, "copy.md", text, strlen(text)); /* same chunks again */
    write_file(docs, "bin", "\x01\x02\0\x03", 4);
    const char *lines = "{\"text\": \"The lighthouse cat is Biscuit.\", \"tags\": [\"cat\"]}\n"
                        "oops\n\n{\"text\": \"Second.\", \"time\": 86400}\n";
    write_file(docs, "c.jsonl", lines, strlen(lines));
    write_file(docs, "skip.png", "x", 1);
    mg_error err = {0};
    /* A passage stored before, equal to one line: found by the backfilled hash. */
    assert_int_equal(mg_archival_insert(f->agent, "Second.", NULL, 0, &err), MG_OK);

    const char *paths[] = {docs};
    seen s = {0};
    mg_load_stats st;
    mg_load_options o = {.chunk_tokens = 200, .batch_size = 7};
    assert_int_equal(mg_archival_load(f->agent, paths, 1, &o, on_event, &s, &st, &err), MG_OK);
    assert_int_equal(st.files_total, 4);
    assert_int_equal(st.files_done, 4);
    assert_int_equal(st.files_ignored, 1);
    assert_int_equal(st.files_failed, 2); /* bin, and c.jsonl for its bad line */
    assert_int_equal(st.errors, 2);
    assert_int_equal(s.errors, 2);
    assert_int_equal(st.bytes_done, st.bytes_total);
    assert_true(st.chunks_added > 10);
    /* copy.md repeats each of a.txt's K chunks and "Second." was stored
     * already: K + 1 added (a.txt, the cat line), K + 1 skipped. */
    assert_int_equal(st.chunks_skipped, st.chunks_added);
    assert_true(s.progress > 3);
    assert_int_equal(f->agent->archival_count, 1 + st.chunks_added);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM passages WHERE agent_id = ?"),
                     1 + st.chunks_added);
    assert_int_equal(count_rows(f, "SELECT passage_count FROM agents WHERE id = ?"),
                     1 + st.chunks_added);
    assert_fts_matches_table(f);
    assert_int_equal(count_all(f, "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH "
                                  "'lighthouse'"),
                     1);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM passages WHERE agent_id = ? AND "
                                   "content_hash IS NULL"),
                     0);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM passages WHERE agent_id = ? AND "
                                   "source LIKE '%/c.jsonl' AND position = 0 AND tags = "
                                   "'[\"cat\"]'"),
                     1);

    /* The bigger page cache of the load is given back. */
    assert_int_equal(count_rows(f, "PRAGMA cache_size"), -2000);

    /* Twice: nothing new. */
    mg_load_stats again;
    assert_int_equal(mg_archival_load(f->agent, paths, 1, &o, NULL, NULL, &again, &err), MG_OK);
    assert_int_equal(again.chunks_added, 0);
    assert_int_equal(again.chunks_skipped, st.chunks_added + st.chunks_skipped);
    assert_int_equal(count_rows(f, "SELECT passage_count FROM agents WHERE id = ?"),
                     1 + st.chunks_added);
    assert_fts_matches_table(f);

    /* Options are checked; a missing path is one failed file. */
    mg_load_options bad = {.chunk_tokens = 100, .overlap_tokens = 50};
    assert_int_equal(mg_archival_load(f->agent, paths, 1, &bad, NULL, NULL, NULL, &err),
                     MG_ERR_USAGE);
    const char *missing[] = {"/nonexistent/memgpt-file.txt"};
    s = (seen){0};
    assert_int_equal(mg_archival_load(f->agent, missing, 1, NULL, on_event, &s, &st, &err), MG_OK);
    assert_int_equal(st.files_failed, 1);
    assert_non_null(strstr(s.last_error, "No such file"));
    free(text);
}

/* A load that fails in the middle keeps what it committed, and the
 * count and the FTS index stay true to the table; so does deleting the
 * agent. (Inserts write the FTS row and the count themselves since
 * migration 6.) */
static void test_load_failure_keeps_counts(void **state)
{
    fixture *f = *state;
    char docs[128];
    snprintf(docs, sizeof docs, "%s/docs", f->home);
    assert_int_equal(mkdir(docs, 0700), 0);
    char *text = prose(40, 6, "\n\n", 11);
    write_file(docs, "a.txt", text, strlen(text));
    const char *bad = "Nothing here but the poisoned quokka.";
    write_file(docs, "b.txt", bad, strlen(bad));
    mg_error err = {0};
    assert_int_equal(mg_archival_insert(f->agent, "stored by the agent", NULL, 0, &err), MG_OK);
    /* The database refuses one passage: the batch holding it rolls back. */
    assert_int_equal(store_exec(f->store,
                                "CREATE TEMP TRIGGER poison BEFORE INSERT ON passages "
                                "WHEN new.text LIKE '%quokka%' BEGIN "
                                "SELECT RAISE(ABORT, 'poisoned'); END",
                                &err),
                     MG_OK);
    const char *paths[] = {docs};
    mg_load_stats st;
    mg_load_options o = {.chunk_tokens = 100, .batch_size = 3};
    assert_int_equal(mg_archival_load(f->agent, paths, 1, &o, NULL, NULL, &st, &err), MG_ERR_DB);
    assert_non_null(strstr(err.message, "poisoned"));
    int64_t stored = count_rows(f, "SELECT count(*) FROM passages WHERE agent_id = ?");
    assert_true(stored > 1);
    assert_int_equal(st.chunks_added, stored - 1);
    assert_int_equal(count_rows(f, "SELECT passage_count FROM agents WHERE id = ?"), stored);
    assert_int_equal(f->agent->archival_count, stored);
    assert_fts_matches_table(f);

    /* Again without the fault: only the rolled-back batch is new. */
    assert_int_equal(store_exec(f->store, "DROP TRIGGER temp.poison", &err), MG_OK);
    assert_int_equal(mg_archival_load(f->agent, paths, 1, &o, NULL, NULL, &st, &err), MG_OK);
    assert_true(st.chunks_added >= 1 && st.chunks_added <= 3);
    assert_int_equal(st.chunks_skipped, stored - 1);
    assert_int_equal(count_rows(f, "SELECT passage_count FROM agents WHERE id = ?"),
                     stored + st.chunks_added);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM passages WHERE agent_id = ?"),
                     stored + st.chunks_added);
    assert_int_equal(count_all(f, "SELECT count(*) FROM passages_fts WHERE passages_fts MATCH "
                                  "'quokka'"),
                     1);
    assert_fts_matches_table(f);

    /* Deleting the agent takes its passages out of the index too. */
    mg_agent_free(f->agent);
    f->agent = NULL;
    assert_int_equal(mg_agent_delete(f->store, "t", &err), MG_OK);
    assert_int_equal(count_all(f, "SELECT count(*) FROM passages_fts_docsize"), 0);
    assert_fts_matches_table(f);
    /* The fixture's teardown needs an agent. */
    mg_agent_config cfg = {.context_window = 8192};
    assert_int_equal(mg_agent_create(f->store, "t", &cfg, &err), MG_OK);
    assert_int_equal(mg_agent_open(f->store, "t", &f->agent, &err), MG_OK);
    free(text);
}

static void test_reembed_resumes(void **state)
{
    fixture *f = *state;
    mg_error err = {0};
    for (int i = 0; i < 10; i++) {
        char t[64];
        snprintf(t, sizeof t, "passage number %d about lanterns", i);
        assert_int_equal(mg_archival_insert(f->agent, t, NULL, 0, &err), MG_OK);
    }
    /* Pretend 6 came from another embedder (with another dimension). */
    assert_int_equal(store_exec(f->store,
                                "UPDATE passages SET embedder = 'old', embedding = x'00000000' "
                                "WHERE id IN (SELECT id FROM passages ORDER BY id LIMIT 6)",
                                &err),
                     MG_OK);
    mg_reembed_stats s;
    assert_int_equal(mg_archival_reembed(f->agent, 4, NULL, NULL, &s, &err), MG_OK);
    assert_int_equal(s.total, 6);
    assert_int_equal(s.done, 6);
    assert_int_equal(s.current, 4);
    assert_int_equal(count_rows(f, "SELECT count(*) FROM passages WHERE agent_id = ? AND "
                                   "embedder = 'offline' AND length(embedding) = 392"),
                     10);
    assert_int_equal(mg_archival_reembed(f->agent, 0, NULL, NULL, &s, &err), MG_OK);
    assert_int_equal(s.total, 0);
    assert_int_equal(s.done, 0);
    /* Search works with the new vectors. */
    mg_search q = {.query = "passage number 7", .limit = 3};
    char *json;
    assert_int_equal(mg_archival_search(f->agent, &q, &json, &err), MG_OK);
    assert_non_null(strstr(json, "passage number 7"));
    mg_free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paragraph_boundaries),
        cmocka_unit_test(test_sentence_boundaries),
        cmocka_unit_test(test_markdown_heading_is_a_boundary),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_huge_single_line),
        cmocka_unit_test(test_empty_and_blank),
        cmocka_unit_test(test_binary_and_encoding),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_unicode_at_edges),
        cmocka_unit_test(test_random_texts_keep_invariants),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_content_hash),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_jsonl_records),
        cmocka_unit_test(test_pdftotext_missing),
        cmocka_unit_test_setup_teardown(test_load_dedup_and_errors, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_load_failure_keeps_counts, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reembed_resumes, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
