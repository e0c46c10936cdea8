/*
 * agent.c - creating, opening, describing and deleting agents.
 *
 * An agent is one row of `agents` plus its blocks, messages and passages
 * (all deleted with it by foreign-key cascade). Opening loads only what a
 * turn needs: the row, core memory and the in-context messages, never the
 * whole history, so start-up cost does not grow with the conversation.
 */
#include "agent/agent.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "agent/prompts.h"
#include "context/context.h"
#include "context/tokens.h"
#include "embed/embedder.h"
#include "functions/functions.h"
#include "memory/archival.h"
#include "memory/archival_index.h"
#include "memory/recall.h"
#include "store/store.h"
#include "tools/python.h"
#include "tools/rules.h"
#include "tools/tools.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"
#include "util/uuid.h"

#define DEFAULT_MODEL  "openai/gpt-4o-mini"
#define DEFAULT_WINDOW 8192
/* Below this the instructions and function schemas leave no room to talk. */
#define MIN_WINDOW  2048
#define MAX_STEPS   1000
#define MAX_SETTING 100000000

int agent_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > AGENT_NAME_MAX || !mg_utf8_valid(name, n) || name[0] == ' ' ||
        name[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return 0;
    return 1;
}

static mg_status check_name(const char *name, mg_error *err)
{
    if (!agent_name_valid(name))
        return mg_err_set(err, MG_ERR_USAGE,
                          "invalid agent name '%.64s': use 1-%d bytes of text, without control "
                          "characters or spaces at either end",
                          name ? name : "", AGENT_NAME_MAX);
    return MG_OK;
}

#define MAX_TAGS        64
#define MAX_EXTRA_BYTES 65536

/* Tags: an array of distinct non-empty strings; metadata: an object (or
 * null). Both small: they ride along with every description. */
static mg_status check_extras(const mg_agent_config *c, mg_error *err)
{
    if (c->tags_json) {
        json_t *tags = json_loads(c->tags_json, 0, NULL);
        size_t n = json_is_array(tags) ? json_array_size(tags) : 0;
        int ok = json_is_array(tags) && n <= MAX_TAGS && strlen(c->tags_json) <= MAX_EXTRA_BYTES;
        for (size_t i = 0; ok && i < n; i++) {
            const char *t = json_string_value(json_array_get(tags, i));
            ok = t && *t;
            for (size_t j = 0; ok && j < i; j++)
                ok = strcmp(t, json_string_value(json_array_get(tags, j))) != 0;
        }
        json_decref(tags);
        if (!ok)
            return mg_err_set(err, MG_ERR_USAGE,
                              "tags must be a list of at most %d distinct non-empty strings",
                              MAX_TAGS);
    }
    if (c->functions_json && !mg_functions_valid(c->functions_json))
        return mg_err_set(err, MG_ERR_USAGE,
                          "functions must be a list of optional function names: "
                          "memory_insert, memory_replace, memory_rethink, "
                          "send_message_to_agent_and_wait_for_reply, "
                          "send_message_to_agent_async, send_message_to_agents_matching_tags");
    if (c->tool_rules_json) {
        mg_status st = rules_check(c->tool_rules_json, err);
        if (st) return st;
    }
    if (c->tool_env_json) {
        json_t *env = json_loads(c->tool_env_json, 0, NULL);
        int ok = json_is_object(env) && strlen(c->tool_env_json) <= MAX_EXTRA_BYTES;
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v) ok &= json_is_string(v) && *k && !strchr(k, '=');
        json_decref(env);
        if (!ok)
            return mg_err_set(err, MG_ERR_USAGE,
                              "tool variables must be a JSON object of strings (names without "
                              "'='), at most %d bytes",
                              MAX_EXTRA_BYTES);
    }
    if (c->metadata_json) {
        json_t *meta = json_loads(c->metadata_json, JSON_DECODE_ANY, NULL);
        int ok = (json_is_object(meta) || json_is_null(meta)) &&
                 strlen(c->metadata_json) <= MAX_EXTRA_BYTES;
        json_decref(meta);
        if (!ok)
            return mg_err_set(err, MG_ERR_USAGE,
                              "metadata must be a JSON object of at most %d bytes",
                              MAX_EXTRA_BYTES);
    }
    return MG_OK;
}

