/*
 * cache.c - answers to GET /v1/agents/{id}, kept until the database
 * changes.
 *
 * Building an AgentState opens the agent and turns most of it into JSON;
 * applications poll it. The cache keeps the finished text per agent and
 * throws everything away as soon as anything was committed, by anyone: a
 * connection of its own that never writes asks mg_store_version, which
 * moves with every commit of every other connection (the server's and the
 * CLI's alike). An answer is stored with the version read before it was
 * built, so one built across a commit is never kept as current.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"

#define CACHE_BUCKETS 1024
#define CACHE_MAX     4096

typedef struct entry {
    char *key;
    char *text;
    struct entry *next;
} entry;

struct srv_cache {
    pthread_mutex_t mu;
    mg_store *watch;
    int64_t version;
    entry *buckets[CACHE_BUCKETS];
    int count;
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % CACHE_BUCKETS;
}

static void clear(srv_cache *c)
{
    for (int b = 0; b < CACHE_BUCKETS; b++) {
        for (entry *e = c->buckets[b], *next; e; e = next) {
            next = e->next;
            free(e->key);
            free(e->text);
            free(e);
        }
        c->buckets[b] = NULL;
    }
    c->count = 0;
}

mg_status srv_cache_new(const char *home, srv_cache **out, mg_error *err)
{
    srv_cache *c = calloc(1, sizeof *c);
    mg_status st = mg_store_open(home, &c->watch, err);
    if (!st) st = mg_store_version(c->watch, &c->version, err);
    if (st) {
        srv_cache_free(c);
        return st;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return MG_OK;
}

void srv_cache_free(srv_cache *c)
{
    if (!c) return;
    clear(c);
    mg_store_close(c->watch);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

char *srv_cache_get(srv_cache *c, const char *key, int64_t *version)
{
    char *text = NULL;
    pthread_mutex_lock(&c->mu);
    int64_t now;
    if (mg_store_version(c->watch, &now, NULL) != MG_OK) now = c->version + 1;
    if (now != c->version) {
        clear(c);
        c->version = now;
    }
    *version = now;
    for (entry *e = c->buckets[hash(key)]; e && !text; e = e->next)
        if (strcmp(e->key, key) == 0) text = strdup(e->text);
    pthread_mutex_unlock(&c->mu);
    return text;
}

void srv_cache_put(srv_cache *c, const char *key, int64_t version, const char *text)
{
    pthread_mutex_lock(&c->mu);
    int64_t now;
    int current =
        mg_store_version(c->watch, &now, NULL) == MG_OK && now == version && version == c->version;
    if (current) {
        if (c->count >= CACHE_MAX) clear(c);
        unsigned h = hash(key);
        entry *e = calloc(1, sizeof *e);
        e->key = strdup(key);
        e->text = strdup(text);
        e->next = c->buckets[h];
        c->buckets[h] = e;
        c->count++;
    }
    pthread_mutex_unlock(&c->mu);
}
