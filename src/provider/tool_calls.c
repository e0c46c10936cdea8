/*
 * tool_calls.c - the shared chat-completions tool-call parser (see the header).
 */
#include "provider/tool_calls.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timeutil.h"

#define MAX_CALL_ID_LEN 64

char *mg_tool_call_fresh_id(void)
{
    /* The one piece of process state: ids must differ even within one ms. */
    static atomic_ulong counter;
    unsigned long n = atomic_fetch_add(&counter, 1) + 1;
    buf b = BUF_INIT;
    buf_printf(&b, "call_%llx_%lx_%lu", (unsigned long long)mg_now_ms(), (unsigned long)getpid(),
               n);
    return buf_take(&b);
}

const char *mg_tool_call_sane_id(json_t *id)
{
    const char *s = json_string_value(id);
    size_t n = s ? json_string_length(id) : 0;
    int ok = n > 0 && n <= MAX_CALL_ID_LEN;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] > ' ' && s[i] < 0x7f;
    return ok ? s : NULL;
}

/* The server's id if sane and not already used in this reply. */
static char *call_id(json_t *id, const mg_llm_reply *reply)
{
    const char *s = mg_tool_call_sane_id(id);
    for (int i = 0; s && i < reply->ncalls; i++)
        if (strcmp(reply->calls[i].id, s) == 0) s = NULL;
    return s ? mg_xstrdup(s) : mg_tool_call_fresh_id();
}

static char *string_copy(json_t *v)
{
    return mg_utf8_repair(json_string_value(v), json_string_length(v));
}

char *mg_tool_call_arguments(json_t *args)
{
    if (!args || json_is_null(args)) return mg_xstrdup("{}");
    if (json_is_string(args)) return string_copy(args);
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    return text ? text : mg_xstrdup("{}");
}

mg_status mg_tool_calls_parse(json_t *calls, mg_llm_reply *reply, mg_error *err)
{
    if (!calls || json_is_null(calls)) return MG_OK;
    if (!json_is_array(calls))
        return mg_err_set(err, MG_ERR_PROVIDER,
                          "unexpected response shape: tool_calls is not a list");
    size_t n = json_array_size(calls);
    reply->calls =
        mg_xrealloc(reply->calls, (size_t)(reply->ncalls + n + 1) * sizeof *reply->calls);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(calls, i);
        json_t *fn = json_object_get(c, "function");
        json_t *name = json_object_get(fn, "name");
        if (!json_is_string(name) || json_string_length(name) == 0)
            return mg_err_set(err, MG_ERR_PROVIDER,
                              "unexpected response shape: tool call %zu has no function name", i);
        mg_tool_call tc = {.name = string_copy(name),
                           .arguments = mg_tool_call_arguments(json_object_get(fn, "arguments")),
                           .id = call_id(json_object_get(c, "id"), reply)};
        reply->calls[reply->ncalls++] = tc;
    }
    return MG_OK;
}

int mg_usage_count(json_t *usage, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(usage, key));
    return v < 0 ? 0 : v > 100000000 ? 100000000 : (int)v;
}
