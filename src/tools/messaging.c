/*
 * messaging.c - agents that message each other (see messaging.h).
 *
 * The receiver is opened afresh on the sender's store, with the chain of
 * agents waiting on it (the sender's chain plus the sender) and the
 * sender's cancel flag, so cancelling the outer turn stops the inner one
 * at its next step. Its events are not the caller's: only the replies are
 * collected, to become the tool result.
 */
#include "tools/messaging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

static const char *const names[] = {"send_message_to_agent_and_wait_for_reply",
                                    "send_message_to_agent_async",
                                    "send_message_to_agents_matching_tags", NULL};

int messaging_function(const char *name)
{
    for (int i = 0; name && names[i]; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

/* Opens the agent `id` to receive a message from `from`; NULL with the
 * reason in `why` when it may not (itself, a cycle, too deep, unknown).
 * A receiver that `from` waits for (`waiting`) joins the chain after it;
 * one that runs after `from`'s turn (async) does not, since `from` waits
 * for nothing then and may be messaged back, but counts a hop more. The
 * checks compare the ids the store gives, not the text the model sent. */
static mg_agent *open_receiver(mg_agent *from, const char *id, int waiting, char *why, size_t n)
{
    if (!id || !*id) {
        snprintf(why, n, "other_agent_id is missing");
        return NULL;
    }
    mg_agent *to = NULL;
    mg_error err = {0};
    if (mg_agent_open_id(from->store, id, &to, &err)) {
        snprintf(why, n, "%.300s",
                 err.code == MG_ERR_NOT_FOUND ? "there is no agent with that id" : err.message);
        return NULL;
    }
    const char *refused = NULL;
    size_t i;
    json_t *link;
    if (strcmp(to->public_id, from->public_id) == 0) refused = "an agent cannot message itself";
    json_array_foreach(from->chain, i,
                       link) if (strcmp(json_string_value(link), to->public_id) == 0) refused =
        "that agent is already waiting for a reply in this chain of messages (a cycle)";
    if (!refused && json_array_size(from->chain) + 1 >= MESSAGING_MAX_DEPTH)
        refused = "this chain of agents messaging each other is at its longest";
    if (!refused && from->async_hops + !waiting > MESSAGING_MAX_ASYNC_HOPS)
        refused = "too many messages sent on without waiting, one after another";
    if (refused) {
        snprintf(why, n, "%s", refused);
        mg_agent_free(to);
        return NULL;
    }
    to->chain = from->chain ? json_deep_copy(from->chain) : json_array();
    if (waiting) json_array_append_new(to->chain, json_string(from->public_id));
    to->async_hops = from->async_hops + !waiting;
    to->cancel = from->cancel;
    return to;
}

/* How long a receiver busy with another turn is waited for. */
static long wait_ms(void)
{
    const char *v = getenv("MEMGPT_AGENT_WAIT");
    return v && atol(v) > 0 ? atol(v) * 1000 : AGENT_MESSAGE_WAIT_MS;
}

static void collect_replies(const mg_event *ev, void *user)
{
    buf *replies = user;
    if (ev->type != MG_EVENT_ASSISTANT || !ev->text) return;
    if (replies->len) buf_putc(replies, '\n');
    buf_puts(replies, ev->text);
}

/* Sends `message` to `to` and waits for its turn: its replies (caller
 * frees; "" when it said nothing), or NULL with the reason in `why`. */
static char *ask(mg_agent *from, mg_agent *to, const char *message, char *why, size_t n)
{
    buf replies = BUF_INIT;
    mg_error err = {0};
    if (agent_message_turn(to, from->name, from->public_id, message, wait_ms(), collect_replies,
                           &replies, &err)) {
        snprintf(why, n, "%.100s could not answer: %.280s", to->name, err.message);
        buf_free(&replies);
        return NULL;
    }
    buf_putc(&replies, '\0'); /* "" rather than NULL */
    replies.len--;
    return buf_take(&replies);
}

static json_t *reply_object(const mg_agent *to, const char *reply, const char *why)
{
    return json_pack("{s:s, s:s, s:s*, s:s*}", "agent", to ? to->name : "", "agent_id",
                     to ? to->public_id : "", "reply", reply && *reply ? reply : NULL, "error",
                     why);
}

static void wait_for_reply(mg_agent *from, const char *message, const char *id, int *ok,
                           char **text)
{
    char why[400];
    mg_agent *to = open_receiver(from, id, 1, why, sizeof why);
    char *reply = to ? ask(from, to, message, why, sizeof why) : NULL;
    *ok = reply != NULL;
    if (!reply) {
        *text = mg_xstrdup(why);
    } else {
        json_t *r = reply_object(to, reply, *reply ? NULL : "it ended its turn without a reply");
        *text = json_dumps(r, JSON_COMPACT);
        json_decref(r);
    }
    free(reply);
    mg_agent_free(to);
}

static void send_async(mg_agent *from, const char *message, const char *id, int *ok, char **text)
{
    char why[400];
    mg_agent *to = open_receiver(from, id, 0, why, sizeof why);
    *ok = to != NULL;
    if (!to) {
        *text = mg_xstrdup(why);
        return;
    }
    if (!from->deferred) from->deferred = json_array();
    json_array_append_new(from->deferred, json_pack("{s:s, s:s}", "to", id, "message", message));
    buf b = BUF_INIT;
    buf_printf(&b,
               "sent to %s; it reads it in a turn of its own once yours ends, and answers, "
               "if it does, with a message of its own",
               to->name);
    *text = buf_take(&b);
    mg_agent_free(to);
}

static int has_tag(json_t *tags, const char *tag)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i,
                       t) if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0) return 1;
    return 0;
}

