/*
 * core_memory.c - editing and rendering core memory blocks.
 *
 * Every edit follows the same path: compute the new value, check it with
 * check_edit (exists, writable, within the limit), write it to the database,
 * and only then replace the in-memory copy. If the write fails nothing in
 * memory has changed, so the caller's rollback leaves both sides equal.
 */
#include "memory/core_memory.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"
#include "util/uuid.h"

mg_status core_memory_load(mg_store *store, int64_t agent_id, mg_core_memory *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    out->store = store;
    out->agent_id = agent_id;
    sqlite3_stmt *stmt;
    mg_status st =
        store_prepare(store,
                      "SELECT label, value, description, char_limit, read_only, uuid FROM blocks "
                      "WHERE agent_id = ? ORDER BY position, label",
                      &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        out->blocks = mg_xrealloc(out->blocks, (size_t)(out->count + 1) * sizeof *out->blocks);
        mg_block *b = &out->blocks[out->count++];
        b->label = store_column_strdup(stmt, 0);
        b->value = store_column_strdup(stmt, 1);
        b->description = store_column_strdup(stmt, 2);
        b->limit = sqlite3_column_int(stmt, 3);
        b->read_only = sqlite3_column_int(stmt, 4);
        const char *uuid = (const char *)sqlite3_column_text(stmt, 5);
        snprintf(b->uuid, sizeof b->uuid, "%s", uuid ? uuid : "");
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return store_fail(store, err, "loading core memory");
    return MG_OK;
}

void core_memory_free(mg_core_memory *cm)
{
    for (int i = 0; i < cm->count; i++) {
        free(cm->blocks[i].label);
        free(cm->blocks[i].value);
        free(cm->blocks[i].description);
    }
    free(cm->blocks);
    cm->blocks = NULL;
    cm->count = 0;
}

mg_status core_memory_add(mg_store *store, int64_t agent_id, const char *label, const char *value,
                          const char *description, int limit, int read_only, int position,
                          char uuid_out[MG_UUID_SIZE], mg_error *err)
{
    sqlite3_stmt *stmt;
    mg_status st =
        store_prepare(store,
                      "INSERT INTO blocks(agent_id, label, value, description, "
                      "char_limit, read_only, position, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      &stmt, err);
    if (st) return st;
    sqlite3_bind_int64(stmt, 1, agent_id);
    store_bind_text(stmt, 2, label);
    store_bind_text(stmt, 3, value);
    store_bind_text(stmt, 4, description);
    sqlite3_bind_int(stmt, 5, limit);
    sqlite3_bind_int(stmt, 6, read_only);
    sqlite3_bind_int(stmt, 7, position);
    char uuid[MG_UUID_SIZE];
    mg_uuid_new(uuid);
    store_bind_text(stmt, 8, uuid);
    st = store_step_done(store, stmt, err);
    if (!st && uuid_out) memcpy(uuid_out, uuid, MG_UUID_SIZE);
    sqlite3_finalize(stmt);
    return st;
}

mg_block *core_memory_find(mg_core_memory *cm, const char *label)
{
    for (int i = 0; i < cm->count; i++)
        if (label && strcmp(cm->blocks[i].label, label) == 0) return &cm->blocks[i];
    return NULL;
}

static mg_status unknown_label(const mg_core_memory *cm, const char *label, mg_error *err)
{
    buf names = BUF_INIT;
    for (int i = 0; i < cm->count; i++)
        buf_printf(&names, "%s%s", i ? ", " : "", cm->blocks[i].label);
    mg_err_set(err, MG_ERR_NOT_FOUND,
               "there is no core memory block labelled '%.64s'; the blocks are: %s",
               label ? label : "", buf_str(&names));
    buf_free(&names);
    return MG_ERR_NOT_FOUND;
}

static mg_status check_edit(const mg_block *b, const char *new_value, int by_user, mg_error *err)
{
    if (b->read_only && !by_user)
        return mg_err_set(err, MG_ERR_USAGE, "core memory block '%s' is read-only", b->label);
    size_t chars = mg_utf8_chars(new_value);
    if (chars > (size_t)b->limit)
        return mg_err_set(err, MG_ERR_TOO_LARGE,
                          "the edit would make block '%s' %zu characters long, over its limit of "
                          "%d; shorten it, or move details to archival memory",
                          b->label, chars, b->limit);
    return MG_OK;
}

/* Writes the new value and, on success, takes ownership of it. */
static mg_status commit_value(mg_core_memory *cm, mg_block *b, char *new_value, mg_error *err)
{
    int64_t now = 0;
    sqlite3_stmt *stmt;
    mg_status st = store_prepare(
        cm->store, "UPDATE blocks SET value = ? WHERE agent_id = ? AND label = ?", &stmt, err);
    if (!st) {
        store_bind_text(stmt, 1, new_value);
        sqlite3_bind_int64(stmt, 2, cm->agent_id);
        store_bind_text(stmt, 3, b->label);
        st = store_step_done(cm->store, stmt, err);
        sqlite3_finalize(stmt);
    }
    if (!st) {
        sqlite3_stmt *touch;
        st = store_prepare(cm->store, "UPDATE agents SET memory_updated_at = ? WHERE id = ?",
                           &touch, err);
        if (!st) {
            now = mg_now_ms();
            sqlite3_bind_int64(touch, 1, now);
            sqlite3_bind_int64(touch, 2, cm->agent_id);
            st = store_step_done(cm->store, touch, err);
            sqlite3_finalize(touch);
        }
    }
    if (st) {
        free(new_value);
        return st;
    }
    free(b->value);
    b->value = new_value;
    cm->updated_at = now;
    return MG_OK;
}

mg_status core_memory_append(mg_core_memory *cm, const char *label, const char *content,
                             mg_error *err)
{
    mg_block *b = core_memory_find(cm, label);
    if (!b) return unknown_label(cm, label, err);
    if (mg_text_blank(content))
        return mg_err_set(err, MG_ERR_USAGE, "content is empty; nothing to append");
    buf v = BUF_INIT;
    buf_puts(&v, b->value);
    if (v.len && v.data[v.len - 1] != '\n') buf_putc(&v, '\n');
    buf_puts(&v, content);
    mg_status st = check_edit(b, buf_str(&v), 0, err);
    if (st) {
        buf_free(&v);
        return st;
    }
    return commit_value(cm, b, buf_take(&v), err);
}

mg_status core_memory_replace(mg_core_memory *cm, const char *label, const char *old_content,
                              const char *new_content, int *replaced, mg_error *err)
{
    *replaced = 0;
    mg_block *b = core_memory_find(cm, label);
    if (!b) return unknown_label(cm, label, err);
    if (!old_content || !*old_content)
        return mg_err_set(err, MG_ERR_USAGE, "old_content is empty; say which text to replace");
    size_t old_len = strlen(old_content);
    buf v = BUF_INIT;
    const char *p = b->value, *hit;
    while ((hit = strstr(p, old_content))) {
        buf_append(&v, p, (size_t)(hit - p));
        buf_puts(&v, new_content ? new_content : "");
        p = hit + old_len;
        (*replaced)++;
    }
    if (*replaced == 0) {
        buf_free(&v);
        return mg_err_set(err, MG_ERR_NOT_FOUND,
                          "old_content was not found in block '%s'; it must match the block's "
                          "text exactly",
                          b->label);
    }
    buf_puts(&v, p);
    mg_status st = check_edit(b, buf_str(&v), 0, err);
    if (st) {
        buf_free(&v);
        return st;
    }
    return commit_value(cm, b, buf_take(&v), err);
}

/* Checks an edit by the agent and commits it (taking `v`'s text). */
static mg_status commit_edit(mg_core_memory *cm, mg_block *b, buf *v, mg_error *err)
{
    mg_status st = check_edit(b, buf_str(v), 0, err);
    if (st) {
        buf_free(v);
        return st;
    }
    return commit_value(cm, b, buf_take(v), err);
}

mg_status core_memory_insert(mg_core_memory *cm, const char *label, const char *text,
                             int after_line, mg_error *err)
{
    mg_block *b = core_memory_find(cm, label);
    if (!b) return unknown_label(cm, label, err);
    if (mg_text_blank(text)) return mg_err_set(err, MG_ERR_USAGE, "new_str is empty");
    int lines = *b->value ? 1 : 0;
    for (const char *p = b->value; *p; p++)
        lines += *p == '\n' && p[1];
    if (after_line < -1 || after_line > lines)
        return mg_err_set(err, MG_ERR_USAGE,
                          "insert_line %d is outside block '%s', which has %d lines; use 0 to "
                          "%d, or -1 for the end",
                          after_line, b->label, lines, lines);
    if (after_line == -1) after_line = lines;
    /* The byte offset where line after_line + 1 starts. */
    const char *at = b->value;
    for (int n = 0; n < after_line && *at; n++) {
        const char *nl = strchr(at, '\n');
        at = nl ? nl + 1 : at + strlen(at);
    }
    buf v = BUF_INIT;
    buf_append(&v, b->value, (size_t)(at - b->value));
    if (v.len && v.data[v.len - 1] != '\n') buf_putc(&v, '\n');
    buf_puts(&v, text);
    if (*at) {
        if (text[strlen(text) - 1] != '\n') buf_putc(&v, '\n');
        buf_puts(&v, at);
    }
    return commit_edit(cm, b, &v, err);
}

mg_status core_memory_rethink(mg_core_memory *cm, const char *label, const char *value,
                              mg_error *err)
{
    mg_block *b = core_memory_find(cm, label);
    if (!b) return unknown_label(cm, label, err);
    buf v = BUF_INIT;
    buf_puts(&v, value);
    return commit_edit(cm, b, &v, err);
}

/* The block, created empty with room for `chars` characters if missing. */
static mg_status find_or_create(mg_core_memory *cm, const char *label, size_t chars, mg_block **out,
                                mg_error *err)
{
    *out = core_memory_find(cm, label);
    if (*out) return MG_OK;
    int limit = chars > MG_BLOCK_DEFAULT_LIMIT ? (int)chars : MG_BLOCK_DEFAULT_LIMIT;
    char uuid[MG_UUID_SIZE];
    mg_status st =
        core_memory_add(cm->store, cm->agent_id, label, "", NULL, limit, 0, cm->count, uuid, err);
    if (st) return st;
    cm->blocks = mg_xrealloc(cm->blocks, (size_t)(cm->count + 1) * sizeof *cm->blocks);
    mg_block *b = &cm->blocks[cm->count++];
    *b = (mg_block){mg_xstrdup(label), mg_xstrdup(""), NULL, limit, 0, ""};
    memcpy(b->uuid, uuid, sizeof uuid);
    *out = b;
    return MG_OK;
}

mg_status core_memory_configure(mg_core_memory *cm, const char *label, int limit,
                                const char *description, int read_only, mg_error *err)
{
    mg_block *b;
    mg_status st = find_or_create(cm, label, 0, &b, err);
    if (st) return st;
    int new_limit = limit > 0 ? limit : b->limit;
    size_t chars = mg_utf8_chars(b->value);
    if ((size_t)new_limit < chars)
        return mg_err_set(err, MG_ERR_TOO_LARGE,
                          "block '%s' holds %zu characters; a limit of %d would not fit them",
                          b->label, chars, new_limit);
    int new_read_only = read_only >= 0 ? !!read_only : b->read_only;
    const char *new_description = description ? description : b->description;
    sqlite3_stmt *stmt;
    if ((st = store_prepare(cm->store,
                            "UPDATE blocks SET char_limit = ?, description = ?, read_only = ? "
                            "WHERE agent_id = ? AND label = ?",
                            &stmt, err)))
        return st;
    sqlite3_bind_int(stmt, 1, new_limit);
    store_bind_text(stmt, 2, new_description && *new_description ? new_description : NULL);
    sqlite3_bind_int(stmt, 3, new_read_only);
    sqlite3_bind_int64(stmt, 4, cm->agent_id);
    store_bind_text(stmt, 5, b->label);
    st = store_step_done(cm->store, stmt, err);
    sqlite3_finalize(stmt);
    if (st) return st;
    char *desc = new_description && *new_description ? mg_xstrdup(new_description) : NULL;
    free(b->description);
    b->description = desc;
    b->limit = new_limit;
    b->read_only = new_read_only;
    return MG_OK;
}

mg_status core_memory_set(mg_core_memory *cm, const char *label, const char *value, mg_error *err)
{
    mg_block *b;
    mg_status st = find_or_create(cm, label, mg_utf8_chars(value), &b, err);
    if (st) return st;
    st = check_edit(b, value, 1, err);
    if (st) return st;
    return commit_value(cm, b, mg_xstrdup(value), err);
}

void core_memory_render(const mg_core_memory *cm, buf *out)
{
    for (int i = 0; i < cm->count; i++) {
        const mg_block *b = &cm->blocks[i];
        buf_printf(out, "<block label=\"%s\" chars=\"%zu/%d\"%s>\n", b->label,
                   mg_utf8_chars(b->value), b->limit, b->read_only ? " read_only=\"true\"" : "");
        if (b->description && *b->description)
            buf_printf(out, "<description>%s</description>\n", b->description);
        buf_printf(out, "<value>\n%s\n</value>\n</block>\n", b->value);
    }
}

char *core_memory_json(const mg_core_memory *cm)
{
    json_t *arr = json_array();
    for (int i = 0; i < cm->count; i++) {
        const mg_block *b = &cm->blocks[i];
        json_array_append_new(
            arr, json_pack("{s:s+, s:s, s:s, s:i, s:I, s:o, s:b}", "id", "block-", b->uuid, "label",
                           b->label, "value", b->value, "limit", b->limit, "chars",
                           (json_int_t)mg_utf8_chars(b->value), "description",
                           b->description ? json_string(b->description) : json_null(), "read_only",
                           b->read_only));
    }
    char *s = json_dumps(arr, JSON_INDENT(2));
    json_decref(arr);
    return s;
}
