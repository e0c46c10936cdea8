/*
 * letta.h - our objects in the shapes of Letta's API.
 *
 * The mapping (see ARCHITECTURE.md, "The server"):
 *  - an agent is an AgentState: its settings, its core memory blocks as
 *    `blocks` and `memory.blocks`, our functions as `tools`, the model
 *    handle as `llm_config`, the embedder as `embedding_config`, and the
 *    ids of the messages in its window as `message_ids`;
 *  - a stored message becomes one or more Letta messages sharing its id: an
 *    assistant message gives its inner monologue as a reasoning_message and
 *    each function call as a tool_call_message, except send_message, which
 *    is an assistant_message when use_assistant_message is on (then its
 *    result, always "Sent.", is left out); a function result is a
 *    tool_return_message; the user's message a user_message; runtime events
 *    (heartbeats, alerts, login) a system_message;
 *  - a passage is a Passage, a block a BlockResponse, a function a Tool.
 * Every function returns a new reference the caller owns.
 */
#ifndef MG_SERVER_LETTA_H
#define MG_SERVER_LETTA_H

#include <jansson.h>
#include <stdint.h>

#include "memgpt.h"

/* A new random id "PREFIX-<uuid4>" (runs, notices). */
void letta_random_id(const char *prefix, char out[64]);

/* An ISO 8601 UTC time with milliseconds. */
void letta_date(int64_t ms, char out[32]);

/* The AgentState of an open agent, or NULL with err set. */
json_t *letta_agent_state(mg_agent *agent, mg_error *err);

/* LLMConfig and EmbeddingConfig of a model handle and an embedder spec. */
json_t *letta_llm_config(const char *model, int context_window);
json_t *letta_embedding_config(const char *embedder);

/* The embedder spec for an embedding handle a client sent ("openai/MODEL",
 * "memgpt/offline" or "offline"); NULL if we have no such embedder. */
const char *letta_embedder_spec(const char *handle);

/* A BlockResponse from one of mg_memory_json's blocks. */
json_t *letta_block(json_t *block);

/* A Passage from mg_archival_page's or mg_archival_add's object. */
json_t *letta_passage(json_t *passage, const char *embedder);

/* A Tool from one of mg_tools_json's schemas, or of mg_agent_tools_json's
 * (an MCP tool, with "mcp_server": tool_type external_mcp, its server in
 * metadata_.mcp, an id from the server's id and the tool's name). */
json_t *letta_tool(json_t *schema);

/* Appends the Letta messages of one of mg_messages_page's rows to `out`. */
void letta_messages_of_row(json_t *row, int use_assistant_message, json_t *out);

/* What a turn's events become, for one request's options. */
typedef struct letta_stream {
    int use_assistant_message;
    int stream_tokens;
    json_t *delta_ids;  /* object: message ids whose text went out in pieces */
    json_t *only_types; /* array of message_type names to show; NULL: all */
} letta_stream;

/* 1 if a message of `type` passes an include_return_message_types filter
 * (a JSON array of names, or NULL for all). */
int letta_type_wanted(json_t *only_types, const char *type);

/* The Letta message for an event, or NULL when the event is not shown
 * with these options. USAGE gives NULL: see letta_stop_reason and
 * letta_usage. */
json_t *letta_event(letta_stream *s, const mg_event *ev);

json_t *letta_stop_reason(const char *reason);
json_t *letta_usage(const mg_event *usage_event);

#endif
