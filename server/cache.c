/*
 * cache.c - answers to GET /v1/agents/{id}, kept until the database
 * changes.
 *
 * Building an AgentState opens the agent and turns most of it into JSON;
 * applications poll it. The cache keeps the finished text per agent, each
 * under the epoch it was built in, and the epoch moves on whenever any
 * request's connection shows a new version (mg_store_version: it changes
 * with every commit, of that connection or any other, the CLI's included;
 * it is read from SQLite's shared memory, without a lock or a system call:
 * store/watch.c). Every request asks its own connection first, so no lock
 * is held around SQLite, and:
 *  - a commit C before a request R: R's connection either shows a new
 *    version now (R moves the epoch) or showed it at an earlier request,
 *    after C, which moved the epoch then; either way no answer from before
 *    C is current for R;
 *  - an answer is stored under the epoch read before it was built, and
 *    only if the epoch has not moved since, so one built across a commit
 *    is never kept as current.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "server/util.h"

#define CACHE_BUCKETS 1024
#define CACHE_MAX     4096

typedef struct entry {
    char *key;
    char *text;
    int64_t epoch;
    struct entry *next;
} entry;

struct srv_cache {
    pthread_mutex_t mu;
    int64_t epoch; /* atomic */
    entry *buckets[CACHE_BUCKETS];
    int count;
};

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

srv_cache *srv_cache_new(void)
{
    srv_cache *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void srv_cache_free(srv_cache *c)
{
    if (!c) return;
    clear(c);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

char *srv_cache_get(srv_cache *c, mg_store *store, int64_t *seen, const char *key, int64_t *epoch)
{
    int64_t now;
    if (mg_store_version(store, &now, NULL) != MG_OK || now != *seen) {
        *seen = now;
        __atomic_add_fetch(&c->epoch, 1, __ATOMIC_SEQ_CST);
    }
    *epoch = __atomic_load_n(&c->epoch, __ATOMIC_SEQ_CST);
    char *text = NULL;
    pthread_mutex_lock(&c->mu);
    for (entry *e = c->buckets[srv_hash(key) % CACHE_BUCKETS]; e && !text; e = e->next)
        if (e->epoch == *epoch && strcmp(e->key, key) == 0) text = strdup(e->text);
    pthread_mutex_unlock(&c->mu);
    return text;
}

void srv_cache_put(srv_cache *c, const char *key, int64_t epoch, const char *text)
{
    pthread_mutex_lock(&c->mu);
    if (epoch == __atomic_load_n(&c->epoch, __ATOMIC_SEQ_CST)) {
        unsigned h = srv_hash(key) % CACHE_BUCKETS;
        entry **link = &c->buckets[h];
        while (*link && strcmp((*link)->key, key) != 0)
            link = &(*link)->next;
        if (*link) { /* an older answer for the key: replaced */
            free((*link)->text);
            (*link)->text = strdup(text);
            (*link)->epoch = epoch;
        } else {
            if (c->count >= CACHE_MAX) clear(c);
            entry *e = calloc(1, sizeof *e);
            e->key = strdup(key);
            e->text = strdup(text);
            e->epoch = epoch;
            e->next = c->buckets[h];
            c->buckets[h] = e;
            c->count++;
        }
    }
    pthread_mutex_unlock(&c->mu);
}
