/*
 * messaging.h - agents that message each other: Letta's three functions,
 * offered to agents that enable them (optional functions, like
 * memory_insert):
 *
 *   send_message_to_agent_and_wait_for_reply(message, other_agent_id)
 *   send_message_to_agent_async(message, other_agent_id)
 *   send_message_to_agents_matching_tags(message, match_all, match_some)
 *
 * The receiver runs a real turn for an "agent_message" event naming the
 * sender; what it says with send_message is the caller's result. Such
 * calls run outside the caller's step transaction (tools.c). A chain of
 * agents waiting on each other is at most MESSAGING_MAX_DEPTH long and may
 * not come back to an agent already in it (a cycle); a receiver busy with
 * a turn of its own is waited for up to AGENT_MESSAGE_WAIT_MS (or
 * MEMGPT_AGENT_WAIT seconds). The async
 * form runs the receiver's turn after the sender's turn has ended (the
 * receiver may message the sender back; at most MESSAGING_MAX_ASYNC_HOPS
 * such hops follow one another).
 */
#ifndef MG_TOOLS_MESSAGING_H
#define MG_TOOLS_MESSAGING_H

#include <jansson.h>

#include "memgpt.h"

#define MESSAGING_MAX_DEPTH      4
#define MESSAGING_MAX_RECIPIENTS 8
#define MESSAGING_MAX_ASYNC_HOPS 8

/* 1 if `name` is one of the three functions. */
int messaging_function(const char *name);

/* Runs one call of them (arguments checked here): *ok and *text (caller
 * frees) are the result for the model. Never fails the caller's turn. */
void messaging_call(mg_agent *agent, const char *name, json_t *args, int *ok, char **text);

/* Runs the turns of the messages `agent` sent without waiting, then
 * forgets them. Their replies go nowhere (the receivers may answer with
 * the same functions). */
void messaging_run_deferred(mg_agent *agent);

#endif
