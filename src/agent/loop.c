/*
 * loop.c - events in, steps out: the agent's control loop.
 *
 * A turn starts with one event (a user message, login, timed heartbeat or
 * reflection), stored before anything else happens. Then it steps: one LLM
 * call, then each requested function in order. A step is one transaction:
 * the assistant message, every function result, the memory edits and the
 * heartbeat that follows all commit together, and only then are its events
 * shown. The turn continues while the model asks for a heartbeat or a
 * function failed, up to the agent's step limit.
 *
 * Before each call, overflow_check keeps the request inside the window; a
 * context-length error from the provider (our estimate was short) forces a
 * flush and one more try.
 *
 * Streaming (mg_agent_set_streaming) changes one thing: while the provider
 * reads the reply, the arguments of each send_message call go through a
 * partial-JSON extractor, and the text of its "message" is handed to the
 * caller at once as MG_EVENT_ASSISTANT_DELTA, bypassing the event queue. It
 * is a preview: the step is stored and its events shown exactly as without
 * streaming. If the stream breaks off, nothing of it is kept; a system
 * notice tells the caller to drop the preview and the call is made again, at
 * most STREAM_RETRIES times.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/events.h"
#include "agent/prompts.h"
#include "context/context.h"
#include "context/overflow.h"
#include "context/tokens.h"
#include "functions/functions.h"
#include "memory/recall.h"
#include "provider/stream.h"
#include "store/store.h"
#include "tools/messaging.h"
#include "tools/rules.h"
#include "tools/tools.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define CONTEXT_RETRIES 2

/* New calls after a stream that broke off mid-reply. */
#define STREAM_RETRIES 2

#define STREAM_RETRY_NOTICE "the reply stream was interrupted; retrying"

/* Largest share of the window one user message may take. */
#define MAX_MESSAGE_SHARE 0.4

typedef struct turn {
    mg_agent *agent;
    mg_event_queue events;
    mg_event_fn on_event;
    void *user;
    int steps;       /* LLM calls for the current event (the step limit counts these) */
    int total_steps; /* for the usage report, across the reflection turn too */
    int replied;     /* a send_message reached the user this turn */
    int prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens;
    char reply_id[64];       /* "message-<uuid>" of the assistant message being asked for */
    const char *stop_reason; /* why the last run_turn ended */
    rules_turn rules;        /* the agent's tool rules, as this turn stands */
    json_t *offer;           /* the schemas offered this step; NULL: all of them */
} turn;

static int saturating_add(int a, int b)
{
    return a > INT_MAX - b ? INT_MAX : a + b;
}

static void flush_events(turn *t)
{
    evq_deliver(&t->events, t->on_event, t->user);
}

/* Hands an event to the caller now, not after the commit: only for
 * streaming previews and the notice that discards them. */
static void deliver_now(turn *t, const mg_event *ev)
{
    if (t->on_event) t->on_event(ev, t->user);
}

/* ------------------------------------------------------------ previews */

/* A tool call of the reply being streamed. */
typedef struct preview_call {
    int index;    /* in the reply's calls */
    int is_reply; /* send_message: its "message" is shown */
    mg_json_string_extractor text;
} preview_call;

typedef struct preview {
    turn *t;
    preview_call *calls;
    int ncalls;
    buf piece; /* scratch: the text decoded from one piece of arguments */
} preview;

static preview_call *preview_call_for(preview *pv, int index, const char *name)
{
    for (int i = 0; i < pv->ncalls; i++)
        if (pv->calls[i].index == index) return &pv->calls[i];
    pv->calls = mg_xrealloc(pv->calls, (size_t)(pv->ncalls + 1) * sizeof *pv->calls);
    preview_call *c = &pv->calls[pv->ncalls++];
    c->index = index;
    c->is_reply = name && strcmp(name, "send_message") == 0;
    mg_jse_init(&c->text, "message");
    return c;
}

