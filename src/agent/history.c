/*
 * history.c - the user's edits to the context window: pop, retry, rethink,
 * rewrite and a forced summary.
 *
 * These change only which messages are in view, or the text of one message;
 * nothing is deleted from recall memory. Every edit keeps the queue valid for
 * the provider: a function call never stays without its result.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/events.h"
#include "context/context.h"
#include "context/overflow.h"
#include "memory/recall.h"
#include "store/store.h"
#include "util/err.h"

/* Takes queue[keep..] out of the context, on disk and in memory. */
static mg_status truncate_queue(mg_agent *agent, int keep, mg_error *err)
{
    if (keep >= agent->queue.count) return MG_OK;
    int64_t first = agent->queue.items[keep].id;
    int64_t last = agent->queue.items[agent->queue.count - 1].id;
    mg_status st = recall_evict_range(agent->store, agent->id, first, last, err);
    if (st) return st;
    mg_msg_list_pop(&agent->queue, agent->queue.count - keep);
    return MG_OK;
}

mg_status mg_agent_pop(mg_agent *agent, int count, mg_error *err)
{
    if (agent_check_usable(agent, err)) return err ? err->code : MG_ERR_DB;
    if (count < 1) return mg_err_set(err, MG_ERR_USAGE, "pop needs a count of at least 1");
    int keep = agent->queue.count - count;
    if (keep < 0) keep = 0;
    /* Never keep a call whose results are popped, nor results without their call. */
    while (keep > 0 &&
           ((keep < agent->queue.count && agent->queue.items[keep].role == MG_ROLE_TOOL) ||
            (agent->queue.items[keep - 1].role == MG_ROLE_ASSISTANT &&
             agent->queue.items[keep - 1].ncalls > 0 && keep < agent->queue.count)))
        keep--;
    return truncate_queue(agent, keep, err);
}

static int last_user_message(const mg_agent *agent)
{
    for (int i = agent->queue.count - 1; i >= 0; i--)
        if (strcmp(agent->queue.items[i].kind, "user_message") == 0) return i;
    return -1;
}

mg_status mg_agent_retry(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err)
{
    int i = last_user_message(agent);
    if (i < 0)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "there is no user message in view to retry");
    mg_status st = truncate_queue(agent, i + 1, err);
    if (st) return st;
    return agent_resume_turn(agent, on_event, user, err);
}

/* The newest assistant message matching `want`, or NULL. */
static mg_msg *last_assistant(mg_agent *agent, int with_reply)
{
    for (int i = agent->queue.count - 1; i >= 0; i--) {
        mg_msg *m = &agent->queue.items[i];
        if (m->role != MG_ROLE_ASSISTANT) continue;
        if (!with_reply && m->content && *m->content) return m;
        for (int c = 0; with_reply && c < m->ncalls; c++)
            if (strcmp(m->calls[c].name, "send_message") == 0) return m;
    }
    return NULL;
}

static mg_status save_edit(mg_agent *agent, mg_msg *m, mg_error *err)
{
    mg_msg_changed(m);
    return recall_update(agent->store, m, err);
}

mg_status mg_agent_rethink(mg_agent *agent, const char *text, mg_error *err)
{
    if (agent_check_usable(agent, err)) return err ? err->code : MG_ERR_DB;
    if (!text || !*text) return mg_err_set(err, MG_ERR_USAGE, "rethink needs the new text");
    mg_msg *m = last_assistant(agent, 0);
    if (!m)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "there is no inner monologue in view to rethink");
    char *old = m->content;
    m->content = mg_xstrdup(text);
    mg_status st = save_edit(agent, m, err);
    if (st) {
        free(m->content);
        m->content = old;
        return st;
    }
    free(old);
    return MG_OK;
}

mg_status mg_agent_rewrite(mg_agent *agent, const char *text, mg_error *err)
{
    if (agent_check_usable(agent, err)) return err ? err->code : MG_ERR_DB;
    if (!text || !*text) return mg_err_set(err, MG_ERR_USAGE, "rewrite needs the new text");
    mg_msg *m = last_assistant(agent, 1);
    if (!m) return mg_err_set(err, MG_ERR_NOT_FOUND, "there is no reply in view to rewrite");
    for (int c = 0; c < m->ncalls; c++) {
        if (strcmp(m->calls[c].name, "send_message") != 0) continue;
        json_t *args = json_pack("{s:s}", "message", text);
        char *old = m->calls[c].arguments;
        m->calls[c].arguments = json_dumps(args, JSON_COMPACT);
        json_decref(args);
        mg_status st = save_edit(agent, m, err);
        if (st) {
            free(m->calls[c].arguments);
            m->calls[c].arguments = old;
            return st;
        }
        free(old);
        break;
    }
    return MG_OK;
}

mg_status mg_agent_summarize(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err)
{
    if (agent_check_usable(agent, err)) return err ? err->code : MG_ERR_DB;
    mg_event_queue events = {0};
    mg_status st = overflow_flush(agent, 1, &events, err);
    evq_deliver(&events, on_event, user);
    evq_free(&events);
    return st;
}
