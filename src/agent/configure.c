/*
 * configure.c - mg_agent_configure: changing an agent's settings after
 * creation (`memgpt agents set`).
 *
 * The change is computed as a whole before anything is written: the current
 * row, overlaid with the non-zero fields of the request, must pass the same
 * checks mg_agent_create applies (agent.c, resolve_config and check_room; the
 * limits are repeated here and must move together with those). The UPDATE
 * and the room check (does the fixed part of a request still fit under the
 * warning line with the new window and instructions?) share one transaction,
 * so a setting that would leave the agent unusable is never committed.
 *
 * Changing the embedder changes no passage: old embeddings stay, tagged with
 * the embedder that made them, and search compares a query only with
 * passages of the agent's current embedder (text search still finds the
 * rest) until mg_archival_reembed brings them over.
 */
#include <string.h>

#include "agent/agent.h"
#include "context/context.h"
#include "embed/embedder.h"
#include "provider/provider.h"
#include "store/store.h"
#include "util/err.h"
#include "util/text.h"

/* The agent's settings after the change, borrowing strings from `cur` and
 * `ch`. system_prompt NULL means the built-in instructions. */
static mg_status merge(const mg_agent *cur, const mg_agent_config *ch, mg_agent_config *out,
                       mg_error *err)
{
    if (ch->persona || ch->human)
        return mg_err_set(err, MG_ERR_USAGE,
                          "persona and human are core memory blocks; change them with "
                          "`memgpt memory set` (mg_memory_set)");
    *out = (mg_agent_config){
        .model = cur->model,
        .context_window = cur->context_window,
        .system_prompt = cur->system_prompt,
        .embedder = cur->embedder,
        .step_limit = cur->step_limit,
        .reflect_every = cur->reflect_every,
        .idle_seconds = cur->idle_seconds,
        .warn_fraction = cur->warn_fraction,
        .flush_fraction = cur->flush_fraction,
        .description = ch->description ? ch->description : cur->description,
        .tags_json = ch->tags_json ? ch->tags_json : cur->tags_json,
        .metadata_json = ch->metadata_json ? ch->metadata_json : cur->metadata_json,
        .functions_json = ch->functions_json ? ch->functions_json : cur->functions_json,
        .tool_rules_json = ch->tool_rules_json ? ch->tool_rules_json : cur->tool_rules_json,
        .python_tools = ch->python_tools ? ch->python_tools : (cur->python_tools ? 1 : -1),
        .tool_env_json = cur->tool_env_json,
    };
    if (ch->model) {
        out->model = ch->model;
        int known = mg_model_context_window(ch->model);
        if (known && strcmp(ch->model, cur->model) != 0) out->context_window = known;
    }
    if (ch->context_window < 0)
        return mg_err_set(err, MG_ERR_USAGE, "the context window must be a positive number");
    if (ch->context_window) out->context_window = ch->context_window;
    if (ch->embedder) out->embedder = ch->embedder;
    if (ch->step_limit) out->step_limit = ch->step_limit;
    if (ch->reflect_every) out->reflect_every = ch->reflect_every;
    if (ch->idle_seconds) out->idle_seconds = ch->idle_seconds;
    if (ch->warn_fraction) out->warn_fraction = ch->warn_fraction;
    if (ch->flush_fraction) out->flush_fraction = ch->flush_fraction;
    if (ch->system_prompt) out->system_prompt = ch->system_prompt[0] ? ch->system_prompt : NULL;
    mg_status st = agent_check_settings(out, err);
    if (st) return st;
    return MG_OK;
}

/* The tools' variables `cur` with `changes` merged in (a null member
 * removes one), or NULL if `changes` is not an object. Caller frees. */
static char *merge_env(const char *cur, const char *changes)
{
    json_t *env = json_loads(cur ? cur : "{}", 0, NULL);
    json_t *ch = json_loads(changes, 0, NULL);
    char *out = NULL;
    if (json_is_object(ch)) {
        if (!json_is_object(env)) {
            json_decref(env);
            env = json_object();
        }
        const char *k;
        json_t *v;
        json_object_foreach(ch, k, v)
        {
            if (json_is_null(v))
                json_object_del(env, k);
            else
                json_object_set(env, k, v);
        }
        out = json_dumps(env, JSON_COMPACT);
    }
    json_decref(env);
    json_decref(ch);
    return out;
}

static mg_status write_settings(mg_store *store, int64_t id, const mg_agent_config *c,
                                mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st = store_prepare(store,
                                 "UPDATE agents SET model = ?, context_window = ?, system_prompt = "
                                 "?, embedder = ?, step_limit = ?, reflect_every = ?, "
                                 "idle_seconds = ?, warn_fraction = ?, flush_fraction = ?, "
                                 "description = ?, tags = ?, metadata = ?, functions = ?, "
                                 "tool_rules = ?, python_tools = ?, tool_env = ? WHERE id = ?",
                                 &s, err);
    if (st) return st;
    store_bind_text(s, 1, c->model);
    sqlite3_bind_int(s, 2, c->context_window);
    store_bind_text(s, 3, c->system_prompt);
    store_bind_text(s, 4, c->embedder);
    sqlite3_bind_int(s, 5, c->step_limit);
    sqlite3_bind_int(s, 6, c->reflect_every);
    sqlite3_bind_int(s, 7, c->idle_seconds);
    sqlite3_bind_double(s, 8, c->warn_fraction);
    sqlite3_bind_double(s, 9, c->flush_fraction);
    agent_bind_extras(s, 10, c);
    sqlite3_bind_int64(s, 17, id);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    return st;
}

mg_status agent_check_room(mg_store *store, const char *name, mg_error *err)
{
    mg_agent *a;
    mg_status st = mg_agent_open(store, name, &a, err);
    if (st) return st;
    mg_context_usage u;
    context_measure(a, &u);
    int fixed = u.instructions + u.core + u.stats + u.tools;
    if (fixed > u.warn_at)
        st = mg_err_set(err, MG_ERR_USAGE,
                        "a %d-token context window is too small: the instructions, core memory "
                        "and function schemas alone take about %d tokens; use a window of at "
                        "least %d",
                        a->context_window, fixed, (int)(fixed / a->warn_fraction) + 1);
    mg_agent_free(a);
    return st;
}

mg_status mg_agent_configure(mg_store *store, const char *name, const mg_agent_config *changes,
                             mg_error *err)
{
    if (!changes) return MG_OK;
    mg_agent *cur;
    mg_status st = mg_agent_open(store, name, &cur, err);
    if (st) return st;
    mg_agent_config next = {0};
    st = merge(cur, changes, &next, err);
    char *env = NULL;
    if (!st && changes->tool_env_json &&
        !(env = merge_env(cur->tool_env_json, changes->tool_env_json)))
        st = mg_err_set(err, MG_ERR_USAGE, "tool variables must be a JSON object");
    if (env) {
        next.tool_env_json = env;
        st = agent_check_settings(&next, err);
    }
    if (!st) st = store_begin(store, err);
    if (!st) {
        st = write_settings(store, cur->id, &next, err);
        if (!st) st = agent_check_room(store, name, err);
        if (st)
            store_rollback(store);
        else
            st = store_commit(store, err);
    }
    mg_agent_free(cur);
    free(env);
    return st;
}
