/*
 * memory_api.c - the public calls that read and edit an agent's memory tiers
 * and inspect its context, outside any turn (the CLI's memory, recall,
 * archival and context commands).
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "context/context.h"
#include "functions/functions.h"
#include "memory/archival.h"
#include "memory/archival_index.h"
#include "memory/recall.h"
#include "store/store.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

static mg_status dump(json_t *value, char **json_out)
{
    *json_out = json_dumps(value, JSON_INDENT(2));
    json_decref(value);
    return MG_OK;
}

mg_status mg_memory_json(mg_agent *agent, char **json_out, mg_error *err)
{
    *json_out = core_memory_json(&agent->core);
    return MG_OK;
}

static mg_status check_label(const char *label, mg_error *err)
{
    if (!label || !*label || strlen(label) > 64 || !mg_utf8_valid(label, strlen(label)))
        return mg_err_set(err, MG_ERR_USAGE, "a block label must be 1-64 characters of UTF-8");
    return MG_OK;
}

mg_status mg_memory_set(mg_agent *agent, const char *label, const char *value, mg_error *err)
{
    mg_status st = check_label(label, err);
    if (st) return st;
    if (!value || !mg_utf8_valid(value, strlen(value)))
        return mg_err_set(err, MG_ERR_USAGE, "the block text must be valid UTF-8");
    if (!st) st = agent_check_usable(agent, err);
    if (st || (st = store_begin(agent->store, err))) return st;
    return agent_tx_end(agent, core_memory_set(&agent->core, label, value, err), err);
}

mg_status mg_memory_configure(mg_agent *agent, const char *label, int limit,
                              const char *description, int read_only, mg_error *err)
{
    mg_status st = check_label(label, err);
    if (st) return st;
    if (limit < 0) return mg_err_set(err, MG_ERR_USAGE, "a block limit must be positive");
    if (description && !mg_utf8_valid(description, strlen(description)))
        return mg_err_set(err, MG_ERR_USAGE, "the description must be valid UTF-8");
    if (!st) st = agent_check_usable(agent, err);
    if (st || (st = store_begin(agent->store, err))) return st;
    return agent_tx_end(
        agent, core_memory_configure(&agent->core, label, limit, description, read_only, err), err);
}

mg_status mg_recall_list(mg_agent *agent, int limit, char **json_out, mg_error *err)
{
    json_t *rows;
    mg_status st = recall_list(agent->store, agent->id, limit, &rows, err);
    return st ? st : dump(rows, json_out);
}

mg_status mg_recall_search(mg_agent *agent, const mg_search *search, char **json_out, mg_error *err)
{
    json_t *found;
    mg_status st = recall_search(agent->store, agent->id, search, &found, err);
    return st ? st : dump(found, json_out);
}

mg_status mg_archival_add(mg_agent *agent, const char *text, const char *tags_json, int64_t time_ms,
                          char **json_out, mg_error *err)
{
    if (json_out) *json_out = NULL;
    if (!text || !mg_utf8_valid(text, strlen(text)))
        return mg_err_set(err, MG_ERR_USAGE, "the passage must be valid UTF-8");
    if (!time_ms) time_ms = mg_now_ms();
    char uuid[MG_UUID_SIZE];
    mg_status st = archival_insert(agent->store, agent->id, agent->embedder, text, tags_json,
                                   time_ms, uuid, err);
    if (st) return st;
    agent->archival_count++;
    if (json_out) {
        json_t *tags = tags_json ? json_loads(tags_json, 0, NULL) : NULL;
        json_t *obj =
            json_pack("{s:s+, s:I, s:s, s:o}", "id", "passage-", uuid, "time_ms",
                      (json_int_t)time_ms, "text", text, "tags", tags ? tags : json_array());
        dump(obj, json_out);
    }
    return MG_OK;
}

mg_status mg_archival_insert(mg_agent *agent, const char *text, const char *tags_json,
                             int64_t time_ms, mg_error *err)
{
    return mg_archival_add(agent, text, tags_json, time_ms, NULL, err);
}

mg_status mg_archival_insert_json(mg_agent *agent, const char *json_object, mg_error *err)
{
    json_error_t jerr;
    json_t *obj = json_loads(json_object, 0, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return mg_err_set(err, MG_ERR_USAGE, "not a JSON object: %s",
                          obj ? "wrong type" : jerr.text);
    }
    mg_status st = MG_OK;
    const char *text = json_string_value(json_object_get(obj, "text"));
    json_t *tags = json_object_get(obj, "tags"), *when = json_object_get(obj, "time");
    int64_t time_ms = 0;
    char *tags_json =
        tags && !json_is_null(tags) ? json_dumps(tags, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!text)
        st = mg_err_set(err, MG_ERR_USAGE, "the object has no \"text\" string");
    else if (json_is_integer(when) && json_integer_value(when) >= 0 &&
             json_integer_value(when) < 253402300800LL) /* up to year 9999 */
        time_ms = json_integer_value(when) * 1000;
    else if (json_is_integer(when))
        st = mg_err_set(err, MG_ERR_USAGE, "\"time\" is out of range");
    else if (json_is_string(when))
        st = mg_parse_time(json_string_value(when), 0, &time_ms, err);
    else if (when && !json_is_null(when))
        st = mg_err_set(err, MG_ERR_USAGE, "\"time\" must be a date string or epoch seconds");
    if (!st) st = mg_archival_insert(agent, text, tags_json, time_ms, err);
    free(tags_json);
    json_decref(obj);
    return st;
}

