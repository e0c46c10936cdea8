/*
 * fuzz_http.c - the pure parts of the server's request handling: route
 * matching (srv_route, server/routes.c), path ids (srv_check_id), the JSON
 * body and its fields (srv_body_object, srv_field_*, server/request.c),
 * and the web app's file lookup (srv_static_find, server/static.c).
 * Query strings and headers are libmicrohttpd's, not ours.
 *
 * Input: byte 0 picks the method (GET, POST, PATCH, DELETE, PUT), then the
 * path up to a newline, then the body.
 *
 * Properties:
 *  - a trailing slash never changes the route (Letta's SDK sends it on
 *    collections only); a path that routes for one method is known (405)
 *    for every other; path parameters are non-empty segments of the path
 *    without a '/';
 *  - an id is accepted exactly when it is "agent-" and a lower-case UUID;
 *  - a body is an object exactly when jansson reads a JSON object without
 *    duplicate keys (an empty one only where optional); every refusal, of
 *    the body or of a field, is a 422 whose body is JSON {"detail": [{"loc":
 *    ["body", ...], ...}]}: a hostile body never turns into a 500;
 *  - the web app's files: a path is found only when it is plain, and what is
 *    found from a folder lies in it (a file beside the folder never is),
 *    with a type and an ETag.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "fuzz.h"

#include <ftw.h>
#include <jansson.h>
#include <unistd.h>

#include "server/handlers.h"
#include "server/static.h"

static char ui_dir[96];

#define SECRET "the file beside the web folder"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) abort();
    fclose(f);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static char temp_root[64];

static void cleanup(void)
{
    nftw(temp_root, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(temp_root, sizeof temp_root, "%s/fuzz-http-XXXXXX", tmp);
    if (!mkdtemp(temp_root)) abort();
    atexit(cleanup);
    fz_cleanup = cleanup;
    char path[128];
    snprintf(ui_dir, sizeof ui_dir, "%s/ui", temp_root);
    if (mkdir(ui_dir, 0700)) abort();
    snprintf(path, sizeof path, "%s/js", ui_dir);
    if (mkdir(path, 0700)) abort();
    snprintf(path, sizeof path, "%s/index.html", ui_dir);
    write_file(path, "<!doctype html>");
    snprintf(path, sizeof path, "%s/js/app.js", ui_dir);
    write_file(path, "export {};");
    snprintf(path, sizeof path, "%s/secret.txt", temp_root);
    write_file(path, SECRET);
    snprintf(path, sizeof path, "%s/uisecret.txt", temp_root);
    write_file(path, SECRET);
    return 0;
}

/* ------------------------------------------------------------- routes */

typedef struct routed {
    srv_handler fn;
    int known, nparams;
    char params[SRV_MAX_PATH_PARAMS][2048];
} routed;

static void route(const char *method, const char *path, routed *out)
{
    srv_request q = {.method = method, .path = path};
    memset(out, 0, sizeof *out);
    out->fn = srv_route(&q, &out->known);
    /* The parameters live in a buffer the next call reuses: copy them. */
    for (int i = 0; out->fn && i < SRV_MAX_PATH_PARAMS && q.params[i]; i++) {
        snprintf(out->params[i], sizeof out->params[i], "%s", q.params[i]);
        out->nparams++;
    }
}

static void check_routes(const char *method, const char *path)
{
    routed a, b;
    route(method, path, &a);
    size_t n = strlen(path);
    char *slashed = malloc(n + 2);
    if (!slashed) abort();
    snprintf(slashed, n + 2, "%s/", path);
    route(method, slashed, &b);
    if (n && path[0] == '/') /* "" + "/" is the root, another path */
        FZ_CHECK(a.fn == b.fn && (a.fn || a.known == b.known) && a.nparams == b.nparams,
                 "'%s' and '%s' route differently", path, slashed);
    free(slashed);
    for (int i = 0; i < a.nparams; i++) {
        const char *p = a.params[i];
        FZ_CHECK(*p && !strchr(p, '/'), "parameter %d of '%s' is '%s'", i, path, p);
        FZ_CHECK(strcmp(p, b.params[i]) == 0, "a trailing slash changed parameter %d", i);
        size_t plen = strlen(p);
        int segment = 0;
        for (const char *at = strstr(path, p); at && !segment; at = strstr(at + 1, p))
            segment = at > path && at[-1] == '/' && (at[plen] == '/' || at[plen] == '\0');
        FZ_CHECK(segment, "parameter '%s' is not a segment of '%s'", p, path);
    }
    if (a.fn) {
        static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "PUT"};
        for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
            route(methods[i], path, &b);
            FZ_CHECK(b.fn || b.known, "'%s' routes for %s but is unknown for %s", path, method,
                     methods[i]);
        }
    }
}

/* ------------------------------------------------------------ replies */

