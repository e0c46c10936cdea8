/*
 * accesslog.c - the access log: one line per request, written in batches.
 *
 * A write(2) per request was, after the answer's own send, the largest
 * system call a cached read made, and when stderr is a pipe it wakes the
 * reader for every line too. Here request threads only copy their line
 * into a buffer under a mutex; one thread takes the whole buffer and
 * writes it, waiting FLUSH_MS first so that a burst becomes one write.
 * A line therefore reaches the file about FLUSH_MS after its request, and
 * a kill -9 can lose the last FLUSH_MS of lines; SIGTERM loses none
 * (srv_log_free writes out the rest).
 *
 * The buffer is bounded: when the file takes nothing (a pipe nobody
 * reads), request threads wait, as their own write(2) would have.
 */
#include "server/accesslog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_MS     5
#define BUFFER_BYTES (256 * 1024)

struct srv_log {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t has_lines; /* the writer waits for lines */
    pthread_cond_t has_room;  /* request threads wait for room */
    char *data;               /* lines not yet taken by the writer */
    size_t len;
    int stopping;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* nowhere to log: the lines are dropped */
        p += w;
        n -= (size_t)w;
    }
}

static void *writer(void *arg)
{
    srv_log *log = arg;
    char *out = malloc(BUFFER_BYTES);
    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (!log->len && !log->stopping)
            pthread_cond_wait(&log->has_lines, &log->mu);
        if (!log->len) break; /* stopping, and nothing left */
        if (!log->stopping) { /* let the burst gather */
            pthread_mutex_unlock(&log->mu);
            nanosleep(&(struct timespec){.tv_nsec = FLUSH_MS * 1000000L}, NULL);
            pthread_mutex_lock(&log->mu);
        }
        char *taken = log->data;
        size_t n = log->len;
        log->data = out;
        log->len = 0;
        out = taken;
        pthread_cond_broadcast(&log->has_room);
        pthread_mutex_unlock(&log->mu);
        write_all(STDERR_FILENO, out, n);
        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    free(out);
    return NULL;
}

srv_log *srv_log_new(void)
{
    srv_log *log = calloc(1, sizeof *log);
    log->data = malloc(BUFFER_BYTES);
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->has_lines, NULL);
    pthread_cond_init(&log->has_room, NULL);
    if (pthread_create(&log->thread, NULL, writer, log) != 0) {
        free(log->data);
        free(log);
        return NULL;
    }
    return log;
}

void srv_log_line(srv_log *log, const char *line, size_t len)
{
    if (!log || len > BUFFER_BYTES) {
        write_all(STDERR_FILENO, line, len);
        return;
    }
    pthread_mutex_lock(&log->mu);
    while (log->len + len > BUFFER_BYTES)
        pthread_cond_wait(&log->has_room, &log->mu);
    if (!log->len) pthread_cond_signal(&log->has_lines);
    memcpy(log->data + log->len, line, len);
    log->len += len;
    pthread_mutex_unlock(&log->mu);
}

void srv_log_free(srv_log *log)
{
    if (!log) return;
    pthread_mutex_lock(&log->mu);
    log->stopping = 1;
    pthread_cond_signal(&log->has_lines);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->has_lines);
    pthread_cond_destroy(&log->has_room);
    free(log->data);
    free(log);
}
