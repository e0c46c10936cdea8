/*
 * rules.c - tool rules within a turn (see rules.h).
 *
 * The allowed set for the next step is computed from scratch each time:
 * every tool offered, narrowed by each rule that speaks about this moment
 * (the turn's first step, the last tool called, the counts so far). Sets
 * are JSON objects used as sets of names, which keeps the code short; they
 * hold a few dozen names at most.
 */
#include "tools/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"

static const char *const known_types[] = {"run_first",          "constrain_child_tools",
                                          "conditional",        "parent_last_tool",
                                          "max_count_per_step", "continue_loop",
                                          "exit_loop",          "required_before_exit",
                                          "requires_approval",  NULL};

static const char *type_of(const json_t *rule)
{
    return json_string_value(json_object_get(rule, "type"));
}

static const char *tool_of(const json_t *rule)
{
    return json_string_value(json_object_get(rule, "tool_name"));
}

static int is_type(const json_t *rule, const char *type)
{
    const char *t = type_of(rule);
    return t && strcmp(t, type) == 0;
}

static int strings(const json_t *v)
{
    if (!json_is_array(v)) return 0;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) if (!json_is_string(s)) return 0;
    return 1;
}

/* What is wrong with rule `r` (number i), or MG_OK. */
static mg_status rule_problem(const json_t *r, size_t i, mg_error *err)
{
    const char *type = type_of(r), *tool = tool_of(r);
    int known = 0;
    for (int k = 0; type && known_types[k]; k++)
        known |= strcmp(type, known_types[k]) == 0;
    if (!json_is_object(r) || !tool || !*tool)
        return mg_err_set(err, MG_ERR_USAGE, "tool rule %zu needs a tool_name", i);
    if (!known)
        return mg_err_set(err, MG_ERR_USAGE, "tool rule %zu: unknown type '%.40s'", i,
                          type ? type : "(none)");
    if ((is_type(r, "constrain_child_tools") || is_type(r, "parent_last_tool")) &&
        !strings(json_object_get(r, "children")))
        return mg_err_set(err, MG_ERR_USAGE, "tool rule %zu (%s): children must be names", i, type);
    if (is_type(r, "max_count_per_step") &&
        !(json_integer_value(json_object_get(r, "max_count_limit")) >= 1))
        return mg_err_set(err, MG_ERR_USAGE,
                          "tool rule %zu (max_count_per_step): max_count_limit must be >= 1", i);
    if (is_type(r, "conditional")) {
        json_t *map = json_object_get(r, "child_output_mapping");
        json_t *dflt = json_object_get(r, "default_child");
        const char *k;
        json_t *v;
        int ok =
            (!map || json_is_object(map)) && (!dflt || json_is_null(dflt) || json_is_string(dflt));
        json_object_foreach(map, k, v) ok &= json_is_string(v);
        if (!ok)
            return mg_err_set(err, MG_ERR_USAGE,
                              "tool rule %zu (conditional): child_output_mapping maps outputs to "
                              "tool names, default_child is a name",
                              i);
    }
    return MG_OK;
}

mg_status rules_check(const char *json, mg_error *err)
{
    json_error_t jerr;
    json_t *rules = json_loads(json ? json : "", JSON_REJECT_DUPLICATES, &jerr);
    mg_status st = MG_OK;
    if (!json_is_array(rules))
        st = mg_err_set(err, MG_ERR_USAGE, "tool rules must be a JSON array (%s)",
                        rules ? "not an array" : jerr.text);
    size_t i;
    json_t *r;
    json_array_foreach(rules, i, r) if (!st) st = rule_problem(r, i, err);
    json_decref(rules);
    return st;
}

void rules_turn_begin(rules_turn *r, const char *json)
{
    memset(r, 0, sizeof *r);
    /* Rules an Agent File brought that we cannot read are left out one by
     * one; the others still hold. */
    json_t *all = json ? json_loads(json, 0, NULL) : NULL;
    r->rules = json_array();
    size_t i;
    json_t *rule;
    json_array_foreach(all, i, rule) if (rule_problem(rule, i, NULL) == MG_OK)
        json_array_append(r->rules, rule);
    json_decref(all);
    r->counts = json_object();
}

void rules_turn_end(rules_turn *r)
{
    json_decref(r->rules);
    json_decref(r->counts);
    free(r->last);
    free(r->last_output);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------ the allowed set */

static void keep_only(json_t *set, json_t *names)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(set, tmp, k, v)
    {
        int listed = 0;
        size_t i;
        json_t *n;
        json_array_foreach(names, i, n) listed |= strcmp(json_string_value(n), k) == 0;
        if (!listed) json_object_del(set, k);
    }
}

