/*
 * message.h - one message of the conversation, as the runtime holds it.
 *
 * This is the provider-neutral form: providers translate it to their wire
 * format. Runtime events (user messages, heartbeats, alerts, login) are all
 * role USER with a `kind` and a JSON envelope in `content`, because not every
 * model accepts system messages mid-conversation.
 *
 * Ownership: an mg_msg owns every string in it and its calls array;
 * mg_msg_clear frees them.
 */
#ifndef MG_CONTEXT_MESSAGE_H
#define MG_CONTEXT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/uuid.h"

typedef enum mg_role { MG_ROLE_USER, MG_ROLE_ASSISTANT, MG_ROLE_TOOL } mg_role;

typedef struct mg_tool_call {
    char *id;
    char *name;
    char *arguments; /* JSON text exactly as the model produced it */
} mg_tool_call;

typedef struct mg_msg {
    int64_t id;              /* row id in recall memory; 0 until stored */
    char uuid[MG_UUID_SIZE]; /* public id (util/uuid.h); "" until stored, unless set before */
    mg_role role;
    char *kind;    /* "user_message", "heartbeat", "system_alert", "login", "assistant", "tool" */
    char *content; /* envelope, monologue or function result; NULL allowed for assistant */
    mg_tool_call *calls;
    int ncalls;
    char *tool_call_id; /* TOOL: which call this answers */
    char *tool_name;    /* TOOL: the function's name */
    /* ASSISTANT, optional: the provider's own content blocks (JSON text) when
     * they carry something the fields above cannot, and the provider must get
     * back unchanged: Anthropic's signed thinking blocks. NULL otherwise;
     * other providers ignore it. */
    char *raw_content;
    int64_t time_ms;
    int tokens; /* estimated size in the request, computed by the context module */
    /* The message as JSON text of wire format `wire_format` (provider/wire.h):
     * a cache the provider fills on stored messages, so that a message is
     * encoded once, not on every step. Freed by mg_msg_clear; dropped by
     * mg_msg_changed. */
    char *wire;
    size_t wire_len;
    int wire_format;
} mg_msg;

/* A growable array of messages: the in-context queue. */
typedef struct mg_msg_list {
    mg_msg *items;
    int count;
    int cap;
} mg_msg_list;

const char *mg_role_name(mg_role role);
int mg_role_parse(const char *name, mg_role *out);

/* Appends a message, taking ownership of its strings (the list's copy is the
 * owner; do not clear `m` afterwards). Returns the stored element. */
mg_msg *mg_msg_list_push(mg_msg_list *list, mg_msg m);
/* Frees the last `n` messages. */
void mg_msg_list_pop(mg_msg_list *list, int n);
/* Frees the first `n` messages and shifts the rest down. */
void mg_msg_list_drop_front(mg_msg_list *list, int n);
void mg_msg_list_free(mg_msg_list *list);

void mg_msg_clear(mg_msg *m);
/* Call after changing a message's fields in place: drops what was derived
 * from them (its token count, its encoded text). */
void mg_msg_changed(mg_msg *m);

/* Tool calls as a JSON array [{id, name, arguments}] and back (for storage).
 * The parse returns 0 on malformed input. Caller frees the string / calls. */
char *mg_tool_calls_to_json(const mg_tool_call *calls, int n);
int mg_tool_calls_from_json(const char *json, mg_tool_call **calls, int *n);
void mg_tool_calls_free(mg_tool_call *calls, int n);

#endif
