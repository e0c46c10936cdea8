/*
 * buf.h - a growable byte string.
 *
 * A buf owns `data`, which is always NUL-terminated (once anything was
 * appended) so it can be used as a C string. Appends never fail visibly: on
 * allocation failure the process aborts, because every caller would otherwise
 * need a path that cannot be tested and would only lose data more quietly.
 * buf_take hands the string to the caller (free with free()) and resets the buf.
 */
#ifndef MG_UTIL_BUF_H
#define MG_UTIL_BUF_H

#include <stddef.h>

#include "util/err.h"

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_append(buf *b, const char *data, size_t len);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) MG_PRINTF(2, 3);
/* The contents as a C string ("" when empty); owned by the buf. */
const char *buf_str(const buf *b);
/* Hands the string to the caller (never NULL) and leaves the buf empty. */
char *buf_take(buf *b);
void buf_reset(buf *b);
void buf_free(buf *b);

/* Allocation helpers that abort on failure, for the same reason as above. */
void *mg_xmalloc(size_t n);
void *mg_xcalloc(size_t count, size_t size);
void *mg_xrealloc(void *p, size_t n);
char *mg_xstrdup(const char *s);
char *mg_xstrndup(const char *s, size_t n);

#endif