/* The conditional rule's choice after output `out`: a name, or NULL. */
static const char *conditional_child(const json_t *rule, const char *out)
{
    const char *key;
    json_t *v;
    size_t n = out ? strlen(out) : 0;
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\n'))
        n--;
    json_object_foreach(json_object_get(rule, "child_output_mapping"), key,
                        v) if (out && strlen(key) == n &&
                               strncmp(key, out, n) == 0) return json_string_value(v);
    return json_string_value(json_object_get(rule, "default_child"));
}

/* The names that may be called next (a new object used as a set), or NULL
 * when the rules leave every tool open. */
static json_t *allowed_set(const rules_turn *r, const json_t *all)
{
    json_t *set = json_object();
    size_t i;
    json_t *s, *rule;
    json_array_foreach(all, i, s)
        json_object_set_new(set, json_string_value(json_object_get(s, "name")), json_true());
    size_t before = json_object_size(set);
    json_t *first = json_array();
    json_array_foreach(r->rules, i, rule)
    {
        const char *tool = tool_of(rule);
        if (r->steps == 0 && is_type(rule, "run_first"))
            json_array_append_new(first, json_string(tool));
        if (r->last && strcmp(tool, r->last) == 0) {
            if (is_type(rule, "constrain_child_tools"))
                keep_only(set, json_object_get(rule, "children"));
            if (is_type(rule, "conditional")) {
                const char *child = conditional_child(rule, r->last_output);
                json_t *one = json_pack("[s]", child ? child : "");
                if (child) keep_only(set, one);
                json_decref(one);
            }
        }
        if (is_type(rule, "parent_last_tool") && !(r->last && strcmp(tool, r->last) == 0)) {
            json_t *c;
            size_t k;
            json_array_foreach(json_object_get(rule, "children"), k, c)
                json_object_del(set, json_string_value(c));
        }
        if (is_type(rule, "max_count_per_step") &&
            json_integer_value(json_object_get(r->counts, tool)) >=
                json_integer_value(json_object_get(rule, "max_count_limit")))
            json_object_del(set, tool);
    }
    if (json_array_size(first)) keep_only(set, first);
    json_decref(first);
    if (json_object_size(set) == 0 || json_object_size(set) == before) {
        json_decref(set); /* nothing left (contradictory rules), or nothing taken */
        return NULL;
    }
    return set;
}

json_t *rules_offer(const rules_turn *r, const json_t *all)
{
    json_t *set = allowed_set(r, all);
    if (!set) return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(all, i,
                       s) if (json_object_get(set, json_string_value(json_object_get(s, "name"))))
        json_array_append(out, s);
    json_decref(set);
    return out;
}

int rules_allow(const rules_turn *r, const json_t *all, const char *name, char *why, size_t n)
{
    json_t *set = allowed_set(r, all);
    int ok = !set || json_object_get(set, name) != NULL;
    if (!ok) {
        buf names = BUF_INIT;
        const char *k;
        json_t *v;
        json_object_foreach(set, k, v) buf_printf(&names, "%s%s", names.len ? ", " : "", k);
        snprintf(why, n,
                 "the agent's tool rules do not allow %s now%s%s; the tools allowed now: %s", name,
                 r->last ? " after " : " at the start of a turn", r->last ? r->last : "",
                 buf_str(&names));
        buf_free(&names);
    }
    json_decref(set);
    return ok;
}

void rules_called(rules_turn *r, const char *name, const char *output)
{
    json_object_set_new(r->counts, name,
                        json_integer(json_integer_value(json_object_get(r->counts, name)) + 1));
    free(r->last);
    r->last = mg_xstrdup(name);
    free(r->last_output);
    r->last_output = output ? mg_xstrdup(output) : NULL;
}

void rules_output(rules_turn *r, const char *result)
{
    json_t *envelope = json_loads(result ? result : "", 0, NULL);
    const char *message = json_string_value(json_object_get(envelope, "message"));
    free(r->last_output);
    r->last_output = message ? mg_xstrdup(message) : result ? mg_xstrdup(result) : NULL;
    json_decref(envelope);
}

int rules_after_step(rules_turn *r, const char *const *names, int n)
{
    int verdict = 0;
    size_t i;
    json_t *rule;
    r->steps++;
    for (int k = 0; k < n; k++)
        json_array_foreach(r->rules, i, rule) if (strcmp(tool_of(rule), names[k]) == 0)
        {
            if (is_type(rule, "exit_loop")) verdict = -1;
            if (is_type(rule, "continue_loop") && verdict == 0) verdict = 1;
        }
    return verdict;
}

char *rules_missing_before_exit(const rules_turn *r)
{
    buf out = BUF_INIT;
    size_t i;
    json_t *rule;
    json_array_foreach(r->rules, i, rule) if (is_type(rule, "required_before_exit") &&
                                              !json_object_get(r->counts, tool_of(rule)))
        buf_printf(&out, "%s%s", out.len ? ", " : "", tool_of(rule));
    return out.len ? buf_take(&out) : NULL;
}
