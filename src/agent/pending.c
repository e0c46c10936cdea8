/*
 * pending.c - work acknowledged before it runs (see memgpt.h, "pending
 * work"): rows of pending_inputs, taken by the transaction of the event
 * they start (agent_store_event), so a crash between the acknowledgement
 * and the run loses nothing, and one after the event does not run it again.
 * Then the outcome, in pending_outcomes, for whoever asks after a restart.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "store/store.h"
#include "util/err.h"
#include "util/buf.h"
#include "util/timeutil.h"

mg_status mg_pending_add(mg_store *store, const char *agent_id, const char *prefix,
                         const char *request_json, char **id_out, mg_error *err)
{
    *id_out = NULL;
    const char *agent_uuid = mg_uuid_strip(agent_id, "agent");
    if (!agent_uuid)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "no agent with id '%.80s'",
                          agent_id ? agent_id : "");
    char uuid[MG_UUID_SIZE];
    mg_uuid_new(uuid);
    sqlite3_stmt *s;
    mg_status st = store_prepare(store,
                                 "INSERT INTO pending_inputs(uuid, agent_id, request, created_at) "
                                 "SELECT ?, id, ?, ? FROM agents WHERE uuid = lower(?)",
                                 &s, err);
    if (st) return st;
    store_bind_text(s, 1, uuid);
    store_bind_text(s, 2, request_json);
    sqlite3_bind_int64(s, 3, mg_now_ms());
    store_bind_text(s, 4, agent_uuid);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    if (!st && sqlite3_changes(store->db) == 0)
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "no agent with id '%.80s'", agent_id);
    if (st) return st;
    buf id = BUF_INIT;
    buf_printf(&id, "%s-%s", prefix, uuid);
    *id_out = buf_take(&id);
    return MG_OK;
}

mg_status mg_pending_list(mg_store *store, char **json_out, mg_error *err)
{
    *json_out = NULL;
    sqlite3_stmt *s;
    mg_status st =
        store_prepare(store,
                      "SELECT p.uuid, 'agent-' || a.uuid, p.request, p.created_at FROM "
                      "pending_inputs p JOIN agents a ON a.id = p.agent_id ORDER BY p.id",
                      &s, err);
    if (st) return st;
    json_t *out = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s, s:I}", "id", (const char *)sqlite3_column_text(s, 0),
                           "agent_id", (const char *)sqlite3_column_text(s, 1), "request",
                           (const char *)sqlite3_column_text(s, 2), "created_at_ms",
                           (json_int_t)sqlite3_column_int64(s, 3)));
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        json_decref(out);
        return store_fail(store, err, "listing pending work");
    }
    *json_out = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return MG_OK;
}

mg_status mg_pending_remove(mg_store *store, const char *uuid, mg_error *err)
{
    sqlite3_stmt *s;
    mg_status st =
        store_prepare(store, "DELETE FROM pending_inputs WHERE uuid = lower(?)", &s, err);
    if (st) return st;
    store_bind_text(s, 1, uuid);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    return st;
}

void mg_agent_set_pending(mg_agent *agent, const char *uuid)
{
    snprintf(agent->pending, sizeof agent->pending, "%s", uuid && mg_uuid_valid(uuid) ? uuid : "");
}

mg_status mg_pending_finish(mg_store *store, const char *uuid, const char *agent_id,
                            const char *outcome_json, mg_error *err)
{
    const char *agent_uuid = mg_uuid_strip(agent_id, "agent");
    if (!agent_uuid || !uuid || !mg_uuid_valid(uuid))
        return mg_err_set(err, MG_ERR_NOT_FOUND, "no agent '%.80s' or request '%.80s'",
                          agent_id ? agent_id : "", uuid ? uuid : "");
    sqlite3_stmt *s;
    mg_status st = store_prepare(store,
                                 "INSERT OR REPLACE INTO pending_outcomes(uuid, agent_id, outcome, "
                                 "finished_at) SELECT lower(?), id, ?, ? FROM agents "
                                 "WHERE uuid = lower(?)",
                                 &s, err);
    if (st) return st;
    store_bind_text(s, 1, uuid);
    store_bind_text(s, 2, outcome_json);
    sqlite3_bind_int64(s, 3, mg_now_ms());
    store_bind_text(s, 4, agent_uuid);
    st = store_step_done(store, s, err);
    sqlite3_finalize(s);
    if (!st && sqlite3_changes(store->db) == 0)
        st = mg_err_set(err, MG_ERR_NOT_FOUND, "no agent with id '%.80s'", agent_id);
    return st;
}

mg_status mg_pending_outcome(mg_store *store, const char *uuid, char **outcome_json, mg_error *err)
{
    *outcome_json = NULL;
    sqlite3_stmt *s;
    mg_status st =
        store_prepare(store, "SELECT outcome FROM pending_outcomes WHERE uuid = lower(?)", &s, err);
    if (st) return st;
    store_bind_text(s, 1, uuid ? uuid : "");
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *outcome_json = mg_xstrdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW) return MG_OK;
    if (rc == SQLITE_DONE)
        return mg_err_set(err, MG_ERR_NOT_FOUND, "nothing stored for '%.80s'", uuid ? uuid : "");
    return store_fail(store, err, "reading an outcome");
}
