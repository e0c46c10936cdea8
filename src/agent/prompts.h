/*
 * prompts.h - every text the runtime shows the model, in one place.
 */
#ifndef MG_AGENT_PROMPTS_H
#define MG_AGENT_PROMPTS_H

/* The built-in system instructions: control flow, memory tiers, functions. */
extern const char *const mg_prompt_system;

/* System message of the summarizer call. */
extern const char *const mg_prompt_summarizer;

/* The alert inserted once per fill-up when the context passes the warning line. */
extern const char *const mg_prompt_memory_pressure;

/* The periodic reflection event. */
extern const char *const mg_prompt_reflection;

/* Heartbeat reasons. */
extern const char *const mg_prompt_heartbeat_requested;
extern const char *const mg_prompt_heartbeat_failed;
/* Heartbeats tool rules cause: a continue_loop tool ran; a
 * required_before_exit tool has not (printf format: the tools' names). */
extern const char *const mg_prompt_heartbeat_rule_continue;
extern const char *const mg_prompt_heartbeat_rule_required;
extern const char *const mg_prompt_heartbeat_timed;

/* Default core memory. */
extern const char *const mg_prompt_default_persona;
extern const char *const mg_prompt_default_human;

#endif
