/*
 * err.h - filling an mg_error.
 *
 * Every internal function that can fail takes an `mg_error *err` last and
 * returns an mg_status. mg_err_set writes the code and a printf-formatted line
 * and returns the code, so failures read as `return mg_err_set(err, ...)`.
 * `err` may be NULL: the caller did not want the text.
 */
#ifndef MG_UTIL_ERR_H
#define MG_UTIL_ERR_H

#include "memgpt.h"

#if defined(__GNUC__)
#define MG_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define MG_PRINTF(fmt_index, first_arg)
#endif

mg_status mg_err_set(mg_error *err, mg_status code, const char *fmt, ...) MG_PRINTF(3, 4);

/* Clears err to MG_OK with an empty message. */
void mg_err_clear(mg_error *err);

/* Prefixes the existing message with a formatted context ("loading agent: ")
 * and returns err->code. Used when passing an error up. */
mg_status mg_err_wrap(mg_error *err, const char *fmt, ...) MG_PRINTF(2, 3);

#endif
