/*
 * overflow.c - the memory-pressure warning, eviction and recursive summary.
 *
 * The summary is recursive: each flush summarizes the previous summary plus
 * the messages now leaving, so the summary always covers everything ever
 * evicted while staying within overflow_summary_budget. When the leaving
 * messages are too many for one summarizer call, they are folded in chunk by
 * chunk, each call taking the summary so far plus the next chunk.
 */
#include "context/overflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/prompts.h"
#include "context/context.h"
#include "context/tokens.h"
#include "memory/recall.h"
#include "store/store.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

int overflow_summary_budget(const mg_agent *agent)
{
    int budget = agent->context_window / 10;
    if (budget < 100) budget = 100;
    if (budget > 1000) budget = 1000;
    return budget;
}

/* Evicting the first n messages keeps a valid queue: the kept part does not
 * start with a function result whose call would be gone. */
static int valid_cut(const mg_agent *agent, int n, int want_user)
{
    if (n >= agent->queue.count) return 0;
    mg_role next = agent->queue.items[n].role;
    return want_user ? next == MG_ROLE_USER : next != MG_ROLE_TOOL;
}

int overflow_pick(mg_agent *agent, int target, int summary_tokens)
{
    mg_context_usage u;
    context_measure(agent, &u);
    int fixed = u.total - u.messages - u.summary + context_scale(agent, summary_tokens);
    int budget = target - fixed;
    int max_n = agent->queue.count - MG_OVERFLOW_KEEP_LAST;
    /* One pass: the first cut before a user event that meets the budget wins;
     * else the first plain cut that does; else the deepest cut there is. */
    int kept = u.messages, plain_fit = 0, deepest_user = 0, deepest = 0;
    for (int n = 1; n <= max_n; n++) {
        kept -= context_scale(agent, context_msg_tokens(agent, &agent->queue.items[n - 1]));
        if (!valid_cut(agent, n, 0)) continue;
        int user = valid_cut(agent, n, 1);
        if (kept <= budget && user) return n;
        if (kept <= budget && !plain_fit) plain_fit = n;
        if (user) deepest_user = n;
        deepest = n;
    }
    if (plain_fit) return plain_fit;
    return deepest_user ? deepest_user : deepest;
}

/* One message as a transcript line for the summarizer. */
static void transcript_line(const mg_msg *m, buf *out)
{
    char when[32];
    mg_time_iso(m->time_ms, when, sizeof when);
    char *text = recall_search_text(m);
    switch (m->role) {
    case MG_ROLE_USER:
        if (strcmp(m->kind, "user_message") == 0)
            buf_printf(out, "[%s] user: %s\n", when, text);
        else
            buf_printf(out, "[%s] (%s) %s\n", when, m->kind, text);
        break;
    case MG_ROLE_ASSISTANT:
        if (m->content && *m->content)
            buf_printf(out, "[%s] assistant thought: %s\n", when, m->content);
        for (int i = 0; i < m->ncalls; i++)
            buf_printf(out, "[%s] assistant called %s(%s)\n", when, m->calls[i].name,
                       m->calls[i].arguments);
        break;
    case MG_ROLE_TOOL:
        buf_printf(out, "[%s] result of %s: %s\n", when, m->tool_name ? m->tool_name : "function",
                   m->content ? m->content : "");
        break;
    }
    free(text);
}

static mg_status summarize_chunk(mg_agent *agent, const char *previous, const char *chunk,
                                 char **summary, mg_error *err)
{
    mg_provider *provider;
    mg_status st = agent_provider(agent, &provider, err);
    if (st) return st;
    int budget = overflow_summary_budget(agent);
    buf system = BUF_INIT, input = BUF_INIT;
    buf_printf(&system, mg_prompt_summarizer, budget * 3 / 4);
    buf_printf(&input, "Previous summary:\n%s\n\nMessages leaving the context window:\n%s",
               previous && *previous ? previous : "(none yet)", chunk);
    mg_msg msg = {
        .role = MG_ROLE_USER, .kind = "summary_request", .content = (char *)buf_str(&input)};
    mg_llm_request req = {buf_str(&system), &msg, 1, NULL, budget, agent->context_window, NULL};
    mg_llm_reply reply;
    st = mg_provider_chat(provider, &req, &reply, err);
    buf_free(&system);
    buf_free(&input);
    if (st) return mg_err_wrap(err, "summarizing evicted messages: ");
    const char *text = reply.content ? reply.content : "";
    while (*text == ' ' || *text == '\n')
        text++;
    size_t len = strlen(text), max = (size_t)budget * 6;
    *summary = mg_xstrndup(text, mg_utf8_cut(text, len, max));
    mg_llm_reply_clear(&reply);
    if (!**summary) {
        free(*summary);
        *summary = NULL;
        return mg_err_set(err, MG_ERR_PROVIDER, "the summarizer returned an empty summary");
    }
    return MG_OK;
}

/* The smallest chunk the summarizer is sent after halving them. */
#define MIN_CHUNK_TOKENS 50

