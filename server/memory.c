/*
 * memory.c - core memory blocks (per agent, and /v1/blocks across agents)
 * and archival memory.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/handlers.h"
#include "server/letta.h"

#define MAX_TOP_K 100

/* ---------------------------------------------------------------- blocks */

/* The agent's blocks as BlockResponses, in their order. */
static json_t *agent_blocks(mg_agent *agent, mg_error *err)
{
    char *text;
    json_t *blocks = srv_json_of(mg_memory_json(agent, &text, err), &text);
    if (!blocks) return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b) json_array_append_new(out, letta_block(b));
    json_decref(blocks);
    return out;
}

static json_t *block_by_label(json_t *blocks, const char *label)
{
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b) if (strcmp(json_string_value(json_object_get(b, "label")),
                                                label) == 0) return b;
    return NULL;
}

void srv_agent_blocks_list(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    mg_page page;
    if (srv_page_params(q, r, 100, 1, &page) || srv_open_agent(q, r, 0, &agent)) return;
    mg_error err = {0};
    json_t *blocks = agent_blocks(agent, &err);
    mg_agent_free(agent);
    if (!blocks) return srv_reply_status(r, &err);
    json_t *out = srv_page_array(blocks, &page, r);
    if (out) srv_reply_json(r, 200, out);
}

/* Answers with block `label` of the agent whose id is `agent_id`. */
static void reply_block(srv_request *q, srv_reply *r, const char *agent_id, const char *label)
{
    mg_agent *agent;
    mg_error err = {0};
    if (mg_agent_open_id(q->store, agent_id, &agent, &err)) return srv_reply_status(r, &err);
    json_t *blocks = agent_blocks(agent, &err);
    mg_agent_free(agent);
    if (!blocks) return srv_reply_status(r, &err);
    json_t *b = block_by_label(blocks, label);
    if (b)
        srv_reply_json(r, 200, json_incref(b));
    else
        srv_reply_error(r, 404, "the agent has no block labelled '%.64s'", label);
    json_decref(blocks);
}

void srv_agent_block_get(srv_request *q, srv_reply *r)
{
    if (srv_check_id(r, q->params[0], "agent", "agent_id")) return;
    reply_block(q, r, q->params[0], q->params[1]);
}

typedef struct block_patch {
    const char *label;
    const char *value, *description;
    int limit, read_only;
} block_patch;

static mg_status patch_block(mg_store *store, mg_agent *agent, void *p, mg_error *err)
{
    block_patch *bp = p;
    char *text;
    json_t *blocks = srv_json_of(mg_memory_json(agent, &text, err), &text);
    json_t *b = blocks ? block_by_label(blocks, bp->label) : NULL;
    size_t chars = b ? (size_t)json_integer_value(json_object_get(b, "chars")) : 0;
    json_decref(blocks);
    if (!b) {
        err->code = MG_ERR_NOT_FOUND;
        snprintf(err->message, sizeof err->message, "the agent has no block labelled '%.64s'",
                 bp->label);
        return MG_ERR_NOT_FOUND;
    }
    /* A lower limit goes in after a shorter value; a higher one before a
     * longer value. Whether the value fits was checked before. */
    mg_status st = MG_OK;
    int limit_first = bp->limit && (size_t)bp->limit >= chars;
    if (limit_first || !bp->value)
        st = mg_memory_configure(agent, bp->label, bp->limit, bp->description, bp->read_only, err);
    if (!st && bp->value) st = mg_memory_set(agent, bp->label, bp->value, err);
    /* A value over the limit is a field the client got wrong: 422. */
    if (st == MG_ERR_TOO_LARGE) st = err->code = MG_ERR_USAGE;
    if (!st && !limit_first && bp->value)
        st = mg_memory_configure(agent, bp->label, bp->limit, bp->description, bp->read_only, err);
    return st;
}

/* Reads a BlockUpdate body and applies it to `label` of `agent_id`. */
static void update_block(srv_request *q, srv_reply *r, const char *agent_id, const char *label)
{
    json_t *body = srv_body_object(q, r, 0);
    if (!body) return;
    block_patch bp = {.label = label, .read_only = -1};
    const char *new_label = NULL;
    json_t *ro = json_object_get(body, "read_only");
    if (srv_field_string(r, body, "value", 0, &bp.value) ||
        srv_field_string(r, body, "description", 0, &bp.description) ||
        srv_field_string(r, body, "label", 0, &new_label) ||
        srv_field_int(r, body, "limit", 1, INT_MAX, &bp.limit) ||
        (ro && !json_is_null(ro) && srv_field_bool(r, body, "read_only", &bp.read_only)))
        goto done;
    if (new_label && strcmp(new_label, label) != 0) {
        srv_reply_invalid(r, "body", "label", "a block cannot be renamed");
        goto done;
    }
    mg_error err = {0};
    if (srv_runner_call(q->srv->runner, agent_id, patch_block, &bp, &err)) {
        srv_reply_status(r, &err);
        goto done;
    }
    reply_block(q, r, agent_id, label);
done:
    json_decref(body);
}

