/*
 * context.c - building and measuring the main context.
 *
 * Measuring builds the system message for real (it is cheap: a few KB of
 * text) so the count is of exactly what will be sent. Message tokens are
 * cached in each mg_msg, computed once when it enters the queue.
 *
 * Counts come from the agent's counter (tokens.h): exact for OpenAI models
 * whose encoding is known, counted the way OpenAI bills a chat request:
 * each message's text plus 4 tokens of framing (3, and 1 for the role), 3
 * for the reply's opening, and, as approximations, 8 per function call
 * besides its name and arguments, the tool_call_id of a result, and the
 * tool schemas as their compact JSON (OpenAI renders them into a terser
 * internal form, so this errs high by some tens of tokens per function).
 * Exact counts are not scaled. Estimates are scaled by token_scale, learned
 * from the prompt tokens the provider reports.
 *
 * Exact counts are taken only when a decision depends on them. A token is
 * at least one byte, so a request's size in bytes (plus the framing) bounds
 * its exact count from above; while that bound is under the line a check
 * asks about, the answer is known without a tokenizer
 * (context_surely_under). A `memgpt send` on an agent whose context is not
 * near its warning line therefore opens no tokenizer at all, and message
 * counts are taken on first need and kept in the message (tokens < 0:
 * not counted yet).
 */
#include "context/context.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/prompts.h"
#include "context/tokens.h"
#include "util/timeutil.h"

int context_scale(mg_agent *agent, int raw)
{
    if (tokens_exact(&agent->counter)) return raw;
    return (int)ceil(raw * agent->token_scale);
}

/* Appends text; counts it only when a count was asked for. */
static int append_measured(mg_agent *agent, buf *out, const char *text, int count)
{
    buf_puts(out, text);
    return count ? tokens_count_str(&agent->counter, text) : 0;
}

int context_msg_tokens(mg_agent *agent, mg_msg *m)
{
    if (m->tokens < 0) m->tokens = context_message_tokens(agent, m);
    return m->tokens;
}

/* The tool schemas' raw tokens, counted on first need. */
static int tools_tokens(mg_agent *agent)
{
    if (agent->tools_tokens < 0) {
        char *text = json_dumps(agent->tools, JSON_COMPACT);
        agent->tools_tokens = tokens_count_str(&agent->counter, text);
        free(text);
    }
    return agent->tools_tokens;
}

void context_system_message(mg_agent *agent, buf *out, mg_context_usage *usage)
{
    context_system_parts(agent, out, usage, NULL);
}

void context_system_parts(mg_agent *agent, buf *out, mg_context_usage *usage,
                          size_t ends[CONTEXT_PARTS])
{
    buf part = BUF_INIT;
    char when[64];
    int count = usage != NULL;
    size_t start = out->len;
    int instructions = append_measured(
        agent, out, agent->system_prompt ? agent->system_prompt : mg_prompt_system, count);
    if (ends) ends[0] = out->len;

    buf_puts(&part, "\n\n## Core memory\n");
    core_memory_render(&agent->core, &part);
    int core = append_measured(agent, out, buf_str(&part), count);
    if (ends) ends[1] = out->len;
    buf_reset(&part);

    buf_puts(&part, "\n## Memory statistics\n");
    buf_printf(&part,
               "- Recall memory: %lld messages in all, %d of them in view "
               "(conversation_search finds the rest).\n",
               (long long)agent->recall_count, agent->queue.count);
    buf_printf(&part, "- Archival memory: %lld passages (archival_memory_search).\n",
               (long long)agent->archival_count);
    mg_time_human(agent->core.updated_at, when, sizeof when);
    buf_printf(&part, "- Core memory last changed: %s.\n", when);
    mg_time_human(mg_now_ms(), when, sizeof when);
    buf_printf(&part, "- Current time: %s.\n", when);
    int stats = append_measured(agent, out, buf_str(&part), count);
    if (ends) ends[2] = out->len;
    buf_reset(&part);

    buf_puts(&part, "\n## Summary of earlier conversation\n");
    if (agent->summary && *agent->summary)
        buf_printf(&part, "%lld older messages have left your view. Their summary:\n%s\n",
                   (long long)agent->summarized_count, agent->summary);
    else
        buf_puts(&part, "No messages have left your view yet.\n");
    int summary = append_measured(agent, out, buf_str(&part), count);
    if (ends) ends[3] = out->len;
    buf_free(&part);

    if (!usage) return;
    memset(usage, 0, sizeof *usage);
    usage->instructions =
        context_scale(agent, instructions + MG_TOKENS_PER_MESSAGE + MG_TOKENS_REPLY_PRIMING);
    if (tokens_exact(&agent->counter)) {
        /* Pieces merge across the parts' boundaries ("\n" + "\n## ..."), so
         * the message is counted whole too; the difference is charged to the
         * last part, and the parts add up to the exact count. */
        int whole = tokens_count(&agent->counter, out->data + start, out->len - start);
        summary = whole - instructions - core - stats;
        if (summary < 0) summary = 0;
    }
    usage->core = context_scale(agent, core);
    usage->stats = context_scale(agent, stats);
    usage->summary = context_scale(agent, summary);
    int messages = 0;
    for (int i = 0; i < agent->queue.count; i++)
        messages += context_msg_tokens(agent, &agent->queue.items[i]);
    usage->messages = context_scale(agent, messages);
    usage->tools = context_scale(agent, tools_tokens(agent));
    usage->total = usage->instructions + usage->core + usage->stats + usage->summary +
                   usage->messages + usage->tools;
    usage->nmessages = agent->queue.count;
    usage->window = agent->context_window;
    usage->warn_at = (int)(agent->warn_fraction * agent->context_window);
    usage->flush_at = (int)(agent->flush_fraction * agent->context_window);
}

