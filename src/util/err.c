/*
 * err.c - the one error pattern: a status code plus one readable line.
 */
#include "util/err.h"
#include "util/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Errors are one line: control characters (a provider's traceback, say)
 * become spaces, and a cut never leaves half a UTF-8 character. */
static void make_one_line(char *message, int full_length)
{
    size_t len = strlen(message);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)message[i] < 0x20 || message[i] == 0x7F) message[i] = ' ';
    /* A truncated message may end inside a character: drop up to 3 bytes. */
    for (int i = 0; i < 3 && (size_t)full_length > len && len > 0 && !mg_utf8_valid(message, len);
         i++)
        message[--len] = '\0';
}

mg_status mg_err_set(mg_error *err, mg_status code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    make_one_line(err->message, n);
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