void agent_bind_extras(sqlite3_stmt *stmt, int first, const mg_agent_config *c)
{
    store_bind_text(stmt, first, c->description && *c->description ? c->description : NULL);
    store_bind_text(stmt, first + 1, c->tags_json ? c->tags_json : "[]");
    int null_meta = !c->metadata_json || strcmp(c->metadata_json, "null") == 0;
    store_bind_text(stmt, first + 2, null_meta ? NULL : c->metadata_json);
    store_bind_text(stmt, first + 3, c->functions_json ? c->functions_json : "[]");
    store_bind_text(stmt, first + 4, c->tool_rules_json ? c->tool_rules_json : "[]");
    sqlite3_bind_int(stmt, first + 5, c->python_tools > 0);
    store_bind_text(stmt, first + 6, c->tool_env_json ? c->tool_env_json : "{}");
}

mg_status agent_check_settings(const mg_agent_config *c, mg_error *err)
{
    mg_status st = mg_model_handle_check(c->model, err);
    if (!st) st = mg_embedder_check(c->embedder, err);
    if (st) return st;
    if (c->context_window < MIN_WINDOW)
        return mg_err_set(err, MG_ERR_USAGE, "the context window must be at least %d tokens",
                          MIN_WINDOW);
    if (c->step_limit < 1 || c->step_limit > MAX_STEPS)
        return mg_err_set(err, MG_ERR_USAGE, "the step limit must be between 1 and %d", MAX_STEPS);
    if (c->reflect_every < -1 || c->reflect_every == 0 || c->reflect_every > MAX_SETTING)
        return mg_err_set(err, MG_ERR_USAGE, "reflect_every must be a positive number or -1 (off)");
    if (c->idle_seconds < -1 || c->idle_seconds == 0 || c->idle_seconds > MAX_SETTING)
        return mg_err_set(err, MG_ERR_USAGE, "idle_seconds must be a positive number or -1 (off)");
    if (!(c->warn_fraction > 0.1) || !(c->flush_fraction <= 1.0) ||
        !(c->warn_fraction < c->flush_fraction))
        return mg_err_set(err, MG_ERR_USAGE,
                          "need 0.1 < warn fraction < flush fraction <= 1.0 (now %.2f and %.2f)",
                          c->warn_fraction, c->flush_fraction);
    const char *texts[] = {c->persona, c->human, c->system_prompt, c->description};
    for (int i = 0; i < 4; i++)
        if (texts[i] && !mg_utf8_valid(texts[i], strlen(texts[i])))
            return mg_err_set(err, MG_ERR_USAGE,
                              "persona, human, system and description text must be UTF-8");
    return check_extras(c, err);
}

/* Fills the zero fields of a config with defaults, then checks it. */
static mg_status resolve_config(const mg_agent_config *in, mg_agent_config *out, mg_error *err)
{
    *out = in ? *in : (mg_agent_config){0};
    if (!out->model) out->model = DEFAULT_MODEL;
    if (!out->context_window) out->context_window = mg_model_context_window(out->model);
    if (!out->context_window) out->context_window = DEFAULT_WINDOW;
    if (!out->persona) out->persona = mg_prompt_default_persona;
    if (!out->human) out->human = mg_prompt_default_human;
    if (!out->embedder) out->embedder = "offline";
    if (!out->step_limit) out->step_limit = 10;
    if (!out->reflect_every) out->reflect_every = 10;
    if (!out->idle_seconds) out->idle_seconds = 600;
    if (out->warn_fraction == 0) out->warn_fraction = 0.75;
    if (out->flush_fraction == 0) out->flush_fraction = 1.0;
    return agent_check_settings(out, err);
}

