/*
 * context.c - building and measuring the main context.
 *
 * Measuring builds the system message for real (it is cheap: a few KB of
 * text) so the count is of exactly what will be sent. Message tokens are
 * cached in each mg_msg, computed once when it enters the queue.
 */
#include "context/context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/prompts.h"
#include "context/tokens.h"
#include "util/timeutil.h"

int context_scale(const mg_agent *agent, int raw)
{
    return (int)ceil(raw * agent->token_scale);
}

static int append_measured(buf *out, const char *text)
{
    buf_puts(out, text);
    return mg_tokens_of(text);
}

void context_system_message(mg_agent *agent, buf *out, mg_context_usage *usage)
{
    buf part = BUF_INIT;
    char when[64];
    int instructions =
        append_measured(out, agent->system_prompt ? agent->system_prompt : mg_prompt_system);

    buf_puts(&part, "\n\n## Core memory\n");
    core_memory_render(&agent->core, &part);
    int core = append_measured(out, buf_str(&part));
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
    int stats = append_measured(out, buf_str(&part));
    buf_reset(&part);

    buf_puts(&part, "\n## Summary of earlier conversation\n");
    if (agent->summary && *agent->summary)
        buf_printf(&part, "%lld older messages have left your view. Their summary:\n%s\n",
                   (long long)agent->summarized_count, agent->summary);
    else
        buf_puts(&part, "No messages have left your view yet.\n");
    int summary = append_measured(out, buf_str(&part));
    buf_free(&part);

    if (!usage) return;
    memset(usage, 0, sizeof *usage);
    usage->instructions = context_scale(agent, instructions + MG_TOKENS_PER_MESSAGE);
    usage->core = context_scale(agent, core);
    usage->stats = context_scale(agent, stats);
    usage->summary = context_scale(agent, summary);
    int messages = 0;
    for (int i = 0; i < agent->queue.count; i++)
        messages += agent->queue.items[i].tokens;
    usage->messages = context_scale(agent, messages);
    usage->tools = context_scale(agent, agent->tools_tokens);
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

int context_message_tokens(const mg_msg *m)
{
    int n = MG_TOKENS_PER_MESSAGE + mg_tokens_of(m->content) + mg_tokens_of(m->tool_call_id);
    for (int i = 0; i < m->ncalls; i++)
        n += 8 + mg_tokens_of(m->calls[i].id) + mg_tokens_of(m->calls[i].name) +
             mg_tokens_of(m->calls[i].arguments);
    return n;
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
