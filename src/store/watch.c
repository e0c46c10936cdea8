/*
 * watch.c - telling that the database changed without asking SQLite.
 *
 * A server answers the same reads again and again, and keeps the answers
 * until something is committed (mg_store_version). Asking SQLite whether
 * anything was (PRAGMA data_version) starts a read transaction, and that
 * takes file locks: a system call or more per request, as much as the rest
 * of a cached answer costs.
 *
 * In WAL mode every connection, in any process, learns about commits from
 * the wal-index: the first 136 bytes of the "-shm" file beside the
 * database, mapped into each process's memory. Its header is documented in
 * SQLite's "WAL-mode File Format" (sqlite.org/walformat.html) and shared by
 * every SQLite version that can open the file at once, so it cannot change
 * under us. It holds two copies of a 48-byte record; a writer publishes a
 * commit by writing the second copy, a barrier, then the first. Readers read
 * the first, a barrier, then the second, and trust them only if they agree.
 * Among the fields, `change` goes up by one with every commit and `checksum`
 * is a checksum over all the others; together they identify the state.
 *
 * So the watch reads the header as SQLite's readers do: no lock and no
 * system call. A version read before a read transaction began is never
 * newer than what that transaction sees, which is what a cache needs (an
 * answer kept under an older version is only rebuilt once more).
 *
 * It reads SQLite's own mapping, asked of the connection's file through
 * the VFS (xShmMap, without extending), and never opens the file itself:
 * closing any descriptor of a file drops every POSIX lock the process holds
 * on it, SQLite's included, and another process could then shrink the file
 * under the mapping. The mapping lives as long as the connection, and the
 * file stays: a connection in WAL mode keeps a shared lock on the database,
 * so no other process can take the exclusive one it needs to delete the
 * file. When there is no mapping (not WAL, a VFS without shared memory)
 * the watch is off and mg_store_version asks SQLite.
 */
#include <stdint.h>
#include <string.h>

#include "store/store.h"

/* The header record, in the machine's byte order (walformat.html). */
typedef struct wal_index_header {
    uint32_t version;
    uint32_t unused;
    uint32_t change; /* +1 with every commit */
    uint8_t initialised;
    uint8_t big_endian_checksums;
    uint16_t page_size;
    uint32_t max_frame;
    uint32_t pages;
    uint32_t frame_checksum[2];
    uint32_t salt[2];
    uint32_t checksum[2]; /* over all the fields above */
} wal_index_header;

_Static_assert(sizeof(wal_index_header) == 48, "the wal-index header record is 48 bytes");

#define REGION_BYTES  32768 /* the size SQLite maps the wal-index in */
#define READ_ATTEMPTS 100

void store_watch_open(mg_store *store)
{
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(store->db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
        !file || !file->pMethods || file->pMethods->iVersion < 2 || !file->pMethods->xShmMap)
        return;
    volatile void *region = NULL;
    if (file->pMethods->xShmMap(file, 0, REGION_BYTES, 0, &region) == SQLITE_OK && region)
        store->wal_index = (const void *)region;
}

void store_watch_close(mg_store *store)
{
    store->wal_index = NULL; /* SQLite unmaps it when the connection closes */
}

int store_watch_version(mg_store *store, int64_t *version)
{
    if (!store->wal_index) return 0;
    const volatile wal_index_header *copies = store->wal_index;
    for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        wal_index_header first, second;
        memcpy(&first, (const void *)&copies[0], sizeof first);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        memcpy(&second, (const void *)&copies[1], sizeof second);
        if (memcmp(&first, &second, sizeof first) != 0 || !first.initialised) continue;
        /* Non-negative, so it never meets the values mg_store_version
         * gives when the header cannot be read. */
        *version = (int64_t)((((uint64_t)first.change << 32) | first.checksum[0]) >> 1);
        return 1;
    }
    return 0; /* a commit in progress every time: ask SQLite */
}
