/*
 * util.h - small helpers the server's files share.
 */
#ifndef MG_SERVER_UTIL_H
#define MG_SERVER_UTIL_H

#include "memgpt.h"

/* Fills err (if not NULL) with code and a formatted line; returns code. */
mg_status srv_err(mg_error *err, mg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* FNV-1a of a string: the hash tables of runner.c and cache.c. */
unsigned srv_hash(const char *s);

/* Milliseconds on the monotonic clock, for durations. */
double srv_monotonic_ms(void);

#endif
