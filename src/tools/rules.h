/*
 * rules.h - tool rules: which tools may be called when, within one turn.
 *
 * Rules come in Letta's shape (Agent Files carry them; `agents set
 * --tool-rule` and the API set them), a JSON array of objects with
 * "tool_name" and "type":
 *
 *   run_first              the turn's first step may call only these tools
 *   constrain_child_tools  after tool_name, only "children" may follow
 *   conditional            after tool_name, the tool "child_output_mapping"
 *                          maps its result text to, else "default_child"
 *   parent_last_tool       the "children" may be called only right after
 *                          tool_name
 *   max_count_per_step     at most "max_count_limit" calls per turn
 *   continue_loop          calling it always continues the turn
 *   exit_loop              calling it ends the turn
 *   required_before_exit   the turn does not end until it was called
 *   requires_approval      kept, not enforced (no approval flow here)
 *
 * They are enforced twice: the model is offered only the tools allowed
 * for its next step (rules_offer), and a call that breaks a rule anyway is
 * not run but answered with a failed result saying why (rules_allow). If
 * the rules together would allow no tool at all, none is enforced for
 * that step, so a contradictory set cannot wedge the agent. A turn is a
 * user message (or other event) and the heartbeats that follow it.
 *
 * Calls of one reply are judged in order, each as if those before it had
 * run; a conditional rule on a call followed by another call of the same
 * reply sees no result yet (its default child applies).
 */
#ifndef MG_TOOLS_RULES_H
#define MG_TOOLS_RULES_H

#include <jansson.h>
#include <stddef.h>

#include "memgpt.h"

/* Checks rules JSON (an array as above). MG_ERR_USAGE names the problem. */
mg_status rules_check(const char *json, mg_error *err);

typedef struct rules_turn {
    json_t *rules;     /* the agent's rules (owned); empty array when none */
    json_t *counts;    /* tool name -> calls this turn */
    char *last;        /* the last tool called this turn, or NULL */
    char *last_output; /* its result's message, when known */
    int steps;         /* steps taken this turn */
} rules_turn;

/* A turn begins with the agent's rules (`json` may be NULL or invalid:
 * none). rules_turn_end frees. */
void rules_turn_begin(rules_turn *r, const char *json);
void rules_turn_end(rules_turn *r);

/* The schemas (of `all`) the model may call next: a new array, or NULL
 * when every one may be called. */
json_t *rules_offer(const rules_turn *r, const json_t *all);

/* 1 if `name` may be called now (`all`: every schema offered); else 0 with
 * the reason, for the model, in `why`. */
int rules_allow(const rules_turn *r, const json_t *all, const char *name, char *why, size_t n);

/* Records an allowed call. `output`: its result's message when known,
 * else NULL. */
void rules_called(rules_turn *r, const char *name, const char *output);

/* The last call's result, once it is known: a tool message (the
 * "message" of its {"status","message","time"} is what conditional rules
 * match) or plain text. */
void rules_output(rules_turn *r, const char *result);

/* After a step that called `names`: 1 if the turn must go on (a
 * continue_loop tool), -1 if it must end (an exit_loop tool), 0 if the
 * model decides. Counts the step. */
int rules_after_step(rules_turn *r, const char *const *names, int n);

/* Tools the turn must still call before it may end (required_before_exit),
 * as a comma-separated list (caller frees), or NULL if none. */
char *rules_missing_before_exit(const rules_turn *r);

#endif
