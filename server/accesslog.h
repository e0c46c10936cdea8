/*
 * accesslog.h - the access log's writer: lines in, batched writes out.
 */
#ifndef MG_SERVER_ACCESSLOG_H
#define MG_SERVER_ACCESSLOG_H

#include <stddef.h>

typedef struct srv_log srv_log;

/* A writer to stderr, with its thread. NULL if no thread can be made:
 * srv_log_line then writes each line itself. */
srv_log *srv_log_new(void);

/* Appends one line (its newline included). It reaches stderr within about
 * FLUSH_MS, whole and in order. Waits only while the buffer is full, that
 * is while fd takes no more. Thread-safe. */
void srv_log_line(srv_log *log, const char *line, size_t len);

/* Writes out what is left, stops the thread and frees. NULL is a no-op. */
void srv_log_free(srv_log *log);

#endif
