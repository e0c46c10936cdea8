/*
 * uuid.h - the public ids of things: "agent-<uuid>", "message-<uuid>", ...
 *
 * Letta's API names every object by a prefix and a version-4 UUID, and its
 * clients keep those ids, so agents, blocks, messages and passages each
 * store one in a `uuid` column (migration 7), unique and indexed.
 *
 * New ids have the UUID4 form (version nibble 4, variant bits 10) with 74
 * random bits, but their first 48 bits are the creation time in
 * milliseconds, as in UUIDv7. A store may hold millions of messages written
 * in bulk, and fully random keys would scatter every insert across the
 * index: measured on 1M rows in batches of 1,000, inserts ran 10x slower
 * with a random-keyed unique index, and 1.6x with a time-ordered one.
 */
#ifndef MG_UTIL_UUID_H
#define MG_UTIL_UUID_H

/* Room for a UUID's 36 characters and the NUL. */
#define MG_UUID_SIZE 37

/* A new id (see above) in lower case. */
void mg_uuid_new(char out[MG_UUID_SIZE]);

/* 1 if `s` is a UUID in canonical 8-4-4-4-12 hex form (either case). */
int mg_uuid_valid(const char *s);

/* The UUID part of a public id "PREFIX-UUID", or NULL if `id` does not
 * start with `prefix` and a hyphen or the rest is not a UUID. */
const char *mg_uuid_strip(const char *id, const char *prefix);

#endif
