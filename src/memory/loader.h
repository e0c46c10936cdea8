/*
 * loader.h - turning files into archival passages: chunking, content hashes,
 * reading text, Markdown, JSON Lines and PDF, and walking directories.
 *
 * Nothing here touches the database or the embedder: this is the pure,
 * unit-testable half of `memgpt archival load`. The other half, which
 * batches, deduplicates and stores, is agent/archival_load.c.
 *
 * Chunks are byte ranges of the caller's text, so a passage can always be
 * traced back to a position in its file. They hold at most `max_tokens`
 * tokens by mg_tokens_estimate (context/tokens.h), end at the strongest
 * boundary available past half that size (paragraph, then sentence, then line,
 * then word; a run of text with no white space at all is cut at a UTF-8
 * character edge), and the next chunk starts up to `overlap_tokens` tokens
 * before the previous one ended, at a sentence start when there is one.
 */
#ifndef MG_MEMORY_LOADER_H
#define MG_MEMORY_LOADER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "memgpt.h"

/* ------------------------------------------------------------- chunking */

/* Where a chunk ends, weakest to strongest. */
typedef enum loader_cut {
    LOADER_CUT_CHAR = 0,  /* inside a run of text with no white space */
    LOADER_CUT_WORD,      /* at white space */
    LOADER_CUT_LINE,      /* at a line break */
    LOADER_CUT_SENTENCE,  /* after . ! ? (or a CJK full stop), before white space */
    LOADER_CUT_PARAGRAPH, /* at a blank line, a form feed, before a Markdown heading,
                             or at the end of the text */
} loader_cut;

typedef struct loader_chunk {
    size_t start; /* offset of the first byte; never white space */
    size_t end;   /* one past the last byte; the byte before is never white space */
    int tokens;   /* mg_tokens_estimate of text[start, end), <= max_tokens */
    loader_cut cut;
} loader_chunk;

/* Chunking state over a text the caller keeps alive. Fields are private. */
typedef struct loader_chunker {
    const char *text;
    size_t len;
    int max_tokens, overlap_tokens;
    size_t pos;      /* where the next chunk starts (maybe inside the previous one) */
    size_t resume;   /* where it starts if overlapping would not make progress */
    size_t prev_end; /* end of the previous chunk, 0 before the first */
    int done;
    struct loader_point *points; /* scratch: candidate cuts, max_tokens + 2 of them */
} loader_chunker;

/* Smallest and largest chunk sizes accepted, and the defaults. Overlap must
 * be below half the chunk size (so every chunk makes progress). */
#define LOADER_MIN_CHUNK_TOKENS     16
#define LOADER_MAX_CHUNK_TOKENS     8192
#define LOADER_DEFAULT_CHUNK_TOKENS 300
#define LOADER_DEFAULT_OVERLAP      50

/* Prepares to chunk text[0, len) (UTF-8, no NUL bytes). The caller checks
 * the sizes (see above); out-of-range values are clamped. Free with
 * loader_chunker_free. */
void loader_chunker_init(loader_chunker *c, const char *text, size_t len, int max_tokens,
                         int overlap_tokens);

/* The next chunk, in text order: returns 1 and fills *out, or 0 when the text
 * is exhausted (white space alone makes no chunk). Each call does work
 * proportional to the chunk's size, whatever the length of lines. */
int loader_chunker_next(loader_chunker *c, loader_chunk *out);

void loader_chunker_free(loader_chunker *c);

/* The passage text of a chunk: its bytes with CR LF and lone CR turned into
 * LF and form feeds into LF. Caller frees; *len_out (may be NULL) gets the
 * length. */
char *loader_chunk_text(const char *text, const loader_chunk *chunk, size_t *len_out);

/* SHA-256, as 64 hex digits, of the text normalised so that only words count:
 * every run of white space becomes one space and leading and trailing white
 * space is dropped. Equal passages up to line endings and wrapping hash
 * equal. */
void loader_content_hash(const char *text, size_t len, char hex[65]);

/* ---------------------------------------------------------------- files */

typedef enum loader_kind {
    LOADER_UNSUPPORTED = 0,
    LOADER_TEXT,     /* .txt, or no extension: must be UTF-8 text */
    LOADER_MARKDOWN, /* .md, .markdown */
    LOADER_JSONL,    /* .jsonl: one {"text", "tags", "time"} object per line */
    LOADER_PDF,      /* .pdf: text through pdftotext (poppler-utils) */
} loader_kind;

/* The kind by file name (extension, case-insensitive). */
loader_kind loader_kind_of(const char *path);

/* Files larger than this are refused (a file is read whole). */
#define LOADER_MAX_FILE_BYTES ((size_t)1 << 30)

/* Reads a whole regular file. *out (caller frees) is NUL-terminated; *len
 * excludes the NUL. MG_ERR_IO names the path and the system's reason;
 * MG_ERR_TOO_LARGE past `max_bytes`. */
mg_status loader_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
                           mg_error *err);

/* Checks that data[0, len) is text: no NUL bytes, valid UTF-8. Sets *skip to
 * the length of a UTF-8 byte order mark (3) or 0. MG_ERR_USAGE says what is
 * wrong ("binary file", "not UTF-8 text"). */
mg_status loader_check_text(const char *data, size_t len, size_t *skip, mg_error *err);

/* Runs `pdftotext -enc UTF-8 -eol unix PATH -` (no shell; found on PATH),
 * killing it after timeout_ms. The text (caller frees, NUL-terminated,
 * repaired to valid UTF-8 without NUL bytes) goes to *out. MG_ERR_IO when
 * pdftotext is missing, fails (with its first line of complaint), takes too
 * long, or writes more than max_bytes. */
mg_status loader_pdf_text(const char *path, int timeout_ms, size_t max_bytes, char **out,
                          size_t *len, mg_error *err);

/* One line of a JSON Lines file, as `archival insert --jsonl` takes it:
 * {"text": "...", "tags": ["..."], "time": "2024-05-01" | epoch seconds}. */
typedef struct loader_record {
    json_t *object; /* owns `text` */
    const char *text;
    size_t text_len;
    char *tags_json; /* compact JSON array, or NULL for none */
    int64_t time_ms; /* 0: now */
} loader_record;

/* Parses line[0, len). MG_ERR_USAGE says what is wrong with it. On success
 * free with loader_record_clear. */
mg_status loader_jsonl_parse(const char *line, size_t len, loader_record *rec, mg_error *err);
void loader_record_clear(loader_record *rec);

/* ----------------------------------------------------------- walking */

typedef struct loader_file {
    char *path;
    int64_t size; /* bytes, from stat */
    loader_kind kind;
} loader_file;

typedef struct loader_files {
    loader_file *items;
    size_t count, cap;
    int64_t ignored; /* files in directories skipped for their type */
} loader_files;

/* Called for each path that cannot be walked or loaded (missing, unreadable
 * directory, explicitly named file of an unsupported type). */
typedef void (*loader_walk_error_fn)(void *ctx, const char *path, const mg_error *err);

/* Appends the loadable files under `path` to `out`: the file itself, or,
 * for a directory, every supported file below it in name order. Names
 * starting with "." are skipped, and so are symbolic links to directories
 * (no loops); other files of unsupported types count in out->ignored. */
void loader_walk(const char *path, loader_files *out, loader_walk_error_fn on_error, void *ctx);

void loader_files_free(loader_files *files);

#endif
