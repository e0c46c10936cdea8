/*
 * wire.h - chat request bodies assembled from messages encoded once.
 *
 * A long-lived agent sends the same queue again on every step, plus a few
 * new messages at its end. Building a JSON tree of the whole queue and
 * writing it out each time costs in proportion to the window (10 ms for a
 * 925 KB request of ~2,000 messages), so a step's cost would grow with the
 * window, not with what changed. Here each stored message is encoded once
 * per wire format and its text kept on the message (mg_msg.wire); a body is
 * the request's other fields encoded as usual, with the cached texts copied
 * into its "messages" array.
 *
 * The cache is kept only for stored messages (id != 0): their owner frees
 * them with mg_msg_clear, which frees the cache too, and whoever changes a
 * stored message in place calls mg_msg_changed. Temporary messages (id 0,
 * such as the summarizer's request) are encoded every time and keep
 * nothing.
 */
#ifndef MG_PROVIDER_WIRE_H
#define MG_PROVIDER_WIRE_H

#include <jansson.h>
#include <stddef.h>

#include "provider/provider.h"

/* The wire formats whose messages map one to one onto ours. */
enum { MG_WIRE_OPENAI = 1, MG_WIRE_OLLAMA = 2 };

/* One message as a JSON object of format `format` (new reference). */
typedef json_t *(*mg_wire_encode_fn)(const mg_msg *m);

/* The body: the object `head` (borrowed; its other fields, without
 * "messages") with "messages": [lead, the request's messages...] first.
 * `lead` (borrowed, may be NULL) is a message that is not in the queue,
 * such as the system message, encoded every time. Fills the cache of the
 * stored messages that had none for `format`. Returns the NUL-terminated
 * text (caller frees) and its length in *len. */
char *mg_wire_body(json_t *head, json_t *lead, const mg_llm_request *req, int format,
                   mg_wire_encode_fn encode, size_t *len);

#endif