void context_measure(mg_agent *agent, mg_context_usage *usage)
{
    buf sys = BUF_INIT;
    context_system_message(agent, &sys, usage);
    buf_free(&sys);
}

int context_message_tokens(mg_agent *agent, const mg_msg *m)
{
    tokens_counter *c = &agent->counter;
    int n = MG_TOKENS_PER_MESSAGE + tokens_count_str(c, m->content) +
            tokens_count_str(c, m->tool_call_id);
    for (int i = 0; i < m->ncalls; i++)
        n += MG_TOKENS_PER_CALL + tokens_count_str(c, m->calls[i].id) +
             tokens_count_str(c, m->calls[i].name) + tokens_count_str(c, m->calls[i].arguments);
    return n;
}

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

int context_surely_under(mg_agent *agent, int limit)
{
    if (!tokens_exact_capable(&agent->counter)) return 0;
    buf sys = BUF_INIT;
    context_system_message(agent, &sys, NULL);
    /* Every count below is bounded by the bytes it counts. */
    uint64_t bound = sys.len + MG_TOKENS_PER_MESSAGE + MG_TOKENS_REPLY_PRIMING + agent->tools_bytes;
    buf_free(&sys);
    for (int i = 0; i < agent->queue.count && bound <= (uint64_t)limit; i++) {
        const mg_msg *m = &agent->queue.items[i];
        if (m->tokens >= 0) {
            bound += (uint64_t)m->tokens;
            continue;
        }
        bound += MG_TOKENS_PER_MESSAGE + len_of(m->content) + len_of(m->tool_call_id);
        for (int c = 0; c < m->ncalls; c++)
            bound += MG_TOKENS_PER_CALL + len_of(m->calls[c].id) + len_of(m->calls[c].name) +
                     len_of(m->calls[c].arguments);
    }
    return bound <= (uint64_t)limit;
}

const char *context_counter_line(mg_agent *agent)
{
    tokens_counter *c = &agent->counter;
    if (tokens_exact(c))
        snprintf(agent->counter_line, sizeof agent->counter_line, "exact (%s)", c->encoding);
    else
        snprintf(agent->counter_line, sizeof agent->counter_line,
                 "estimate (scaled by usage, factor %.2f%s%s%s)", agent->token_scale,
                 c->encoding ? "; " : "", c->encoding ? c->encoding : "",
                 c->encoding ? " rank files unavailable" : "");
    return agent->counter_line;
}

int context_raw_total(mg_agent *agent)
{
    double saved = agent->token_scale;
    agent->token_scale = 1.0;
    mg_context_usage u;
    context_measure(agent, &u);
    agent->token_scale = saved;
    return u.total;
}

/* The scale moves halfway toward each new observation, and never below what
 * keeps a 5% margin over the provider's own count, nor beyond [0.5, 3]. */
void context_learn_scale(mg_agent *agent, int raw_estimate, int reported)
{
    if (tokens_exact_capable(&agent->counter)) return; /* nothing to learn */
    /* A figure far from the estimate is a provider's accounting quirk (or a
     * lie), not information about our text. */
    if (raw_estimate <= 0 || reported <= 0 || reported > 4 * raw_estimate ||
        reported < raw_estimate / 4)
        return;
    double observed = (double)reported / raw_estimate * 1.05;
    double next = (agent->token_scale + observed) / 2;
    if (next < observed) next = observed;
    if (next < 0.5) next = 0.5;
    if (next > 3.0) next = 3.0;
    agent->token_scale = next;
}
