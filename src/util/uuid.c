/*
 * uuid.c - time-ordered random ids (see uuid.h).
 */
#include "util/uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util/timeutil.h"

/* Writes 128 bits as a UUID4: version nibble 4, variant bits 10. */
static void format_uuid(uint64_t hi, uint64_t lo, char out[MG_UUID_SIZE])
{
    hi = (hi & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
    lo = (lo & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);
    snprintf(out, MG_UUID_SIZE, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
             (unsigned)(hi >> 16 & 0xffff), (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
             (unsigned long long)(lo & UINT64_C(0xffffffffffff)));
}

void mg_uuid_new(char out[MG_UUID_SIZE])
{
    uint64_t r[2];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom((char *)r + got, sizeof r - got, 0);
        if (n > 0) got += (size_t)n;
    }
    uint64_t ms = (uint64_t)mg_now_ms() & ((UINT64_C(1) << 48) - 1);
    format_uuid(ms << 16 | (r[0] & 0xffff), r[1], out);
}

int mg_uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

const char *mg_uuid_strip(const char *id, const char *prefix)
{
    size_t n = strlen(prefix);
    if (!id || strncmp(id, prefix, n) != 0 || id[n] != '-') return NULL;
    return mg_uuid_valid(id + n + 1) ? id + n + 1 : NULL;
}