static int block_limit(const char *value)
{
    size_t chars = mg_utf8_chars(value);
    return chars > MG_BLOCK_DEFAULT_LIMIT ? (int)chars : MG_BLOCK_DEFAULT_LIMIT;
}

/* The parts of every request that never shrink (instructions, core memory,
 * statistics, function schemas) must fit under the warning line, or the agent
 * would flush on every turn and still not fit. Runs inside the creating
 * transaction, which sees the new rows. */
static mg_status check_room(mg_store *store, const char *name, mg_error *err)
{
    mg_agent *a;
    mg_status st = mg_agent_open(store, name, &a, err);
    if (st) return st;
    mg_context_usage u;
    context_measure(a, &u);
    if (u.total > u.warn_at)
        st = mg_err_set(err, MG_ERR_USAGE,
                        "a %d-token context window is too small: the instructions, core memory "
                        "and function schemas alone take about %d tokens; use a window of at "
                        "least %d",
                        a->context_window, u.total, (int)(u.total / a->warn_fraction) + 1);
    mg_agent_free(a);
    return st;
}

mg_status mg_agent_create(mg_store *store, const char *name, const mg_agent_config *config,
                          mg_error *err)
{
    mg_agent_config c;
    mg_status st = check_name(name, err);
    if (!st) st = resolve_config(config, &c, err);
    if (st) return st;
    if ((st = store_begin(store, err))) return st;
    sqlite3_stmt *stmt;
    if ((st = store_prepare(
             store,
             "INSERT INTO agents(name, model, context_window, system_prompt, "
             "embedder, step_limit, reflect_every, idle_seconds, warn_fraction, "
             "flush_fraction, memory_updated_at, created_at, uuid, description, tags, "
             "metadata, functions, tool_rules, python_tools, tool_env) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             &stmt, err)))
        goto fail;
    int64_t now = mg_now_ms();
    store_bind_text(stmt, 1, name);
    store_bind_text(stmt, 2, c.model);
    sqlite3_bind_int(stmt, 3, c.context_window);
    store_bind_text(stmt, 4, c.system_prompt);
    store_bind_text(stmt, 5, c.embedder);
    sqlite3_bind_int(stmt, 6, c.step_limit);
    sqlite3_bind_int(stmt, 7, c.reflect_every);
    sqlite3_bind_int(stmt, 8, c.idle_seconds);
    sqlite3_bind_double(stmt, 9, c.warn_fraction);
    sqlite3_bind_double(stmt, 10, c.flush_fraction);
    sqlite3_bind_int64(stmt, 11, now);
    sqlite3_bind_int64(stmt, 12, now);
    char uuid[MG_UUID_SIZE];
    mg_uuid_new(uuid);
    store_bind_text(stmt, 13, uuid);
    agent_bind_extras(stmt, 14, &c);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_CONSTRAINT ||
        (sqlite3_extended_errcode(store->db) & 0xFF) == SQLITE_CONSTRAINT) {
        st = mg_err_set(err, MG_ERR_EXISTS, "an agent named '%s' already exists", name);
        goto fail;
    }
    if (rc != SQLITE_DONE) {
        st = store_fail(store, err, "creating the agent");
        goto fail;
    }
    int64_t id = sqlite3_last_insert_rowid(store->db);
    if ((st = core_memory_add(store, id, "persona", c.persona,
                              "Who you are: your personality and how you speak.",
                              block_limit(c.persona), 0, 0, NULL, err)) ||
        (st = core_memory_add(store, id, "human", c.human,
                              "What you know about the user you talk with.", block_limit(c.human),
                              0, 1, NULL, err)) ||
        (st = check_room(store, name, err)))
        goto fail;
    return store_commit(store, err);
fail:
    store_rollback(store);
    return st;
}

static const char *const agent_columns =
    "id, name, model, context_window, system_prompt, embedder, step_limit, reflect_every, "
    "idle_seconds, warn_fraction, flush_fraction, summary, summarized_count, warned, "
    "user_since_reflect, paused_until, token_scale, memory_updated_at, last_login, created_at, "
    "uuid, description, tags, metadata, functions, foreign_tools, tool_rules, last_flush_at, "
    "python_tools, tool_env";

static void read_row(sqlite3_stmt *s, mg_agent *a)
{
    a->id = sqlite3_column_int64(s, 0);
    a->name = store_column_strdup(s, 1);
    a->model = store_column_strdup(s, 2);
    a->context_window = sqlite3_column_int(s, 3);
    a->system_prompt = store_column_strdup(s, 4);
    a->embedder = store_column_strdup(s, 5);
    a->step_limit = sqlite3_column_int(s, 6);
    a->reflect_every = sqlite3_column_int(s, 7);
    a->idle_seconds = sqlite3_column_int(s, 8);
    a->warn_fraction = sqlite3_column_double(s, 9);
    a->flush_fraction = sqlite3_column_double(s, 10);
    a->summary = store_column_strdup(s, 11);
    a->summarized_count = sqlite3_column_int64(s, 12);
    a->warned = sqlite3_column_int(s, 13);
    a->user_since_reflect = sqlite3_column_int(s, 14);
    a->paused_until = sqlite3_column_int64(s, 15);
    a->token_scale = sqlite3_column_double(s, 16);
    a->core.updated_at = sqlite3_column_int64(s, 17);
    a->last_login = sqlite3_column_int64(s, 18);
    a->created_at = sqlite3_column_int64(s, 19);
    const char *uuid = (const char *)sqlite3_column_text(s, 20);
    snprintf(a->public_id, sizeof a->public_id, "agent-%s", uuid ? uuid : "");
    a->description = store_column_strdup(s, 21);
    a->tags_json = store_column_strdup(s, 22);
    a->metadata_json = store_column_strdup(s, 23);
    a->functions_json = store_column_strdup(s, 24);
    a->foreign_tools_json = store_column_strdup(s, 25);
    a->tool_rules_json = store_column_strdup(s, 26);
    a->last_flush_at = sqlite3_column_int64(s, 27);
    a->python_tools = sqlite3_column_int(s, 28);
    a->tool_env_json = store_column_strdup(s, 29);
}

/* Frees everything loaded from disk, keeping store and provider. */
static void drop_cache(mg_agent *a)
{
    free(a->name);
    free(a->model);
    free(a->system_prompt);
    free(a->embedder);
    free(a->summary);
    free(a->description);
    free(a->tags_json);
    free(a->metadata_json);
    free(a->functions_json);
    free(a->foreign_tools_json);
    free(a->tool_rules_json);
    free(a->tool_env_json);
    a->tool_env_json = NULL;
    a->name = a->model = a->system_prompt = a->embedder = a->summary = NULL;
    a->description = a->tags_json = a->metadata_json = a->functions_json = NULL;
    a->foreign_tools_json = a->tool_rules_json = NULL;
    core_memory_free(&a->core);
    mg_msg_list_free(&a->queue);
}

/* ---- spares: what a freed agent leaves for the next agent of its store.
 * A server opens an agent afresh for every job; handing the provider (its
 * HTTP connection, kept alive) and the tokenizer (its rank tables) on saves
 * a connection and a table load per turn. One spare per model handle and
 * per encoding; a spare has one owner at a time (taken, then given back),
 * so two agents open at once in one thread never share one. */

#define SPARES_MAX 16

typedef struct spares {
    struct {
        char *model;
        mg_provider *provider;
    } providers[SPARES_MAX];
    struct {
        const char *encoding; /* static */
        mg_tokenizer *tok;
    } tokenizers[SPARES_MAX];
} spares;

static void spares_free(void *p)
{
    spares *s = p;
    for (int i = 0; i < SPARES_MAX; i++) {
        free(s->providers[i].model);
        mg_provider_free(s->providers[i].provider);
        mg_tokenizer_free(s->tokenizers[i].tok);
    }
    free(s);
}

static spares *store_spares(mg_store *store)
{
    if (!store->spares) {
        store->spares = mg_xcalloc(1, sizeof(spares));
        store->spares_free = spares_free;
    }
    return store->spares;
}

static mg_provider *take_provider(mg_store *store, const char *model)
{
    spares *s = store_spares(store);
    for (int i = 0; i < SPARES_MAX; i++)
        if (s->providers[i].provider && strcmp(s->providers[i].model, model) == 0) {
            mg_provider *p = s->providers[i].provider;
            s->providers[i].provider = NULL;
            return p;
        }
    return NULL;
}

static void give_provider(mg_store *store, const char *model, mg_provider *p)
{
    spares *s = store_spares(store);
    for (int i = 0; p && i < SPARES_MAX; i++)
        if (!s->providers[i].provider) {
            free(s->providers[i].model);
            s->providers[i].model = mg_xstrdup(model);
            s->providers[i].provider = p;
            return;
        }
    mg_provider_free(p);
}

static void take_tokenizer(mg_store *store, tokens_counter *c)
{
    spares *s = store_spares(store);
    for (int i = 0; c->encoding && i < SPARES_MAX; i++)
        if (s->tokenizers[i].tok && s->tokenizers[i].encoding == c->encoding) {
            tokens_counter_adopt(c, s->tokenizers[i].tok);
            s->tokenizers[i].tok = NULL;
            return;
        }
}

static void give_tokenizer(mg_store *store, tokens_counter *c)
{
    spares *s = store_spares(store);
    mg_tokenizer *tok = tokens_counter_release(c);
    for (int i = 0; tok && i < SPARES_MAX; i++)
        if (!s->tokenizers[i].tok) {
            s->tokenizers[i].encoding = c->encoding;
            s->tokenizers[i].tok = tok;
            return;
        }
    mg_tokenizer_free(tok);
}

static mg_status load(mg_agent *a, const char *name, mg_error *err)
{
    buf sql = BUF_INIT;
    buf_printf(&sql, "SELECT %s FROM agents WHERE name = ?", agent_columns);
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(a->store, buf_str(&sql), &stmt, err);
    buf_free(&sql);
    if (st) return st;
    store_bind_text(stmt, 1, name);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) read_row(stmt, a);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_DONE) return mg_err_set(err, MG_ERR_NOT_FOUND, "no agent named '%s'", name);
    if (rc != SQLITE_ROW) return store_fail(a->store, err, "loading the agent");
    /* The counter follows the model (which cannot change under an open
     * agent); the tokenizer opens on the first count. */
    if (a->counter.mode == TOKENS_UNSET) {
        tokens_counter_init(&a->counter, a->model);
        take_tokenizer(a->store, &a->counter);
    }
    int64_t updated_at = a->core.updated_at;
    if ((st = core_memory_load(a->store, a->id, &a->core, err))) return st;
    a->core.updated_at = updated_at;
    if ((st = recall_load_context(a->store, a->id, &a->queue, err)) ||
        (st = recall_count(a->store, a->id, &a->recall_count, err)) ||
        (st = archival_count(a->store, a->id, &a->archival_count, err)))
        return st;
    for (int i = 0; i < a->queue.count; i++)
        a->queue.items[i].tokens = -1; /* counted on first need (context.c) */
    return MG_OK;
}

