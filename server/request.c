/*
 * request.c - reading requests and writing answers (see request.h).
 */
#include "server/request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/mhd.h"

void srv_reply_json(srv_reply *r, int status, json_t *value)
{
    free(r->body);
    r->status = status;
    r->body = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(value);
    if (!r->body) {
        /* A value that could not be built is a bug of ours, not a reply. */
        r->status = 500;
        r->body = strdup("{\"detail\":\"the server could not build its answer\"}");
    }
}

/* The length of the UTF-8 character at s, or 0 if none starts there
 * (RFC 3629: no overlongs, surrogates or code points past U+10FFFF). */
static size_t utf8_char(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    unsigned cp = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0; /* a NUL ends the string here too */
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return n;
}

/* Drops, in place, the bytes of s that are not part of a whole UTF-8
 * character. A message may quote the request (jansson's "near '...'",
 * which cuts anywhere), and JSON strings must be valid UTF-8: one such byte
 * made the answer impossible to build, a 500 instead of the 422 (found by
 * fuzz/fuzz_http.c). */
static void keep_utf8(char *s)
{
    unsigned char *in = (unsigned char *)s, *out = in;
    while (*in) {
        size_t n = utf8_char(in);
        if (!n) {
            in++;
            continue;
        }
        while (n--)
            *out++ = *in++;
    }
    *out = '\0';
}

void srv_reply_error(srv_reply *r, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    keep_utf8(msg);
    srv_reply_json(r, status, json_pack("{s:s}", "detail", msg));
}

void srv_reply_invalid(srv_reply *r, const char *where, const char *field, const char *msg)
{
    char text[600];
    snprintf(text, sizeof text, "%s", msg);
    keep_utf8(text);
    json_t *loc = json_pack("[s]", where);
    if (field) json_array_append_new(loc, json_string(field));
    srv_reply_json(r, 422,
                   json_pack("{s:[{s:o, s:s, s:s}]}", "detail", "loc", loc, "msg", text, "type",
                             "value_error"));
}

void srv_reply_status(srv_reply *r, const mg_error *err)
{
    switch (err->code) {
    case MG_ERR_NOT_FOUND:
        srv_reply_error(r, 404, "%s", err->message);
        break;
    case MG_ERR_USAGE:
        srv_reply_invalid(r, "body", NULL, err->message);
        break;
    case MG_ERR_EXISTS:
        srv_reply_error(r, 409, "%s", err->message);
        break;
    case MG_ERR_TOO_LARGE:
        srv_reply_error(r, 413, "%s", err->message);
        break;
    case MG_ERR_AUTH:
    case MG_ERR_PROVIDER:
    case MG_ERR_CONTEXT:
        srv_reply_error(r, 502, "%s", err->message);
        break;
    default:
        srv_reply_error(r, 500, "%s", err->message);
        break;
    }
}

const char *srv_header(const srv_request *q, const char *name)
{
    return srv_mhd.lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

typedef struct query_scan {
    const char *name;
    const char **out;
    int max, count;
} query_scan;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    query_scan *s = cls;
    if (key && strcmp(key, s->name) == 0 && value && *value) {
        if (s->count < s->max) s->out[s->count] = value;
        s->count++;
    }
    return MHD_YES;
}

int srv_query_all(const srv_request *q, const char *name, const char **out, int max)
{
    query_scan s = {name, out, max, 0};
    srv_mhd.get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, collect, &s);
    return s.count < max ? s.count : max;
}

const char *srv_query(const srv_request *q, const char *name)
{
    /* The last of repeated values wins, as in most frameworks. */
    const char *all[64];
    int n = srv_query_all(q, name, all, 64);
    return n ? all[n - 1] : NULL;
}

int srv_query_int(const srv_request *q, srv_reply *r, const char *name, int fallback, int min,
                  int max, int *out)
{
    const char *v = srv_query(q, name);
    *out = fallback;
    if (!v) return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < min || n > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer between %d and %d", min, max);
        srv_reply_invalid(r, "query", name, msg);
        return -1;
    }
    *out = (int)n;
    return 0;
}

int srv_query_bool(const srv_request *q, srv_reply *r, const char *name, int fallback, int *out)
{
    const char *v = srv_query(q, name);
    *out = fallback;
    if (!v) return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
    } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
    } else {
        srv_reply_invalid(r, "query", name, "must be true or false");
        return -1;
    }
    return 0;
}

json_t *srv_body_object(const srv_request *q, srv_reply *r, int optional)
{
    if (q->body_len == 0) {
        if (optional) return json_object();
        srv_reply_invalid(r, "body", NULL, "a JSON object is required");
        return NULL;
    }
    json_error_t jerr;
    json_t *v = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        char msg[300];
        snprintf(msg, sizeof msg, "not valid JSON: %s (at byte %d)", jerr.text, jerr.position);
        srv_reply_invalid(r, "body", NULL, msg);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        srv_reply_invalid(r, "body", NULL, "must be a JSON object");
        return NULL;
    }
    return v;
}

int srv_field_string(srv_reply *r, json_t *obj, const char *field, int required, const char **out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        if (!required) return 0;
        srv_reply_invalid(r, "body", field, "field required");
        return -1;
    }
    if (!json_is_string(v)) {
        srv_reply_invalid(r, "body", field, "must be a string");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int srv_field_int(srv_reply *r, json_t *obj, const char *field, int64_t min, int64_t max, int *out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer between %lld and %lld", (long long)min,
                 (long long)max);
        srv_reply_invalid(r, "body", field, msg);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

int srv_field_bool(srv_reply *r, json_t *obj, const char *field, int *out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        srv_reply_invalid(r, "body", field, "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int srv_field_strings(srv_reply *r, json_t *obj, const char *field, json_t **out)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    int ok = json_is_array(v);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) ok = ok && json_is_string(item);
    if (!ok) {
        srv_reply_invalid(r, "body", field, "must be a list of strings");
        return -1;
    }
    *out = v;
    return 0;
}