void srv_agent_block_patch(srv_request *q, srv_reply *r)
{
    if (srv_check_agent(q, r, 0)) return;
    update_block(q, r, q->params[0], q->params[1]);
}

void srv_blocks_list(srv_request *q, srv_reply *r)
{
    mg_page page;
    if (srv_page_params(q, r, 50, 0, &page)) return;
    mg_error err = {0};
    char *text;
    json_t *rows =
        srv_json_of(mg_blocks_page(q->store, srv_query(q, "label"), &page, &text, &err), &text);
    if (!rows) return srv_reply_status(r, &err);
    json_t *out = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(rows, i, b)
    {
        json_t *block = letta_block(b);
        json_object_set(block, "agent_id", json_object_get(b, "agent_id"));
        json_array_append_new(out, block);
    }
    json_decref(rows);
    srv_reply_json(r, 200, out);
}

/* The agent and label of path parameter 0, a block id. */
static int find_block(srv_request *q, srv_reply *r, char **agent_id, char **label)
{
    if (srv_check_id(r, q->params[0], "block", "block_id")) return -1;
    mg_error err = {0};
    if (mg_block_owner(q->store, q->params[0], agent_id, label, &err)) {
        srv_reply_status(r, &err);
        return -1;
    }
    return 0;
}

void srv_block_get(srv_request *q, srv_reply *r)
{
    char *agent_id, *label;
    if (find_block(q, r, &agent_id, &label)) return;
    reply_block(q, r, agent_id, label);
    mg_free(agent_id);
    mg_free(label);
}

void srv_block_patch(srv_request *q, srv_reply *r)
{
    char *agent_id, *label;
    if (find_block(q, r, &agent_id, &label)) return;
    update_block(q, r, agent_id, label);
    mg_free(agent_id);
    mg_free(label);
}

/* -------------------------------------------------------------- archival */

static json_t *passages_of(json_t *rows, const char *embedder)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(rows, i, p) json_array_append_new(out, letta_passage(p, embedder));
    return out;
}

static char *embedder_of(mg_agent *agent)
{
    char *text;
    mg_error err;
    json_t *d = srv_json_of(mg_agent_describe(agent, &text, &err), &text);
    char *e = strdup(d ? json_string_value(json_object_get(d, "embedder")) : "offline");
    json_decref(d);
    return e;
}

void srv_archival_list(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    mg_page page;
    int ascending = 1;
    if (srv_page_params(q, r, 100, 0, &page) || srv_query_bool(q, r, "ascending", 1, &ascending) ||
        srv_open_agent(q, r, 0, &agent))
        return;
    if (!srv_query(q, "order")) page.descending = !ascending;
    mg_error err = {0};
    char *text;
    json_t *rows = srv_json_of(mg_archival_page(agent, &page, &text, &err), &text);
    char *embedder = embedder_of(agent);
    mg_agent_free(agent);
    if (rows)
        srv_reply_json(r, 200, passages_of(rows, embedder));
    else
        srv_reply_status(r, &err);
    json_decref(rows);
    free(embedder);
}

void srv_archival_insert(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    if (srv_open_agent(q, r, 0, &agent)) return;
    json_t *body = srv_body_object(q, r, 0);
    const char *text = NULL, *created = NULL;
    json_t *tags = NULL;
    if (!body || srv_field_string(r, body, "text", 1, &text) ||
        srv_field_strings(r, body, "tags", &tags) ||
        srv_field_string(r, body, "created_at", 0, &created))
        goto done;
    mg_error err = {0};
    int64_t when = 0;
    if (created && mg_parse_time(created, 0, &when, &err)) {
        srv_reply_invalid(r, "body", "created_at", err.message);
        goto done;
    }
    char *tags_json = tags ? json_dumps(tags, JSON_COMPACT) : NULL, *out;
    mg_status st = mg_archival_add(agent, text, tags_json, when, &out, &err);
    free(tags_json);
    json_t *passage = srv_json_of(st, &out);
    if (!passage) {
        srv_reply_status(r, &err);
        goto done;
    }
    char *embedder = embedder_of(agent);
    srv_reply_json(r, 200, json_pack("[o]", letta_passage(passage, embedder)));
    free(embedder);
    json_decref(passage);
done:
    json_decref(body);
    mg_agent_free(agent);
}

/* Adds the results of one search to `out`, skipping passages already in. */
static mg_status search_into(mg_agent *agent, const mg_search *s, json_t *out, json_t *seen,
                             mg_error *err)
{
    char *text;
    json_t *found = srv_json_of(mg_archival_search(agent, s, &text, err), &text);
    if (!found) return err->code ? err->code : MG_ERR_INTERNAL;
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(found, "results"), i, h)
    {
        const char *id = json_string_value(json_object_get(h, "passage_id"));
        if (!id || json_object_get(seen, id)) continue;
        json_object_set_new(seen, id, json_true());
        json_array_append(out, h);
    }
    json_decref(found);
    return MG_OK;
}

static int by_score(const void *a, const void *b)
{
    double x = json_real_value(json_object_get(*(json_t *const *)a, "score"));
    double y = json_real_value(json_object_get(*(json_t *const *)b, "score"));
    return x < y ? 1 : x > y ? -1 : 0;
}