mg_status mg_agent_open(mg_store *store, const char *name, mg_agent **out, mg_error *err)
{
    *out = NULL;
    mg_agent *a = mg_xcalloc(1, sizeof *a);
    a->store = store;
    mg_status st = load(a, name, err);
    if (st) {
        mg_agent_free(a);
        return st;
    }
    a->tools = mg_functions_schemas_for(a->functions_json);
    a->external = json_object();
    if (a->python_tools) tools_python(a->foreign_tools_json, a->tools, a->external);
    if ((st = tools_attached(store, a->id, a->tools, a->external, err))) {
        mg_agent_free(a);
        return st;
    }
    char *tools_text = json_dumps(a->tools, JSON_COMPACT);
    a->tools_tokens = -1; /* counted on first need */
    a->tools_bytes = strlen(tools_text);
    free(tools_text);
    *out = a;
    return MG_OK;
}

mg_status agent_reload(mg_agent *a, mg_error *err)
{
    mg_agent *fresh = mg_xcalloc(1, sizeof *fresh);
    fresh->store = a->store;
    fresh->counter = a->counter; /* the model cannot change under an open agent */
    mg_status st = load(fresh, a->name, err);
    if (st) {
        drop_cache(fresh);
        free(fresh);
        a->broken = 1;
        return st;
    }
    /* Keep what is not loaded from disk: the provider and the schemas. */
    fresh->provider = a->provider;
    fresh->tools = a->tools;
    fresh->external = a->external;
    fresh->chain = a->chain;
    fresh->deferred = a->deferred;
    fresh->async_hops = a->async_hops;
    fresh->tools_tokens = a->tools_tokens;
    fresh->tools_bytes = a->tools_bytes;
    drop_cache(a);
    *a = *fresh;
    free(fresh);
    return MG_OK;
}

