/*
 * fuzz_loader.c - what `archival load` and `archival insert --jsonl` read
 * (memory/loader.c): JSON Lines records, the text check, and the chunking
 * of text and Markdown into passages.
 *
 * Input: byte 0 even for JSON Lines, odd for chunking; for chunking, byte
 * 1 sets the chunk size (16 + byte tokens) and byte 2 the overlap; the rest
 * is the file.
 *
 * Properties of JSON Lines (loader_jsonl_parse, one call per line): a
 * record has non-blank text of valid UTF-8 with its length, tags that are
 * a JSON array of strings or none, and a time from the documented forms; a
 * refusal is MG_ERR_USAGE with one line of valid UTF-8 saying why.
 * Properties of text (loader_check_text): accepted exactly when it is valid
 * UTF-8 without NUL bytes after an optional byte order mark, which is
 * skipped.
 * Properties of chunking (loader_chunker_*, on the text made valid, as the
 * check demands; loader.h's promises):
 *  - chunks come in text order, each reaching further than the one before,
 *    and together cover every byte that is not white space;
 *  - a chunk starts and ends on a character that is not white space, never
 *    inside a UTF-8 character, holds `tokens` = its estimate, within the
 *    chunk size, and starts at most the overlap's tokens before the end of
 *    the previous one;
 *  - a chunk's passage text (loader_chunk_text) has its CR LF, CRs and form
 *    feeds turned into LF and nothing else changed, and hashes
 *    (loader_content_hash) like the chunk's bytes; the hash of any text is
 *    the hash of its words joined by single spaces.
 */
#include "fuzz.h"

#include <jansson.h>

#include "context/tokens.h"
#include "memory/loader.h"
#include "util/buf.h"
#include "util/text.h"

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void check_error(const mg_error *err, mg_status st)
{
    FZ_CHECK(st == MG_ERR_USAGE && err->code == st, "refused with status %d", st);
    size_t n = strlen(err->message);
    FZ_CHECK(n && mg_utf8_valid(err->message, n), "the refusal is not valid UTF-8: %s",
             err->message);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK((unsigned char)err->message[i] >= 0x20, "the refusal is not one line");
}

static void check_jsonl(const uint8_t *p, size_t len)
{
    fz_input in = {p, len};
    while (in.n) {
        const uint8_t *line;
        size_t n = fz_field(&in, '\n', &line);
        loader_record rec;
        mg_error err = {0};
        mg_status st = loader_jsonl_parse((const char *)line, n, &rec, &err);
        if (st) {
            check_error(&err, st);
            continue;
        }
        FZ_CHECK(rec.text && rec.text_len == strlen(rec.text), "the text's length is wrong");
        FZ_CHECK(mg_utf8_valid(rec.text, rec.text_len) && !mg_text_blank(rec.text),
                 "the text is blank or not UTF-8");
        if (rec.tags_json) {
            json_t *tags = json_loads(rec.tags_json, 0, NULL);
            FZ_CHECK(json_is_array(tags), "tags are not a list: %s", rec.tags_json);
            for (size_t i = 0; i < json_array_size(tags); i++)
                FZ_CHECK(json_is_string(json_array_get(tags, i)), "a tag is not a string");
            json_decref(tags);
        }
        json_t *when = json_object_get(rec.object, "time");
        if (json_is_integer(when))
            FZ_CHECK(rec.time_ms == json_integer_value(when) * 1000, "epoch seconds misread");
        else if (!json_is_string(when))
            FZ_CHECK(rec.time_ms == 0, "a time without a \"time\"");
        loader_record_clear(&rec);
    }
}

static void check_text(const uint8_t *p, size_t len)
{
    size_t skip = 9;
    mg_error err = {0};
    mg_status st = loader_check_text((const char *)p, len, &skip, &err);
    int bom = len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0;
    int text = !memchr(p, '\0', len) && mg_utf8_valid((const char *)p, len);
    FZ_CHECK((st == MG_OK) == text, "loader_check_text said %d for %s text", st,
             text ? "good" : "bad");
    if (!st)
        FZ_CHECK(skip == (bom ? 3u : 0u), "skip %zu with%s a byte order mark", skip,
                 bom ? "" : "out");
    else
        check_error(&err, st);
}

