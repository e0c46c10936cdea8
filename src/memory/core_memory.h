/*
 * core_memory.h - the labelled blocks the agent always sees.
 *
 * Core memory is small and always in the context window, so every edit is
 * checked against the block's character limit (counted in Unicode code
 * points, the unit the model is told) before anything changes. Edits write
 * through to the blocks table; callers wrap them in the step's transaction.
 *
 * Invariant: for every block, mg_utf8_chars(value) <= limit, and a read-only
 * block is never changed by the agent (the user may change it).
 */
#ifndef MG_MEMORY_CORE_MEMORY_H
#define MG_MEMORY_CORE_MEMORY_H

#include <stdint.h>

#include "memgpt.h"
#include "util/uuid.h"
#include "util/buf.h"

typedef struct mg_block {
    char *label;
    char *value;
    char *description; /* may be NULL */
    int limit;         /* characters */
    int read_only;
    char uuid[MG_UUID_SIZE]; /* public id: "block-" + uuid */
} mg_block;

typedef struct mg_core_memory {
    mg_store *store;
    int64_t agent_id;
    mg_block *blocks;
    int count;
    int64_t updated_at; /* last edit, epoch ms (kept in agents.memory_updated_at) */
} mg_core_memory;

#define MG_BLOCK_DEFAULT_LIMIT 2000

/* Loads the blocks of an agent, in position order. Free with core_memory_free. */
mg_status core_memory_load(mg_store *store, int64_t agent_id, mg_core_memory *out, mg_error *err);
void core_memory_free(mg_core_memory *cm);

/* Inserts a new block row with a new id, copied to uuid_out (may be NULL). */
mg_status core_memory_add(mg_store *store, int64_t agent_id, const char *label, const char *value,
                          const char *description, int limit, int read_only, int position,
                          char uuid_out[MG_UUID_SIZE], mg_error *err);

mg_block *core_memory_find(mg_core_memory *cm, const char *label);

/* The agent's edits. Errors are written for the model to read and act on. */
mg_status core_memory_append(mg_core_memory *cm, const char *label, const char *content,
                             mg_error *err);
/* Replaces every occurrence of old_content; an empty new_content deletes. */
mg_status core_memory_replace(mg_core_memory *cm, const char *label, const char *old_content,
                              const char *new_content, int *replaced, mg_error *err);

/* Inserts `text` as new lines after line `after_line` (1-based; 0: at the
 * top; -1: at the end). */
mg_status core_memory_insert(mg_core_memory *cm, const char *label, const char *text,
                             int after_line, mg_error *err);

/* Rewrites the whole block (the agent's memory_rethink). */
mg_status core_memory_rethink(mg_core_memory *cm, const char *label, const char *value,
                              mg_error *err);

/* The user's edit: sets the value, creating the block if it does not exist.
 * Ignores read-only, still enforces the limit. */
mg_status core_memory_set(mg_core_memory *cm, const char *label, const char *value, mg_error *err);

/* The user's change of a block's settings (see mg_memory_configure). */
mg_status core_memory_configure(mg_core_memory *cm, const char *label, int limit,
                                const char *description, int read_only, mg_error *err);

/* Appends the rendering the model sees to `out`. */
void core_memory_render(const mg_core_memory *cm, buf *out);

/* JSON array of blocks; caller frees. */
char *core_memory_json(const mg_core_memory *cm);

#endif