/* Passages per transaction of mg_archival_insert_many: a commit (and the
 * index's log append after it) costs more than a passage, and a larger
 * batch only holds the write lock longer. */
#define INSERT_BATCH 1000

mg_status mg_archival_insert_many(mg_agent *agent, const char *const *items, int n, int json,
                                  const char *tags_json, int *stored, mg_error *err)
{
    if (stored) *stored = 0;
    mg_status st = agent_check_usable(agent, err);
    int done = 0;
    while (!st && done < n) {
        int end = done + INSERT_BATCH < n ? done + INSERT_BATCH : n, i = done;
        if ((st = store_begin(agent->store, err))) break;
        for (; !st && i < end; i++)
            st = json ? mg_archival_insert_json(agent, items[i], err)
                      : mg_archival_insert(agent, items[i], tags_json, 0, err);
        if (st == MG_ERR_USAGE) {
            /* The refused item (i - 1) wrote nothing: keep the ones before. */
            mg_error refused = err ? *err : (mg_error){0};
            if (!(st = agent_tx_end(agent, MG_OK, err))) {
                done = i - 1;
                if (err) *err = refused;
                st = MG_ERR_USAGE;
            }
        } else if (!(st = agent_tx_end(agent, st, err))) {
            done = end;
        }
    }
    if (stored) *stored = done;
    /* Bring the vector index up to date now, so that the first search
     * after a bulk insert does not pay for it; the store saves it at close. */
    if (done > 0) archival_index_warm(agent->store, agent->id, agent->embedder);
    return st;
}

void mg_agent_prefetch(mg_agent *agent)
{
    archival_index_prefetch(agent->store, agent->id, agent->embedder);
}

mg_status mg_archival_search(mg_agent *agent, const mg_search *search, char **json_out,
                             mg_error *err)
{
    json_t *found;
    mg_status st = archival_search(agent->store, agent->id, agent->embedder, search, &found, err);
    return st ? st : dump(found, json_out);
}

mg_status mg_context_json(mg_agent *agent, char **json_out, mg_error *err)
{
    mg_context_usage u;
    context_measure(agent, &u);
    json_t *obj = json_pack(
        "{s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:i, s:i, s:i, s:i, s:i, s:f, s:s, s:b}", "tokens",
        "system_instructions", u.instructions, "core_memory", u.core, "memory_statistics", u.stats,
        "summary", u.summary, "messages", u.messages, "tools", u.tools, "total", u.total,
        "context_window", u.window, "warn_at", u.warn_at, "flush_at", u.flush_at,
        "messages_in_view", u.nmessages, "token_scale", agent->token_scale, "counter",
        context_counter_line(agent), "warned", agent->warned);
    return dump(obj, json_out);
}

mg_status mg_context_text_json(mg_agent *agent, char **json_out, mg_error *err)
{
    buf sys = BUF_INIT;
    size_t ends[CONTEXT_PARTS];
    context_system_parts(agent, &sys, NULL, ends);
    static const char *const names[CONTEXT_PARTS] = {"instructions", "core_memory",
                                                     "memory_statistics", "summary"};
    json_t *obj = json_object();
    size_t start = 0;
    for (int i = 0; i < CONTEXT_PARTS; i++) {
        json_object_set_new(obj, names[i], json_stringn(sys.data + start, ends[i] - start));
        start = ends[i];
    }
    json_object_set_new(obj, "system_message", json_string(buf_str(&sys)));
    json_object_set_new(obj, "summary_text", json_string(agent->summary ? agent->summary : ""));
    json_object_set_new(obj, "summarized_messages", json_integer(agent->summarized_count));
    char flushed[32];
    mg_time_iso(agent->last_flush_at, flushed, sizeof flushed);
    json_object_set_new(obj, "last_flush_at",
                        agent->last_flush_at ? json_string(flushed) : json_null());
    buf_free(&sys);
    return dump(obj, json_out);
}

mg_status mg_tools_json(char **json_out, mg_error *err)
{
    return dump(mg_functions_schemas_all(), json_out);
}

mg_status mg_agent_tools_json(mg_agent *agent, char **json_out, mg_error *err)
{
    json_t *out = json_deep_copy(agent->tools);
    size_t i;
    json_t *s;
    json_array_foreach(out, i, s)
    {
        json_t *entry =
            json_object_get(agent->external, json_string_value(json_object_get(s, "name")));
        if (json_object_get(entry, "id"))
            json_object_set(s, "mcp_server", entry);
        else if (entry)
            json_object_set_new(s, "python", json_true());
    }
    return dump(out, json_out);
}

const char *mg_agent_token_counter(mg_agent *agent)
{
    return context_counter_line(agent);
}

const char *mg_agent_tokens_notice(mg_agent *agent)
{
    return tokens_notice(&agent->counter);
}
