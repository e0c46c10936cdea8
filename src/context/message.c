/*
 * message.c - message lists and the storage form of tool calls.
 */
#include "context/message.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static const char *const role_names[] = {"user", "assistant", "tool"};

const char *mg_role_name(mg_role role)
{
    return role_names[role];
}

int mg_role_parse(const char *name, mg_role *out)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, role_names[i]) == 0) {
            *out = (mg_role)i;
            return 1;
        }
    return 0;
}

void mg_tool_calls_free(mg_tool_call *calls, int n)
{
    for (int i = 0; i < n; i++) {
        free(calls[i].id);
        free(calls[i].name);
        free(calls[i].arguments);
    }
    free(calls);
}

void mg_msg_clear(mg_msg *m)
{
    free(m->kind);
    free(m->content);
    mg_tool_calls_free(m->calls, m->ncalls);
    free(m->tool_call_id);
    free(m->tool_name);
    free(m->raw_content);
    free(m->wire);
    memset(m, 0, sizeof *m);
}

void mg_msg_changed(mg_msg *m)
{
    m->tokens = -1; /* counted again on first need (context.c) */
    free(m->wire);
    m->wire = NULL;
    m->wire_len = 0;
    m->wire_format = 0;
}

mg_msg *mg_msg_list_push(mg_msg_list *list, mg_msg m)
{
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->items = mg_xrealloc(list->items, (size_t)list->cap * sizeof *list->items);
    }
    list->items[list->count] = m;
    return &list->items[list->count++];
}

void mg_msg_list_pop(mg_msg_list *list, int n)
{
    while (n-- > 0 && list->count > 0)
        mg_msg_clear(&list->items[--list->count]);
}

void mg_msg_list_drop_front(mg_msg_list *list, int n)
{
    if (n > list->count) n = list->count;
    for (int i = 0; i < n; i++)
        mg_msg_clear(&list->items[i]);
    memmove(list->items, list->items + n, (size_t)(list->count - n) * sizeof *list->items);
    list->count -= n;
}

void mg_msg_list_free(mg_msg_list *list)
{
    mg_msg_list_pop(list, list->count);
    free(list->items);
    memset(list, 0, sizeof *list);
}

char *mg_tool_calls_to_json(const mg_tool_call *calls, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "id", calls[i].id, "name",
                                             calls[i].name, "arguments", calls[i].arguments));
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

int mg_tool_calls_from_json(const char *json, mg_tool_call **calls, int *n)
{
    *calls = NULL;
    *n = 0;
    json_t *arr = json_loads(json, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return 0;
    }
    size_t count = json_array_size(arr);
    mg_tool_call *out = mg_xcalloc(count ? count : 1, sizeof *out);
    for (size_t i = 0; i < count; i++) {
        const char *id = NULL, *name = NULL, *args = NULL;
        if (json_unpack(json_array_get(arr, i), "{s:s, s:s, s:s}", "id", &id, "name", &name,
                        "arguments", &args) != 0) {
            mg_tool_calls_free(out, (int)i);
            json_decref(arr);
            return 0;
        }
        out[i].id = mg_xstrdup(id);
        out[i].name = mg_xstrdup(name);
        out[i].arguments = mg_xstrdup(args);
    }
    json_decref(arr);
    *calls = out;
    *n = (int)count;
    return 1;
}
