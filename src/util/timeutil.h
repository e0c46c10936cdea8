/*
 * timeutil.h - wall-clock time as Unix epoch milliseconds, and its text forms.
 *
 * All stored times are UTC epoch milliseconds (INTEGER in SQLite), so ranges
 * and ordering are plain integer comparisons. Text is produced only at the
 * edges: for the model (a readable form) and for JSON output (ISO 8601).
 */
#ifndef MG_UTIL_TIMEUTIL_H
#define MG_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Now, in epoch ms. $MEMGPT_FAKE_NOW (epoch seconds) pins it, so tests can
 * place messages on chosen dates. */
int64_t mg_now_ms(void);

/* "2026-11-26T06:50:00Z" into out (at least 32 bytes). */
void mg_time_iso(int64_t ms, char *out, size_t size);

/* "2026-11-26 06:50:00 AM UTC (Thursday)" - the form shown to the model. */
void mg_time_human(int64_t ms, char *out, size_t size);

#endif