mg_status agent_tx_end(mg_agent *a, mg_status st, mg_error *err)
{
    if (!st)
        st = store_commit(a->store, err); /* rolls back itself on failure */
    else
        store_rollback(a->store);
    if (st) {
        mg_error ignored;
        agent_reload(a, &ignored);
    }
    return st;
}

mg_status agent_check_usable(const mg_agent *a, mg_error *err)
{
    if (!a->broken) return MG_OK;
    return mg_err_set(err, MG_ERR_DB,
                      "agent '%s' could not be reloaded after a failed write; open it again",
                      a->name ? a->name : "?");
}

mg_msg agent_envelope(const char *type, const char *key, const char *text)
{
    char when[64];
    int64_t now = mg_now_ms();
    mg_time_human(now, when, sizeof when);
    json_t *obj = json_pack("{s:s}", "type", type);
    if (key) json_object_set_new(obj, key, json_string(text));
    json_object_set_new(obj, "time", json_string(when));
    mg_msg m = {.role = MG_ROLE_USER,
                .kind = mg_xstrdup(type),
                .content = json_dumps(obj, JSON_COMPACT),
                .time_ms = now};
    json_decref(obj);
    return m;
}

mg_status agent_store_event(mg_agent *a, mg_msg m, agent_event_kind kind, mg_error *err)
{
    mg_status st = store_begin(a->store, err);
    if (st) {
        mg_msg_clear(&m);
        return st;
    }
    switch (kind) {
    case AGENT_EVENT_USER:
        a->user_since_reflect++;
        break;
    case AGENT_EVENT_LOGIN:
        a->last_login = m.time_ms;
        break;
    case AGENT_EVENT_REFLECTION:
        a->user_since_reflect = 0;
        break;
    case AGENT_EVENT_WARNING:
        a->warned = 1;
        break;
    case AGENT_EVENT_PLAIN:
        break;
    }
    st = agent_append_message(a, m, NULL, err);
    if (!st) st = agent_save_state(a, err);
    if (!st && a->pending[0]) st = mg_pending_remove(a->store, a->pending, err);
    st = agent_tx_end(a, st, err);
    if (!st) a->pending[0] = '\0';
    return st;
}