static void preview_tool_args(void *user, int index, const char *id, const char *name,
                              const char *delta, size_t len)
{
    preview *pv = user;
    preview_call *c = preview_call_for(pv, index, name);
    if (!c->is_reply) return;
    buf_reset(&pv->piece);
    if (!mg_jse_feed(&c->text, delta, len, &pv->piece)) return;
    mg_event ev = {.type = MG_EVENT_ASSISTANT_DELTA,
                   .text = buf_str(&pv->piece),
                   .tool_call_id = id,
                   .message_id = pv->t->reply_id,
                   .time_ms = mg_now_ms()};
    deliver_now(pv->t, &ev);
}

static void preview_free(preview *pv)
{
    free(pv->calls);
    buf_free(&pv->piece);
}

/* ---------------------------------------------------------------- calls */

static void count_usage(turn *t, const mg_llm_reply *reply)
{
    t->prompt_tokens = saturating_add(t->prompt_tokens, reply->prompt_tokens);
    t->completion_tokens = saturating_add(t->completion_tokens, reply->completion_tokens);
    t->reasoning_tokens = saturating_add(t->reasoning_tokens, reply->reasoning_tokens);
    t->cached_tokens = saturating_add(t->cached_tokens, reply->cached_tokens);
}

/* One request to the provider, streamed when the agent streams. */
static mg_status ask_provider(turn *t, mg_provider *provider, mg_llm_reply *reply, mg_error *err)
{
    mg_agent *agent = t->agent;
    buf system = BUF_INIT;
    context_system_message(agent, &system, NULL);
    preview pv = {.t = t};
    char uuid[MG_UUID_SIZE];
    mg_uuid_new(uuid);
    snprintf(t->reply_id, sizeof t->reply_id, "message-%s", uuid);
    mg_stream_sink sink = {.on_tool_args = preview_tool_args, .user = &pv};
    mg_llm_request req = {.system = buf_str(&system),
                          .messages = agent->queue.items,
                          .nmessages = agent->queue.count,
                          .tools = t->offer ? t->offer : agent->tools,
                          .context_window = agent->context_window,
                          .stream = agent->streaming ? &sink : NULL};
    /* What the provider will report is compared with the estimate, to learn
     * its scale; exact counts have nothing to learn. */
    int raw = tokens_exact_capable(&agent->counter) ? 0 : context_raw_total(agent);
    mg_status st = mg_provider_chat(provider, &req, reply, err);
    buf_free(&system);
    preview_free(&pv);
    if (!st) {
        context_learn_scale(agent, raw, reply->prompt_tokens);
        count_usage(t, reply);
    }
    return st;
}

/* One LLM call, flushing and retrying when the request does not fit, and
 * asking again when a stream broke off. */
static mg_status call_model(turn *t, mg_llm_reply *reply, mg_error *err)
{
    mg_agent *agent = t->agent;
    mg_provider *provider;
    mg_status st = agent_provider(agent, &provider, err);
    int context_retries = 0, stream_retries = 0;
    while (!st) {
        if ((st = overflow_check(agent, &t->events, err))) break;
        flush_events(t);
        st = ask_provider(t, provider, reply, err);
        if (!st) return MG_OK;
        if (reply->interrupted && stream_retries < STREAM_RETRIES) {
            /* Nothing of it was kept; the caller drops what it previewed. */
            stream_retries++;
            mg_event notice = {
                .type = MG_EVENT_SYSTEM, .text = STREAM_RETRY_NOTICE, .time_ms = mg_now_ms()};
            deliver_now(t, &notice);
            mg_err_clear(err);
            st = MG_OK;
            continue;
        }
        if (st != MG_ERR_CONTEXT || context_retries++ >= CONTEXT_RETRIES) break;
        /* Our estimate was short of the provider's count: learn from it and evict. */
        if (!tokens_exact_capable(&agent->counter)) agent->token_scale *= 1.25;
        mg_err_clear(err);
        st = overflow_flush(agent, 1, &t->events, err);
        flush_events(t);
    }
    return st;
}

