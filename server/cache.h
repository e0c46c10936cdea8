/*
 * cache.h - finished answers kept until the database changes (cache.c).
 */
#ifndef MG_SERVER_CACHE_H
#define MG_SERVER_CACHE_H

#include "memgpt.h"

typedef struct srv_cache srv_cache;

/* Opens the cache's own store connection on `home`. */
mg_status srv_cache_new(const char *home, srv_cache **out, mg_error *err);
void srv_cache_free(srv_cache *cache);

/* A copy of the answer kept for `key` (caller frees), or NULL. *version
 * gets the database's version now: pass it to srv_cache_put with the
 * answer built after this call. */
char *srv_cache_get(srv_cache *cache, const char *key, int64_t *version);

/* Keeps `text` for `key` if nothing was committed since `version`. */
void srv_cache_put(srv_cache *cache, const char *key, int64_t version, const char *text);

#endif
