/*
 * sha256.h - SHA-256 (FIPS 180-4), for content hashes.
 *
 * Archival loading recognises passages it already stored by the SHA-256 of
 * their normalised text (see memory/loader.h). Streaming interface: init,
 * update any number of times, final. No allocation, no global state.
 */
#ifndef MG_UTIL_SHA256_H
#define MG_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_sha256 {
    uint32_t state[8];
    uint64_t bytes;          /* message length so far */
    unsigned char block[64]; /* pending input, `bytes % 64` of it used */
} mg_sha256;

void mg_sha256_init(mg_sha256 *h);
void mg_sha256_update(mg_sha256 *h, const void *data, size_t len);
/* Writes the 32-byte digest. `h` must be initialised again before reuse. */
void mg_sha256_final(mg_sha256 *h, unsigned char digest[32]);

/* The digest as 64 lower-case hex digits and a NUL. */
void mg_sha256_hex(const unsigned char digest[32], char hex[65]);

#endif
