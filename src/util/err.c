/*
 * err.c - the one error pattern: a status code plus one readable line.
 */
#include "util/err.h"
#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the UTF-8 character at s[0..len), or 0 if none starts
 * there. */
static size_t utf8_char(const char *s, size_t len)
{
    unsigned char c = (unsigned char)s[0];
    size_t need = c < 0x80                 ? 1
                  : c >= 0xC2 && c <= 0xDF ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 0;
    return need && need <= len && mg_utf8_valid(s, need) ? need : 0;
}

/* Errors are one line of valid UTF-8: control characters (a provider's
 * traceback, say) become spaces, and bytes that are not part of a whole
 * character are dropped. Those come from cuts ("%.300s" of a server's
 * text, the end of the buffer, a parser's error text that quotes the
 * input), or from the caller's own bytes: one of them made a JSON answer
 * of the server impossible to build (a 500 instead of a 422 for
 * ?start_datetime=%FF; found by fuzz/fuzz_date.c). */
static void make_one_line(char *message)
{
    size_t len = strlen(message), out = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char(message + i, len - i);
        if (!n) {
            i++;
            continue;
        }
        if (n == 1 && ((unsigned char)message[i] < 0x20 || message[i] == 0x7F))
            message[out++] = ' ', i++;
        else
            while (n--)
                message[out++] = message[i++];
    }
    message[out] = '\0';
}

mg_status mg_err_set(mg_error *err, mg_status code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    make_one_line(err->message);
    return code;
}

void mg_err_clear(mg_error *err)
{
    if (!err) return;
    err->code = MG_OK;
    err->message[0] = '\0';
}

mg_status mg_err_wrap(mg_error *err, const char *fmt, ...)
{
    if (!err) return MG_ERR_INTERNAL;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old text right to make room for the prefix, cutting its end. */
    size_t cap = sizeof err->message - 1;
    size_t plen = strlen(prefix) < cap ? strlen(prefix) : cap;
    size_t olen = strlen(err->message);
    if (plen + olen > cap) olen = cap - plen;
    memmove(err->message + plen, err->message, olen);
    memcpy(err->message, prefix, plen);
    err->message[plen + olen] = '\0';
    make_one_line(err->message); /* the cut may have split a character */
    return err->code;
}

const char *mg_status_name(mg_status code)
{
    switch (code) {
    case MG_OK:
        return "ok";
    case MG_ERR_USAGE:
        return "usage error";
    case MG_ERR_NOT_FOUND:
        return "not found";
    case MG_ERR_EXISTS:
        return "already exists";
    case MG_ERR_IO:
        return "i/o error";
    case MG_ERR_DB:
        return "database error";
    case MG_ERR_CORRUPT:
        return "not a memgpt database";
    case MG_ERR_AUTH:
        return "authentication failed";
    case MG_ERR_PROVIDER:
        return "provider error";
    case MG_ERR_TOO_LARGE:
        return "too large";
    case MG_ERR_CONTEXT:
        return "context window exceeded";
    case MG_ERR_NOMEM:
        return "out of memory";
    case MG_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown error";
}

void mg_free(void *ptr)
{
    free(ptr);
}