static void push_call_events(turn *t, const mg_tool_call *call, const mg_fn_outcome *out,
                             const char *result_id)
{
    mg_event ev = {.type = MG_EVENT_TOOL_CALL,
                   .tool_name = call->name,
                   .tool_args = call->arguments,
                   .tool_call_id = call->id,
                   .message_id = t->reply_id};
    evq_push(&t->events, &ev);
    if (out->reply) {
        mg_event reply = {.type = MG_EVENT_ASSISTANT,
                          .text = out->reply,
                          .tool_call_id = call->id,
                          .message_id = t->reply_id};
        evq_push(&t->events, &reply);
    }
    mg_event ret = {.type = MG_EVENT_TOOL_RETURN,
                    .tool_name = call->name,
                    .tool_call_id = call->id,
                    .text = out->result,
                    .tool_ok = out->ok,
                    .message_id = result_id};
    evq_push(&t->events, &ret);
}

/* Whether the turn goes on after a step that ran the calls `ran`: as the
 * model asked (`asked`: a call wanted a heartbeat, or failed), unless a
 * tool rule says otherwise (exit_loop ends it, continue_loop continues it,
 * required_before_exit keeps it going until those tools were called). A
 * turn that goes on gets a heartbeat message saying why. */
static mg_status continue_or_end(turn *t, const char **ran, int nran, int asked, int failed,
                                 int *heartbeat, mg_error *err)
{
    int verdict = rules_after_step(&t->rules, ran, nran);
    char *missing = verdict < 0 ? NULL : rules_missing_before_exit(&t->rules);
    buf reason = BUF_INIT;
    if (verdict < 0)
        ; /* an exit_loop tool ran: the turn ends */
    else if (asked)
        buf_puts(&reason, failed ? mg_prompt_heartbeat_failed : mg_prompt_heartbeat_requested);
    else if (verdict > 0)
        buf_puts(&reason, mg_prompt_heartbeat_rule_continue);
    else if (missing)
        buf_printf(&reason, mg_prompt_heartbeat_rule_required, missing);
    free(missing);
    *heartbeat = reason.len > 0;
    mg_status st = MG_OK;
    if (*heartbeat)
        st = agent_append_message(t->agent, agent_envelope("heartbeat", "reason", buf_str(&reason)),
                                  NULL, err);
    buf_free(&reason);
    return st;
}

/* Runs the reply's function calls and stores everything the step produced.
 * Inside the step's transaction. `external` holds the outcomes of the calls
 * of MCP tools, made before it (taken from there). Sets *heartbeat when the
 * turn continues. */
