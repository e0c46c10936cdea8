/*
 * functions.h - the functions the agent can call.
 *
 * Each function validates its arguments itself, because they come from the
 * model and are untrusted: missing, mistyped or malformed arguments, unknown
 * function names and failed edits all come back as a Failed result (and a
 * heartbeat) so the model can correct itself. Only failures of the runtime
 * (the database) are returned as an error status and abort the step.
 *
 * To add a function: add its schema to the table in functions.c, write its
 * handler there (it gets the parsed arguments), and describe it in the system
 * prompt (agent/prompts.c) if it needs more than its schema says.
 */
#ifndef MG_FUNCTIONS_FUNCTIONS_H
#define MG_FUNCTIONS_FUNCTIONS_H

#include <jansson.h>

#include "context/message.h"
#include "memgpt.h"

/* Results longer than this many bytes are cut (with a note saying so). The
 * agent uses the smaller of this and 3/8 of its context window in tokens. */
#define MG_FUNCTION_RESULT_MAX_BYTES 6000

/* Results per page of conversation_search and archival_memory_search. */
#define MG_FUNCTION_PAGE_SIZE 5

typedef struct mg_fn_outcome {
    int ok;                /* the function did what was asked */
    int request_heartbeat; /* the model asked to continue */
    char *result;          /* the tool message content: {"status","message","time"} JSON */
    char *reply;           /* send_message only: the text for the user */
    int refused;           /* not run: a tool rule forbade the call (tools/rules.h) */
} mg_fn_outcome;

/* The base schemas: a new array of {name, description, parameters}. */
json_t *mg_functions_schemas(void);

/* The base schemas followed by the optional ones named in `enabled_json`
 * (a JSON array of names; NULL or invalid: none): what an agent is
 * offered. The agent's handler lookup follows the same list. */
json_t *mg_functions_schemas_for(const char *enabled_json);

/* The base schemas followed by every optional one. */
json_t *mg_functions_schemas_all(void);

/* 1 if `json` is an array of distinct optional function names. */
int mg_functions_valid(const char *json);

/* 1 if `name` is an optional function (offered only when enabled). */
int mg_function_optional(const char *name);

/* Runs one call. Returns non-OK only for runtime failures. */
mg_status mg_functions_call(mg_agent *agent, const mg_tool_call *call, mg_fn_outcome *out,
                            mg_error *err);

void mg_fn_outcome_clear(mg_fn_outcome *out);

/* The tool message for a result: {"status","message","time"} JSON, the
 * message cut to the agent's limit with a note. Caller frees. Every tool,
 * ours or an MCP server's, answers the model through this. */
char *mg_function_result(const mg_agent *agent, int ok, const char *message);

/* 1 if `schemas` (an array of {name, ...}) has one named `name`. */
int mg_schema_named(const json_t *schemas, const char *name);

/* 1 if the agent is offered a tool named `name` (its schemas list it). */
int mg_function_offered(const mg_agent *agent, const char *name);

/* The schema the model is offered for a tool from elsewhere (an MCP
 * server's, an Agent File's Python one): {name, description, parameters},
 * `params` copied (an object schema; anything else: no parameters) with
 * request_heartbeat added, as every function has. New reference. */
json_t *mg_function_schema(const char *name, const char *description, const json_t *params);

/* 1 if the arguments ask for a heartbeat (request_heartbeat true or "true"). */
int mg_function_wants_heartbeat(const json_t *args);

#endif
