/*
 * mcp.h - a client of one Model Context Protocol server.
 *
 * MCP servers publish tools; an agent calls them as it calls its memory
 * functions. The protocol is JSON-RPC 2.0 over one of two transports:
 *
 *   stdio            memgpt starts the server's command and owns the
 *                    process: one JSON message per line on its stdin and
 *                    stdout; its stderr goes to a log file.
 *   streamable_http  each message is POSTed to the server's URL; the
 *                    answer is JSON or a stream of server-sent events.
 *
 * A session begins with `initialize` (the protocol version is negotiated:
 * we ask for the newest we know and accept any version we know) and the
 * `notifications/initialized` notice; then `tools/list` (page by page) and
 * `tools/call`. Requests the server makes of us (sampling, roots,
 * elicitation) are refused, since we declare none of those capabilities;
 * its notifications are ignored.
 *
 * Failure is expected: a server may crash, hang or answer nonsense. Every
 * request has a deadline (`timeout_seconds` of the configuration, else
 * MEMGPT_MCP_TIMEOUT, else 60 s). A stdio server that fails is killed and
 * started again at the next request, but not before a backoff that doubles
 * with each failure in a row (0.5 s up to 30 s); a request inside it fails
 * at once, saying when the server may be tried again. Errors come back as
 * MG_ERR_PROVIDER with a line fit for the model to read.
 *
 * Configuration: a JSON object in the shape of Letta's MCP server
 * configurations:
 *   {"mcp_server_type":"stdio", "command", "args":[...], "env":{...}}
 *   {"mcp_server_type":"streamable_http", "server_url", "auth_header",
 *    "auth_token", "custom_headers":{...}}
 * A stdio server's environment holds only PATH, HOME, USER, LOGNAME,
 * SHELL, TERM, LANG, LC_ALL, TMPDIR (from ours, when set) and its own
 * `env`: never memgpt's API keys.
 *
 * Threads: a client is used by one thread at a time (the caller's lock,
 * or one client per thread).
 */
#ifndef MG_TOOLS_MCP_H
#define MG_TOOLS_MCP_H

#include <jansson.h>

#include "memgpt.h"

/* Protocol versions we speak, newest first. */
extern const char *const mcp_protocol_versions[];

/* The longest line (stdio) or answer (HTTP) accepted from a server. */
#define MCP_MAX_MESSAGE ((size_t)16 * 1024 * 1024)

typedef struct mcp_client mcp_client;

/* Checks a configuration (see above). MG_ERR_USAGE says what is wrong. */
mg_status mcp_config_check(const json_t *config, mg_error *err);

/* A client for server `name` with `config` (copied). Nothing is started
 * until the first request. `log_path` receives a stdio server's stderr
 * (appended; may be NULL: discarded). Free with mcp_client_free, which
 * ends a started server. */
mcp_client *mcp_client_new(const char *name, const json_t *config, const char *log_path);
void mcp_client_free(mcp_client *c);

/* The configuration and name the client was made with (borrowed). */
const json_t *mcp_client_config(const mcp_client *c);
const char *mcp_client_name(const mcp_client *c);

/* The server's tools: a new array of its Tool objects ({name,
 * description, inputSchema, ...}), every page. Caller decrefs. */
mg_status mcp_list_tools(mcp_client *c, json_t **tools, mg_error *err);

/* Calls tool `name` with `arguments` (an object, borrowed). On MG_OK,
 * *text (caller frees) is the result for the model: its text content,
 * other content summarized one line each; *is_error is the result's
 * isError. A failure of the server itself is MG_ERR_PROVIDER. */
mg_status mcp_call_tool(mcp_client *c, const char *name, json_t *arguments, char **text,
                        int *is_error, mg_error *err);

/* The result's content as text (see mcp_call_tool). Caller frees. */
char *mcp_result_text(const json_t *result);

#endif