void mg_agent_free(mg_agent *a)
{
    if (!a) return;
    if (a->provider && a->model) give_provider(a->store, a->model, a->provider);
    give_tokenizer(a->store, &a->counter);
    drop_cache(a);
    json_decref(a->tools);
    json_decref(a->external);
    json_decref(a->chain);
    json_decref(a->deferred);
    tokens_counter_free(&a->counter);
    free(a);
}

const char *mg_agent_name(const mg_agent *a)
{
    return a->name;
}

const char *mg_agent_id(const mg_agent *a)
{
    return a->public_id;
}

mg_status mg_agent_name_for_id(mg_store *store, const char *id, char **name, mg_error *err)
{
    *name = NULL;
    const char *uuid = mg_uuid_strip(id, "agent");
    sqlite3_stmt *stmt;
    mg_status st = MG_OK;
    if (uuid &&
        !(st = store_prepare(store, "SELECT name FROM agents WHERE uuid = lower(?)", &stmt, err))) {
        store_bind_text(stmt, 1, uuid);
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
            *name = store_column_strdup(stmt, 0);
        else if (rc != SQLITE_DONE)
            st = store_fail(store, err, "finding the agent");
        sqlite3_finalize(stmt);
    }
    if (!st && !*name)
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "no agent with id '%.80s'", id ? id : "");
    return st;
}