static mg_status apply_reply(turn *t, mg_llm_reply *reply, mg_fn_outcome *external, int *heartbeat,
                             mg_error *err)
{
    mg_agent *agent = t->agent;
    mg_msg assistant = {.role = MG_ROLE_ASSISTANT,
                        .kind = mg_xstrdup("assistant"),
                        .content = reply->content,
                        .calls = reply->calls,
                        .ncalls = reply->ncalls,
                        .raw_content = reply->raw_content,
                        .time_ms = mg_now_ms()};
    snprintf(assistant.uuid, sizeof assistant.uuid, "%s", t->reply_id + strlen("message-"));
    reply->content = NULL; /* the message owns them now */
    reply->calls = NULL;
    reply->ncalls = 0;
    reply->raw_content = NULL;
    mg_msg *stored;
    mg_status st = agent_append_message(agent, assistant, &stored, err);
    if (st) return st;
    if (stored->content && *stored->content) {
        mg_event ev = {
            .type = MG_EVENT_REASONING, .text = stored->content, .message_id = t->reply_id};
        evq_push(&t->events, &ev);
    }

    int failed = 0, requested = 0;
    /* Copy the calls: appending results may move the queue's storage. */
    int ncalls = stored->ncalls;
    char *content = stored->content ? mg_xstrdup(stored->content) : NULL;
    mg_tool_call *calls = mg_xcalloc(ncalls ? (size_t)ncalls : 1, sizeof *calls);
    for (int i = 0; i < ncalls; i++) {
        calls[i].id = mg_xstrdup(stored->calls[i].id);
        calls[i].name = mg_xstrdup(stored->calls[i].name);
        calls[i].arguments = mg_xstrdup(stored->calls[i].arguments);
    }
    const char **ran = mg_xcalloc(ncalls ? (size_t)ncalls : 1, sizeof *ran);
    int nran = 0;
    for (int i = 0; i < ncalls && !st; i++) {
        mg_fn_outcome out;
        if (external[i].result) {
            out = external[i];
            memset(&external[i], 0, sizeof external[i]);
        } else if ((st = mg_functions_call(agent, &calls[i], &out, err))) {
            break;
        }
        failed |= !out.ok;
        requested |= out.request_heartbeat;
        if (out.reply) t->replied = 1;
        if (!out.refused) {
            ran[nran++] = calls[i].name;
            rules_output(&t->rules, out.result);
        }
        mg_msg result = {.role = MG_ROLE_TOOL,
                         .kind = mg_xstrdup("tool"),
                         .content = mg_xstrdup(out.result),
                         .tool_call_id = mg_xstrdup(calls[i].id),
                         .tool_name = mg_xstrdup(calls[i].name),
                         .time_ms = mg_now_ms()};
        mg_msg *stored_result;
        st = agent_append_message(agent, result, &stored_result, err);
        if (!st) {
            char result_id[64];
            snprintf(result_id, sizeof result_id, "message-%s", stored_result->uuid);
            push_call_events(t, &calls[i], &out, result_id);
        }
        mg_fn_outcome_clear(&out);
    }
    if (!st && ncalls == 0 && content && !mg_text_blank(content) && !t->replied) {
        /* Weaker models answer in plain text; that text is the reply. */
        mg_event ev = {.type = MG_EVENT_ASSISTANT, .text = content, .message_id = t->reply_id};
        evq_push(&t->events, &ev);
        t->replied = 1;
    }
    free(content);
    if (!st)
        st = continue_or_end(t, ran, nran, ncalls > 0 && (failed || requested), failed, heartbeat,
                             err);
    free(ran);
    mg_tool_calls_free(calls, ncalls);
    if (!st) st = agent_save_state(agent, err);
    return st;
}

static mg_status step(turn *t, int *heartbeat, mg_error *err)
{
    mg_llm_reply reply;
    json_decref(t->offer);
    t->offer = rules_offer(&t->rules, t->agent->tools);
    mg_status st = call_model(t, &reply, err);
    if (st) return st;
    /* Calls the tool rules forbid are answered without running; MCP
     * tools run first, outside the transaction: they may take their time. */
    int ncalls = reply.ncalls;
    mg_fn_outcome *external = mg_xcalloc(ncalls ? (size_t)ncalls : 1, sizeof *external);
    for (int i = 0; i < ncalls; i++) {
        char why[600];
        if (rules_allow(&t->rules, t->agent->tools, reply.calls[i].name, why, sizeof why)) {
            rules_called(&t->rules, reply.calls[i].name, NULL);
        } else {
            external[i].refused = 1;
            external[i].result = mg_function_result(t->agent, 0, why);
        }
    }
    st = tools_run_external(t->agent, t->agent->external, reply.calls, ncalls, external, err);
    int in_tx = 0;
    if (!st && !(st = store_begin(t->agent->store, err))) {
        in_tx = 1;
        st = apply_reply(t, &reply, external, heartbeat, err);
    }
    for (int i = 0; i < ncalls; i++)
        mg_fn_outcome_clear(&external[i]);
    free(external);
    mg_llm_reply_clear(&reply);
    if (!in_tx) return st;
    if ((st = agent_tx_end(t->agent, st, err))) {
        evq_clear(&t->events);
        return st;
    }
    flush_events(t);
    return MG_OK;
}

/* Steps until the agent stops asking to continue. The event that started the
 * turn is already in the queue. */
