/*
 * cache.h - finished answers kept until the database changes (cache.c).
 */
#ifndef MG_SERVER_CACHE_H
#define MG_SERVER_CACHE_H

#include "memgpt.h"

typedef struct srv_cache srv_cache;

srv_cache *srv_cache_new(void);
void srv_cache_free(srv_cache *cache);

/* A copy of the answer kept for `key` (caller frees), or NULL. `store` is
 * the request's connection and *seen the version it showed last (updated
 * here). *epoch gets the cache's epoch now: pass it to srv_cache_put with
 * the answer built after this call. */
char *srv_cache_get(srv_cache *cache, mg_store *store, int64_t *seen, const char *key,
                    int64_t *epoch);

/* Keeps `text` for `key` if nothing was seen committed since `epoch`. */
void srv_cache_put(srv_cache *cache, const char *key, int64_t epoch, const char *text);

#endif