/* start_datetime and end_datetime (a bare end date includes its day) into
 * the search's bounds. 0, or -1 with 422 in `r`. */
static int read_dates(const srv_request *q, srv_reply *r, mg_search *s)
{
    mg_error err = {0};
    const char *names[2] = {"start_datetime", "end_datetime"};
    int64_t *bounds[2] = {&s->from_ms, &s->to_ms};
    for (int i = 0; i < 2; i++) {
        const char *date = srv_query(q, names[i]);
        if (date && mg_parse_time(date, i, bounds[i], &err)) {
            srv_reply_invalid(r, "query", names[i], err.message);
            return -1;
        }
    }
    return 0;
}

void srv_archival_search(srv_request *q, srv_reply *r)
{
    const char *query = srv_query(q, "query");
    const char *mode = srv_query(q, "tag_match_mode");
    const char *tags[MG_SEARCH_MAX_TAGS];
    int ntags = srv_query_all(q, "tags", tags, MG_SEARCH_MAX_TAGS);
    mg_search s = {.query = query};
    if (!query) return srv_reply_invalid(r, "query", "query", "field required");
    if (mode && strcmp(mode, "any") != 0 && strcmp(mode, "all") != 0)
        return srv_reply_invalid(r, "query", "tag_match_mode", "must be 'any' or 'all'");
    if (read_dates(q, r, &s)) return;
    mg_error err = {0};
    mg_agent *agent;
    if (srv_query_int(q, r, "top_k", 10, 1, MAX_TOP_K, &s.limit) || srv_open_agent(q, r, 0, &agent))
        return;
    json_t *hits = json_array(), *seen = json_object();
    mg_status st = MG_OK;
    if (ntags <= 1 || (mode && strcmp(mode, "all") == 0)) {
        s.tags = tags;
        s.ntags = ntags;
        st = search_into(agent, &s, hits, seen, &err);
    } else {
        /* Any of several tags: one search per tag, merged by score. */
        for (int i = 0; i < ntags && !st; i++) {
            s.tags = &tags[i];
            s.ntags = 1;
            st = search_into(agent, &s, hits, seen, &err);
        }
    }
    mg_agent_free(agent);
    json_decref(seen);
    if (st) {
        json_decref(hits);
        return srv_reply_status(r, &err);
    }
    size_t n = json_array_size(hits);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(hits, i);
    qsort(sorted, n, sizeof *sorted, by_score);
    json_t *results = json_array();
    for (size_t i = 0; i < n && i < (size_t)s.limit; i++)
        json_array_append_new(results, json_pack("{s:O, s:O, s:O, s:O}", "id",
                                                 json_object_get(sorted[i], "passage_id"),
                                                 "timestamp", json_object_get(sorted[i], "time"),
                                                 "content", json_object_get(sorted[i], "text"),
                                                 "tags", json_object_get(sorted[i], "tags")));
    free(sorted);
    json_decref(hits);
    srv_reply_json(
        r, 200,
        json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(results), "results", results));
}

void srv_archival_delete(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    if (srv_open_agent(q, r, 0, &agent)) return;
    mg_error err = {0};
    if (mg_archival_delete(agent, q->params[1], &err))
        srv_reply_status(r, &err);
    else
        srv_reply_json(r, 200, json_object());
    mg_agent_free(agent);
}

/* ------------------------------------------------------ recall search */

/* GET /v1/agents/{id}/messages/search (memgpt's own; Letta has none for
 * one agent): recall memory by words (BM25) and dates, what was said or,
 * with include_all, the monologue, calls, results and events too. */
void srv_recall_search(srv_request *q, srv_reply *r)
{
    mg_search s = {.query = srv_query(q, "query")};
    mg_agent *agent;
    if (read_dates(q, r, &s) || srv_query_bool(q, r, "include_all", 0, &s.include_all) ||
        srv_query_int(q, r, "limit", 20, 1, MAX_TOP_K, &s.limit) ||
        srv_query_int(q, r, "page", 0, 0, 100000, &s.page) || srv_open_agent(q, r, 0, &agent))
        return;
    mg_error err = {0};
    char *text;
    json_t *found = srv_json_of(mg_recall_search(agent, &s, &text, &err), &text);
    mg_agent_free(agent);
    if (!found) return srv_reply_status(r, &err);
    json_t *results = json_array();
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(found, "results"), i, hit)
    {
        json_t *out = json_pack("{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(hit, "message_id"),
                                "date", json_object_get(hit, "time"), "role",
                                json_object_get(hit, "role"), "kind", json_object_get(hit, "kind"),
                                "text", json_object_get(hit, "text"));
        const char *extra[2] = {"inner", "score"};
        for (int k = 0; k < 2; k++)
            if (json_object_get(hit, extra[k]))
                json_object_set(out, extra[k], json_object_get(hit, extra[k]));
        json_array_append_new(results, out);
    }
    json_object_set_new(found, "results", results);
    srv_reply_json(r, 200, found);
}
