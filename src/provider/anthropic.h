/*
 * anthropic.h - the Anthropic Messages API client (POST /v1/messages), and
 * the model list (GET /v1/models, every page: limit=1000, after_id = the
 * previous page's last_id while has_more).
 *
 * Model handles are "anthropic/MODEL", for example
 * "anthropic/claude-sonnet-4-5". Configuration, read at open time:
 *   ANTHROPIC_BASE_URL  default https://api.anthropic.com (the path /v1/messages
 *                       is appended; a trailing slash is ignored)
 *   ANTHROPIC_API_KEY   sent as x-api-key; required when the base URL is the
 *                       default one
 * Every request carries anthropic-version: 2023-06-01. Replies are
 * streamed (Server-Sent Events) when the request has a stream sink.
 *
 * The pure functions below are the whole translation between the neutral
 * mg_llm_request / mg_llm_reply and the wire format; they are exposed so the
 * unit tests can check them without a server.
 */
#ifndef MG_PROVIDER_ANTHROPIC_H
#define MG_PROVIDER_ANTHROPIC_H

#include <jansson.h>

#include "provider/provider.h"

/* The API version every request declares. */
#define MG_ANTHROPIC_VERSION "2023-06-01"

/* Reply budget when the request does not set one (the API requires one). */
#define MG_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* The user turn inserted where the API needs one and the queue has none: in
 * front of a queue that starts with an assistant turn (the start of the
 * conversation was evicted), after one that ends with an assistant turn, and
 * as the whole conversation when the queue is empty. */
#define MG_ANTHROPIC_PLACEHOLDER "(Earlier messages have left the context window.)"

mg_status mg_anthropic_open(const char *model, mg_provider **out, mg_error *err);

/* Pure: one page of GET /v1/models ({"data": [{"type", "id", "display_name",
 * "created_at"}], "has_more", "first_id", "last_id"}). Appends a copy of each
 * entry that has a string id to `out`. When has_more is true, *next (caller
 * frees) is the last_id to pass as after_id for the next page; else NULL.
 * A missing data list or has_more, or has_more without a last_id, is
 * MG_ERR_PROVIDER. */
mg_status mg_anthropic_models_page(json_t *body, json_t *out, char **next, mg_error *err);

/* Pure: the "messages" array for a queue, oldest first. Returns a new
 * reference (caller json_decrefs); never fails. The result always obeys the
 * API's structural rules:
 *
 *  - roles alternate, starting and ending with "user": consecutive messages
 *    of the same role are merged into one turn (tool results and the runtime
 *    events after them become one user turn with several blocks), and
 *    MG_ANTHROPIC_PLACEHOLDER fills a missing first or last user turn;
 *  - each content is a non-empty array of blocks; empty texts are dropped,
 *    and an assistant message left with nothing to say is dropped entirely;
 *  - USER messages become text blocks, TOOL messages tool_result blocks, and
 *    in a user turn the tool_result blocks come first;
 *  - ASSISTANT messages become [thinking blocks from raw_content, verbatim]
 *    + text + one tool_use block per call (input = the parsed arguments; an
 *    object is required, so unparseable arguments become {});
 *  - every tool_use is answered by a tool_result with the same id in the next
 *    turn, and every tool_result answers a tool_use of the previous turn: a
 *    result whose call is not in view becomes a text block naming the call,
 *    and a call whose result is missing gets an is_error result saying so;
 *  - ids are made to match ^[a-zA-Z0-9_-]+$ (other bytes become '_') and
 *    unique within the request (a repeat gets a "_2", "_3" suffix), the same
 *    way for a call and its result.
 *
 * Thinking passthrough: when an assistant message has raw_content (the
 * content blocks the API returned), its thinking and redacted_thinking blocks
 * are sent back unchanged. Its text blocks are sent unchanged too, unless the
 * inner monologue was edited since (it no longer equals
 * mg_anthropic_monologue(raw_content)); then the edited text is sent. Tool
 * calls always come from m->calls, so an edited reply is what is sent. */
json_t *mg_anthropic_messages(const mg_msg *msgs, int n);

/* Pure: the whole request body: model, max_tokens (req->max_tokens, else
 * MG_ANTHROPIC_DEFAULT_MAX_TOKENS), system (omitted when empty), messages,
 * tools as {name, description, input_schema} (omitted when there are none),
 * and "stream": true when req->stream is set. New reference. */
json_t *mg_anthropic_body(const char *model, const mg_llm_request *req);

/* Pure: reads a 2xx answer into *reply (which must be zeroed). Text blocks
 * and thinking blocks make up the inner monologue (mg_anthropic_monologue);
 * tool_use blocks become calls with their input as compact JSON text; usage
 * gives the token counts (input + cache reads and writes as prompt tokens;
 * cache reads also as cached_tokens).
 * If any thinking or redacted_thinking block is present, the whole content
 * array is kept in reply->raw_content so it can be sent back. Unknown block
 * types are ignored. A wrong shape is MG_ERR_PROVIDER and leaves *reply
 * cleared. */
mg_status mg_anthropic_parse_reply(json_t *body, mg_llm_reply *reply, mg_error *err);

/* Pure, for the unit tests and the fuzz targets: reads a 2xx answer as a
 * call does once its bytes have arrived. The body is given as the `n`
 * pieces the transfer delivered (pieces[i], lens[i] bytes), in order. With
 * a sink it is read as a stream (Server-Sent Events, or the one JSON body of
 * a server that ignored "stream"), reporting to the sink; without, as the
 * JSON body of a plain call. *reply must start zeroed; on failure it may be
 * half filled: clear it with mg_llm_reply_clear either way. */
mg_status mg_anthropic_read_answer(const char *const *pieces, const size_t *lens, size_t n,
                                   const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err);

/* Pure: the inner monologue of a content array: the text of its thinking and
 * text blocks, in order, separated by blank lines; NULL when there is none.
 * Caller frees. */
char *mg_anthropic_monologue(json_t *content);

/* Pure: maps a non-2xx answer to the status the agent acts on: 401/403 are
 * MG_ERR_AUTH naming ANTHROPIC_API_KEY; a 400 invalid_request_error saying
 * "prompt is too long" (or that input plus max_tokens exceed the window) is
 * MG_ERR_CONTEXT; anything else (529 overloaded, 429 after the HTTP layer's
 * retries, ...) is MG_ERR_PROVIDER with the error type and the API's words.
 * The message is one line. `body` may be NULL (no JSON); `url` and `retried`
 * only shape the message. */
mg_status mg_anthropic_error(long status, json_t *body, const char *url, int retried,
                             mg_error *err);

#endif
