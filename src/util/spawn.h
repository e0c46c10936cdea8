/*
 * spawn.h - starting helper processes (MCP servers, Python tools) apart
 * from us: in a process group of their own, so that stopping one kills
 * whatever it started too, with every signal at its default and none
 * blocked, whatever the caller's threads had set.
 */
#ifndef MG_UTIL_SPAWN_H
#define MG_UTIL_SPAWN_H

#include <spawn.h>

/* Initialises `attr` as above; the caller destroys it
 * (posix_spawnattr_destroy) after posix_spawn. */
void mg_spawn_attr_init(posix_spawnattr_t *attr);

#endif
