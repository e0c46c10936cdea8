/*
 * fuzz_agentfile.c - the Agent File (.af) importer (mg_agent_import,
 * agent/agentfile.c) and, for what it accepts, the exporter.
 *
 * Input: byte 0 holds the import options (bit 0: a new name, bit 1:
 * another model, bit 2: the offline embedder), the rest is the file.
 *
 * One store in a temporary directory (tmpfs when there is one) serves the
 * whole run; every agent an input creates is deleted again, so each input
 * meets the same empty store and an exec costs a few transactions.
 *
 * Properties (memgpt.h and the README's promises):
 *  - a refusal is MG_ERR_USAGE with one line of valid UTF-8 naming the
 *    place, and leaves nothing behind: the store holds as many agents as
 *    before;
 *  - an import creates exactly the agents its report lists, each of which
 *    opens and exports;
 *  - export, import and export again give the same document apart from
 *    ids and timestamps, and our own export always imports.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "fuzz.h"

#include <ftw.h>
#include <jansson.h>
#include <unistd.h>

#include "memgpt.h"
#include "util/text.h"

static mg_store *store;
static char home[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    mg_store_close(store);
    nftw(home, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(home, sizeof home, "%s/fuzz-af-XXXXXX", tmp);
    if (!mkdtemp(home)) abort();
    mg_error err = {0};
    if (mg_store_open(home, &store, &err)) {
        fprintf(stderr, "fuzz_agentfile: %s\n", err.message);
        abort();
    }
    atexit(cleanup);
    fz_cleanup = cleanup;
    return 0;
}

static int64_t agents(void)
{
    int64_t n = -1;
    mg_error err = {0};
    FZ_CHECK(mg_agent_count(store, &n, &err) == MG_OK, "counting agents: %s", err.message);
    return n;
}

static void check_refusal(mg_status st, const mg_error *err)
{
    FZ_CHECK(st == MG_ERR_USAGE && err->code == st, "refused with status %d: %s", st, err->message);
    size_t n = strlen(err->message);
    FZ_CHECK(n && mg_utf8_valid(err->message, n), "the refusal is not valid UTF-8: %s",
             err->message);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK((unsigned char)err->message[i] >= 0x20, "the refusal is not one line");
}

/* 1 if s is PREFIX-<uuid> or an ISO 8601 time: what may differ between
 * exports of the same agent. */
static int id_or_time(const char *s)
{
    const char *dash = strchr(s, '-');
    if (dash && strlen(dash + 1) == 36 && dash[9] == '-' && dash[14] == '-') return 1;
    return strlen(s) >= 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':';
}

static json_t *normalized(json_t *v)
{
    if (json_is_string(v))
        return json_string(id_or_time(json_string_value(v)) ? "~" : json_string_value(v));
    json_t *out;
    if (json_is_array(v)) {
        out = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(out, normalized(x));
        return out;
    }
    if (json_is_object(v)) {
        out = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) json_object_set_new(out, k, normalized(x));
        return out;
    }
    return json_incref(v);
}

static char *export_of(const char *id)
{
    mg_agent *agent;
    mg_error err = {0};
    FZ_CHECK(mg_agent_open_id(store, id, &agent, &err) == MG_OK, "agent %s of the report: %s", id,
             err.message);
    char *doc = NULL;
    FZ_CHECK(mg_agent_export(agent, &doc, &err) == MG_OK, "export of %s: %s", id, err.message);
    mg_agent_free(agent);
    return doc;
}

static void delete_agent(const char *name)
{
    mg_error err = {0};
    FZ_CHECK(mg_agent_delete(store, name, &err) == MG_OK, "deleting '%s': %s", name, err.message);
}

/* Exports the agent, deletes it, imports the export and exports again. */
static void check_round_trip(const char *id, const char *name)
{
    char *first = export_of(id);
    delete_agent(name);
    char *report = NULL;
    mg_error err = {0};
    mg_status st = mg_agent_import(store, first, strlen(first), NULL, &report, &err);
    FZ_CHECK(st == MG_OK, "our own export does not import: %s\n%s", err.message, first);
    json_t *r = json_loads(report, 0, NULL);
    json_t *agent = json_array_get(json_object_get(r, "agents"), 0);
    const char *id2 = json_string_value(json_object_get(agent, "id"));
    const char *name2 = json_string_value(json_object_get(agent, "name"));
    FZ_CHECK(id2 && name2 && strcmp(name, name2) == 0, "re-imported as '%s'", name2);
    char *second = export_of(id2);
    json_t *a = json_loads(first, 0, NULL), *b = json_loads(second, 0, NULL);
    json_t *na = normalized(a), *nb = normalized(b);
    FZ_CHECK(json_equal(na, nb), "export, import, export changed the document:\n%s\n%s", first,
             second);
    json_decref(na);
    json_decref(nb);
    json_decref(a);
    json_decref(b);
    delete_agent(name2);
    json_decref(r);
    mg_free(report);
    mg_free(first);
    mg_free(second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    unsigned flags = fz_byte(&in);
    mg_import_options opt = {.name = flags & 1 ? "fuzzed agent" : NULL,
                             .model = flags & 2 ? "anthropic/claude-sonnet-4-5" : NULL,
                             .embedder = flags & 4 ? "offline" : NULL};
    int64_t before = agents();
    char *report = NULL;
    mg_error err = {0};
    mg_status st = mg_agent_import(store, (const char *)in.p, in.n, &opt, &report, &err);
    if (st) {
        check_refusal(st, &err);
        FZ_CHECK(agents() == before, "a refused file left %lld agents behind",
                 (long long)(agents() - before));
        return 0;
    }
    json_t *r = json_loads(report, 0, NULL);
    json_t *list = json_object_get(r, "agents");
    FZ_CHECK(json_array_size(list) > 0, "an import without agents: %s", report);
    FZ_CHECK(agents() == before + (int64_t)json_array_size(list),
             "%zu agents reported, %lld created", json_array_size(list),
             (long long)(agents() - before));
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *id = json_string_value(json_object_get(a, "id"));
        const char *name = json_string_value(json_object_get(a, "name"));
        FZ_CHECK(id && name, "a reported agent without id or name");
        if (i == 0) {
            check_round_trip(id, name);
        } else {
            char *doc = export_of(id);
            mg_free(doc);
            delete_agent(name);
        }
    }
    FZ_CHECK(agents() == before, "agents left after deleting what was imported");
    json_decref(r);
    mg_free(report);
    return 0;
}
