/*
 * sse.c - answers that follow a run as server-sent events.
 *
 * Letta's SDK reads only events without an `event:` name (it drops named
 * ones, and throws on `event: error`), so every event is a bare `data:`
 * line with one JSON object, errors included (as error_message objects),
 * and the stream ends with `data: [DONE]`. The connection's thread blocks
 * in the reader until the run has the next event; with pings on, a ping
 * message goes out after each PING_MS of silence, which also lets a
 * client's proxy know the stream is alive.
 */
#include <stdlib.h>
#include <string.h>

#include "server/mhd.h"
#include "server/letta.h"
#include "server/srv.h"

#define PING_MS    10000
#define BLOCK_SIZE 4096

struct srv_sse {
    srv_run *run;
    size_t next;
    int pings;
    int finished;
    char *pending; /* text not yet handed to MHD */
    size_t len, off;
    size_t bytes; /* sent so far, for the access log */
};

void srv_reply_sse(srv_reply *r, srv_run *run, int include_pings)
{
    r->status = 200;
    r->stream_run = run;
    r->stream_pings = include_pings;
}

static void set_pending(srv_sse *s, json_t *event)
{
    char *text = event ? json_dumps(event, JSON_COMPACT) : NULL;
    size_t n = text ? strlen(text) : strlen("[DONE]");
    free(s->pending);
    s->pending = malloc(n + 8);
    memcpy(s->pending, "data: ", 6);
    memcpy(s->pending + 6, text ? text : "[DONE]", n);
    memcpy(s->pending + 6 + n, "\n\n", 2);
    s->len = n + 8;
    s->off = 0;
    free(text);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    srv_sse *s = cls;
    while (s->off == s->len) {
        if (s->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        json_t *event = NULL;
        int rc = srv_run_next(s->run, s->next, PING_MS, &event);
        if (rc == 1) {
            set_pending(s, event);
            json_decref(event);
            s->next++;
        } else if (rc < 0) {
            set_pending(s, NULL);
            s->finished = 1;
        } else if (s->pings) {
            char id[64], date[32];
            letta_random_id("message", id);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            letta_date((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, date);
            json_t *ping =
                json_pack("{s:s, s:s, s:s}", "message_type", "ping", "id", id, "date", date);
            set_pending(s, ping);
            json_decref(ping);
        }
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->pending + s->off, n);
    s->off += n;
    s->bytes += n;
    return (ssize_t)n;
}

static void sse_response_done(void *cls)
{
    /* The state belongs to the request (srv_sse_free at its completion). */
    (void)cls;
}

struct MHD_Response *srv_sse_response(srv_run *run, int include_pings, srv_sse **state)
{
    srv_sse *s = calloc(1, sizeof *s);
    s->run = run;
    s->pings = include_pings;
    struct MHD_Response *resp = srv_mhd.create_response_from_callback(
        MHD_SIZE_UNKNOWN, BLOCK_SIZE, sse_read, s, sse_response_done);
    srv_mhd.add_response_header(resp, "Content-Type", "text/event-stream");
    srv_mhd.add_response_header(resp, "Cache-Control", "no-cache");
    srv_mhd.add_response_header(resp, "X-Accel-Buffering", "no");
    *state = s;
    return resp;
}

size_t srv_sse_bytes(const srv_sse *s)
{
    return s ? s->bytes : 0;
}

void srv_sse_free(srv_sse *s)
{
    if (!s) return;
    srv_run_unref(s->run);
    free(s->pending);
    free(s);
}
