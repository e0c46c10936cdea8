/*
 * events.h - collecting a step's events until it is committed.
 *
 * Events are shown to the user only after the step that produced them is on
 * disk, so a crash can never lose something the user already saw. A step
 * pushes its events here (copying the strings) and the loop delivers them
 * after COMMIT.
 */
#ifndef MG_AGENT_EVENTS_H
#define MG_AGENT_EVENTS_H

#include "memgpt.h"

typedef struct mg_event_queue {
    mg_event *items; /* strings owned by the queue */
    int count, cap;
} mg_event_queue;

/* Pushes a copy of `ev` (time_ms 0 means now). Returns the stored event. */
mg_event *evq_push(mg_event_queue *q, const mg_event *ev);

/* Shorthand for a text-only event. */
void evq_text(mg_event_queue *q, mg_event_type type, const char *text);

/* Calls on_event (if any) for each event in order, then empties the queue. */
void evq_deliver(mg_event_queue *q, mg_event_fn on_event, void *user);

/* Empties without delivering (the step failed and was rolled back). */
void evq_clear(mg_event_queue *q);
void evq_free(mg_event_queue *q);

#endif