/* Ids of the agents (not `from`) whose tags include all of `all` and, if
 * `some` is not empty, one of `some`. */
static json_t *matching_agents(mg_agent *from, json_t *all, json_t *some)
{
    json_t *out = json_array();
    sqlite3_stmt *s;
    if (store_prepare(from->store, "SELECT 'agent-' || uuid, tags FROM agents ORDER BY id", &s,
                      NULL))
        return out;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        json_t *tags = json_loads((const char *)sqlite3_column_text(s, 1), 0, NULL);
        int match = strcmp(id, from->public_id) != 0;
        size_t i;
        json_t *t;
        json_array_foreach(all, i, t) match &= has_tag(tags, json_string_value(t));
        int any = json_array_size(some) == 0;
        json_array_foreach(some, i, t) any |= has_tag(tags, json_string_value(t));
        if (match && any) json_array_append_new(out, json_string(id));
        json_decref(tags);
    }
    sqlite3_finalize(s);
    return out;
}

static void send_to_tags(mg_agent *from, const char *message, json_t *all, json_t *some, int *ok,
                         char **text)
{
    json_t *ids = matching_agents(from, all, some);
    json_t *replies = json_array();
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id)
    {
        if (i == MESSAGING_MAX_RECIPIENTS) break;
        char why[400];
        mg_agent *to = open_receiver(from, json_string_value(id), 1, why, sizeof why);
        char *reply = to ? ask(from, to, message, why, sizeof why) : NULL;
        json_array_append_new(replies, reply_object(to, reply, reply ? NULL : why));
        free(reply);
        mg_agent_free(to);
    }
    *ok = 1;
    json_t *result =
        json_pack("{s:i, s:o}", "matched", (int)json_array_size(ids), "replies", replies);
    if (json_array_size(ids) > MESSAGING_MAX_RECIPIENTS)
        json_object_set_new(result, "note",
                            json_sprintf("only the first %d were asked", MESSAGING_MAX_RECIPIENTS));
    *text = json_dumps(result, JSON_COMPACT);
    json_decref(result);
    json_decref(ids);
}

static int strings_or_absent(json_t *v)
{
    if (!v || json_is_null(v)) return 1;
    if (!json_is_array(v)) return 0;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) if (!json_is_string(s)) return 0;
    return 1;
}

void messaging_call(mg_agent *agent, const char *name, json_t *args, int *ok, char **text)
{
    const char *message = json_string_value(json_object_get(args, "message"));
    const char *id = json_string_value(json_object_get(args, "other_agent_id"));
    *ok = 0;
    if (!message || !*message) {
        *text = mg_xstrdup("missing required argument 'message' (a string)");
    } else if (strcmp(name, names[0]) == 0) {
        wait_for_reply(agent, message, id, ok, text);
    } else if (strcmp(name, names[1]) == 0) {
        send_async(agent, message, id, ok, text);
    } else {
        json_t *all = json_object_get(args, "match_all"),
               *some = json_object_get(args, "match_some");
        if (!strings_or_absent(all) || !strings_or_absent(some) ||
            (json_array_size(all) == 0 && json_array_size(some) == 0))
            *text = mg_xstrdup("match_all and match_some are lists of tags, and one of them "
                               "must name at least one");
        else
            send_to_tags(agent, message, all, some, ok, text);
    }
}

void messaging_run_deferred(mg_agent *agent)
{
    json_t *list = agent->deferred;
    agent->deferred = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        char why[400];
        mg_agent *to =
            open_receiver(agent, json_string_value(json_object_get(d, "to")), 0, why, sizeof why);
        if (!to) continue;
        mg_error err = {0};
        agent_message_turn(to, agent->name, agent->public_id,
                           json_string_value(json_object_get(d, "message")), wait_ms(), NULL, NULL,
                           &err);
        mg_agent_free(to);
    }
    json_decref(list);
}
