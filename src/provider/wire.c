/*
 * wire.c - chat request bodies assembled from messages encoded once (see
 * wire.h for why).
 *
 * The splice relies on two facts of JSON text: an object written out is
 * "{" members "}" (so a member can be put in front of the others), and an
 * array is its elements' texts joined by ",". Each cached text is exactly
 * what json_dumps gives for that message, so a body is byte for byte
 * what encoding the whole tree would give, except that "messages" comes
 * first among the members.
 */
#include "provider/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* json_dumps fails only when out of memory: abort, as buf.c does. */
static char *dump(json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    if (!text) {
        fprintf(stderr, "memgpt: out of memory writing JSON\n");
        abort();
    }
    return text;
}

/* The text of `m` in `format`: the cached one, or a new one (cached when
 * the message is stored; else handed back in *temp, for the caller to
 * free). */
static const char *message_text(const mg_msg *m, int format, mg_wire_encode_fn encode, size_t *len,
                                char **temp)
{
    *temp = NULL;
    if (m->wire && m->wire_format == format) {
        *len = m->wire_len;
        return m->wire;
    }
    json_t *obj = encode(m);
    char *text = dump(obj);
    json_decref(obj);
    *len = strlen(text);
    if (!m->id) return *temp = text;
    /* A cache on a message the caller handed over as const: it changes no
     * field the caller reads, and mg_msg_clear frees it. */
    mg_msg *cached = (mg_msg *)m;
    free(cached->wire);
    cached->wire = text;
    cached->wire_len = *len;
    cached->wire_format = format;
    return text;
}

static void put_json(buf *out, json_t *value)
{
    char *text = dump(value);
    buf_append(out, text, strlen(text));
    free(text);
}

char *mg_wire_body(json_t *head, json_t *lead, const mg_llm_request *req, int format,
                   mg_wire_encode_fn encode, size_t *len)
{
    buf out = BUF_INIT;
    buf_append(&out, "{\"messages\":[", 13);
    int first = 1;
    if (lead) {
        put_json(&out, lead);
        first = 0;
    }
    for (int i = 0; i < req->nmessages; i++) {
        size_t n;
        char *temp;
        const char *text = message_text(&req->messages[i], format, encode, &n, &temp);
        if (!first) buf_append(&out, ",", 1);
        buf_append(&out, text, n);
        free(temp);
        first = 0;
    }
    buf_append(&out, "]", 1);
    /* The other members: head's text without its "{", after a ",". */
    char *rest = dump(head);
    if (strcmp(rest, "{}") == 0)
        buf_append(&out, "}", 1);
    else {
        buf_append(&out, ",", 1);
        buf_append(&out, rest + 1, strlen(rest + 1));
    }
    free(rest);
    *len = out.len;
    return buf_take(&out);
}
