/*
 * agentfile.c - Agent Files over HTTP: GET (or POST)
 * /v1/agents/{id}/export answers with the document; POST /v1/agents/import
 * takes one as the multipart field `file` (as Letta's SDK uploads it), or
 * as a plain JSON body, and answers {"agent_ids": [...]}. The conversion
 * itself is the library's (mg_agent_export, mg_agent_import).
 */
#include <stdlib.h>
#include <string.h>

#include "server/mhd.h"
#include "server/handlers.h"

void srv_agent_export(srv_request *q, srv_reply *r)
{
    mg_agent *agent;
    if (srv_open_agent(q, r, 0, &agent)) return;
    mg_error err = {0};
    char *text;
    json_t *doc = srv_json_of(mg_agent_export(agent, &text, &err), &text);
    mg_agent_free(agent);
    if (doc)
        srv_reply_json(r, 200, doc);
    else
        srv_reply_status(r, &err);
}

/* The fields of an import form. */
typedef struct import_form {
    char *file;
    size_t len, cap;
    int has_file;
    char name[128], model[256], embedding[256];
    int too_long;
} import_form;

static void set_field(char *dst, size_t size, const char *data, uint64_t off, size_t n, int *bad)
{
    if (off + n >= size) {
        *bad = 1;
        return;
    }
    memcpy(dst + off, data, n);
    dst[off + n] = '\0';
}

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    import_form *f = cls;
    if (!key) return MHD_YES;
    if (strcmp(key, "file") == 0) {
        f->has_file = 1;
        if (f->len + size + 1 > f->cap) {
            f->cap = (f->len + size + 1) * 2;
            f->file = realloc(f->file, f->cap);
        }
        memcpy(f->file + f->len, data, size);
        f->len += size;
        f->file[f->len] = '\0';
    } else if (strcmp(key, "name") == 0 || strcmp(key, "override_name") == 0) {
        set_field(f->name, sizeof f->name, data, off, size, &f->too_long);
    } else if (strcmp(key, "model") == 0 || strcmp(key, "override_model_handle") == 0) {
        set_field(f->model, sizeof f->model, data, off, size, &f->too_long);
    } else if (strcmp(key, "embedding") == 0 || strcmp(key, "override_embedding_handle") == 0) {
        set_field(f->embedding, sizeof f->embedding, data, off, size, &f->too_long);
    }
    return MHD_YES;
}

void srv_agents_import(srv_request *q, srv_reply *r)
{
    import_form f = {0};
    const char *type = srv_header(q, "Content-Type");
    if (type && strncmp(type, "application/json", 16) == 0) {
        f.file = malloc(q->body_len + 1);
        memcpy(f.file, q->body, q->body_len);
        f.file[q->body_len] = '\0';
        f.len = q->body_len;
        f.has_file = 1;
    } else {
        struct MHD_PostProcessor *pp =
            srv_mhd.create_post_processor(q->conn, 64 * 1024, form_field, &f);
        if (!pp) {
            srv_reply_invalid(r, "body", "file",
                              "send the Agent File as multipart/form-data field 'file' (or as "
                              "an application/json body)");
            return;
        }
        if (srv_mhd.post_process(pp, q->body, q->body_len) != MHD_YES) f.has_file = 0;
        srv_mhd.destroy_post_processor(pp);
    }
    if (!f.has_file || f.too_long) {
        srv_reply_invalid(r, "body", f.too_long ? "name" : "file",
                          f.too_long ? "a form field is too long" : "field required");
        free(f.file);
        return;
    }
    mg_import_options opt = {.name = f.name[0] ? f.name : NULL,
                             .model = f.model[0] ? f.model : NULL};
    const char *embedding =
        f.embedding[0] ? f.embedding : srv_header(q, "x-override-embedding-model");
    if (embedding) opt.embedder = strcmp(embedding, "memgpt/offline") == 0 ? "offline" : embedding;
    mg_error err = {0};
    char *text;
    json_t *report =
        srv_json_of(mg_agent_import(q->store, f.file, f.len, &opt, &text, &err), &text);
    free(f.file);
    if (!report) return srv_reply_status(r, &err);
    json_t *ids = json_array(), *agents = json_object_get(report, "agents");
    size_t i;
    json_t *a;
    json_array_foreach(agents, i, a) json_array_append(ids, json_object_get(a, "id"));
    srv_reply_json(r, 200, json_pack("{s:o, s:O}", "agent_ids", ids, "agents", agents));
    json_decref(report);
}