/* A refusal: 422 and {"detail": [{"loc": ["body" or "path", field?], ...}]}. */
static void check_invalid(srv_reply *r, const char *where, const char *field)
{
    FZ_CHECK(r->status == 422, "a refusal with status %d: %s", r->status,
             r->body ? r->body : "(no body)");
    json_t *v = json_loads(r->body ? r->body : "", 0, NULL);
    json_t *loc = json_object_get(json_array_get(json_object_get(v, "detail"), 0), "loc");
    FZ_CHECK(loc, "a refusal whose body is not {\"detail\": [{\"loc\": ...}]}: %s", r->body);
    FZ_CHECK(strcmp(json_string_value(json_array_get(loc, 0)), where) == 0 &&
                 (!field || strcmp(json_string_value(json_array_get(loc, 1)), field) == 0),
             "a refusal at the wrong place: %s", r->body);
    json_decref(v);
    free(r->body);
    *r = (srv_reply){0};
}

static int valid_agent_id(const char *id)
{
    if (strncmp(id, "agent-", 6) || strlen(id) != 42) return 0;
    for (int i = 0; i < 36; i++) {
        char c = id[6 + i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

static void check_ids(const char *path)
{
    /* Each segment as an agent id. */
    const char *p = path;
    while (*p) {
        size_t n = strcspn(p, "/");
        char *seg = fz_strndup((const uint8_t *)p, n);
        srv_reply r = {0};
        int rc = srv_check_id(&r, seg, "agent", "agent_id");
        FZ_CHECK((rc == 0) == valid_agent_id(seg), "srv_check_id said %d for '%s'", rc, seg);
        if (rc) check_invalid(&r, "path", "agent_id");
        free(seg);
        p += n + (p[n] == '/');
    }
}

static void check_body(const char *body, size_t len, int optional)
{
    srv_request q = {.method = "POST", .path = "/", .body = body, .body_len = len};
    srv_reply r = {0};
    json_t *obj = srv_body_object(&q, &r, optional);
    json_t *strict = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int want = len ? json_is_object(strict) : optional;
    json_decref(strict);
    FZ_CHECK(!obj == !want, "srv_body_object %s a body jansson %s", obj ? "took" : "refused",
             want ? "reads as an object" : "does not");
    if (!obj) {
        check_invalid(&r, "body", NULL);
        return;
    }
    FZ_CHECK(json_is_object(obj) && r.status == 0 && !r.body, "a body taken with an answer set");
    const char *s = NULL;
    if (srv_field_string(&r, obj, "name", 0, &s)) check_invalid(&r, "body", "name");
    json_t *v = json_object_get(obj, "name");
    FZ_CHECK(!s == !json_is_string(v), "the string field 'name' misread");
    int i = -7;
    if (srv_field_int(&r, obj, "limit", 1, 1000, &i)) {
        check_invalid(&r, "body", "limit");
    } else {
        v = json_object_get(obj, "limit");
        FZ_CHECK(json_is_integer(v) ? i == json_integer_value(v) : i == -7,
                 "the integer field 'limit' misread");
        FZ_CHECK(i == -7 || (i >= 1 && i <= 1000), "'limit' %d out of its range", i);
    }
    int b = -1;
    if (srv_field_bool(&r, obj, "streaming", &b)) check_invalid(&r, "body", "streaming");
    json_t *tags = NULL;
    if (srv_field_strings(&r, obj, "tags", &tags)) check_invalid(&r, "body", "tags");
    for (size_t k = 0; k < json_array_size(tags); k++)
        FZ_CHECK(json_is_string(json_array_get(tags, k)), "a tag that is not a string");
    json_decref(obj);
}

/* ----------------------------------------------------------- web files */

static void check_static(const char *path)
{
    srv_static_file f;
    if (srv_static_find(NULL, path, &f) == 0) {
        FZ_CHECK(f.type && f.etag[0] == '"' && !f.owned, "a built-in file without type or tag");
        FZ_CHECK(path[0] == '/', "'%s' was found", path);
    }
    if (srv_static_find(ui_dir, path, &f) == 0) {
        FZ_CHECK(f.owned && f.type && f.etag[0] == '"', "a file without type or tag");
        FZ_CHECK(f.size != strlen(SECRET) || memcmp(f.data, SECRET, f.size) != 0,
                 "'%s' reached a file outside the web folder", path);
        FZ_CHECK(!strstr(path, "/.") && !strstr(path, "//"), "'%s' is not plain", path);
        free(f.owned);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "PUT"};
    fz_input in = {data, size};
    const char *method = methods[fz_byte(&in) % 5];
    const uint8_t *line;
    size_t n = fz_field(&in, '\n', &line);
    char *path = fz_strndup(line, n);
    check_routes(method, path);
    check_ids(path);
    check_static(path);
    check_body((const char *)in.p, in.n, 0);
    check_body((const char *)in.p, in.n, 1);
    free(path);
    return 0;
}