mg_status mg_agent_open_id(mg_store *store, const char *id, mg_agent **out, mg_error *err)
{
    char *name;
    *out = NULL;
    mg_status st = mg_agent_name_for_id(store, id, &name, err);
    if (st) return st;
    st = mg_agent_open(store, name, out, err);
    free(name);
    return st;
}

mg_status mg_agent_rename(mg_store *store, const char *name, const char *new_name, mg_error *err)
{
    mg_status st = check_name(new_name, err);
    if (st) return st;
    sqlite3_stmt *stmt;
    if ((st = store_prepare(store, "UPDATE agents SET name = ? WHERE name = ?", &stmt, err)))
        return st;
    store_bind_text(stmt, 1, new_name);
    store_bind_text(stmt, 2, name);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if ((sqlite3_extended_errcode(store->db) & 0xFF) == SQLITE_CONSTRAINT)
        return mg_err_set(err, MG_ERR_EXISTS, "an agent named '%s' already exists", new_name);
    if (rc != SQLITE_DONE) return store_fail(store, err, "renaming the agent");
    if (sqlite3_changes(store->db) == 0)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "no agent named '%s'", name ? name : "");
    return MG_OK;
}

mg_status agent_save_state(mg_agent *a, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(a->store,
                                 "UPDATE agents SET summary = ?, summarized_count = ?, warned = ?, "
                                 "user_since_reflect = ?, paused_until = ?, token_scale = ?, "
                                 "last_login = ?, last_flush_at = ? WHERE id = ?",
                                 &stmt, err);
    if (st) return st;
    store_bind_text(stmt, 1, a->summary ? a->summary : "");
    sqlite3_bind_int64(stmt, 2, a->summarized_count);
    sqlite3_bind_int(stmt, 3, a->warned);
    sqlite3_bind_int(stmt, 4, a->user_since_reflect);
    sqlite3_bind_int64(stmt, 5, a->paused_until);
    sqlite3_bind_double(stmt, 6, a->token_scale);
    sqlite3_bind_int64(stmt, 7, a->last_login);
    sqlite3_bind_int64(stmt, 8, a->last_flush_at);
    sqlite3_bind_int64(stmt, 9, a->id);
    st = store_step_done(a->store, stmt, err);
    sqlite3_finalize(stmt);
    return st;
}

mg_status agent_append_message(mg_agent *a, mg_msg m, mg_msg **queued, mg_error *err)
{
    mg_status st = recall_insert(a->store, a->id, &m, err);
    if (st) {
        mg_msg_clear(&m);
        return st;
    }
    m.tokens = -1; /* counted on first need */
    a->recall_count++;
    mg_msg *q = mg_msg_list_push(&a->queue, m);
    if (queued) *queued = q;
    return MG_OK;
}

mg_status agent_provider(mg_agent *a, mg_provider **out, mg_error *err)
{
    if (!a->provider) a->provider = take_provider(a->store, a->model);
    if (!a->provider) {
        mg_status st = mg_provider_open(a->model, &a->provider, err);
        if (st) return st;
    }
    *out = a->provider;
    return MG_OK;
}

