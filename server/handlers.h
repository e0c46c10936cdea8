/*
 * handlers.h - the route handlers, one file per part of the API, and the
 * helpers they share.
 */
#ifndef MG_SERVER_HANDLERS_H
#define MG_SERVER_HANDLERS_H

#include "server/srv.h"

/* ---- shared helpers (routes.c) */

/* Opens the agent named by path parameter `index` (its id) on the
 * request's store. 0, or -1 with 422 (malformed id) or 404 in `r`. */
int srv_open_agent(srv_request *q, srv_reply *r, int index, mg_agent **out);

/* 0 if the agent named by path parameter `index` exists: a lookup, not an
 * open (use it where the agent itself is opened later, on a worker). Else
 * -1 with 422 (malformed id) or 404 in `r`. */
int srv_check_agent(srv_request *q, srv_reply *r, int index);

/* 0 if `id` is "PREFIX-<uuid>"; else a 422 in `r` and -1. */
int srv_check_id(srv_reply *r, const char *id, const char *prefix, const char *param);

/* The page parameters of a list request (before, after, limit, order),
 * with the route's default limit and order. 0, or -1 with a 422 in `r`. */
int srv_page_params(srv_request *q, srv_reply *r, int default_limit, int default_desc,
                    mg_page *out);

/* A page of an in-memory array of objects with "id", as store/page.h
 * pages tables: for lists short enough to build whole (blocks, tools).
 * Steals `items`. NULL with 404 in `r` for a cursor that is not there. */
json_t *srv_page_array(json_t *items, const mg_page *page, srv_reply *r);

/* A library call's JSON answer (*text, which is freed), parsed; NULL if st
 * is not MG_OK. Pass the call's out-pointer, not its value: the argument
 * is read after the call. */
json_t *srv_json_of(mg_status st, char **text);

/* ---- handlers */
void srv_health(srv_request *q, srv_reply *r);
void srv_tools_list(srv_request *q, srv_reply *r);
void srv_agent_tools_list(srv_request *q, srv_reply *r);
void srv_models_list(srv_request *q, srv_reply *r);
void srv_embedding_models_list(srv_request *q, srv_reply *r);
void srv_run_get(srv_request *q, srv_reply *r);

/* agents.c */
void srv_agents_list(srv_request *q, srv_reply *r);
void srv_agents_count(srv_request *q, srv_reply *r);
void srv_agents_create(srv_request *q, srv_reply *r);
void srv_agent_get(srv_request *q, srv_reply *r);
void srv_agent_patch(srv_request *q, srv_reply *r);
void srv_agent_delete(srv_request *q, srv_reply *r);
void srv_agent_context(srv_request *q, srv_reply *r);

/* mcp.c */
void srv_mcp_servers_list(srv_request *q, srv_reply *r);
void srv_mcp_server_create(srv_request *q, srv_reply *r);
void srv_mcp_server_get(srv_request *q, srv_reply *r);
void srv_mcp_server_patch(srv_request *q, srv_reply *r);
void srv_mcp_server_delete(srv_request *q, srv_reply *r);
void srv_mcp_server_tools(srv_request *q, srv_reply *r);
void srv_agent_tool_attach(srv_request *q, srv_reply *r);
void srv_agent_tool_detach(srv_request *q, srv_reply *r);

/* agentfile.c */
void srv_agent_export(srv_request *q, srv_reply *r);
void srv_agents_import(srv_request *q, srv_reply *r);

/* messages.c */
void srv_messages_list(srv_request *q, srv_reply *r);
void srv_messages_send(srv_request *q, srv_reply *r);
void srv_messages_stream(srv_request *q, srv_reply *r);
void srv_messages_async(srv_request *q, srv_reply *r);
void srv_messages_cancel(srv_request *q, srv_reply *r);
void srv_messages_reset(srv_request *q, srv_reply *r);
void srv_agent_summarize(srv_request *q, srv_reply *r);

/* memory.c */
void srv_agent_blocks_list(srv_request *q, srv_reply *r);
void srv_agent_block_get(srv_request *q, srv_reply *r);
void srv_agent_block_patch(srv_request *q, srv_reply *r);
void srv_blocks_list(srv_request *q, srv_reply *r);
void srv_block_get(srv_request *q, srv_reply *r);
void srv_block_patch(srv_request *q, srv_reply *r);
void srv_archival_list(srv_request *q, srv_reply *r);
void srv_archival_insert(srv_request *q, srv_reply *r);
void srv_archival_search(srv_request *q, srv_reply *r);
void srv_archival_delete(srv_request *q, srv_reply *r);
void srv_recall_search(srv_request *q, srv_reply *r);

#endif