static mg_status run_turn(turn *t, mg_error *err)
{
    mg_status st = MG_OK;
    t->stop_reason = "end_turn";
    rules_turn_begin(&t->rules, t->agent->tool_rules_json);
    for (int heartbeat = 1; heartbeat && !st;) {
        if (t->agent->cancel && __atomic_load_n(t->agent->cancel, __ATOMIC_RELAXED)) {
            t->stop_reason = "cancelled";
            evq_text(&t->events, MG_EVENT_SYSTEM, "The turn was cancelled.");
            break;
        }
        int limit = t->agent->max_steps > 0 ? t->agent->max_steps : t->agent->step_limit;
        if (t->steps == limit) {
            t->stop_reason = "max_steps";
            buf note = BUF_INIT;
            buf_printf(&note,
                       "Step limit reached: the agent took %d steps for this event and was "
                       "stopped.",
                       t->steps);
            evq_text(&t->events, MG_EVENT_SYSTEM, buf_str(&note));
            buf_free(&note);
            break;
        }
        t->steps++;
        t->total_steps++;
        st = step(t, &heartbeat, err);
    }
    rules_turn_end(&t->rules);
    json_decref(t->offer);
    t->offer = NULL;
    return st;
}

static void finish_turn(turn *t)
{
    mg_event usage = {.type = MG_EVENT_USAGE,
                      .prompt_tokens = t->prompt_tokens,
                      .completion_tokens = t->completion_tokens,
                      .step_count = t->total_steps,
                      .reasoning_tokens = t->reasoning_tokens,
                      .cached_tokens = t->cached_tokens,
                      .stop_reason = t->stop_reason ? t->stop_reason : "end_turn"};
    evq_push(&t->events, &usage);
    flush_events(t);
    evq_free(&t->events);
}

/* Runs a turn for an event message, then a reflection turn if one is due. */
/* Runs a turn for an event message, then a reflection turn if one is due,
 * holding the agent's turn lock (waited for up to wait_ms); then the
 * messages it sent other agents without waiting (tools/messaging.c). */
static mg_status run_event_waiting(mg_agent *agent, mg_msg event, agent_event_kind kind,
                                   long wait_ms, mg_event_fn on_event, void *user, mg_error *err)
{
    mg_provider *provider;
    int lock = -1;
    mg_status st = agent_check_usable(agent, err);
    if (!st) st = agent_provider(agent, &provider, err);
    if (!st) st = agent_turn_lock(agent, wait_ms, &lock, err);
    if (st) {
        mg_msg_clear(&event);
        return st;
    }
    turn t = {.agent = agent, .on_event = on_event, .user = user};
    if ((st = agent_store_event(agent, event, kind, err))) {
        agent_turn_unlock(lock);
        return st;
    }
    st = run_turn(&t, err);
    if (!st && kind == AGENT_EVENT_USER && strcmp(t.stop_reason, "end_turn") == 0 &&
        agent->reflect_every > 0 && agent->user_since_reflect >= agent->reflect_every) {
        t.steps = 0;
        st = agent_store_event(agent,
                               agent_envelope("system_alert", "message", mg_prompt_reflection),
                               AGENT_EVENT_REFLECTION, err);
        if (!st) st = run_turn(&t, err);
    }
    finish_turn(&t);
    agent_turn_unlock(lock);
    messaging_run_deferred(agent);
    return st;
}

static mg_status run_event(mg_agent *agent, mg_msg event, agent_event_kind kind,
                           mg_event_fn on_event, void *user, mg_error *err)
{
    return run_event_waiting(agent, event, kind, AGENT_TURN_WAIT_MS, on_event, user, err);
}

mg_status agent_message_turn(mg_agent *agent, const char *from_name, const char *from_id,
                             const char *text, long wait_ms, mg_event_fn on_event, void *user,
                             mg_error *err)
{
    mg_msg event = agent_envelope("agent_message", "message", text);
    json_t *obj = json_loads(event.content, 0, NULL);
    json_object_set_new(obj, "from_agent", json_string(from_name));
    json_object_set_new(obj, "from_agent_id", json_string(from_id));
    free(event.content);
    event.content = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return run_event_waiting(agent, event, AGENT_EVENT_PLAIN, wait_ms, on_event, user, err);
}