/* Summarizes queue[0..n) into a new summary, chunk by chunk. Chunks are
 * sized by our estimate; a provider that counts a chunk over its window
 * (a coarser tokenizer, a proxy's limit) gets the same messages again in
 * chunks half the size of the refused one, down to MIN_CHUNK_TOKENS. */
static mg_status summarize_evicted(mg_agent *agent, int n, char **out, mg_error *err)
{
    int chunk_tokens = agent->context_window / 2 - 2 * overflow_summary_budget(agent);
    if (chunk_tokens < 200) chunk_tokens = 200;
    size_t max_line = (size_t)chunk_tokens * 2;
    char *summary = mg_xstrdup(agent->summary ? agent->summary : "");
    buf chunk = BUF_INIT, line = BUF_INIT;
    int chunk_used = 0, chunk_from = 0;
    mg_status st = MG_OK;
    for (int i = 0; i <= n && !st; i++) {
        int tokens = 0;
        if (i < n) {
            buf_reset(&line);
            transcript_line(&agent->queue.items[i], &line);
            if (line.len > max_line) {
                line.len = mg_utf8_cut(line.data, line.len, max_line);
                line.data[line.len] = '\0';
                buf_puts(&line, " [...]\n");
            }
            tokens = mg_tokens_estimate(line.data, line.len);
        }
        if (chunk.len && (i == n || chunk_used + tokens > chunk_tokens)) {
            char *next;
            st = summarize_chunk(agent, summary, buf_str(&chunk), &next, err);
            int half = (chunk_used < chunk_tokens ? chunk_used : chunk_tokens) / 2;
            buf_reset(&chunk);
            chunk_used = 0;
            if (st == MG_ERR_CONTEXT && half >= MIN_CHUNK_TOKENS) {
                chunk_tokens = half;
                max_line = (size_t)chunk_tokens * 2;
                mg_err_clear(err);
                st = MG_OK;
                i = chunk_from - 1; /* this chunk again, in smaller ones */
                continue;
            }
            if (!st) {
                free(summary);
                summary = next;
            }
            chunk_from = i;
        }
        if (i < n) {
            buf_append(&chunk, line.data, line.len);
            chunk_used += tokens;
        }
    }
    buf_free(&chunk);
    buf_free(&line);
    if (st) {
        free(summary);
        return st;
    }
    *out = summary;
    return MG_OK;
}

mg_status overflow_flush(mg_agent *agent, int force, mg_event_queue *events, mg_error *err)
{
    mg_context_usage before;
    context_measure(agent, &before);
    if (!force && before.total <= before.flush_at) return MG_OK;
    int target = before.warn_at / 2;
    int n = overflow_pick(agent, target, overflow_summary_budget(agent));
    if (n == 0) {
        if (force)
            evq_text(events, MG_EVENT_SYSTEM,
                     "Nothing to evict: the context holds only the newest messages.");
        return MG_OK;
    }
    char *summary;
    mg_status st = summarize_evicted(agent, n, &summary, err);
    if (st) return st;

    int64_t first = agent->queue.items[0].id, last = agent->queue.items[n - 1].id;
    if ((st = store_begin(agent->store, err))) {
        free(summary);
        return st;
    }
    free(agent->summary);
    agent->summary = summary;
    agent->summarized_count += n;
    agent->last_flush_at = mg_now_ms();
    agent->warned = 0;
    st = recall_evict_range(agent->store, agent->id, first, last, err);
    if (!st) st = agent_save_state(agent, err);
    if ((st = agent_tx_end(agent, st, err))) return st; /* the reload restored the queue */
    mg_msg_list_drop_front(&agent->queue, n);

    mg_context_usage after;
    context_measure(agent, &after);
    buf note = BUF_INIT;
    buf_printf(&note,
               "Context flush: %d older messages moved out of view (still in recall memory) and "
               "summarized; the context went from %d to %d tokens of %d.",
               n, before.total, after.total, after.window);
    evq_text(events, MG_EVENT_SYSTEM, buf_str(&note));
    buf_free(&note);
    return MG_OK;
}

static mg_status give_warning(mg_agent *agent, mg_event_queue *events, mg_error *err)
{
    mg_status st = agent_store_event(
        agent, agent_envelope("system_alert", "message", mg_prompt_memory_pressure),
        AGENT_EVENT_WARNING, err);
    if (!st) evq_text(events, MG_EVENT_SYSTEM, mg_prompt_memory_pressure);
    return st;
}

mg_status overflow_check(mg_agent *agent, mg_event_queue *events, mg_error *err)
{
    /* Most checks are settled by a bound, without counting (context.c). */
    double line = agent->warned ? agent->flush_fraction : agent->warn_fraction;
    if (agent->flush_fraction < line) line = agent->flush_fraction;
    if (context_surely_under(agent, (int)(line * agent->context_window))) return MG_OK;
    mg_context_usage u;
    context_measure(agent, &u);
    if (u.total > u.flush_at) return overflow_flush(agent, 0, events, err);
    if (u.total > u.warn_at && !agent->warned) return give_warning(agent, events, err);
    return MG_OK;
}
