/*
 * migrations.h - the schema's versions. See migrations.c.
 */
#ifndef MG_STORE_MIGRATIONS_H
#define MG_STORE_MIGRATIONS_H

/* The newest schema version this binary knows. */
int mg_schema_version(void);

/* The SQL that migrates version-1 to version; NULL if out of range. */
const char *mg_schema_migration(int version);

/* Marks the file as a memgpt database: 'MGPT'. */
#define MG_APPLICATION_ID 0x4D475054

#endif