/* The hash of the text's words joined by single spaces. */
static void hash_of_words(const char *t, size_t len, char hex[65])
{
    buf words = BUF_INIT;
    for (size_t i = 0; i < len;) {
        while (i < len && is_space((unsigned char)t[i]))
            i++;
        size_t start = i;
        while (i < len && !is_space((unsigned char)t[i]))
            i++;
        if (i == start) break;
        if (words.len) buf_putc(&words, ' ');
        buf_append(&words, t + start, i - start);
    }
    loader_content_hash(buf_str(&words), words.len, hex);
    buf_free(&words);
}

static void check_chunk_text(const char *text, const loader_chunk *c)
{
    size_t n;
    char *passage = loader_chunk_text(text, c, &n);
    FZ_CHECK(strlen(passage) == n, "the passage's length is wrong");
    size_t j = 0;
    for (size_t i = c->start; i < c->end; i++, j++) {
        char want = text[i] == '\r' || text[i] == '\f' ? '\n' : text[i];
        if (text[i] == '\r' && i + 1 < c->end && text[i + 1] == '\n') i++;
        FZ_CHECK(j < n && passage[j] == want, "the passage differs at byte %zu", j);
    }
    FZ_CHECK(j == n, "the passage is longer than its chunk");
    char a[65], b[65], w[65];
    loader_content_hash(text + c->start, c->end - c->start, a);
    loader_content_hash(passage, n, b);
    hash_of_words(passage, n, w);
    FZ_CHECK(strcmp(a, b) == 0, "line ends changed the content hash");
    FZ_CHECK(strcmp(b, w) == 0, "the content hash is not the hash of the words");
    free(passage);
}

static void check_chunks(const char *text, size_t len, int max, int overlap)
{
    loader_chunker ch;
    loader_chunker_init(&ch, text, len, max, overlap);
    max = ch.max_tokens, overlap = ch.overlap_tokens; /* as clamped */
    loader_chunk c, prev = {0};
    size_t first = 0, count = 0;
    while (first < len && is_space((unsigned char)text[first]))
        first++;
    size_t covered = first; /* every non-blank byte before this is in a chunk */
    while (loader_chunker_next(&ch, &c)) {
        FZ_CHECK(++count <= len + 1, "more chunks than bytes");
        FZ_CHECK(c.start < c.end && c.end <= len, "chunk [%zu, %zu) of %zu bytes", c.start, c.end,
                 len);
        FZ_CHECK(!is_space((unsigned char)text[c.start]) &&
                     !is_space((unsigned char)text[c.end - 1]),
                 "chunk [%zu, %zu) starts or ends with white space", c.start, c.end);
        FZ_CHECK(((unsigned char)text[c.start] & 0xC0) != 0x80 &&
                     (c.end == len || ((unsigned char)text[c.end] & 0xC0) != 0x80),
                 "chunk [%zu, %zu) cuts a character", c.start, c.end);
        int tokens = mg_tokens_estimate(text + c.start, c.end - c.start);
        FZ_CHECK(c.tokens == tokens && tokens <= max,
                 "chunk [%zu, %zu): %d tokens, said %d, max %d", c.start, c.end, tokens, c.tokens,
                 max);
        FZ_CHECK(c.start <= covered, "bytes [%zu, %zu) are in no chunk", covered, c.start);
        if (count > 1) {
            FZ_CHECK(c.start > prev.start && c.end > prev.end,
                     "chunk [%zu, %zu) does not reach past [%zu, %zu)", c.start, c.end, prev.start,
                     prev.end);
            if (c.start < prev.end)
                FZ_CHECK(mg_tokens_estimate(text + c.start, prev.end - c.start) <= overlap,
                         "chunk [%zu, %zu) overlaps [%zu, %zu) by more than %d tokens", c.start,
                         c.end, prev.start, prev.end, overlap);
        }
        check_chunk_text(text, &c);
        covered = c.end;
        while (covered < len && is_space((unsigned char)text[covered]))
            covered++;
        prev = c;
    }
    FZ_CHECK(covered == len || (count == 0 && first == len), "the text after %zu is in no chunk",
             covered);
    loader_chunker_free(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    unsigned mode = fz_byte(&in);
    if (!(mode & 1)) {
        check_jsonl(in.p, in.n);
        return 0;
    }
    int max = 16 + (int)fz_byte(&in);
    int overlap = (int)fz_byte(&in);
    check_text(in.p, in.n);
    char *text = mg_utf8_repair((const char *)in.p, in.n);
    check_chunks(text, strlen(text), max, overlap);
    free(text);
    return 0;
}
