/*
 * python.h - an Agent File's Python tools, run in a limited process once
 * the user allowed it (see python.c for the limits, and what they are not).
 */
#ifndef MG_TOOLS_PYTHON_H
#define MG_TOOLS_PYTHON_H

#include <jansson.h>

#include "memgpt.h"

/* Appends the schemas of the Python tools among `foreign_json` (the
 * agent's kept tools) to `schemas`, with request_heartbeat, and marks them
 * in `names` (tool name -> {"python": true}); names taken already are
 * skipped. */
void tools_python(const char *foreign_json, json_t *schemas, json_t *names);

/* Runs Python tool `name` of the agent with `arguments` (an object). *ok
 * and *text (caller frees) are its result or the reason it failed; a
 * failure of the tool is never an error status. */
mg_status python_call(mg_agent *agent, const char *name, json_t *arguments, int *ok, char **text,
                      mg_error *err);

#endif