mg_status agent_resume_turn(mg_agent *agent, mg_event_fn on_event, void *user, mg_error *err)
{
    mg_provider *provider;
    int lock = -1;
    mg_status st = agent_check_usable(agent, err);
    if (!st) st = agent_provider(agent, &provider, err);
    if (!st) st = agent_turn_lock(agent, AGENT_TURN_WAIT_MS, &lock, err);
    if (st) return st;
    turn t = {.agent = agent, .on_event = on_event, .user = user};
    st = run_turn(&t, err);
    finish_turn(&t);
    agent_turn_unlock(lock);
    messaging_run_deferred(agent);
    return st;
}

/* A message from outside must be text the window can take. */
static mg_status check_input(mg_agent *agent, const char *text, mg_error *err)
{
    if (!text || mg_text_blank(text)) return mg_err_set(err, MG_ERR_USAGE, "the message is empty");
    size_t len = strlen(text);
    if (!mg_utf8_valid(text, len))
        return mg_err_set(err, MG_ERR_USAGE, "the message is not valid UTF-8");
    int max_tokens = (int)(agent->context_window * MAX_MESSAGE_SHARE);
    /* Exact counts are at most the bytes counted: a short message needs none. */
    int tokens = tokens_exact_capable(&agent->counter) && len <= (size_t)max_tokens
                     ? (int)len
                     : context_scale(agent, tokens_count_str(&agent->counter, text));
    if (tokens > max_tokens)
        return mg_err_set(err, MG_ERR_TOO_LARGE,
                          "the message is too large: about %d tokens, more than this agent's "
                          "%d-token context window takes in one message (%d); store long "
                          "documents in archival memory instead",
                          tokens, agent->context_window, max_tokens);
    return MG_OK;
}

/* A turn for a message from outside, stored as an event of `type`. */
static mg_status send_input(mg_agent *agent, const char *type, agent_event_kind kind,
                            const char *text, mg_event_fn on_event, void *user, mg_error *err)
{
    mg_status st = check_input(agent, text, err);
    if (st) return st;
    return run_event(agent, agent_envelope(type, "message", text), kind, on_event, user, err);
}

mg_status mg_agent_send(mg_agent *agent, const char *text, mg_event_fn on_event, void *user,
                        mg_error *err)
{
    return send_input(agent, "user_message", AGENT_EVENT_USER, text, on_event, user, err);
}

mg_status mg_agent_send_system(mg_agent *agent, const char *text, mg_event_fn on_event, void *user,
                               mg_error *err)
{
    return send_input(agent, "system_alert", AGENT_EVENT_PLAIN, text, on_event, user, err);
}

void mg_agent_set_max_steps(mg_agent *agent, int max_steps)
{
    agent->max_steps = max_steps > 0 ? max_steps : 0;
}

void mg_agent_set_cancel(mg_agent *agent, int *flag)
{
    agent->cancel = flag;
}

mg_status mg_agent_system_event(mg_agent *agent, mg_system_event kind, mg_event_fn on_event,
                                void *user, mg_error *err)
{
    if (kind == MG_SYSTEM_TIMED_HEARTBEAT) {
        if (agent->paused_until > mg_now_ms()) return MG_OK;
        return run_event(agent, agent_envelope("heartbeat", "reason", mg_prompt_heartbeat_timed),
                         AGENT_EVENT_PLAIN, on_event, user, err);
    }
    char last[96] = "never: this is your first boot; greet the user";
    if (agent->last_login) mg_time_human(agent->last_login, last, sizeof last);
    return run_event(agent, agent_envelope("login", "last_login", last), AGENT_EVENT_LOGIN,
                     on_event, user, err);
}

void mg_agent_set_streaming(mg_agent *agent, int enabled)
{
    if (agent) agent->streaming = enabled != 0;
}

int mg_agent_idle_heartbeat_seconds(mg_agent *agent)
{
    if (agent->idle_seconds < 0 || agent->paused_until > mg_now_ms()) return -1;
    return agent->idle_seconds;
}
