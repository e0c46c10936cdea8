/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of index files and logs.
 *
 * Pure function of its inputs, no state: safe from any thread. Uses the
 * SSE4.2 crc32 instruction when the CPU has it, else a byte-wise table.
 */
#ifndef MG_INDEX_CRC32C_H
#define MG_INDEX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends a running CRC-32C with len bytes. Start with crc = 0; the value
 * returned for a whole buffer equals the one for its pieces chained in order
 * (mg_crc32c(mg_crc32c(0, a, n), b, m) == mg_crc32c(0, a+b, n+m)).
 * mg_crc32c(0, "123456789", 9) == 0xe3069283. */
uint32_t mg_crc32c(uint32_t crc, const void *data, size_t len);

#endif