mg_status mg_agent_check_provider(mg_agent *a, mg_error *err)
{
    mg_provider *p;
    return agent_provider(a, &p, err);
}

mg_status mg_agent_delete(mg_store *store, const char *name, mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, "DELETE FROM agents WHERE name = ?", &stmt, err);
    if (st) return st;
    store_bind_text(stmt, 1, name);
    st = store_step_done(store, stmt, err);
    sqlite3_finalize(stmt);
    if (!st && sqlite3_changes(store->db) == 0)
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "no agent named '%s'", name ? name : "");
    if (!st) archival_index_remove_orphans(store); /* its vector index files */
    return st;
}

static json_t *describe(mg_agent *a)
{
    char created[32];
    mg_time_iso(a->created_at, created, sizeof created);
    json_t *tags = json_loads(a->tags_json ? a->tags_json : "[]", 0, NULL);
    json_t *meta = a->metadata_json ? json_loads(a->metadata_json, 0, NULL) : NULL;
    json_t *functions = json_loads(a->functions_json ? a->functions_json : "[]", 0, NULL);
    json_t *rules = json_loads(a->tool_rules_json ? a->tool_rules_json : "[]", 0, NULL);
    json_t *foreign = json_loads(a->foreign_tools_json ? a->foreign_tools_json : "[]", 0, NULL);
    json_t *unavailable = json_array();
    size_t i;
    json_t *tool;
    json_array_foreach(foreign, i, tool) if (json_is_string(json_object_get(tool, "name")))
        json_array_append(unavailable, json_object_get(tool, "name"));
    json_decref(foreign);
    /* The tools' variables by name only: their values are secrets. */
    json_t *env = json_loads(a->tool_env_json ? a->tool_env_json : "{}", 0, NULL);
    if (!json_is_object(env)) {
        json_decref(env);
        env = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) json_object_set_new(env, k, json_string("****"));
    return json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:I, s:i, s:I, s:{s:i, s:i, s:i, s:f, s:f}, "
        "s:b, s:s?, s:o, s:o*, s:o, s:o, s:o, s:b, s:o}",
        "id", a->public_id, "name", a->name, "model", a->model, "context_window", a->context_window,
        "embedder", a->embedder, "created_at", created, "messages", (json_int_t)a->recall_count,
        "passages", (json_int_t)a->archival_count, "in_context", a->queue.count, "summarized",
        (json_int_t)a->summarized_count, "settings", "step_limit", a->step_limit, "reflect_every",
        a->reflect_every, "idle_seconds", a->idle_seconds, "warn_fraction", a->warn_fraction,
        "flush_fraction", a->flush_fraction, "custom_system_prompt", a->system_prompt != NULL,
        "description", a->description, "tags", tags ? tags : json_array(), "metadata", meta,
        "functions", functions ? functions : json_array(), "tool_rules",
        rules ? rules : json_array(), "unavailable_tools", unavailable, "python_tools",
        a->python_tools, "tool_env", env);
}

mg_status mg_agent_describe(mg_agent *a, char **json_out, mg_error *err)
{
    json_t *obj = describe(a);
    *json_out = json_dumps(obj, JSON_INDENT(2));
    json_decref(obj);
    return MG_OK;
}

mg_status mg_agent_list(mg_store *store, char **json_out, mg_error *err)
{
    *json_out = NULL;
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(store, "SELECT name FROM agents ORDER BY name", &stmt, err);
    if (st) return st;
    json_t *arr = json_array();
    int rc = SQLITE_DONE;
    while (!st && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        mg_agent *a;
        st = mg_agent_open(store, (const char *)sqlite3_column_text(stmt, 0), &a, err);
        if (st) break;
        json_array_append_new(arr, describe(a));
        mg_agent_free(a);
    }
    if (!st && rc != SQLITE_DONE) st = store_fail(store, err, "listing agents");
    sqlite3_finalize(stmt);
    if (!st) *json_out = json_dumps(arr, JSON_INDENT(2));
    json_decref(arr);
    return st;
}
