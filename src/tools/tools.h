/*
 * tools.h - tools beyond the memory functions: those of MCP servers.
 *
 * MCP servers are configured once per data directory (table mcp_servers)
 * and their tools attached to agents one by one (agent_tools), each with
 * the schema the model is offered, taken when it was attached: opening an
 * agent starts no server. A tool keeps its server's name for it; it may
 * not take the name of one of our functions or of another attached tool.
 * Its schema gains `request_heartbeat`, as every function has, and that
 * argument is taken out again before the call goes to the server.
 *
 * Calls run outside the step's transaction (loop.c calls
 * tools_run_external before it begins one): a tool may take as long as
 * its timeout, and nobody else's writes should wait for it. Clients live
 * in the store (one per server and store; a server's workers each have
 * their own store, so their own clients), started on first use and ended
 * by mg_store_close.
 */
#ifndef MG_TOOLS_TOOLS_H
#define MG_TOOLS_TOOLS_H

#include <jansson.h>

#include "context/message.h"
#include "functions/functions.h"
#include "memgpt.h"

/* Appends the schemas of the tools attached to agent `agent_row` to
 * `schemas`, and their names to `names` (object: tool name -> its server,
 * {"name", "id"}), both borrowed. */
mg_status tools_attached(mg_store *store, int64_t agent_row, json_t *schemas, json_t *names,
                         mg_error *err);

/* For each of `calls` naming an attached tool (a key of `names`) whose
 * outcome has no result yet, calls it and fills outcomes[i] (result and
 * heartbeat, as mg_functions_call does); other outcomes are left as they
 * are (zeroed by the caller). A server's failure is the model's to read,
 * never an error: only the store's are returned. */
mg_status tools_run_external(mg_agent *agent, const json_t *names, const mg_tool_call *calls,
                             int ncalls, mg_fn_outcome *outcomes, mg_error *err);

#endif
